//! Code generation for `#[leak_test]`: the contract with the `leakcheck` runtime.
//!
//! With `LC` = the `crate = path` argument or `::leakcheck`, `NAME` =
//! `::core::concat!(::core::module_path!(), "::", "<fn name>")` and `OPTIONS` =
//! `LC::Options::new()` followed by one builder call per argument, a test
//!
//! * `fn t() -> R { body }` becomes
//!   `#[test] fn t() -> R { LC::__private::run_test(NAME, OPTIONS, move || -> R { body }) }`;
//! * `async fn t() -> R { body }` becomes
//!   `#[test] fn t() -> R { PIN LC::__private::run_async_test(NAME, OPTIONS, FUTURE) }`;
//! * `#[leak_test(tokio)] async fn t() -> R { body }` becomes `#[test] fn t() -> R { PIN
//!   LC::__private_require_tokio!(); LC::__private::run_tokio_test(NAME, OPTIONS,
//!   LC::__private::TokioTestConfig { .. }, FUTURE) }`;
//!
//! where `PIN` is `let FUTURE = async move { body }; let FUTURE = pin!(FUTURE); let FUTURE:
//! Pin<&mut dyn Future<Output = R>> = FUTURE;`, which fixes the future's output type so that `?`
//! and `return` in the body convert to `R` as in the original function, and adds no code after
//! the body (which a body ending in `panic!` would make unreachable).
//!
//! The `#[test]` is written `#[::core::prelude::v1::test]`, so that a `test` macro the user
//! imported (`use test_log::test;`) cannot take its place. It comes first, before the function's
//! own attributes, which are kept in their order (inner attributes of the body, `#![...]`, become
//! outer attributes of the function). The body's tokens are passed on untouched, with their spans.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Ident, LitStr, ReturnType, Signature, Type};

use crate::args::{self, Args, Flavor, Target, TokioArgs};
use crate::errors::Errors;
use crate::item::{self, AttrRole, TestFn};

/// Expands `#[leak_test(args)] item`.
///
/// On any mistake the function is still emitted (without the attributes at fault, and not as a
/// test) next to the errors, so that the only errors the user sees are the ones that explain the
/// mistake, and editors keep understanding the body.
pub(crate) fn leak_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<TestFn>(item.clone()) {
        Ok(function) => function,
        Err(parse_error) => {
            let error = item::not_a_function(item.clone(), parse_error);
            let mut tokens = item;
            tokens.extend(error.into_compile_error());
            return tokens;
        }
    };

    let mut item_errors = Errors::default();
    let roles = item::check_attrs(&function, &mut item_errors);
    item::check_signature(&function.sig, &mut item_errors);
    // After an expanded `#[tokio::test]` the function is no longer `async`: the error about
    // `#[tokio::test]` is the one that helps.
    let target = Target {
        name: &function.sig.ident,
        is_async: function.sig.asyncness.is_some() || roles.contains(&AttrRole::ExpandedTokioTest),
    };
    // Argument errors first, as the attribute's own tokens come first.
    let mut errors = Errors::default();
    let args = args::parse(args, &target)
        .map_err(|error| errors.push(error))
        .ok();
    if let Err(error) = item_errors.into_result() {
        errors.push(error);
    }

    match (errors.into_result(), args) {
        (Ok(()), Some(args)) => expand(&function, &args),
        (Err(error), _) => {
            let mut tokens = fallback(&function, &roles);
            tokens.extend(error.into_compile_error());
            tokens
        }
        (Ok(()), None) => unreachable!("argument errors are collected"),
    }
}

