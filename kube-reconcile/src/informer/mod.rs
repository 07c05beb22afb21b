//! Informers: one list+watch per resource type and scope, filling a [`Store`] and
//! telling subscribers what changed.
//!
//! The wire protocol (paging, bookmarks, resuming from a resourceVersion, relisting on
//! 410 Gone, streaming lists) is `kube::runtime::watcher`'s. Informers from an
//! [`InformerFactory`] list by streaming (a watch with `sendInitialEvents=true`,
//! objects decoded one at a time) when the API server allows it, and in pages of 500
//! when it refuses; see [`InformerFactory::streaming_lists`]. What this module adds: the indexed store, one watch shared by every
//! consumer in the process ([`InformerFactory`]), typed add/update/delete events with
//! the old object, a transform before storing (dropping `metadata.managedFields` by
//! default), and the sync signal workers wait on.
//!
//! **Delivery policy.** Handlers ([`Informer::add_handler`]) run inline on the
//! informer's task, after the store is updated and in event order. They must be quick
//! and must not block (mapping an event to work-queue keys is the intended use): a slow
//! handler slows the informer, never grows memory. A handler added to a running
//! informer first receives an `Added` event for every stored object, so late consumers
//! miss nothing and see nothing twice. For async consumers, [`Informer::subscribe`]
//! gives a bounded channel; when it is full, events for that subscriber are dropped and
//! counted, and the next receive reports [`Notification::Missed`] so the consumer can
//! re-read the store.
//!
//! **After a relist** (a new watch after 410 Gone or a restart), the informer compares
//! the listed objects with the store: objects whose resourceVersion changed produce
//! `Updated`, new ones `Added`, vanished ones `Deleted` (with the last known state).
//!
//! **Objects that do not decode.** Informers from an [`InformerFactory`] decode each
//! object on its own. One that does not fit the Rust type (a custom resource whose
//! stored objects changed shape under the controller) is logged once per
//! resourceVersion, counted ([`Informer::decode_failures`], and
//! `informer_decode_failures_total{resource, object}` on the factory's metrics), listed
//! by [`Informer::undecodable`], and skipped: the rest of the cache syncs and follows
//! the watch. An object that was decodable and is updated into a shape that is not
//! keeps its last decodable state in the cache, and no `Deleted` is emitted: a deletion
//! would tell e.g. a ReplicaSet controller that a pod is gone, and it would create a
//! replacement for a pod that still runs. Handlers see nothing until the object decodes
//! again (then `Updated`) or is deleted (then `Deleted` with the last decodable state).
//! Caveat: the cache is then stale for that object, so a controller may act on its old
//! state; the log line and the metric are how to notice.
//!
//! **Failed lists and watches** are retried with backoff: 800 ms doubling to 2.5 s,
//! each delay plus up to as much again at random, restarting after a success. So an
//! informer retries a server that is down at least every 5 s and is back within 5 s of
//! its recovery, where kube's and client-go's default goes to 30 s (a failed attempt
//! costs an overloaded server little: 429s are answered before any work). Each
//! failure is logged once as a
//! warning naming the resource, the namespace, the server, the whole cause down to the
//! OS error ([`describe_error`]) and the delay before the next attempt, e.g.
//! `list/watch of configmaps in namespace demo at http://127.0.0.1:44337/ failed
//! (retrying in 1.4s): failed to perform initial object list: ServiceError: client
//! error (Connect): tcp connect error: Connection refused (os error 111)`.

mod consistent;
mod decode;
mod factory;
mod initial_list;
mod lean;
mod report;
mod run;
mod subscription;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use futures::{StreamExt, stream::BoxStream};
use kube::{Resource, ResourceExt, runtime::watcher};
use tracing::debug;

pub use decode::Undecodable;
pub use factory::{InformerFactory, Scope, ScopedApi, Watchable};
pub use lean::decode_without_managed_fields;
pub use report::describe_error;
pub use subscription::{Notification, Subscription};

use decode::{DecodeFailures, Decoded};
use report::Origin;

use crate::{
    ObjectKey,
    store::{Store, Writer},
};

/// A change an informer saw. Objects are shared with the store. (Named `Change`, not
/// `Event`, so it never reads as a Kubernetes Event; see [`crate::events`] for those.)
#[derive(Debug)]
pub enum Change<K> {
    /// A new object.
    Added(Arc<K>),
    /// A changed object: what the store held, and what it holds now.
    Updated {
        /// The previous state.
        old: Arc<K>,
        /// The new state.
        new: Arc<K>,
    },
    /// A deleted object, in its last known state.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Added(o) => Self::Added(o.clone()),
            Self::Updated { old, new } => Self::Updated {
                old: old.clone(),
                new: new.clone(),
            },
            Self::Deleted(o) => Self::Deleted(o.clone()),
        }
    }
}

