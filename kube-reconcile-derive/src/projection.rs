//! `#[derive(Projection)]`: a struct reading a subset of another type's fields from its
//! wire form, with every field checked against the source at compile time.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Attribute, Data, DeriveInput, Fields, GenericArgument, Ident, Path, PathArguments, Type,
    spanned::Spanned,
};

const P: &str = "::kube_reconcile::projection::__private";

fn private() -> TokenStream {
    P.parse().expect("a path")
}

/// The private path with every token at `span`, so errors in the check point there.
fn private_at(span: Span) -> TokenStream {
    private()
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// The container keys.
struct Container {
    of: Path,
    nested: bool,
    /// `rename_all = "camelCase"`: serde's camelCase names, for sources written in Rust
    /// (a `#[derive(Crd)]` spec); the default restores Kubernetes' acronyms.
    plain_camel_case: bool,
}

/// One field as the derive sees it.
struct Field<'a> {
    ident: &'a Ident,
    ty: &'a Type,
    /// The source field it reads (the Rust name, e.g. `pod_ip`).
    source: Ident,
    /// `#[serde(...)]` attributes passed on verbatim.
    serde: Vec<&'a Attribute>,
    /// Serde keys present among them (`rename`, `skip`, `default`, ...).
    serde_keys: Vec<String>,
    /// The name given by `rename = "..."` or `rename(deserialize = "...")`, if read.
    serde_rename: Option<String>,
}

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let container = container(input)?;
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            input.generics.span(),
            "a projection cannot be generic",
        ));
    }
    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "a projection must be a struct with named fields",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "a projection must be a struct with named fields",
            ));
        }
    };
    let fields = named
        .named
        .iter()
        .map(field)
        .collect::<syn::Result<Vec<_>>>()?;
    let has_metadata = fields.iter().any(|f| f.ident == "metadata");
    if !container.nested && !has_metadata {
        return Err(syn::Error::new(
            input.ident.span(),
            format!(
                "`{}` projects a top-level resource but has no `metadata: ObjectMeta` field \
                 (stores key objects by it); add one, or mark a projection of a nested type \
                 (such as PodSpec) `#[projection(of = ..., nested)]`",
                input.ident
            ),
        ));
    }
    let deserialize = deserialize(input, &fields, &container);
    let check = check(&container.of, &fields, !container.nested);
    let ident = &input.ident;
    let of = &container.of;
    let p = private();
    let resource = (!container.nested).then(|| resource(ident, of));
    let names = fields.iter().filter_map(|f| {
        let has = |k: &str| f.serde_keys.iter().any(|s| s == k);
        if has("skip") || has("skip_deserializing") || has("flatten") {
            return None;
        }
        match (&f.serde_rename, has("rename")) {
            (Some(name), _) => Some(name.clone()),
            // A rename this derive could not read: leave the name out of the list.
            (None, true) => None,
            (None, false) => Some(json_name(
                &f.source.to_string(),
                !container.plain_camel_case,
            )),
        }
    });
    Ok(quote! {
        impl #p::ProjectionOf<#of> for #ident {}
        impl #p::Projection for #ident {
            type Source = #of;
            const FIELDS: &'static [&'static str] = &[#(#names),*];
        }
        #deserialize
        #check
        #resource
    })
}

fn container(input: &DeriveInput) -> syn::Result<Container> {
    let mut of = None;
    let mut nested = false;
    let mut plain_camel_case = false;
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("projection"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("of") {
                of = Some(meta.value()?.parse::<Path>()?);
            } else if meta.path.is_ident("nested") {
                nested = true;
            } else if meta.path.is_ident("rename_all") {
                let value = meta.value()?.parse::<syn::LitStr>()?;
                if value.value() != "camelCase" {
                    return Err(syn::Error::new(
                        value.span(),
                        "only `rename_all = \"camelCase\"` is supported",
                    ));
                }
                plain_camel_case = true;
            } else {
                return Err(meta.error(
                    "unknown key; expected `of = Type`, `nested` or `rename_all = \"camelCase\"`",
                ));
            }
            Ok(())
        })?;
    }
    let of = of.ok_or_else(|| {
        syn::Error::new(
            input.ident.span(),
            "missing `#[projection(of = SourceType)]`",
        )
    })?;
    Ok(Container {
        of,
        nested,
        plain_camel_case,
    })
}

