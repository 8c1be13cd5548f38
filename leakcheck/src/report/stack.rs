//! Stacks in reports: how they were obtained, symbolisation, and trimming of internal frames.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

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
            .any(|f| crate::options::function_matches(function, &f.function))
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
    resolve_stacks_whole(stacks)
        .into_iter()
        .map(|resolved| resolved.map(|(stack, _)| stack))
        .collect()
}

/// A resolved stack as reports show it, and all its frames, untrimmed.
pub(crate) type WholeStack = (Stack, Arc<Vec<Frame>>);

/// Like [`resolve_stacks`], with each stack's untrimmed frames as well (empty for a stack that
/// was resolved elsewhere), for what only library frames tell: what a thread waits on.
pub(crate) fn resolve_stacks_whole(stacks: &[Option<PendingStack>]) -> Vec<Option<WholeStack>> {
    let mut symbols: HashMap<usize, Arc<Vec<Frame>>> = HashMap::new();
    let mut by_addresses: HashMap<(StackOrigin, Vec<usize>), WholeStack> = HashMap::new();
    stacks
        .iter()
        .map(|pending| {
            let pending = pending.as_ref()?;
            if let PendingStack::Resolved(stack) = pending {
                return Some((stack.clone(), Arc::default()));
            }
            let key = (pending.origin(), pending.addresses());
            if let Some(resolved) = by_addresses.get(&key) {
                return Some(resolved.clone());
            }
            let mut frames = Vec::new();
            for (index, &ip) in key.1.iter().enumerate() {
                // Return addresses point after the call; look up the call itself, except for the
                // innermost frame of a live stack, which is where the thread was interrupted.
                let lookup = if index == 0 && key.0 == StackOrigin::Live {
                    ip
                } else {
                    ip.saturating_sub(1)
                };
                let resolved = symbols
                    .entry(ip)
                    .or_insert_with(|| Arc::new(symbolise(lookup)));
                frames.extend(resolved.iter().cloned());
            }
            let resolved = (trim(key.0, frames.clone()), Arc::new(frames));
            by_addresses.insert(key, resolved.clone());
            Some(resolved)
        })
        .collect()
}

/// The frames at one address, inlined ones first.
fn symbolise(ip: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        let function = symbol
            .name()
            .map(|name| format!("{name:#}"))
            .unwrap_or_else(|| format!("{ip:#x}"));
        frames.push(Frame {
            function,
            file: symbol.filename().map(relative_to_working_directory),
            line: symbol.lineno(),
        });
    });
    if frames.is_empty() {
        frames.push(Frame {
            function: format!("{ip:#x}"),
            file: None,
            line: None,
        });
    }
    frames
}

/// Debug info names files by absolute path; spawn sites (from `#[track_caller]`) are relative to
/// the package. Stacks read the same way as long as the process runs where cargo runs it.
pub(crate) fn relative_to_working_directory(path: &std::path::Path) -> String {
    static WORKING_DIRECTORY: std::sync::OnceLock<Option<std::path::PathBuf>> =
        std::sync::OnceLock::new();
    let base = WORKING_DIRECTORY.get_or_init(|| std::env::current_dir().ok());
    let shown = base
        .as_deref()
        .and_then(|base| path.strip_prefix(base).ok())
        .unwrap_or(path);
    shown.display().to_string()
}

/// Function prefixes that are not the user's code.
const INTERNAL_PREFIXES: &[&str] = &[
    "leakcheck::",
    "<leakcheck::",
    "std::",
    "<std::",
    "core::",
    "<core::",
    "alloc::",
    "<alloc::",
    "backtrace::",
    "<backtrace::",
    "parking_lot",
    "<parking_lot",
    "tokio::runtime::",
    "<tokio::runtime::",
    "tokio::task::",
    "<tokio::task::",
    "tokio::loom::",
    "tokio::park::",
    "<tokio::park::",
    "test::",
    "<test::",
    "libtest_mimic::",
    "__rust",
    "rust_begin_unwind",
    "_start",
    "__libc",
    "__GI_",
    "__pthread",
    "pthread_",
    "start_thread",
    "clone",
    "__clone",
    "syscall",
    "futex",
    "__futex",
    "main",
];

fn is_internal(frame: &Frame) -> bool {
    let function = frame.function.as_str();
    function.starts_with("0x")
        // A C library's function (`epoll_wait`, `__futex_abstimed_wait_common`): no Rust path,
        // and no source file in the debug info we have.
        || (!function.contains("::") && frame.file.is_none())
        || INTERNAL_PREFIXES
            .iter()
            .any(|prefix| function.starts_with(prefix))
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
