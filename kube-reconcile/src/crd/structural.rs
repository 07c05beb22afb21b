//! Turning schemars' JSON Schema into a Kubernetes *structural* schema, and checking it.
//!
//! schemars speaks JSON Schema 2020-12; kube-apiserver accepts a restricted OpenAPI v3
//! dialect where every node has one `type`, nullability is a flag, and junctors
//! (`anyOf`/`oneOf`/`allOf`/`not`) may only add constraints, never types. [`make_structural`]
//! rewrites the first into the second; [`check_structural`] verifies the result so a
//! schema the server would reject fails in tests rather than at `kubectl apply`.
//!
//! The rewrites, applied bottom-up:
//! - `type: [T, "null"]`, and `anyOf`/`oneOf` of a schema and `{type: null}` (an
//!   `Option`) → `type: T`, and `null` leaves an `enum`: as with controller-gen, an
//!   `Option` means "may be absent", not "may be null". kube-apiserver then prunes an
//!   explicit `null` (and applies the field's default), so the `null` serde writes for
//!   `None` is accepted. Only `nullable: true` set explicitly (`#[crd(nullable)]`)
//!   makes `null` a stored value;
//! - `const: v` → `enum: [v]`; `default: null`, `title`, `examples`, `$schema`,
//!   `readOnly`, `writeOnly`, `deprecated` and unknown keys are dropped;
//!   `additionalProperties: false` is dropped, `additionalProperties: true` (a map of
//!   `serde_json::Value`) becomes `x-kubernetes-preserve-unknown-fields: true`;
//! - branches that are all string enums (unit variants with doc comments) → one `enum`;
//! - branches that are all objects (tagged and untagged enums with data) → one object
//!   whose `properties` are the union (same-named properties merged, tag enums joined,
//!   a nested property required only when every variant requires it). When one string
//!   property tells the branches apart (internal or adjacent tagging), the node is a
//!   discriminated union: the tag is `required`, and CEL rules tie each other member to
//!   the tag values that allow or require it. Otherwise `oneOf` branches of `required`
//!   when each branch requires one distinct key (external tagging), `anyOf` otherwise,
//!   or just `required` when that is all they say. Variants whose properties conflict in
//!   type are left alone, for [`check_structural`] to report;
//! - `x-kubernetes-int-or-string` (also `IntOrString`, `Quantity`) → no `type`, `anyOf:
//!   [{type: integer}, {type: string}]` (a `pattern` stays, checked on strings); `x-kubernetes-embedded-resource` → `type:
//!   object` + preserve-unknown-fields; preserve-unknown-fields beside `properties` drops
//!   `additionalProperties` (a flattened map);
//! - numeric `exclusiveMinimum`/`exclusiveMaximum` → `minimum`/`maximum` + `true`;
//!   `uint32`/`uint64` become `int32`/`int64` (as controller-gen writes them for Go's
//!   unsigned types), other integer formats the server does not know (`uint8`, ...)
//!   are dropped; `format: ip`
//!   → CEL `isIP(self)`; `format: uri` gains a CEL rule requiring a scheme.
//!
//! Limits: an adjacently tagged enum's content is one merged object whose members the
//! rules do not tie to the tag (serde still refuses a mismatch when deserializing).
//! Recursive types keep a `$ref` and fail the check.

use serde_json::{Map, Value, json};

mod merge;
mod union;

/// Keys `JSONSchemaProps` knows; anything else (e.g. `title`, `examples`, `$schema`,
/// `readOnly`) is dropped because the server would reject or silently ignore it.
const KNOWN_KEYS: &[&str] = &[
    "type",
    "format",
    "description",
    "default",
    "enum",
    "nullable",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    // Kept so `check_structural` can report them instead of losing them silently.
    "$ref",
    "$defs",
    "definitions",
    "prefixItems",
];

/// Integer formats schemars emits that kube-apiserver does not know; they carry no
/// validation there (the bounds schemars adds alongside them do), so they are removed.
const UNKNOWN_INT_FORMATS: &[&str] = &[
    "uint", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int", "uint128", "int128",
];

