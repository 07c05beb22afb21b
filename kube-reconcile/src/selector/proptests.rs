//! Property tests against a direct reading of Kubernetes' label selector semantics
//! (`LabelSelectorAsSelector` and the `labels` string syntax).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::ConfigMap,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
};
use proptest::prelude::*;

use super::*;

// Small pools so that selectors and label sets share keys and values often. Keys and
// values are valid label syntax: the module does not validate them (Kubernetes would),
// and only valid ones have an unambiguous query-string form.
const KEYS: &[&str] = &["app", "tier", "env", "example.com/team", "a-b_c.d"];
const VALUES: &[&str] = &["", "web", "db", "prod", "v1.2", "x_y-z"];
const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];

fn key() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(KEYS).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(VALUES).prop_map(String::from)
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key(), value(), 0..=KEYS.len())
}

fn requirement(
    operator: impl Strategy<Value = String>,
    key: impl Strategy<Value = String>,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = LabelSelectorRequirement> {
    let values = prop::option::of(prop::collection::vec(value, 0..4));
    (key, operator, values).prop_map(|(key, operator, values)| LabelSelectorRequirement {
        key,
        operator,
        values,
    })
}

fn selector(
    operator: impl Strategy<Value = String>,
    key: impl Strategy<Value = String> + Clone,
    value: impl Strategy<Value = String> + Clone,
) -> impl Strategy<Value = LabelSelector> {
    (
        prop::option::of(prop::collection::btree_map(
            key.clone(),
            value.clone(),
            0..3,
        )),
        prop::option::of(prop::collection::vec(
            requirement(operator, key, value),
            0..4,
        )),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

/// Mostly the four operators, sometimes a wrong one (case matters in Kubernetes).
fn any_operator() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(OPERATORS).prop_map(String::from),
        1 => prop::sample::select(&["in", "Equals", "", "exists", "NotExists"][..])
            .prop_map(String::from),
    ]
}

/// Only selectors Kubernetes accepts: In/NotIn with values, Exists/DoesNotExist without.
fn valid_selector() -> impl Strategy<Value = LabelSelector> {
    selector(any_operator(), key(), value()).prop_map(|mut selector| {
        for requirement in selector.match_expressions.iter_mut().flatten() {
            match requirement.operator.as_str() {
                "In" | "NotIn" => {
                    let values = requirement.values.get_or_insert_with(Vec::new);
                    if values.is_empty() {
                        values.push("web".into());
                    }
                }
                operator => {
                    if operator != "DoesNotExist" {
                        requirement.operator = "Exists".into();
                    }
                    requirement.values = None;
                }
            }
        }
        selector
    })
}

/// The reference: what makes a requirement invalid, straight from the API docs.
fn model_problem(requirement: &LabelSelectorRequirement) -> Option<&'static str> {
    let has_values = requirement.values.as_ref().is_some_and(|v| !v.is_empty());
    match requirement.operator.as_str() {
        "In" | "NotIn" if !has_values => Some("needs values"),
        "Exists" | "DoesNotExist" if has_values => Some("takes no values"),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
        _ => Some("unknown operator"),
    }
}

/// The reference: whether `labels` satisfy `selector`, evaluated from the API object.
fn model_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let equal = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|r| {
        let in_values = |v: &String| r.values.iter().flatten().any(|x| x == v);
        match r.operator.as_str() {
            "In" => labels.get(&r.key).is_some_and(in_values),
            // NotIn holds for objects without the key.
            "NotIn" => !labels.get(&r.key).is_some_and(in_values),
            "Exists" => labels.contains_key(&r.key),
            "DoesNotExist" => !labels.contains_key(&r.key),
            other => unreachable!("model asked to match an invalid operator {other}"),
        }
    });
    equal && expressions
}

