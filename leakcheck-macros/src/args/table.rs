//! The one description of every argument of `#[leak_test(...)]`.
//!
//! Parsing, validation, misuse messages and "did you mean" suggestions all read this table; an
//! argument is added by adding a row (and the code generation for its value).

/// One argument: its name, how it is written, where it applies and what it does.
pub(crate) struct ArgSpec {
    /// The name, as written in the attribute (and, for `Options` arguments, the builder method).
    pub(crate) name: &'static str,
    /// How its value is written.
    pub(crate) kind: Kind,
    /// The test styles it applies to.
    pub(crate) styles: Styles,
    /// With `tokio`: the runtime flavors it applies to (`None`: all of them).
    pub(crate) flavors: Option<&'static [Flavor]>,
    /// Whether it may be given more than once (each occurrence adds to the previous ones).
    pub(crate) repeatable: bool,
    /// A valid value, for messages that show how to write the argument.
    pub(crate) example: &'static str,
    /// What it does, completing "`name` ...".
    pub(crate) help: &'static str,
}

/// How an argument's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Written alone: `process_wide`.
    Flag,
    /// A duration string: `timeout = "500ms"`.
    Duration,
    /// A non-empty pattern string, of the given grammar.
    Pattern(PatternKind),
    /// One of [`FLAVORS`]: `flavor = "multi_thread"`.
    Flavor,
    /// A whole number from 1: `worker_threads = 2`.
    Count,
    /// `true` or `false`.
    Bool,
    /// A path, bare or in a string: `crate = my_tests::leakcheck`, `crate = "my_tests::leakcheck"`.
    Path,
}

/// The grammar of a pattern argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatternKind {
    /// A task name, exact or a `*` glob.
    Name,
    /// A source position or the function that spawned.
    SpawnSite,
    /// A function path.
    Function,
}

/// The kinds of test an argument applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Styles {
    /// `fn`.
    pub(crate) sync: bool,
    /// `async fn` on leakcheck's executor.
    pub(crate) async_: bool,
    /// `async fn` with `tokio`.
    pub(crate) tokio: bool,
}

/// The kind of one test, which decides which arguments it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Sync,
    Async,
    Tokio,
}

impl Styles {
    const ALL: Styles = Styles {
        sync: true,
        async_: true,
        tokio: true,
    };
    const ASYNC: Styles = Styles {
        sync: false,
        async_: true,
        tokio: true,
    };
    const TOKIO: Styles = Styles {
        sync: false,
        async_: false,
        tokio: true,
    };

    /// Whether `style` is one of these.
    pub(crate) fn accept(self, style: Style) -> bool {
        match style {
            Style::Sync => self.sync,
            Style::Async => self.async_,
            Style::Tokio => self.tokio,
        }
    }
}

/// The tokio runtime flavors `#[leak_test(tokio)]` can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `flavor = "current_thread"`: the test's thread drives every task.
    CurrentThread,
    /// `flavor = "multi_thread"`: a pool of worker threads.
    MultiThread,
    /// `flavor = "local"`: tokio's `LocalRuntime`, on the test's thread, where `!Send` tasks can
    /// be spawned.
    Local,
}

/// Every flavor with its name, as `flavor = "..."` writes it.
pub(crate) const FLAVORS: &[(&str, Flavor)] = &[
    ("current_thread", Flavor::CurrentThread),
    ("multi_thread", Flavor::MultiThread),
    ("local", Flavor::Local),
];

impl Flavor {
    /// The name `flavor = "..."` writes.
    pub(crate) fn name(self) -> &'static str {
        FLAVORS
            .iter()
            .find(|(_, flavor)| *flavor == self)
            .map(|(name, _)| *name)
            .expect("every flavor is in FLAVORS")
    }
}

