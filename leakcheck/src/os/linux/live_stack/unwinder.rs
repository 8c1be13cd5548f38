//! Whether this process's unwinder can walk a stack inside a signal handler without taking a lock.
//!
//! To find the unwind tables of the code at an address, libgcc's `_Unwind_Find_FDE` asks the
//! dynamic loader which object holds it. Since GCC 12, built against glibc 2.35 or later, it asks
//! `_dl_find_object`, which glibc documents as lock-free and async-signal-safe. Older libgcc (and
//! other C libraries) call `dl_iterate_phdr`, which takes the loader lock: a thread interrupted
//! inside `dlopen` would deadlock in its own handler, holding its locks forever. So before the
//! first signal is sent, leakcheck checks, once per process:
//!
//! - the C library is glibc 2.35 or later (`gnu_get_libc_version`), and `_dl_find_object`
//!   resolves (`dlsym`);
//! - the object that holds `_Unwind_Backtrace` (libgcc_s, or the executable when the unwinder is
//!   linked in statically) imports `_dl_find_object`: read from its ELF dynamic symbol table, this
//!   is exactly "this unwinder looks objects up without the lock", whatever its version number.
//!
//! If either fails, live stacks are "unavailable" with the reason, and no signal is ever sent.

use std::ffi::{c_void, CStr};
use std::path::PathBuf;
use std::sync::OnceLock;

/// What the C library is, as far as the unwinder cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CLibrary {
    /// glibc, its version as it spells it (`2.36`), and whether `_dl_find_object` resolves.
    Glibc {
        version: String,
        has_dl_find_object: bool,
    },
    /// Another C library (musl, uClibc...): its `dl_iterate_phdr` locks.
    #[cfg_attr(target_env = "gnu", allow(dead_code))] // Found on other targets; tested on all.
    Other,
}

/// The object the unwinder lives in, and whether it imports `_dl_find_object`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Unwinder {
    /// The file, for messages.
    pub(super) path: String,
    /// Whether it imports `_dl_find_object`, or why that could not be read.
    pub(super) uses_dl_find_object: Result<bool, String>,
}

/// The first glibc with `_dl_find_object`.
const FIRST_GLIBC: (u32, u32) = (2, 35);

/// `Ok` if walking a stack inside a signal handler takes no lock in this process, else why not.
/// Decided once per process.
pub(super) fn walk_is_signal_safe() -> Result<(), String> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT
        .get_or_init(|| verdict(&c_library(), &unwinder()))
        .clone()
}

/// The decision, from what was found.
pub(super) fn verdict(c_library: &CLibrary, unwinder: &Unwinder) -> Result<(), String> {
    let (version, has_dl_find_object) = match c_library {
        CLibrary::Glibc {
            version,
            has_dl_find_object,
        } => (version, *has_dl_find_object),
        CLibrary::Other => {
            return Err(
                "the C library is not glibc, and the unwinder would take the loader \
                        lock inside the signal handler (dl_iterate_phdr)"
                    .to_owned(),
            )
        }
    };
    if parse_version(version).is_some_and(|found| found < FIRST_GLIBC) {
        return Err(format!(
            "glibc {version} is older than 2.35, and the unwinder would take the loader lock \
             inside the signal handler (no _dl_find_object)"
        ));
    }
    if !has_dl_find_object {
        return Err(format!(
            "glibc {version} does not provide _dl_find_object, and the unwinder would take the \
             loader lock inside the signal handler"
        ));
    }
    match &unwinder.uses_dl_find_object {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the unwinder ({}) does not use _dl_find_object (libgcc before GCC 12?), and would \
             take the loader lock inside the signal handler",
            unwinder.path
        )),
        Err(why) => Err(format!(
            "cannot tell whether the unwinder would take the loader lock inside the signal \
             handler: {why}"
        )),
    }
}

/// `2.36` → `(2, 36)`; a suffix after the minor number (`2.35.9000`) is ignored.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(target_env = "gnu")]
fn c_library() -> CLibrary {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: dlsym with RTLD_DEFAULT (a null handle on glibc) and a NUL-terminated name.
    let has_dl_find_object =
        !unsafe { libc::dlsym(std::ptr::null_mut(), c"_dl_find_object".as_ptr()) }.is_null();
    CLibrary::Glibc {
        version,
        has_dl_find_object,
    }
}

#[cfg(not(target_env = "gnu"))]
fn c_library() -> CLibrary {
    CLibrary::Other
}

extern "C" {
    /// The unwinder's entry point the stack walk calls (`backtrace::trace_unsynchronized`). Only
    /// its address is taken.
    fn _Unwind_Backtrace();
}

