//! The cache an informer fills: each object held once, with named secondary indexes.
//!
//! - Objects are stored as `Arc<K>`: readers share them, nothing is copied on a read.
//! - An index is a named function `fn(&K) -> Vec<String>`; for each value it keeps the
//!   set of keys that produced it, so [`Store::by_index`] costs O(matches), never a
//!   scan. Two indexes are always there: [`NAMESPACE_INDEX`] and
//!   [`CONTROLLER_UID_INDEX`] (the UID of the object's controller owner).
//! - The store is written only by its informer, through a [`Writer`]; everyone else
//!   holds the read-only [`Store`] (as kube-runtime splits `Writer` and `Store`).
//!
//! ```
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_reconcile::store::{NAMESPACE_INDEX, Writer};
//!
//! let writer = Writer::<Pod>::new();
//! let store = writer.store();
//! store.add_index("node", |pod: &Pod| {
//!     pod.spec.as_ref().and_then(|s| s.node_name.clone()).into_iter().collect()
//! });
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("web-1".into());
//! pod.metadata.namespace = Some("default".into());
//! pod.spec = Some(Default::default());
//! pod.spec.as_mut().unwrap().node_name = Some("node-a".into());
//! writer.apply(Arc::new(pod));
//!
//! assert_eq!(store.by_index("node", "node-a").unwrap().len(), 1);
//! assert_eq!(store.by_index(NAMESPACE_INDEX, "default").unwrap().len(), 1);
//! assert!(store.by_index("node", "node-b").unwrap().is_empty());
//! ```

mod index;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use kube::Resource;
use tokio::sync::Notify;

pub use index::{CONTROLLER_UID_INDEX, IndexFn, NAMESPACE_INDEX};
use index::{Index, controller_uid, namespace_of};

use crate::ObjectKey;

/// Asking a store for an index it does not have.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the store has no index named {0:?}; add it with Store::add_index")]
pub struct UnknownIndex(pub String);

/// A read-only view of a cache of objects of one type, with indexes. Cloning gives
/// another handle to the same cache. Only its [`Writer`] (held by the informer) changes
/// what it holds; adding an index is allowed, since it changes no object.
pub struct Store<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    state: RwLock<State<K>>,
    /// The highest resourceVersion seen (see [`Store::resource_version`]).
    version: AtomicU64,
    synced: AtomicBool,
    synced_notify: Notify,
}

struct State<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    indexes: HashMap<String, Index<K>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("Store")
            .field("objects", &state.objects.len())
            .field("indexes", &state.indexes.keys().collect::<Vec<_>>())
            .field("synced", &self.has_synced())
            .finish()
    }
}

impl<K> Store<K> {
    fn read(&self) -> RwLockReadGuard<'_, State<K>> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<K>> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// The object `name` in `namespace` (`None` for cluster-scoped objects).
    pub fn get_named(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get(&ObjectKey::new(namespace, name))
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.read().objects.keys().cloned().collect()
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects whose index `index` produced `value`; costs O(matches).
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, UnknownIndex> {
        let state = self.read();
        let index = state
            .indexes
            .get(index)
            .ok_or_else(|| UnknownIndex(index.to_string()))?;
        Ok(index
            .keys(value)
            .filter_map(|key| state.objects.get(key).cloned())
            .collect())
    }

    /// The keys whose index `index` produced `value`; costs O(matches).
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<ObjectKey>, UnknownIndex> {
        let state = self.read();
        let index = state
            .indexes
            .get(index)
            .ok_or_else(|| UnknownIndex(index.to_string()))?;
        Ok(index.keys(value).cloned().collect())
    }

    /// The objects in `namespace`.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.by_index(NAMESPACE_INDEX, namespace)
            .expect("the namespace index is built in")
    }

    /// The objects whose controller owner has this UID.
    pub fn controlled_by(&self, owner_uid: &str) -> Vec<Arc<K>> {
        self.by_index(CONTROLLER_UID_INDEX, owner_uid)
            .expect("the controller-owner index is built in")
    }

    /// Whether the informer has delivered its first complete list.
    pub fn has_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// Waits until the informer has delivered its first complete list.
    pub async fn wait_for_sync(&self) {
        loop {
            let notified = self.shared.synced_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_synced() {
                return;
            }
            notified.await;
        }
    }

