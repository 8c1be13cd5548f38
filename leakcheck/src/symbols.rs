//! Symbolisation of instruction pointers: the functions, files and lines at an address, each
//! address resolved once per report.
//!
//! A stack holds return addresses, which point just after a call: the call itself, and so the
//! right function and line, is at `ip - 1`. Only the innermost frame of a live stack is the
//! address where the thread was interrupted, looked up as it is. The cache is keyed by the
//! address actually looked up, so the two never mix. (`backtrace::resolve` subtracts one itself,
//! so the resolver hands it the instruction plus one.)

mod paths;

use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use paths::short_path;

/// One function at an address (several, innermost first, when calls were inlined there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Symbol {
    /// Demangled, without its hash; the address itself (`0x…`) when nothing is known.
    pub(crate) function: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    /// What debug info says of the column, if anything (spawn sites read from stacks use it).
    pub(crate) column: Option<u32>,
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

/// The functions at the instruction `ip`: from debug info, but in the C runtime's objects
/// (whose frames reports hide) from the loader's symbol tables, which costs no debug info load.
fn resolve_with_debug_info(ip: usize) -> Vec<Symbol> {
    if let Some(function) = crate::os::c_runtime_function(ip) {
        return vec![Symbol {
            function,
            file: None,
            line: None,
            column: None,
        }];
    }
    let mut symbols = Vec::new();
    // `backtrace::resolve` takes a return address and looks up the byte before it; `ip` is
    // already the instruction to look up, so it is handed over as the address just after it.
    let as_return_address = ip.saturating_add(1);
    backtrace::resolve(as_return_address as *mut std::ffi::c_void, |symbol| {
        symbols.push(Symbol {
            function: symbol
                .name()
                .map(|name| format!("{name:#}"))
                .unwrap_or_else(|| format!("{ip:#x}")),
            file: symbol
                .filename()
                .map(|path| short_path(&path.to_string_lossy()).into_owned()),
            line: symbol.lineno(),
            column: symbol.colno(),
        });
    });
    if symbols.is_empty() {
        symbols.push(Symbol {
            function: format!("{ip:#x}"),
            file: None,
            line: None,
            column: None,
        });
    }
    symbols
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named_after_the_address(ip: usize) -> Vec<Symbol> {
        vec![Symbol {
            function: format!("at {ip}"),
            file: None,
            line: None,
            column: None,
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

    #[inline(never)]
    fn a_function_to_find() -> u32 {
        std::hint::black_box(7)
    }

    /// The first instruction of a function belongs to it, not to whatever precedes it: the
    /// debug-info resolver must not move the address a second time.
    #[test]
    #[cfg_attr(miri, ignore = "reads the binary's debug info")]
    fn an_interrupted_address_resolves_to_the_function_it_is_in() {
        assert_eq!(a_function_to_find(), 7);
        let start = a_function_to_find as fn() -> u32 as usize;
        let symbols = SymbolCache::new().symbols(Address::Interrupted(start));
        assert!(
            symbols[0].function.ends_with("a_function_to_find"),
            "{symbols:?}"
        );
    }
}
