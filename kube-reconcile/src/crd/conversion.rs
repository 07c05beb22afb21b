//! Converting objects between versions of one resource through Rust `From` impls: the
//! pure core of a conversion webhook.

use std::collections::{HashMap, VecDeque};

use kube::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::CrdError;

type Convert = fn(Value) -> Result<Value, CrdError>;

/// Which versions convert into which, each edge a Rust `From` impl.
///
/// Conversions chain: with `v1 ⇄ v2` and `v2 ⇄ v3` registered, `v1 → v3` goes through
/// `v2` (the shortest chain is used). The object's `metadata` is carried over exactly as
/// received, including fields the Rust types do not model.
///
/// ```
/// use kube_reconcile::crd::{Conversion, Crd};
/// use serde_json::json;
/// mod v1 {
///     #[derive(kube_reconcile::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
///     #[crd(group = "example.com", version = "v1", kind = "Widget")]
///     pub struct WidgetSpec { pub size: i32 }
/// }
/// mod v2 {
///     #[derive(kube_reconcile::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
///     #[crd(group = "example.com", version = "v2", kind = "Widget")]
///     pub struct WidgetSpec { pub size: i64 }
/// }
/// impl From<v1::Widget> for v2::Widget {
///     fn from(o: v1::Widget) -> Self {
///         v2::Widget { metadata: o.metadata, spec: v2::WidgetSpec { size: o.spec.size.into() } }
///     }
/// }
/// impl From<v2::Widget> for v1::Widget {
///     fn from(o: v2::Widget) -> Self {
///         let size = o.spec.size.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
///         v1::Widget { metadata: o.metadata, spec: v1::WidgetSpec { size } }
///     }
/// }
/// let conversion = Conversion::new().between::<v1::Widget, v2::Widget>();
/// let old = json!({"apiVersion": "example.com/v1", "kind": "Widget",
///                  "metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"size": 3}});
/// let new = conversion.convert(&old, "example.com/v2").unwrap();
/// assert_eq!(new["apiVersion"], "example.com/v2");
/// assert_eq!(new["metadata"], old["metadata"]);
/// ```
#[derive(Default, Clone)]
pub struct Conversion {
    edges: HashMap<String, Vec<(String, Convert)>>,
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let edges: Vec<_> = self
            .edges
            .iter()
            .flat_map(|(a, bs)| bs.iter().map(move |(b, _)| (a, b)))
            .collect();
        f.debug_struct("Conversion").field("edges", &edges).finish()
    }
}

impl Conversion {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers conversions both ways between `A` and `B`.
    pub fn between<A, B>(mut self) -> Self
    where
        A: Resource<DynamicType = ()> + Serialize + DeserializeOwned + From<B>,
        B: Resource<DynamicType = ()> + Serialize + DeserializeOwned + From<A>,
    {
        self.add(
            A::api_version(&()).into_owned(),
            B::api_version(&()).into_owned(),
            convert_one::<A, B>,
        );
        self.add(
            B::api_version(&()).into_owned(),
            A::api_version(&()).into_owned(),
            convert_one::<B, A>,
        );
        self
    }

    fn add(&mut self, from: String, to: String, f: Convert) {
        let out = self.edges.entry(from).or_default();
        out.retain(|(t, _)| *t != to);
        out.push((to, f));
    }

    /// Converts `object` (a full object with `apiVersion`) to `desired_api_version`,
    /// keeping its `metadata` unchanged. Returns the object unchanged when it already
    /// has that version.
    pub fn convert(&self, object: &Value, desired_api_version: &str) -> Result<Value, CrdError> {
        let from = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or(CrdError::MissingApiVersion)?;
        if from == desired_api_version {
            return Ok(object.clone());
        }
        let path = self
            .path(from, desired_api_version)
            .ok_or_else(|| CrdError::NoConversion {
                from: from.to_owned(),
                to: desired_api_version.to_owned(),
            })?;
        let mut current = object.clone();
        for step in path {
            current = step(current)?;
        }
        if let (Some(meta), Value::Object(out)) = (object.get("metadata"), &mut current) {
            out.insert("metadata".into(), meta.clone());
        }
        Ok(current)
    }

    /// The shortest chain of conversions, by breadth-first search.
    fn path(&self, from: &str, to: &str) -> Option<Vec<Convert>> {
        let mut previous: HashMap<&str, (&str, Convert)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            if at == to {
                let mut steps = Vec::new();
                let mut cur = to;
                while cur != from {
                    let (prev, f) = previous[cur];
                    steps.push(f);
                    cur = prev;
                }
                steps.reverse();
                return Some(steps);
            }
            for (next, f) in self.edges.get(at).into_iter().flatten() {
                if next != from && !previous.contains_key(next.as_str()) {
                    previous.insert(next, (at, *f));
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

fn convert_one<A, B>(object: Value) -> Result<Value, CrdError>
where
    A: Resource<DynamicType = ()> + DeserializeOwned,
    B: Resource<DynamicType = ()> + Serialize + From<A>,
{
    let serde = |api_version: String| {
        move |source| CrdError::Serde {
            api_version,
            source,
        }
    };
    let a: A = serde_json::from_value(object).map_err(serde(A::api_version(&()).into_owned()))?;
    serde_json::to_value(B::from(a)).map_err(serde(B::api_version(&()).into_owned()))
}
