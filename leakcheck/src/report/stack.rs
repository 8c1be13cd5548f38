//! Stacks in reports: how they were obtained, their frames, and trimming of internal frames.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::patterns::function_matches;
use crate::symbols::{Address, SymbolCache};

/// How a stack in a report was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackOrigin {
    /// Recorded when the task was spawned (capture level `backtrace`).
    AtSpawn,
    /// Recorded when the task entered its blocking call (capture level `backtrace`).
    WhenBlocked,
    /// Taken from the thread itself while the report was built.
    Live,
    /// From the async runtime's task dump.
    RuntimeDump,
}

impl fmt::Display for StackOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StackOrigin::AtSpawn => "captured at spawn",
            StackOrigin::WhenBlocked => "captured when it blocked",
            StackOrigin::Live => "live, from the thread",
            StackOrigin::RuntimeDump => "from the runtime's task dump",
        })
    }
}

/// One frame of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    pub(crate) function: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

impl Frame {
    /// The function, demangled, without its hash (`my_crate::pool::worker::{{closure}}`).
    pub fn function(&self) -> &str {
        &self.function
    }
    /// The source file, when debug info says.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
    /// The line, when debug info says.
    pub fn line(&self) -> Option<u32> {
        self.line
    }
}

/// A task's stack, innermost frame first, with leakcheck's, std's and runtimes' frames trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stack {
    pub(crate) origin: StackOrigin,
    pub(crate) frames: Vec<Frame>,
    /// How many internal frames were trimmed.
    pub(crate) hidden: usize,
}

impl Stack {
    /// How the stack was obtained.
    pub fn origin(&self) -> StackOrigin {
        self.origin
    }
    /// The frames that are the user's code, innermost first.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
    /// Whether any frame is in `function` (a path, matched on whole segments).
    pub fn contains_function(&self, function: &str) -> bool {
        self.frames
            .iter()
            .any(|f| function_matches(function, &f.function))
    }
}

/// A stack that still has to be symbolised.
#[derive(Clone)]
pub(crate) enum PendingStack {
    /// An unresolved backtrace recorded earlier.
    Backtrace(StackOrigin, Arc<backtrace::Backtrace>),
    /// Instruction pointers, innermost first (a live stack).
    Addresses(StackOrigin, Arc<[usize]>),
    /// Frames already symbolised elsewhere (a runtime's task dump).
    Resolved(Stack),
}

impl PendingStack {
    fn addresses(&self) -> Vec<usize> {
        match self {
            PendingStack::Backtrace(_, bt) => bt.frames().iter().map(|f| f.ip() as usize).collect(),
            PendingStack::Addresses(_, ips) => ips.to_vec(),
            PendingStack::Resolved(_) => Vec::new(),
        }
    }

    fn origin(&self) -> StackOrigin {
        match self {
            PendingStack::Backtrace(origin, _) | PendingStack::Addresses(origin, _) => *origin,
            PendingStack::Resolved(stack) => stack.origin,
        }
    }
}

/// Symbolises many stacks, each distinct address once: survivors blocked at the same place share
/// their frames, so a report of a hundred thousand of them resolves a handful of addresses.
pub(crate) fn resolve_stacks(stacks: &[Option<PendingStack>]) -> Vec<Option<Stack>> {
    let mut symbols = SymbolCache::new();
    let mut by_addresses: HashMap<(StackOrigin, Vec<usize>), Stack> = HashMap::new();
    stacks
        .iter()
        .map(|pending| {
            let pending = pending.as_ref()?;
            if let PendingStack::Resolved(stack) = pending {
                return Some(stack.clone());
            }
            let key = (pending.origin(), pending.addresses());
            if let Some(stack) = by_addresses.get(&key) {
                return Some(stack.clone());
            }
            let mut frames = Vec::new();
            for (index, &ip) in key.1.iter().enumerate() {
                // The innermost frame of a live stack is where the thread was interrupted; every
                // other address is a return address.
                let address = if index == 0 && key.0 == StackOrigin::Live {
                    Address::Interrupted(ip)
                } else {
                    Address::Return(ip)
                };
                frames.extend(symbols.symbols(address).iter().map(|symbol| Frame {
                    function: symbol.function.clone(),
                    file: symbol.file.clone(),
                    line: symbol.line,
                }));
            }
            let stack = trim(key.0, frames);
            by_addresses.insert(key, stack.clone());
            Some(stack)
        })
        .collect()
}

