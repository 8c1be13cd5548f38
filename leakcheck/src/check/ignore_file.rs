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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::options::Options;

/// The name of the project's ignore file.
pub(crate) const FILE_NAME: &str = "leakcheck.toml";

/// The keys of an `[[ignore]]` table, as error messages list them.
const RULE_KEYS: &str = "`name`, `spawned_at`, `function`, `reason`";

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
                    "leakcheck: warning: the rule at {} ({}) hid nothing in this test process; \
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

/// The file as serde reads it; spans give every rule its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ignore: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<toml::Spanned<String>>,
    spawned_at: Option<toml::Spanned<String>>,
    function: Option<toml::Spanned<String>>,
    reason: toml::Spanned<String>,
}

/// Parses the text of the ignore file found at `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<IgnoreFile, IgnoreFileError> {
    let error = |offset: Option<usize>, message: String| IgnoreFileError {
        path: path.to_owned(),
        line: offset.map(|offset| line_of(text, offset)),
        message,
    };
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| error(e.span().map(|span| span.start), explain(e.message())))?;
    // serde's span of a table in an array of tables is not the table's own; its header's line
    // is. (With `ignore = [{ .. }]` written inline there are no headers: the span is used.)
    let headers = rule_header_lines(text);
    let count = raw.ignore.len();
    let line_of_rule = |index: usize, span_start: usize| match headers.get(index) {
        Some(&line) if headers.len() == count => line,
        _ => line_of(text, span_start),
    };
    let rule_error = |line: u32, message: &str| IgnoreFileError {
        path: path.to_owned(),
        line: Some(line),
        message: message.to_owned(),
    };
    let mut rules = Vec::with_capacity(count);
    for (index, spanned) in raw.ignore.into_iter().enumerate() {
        let line = line_of_rule(index, spanned.span().start);
        let rule = spanned.into_inner();
        if rule.name.is_none() && rule.spawned_at.is_none() && rule.function.is_none() {
            return Err(rule_error(
                line,
                "an [[ignore]] rule needs at least one of `name`, `spawned_at`, `function`",
            ));
        }
        for pattern in [&rule.name, &rule.spawned_at, &rule.function]
            .into_iter()
            .flatten()
        {
            if pattern.get_ref().trim().is_empty() {
                return Err(error(
                    Some(pattern.span().start),
                    "a pattern must not be empty: it would match nothing".to_owned(),
                ));
            }
        }
        if let Some(site) = &rule.spawned_at {
            if let Err(message) = check_site_pattern(site.get_ref()) {
                return Err(error(Some(site.span().start), message));
            }
        }
        if rule.reason.get_ref().trim().is_empty() {
            return Err(error(
                Some(rule.reason.span().start),
                "`reason` must say why the project keeps what the rule hides".to_owned(),
            ));
        }
        let name = rule.name.map(toml::Spanned::into_inner);
        let spawned_at = rule.spawned_at.map(toml::Spanned::into_inner);
        let function = rule.function.map(toml::Spanned::into_inner);
        rules.push(ProjectRule {
            line,
            matchers: matchers(name.as_deref(), spawned_at.as_deref(), function.as_deref()),
            name,
            spawned_at,
            function,
            reason: rule.reason.into_inner(),
            hits: AtomicUsize::new(0),
        });
    }
    Ok(IgnoreFile {
        path: path.to_owned(),
        rules,
    })
}

/// Rewords serde's messages in the file's terms, and says what is expected.
fn explain(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let key = rest.split(',').next().unwrap_or(rest);
        if rest.contains("`ignore`") && !rest.contains("`reason`") {
            return format!("unknown key {key}; expected `[[ignore]]` tables");
        }
        return format!("unknown key {key} in an [[ignore]] rule; expected {RULE_KEYS}");
    }
    if message == "missing field `reason`" {
        return "this [[ignore]] rule has no `reason`: say why the project keeps what it hides \
                (`reason = \"...\"`)"
            .to_owned();
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return format!("wrong type: {rest}");
    }
    message.to_owned()
}

/// `src/x.rs:abc` is a typo, not a function path: only `file`, `file:line`, `file:line:column`
/// or a path with `::` are patterns that can match.
fn check_site_pattern(pattern: &str) -> Result<(), String> {
    let pattern = pattern.trim();
    if pattern.contains("::") || !pattern.contains(':') {
        return Ok(());
    }
    let mut parts = pattern.split(':');
    let _file = parts.next();
    let numbers: Vec<&str> = parts.collect();
    if numbers.len() <= 2
        && numbers
            .iter()
            .all(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
    {
        return Ok(());
    }
    Err(format!(
        "`spawned_at = {pattern:?}` is not a spawn site; expected `file`, `file:line`, \
         `file:line:column` (lines and columns are numbers from 1) or a function path"
    ))
}

/// The lines (from 1) of the `[[ignore]]` headers, in order.
fn rule_header_lines(text: &str) -> Vec<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split('#').next().unwrap_or("");
            let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            compact == "[[ignore]]"
        })
        .map(|(index, _)| index as u32 + 1)
        .collect()
}

