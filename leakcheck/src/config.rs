//! The process-wide settings read from the environment (SPEC §6).
//!
//! Each variable is read once. A malformed value is never replaced by a default: it is kept as an
//! error that every check reports, naming the variable and the values it accepts.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::duration::{parse_duration, ACCEPTED_DURATIONS};

/// What a check does when it finds leaks (`LEAKCHECK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Fail the test (the default).
    Fail,
    /// Print the report to stderr, and pass.
    Warn,
    /// Do not check at all.
    Off,
}

/// How much leakcheck records when a task is spawned or blocks (`LEAKCHECK_BACKTRACE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CaptureLevel {
    /// The `#[track_caller]` site only.
    Location,
    /// An unresolved backtrace as well, symbolised only when a report needs it.
    Backtrace,
}

/// Which threads are tracked from their creation (`LEAKCHECK_THREADS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadsMode {
    /// Every thread the process creates, where the platform allows (the default).
    All,
    /// Only leakcheck's own; other threads are found by the census of the OS thread list.
    Census,
}

pub(crate) struct Config {
    pub(crate) mode: Mode,
    pub(crate) timeout: Duration,
    pub(crate) capture: CaptureLevel,
    /// `LEAKCHECK_BACKTRACE=full`: reports show every frame of every stack, untrimmed.
    pub(crate) full_stacks: bool,
    pub(crate) report_dir: Option<PathBuf>,
    pub(crate) threads: ThreadsMode,
    /// Every malformed variable, as a message naming it and its accepted values.
    pub(crate) errors: Vec<String>,
}

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

static CONFIG: OnceLock<Config> = OnceLock::new();

thread_local! {
    /// Set while this thread reads the settings, which allocates.
    static READING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The settings of this process, read from the environment the first time they are needed.
pub(crate) fn get() -> &'static Config {
    CONFIG.get_or_init(|| {
        let _ = READING.try_with(|reading| reading.set(true));
        let config = Config::from_lookup(|name| std::env::var_os(name));
        let _ = READING.try_with(|reading| reading.set(false));
        config
    })
}

/// Whether this thread is reading the settings right now: then an allocator that creates a
/// thread must not make the thread-creation hook ask for them (a re-entered `OnceLock`
/// initialisation deadlocks).
#[cfg(leakcheck_interpose)]
pub(crate) fn being_read_here() -> bool {
    READING.try_with(std::cell::Cell::get).unwrap_or(false)
}

/// The capture level, without waiting for anything else: read on every spawn.
#[inline]
pub(crate) fn capture_level() -> CaptureLevel {
    get().capture
}

impl Config {
    fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Config {
        let mut errors = Vec::new();
        let mut read = |name: &str, accepted: &str| -> Option<String> {
            let value = lookup(name)?;
            match value.into_string() {
                Ok(text) if text.trim().is_empty() => None,
                Ok(text) => Some(text),
                Err(raw) => {
                    errors.push(format!(
                        "{name}={raw:?} is not valid UTF-8; accepted values: {accepted}"
                    ));
                    None
                }
            }
        };
        let mode_raw = read("LEAKCHECK", "`fail`, `warn`, `off`");
        let timeout_raw = read("LEAKCHECK_TIMEOUT", ACCEPTED_DURATIONS);
        let capture_raw = read("LEAKCHECK_BACKTRACE", "`0`, `1`, `full`");
        let report_dir = read("LEAKCHECK_REPORT_DIR", "a directory").map(PathBuf::from);
        let threads_raw = read("LEAKCHECK_THREADS", "`all`, `census`");

        let mode = match mode_raw.as_deref().map(str::trim) {
            None | Some("fail") => Mode::Fail,
            Some("warn") => Mode::Warn,
            Some("off") => Mode::Off,
            Some(other) => {
                errors.push(format!(
                    "LEAKCHECK=`{other}` is not understood; accepted values: `fail` (the default), `warn`, `off`"
                ));
                Mode::Fail
            }
        };
        let timeout = match timeout_raw {
            None => DEFAULT_TIMEOUT,
            Some(text) => parse_duration(&text).unwrap_or_else(|error| {
                errors.push(format!("LEAKCHECK_TIMEOUT: {error}"));
                DEFAULT_TIMEOUT
            }),
        };
        let full_stacks = capture_raw.as_deref().map(str::trim) == Some("full");
        let capture = match capture_raw.as_deref().map(str::trim) {
            None | Some("0") => CaptureLevel::Location,
            Some("1") | Some("full") => CaptureLevel::Backtrace,
            Some(other) => {
                errors.push(format!(
                    "LEAKCHECK_BACKTRACE=`{other}` is not understood; accepted values: `0` (spawn site only, the default), `1` (a backtrace per spawn), `full` (a backtrace per spawn, and every frame of every stack in reports)"
                ));
                CaptureLevel::Location
            }
        };
        let threads = match threads_raw.as_deref().map(str::trim) {
            None | Some("all") => ThreadsMode::All,
            Some("census") => ThreadsMode::Census,
            Some(other) => {
                errors.push(format!(
                    "LEAKCHECK_THREADS=`{other}` is not understood; accepted values: `all` (track every thread from its creation, the default), `census`"
                ));
                ThreadsMode::All
            }
        };
        Config {
            mode,
            timeout,
            capture,
            full_stacks,
            report_dir,
            threads,
            errors,
        }
    }

