//! Names for addresses in the C runtime's own objects (the C library, the loader, libgcc_s, the
//! vDSO), from the loader's symbol tables instead of debug info.
//!
//! A report hides those frames (see `report/trim.rs`), but symbolising one through debug info
//! loads all of its object's: with glibc's debug package installed (compressed, as Debian ships
//! it), a debug build's first report spent half a second decompressing it, for frames nobody
//! sees. The loader's nearest exported symbol is enough to tell them and to show them in full
//! backtraces, as `name+offset` (the function may be an internal one after it), or as
//! `object+offset` where no exported symbol precedes the address.

use std::ffi::{c_void, CStr};

/// File names (the part after the last `/`) of the C runtime's objects.
const C_RUNTIME_OBJECTS: &[&str] = &[
    "libc.so",
    "libc-",
    "libpthread",
    "libdl",
    "librt",
    "libm.so",
    "libm-",
    "ld-linux",
    "ld64.so",
    "libgcc_s",
    "linux-vdso",
    "linux-gate",
];

/// The name of the function at `ip`, if `ip` is in one of the C runtime's objects.
pub(crate) fn c_runtime_function(ip: usize) -> Option<String> {
    // SAFETY: a zeroed Dl_info is a valid out-parameter; dladdr only looks `ip` up in the
    // loader's list of mapped objects and fills `info` with pointers into them.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(ip as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr filled `dli_fname` with a NUL-terminated string the loader owns, which
    // lives as long as the object stays loaded (the C runtime's objects are never unloaded).
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    let file = file.rsplit(|&b| b == b'/').next().unwrap_or(file);
    if !C_RUNTIME_OBJECTS
        .iter()
        .any(|prefix| file.starts_with(prefix.as_bytes()))
    {
        return None;
    }
    if info.dli_sname.is_null() {
        // No exported symbol before it: the object and the offset, as `libc.so.6+0x29d8f`.
        let offset = ip.wrapping_sub(info.dli_fbase as usize);
        return Some(format!("{}+{offset:#x}", String::from_utf8_lossy(file)));
    }
    // SAFETY: as for `dli_fname`.
    let name = unsafe { CStr::from_ptr(info.dli_sname) }.to_string_lossy();
    let offset = ip.wrapping_sub(info.dli_saddr as usize);
    Some(if offset == 0 {
        name.into_owned()
    } else {
        format!("{name}+{offset:#x}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_library_function_is_named_by_the_loader() {
        let getpid = libc::getpid as *const () as usize;
        // (glibc exports it as `getpid` and `__getpid` too: the loader names either.)
        let name = c_runtime_function(getpid).expect("in the C library");
        assert!(name.ends_with("getpid"), "{name}");
        let inside = c_runtime_function(getpid + 1).expect("in the C library");
        assert_eq!(inside, format!("{name}+0x1"));
    }

    #[test]
    fn the_programs_own_functions_are_left_to_debug_info() {
        let own = a_c_library_function_is_named_by_the_loader as fn() as usize;
        assert_eq!(c_runtime_function(own), None);
    }
}