    /// The highest resourceVersion among the objects this store has applied and the
    /// deletions it has been told of, or `None` before the first. Like client-go's
    /// `LastStoreSyncResourceVersion`: once it reaches the version a write returned,
    /// the store reflects that write (see [`consistency`](crate::consistency)).
    ///
    /// Caveat: resourceVersions are opaque by contract; this parses them as etcd's
    /// integers and ignores any that are not.
    pub fn resource_version(&self) -> Option<u64> {
        match self.shared.version.load(Ordering::Acquire) {
            0 => None,
            version => Some(version),
        }
    }
}

impl<K: Resource + 'static> Store<K> {
    fn empty() -> Self {
        let mut indexes = HashMap::new();
        indexes.insert(NAMESPACE_INDEX.to_string(), Index::new(namespace_of::<K>()));
        indexes.insert(
            CONTROLLER_UID_INDEX.to_string(),
            Index::new(controller_uid::<K>()),
        );
        Self {
            shared: Arc::new(Shared {
                state: RwLock::new(State {
                    objects: HashMap::new(),
                    indexes,
                }),
                version: AtomicU64::new(0),
                synced: AtomicBool::new(false),
                synced_notify: Notify::new(),
            }),
        }
    }

    /// Adds a named index and builds it over the objects already stored. Adding a name
    /// that exists keeps the existing index (several consumers of a shared informer may
    /// each ask for the same one) and returns `false`.
    pub fn add_index(
        &self,
        name: impl Into<String>,
        func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> bool {
        let mut state = self.write();
        let State { objects, indexes } = &mut *state;
        let std::collections::hash_map::Entry::Vacant(slot) = indexes.entry(name.into()) else {
            return false;
        };
        let mut index = Index::new(Arc::new(func));
        for (key, object) in objects.iter() {
            index.insert(key, object);
        }
        slot.insert(index);
        true
    }
}

/// The one handle that changes a [`Store`]: held by its informer (or by a test or a
/// custom cache). Not `Clone`, so a store has one writer.
pub struct Writer<K> {
    store: Store<K>,
}

impl<K> fmt::Debug for Writer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Writer").field(&self.store).finish()
    }
}

impl<K: Resource + 'static> Default for Writer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource + 'static> Writer<K> {
    /// A writer of a new, empty, unsynced store with the built-in indexes.
    pub fn new() -> Self {
        Self {
            store: Store::empty(),
        }
    }
}

impl<K> Writer<K> {
    /// A read-only handle to the store this writer fills.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Raises the store's [`resource_version`](Store::resource_version) to `version`
    /// if higher (e.g. for a deletion, whose object is no longer stored).
    pub fn observe_version(&self, version: Option<&str>) {
        if let Some(version) = version.and_then(|v| v.parse::<u64>().ok()) {
            self.store
                .shared
                .version
                .fetch_max(version, Ordering::AcqRel);
        }
    }

    /// Marks the store synced (its first complete list is in) and wakes
    /// [`Store::wait_for_sync`].
    pub fn mark_synced(&self) {
        self.store.shared.synced.store(true, Ordering::Release);
        self.store.shared.synced_notify.notify_waiters();
    }

    /// Marks the store not synced, e.g. while its informer is stopped: readers that
    /// wait for a sync then wait for the next complete list.
    pub fn mark_unsynced(&self) {
        self.store.shared.synced.store(false, Ordering::Release);
    }
}

impl<K: Resource + 'static> Writer<K> {
    /// Inserts or replaces an object; returns the one it replaced.
    pub fn apply(&self, object: Arc<K>) -> Option<Arc<K>> {
        self.observe_version(object.meta().resource_version.as_deref());
        let key = ObjectKey::of(&*object);
        let mut state = self.store.write();
        let State { objects, indexes } = &mut *state;
        let old = objects.insert(key.clone(), object.clone());
        for index in indexes.values_mut() {
            if let Some(old) = &old {
                index.remove(&key, old);
            }
            index.insert(&key, &object);
        }
        old
    }

    /// Removes the object with this key; returns it.
    pub fn remove(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut state = self.store.write();
        let State { objects, indexes } = &mut *state;
        let old = objects.remove(key)?;
        for index in indexes.values_mut() {
            index.remove(key, &old);
        }
        Some(old)
    }
}

#[cfg(test)]
mod tests;
