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

/// What the kernel says about thread `tid` of this process, or `None` if it is gone.
pub(crate) fn thread_status(tid: i32) -> Option<ThreadStatus> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let (name, state, start_ticks) = parse_stat(&stat)?;
    let wchan = std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .ok()
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty() && w != "0");
    // `comm` is also in `stat`, between the parentheses; reading it there saves a file.
    Some(ThreadStatus {
        name,
        state,
        wchan,
        age: start_ticks.and_then(age_of),
    })
}

/// The name, state and start time (in clock ticks after boot) from a `stat` line:
/// `tid (comm) S ppid ... starttime ...`. The name may itself hold spaces and parentheses, so
/// it ends at the *last* `)`.
fn parse_stat(stat: &str) -> Option<(String, char, Option<u64>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; field 22 is the start time: 19 fields further.
    let start_ticks = fields.nth(18).and_then(|t| t.parse().ok());
    Some((name, state, start_ticks))
}

/// How long ago a thread started `start_ticks` clock ticks after boot.
fn age_of(start_ticks: u64) -> Option<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&t| t > 0)?;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to. `stat`'s start time counts from boot,
    // suspend included: CLOCK_BOOTTIME.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let now = Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    );
    let started = Duration::from_secs(start_ticks / ticks_per_second)
        + Duration::from_nanos((start_ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second);
    Some(now.saturating_sub(started))
}

/// Whether thread `tid` blocks signal `signal` (`SigBlk` in its `status`), if it can be told.
pub(crate) fn blocks_signal(tid: i32, signal: i32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))?
        .trim();
    let mask = u64::from_str_radix(mask, 16).ok()?;
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
        let (name, state, start) = parse_stat(line).unwrap();
        assert_eq!(name, "a (weird) name");
        assert_eq!(state, 'S');
        assert_eq!(start, Some(123456));
    }

    #[test]
    fn this_thread_is_listed_and_described() {
        let tid = super::super::current_tid();
        assert!(list_threads().unwrap().contains(&tid));
        let status = thread_status(tid).unwrap();
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
            let status = thread_status(tid).unwrap();
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
