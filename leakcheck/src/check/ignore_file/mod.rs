//! The project's ignore file, `leakcheck.toml`: the background threads and tasks a project keeps
//! on purpose, declared once instead of in every test (SPEC §6).
//!
//! ```toml
//! [[ignore]]
//! name = "metrics-exporter"        # one or more of: name, spawned_at, function
//! reason = "exports metrics for the whole process, by design"
//! ```
//!
//! The file is looked for next to the package's `Cargo.toml` (`CARGO_MANIFEST_DIR` when cargo runs
//! the test, else the current directory) and then in each directory above it, up to the root of
//! the workspace; the nearest one wins. It is read once per process. A rule forgives a survivor
//! when **every** pattern it gives matches (`name` and `spawned_at` together mean "this thread,
//! spawned there"); the patterns are those of [`Options`](crate::Options). Each rule counts what
//! it hid, so that reports can say which rule hid what and why, and so that a rule that never hid
//! anything can be warned about.
//!
//! A malformed file is never ignored: every check fails with an error that names the file, the
//! line and what was expected.

mod locate;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::options::Options;

/// The name of the project's ignore file.
pub(crate) const FILE_NAME: &str = "leakcheck.toml";

/// A parsed `leakcheck.toml`.
#[derive(Debug)]
pub(crate) struct IgnoreFile {
    /// Where it was read from, as found (used in notes and warnings).
    pub(crate) path: PathBuf,
    /// The rules, in the order of the file.
    pub(crate) rules: Vec<ProjectRule>,
}

/// One `[[ignore]]` table.
#[derive(Debug)]
pub(crate) struct ProjectRule {
    /// The line of the rule's `[[ignore]]` header, from 1.
    pub(crate) line: u32,
    /// A task name or glob, as [`Options::ignore_name`](crate::Options::ignore_name).
    pub(crate) name: Option<String>,
    /// A spawn site, as [`Options::ignore_spawned_at`](crate::Options::ignore_spawned_at).
    pub(crate) spawned_at: Option<String>,
    /// A function in the stack, as [`Options::ignore_function`](crate::Options::ignore_function).
    pub(crate) function: Option<String>,
    /// Why the project keeps what the rule hides.
    pub(crate) reason: String,
    /// How many survivors the rule hid in this process.
    hits: AtomicUsize,
    /// One [`Options`] per pattern: the rule hides a task that each of them ignores.
    matchers: Vec<Options>,
}

impl ProjectRule {
    /// The rule declared at `line` with these patterns (at least one) and `reason`.
    pub(super) fn new(
        line: u32,
        name: Option<String>,
        spawned_at: Option<String>,
        function: Option<String>,
        reason: String,
    ) -> ProjectRule {
        ProjectRule {
            line,
            matchers: matchers(name.as_deref(), spawned_at.as_deref(), function.as_deref()),
            name,
            spawned_at,
            function,
            reason,
            hits: AtomicUsize::new(0),
        }
    }

    /// The rule's patterns, as `key = "value"` pairs in the file's words.
    pub(crate) fn patterns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("name", self.name.as_deref()),
            ("spawned_at", self.spawned_at.as_deref()),
            ("function", self.function.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
    }