/// The test function that runs the body under leakcheck.
fn expand(function: &TestFn, args: &Args) -> TokenStream {
    let attrs = &function.attrs;
    let inner_attrs = function.lifted_inner_attrs();
    let vis = &function.vis;
    let mut sig = function.sig.clone();
    let is_async = sig.asyncness.take().is_some();

    let krate = crate_path(args);
    let name = test_name(&sig.ident);
    let options = options(&krate, args);
    let body = function.body();
    let output = output_type(&sig);

    let run = if is_async {
        let future = Ident::new("__leakcheck_body", Span::mixed_site());
        let pin_future = pinned_future(&future, output.as_ref(), &body);
        let call = match &args.tokio {
            None => quote! {
                #krate::__private::run_async_test(#name, #options, #future)
            },
            Some(tokio) => {
                let config = tokio_config(&krate, tokio);
                // The `tokio` argument is what needs leakcheck's `tokio` feature: an error about
                // the feature points at it.
                let mut require = quote_spanned! {tokio.flag.span()=>
                    #krate::__private_require_tokio!();
                };
                // A paused clock needs tokio's `test-util`, behind its own leakcheck feature.
                if let Some(key) = &tokio.paused_key {
                    require.extend(quote_spanned! {key.span()=>
                        #krate::__private_require_tokio_test_util!();
                    });
                }
                quote! {
                    #require
                    #krate::__private::run_tokio_test(#name, #options, #config, #future)
                }
            }
        };
        quote!(#pin_future #call)
    } else {
        let arrow = output.as_ref().map(|output| quote!(-> #output));
        quote! {
            #krate::__private::run_test(#name, #options, move || #arrow #body)
        }
    };

    let mut tokens = quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #(#inner_attrs)*
        #vis #sig
    };
    function
        .brace
        .surround(&mut tokens, |tokens| run.to_tokens(tokens));
    tokens
}

/// The path every generated item is reached through: `crate = path`, or `::leakcheck`.
fn crate_path(args: &Args) -> TokenStream {
    match &args.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote!(::leakcheck),
    }
}

/// The function as the user wrote it, minus what cannot stay, for when the attribute is misused.
///
/// It is not a test (its `#[test]` would only add errors, for example on an `async fn`), so it
/// is allowed to be unused, and so are its parameters if it has some by mistake.
fn fallback(function: &TestFn, roles: &[AttrRole]) -> TokenStream {
    let attrs = function
        .attrs
        .iter()
        .zip(roles)
        .filter(|(_, role)| **role == AttrRole::Kept)
        .map(|(attr, _)| attr);
    let inner_attrs = function.lifted_inner_attrs();
    let vis = &function.vis;
    let sig = &function.sig;
    let body = function.body();
    quote! {
        #(#attrs)*
        #(#inner_attrs)*
        #[allow(dead_code, unused_variables)]
        #vis #sig #body
    }
}

/// `::core::concat!(::core::module_path!(), "::", "name")`: the test's path, as libtest names it
/// (the runtime strips the crate segment).
fn test_name(ident: &Ident) -> TokenStream {
    // As libtest does, keep the `r#` of a raw identifier: `fn r#try` is the test `r#try`.
    let name = LitStr::new(&ident.to_string(), ident.span());
    quote! {
        ::core::concat!(::core::module_path!(), "::", #name)
    }
}

/// `::leakcheck::Options::new()` and one builder call per argument.
///
/// Each call takes the span of the argument it comes from, and the patterns are passed on as
/// the literals the user wrote.
fn options(krate: &TokenStream, args: &Args) -> TokenStream {
    let mut options = quote!(#krate::Options::new());
    if let Some((nanos, literal)) = &args.timeout {
        let method = Ident::new("timeout", literal.span());
        options.extend(quote! {
            .#method(::core::time::Duration::from_nanos(#nanos))
        });
    }
    for ignore in &args.ignores {
        let method = &ignore.method;
        let pattern = &ignore.pattern;
        options.extend(quote!(.#method(#pattern)));
    }
    // The flags are named after the methods they call.
    for flag in [&args.ignore_current, &args.process_wide]
        .into_iter()
        .flatten()
    {
        options.extend(quote!(.#flag()));
    }
    options
}

/// `::leakcheck::__private::TokioTestConfig { .. }` for the `tokio` arguments.
fn tokio_config(krate: &TokenStream, tokio: &TokioArgs) -> TokenStream {
    let flavor = match tokio.flavor {
        Flavor::CurrentThread => quote!(CurrentThread),
        Flavor::MultiThread => quote!(MultiThread),
        Flavor::Local => quote!(Local),
    };
    let worker_threads = match tokio.worker_threads {
        Some(threads) => quote!(::core::option::Option::Some(#threads)),
        None => quote!(::core::option::Option::None),
    };
    let start_paused = tokio.start_paused;
    quote! {
        #krate::__private::TokioTestConfig {
            flavor: #krate::__private::TokioFlavor::#flavor,
            worker_threads: #worker_threads,
            start_paused: #start_paused,
        }
    }
}

/// The function's return type, to annotate the closure or future with; `None` when it cannot be
/// written there (`impl Trait`), in which case the type is left to inference.
///
/// The unit type of a function without `->` takes the span of the function's name, where the
/// compiler then says "expected `()` because of return type" if the body's value is not `()`.
fn output_type(sig: &Signature) -> Option<TokenStream> {
    match &sig.output {
        ReturnType::Default => Some(quote_spanned!(sig.ident.span()=> ())),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => None,
        ReturnType::Type(_, ty) => Some(ty.to_token_stream()),
    }
}

/// `let FUTURE = async move { body }; let FUTURE: Pin<&mut dyn Future<Output = R>> = pin!(FUTURE);`
///
/// An `async` block's output type is inferred, and `?` in it does not know which error type to
/// convert to unless something fixes it. The coercion to `dyn Future<Output = R>` does (as
/// `#[tokio::test]` does it), without adding code after the body: a body that ends in `panic!`
/// or `loop {}` leaves nothing unreachable behind it, so the expansion raises no warning that
/// the same body in a plain `#[test]` would not. With an `impl Trait` output (which cannot be
/// named) the future is left to inference.
fn pinned_future(future: &Ident, output: Option<&TokenStream>, body: &TokenStream) -> TokenStream {
    let pinned = quote! {
        let #future = async move #body;
        let #future = ::core::pin::pin!(#future);
    };
    match output {
        Some(output) => quote! {
            #pinned
            let #future: ::core::pin::Pin<
                &mut dyn ::core::future::Future<Output = #output>
            > = #future;
        },
        None => pinned,
    }
}

/// Whether `ty` mentions `impl Trait`, which a closure or `let` cannot be annotated with.
fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Array(t) => contains_impl_trait(&t.elem),
        Type::Group(t) => contains_impl_trait(&t.elem),
        Type::Paren(t) => contains_impl_trait(&t.elem),
        Type::Ptr(t) => contains_impl_trait(&t.elem),
        Type::Reference(t) => contains_impl_trait(&t.elem),
        Type::Slice(t) => contains_impl_trait(&t.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(t) => t
            .path
            .segments
            .iter()
            .any(|segment| match &segment.arguments {
                syn::PathArguments::None => false,
                syn::PathArguments::AngleBracketed(args) => args.args.iter().any(|arg| match arg {
                    syn::GenericArgument::Type(t) => contains_impl_trait(t),
                    syn::GenericArgument::AssocType(t) => contains_impl_trait(&t.ty),
                    _ => false,
                }),
                syn::PathArguments::Parenthesized(args) => {
                    args.inputs.iter().any(contains_impl_trait)
                        || matches!(&args.output, ReturnType::Type(_, t) if contains_impl_trait(t))
                }
            }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion as text, with the token spacing `quote` prints.
    fn expand_text(args: TokenStream, item: TokenStream) -> String {
        leak_test(args, item).to_string()
    }

    #[test]
    fn sync_test() {
        let text = expand_text(
            quote!(timeout = "500ms", ignore_name = "w-*", ignore_current),
            quote! {
                /// Docs.
                #[should_panic]
                fn leaks() -> Result<(), String> { #![allow(unused)] Ok(()) }
            },
        );
        let expected = quote! {
            #[::core::prelude::v1::test]
            #[doc = r" Docs."]
            #[should_panic]
            #[allow(unused)]
            fn leaks() -> Result<(), String> {
                ::leakcheck::__private::run_test(
                    ::core::concat!(::core::module_path!(), "::", "leaks"),
                    ::leakcheck::Options::new()
                        .timeout(::core::time::Duration::from_nanos(500000000u64))
                        .ignore_name("w-*")
                        .ignore_current(),
                    move || -> Result<(), String> { Ok(()) }
                )
            }
        };
        assert_eq!(text, expected.to_string());
    }

    #[test]
    fn async_test_with_the_builtin_executor() {
        let text = expand_text(
            quote!(
                ignore_spawned_at = "src/a.rs",
                ignore_function = "a::b",
                process_wide
            ),
            quote!(
                async fn r#try() {
                    work().await
                }
            ),
        );
        assert!(
            text.starts_with("# [:: core :: prelude :: v1 :: test] fn r#try () {"),
            "{text}"
        );
        assert!(text.contains("\"::\" , \"r#try\")"), "{text}");
        assert!(text.contains(
            ". ignore_spawned_at (\"src/a.rs\") . ignore_function (\"a::b\") . process_wide ()"
        ));
        assert!(text.contains(":: leakcheck :: __private :: run_async_test (:: core :: concat !"));
        assert!(
            text.contains(
                "let __leakcheck_body = async move { work () . await } ; \
                 let __leakcheck_body = :: core :: pin :: pin ! (__leakcheck_body) ; \
                 let __leakcheck_body : :: core :: pin :: Pin < & mut dyn :: core :: future :: \
                 Future < Output = () > > = __leakcheck_body ;"
            ),
            "{text}"
        );
    }

    #[test]
    fn tokio_test() {
        let text = expand_text(
            quote!(tokio, flavor = "multi_thread", worker_threads = 2),
            quote!(
                async fn t() -> std::io::Result<()> {
                    Ok(())
                }
            ),
        );
        assert!(
            text.contains(":: leakcheck :: __private_require_tokio ! () ;"),
            "{text}"
        );
        assert!(text.contains(
            ":: leakcheck :: __private :: TokioTestConfig { flavor : :: leakcheck :: __private :: \
             TokioFlavor :: MultiThread , worker_threads : :: core :: option :: Option :: Some \
             (2usize) , start_paused : false , }"
        ), "{text}");
        assert!(
            text.contains("Future < Output = std :: io :: Result < () > > > = __leakcheck_body ;"),
            "{text}"
        );

        let text = expand_text(
            quote!(tokio, start_paused = true),
            quote!(
                async fn t() {}
            ),
        );
        assert!(text.contains(
            "TokioFlavor :: CurrentThread , worker_threads : :: core :: option :: Option :: None , \
             start_paused : true"
        ), "{text}");
        assert!(
            text.contains(":: leakcheck :: __private_require_tokio_test_util ! () ;"),
            "a paused clock needs the tokio-test-util feature: {text}"
        );
        let unpaused = expand_text(
            quote!(tokio, start_paused = false),
            quote!(
                async fn t() {}
            ),
        );
        assert!(!unpaused.contains("require_tokio_test_util"), "{unpaused}");
    }

    #[test]
    fn every_path_goes_through_the_crate_argument() {
        for krate in [quote!(support::lc), quote!("support::lc")] {
            let text = expand_text(
                quote!(crate = #krate, tokio, timeout = "1s", flavor = "local"),
                quote!(
                    async fn t() {}
                ),
            );
            assert!(!text.contains("leakcheck ::"), "{text}");
            assert!(
                text.contains("support :: lc :: __private_require_tokio ! ()"),
                "{text}"
            );
            assert!(
                text.contains("support :: lc :: __private :: run_tokio_test"),
                "{text}"
            );
            assert!(
                text.contains("support :: lc :: Options :: new ()"),
                "{text}"
            );
            assert!(
                text.contains("support :: lc :: __private :: TokioFlavor :: Local"),
                "{text}"
            );
        }
        let text = expand_text(
            quote!(crate = support::lc),
            quote!(
                fn t() {}
            ),
        );
        assert!(!text.contains("leakcheck ::"), "{text}");
        assert!(
            text.contains("support :: lc :: __private :: run_test"),
            "{text}"
        );
    }

    #[test]
    fn impl_trait_outputs_are_left_to_inference() {
        let text = expand_text(
            TokenStream::new(),
            quote!(
                fn t() -> impl std::process::Termination {}
            ),
        );
        assert!(text.contains("move || { }"), "{text}");
        let text = expand_text(
            TokenStream::new(),
            quote!(
                async fn t() -> Box<impl std::process::Termination> {
                    Box::new(())
                }
            ),
        );
        assert!(
            text.contains(
                "let __leakcheck_body = async move { Box :: new (()) } ; \
                 let __leakcheck_body = :: core :: pin :: pin ! (__leakcheck_body) ; :: leakcheck"
            ),
            "{text}"
        );
    }

    #[test]
    fn misuse_keeps_the_function_without_the_faulty_attributes() {
        let text = expand_text(
            quote!(tokio),
            quote! {
                #[test]
                #[ignore]
                fn t(x: u32) {}
            },
        );
        assert!(
            text.starts_with(
                "# [ignore] # [allow (dead_code , unused_variables)] fn t (x : u32) { }"
            ),
            "{text}"
        );
        assert_eq!(text.matches("compile_error").count(), 3, "{text}");
    }

    #[test]
    fn misuse_on_other_items_keeps_the_item() {
        let text = expand_text(
            TokenStream::new(),
            quote!(
                struct S;
            ),
        );
        assert!(text.starts_with("struct S ;"), "{text}");
        assert!(text.contains("not on a struct"), "{text}");
    }
}
