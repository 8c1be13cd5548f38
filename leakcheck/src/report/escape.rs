//! Text that comes from outside leakcheck (scope labels, thread names, reasons, paths), made safe
//! to print into a CI log.
//!
//! A newline would forge a line of the report (`leakcheck: 0 unexpected tasks`), an ANSI escape
//! would recolour or clear the terminal, a bidirectional override would make the text read
//! backwards. Such characters are written as Rust escapes (`\n`, `\u{1b}`, `\u{202e}`); every
//! other character, backquotes and quotes included, is kept as it is, so ordinary names read
//! unchanged.

use std::borrow::Cow;

/// `text` with its control, bidirectional and invisible formatting characters escaped.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates.
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Zero-width characters, line and paragraph separators, and the byte-order mark.
            | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}' | '\u{2060}' | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_kept_as_it_is() {
        assert!(matches!(escape("pool::tests::query_all"), Cow::Borrowed(_)));
        assert_eq!(
            escape("it's `ünïcödé` \"quoted\""),
            "it's `ünïcödé` \"quoted\""
        );
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(
            escape("a\nb\u{1b}[31mc\u{202e}d\te\u{2028}"),
            "a\\nb\\u{1b}[31mc\\u{202e}d\\te\\u{2028}"
        );
    }
}
