//! The text report, for a person reading CI logs (SPEC §5).
//!
//! Bounded: whatever the number of survivors, the text stays under [`BUDGET`] bytes. Groups are
//! written largest first until the budget is spent; the rest are summed up in one line, and stay
//! available in full through [`LeakReport::tasks`] and the JSON report.

use std::fmt::Write;
use std::time::Duration;

use crate::vocab::{TaskKind, TaskState};

use super::escape::escape;
use super::group::{group, Group};
use super::stack::Elided;
use super::{LeakReport, Stack};

/// The most text a report writes: far below the 64 KiB a CI log line-budget tolerates.
const BUDGET: usize = 56 * 1024;
/// Tasks named in one group's `tasks` line.
const TASKS_LISTED: usize = 8;
/// Frames shown for one stack: a trimmed stack is far shorter, and an untrimmed one
/// (`LEAKCHECK_BACKTRACE=full`) is whole up to this depth.
const FRAMES_SHOWN: usize = 64;
/// Distinct kernel states listed for one group.
const KERNEL_STATES_SHOWN: usize = 4;

pub(super) fn render(report: &LeakReport) -> String {
    let mut out = String::new();
    if let Some(error) = &report.unusable {
        let _ = write!(
            out,
            "leakcheck: the check of {} could not run: {}",
            escape(&report.checked),
            escape(error)
        );
        return out;
    }
    let count = report.leak_count();
    let _ = write!(
        out,
        "leakcheck: {count} unexpected {} in {} (waited {}",
        plural(count, "task", "tasks"),
        escape(&report.checked),
        human(report.waited),
    );
    if report.exited_while_waiting > 0 {
        let n = report.exited_while_waiting;
        let _ = write!(
            out,
            "; {n} {} exited while waiting",
            plural(n, "task", "tasks")
        );
    }
    out.push_str(")\n");

    let groups = group(&report.tasks);
    for (index, group) in groups.iter().enumerate() {
        let mut section = String::new();
        render_group(&mut section, group);
        let section = clip_lines(&section);
        if out.len() + section.len() > BUDGET {
            let rest: usize = groups[index..].iter().map(|g| g.tasks.len()).sum();
            let _ = write!(
                out,
                "\n  … and {} more {} of {rest} {} not shown (all are in LeakReport::tasks(); the JSON report counts them)\n",
                groups.len() - index,
                plural(groups.len() - index, "group", "groups"),
                plural(rest, "task", "tasks"),
            );
            break;
        }
        out.push_str(&section);
    }
    for note in report.notes.iter().take(NOTES_SHOWN) {
        out.push_str("\n  note: ");
        wrap_into(&mut out, &escape(clip(note, LINE_LIMIT * 4)), "        ");
    }
    clip_lines(&out)
}

