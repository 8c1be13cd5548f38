//! Parsing and validation of the arguments of `#[leak_test(...)]`.
//!
//! The arguments mirror the `leakcheck::Options` builder, plus the configuration of the tokio
//! runtime that `#[leak_test(tokio)]` builds. Every mistake is reported at the token that causes
//! it, and all mistakes of one attribute are reported together (through [`syn::Error::combine`]),
//! so a user fixes them in one round instead of one compile per mistake.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Meta, MetaNameValue, Token};

use crate::duration::{parse_duration, ACCEPTED_DURATIONS};

/// Every argument name, in the order the documentation lists them (used in error messages).
const ARGUMENT_NAMES: &[&str] = &[
    "timeout",
    "ignore_name",
    "ignore_spawned_at",
    "ignore_function",
    "ignore_current",
    "process_wide",
    "tokio",
    "flavor",
    "worker_threads",
    "start_paused",
];

/// The validated arguments of one `#[leak_test(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// `timeout = "..."`: the grace period, and the string literal it was written as.
    pub(crate) timeout: Option<(std::time::Duration, LitStr)>,
    /// `ignore_name`, `ignore_spawned_at` and `ignore_function`, in the order they were written.
    pub(crate) ignores: Vec<IgnoreArg>,
    /// `ignore_current`: the flag's identifier.
    pub(crate) ignore_current: Option<Ident>,
    /// `process_wide`: the flag's identifier.
    pub(crate) process_wide: Option<Ident>,
    /// `tokio` and the runtime configuration that goes with it.
    pub(crate) tokio: Option<TokioArgs>,
}

/// One `ignore_* = "pattern"` argument.
pub(crate) struct IgnoreArg {
    /// Which `Options` method the argument calls.
    pub(crate) kind: IgnoreKind,
    /// The argument's name as written, whose span the generated method call takes.
    pub(crate) key: Ident,
    /// The pattern, passed on to the runtime as written.
    pub(crate) pattern: LitStr,
}

/// The three kinds of `ignore_*` argument, one per `Options` method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IgnoreKind {
    /// `ignore_name`: a task name or a glob over it.
    Name,
    /// `ignore_spawned_at`: a source location or the function that spawned.
    SpawnedAt,
    /// `ignore_function`: a function anywhere on the task's stack.
    Function,
}

impl IgnoreKind {
    /// The name of the argument, which is also the name of the `Options` method.
    pub(crate) fn method_name(self) -> &'static str {
        match self {
            IgnoreKind::Name => "ignore_name",
            IgnoreKind::SpawnedAt => "ignore_spawned_at",
            IgnoreKind::Function => "ignore_function",
        }
    }
}

/// The configuration of the tokio runtime that `#[leak_test(tokio)]` builds.
pub(crate) struct TokioArgs {
    /// The `tokio` flag itself, for errors about it (for example on a non-`async` function).
    pub(crate) flag: Ident,
    /// `flavor = "..."`, `current_thread` unless given (as with `#[tokio::test]`).
    pub(crate) flavor: Flavor,
    /// `worker_threads = N`: only with the `multi_thread` flavor.
    pub(crate) worker_threads: Option<usize>,
    /// `start_paused = true|false`: only with the `current_thread` flavor.
    pub(crate) start_paused: bool,
}

/// The tokio runtime flavors `#[leak_test(tokio)]` can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `flavor = "current_thread"`: the test's thread drives every task.
    CurrentThread,
    /// `flavor = "multi_thread"`: a pool of worker threads.
    MultiThread,
}

/// Parses and validates the tokens between the parentheses of `#[leak_test(...)]`.
///
/// Syntax errors (tokens that are not a comma-separated list of `name`, `name = value`) stop the
/// parsing at once; every other mistake is collected, and they are returned together.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut collector = Collector::default();
    for meta in metas {
        collector.argument(meta);
    }
    collector.finish()
}

/// A value seen once, with the `name = value` tokens it came from (for errors about it).
type Seen<T> = Option<(T, TokenStream)>;

