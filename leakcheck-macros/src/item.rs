//! The function `#[leak_test]` is applied to, and the checks of how it is written.
//!
//! The function is parsed lightly, as `#[tokio::test]` does: attributes, visibility and signature
//! through `syn`, the body as the raw tokens between its braces. The body is never re-parsed or
//! re-printed, so every token in it keeps its span (errors and `#[track_caller]` locations point
//! into the user's code) and a body that `syn` cannot parse is still handed to the compiler as it
//! is.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, token, AttrStyle, Attribute, Item, Meta, Path, Signature, Token, Visibility};

use crate::errors::Errors;

/// A function item, with its body kept as tokens.
pub(crate) struct TestFn {
    /// The attributes written before the function (`#[should_panic]`, doc comments, ...).
    pub(crate) attrs: Vec<Attribute>,
    /// `pub`, `pub(crate)`, or nothing.
    pub(crate) vis: Visibility,
    /// `async fn name() -> R`.
    pub(crate) sig: Signature,
    /// The braces of the body, whose span the generated body reuses.
    pub(crate) brace: token::Brace,
    /// The inner attributes of the body (`#![allow(...)]`), moved onto the function when expanded.
    pub(crate) inner_attrs: Vec<Attribute>,
    /// The statements of the body, untouched.
    pub(crate) stmts: TokenStream,
}

impl Parse for TestFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let stmts = content.parse()?;
        Ok(TestFn {
            attrs,
            vis,
            sig,
            brace,
            inner_attrs,
            stmts,
        })
    }
}

impl TestFn {
    /// The body as a block (`{ stmts }`), with its original braces' span.
    pub(crate) fn body(&self) -> TokenStream {
        let mut group = Group::new(Delimiter::Brace, self.stmts.clone());
        group.set_span(self.brace.span.join());
        TokenTree::Group(group).into()
    }

    /// The inner attributes of the body, turned into outer attributes of the function (they are
    /// not allowed on the closure or `async` block the body becomes).
    pub(crate) fn lifted_inner_attrs(&self) -> impl Iterator<Item = Attribute> + '_ {
        self.inner_attrs.iter().cloned().map(|mut attr| {
            attr.style = AttrStyle::Outer;
            attr
        })
    }
}

/// What an attribute of the function is, for `#[leak_test]`'s purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttrRole {
    /// Kept as it is: `#[should_panic]`, `#[ignore]`, doc comments, `#[cfg]`, lints, ...
    Kept,
    /// `#[test]`, which `#[leak_test]` adds itself.
    Test,
    /// `#[tokio::test]`, written after `#[leak_test]`.
    TokioTest,
    /// The `#[test]` that an expanded `#[tokio::test]` left, when it was written before
    /// `#[leak_test]` (and so ran first).
    ExpandedTokioTest,
    /// Another test attribute (`#[async_std::test]`, `#[test_log::test]`, ...).
    OtherTest,
    /// `#[leak_test]` a second time.
    LeakTest,
}

/// Sorts the function's attributes, and adds an error for each one that cannot stay with
/// `#[leak_test]`. Returns one role per attribute, in order.
pub(crate) fn check_attrs(function: &TestFn, errors: &mut Errors) -> Vec<AttrRole> {
    let roles: Vec<AttrRole> = function
        .attrs
        .iter()
        .map(|attr| attr_role(attr, &function.stmts))
        .collect();
    for (attr, role) in function.attrs.iter().zip(&roles) {
        let message = match role {
            AttrRole::Kept => continue,
            AttrRole::Test => {
                "`#[leak_test]` already adds `#[test]`: remove this attribute".to_owned()
            }
            AttrRole::TokioTest | AttrRole::ExpandedTokioTest => {
                let replacement = tokio_replacement(attr, *role);
                format!(
                    "`#[tokio::test]` cannot be combined with `#[leak_test]`: write \
                     `{replacement}` instead. It builds the test's runtime itself, so that the \
                     tasks the test spawns are tracked, and checks them before the runtime shuts \
                     down (which would silently drop them)"
                )
            }
            AttrRole::OtherTest => format!(
                "`#[{}]` cannot be combined with `#[leak_test]`, which already makes the \
                 function a test (and runs `async` tests itself): remove this attribute",
                path_text(attr.path())
            ),
            AttrRole::LeakTest => "`#[leak_test]` is given twice".to_owned(),
        };
        errors.push(syn::Error::new_spanned(attr, message));
    }
    roles
}

/// Adds an error for each part of the signature that a test function cannot have.
pub(crate) fn check_signature(sig: &Signature, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a `#[leak_test]` function cannot be `const`: a test runs at run time, where its \
             threads and tasks are checked; remove `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a `#[leak_test]` function cannot be `unsafe`: the test harness calls it as a safe \
             function; put the unsafe code in an `unsafe` block in the body",
        ));
    }
    if let Some(abi) = &sig.abi {
        let is_rust = abi.name.as_ref().is_some_and(|name| name.value() == "Rust");
        if !is_rust {
            let name = abi
                .name
                .as_ref()
                .map_or_else(|| "\"C\"".to_owned(), |name| format!("{:?}", name.value()));
            errors.push(syn::Error::new_spanned(
                abi,
                format!(
                    "a `#[leak_test]` function cannot be `extern {name}`: the test harness calls \
                     it as a Rust function; remove the ABI"
                ),
            ));
        }
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a `#[leak_test]` function cannot be generic: the test harness calls it without \
             type arguments",
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "a `#[leak_test]` function cannot have a `where` clause",
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            "a `#[leak_test]` function takes no parameters: the test harness calls it without \
             arguments",
        ));
    }
}

