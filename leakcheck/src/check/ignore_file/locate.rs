//! Where the project's ignore file is: the nearest one from the package directory up to the
//! workspace root.

use std::path::{Path, PathBuf};

use super::FILE_NAME;

/// The nearest ignore file from `start` up to the workspace root, if there is one.
///
/// The search stops at the first directory above `start` (or `start` itself) whose `Cargo.toml`
/// declares `[workspace]`; without one, at `start`: an unrelated `leakcheck.toml` higher up (in a
/// home directory) never applies to a package that is not in its workspace.
pub(crate) fn locate(start: &Path) -> Option<PathBuf> {
    let root = start
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .unwrap_or(start);
    start
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Whether the manifest at `path` exists and has a `[workspace]` table.
fn declares_workspace(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    toml::from_str::<toml::Table>(&text).is_ok_and(|table| table.contains_key("workspace"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ignore_file::load_from;

    /// A directory tree under the system's temporary directory, removed when dropped.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str) -> TempTree {
            let dir = std::env::temp_dir().join(format!(
                "leakcheck-ignore-file-{tag}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempTree(dir)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_nearest_file_up_to_the_workspace_root_wins() {
        let tree = TempTree::new("nearest");
        tree.write("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n");
        let root_file = tree.write(FILE_NAME, "");
        tree.write("crates/a/Cargo.toml", "[package]\nname = \"a\"\n");
        tree.write("crates/b/Cargo.toml", "[package]\nname = \"b\"\n");
        let own_file = tree.write("crates/b/leakcheck.toml", "");
        assert_eq!(locate(&tree.0.join("crates/a")), Some(root_file));
        assert_eq!(locate(&tree.0.join("crates/b")), Some(own_file));
    }

    #[test]
    fn the_search_stops_at_the_workspace_root() {
        let tree = TempTree::new("stops");
        tree.write(FILE_NAME, "not even toml [");
        tree.write("ws/Cargo.toml", "[workspace]\n");
        tree.write("ws/member/Cargo.toml", "[package]\nname = \"m\"\n");
        assert_eq!(locate(&tree.0.join("ws/member")), None);
        assert!(load_from(&tree.0.join("ws/member")).unwrap().is_none());
    }

    #[test]
    fn a_package_outside_any_workspace_looks_only_in_its_own_directory() {
        let tree = TempTree::new("alone");
        tree.write(FILE_NAME, "");
        tree.write("pkg/Cargo.toml", "[package]\nname = \"p\"\n");
        assert_eq!(locate(&tree.0.join("pkg")), None);
        let own = tree.write("pkg/leakcheck.toml", "");
        assert_eq!(locate(&tree.0.join("pkg")), Some(own));
    }

    #[test]
    fn loading_a_malformed_file_names_the_file_found() {
        let tree = TempTree::new("load");
        tree.write("Cargo.toml", "[package]\nname = \"p\"\n");
        let path = tree.write(FILE_NAME, "[[ignore]]\nname = \"x\"\n");
        let error = load_from(&tree.0).unwrap_err();
        assert_eq!(error.path, path);
        assert_eq!(error.line, Some(1));
        assert!(error.to_string().contains("has no `reason`"), "{error}");
    }
}
