//! The [`Context`] of one reconcile: what a reconciler reaches without plumbing.
//!
//! - the client and the controller's name (its field manager and event source);
//! - a cancellation signal that fires when the controller starts shutting down, before
//!   its shutdown timeout cancels in-flight reconciles outright;
//! - an event recorder, and [`event`](Context::event) about the object being
//!   reconciled;
//! - server-side apply ([`applier`](Context::applier)) and
//!   [finalizers](Context::finalizer) that tell the controller what they wrote, so the
//!   next reconcile of the same object waits until the caches show those writes (read
//!   your own writes; [`wrote`](Context::wrote) records other writes).

use std::{any::TypeId, collections::HashMap, fmt, sync::Arc};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Client, Resource};
use tokio_util::sync::CancellationToken;

use crate::{
    ObjectKey,
    apply::Applier,
    consistency::{ReadYourWrites, VersionedStore},
    events::{EventRecorder, EventType},
};

/// What one reconcile can reach: see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Context {
    controller: Arc<Shared>,
    object: Arc<ObjectInfo>,
}

/// What every reconcile of one controller shares.
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) client: Client,
    pub(crate) cancel: CancellationToken,
    pub(crate) recorder: EventRecorder,
    /// `None` when read-your-own-writes is off.
    pub(crate) writes: Option<Arc<ReadYourWrites>>,
    /// The stores of the watched types, by type, for read-your-own-writes.
    pub(crate) stores: HashMap<TypeId, Arc<dyn VersionedStore>>,
}

/// What this reconcile is about.
struct ObjectInfo {
    key: ObjectKey,
    uid: Option<String>,
    reference: Option<ObjectReference>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("controller", &self.controller.name)
            .field("key", &self.object.key)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context outside any controller, e.g. to call a reconciler from a test, for
    /// `key` whose object is `object`: its own cancellation token, a recorder named
    /// `name`, and no read-your-own-writes bookkeeping.
    ///
    /// # Panics
    /// Outside a tokio runtime (the recorder starts a task).
    pub fn new<K: Resource<DynamicType = ()>>(
        client: Client,
        name: &str,
        key: ObjectKey,
        object: Option<&K>,
    ) -> Self {
        let shared = Shared {
            name: name.into(),
            recorder: EventRecorder::new(client.clone(), name),
            client,
            cancel: CancellationToken::new(),
            writes: None,
            stores: HashMap::new(),
        };
        Self::for_object(&Arc::new(shared), key, object)
    }

    /// The context of a reconcile of `key`, whose cached object is `object`.
    pub(crate) fn for_object<K: Resource<DynamicType = ()>>(
        controller: &Arc<Shared>,
        key: ObjectKey,
        object: Option<&K>,
    ) -> Self {
        let object = ObjectInfo {
            key,
            uid: object.and_then(|o| o.meta().uid.clone()),
            reference: object.map(|o| o.object_ref(&())),
        };
        Self {
            controller: controller.clone(),
            object: Arc::new(object),
        }
    }

    /// The controller's name: its field manager and the source of its events.
    pub fn name(&self) -> &str {
        &self.controller.name
    }

    /// The client the controller's informers use.
    pub fn client(&self) -> &Client {
        &self.controller.client
    }

    /// Fires when the controller begins shutting down. A long reconcile should stop at
    /// a safe point (`tokio::select!` on [`CancellationToken::cancelled`]); the rest
    /// are cancelled when the shutdown timeout passes.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.controller.cancel
    }

    /// Whether the controller is shutting down.
    pub fn is_cancelled(&self) -> bool {
        self.controller.cancel.is_cancelled()
    }

    /// The controller's core/v1 event recorder (see [`EventRecorder`]).
    pub fn recorder(&self) -> &EventRecorder {
        &self.controller.recorder
    }

    /// Records an event about the object being reconciled (nothing if it is gone).
    pub fn event(&self, type_: EventType, reason: &str, message: &str) {
        if let Some(reference) = &self.object.reference {
            self.controller
                .recorder
                .record(reference, type_, reason, message);
        }
    }

    /// Server-side apply as this controller, forcing conflicts; what it writes is
    /// recorded as by [`wrote`](Self::wrote).
    pub fn applier(&self) -> Applier {
        let applier = Applier::new(self.client().clone(), self.name());
        if self.controller.writes.is_none() {
            return applier;
        }
        let context = self.clone();
        applier.observe_writes(Arc::new(move |type_id, version| {
            context.wrote_version(type_id, version)
        }))
    }

    /// Records that this reconcile wrote `written` (as the API server returned it).
    /// If the controller watches that type, it reconciles this object again only once
    /// its cache of that type has seen this write. A no-op when read-your-own-writes is
    /// off or the type is not watched.
    pub fn wrote<W: Resource + 'static>(&self, written: &W) {
        if let Some(version) = &written.meta().resource_version {
            self.wrote_version(TypeId::of::<W>(), version);
        }
    }

    /// As [`wrote`](Self::wrote), for a controller that caches `Cached` — a
    /// [projection](crate::projection) of the written type — rather than the type
    /// written: `ctx.wrote_as::<PodView>(&created_pod)`. The wait is on the store of
    /// `Cached`; writing with one type and caching another is the projection's normal
    /// use.
    pub fn wrote_as<Cached: 'static>(&self, written: &impl Resource) {
        if let Some(version) = &written.meta().resource_version {
            self.wrote_version(TypeId::of::<Cached>(), version);
        }
    }

    fn wrote_version(&self, type_id: TypeId, version: &str) {
        let (Some(ledger), Some(uid)) = (&self.controller.writes, &self.object.uid) else {
            return;
        };
        let Some(store) = self.controller.stores.get(&type_id) else {
            return;
        };
        ledger.wrote_to(&self.object.key, uid, type_id, || store.clone(), version);
    }
}
