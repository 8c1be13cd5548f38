//! Parsing and validation of the arguments of `#[leak_test(...)]`.
//!
//! Every argument is described once, in [`table::ARGS`]; this module reads the attribute's
//! tokens against that table. Every mistake is reported at the token that causes it, and all
//! mistakes of one attribute are reported together, so a user fixes them in one round.

mod table;
mod value;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Meta, Path, Token};

pub(crate) use table::Flavor;
use table::{accepted_list, lookup, ArgSpec, Kind, Style, ARGS};
use value::Value;

use crate::errors::Errors;
use crate::suggest;

/// The validated arguments of one `#[leak_test(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// `timeout = "..."`: the grace period in nanoseconds, and the literal it was written as.
    pub(crate) timeout: Option<(u64, LitStr)>,
    /// `ignore_name`, `ignore_spawned_at` and `ignore_function`, in the order they were written.
    pub(crate) ignores: Vec<IgnoreArg>,
    /// `ignore_current`: the flag's identifier.
    pub(crate) ignore_current: Option<Ident>,
    /// `process_wide`: the flag's identifier.
    pub(crate) process_wide: Option<Ident>,
    /// `tokio` and the runtime configuration that goes with it.
    pub(crate) tokio: Option<TokioArgs>,
    /// `crate = path`: where the generated code finds leakcheck (`::leakcheck` unless given).
    pub(crate) crate_path: Option<Path>,
}

/// One `ignore_* = "pattern"` argument.
pub(crate) struct IgnoreArg {
    /// The argument's name as written, which is also the `Options` method it calls.
    pub(crate) method: Ident,
    /// The pattern, passed on to the runtime as written.
    pub(crate) pattern: LitStr,
}

/// The configuration of the tokio runtime that `#[leak_test(tokio)]` builds.
pub(crate) struct TokioArgs {
    /// The `tokio` flag itself, whose span the code that needs leakcheck's `tokio` feature takes.
    pub(crate) flag: Ident,
    /// `flavor = "..."`, `current_thread` unless given (as with `#[tokio::test]`).
    pub(crate) flavor: Flavor,
    /// `worker_threads = N`: only with the `multi_thread` flavor.
    pub(crate) worker_threads: Option<usize>,
    /// `start_paused = true|false`: only with the `current_thread` and `local` flavors.
    pub(crate) start_paused: bool,
    /// The `start_paused` key when it is `true`: what needs leakcheck's `tokio-test-util` feature.
    pub(crate) paused_key: Option<Ident>,
}

/// What the arguments apply to: the test function, as far as the arguments care.
pub(crate) struct Target<'a> {
    /// The function's name, for messages.
    pub(crate) name: &'a Ident,
    /// Whether the function is (or, before an expanded `#[tokio::test]`, was) `async`.
    pub(crate) is_async: bool,
}

/// Parses and validates the tokens between the parentheses of `#[leak_test(...)]`.
///
/// Syntax errors (tokens that are not a comma-separated list of `name`, `name = value`) stop the
/// parsing at once; every other mistake is collected, and they are returned together.
pub(crate) fn parse(tokens: TokenStream, target: &Target<'_>) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut collector = Collector::default();
    for meta in metas {
        collector.argument(meta);
    }
    collector.finish(target)
}

/// One argument as given.
struct Given {
    spec: &'static ArgSpec,
    /// The argument's name as written.
    key: Ident,
    /// The whole `name = value`, for errors about the argument as a whole.
    whole: TokenStream,
    value: Value,
}

/// The arguments seen so far, and the errors found so far.
#[derive(Default)]
struct Collector {
    errors: Errors,
    given: Vec<Given>,
    /// Arguments given but malformed: checks that depend on them are skipped, as the value meant
    /// is not known.
    malformed: Vec<&'static str>,
}