/// Rewrites a schemars schema into a structural one (see the module docs for the rules).
///
/// ```
/// use serde_json::json;
/// let s = kube_reconcile::crd::structural::make_structural(json!({
///     "type": ["string", "null"], "title": "x", "const": "a"
/// }));
/// assert_eq!(s, json!({"type": "string", "enum": ["a"]}));
/// ```
pub fn make_structural(mut schema: Value) -> Value {
    normalize(&mut schema);
    schema
}

fn normalize(node: &mut Value) {
    if let Value::Bool(true) = node {
        // `true` accepts anything: the structural spelling is "keep unknown fields".
        *node = json!({ "x-kubernetes-preserve-unknown-fields": true });
        return;
    }
    let Value::Object(obj) = node else { return };
    pre_children(obj);
    for key in ["properties"] {
        if let Some(Value::Object(props)) = obj.get_mut(key) {
            props.values_mut().for_each(normalize);
        }
    }
    for key in ["additionalProperties", "items", "not"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            normalize(child);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = obj.get_mut(key) {
            branches.iter_mut().for_each(normalize);
        }
    }
    post_children(obj);
}

/// Rewrites that must see schemars' raw spelling, before children are normalized.
fn pre_children(obj: &mut Map<String, Value>) {
    for key in [
        "$schema",
        "title",
        "examples",
        "$id",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
    ] {
        obj.remove(key);
    }
    if obj
        .get("$defs")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        obj.remove("$defs");
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(false)) => {
            obj.remove("additionalProperties");
        }
        // A map of untyped values: keep whatever is sent.
        Some(Value::Bool(true)) => {
            obj.remove("additionalProperties");
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        _ => {}
    }
    if let Some(value) = obj.remove("const") {
        obj.entry("enum").or_insert_with(|| json!([value]));
    }
    if obj.get("default") == Some(&Value::Null) {
        obj.remove("default");
    }
    optional_type_array(obj);
    null_out_of_enum(obj);
    exclusive_bounds(obj);
}

/// `type: [T, "null"]` (an `Option`) → `type: T`: optional, not nullable.
fn optional_type_array(obj: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = obj.get("type") else {
        return;
    };
    let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
    if non_null.len() == 1 {
        obj.insert("type".into(), non_null[0].clone());
    }
}

/// An `Option` of an enum lists `null` among the values; unless the field is nullable
/// on purpose, `null` is pruned by the server instead, and must not be a value.
fn null_out_of_enum(obj: &mut Map<String, Value>) {
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// JSON Schema 2020-12 spells exclusive bounds as numbers; OpenAPI v3.0 as booleans.
fn exclusive_bounds(obj: &mut Map<String, Value>) {
    for (exclusive, inclusive) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(bound @ Value::Number(_)) = obj.get(exclusive).cloned() {
            obj.insert(inclusive.into(), bound);
            obj.insert(exclusive.into(), true.into());
        }
    }
}

/// Rewrites over a node whose children are already structural.
fn post_children(obj: &mut Map<String, Value>) {
    single_all_of(obj);
    optional_junctor(obj);
    null_out_of_enum(obj);
    merge::collapse_junctors(obj);
    formats(obj);
    markers(obj);
    if !obj.contains_key("type") && obj.contains_key("properties") {
        obj.insert("type".into(), "object".into());
    }
    obj.retain(|k, _| k.starts_with("x-kubernetes-") || KNOWN_KEYS.contains(&k.as_str()));
}

/// `allOf: [X]` (schemars' way to attach a description to a reused schema) → X merged in.
fn single_all_of(obj: &mut Map<String, Value>) {
    let Some(Value::Array(all)) = obj.get("allOf") else {
        return;
    };
    if all.len() != 1 {
        return;
    }
    let Some(Value::Array(mut all)) = obj.remove("allOf") else {
        return;
    };
    if let Value::Object(inner) = all.remove(0) {
        for (k, v) in inner {
            obj.entry(k).or_insert(v);
        }
    }
}

