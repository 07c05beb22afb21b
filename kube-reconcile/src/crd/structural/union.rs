//! Discriminated unions: the branches of an internally or adjacently tagged enum, told
//! apart by their tag, as one object with the tag required and CEL rules tying each
//! member to the tag values that allow or require it.

use serde_json::{Map, Value, json};

/// A union whose branches are told apart by one tag property (`#[serde(tag = "...")]`).
pub(super) struct Discriminated {
    tag: String,
    variants: Vec<Variant>,
}

/// One branch of a discriminated union: its tag value and its members.
struct Variant {
    value: String,
    declared: Vec<String>,
    required: Vec<String>,
}

/// Whether a member is merely allowed by a variant or required by it.
#[derive(Clone, Copy)]
enum Membership {
    Declared,
    Required,
}

impl Variant {
    fn has(&self, member: &str, how: Membership) -> bool {
        let members = match how {
            Membership::Declared => &self.declared,
            Membership::Required => &self.required,
        };
        members.iter().any(|m| m == member)
    }
}

impl Discriminated {
    fn in_all(&self, member: &str, how: Membership) -> bool {
        self.variants.iter().all(|v| v.has(member, how))
    }

    fn tags_with(&self, member: &str, how: Membership) -> Vec<&str> {
        self.variants
            .iter()
            .filter(|v| v.has(member, how))
            .map(|v| v.value.as_str())
            .collect()
    }
}

/// The tag of an internally or adjacently tagged enum: a string property every branch
/// requires, with one distinct `enum` value per branch.
pub(super) fn discriminator(branches: &[Value]) -> Option<Discriminated> {
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = branches.first()?;
    let tag = names(first.get("required")).into_iter().find(|candidate| {
        branches.iter().all(|b| {
            let single = b["properties"][candidate.as_str()]["enum"]
                .as_array()
                .is_some_and(|e| e.len() == 1 && e[0].is_string());
            single && names(b.get("required")).contains(candidate)
        })
    })?;
    let mut variants: Vec<Variant> = Vec::new();
    for b in branches {
        let value = b["properties"][tag.as_str()]["enum"][0]
            .as_str()?
            .to_owned();
        if variants.iter().any(|v| v.value == value) {
            return None;
        }
        let declared = b["properties"]
            .as_object()
            .map(|p| p.keys().filter(|k| **k != tag).cloned().collect())
            .unwrap_or_default();
        let required = names(b.get("required"))
            .into_iter()
            .filter(|k| *k != tag)
            .collect();
        variants.push(Variant {
            value,
            declared,
            required,
        });
    }
    Some(Discriminated { tag, variants })
}

/// The shape controller-gen users write for a discriminated union: the tag is required,
/// every member property is optional in the schema, and CEL rules tie each member to
/// the tag values that allow (or require) it. A property every variant requires is
/// simply `required`.
pub(super) fn apply(
    obj: &mut Map<String, Value>,
    props: Map<String, Value>,
    union: &Discriminated,
) {
    let members: Vec<String> = props.keys().filter(|k| **k != union.tag).cloned().collect();
    super::merge::apply_object_union(obj, props, vec![]);
    let tag = union.tag.as_str();
    let mut required = vec![json!(tag)];
    let mut rules = Vec::new();
    for member in &members {
        if union.in_all(member, Membership::Required) {
            required.push(json!(member));
            continue;
        }
        if !is_cel_identifier(member) {
            continue; // not addressable as `self.<member>`: left to serde, as documented
        }
        if !union.in_all(member, Membership::Declared) {
            let allowed = union.tags_with(member, Membership::Declared);
            rules.push(json!({
                "rule": format!("!has(self.{member}) || {}", tag_is(tag, &allowed)),
                "message": format!("{member} may only be set when {tag} is {}", one_of(&allowed)),
            }));
        }
        let needed = union.tags_with(member, Membership::Required);
        if !needed.is_empty() {
            rules.push(json!({
                "rule": format!("!({}) || has(self.{member})", tag_is(tag, &needed)),
                "message": format!("{member} is required when {tag} is {}", one_of(&needed)),
            }));
        }
    }
    obj.insert("required".into(), required.into());
    if !rules.is_empty() {
        let existing = obj
            .entry("x-kubernetes-validations")
            .or_insert_with(|| json!([]));
        if let Value::Array(existing) = existing {
            existing.extend(rules);
        }
    }
}

/// `self.<tag> == 'A'` or `self.<tag> in ['A', 'B']`.
fn tag_is(tag: &str, values: &[&str]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    match quoted.as_slice() {
        [one] => format!("self.{tag} == {one}"),
        _ => format!("self.{tag} in [{}]", quoted.join(", ")),
    }
}

fn one_of(values: &[&str]) -> String {
    match values {
        [one] => (*one).to_owned(),
        _ => format!("one of {}", values.join(", ")),
    }
}

/// A property name CEL can read as `self.<name>` without escaping.
fn is_cel_identifier(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}
