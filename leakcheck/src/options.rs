//! What a check looks at and what it forgives: the [`Options`] builder and its patterns.

use std::time::Duration;

use crate::os::ThreadBaseline;
use crate::patterns::path_ends_with;
use crate::registry;
use crate::vocab::TaskId;

/// How a check behaves: its grace period, what it ignores, which scope it looks at.
///
/// ```
/// use std::time::Duration;
/// use leakcheck::Options;
///
/// let options = Options::new()
///     .timeout(Duration::from_millis(500))
///     .ignore_name("metrics-*")
///     .ignore_spawned_at("src/pool.rs:42")
///     .ignore_function("my_crate::telemetry::flush_loop");
/// let guard = leakcheck::verify_none_with(options);
/// # drop(guard);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Options {
    pub(crate) timeout: Option<Duration>,
    pub(crate) ignores: Vec<Ignore>,
    /// With `ignore_current`: tasks with a smaller id were alive when the options were built.
    pub(crate) ignore_below: Option<TaskId>,
    /// With `ignore_current`: the OS threads alive when the options were built.
    pub(crate) ignore_threads: Option<ThreadBaseline>,
    pub(crate) process_wide: bool,
    pub(crate) capture_backtraces: bool,
}

impl Options {
    /// The defaults: a grace period of `LEAKCHECK_TIMEOUT` (1 s unless set), nothing ignored,
    /// the current scope only.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a check waits for survivors to finish before it reports them. The wait ends the
    /// moment the last one exits; it does not poll.
    pub fn timeout(mut self, grace: Duration) -> Self {
        self.timeout = Some(grace);
        self
    }

    /// Ignores tasks whose name matches `pattern`: the exact name, or a glob with `*`
    /// (`"metrics-*"`).
    pub fn ignore_name(mut self, pattern: &str) -> Self {
        self.ignores.push(Ignore::Name(pattern.to_owned()));
        self
    }

    /// Ignores tasks spawned at `pattern`: a file (`"src/pool.rs"`, matched as a path suffix), a
    /// line (`"src/pool.rs:42"`), a column (`"src/pool.rs:42:9"`), or a function path
    /// (`"my_crate::pool::Pool::new"`) that did the spawning.
    pub fn ignore_spawned_at(mut self, pattern: &str) -> Self {
        self.ignores
            .push(Ignore::SpawnedAt(SitePattern::parse(pattern)));
        self
    }

    /// Ignores tasks with `pattern` (a function path, as in `ignore_spawned_at`) in any frame of
    /// their stack, or as the function they run.
    pub fn ignore_function(mut self, pattern: &str) -> Self {
        self.ignores.push(Ignore::Function(pattern.to_owned()));
        self
    }

    /// Ignores every task (and OS thread) alive when this is called: those are somebody else's.
    pub fn ignore_current(mut self) -> Self {
        self.ignore_below = Some(registry::id_watermark());
        self.ignore_threads = Some(ThreadBaseline::take());
        self
    }

    /// Checks every scope of the process, not only the current one.
    pub fn process_wide(mut self) -> Self {
        self.process_wide = true;
        self
    }

    /// Records a backtrace for every task spawned in the checked scope from now on (and for
    /// every blocking call), as `LEAKCHECK_BACKTRACE=1` does for the whole process.
    pub fn capture_backtraces(mut self) -> Self {
        self.capture_backtraces = true;
        self
    }
}

impl Options {
    /// Whether a verdict may depend on a task's stack, which changes as the task runs.
    pub(crate) fn ignores_by_stack(&self) -> bool {
        self.ignores
            .iter()
            .any(|ignore| matches!(ignore, Ignore::Function(_)))
    }
}

/// One thing a check forgives.
#[derive(Clone, Debug)]
pub(crate) enum Ignore {
    Name(String),
    SpawnedAt(SitePattern),
    Function(String),
}

/// A spawn-site pattern: a source position or a function.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SitePattern {
    Source {
        file: String,
        line: Option<u32>,
        column: Option<u32>,
    },
    Function(String),
}

impl SitePattern {
    fn parse(pattern: &str) -> SitePattern {
        let pattern = pattern.trim();
        let mut parts = pattern.rsplitn(3, ':').collect::<Vec<_>>();
        parts.reverse();
        // "file", "file:line" or "file:line:column"; a "::" makes it a function path.
        if !pattern.contains("::") {
            let numbers: Vec<Option<u32>> = parts.iter().skip(1).map(|p| p.parse().ok()).collect();
            match (parts.as_slice(), numbers.as_slice()) {
                ([file, _], [Some(line)]) => {
                    return SitePattern::Source {
                        file: file.to_string(),
                        line: Some(*line),
                        column: None,
                    }
                }
                ([file, _, _], [Some(line), Some(column)]) => {
                    return SitePattern::Source {
                        file: file.to_string(),
                        line: Some(*line),
                        column: Some(*column),
                    }
                }
                _ => {}
            }
            if pattern.ends_with(".rs") || pattern.contains('/') || pattern.contains('\\') {
                return SitePattern::Source {
                    file: pattern.to_owned(),
                    line: None,
                    column: None,
                };
            }
        }
        SitePattern::Function(pattern.to_owned())
    }

    pub(crate) fn matches_site(&self, file: &str, line: u32, column: u32) -> bool {
        match self {
            SitePattern::Source {
                file: wanted,
                line: wanted_line,
                column: wanted_column,
            } => {
                path_ends_with(file, wanted)
                    && wanted_line.is_none_or(|l| l == line)
                    && wanted_column.is_none_or(|c| c == column)
            }
            SitePattern::Function(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_patterns_parse_files_lines_columns_and_functions() {
        assert_eq!(
            SitePattern::parse("src/pool.rs"),
            SitePattern::Source {
                file: "src/pool.rs".into(),
                line: None,
                column: None
            }
        );
        assert_eq!(
            SitePattern::parse("src/pool.rs:42"),
            SitePattern::Source {
                file: "src/pool.rs".into(),
                line: Some(42),
                column: None
            }
        );
        assert_eq!(
            SitePattern::parse("src/pool.rs:42:9"),
            SitePattern::Source {
                file: "src/pool.rs".into(),
                line: Some(42),
                column: Some(9)
            }
        );
        assert_eq!(
            SitePattern::parse("pool::Pool::new"),
            SitePattern::Function("pool::Pool::new".into())
        );
    }

    #[test]
    fn site_patterns_match_path_suffixes_on_component_boundaries() {
        let file = SitePattern::parse("src/pool.rs");
        assert!(file.matches_site("/home/me/app/src/pool.rs", 1, 1));
        assert!(file.matches_site("src/pool.rs", 1, 1));
        assert!(!file.matches_site("src/mempool.rs", 1, 1));
        let line = SitePattern::parse("tests/pool.rs:18");
        assert!(line.matches_site("tests/pool.rs", 18, 9));
        assert!(!line.matches_site("tests/pool.rs", 19, 9));
        let column = SitePattern::parse("tests/pool.rs:18:9");
        assert!(column.matches_site("tests/pool.rs", 18, 9));
        assert!(!column.matches_site("tests/pool.rs", 18, 10));
    }
}
