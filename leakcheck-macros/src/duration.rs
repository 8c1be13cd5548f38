//! The grammar of `timeout = "..."`: human durations such as `500ms`, `2s` or `1.5s`.
//!
//! The reference is the runtime's parser of `LEAKCHECK_TIMEOUT` (`leakcheck/src/duration.rs`);
//! this is a copy, because a published proc-macro crate cannot include another crate's files.
//! The workspace test `tests/duration_grammar.rs` feeds both the same table of inputs and asserts
//! they agree, so the two cannot drift apart unnoticed. The macro emits the parsed value
//! (`Duration::from_nanos(N)`), so the runtime never parses the attribute's text again.

use std::time::Duration;

/// What [`parse_duration`] accepts, for error messages.
pub const ACCEPTED_DURATIONS: &str =
    "a number followed by a unit: `ns`, `us`, `ms`, `s` or `m` (for example `500ms`, `2s`, `1.5s`)";

/// Parses `500ms`, `2s`, `1.5s`, `100us`, `250ns`, `1m`. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; expected {ACCEPTED_DURATIONS}"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` does not start with a number; expected {ACCEPTED_DURATIONS}")
    })?;
    let seconds_per_unit = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        other => {
            return Err(format!(
                "`{text}` has an unknown unit `{other}`; expected {ACCEPTED_DURATIONS}"
            ))
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .ok()
        .filter(|duration| u64::try_from(duration.as_nanos()).is_ok())
        .ok_or_else(|| {
            format!("`{text}` is out of range: it must be under 584 years; expected {ACCEPTED_DURATIONS}")
        })
}

/// Whether `unit` is one [`parse_duration`] knows, for suggestions built from a number's suffix.
pub fn is_unit(unit: &str) -> bool {
    parse_duration(&format!("1{unit}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert!(is_unit("ms") && is_unit("s") && !is_unit("parsecs") && !is_unit(""));
    }
}