impl<K> Change<K> {
    /// The object as it is now (or was when deleted).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Self::Added(o) | Self::Deleted(o) => o,
            Self::Updated { new, .. } => new,
        }
    }
}

/// A function applied to each object before it is stored.
pub type Transform<K> = Arc<dyn Fn(&mut K) + Send + Sync>;

/// The default transform: drops `metadata.managedFields`, often 40% of an object's
/// size, which controllers rarely read.
pub fn strip_managed_fields<K: Resource>() -> Transform<K> {
    Arc::new(|object: &mut K| object.meta_mut().managed_fields = None)
}

/// Identifies a handler so it can be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;
type MakeStream<K> = Arc<dyn Fn() -> WatchStream<K> + Send + Sync>;

/// Where an informer's list+watch comes from.
enum Source<K> {
    /// A stream given once: the informer cannot start again after it stops.
    Once(Option<WatchStream<K>>),
    /// A new list+watch for each start, so a stopped informer can start again.
    Restartable(MakeStream<K>),
}
/// Objects arrive decoded or not (see the module docs); streams of plain `K` are
/// wrapped as all decoded.
type WatchStream<K> = BoxStream<'static, Result<watcher::Event<Decoded<K>>, watcher::Error>>;

/// Every object of a plain watcher stream is decodable.
fn all_decoded<K>(
    item: Result<watcher::Event<K>, watcher::Error>,
) -> Result<watcher::Event<Decoded<K>>, watcher::Error> {
    map_objects(item, Decoded::Object)
}

/// The same event with `f` applied to its object, if it has one.
fn map_objects<A, B>(
    item: Result<watcher::Event<A>, watcher::Error>,
    f: impl FnOnce(A) -> B,
) -> Result<watcher::Event<B>, watcher::Error> {
    use watcher::Event;
    Ok(match item? {
        Event::Apply(object) => Event::Apply(f(object)),
        Event::Delete(object) => Event::Delete(f(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(f(object)),
        Event::InitDone => Event::InitDone,
    })
}

/// One list+watch and its store. Cloning gives another handle to the same informer.
/// Usually obtained from an [`InformerFactory`], which shares one per type and scope.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    writer: Writer<K>,
    store: Store<K>,
    handlers: RwLock<Vec<(HandlerId, Handler<K>)>>,
    next_handler: AtomicU64,
    source: Mutex<Source<K>>,
    /// Live [`Reader`] guards; the last one to go stops the informer.
    readers: AtomicUsize,
    transform: Option<Transform<K>>,
    origin: Origin,
    decode_failures: DecodeFailures,
    watch_errors: AtomicU64,
    lists: AtomicU64,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> fmt::Debug for Informer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Informer")
            .field("store", &self.shared.store)
            .field("handlers", &self.handler_count())
            .field("running", &self.is_running())
            .finish()
    }
}

impl<K> Informer<K> {
    /// The informer's cache.
    pub fn store(&self) -> &Store<K> {
        &self.shared.store
    }

    /// Whether the first complete list has been stored.
    pub fn has_synced(&self) -> bool {
        self.shared.store.has_synced()
    }

    /// Waits until the first complete list has been stored.
    pub async fn wait_for_sync(&self) {
        self.shared.store.wait_for_sync().await
    }

    /// List or watch failures so far: unreachable server, missing permission, unknown
    /// resource, expired resourceVersion. Each is logged and retried with backoff, so
    /// this grows by a handful a minute, not per second. Objects that do not decode
    /// are not counted here but in [`decode_failures`](Self::decode_failures).
    pub fn watch_errors(&self) -> u64 {
        self.shared.watch_errors.load(Ordering::Relaxed)
    }

    /// Object versions that did not decode as `K` so far, each counted once however
    /// often relists show it again (see the module docs for what the cache keeps).
    /// Only informers from an [`InformerFactory`] decode per object; the others' objects
    /// are decoded by whoever made their stream.
    pub fn decode_failures(&self) -> u64 {
        self.shared.decode_failures.total()
    }

    /// The objects that do not decode now, by key: each leaves this list when it
    /// decodes again or is deleted.
    pub fn undecodable(&self) -> Vec<Undecodable> {
        self.shared.decode_failures.current()
    }

