//! What the kernel says about one thread, on every platform (empty where it says nothing).

use std::time::Duration;

/// What the kernel says about one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThreadStatus {
    /// The thread's name (`comm`): what `pthread_setname_np` / `Builder::name` set, at most 15
    /// bytes, or the program's name for a thread that was never named. Bytes that are not UTF-8
    /// show as `\xNN`: names are read from the kernel as bytes and escaped in one place.
    pub(crate) name: String,
    /// The one-letter scheduling state (field 3 of `stat`).
    pub(crate) state: char,
    /// The kernel function the thread sleeps in (`wchan`), if it sleeps and the kernel says.
    pub(crate) wchan: Option<String>,
    /// How long the thread has existed, if the kernel's clock could be read.
    pub(crate) age: Option<Duration>,
}

impl ThreadStatus {
    /// `S (sleeping)`: the state letter and what it means (proc(5)).
    pub(crate) fn state_text(&self) -> String {
        format!("{} ({})", self.state, state_meaning(self.state))
    }

    /// Whether the thread has finished and is only waiting to be reaped.
    pub(crate) fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The meaning of a `stat` state letter, as proc(5) spells it.
pub(crate) fn state_meaning(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep, uninterruptible",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        'X' | 'x' => "dead",
        'I' => "idle",
        'P' => "parked",
        'W' => "waking",
        'K' => "wakekill",
        _ => "unknown",
    }
}
