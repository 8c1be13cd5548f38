//! Symbolisation of instruction pointers: the functions, files and lines at an address, each
//! address resolved once per report.
//!
//! A stack holds return addresses, which point just after a call: the call itself, and so the
//! right function and line, is at `ip - 1` (as the `backtrace` crate resolves them). Only the
//! innermost frame of a live stack is the address where the thread was interrupted, looked up
//! as it is. The cache is keyed by the address actually looked up, so the two never mix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One function at an address (several, innermost first, when calls were inlined there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Symbol {
    /// Demangled, without its hash; the address itself (`0x…`) when nothing is known.
    pub(crate) function: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

/// What an address in a stack is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// Where a thread was interrupted: the instruction itself.
    Interrupted(usize),
    /// Where a call returns to: the call is the instruction before.
    Return(usize),
}

impl Address {
    /// The address to look up.
    fn lookup(self) -> usize {
        match self {
            Address::Interrupted(ip) => ip,
            Address::Return(ip) => ip.saturating_sub(1),
        }
    }
}

/// Resolves addresses, each distinct one once.
pub(crate) struct SymbolCache {
    resolve: fn(usize) -> Vec<Symbol>,
    resolved: HashMap<usize, Arc<[Symbol]>>,
}

impl SymbolCache {
    /// A cache that resolves with the program's debug info.
    pub(crate) fn new() -> SymbolCache {
        SymbolCache::with_resolver(resolve_with_debug_info)
    }

    fn with_resolver(resolve: fn(usize) -> Vec<Symbol>) -> SymbolCache {
        SymbolCache {
            resolve,
            resolved: HashMap::new(),
        }
    }

    /// The functions at `address`, innermost (inlined) first; never empty.
    pub(crate) fn symbols(&mut self, address: Address) -> Arc<[Symbol]> {
        let lookup = address.lookup();
        let resolve = self.resolve;
        Arc::clone(
            self.resolved
                .entry(lookup)
                .or_insert_with(|| resolve(lookup).into()),
        )
    }
}

fn resolve_with_debug_info(ip: usize) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        symbols.push(Symbol {
            function: symbol
                .name()
                .map(|name| format!("{name:#}"))
                .unwrap_or_else(|| format!("{ip:#x}")),
            file: symbol.filename().map(relative_to_working_directory),
            line: symbol.lineno(),
        });
    });
    if symbols.is_empty() {
        symbols.push(Symbol {
            function: format!("{ip:#x}"),
            file: None,
            line: None,
        });
    }
    symbols
}

/// Debug info names files by absolute path; spawn sites (from `#[track_caller]`) are relative to
/// the package. Stacks read the same way as long as the process runs where cargo runs it.
fn relative_to_working_directory(path: &Path) -> String {
    static WORKING_DIRECTORY: OnceLock<Option<PathBuf>> = OnceLock::new();
    let base = WORKING_DIRECTORY.get_or_init(|| std::env::current_dir().ok());
    let shown = base
        .as_deref()
        .and_then(|base| path.strip_prefix(base).ok())
        .unwrap_or(path);
    shown.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named_after_the_address(ip: usize) -> Vec<Symbol> {
        vec![Symbol {
            function: format!("at {ip}"),
            file: None,
            line: None,
        }]
    }

    #[test]
    fn return_addresses_are_looked_up_one_before_and_cached_apart() {
        let mut cache = SymbolCache::with_resolver(named_after_the_address);
        assert_eq!(cache.symbols(Address::Return(100))[0].function, "at 99");
        // The same number as an interrupted address is another instruction.
        assert_eq!(
            cache.symbols(Address::Interrupted(100))[0].function,
            "at 100"
        );
        assert_eq!(cache.symbols(Address::Return(100))[0].function, "at 99");
        assert_eq!(cache.symbols(Address::Return(0))[0].function, "at 0");
    }
}