/// The arguments seen so far, and the errors found so far.
#[derive(Default)]
struct Collector {
    errors: Errors,
    timeout: Seen<(std::time::Duration, LitStr)>,
    ignores: Vec<IgnoreArg>,
    ignore_current: Option<Ident>,
    process_wide: Option<Ident>,
    tokio: Option<Ident>,
    flavor: Seen<Flavor>,
    /// A `flavor` was given but is malformed: the checks that depend on the flavor are skipped,
    /// as the flavor meant is not known.
    flavor_invalid: bool,
    worker_threads: Seen<usize>,
    start_paused: Seen<bool>,
}

impl Collector {
    /// Takes in one argument, recording it or the errors it has.
    fn argument(&mut self, meta: Meta) {
        let Some(name) = meta.path().get_ident().cloned() else {
            self.errors.push(syn::Error::new_spanned(
                meta.path(),
                format!("unknown argument; expected one of: {}", accepted_list()),
            ));
            return;
        };
        let key = name.to_string();
        if !ARGUMENT_NAMES.contains(&key.as_str()) {
            self.errors.push(unknown_argument(&name));
            return;
        }
        match meta {
            Meta::Path(_) => self.flag(name),
            Meta::NameValue(name_value) => self.name_value(name, name_value),
            Meta::List(list) => {
                let form = if is_flag(&key) {
                    format!("write `{key}` alone")
                } else {
                    format!("write `{key} = {}`", example_value(&key))
                };
                self.errors.push(syn::Error::new_spanned(
                    list,
                    format!("`{key}` does not take a list: {form}"),
                ));
            }
        }
    }

    /// A bare name: one of the flags, or a `name = value` argument missing its value.
    fn flag(&mut self, name: Ident) {
        let key = name.to_string();
        let slot = match key.as_str() {
            "ignore_current" => &mut self.ignore_current,
            "process_wide" => &mut self.process_wide,
            "tokio" => &mut self.tokio,
            _ => {
                self.errors.push(syn::Error::new_spanned(
                    &name,
                    format!("`{key}` needs a value: `{key} = {}`", example_value(&key)),
                ));
                return;
            }
        };
        if slot.is_some() {
            self.errors.push(syn::Error::new_spanned(
                &name,
                format!("`{key}` is given twice"),
            ));
        } else {
            *slot = Some(name);
        }
    }

    /// A `name = value` argument.
    fn name_value(&mut self, name: Ident, name_value: MetaNameValue) {
        let key = name.to_string();
        if is_flag(&key) {
            self.errors.push(syn::Error::new_spanned(
                &name_value,
                format!("`{key}` is a flag and takes no value: write `{key}` alone"),
            ));
            return;
        }
        let whole = name_value.to_token_stream();
        let value = &name_value.value;
        match key.as_str() {
            "timeout" => {
                let timeout = timeout(value);
                self.record(&key, whole, timeout, |this| &mut this.timeout);
            }
            "ignore_name" | "ignore_spawned_at" | "ignore_function" => {
                let kind = match key.as_str() {
                    "ignore_name" => IgnoreKind::Name,
                    "ignore_spawned_at" => IgnoreKind::SpawnedAt,
                    _ => IgnoreKind::Function,
                };
                match pattern(&key, value) {
                    Ok(pattern) => self.ignores.push(IgnoreArg {
                        kind,
                        key: name,
                        pattern,
                    }),
                    Err(error) => self.errors.push(error),
                }
            }
            "flavor" => {
                let flavor = flavor(value);
                self.flavor_invalid |= flavor.is_err();
                self.record(&key, whole, flavor, |this| &mut this.flavor);
            }
            "worker_threads" => {
                let threads = worker_threads(value);
                self.record(&key, whole, threads, |this| &mut this.worker_threads);
            }
            "start_paused" => {
                let paused = start_paused(value);
                self.record(&key, whole, paused, |this| &mut this.start_paused);
            }
            _ => unreachable!("every argument name is handled: {key}"),
        }
    }