/// The line (from 1) of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> u32 {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
        + 1
}

/// The nearest ignore file from `start` up to the workspace root, if there is one.
///
/// The search stops at the first directory above `start` (or `start` itself) whose `Cargo.toml`
/// declares `[workspace]`; without one, at `start`: an unrelated `leakcheck.toml` higher up (in a
/// home directory) never applies to a package that is not in its workspace.
pub(crate) fn locate(start: &Path) -> Option<PathBuf> {
    let root = start
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .unwrap_or(start);
    start
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Whether the manifest at `path` exists and has a `[workspace]` table.
fn declares_workspace(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    toml::from_str::<toml::Table>(&text).is_ok_and(|table| table.contains_key("workspace"))
}

/// Reads and parses the ignore file found from `start`; `Ok(None)` when there is none.
pub(crate) fn load_from(start: &Path) -> Result<Option<IgnoreFile>, IgnoreFileError> {
    let Some(path) = locate(start) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|error| IgnoreFileError {
        path: path.clone(),
        line: None,
        message: format!("cannot be read: {error}"),
    })?;
    parse(&path, &text).map(Some)
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
/// exits: only then is it known that no check of this test process needed them.
pub(crate) fn project() -> Result<Option<&'static IgnoreFile>, &'static IgnoreFileError> {
    PROJECT
        .get_or_init(|| {
            let loaded = match search_start() {
                Some(start) => load_from(&start),
                None => Ok(None),
            };
            if matches!(&loaded, Ok(Some(file)) if !file.rules.is_empty()) {
                warn_about_unused_rules_at_exit();
            }
            loaded
        })
        .as_ref()
        .map(Option::as_ref)
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

    fn parse_fixture(text: &str) -> Result<IgnoreFile, IgnoreFileError> {
        parse(Path::new("fixture/leakcheck.toml"), text)
    }

    #[track_caller]
    fn error_of(text: &str) -> IgnoreFileError {
        parse_fixture(text).expect_err("the fixture is malformed")
    }

    #[test]
    fn a_good_file_gives_its_rules_with_their_lines() {
        let file = parse_fixture(
            r#"# kept on purpose
[[ignore]]
name = "metrics-exporter"
reason = "exports metrics for the whole process"

[[ignore]]
spawned_at = "src/pool.rs:42"
function = "my_crate::pool::Pool::reaper"
reason = "the global pool's reaper"
"#,
        )
        .unwrap();
        assert_eq!(file.rules.len(), 2);
        let first = &file.rules[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.name.as_deref(), Some("metrics-exporter"));
        assert_eq!(first.reason, "exports metrics for the whole process");
        let second = &file.rules[1];
        assert_eq!(second.line, 6);
        assert_eq!(
            second.describe(),
            r#"spawned_at = "src/pool.rs:42", function = "my_crate::pool::Pool::reaper""#
        );
        assert_eq!(
            file.rule_location(second),
            format!("{}:6", Path::new("fixture/leakcheck.toml").display())
        );
    }

    #[test]
    fn an_empty_file_has_no_rules() {
        assert!(parse_fixture("").unwrap().rules.is_empty());
        assert!(parse_fixture("# nothing yet\n").unwrap().rules.is_empty());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_the_keys_expected() {
        let error = error_of(
            "[[ignore]]\nname = \"a\"\nreason = \"b\"\n\n[[ignore]]\nnmae = \"x\"\nreason = \"y\"\n",
        );
        assert_eq!(error.line, Some(6), "{error}");
        let text = error.to_string();
        assert!(text.starts_with("fixture"), "{text}");
        assert!(
            text.contains("leakcheck.toml:6: unknown key `nmae`"),
            "{text}"
        );
        assert!(text.contains("expected `name`, `spawned_at`"), "{text}");
    }

    #[test]
    fn an_unknown_top_level_key_is_named() {
        let error = error_of("[[ignores]]\nname = \"a\"\nreason = \"b\"\n");
        assert_eq!(error.line, Some(1), "{error}");
        assert!(error.message.contains("unknown key `ignores`"), "{error}");
        assert!(error.message.contains("[[ignore]]"), "{error}");
    }

    #[test]
    fn a_missing_reason_is_an_error_at_its_rule() {
        let error =
            error_of("[[ignore]]\nname = \"a\"\nreason = \"b\"\n[[ignore]]\nname = \"c\"\n");
        assert_eq!(error.line, Some(4), "{error}");
        assert!(error.message.contains("has no `reason`"), "{error}");
    }

    #[test]
    fn an_empty_reason_or_pattern_is_an_error() {
        let error = error_of("[[ignore]]\nname = \"a\"\nreason = \"  \"\n");
        assert_eq!(error.line, Some(3), "{error}");
        assert!(error.message.contains("`reason` must say why"), "{error}");
        let error = error_of("[[ignore]]\nname = \"\"\nreason = \"r\"\n");
        assert_eq!(error.line, Some(2), "{error}");
        assert!(error.message.contains("must not be empty"), "{error}");
    }

    #[test]
    fn a_rule_without_a_pattern_is_an_error() {
        let error = error_of("\n[[ignore]]\nreason = \"why\"\n");
        assert_eq!(error.line, Some(2), "{error}");
        assert!(
            error
                .message
                .contains("at least one of `name`, `spawned_at`, `function`"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_line_and_the_type_expected() {
        let error = error_of("[[ignore]]\nname = 5\nreason = \"r\"\n");
        assert_eq!(error.line, Some(2), "{error}");
        assert!(error.message.contains("wrong type: integer `5`"), "{error}");
        assert!(error.message.contains("expected a string"), "{error}");
        let error = error_of("ignore = \"metrics\"\n");
        assert_eq!(error.line, Some(1), "{error}");
        assert!(error.message.contains("wrong type"), "{error}");
    }

    #[test]
    fn bad_toml_names_the_line() {
        let error = error_of("[[ignore]]\nname = \"a\"\nreason = \"never closed\n");
        assert_eq!(error.line, Some(3), "{error}");
        assert!(
            error.to_string().starts_with(&format!(
                "{}:3: ",
                Path::new("fixture/leakcheck.toml").display()
            )),
            "{error}"
        );
    }

    #[test]
    fn a_malformed_spawn_site_is_an_error() {
        let error = error_of("[[ignore]]\nspawned_at = \"src/x.rs:abc\"\nreason = \"r\"\n");
        assert_eq!(error.line, Some(2), "{error}");
        assert!(error.message.contains("not a spawn site"), "{error}");
        for good in [
            "src/x.rs",
            "src/x.rs:4",
            "src/x.rs:4:9",
            "my_crate::pool::spawn",
        ] {
            let text = format!("[[ignore]]\nspawned_at = {good:?}\nreason = \"r\"\n");
            assert!(parse_fixture(&text).is_ok(), "{good}");
        }
    }

    #[test]
    fn unused_rules_are_warned_about_and_used_ones_are_not() {
        let file = parse_fixture(
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

    /// A directory tree under the system's temporary directory, removed when dropped.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str) -> TempTree {
            let dir = std::env::temp_dir().join(format!(
                "leakcheck-ignore-file-{tag}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempTree(dir)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_nearest_file_up_to_the_workspace_root_wins() {
        let tree = TempTree::new("nearest");
        tree.write("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n");
        let root_file = tree.write(FILE_NAME, "");
        tree.write("crates/a/Cargo.toml", "[package]\nname = \"a\"\n");
        tree.write("crates/b/Cargo.toml", "[package]\nname = \"b\"\n");
        let own_file = tree.write("crates/b/leakcheck.toml", "");
        assert_eq!(locate(&tree.0.join("crates/a")), Some(root_file));
        assert_eq!(locate(&tree.0.join("crates/b")), Some(own_file));
    }

    #[test]
    fn the_search_stops_at_the_workspace_root() {
        let tree = TempTree::new("stops");
        tree.write(FILE_NAME, "not even toml [");
        tree.write("ws/Cargo.toml", "[workspace]\n");
        tree.write("ws/member/Cargo.toml", "[package]\nname = \"m\"\n");
        assert_eq!(locate(&tree.0.join("ws/member")), None);
        assert!(load_from(&tree.0.join("ws/member")).unwrap().is_none());
    }

    #[test]
    fn a_package_outside_any_workspace_looks_only_in_its_own_directory() {
        let tree = TempTree::new("alone");
        tree.write(FILE_NAME, "");
        tree.write("pkg/Cargo.toml", "[package]\nname = \"p\"\n");
        assert_eq!(locate(&tree.0.join("pkg")), None);
        let own = tree.write("pkg/leakcheck.toml", "");
        assert_eq!(locate(&tree.0.join("pkg")), Some(own));
    }

    #[test]
    fn loading_a_malformed_file_names_the_file_found() {
        let tree = TempTree::new("load");
        tree.write("Cargo.toml", "[package]\nname = \"p\"\n");
        let path = tree.write(FILE_NAME, "[[ignore]]\nname = \"x\"\n");
        let error = load_from(&tree.0).unwrap_err();
        assert_eq!(error.path, path);
        assert_eq!(error.line, Some(1));
        assert!(error.to_string().contains("has no `reason`"), "{error}");
    }
}
