//! One secondary index of a store, and the built-in index functions.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use kube::{Resource, ResourceExt};

use crate::ObjectKey;

/// The built-in index of objects by namespace (cluster-scoped objects are not in it).
pub const NAMESPACE_INDEX: &str = "namespace";
/// The built-in index of objects by the UID of their controller owner reference.
pub const CONTROLLER_UID_INDEX: &str = "controller-uid";

/// An index function: the values under which an object is found.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// Values to keys, kept exact on every insert and remove: the old object's values are
/// recomputed to remove it, so no per-object reverse map is stored.
pub(super) struct Index<K> {
    func: IndexFn<K>,
    entries: HashMap<String, HashSet<ObjectKey>>,
}

impl<K> Index<K> {
    pub(super) fn new(func: IndexFn<K>) -> Self {
        Self {
            func,
            entries: HashMap::new(),
        }
    }

    pub(super) fn insert(&mut self, key: &ObjectKey, object: &K) {
        for value in (self.func)(object) {
            self.entries.entry(value).or_default().insert(key.clone());
        }
    }

    pub(super) fn remove(&mut self, key: &ObjectKey, object: &K) {
        for value in (self.func)(object) {
            if let Some(keys) = self.entries.get_mut(&value) {
                keys.remove(key);
                if keys.is_empty() {
                    self.entries.remove(&value);
                }
            }
        }
    }

    pub(super) fn keys<'a>(&'a self, value: &str) -> impl Iterator<Item = &'a ObjectKey> + 'a {
        self.entries.get(value).into_iter().flatten()
    }
}

pub(super) fn namespace_of<K: Resource>() -> IndexFn<K> {
    Arc::new(|object: &K| object.namespace().into_iter().collect())
}

pub(super) fn controller_uid<K: Resource>() -> IndexFn<K> {
    Arc::new(|object: &K| {
        crate::ownership::controller_of(object)
            .map(|owner| owner.uid.clone())
            .into_iter()
            .collect()
    })
}
