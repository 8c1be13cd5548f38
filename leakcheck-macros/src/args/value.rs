//! The value of one `name = value` argument, read according to its [`Kind`].

use syn::{Expr, ExprLit, ExprPath, Lit, LitStr, Path};

use super::table::{ArgSpec, Flavor, Kind, PatternKind, FLAVORS};
use crate::duration::{is_unit, parse_duration, ACCEPTED_DURATIONS};
use crate::{pattern, suggest};

/// A value, checked.
pub(crate) enum Value {
    /// A flag was given.
    Flag,
    /// A duration in nanoseconds (it fits the runtime's `Duration::from_nanos`), with its literal.
    Duration(u64, LitStr),
    /// A pattern string, passed on to the runtime as written.
    Pattern(LitStr),
    /// A runtime flavor.
    Flavor(Flavor),
    /// A whole number from 1.
    Count(usize),
    /// `true` or `false`.
    Bool(bool),
    /// A path.
    Path(Path),
}

/// Reads `value` as the value of the argument `spec` (which is not a flag).
pub(crate) fn parse(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    match spec.kind {
        Kind::Flag => unreachable!("flags take no value"),
        Kind::Duration => duration(spec, value),
        Kind::Pattern(kind) => pattern(spec, kind, value),
        Kind::Flavor => flavor(spec, value),
        Kind::Count => count(spec, value),
        Kind::Bool => boolean(spec, value),
        Kind::Path => path(spec, value),
    }
}

/// `timeout = "..."`: a duration the runtime's grammar accepts, under 584 years.
fn duration(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    let literal = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) => literal.clone(),
        // `timeout = 500ms` lexes as the integer `500` with the suffix `ms`, `timeout = 500` as a
        // bare number: show the string that means it.
        Expr::Lit(ExprLit {
            lit: lit @ (Lit::Int(_) | Lit::Float(_)),
            ..
        }) => return Err(number_as_duration(spec, lit)),
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                format!(
                    "`{}` must be a string literal holding {ACCEPTED_DURATIONS}",
                    spec.name
                ),
            ))
        }
    };
    let duration = parse_duration(&literal.value())
        .map_err(|message| syn::Error::new_spanned(&literal, message))?;
    let nanos = u64::try_from(duration.as_nanos()).map_err(|_| {
        syn::Error::new_spanned(
            &literal,
            format!(
                "this {} is out of range: it must be under 584 years",
                spec.name
            ),
        )
    })?;
    Ok(Value::Duration(nanos, literal))
}

/// The error for a number where a duration string is expected, with the string to write.
fn number_as_duration(spec: &ArgSpec, lit: &Lit) -> syn::Error {
    let (digits, suffix) = match lit {
        Lit::Int(int) => (int.base10_digits(), int.suffix()),
        Lit::Float(float) => (float.base10_digits(), float.suffix()),
        _ => unreachable!("only numbers are passed"),
    };
    let name = spec.name;
    let message = if !suffix.is_empty() && is_unit(suffix) {
        format!("`{name}` is a string: write `{name} = \"{digits}{suffix}\"`")
    } else {
        format!(
            "`{name}` is a string with a unit: write `{name} = \"{digits}ms\"` or \
             `{name} = \"{digits}s\"` (units: `ns`, `us`, `ms`, `s`, `m`)"
        )
    };
    syn::Error::new_spanned(lit, message)
}

/// `ignore_* = "..."`: a non-empty pattern of the argument's grammar.
fn pattern(spec: &ArgSpec, kind: PatternKind, value: &Expr) -> syn::Result<Value> {
    let literal = string_literal(spec, value)?;
    let text = literal.value();
    if text.trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &literal,
            format!(
                "`{}` needs a pattern, for example {}",
                spec.name,
                spec.usage()
            ),
        ));
    }
    let checked = match kind {
        PatternKind::Name => Ok(()),
        PatternKind::SpawnSite => pattern::check_spawn_site(&text),
        PatternKind::Function => pattern::check_function_path(&text),
    };
    checked.map_err(|message| {
        syn::Error::new_spanned(
            &literal,
            format!("invalid `{}` pattern: {message}", spec.name),
        )
    })?;
    Ok(Value::Pattern(literal))
}

/// `flavor = "..."`: one of [`FLAVORS`].
fn flavor(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    let literal = string_literal(spec, value)?;
    let written = literal.value();
    if let Some((_, flavor)) = FLAVORS.iter().find(|(name, _)| *name == written) {
        return Ok(Value::Flavor(*flavor));
    }
    let suggestion = suggest::closest(&written, FLAVORS.iter().map(|(name, _)| *name))
        .map(|flavor| format!(" (did you mean \"{flavor}\"?)"))
        .unwrap_or_default();
    let names: Vec<String> = FLAVORS
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let (last, others) = names.split_last().expect("there are flavors");
    Err(syn::Error::new_spanned(
        &literal,
        format!(
            "unknown flavor `{written}`{suggestion}; expected {} or {last}",
            others.join(", ")
        ),
    ))
}

/// `worker_threads = N`: an integer of at least 1.
fn count(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    let name = spec.name;
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{name}` must be an integer literal, for example {}",
                spec.usage()
            ),
        ));
    };
    match int.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new_spanned(
            int,
            format!("`{name}` must be at least 1"),
        )),
        Ok(count) => Ok(Value::Count(count)),
        Err(error) => Err(syn::Error::new_spanned(
            int,
            format!("`{name}` is not a valid count: {error}"),
        )),
    }
}

/// `start_paused = true|false`.
fn boolean(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(flag),
            ..
        }) => Ok(Value::Bool(flag.value)),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` must be `true` or `false`", spec.name),
        )),
    }
}

/// `crate = path` or `crate = "path"` (as `#[tokio::test(crate = "...")]` writes it).
fn path(spec: &ArgSpec, value: &Expr) -> syn::Result<Value> {
    let wrong = || {
        syn::Error::new_spanned(
            value,
            format!(
                "`{}` must be a path, for example {}",
                spec.name,
                spec.usage()
            ),
        )
    };
    match value {
        Expr::Path(ExprPath {
            qself: None,
            path,
            attrs,
        }) if attrs.is_empty() => Ok(Value::Path(path.clone())),
        Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) => literal
            .parse::<Path>()
            .map(Value::Path)
            .map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

/// The string literal `value` must be.
fn string_literal(spec: &ArgSpec, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) => Ok(literal.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{}` must be a string literal, for example {}",
                spec.name,
                spec.usage()
            ),
        )),
    }
}