/// The error for `#[leak_test]` on an item that is not a function, pointing at the kind of item
/// and its name. `parse_error` is reported when the item cannot be parsed at all.
pub(crate) fn not_a_function(item: TokenStream, parse_error: syn::Error) -> syn::Error {
    let Ok(parsed) = syn::parse2::<Item>(item) else {
        return parse_error;
    };
    let (what, tokens) = match &parsed {
        Item::Const(item) => ("a constant", pair(&item.const_token, &item.ident)),
        Item::Enum(item) => ("an enum", pair(&item.enum_token, &item.ident)),
        Item::ExternCrate(item) => ("an `extern crate`", item.to_token_stream()),
        Item::ForeignMod(item) => ("an `extern` block", item.abi.to_token_stream()),
        Item::Impl(item) => ("an `impl` block", item.impl_token.to_token_stream()),
        Item::Macro(item) => ("a macro invocation", item.mac.path.to_token_stream()),
        Item::Mod(item) => ("a module", pair(&item.mod_token, &item.ident)),
        Item::Static(item) => ("a static", pair(&item.static_token, &item.ident)),
        Item::Struct(item) => ("a struct", pair(&item.struct_token, &item.ident)),
        Item::Trait(item) => ("a trait", pair(&item.trait_token, &item.ident)),
        Item::TraitAlias(item) => ("a trait alias", pair(&item.trait_token, &item.ident)),
        Item::Type(item) => ("a type alias", pair(&item.type_token, &item.ident)),
        Item::Union(item) => ("a union", pair(&item.union_token, &item.ident)),
        Item::Use(item) => ("a `use` declaration", item.use_token.to_token_stream()),
        // A function `TestFn` could not parse (for example one without a body): syn's error
        // says what is missing.
        _ => return parse_error,
    };
    syn::Error::new_spanned(
        tokens,
        format!("`#[leak_test]` goes on a test function, not on {what}"),
    )
}

/// An item's keyword and name, as the tokens an error spans.
fn pair(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    let mut tokens = keyword.to_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}

/// What `attr` is, looking at the body too to recognise an expanded `#[tokio::test]`.
fn attr_role(attr: &Attribute, body: &TokenStream) -> AttrRole {
    let path = attr.path();
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if is_std_test(path, &segments) {
        // `#[tokio::test]` expands to `#[::core::prelude::v1::test]` on a function whose body
        // builds a runtime and blocks on the test's future. Nobody writes that path by hand.
        if path.leading_colon.is_some()
            && segments == ["core", "prelude", "v1", "test"]
            && mentions_all(body, &["Builder", "block_on"])
        {
            return AttrRole::ExpandedTokioTest;
        }
        return AttrRole::Test;
    }
    match segments.as_slice() {
        ["tokio", "test"] => AttrRole::TokioTest,
        [.., "leak_test"] => AttrRole::LeakTest,
        [_, .., "test"] => AttrRole::OtherTest,
        _ => AttrRole::Kept,
    }
}

/// `#[test]`, `#[core::prelude::*::test]` or `#[std::prelude::*::test]` (with or without a
/// leading `::`).
fn is_std_test(path: &Path, segments: &[&str]) -> bool {
    if path.segments.iter().any(|s| !s.arguments.is_none()) {
        return false;
    }
    match segments {
        ["test"] => path.leading_colon.is_none(),
        ["core" | "std", "prelude", _, "test"] => true,
        _ => false,
    }
}

/// Whether every identifier in `wanted` occurs somewhere in `tokens`.
fn mentions_all(tokens: &TokenStream, wanted: &[&str]) -> bool {
    fn visit(tokens: &TokenStream, found: &mut [bool], wanted: &[&str]) {
        for token in tokens.clone() {
            match token {
                TokenTree::Ident(ident) => {
                    for (slot, name) in found.iter_mut().zip(wanted) {
                        *slot |= ident == name;
                    }
                }
                TokenTree::Group(group) => visit(&group.stream(), found, wanted),
                _ => {}
            }
        }
    }
    let mut found = vec![false; wanted.len()];
    visit(tokens, &mut found, wanted);
    found.into_iter().all(|f| f)
}

