//! Read your own writes before acting again.
//!
//! A controller writes (creates a pod, patches a status) and its informers see the
//! result a moment later. A sync that runs in between reads a cache without its own
//! last write: it may write the same status again or, worse, act twice. Expectations
//! cover creations and deletions; [`ReadYourWrites`] covers every write, as
//! kube-controller-manager's consistency store does since v1.36: remember the
//! resourceVersion each write returned, per owner, and refuse to sync that owner until
//! the stores involved have reached those versions.
//!
//! ```
//! use kube_reconcile::{ObjectKey, consistency::ReadYourWrites, store::Writer};
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! let writer = Writer::<ConfigMap>::new(); // the informer's side of the cache
//! let cache = writer.store();
//! let writes = ReadYourWrites::new();
//! let owner = ObjectKey::new(Some("default"), "web");
//!
//! writes.wrote(&owner, "uid-1", &cache, "42"); // the write returned resourceVersion 42
//! assert!(writes.ensure_ready(&owner).is_err()); // the cache is behind: retry later
//!
//! writer.observe_version(Some("42")); // the informer saw it
//! assert!(writes.ensure_ready(&owner).is_ok());
//! ```

use std::{
    any::TypeId,
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use crate::{ObjectKey, store::Store};

/// Write versions per owner, checked against the stores' progress.
#[derive(Default)]
pub struct ReadYourWrites {
    owners: Mutex<HashMap<ObjectKey, Owner>>,
    /// Owners waiting for their writes to show, to hand back once they do.
    parked: Mutex<HashSet<ObjectKey>>,
}

impl std::fmt::Debug for ReadYourWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadYourWrites")
            .field("owners", &self.lock().len())
            .finish()
    }
}

struct Owner {
    uid: String,
    /// Per store type: the store and the highest version written through it.
    writes: HashMap<TypeId, (Arc<dyn VersionedStore>, u64)>,
}

/// A store's progress, whatever its object type.
pub(crate) trait VersionedStore: Send + Sync {
    fn version(&self) -> Option<u64>;
    fn kind(&self) -> &'static str;
}

impl<K: Send + Sync + 'static> VersionedStore for Store<K> {
    fn version(&self) -> Option<u64> {
        self.resource_version()
    }

    fn kind(&self) -> &'static str {
        std::any::type_name::<K>()
    }
}

/// The store has not yet seen a write this controller made; sync later.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the {kind} cache is at resourceVersion {read:?}, behind this controller's write at {wrote}"
)]
pub struct NotYetObserved {
    /// The Rust type of the store's objects.
    pub kind: &'static str,
    /// The version the write returned.
    pub wrote: u64,
    /// The store's version (`None`: it has seen nothing yet).
    pub read: Option<u64>,
}

