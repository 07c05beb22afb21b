//! `#[derive(Crd)]`: the resource type named by `kind`, its `kube::Resource`, serde and
//! `CustomResourceExt` impls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{DeriveInput, LitStr, Path};

use crate::attrs::{ResourceAttrs, SchemaAttrs};

const P: &str = "::kube_reconcile::crd::__private";

fn private() -> syn::Path {
    syn::parse_str(P).expect("a valid path")
}

/// Checks the resource keys against each other, with a span at the culprit.
pub fn validate(input: &DeriveInput, r: &ResourceAttrs, s: &SchemaAttrs) -> syn::Result<()> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a `#[derive(Crd)]` spec cannot be generic: a CRD has one schema per version; \
             make a concrete spec type (generic nested types may derive `CrdSchema`)",
        ));
    }
    for (value, key, example) in [
        (&r.group, "group", "group = \"example.com\""),
        (&r.version, "version", "version = \"v1\""),
        (&r.kind, "kind", "kind = \"MyResource\""),
    ] {
        if value.is_none() {
            return Err(syn::Error::new(
                input.ident.span(),
                format!("`#[derive(Crd)]` needs `#[crd({key} = ...)]`, e.g. `#[crd({example})]`"),
            ));
        }
    }
    if let Some(scale) = &r.scale {
        let status_paths =
            std::iter::once(&scale.status_replicas_path).chain(&scale.label_selector_path);
        for path in status_paths {
            if path.value().starts_with(".status") && r.status.is_none() {
                return Err(syn::Error::new(
                    path.span(),
                    "this scale path points into `.status`, but the resource has no status: \
                     add `status = MyStatus` to `#[crd(...)]`",
                ));
            }
        }
        if !scale.spec_replicas_path.value().starts_with(".spec.") {
            return Err(syn::Error::new(
                scale.spec_replicas_path.span(),
                "`spec_replicas_path` must start with `.spec.`",
            ));
        }
        let _ = scale.span;
    }
    if let (Some(w), None) = (&r.deprecation_warning, r.deprecated) {
        return Err(syn::Error::new(
            w.span(),
            "`deprecation_warning` needs `deprecated` (only deprecated versions warn)",
        ));
    }
    if let Some((span, _)) = s.immutable {
        return Err(syn::Error::new(
            span,
            "`immutable` goes on fields; for a spec that may never change, put \
             `validation(rule = \"self == oldSelf\")` on the spec",
        ));
    }
    Ok(())
}

