//! The structural-schema rules kube-apiserver enforces on `openAPIV3Schema`, as a check.

use serde_json::{Value, json};

use super::StructuralViolation;

const TYPES: &[&str] = &["string", "integer", "number", "boolean", "array", "object"];
/// Keys a junctor branch may not carry (the server derives them from outside the junctor).
const NOT_IN_JUNCTOR: &[&str] = &[
    "type",
    "default",
    "description",
    "nullable",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
];

fn flag(v: &Value, key: &str) -> bool {
    v.get(key) == Some(&Value::Bool(true))
}

fn push(out: &mut Vec<StructuralViolation>, path: &str, message: impl Into<String>) {
    out.push(StructuralViolation {
        path: path.to_owned(),
        message: message.into(),
    });
}

pub(super) fn check_node(
    node: &Value,
    path: &str,
    in_junctor: bool,
    out: &mut Vec<StructuralViolation>,
) {
    let Some(obj) = node.as_object() else {
        push(
            out,
            path,
            "a boolean schema is not allowed; use a typed schema or x-kubernetes-preserve-unknown-fields",
        );
        return;
    };
    for key in ["$ref", "$defs", "definitions", "prefixItems"] {
        if obj.contains_key(key) {
            push(
                out,
                path,
                format!(
                    "`{key}` is not allowed (recursive or tuple types cannot be expressed in a CRD)"
                ),
            );
        }
    }
    if in_junctor {
        for key in NOT_IN_JUNCTOR {
            if obj.contains_key(*key) {
                push(
                    out,
                    path,
                    format!("`{key}` is not allowed inside anyOf/oneOf/allOf/not"),
                );
            }
        }
    } else {
        check_type(node, path, out);
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        push(
            out,
            path,
            "`properties` and `additionalProperties` are mutually exclusive",
        );
    }
    if let Some(Value::Bool(_)) = obj.get("additionalProperties") {
        push(out, path, "boolean `additionalProperties` is not allowed");
    }
    if matches!(obj.get("items"), Some(Value::Array(_))) {
        push(out, path, "positional `items` (tuples) are not allowed");
    }
    check_list_map(node, path, out);
    check_children(node, path, in_junctor, out);
}

fn check_type(node: &Value, path: &str, out: &mut Vec<StructuralViolation>) {
    match node.get("type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {
            if t == "array" && node.get("items").is_none() {
                push(out, path, "an array needs `items`");
            }
        }
        Some(other) => push(
            out,
            path,
            format!("`type` must be one of {TYPES:?}, not {other}"),
        ),
        None if flag(node, "x-kubernetes-int-or-string") => {
            let canonical = json!([{ "type": "integer" }, { "type": "string" }]);
            if node.get("anyOf").is_some_and(|a| *a != canonical) {
                push(
                    out,
                    path,
                    "an int-or-string node may only have anyOf [integer, string]",
                );
            }
        }
        None if flag(node, "x-kubernetes-preserve-unknown-fields") => {}
        None => push(
            out,
            path,
            "missing `type` (add a type, or mark the field preserve_unknown_fields)",
        ),
    }
}

fn check_children(node: &Value, path: &str, in_junctor: bool, out: &mut Vec<StructuralViolation>) {
    if let Some(Value::Object(props)) = node.get("properties") {
        for (name, child) in props {
            check_node(child, &format!("{path}.properties.{name}"), in_junctor, out);
        }
    }
    for key in ["additionalProperties", "items"] {
        if let Some(child @ Value::Object(_)) = node.get(key) {
            check_node(child, &format!("{path}.{key}"), in_junctor, out);
        }
    }
    let int_or_string = flag(node, "x-kubernetes-int-or-string");
    for key in ["anyOf", "oneOf", "allOf"] {
        if int_or_string && key == "anyOf" {
            continue; // the canonical [integer, string] pair is the one allowed exception
        }
        if let Some(Value::Array(branches)) = node.get(key) {
            for (i, b) in branches.iter().enumerate() {
                check_node(b, &format!("{path}.{key}[{i}]"), true, out);
            }
        }
    }
    if let Some(not) = node.get("not") {
        check_node(not, &format!("{path}.not"), true, out);
    }
}

/// `x-kubernetes-list-type: map` needs keys that exist on object items and are always
/// present (required or defaulted); keys only make sense on map lists.
fn check_list_map(node: &Value, path: &str, out: &mut Vec<StructuralViolation>) {
    let keys = node
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array);
    let is_map = node.get("x-kubernetes-list-type") == Some(&json!("map"));
    match (is_map, keys) {
        (false, Some(_)) => push(
            out,
            path,
            "x-kubernetes-list-map-keys needs x-kubernetes-list-type: map",
        ),
        (true, None) => push(
            out,
            path,
            "x-kubernetes-list-type: map needs x-kubernetes-list-map-keys",
        ),
        (true, Some(keys)) => {
            let items = node.get("items").cloned().unwrap_or_default();
            let required = items
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for key in keys {
                let Some(prop) = key.as_str().and_then(|k| items.get("properties")?.get(k)) else {
                    push(
                        out,
                        path,
                        format!("list map key {key} is not a property of the items"),
                    );
                    continue;
                };
                if !required.contains(key) && prop.get("default").is_none() {
                    push(
                        out,
                        path,
                        format!("list map key {key} must be required or have a default"),
                    );
                }
            }
        }
        (false, None) => {}
    }
}

/// At the root, `metadata` may only restrict `name` and `generateName`.
pub(super) fn check_root_metadata(schema: &Value, out: &mut Vec<StructuralViolation>) {
    let Some(meta) = schema.get("properties").and_then(|p| p.get("metadata")) else {
        return;
    };
    let Some(obj) = meta.as_object() else { return };
    for key in obj.keys() {
        if !["type", "properties"].contains(&key.as_str()) {
            push(
                out,
                ".properties.metadata",
                format!("`{key}` is not allowed on the root metadata"),
            );
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for name in props.keys() {
            if name != "name" && name != "generateName" {
                push(
                    out,
                    ".properties.metadata",
                    format!("only name and generateName may be restricted, not {name}"),
                );
            }
        }
    }
}
