//! Reading `/proc/self/task`: the thread list, and what the kernel says about one thread.

use std::io;
use std::time::Duration;

use crate::os::status::ThreadStatus;

/// The kernel ids of this process's threads, sorted.
pub(crate) fn list_threads() -> io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// What the kernel says about thread `tid` of this process, with its start time in clock ticks
/// after boot, or `None` if it is gone.
pub(crate) fn thread_status(tid: i32) -> Option<(ThreadStatus, Option<u64>)> {
    let stat = thread_stat(tid)?;
    let wchan = std::fs::read(format!("/proc/self/task/{tid}/wchan"))
        .ok()
        .map(|w| String::from_utf8_lossy(&w).trim().to_owned())
        .filter(|w| !w.is_empty() && w != "0");
    // `comm` is also in `stat`, between the parentheses; reading it there saves a file.
    let status = ThreadStatus {
        name: stat.name,
        state: stat.state,
        wchan,
        age: stat.start_ticks.and_then(age_of),
    };
    Some((status, stat.start_ticks))
}

/// The fields leakcheck uses of `/proc/self/task/<tid>/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// `comm`, the thread's name.
    pub(crate) name: String,
    /// The one-letter scheduling state.
    pub(crate) state: char,
    /// When the thread started, in clock ticks after boot: with the tid, this names one thread
    /// for the life of the system (see [`ThreadHandle`](super::ThreadHandle)).
    pub(crate) start_ticks: Option<u64>,
}

/// The `stat` line of thread `tid`, or `None` if it is gone.
///
/// Read as bytes: the name in it is whatever `prctl(PR_SET_NAME)` was given, which C libraries
/// do not keep to UTF-8.
pub(crate) fn thread_stat(tid: i32) -> Option<Stat> {
    let stat = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
    let (name, state, start_ticks) = parse_stat(&stat)?;
    Some(Stat {
        name: escape_name(name),
        state,
        start_ticks,
    })
}

/// The name, state and start time (in clock ticks after boot) from a `stat` line:
/// `tid (comm) S ppid ... starttime ...`. The name may itself hold spaces and parentheses, so
/// it ends at the *last* `)`.
fn parse_stat(stat: &[u8]) -> Option<(&[u8], char, Option<u64>)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = stat.get(open + 1..close)?;
    // Everything after the name is ASCII.
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; field 22 is the start time: 19 fields further.
    let start_ticks = fields.nth(18).and_then(|t| t.parse().ok());
    Some((name, state, start_ticks))
}

/// A kernel thread name as text: UTF-8 as it is, any other byte as `\xNN` (`bad\xffname`).
/// Every thread name leakcheck reads from the kernel goes through here.
pub(crate) fn escape_name(name: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

/// The kernel's clock ticks per second (`USER_HZ`), the unit of `stat`'s times.
fn ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&t| t > 0)
}

/// The time since boot (suspend included: `stat`'s start times count the same way).
fn since_boot() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

/// Now, in `stat`'s unit: whole clock ticks since boot. A thread that exists now has a `stat`
/// start time no later than this.
pub(crate) fn clock_ticks_since_boot() -> Option<u64> {
    let ticks_per_second = u128::from(ticks_per_second()?);
    u64::try_from(since_boot()?.as_nanos() * ticks_per_second / 1_000_000_000).ok()
}

/// How long ago a thread started `start_ticks` clock ticks after boot.
fn age_of(start_ticks: u64) -> Option<Duration> {
    let ticks_per_second = ticks_per_second()?;
    let started = Duration::from_secs(start_ticks / ticks_per_second)
        + Duration::from_nanos((start_ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second);
    Some(since_boot()?.saturating_sub(started))
}

/// Whether thread `tid` blocks signal `signal` (`SigBlk` in its `status`), if it can be told.
pub(crate) fn blocks_signal(tid: i32, signal: i32) -> Option<bool> {
    // Bytes: the `Name:` line holds the thread's name, which need not be UTF-8.
    let status = std::fs::read(format!("/proc/self/task/{tid}/status")).ok()?;
    let mask = status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"SigBlk:"))?;
    let mask = u64::from_str_radix(std::str::from_utf8(mask).ok()?.trim(), 16).ok()?;
    let bit = u32::try_from(signal - 1).ok().filter(|&b| b < 64)?;
    Some(mask & (1 << bit) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let line =
            "4242 (a (weird) name) S 1 4242 4242 0 -1 4194624 94 0 0 0 0 0 0 0 20 0 3 0 123456 \
                    0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let (name, state, start) = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(name, b"a (weird) name");
        assert_eq!(state, 'S');
        assert_eq!(start, Some(123456));
    }

    #[test]
    fn names_that_are_not_utf8_are_escaped_byte_by_byte() {
        assert_eq!(escape_name(b"bad\xff\xfename"), "bad\\xff\\xfename");
        assert_eq!(escape_name("wörker-1".as_bytes()), "wörker-1");
        // A multi-byte character cut short by the kernel's 15-byte limit.
        assert_eq!(escape_name(b"tail-\xc3"), "tail-\\xc3");
        let line = b"4242 (a\xff) S 1 4242 4242 0 -1 4194624 94 0 0 0 0 0 0 0 20 0 3 0 99 0";
        let (name, state, start) = parse_stat(line).unwrap();
        assert_eq!(escape_name(name), "a\\xff");
        assert_eq!((state, start), ('S', Some(99)));
    }

    /// A live thread whose kernel name is not UTF-8 (set as C libraries do) is still described.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_thread_named_in_bytes_is_described() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
            let named = unsafe { libc::prctl(libc::PR_SET_NAME, c"bytes\xff\xfe".as_ptr()) };
            assert_eq!(named, 0);
            tid_tx.send(super::super::current_tid()).unwrap();
            let _ = rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        let (status, _) = thread_status(tid).expect("the thread is alive");
        assert_eq!(status.name, "bytes\\xff\\xfe");
        assert!(thread_stat(tid).unwrap().start_ticks.is_some());
        assert_eq!(blocks_signal(tid, libc::SIGRTMAX()), Some(false));
        drop(tx);
        thread.join().unwrap();
    }

    #[test]
    fn this_thread_is_listed_and_described() {
        let tid = super::super::current_tid();
        assert!(list_threads().unwrap().contains(&tid));
        let (status, _) = thread_status(tid).unwrap();
        assert_eq!(status.state, 'R', "{status:?}");
        assert_eq!(status.state_text(), "R (running)");
        assert!(status.age.is_some());
        assert!(!status.has_exited());
    }

    #[test]
    fn named_sleeping_threads_show_their_name_state_and_wait() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("proc-probe".into())
            .spawn(move || {
                tid_tx.send(super::super::current_tid()).unwrap();
                let _ = rx.recv();
            })
            .unwrap();
        let tid = tid_rx.recv().unwrap();
        // Wait (without sleeping a fixed time) until the thread is asleep in the kernel.
        let status = loop {
            let (status, _) = thread_status(tid).unwrap();
            if status.state == 'S' {
                break status;
            }
            std::thread::yield_now();
        };
        assert_eq!(status.name, "proc-probe");
        assert_eq!(status.state_text(), "S (sleeping)");
        assert_eq!(blocks_signal(tid, libc::SIGRTMAX()), Some(false));
        drop(tx);
        thread.join().unwrap();
    }
}
