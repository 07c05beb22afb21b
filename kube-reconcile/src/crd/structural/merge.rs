//! Collapsing `oneOf`/`anyOf` of typed branches (how schemars spells Rust enums) into one
//! typed node whose junctor branches only say which properties are `required`.

use serde_json::{Map, Value, json};

use super::union;

/// Applies the first rule that fits; leaves the junctor untouched when none does, so
/// `check_structural` reports it instead of a wrong schema being produced.
pub(super) fn collapse_junctors(obj: &mut Map<String, Value>) {
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return;
    }
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(branches)) = obj.get(key) else {
            continue;
        };
        if branches
            .iter()
            .all(|b| b.get("properties").is_none() && b.get("type").is_none())
        {
            continue; // already structural: constraint-only branches
        }
        let branches = branches.clone();
        if let Some(merged) = unit_enum(&branches) {
            obj.remove(key);
            for (k, v) in merged {
                obj.entry(k).or_insert(v);
            }
        } else if let Some((merged, required)) = object_union(&branches) {
            obj.remove(key);
            match union::discriminator(&branches) {
                Some(union) => union::apply(obj, merged, &union),
                None => apply_object_union(obj, merged, required),
            }
        }
    }
}

/// Branches that are all `{type: T, enum: [...]}` (unit variants, possibly with docs)
/// become one `enum`.
fn unit_enum(branches: &[Value]) -> Option<Map<String, Value>> {
    let ty = branches.first()?.get("type")?.clone();
    let mut values = Vec::new();
    for b in branches {
        if b.get("type") != Some(&ty) || b.get("properties").is_some() {
            return None;
        }
        values.extend(b.get("enum")?.as_array()?.iter().cloned());
    }
    let mut out = Map::new();
    out.insert("type".into(), ty);
    out.insert("enum".into(), values.into());
    Some(out)
}

/// Branches that are all objects: union of their properties, plus each branch's
/// `required` list (the only thing a structural junctor may carry).
fn object_union(branches: &[Value]) -> Option<(Map<String, Value>, Vec<Value>)> {
    let mut props = Map::new();
    let mut required = Vec::new();
    for b in branches {
        let b = b.as_object()?;
        if b.get("type") != Some(&json!("object")) {
            return None;
        }
        let empty = Map::new();
        let branch_props = b
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for (name, schema) in branch_props {
            let mut schema = schema.clone();
            // A variant's doc comment has no place in a junctor: keep it on its key.
            if let (Some(desc), Some(s)) = (b.get("description"), schema.as_object_mut())
                && branch_props.len() == 1
            {
                s.entry("description").or_insert(desc.clone());
            }
            let merged = match props.remove(name) {
                None => schema,
                Some(existing) => merge_schemas(existing, schema)?,
            };
            props.insert(name.clone(), merged);
        }
        required.push(b.get("required").cloned().unwrap_or_else(|| json!([])));
    }
    Some((props, required))
}

/// Writes the union onto the node: `oneOf` when each branch requires a distinct single
/// key (external tagging: exactly one must be present), `anyOf` otherwise, nothing
/// when the branches do not constrain anything.
pub(super) fn apply_object_union(
    obj: &mut Map<String, Value>,
    props: Map<String, Value>,
    required: Vec<Value>,
) {
    obj.insert("type".into(), "object".into());
    let own = obj.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(own) = own {
        for (k, v) in props {
            own.entry(k).or_insert(v);
        }
    }
    let all_same = required.windows(2).all(|w| w[0] == w[1]);
    let any_empty = required
        .iter()
        .any(|r| r.as_array().is_some_and(Vec::is_empty));
    if all_same {
        if let Some(Value::Array(req)) = required.into_iter().next()
            && !req.is_empty()
        {
            obj.insert("required".into(), req.into());
        }
        return;
    }
    if any_empty {
        return;
    }
    let singles: Vec<&Value> = required
        .iter()
        .filter_map(|r| r.as_array().filter(|a| a.len() == 1).map(|a| &a[0]))
        .collect();
    let distinct = singles.len() == required.len()
        && singles
            .iter()
            .enumerate()
            .all(|(i, s)| !singles[..i].contains(s));
    if !distinct {
        // anyOf is satisfied whenever its smallest branch is: when that branch's keys
        // are required by every branch, it is simply the node's `required`.
        let sets: Vec<Vec<Value>> = required
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect();
        let common: Vec<Value> = sets[0]
            .iter()
            .filter(|k| sets.iter().all(|s| s.contains(k)))
            .cloned()
            .collect();
        if sets.iter().any(|s| s.len() == common.len()) {
            obj.insert("required".into(), common.into());
            return;
        }
    }
    let junctor = if distinct { "oneOf" } else { "anyOf" };
    let branches: Vec<Value> = required
        .into_iter()
        .map(|r| json!({ "required": r }))
        .collect();
    obj.insert(junctor.into(), branches.into());
}

/// Merges two schemas given to the same property by different variants, or `None`
/// when they conflict (different types).
pub(super) fn merge_schemas(a: Value, b: Value) -> Option<Value> {
    if a == b {
        return Some(a);
    }
    let (Value::Object(mut a), Value::Object(b)) = (a, b) else {
        return None;
    };
    if a.get("type") != b.get("type") {
        return None;
    }
    // Internally/adjacently tagged: the tag is `enum: ["A"]` in one, `["B"]` in the other.
    if let (Some(Value::Array(ea)), Some(Value::Array(eb))) =
        (a.get("enum").cloned(), b.get("enum"))
    {
        let mut union = ea;
        union.extend(
            eb.iter()
                .filter(|v| !union_contains(&union, v))
                .cloned()
                .collect::<Vec<_>>(),
        );
        a.insert("enum".into(), union.into());
    }
    if let (Some(Value::Object(pa)), Some(Value::Object(pb))) =
        (a.get("properties").cloned(), b.get("properties"))
    {
        let mut props = pa;
        for (k, v) in pb {
            let merged = match props.remove(k) {
                None => v.clone(),
                Some(existing) => merge_schemas(existing, v.clone())?,
            };
            props.insert(k.clone(), merged);
        }
        a.insert("properties".into(), props.into());
    }
    {
        // A property is only required if every variant requires it.
        let rb = b.get("required").cloned().unwrap_or_else(|| json!([]));
        let req: Vec<Value> = a
            .get("required")
            .and_then(Value::as_array)
            .map(|ra| {
                ra.iter()
                    .filter(|r| union_contains(rb.as_array().unwrap_or(&vec![]), r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if req.is_empty() {
            a.remove("required");
        } else {
            a.insert("required".into(), req.into());
        }
    }
    let merged_keys = ["properties", "required", "enum"];
    for (k, v) in b {
        if !merged_keys.contains(&k.as_str()) {
            a.entry(k).or_insert(v);
        }
    }
    Some(Value::Object(a))
}

fn union_contains(list: &[Value], v: &Value) -> bool {
    list.contains(v)
}