fn opt_str(v: &Option<LitStr>) -> TokenStream {
    match v {
        Some(v) => quote!(::std::option::Option::Some(#v)),
        None => quote!(::std::option::Option::None),
    }
}

/// English plural of a lower-cased kind, as `kubectl` users expect for most kinds.
fn plural(kind: &str) -> String {
    let k = kind.to_lowercase();
    let consonant_y =
        k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy");
    if consonant_y {
        format!("{}ies", &k[..k.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"].iter().any(|e| k.ends_with(e)) {
        format!("{k}es")
    } else {
        format!("{k}s")
    }
}

/// The `CrdInfo` constant generated code hands to `build_crd`.
fn info(r: &ResourceAttrs, n: &Names) -> TokenStream {
    let p = private();
    let (kind, plural_name, singular) = (&n.kind, &n.plural, &n.singular);
    let spec_optional = n.spec_optional;
    let (group, version) = (&r.group, &r.version);
    let (short, cats, fields) = (&r.short_names, &r.categories, &r.selectable_fields);
    let annotations = r.annotations.iter().map(|(k, v)| quote!((#k, #v)));
    let namespaced = r.namespaced;
    let served = r.served.as_ref().is_none_or(|b| b.value);
    let storage = r.storage.as_ref().is_none_or(|b| b.value);
    let deprecated = r.deprecated.is_some();
    let warning = opt_str(&r.deprecation_warning);
    let scale = match &r.scale {
        Some(s) => {
            let (a, b, c) = (
                &s.spec_replicas_path,
                &s.status_replicas_path,
                opt_str(&s.label_selector_path),
            );
            quote!(::std::option::Option::Some((#a, #b, #c)))
        }
        None => quote!(::std::option::Option::None),
    };
    let columns = r.printer_columns.iter().map(|c| {
        let (name, ty, path) = (&c.name, &c.type_, &c.json_path);
        let (desc, format) = (opt_str(&c.description), opt_str(&c.format));
        let priority = match &c.priority {
            Some(n) => quote!(::std::option::Option::Some(#n)),
            None => quote!(::std::option::Option::None),
        };
        quote!(#p::PrinterColumn { name: #name, type_: #ty, json_path: #path, description: #desc, format: #format, priority: #priority })
    });
    quote! {
        #p::CrdInfo {
            group: #group, version: #version, kind: #kind, plural: #plural_name, singular: #singular,
            short_names: &[#(#short),*], categories: &[#(#cats),*], namespaced: #namespaced,
            annotations: &[#(#annotations),*],
            served: #served, storage: #storage, deprecated: #deprecated, deprecation_warning: #warning,
            spec_optional: #spec_optional, scale: #scale, printer_columns: &[#(#columns),*], selectable_fields: &[#(#fields),*],
        }
    }
}

/// What the generated items are called, computed once from the attributes.
struct Names<'a> {
    spec: &'a syn::Ident,
    root: syn::Ident,
    kind: String,
    group: String,
    version: String,
    api_version: String,
    plural: String,
    singular: String,
    status: Option<&'a Path>,
    /// The spec struct is `#[serde(default)]`: an object without `spec` is valid.
    spec_optional: bool,
}

impl<'a> Names<'a> {
    fn new(input: &'a DeriveInput, r: &'a ResourceAttrs) -> Self {
        let value = |v: &Option<LitStr>| v.as_ref().map(LitStr::value).unwrap_or_default();
        let (kind, group, version) = (value(&r.kind), value(&r.group), value(&r.version));
        let span = r.kind.as_ref().map_or(input.ident.span(), LitStr::span);
        Names {
            spec: &input.ident,
            root: format_ident!("{}", kind, span = span),
            api_version: format!("{group}/{version}"),
            plural: r
                .plural
                .as_ref()
                .map_or_else(|| plural(&kind), LitStr::value),
            singular: r
                .singular
                .as_ref()
                .map_or_else(|| kind.to_lowercase(), LitStr::value),
            status: r.status.as_ref(),
            spec_optional: crate::serde_info::read(&input.attrs).default,
            kind,
            group,
            version,
        }
    }
}

/// The resource type and its impls.
pub fn expand(input: &DeriveInput, r: &ResourceAttrs) -> TokenStream {
    let n = Names::new(input, r);
    let root_type = root_type(&n, &input.vis);
    let serde_impl = serialize_impl(&n);
    let kube_impls = kube_impls(&n, r.namespaced);
    let ext_impl = ext_impl(&n, r);
    quote!(#root_type #serde_impl #kube_impls #ext_impl)
}

/// The struct, `new`, and its derived `Clone`, `Debug`, `Deserialize`.
fn root_type(n: &Names, vis: &syn::Visibility) -> TokenStream {
    let p = private();
    let (root, spec) = (&n.root, n.spec);
    let doc = format!(
        "The `{}` resource (`{}`), whose spec is [`{spec}`]; generated by `#[derive(Crd)]`.",
        n.kind, n.api_version
    );
    let (status_field, status_init) = match n.status {
        Some(st) => (
            quote!(#[doc = "The status, written by the controller."] #[serde(default)] pub status: ::std::option::Option<#st>,),
            quote!(status: ::std::option::Option::None,),
        ),
        None => (quote!(), quote!()),
    };
    let serde_crate = format!("{P}::serde");
    let (spec_doc, spec_default) = if n.spec_optional {
        (
            "The desired state (`Default` when the object has none).",
            quote!(#[serde(default)]),
        )
    } else {
        ("The desired state.", quote!())
    };
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, #p::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        #vis struct #root {
            /// Standard object metadata.
            #[serde(default)]
            pub metadata: #p::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            #[doc = #spec_doc]
            #spec_default
            pub spec: #spec,
            #status_field
        }

        impl #root {
            /// A new object with only a name and a spec.
            pub fn new(name: &str, spec: #spec) -> Self {
                Self {
                    metadata: #p::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: ::std::option::Option::Some(::std::string::ToString::to_string(name)),
                        ..::std::default::Default::default()
                    },
                    spec,
                    #status_init
                }
            }
        }
    }
}

/// Serialization writes `apiVersion` and `kind`, which the struct does not store.
fn serialize_impl(n: &Names) -> TokenStream {
    let p = private();
    let (root, kind, api_version) = (&n.root, &n.kind, &n.api_version);
    let status = n.status.map(|_| {
        quote!(if let ::std::option::Option::Some(s) = &self.status {
            st.serialize_field("status", s)?;
        })
    });
    quote! {
        impl #p::serde::Serialize for #root {
            fn serialize<S: #p::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                use #p::serde::ser::SerializeStruct as _;
                let mut st = serializer.serialize_struct(#kind, 5)?;
                st.serialize_field("apiVersion", #api_version)?;
                st.serialize_field("kind", #kind)?;
                st.serialize_field("metadata", &self.metadata)?;
                st.serialize_field("spec", &self.spec)?;
                #status
                st.end()
            }
        }
    }
}

/// `kube::Resource`, `HasSpec` and (with a status) `HasStatus`.
fn kube_impls(n: &Names, namespaced: bool) -> TokenStream {
    let p = private();
    let (root, spec) = (&n.root, n.spec);
    let (kind, group, version, api_version, plural) =
        (&n.kind, &n.group, &n.version, &n.api_version, &n.plural);
    let scope = if namespaced {
        quote!(NamespaceResourceScope)
    } else {
        quote!(ClusterResourceScope)
    };
    let meta = quote!(#p::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta);
    let status_impl = n.status.map(|st| {
        quote! {
            impl #p::kube::core::object::HasStatus for #root {
                type Status = #st;
                fn status(&self) -> ::std::option::Option<&#st> { self.status.as_ref() }
                fn status_mut(&mut self) -> &mut ::std::option::Option<#st> { &mut self.status }
            }
        }
    });
    quote! {
        impl #p::kube::Resource for #root {
            type DynamicType = ();
            type Scope = #p::k8s_openapi::#scope;
            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> { #kind.into() }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> { #group.into() }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> { #version.into() }
            fn api_version(_: &()) -> ::std::borrow::Cow<'_, str> { #api_version.into() }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> { #plural.into() }
            fn meta(&self) -> &#meta { &self.metadata }
            fn meta_mut(&mut self) -> &mut #meta { &mut self.metadata }
        }

        impl #p::kube::core::object::HasSpec for #root {
            type Spec = #spec;
            fn spec(&self) -> &#spec { &self.spec }
            fn spec_mut(&mut self) -> &mut #spec { &mut self.spec }
        }

        #status_impl
    }
}

/// `CustomResourceExt`: the CRD is built at run time from a constant description.
fn ext_impl(n: &Names, r: &ResourceAttrs) -> TokenStream {
    let p = private();
    let (root, spec) = (&n.root, n.spec);
    let info = info(r, n);
    let crd_name = format!("{}.{}", n.plural, n.group);
    let short = &r.short_names;
    let status_schema = match n.status {
        Some(st) => quote!(::std::option::Option::Some(#p::schema_for::<#st>())),
        None => quote!(::std::option::Option::None),
    };
    quote! {
        impl #p::CustomResourceExt for #root {
            fn crd() -> #p::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                const INFO: #p::CrdInfo = #info;
                #p::build_crd(&INFO, #p::schema_for::<#spec>(), #status_schema)
            }
            fn crd_name() -> &'static str { #crd_name }
            fn api_resource() -> #p::kube::core::ApiResource {
                #p::kube::core::ApiResource::erase::<Self>(&())
            }
            fn short_names() -> &'static [&'static str] { &[#(#short),*] }
        }
    }
}
