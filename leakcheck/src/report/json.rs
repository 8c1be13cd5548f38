//! The machine-readable report, and its files in `LEAKCHECK_REPORT_DIR`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serializer;

use super::LeakReport;

pub(super) fn seconds<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

pub(super) fn optional_seconds<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => seconds(duration, serializer),
        None => serializer.serialize_none(),
    }
}

impl LeakReport {
    /// Writes the report as JSON into `dir`, in a file named after what was checked, and
    /// returns its path. The name is unique within the process, so parallel failing tests and
    /// several checks in one test never overwrite each other.
    pub(crate) fn write_json_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(dir)?;
        let slug: String = self
            .checked
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let slug = slug.trim_matches('_').replace("__", "_");
        let name = format!(
            "leakcheck-{slug}-{}-{}.json",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        std::fs::write(&path, self.to_json())?;
        Ok(path)
    }
}
