//! Sharing: one informer per (type, namespace, selectors) in a process.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    fmt::Debug,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Api, Client, Resource, core::PartialObjectMeta, runtime::watcher};
use serde::de::DeserializeOwned;

use super::{
    Informer, Transform, all_decoded, consistent,
    decode::{Decoded, Report},
    initial_list::{self, ListMode},
    map_objects,
    report::Origin,
    strip_managed_fields,
};

/// How an informer decodes each object.
#[derive(Debug, Clone, Copy)]
enum Decoding {
    /// As the type decodes it.
    Whole,
    /// With `metadata.managedFields` cut out of its JSON first.
    WithoutManagedFields,
}

/// Which objects of a type an informer watches. The default is every namespace, no
/// selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Scope {
    namespace: Option<String>,
    labels: Option<String>,
    fields: Option<String>,
}

impl Scope {
    /// Every object of the type.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only objects in `namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only objects matching this label selector, e.g. `app=web,tier!=cache`.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.labels = Some(selector.into());
        self
    }

    /// Only objects matching this field selector, e.g. `spec.nodeName=node-1`.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.fields = Some(selector.into());
        self
    }

    fn watcher_config(&self) -> watcher::Config {
        let mut config = watcher::Config::default();
        if let Some(labels) = &self.labels {
            config = config.labels(labels);
        }
        if let Some(fields) = &self.fields {
            config = config.fields(fields);
        }
        config
    }
}

/// What an informer can watch: a typed resource (namespaced or cluster-scoped) that
/// deserialises and can be shared across tasks. Every `k8s-openapi` type and every
/// derived custom resource is one.
pub trait Watchable:
    Resource<DynamicType = (), Scope: ScopedApi>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watchable for K where
    K: Resource<DynamicType = (), Scope: ScopedApi>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// How a resource scope is listed and watched: the namespaced path for namespaced
/// types (as client-go does), the cluster path otherwise. Implemented for the scope
/// markers of `k8s-openapi` and `kube` types.
pub trait ScopedApi: Sized {
    /// The `Api` reaching objects of `K` in `namespace` (all namespaces if `None`).
    /// Cluster-scoped types ignore the namespace.
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = Self, DynamicType = ()>;
}

impl ScopedApi for NamespaceResourceScope {
    fn api<K>(client: Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = Self, DynamicType = ()>,
    {
        match namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            None => Api::all(client),
        }
    }
}

impl ScopedApi for ClusterResourceScope {
    fn api<K>(client: Client, _namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = Self, DynamicType = ()>,
    {
        Api::all(client)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct InformerId {
    type_id: TypeId,
    scope: Scope,
}

/// Hands out shared informers: asking twice for the same type and [`Scope`] returns the
/// same informer, so the process holds one watch and one cache for it. Cloning gives
/// another handle to the same factory.
///
/// The first request for an informer decides its transform; later requests get the
/// existing informer whatever they ask for (the default transform strips
/// `metadata.managedFields`).
///
/// Its informers decode each object on its own, so one that does not fit the type is
/// skipped and reported rather than failing the list (see the [module docs](super)).
/// A `kube::Client` does not tell its server's URL, so give it with
/// [`with_server_url`](Self::with_server_url) for the informers' error logs to name it.
#[derive(Clone)]
pub struct InformerFactory {
    client: Client,
    informers: Arc<Mutex<HashMap<InformerId, Entry>>>,
    metrics: Option<crate::metrics::Metrics>,
    server: Option<Arc<str>>,
    list_mode: Arc<ListMode>,
}

struct Entry {
    informer: Box<dyn Any + Send + Sync>,
    start: Box<dyn Fn() + Send + Sync>,
    stop: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for InformerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.lock().len();
        f.debug_struct("InformerFactory")
            .field("informers", &count)
            .finish()
    }
}

impl InformerFactory {
    /// A factory whose informers use `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            informers: Arc::default(),
            metrics: None,
            server: None,
            list_mode: ListMode::new(true),
        }
    }