    /// Complete lists stored so far: 1 after the first sync, more after each relist
    /// (a new watch after 410 Gone, or after the watcher gave up resuming).
    pub fn lists(&self) -> u64 {
        self.shared.lists.load(Ordering::Relaxed)
    }

    /// Whether the informer's task has been started and not stopped.
    pub fn is_running(&self) -> bool {
        let task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
        task.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn handler_count(&self) -> usize {
        self.read_handlers().len()
    }

    fn read_handlers(&self) -> std::sync::RwLockReadGuard<'_, Vec<(HandlerId, Handler<K>)>> {
        self.shared
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Removes a handler; it receives nothing after this returns.
    pub fn remove_handler(&self, id: HandlerId) {
        let mut handlers = self
            .shared
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        handlers.retain(|(handler_id, _)| *handler_id != id);
    }

    /// Stops the list+watch. The store keeps its last contents but is no longer
    /// synced, so [`wait_for_sync`](Self::wait_for_sync) waits for the next complete
    /// list if the informer starts again.
    pub fn stop(&self) {
        let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
        // Forgotten at once: an aborted task finishes only at its next await, and a
        // `start` right after this must not mistake it for a running one.
        if let Some(task) = task.take() {
            task.abort();
        }
        self.shared.writer.mark_unsynced();
    }

    /// How many [`Reader`] guards are alive.
    pub fn readers(&self) -> usize {
        self.shared.readers.load(Ordering::Acquire)
    }
}

/// Keeps an informer running while it lives: made by [`Informer::reader`]. When the
/// last reader of an informer is dropped, the informer stops. Controllers hold one per
/// source they watch, so shared informers stop with the last controller reading them.
#[must_use = "the informer stops when its last reader is dropped"]
pub struct Reader<K: Resource + Clone + Send + Sync + 'static> {
    informer: Informer<K>,
}

impl<K: Resource + Clone + Send + Sync + 'static> fmt::Debug for Reader<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reader").field(&self.informer).finish()
    }
}

