use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{check_structural, make_structural};
use crate::crd::__private::schema_for;

/// Structural form of `T`'s schema, asserting it passes the check.
fn structural<T: JsonSchema>() -> Value {
    let s = make_structural(schema_for::<T>());
    if let Err(v) = check_structural(&s) {
        panic!("{v:?}\n{s:#}");
    }
    s
}

#[test]
fn an_option_is_optional_not_nullable() {
    assert_eq!(
        make_structural(json!({"type": ["integer", "null"], "format": "int32"})),
        json!({"type": "integer", "format": "int32"})
    );
    let s = make_structural(json!({
        "anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "null"}],
        "description": "d"
    }));
    assert_eq!(
        s,
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "description": "d"})
    );
    // An `Option` of a unit enum: `null` leaves the values too.
    assert_eq!(
        make_structural(json!({"type": ["string", "null"], "enum": ["Fast", "Slow", null]})),
        json!({"type": "string", "enum": ["Fast", "Slow"]})
    );
    // Nullable on purpose keeps `null`, as a flag and a value.
    assert_eq!(
        make_structural(
            json!({"type": ["string", "null"], "enum": ["Fast", null], "nullable": true})
        ),
        json!({"type": "string", "enum": ["Fast", null], "nullable": true})
    );
}

#[test]
fn a_pattern_on_an_int_or_string_is_kept() {
    let s = make_structural(json!({
        "x-kubernetes-int-or-string": true, "type": "string", "pattern": "^[0-9]+%?$"
    }));
    assert_eq!(
        s,
        json!({"x-kubernetes-int-or-string": true, "pattern": "^[0-9]+%?$",
               "anyOf": [{"type": "integer"}, {"type": "string"}]})
    );
    check_structural(&s).unwrap();
}

#[test]
fn removes_what_crds_do_not_have() {
    let s = make_structural(json!({
        "$schema": "x", "title": "T", "examples": [1], "type": "object",
        "additionalProperties": false,
        "properties": {"c": {"const": "x", "type": "string", "readOnly": true}, "d": {"type": "string", "default": null}}
    }));
    assert_eq!(
        s,
        json!({"type": "object", "properties": {"c": {"type": "string", "enum": ["x"]}, "d": {"type": "string"}}})
    );
}

#[test]
fn maps_and_unknown_fields() {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct M {
        typed: std::collections::HashMap<String, i64>,
        untyped: std::collections::BTreeMap<String, Value>,
    }
    let s = structural::<M>();
    assert_eq!(
        s["properties"]["typed"],
        json!({"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}})
    );
    assert_eq!(
        s["properties"]["untyped"],
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
    );
    // A flattened map beside named fields keeps the named fields typed.
    let s = make_structural(json!({
        "type": "object", "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}
    }));
    assert!(s.get("additionalProperties").is_none());
    check_structural(&s).unwrap();
}

#[test]
fn unit_enum_with_docs_becomes_string_enum() {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    enum E {
        /// first
        A,
        /// second
        B,
    }
    let s = structural::<E>();
    assert_eq!(s, json!({"type": "string", "enum": ["A", "B"]}));
}

#[test]
fn externally_tagged_enum_is_one_object_with_one_of_required() {
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    enum Source {
        /// From git.
        Git {
            url: String,
            rev: Option<String>,
        },
        Image(String),
    }
    let s = structural::<Source>();
    assert_eq!(s["type"], "object");
    assert_eq!(s["properties"]["git"]["description"], "From git.");
    assert_eq!(
        s["properties"]["git"]["properties"]["url"]["type"],
        "string"
    );
    assert_eq!(s["properties"]["image"]["type"], "string");
    assert_eq!(
        s["oneOf"],
        json!([{"required": ["git"]}, {"required": ["image"]}])
    );
}

#[test]
fn internally_and_adjacently_tagged_enums_merge_properties() {
    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(tag = "type")]
    #[allow(dead_code)]
    enum Internal {
        A { x: i32 },
        B { x: i32, y: String },
    }
    let s = structural::<Internal>();
    assert_eq!(
        s["properties"]["type"],
        json!({"type": "string", "enum": ["A", "B"]})
    );
    assert_eq!(s["properties"]["y"]["type"], "string");
    // A discriminated union: the tag and what every variant needs are required, and
    // CEL ties the other members to the tag values that declare them.
    assert_eq!(s["required"], json!(["type", "x"]));
    assert!(s.get("anyOf").is_none() && s.get("oneOf").is_none());
    assert_eq!(
        s["x-kubernetes-validations"],
        json!([
            {"rule": "!has(self.y) || self.type == 'B'", "message": "y may only be set when type is B"},
            {"rule": "!(self.type == 'B') || has(self.y)", "message": "y is required when type is B"},
        ])
    );
    check_structural(&s).unwrap();

    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    #[allow(dead_code)]
    enum Shared {
        A { port: Option<i32> },
        B { port: Option<i32>, host: String },
        C { host: String },
        D,
    }
    let s = structural::<Shared>();
    assert_eq!(s["required"], json!(["kind"]));
    assert_eq!(s["properties"]["kind"]["enum"], json!(["A", "B", "C", "D"]));
    assert_eq!(
        s["x-kubernetes-validations"],
        json!([
            {"rule": "!has(self.host) || self.kind in ['B', 'C']", "message": "host may only be set when kind is one of B, C"},
            {"rule": "!(self.kind in ['B', 'C']) || has(self.host)", "message": "host is required when kind is one of B, C"},
            {"rule": "!has(self.port) || self.kind in ['A', 'B']", "message": "port may only be set when kind is one of A, B"},
        ])
    );
    let s = make_structural(json!({"oneOf": [
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]},
        {"type": "object", "properties": {"a": {"type": "string"}, "c": {"type": "string"}}, "required": ["c"]}
    ]}));
    assert_eq!(
        s["oneOf"],
        json!([{"required": ["a"]}, {"required": ["c"]}])
    );
    let s = make_structural(json!({"anyOf": [
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a", "b"]},
        {"type": "object", "properties": {"a": {"type": "string"}, "c": {"type": "string"}}, "required": ["a", "c"]}
    ]}));
    assert_eq!(
        s["anyOf"],
        json!([{"required": ["a", "b"]}, {"required": ["a", "c"]}])
    );
    check_structural(&s).unwrap();

    #[derive(JsonSchema, Serialize, Deserialize)]
    #[serde(tag = "kind", content = "spec")]
    #[allow(dead_code)]
    enum Adjacent {
        A { x: i32 },
        B { y: String },
    }
    let s = structural::<Adjacent>();
    assert_eq!(s["properties"]["kind"]["enum"], json!(["A", "B"]));
    let spec = &s["properties"]["spec"];
    assert_eq!(spec["type"], "object");
    assert_eq!(spec["properties"]["x"]["type"], "integer");
    assert_eq!(spec["properties"]["y"]["type"], "string");
    assert!(
        spec.get("required").is_none(),
        "neither field is required in every variant: {spec}"
    );
    assert_eq!(s["required"], json!(["kind", "spec"]));
}

