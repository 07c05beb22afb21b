//! garde rules schemars does not turn into JSON Schema, but which have a faithful CEL
//! spelling: emitted as `x-kubernetes-validations` so kube-apiserver enforces them too.
//!
//! Mapped: `prefix("lit")`, `suffix("lit")`, `ascii` and, on `String` fields,
//! `length(...)` in garde's default (`simple`) and `bytes` modes — garde counts bytes
//! where `maxLength` counts characters. Arguments must be literals; rules with
//! expression arguments, and rules inside `inner(...)`, stay client-side only.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::parse::Parser as _;
use syn::{
    Attribute, Expr, ExprLit, Lit, Meta, Token, Type, meta::ParseNestedMeta, punctuated::Punctuated,
};

use crate::checks::is_string;

/// `(rule, message)` pairs derived from a field's `#[garde(...)]`.
pub fn cel_rules(attrs: &[Attribute], ty: &Type) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("garde")) {
        // Malformed garde attributes are garde's to report.
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "prefix" => one_str(&meta)?.into_iter().for_each(|p| {
                    out.push((
                        format!("self.startsWith({})", cel_str(&p)),
                        format!("must start with {p:?}"),
                    ));
                }),
                "suffix" => one_str(&meta)?.into_iter().for_each(|s| {
                    out.push((
                        format!("self.endsWith({})", cel_str(&s)),
                        format!("must end with {s:?}"),
                    ));
                }),
                "ascii" => out.push((
                    format!("self.matches({})", cel_str(r"^[\x00-\x7F]*$")),
                    "must contain only ASCII characters".into(),
                )),
                "length" if is_string(ty) => {
                    if byte_mode(&meta) {
                        byte_rules(&meta, &mut out)?;
                    } else {
                        skip(&meta)?;
                    }
                }
                _ => skip(&meta)?,
            }
            Ok(())
        });
    }
    out
}

/// A CEL single-quoted string literal.
fn cel_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn one_str(meta: &ParseNestedMeta) -> syn::Result<Option<String>> {
    let content;
    syn::parenthesized!(content in meta.input);
    let expr: Expr = content.parse()?;
    let _ = content.parse::<proc_macro2::TokenStream>();
    Ok(match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        _ => None,
    })
}

/// garde's `length` counts bytes on strings unless a mode other than `bytes`/`simple` is
/// named first; peeking on a fork keeps the real input for `byte_rules`.
fn byte_mode(meta: &ParseNestedMeta) -> bool {
    let Ok(group) = meta.input.fork().parse::<proc_macro2::Group>() else {
        return true;
    };
    match group.stream().into_iter().next() {
        Some(proc_macro2::TokenTree::Ident(mode)) => {
            !["chars", "graphemes", "utf16"].contains(&mode.to_string().as_str())
        }
        _ => true,
    }
}

fn byte_rules(meta: &ParseNestedMeta, out: &mut Vec<(String, String)>) -> syn::Result<()> {
    meta.parse_nested_meta(|m| {
        let key = m
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !m.input.peek(syn::Token![=]) {
            return Ok(()); // a mode such as `bytes`
        }
        let value: Expr = m.value()?.parse()?;
        let Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) = value
        else {
            return Ok(());
        };
        let n = n.base10_digits().to_owned();
        match key.as_str() {
            // "At least one byte" is "at least one character": `minLength` says it.
            "min" if n == "0" || n == "1" => {}
            "min" => out.push((
                format!("size(bytes(self)) >= {n}"),
                format!("must be at least {n} bytes"),
            )),
            "max" => out.push((
                format!("size(bytes(self)) <= {n}"),
                format!("must be at most {n} bytes"),
            )),
            "equal" => out.push((
                format!("size(bytes(self)) == {n}"),
                format!("must be exactly {n} bytes"),
            )),
            _ => {}
        }
        Ok(())
    })
}

