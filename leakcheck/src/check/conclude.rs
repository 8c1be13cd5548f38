//! The end of a check: the report of what is left, and what the `LEAKCHECK` mode makes of it.

use std::time::Duration;

use super::snapshot;
use super::wait::{Check, ReportExtras};
use crate::config::{self, Mode};
use crate::plain_threads;
use crate::registry::{Shared, TaskRecord};
use crate::report::LeakReport;
use crate::vocab::TaskId;

impl Check {
    /// Builds the report of what is left, and applies the `LEAKCHECK` mode to it.
    pub(super) fn conclude(
        mut self,
        survivors: Vec<Shared<TaskRecord>>,
        waited: Duration,
        extras: ReportExtras,
    ) -> Result<(), LeakReport> {
        // The verdict is the deadline's: a survivor that ends while its report is being built
        // (symbolising stacks takes a while) was still alive when its time was up.
        let mut tasks = snapshot::leaked_tasks(&survivors, &self.live_stacks);
        tasks.extend(self.untracked_survivors());
        let mut notes = extras.notes;
        notes.extend(self.hidden_notes());
        if let Some(untracked) = &self.untracked {
            notes.extend(untracked.notes());
        }
        if self.options.process_wide {
            notes.extend(self.process_global_notes());
        }
        notes.extend(plain_threads::notes_on(&survivors));
        notes.push(plain_threads::tracking().describe());
        let mut left: Vec<TaskId> = survivors.iter().map(|t| t.id).collect();
        left.sort_unstable();
        self.seen.retain(|id| left.binary_search(id).is_err());
        let report = LeakReport {
            checked: if self.options.process_wide {
                "the process".to_owned()
            } else {
                self.scope.label.to_string()
            },
            waited: extras.waited_before + waited,
            exited_while_waiting: self.seen.len(),
            tasks,
            notes,
            unidentified_async: extras.unidentified_async,
            unusable: None,
        };
        if report.leak_count() == 0 {
            return Ok(());
        }
        if self.deferred {
            return Err(report);
        }
        deliver(report)
    }
}

/// Writes the JSON file if asked to, and turns the report into the check's result per `LEAKCHECK`.
pub(crate) fn deliver(report: LeakReport) -> Result<(), LeakReport> {
    let config = config::get();
    if let Some(dir) = &config.report_dir {
        if let Err(error) = report.write_json_to(dir) {
            eprintln!(
                "leakcheck: could not write the JSON report to LEAKCHECK_REPORT_DIR={}: {error}",
                dir.display()
            );
        }
    }
    match config.mode {
        Mode::Fail => Err(report),
        Mode::Warn => {
            eprintln!("{report}\n(LEAKCHECK=warn: not failing)");
            Ok(())
        }
        Mode::Off => Ok(()),
    }
}