    /// Records an argument that may be given once, or the error it has.
    ///
    /// A duplicate is reported even when its value is malformed: both are mistakes.
    fn record<T>(
        &mut self,
        key: &str,
        whole: TokenStream,
        value: syn::Result<T>,
        slot: impl FnOnce(&mut Self) -> &mut Seen<T>,
    ) {
        let mut errors = Vec::new();
        let slot = slot(self);
        if slot.is_some() {
            errors.push(syn::Error::new_spanned(
                &whole,
                format!("`{key}` is given twice"),
            ));
        }
        match value {
            Ok(value) if slot.is_none() => *slot = Some((value, whole)),
            Ok(_) => {}
            Err(error) => errors.push(error),
        }
        for error in errors {
            self.errors.push(error);
        }
    }

    /// Checks that the runtime arguments suit `flavor`, as `#[tokio::test]` does.
    fn check_flavor(&mut self, flavor: Flavor) {
        if let (Flavor::CurrentThread, Some((_, tokens))) = (flavor, &self.worker_threads) {
            self.errors.push(syn::Error::new_spanned(
                tokens,
                "`worker_threads` requires the `multi_thread` flavor: \
                 `#[leak_test(tokio, flavor = \"multi_thread\", worker_threads = N)]`",
            ));
        }
        if let (Flavor::MultiThread, Some((_, tokens))) = (flavor, &self.start_paused) {
            self.errors.push(syn::Error::new_spanned(
                tokens,
                "`start_paused` requires the `current_thread` flavor \
                 (the default of `#[leak_test(tokio)]`)",
            ));
        }
    }

    /// Checks the arguments against each other, and returns them or every error found.
    fn finish(mut self) -> syn::Result<Args> {
        let tokio = match self.tokio.take() {
            Some(flag) => {
                let flavor = self
                    .flavor
                    .as_ref()
                    .map_or(Flavor::CurrentThread, |(flavor, _)| *flavor);
                // After a malformed `flavor` (already reported), the flavor meant is unknown.
                if !self.flavor_invalid {
                    self.check_flavor(flavor);
                }
                Some(TokioArgs {
                    flag,
                    flavor,
                    worker_threads: self.worker_threads.map(|(threads, _)| threads),
                    start_paused: self.start_paused.is_some_and(|(paused, _)| paused),
                })
            }
            None => {
                let runtime_arguments = [
                    ("flavor", self.flavor.take().map(|(_, tokens)| tokens)),
                    (
                        "worker_threads",
                        self.worker_threads.take().map(|(_, tokens)| tokens),
                    ),
                    (
                        "start_paused",
                        self.start_paused.take().map(|(_, tokens)| tokens),
                    ),
                ];
                for (key, tokens) in runtime_arguments {
                    if let Some(tokens) = tokens {
                        self.errors.push(syn::Error::new_spanned(
                            tokens,
                            format!(
                                "`{key}` configures the tokio runtime of `#[leak_test(tokio)]`: \
                                 add the `tokio` argument"
                            ),
                        ));
                    }
                }
                None
            }
        };
        self.errors.into_result()?;
        Ok(Args {
            timeout: self.timeout.map(|(timeout, _)| timeout),
            ignores: self.ignores,
            ignore_current: self.ignore_current,
            process_wide: self.process_wide,
            tokio,
        })
    }
}

/// Errors collected to be reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error to the ones already found.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok` when no error was found, otherwise every error as one.
    pub(crate) fn into_result(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The value of `timeout = "..."`: a duration the runtime's parser accepts, in range.
fn timeout(value: &Expr) -> syn::Result<(std::time::Duration, LitStr)> {
    let literal = string_literal("timeout", value)?;
    let duration = parse_duration(&literal.value())
        .map_err(|message| syn::Error::new_spanned(&literal, message))?;
    if u64::try_from(duration.as_nanos()).is_err() {
        return Err(syn::Error::new_spanned(
            &literal,
            "this timeout is out of range: it must be under 584 years",
        ));
    }
    Ok((duration, literal))
}

/// The value of `ignore_* = "..."`: a non-empty string.
fn pattern(key: &str, value: &Expr) -> syn::Result<LitStr> {
    let literal = string_literal(key, value)?;
    if literal.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &literal,
            format!(
                "`{key}` needs a pattern, for example `{key} = {}`",
                example_value(key)
            ),
        ));
    }
    Ok(literal)
}

