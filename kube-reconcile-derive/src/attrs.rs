//! Parsing `#[crd(...)]`: resource keys (on the spec of `#[derive(Crd)]`) and schema keys
//! (on containers, fields and variants). Every mistake is a spanned `syn::Error`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::Parse as _;
use syn::{
    Attribute, LitBool, LitInt, LitStr, Path, Token, meta::ParseNestedMeta, spanned::Spanned,
};

/// Where an attribute sits decides which keys it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The spec struct of `#[derive(Crd)]`.
    Resource,
    /// A struct or enum deriving `CrdSchema`.
    Container,
    /// A field.
    Field,
    /// An enum variant.
    Variant,
}

const RESOURCE_KEYS: &[&str] = &[
    "group",
    "version",
    "kind",
    "namespaced",
    "plural",
    "singular",
    "short_names",
    "categories",
    "annotation",
    "status",
    "scale",
    "printer_column",
    "selectable_field",
    "served",
    "storage",
    "deprecated",
    "deprecation_warning",
    "validation",
    "struct_type",
    "preserve_unknown_fields",
    "immutable",
];
const CONTAINER_KEYS: &[&str] = &[
    "validation",
    "struct_type",
    "preserve_unknown_fields",
    "int_or_string",
    "embedded_resource",
    "nullable",
];
const FIELD_KEYS: &[&str] = &[
    "validation",
    "immutable",
    "list_type",
    "list_map_keys",
    "map_type",
    "struct_type",
    "int_or_string",
    "preserve_unknown_fields",
    "embedded_resource",
    "default",
    "format",
    "nullable",
    "enum_values",
];
const VARIANT_KEYS: &[&str] = &["validation"];

/// A CEL rule: `validation(rule = "...", message = "...", ...)`.
pub struct Rule {
    pub rule: LitStr,
    pub message: Option<LitStr>,
    pub message_expression: Option<LitStr>,
    pub reason: Option<LitStr>,
    pub field_path: Option<LitStr>,
    pub optional_old_self: Option<LitBool>,
}

/// Keys that shape the schema of the node they sit on.
#[derive(Default)]
pub struct SchemaAttrs {
    pub validations: Vec<Rule>,
    pub immutable: Option<(Span, Option<LitStr>)>,
    pub list_type: Option<LitStr>,
    pub list_map_keys: Option<(Span, Vec<LitStr>)>,
    pub map_type: Option<LitStr>,
    pub struct_type: Option<LitStr>,
    pub int_or_string: Option<Span>,
    pub preserve_unknown_fields: Option<Span>,
    pub embedded_resource: Option<Span>,
    pub default: Option<TokenStream>,
    pub format: Option<LitStr>,
    /// `nullable` (true) or `nullable = <bool>`.
    pub nullable: Option<LitBool>,
    /// `enum_values(301, 302)`: the allowed values of a non-enum type.
    pub enum_values: Option<Vec<syn::Expr>>,
}

/// `scale(...)`.
pub struct Scale {
    pub span: Span,
    pub spec_replicas_path: LitStr,
    pub status_replicas_path: LitStr,
    pub label_selector_path: Option<LitStr>,
}

/// `printer_column(...)`.
pub struct Column {
    pub name: LitStr,
    pub type_: LitStr,
    pub json_path: LitStr,
    pub description: Option<LitStr>,
    pub format: Option<LitStr>,
    pub priority: Option<LitInt>,
}

/// Keys only the resource (spec of `#[derive(Crd)]`) takes.
#[derive(Default)]
pub struct ResourceAttrs {
    pub group: Option<LitStr>,
    pub version: Option<LitStr>,
    pub kind: Option<LitStr>,
    pub namespaced: bool,
    pub plural: Option<LitStr>,
    pub singular: Option<LitStr>,
    pub short_names: Vec<LitStr>,
    pub categories: Vec<LitStr>,
    /// `annotation("key", "value")`: on the CRD object itself.
    pub annotations: Vec<(LitStr, LitStr)>,
    pub status: Option<Path>,
    pub scale: Option<Scale>,
    pub printer_columns: Vec<Column>,
    pub selectable_fields: Vec<LitStr>,
    pub served: Option<LitBool>,
    pub storage: Option<LitBool>,
    pub deprecated: Option<Span>,
    pub deprecation_warning: Option<LitStr>,
}

