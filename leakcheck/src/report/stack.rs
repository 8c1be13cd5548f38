//! Stacks in reports: how they were obtained, and their frames (trimmed by `trim.rs`,
//! symbolised by `resolve.rs`).

use std::fmt;

use serde::Serialize;

use crate::patterns::function_matches;

/// How a stack in a report was obtained.
///
/// More ways to obtain a stack may be added in future versions: match with a `_` arm.
///
/// ```compile_fail,E0004
/// // Without a `_` arm, this does not compile outside leakcheck.
/// fn every(value: leakcheck::StackOrigin) {
///     match value {
///         leakcheck::StackOrigin::AtSpawn | leakcheck::StackOrigin::WhenBlocked | leakcheck::StackOrigin::Live | leakcheck::StackOrigin::RuntimeDump => {}
///     }
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackOrigin {
    /// Recorded when the task was spawned (capture level `backtrace`).
    AtSpawn,
    /// Recorded when the task entered its blocking call (capture level `backtrace`).
    WhenBlocked,
    /// Taken from the thread itself while the report was built.
    Live,
    /// From the async runtime's task dump.
    RuntimeDump,
}

impl fmt::Display for StackOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StackOrigin::AtSpawn => "captured at spawn",
            StackOrigin::WhenBlocked => "captured when it blocked",
            StackOrigin::Live => "live, from the thread",
            StackOrigin::RuntimeDump => "from the runtime's task dump",
        })
    }
}

/// One frame of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    pub(crate) function: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

impl Frame {
    /// The function, demangled, without its hash (`my_crate::pool::worker::{{closure}}`).
    pub fn function(&self) -> &str {
        &self.function
    }
    /// The source file, when debug info says.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
    /// The line, when debug info says.
    pub fn line(&self) -> Option<u32> {
        self.line
    }
}

/// A task's stack, innermost frame first, trimmed to the frames that tell the story (see
/// `trim.rs` for the rule; `LEAKCHECK_BACKTRACE=full` keeps every frame).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stack {
    pub(crate) origin: StackOrigin,
    pub(crate) frames: Vec<Frame>,
    /// The runs of frames hidden, each where it was.
    #[serde(rename = "hidden")]
    pub(crate) elided: Vec<Elided>,
}

/// A run of frames a report hides, counted in place: `… 12 frames of std, tokio hidden`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct Elided {
    /// The index in [`Stack::frames`] of the first frame shown after the run.
    pub(crate) before: usize,
    pub(crate) count: usize,
    /// The crates the hidden frames belong to (`std`, `tokio`, `libc`), in order of appearance.
    pub(crate) crates: Vec<String>,
}

impl Stack {
    /// How the stack was obtained.
    pub fn origin(&self) -> StackOrigin {
        self.origin
    }
    /// The frames a report shows, innermost first: the user's and other crates', without std's,
    /// the runtime's, leakcheck's and the C library's (all of them with `LEAKCHECK_BACKTRACE=full`).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
    /// How many frames were hidden from [`frames`](Self::frames).
    pub fn hidden_frames(&self) -> usize {
        self.elided.iter().map(|run| run.count).sum()
    }
    /// Whether any frame is in `function` (a path, matched on whole segments).
    pub fn contains_function(&self, function: &str) -> bool {
        self.frames
            .iter()
            .any(|f| function_matches(function, &f.function))
    }
}