/// The value of `flavor = "..."`.
fn flavor(value: &Expr) -> syn::Result<Flavor> {
    let literal = string_literal("flavor", value)?;
    match literal.value().as_str() {
        "current_thread" => Ok(Flavor::CurrentThread),
        "multi_thread" => Ok(Flavor::MultiThread),
        other => {
            let suggestion = closest(other, &["current_thread", "multi_thread"])
                .map(|flavor| format!(" (did you mean \"{flavor}\"?)"))
                .unwrap_or_default();
            Err(syn::Error::new_spanned(
                &literal,
                format!(
                    "unknown flavor `{other}`{suggestion}; \
                     expected \"current_thread\" or \"multi_thread\""
                ),
            ))
        }
    }
}

/// The value of `worker_threads = N`: an integer of at least 1.
fn worker_threads(value: &Expr) -> syn::Result<usize> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`worker_threads` must be an integer literal, for example `worker_threads = 2`",
        ));
    };
    match int.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new_spanned(
            int,
            "`worker_threads` must be at least 1",
        )),
        Ok(threads) => Ok(threads),
        Err(error) => Err(syn::Error::new_spanned(
            int,
            format!("`worker_threads` is not a valid thread count: {error}"),
        )),
    }
}

/// The value of `start_paused = true|false`.
fn start_paused(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(paused),
            ..
        }) => Ok(paused.value),
        other => Err(syn::Error::new_spanned(
            other,
            "`start_paused` must be `true` or `false`",
        )),
    }
}