impl ReadYourWrites {
    /// Remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Owner>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that a write made on behalf of `owner` (identified by `owner_uid`, so a
    /// recreated owner starts afresh) returned `resource_version`, and that `store`
    /// will show it. Versions that are not etcd integers are ignored.
    pub fn wrote<K: Send + Sync + 'static>(
        &self,
        owner: &ObjectKey,
        owner_uid: &str,
        store: &Store<K>,
        resource_version: &str,
    ) {
        self.wrote_to(
            owner,
            owner_uid,
            TypeId::of::<K>(),
            || Arc::new(store.clone()),
            resource_version,
        );
    }

    /// [`wrote`](Self::wrote) for a store known by its type id.
    pub(crate) fn wrote_to(
        &self,
        owner: &ObjectKey,
        owner_uid: &str,
        type_id: TypeId,
        store: impl FnOnce() -> Arc<dyn VersionedStore>,
        resource_version: &str,
    ) {
        let Ok(version) = resource_version.parse::<u64>() else {
            return;
        };
        let mut owners = self.lock();
        let record = owners.entry(owner.clone()).or_insert_with(|| Owner {
            uid: owner_uid.to_string(),
            writes: HashMap::new(),
        });
        if record.uid != owner_uid {
            record.uid = owner_uid.to_string();
            record.writes.clear();
        }
        let entry = record
            .writes
            .entry(type_id)
            .or_insert_with(|| (store(), version));
        entry.1 = entry.1.max(version);
    }

    /// `Ok` when every store has seen this owner's writes (the record is then
    /// dropped); otherwise which store lags. On `Err`, [`park`](Self::park) the owner,
    /// or return [`Action::Requeue`](crate::reconcile::Action::Requeue) from the
    /// reconcile to retry with the per-key backoff, as kube-controller-manager does;
    /// lagging right after a write is normal.
    pub fn ensure_ready(&self, owner: &ObjectKey) -> Result<(), NotYetObserved> {
        let mut owners = self.lock();
        let Some(record) = owners.get(owner) else {
            return Ok(());
        };
        for (store, wrote) in record.writes.values() {
            let read = store.version();
            if read.is_none_or(|read| read < *wrote) {
                return Err(NotYetObserved {
                    kind: store.kind(),
                    wrote: *wrote,
                    read,
                });
            }
        }
        owners.remove(owner);
        Ok(())
    }

    /// Forgets `owner` (it was deleted).
    pub fn forget(&self, owner: &ObjectKey) {
        self.lock().remove(owner);
        self.lock_parked().remove(owner);
    }

    fn lock_parked(&self) -> std::sync::MutexGuard<'_, HashSet<ObjectKey>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks `owner` until every store shows its writes, instead of polling
    /// [`ensure_ready`](Self::ensure_ready) with backoff: call
    /// [`take_ready`](Self::take_ready) after each change a store applies to collect
    /// the owners to sync again. Returns false, parking nothing, if the stores have
    /// caught up already (sync now). Controllers built with
    /// [`Controller`](crate::controller::Controller) do all this themselves.
    pub fn park(&self, owner: &ObjectKey) -> bool {
        self.lock_parked().insert(owner.clone());
        // A store may have caught up since the caller's check, before `take_ready` could
        // see this owner parked: look again.
        if self.ensure_ready(owner).is_ok() {
            self.lock_parked().remove(owner);
            return false;
        }
        true
    }

    /// The parked owners whose writes every store now shows; they are unparked.
    pub fn take_ready(&self) -> Vec<ObjectKey> {
        let mut parked = self.lock_parked();
        if parked.is_empty() {
            return Vec::new();
        }
        let ready: Vec<ObjectKey> = parked
            .iter()
            .filter(|owner| self.ensure_ready(owner).is_ok())
            .cloned()
            .collect();
        for owner in &ready {
            parked.remove(owner);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};

    use super::*;
    use crate::store::Writer;

    #[test]
    fn waits_for_every_store_written_through() {
        let (pod_writer, map_writer) = (Writer::<Pod>::new(), Writer::<ConfigMap>::new());
        let (pods, maps) = (pod_writer.store(), map_writer.store());
        let writes = ReadYourWrites::new();
        let owner = ObjectKey::new(Some("ns"), "web");
        writes.wrote(&owner, "u", &pods, "10");
        writes.wrote(&owner, "u", &pods, "7");
        writes.wrote(&owner, "u", &maps, "12");
        pod_writer.observe_version(Some("9"));
        map_writer.observe_version(Some("12"));
        let lagging = writes.ensure_ready(&owner).unwrap_err();
        assert_eq!(
            (lagging.wrote, lagging.read),
            (10, Some(9)),
            "the highest write counts"
        );
        pod_writer.observe_version(Some("10"));
        assert!(writes.ensure_ready(&owner).is_ok());
        pod_writer.observe_version(Some("3"));
        assert_eq!(pods.resource_version(), Some(10), "versions only rise");
    }

    #[test]
    fn parked_owners_come_back_once_their_writes_show() {
        let writer = Writer::<Pod>::new();
        let pods = writer.store();
        let writes = ReadYourWrites::new();
        let (web, db) = (
            ObjectKey::new(Some("ns"), "web"),
            ObjectKey::new(Some("ns"), "db"),
        );
        writes.wrote(&web, "u1", &pods, "5");
        writes.wrote(&db, "u2", &pods, "8");
        assert!(writes.park(&web) && writes.park(&db));
        assert!(writes.take_ready().is_empty(), "nothing shows yet");
        writer.observe_version(Some("6"));
        assert_eq!(writes.take_ready(), vec![web.clone()]);
        assert!(writes.take_ready().is_empty(), "handed back once");
        writer.observe_version(Some("9"));
        writes.wrote(&web, "u1", &pods, "9");
        assert!(!writes.park(&web), "caught up already: not parked");
        writes.forget(&db);
        assert!(
            writes.take_ready().is_empty(),
            "a forgotten owner is not handed back"
        );
    }

    #[test]
    fn a_recreated_owner_starts_afresh_and_forget_clears() {
        let pod_writer = Writer::<Pod>::new();
        let pods = pod_writer.store();
        let writes = ReadYourWrites::new();
        let owner = ObjectKey::new(Some("ns"), "web");
        writes.wrote(&owner, "old", &pods, "50");
        writes.wrote(&owner, "new", &pods, "5");
        pod_writer.observe_version(Some("5"));
        assert!(writes.ensure_ready(&owner).is_ok());
        writes.wrote(&owner, "new", &pods, "60");
        writes.forget(&owner);
        assert!(writes.ensure_ready(&owner).is_ok());
        writes.wrote(&owner, "new", &pods, "not-a-number");
        assert!(writes.ensure_ready(&owner).is_ok());
    }
}