    /// A factory whose informers use a client built from `config`, and name
    /// `config.cluster_url` when a list or watch fails. The client is kube's, with
    /// `config`'s `default_retry` as it is (see [`crate::kubeconfig`] for why
    /// kube-reconcile's loader turns it off).
    ///
    /// # Errors
    /// When the client cannot be built from `config` (e.g. an unreadable certificate).
    pub fn from_config(config: kube::Config) -> Result<Self, kube::Error> {
        let server = config.cluster_url.to_string();
        Ok(Self::new(Client::try_from(config)?).with_server_url(server))
    }

    /// The URL of the client's API server (e.g. `kube::Config::cluster_url`), for
    /// informers created after this call to name in their logs when a list or watch
    /// fails. Without it, they say the server is unknown.
    pub fn with_server_url(mut self, url: impl Into<String>) -> Self {
        self.server = Some(url.into().into());
        self
    }

    /// Whether informers created after this call list by streaming (on by default): a
    /// watch with `sendInitialEvents=true` sends the current objects one by one and
    /// then a bookmark ending the list, so an informer decodes one object at a time
    /// instead of holding a page of 500 beside its decoded objects (client-go's
    /// `WatchListClient`). It needs the API server's `WatchList` feature (beta, on by
    /// default since Kubernetes 1.34). A server that refuses it is logged once and the
    /// factory lists in pages from then on, for all its informers; `false` lists in
    /// pages from the start. Relists after 410 Gone or a broken watch use the same mode.
    ///
    /// A streaming list starts from the most recent state, as client-go's does: the
    /// server waits until its watch cache has caught up with etcd before it sends the
    /// objects, so a synced informer holds every object written before it started.
    /// A paged list, as client-go's and kube's, accepts any state the watch cache has
    /// (`resourceVersion=0`): an object written a moment before can arrive only after
    /// the sync, as a watch event.
    pub fn streaming_lists(mut self, enabled: bool) -> Self {
        self.list_mode = ListMode::new(enabled);
        self
    }

    /// Whether informers created now would list by streaming: asked for, and not
    /// refused by the server so far.
    pub fn lists_by_streaming(&self) -> bool {
        self.list_mode.streaming()
    }

    /// The server URL given to [`with_server_url`](Self::with_server_url), if any.
    pub fn server_url(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Controllers built on this factory report to `metrics` unless their builder
    /// names other metrics ([`Manager`](crate::manager::Manager) sets its own).
    /// Informers created after this call count undecodable objects there, in
    /// `informer_decode_failures_total{resource, object}`.
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The metrics controllers built on this factory report to by default.
    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics.as_ref()
    }

