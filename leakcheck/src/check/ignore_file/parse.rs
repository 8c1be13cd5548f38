//! `leakcheck.toml`'s text to rules, with errors that name the line and what was expected.
//!
//! serde (with `deny_unknown_fields`) reads the file; its spans give the line of an error, and its
//! messages are reworded in the file's terms.

use std::path::Path;

use serde::Deserialize;

use super::{IgnoreFile, IgnoreFileError, ProjectRule};

/// The keys of an `[[ignore]]` table, as error messages list them.
const RULE_KEYS: &str = "`name`, `spawned_at`, `function`, `reason`";

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
        rules.push(ProjectRule::new(
            line,
            name,
            spawned_at,
            function,
            rule.reason.into_inner(),
        ));
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
}