/// Parses every `#[crd(...)]` in `attrs` for `pos`; collects all errors into one.
pub fn parse(attrs: &[Attribute], pos: Position) -> syn::Result<(ResourceAttrs, SchemaAttrs)> {
    let mut res = ResourceAttrs::default();
    let mut schema = SchemaAttrs::default();
    let mut errors: Option<syn::Error> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("crd")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let allowed = match pos {
                Position::Resource => RESOURCE_KEYS,
                Position::Container => CONTAINER_KEYS,
                Position::Field => FIELD_KEYS,
                Position::Variant => VARIANT_KEYS,
            };
            if !allowed.contains(&key.as_str()) {
                return Err(unknown_key(&meta, &key, allowed, pos));
            }
            if resource_key(&meta, &key, &mut res)? {
                return Ok(());
            }
            schema_key(&meta, &key, &mut schema)
        });
        if let Err(e) = result {
            combine(&mut errors, e);
        }
    }
    if let Err(e) = schema.check() {
        combine(&mut errors, e);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok((res, schema)),
    }
}

pub fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn unknown_key(meta: &ParseNestedMeta, key: &str, allowed: &[&str], pos: Position) -> syn::Error {
    let all: Vec<&str> = RESOURCE_KEYS
        .iter()
        .chain(FIELD_KEYS)
        .chain(CONTAINER_KEYS)
        .copied()
        .collect();
    let here = match pos {
        Position::Resource => "on a `#[derive(Crd)]` spec",
        Position::Container => "on a `#[derive(CrdSchema)]` type",
        Position::Field => "on a field",
        Position::Variant => "on an enum variant",
    };
    let msg = if let Some(best) = closest(key, allowed) {
        format!("unknown `#[crd]` key `{key}` {here}: did you mean `{best}`?")
    } else if all.contains(&key) {
        format!(
            "`{key}` is not allowed {here}; allowed here: {}",
            allowed.join(", ")
        )
    } else {
        format!(
            "unknown `#[crd]` key `{key}` {here}; expected one of: {}",
            allowed.join(", ")
        )
    };
    meta.error(msg)
}

/// The allowed key nearest to a misspelt one (edit distance ≤ 3 and below its length).
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|k| (levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 3 && *d < k.len().max(key.len()) / 2 + 1)
        .min()
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn set<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta, key: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!("`{key}` is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn lit_str(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// `key("a", "b")`
pub fn str_list(meta: &ParseNestedMeta) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::parenthesized!(content in meta.input);
    Ok(content
        .parse_terminated(|p| p.parse::<LitStr>(), Token![,])?
        .into_iter()
        .collect())
}

/// Returns `Ok(true)` when `key` was a resource key and has been consumed.
fn resource_key(meta: &ParseNestedMeta, key: &str, res: &mut ResourceAttrs) -> syn::Result<bool> {
    match key {
        "group" => set(&mut res.group, lit_str(meta)?, meta, key)?,
        "version" => set(&mut res.version, lit_str(meta)?, meta, key)?,
        "kind" => set(&mut res.kind, lit_str(meta)?, meta, key)?,
        "plural" => set(&mut res.plural, lit_str(meta)?, meta, key)?,
        "singular" => set(&mut res.singular, lit_str(meta)?, meta, key)?,
        "deprecation_warning" => set(&mut res.deprecation_warning, lit_str(meta)?, meta, key)?,
        "namespaced" => res.namespaced = true,
        "deprecated" => set(&mut res.deprecated, meta.path.span(), meta, key)?,
        "short_names" => res.short_names.extend(str_list(meta)?),
        "categories" => res.categories.extend(str_list(meta)?),
        "annotation" => match str_list(meta)?.as_slice() {
            [key, value] => res.annotations.push((key.clone(), value.clone())),
            _ => {
                return Err(meta.error(
                    "annotation takes a key and a value: annotation(\"api-approved.kubernetes.io\", \"https://...\")",
                ));
            }
        },
        "status" => set(&mut res.status, meta.value()?.parse()?, meta, key)?,
        "served" => set(&mut res.served, bool_value(meta, key)?, meta, key)?,
        "storage" => set(&mut res.storage, bool_value(meta, key)?, meta, key)?,
        "selectable_field" => {
            let mut path = None;
            meta.parse_nested_meta(|m| {
                match m.path.get_ident().map(ToString::to_string).as_deref() {
                    Some("json_path") => set(&mut path, lit_str(&m)?, &m, "json_path"),
                    _ => Err(m.error("`selectable_field` takes only `json_path = \"...\"`")),
                }
            })?;
            res.selectable_fields
                .push(path.ok_or_else(|| meta.error("`selectable_field` needs `json_path`"))?);
        }
        "scale" => set(&mut res.scale, parse_scale(meta)?, meta, key)?,
        "printer_column" => res.printer_columns.push(parse_column(meta)?),
        _ => return Ok(false),
    }
    Ok(true)
}

