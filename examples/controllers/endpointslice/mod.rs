//! The EndpointSlice controller, behaving like kube-controller-manager's
//! (pkg/controller/endpointslice and k8s.io/endpointslice), built only on
//! kube-reconcile's public API.
//!
//! One sync function, [`EndpointSliceController::reconcile`], reads top to bottom:
//! skip Services without a selector (and ExternalName ones); wait while a slice this
//! controller deleted is still cached; compute each matching pod's endpoint per address
//! type and port set ([`endpoints`]); pack them into slices ([`packing`]); write the
//! creates, updates and deletes. Slices managed by others are never touched.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::{
        core::v1::{Node, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
};
use kube_reconcile::{
    ObjectKey,
    context::Context,
    controller::{Controller, Source},
    events::EventType,
    informer::{Change, InformerFactory, Scope},
    reconcile::{Action, OnError, Reconcile, Request},
    service_endpoints::{self, LAST_CHANGE_TRIGGER_TIME, TriggerTimes, has_endpoint, selects},
    store::Store,
};

pub mod endpoints;
pub mod packing;

use super::pod_view::PodView;
use endpoints::{MANAGED_BY_LABEL, SERVICE_NAME_LABEL, ZONE_LABEL};
use packing::{Desired, Packer, Plan};

/// The name this controller reports in events and field managers.
pub const NAME: &str = "endpointslice-controller";
/// The managed-by label value on the slices this controller writes (the reference
/// writes `endpointslice-controller.k8s.io`; a second controller must not claim it).
pub const MANAGED_BY: &str = "endpointslice-controller.kube-reconcile.dev";
/// The default and the reference's flag `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Slice writes of one sync in flight at once.
const CONCURRENT_WRITES: usize = 10;

/// Runs `writes` with up to [`CONCURRENT_WRITES`] in flight; every result, in any order.
async fn together<T>(writes: impl Iterator<Item = impl Future<Output = T>>) -> Vec<T> {
    use futures::StreamExt;
    futures::stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await
}

/// The least delay before a change to one of our slices resyncs its Service, as the
/// reference's: changes to several slices of one Service end in one sync.
pub const SLICE_CHANGE_MIN_SYNC_DELAY: Duration = Duration::from_secs(1);
/// Event reason: writing slices failed.
pub const FAILED_TO_UPDATE_ENDPOINT_SLICES: &str = "FailedToUpdateEndpointSlices";

/// Our slices by `namespace/service-name`.
const SERVICE_SLICES_INDEX: &str = "service-slices";

/// Why a sync failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A slice write failed.
    #[error("{what} EndpointSlice for service {key} failed")]
    Api {
        /// The Service.
        key: ObjectKey,
        /// create, update or delete.
        what: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Shared state of the workers.
pub struct EndpointSliceController {
    client: Client,
    pods: Store<PodView>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    max_per_slice: usize,
    /// Slices this controller deleted, by Service, until the cache stops showing them.
    deleted: Mutex<HashMap<ObjectKey, HashSet<String>>>,
    own_writes: Arc<OwnWrites>,
    trigger_times: TriggerTimes,
}

/// The resourceVersion of this controller's last write of each of its slices, by UID.
/// A slice change carrying one of them is the watch echoing our own write: it needs no
/// resync (the reference's EndpointSliceTracker skips these the same way).
#[derive(Debug, Default)]
struct OwnWrites(Mutex<HashMap<String, String>>);

impl OwnWrites {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrote(&self, slice: &EndpointSlice) {
        if let (Some(uid), Some(version)) = (slice.uid(), slice.resource_version()) {
            self.lock().insert(uid, version);
        }
    }

    /// Whether `change` only shows what this controller wrote last (deletions never do).
    fn is_echo(&self, change: &Change<EndpointSlice>) -> bool {
        let slice = match change {
            Change::Added(slice) | Change::Updated { new: slice, .. } => slice,
            Change::Deleted(slice) => {
                if let Some(uid) = slice.uid() {
                    self.lock().remove(&uid);
                }
                return false;
            }
        };
        let (Some(uid), Some(version)) = (slice.uid(), slice.resource_version()) else {
            return false;
        };
        self.lock().get(&uid) == Some(&version)
    }
}

/// Builds the controller for the Services, pods and slices in `scope` (Nodes are read
/// cluster-wide for zones): a pod change maps to the Services whose selector matches
/// its old or new labels, `batch_period` later (the reference's
/// `--endpointslice-updates-batch-period`, zero by default); a change to one of our
/// slices that is not our own write maps to its Service, after the greater of
/// [`SLICE_CHANGE_MIN_SYNC_DELAY`] and `batch_period`.
pub fn controller(
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
    workers: usize,
    max_per_slice: usize,
    batch_period: Duration,
) -> Controller<Service, EndpointSliceController> {
    let builder = Controller::<Service>::builder(NAME, factory, scope);
    let services = builder.store::<Service>().expect("the primary type");
    let on_pod = service_endpoints::pod_mapper(&services);
    let own_writes = Arc::new(OwnWrites::default());
    let slice_changes = {
        let own_writes = own_writes.clone();
        Source::new(scope)
            .delay(batch_period.max(SLICE_CHANGE_MIN_SYNC_DELAY))
            .filter(move |change| !own_writes.is_echo(change))
    };
    let builder = builder
        .watches::<PodView>(Source::new(scope).delay(batch_period), on_pod)
        .watches::<EndpointSlice>(slice_changes, slice_event)
        .reads::<Node>(&Scope::all());
    let pods = builder.store::<PodView>().expect("watched above");
    let slices = builder.store::<EndpointSlice>().expect("watched above");
    slices.add_index(SERVICE_SLICES_INDEX, |slice: &EndpointSlice| {
        let labels = slice.labels();
        if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
            return Vec::new();
        }
        let service = labels.get(SERVICE_NAME_LABEL);
        service
            .map(|s| format!("{}/{s}", slice.namespace().unwrap_or_default()))
            .into_iter()
            .collect()
    });
    let nodes = builder.store::<Node>().expect("read above");
    builder
        .workers(workers)
        .rate_limiter(kube_reconcile::queue::client_go_default())
        .needs::<EndpointSlice>(&["create", "update", "delete"])
        .build(EndpointSliceController {
            client,
            pods,
            nodes,
            slices,
            max_per_slice,
            deleted: Mutex::default(),
            own_writes,
            trigger_times: TriggerTimes::default(),
        })
}