/// A small parser of the `labelSelector=` syntax (only the forms `Display` writes:
/// `k=v`, `k in (..)`, `k notin (..)`, `k`, `!k`), so printing can be checked by
/// reading back.
fn parse(query: &str) -> Result<Vec<Requirement>, String> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    // Split on commas outside parentheses.
    let (mut parts, mut depth, mut start) = (Vec::new(), 0_i32, 0);
    for (i, c) in query.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&query[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&query[start..]);
    parts
        .into_iter()
        .map(|part| {
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("no value list in {part:?}"))?;
                // Kubernetes reads `()` and empty list items as the empty value.
                Ok(inner.split(',').map(String::from).collect())
            };
            if let Some((k, rest)) = part.split_once(" notin ") {
                Ok(Requirement::NotIn(k.into(), set(rest)?))
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Ok(Requirement::In(k.into(), set(rest)?))
            } else if let Some((k, v)) = part.split_once('=') {
                Ok(Requirement::Equals(k.into(), v.into()))
            } else if let Some(k) = part.strip_prefix('!') {
                Ok(Requirement::DoesNotExist(k.into()))
            } else if !part.is_empty() && !part.contains([' ', '(', ')']) {
                Ok(Requirement::Exists(part.into()))
            } else {
                Err(format!("unreadable requirement {part:?}"))
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Compiles exactly the selectors Kubernetes accepts (failing on the first bad
    /// requirement), and matches exactly the label sets the reference matches.
    #[test]
    fn agrees_with_the_reference(
        selector in selector(any_operator(), key(), value()),
        label_sets in prop::collection::vec(labels(), 1..8),
    ) {
        let compiled = Selector::from_label_selector(Some(&selector));
        let first_problem = selector
            .match_expressions
            .iter()
            .flatten()
            .find_map(|r| model_problem(r).map(|p| (r, p)));
        match (compiled, first_problem) {
            (Ok(compiled), None) => {
                prop_assert!(!compiled.is_nothing());
                let no_requirements = selector.match_labels.iter().flatten().next().is_none()
                    && selector.match_expressions.iter().flatten().next().is_none();
                prop_assert_eq!(compiled.is_everything(), no_requirements);
                for labels in &label_sets {
                    prop_assert_eq!(
                        compiled.matches(labels),
                        model_matches(&selector, labels),
                        "selector {} on {:?}", compiled, labels
                    );
                }
            }
            (Err(SelectorError::UnknownOperator { key, operator }), Some((r, "unknown operator"))) => {
                prop_assert_eq!(&key, &r.key);
                prop_assert_eq!(&operator, &r.operator);
            }
            (Err(SelectorError::BadValues { key, operator, problem }), Some((r, expected))) => {
                prop_assert_eq!(&key, &r.key);
                prop_assert_eq!(operator, r.operator.as_str());
                prop_assert_eq!(problem, expected);
            }
            (got, expected) => prop_assert!(false, "got {:?}, reference says {:?}", got, expected),
        }
    }

    /// A missing selector matches nothing and an empty one everything, whatever the labels.
    #[test]
    fn missing_and_empty_selectors(labels in labels(), empty_lists in any::<bool>()) {
        let empty = LabelSelector {
            match_labels: empty_lists.then(BTreeMap::new),
            match_expressions: empty_lists.then(Vec::new),
        };
        let everything = Selector::from_label_selector(Some(&empty)).unwrap();
        prop_assert!(everything.matches(&labels) && everything.is_everything());
        prop_assert!(Selector::everything().matches(&labels));
        let nothing = Selector::from_label_selector(None).unwrap();
        prop_assert!(!nothing.matches(&labels) && nothing.is_nothing());
        prop_assert!(!Selector::nothing().matches(&labels));
    }

    /// The query-string form reads back as the same requirements, in order.
    #[test]
    fn printing_round_trips(selector in valid_selector()) {
        let compiled = Selector::from_label_selector(Some(&selector)).unwrap();
        let printed = compiled.to_string();
        let read = parse(&printed).map_err(TestCaseError::fail)?;
        prop_assert_eq!(Some(read), compiled.requirements.clone(), "printed {:?}", printed);
    }

    /// An object's labels are matched as a map; an object without labels as an empty one.
    #[test]
    fn objects_match_by_their_labels(
        selector in valid_selector(),
        labels in prop::option::of(labels()),
    ) {
        let compiled = Selector::from_label_selector(Some(&selector)).unwrap();
        let object = ConfigMap {
            metadata: ObjectMeta { labels: labels.clone(), ..Default::default() },
            ..Default::default()
        };
        prop_assert_eq!(
            compiled.matches_object(&object),
            model_matches(&selector, &labels.unwrap_or_default())
        );
    }

    /// Arbitrary strings anywhere (there is no string parser; the API object is the
    /// input): never a panic, and accepted exactly when the reference accepts.
    #[test]
    fn arbitrary_strings_never_panic(
        selector in selector(
            prop_oneof![any_operator(), any::<String>()],
            any::<String>(),
            any::<String>(),
        ),
        labels in prop::collection::btree_map(any::<String>(), any::<String>(), 0..4),
    ) {
        let compiled = Selector::from_label_selector(Some(&selector));
        let valid = selector.match_expressions.iter().flatten().all(|r| model_problem(r).is_none());
        prop_assert_eq!(compiled.is_ok(), valid);
        if let Ok(compiled) = compiled {
            prop_assert_eq!(compiled.matches(&labels), model_matches(&selector, &labels));
            let _ = compiled.to_string();
        }
    }
}