impl Collector {
    /// Takes in one argument, recording it or the errors it has.
    fn argument(&mut self, meta: Meta) {
        let Some(key) = meta.path().get_ident().cloned() else {
            self.errors.push(syn::Error::new_spanned(
                meta.path(),
                format!("unknown argument; expected one of: {}", accepted_list()),
            ));
            return;
        };
        let Some(spec) = lookup(&key.to_string()) else {
            self.errors.push(unknown_argument(&key));
            return;
        };
        let whole = meta.to_token_stream();
        if !spec.repeatable && self.given.iter().any(|given| given.spec.name == spec.name) {
            self.errors.push(syn::Error::new_spanned(
                &whole,
                format!("`{}` is given twice", spec.name),
            ));
            // The value is still checked: a malformed duplicate has two mistakes.
            if let Meta::NameValue(name_value) = &meta {
                if spec.kind != Kind::Flag {
                    if let Err(error) = value::parse(spec, &name_value.value) {
                        self.errors.push(error);
                    }
                }
            }
            return;
        }
        let value = match (&meta, spec.kind) {
            (Meta::Path(_), Kind::Flag) => Ok(Value::Flag),
            (Meta::Path(_), _) => Err(syn::Error::new_spanned(
                &key,
                format!("`{}` needs a value: {}", spec.name, spec.usage()),
            )),
            (Meta::NameValue(name_value), Kind::Flag) => Err(syn::Error::new_spanned(
                name_value,
                format!(
                    "`{0}` is a flag and takes no value: write `{0}` alone",
                    spec.name
                ),
            )),
            (Meta::NameValue(name_value), _) => value::parse(spec, &name_value.value),
            (Meta::List(list), kind) => {
                let form = match kind {
                    Kind::Flag => format!("write `{}` alone", spec.name),
                    _ => format!("write {}", spec.usage()),
                };
                Err(syn::Error::new_spanned(
                    list,
                    format!("`{}` does not take a list: {form}", spec.name),
                ))
            }
        };
        match value {
            Ok(value) => self.given.push(Given {
                spec,
                key,
                whole,
                value,
            }),
            Err(error) => {
                self.malformed.push(spec.name);
                self.errors.push(error);
            }
        }
    }

    /// The first value given for the argument `name`.
    fn value(&self, name: &str) -> Option<&Given> {
        self.given.iter().find(|given| given.spec.name == name)
    }

    /// Checks each argument against the kind of test and the runtime flavor.
    fn check_applicability(&mut self, target: &Target<'_>) {
        let tokio = self.value("tokio").is_some() || self.malformed.contains(&"tokio");
        let style = match (target.is_async, tokio) {
            (false, _) => Style::Sync,
            (true, false) => Style::Async,
            (true, true) => Style::Tokio,
        };
        let flavor = match self.value("flavor").map(|given| &given.value) {
            Some(Value::Flavor(flavor)) => Some(*flavor),
            _ if self.malformed.contains(&"flavor") => None,
            _ => Some(Flavor::CurrentThread),
        };
        let mut errors = Vec::new();
        for given in &self.given {
            let spec = given.spec;
            if !spec.styles.accept(style) {
                if spec.styles.sync || spec.styles.async_ {
                    // `tokio` on a non-`async` function.
                    errors.push(syn::Error::new_spanned(
                        &given.key,
                        format!(
                            "`{0}` {1}, but `{2}` is not `async`: write `async fn {2}`, or \
                             remove `{0}`",
                            spec.name, spec.help, target.name
                        ),
                    ));
                } else if !tokio {
                    errors.push(syn::Error::new_spanned(
                        &given.whole,
                        format!("`{}` {}: add the `tokio` argument", spec.name, spec.help),
                    ));
                }
                // With `tokio` on a non-`async` function, that error is the one that helps.
                continue;
            }
            if let (Some(flavors), Some(flavor), Style::Tokio) = (spec.flavors, flavor, style) {
                if !flavors.contains(&flavor) {
                    errors.push(wrong_flavor(spec, flavors, &given.whole));
                }
            }
        }
        for error in errors {
            self.errors.push(error);
        }
    }

