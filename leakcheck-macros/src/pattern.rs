//! The forms of the `ignore_spawned_at` and `ignore_function` patterns.
//!
//! The runtime (`Options::ignore_spawned_at`) reads a pattern as a source position when it has no
//! `::` — `file`, `file:line` or `file:line:column` — and as a function path otherwise; a pattern
//! it cannot read that way silently matches nothing. These checks accept exactly the forms that
//! reading gives a meaning to, so that a typo is a compile error instead of an ignore that never
//! applies.

/// Checks an `ignore_spawned_at` pattern: `"src/pool.rs"`, `"src/pool.rs:42"`,
/// `"src/pool.rs:42:9"`, or the path of the function that spawned (`"my_crate::pool::Pool::new"`).
pub(crate) fn check_spawn_site(pattern: &str) -> Result<(), String> {
    let pattern = pattern.trim();
    if pattern.contains("::") {
        return check_function_path(pattern);
    }
    // A Windows drive (`C:\src\pool.rs`) is part of the file, not a line.
    let drive = drive_prefix_len(pattern);
    let (drive_part, rest) = pattern.split_at(drive);
    let mut parts = rest.split(':');
    let file = parts.next().unwrap_or_default();
    let numbers: Vec<&str> = parts.collect();
    if numbers.is_empty() {
        // No position: a file, or a function name without a module path.
        return if is_file(pattern) || is_identifier(pattern) {
            Ok(())
        } else {
            Err(format!(
                "`{pattern}` is neither a source file (`src/pool.rs`, with its `/` or `.rs`) nor \
                 a function path (`my_crate::pool::Pool::new`)"
            ))
        };
    }
    if file.is_empty() {
        return Err(format!(
            "`{pattern}` has no file before its `:`; write `src/pool.rs:42`"
        ));
    }
    if numbers.len() > 2 {
        return Err(format!(
            "`{pattern}` has too many `:`; a spawn site is `file`, `file:line` or \
             `file:line:column` (for example `src/pool.rs:42:9`)"
        ));
    }
    for (number, what) in numbers.iter().zip(["line", "column"]) {
        match number.parse::<u32>() {
            Ok(n) if n > 0 => {}
            _ => {
                return Err(format!(
                    "`{drive_part}{file}:{}`: `{number}` is not a {what} number (a whole \
                     number from 1); a spawn site is `file`, `file:line` or `file:line:column` \
                     (for example `src/pool.rs:42:9`)",
                    numbers.join(":")
                ))
            }
        }
    }
    Ok(())
}

/// Checks an `ignore_function` pattern: a function path, matched by whole segments
/// (`"telemetry::flush_loop"`, `"my_crate::Pool::new"`).
pub(crate) fn check_function_path(pattern: &str) -> Result<(), String> {
    let pattern = pattern.trim();
    let path = pattern.strip_prefix("::").unwrap_or(pattern);
    if is_file(path) && !path.contains("::") {
        return Err(format!(
            "`{pattern}` is a source file, not a function path; for where a task was spawned, \
             use `ignore_spawned_at = \"{pattern}\"`"
        ));
    }
    for segment in path.split("::") {
        if segment.trim().is_empty() {
            return Err(format!(
                "`{pattern}` has an empty path segment; write a function path such as \
                 `my_crate::telemetry::flush_loop`"
            ));
        }
        if is_file(segment) || segment.contains(':') {
            return Err(format!(
                "`{pattern}` mixes a function path with a source position; write either a \
                 function path (`my_crate::pool::Pool::new`) or a position (`src/pool.rs:42`)"
            ));
        }
    }
    Ok(())
}

/// How the runtime tells a file from a function name in a pattern without `::` or `:`.
fn is_file(text: &str) -> bool {
    text.ends_with(".rs") || text.contains('/') || text.contains('\\')
}

/// A Rust identifier, possibly raw (`flush_loop`, `r#try`).
fn is_identifier(text: &str) -> bool {
    let text = text.strip_prefix("r#").unwrap_or(text);
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// The length of a Windows drive prefix (`C:` before a `\` or `/`), or 0.
fn drive_prefix_len(pattern: &str) -> usize {
    let bytes = pattern.as_bytes();
    match bytes {
        [letter, b':', b'\\' | b'/', ..] if letter.is_ascii_alphabetic() => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_the_runtime_reads() {
        for pattern in [
            "src/pool.rs",
            "pool.rs",
            "src/pool.rs:42",
            "src/pool.rs:42:9",
            "C:\\app\\src\\pool.rs:42",
            "my_crate::pool::Pool::new",
            "::my_crate::pool",
            "flush_loop",
            "<my_crate::Pool as Drop>::drop",
        ] {
            assert_eq!(check_spawn_site(pattern), Ok(()), "{pattern}");
        }
    }

    #[test]
    fn rejects_what_would_match_nothing() {
        for (pattern, expected) in [
            ("src/x.rs:abc", "`abc` is not a line number"),
            ("src/x.rs:42:abc", "`abc` is not a column number"),
            ("src/x.rs:0", "`0` is not a line number"),
            ("src/x.rs:1:2:3", "too many `:`"),
            (":42", "no file before its `:`"),
            ("pool thread", "neither a source file"),
            ("my_crate::::new", "empty path segment"),
            ("my_crate::", "empty path segment"),
            (
                "src/x.rs::42",
                "mixes a function path with a source position",
            ),
        ] {
            let error = check_spawn_site(pattern).unwrap_err();
            assert!(error.contains(expected), "{pattern}: {error}");
        }
    }

    #[test]
    fn a_function_pattern_is_not_a_file() {
        assert_eq!(
            check_function_path("my_crate::telemetry::flush_loop"),
            Ok(())
        );
        assert_eq!(check_function_path("flush_loop"), Ok(()));
        let error = check_function_path("src/telemetry.rs").unwrap_err();
        assert!(error.contains("use `ignore_spawned_at"), "{error}");
    }
}