/// A change to one of our slices, not our own write: its Service resyncs (someone
/// edited or deleted it).
fn slice_event(change: &Change<EndpointSlice>) -> Vec<ObjectKey> {
    kube_reconcile::controller::handler::states(change)
        .filter(|s| s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY))
        .filter_map(|s| {
            let service = s.labels().get(SERVICE_NAME_LABEL)?;
            Some(ObjectKey::new(s.namespace().as_deref(), service))
        })
        .collect()
}

impl Reconcile<Service> for EndpointSliceController {
    type Error = Error;

    async fn reconcile(&self, request: Request<Service>) -> Result<Action, Error> {
        let (key, ctx) = (request.key, request.ctx);
        let Some(service) = request.object else {
            // The garbage collector removes the slices with their owner.
            self.lock_deleted().remove(&key);
            self.trigger_times.forget(&key);
            return Ok(Action::Done);
        };
        let spec = service.spec.clone().unwrap_or_default();
        let selector = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() || spec.type_.as_deref() == Some("ExternalName") {
            return Ok(Action::Done);
        }
        let existing = self.our_slices(&key);
        if self.still_cached_after_delete(&key, &existing) {
            return Ok(Action::Requeue);
        }

        let namespace = key.namespace().unwrap_or_default();
        let selected: Vec<Arc<PodView>> = self
            .pods
            .list_namespace(namespace)
            .into_iter()
            .filter(|p| selects(&service, &**p))
            .collect();
        let trigger = self
            .trigger_times
            .compute(&key, &service, selected.iter().map(|p| &**p));
        let pods: Vec<Arc<PodView>> = selected
            .into_iter()
            .filter(|p| has_endpoint(&**p, true))
            .collect();
        let packer = Packer {
            service: &service,
            managed_by: MANAGED_BY,
            max_per_slice: self.max_per_slice,
        };
        let mut plan = Plan::default();
        let types = endpoints::address_types(&service);
        let other_types = existing
            .iter()
            .filter(|s| !types.contains(&s.address_type.as_str()));
        plan.delete.extend(other_types.map(|s| (**s).clone()));
        for address_type in types {
            let desired = self.desired(&service, &pods, address_type);
            let of_type: Vec<&EndpointSlice> = existing
                .iter()
                .filter(|s| s.address_type == address_type)
                .map(|s| &**s)
                .collect();
            let part = packer.plan(address_type, &of_type, desired);
            plan.create.extend(part.create);
            plan.update.extend(part.update);
            plan.delete.extend(part.delete);
        }
        if let Err(error) = self.write(&ctx, &key, &service, plan, trigger).await {
            let note = format!("Error updating Endpoint Slices for Service {key}: {error}");
            ctx.event(EventType::Warning, FAILED_TO_UPDATE_ENDPOINT_SLICES, &note);
            return Err(error);
        }
        Ok(Action::Done)
    }

    fn error_policy(&self, _error: &Error, _key: &ObjectKey) -> OnError {
        OnError::Backoff
    }
}