fn field(f: &syn::Field) -> syn::Result<Field<'_>> {
    let ident = f.ident.as_ref().expect("named fields");
    let mut source = None;
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("projection")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("field") {
                source = Some(meta.value()?.parse::<Ident>()?);
                Ok(())
            } else {
                Err(meta.error("unknown key; expected `field = source_field`"))
            }
        })?;
    }
    let serde: Vec<_> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .collect();
    let mut serde_keys = Vec::new();
    let mut serde_rename = None;
    for attr in &serde {
        attr.parse_nested_meta(|meta| {
            if let Some(key) = meta.path.get_ident() {
                serde_keys.push(key.to_string());
            }
            if meta.path.is_ident("rename") {
                if meta.input.peek(syn::Token![=]) {
                    serde_rename = Some(meta.value()?.parse::<syn::LitStr>()?.value());
                } else {
                    meta.parse_nested_meta(|m| {
                        if m.path.is_ident("deserialize") {
                            serde_rename = Some(m.value()?.parse::<syn::LitStr>()?.value());
                            Ok(())
                        } else {
                            skip_value(&m)
                        }
                    })?;
                }
                return Ok(());
            }
            skip_value(&meta)
        })?;
    }
    Ok(Field {
        ident,
        ty: &f.ty,
        source: source.unwrap_or_else(|| ident.clone()),
        serde,
        serde_keys,
        serde_rename,
    })
}

fn skip_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|m| skip_value(&m))?;
    }
    Ok(())
}