fn skip(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

/// The field's `#[garde(...)]` as copied onto the schema shadow. On `String` fields a
/// byte-mode `length` is taken out: schemars would turn its `min` into a `minLength`
/// that counts characters and so rejects short non-ASCII strings garde accepts. Its
/// `max` stays as `maxLength` (implied by the byte rule, and needed by the server to
/// bound CEL costs); the CEL byte rules from [`cel_rules`] do the exact check.
pub fn shadow_attr(attr: &Attribute, ty: &Type) -> TokenStream {
    let Meta::List(list) = &attr.meta else {
        return quote!(#attr);
    };
    if !attr.path().is_ident("garde") {
        return quote!(#attr);
    }
    if is_option_of_collection(ty) {
        // garde sees `Option<Vec<T>>` as two layers (`inner(inner(rule))` reaches each
        // item); JSON Schema sees one (an `Option` is the array itself, maybe absent).
        let items = split_items(list.tokens.clone())
            .into_iter()
            .map(unwrap_inner_inner);
        return quote!(#[garde(#(#items),*)]);
    }
    if !is_string(ty) {
        return quote!(#attr);
    }
    let mut items = split_items(list.tokens.clone());
    let mut kept = Vec::new();
    items.retain(|item| {
        let mut it = item.clone().into_iter();
        match (it.next(), it.next()) {
            (Some(TokenTree::Ident(id)), Some(TokenTree::Group(g)))
                if id == "length" && group_byte_mode(&g) =>
            {
                kept = char_safe_bounds(&g);
                false
            }
            _ => true,
        }
    });
    let schemars = (!kept.is_empty()).then(|| quote!(#[schemars(length(#(#kept),*))]));
    quote!(#[garde(#(#items),*)] #schemars)
}

/// The comma-separated rules of a `#[garde(...)]` list.
fn split_items(tokens: TokenStream) -> Vec<TokenStream> {
    let mut items: Vec<TokenStream> = Vec::new();
    let mut current = TokenStream::new();
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => items.push(std::mem::take(&mut current)),
            _ => current.extend([tt]),
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    items
}

/// `inner(inner(rules))` → `inner(rules)`; anything else as it is.
fn unwrap_inner_inner(item: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    if let [TokenTree::Ident(outer), TokenTree::Group(group)] = tokens.as_slice()
        && outer == "inner"
    {
        let nested: Vec<TokenTree> = group.stream().into_iter().collect();
        if let [TokenTree::Ident(inner), TokenTree::Group(_)] = nested.as_slice()
            && inner == "inner"
        {
            return group.stream();
        }
    }
    item
}

/// `Option<Vec<_>>` and the like: an `Option` of a type garde's `inner` reaches into.
fn is_option_of_collection(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident != "Option" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    let Some(syn::GenericArgument::Type(Type::Path(arg))) = args.args.first() else {
        return false;
    };
    arg.path.segments.last().is_some_and(|s| {
        [
            "Vec", "VecDeque", "BTreeSet", "HashSet", "BTreeMap", "HashMap",
        ]
        .contains(&s.ident.to_string().as_str())
    })
}

fn group_byte_mode(g: &proc_macro2::Group) -> bool {
    match g.stream().into_iter().next() {
        Some(TokenTree::Ident(mode)) => {
            !["chars", "graphemes", "utf16"].contains(&mode.to_string().as_str())
        }
        _ => true,
    }
}

/// The bounds of a byte-mode `length` that hold when counted in characters too: any
/// `max` (characters ≤ bytes), and `min` of 0 or 1 (non-empty either way).
fn char_safe_bounds(g: &proc_macro2::Group) -> Vec<TokenStream> {
    let Ok(metas) = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(g.stream()) else {
        return Vec::new();
    };
    let small = |e: &Expr| matches!(e, Expr::Lit(ExprLit { lit: Lit::Int(n), .. }) if n.base10_digits() == "0" || n.base10_digits() == "1");
    metas
        .into_iter()
        .filter_map(|m| match m {
            Meta::NameValue(nv) if nv.path.is_ident("max") || nv.path.is_ident("equal") => {
                let v = nv.value;
                Some(quote!(max = #v))
            }
            Meta::NameValue(nv) if nv.path.is_ident("min") && small(&nv.value) => {
                let v = nv.value;
                Some(quote!(min = #v))
            }
            _ => None,
        })
        .collect()
}