    /// Checks the arguments against each other, and returns them or every error found.
    fn finish(mut self, target: &Target<'_>) -> syn::Result<Args> {
        self.check_applicability(target);
        self.errors.into_result()?;
        let mut args = Args::default();
        let mut tokio = None;
        let mut flavor = Flavor::CurrentThread;
        let mut worker_threads = None;
        let mut start_paused = false;
        let mut paused_key = None;
        for given in self.given {
            match (given.spec.name, given.value) {
                (_, Value::Duration(nanos, literal)) => args.timeout = Some((nanos, literal)),
                (_, Value::Pattern(pattern)) => args.ignores.push(IgnoreArg {
                    method: given.key,
                    pattern,
                }),
                ("ignore_current", Value::Flag) => args.ignore_current = Some(given.key),
                ("process_wide", Value::Flag) => args.process_wide = Some(given.key),
                ("tokio", Value::Flag) => tokio = Some(given.key),
                (_, Value::Flavor(given)) => flavor = given,
                (_, Value::Count(count)) => worker_threads = Some(count),
                (_, Value::Bool(paused)) => {
                    start_paused = paused;
                    paused_key = paused.then_some(given.key);
                }
                (_, Value::Path(path)) => args.crate_path = Some(path),
                (name, Value::Flag) => unreachable!("every flag is handled: {name}"),
            }
        }
        args.tokio = tokio.map(|flag| TokioArgs {
            flag,
            flavor,
            worker_threads,
            start_paused,
            paused_key,
        });
        Ok(args)
    }
}

/// The error for an argument that needs another runtime flavor.
fn wrong_flavor(spec: &ArgSpec, flavors: &[Flavor], tokens: &TokenStream) -> syn::Error {
    let names: Vec<String> = flavors
        .iter()
        .map(|flavor| format!("`{}`", flavor.name()))
        .collect();
    let list = match names.split_last() {
        Some((last, others)) if !others.is_empty() => format!("{} or {last}", others.join(", ")),
        _ => names.concat(),
    };
    syn::Error::new_spanned(
        tokens,
        format!(
            "`{}` requires the {list} flavor: `#[leak_test(tokio, flavor = \"{}\", {})]`",
            spec.name,
            flavors[0].name(),
            spec.usage().trim_matches('`'),
        ),
    )
}