/// Every argument, in the order the documentation lists them.
pub(crate) const ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "timeout",
        kind: Kind::Duration,
        styles: Styles::ALL,
        flavors: None,
        repeatable: false,
        example: "\"500ms\"",
        help: "sets how long the check waits for survivors to finish",
    },
    ArgSpec {
        name: "ignore_name",
        kind: Kind::Pattern(PatternKind::Name),
        styles: Styles::ALL,
        flavors: None,
        repeatable: true,
        example: "\"metrics-*\"",
        help: "ignores tasks by name, exact or a `*` glob",
    },
    ArgSpec {
        name: "ignore_spawned_at",
        kind: Kind::Pattern(PatternKind::SpawnSite),
        styles: Styles::ALL,
        flavors: None,
        repeatable: true,
        example: "\"src/pool.rs:42\"",
        help: "ignores tasks by spawn site: a file, `file:line`, `file:line:column` or a function path",
    },
    ArgSpec {
        name: "ignore_function",
        kind: Kind::Pattern(PatternKind::Function),
        styles: Styles::ALL,
        flavors: None,
        repeatable: true,
        example: "\"my_crate::telemetry::flush_loop\"",
        help: "ignores tasks with this function on their stack",
    },
    ArgSpec {
        name: "ignore_current",
        kind: Kind::Flag,
        styles: Styles::ALL,
        flavors: None,
        repeatable: false,
        example: "",
        help: "ignores the tasks and threads alive when the test starts",
    },
    ArgSpec {
        name: "process_wide",
        kind: Kind::Flag,
        styles: Styles::ALL,
        flavors: None,
        repeatable: false,
        example: "",
        help: "checks every task of the process, not only the test's own",
    },
    ArgSpec {
        name: "tokio",
        kind: Kind::Flag,
        styles: Styles::ASYNC,
        flavors: None,
        repeatable: false,
        example: "",
        help: "runs an `async` test on a tokio runtime",
    },
    ArgSpec {
        name: "flavor",
        kind: Kind::Flavor,
        styles: Styles::TOKIO,
        flavors: None,
        repeatable: false,
        example: "\"multi_thread\"",
        help: "configures the tokio runtime of `#[leak_test(tokio)]`",
    },
    ArgSpec {
        name: "worker_threads",
        kind: Kind::Count,
        styles: Styles::TOKIO,
        flavors: Some(&[Flavor::MultiThread]),
        repeatable: false,
        example: "2",
        help: "configures the tokio runtime of `#[leak_test(tokio)]`",
    },
    ArgSpec {
        name: "start_paused",
        kind: Kind::Bool,
        styles: Styles::TOKIO,
        flavors: Some(&[Flavor::CurrentThread, Flavor::Local]),
        repeatable: false,
        example: "true",
        help: "configures the tokio runtime of `#[leak_test(tokio)]`",
    },
    ArgSpec {
        name: "crate",
        kind: Kind::Path,
        styles: Styles::ALL,
        flavors: None,
        repeatable: false,
        example: "my_test_support::leakcheck",
        help: "names the path of the `leakcheck` crate, for a re-export of it",
    },
];

/// The argument called `name`, if there is one.
pub(crate) fn lookup(name: &str) -> Option<&'static ArgSpec> {
    ARGS.iter().find(|spec| spec.name == name)
}

/// `` `timeout`, `ignore_name`, ... ``, for error messages.
pub(crate) fn accepted_list() -> String {
    ARGS.iter()
        .map(|spec| format!("`{}`", spec.name))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ArgSpec {
    /// How to write the argument: `name` or `name = example`.
    pub(crate) fn usage(&self) -> String {
        match self.kind {
            Kind::Flag => format!("`{}`", self.name),
            _ => format!("`{} = {}`", self.name, self.example),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let docs = include_str!("../lib.rs");
        for (i, spec) in ARGS.iter().enumerate() {
            assert!(
                ARGS[..i].iter().all(|other| other.name != spec.name),
                "`{}` is in the table twice",
                spec.name
            );
            assert!(
                docs.contains(&format!("/// | `{}", spec.name)),
                "`{}` is missing from the argument table of `leak_test`'s documentation",
                spec.name
            );
            assert_eq!(spec.kind == Kind::Flag, spec.example.is_empty());
        }
    }

    #[test]
    fn flavor_restrictions_only_on_tokio_arguments() {
        for spec in ARGS.iter().filter(|spec| spec.flavors.is_some()) {
            assert_eq!(spec.styles, Styles::TOKIO, "{}", spec.name);
        }
    }
}
