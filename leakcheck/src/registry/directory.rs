//! The scopes that are open, for process-wide checks: the only global table of the registry,
//! touched when a scope opens and when a process-wide check looks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::record::TaskRecord;
use super::scope::{Scope, ScopeLabel};

/// A scope of task records, as the rest of the crate knows it.
pub(crate) type TaskScope = Scope<TaskRecord>;

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// Every scope opened, weakly: a scope closes when its last task and its last user are gone.
/// Closed entries are pruned as scopes open, so the table stays in proportion to the open ones.
struct Directory {
    scopes: HashMap<u64, Weak<TaskScope>>,
    /// How many entries the table may hold before it is pruned again.
    prune_at: usize,
}

static DIRECTORY: Mutex<Option<Directory>> = Mutex::new(None);

/// Opens a new, empty scope labelled `label`.
pub(crate) fn open_scope(label: ScopeLabel) -> Arc<TaskScope> {
    let scope = Arc::new(Scope::new(
        NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed),
        label,
    ));
    let mut directory = DIRECTORY.lock();
    let directory = directory.get_or_insert_with(|| Directory {
        scopes: HashMap::new(),
        prune_at: 64,
    });
    if directory.scopes.len() >= directory.prune_at {
        directory.scopes.retain(|_, scope| scope.strong_count() > 0);
        directory.prune_at = (directory.scopes.len() * 2).max(64);
        directory.scopes.shrink_to(directory.prune_at);
    }
    directory.scopes.insert(scope.id, Arc::downgrade(&scope));
    scope
}

/// Every open scope, in the order they were opened.
pub(crate) fn all_scopes() -> Vec<Arc<TaskScope>> {
    let mut scopes: Vec<Arc<TaskScope>> = DIRECTORY
        .lock()
        .as_ref()
        .map(|directory| {
            directory
                .scopes
                .values()
                .filter_map(Weak::upgrade)
                .collect()
        })
        .unwrap_or_default();
    scopes.sort_unstable_by_key(|s| s.id);
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_scopes_are_listed_and_closed_ones_are_not() {
        let open = open_scope(ScopeLabel::Named("open".into()));
        let closed = open_scope(ScopeLabel::Named("closed".into()));
        let closed_id = closed.id;
        drop(closed);
        let ids: Vec<u64> = all_scopes().iter().map(|s| s.id).collect();
        assert!(ids.contains(&open.id));
        assert!(!ids.contains(&closed_id));
    }

    #[test]
    fn closed_scopes_are_pruned() {
        for i in 0..200 {
            drop(open_scope(ScopeLabel::Named(format!("s{i}"))));
        }
        let directory = DIRECTORY.lock();
        let entries = directory.as_ref().unwrap().scopes.len();
        assert!(
            entries < 200,
            "{entries} entries kept for 200 closed scopes"
        );
    }
}
