//! garde rules → CRD schema: for each rule kind, the schema carries the constraint (as
//! JSON Schema or CEL), and values that fail `validate()` also fail the constraint as
//! the server evaluates it (evaluated here for the JSON Schema keywords; CEL rules are
//! checked by text, and against a real kube-apiserver in the root integration tests).

mod common;

use garde::Validate as _;
use kube_reconcile::crd::{Crd, CustomResourceExt as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Crd, Clone, Debug, Serialize, Deserialize, garde::Validate)]
#[crd(group = "garde.example.com", version = "v1", kind = "Rules")]
pub struct RulesSpec {
    #[garde(length(min = 2, max = 5))]
    pub bytes: String,
    #[garde(length(chars, min = 2, max = 5))]
    pub chars: String,
    #[garde(length(min = 1, max = 3))]
    pub items: Vec<i32>,
    #[garde(range(min = -5, max = 5))]
    pub int: i64,
    #[garde(range(min = 0.5, max = 1.5))]
    pub float: f64,
    #[garde(pattern(r"^[a-z]+$"))]
    pub pattern: String,
    #[garde(email)]
    pub email: String,
    #[garde(url)]
    pub url: String,
    #[garde(ip)]
    pub ip: String,
    #[garde(ipv4)]
    pub ipv4: String,
    #[garde(ipv6)]
    pub ipv6: String,
    #[garde(contains("needle"))]
    pub contains: String,
    #[garde(required)]
    pub required: Option<String>,
    #[garde(inner(range(min = 1, max = 9)))]
    pub inner: Vec<i32>,
    #[garde(inner(inner(length(chars, min = 1, max = 5), pattern("^[a-z]+$"))))]
    pub optional_items: Option<Vec<String>>,
    #[garde(prefix("pre-"))]
    pub prefix: String,
    #[garde(suffix("-suf"))]
    pub suffix: String,
    #[garde(ascii)]
    pub ascii: String,
    #[garde(length(bytes, min = 1, max = 4))]
    pub byte_length: String,
    #[garde(alphanumeric)]
    pub alphanumeric: String,
}

fn valid() -> RulesSpec {
    RulesSpec {
        bytes: "abc".into(),
        chars: "abc".into(),
        items: vec![1],
        int: 0,
        float: 1.0,
        pattern: "abc".into(),
        email: "a@b.example".into(),
        url: "https://example.com/x".into(),
        ip: "10.0.0.1".into(),
        ipv4: "10.0.0.1".into(),
        ipv6: "::1".into(),
        contains: "a needle here".into(),
        required: Some("x".into()),
        inner: vec![1, 9],
        optional_items: Some(vec!["ok".into()]),
        prefix: "pre-x".into(),
        suffix: "x-suf".into(),
        ascii: "plain".into(),
        byte_length: "abcd".into(),
        alphanumeric: "abc1".into(),
    }
}

fn spec_schema() -> Value {
    common::checked_schema(&Rules::crd())["properties"]["spec"].clone()
}

fn prop(name: &str) -> Value {
    spec_schema()["properties"][name].clone()
}

fn rules(name: &str) -> Vec<String> {
    let p = prop(name);
    p["x-kubernetes-validations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["rule"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Applies `edit` to a valid spec and asserts garde rejects it.
fn invalid(edit: impl FnOnce(&mut RulesSpec)) -> RulesSpec {
    let mut s = valid();
    edit(&mut s);
    assert!(s.validate().is_err(), "garde accepted {s:?}");
    s
}

/// The JSON Schema keywords the server checks, evaluated on one value.
fn schema_rejects(schema: &Value, v: &Value) -> bool {
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    let chars = v.as_str().map(|s| s.chars().count() as f64);
    let items = v.as_array().map(|a| a.len() as f64);
    num("minimum").is_some_and(|m| v.as_f64().is_some_and(|x| x < m))
        || num("maximum").is_some_and(|m| v.as_f64().is_some_and(|x| x > m))
        || num("minLength").is_some_and(|m| chars.is_some_and(|c| c < m))
        || num("maxLength").is_some_and(|m| chars.is_some_and(|c| c > m))
        || num("minItems").is_some_and(|m| items.is_some_and(|c| c < m))
        || num("maxItems").is_some_and(|m| items.is_some_and(|c| c > m))
        || schema.get("items").is_some_and(|i| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|x| schema_rejects(i, x)))
        })
}

fn field(s: &RulesSpec, name: &str) -> Value {
    serde_json::to_value(s).unwrap()[name].clone()
}

#[test]
fn the_valid_spec_is_valid() {
    valid().validate().unwrap();
}

#[test]
fn length_on_strings_counts_bytes_like_garde() {
    let p = prop("bytes");
    assert_eq!(p["maxLength"], 5);
    assert!(
        p.get("minLength").is_none(),
        "a char-counting minLength would reject what garde accepts"
    );
    assert_eq!(
        rules("bytes"),
        ["size(bytes(self)) >= 2", "size(bytes(self)) <= 5"]
    );
    invalid(|s| s.bytes = "a".into());
    invalid(|s| s.bytes = "abcdef".into());
    // "éé" is 2 characters but 4 bytes: garde accepts it, and so does the server.
    let mut ok = valid();
    ok.bytes = "éé".into();
    ok.validate().unwrap();
    assert!(!schema_rejects(&p, &field(&ok, "bytes")));
}

