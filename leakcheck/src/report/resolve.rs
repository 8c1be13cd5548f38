//! Symbolisation of the stacks a report shows: addresses to frames, each distinct address once,
//! then trimmed by one rule (`trim.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use super::stack::{Frame, Stack, StackOrigin};
use super::trim::trim;
use crate::symbols::{Address, SymbolCache};

/// `frames` (innermost first) as a report's stack, trimmed unless `full`.
fn trimmed(origin: StackOrigin, frames: Vec<Frame>, full: bool) -> Stack {
    let trimmed = trim(frames, full);
    Stack {
        origin,
        frames: trimmed.frames,
        elided: trimmed.elided,
    }
}

/// A stack that still has to be symbolised.
#[derive(Clone)]
pub(crate) enum PendingStack {
    /// An unresolved backtrace recorded earlier.
    Backtrace(StackOrigin, Arc<backtrace::Backtrace>),
    /// Instruction pointers, innermost first (a live stack).
    Addresses(StackOrigin, Arc<[usize]>),
}

impl PendingStack {
    fn addresses(&self) -> Vec<usize> {
        match self {
            PendingStack::Backtrace(_, bt) => bt.frames().iter().map(|f| f.ip() as usize).collect(),
            PendingStack::Addresses(_, ips) => ips.to_vec(),
        }
    }

    fn origin(&self) -> StackOrigin {
        match self {
            PendingStack::Backtrace(origin, _) | PendingStack::Addresses(origin, _) => *origin,
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

/// Like [`resolve_stacks`], with each stack's untrimmed frames as well, for what only library
/// frames tell: what a thread, or a pending task, waits on.
pub(crate) fn resolve_stacks_whole(stacks: &[Option<PendingStack>]) -> Vec<Option<WholeStack>> {
    let mut symbols = SymbolCache::new();
    let mut by_addresses: HashMap<(StackOrigin, Vec<usize>), WholeStack> = HashMap::new();
    let full = crate::config::get().full_stacks;
    stacks
        .iter()
        .map(|pending| {
            let pending = pending.as_ref()?;
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
            let resolved = (trimmed(key.0, frames.clone(), full), Arc::new(frames));
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
