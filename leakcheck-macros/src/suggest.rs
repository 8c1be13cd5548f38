//! "Did you mean ...?": the closest of a few known words to a misspelt one.

/// The candidate closest to `written`, if one is close enough to be what was meant.
pub(crate) fn closest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(written, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(3) / 3)
        .min()
        .map(|(_, candidate)| candidate)
}

/// The Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(edit_distance("flavour", "flavor"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let words = ["timeout", "process_wide"];
        assert_eq!(closest("procces_wide", words), Some("process_wide"));
        assert_eq!(closest("timout", words), Some("timeout"));
        assert_eq!(closest("retries", words), None);
    }
}
