//! Compile-time rejection of shapes a structural CRD schema cannot express.
//!
//! Detection is syntactic: types are recognised by the last segment of their path
//! (`Value`, `HashMap`, `String`, ...), so a type alias hides them. The schema check
//! that runs in tests (`check_structural`) catches what slips through.

use syn::{Data, DeriveInput, Fields, GenericArgument, PathArguments, Type};

use crate::attrs::SchemaAttrs;
use crate::serde_info::SerdeAttrs;

/// Per-field checks: untyped JSON, tuples, flattened maps.
pub fn check_field(ty: &Type, schema: &SchemaAttrs, serde: &SerdeAttrs) -> syn::Result<()> {
    let keeps_unknown =
        schema.preserve_unknown_fields.is_some() || schema.embedded_resource.is_some();
    if let Some(tuple) = find(
        ty,
        &|t| matches!(t, Type::Tuple(tt) if !tt.elems.is_empty()),
    ) {
        return Err(syn::Error::new_spanned(
            tuple,
            "tuples become arrays with positional items, which a CRD schema cannot express; \
             use a struct with named fields",
        ));
    }
    if !keeps_unknown {
        if let Some(value) = find(ty, &|t| {
            last_segment(t).is_some_and(|s| s == "Value" && is_json(t))
        }) {
            return Err(syn::Error::new_spanned(
                value,
                "`serde_json::Value` has no type a structural CRD schema accepts; add \
                 `#[crd(preserve_unknown_fields)]` to this field to keep any JSON here, or use a typed struct",
            ));
        }
        if serde.flatten && is_map(ty) {
            return Err(syn::Error::new_spanned(
                ty,
                "a flattened map puts unknown keys next to named fields, which a CRD schema only allows \
                 with `#[crd(preserve_unknown_fields)]` on this field (the server then keeps every unknown key)",
            ));
        }
    }
    Ok(())
}

/// Whole-type checks: tuple structs/variants, and enums whose variants serialize to
/// different JSON types.
pub fn check_shape(
    input: &DeriveInput,
    schema: &SchemaAttrs,
    serde: &SerdeAttrs,
) -> syn::Result<()> {
    match &input.data {
        Data::Struct(s) => tuple_fields(&s.fields),
        Data::Enum(e) => {
            for v in &e.variants {
                tuple_fields(&v.fields)?;
            }
            if serde.untagged {
                untagged_kinds(e, schema)
            } else if serde.tag.is_none() {
                external_mixed(e)
            } else {
                Ok(())
            }
        }
        Data::Union(u) => Err(syn::Error::new(
            u.union_token.span,
            "unions have no JSON form; use an enum",
        )),
    }
}

fn tuple_fields(fields: &Fields) -> syn::Result<()> {
    match fields {
        Fields::Unnamed(f) if f.unnamed.len() > 1 => Err(syn::Error::new_spanned(
            f,
            "tuple structs and tuple variants with several fields become arrays with positional \
             items, which a CRD schema cannot express; use named fields",
        )),
        _ => Ok(()),
    }
}

/// Untagged variants are tried in turn; the CRD node is their union, so they must all
/// be objects, or all one scalar type, or exactly integer-or-string with
/// `#[crd(int_or_string)]`.
fn untagged_kinds(e: &syn::DataEnum, schema: &SchemaAttrs) -> syn::Result<()> {
    let mut kinds: Vec<(&'static str, &syn::Variant)> = Vec::new();
    for v in &e.variants {
        let kind = match &v.fields {
            Fields::Named(_) => Some("object"),
            Fields::Unit => Some("null"),
            Fields::Unnamed(f) => f.unnamed.first().and_then(|f| json_kind(&f.ty)),
        };
        if let Some(k) = kind
            && !kinds.iter().any(|(seen, _)| *seen == k)
        {
            kinds.push((k, v));
        }
    }
    let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
    let int_or_string = names.iter().all(|k| ["integer", "string"].contains(k));
    if names.len() <= 1 || (int_or_string && schema.int_or_string.is_some()) {
        return Ok(());
    }
    let hint = if int_or_string {
        "add `#[crd(int_or_string)]` to the enum to accept either (x-kubernetes-int-or-string)"
    } else {
        "make every variant the same JSON type (e.g. all structs), or use a tagged enum"
    };
    Err(syn::Error::new_spanned(
        kinds[1].1,
        format!(
            "the variants of this untagged enum serialize as different JSON types ({}), which \
             a structural CRD schema cannot merge; {hint}",
            names.join(", ")
        ),
    ))
}

/// Externally tagged: unit variants are strings, others objects — no single type.
fn external_mixed(e: &syn::DataEnum) -> syn::Result<()> {
    let unit = e.variants.iter().find(|v| matches!(v.fields, Fields::Unit));
    let data = e
        .variants
        .iter()
        .find(|v| !matches!(v.fields, Fields::Unit));
    if let (Some(_), Some(d)) = (unit, data) {
        return Err(syn::Error::new_spanned(
            d,
            "this enum mixes unit variants (serialized as strings) and data variants (serialized \
             as objects); a CRD node has one type. Give every variant data, or use \
             `#[serde(tag = \"...\")]`",
        ));
    }
    Ok(())
}

fn json_kind(ty: &Type) -> Option<&'static str> {
    let seg = last_segment(ty)?;
    Some(match seg.as_str() {
        "String" | "str" | "char" => "string",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "integer",
        "f32" | "f64" => "number",
        "bool" => "boolean",
        "Vec" | "VecDeque" | "HashSet" | "BTreeSet" => "array",
        "HashMap" | "BTreeMap" => "object",
        "Option" | "Box" => return json_kind(first_arg(ty)?),
        _ => return None,
    })
}

fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Reference(r) => last_segment(&r.elem),
        _ => None,
    }
}

/// `Value` alone or `serde_json::Value` (also `Map` as `serde_json::Map`).
fn is_json(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segs.len() == 1 || segs.iter().any(|s| s == "serde_json")
}

fn is_map(ty: &Type) -> bool {
    match last_segment(ty).as_deref() {
        Some("HashMap" | "BTreeMap" | "IndexMap") => true,
        Some("Map" | "Value") => is_json(ty),
        Some("Option" | "Box") => first_arg(ty).is_some_and(is_map),
        _ => false,
    }
}

fn first_arg(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The first type inside `ty` (itself included) matching `pred`, searching generics,
/// references, arrays and slices.
fn find<'a>(ty: &'a Type, pred: &dyn Fn(&Type) -> bool) -> Option<&'a Type> {
    if pred(ty) {
        return Some(ty);
    }
    match ty {
        Type::Path(p) => p.path.segments.iter().find_map(|s| match &s.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
                GenericArgument::Type(t) => find(t, pred),
                _ => None,
            }),
            _ => None,
        }),
        Type::Reference(r) => find(&r.elem, pred),
        Type::Array(a) => find(&a.elem, pred),
        Type::Slice(s) => find(&s.elem, pred),
        Type::Paren(p) => find(&p.elem, pred),
        Type::Group(g) => find(&g.elem, pred),
        Type::Tuple(t) => t.elems.iter().find_map(|e| find(e, pred)),
        _ => None,
    }
}

/// Whether a type is syntactically `String`/`Option<String>` (for byte-length rules).
pub fn is_string(ty: &Type) -> bool {
    match last_segment(ty).as_deref() {
        Some("String") => true,
        Some("Option") => first_arg(ty).is_some_and(is_string),
        _ => false,
    }
}