/// Finds the object `_Unwind_Backtrace` lives in and reads its imports.
fn unwinder() -> Unwinder {
    match unwinder_path() {
        Ok(path) => Unwinder {
            path: path.display().to_string(),
            uses_dl_find_object: super::super::elf::imports(&path, b"_dl_find_object"),
        },
        Err(why) => Unwinder {
            path: "unknown".to_owned(),
            uses_dl_find_object: Err(why),
        },
    }
}

/// The file of the loaded object that holds `_Unwind_Backtrace`.
fn unwinder_path() -> Result<PathBuf, String> {
    let unwinder = object_of(_Unwind_Backtrace as *const c_void)
        .ok_or("the dynamic loader does not know which object holds _Unwind_Backtrace")?;
    // SAFETY: getauxval has no preconditions; AT_PHDR is the executable's program headers.
    let executable_headers = unsafe { libc::getauxval(libc::AT_PHDR) } as *const c_void;
    let in_executable = object_of(executable_headers).is_some_and(|exe| exe.0 == unwinder.0);
    // For the executable the loader knows only `argv[0]`, which may be relative to another
    // directory: the kernel's link is exact.
    Ok(if in_executable {
        PathBuf::from("/proc/self/exe")
    } else {
        unwinder.1
    })
}

/// The base address and file name of the loaded object that holds `address`.
fn object_of(address: *const c_void) -> Option<(usize, PathBuf)> {
    // SAFETY: a zeroed Dl_info is a valid out-parameter; dladdr only reads `address`'s mapping.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr filled `dli_fname` with a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name.to_bytes());
    Some((info.dli_fbase as usize, PathBuf::from(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glibc(version: &str) -> CLibrary {
        CLibrary::Glibc {
            version: version.to_owned(),
            has_dl_find_object: true,
        }
    }

    fn unwinder(uses: Result<bool, String>) -> Unwinder {
        Unwinder {
            path: "/lib/libgcc_s.so.1".to_owned(),
            uses_dl_find_object: uses,
        }
    }

    #[test]
    fn glibc_2_35_with_an_unwinder_that_uses_dl_find_object_is_safe() {
        for version in ["2.35", "2.36", "2.41.9000", "3.0"] {
            assert_eq!(
                verdict(&glibc(version), &unwinder(Ok(true))),
                Ok(()),
                "{version}"
            );
        }
    }

    #[test]
    fn an_older_glibc_or_another_c_library_is_not() {
        let error = verdict(&glibc("2.34"), &unwinder(Ok(true))).unwrap_err();
        assert!(
            error.starts_with("glibc 2.34 is older than 2.35"),
            "{error}"
        );
        let error = verdict(&glibc("2.9"), &unwinder(Ok(true))).unwrap_err();
        assert!(error.starts_with("glibc 2.9 is older"), "{error}");
        let missing = CLibrary::Glibc {
            version: "2.35".to_owned(),
            has_dl_find_object: false,
        };
        let error = verdict(&missing, &unwinder(Ok(true))).unwrap_err();
        assert!(
            error.contains("does not provide _dl_find_object"),
            "{error}"
        );
        let error = verdict(&CLibrary::Other, &unwinder(Ok(true))).unwrap_err();
        assert!(error.starts_with("the C library is not glibc"), "{error}");
    }

    #[test]
    fn an_unwinder_that_does_not_use_dl_find_object_is_not() {
        let error = verdict(&glibc("2.36"), &unwinder(Ok(false))).unwrap_err();
        assert!(
            error.starts_with("the unwinder (/lib/libgcc_s.so.1) does not use _dl_find_object"),
            "{error}"
        );
        let error = verdict(
            &glibc("2.36"),
            &unwinder(Err("/x: not an ELF file".to_owned())),
        )
        .unwrap_err();
        assert!(error.starts_with("cannot tell whether"), "{error}");
        assert!(error.ends_with("/x: not an ELF file"), "{error}");
    }

    #[test]
    fn glibc_versions_parse() {
        assert_eq!(parse_version("2.36"), Some((2, 36)));
        assert_eq!(parse_version("2.35.9000"), Some((2, 35)));
        assert_eq!(parse_version("2.40-rc1"), Some((2, 40)));
        assert_eq!(parse_version("unknown"), None);
    }

    /// The unwinder this test binary uses is found, and its imports read.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn this_process_unwinder_is_found_and_read() {
        let found = super::unwinder();
        assert!(found.uses_dl_find_object.is_ok(), "{found:?}");
    }
}