    /// The client informers are created with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InformerId, Entry>> {
        self.informers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared informer of full `K` objects in `scope`, created if needed (not
    /// started: call [`start`](Self::start) or [`Informer::start`]). It stores objects
    /// without `metadata.managedFields` ([`strip_managed_fields`]), and unless `K`
    /// skips them itself (a projection with
    /// [`metadata_without_managed_fields`](crate::projection::metadata_without_managed_fields)),
    /// does not decode them in the first place
    /// ([`decode_without_managed_fields`](super::decode_without_managed_fields)).
    pub fn informer<K>(&self, scope: &Scope) -> Informer<K>
    where
        K: Watchable,
    {
        let decoding = if super::lean::decodes_managed_fields::<K>() {
            Decoding::WithoutManagedFields
        } else {
            // A projection that skips them itself: cutting them first would be wasted.
            Decoding::Whole
        };
        self.create(scope, Some(strip_managed_fields()), decoding)
    }

    /// Like [`informer`](Self::informer), choosing the transform if this call creates it
    /// (objects are then decoded whole, `managedFields` included, for the transform to
    /// see).
    pub fn informer_with_transform<K>(
        &self,
        scope: &Scope,
        transform: Option<Transform<K>>,
    ) -> Informer<K>
    where
        K: Watchable,
    {
        self.create(scope, transform, Decoding::Whole)
    }

    fn create<K>(
        &self,
        scope: &Scope,
        transform: Option<Transform<K>>,
        decoding: Decoding,
    ) -> Informer<K>
    where
        K: Watchable,
    {
        self.get_or_create(scope, || {
            let (client, namespace) = (self.client.clone(), scope.namespace.clone());
            let config = scope.watcher_config();
            let list_mode = self.list_mode.clone();
            let origin = self.origin::<K>(scope);
            let report = self.metrics.clone().map(|metrics| Report {
                metrics,
                resource: origin.resource.clone(),
            });
            let watch = move || {
                let client = consistent::most_recent_streaming_lists(client.clone());
                match decoding {
                    Decoding::Whole => {
                        let api = K::Scope::api::<Decoded<K>>(client, namespace.as_deref());
                        initial_list::watch(api, config.clone(), &list_mode)
                    }
                    Decoding::WithoutManagedFields => {
                        let api = K::Scope::api::<Decoded<K, true>>(client, namespace.as_deref());
                        initial_list::watch(api, config.clone(), &list_mode)
                            .map(|item| map_objects(item, Decoded::kept))
                            .boxed()
                    }
                }
            };
            Informer::from_decoding_watch(watch, transform, origin, report)
        })
    }

    /// How an informer of `K` in `scope` is named in logs and metrics.
    fn origin<K: Watchable>(&self, scope: &Scope) -> Origin {
        let (plural, group) = (K::plural(&()), K::group(&()));
        Origin {
            resource: if group.is_empty() {
                plural.into_owned()
            } else {
                format!("{plural}.{group}")
            },
            namespace: scope.namespace.clone(),
            server: self.server.clone(),
        }
    }

    /// The shared informer of `K`'s metadata only (`PartialObjectMeta`), for types a
    /// controller only maps or counts: far less memory and traffic than full objects.
    pub fn metadata_informer<K>(&self, scope: &Scope) -> Informer<PartialObjectMeta<K>>
    where
        K: Watchable,
    {
        self.get_or_create(scope, || {
            let (client, namespace) = (self.client.clone(), scope.namespace.clone());
            let config = scope.watcher_config();
            let list_mode = self.list_mode.clone();
            // Metadata always decodes, so this stream needs no per-object decoding.
            let mut origin = self.origin::<K>(scope);
            origin.resource.push_str(" (metadata)");
            Informer::from_decoding_watch(
                move || {
                    let client = consistent::most_recent_streaming_lists(client.clone());
                    // kube sends metadata-only requests for `Api<PartialObjectMeta<_>>`.
                    let api = K::Scope::api::<PartialObjectMeta<K>>(client, namespace.as_deref());
                    initial_list::watch(api, config.clone(), &list_mode).map(all_decoded)
                },
                Some(strip_managed_fields()),
                origin,
                None,
            )
        })
    }

    fn get_or_create<K>(&self, scope: &Scope, create: impl FnOnce() -> Informer<K>) -> Informer<K>
    where
        K: Resource + Clone + Send + Sync + 'static,
    {
        let id = InformerId {
            type_id: TypeId::of::<K>(),
            scope: scope.clone(),
        };
        let mut informers = self.lock();
        let entry = informers.entry(id).or_insert_with(|| {
            let informer = create();
            let (starter, stopper) = (informer.clone(), informer.clone());
            Entry {
                informer: Box::new(informer),
                start: Box::new(move || starter.start()),
                stop: Box::new(move || stopper.stop()),
            }
        });
        entry
            .informer
            .downcast_ref::<Informer<K>>()
            .expect("informers are keyed by their type")
            .clone()
    }

    /// Starts every informer created so far that is not running yet.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) {
        for entry in self.lock().values() {
            (entry.start)();
        }
    }

    /// How many distinct informers (watches) the factory holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the factory holds no informer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every informer's list+watch, whoever reads it. Rarely needed: informers
    /// that controllers read stop on their own when the last of those controllers
    /// stops (see [`Informer::reader`]).
    pub fn shutdown(&self) {
        for entry in self.lock().values() {
            (entry.stop)();
        }
    }
}
