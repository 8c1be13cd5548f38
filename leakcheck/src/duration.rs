//! Parsing of human durations such as `500ms`, `2s` or `1.5s`.
//!
//! The grammar of `LEAKCHECK_TIMEOUT`, and the reference for the `timeout = "..."` argument of
//! `#[leak_test]`: the macro crate keeps a copy (a published crate cannot include another's
//! files), and the workspace test `tests/duration_grammar.rs` asserts the two agree.

use std::time::Duration;

/// What [`parse_duration`] accepts, for error messages.
pub const ACCEPTED_DURATIONS: &str =
    "a number followed by a unit: `ns`, `us`, `ms`, `s` or `m` (for example `500ms`, `2s`, `1.5s`)";

/// Parses `500ms`, `2s`, `1.5s`, `100us`, `250ns`, `1m`. A bare `0` is zero.
///
/// Durations must fit in a `u64` of nanoseconds (under 584 years), as a grace period and the
/// `timeout` argument of `#[leak_test]` must.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_durations_of_584_years_and_more() {
        for too_long in [
            "9300000000000000000s",
            "308000000m",
            "18446744073709551616ns",
        ] {
            let error = parse_duration(too_long).unwrap_err();
            assert!(error.contains("is out of range"), "{too_long}: {error}");
        }
        assert_eq!(
            parse_duration("18446744073s"),
            Ok(Duration::from_secs(18_446_744_073))
        );
    }

    #[test]
    fn rejects_malformed_input_with_the_accepted_forms() {
        for bad in ["", "5", "ms", "5 parsecs", "-1s", "1.2.3s"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(
                error.contains("expected a number followed by a unit"),
                "{bad}: {error}"
            );
        }
    }
}