    /// `name = "metrics-exporter", spawned_at = "src/metrics.rs"`: what the rule matches.
    pub(crate) fn describe(&self) -> String {
        self.patterns()
            .map(|(key, value)| format!("{key} = {value:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Counts `count` survivors hidden by this rule.
    pub(crate) fn record_hits(&self, count: usize) {
        self.hits.fetch_add(count, Ordering::Relaxed);
    }

    /// Whether the rule hid anything in this process so far.
    pub(crate) fn was_used(&self) -> bool {
        self.hits.load(Ordering::Relaxed) > 0
    }

    /// Whether the rule hides a task that `ignores` says each of its patterns (as an
    /// [`Options`] of its own) ignores.
    pub(crate) fn hides(&self, ignores: impl FnMut(&Options) -> bool) -> bool {
        self.matchers.iter().all(ignores)
    }

    /// Whether the rule looks at stacks, whose verdict can change as a task runs.
    pub(crate) fn looks_at_stacks(&self) -> bool {
        self.function.is_some()
    }
}

/// The rule's patterns as `Options`, one each.
fn matchers(name: Option<&str>, spawned_at: Option<&str>, function: Option<&str>) -> Vec<Options> {
    let mut matchers = Vec::new();
    if let Some(name) = name {
        matchers.push(Options::new().ignore_name(name));
    }
    if let Some(site) = spawned_at {
        matchers.push(Options::new().ignore_spawned_at(site));
    }
    if let Some(function) = function {
        matchers.push(Options::new().ignore_function(function));
    }
    matchers
}

impl IgnoreFile {
    /// `leakcheck.toml:7`: where a rule is, for notes and warnings.
    pub(crate) fn rule_location(&self, rule: &ProjectRule) -> String {
        format!("{}:{}", self.path.display(), rule.line)
    }

    /// The report's note for `count` survivors hidden by the rule at `index`.
    pub(crate) fn hidden_note(&self, index: usize, count: usize) -> String {
        let rule = &self.rules[index];
        let tasks = if count == 1 { "task" } else { "tasks" };
        format!(
            "{count} {tasks} hidden by the project's ignore file, rule {} at {}: {}",
            rule.describe(),
            self.rule_location(rule),
            rule.reason
        )
    }

    /// One warning line per rule that hid nothing in this process, for the end of a run.
    pub(crate) fn unused_rule_warnings(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|rule| !rule.was_used())
            .map(|rule| {
                format!(
                    "leakcheck: warning: the rule at {} ({}) hid nothing in the tests this process ran; \
                     remove it if what it describes is gone (reason given: {})",
                    self.rule_location(rule),
                    rule.describe(),
                    rule.reason
                )
            })
            .collect()
    }
}

/// A `leakcheck.toml` that could not be used: where, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IgnoreFileError {
    pub(crate) path: PathBuf,
    /// From 1; `None` when the file could not be read at all.
    pub(crate) line: Option<u32>,
    pub(crate) message: String,
}

impl fmt::Display for IgnoreFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Reads and parses the ignore file found from `start`; `Ok(None)` when there is none.
pub(crate) fn load_from(start: &Path) -> Result<Option<IgnoreFile>, IgnoreFileError> {
    let Some(path) = locate::locate(start) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|error| IgnoreFileError {
        path: path.clone(),
        line: None,
        message: format!("cannot be read: {error}"),
    })?;
    parse::parse(&path, &text).map(Some)
}

/// The directory the search starts from: the package's, as cargo tells the test binary it runs,
/// else the current directory.
fn search_start() -> Option<PathBuf> {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
}

static PROJECT: OnceLock<Result<Option<IgnoreFile>, IgnoreFileError>> = OnceLock::new();

/// The project's ignore file, read the first time a check needs it.
///
/// When it has rules, the rules that hid nothing are warned about on stderr when the process
/// exits: only then is it known that no check of this process needed them. The warning says
/// "the tests this process ran": another test binary of the package, or a test a filter left
/// out, may need the rule. Under nextest (a process per test) it is not given at all.
pub(crate) fn project() -> Result<Option<&'static IgnoreFile>, &'static IgnoreFileError> {
    PROJECT
        .get_or_init(|| {
            let loaded = match search_start() {
                Some(start) => load_from(&start),
                None => Ok(None),
            };
            if matches!(&loaded, Ok(Some(file)) if !file.rules.is_empty())
                && runs_a_whole_binary(std::env::var_os("NEXTEST_RUN_ID"))
            {
                warn_about_unused_rules_at_exit();
            }
            loaded
        })
        .as_ref()
        .map(Option::as_ref)
}

/// Whether this process runs more than one test's checks, so that a rule none of them needed is
/// worth a warning: not under nextest, where every test has a process of its own and each would
/// warn about every rule the others need.
fn runs_a_whole_binary(nextest: Option<std::ffi::OsString>) -> bool {
    nextest.is_none()
}

fn warn_about_unused_rules_at_exit() {
    extern "C" fn warn() {
        use std::io::Write;
        let Some(Ok(Some(file))) = PROJECT.get() else {
            return;
        };
        // Never panic here (it would abort the exiting process): errors writing are ignored.
        let mut stderr = std::io::stderr().lock();
        for warning in file.unused_rule_warnings() {
            let _ = writeln!(stderr, "{warning}");
        }
    }
    // The C runtime's `atexit`, on every platform std supports; declared here, as `libc` is a
    // dependency on Linux only.
    extern "C" {
        fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    }
    // SAFETY: `warn` is an `extern "C" fn()` that neither unwinds nor exits, as `atexit` needs;
    // it only reads a static that is initialised before it is registered and never freed.
    unsafe {
        atexit(warn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nextests_process_per_test_gives_no_unused_rule_warnings() {
        assert!(runs_a_whole_binary(None));
        assert!(!runs_a_whole_binary(Some("run-1".into())));
    }

    #[test]
    fn unused_rules_are_warned_about_and_used_ones_are_not() {
        let file = parse::parse(
            Path::new("fixture/leakcheck.toml"),
            "[[ignore]]\nname = \"a\"\nreason = \"ra\"\n[[ignore]]\nname = \"b\"\nreason = \"rb\"\n",
        )
        .unwrap();
        file.rules[0].record_hits(2);
        let warnings = file.unused_rule_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("leakcheck.toml:4"), "{warnings:?}");
        assert!(warnings[0].contains(r#"name = "b""#), "{warnings:?}");
        assert!(warnings[0].contains("rb"), "{warnings:?}");
    }
}
