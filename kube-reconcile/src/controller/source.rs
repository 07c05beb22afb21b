//! What a controller watches: one [`Source`] per watched type, owning its informer,
//! its filters and its mapper to keys.

use std::{
    any::{Any, TypeId},
    cell::Cell,
    sync::Arc,
    time::Duration,
};

use futures::future::BoxFuture;

use super::{Filter, handler::Mapper};
use crate::{
    ObjectKey,
    consistency::VersionedStore,
    informer::{Change, Informer, InformerFactory, Scope, Watchable},
    queue::{Priority, WorkQueue},
    store::Store,
};

/// One watched type for [`ControllerBuilder::owns`](super::ControllerBuilder::owns) or
/// [`watches`](super::ControllerBuilder::watches): where its objects come from (a
/// [`Scope`] of the shared informer, or an informer you built) and which of its changes
/// may enqueue.
///
/// A `&Scope` converts into a source with no filters, so `.owns::<Pod>(&scope)` works.
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_reconcile::{controller::{Source, filter}, informer::Scope};
///
/// let pods: Source<Pod> = Source::new(&Scope::all().namespace("web"))
///     .filter(filter::labels_changed);
/// ```
#[must_use]
pub struct Source<W> {
    origin: Origin<W>,
    filters: Vec<Filter<W>>,
    delay: Duration,
}

enum Origin<W> {
    Scope(Scope),
    Informer(Informer<W>),
}

impl<W> std::fmt::Debug for Source<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match &self.origin {
            Origin::Scope(scope) => format!("{scope:?}"),
            Origin::Informer(_) => "a given informer".to_string(),
        };
        f.debug_struct("Source")
            .field("origin", &origin)
            .field("filters", &self.filters.len())
            .field("delay", &self.delay)
            .finish()
    }
}

