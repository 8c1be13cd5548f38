//! Source paths as a reader wants them: short, and the same on every machine.
//!
//! Debug info names files by absolute path: the user's under the workspace, a dependency's in
//! cargo's registry cache (`~/.cargo/registry/src/index.crates.io-<hash>/tokio-1.54.1/src/…`),
//! std's under the path the toolchain was built at (`/rustc/<commit>/library/std/src/…`). Reports
//! show them as `tests/pool.rs`, `tokio-1.54.1/src/runtime/park.rs` and `std/src/sync/mpsc.rs`:
//! the user's relative to the workspace root (as spawn sites already are), a dependency's from its
//! `name-version` directory, the toolchain's from its library directory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `path` as a report shows it.
pub(crate) fn short_path(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') && !is_windows_absolute(path) {
        return Cow::Borrowed(path);
    }
    if let Some(short) = toolchain_source(path) {
        return Cow::Borrowed(short);
    }
    if let Some(short) = dependency_source(path) {
        return short;
    }
    match workspace_relative(path) {
        Some(short) => Cow::Owned(short),
        None => Cow::Borrowed(path),
    }
}

fn is_windows_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() > 2 && bytes[1] == b':' && (bytes[2] == b'\\' || bytes[2] == b'/')
}

/// `std/src/sync/mpsc.rs` from `/rustc/<commit>/library/std/src/sync/mpsc.rs`, or from the
/// `rust-src` component's `…/lib/rustlib/src/rust/library/std/src/sync/mpsc.rs`.
fn toolchain_source(path: &str) -> Option<&str> {
    let path_sep = |c: char| c == '/' || c == '\\';
    if let Some(rest) = path.strip_prefix("/rustc/") {
        let (_commit, rest) = rest.split_once(path_sep)?;
        return Some(rest.strip_prefix("library/").unwrap_or(rest));
    }
    let marker = path
        .find("/rustlib/src/rust/library/")
        .map(|at| at + "/rustlib/src/rust/library/".len())?;
    Some(&path[marker..])
}

/// `tokio-1.54.1/src/runtime/park.rs` from cargo's registry cache, and `name-<hash>/<rest>` from
/// its git checkouts (`~/.cargo/git/checkouts/name-<hash>/<commit>/<rest>`).
fn dependency_source(path: &str) -> Option<Cow<'_, str>> {
    if let Some(at) = path.find("/registry/src/") {
        let (_index, rest) = path[at + "/registry/src/".len()..].split_once('/')?;
        return Some(Cow::Borrowed(rest));
    }
    let at = path.find("/git/checkouts/")?;
    let (checkout, rest) = path[at + "/git/checkouts/".len()..].split_once('/')?;
    let (_commit, rest) = rest.split_once('/')?;
    Some(Cow::Owned(format!("{checkout}/{rest}")))
}

/// `path` relative to the workspace root (or the working directory), if it lies under it.
fn workspace_relative(path: &str) -> Option<String> {
    let path = Path::new(path);
    roots()
        .iter()
        .find_map(|root| path.strip_prefix(root).ok())
        .map(|relative| relative.display().to_string())
}

/// The directories paths are shown relative to, most specific last tried: the workspace root
/// (the nearest ancestor of the package directory that holds `Cargo.lock`, where cargo runs
/// tests from), then the working directory.
fn roots() -> &'static [PathBuf] {
    static ROOTS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let working = std::env::current_dir().ok();
        // Cargo sets it for the processes it runs (`cargo test`, `cargo run`).
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| working.clone());
        let workspace = package.as_deref().and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .map(Path::to_path_buf)
        });
        workspace.into_iter().chain(working).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolchains_sources_read_from_their_library() {
        assert_eq!(
            short_path(
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/sync/mpsc.rs"
            ),
            "std/src/sync/mpsc.rs"
        );
        assert_eq!(
            short_path(
                "/home/me/.rustup/toolchains/stable/lib/rustlib/src/rust/library/core/src/ops/function.rs"
            ),
            "core/src/ops/function.rs"
        );
    }

    #[test]
    fn dependencies_read_from_their_name_and_version() {
        assert_eq!(
            short_path("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/park.rs"),
            "tokio-1.54.1/src/runtime/park.rs"
        );
        assert_eq!(
            short_path("/home/me/.cargo/git/checkouts/mio-0123abcd/f00ba47/src/poll.rs"),
            "mio-0123abcd/src/poll.rs"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads the working directory, which Miri's isolation forbids"
    )]
    fn relative_and_unknown_paths_are_kept() {
        assert_eq!(short_path("tests/pool.rs"), "tests/pool.rs");
        assert_eq!(
            short_path("./nptl/pthread_create.c"),
            "./nptl/pthread_create.c"
        );
        assert_eq!(short_path("/opt/elsewhere/x.rs"), "/opt/elsewhere/x.rs");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads the working directory, which Miri's isolation forbids"
    )]
    fn the_users_sources_read_from_the_workspace_root() {
        let here = std::env::current_dir().unwrap().join("src/report/paths.rs");
        let shown = short_path(here.to_str().unwrap()).into_owned();
        assert!(!shown.starts_with('/'), "{shown}");
        assert!(shown.ends_with("src/report/paths.rs"), "{shown}");
    }
}