/// What to write instead of `#[tokio::test(...)]`: `#[leak_test(tokio, ...)]` with the same
/// runtime arguments, when they are known.
///
/// tokio's `crate = "..."` names the tokio crate, and `#[leak_test]`'s names leakcheck: it is
/// left out (leakcheck builds the runtime with its own tokio).
fn tokio_replacement(attr: &Attribute, role: AttrRole) -> String {
    let (Meta::List(list), AttrRole::TokioTest) = (&attr.meta, role) else {
        return "#[leak_test(tokio)]".to_owned();
    };
    let arguments: Vec<String> =
        match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => metas
                .iter()
                .filter(|meta| !meta.path().is_ident("crate"))
                .map(|meta| meta.to_token_stream().to_string())
                .collect(),
            Err(_) => vec![list.tokens.to_string()],
        };
    if arguments.is_empty() {
        "#[leak_test(tokio)]".to_owned()
    } else {
        format!("#[leak_test(tokio, {})]", arguments.join(", "))
    }
}

/// `a::b::c`, as written.
fn path_text(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let prefix = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{prefix}{}", segments.join("::"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;
    use syn::parse_quote;

    fn roles(item: TokenStream) -> (Vec<AttrRole>, Vec<String>) {
        let function: TestFn = syn::parse2(item).unwrap();
        let mut errors = Errors::default();
        let roles = check_attrs(&function, &mut errors);
        let messages = match errors.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (roles, messages)
    }

    #[test]
    fn keeps_ordinary_attributes() {
        let (roles, messages) = roles(quote! {
            /// Docs.
            #[should_panic(expected = "boom")]
            #[ignore = "slow"]
            #[cfg(unix)]
            #[allow(unused)]
            fn t() {}
        });
        assert_eq!(roles, [AttrRole::Kept; 5]);
        assert!(messages.is_empty());
    }

    #[test]
    fn recognises_test_attributes() {
        let (roles, messages) = roles(quote! {
            #[test]
            #[::core::prelude::v1::test]
            #[std::prelude::rust_2021::test]
            #[tokio::test(flavor = "multi_thread")]
            #[::tokio::test]
            #[async_std::test]
            #[leakcheck::leak_test]
            fn t() {}
        });
        use AttrRole::*;
        assert_eq!(
            roles,
            [Test, Test, Test, TokioTest, TokioTest, OtherTest, LeakTest]
        );
        assert!(messages[3].contains("write `#[leak_test(tokio, flavor = \"multi_thread\")]`"));
        let (_, crate_messages) = self::roles(quote! {
            #[tokio::test(crate = "my_tokio", flavor = "multi_thread")]
            async fn t() {}
        });
        assert!(
            crate_messages[0].contains("write `#[leak_test(tokio, flavor = \"multi_thread\")]`"),
            "{crate_messages:?}"
        );
        assert!(messages[5].starts_with("`#[async_std::test]` cannot be combined"));
        assert_eq!(messages[6], "`#[leak_test]` is given twice");
    }

    #[test]
    fn recognises_an_expanded_tokio_test() {
        let (roles, messages) = roles(quote! {
            #[::core::prelude::v1::test]
            fn t() {
                let body = async {};
                {
                    use tokio::runtime::Builder;
                    return Builder::new_current_thread().enable_all().build().unwrap().block_on(body);
                }
            }
        });
        assert_eq!(roles, [AttrRole::ExpandedTokioTest]);
        assert!(messages[0].contains("write `#[leak_test(tokio)]` instead"));
    }

    #[test]
    fn reports_signatures_a_test_cannot_have() {
        let mut errors = Errors::default();
        check_signature(&parse_quote!(fn t<T: Send>(value: T)), &mut errors);
        let messages: Vec<String> = errors
            .into_result()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("cannot be generic"));
        assert!(messages[1].contains("takes no parameters"));
    }

    #[test]
    fn rejects_qualifiers_a_test_cannot_have() {
        for (sig, expected) in [
            (quote!(const fn t()), "cannot be `const`"),
            (quote!(unsafe fn t()), "cannot be `unsafe`"),
            (quote!(extern "C" fn t()), "cannot be `extern \"C\"`"),
            (quote!(extern fn t()), "cannot be `extern \"C\"`"),
            (
                quote!(extern "system" fn t()),
                "cannot be `extern \"system\"`",
            ),
        ] {
            let mut errors = Errors::default();
            check_signature(&syn::parse2(sig.clone()).unwrap(), &mut errors);
            let message = errors.into_result().unwrap_err().to_string();
            assert!(message.contains(expected), "{sig}: {message}");
        }
        let mut errors = Errors::default();
        check_signature(&parse_quote!(extern "Rust" fn t()), &mut errors);
        assert!(errors.into_result().is_ok());
    }

    #[test]
    fn names_the_item_that_is_not_a_function() {
        let error = not_a_function(
            quote!(
                #[derive(Debug)]
                pub struct Pool;
            ),
            syn::Error::new(proc_macro2::Span::call_site(), "unused"),
        );
        assert_eq!(
            error.to_string(),
            "`#[leak_test]` goes on a test function, not on a struct"
        );
    }

    #[test]
    fn keeps_the_body_tokens() {
        let function: TestFn = syn::parse2(quote! {
            fn t() -> Result<(), String> { #![allow(unused)] let x = 1; Ok(()) }
        })
        .unwrap();
        assert_eq!(function.stmts.to_string(), "let x = 1 ; Ok (())");
        assert_eq!(function.lifted_inner_attrs().count(), 1);
    }
}