impl<W> Source<W> {
    /// The shared informer of `W` in `scope` (from the controller's factory).
    pub fn new(scope: &Scope) -> Self {
        Self {
            origin: Origin::Scope(scope.clone()),
            filters: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// An informer you built, e.g. a metadata-only one from
    /// [`InformerFactory::metadata_informer`].
    pub fn informer(informer: Informer<W>) -> Self {
        Self {
            origin: Origin::Informer(informer),
            filters: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Drops changes for which `filter` returns false (see
    /// [`filter`](super::filter) for ready-made ones). Several filters must all pass.
    pub fn filter(mut self, filter: impl Fn(&Change<W>) -> bool + Send + Sync + 'static) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Batches this source's changes: the keys they map to are enqueued `delay` after
    /// the change rather than at once, and every change to the same key within that
    /// window ends in one reconcile (a key already queued earlier is not pushed back).
    /// kube-controller-manager's endpoint controllers do this to pod changes with
    /// `--endpointslice-updates-batch-period`, trading latency for fewer writes when
    /// many pods change together. Zero (the default) enqueues at once.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// This source's informer (shared from `factory` or the given one), with its filters
    /// and `mapper`.
    pub(super) fn resolve(self, factory: &InformerFactory, mapper: Mapper<W>) -> Watch<W>
    where
        W: Watchable,
    {
        let informer = match self.origin {
            Origin::Scope(scope) => factory.informer::<W>(&scope),
            Origin::Informer(informer) => informer,
        };
        Watch {
            informer,
            filters: self.filters,
            delay: self.delay,
            mapper,
        }
    }
}

impl<W> From<&Scope> for Source<W> {
    fn from(scope: &Scope) -> Self {
        Self::new(scope)
    }
}

impl<W> From<Scope> for Source<W> {
    fn from(scope: Scope) -> Self {
        Self::new(&scope)
    }
}

/// A source resolved to its informer, with filters and mapper: what the running
/// controller attaches to its queue.
pub(super) struct Watch<W> {
    pub(super) informer: Informer<W>,
    pub(super) filters: Vec<Filter<W>>,
    pub(super) delay: Duration,
    pub(super) mapper: Mapper<W>,
}

/// What the controller does with a watch whatever its type.
pub(super) trait Watched: Send + Sync {
    fn watched_type(&self) -> TypeId;
    /// The `Store<W>`, to hand out by type.
    fn store(&self) -> Box<dyn Any>;
    fn versioned(&self) -> Arc<dyn VersionedStore>;
    /// Subscribes the queue and keeps the informer running until the result drops;
    /// `after_change` runs after each change the informer applies, filtered or not.
    /// With `priorities`, the keys of objects the informer only listed (see
    /// [`priority_of`]) are queued at [`Priority::Low`].
    fn attach(
        &self,
        queue: WorkQueue<ObjectKey>,
        after_change: AfterChange,
        priorities: bool,
    ) -> Attached;
    fn wait_for_sync(&self) -> BoxFuture<'_, ()>;
}

/// What a controller runs after every change any of its informers applies.
pub(super) type AfterChange = Arc<dyn Fn() + Send + Sync>;

/// A watch attached to a queue: dropping it removes the handler and releases the
/// informer (which stops when no one else reads it).
pub(super) struct Attached {
    detach: Option<Box<dyn FnOnce() + Send>>,
    _reader: Box<dyn Any + Send>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(detach) = self.detach.take() {
            detach();
        }
    }
}

impl<W: Watchable> Watched for Watch<W> {
    fn watched_type(&self) -> TypeId {
        TypeId::of::<W>()
    }

    fn store(&self) -> Box<dyn Any> {
        Box::new(self.informer.store().clone())
    }

    fn versioned(&self) -> Arc<dyn VersionedStore> {
        Arc::new(self.informer.store().clone())
    }

    fn attach(
        &self,
        queue: WorkQueue<ObjectKey>,
        after_change: AfterChange,
        priorities: bool,
    ) -> Attached {
        let (filters, mapper, delay) = (self.filters.clone(), self.mapper.clone(), self.delay);
        let store = self.informer.store().clone();
        let handler = move |change: &Change<W>| {
            if filters.iter().all(|pass| pass(change)) {
                let keys = mapper(change);
                if !keys.is_empty() {
                    let priority = if priorities {
                        priority_of(change, &store)
                    } else {
                        Priority::Normal
                    };
                    for key in keys {
                        queue.add_after_with_priority(key, delay, priority);
                    }
                }
            }
            after_change();
        };
        let id = {
            let _replay = Replaying::begin();
            self.informer.add_handler(handler)
        };
        let informer = self.informer.clone();
        Attached {
            detach: Some(Box::new(move || informer.remove_handler(id))),
            _reader: Box::new(self.informer.reader()),
        }
    }

    fn wait_for_sync(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.informer.wait_for_sync())
    }
}

thread_local! {
    /// Set on the thread of an `attach` while `add_handler` replays the informer's
    /// stored objects to the new handler (synchronously, on that thread, before it
    /// returns): those `Added` events are the controller's initial list, not changes.
    static REPLAYING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as replaying until dropped (also on a panic).
struct Replaying;

impl Replaying {
    fn begin() -> Self {
        REPLAYING.set(true);
        Self
    }
}

impl Drop for Replaying {
    fn drop(&mut self) {
        REPLAYING.set(false);
    }
}

/// The priority of the keys a change maps to: [`Priority::Low`] for an object the
/// controller sees only because it is listing, i.e. an `Added` while the informer
/// stores its first complete list (its store is not synced yet: the initial list, or
/// the list after a restart), or replayed to a handler attached to an informer that was
/// already running. Everything else is a change and [`Priority::Normal`]: updates and
/// deletions, `Added` from the watch, and `Added` from a relist of a synced informer
/// (after 410 Gone: those objects were created while the watch was down). As in
/// client-go (`isInInitialList`) and controller-runtime (`LowPriorityWhenUnchanged`;
/// its other case, resyncs of unchanged objects, does not exist here: informers have
/// no periodic resync and a relist reports only objects whose resourceVersion changed).
pub(super) fn priority_of<W>(change: &Change<W>, store: &Store<W>) -> Priority {
    let listed = matches!(change, Change::Added(_)) && (REPLAYING.get() || !store.has_synced());
    if listed {
        Priority::Low
    } else {
        Priority::Normal
    }
}

/// The store of the first watch of type `W`, if any.
pub(super) fn store_of<W: 'static>(watches: &[Box<dyn Watched>]) -> Option<Store<W>> {
    watches
        .iter()
        .find(|w| w.watched_type() == TypeId::of::<W>())
        .and_then(|w| w.store().downcast::<Store<W>>().ok())
        .map(|store| *store)
}
