//! [`ObjectKey`]: the `namespace/name` of an object, as queues and stores key it.

use std::{fmt, sync::Arc};

use kube::Resource;

/// The `namespace/name` (or `name` for cluster-scoped objects) of an object.
///
/// One shared string, so clones are a reference-count bump; queues, stores and indexes
/// hold many of them. Kubernetes names never contain `/`, so the split is unambiguous.
///
/// ```
/// use kube_reconcile::ObjectKey;
/// let key = ObjectKey::new(Some("default"), "web");
/// assert_eq!((key.namespace(), key.name()), (Some("default"), "web"));
/// assert_eq!(key.to_string(), "default/web");
/// assert_eq!(ObjectKey::new(None, "node-1").namespace(), None);
/// ```
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct ObjectKey(Arc<str>);

/// Clones of one key (all of a queue's copies of it) compare equal without reading the
/// string; `Arc`'s own `PartialEq` skips that shortcut for unsized contents.
impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

/// The string's hash, consistent with the equality above.
impl std::hash::Hash for ObjectKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl ObjectKey {
    /// The key of `name` in `namespace` (`None` for cluster-scoped objects).
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        match namespace {
            Some(ns) if !ns.is_empty() => {
                let mut key = String::with_capacity(ns.len() + 1 + name.len());
                key.push_str(ns);
                key.push('/');
                key.push_str(name);
                Self(key.into())
            }
            _ => Self(name.into()),
        }
    }

    /// The key of an object, from its metadata: its name, or its `generateName` if it
    /// has no name yet (as kube's `name_any`).
    pub fn of<K: Resource>(object: &K) -> Self {
        let meta = object.meta();
        let name = meta.name.as_deref().or(meta.generate_name.as_deref());
        Self::new(meta.namespace.as_deref(), name.unwrap_or_default())
    }

    /// The namespace, if the object is namespaced.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once('/').map(|(ns, _)| ns)
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, name)| name)
    }

    /// The key as `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({})", self.0)
    }
}