fn bool_value(meta: &ParseNestedMeta, key: &str) -> syn::Result<LitBool> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!(
            "`{key}` needs a value: `{key} = true` or `{key} = false`"
        )));
    }
    meta.value()?
        .parse::<LitBool>()
        .map_err(|e| syn::Error::new(e.span(), format!("`{key}` takes `true` or `false`")))
}

fn parse_scale(meta: &ParseNestedMeta) -> syn::Result<Scale> {
    let (mut spec, mut status, mut selector) = (None, None, None);
    meta.parse_nested_meta(
        |m| match m.path.get_ident().map(ToString::to_string).as_deref() {
            Some("spec_replicas_path") => set(&mut spec, lit_str(&m)?, &m, "spec_replicas_path"),
            Some("status_replicas_path") => {
                set(&mut status, lit_str(&m)?, &m, "status_replicas_path")
            }
            Some("label_selector_path") => {
                set(&mut selector, lit_str(&m)?, &m, "label_selector_path")
            }
            _ => Err(m.error(
                "`scale` takes spec_replicas_path, status_replicas_path, label_selector_path",
            )),
        },
    )?;
    let need =
        |v: Option<LitStr>, k: &str| v.ok_or_else(|| meta.error(format!("`scale` needs `{k}`")));
    Ok(Scale {
        span: meta.path.span(),
        spec_replicas_path: need(spec, "spec_replicas_path")?,
        status_replicas_path: need(status, "status_replicas_path")?,
        label_selector_path: selector,
    })
}

fn parse_column(meta: &ParseNestedMeta) -> syn::Result<Column> {
    let (mut name, mut ty, mut path, mut desc, mut format, mut priority) =
        (None, None, None, None, None, None);
    meta.parse_nested_meta(
        |m| match m.path.get_ident().map(ToString::to_string).as_deref() {
            Some("name") => set(&mut name, lit_str(&m)?, &m, "name"),
            Some("type") => set(&mut ty, lit_str(&m)?, &m, "type"),
            Some("json_path") => set(&mut path, lit_str(&m)?, &m, "json_path"),
            Some("description") => set(&mut desc, lit_str(&m)?, &m, "description"),
            Some("format") => set(&mut format, lit_str(&m)?, &m, "format"),
            Some("priority") => set(&mut priority, m.value()?.parse()?, &m, "priority"),
            _ => Err(m.error(
                "`printer_column` takes name, type, json_path, description, format, priority",
            )),
        },
    )?;
    let need = |v: Option<LitStr>, k: &str| {
        v.ok_or_else(|| meta.error(format!("`printer_column` needs `{k}`")))
    };
    let type_ = need(ty, "type")?;
    const TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
    if !TYPES.contains(&type_.value().as_str()) {
        return Err(syn::Error::new(
            type_.span(),
            format!("printer column type must be one of {TYPES:?}"),
        ));
    }
    Ok(Column {
        name: need(name, "name")?,
        type_,
        json_path: need(path, "json_path")?,
        description: desc,
        format,
        priority,
    })
}