    /// Every configuration error at once, so a malformed variable fails the check that would
    /// otherwise silently run with a default.
    pub(crate) fn validity(&self) -> Result<(), String> {
        if self.errors.is_empty() {
            return Ok(());
        }
        Err(format!(
            "malformed environment:\n  {}",
            self.errors.join("\n  ")
        ))
    }

    /// Panics with [`validity`](Self::validity)'s error.
    #[track_caller]
    pub(crate) fn ensure_valid(&self) {
        if let Err(error) = self.validity() {
            panic!("leakcheck: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).map(Into::into))
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = config(&[]);
        assert_eq!(c.mode, Mode::Fail);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.capture, CaptureLevel::Location);
        assert!(!c.full_stacks);
        assert!(c.report_dir.is_none());
        assert_eq!(c.threads, ThreadsMode::All);
        assert!(c.errors.is_empty());
    }

    #[test]
    fn reads_every_variable() {
        let c = config(&[
            ("LEAKCHECK", "warn"),
            ("LEAKCHECK_TIMEOUT", "250ms"),
            ("LEAKCHECK_BACKTRACE", "1"),
            ("LEAKCHECK_REPORT_DIR", "/tmp/x"),
            ("LEAKCHECK_THREADS", "census"),
        ]);
        assert_eq!(c.threads, ThreadsMode::Census);
        assert_eq!(c.mode, Mode::Warn);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.capture, CaptureLevel::Backtrace);
        assert_eq!(c.report_dir, Some(PathBuf::from("/tmp/x")));
        assert!(!c.full_stacks);
    }

    #[test]
    fn full_backtraces_capture_and_show_every_frame() {
        let c = config(&[("LEAKCHECK_BACKTRACE", "full")]);
        assert_eq!(c.capture, CaptureLevel::Backtrace);
        assert!(c.full_stacks);
        assert!(c.errors.is_empty());
    }

    #[test]
    fn malformed_values_name_the_variable_and_the_accepted_values() {
        let c = config(&[
            ("LEAKCHECK", "loud"),
            ("LEAKCHECK_TIMEOUT", "soon"),
            ("LEAKCHECK_BACKTRACE", "yes"),
            ("LEAKCHECK_THREADS", "every"),
        ]);
        assert_eq!(c.errors.len(), 4, "{:?}", c.errors);
        assert!(c.errors[0].contains("LEAKCHECK=`loud`") && c.errors[0].contains("`warn`"));
        assert!(c.errors[1].contains("LEAKCHECK_TIMEOUT") && c.errors[1].contains("500ms"));
        assert!(
            c.errors[2].contains("LEAKCHECK_BACKTRACE=`yes`")
                && c.errors[2].contains("`1`")
                && c.errors[2].contains("`full`")
        );
        assert!(
            c.errors[3].contains("LEAKCHECK_THREADS=`every`") && c.errors[3].contains("`census`")
        );
        let panic = std::panic::catch_unwind(|| c.ensure_valid()).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("LEAKCHECK_TIMEOUT"), "{message}");
    }

    #[test]
    fn a_timeout_beyond_584_years_is_an_error_naming_the_variable() {
        let c = config(&[("LEAKCHECK_TIMEOUT", "9300000000000000000s")]);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert!(
            c.errors[0].contains("LEAKCHECK_TIMEOUT") && c.errors[0].contains("584 years"),
            "{}",
            c.errors[0]
        );
    }
}
