//! Matching names, paths and functions against the patterns users write in `Options`.
//!
//! A leaf shared by the options (which parse patterns), the checks (which apply them) and the
//! report (`Stack::contains_function`).

/// Glob matching with `*` for any run of characters; exact otherwise.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `src/pool.rs` matches `/home/me/app/src/pool.rs` and `src/pool.rs`, not `src/mempool.rs`.
pub(crate) fn path_ends_with(path: &str, suffix: &str) -> bool {
    let path = path.replace('\\', "/");
    let suffix = suffix.replace('\\', "/");
    let suffix = suffix.trim_start_matches("./");
    path == suffix || path.ends_with(&format!("/{suffix}"))
}

/// Does the function `name` (a symbol such as `my_crate::pool::Pool::new::{{closure}}::h1234`, or a
/// closure's type name) belong to the function path `pattern`?
///
/// The pattern matches whole path segments anywhere in the name, so `pool::Pool::new` matches
/// `my_crate::pool::Pool::new` and its closures, but not `my_crate::pool::Pool::new_pool`.
pub(crate) fn function_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim().trim_start_matches("::");
    if pattern.is_empty() {
        return false;
    }
    let name = strip_symbol_hash(name);
    let mut start = 0;
    while let Some(found) = name[start..].find(pattern) {
        let at = start + found;
        let end = at + pattern.len();
        let starts_segment = at == 0 || name[..at].ends_with("::") || name[..at].ends_with('<');
        let ends_segment =
            end == name.len() || name[end..].starts_with("::") || name[end..].starts_with('<');
        if starts_segment && ends_segment {
            return true;
        }
        start = at + 1;
    }
    false
}

/// Removes the `::h0123456789abcdef` suffix of legacy-mangled Rust symbols.
fn strip_symbol_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("worker", "worker"));
        assert!(!glob_matches("worker", "worker-1"));
        assert!(glob_matches("worker-*", "worker-1"));
        assert!(glob_matches("*-pool-*", "db-pool-3"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*b", "ab-c"));
        assert!(glob_matches("a*b*b", "abb"));
    }

    #[test]
    fn paths_match_suffixes_on_component_boundaries() {
        assert!(path_ends_with("/home/me/app/src/pool.rs", "src/pool.rs"));
        assert!(path_ends_with("src/pool.rs", "./src/pool.rs"));
        assert!(!path_ends_with("src/mempool.rs", "pool.rs"));
    }

    #[test]
    fn function_paths_match_whole_segments() {
        let symbol = "my_crate::pool::Pool::new::{{closure}}::h0123456789abcdef";
        assert!(function_matches("pool::Pool::new", symbol));
        assert!(function_matches("my_crate::pool", symbol));
        assert!(function_matches("Pool::new", "my_crate::pool::Pool::new"));
        assert!(!function_matches("Pool::ne", symbol));
        assert!(!function_matches(
            "pool::Pool::new",
            "my_crate::pool::Pool::new_pool"
        ));
        assert!(!function_matches("", symbol));
    }
}
