//! Which frames of a stack a report shows: the user's, and the dependencies' that tell the story.
//!
//! A live stack of a blocked thread is ~30 frames, of which two or three are the user's: the rest
//! is libc's syscall wrappers, std's channels and thread start, a runtime's scheduler, and
//! leakcheck itself. Every stack is trimmed by one rule, whichever check built the report:
//!
//! - frames of std/core/alloc, of runtimes and their parking primitives (tokio, parking_lot,
//!   lock_api), of test harnesses, of leakcheck, and of the C library are *plumbing*: hidden;
//! - every other frame is shown: the user's, and any other crate's (when the user's code is not
//!   on the stack at all, a dependency's frames are what say what the thread is);
//! - a stack with nothing but plumbing shows the innermost few frames of the runtime it waits in,
//!   or failing that of std, rather than nothing;
//! - each run of hidden frames is counted in place, with the crates it holds
//!   (`… 12 frames of std, tokio hidden`).
//!
//! `LEAKCHECK_BACKTRACE=full` shows every frame.

use std::borrow::Cow;

use super::stack::{Elided, Frame};

/// Where a frame's code comes from, as far as showing it goes. Later variants are shown first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Provenance {
    /// libc, the loader, unresolved addresses, leakcheck and its symboliser: never worth showing.
    Machinery,
    /// std, core and alloc.
    Std,
    /// Parking primitives (parking_lot, lock_api): how a thread waits, rarely what for.
    Parking,
    /// An async runtime or a test harness: shown only when nothing else is.
    Runtime,
    /// The user's code or any other crate's.
    Shown,
}

/// Crates that are plumbing, with the name a hidden-frames line gives them.
const PLUMBING_CRATES: &[(&str, Provenance, &str)] = &[
    ("std", Provenance::Std, "std"),
    ("core", Provenance::Std, "std"),
    ("alloc", Provenance::Std, "std"),
    ("__rustc", Provenance::Std, "std"),
    ("panic_unwind", Provenance::Std, "std"),
    ("leakcheck", Provenance::Machinery, "leakcheck"),
    ("leakcheck_macros", Provenance::Machinery, "leakcheck"),
    ("backtrace", Provenance::Machinery, "leakcheck"),
    ("tokio", Provenance::Runtime, "tokio"),
    ("parking_lot", Provenance::Parking, "parking_lot"),
    ("parking_lot_core", Provenance::Parking, "parking_lot"),
    ("lock_api", Provenance::Parking, "parking_lot"),
    ("test", Provenance::Runtime, "libtest"),
    ("libtest_mimic", Provenance::Runtime, "libtest"),
];

/// How many frames a stack of nothing but plumbing shows.
const FALLBACK_FRAMES: usize = 4;

/// The crate a demangled Rust function belongs to: `tokio` for
/// `<tokio::runtime::park::Inner>::park`, `alloc` for `<alloc::boxed::Box<F> as …>::call_once`.
fn crate_of(function: &str) -> Option<&str> {
    let path = function.trim_start_matches(['<', '&', '*']);
    let path = path.strip_prefix("dyn ").unwrap_or(path);
    let end = path.find("::")?;
    let name = &path[..end];
    (!name.is_empty() && name.chars().all(|c| c == '_' || c.is_alphanumeric())).then_some(name)
}

/// The crate of a source file as `paths.rs` shortens it: `core` for `core/src/ops/function.rs`,
/// `tokio` for `tokio-1.54.1/src/runtime/park.rs`. Only the toolchain's and the registry's.
fn crate_of_file(file: &str) -> Option<&'static str> {
    let (first, rest) = file.split_once('/')?;
    if !rest.starts_with("src/") {
        return None;
    }
    let name = match first.rsplit_once('-') {
        Some((name, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => name,
        _ => first,
    };
    let name = name.replace('-', "_");
    PLUMBING_CRATES
        .iter()
        .map(|(c, _, _)| *c)
        .find(|c| *c == name)
}

/// The crate of the trait in a trait method's path: `my_crate` for
/// `<alloc::vec::Vec<u8> as my_crate::Ext>::go`. The ` as ` that matters is the outermost one,
/// at the end of the bracketed self type.
fn trait_crate_of(function: &str) -> Option<&str> {
    let inner = function.strip_prefix('<')?;
    let mut depth = 0usize;
    for (at, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' if depth == 0 => return None,
            '>' => depth -= 1,
            ' ' if depth == 0 && inner[at..].starts_with(" as ") => {
                return crate_of(&inner[at + " as ".len()..]);
            }
            _ => {}
        }
    }
    None
}