impl<K: Resource + Clone + Send + Sync + 'static> Drop for Reader<K> {
    fn drop(&mut self) {
        if self.informer.shared.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
            debug!(
                kind = std::any::type_name::<K>(),
                "last reader gone; informer stops"
            );
            self.informer.stop();
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Send + Sync + 'static,
{
    /// An informer over one watcher stream, e.g. `kube::runtime::watcher(api, config)`
    /// or `kube::runtime::metadata_watcher(..)`. `transform` runs before storing; pass
    /// [`strip_managed_fields`] for the usual default, or `None` to keep everything.
    /// Nothing happens until [`start`](Self::start). Caveat: the stream is consumed by
    /// the first start, so this informer cannot start again once stopped; use
    /// [`from_watch`](Self::from_watch) for one that can.
    pub fn from_stream(
        stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
        transform: Option<Transform<K>>,
    ) -> Self {
        let stream = stream.map(all_decoded).boxed();
        Self::with_source(
            Source::Once(Some(stream)),
            transform,
            Origin::of::<K>(),
            None,
        )
    }

    /// An informer that calls `watch` for a new watcher stream each time it starts, so
    /// it can stop (when its last [`Reader`] goes) and start again (relisting, with the
    /// differences reported as changes). [`InformerFactory`] builds its informers so.
    pub fn from_watch<S>(
        watch: impl Fn() -> S + Send + Sync + 'static,
        transform: Option<Transform<K>>,
    ) -> Self
    where
        S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    {
        let make: MakeStream<K> = Arc::new(move || watch().map(all_decoded).boxed());
        Self::with_source(
            Source::Restartable(make),
            transform,
            Origin::of::<K>(),
            None,
        )
    }

    /// [`from_watch`](Self::from_watch) for the factory: a stream of objects decoded one
    /// by one, and the names and metrics its reports use.
    fn from_decoding_watch<S>(
        watch: impl Fn() -> S + Send + Sync + 'static,
        transform: Option<Transform<K>>,
        origin: Origin,
        report: Option<decode::Report>,
    ) -> Self
    where
        S: futures::Stream<Item = Result<watcher::Event<Decoded<K>>, watcher::Error>>
            + Send
            + 'static,
    {
        let make: MakeStream<K> = Arc::new(move || watch().boxed());
        Self::with_source(Source::Restartable(make), transform, origin, report)
    }

    fn with_source(
        source: Source<K>,
        transform: Option<Transform<K>>,
        origin: Origin,
        report: Option<decode::Report>,
    ) -> Self {
        let writer = Writer::new();
        Self {
            shared: Arc::new(Shared {
                store: writer.store(),
                writer,
                handlers: RwLock::new(Vec::new()),
                next_handler: AtomicU64::new(0),
                source: Mutex::new(source),
                readers: AtomicUsize::new(0),
                transform,
                origin,
                decode_failures: DecodeFailures::new(report),
                watch_errors: AtomicU64::new(0),
                lists: AtomicU64::new(0),
                task: Mutex::new(None),
            }),
        }
    }

    /// Starts the list+watch on the current tokio runtime. Calling it while it runs
    /// does nothing. After [`stop`](Self::stop), it starts a new list+watch if the
    /// informer was made [`from_watch`](Self::from_watch), and does nothing otherwise.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) {
        let mut task = self.shared.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let stream = match &mut *self.shared.source.lock().unwrap_or_else(|e| e.into_inner()) {
            Source::Once(stream) => stream.take(),
            Source::Restartable(make) => Some(make()),
        };
        let Some(stream) = stream else { return };
        *task = Some(tokio::spawn(run::run(self.shared.clone(), stream)).abort_handle());
    }

    /// A guard that keeps this informer running: starts it if needed, and stops it when
    /// the last guard of the informer is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn reader(&self) -> Reader<K> {
        self.shared.readers.fetch_add(1, Ordering::AcqRel);
        self.start();
        Reader {
            informer: self.clone(),
        }
    }

    /// Calls `handler` for every change, after the store reflects it. If objects are
    /// already stored, `handler` first gets an `Added` event for each. See the module
    /// docs for the delivery policy.
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) -> HandlerId {
        let id = HandlerId(self.shared.next_handler.fetch_add(1, Ordering::Relaxed));
        // Holding the write lock keeps the informer from dispatching (and so from
        // changing the store) between the replay and the registration.
        let mut handlers = self
            .shared
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for object in self.shared.store.list() {
            handler(&Change::Added(object));
        }
        handlers.push((id, Arc::new(handler)));
        id
    }

    /// A bounded async stream of changes; see the module docs for what happens when
    /// the consumer falls `capacity` events behind.
    pub fn subscribe(&self, capacity: usize) -> Subscription<K> {
        let (sender, subscription) = subscription::channel(capacity);
        self.add_handler(move |event| sender.send(event));
        subscription
    }

    fn prepare(&self, mut object: K) -> Arc<K> {
        if let Some(transform) = &self.shared.transform {
            transform(&mut object);
        }
        Arc::new(object)
    }

    fn dispatch(handlers: &[(HandlerId, Handler<K>)], event: Change<K>) {
        for (_, handler) in handlers {
            handler(&event);
        }
    }

    fn apply(&self, object: K) {
        let object = self.prepare(object);
        let handlers = self.read_handlers();
        let event = match self.shared.writer.apply(object.clone()) {
            Some(old) => Change::Updated { old, new: object },
            None => Change::Added(object),
        };
        Self::dispatch(&handlers, event);
    }

    fn delete(&self, object: K) {
        let handlers = self.read_handlers();
        let writer = &self.shared.writer;
        writer.observe_version(object.meta().resource_version.as_deref());
        let removed = writer.remove(&ObjectKey::of(&object));
        let last_known = removed.unwrap_or_else(|| self.prepare(object));
        Self::dispatch(&handlers, Change::Deleted(last_known));
    }

    /// Deletes an object whose last state did not decode: handlers get its last
    /// decodable state, or nothing if it never decoded.
    fn delete_undecodable(&self, key: &ObjectKey, version: Option<&str>) {
        let handlers = self.read_handlers();
        let writer = &self.shared.writer;
        writer.observe_version(version);
        if let Some(last_known) = writer.remove(key) {
            Self::dispatch(&handlers, Change::Deleted(last_known));
        }
    }

    /// Makes the store equal to a complete list, emitting the differences.
    fn replace(&self, listed: HashMap<ObjectKey, Arc<K>>) {
        let handlers = self.read_handlers();
        let writer = &self.shared.writer;
        for key in self.shared.store.keys() {
            if !listed.contains_key(&key)
                && let Some(gone) = writer.remove(&key)
            {
                Self::dispatch(&handlers, Change::Deleted(gone));
            }
        }
        for (_, object) in listed {
            let version = object.resource_version();
            match writer.apply(object.clone()) {
                None => Self::dispatch(&handlers, Change::Added(object)),
                Some(old) if old.resource_version() != version => {
                    Self::dispatch(&handlers, Change::Updated { old, new: object })
                }
                Some(_) => {}
            }
        }
        writer.mark_synced();
    }
}

#[cfg(test)]
mod tests;
