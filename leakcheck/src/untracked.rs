//! OS threads leakcheck did not spawn: found by comparing the process's thread list with a
//! baseline. (Owned by the untracked-threads work.)

use crate::options::Options;
use crate::report::LeakedTask;

/// Watches for OS threads that appear while a check's scope runs.
pub(crate) struct UntrackedWatch {}

impl UntrackedWatch {
    /// Takes the baseline a later check compares against, if this check looks at untracked threads.
    pub(crate) fn start(_options: &Options) -> UntrackedWatch {
        UntrackedWatch {}
    }

    /// Untracked threads alive now that were not in the baseline.
    pub(crate) fn survivors(&self) -> Vec<LeakedTask> {
        Vec::new()
    }

    /// What the report must say about untracked threads (for example that they were left to the
    /// global check).
    pub(crate) fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
