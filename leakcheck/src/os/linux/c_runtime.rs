//! Names for addresses in the C runtime's own objects (the C library, the loader, libgcc_s, the
//! vDSO), from the loader's symbol tables instead of debug info.
//!
//! A report hides those frames (see `report/trim.rs`), but symbolising one through debug info
//! loads all of its object's: with glibc's debug package installed (compressed, as Debian ships
//! it), a debug build's first report spent a second decompressing it, for frames nobody sees.
//! `dladdr` names an exported function that covers the address; an internal one
//! (`start_thread`, `__futex_abstimed_wait_common`) shows as `object+offset`, as
//! `libc.so.6+0x891f4`, in full backtraces.

use std::ffi::{c_void, CStr};

/// The C runtime's objects, by file name without its directory, `.so` suffix and version
/// (`libc.so.6`, `libc-2.31.so` and `libc.so` are all `libc`); `ld-linux` names the loader of
/// every architecture (`ld-linux-x86-64.so.2`, `ld-linux-aarch64.so.1`).
const C_RUNTIME_OBJECTS: &[&str] = &[
    "libc",
    "libpthread",
    "libdl",
    "librt",
    "libm",
    "ld64",
    "libgcc_s",
    "linux-vdso",
    "linux-gate",
];

/// Whether the file name `file` (no directory) is one of the C runtime's objects.
fn is_c_runtime_object(file: &[u8]) -> bool {
    let stem = match file.windows(3).position(|w| w == b".so") {
        Some(at) => &file[..at],
        None => file,
    };
    if stem.starts_with(b"ld-linux") {
        return true;
    }
    // `libc-2.31` (glibc before 2.34 versioned its file names): the part before the version.
    let stem = match stem
        .windows(2)
        .position(|w| w[0] == b'-' && w[1].is_ascii_digit())
    {
        Some(at) => &stem[..at],
        None => stem,
    };
    C_RUNTIME_OBJECTS.iter().any(|name| name.as_bytes() == stem)
}

/// The name of the function at `ip`, if `ip` is in one of the C runtime's objects.
pub(crate) fn c_runtime_function(ip: usize) -> Option<String> {
    // SAFETY: a zeroed Dl_info is a valid out-parameter; dladdr only looks `ip` up in the
    // loader's list of mapped objects and fills `info` with pointers into them.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(ip as *const c_void, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr filled `dli_fname` with a NUL-terminated string the loader owns, valid while
    // the object holding `ip` stays loaded. `ip` is a frame of a stack taken for this report,
    // so its object is one code ran in; unloading it with `dlclose` on another thread while
    // its frames are being named is the one way to pull the string away, and a stack of that
    // object could not be symbolised either (the same holds for std's own backtraces).
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes();
    let file = file.rsplit(|&b| b == b'/').next().unwrap_or(file);
    if !is_c_runtime_object(file) {
        return None;
    }
    if info.dli_sname.is_null() {
        // No exported function covers it: the object and the offset.
        let offset = ip.wrapping_sub(info.dli_fbase as usize);
        return Some(format!("{}+{offset:#x}", String::from_utf8_lossy(file)));
    }
    // SAFETY: as for `dli_fname`. The name alone, as debug info would give it, so that
    // `ignore_function("epoll_wait")` matches a thread waiting inside it.
    Some(
        unsafe { CStr::from_ptr(info.dli_sname) }
            .to_string_lossy()
            .into_owned(),
    )
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
        assert_eq!(c_runtime_function(getpid + 1), Some(name), "no offset");
    }

    #[test]
    fn the_c_runtimes_objects_are_known_by_their_exact_names() {
        for runtime in [
            "libc.so.6",
            "libc-2.31.so",
            "libc.so",
            "libpthread.so.0",
            "librt.so.1",
            "libm.so.6",
            "ld-linux-x86-64.so.2",
            "ld-linux-aarch64.so.1",
            "libgcc_s.so.1",
            "linux-vdso.so.1",
        ] {
            assert!(is_c_runtime_object(runtime.as_bytes()), "{runtime}");
        }
        for other in [
            "librte_eal.so.23",
            "librtmp.so.1",
            "libdlt.so.2",
            "libcrypto.so.3",
            "libc++.so.1",
            "libmagic.so.1",
            "my-program",
        ] {
            assert!(!is_c_runtime_object(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn the_programs_own_functions_are_left_to_debug_info() {
        let own = a_c_library_function_is_named_by_the_loader as fn() as usize;
        assert_eq!(c_runtime_function(own), None);
    }
}