/// `anyOf`/`oneOf` `[X, {type: null}]` (an `Option` of an inlined struct) → X:
/// optional, not nullable.
fn optional_junctor(obj: &mut Map<String, Value>) {
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = obj.get(key) else {
            continue;
        };
        let is_null = |b: &Value| b.get("type") == Some(&json!("null"));
        if branches.len() != 2 || !branches.iter().any(is_null) {
            continue;
        }
        let Some(Value::Array(branches)) = obj.remove(key) else {
            continue;
        };
        for branch in branches.into_iter().filter(|b| !is_null(b)) {
            if let Value::Object(inner) = branch {
                for (k, v) in inner {
                    obj.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// The format controller-gen writes for Go's unsigned 32- and 64-bit integers, so
/// `u32`/`u64` fields read as theirs do (the bounds schemars adds stay beside them).
fn controller_gen_int_format(format: &str) -> Option<&'static str> {
    match format {
        "uint32" => Some("int32"),
        "uint64" => Some("int64"),
        _ => None,
    }
}

/// Formats kube-apiserver ignores are either dropped or turned into CEL it enforces.
fn formats(obj: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    if let Some(signed) = controller_gen_int_format(&format) {
        obj.insert("format".into(), signed.into());
    } else if UNKNOWN_INT_FORMATS.contains(&format.as_str()) {
        obj.remove("format");
    } else if format == "ip" {
        // `ip` is not a CRD format; CEL's isIP accepts IPv4 and IPv6 like garde's `ip`.
        obj.remove("format");
        add_rule(obj, "isIP(self)", "must be a valid IP address");
    } else if format == "uri" {
        // The server's `uri` is Go's ParseRequestURI, which also accepts "/a/path";
        // garde's `url` demands a scheme, so the server is told to demand one too.
        add_rule(
            obj,
            "self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*:')",
            "must be an absolute URL",
        );
    }
}

fn add_rule(obj: &mut Map<String, Value>, rule: &str, message: &str) {
    let rules = obj
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Value::Array(rules) = rules
        && !rules.iter().any(|r| r.get("rule") == Some(&json!(rule)))
    {
        rules.push(json!({ "rule": rule, "message": message }));
    }
}

/// The `x-kubernetes-*` markers imply a shape: apply it.
fn markers(obj: &mut Map<String, Value>) {
    let flag = |obj: &Map<String, Value>, k: &str| obj.get(k) == Some(&Value::Bool(true));
    if flag(obj, "x-kubernetes-int-or-string") {
        // A `pattern` stays: the server checks it against string values only, which is
        // how controller-gen's Quantity and percentage fields use it.
        for key in ["type", "format", "oneOf", "anyOf"] {
            obj.remove(key);
        }
        obj.insert(
            "anyOf".into(),
            json!([{ "type": "integer" }, { "type": "string" }]),
        );
    }
    if flag(obj, "x-kubernetes-embedded-resource") {
        obj.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        obj.insert("type".into(), "object".into());
    }
    if flag(obj, "x-kubernetes-preserve-unknown-fields") && obj.contains_key("properties") {
        // A flattened map next to named fields: the named fields stay typed, the rest
        // is kept as-is; `additionalProperties` may not sit beside `properties`.
        obj.remove("additionalProperties");
    }
}

/// One rule a schema breaks, with the JSON path of the offending node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuralViolation {
    /// Where, e.g. `.properties.spec.properties.ports.items`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for StructuralViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            if self.path.is_empty() {
                "."
            } else {
                &self.path
            },
            self.message
        )
    }
}

/// Checks the rules kube-apiserver applies to `openAPIV3Schema` (structural schema,
/// list-map keys, root metadata), returning every violation found.
///
/// Accepts a schema as JSON, or a `JSONSchemaProps` through [`serde_json::to_value`].
pub fn check_structural(schema: &Value) -> Result<(), Vec<StructuralViolation>> {
    let mut out = Vec::new();
    check_node(schema, "", false, &mut out);
    check_root_metadata(schema, &mut out);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

mod check;
use check::{check_node, check_root_metadata};

#[cfg(test)]
mod tests;
