//! What a thread's stack says about it, for threads that carry no annotation: what it waits on
//! ([`wait`], which also reads a pending task's async stack from a tokio task dump), whether it
//! belongs to the process rather than a test ([`once`]), whether it is a pool thread with
//! nothing to do ([`pool`]), and where it was created ([`creation_site`]).
//!
//! Every function here is pure: it reads symbolised frames, innermost first, as reports have
//! them before trimming. Function names are matched after [`normalise`], which makes the two
//! spellings symbolisation produces (legacy `std::x::f::h0123…` and v0
//! `<std[1a2b…]::x::T>::f`) read alike.

pub(crate) mod once;
pub(crate) mod pool;
pub(crate) mod wait;

use crate::report::Frame;
use crate::symbols::short_path;

/// A function name with what varies between builds removed: a leading `<` and its `>`, the
/// `as Trait` part of a trait method's self type, crate disambiguators (`std[1a2b…]`), generic
/// arguments, and a trailing legacy hash (`::h0123456789abcdef`).
///
/// `<std[e2]::sys::sync::mutex::futex::Mutex>::lock_contended` becomes
/// `std::sys::sync::mutex::futex::Mutex::lock_contended`, and
/// `std::sync::mpmc::array::Channel<T>::send::{{closure}}::h19d0e2d74f37cb00` becomes
/// `std::sync::mpmc::array::Channel::send::{{closure}}`.
pub(crate) fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize; // Inside `<...>` or `[...]`.
                            // A leading `<Type as Trait>::f`: keep `Type`, drop ` as Trait` and the brackets.
    let qualified = name.starts_with('<');
    let chars = name.char_indices().skip(usize::from(qualified));
    let mut skipping_as = false;
    for (i, c) in chars {
        if qualified && depth == 0 {
            if name[i..].starts_with(" as ") {
                skipping_as = true;
            }
            if c == '>' {
                // The end of the qualified self type.
                skipping_as = false;
                continue;
            }
        }
        if skipping_as {
            if c == '<' || c == '[' {
                depth += 1;
            } else if (c == '>' || c == ']') && depth > 0 {
                depth -= 1;
            }
            continue;
        }
        match c {
            '<' | '[' => depth += 1,
            '>' | ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    strip_legacy_hash(&mut out);
    // Generic arguments of the function itself (`f::<T>`) leave a dangling separator.
    while out.ends_with("::") {
        out.truncate(out.len() - 2);
    }
    out
}

/// Removes a trailing `::h` and 16 hex digits.
fn strip_legacy_hash(name: &mut String) {
    if let Some(at) = name.rfind("::h") {
        let hash = &name[at + 3..];
        if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            name.truncate(at);
        }
    }
}

/// Crates whose frames are the language runtime: std and its parts, leakcheck itself. The first
/// frame outside these (and outside C functions) is where a thread was created.
const RUNTIME_CRATES: &[&str] = &["std", "core", "alloc", "leakcheck", "backtrace"];

/// Whether `frame` is the language runtime's or the C library's: std, core, alloc, leakcheck,
/// or a C function (no Rust path).
///
/// A frame in the toolchain's std, core or alloc sources is the runtime's whatever its name
/// says: built with `debug = "line-tables-only"`, inlined frames are named without their path
/// (`do_call`, not `std::panicking::catch_unwind::do_call`).
pub(crate) fn is_runtime_frame(frame: &Frame) -> bool {
    let name = normalise(frame.function());
    is_c_function(&name)
        || RUNTIME_CRATES.contains(&first_segment(&name))
        || frame.file().is_some_and(is_runtime_source)
}

/// The toolchain's std, core or alloc sources, as debug info names them (under `/rustc/<hash>/`
/// or a local toolchain's `lib/rustlib/`) or as symbolisation shortens them (`std/src/…`).
fn is_runtime_source(file: &str) -> bool {
    const RUNTIME_LIBRARIES: &[&str] = &["std", "core", "alloc", "panic_unwind"];
    toolchain_library(&short_path(file)).is_some_and(|library| RUNTIME_LIBRARIES.contains(&library))
}