/// A shadow struct with serde's derive, moved field by field into the user's struct:
/// serde's generated code does the skipping of unknown fields without building them.
fn deserialize(input: &DeriveInput, fields: &[Field], container: &Container) -> TokenStream {
    let ident = &input.ident;
    let p = private();
    let krate = format!("{P}::serde");
    let shadow_fields = fields.iter().map(|f| {
        let name = f.ident;
        let ty = f.ty;
        let attrs = &f.serde;
        let has = |k: &str| f.serde_keys.iter().any(|s| s == k);
        let rename = (!has("rename") && !has("skip") && !has("skip_deserializing")).then(|| {
            let json = json_name(&f.source.to_string(), !container.plain_camel_case);
            quote!(#[serde(rename = #json)])
        });
        // Absent lists, maps and metadata read as empty, as k8s-openapi decodes them.
        // (`metadata` only of a top-level projection, where it is an `ObjectMeta`.)
        let lenient = (f.ident == "metadata" && !container.nested)
            || matches!(wrapper(f.ty), Some((Wrapper::Vec | Wrapper::Map, _)));
        let default = (lenient && !has("default") && !has("skip") && !has("skip_deserializing"))
            .then(|| quote!(#[serde(default)]));
        quote!(#(#attrs)* #rename #default #name: #ty)
    });
    let moves = fields.iter().map(|f| {
        let name = f.ident;
        quote!(#name: shadow.#name)
    });
    let expecting = ident.to_string();
    quote! {
        impl<'de> #p::serde::Deserialize<'de> for #ident {
            fn deserialize<D: #p::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                #[derive(#p::serde::Deserialize)]
                #[serde(crate = #krate, rename = #expecting)]
                struct Shadow { #(#shadow_fields,)* }
                let shadow = <Shadow as #p::serde::Deserialize<'de>>::deserialize(deserializer)?;
                ::core::result::Result::Ok(Self { #(#moves,)* })
            }
        }
    }
}

fn resource(ident: &Ident, of: &Path) -> TokenStream {
    let p = private();
    let k = quote!(#p::kube::Resource);
    let span = of.span();
    let source = quote_spanned!(span=> <#of as #k>);
    quote! {
        impl #k for #ident {
            type DynamicType = ();
            type Scope = #source::Scope;
            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> { #source::kind(&()) }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> { #source::group(&()) }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> { #source::version(&()) }
            fn api_version(_: &()) -> ::std::borrow::Cow<'_, str> { #source::api_version(&()) }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> { #source::plural(&()) }
            fn meta(&self) -> &#p::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut #p::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Wrapper {
    Option,
    Vec,
    Map,
}

/// The outermost wrapper the check peels, recognised by name, and what it wraps.
fn wrapper(ty: &Type) -> Option<(Wrapper, &Type)> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match (last.ident.to_string().as_str(), types.as_slice()) {
        ("Option", [inner]) => Some((Wrapper::Option, inner)),
        ("Vec", [inner]) => Some((Wrapper::Vec, inner)),
        ("BTreeMap", [_, inner]) => Some((Wrapper::Map, inner)),
        _ => None,
    }
}

/// One function type-checking every field against the source, never called: a missing
/// field or an incompatible type fails the build with a span on the field.
fn check(of: &Path, fields: &[Field], top_level: bool) -> TokenStream {
    let checks = fields
        .iter()
        .filter(|f| {
            !f.serde_keys
                .iter()
                .any(|k| k == "skip" || k == "skip_deserializing")
        })
        .map(|f| {
            let source = &f.source;
            let p = private_at(source.span());
            let mut steps =
                vec![quote_spanned!(source.span()=> let m = #p::field(&source.#source);)];
            let mut ty = f.ty;
            while let Some((w, inner)) = wrapper(ty) {
                let peel = match w {
                    Wrapper::Option => "option",
                    Wrapper::Vec => "vec",
                    Wrapper::Map => "map",
                };
                let peel = format_ident!("{peel}", span = ty.span());
                let p = private_at(ty.span());
                steps.push(quote_spanned!(ty.span()=> let m = #p::#peel(m);));
                ty = inner;
            }
            let p = private_at(ty.span());
            steps.push(quote_spanned!(ty.span()=> #p::source(m).require::<#ty>();));
            quote!({ #(#steps)* })
        });
    let name = format_ident!("__check_projection_fields", span = Span::call_site());
    let top_level = top_level.then(|| {
        let p = private_at(of.span());
        quote_spanned!(of.span()=> #p::top_level::<#of>();)
    });
    quote! {
        const _: () = {
            #[allow(dead_code, clippy::all)]
            fn #name(source: &#of) {
                #top_level
                #(#checks)*
            }
        };
    }
}

/// Words Kubernetes' JSON names spell in capitals after the first word (`podIP`,
/// `podIPs`, `containerID`, `podCIDRs`, `scaleIO`, `openAPIV3Schema`); k8s-openapi turns
/// each into one lower-case word of the Rust name. With the two special cases in
/// [`json_name`], this gives the JSON name of every field of k8s-openapi 0.29 (v1_37)
/// except `DaemonEndpoint::port` (`Port`), `JSONSchemaProps::schema` (`$schema`) and
/// `stub_pkc_s10_request` (`stubPKCS10Request`), which need `#[serde(rename)]`.
const ACRONYMS: &[(&str, &str)] = &[
    ("ip", "IP"),
    ("ips", "IPs"),
    ("ipc", "IPC"),
    ("pid", "PID"),
    ("id", "ID"),
    ("ids", "IDs"),
    ("uid", "UID"),
    ("uuid", "UUID"),
    ("cidr", "CIDR"),
    ("cidrs", "CIDRs"),
    ("url", "URL"),
    ("urls", "URLs"),
    ("fqdn", "FQDN"),
    ("uri", "URI"),
    ("cpu", "CPU"),
    ("tls", "TLS"),
    ("io", "IO"),
    ("api", "API"),
    ("wwns", "WWNs"),
];

/// The JSON name of a k8s-openapi field (`acronyms`) or of a `rename_all = "camelCase"`
/// one.
pub fn json_name(rust: &str, acronyms: bool) -> String {
    let rust = rust.strip_prefix("r#").unwrap_or(rust);
    let rust = rust.strip_suffix('_').unwrap_or(rust);
    if acronyms {
        // The JSON schema extensions of CustomResourceDefinitions.
        if rust == "ref_path" {
            return "$ref".to_owned();
        }
        if let Some(rest) = rust.strip_prefix("x_kubernetes_") {
            return format!("x-kubernetes-{}", rest.replace('_', "-"));
        }
    }
    let mut out = String::with_capacity(rust.len());
    for (i, word) in rust.split('_').enumerate() {
        if i == 0 {
            out.push_str(word);
        } else if let Some((_, caps)) = ACRONYMS.iter().find(|(w, _)| acronyms && *w == word) {
            out.push_str(caps);
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::json_name;

    #[test]
    fn kubernetes_names() {
        for (rust, json) in [
            ("node_name", "nodeName"),
            ("pod_ip", "podIP"),
            ("pod_ips", "podIPs"),
            ("host_ips", "hostIPs"),
            ("container_id", "containerID"),
            ("pod_cidrs", "podCIDRs"),
            ("scale_io", "scaleIO"),
            ("open_api_v3_schema", "openAPIV3Schema"),
            ("non_resource_urls", "nonResourceURLs"),
            ("set_hostname_as_fqdn", "setHostnameAsFQDN"),
            ("type_", "type"),
            ("r#type", "type"),
            ("ref_path", "$ref"),
            ("x_kubernetes_list_map_keys", "x-kubernetes-list-map-keys"),
            ("ip_families", "ipFamilies"),
        ] {
            assert_eq!(json_name(rust, true), json, "{rust}");
        }
        assert_eq!(json_name("pod_ip", false), "podIp");
        assert_eq!(json_name("max_unavailable", false), "maxUnavailable");
    }
}