#[test]
fn length_chars_maps_to_min_max_length() {
    let p = prop("chars");
    assert_eq!(
        (p["minLength"].clone(), p["maxLength"].clone()),
        (json!(2), json!(5))
    );
    assert!(rules("chars").is_empty());
    for bad in [
        invalid(|s| s.chars = "a".into()),
        invalid(|s| s.chars = "abcdef".into()),
    ] {
        assert!(schema_rejects(&p, &field(&bad, "chars")));
    }
}

#[test]
fn length_on_lists_maps_to_items() {
    let p = prop("items");
    for bad in [
        invalid(|s| s.items = vec![]),
        invalid(|s| s.items = vec![1, 2, 3, 4]),
    ] {
        assert!(schema_rejects(&p, &field(&bad, "items")));
    }
}

#[test]
fn range_maps_to_minimum_maximum() {
    for (name, bad) in [
        ("int", invalid(|s| s.int = -6)),
        ("int", invalid(|s| s.int = 6)),
        ("float", invalid(|s| s.float = 0.4)),
        ("float", invalid(|s| s.float = 1.6)),
    ] {
        assert!(schema_rejects(&prop(name), &field(&bad, name)), "{name}");
    }
}

#[test]
fn pattern_and_contains_map_to_pattern() {
    assert_eq!(prop("pattern")["pattern"], "^[a-z]+$");
    invalid(|s| s.pattern = "ABC".into());
    assert_eq!(prop("contains")["pattern"], "needle");
    invalid(|s| s.contains = "haystack".into());
}

#[test]
fn email_ipv4_ipv6_map_to_formats_the_server_checks() {
    assert_eq!(prop("email")["format"], "email");
    assert_eq!(prop("ipv4")["format"], "ipv4");
    assert_eq!(prop("ipv6")["format"], "ipv6");
    invalid(|s| s.email = "not-an-email".into());
    invalid(|s| s.ipv4 = "::1".into());
    invalid(|s| s.ipv6 = "10.0.0.1".into());
}

#[test]
fn ip_becomes_cel_because_the_server_has_no_ip_format() {
    assert!(prop("ip").get("format").is_none());
    assert_eq!(rules("ip"), ["isIP(self)"]);
    invalid(|s| s.ip = "10.0.0".into());
}

#[test]
fn url_gets_format_uri_and_a_scheme_rule() {
    assert_eq!(prop("url")["format"], "uri");
    assert_eq!(rules("url"), ["self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*:')"]);
    invalid(|s| s.url = "/just/a/path".into());
}

#[test]
fn required_makes_an_option_required() {
    let required = spec_schema()["required"].clone();
    assert!(
        required.as_array().unwrap().contains(&json!("required")),
        "{required}"
    );
    invalid(|s| s.required = None);
}

#[test]
fn inner_applies_to_items() {
    let p = prop("inner");
    assert_eq!(
        (p["items"]["minimum"].clone(), p["items"]["maximum"].clone()),
        (json!(1.0), json!(9.0))
    );
    let bad = invalid(|s| s.inner = vec![0]);
    assert!(schema_rejects(&p, &field(&bad, "inner")));
}

#[test]
fn inner_inner_on_an_optional_list_reaches_its_items() {
    let items = &prop("optional_items")["items"];
    assert_eq!(items["pattern"], "^[a-z]+$", "{items:#}");
    assert_eq!(
        (items["minLength"].clone(), items["maxLength"].clone()),
        (json!(1), json!(5))
    );
    let bad = invalid(|s| s.optional_items = Some(vec!["UPPER".into()]));
    let bad = field(&bad, "optional_items");
    assert!(bad[0].as_str().is_some_and(|v| !regex_lite_matches(v)));
    let too_long = invalid(|s| s.optional_items = Some(vec!["abcdefg".into()]));
    assert!(schema_rejects(
        &prop("optional_items"),
        &field(&too_long, "optional_items")
    ));
}

/// `^[a-z]+$`, the pattern above, by hand (the schema checker here reads no patterns).
fn regex_lite_matches(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_lowercase())
}

#[test]
fn prefix_suffix_ascii_length_bytes_become_cel() {
    assert_eq!(rules("prefix"), ["self.startsWith('pre-')"]);
    assert_eq!(rules("suffix"), ["self.endsWith('-suf')"]);
    assert_eq!(rules("ascii"), [r"self.matches('^[\\x00-\\x7F]*$')"]);
    // min 1 byte is min 1 character: minLength says it without CEL.
    assert_eq!(rules("byte_length"), ["size(bytes(self)) <= 4"]);
    assert_eq!(
        (
            prop("byte_length")["minLength"].clone(),
            prop("byte_length")["maxLength"].clone()
        ),
        (json!(1), json!(4))
    );
    invalid(|s| s.prefix = "x".into());
    invalid(|s| s.suffix = "x".into());
    invalid(|s| s.ascii = "é".into());
    invalid(|s| s.byte_length = "éé!".into());
}

#[test]
fn client_side_only_rules_leave_no_trace() {
    let p = prop("alphanumeric");
    assert_eq!(p, json!({"type": "string"}));
    invalid(|s| s.alphanumeric = "a-b".into());
}
