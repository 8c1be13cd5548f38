//! Stacks in reports: how they were obtained, and their frames (trimmed by `trim.rs`).

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

/// A task's stack, innermost frame first, trimmed to the frames that tell the story (see
/// `trim.rs` for the rule; `LEAKCHECK_BACKTRACE=full` keeps every frame).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stack {
    pub(crate) origin: StackOrigin,
    pub(crate) frames: Vec<Frame>,
    /// The runs of frames hidden, each where it was.
    #[serde(rename = "hidden")]
    pub(crate) elided: Vec<Elided>,
}

/// A run of frames a report hides, counted in place: `… 12 frames of std, tokio hidden`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct Elided {
    /// The index in [`Stack::frames`] of the first frame shown after the run.
    pub(crate) before: usize,
    pub(crate) count: usize,
    /// The crates the hidden frames belong to (`std`, `tokio`, `libc`), in order of appearance.
    pub(crate) crates: Vec<String>,
}

impl Stack {
    /// `frames` (innermost first), trimmed unless `full`.
    pub(crate) fn trimmed(origin: StackOrigin, frames: Vec<Frame>, full: bool) -> Stack {
        let trimmed = super::trim::trim(frames, full);
        Stack {
            origin,
            frames: trimmed.frames,
            elided: trimmed.elided,
        }
    }

    /// How the stack was obtained.
    pub fn origin(&self) -> StackOrigin {
        self.origin
    }
    /// The frames a report shows, innermost first: the user's and other crates', without std's,
    /// the runtime's, leakcheck's and the C library's (all of them with `LEAKCHECK_BACKTRACE=full`).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
    /// How many frames were hidden from [`frames`](Self::frames).
    pub fn hidden_frames(&self) -> usize {
        self.elided.iter().map(|run| run.count).sum()
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
    let mut symbols = SymbolCache::new();
    let mut by_addresses: HashMap<(StackOrigin, Vec<usize>), WholeStack> = HashMap::new();
    let full = crate::config::get().full_stacks;
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
            let resolved = (
                Stack::trimmed(key.0, frames.clone(), full),
                Arc::new(frames),
            );
            by_addresses.insert(key, resolved.clone());
            Some(resolved)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // Reads debug info from the executable.
    fn resolves_this_very_stack() {
        let here = Arc::new(backtrace::Backtrace::new_unresolved());
        let stacks = resolve_stacks(&[
            Some(PendingStack::Backtrace(StackOrigin::AtSpawn, here)),
            None,
        ]);
        let stack = stacks[0].as_ref().unwrap();
        // This test is leakcheck's own code under test: shown; the harness's frames are not.
        assert!(
            stack.contains_function("resolves_this_very_stack"),
            "{stack:?}"
        );
        assert!(stack.hidden_frames() > 0, "{stack:?}");
        assert!(stacks[1].is_none());
    }
}