impl EndpointSliceController {
    fn lock_deleted(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, HashSet<String>>> {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn our_slices(&self, key: &ObjectKey) -> Vec<Arc<EndpointSlice>> {
        let value = format!("{}/{}", key.namespace().unwrap_or_default(), key.name());
        self.slices
            .by_index(SERVICE_SLICES_INDEX, &value)
            .unwrap_or_default()
    }

    /// Whether a slice this controller deleted is still in the cache: acting on it
    /// would write from a stale view (the reference's slice tracker says the same).
    fn still_cached_after_delete(&self, key: &ObjectKey, existing: &[Arc<EndpointSlice>]) -> bool {
        let mut deleted = self.lock_deleted();
        let Some(uids) = deleted.get_mut(key) else {
            return false;
        };
        let cached: HashSet<String> = existing.iter().filter_map(|s| s.uid()).collect();
        uids.retain(|uid| cached.contains(uid));
        let stale = !uids.is_empty();
        if !stale {
            deleted.remove(key);
        }
        stale
    }

    /// Each pod's endpoint for `address_type`, grouped by the pod's resolved port set.
    fn desired(
        &self,
        service: &Service,
        pods: &[Arc<PodView>],
        address_type: &str,
    ) -> BTreeMap<String, Desired> {
        let mut desired: BTreeMap<String, Desired> = BTreeMap::new();
        let publish = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            == Some(true);
        for pod in pods {
            let ports = endpoints::endpoint_ports(service, pod);
            let key = endpoints::port_key(&ports);
            let node = self.node_of(pod);
            if node.is_none() && !publish {
                // As the reference: a pod on a Node not (yet) known is left out.
                continue;
            }
            let zone = node.and_then(|n| n.labels().get(ZONE_LABEL).cloned());
            let endpoint = endpoints::pod_endpoint(pod, zone, service, address_type);
            let entry = desired.entry(key).or_insert_with(|| Desired {
                ports,
                endpoints: Vec::new(),
            });
            if !endpoint.addresses.is_empty() {
                entry.endpoints.push(endpoint);
            }
        }
        desired
    }

    fn node_of(&self, pod: &PodView) -> Option<Arc<Node>> {
        let node = pod.spec.as_ref()?.node_name.clone()?;
        self.nodes.get(&ObjectKey::new(None, &node))
    }

    /// Creates, updates and deletes as planned, stamping the trigger time on what it
    /// writes; records every write so the next sync waits for the cache to show it.
    async fn write(
        &self,
        ctx: &Context,
        key: &ObjectKey,
        service: &Service,
        plan: Plan,
        trigger: Option<Time>,
    ) -> Result<(), Error> {
        let api: Api<EndpointSlice> =
            Api::namespaced(self.client.clone(), key.namespace().unwrap_or_default());
        let params = PostParams {
            field_manager: Some(NAME.into()),
            ..PostParams::default()
        };
        let error = |what| {
            move |source| Error::Api {
                key: key.clone(),
                what,
                source,
            }
        };
        let stamp = |mut slice: EndpointSlice| {
            let annotations = slice.annotations_mut();
            match &trigger {
                Some(time) => {
                    annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), time.0.to_string());
                }
                None => {
                    annotations.remove(LAST_CHANGE_TRIGGER_TIME);
                }
            }
            slice
        };
        // Each phase's writes go out together (a sync touching many slices takes one
        // round trip, not one per slice); the phases keep the reference's order.
        let record = |results: Vec<Result<EndpointSlice, kube::Error>>, what| {
            let mut failed = None;
            for result in results {
                match result {
                    Ok(written) => {
                        self.own_writes.wrote(&written);
                        ctx.wrote(&written);
                    }
                    Err(source) => failed = failed.or(Some(error(what)(source))),
                }
            }
            failed.map_or(Ok(()), Err)
        };
        if service.metadata.deletion_timestamp.is_none() {
            let creates = plan.create.into_iter().map(|slice| {
                let slice = stamp(slice);
                let (api, params) = (&api, &params);
                async move { api.create(params, &slice).await }
            });
            record(together(creates).await, "create")?;
        }
        let updates = plan.update.into_iter().map(|slice| {
            let slice = stamp(slice);
            let (api, params) = (&api, &params);
            async move { api.replace(&slice.name_any(), params, &slice).await }
        });
        record(together(updates).await, "update")?;
        for slice in plan.delete {
            match api
                .delete(&slice.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {
                    if let Some(uid) = slice.uid() {
                        self.lock_deleted()
                            .entry(key.clone())
                            .or_default()
                            .insert(uid);
                    }
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(error("delete")(source)),
            }
        }
        Ok(())
    }
}