/// The error for an argument name that does not exist, with a suggestion when one is close.
fn unknown_argument(name: &Ident) -> syn::Error {
    let written = name.to_string();
    let suggestion = suggest::closest(&written, ARGS.iter().map(|spec| spec.name))
        .map(|candidate| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default();
    syn::Error::new_spanned(
        name,
        format!(
            "unknown argument `{written}`{suggestion}; expected one of: {}",
            accepted_list()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;
    use quote::quote;

    /// Parses the arguments of an `async fn t`.
    fn parse_async(tokens: TokenStream) -> syn::Result<Args> {
        let name = Ident::new("t", Span::call_site());
        parse(
            tokens,
            &Target {
                name: &name,
                is_async: true,
            },
        )
    }

    fn error_messages(tokens: TokenStream) -> Vec<String> {
        match parse_async(tokens) {
            Ok(_) => panic!("expected errors"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn parses_every_argument() {
        let args = parse_async(quote! {
            timeout = "1.5s", ignore_name = "worker-*", ignore_spawned_at = "src/pool.rs:42",
            ignore_function = "app::flush", ignore_name = "metrics", ignore_current, process_wide,
            tokio, flavor = "multi_thread", worker_threads = 4, crate = "my::leakcheck",
        })
        .unwrap();
        assert_eq!(args.timeout.unwrap().0, 1_500_000_000);
        let ignores: Vec<_> = args
            .ignores
            .iter()
            .map(|ignore| (ignore.method.to_string(), ignore.pattern.value()))
            .collect();
        assert_eq!(
            ignores,
            [
                ("ignore_name".to_owned(), "worker-*".to_owned()),
                ("ignore_spawned_at".to_owned(), "src/pool.rs:42".to_owned()),
                ("ignore_function".to_owned(), "app::flush".to_owned()),
                ("ignore_name".to_owned(), "metrics".to_owned()),
            ]
        );
        assert!(args.ignore_current.is_some() && args.process_wide.is_some());
        let tokio = args.tokio.unwrap();
        assert_eq!(tokio.flavor, Flavor::MultiThread);
        assert_eq!(tokio.worker_threads, Some(4));
        assert!(!tokio.start_paused);
        let krate = args.crate_path.unwrap();
        assert_eq!(krate.to_token_stream().to_string(), "my :: leakcheck");
    }

    #[test]
    fn crate_takes_a_bare_path_too() {
        let args = parse_async(quote!(crate = ::support::leakcheck)).unwrap();
        let krate = args.crate_path.unwrap();
        assert_eq!(
            krate.to_token_stream().to_string(),
            ":: support :: leakcheck"
        );
        assert_eq!(
            error_messages(quote!(crate = "not a path")),
            ["`crate` must be a path, for example `crate = my_test_support::leakcheck`"]
        );
    }

    #[test]
    fn tokio_defaults_to_current_thread_and_takes_start_paused() {
        for (tokens, flavor) in [
            (quote!(tokio, start_paused = true), Flavor::CurrentThread),
            (
                quote!(tokio, flavor = "local", start_paused = true),
                Flavor::Local,
            ),
        ] {
            let tokio = parse_async(tokens).unwrap().tokio.unwrap();
            assert_eq!(tokio.flavor, flavor);
            assert_eq!(tokio.worker_threads, None);
            assert!(tokio.start_paused);
        }
    }

    #[test]
    fn empty_arguments_are_the_defaults() {
        let args = parse_async(TokenStream::new()).unwrap();
        assert!(args.timeout.is_none() && args.ignores.is_empty() && args.tokio.is_none());
        assert!(args.crate_path.is_none());
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let errors = error_messages(quote! {
            timout = "1s", timeout = 500ms, ignore_name = 3, flavor = "locale", tokio = true,
        });
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("unknown argument `timout` (did you mean `timeout`?)"));
        assert_eq!(
            errors[1],
            "`timeout` is a string: write `timeout = \"500ms\"`"
        );
        assert!(errors[2].starts_with("`ignore_name` must be a string literal"));
        assert_eq!(
            errors[3],
            "unknown flavor `locale` (did you mean \"local\"?); expected \"current_thread\", \
             \"multi_thread\" or \"local\""
        );
        assert!(errors[4].starts_with("`tokio` is a flag and takes no value"));
        let errors = error_messages(quote!(flavor = "multi_thread", start_paused = false));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("`flavor` configures the tokio runtime"));
        assert!(errors[1].starts_with("`start_paused` configures the tokio runtime"));
    }

    #[test]
    fn numbers_for_durations_suggest_a_valid_string() {
        let errors = error_messages(quote!(timeout = 500));
        assert_eq!(
            errors,
            [
                "`timeout` is a string with a unit: write `timeout = \"500ms\"` or \
              `timeout = \"500s\"` (units: `ns`, `us`, `ms`, `s`, `m`)"
            ]
        );
        assert_eq!(
            error_messages(quote!(timeout = 1.5s)),
            ["`timeout` is a string: write `timeout = \"1.5s\"`"]
        );
        // Every suggested string is itself valid.
        for suggestion in ["500ms", "500s", "1.5s"] {
            assert!(crate::duration::parse_duration(suggestion).is_ok());
        }
    }

    #[test]
    fn malformed_durations_carry_the_parser_message() {
        let errors = error_messages(quote!(timeout = "5 parsecs"));
        assert!(
            errors[0].contains("expected a number followed by a unit"),
            "{errors:?}"
        );
        let errors = error_messages(quote!(timeout = "100000000000m"));
        assert!(errors[0].contains("out of range"), "{errors:?}");
    }

    #[test]
    fn malformed_patterns_are_errors() {
        let errors = error_messages(quote!(ignore_spawned_at = "src/x.rs:abc"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "invalid `ignore_spawned_at` pattern: `src/x.rs:abc`: `abc` is not a line number"
            ),
            "{errors:?}"
        );
        let errors = error_messages(quote!(ignore_function = "src/telemetry.rs"));
        assert!(errors[0].contains("is a source file"), "{errors:?}");
    }

    #[test]
    fn duplicates_are_errors_but_ignores_repeat() {
        for (tokens, key) in [
            (quote!(timeout = "1s", timeout = "2s"), "timeout"),
            (quote!(tokio, tokio), "tokio"),
            (quote!(process_wide, process_wide), "process_wide"),
            (quote!(crate = a, crate = b), "crate"),
            (
                quote!(tokio, flavor = "multi_thread", flavor = "multi_thread"),
                "flavor",
            ),
            (
                quote!(
                    tokio,
                    flavor = "multi_thread",
                    worker_threads = 1,
                    worker_threads = 2
                ),
                "worker_threads",
            ),
            (
                quote!(tokio, start_paused = true, start_paused = false),
                "start_paused",
            ),
        ] {
            assert_eq!(error_messages(tokens), [format!("`{key}` is given twice")]);
        }
        assert_eq!(
            error_messages(quote!(timeout = "1s", timeout = "2 parsecs")).len(),
            2
        );
        assert_eq!(
            parse_async(quote!(ignore_name = "a", ignore_name = "b"))
                .unwrap()
                .ignores
                .len(),
            2
        );
    }

    #[test]
    fn runtime_arguments_need_their_flavor() {
        let errors = error_messages(quote!(tokio, worker_threads = 2));
        assert_eq!(
            errors,
            ["`worker_threads` requires the `multi_thread` flavor: \
              `#[leak_test(tokio, flavor = \"multi_thread\", worker_threads = 2)]`"]
        );
        let errors = error_messages(quote!(tokio, flavor = "local", worker_threads = 2));
        assert!(errors[0].starts_with("`worker_threads` requires the `multi_thread` flavor"));
        let errors = error_messages(quote!(tokio, flavor = "multi_thread", start_paused = true));
        assert_eq!(
            errors,
            [
                "`start_paused` requires the `current_thread` or `local` flavor: \
              `#[leak_test(tokio, flavor = \"current_thread\", start_paused = true)]`"
            ]
        );
        let errors = error_messages(quote!(tokio, flavor = "multi_thread", worker_threads = 0));
        assert_eq!(errors, ["`worker_threads` must be at least 1"]);
    }

    #[test]
    fn a_malformed_flavor_has_no_follow_on_errors() {
        let errors = error_messages(quote!(tokio, flavor = "multi", worker_threads = 2));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("unknown flavor `multi`"));
    }

    #[test]
    fn tokio_needs_an_async_function() {
        let name = Ident::new("sync_test", Span::call_site());
        let target = Target {
            name: &name,
            is_async: false,
        };
        let errors: Vec<String> = parse(quote!(tokio, flavor = "multi_thread"), &target)
            .err()
            .unwrap()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        // One error: the runtime arguments are not blamed for the missing `async`.
        assert_eq!(
            errors,
            [
                "`tokio` runs an `async` test on a tokio runtime, but `sync_test` is not `async`: \
              write `async fn sync_test`, or remove `tokio`"
            ]
        );
    }

    #[test]
    fn wrong_forms_say_how_to_write_the_argument() {
        assert_eq!(
            error_messages(quote!(timeout)),
            ["`timeout` needs a value: `timeout = \"500ms\"`"]
        );
        assert_eq!(
            error_messages(quote!(tokio(flavor = "multi_thread"))),
            ["`tokio` does not take a list: write `tokio` alone"]
        );
        assert!(
            error_messages(quote!(leakcheck::timeout = "1s"))[0].starts_with("unknown argument;")
        );
        assert_eq!(
            error_messages(quote!(ignore_spawned_at = "  ")),
            ["`ignore_spawned_at` needs a pattern, for example `ignore_spawned_at = \"src/pool.rs:42\"`"]
        );
        assert_eq!(
            error_messages(quote!(tokio, start_paused = "yes")),
            ["`start_paused` must be `true` or `false`"]
        );
        assert!(!unknown_argument(&Ident::new("retries", Span::call_site()))
            .to_string()
            .contains("did you mean"));
    }
}