/// Whether `name` is one of the plumbing crates.
fn is_plumbing(name: &str) -> bool {
    PLUMBING_CRATES.iter().any(|(c, _, _)| *c == name)
}

/// The provenance of `frame`, and the name its hidden-frames line gives it.
fn provenance(frame: &Frame) -> (Provenance, Cow<'static, str>) {
    let function = frame.function.as_str();
    // The user's impl of their own trait for a std or runtime type is the user's code.
    if trait_crate_of(function).is_some_and(|name| !is_plumbing(name)) {
        return (Provenance::Shown, Cow::Borrowed(""));
    }
    // `<fn() -> T as FnOnce>::call_once` names no crate first: its source file does.
    let name = crate_of(function).or_else(|| frame.file.as_deref().and_then(crate_of_file));
    if let Some(name) = name {
        // leakcheck's own tests are code under test like any user's.
        if name == "leakcheck" && function.contains("::tests::") {
            return (Provenance::Shown, Cow::Borrowed(""));
        }
        return match PLUMBING_CRATES.iter().find(|(c, _, _)| *c == name) {
            Some((_, provenance, label)) => (*provenance, Cow::Borrowed(*label)),
            None => (Provenance::Shown, Cow::Borrowed("")),
        };
    }
    // No Rust path: a C function, an unwinding shim or an unresolved address.
    if function.starts_with("__rust") || function == "rust_begin_unwind" {
        (Provenance::Std, Cow::Borrowed("std"))
    } else if function.starts_with("0x") {
        (Provenance::Machinery, Cow::Borrowed("unresolved"))
    } else if is_c_library(frame) {
        (Provenance::Machinery, Cow::Borrowed("libc"))
    } else {
        // A C function of the user's or of a dependency, with its own sources: worth showing.
        (Provenance::Shown, Cow::Borrowed(""))
    }
}

/// C library and program-start symbols, matched whole.
const C_LIBRARY_SYMBOLS: &[&str] = &[
    "main",
    "_start",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "syscall",
    "futex",
    "start_thread",
];

/// Prefixes of C library symbols.
const C_LIBRARY_PREFIXES: &[&str] = &[
    "__libc",
    "__GI_",
    "__pthread",
    "pthread_",
    "__futex",
    "futex_",
    "__syscall",
];

/// Whether a frame without a Rust path is the C library's: a name it is known by, or sources that
/// were never on this machine (glibc's debug info names them relative to its build tree,
/// `./nptl/…`, `../sysdeps/…`).
fn is_c_library(frame: &Frame) -> bool {
    let function = frame.function.as_str();
    if C_LIBRARY_SYMBOLS.contains(&function)
        || C_LIBRARY_PREFIXES.iter().any(|p| function.starts_with(p))
    {
        return true;
    }
    match frame.file.as_deref() {
        None => true,
        Some(file) => {
            file.starts_with("./")
                || file.starts_with("../")
                || file.contains("/sysdeps/")
                || file.contains("/nptl/")
                || file.starts_with("/usr/")
        }
    }
}

/// The frames of a stack a report shows, innermost first, and the runs of frames it hides.
pub(super) struct Trimmed {
    pub(super) frames: Vec<Frame>,
    pub(super) elided: Vec<Elided>,
}