/// The toolchain library a shortened source path is in (`std` for `std/src/sync/mpsc.rs`).
fn toolchain_library(file: &str) -> Option<&str> {
    const TOOLCHAIN: &[&str] = &["std", "core", "alloc", "proc_macro", "test", "panic_unwind"];
    let (first, rest) = file.split_once('/')?;
    (TOOLCHAIN.contains(&first) && rest.starts_with("src/")).then_some(first)
}

/// Whether `frame` is library code, not the user's: the runtime, and any crate whose source is
/// not the user's own (a dependency from a registry, or the toolchain's sources).
pub(crate) fn is_library_frame(frame: &Frame) -> bool {
    is_runtime_frame(frame)
        || frame.file().is_some_and(is_dependency_file)
        || LIBRARY_CRATES.contains(&first_segment(&normalise(frame.function())))
}

/// Crates counted as library code even when their sources are not in a registry path (vendored
/// or patched): the synchronisation crates wait reasons are read from.
const LIBRARY_CRATES: &[&str] = &[
    "parking_lot",
    "parking_lot_core",
    "lock_api",
    "crossbeam_channel",
    "crossbeam_utils",
    "crossbeam_deque",
    "crossbeam_epoch",
    "rayon_core",
    "tokio",
];

/// Sources from a registry, a git checkout of a dependency, or the toolchain: as debug info
/// names them (absolute), or as symbolisation shortens them (`tokio-1.54.1/src/…`,
/// `std/src/…`, `name-<hash>/…` for a git checkout).
fn is_dependency_file(file: &str) -> bool {
    if file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/checkouts/")
        || file.contains("/rustc/")
        || file.contains("/lib/rustlib/")
    {
        return true;
    }
    if toolchain_library(file).is_some() {
        return true;
    }
    let Some((first, _)) = file.split_once('/') else {
        return false;
    };
    // `name-1.8.1` (a registry package) or `name-0123abcd…` (a git checkout).
    first.rsplit_once('-').is_some_and(|(name, suffix)| {
        !name.is_empty()
            && (suffix.starts_with(|c: char| c.is_ascii_digit()) && suffix.contains('.')
                || suffix.len() >= 12 && suffix.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// A symbol without a Rust path: `syscall`, `__futex_abstimed_wait_common`, `start_thread`.
fn is_c_function(name: &str) -> bool {
    !name.contains("::")
}

fn first_segment(name: &str) -> &str {
    name.split("::").next().unwrap_or(name)
}

/// The first frame, innermost first, outside the language runtime: where a thread was created,
/// given its creator's stack at `pthread_create`. The interposer's own frames, std's spawn
/// machinery and glibc's are all runtime frames, so a plain `std::thread::spawn` gives the
/// user's line and a pool crate gives the pool's spawning function.
/// Returns its index.
pub(crate) fn creation_site(frames: &[Frame]) -> Option<usize> {
    frames.iter().position(|frame| !is_runtime_frame(frame))
}

/// The index of the first frame that is the user's own code, not library code.
pub(crate) fn first_user_frame(frames: &[Frame]) -> Option<usize> {
    frames.iter().position(|frame| !is_library_frame(frame))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A frame of the user's code (`src/...`) or, with `lib = true`, of a dependency.
    pub(crate) fn frame(function: &str, file: &str) -> Frame {
        Frame {
            function: function.into(),
            file: Some(file.into()),
            line: Some(1),
        }
    }

    /// A frame of std as symbolisation names it, with the toolchain's source path.
    pub(crate) fn std_frame(function: &str) -> Frame {
        frame(function, "/rustc/59807616e/library/std/src/lib.rs")
    }

    /// A frame of a registry dependency.
    pub(crate) fn dep_frame(function: &str) -> Frame {
        frame(
            function,
            "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/dep-1.0.0/src/lib.rs",
        )
    }

    /// A C function, without debug info.
    pub(crate) fn c_frame(function: &str) -> Frame {
        Frame {
            function: function.into(),
            file: None,
            line: None,
        }
    }

    #[test]
    fn a_frame_in_std_sources_is_the_runtimes_even_with_a_bare_name() {
        // As `debug = "line-tables-only"` names inlined frames: no path.
        for file in [
            "std/src/panicking.rs",
            "/rustc/0123abcd/library/std/src/thread/lifecycle.rs",
            "core/src/ops/function.rs",
        ] {
            assert!(is_runtime_frame(&frame("do_call", file)), "{file}");
        }
        assert!(!is_runtime_frame(&frame(
            "my_app::spawn_worker",
            "src/worker.rs"
        )));
        assert!(!is_runtime_frame(&frame(
            "my_app::spawn_worker",
            "stdx/src/lib.rs"
        )));
    }

    #[test]
    fn normalises_both_manglings_alike() {
        assert_eq!(
            normalise("<std[e28293b1aa0f68bd]::sys::sync::mutex::futex::Mutex>::lock_contended"),
            "std::sys::sync::mutex::futex::Mutex::lock_contended"
        );
        assert_eq!(
            normalise("std::sync::mpmc::array::Channel<T>::send::{{closure}}::h19d0e2d74f37cb00"),
            "std::sync::mpmc::array::Channel::send::{{closure}}"
        );
        assert_eq!(
            normalise("<parking_lot::raw_mutex::RawMutex as lock_api::mutex::RawMutex>::lock::h1f686fa8a718a902"),
            "parking_lot::raw_mutex::RawMutex::lock"
        );
        assert_eq!(
            normalise("<std[e2]::sync::nonpoison::condvar::Condvar>::wait::<std[e2]::sync::barrier::BarrierState>"),
            "std::sync::nonpoison::condvar::Condvar::wait"
        );
        assert_eq!(normalise("my_app::worker"), "my_app::worker");
        assert_eq!(normalise("syscall"), "syscall");
        // Not a hash: too short.
        assert_eq!(normalise("my_app::h1234"), "my_app::h1234");
    }

    #[test]
    fn the_creation_site_is_the_first_frame_outside_the_runtime() {
        let frames = [
            frame("pthread_create", "leakcheck/src/os/linux/pthread.rs"),
            std_frame("<std[e2]::sys::thread::unix::Thread>::new"),
            std_frame("std::thread::lifecycle::spawn_unchecked::hb7f7c7e514bee2c3"),
            std_frame("std::thread::builder::Builder::spawn::hbe342f236205a78e"),
            dep_frame("threadpool::spawn_in_pool::hdce83ea53c1670ef"),
            dep_frame("threadpool::ThreadPool::new::hb1f1241d62d0cfea"),
            frame("my_app::start::h0c3d056ae937c1a4", "src/main.rs"),
        ];
        assert_eq!(
            frames[creation_site(&frames).unwrap()].function(),
            "threadpool::spawn_in_pool::hdce83ea53c1670ef"
        );
        assert_eq!(
            frames[first_user_frame(&frames).unwrap()].function(),
            "my_app::start::h0c3d056ae937c1a4"
        );
        assert!(creation_site(&frames[..4]).is_none());
    }

    #[test]
    fn dependency_sources_are_recognised_shortened_or_not() {
        for file in [
            "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/lib.rs",
            "/rustc/59807616e/library/std/src/thread/mod.rs",
            "tokio-1.54.1/src/runtime/park.rs",
            "std/src/sync/mpsc.rs",
            "r2d2-3f4e5d6c7b8a9f0e/src/lib.rs",
        ] {
            assert!(is_dependency_file(file), "{file}");
        }
        for file in [
            "src/lib.rs",
            "tests/pool.rs",
            "my-app/src/main.rs",
            "tests/v-2/a.rs",
        ] {
            assert!(!is_dependency_file(file), "{file}");
        }
    }

    #[test]
    fn c_functions_and_vendored_sync_crates_are_library_code() {
        assert!(is_runtime_frame(&c_frame("__futex_abstimed_wait_common")));
        assert!(is_library_frame(&frame(
            "parking_lot::condvar::Condvar::wait",
            "vendor/parking_lot/src/condvar.rs"
        )));
        assert!(!is_library_frame(&frame("my_app::run", "src/lib.rs")));
    }
}
