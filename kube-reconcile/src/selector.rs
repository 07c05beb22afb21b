//! Label selectors compiled once and matched without allocating.
//!
//! Semantics are Kubernetes' `LabelSelectorAsSelector`: a missing selector matches
//! nothing, an empty one matches everything, and every `matchLabels` entry and
//! `matchExpressions` requirement must hold.
//!
//! ```
//! use std::collections::BTreeMap;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
//! use kube_reconcile::selector::Selector;
//!
//! let selector: LabelSelector = serde_json::from_value(serde_json::json!({
//!     "matchLabels": {"app": "web"},
//!     "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cache"]}],
//! })).unwrap();
//! let selector = Selector::from_label_selector(Some(&selector)).unwrap();
//! let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
//!     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
//! };
//! assert!(selector.matches(&labels(&[("app", "web")])));
//! assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "cache")])));
//! assert_eq!(selector.to_string(), "app=web,tier notin (cache)");
//! ```

use std::{collections::BTreeMap, fmt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;

/// A selector that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// The operator is not In, NotIn, Exists or DoesNotExist.
    #[error("unknown label selector operator {operator:?} for key {key:?}")]
    UnknownOperator {
        /// The requirement's key.
        key: String,
        /// The operator given.
        operator: String,
    },
    /// In/NotIn need values; Exists/DoesNotExist must have none.
    #[error("operator {operator} for key {key:?} {problem}")]
    BadValues {
        /// The requirement's key.
        key: String,
        /// The operator given.
        operator: &'static str,
        /// What is wrong with the values.
        problem: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(key, value) => labels.get(key) == Some(value),
            Self::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Self::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Self::Exists(key) => labels.contains_key(key),
            Self::DoesNotExist(key) => !labels.contains_key(key),
        }
    }
}

/// A compiled label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// `None` matches nothing.
    requirements: Option<Vec<Requirement>>,
}

impl Selector {
    /// Matches every object.
    pub fn everything() -> Self {
        Self {
            requirements: Some(Vec::new()),
        }
    }

    /// Matches no object.
    pub fn nothing() -> Self {
        Self { requirements: None }
    }

    /// Compiles a `LabelSelector`; `None` gives [`Selector::nothing`].
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        let Some(selector) = selector else {
            return Ok(Self::nothing());
        };
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::Equals(key.clone(), value.clone()));
        }
        for expression in selector.match_expressions.iter().flatten() {
            let key = expression.key.clone();
            let values = expression.values.clone().unwrap_or_default();
            let bad = |operator, problem| SelectorError::BadValues {
                key: expression.key.clone(),
                operator,
                problem,
            };
            requirements.push(match expression.operator.as_str() {
                "In" if values.is_empty() => return Err(bad("In", "needs values")),
                "NotIn" if values.is_empty() => return Err(bad("NotIn", "needs values")),
                "Exists" if !values.is_empty() => return Err(bad("Exists", "takes no values")),
                "DoesNotExist" if !values.is_empty() => {
                    return Err(bad("DoesNotExist", "takes no values"));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(SelectorError::UnknownOperator {
                        key,
                        operator: other.to_string(),
                    });
                }
            });
        }
        Ok(Self {
            requirements: Some(requirements),
        })
    }

    /// Whether these labels satisfy every requirement. Allocates nothing.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .as_ref()
            .is_some_and(|reqs| reqs.iter().all(|r| r.matches(labels)))
    }

    /// Whether the object's labels match (missing labels count as empty).
    pub fn matches_object<K: Resource>(&self, object: &K) -> bool {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.matches(object.meta().labels.as_ref().unwrap_or(&EMPTY))
    }

    /// Whether this selector matches everything (no requirements).
    pub fn is_everything(&self) -> bool {
        self.requirements.as_ref().is_some_and(Vec::is_empty)
    }

    /// Whether this selector matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.requirements.is_none()
    }
}

/// The selector in the API's query syntax (for `labelSelector=`). A selector that
/// matches nothing has no query form; it renders as an empty string, which matches
/// everything server-side, so check [`Selector::is_nothing`] before querying.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for requirement in self.requirements.iter().flatten() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match requirement {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(","))?,
                Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(","))?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::DoesNotExist(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(value: serde_json::Value) -> Result<Selector, SelectorError> {
        let selector: LabelSelector = serde_json::from_value(value).unwrap();
        Selector::from_label_selector(Some(&selector))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_matches_nothing_and_empty_matches_everything() {
        let none = Selector::from_label_selector(None).unwrap();
        assert!(!none.matches(&labels(&[])) && none.is_nothing());
        let empty = compile(serde_json::json!({})).unwrap();
        assert!(empty.matches(&labels(&[("any", "thing")])) && empty.is_everything());
    }

    #[test]
    fn every_operator() {
        let selector = compile(serde_json::json!({"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "tier", "operator": "NotIn", "values": ["cache"]},
            {"key": "team", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]}))
        .unwrap();
        let base = [("env", "prod"), ("team", "a")];
        assert!(selector.matches(&labels(&base)));
        assert!(selector.matches(&labels(&[
            ("env", "staging"),
            ("team", "a"),
            ("tier", "web")
        ])));
        assert!(!selector.matches(&labels(&[("env", "dev"), ("team", "a")])));
        assert!(!selector.matches(&labels(&[
            ("env", "prod"),
            ("team", "a"),
            ("tier", "cache")
        ])));
        assert!(!selector.matches(&labels(&[("env", "prod")])));
        assert!(!selector.matches(&labels(&[("env", "prod"), ("team", "a"), ("legacy", "")])));
        assert_eq!(
            selector.to_string(),
            "env in (prod,staging),tier notin (cache),team,!legacy"
        );
    }

    #[test]
    fn match_labels_and_expressions_combine() {
        let selector = compile(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
        }))
        .unwrap();
        assert!(selector.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!selector.matches(&labels(&[("app", "web")])));
        assert!(!selector.matches(&labels(&[("app", "api"), ("env", "prod")])));
    }

    #[test]
    fn invalid_selectors_are_errors() {
        let unknown = compile(serde_json::json!({"matchExpressions": [
            {"key": "a", "operator": "Near", "values": ["x"]}]}));
        assert!(matches!(
            unknown,
            Err(SelectorError::UnknownOperator { .. })
        ));
        let empty_in = compile(serde_json::json!({"matchExpressions": [
            {"key": "a", "operator": "In", "values": []}]}));
        assert!(empty_in.unwrap_err().to_string().contains("needs values"));
        let exists_with_values = compile(serde_json::json!({"matchExpressions": [
            {"key": "a", "operator": "Exists", "values": ["x"]}]}));
        assert!(exists_with_values.is_err());
    }
}