fn render_group(out: &mut String, group: &Group<'_>) {
    let task = group.representative();
    let count = group.tasks.len();
    let duration = coarse_range(group.in_state_for());
    let _ = write!(out, "\n  {count} × {}", task.kind);
    if let Some(name) = &group.name {
        let _ = write!(out, " \"{}\"", escape(name));
    }
    out.push_str(", ");
    match task.state {
        TaskState::Blocked => {
            let reason = task.blocked_on.as_deref().unwrap_or("an unknown call");
            if task.wait_inferred {
                let is_async = task.kind == TaskKind::Async;
                let stack = if is_async { "async stack" } else { "stack" };
                let _ = write!(
                    out,
                    "blocked in `{}` (inferred from its {stack}",
                    escape(reason)
                );
                if let Some(detail) = &task.wait_detail {
                    let _ = write!(out, ": {}", escape(detail));
                }
                // A thread's stack cannot say since when it waits; a task's last poll can.
                let since = if is_async { "pending" } else { "alive" };
                let _ = write!(out, "), {since} for {duration}");
            } else {
                let _ = write!(out, "blocked in `{}` for {duration}", escape(reason));
            }
        }
        TaskState::Lost => {
            let _ = write!(
                out,
                "LOST for {duration}: pending, and every waker is dropped, so nothing can ever wake it again"
            );
        }
        TaskState::Idle if task.wakers_observed => {
            let _ = write!(
                out,
                "idle for {duration} (pending; a waker is held somewhere)"
            );
        }
        TaskState::Idle => {
            let _ = write!(
                out,
                "pending for {duration} (seen through the runtime's hooks: whether anything can wake it is not known)"
            );
        }
        TaskState::Scheduled => {
            let _ = write!(
                out,
                "scheduled for {duration} (woken, waiting to be polled)"
            );
        }
        TaskState::Running if task.kind == TaskKind::UntrackedThread => {
            let _ = write!(out, "alive (not spawned through leakcheck)");
        }
        TaskState::Running => {
            let _ = write!(out, "running for {duration}");
        }
    }
    out.push('\n');

    if let Some(site) = &task.spawned_at {
        let _ = write!(out, "      spawned at   {}   (", escape(&site.to_string()));
        if let Some(scope) = &task.scope {
            let _ = write!(out, "by {}, ", escape(scope));
        }
        let oldest = group.tasks.iter().map(|t| t.age).max().unwrap_or_default();
        let _ = writeln!(out, "{} ago)", coarse(oldest));
    }
    if let Some(site) = &task.user_site {
        let _ = writeln!(out, "      called from  {}", escape(&site.to_string()));
    }
    if let Some(site) = &task.blocked_at {
        let _ = writeln!(out, "      blocked at   {}", escape(&site.to_string()));
    }
    if let Some(runs) = &task.runs {
        let _ = writeln!(out, "      runs         {}", escape(runs));
    }
    if task.kind == TaskKind::Async {
        match group.last_polled_ago() {
            Some(range) => {
                let _ = writeln!(out, "      last polled  {} ago", coarse_range(range));
            }
            None => out.push_str("      last polled  never\n"),
        }
    }
    render_kernel(out, group);
    render_task_list(out, group);
    for (depth, parent) in group.parents().iter().enumerate() {
        let label = if depth == 0 {
            "spawned by  "
        } else {
            "         ←  "
        };
        let _ = write!(out, "      {label} {} ", parent.id);
        if let Some(name) = &parent.name {
            let _ = write!(out, "\"{}\" ", escape(name));
        }
        let _ = writeln!(
            out,
            "({}, spawned at {}{})",
            parent.kind,
            escape(&parent.spawned_at.to_string()),
            if parent.exited { ", exited" } else { "" }
        );
    }
    if let Some((stack, shared_by)) = group.common_stack() {
        if shared_by == count {
            let _ = writeln!(out, "      stack ({}):", stack.origin);
        } else {
            let _ = writeln!(
                out,
                "      stack of {shared_by} of the {count} tasks ({}):",
                stack.origin
            );
        }
        render_stack(out, stack);
    } else if let Some(why) = &task.stack_unavailable {
        let _ = writeln!(out, "      stack        not available: {}", escape(why));
    }
}

/// The frames of `stack`, with each run of hidden frames counted where it was.
fn render_stack(out: &mut String, stack: &Stack) {
    let mut runs = stack.elided.iter().peekable();
    let shown = stack.frames.len().min(FRAMES_SHOWN);
    for (index, frame) in stack.frames.iter().take(shown).enumerate() {
        while let Some(run) = runs.next_if(|run| run.before <= index) {
            render_elided(out, run);
        }
        let _ = write!(out, "          {}", escape(&frame.function));
        if let (Some(file), Some(line)) = (&frame.file, frame.line) {
            let _ = write!(out, "   {}:{line}", escape(file));
        }
        out.push('\n');
    }
    let more = stack.frames.len() - shown;
    if more > 0 {
        let hidden: usize = runs.map(|run| run.count).sum();
        let _ = write!(
            out,
            "          … {more} more {}",
            plural(more, "frame", "frames")
        );
        if hidden > 0 {
            let _ = write!(out, " (and {hidden} hidden)");
        }
        out.push('\n');
    } else {
        runs.for_each(|run| render_elided(out, run));
    }
}

fn render_elided(out: &mut String, run: &Elided) {
    let _ = writeln!(
        out,
        "          … {} {} of {} hidden",
        run.count,
        plural(run.count, "frame", "frames"),
        run.crates.join(", ")
    );
}

/// What the kernel says about the group's OS threads: one line, each distinct state once.
fn render_kernel(out: &mut String, group: &Group<'_>) {
    let mut seen: Vec<(&str, Option<&str>, usize)> = Vec::new();
    for os in group.tasks.iter().filter_map(|t| t.os_thread.as_ref()) {
        let state = (os.kernel_state.as_str(), os.waiting_in.as_deref());
        if let Some(entry) = seen.iter_mut().find(|(k, w, _)| (*k, *w) == state) {
            entry.2 += 1;
        } else if seen.len() < KERNEL_STATES_SHOWN {
            seen.push((state.0, state.1, 1));
        }
    }
    if seen.is_empty() {
        return;
    }
    out.push_str("      kernel       ");
    let several = seen.len() > 1;
    for (index, (state, wchan, n)) in seen.iter().enumerate() {
        if index > 0 {
            out.push_str("; ");
        }
        out.push_str(&escape(state));
        if let Some(wchan) = wchan {
            let _ = write!(out, ", waiting in {}", escape(wchan));
        }
        if several {
            let _ = write!(out, " ({n})");
        }
    }
    out.push('\n');
}