/// The string literal `value` must be, for the argument `key`.
fn string_literal(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) => Ok(literal.clone()),
        // `timeout = 500ms` lexes as the integer `500` with the suffix `ms`: say how to write it.
        Expr::Lit(ExprLit {
            lit: lit @ (Lit::Int(_) | Lit::Float(_)),
            ..
        }) if key == "timeout" => Err(syn::Error::new_spanned(
            lit,
            format!(
                "`timeout` is a string: write `timeout = \"{}\"`",
                lit.to_token_stream()
            ),
        )),
        _ if key == "timeout" => Err(syn::Error::new_spanned(
            value,
            format!("`timeout` must be a string literal holding {ACCEPTED_DURATIONS}"),
        )),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` must be a string literal, for example `{key} = {}`",
                example_value(key)
            ),
        )),
    }
}

/// Whether the argument `key` is a flag (written alone, without a value).
fn is_flag(key: &str) -> bool {
    matches!(key, "ignore_current" | "process_wide" | "tokio")
}

/// An example value of the argument `key`, for error messages.
fn example_value(key: &str) -> &'static str {
    match key {
        "timeout" => "\"500ms\"",
        "ignore_name" => "\"metrics-*\"",
        "ignore_spawned_at" => "\"src/pool.rs:42\"",
        "ignore_function" => "\"my_crate::telemetry::flush_loop\"",
        "flavor" => "\"multi_thread\"",
        "worker_threads" => "2",
        "start_paused" => "true",
        _ => "...",
    }
}

/// `` `timeout`, `ignore_name`, ... ``, for error messages.
fn accepted_list() -> String {
    ARGUMENT_NAMES
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for an argument name that does not exist, with a suggestion when one is close.
fn unknown_argument(name: &Ident) -> syn::Error {
    let written = name.to_string();
    let suggestion = closest(&written, ARGUMENT_NAMES)
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

/// The candidate closest to `written`, if one is close enough to be what was meant.
fn closest<'a>(written: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(written, candidate), *candidate))
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
    use proc_macro2::Span;
    use quote::quote;
    use std::time::Duration;

    fn error_messages(tokens: TokenStream) -> Vec<String> {
        match parse(tokens) {
            Ok(_) => panic!("expected errors"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn parses_every_argument() {
        let args = parse(quote! {
            timeout = "1.5s", ignore_name = "worker-*", ignore_spawned_at = "src/pool.rs:42",
            ignore_function = "app::flush", ignore_name = "metrics", ignore_current, process_wide,
            tokio, flavor = "multi_thread", worker_threads = 4,
        })
        .unwrap();
        assert_eq!(args.timeout.unwrap().0, Duration::from_millis(1500));
        let ignores: Vec<_> = args
            .ignores
            .iter()
            .map(|ignore| (ignore.kind, ignore.pattern.value()))
            .collect();
        assert_eq!(
            ignores,
            [
                (IgnoreKind::Name, "worker-*".to_owned()),
                (IgnoreKind::SpawnedAt, "src/pool.rs:42".to_owned()),
                (IgnoreKind::Function, "app::flush".to_owned()),
                (IgnoreKind::Name, "metrics".to_owned()),
            ]
        );
        assert!(args.ignore_current.is_some() && args.process_wide.is_some());
        let tokio = args.tokio.unwrap();
        assert_eq!(tokio.flavor, Flavor::MultiThread);
        assert_eq!(tokio.worker_threads, Some(4));
        assert!(!tokio.start_paused);
    }

    #[test]
    fn tokio_defaults_to_current_thread_and_takes_start_paused() {
        let tokio = parse(quote!(tokio, start_paused = true))
            .unwrap()
            .tokio
            .unwrap();
        assert_eq!(tokio.flavor, Flavor::CurrentThread);
        assert_eq!(tokio.worker_threads, None);
        assert!(tokio.start_paused);
    }

    #[test]
    fn empty_arguments_are_the_defaults() {
        let args = parse(TokenStream::new()).unwrap();
        assert!(args.timeout.is_none() && args.ignores.is_empty() && args.tokio.is_none());
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let errors = error_messages(quote! {
            timout = "1s", timeout = 500ms, ignore_name = 3, flavor = "local", tokio = true,
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
            "unknown flavor `local`; expected \"current_thread\" or \"multi_thread\""
        );
        assert_eq!(
            error_messages(quote!(tokio, flavor = "multi-thread"))[0],
            "unknown flavor `multi-thread` (did you mean \"multi_thread\"?); expected \"current_thread\" or \"multi_thread\""
        );
        assert!(errors[4].starts_with("`tokio` is a flag and takes no value"));
        let errors = error_messages(quote!(flavor = "multi_thread", start_paused = false));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("`flavor` configures the tokio runtime"));
        assert!(errors[1].starts_with("`start_paused` configures the tokio runtime"));
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
    fn duplicates_are_errors_but_ignores_repeat() {
        for (tokens, key) in [
            (quote!(timeout = "1s", timeout = "2s"), "timeout"),
            (quote!(tokio, tokio), "tokio"),
            (quote!(process_wide, process_wide), "process_wide"),
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
            parse(quote!(ignore_name = "a", ignore_name = "b"))
                .unwrap()
                .ignores
                .len(),
            2
        );
    }

    #[test]
    fn runtime_arguments_need_their_flavor() {
        let errors = error_messages(quote!(tokio, worker_threads = 2));
        assert!(errors[0].starts_with("`worker_threads` requires the `multi_thread` flavor"));
        let errors = error_messages(quote!(tokio, flavor = "current_thread", worker_threads = 2));
        assert!(errors[0].starts_with("`worker_threads` requires the `multi_thread` flavor"));
        let errors = error_messages(quote!(tokio, flavor = "multi_thread", start_paused = true));
        assert!(errors[0].starts_with("`start_paused` requires the `current_thread` flavor"));
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
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert!(
            unknown_argument(&Ident::new("procces_wide", Span::call_site()))
                .to_string()
                .contains("did you mean `process_wide`?")
        );
        assert!(!unknown_argument(&Ident::new("retries", Span::call_site()))
            .to_string()
            .contains("did you mean"));
        assert_eq!(edit_distance("flavour", "flavor"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