#[test]
fn conflicting_variants_stay_visible_to_the_check() {
    let s = make_structural(json!({"oneOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "integer"}}}
    ]}));
    assert!(check_structural(&s).is_err());
}

#[test]
fn int_or_string_quantity_time_embedded() {
    use k8s_openapi::apimachinery::pkg::{
        api::resource::Quantity, apis::meta::v1::Time, util::intstr::IntOrString,
    };
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct K {
        port: IntOrString,
        memory: Option<Quantity>,
        at: Time,
    }
    let s = structural::<K>();
    let ios = json!([{"type": "integer"}, {"type": "string"}]);
    assert_eq!(s["properties"]["port"]["anyOf"], ios);
    assert_eq!(s["properties"]["port"]["x-kubernetes-int-or-string"], true);
    assert_eq!(s["properties"]["memory"]["anyOf"], ios);
    assert_eq!(s["properties"]["at"]["type"], "string");
    assert_eq!(s["properties"]["at"]["format"], "date-time");
    let e = make_structural(json!({"x-kubernetes-embedded-resource": true}));
    assert_eq!(
        e,
        json!({"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true})
    );
    let u = make_structural(
        json!({"anyOf": [{"type": "string"}, {"type": "integer", "format": "int64"}], "x-kubernetes-int-or-string": true}),
    );
    assert_eq!(u, json!({"anyOf": ios, "x-kubernetes-int-or-string": true}));
}

#[test]
fn formats_the_server_ignores_become_cel_or_go() {
    let ip = make_structural(json!({"type": "string", "format": "ip"}));
    assert_eq!(
        ip,
        json!({"type": "string", "x-kubernetes-validations": [{"rule": "isIP(self)", "message": "must be a valid IP address"}]})
    );
    let uri = make_structural(json!({"type": "string", "format": "uri"}));
    assert_eq!(uri["format"], "uri");
    assert_eq!(
        uri["x-kubernetes-validations"][0]["message"],
        "must be an absolute URL"
    );
    let u = make_structural(json!({"type": "integer", "format": "uint32", "minimum": 0}));
    assert_eq!(
        u,
        json!({"type": "integer", "format": "int32", "minimum": 0})
    );
    let u = make_structural(json!({"type": "integer", "format": "uint64", "minimum": 0}));
    assert_eq!(
        u,
        json!({"type": "integer", "format": "int64", "minimum": 0})
    );
    let u = make_structural(json!({"type": "integer", "format": "uint16", "minimum": 0}));
    assert_eq!(u, json!({"type": "integer", "minimum": 0}));
    let x = make_structural(json!({"type": "number", "exclusiveMinimum": 0}));
    assert_eq!(
        x,
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": true})
    );
}

#[test]
fn check_reports_each_rule() {
    let bad = json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            "untyped": {"description": "no type"},
            "both": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "junctor": {"type": "string", "anyOf": [{"type": "string"}, {"description": "x"}]},
            "recursive": {"$ref": "#/$defs/X"},
            "tuple": {"type": "array", "items": [{"type": "string"}]},
            "keys": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}},
                     "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["n", "m"]},
            "lonekeys": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-map-keys": ["n"]}
        }
    });
    let v = check_structural(&bad).unwrap_err();
    let has = |path: &str, text: &str| v.iter().any(|x| x.path == path && x.message.contains(text));
    assert!(has(".properties.untyped", "missing `type`"), "{v:#?}");
    assert!(has(".properties.both", "mutually exclusive"));
    assert!(has(".properties.junctor.anyOf[0]", "`type` is not allowed"));
    assert!(has(
        ".properties.junctor.anyOf[1]",
        "`description` is not allowed"
    ));
    assert!(has(".properties.recursive", "`$ref`"));
    assert!(has(".properties.tuple", "positional"));
    assert!(has(".properties.keys", "\"n\" must be required"));
    assert!(has(".properties.keys", "\"m\" is not a property"));
    assert!(has(".properties.lonekeys", "needs x-kubernetes-list-type"));
    assert!(has(".properties.metadata", "labels"));
}