fn render_task_list(out: &mut String, group: &Group<'_>) {
    out.push_str("      tasks        ");
    for (index, task) in group.tasks.iter().take(TASKS_LISTED).enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        match (task.id, &task.os_thread) {
            (Some(id), _) => {
                let _ = write!(out, "{id}");
            }
            (None, Some(os)) => {
                let _ = write!(out, "tid {}", os.tid);
            }
            (None, None) => out.push('?'),
        }
        if let Some(name) = &task.name {
            let _ = write!(out, " \"{}\"", escape(name));
        }
    }
    let more = group.tasks.len().saturating_sub(TASKS_LISTED);
    if more > 0 {
        let _ = write!(out, ", … and {more} more");
    }
    out.push('\n');
}

/// The longest line a report writes: a name, a generic type or a path longer than this is cut.
/// With the number of lines of a group bounded too, no group can crowd the others out.
const LINE_LIMIT: usize = 400;
/// Notes shown at most (they are short; this only guards against a runaway caller).
const NOTES_SHOWN: usize = 16;

/// `text` cut to at most `max` characters.
fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Every line of `text` cut to [`LINE_LIMIT`] characters.
fn clip_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = line
            .strip_suffix('\n')
            .map_or((line, ""), |body| (body, "\n"));
        let clipped = clip(body, LINE_LIMIT);
        out.push_str(clipped);
        if clipped.len() < body.len() {
            out.push('…');
        }
        out.push_str(newline);
    }
    out
}

/// Line width of wrapped prose in reports.
const WIDTH: usize = 100;

/// Writes `text` word-wrapped at [`WIDTH`], continuation lines indented by `indent`.
fn wrap_into(out: &mut String, text: &str, indent: &str) {
    let mut column = out.len() - out.rfind('\n').map_or(0, |at| at + 1);
    for (index, word) in text.split_whitespace().enumerate() {
        if index > 0 {
            if column + 1 + word.chars().count() > WIDTH {
                out.push('\n');
                out.push_str(indent);
                column = indent.len();
            } else {
                out.push(' ');
                column += 1;
            }
        }
        out.push_str(word);
        column += word.chars().count();
    }
    out.push('\n');
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 {
        one
    } else {
        many
    }
}

/// `1.0s`, `250ms`, `12µs`, `2m 05s`: short, and precise enough to read.
pub(crate) fn human(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 60.0 {
        let whole = duration.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else if secs >= 1.0 {
        format!("{secs:.1}s")
    } else if duration.as_millis() >= 1 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}µs", duration.as_micros())
    }
}

/// Below this, a duration measured by task states' coarse clock (one scheduler tick, 1–10 ms) is
/// not known to be anything but short.
const CLOCK_RESOLUTION: Duration = Duration::from_millis(10);

/// A duration measured by the coarse clock of task states: `<10ms` rather than a `0µs` it cannot
/// tell apart from a few milliseconds.
fn coarse(duration: Duration) -> String {
    if duration < CLOCK_RESOLUTION {
        format!("<{}", human(CLOCK_RESOLUTION))
    } else {
        human(duration)
    }
}

/// The durations of a group's tasks: one figure when they are alike, `up to 1.2s` when some are
/// too short to measure, `250ms–1.2s` otherwise.
fn coarse_range((shortest, longest): (Duration, Duration)) -> String {
    if longest.saturating_sub(shortest) < Duration::from_millis(50) {
        coarse(longest)
    } else if shortest < CLOCK_RESOLUTION {
        format!("up to {}", human(longest))
    } else {
        format!("{}–{}", human(shortest), human(longest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_wrap_at_the_width_with_an_indent() {
        let mut out = String::from("  note: ");
        let words = "word ".repeat(60);
        wrap_into(&mut out, &words, "        ");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 2, "{out}");
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("        word")),
            "{out}"
        );
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 60);
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let long = format!("a{}\nshort\n", "x".repeat(1000));
        let clipped = clip_lines(&long);
        let lines: Vec<&str> = clipped.lines().collect();
        assert_eq!(lines[0].chars().count(), LINE_LIMIT + 1);
        assert!(lines[0].ends_with('…'));
        assert_eq!(lines[1], "short");
        assert!(clipped.ends_with('\n'));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(1000)), "1.0s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_micros(12)), "12µs");
        assert_eq!(human(Duration::from_secs(125)), "2m 05s");
    }

    #[test]
    fn state_durations_say_only_what_the_clock_knows() {
        let ms = Duration::from_millis;
        assert_eq!(coarse(Duration::ZERO), "<10ms");
        assert_eq!(coarse(ms(250)), "250ms");
        assert_eq!(coarse_range((ms(0), ms(20))), "20ms");
        assert_eq!(coarse_range((ms(0), ms(100))), "up to 100ms");
        assert_eq!(coarse_range((ms(200), ms(1200))), "200ms–1.2s");
    }
}
