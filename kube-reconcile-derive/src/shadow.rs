//! The `JsonSchema` impl of a `#[crd]`-annotated type, through a private shadow copy.
//!
//! schemars' own derive already reads serde, schemars and garde attributes and doc
//! comments; reimplementing that would drift. So the shadow is the same type with those
//! attributes copied and each `#[crd]` key translated into a schemars `extend(...)`;
//! the user's type then delegates `JsonSchema` to it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields};

use crate::attrs::{self, Position, Rule, SchemaAttrs};
use crate::{checks, garde_rules, serde_info};

const SCHEMARS: &str = "::kube_reconcile::crd::__private::schemars";

/// Attributes schemars understands (or must keep, like `cfg`): everything else,
/// including `#[crd]` and other derives' helpers, is left off the shadow.
fn copied(attrs: &[Attribute]) -> Vec<&Attribute> {
    const KEEP: &[&str] = &["serde", "schemars", "garde", "validate", "doc", "cfg"];
    attrs
        .iter()
        .filter(|a| KEEP.iter().any(|k| a.path().is_ident(k)))
        .collect()
}

/// Shadow type + delegating impl, or the collected compile errors.
pub fn expand(input: &DeriveInput, container: &SchemaAttrs) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let shadow = format_ident!("__CrdShadow{}", ident);
    let serde_c = serde_info::read(&input.attrs);
    checks::check_shape(input, container, &serde_c)?;
    let params = &input.generics.params;
    let def_where = &input.generics.where_clause;
    let body = match &input.data {
        Data::Struct(s) if matches!(s.fields, Fields::Named(_)) => {
            let fields = fields(&s.fields, &serde_c)?;
            quote!(struct #shadow <#params> #def_where #fields)
        }
        Data::Struct(s) => {
            let fields = fields(&s.fields, &serde_c)?;
            quote!(struct #shadow <#params> #fields #def_where;)
        }
        Data::Enum(e) => {
            let mut variants = Vec::new();
            for v in &e.variants {
                let (_, va) = attrs::parse(&v.attrs, Position::Variant)?;
                let keep = copied(&v.attrs);
                let ext = extend(&va, None);
                let name = &v.ident;
                let fs = fields(&v.fields, &serde_c)?;
                let disc = v.discriminant.as_ref().map(|(eq, d)| quote!(#eq #d));
                variants.push(quote!(#(#keep)* #ext #name #fs #disc));
            }
            quote!(enum #shadow <#params> #def_where { #(#variants),* })
        }
        Data::Union(_) => unreachable!("check_shape rejects unions"),
    };
    let keep = copied(&input.attrs);
    let ext = extend(container, None);
    let generics = &input.generics;
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let mut where_c = where_c.cloned().unwrap_or_else(|| syn::parse_quote!(where));
    for p in generics.type_params() {
        let t = &p.ident;
        where_c
            .predicates
            .push(syn::parse_quote!(#t: ::kube_reconcile::crd::__private::schemars::JsonSchema));
    }
    let rename = rename_attr(input);
    let default_impl = container_default(input, &shadow);
    let s: syn::Path = syn::parse_str(SCHEMARS).expect("a valid path");
    Ok(quote! {
        const _: () = {
            #[derive(#s::JsonSchema)]
            #[schemars(crate = #SCHEMARS)]
            #rename
            #(#keep)*
            #ext
            #[allow(dead_code, non_camel_case_types, clippy::all)]
            #body
            #default_impl

            #[automatically_derived]
            impl #impl_g #s::JsonSchema for #ident #ty_g #where_c {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    <#shadow #ty_g as #s::JsonSchema>::schema_name()
                }
                fn schema_id() -> ::std::borrow::Cow<'static, str> {
                    <#shadow #ty_g as #s::JsonSchema>::schema_id()
                }
                fn inline_schema() -> bool {
                    <#shadow #ty_g as #s::JsonSchema>::inline_schema()
                }
                fn json_schema(generator: &mut #s::SchemaGenerator) -> #s::Schema {
                    <#shadow #ty_g as #s::JsonSchema>::json_schema(generator)
                }
            }
        };
    })
}

/// Keeps the schema name of the original type, unless the user renamed it already.
fn rename_attr(input: &DeriveInput) -> TokenStream {
    let user_renamed = input
        .attrs
        .iter()
        .any(|a| a.path().is_ident("schemars") && quote!(#a).to_string().contains("rename"));
    if user_renamed || !input.generics.params.is_empty() {
        return quote!();
    }
    let name = input.ident.to_string();
    quote!(#[schemars(rename = #name)])
}

/// schemars evaluates a container `#[serde(default)]` as `Self::default()`, i.e. on the
/// shadow: build it from the original's `Default`.
fn container_default(input: &DeriveInput, shadow: &syn::Ident) -> TokenStream {
    let has_default = input.attrs.iter().any(|a| {
        a.path().is_ident("serde") && {
            let s = quote!(#a).to_string().replace(' ', "");
            s.contains("(default)")
                || s.contains("(default,")
                || s.contains(",default)")
                || s.contains(",default,")
        }
    });
    let Data::Struct(s) = &input.data else {
        return quote!();
    };
    if !has_default || !input.generics.params.is_empty() {
        return quote!();
    }
    let ident = &input.ident;
    let members: Vec<syn::Member> = s.fields.members().collect();
    quote! {
        impl ::std::default::Default for #shadow {
            fn default() -> Self {
                let o = <#ident as ::std::default::Default>::default();
                #shadow { #(#members: o.#members),* }
            }
        }
    }
}

/// The shadow's fields: same names and types, copied attributes plus extensions.
fn fields(fields: &Fields, serde_c: &serde_info::SerdeAttrs) -> syn::Result<TokenStream> {
    let mut errors = None;
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let parsed = attrs::parse(&f.attrs, Position::Field).and_then(|(_, fa)| {
            let serde_f = serde_info::read(&f.attrs);
            checks::check_field(&f.ty, &fa, &serde_f)?;
            Ok((fa, serde_f))
        });
        let (fa, serde_f) = match parsed {
            Ok(p) => p,
            Err(e) => {
                attrs::combine(&mut errors, e);
                continue;
            }
        };
        let ident_str = f
            .ident
            .as_ref()
            .map_or_else(|| i.to_string(), ToString::to_string);
        let json_name = serde_info::json_name(&ident_str, &serde_f, serde_c);
        let mut extra = garde_rules::cel_rules(&f.attrs, &f.ty);
        if let Some((_, msg)) = &fa.immutable {
            let msg = msg
                .as_ref()
                .map_or_else(|| format!("{json_name} is immutable"), syn::LitStr::value);
            extra.insert(0, ("self == oldSelf".into(), msg));
        }
        let keep = copied(&f.attrs)
            .into_iter()
            .map(|a| garde_rules::shadow_attr(a, &f.ty));
        let ext = extend(&fa, Some(&extra));
        let ty = &f.ty;
        let name = f.ident.as_ref().map(|id| quote!(#id:));
        out.push(quote!(#(#keep)* #ext #name #ty));
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(match fields {
        Fields::Named(_) => quote!({ #(#out),* }),
        Fields::Unnamed(_) => quote!(( #(#out),* )),
        Fields::Unit => quote!(),
    })
}

/// One `#[schemars(extend(...))]` carrying every `#[crd]` key of a node (schemars
/// rejects the same extension key twice, so all CEL rules share one array).
fn extend(a: &SchemaAttrs, extra_rules: Option<&Vec<(String, String)>>) -> TokenStream {
    let mut kv: Vec<TokenStream> = Vec::new();
    let mut rules: Vec<TokenStream> = extra_rules
        .into_iter()
        .flatten()
        .map(|(rule, message)| quote!({ "rule": #rule, "message": #message }))
        .collect();
    rules.extend(a.validations.iter().map(rule_json));
    if !rules.is_empty() {
        kv.push(quote!("x-kubernetes-validations" = [#(#rules),*]));
    }
    let lit = |k: &str, v: &Option<syn::LitStr>, kv: &mut Vec<TokenStream>| {
        if let Some(v) = v {
            kv.push(quote!(#k = #v));
        }
    };
    lit("x-kubernetes-list-type", &a.list_type, &mut kv);
    lit(
        "x-kubernetes-map-type",
        &a.map_type.clone().or_else(|| a.struct_type.clone()),
        &mut kv,
    );
    lit("format", &a.format, &mut kv);
    if let Some((_, keys)) = &a.list_map_keys {
        kv.push(quote!("x-kubernetes-list-map-keys" = [#(#keys),*]));
    }
    let flag = |k: &str, v: Option<Span>, kv: &mut Vec<TokenStream>| {
        if v.is_some() {
            kv.push(quote!(#k = true));
        }
    };
    flag("x-kubernetes-int-or-string", a.int_or_string, &mut kv);
    flag(
        "x-kubernetes-preserve-unknown-fields",
        a.preserve_unknown_fields,
        &mut kv,
    );
    flag(
        "x-kubernetes-embedded-resource",
        a.embedded_resource,
        &mut kv,
    );
    if let Some(nullable) = &a.nullable {
        kv.push(quote!("nullable" = #nullable));
    }
    if let Some(values) = &a.enum_values {
        kv.push(quote!("enum" = [#(#values),*]));
    }
    if let Some(d) = &a.default {
        kv.push(quote!("default" = #d));
    }
    if kv.is_empty() {
        return quote!();
    }
    quote!(#[schemars(extend(#(#kv),*))])
}

fn rule_json(r: &Rule) -> TokenStream {
    let rule = &r.rule;
    let mut kv = vec![quote!("rule": #rule)];
    let mut opt = |k: &str, v: &Option<syn::LitStr>| {
        if let Some(v) = v {
            kv.push(quote!(#k: #v));
        }
    };
    opt("message", &r.message);
    opt("messageExpression", &r.message_expression);
    opt("reason", &r.reason);
    opt("fieldPath", &r.field_path);
    if let Some(b) = &r.optional_old_self {
        kv.push(quote!("optionalOldSelf": #b));
    }
    quote!({ #(#kv),* })
}