/// Crates and modules whose frames are not the user's code, matched on whole leading path
/// segments (`std` hides `std::thread`, not a crate named `stdx`).
const INTERNAL_PATHS: &[&str] = &[
    "leakcheck",
    "std",
    "core",
    "alloc",
    "backtrace",
    "parking_lot",
    "parking_lot_core",
    "tokio::runtime",
    "tokio::task",
    "tokio::loom",
    "tokio::park",
    "test",
    "libtest_mimic",
];

/// C library and runtime symbols (names without a Rust path), matched whole.
const INTERNAL_SYMBOLS: &[&str] = &[
    "main",
    "_start",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "syscall",
    "futex",
    "start_thread",
    "rust_begin_unwind",
];

/// Prefixes of C library and runtime symbols (names without a Rust path).
const INTERNAL_SYMBOL_PREFIXES: &[&str] = &[
    "__rust",
    "__libc",
    "__GI_",
    "__pthread",
    "pthread_",
    "__futex",
    "futex_",
    "__syscall",
];

/// Whether the path `function` starts with the whole segments of `prefix`, after any `<`.
fn starts_with_segments(function: &str, prefix: &str) -> bool {
    function
        .trim_start_matches('<')
        .strip_prefix(prefix)
        .is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with("::")
                || rest.starts_with('<')
                || rest.starts_with(' ')
        })
}

fn is_internal(frame: &Frame) -> bool {
    let function = frame.function.as_str();
    let is_path = function.contains("::");
    function.starts_with("0x")
        // A C library's function (`epoll_wait`, `__futex_abstimed_wait_common`): no Rust path,
        // and no source file in the debug info we have.
        || (!is_path && frame.file.is_none())
        || (!is_path
            && (INTERNAL_SYMBOLS.contains(&function)
                || INTERNAL_SYMBOL_PREFIXES
                    .iter()
                    .any(|prefix| function.starts_with(prefix))))
        || INTERNAL_PATHS
            .iter()
            .any(|prefix| starts_with_segments(function, prefix))
        || frame
            .file
            .as_deref()
            .is_some_and(|f| f.contains("/rustc/") || f.contains("/.cargo/registry/"))
}

/// Keeps the user's frames; counts the rest. A stack of nothing but internal frames is kept whole,
/// since hiding everything would say less than showing it.
fn trim(origin: StackOrigin, frames: Vec<Frame>) -> Stack {
    let total = frames.len();
    let kept: Vec<Frame> = frames.iter().filter(|f| !is_internal(f)).cloned().collect();
    if kept.is_empty() {
        return Stack {
            origin,
            frames,
            hidden: 0,
        };
    }
    Stack {
        origin,
        hidden: total - kept.len(),
        frames: kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str) -> Frame {
        Frame {
            function: function.into(),
            file: Some("src/lib.rs".into()),
            line: Some(1),
        }
    }

    #[test]
    fn trims_internal_frames_and_counts_them() {
        let stack = trim(
            StackOrigin::Live,
            vec![
                frame("std::sync::mpmc::zero::Channel<T>::send"),
                frame("leakcheck::sync::mpsc::SyncSender<T>::send"),
                frame("my_app::pool::worker"),
                frame("core::ops::function::FnOnce::call_once"),
                frame("my_app::pool::Pool::new::{{closure}}"),
                frame("std::sys::pal::unix::thread::Thread::new::thread_start"),
                frame("start_thread"),
                Frame {
                    function: "epoll_wait".into(),
                    file: None,
                    line: None,
                },
            ],
        );
        let names: Vec<&str> = stack.frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(
            names,
            [
                "my_app::pool::worker",
                "my_app::pool::Pool::new::{{closure}}"
            ]
        );
        assert_eq!(stack.hidden, 6);
        assert!(stack.contains_function("pool::worker"));
    }

    #[test]
    fn internal_names_match_whole_segments_not_user_crates_that_start_alike() {
        let user = [
            "mainline::run",
            "clone_service::worker",
            "futexes::wait_all",
            "syscalls::poll",
            "stdx::io::read",
            "tests_support::helper",
            "<mainline::Server as core::ops::Drop>::drop",
        ];
        for function in user {
            assert!(!is_internal(&frame(function)), "{function} was hidden");
        }
        let internal = [
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
        for function in internal {
            assert!(is_internal(&frame(function)), "{function} was shown");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)] // Reads debug info from the executable.
    fn resolves_this_very_stack() {
        let here = Arc::new(backtrace::Backtrace::new_unresolved());
        let stacks = resolve_stacks(&[
            Some(PendingStack::Backtrace(StackOrigin::AtSpawn, here)),
            None,
        ]);
        let stack = stacks[0].as_ref().unwrap();
        assert!(
            stack.contains_function("resolves_this_very_stack"),
            "{stack:?}"
        );
        assert!(stacks[1].is_none());
    }
}