/// Trims `frames` (innermost first) by the rule of this module; `full` keeps every frame.
pub(super) fn trim(frames: Vec<Frame>, full: bool) -> Trimmed {
    if full || frames.is_empty() {
        return Trimmed {
            frames,
            elided: Vec::new(),
        };
    }
    let provenances: Vec<(Provenance, Cow<'static, str>)> = frames.iter().map(provenance).collect();
    let shown = choose_shown(&provenances);
    let mut kept = Vec::new();
    let mut elided: Vec<Elided> = Vec::new();
    let mut run: Option<Elided> = None;
    for ((frame, (_, label)), show) in frames.into_iter().zip(provenances).zip(shown) {
        if show {
            if let Some(done) = run.take() {
                elided.push(done);
            }
            kept.push(frame);
            continue;
        }
        let current = run.get_or_insert_with(|| Elided {
            before: kept.len(),
            count: 0,
            crates: Vec::new(),
        });
        current.count += 1;
        if !current.crates.iter().any(|c| *c == label) {
            current.crates.push(label.into_owned());
        }
    }
    elided.extend(run);
    Trimmed {
        frames: kept,
        elided,
    }
}

/// Which frames to show: every frame that is not plumbing; if there is none, the innermost few of
/// the highest provenance present.
fn choose_shown(provenances: &[(Provenance, Cow<'static, str>)]) -> Vec<bool> {
    if provenances.iter().any(|(p, _)| *p == Provenance::Shown) {
        return provenances
            .iter()
            .map(|(p, _)| *p == Provenance::Shown)
            .collect();
    }
    let best = provenances
        .iter()
        .map(|(p, _)| *p)
        .max()
        .unwrap_or(Provenance::Machinery);
    let mut shown = vec![false; provenances.len()];
    if best == Provenance::Machinery {
        // Nothing known at all (unresolved addresses): hiding would say less than showing.
        shown
            .iter_mut()
            .take(FALLBACK_FRAMES)
            .for_each(|s| *s = true);
        return shown;
    }
    // The innermost run of frames of that provenance: where the thread waits.
    let start = provenances
        .iter()
        .position(|(p, _)| *p == best)
        .unwrap_or(0);
    for (index, (provenance, _)) in provenances.iter().enumerate().skip(start) {
        if *provenance != best || index - start == FALLBACK_FRAMES {
            break;
        }
        shown[index] = true;
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>) -> Frame {
        Frame {
            function: function.into(),
            file: file.map(Into::into),
            line: Some(1),
        }
    }

    fn rust(function: &str) -> Frame {
        frame(function, Some("src/lib.rs"))
    }

    fn names(trimmed: &Trimmed) -> Vec<&str> {
        trimmed.frames.iter().map(|f| f.function.as_str()).collect()
    }

    fn runs(trimmed: &Trimmed) -> Vec<(usize, usize, String)> {
        trimmed
            .elided
            .iter()
            .map(|e| (e.before, e.count, e.crates.join(", ")))
            .collect()
    }

    #[test]
    fn keeps_the_users_frames_and_counts_each_hidden_run_in_place() {
        let trimmed = trim(
            vec![
                frame("syscall", Some("./misc/../sysdeps/unix/syscall.S")),
                rust("std::sys::pal::unix::futex::futex_wait"),
                rust("leakcheck::sync::mpsc::SyncSender<T>::send"),
                rust("my_app::pool::worker"),
                rust("core::ops::function::FnOnce::call_once"),
                rust("my_app::pool::Pool::new::{{closure}}"),
                rust("<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once"),
                rust("std::sys::pal::unix::thread::Thread::new::thread_start"),
                frame("start_thread", Some("./nptl/pthread_create.c")),
                frame("clone3", None),
            ],
            false,
        );
        assert_eq!(
            names(&trimmed),
            [
                "my_app::pool::worker",
                "my_app::pool::Pool::new::{{closure}}"
            ]
        );
        assert_eq!(
            runs(&trimmed),
            [
                (0, 3, "libc, std, leakcheck".to_owned()),
                (1, 1, "std".to_owned()),
                (2, 4, "std, libc".to_owned()),
            ]
        );
    }

    #[test]
    fn a_dependencys_frames_are_kept_when_the_user_has_none() {
        let trimmed = trim(
            vec![
                frame("syscall", None),
                rust("parking_lot_core::parking_lot::park"),
                rust("lock_api::mutex::Mutex<R,T>::lock"),
                rust("scheduled_thread_pool::Worker::get_job"),
                rust("scheduled_thread_pool::Worker::run"),
                rust("std::thread::lifecycle::spawn_unchecked::{{closure}}"),
            ],
            false,
        );
        assert_eq!(
            names(&trimmed),
            [
                "scheduled_thread_pool::Worker::get_job",
                "scheduled_thread_pool::Worker::run"
            ]
        );
        assert_eq!(
            runs(&trimmed),
            [
                (0, 3, "libc, parking_lot".to_owned()),
                (2, 1, "std".to_owned())
            ]
        );
    }

    #[test]
    fn a_stack_of_plumbing_shows_the_innermost_frames_of_its_runtime() {
        let mut frames = vec![frame("syscall", None), rust("parking_lot_core::park")];
        frames.extend((0..8).map(|i| rust(&format!("tokio::runtime::park::f{i}"))));
        frames.push(rust("std::thread::lifecycle::spawn_unchecked"));
        let trimmed = trim(frames, false);
        // The runtime's frames say more than the parking primitive's it waits in.
        assert_eq!(
            names(&trimmed),
            [
                "tokio::runtime::park::f0",
                "tokio::runtime::park::f1",
                "tokio::runtime::park::f2",
                "tokio::runtime::park::f3"
            ]
        );
        assert_eq!(
            runs(&trimmed),
            [
                (0, 2, "libc, parking_lot".to_owned()),
                (4, 5, "tokio, std".to_owned())
            ]
        );

        let only_std = trim(
            vec![
                frame("syscall", None),
                rust("std::sys::pal::unix::futex::futex_wait"),
                rust("std::thread::park"),
                rust("std::sys::backtrace::__rust_begin_short_backtrace"),
            ],
            false,
        );
        assert_eq!(only_std.frames.len(), 3);
        assert_eq!(runs(&only_std), [(0, 1, "libc".to_owned())]);
    }

    #[test]
    fn plumbing_is_matched_on_whole_segments_not_user_crates_that_start_alike() {
        let user = [
            "mainline::run",
            "clone_service::worker",
            "futexes::wait_all",
            "syscalls::poll",
            "stdx::io::read",
            "tests_support::helper",
            "tokio_util::codec::Framed::poll",
            "<mainline::Server as core::ops::Drop>::drop",
        ];
        for function in user {
            assert_eq!(
                provenance(&rust(function)).0,
                Provenance::Shown,
                "{function}"
            );
        }
        let plumbing = [
            "std::thread::park",
            "<std::io::Stdin as std::io::Read>::read",
            "core::ops::function::FnOnce::call_once",
            "leakcheck::sync::mpsc::SyncSender<T>::send",
            "parking_lot_core::parking_lot::park",
            "tokio::runtime::park::Inner::park",
            "test::run_test",
            "main",
            "clone3",
            "syscall",
            "start_thread",
            "__futex_abstimed_wait_common",
            "pthread_cond_wait",
        ];
        for function in plumbing {
            assert_ne!(
                provenance(&rust(function)).0,
                Provenance::Shown,
                "{function}"
            );
        }
    }

    #[test]
    fn full_keeps_everything() {
        let frames = vec![frame("syscall", None), rust("std::thread::park")];
        let trimmed = trim(frames.clone(), true);
        assert_eq!(trimmed.frames, frames);
        assert!(trimmed.elided.is_empty());
    }

    #[test]
    fn crates_are_read_from_whole_path_segments() {
        assert_eq!(crate_of("<tokio::runtime::Inner>::park"), Some("tokio"));
        assert_eq!(
            crate_of("<alloc::boxed::Box<F> as core::ops::FnOnce>::call_once"),
            Some("alloc")
        );
        assert_eq!(crate_of("mainline::run"), Some("mainline"));
        assert_eq!(crate_of("stdx::io::read"), Some("stdx"));
        assert_eq!(crate_of("epoll_wait"), None);
        // The user's trait implemented for a std or runtime type is the user's code.
        for users_impl in [
            "<alloc::vec::Vec<u8> as my_crate::Ext>::go",
            "<std::sync::mpsc::Receiver<T> as my_crate::RecvExt<T>>::recv_all",
            "<tokio::net::TcpStream as my_crate::conn::Conn>::serve::{{closure}}",
        ] {
            assert_eq!(
                provenance(&rust(users_impl)).0,
                Provenance::Shown,
                "{users_impl}"
            );
        }
        assert_eq!(
            trait_crate_of("<std::collections::HashMap<K, <V as Tr>::A> as my::T>::f"),
            Some("my")
        );
        // std's trait for std's type stays std's.
        assert_eq!(
            provenance(&rust(
                "<alloc::boxed::Box<F> as core::ops::FnOnce>::call_once"
            ))
            .0,
            Provenance::Std
        );
        // A user crate whose name starts like a plumbing crate is the user's.
        assert_eq!(provenance(&rust("stdx::io::read")).0, Provenance::Shown);
        assert_eq!(
            provenance(&rust("tokio_util::codec::f")).0,
            Provenance::Shown
        );
        // A function that names no crate first is known by its file.
        let shim = frame(
            "<fn() -> core::result::Result<(), alloc::string::String> as core::ops::FnOnce<()>>::call_once",
            Some("core/src/ops/function.rs"),
        );
        assert_eq!(provenance(&shim).0, Provenance::Std);
        let tokio = frame("<F as X>::f", Some("tokio-1.54.1/src/runtime/park.rs"));
        assert_eq!(provenance(&tokio).0, Provenance::Runtime);
        assert_eq!(
            provenance(&rust("leakcheck::check::tests::t")).0,
            Provenance::Shown
        );
    }
}