fn schema_key(meta: &ParseNestedMeta, key: &str, s: &mut SchemaAttrs) -> syn::Result<()> {
    let span = meta.path.span();
    match key {
        "validation" => s.validations.push(parse_rule(meta)?),
        "immutable" => {
            let message = if meta.input.peek(Token![=]) {
                Some(lit_str(meta)?)
            } else {
                None
            };
            set(&mut s.immutable, (span, message), meta, key)?;
        }
        "list_type" => set(
            &mut s.list_type,
            one_of(meta, &["atomic", "set", "map"])?,
            meta,
            key,
        )?,
        "map_type" => set(
            &mut s.map_type,
            one_of(meta, &["atomic", "granular"])?,
            meta,
            key,
        )?,
        "struct_type" => set(
            &mut s.struct_type,
            one_of(meta, &["atomic", "granular"])?,
            meta,
            key,
        )?,
        "list_map_keys" => set(&mut s.list_map_keys, (span, str_list(meta)?), meta, key)?,
        "int_or_string" => set(&mut s.int_or_string, span, meta, key)?,
        "preserve_unknown_fields" => set(&mut s.preserve_unknown_fields, span, meta, key)?,
        "embedded_resource" => set(&mut s.embedded_resource, span, meta, key)?,
        "nullable" => {
            let value = if meta.input.peek(Token![=]) {
                bool_value(meta, key)?
            } else {
                LitBool::new(true, span)
            };
            set(&mut s.nullable, value, meta, key)?
        }
        "enum_values" => {
            let content;
            syn::parenthesized!(content in meta.input);
            let values: Vec<syn::Expr> = content
                .parse_terminated(syn::Expr::parse, Token![,])?
                .into_iter()
                .collect();
            if values.is_empty() {
                return Err(meta.error(
                    "`enum_values` needs at least one value, e.g. `enum_values(301, 302)`",
                ));
            }
            set(&mut s.enum_values, values, meta, key)?
        }
        "format" => set(&mut s.format, lit_str(meta)?, meta, key)?,
        "default" => set(&mut s.default, json_tokens(meta)?, meta, key)?,
        _ => unreachable!("keys are filtered against the allowed lists first"),
    }
    Ok(())
}

fn one_of(meta: &ParseNestedMeta, values: &[&str]) -> syn::Result<LitStr> {
    let lit = lit_str(meta)?;
    if values.contains(&lit.value().as_str()) {
        Ok(lit)
    } else {
        Err(syn::Error::new(
            lit.span(),
            format!("expected one of {values:?}"),
        ))
    }
}

/// `default = <JSON>`: the tokens up to the next top-level comma, handed to `json!`
/// (so `default = 3`, `default = "a"`, `default = {"k": [1, 2]}` all work).
fn json_tokens(meta: &ParseNestedMeta) -> syn::Result<TokenStream> {
    let input = meta.value()?;
    let mut out = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        out.extend([input.parse::<TokenTree>()?]);
    }
    if out.is_empty() {
        return Err(meta
            .error("`default` needs a JSON value, e.g. `default = 3` or `default = {\"a\": 1}`"));
    }
    Ok(out)
}

fn parse_rule(meta: &ParseNestedMeta) -> syn::Result<Rule> {
    let (mut rule, mut message, mut expr, mut reason, mut path, mut old) =
        (None, None, None, None, None, None);
    meta.parse_nested_meta(|m| match m.path.get_ident().map(ToString::to_string).as_deref() {
        Some("rule") => set(&mut rule, lit_str(&m)?, &m, "rule"),
        Some("message") => set(&mut message, lit_str(&m)?, &m, "message"),
        Some("message_expression") => set(&mut expr, lit_str(&m)?, &m, "message_expression"),
        Some("reason") => {
            let r = one_of(&m, &["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"])?;
            set(&mut reason, r, &m, "reason")
        }
        Some("field_path") => set(&mut path, lit_str(&m)?, &m, "field_path"),
        Some("optional_old_self") => set(&mut old, bool_value(&m, "optional_old_self")?, &m, "optional_old_self"),
        _ => Err(m.error(
            "`validation` takes rule, message, message_expression, reason, field_path, optional_old_self",
        )),
    })?;
    let rule =
        rule.ok_or_else(|| meta.error("`validation` needs `rule = \"<CEL expression>\"`"))?;
    Ok(Rule {
        rule,
        message,
        message_expression: expr,
        reason,
        field_path: path,
        optional_old_self: old,
    })
}

impl SchemaAttrs {
    /// Cross-key rules within one attribute set.
    fn check(&self) -> syn::Result<()> {
        if let Some((span, _)) = &self.list_map_keys
            && self.list_type.as_ref().map(LitStr::value).as_deref() != Some("map")
        {
            return Err(syn::Error::new(
                *span,
                "`list_map_keys` needs `list_type = \"map\"` on the same field",
            ));
        }
        if let Some(lt) = &self.list_type
            && lt.value() == "map"
            && self.list_map_keys.is_none()
        {
            return Err(syn::Error::new(
                lt.span(),
                "`list_type = \"map\"` needs `list_map_keys(\"<key>\", ...)`",
            ));
        }
        Ok(())
    }
}
