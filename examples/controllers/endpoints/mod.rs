//! The legacy Endpoints controller, behaving like kube-controller-manager's
//! (pkg/controller/endpoint), built only on kube-reconcile's public API: one Endpoints
//! object per Service with a selector, ready pods under `addresses`, the others under
//! `notReadyAddresses` ([`subsets`]), at most 1,000 addresses (then annotated
//! over-capacity), removed when the Service goes.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::{EndpointAddress, EndpointPort, Endpoints, Service},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
};
use kube_reconcile::{
    ObjectKey,
    controller::{Controller, Source},
    events::EventType,
    informer::{Change, InformerFactory, Scope},
    reconcile::{Action, Reconcile, Request},
    service_endpoints::{
        self, LAST_CHANGE_TRIGGER_TIME, TriggerTimes, find_port, has_endpoint, is_ready,
        pod_reference, selects,
    },
    store::Store,
};

pub mod subsets;

use super::pod_view::PodView;
use subsets::{Entry, MAX_CAPACITY};

/// The name this controller reports in events and field managers.
pub const NAME: &str = "endpoints-controller";
/// The label marking Endpoints this kind of controller manages; the reference writes
/// `endpoint-controller`, ours writes [`MANAGED_BY`].
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// Our managed-by value.
pub const MANAGED_BY: &str = "endpoints-controller.kube-reconcile.dev";
/// Annotation set to `truncated` when a Service has more than 1,000 addresses.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// The label on Endpoints of a Service without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Event reason: creating the Endpoints failed.
pub const FAILED_TO_CREATE_ENDPOINT: &str = "FailedToCreateEndpoint";
/// Event reason: updating the Endpoints failed.
pub const FAILED_TO_UPDATE_ENDPOINT: &str = "FailedToUpdateEndpoint";

/// Why a sync failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{what} endpoints of service {key} failed")]
pub struct Error {
    key: ObjectKey,
    what: &'static str,
    #[source]
    source: kube::Error,
}

/// Shared state of the workers.
pub struct EndpointsController {
    client: Client,
    pods: Store<PodView>,
    endpoints: Store<Endpoints>,
    trigger_times: TriggerTimes,
}

/// Builds the controller for the Services, pods and Endpoints in `scope`: a pod change
/// maps to the Services whose selector matches its old or new labels (an index by
/// selector term), `batch_period` later (the reference's
/// `--endpoint-updates-batch-period`, zero by default); a deleted Endpoints object maps to the Service of its name.
pub fn controller(
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
    workers: usize,
    batch_period: Duration,
) -> Controller<Service, EndpointsController> {
    let builder = Controller::<Service>::builder(NAME, factory, scope);
    let services = builder.store::<Service>().expect("the primary type");
    let on_pod = service_endpoints::pod_mapper(&services);
    let pods = Source::new(scope).delay(batch_period);
    let builder = builder
        .watches::<PodView>(pods, on_pod)
        .watches::<Endpoints>(scope, |change: &Change<Endpoints>| match change {
            // Only a deletion: the reference does not resync on updates (its own writes
            // among them), which also decides when the trigger-time annotation goes.
            Change::Deleted(endpoints) => vec![ObjectKey::of(&**endpoints)],
            _ => Vec::new(),
        });
    let pods = builder.store::<PodView>().expect("watched above");
    let endpoints = builder.store::<Endpoints>().expect("watched above");
    builder
        .workers(workers)
        .rate_limiter(kube_reconcile::queue::client_go_default())
        .needs::<Endpoints>(&["create", "update", "delete"])
        .build(EndpointsController {
            client,
            pods,
            endpoints,
            trigger_times: TriggerTimes::default(),
        })
}

impl Reconcile<Service> for EndpointsController {
    type Error = Error;

    async fn reconcile(&self, request: Request<Service>) -> Result<Action, Error> {
        let (key, ctx) = (request.key, request.ctx);
        let api: Api<Endpoints> =
            Api::namespaced(self.client.clone(), key.namespace().unwrap_or_default());
        let error = |what: &'static str| {
            let key = key.clone();
            move |source| Error { key, what, source }
        };
        let Some(service) = request.object else {
            // The Service is gone: so are its endpoints.
            match api.delete(key.name(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(error("deleting")(source)),
            }
            self.trigger_times.forget(&key);
            return Ok(Action::Done);
        };
        let spec = service.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") || spec.selector.is_none() {
            return Ok(Action::Done);
        }
        let selected: Vec<Arc<PodView>> = self
            .pods
            .list_namespace(key.namespace().unwrap_or_default())
            .into_iter()
            .filter(|p| selects(&service, &**p))
            .collect();
        let trigger = self
            .trigger_times
            .compute(&key, &service, selected.iter().map(|p| &**p));
        let mut subsets = subsets::repack(entries(&service, &selected));

        let current = self.endpoints.get(&key);
        let unchanged = current.as_ref().is_some_and(|current| {
            same_subsets(current, &subsets)
                && labels_correct(current, &service)
                && capacity_correct(current)
        });
        if unchanged {
            return Ok(Action::Done);
        }
        let mut desired = match &current {
            Some(current) => (**current).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(service.name_any()),
                    namespace: service.namespace(),
                    ..ObjectMeta::default()
                },
                subsets: None,
            },
        };
        let annotations = desired.annotations_mut();
        match &trigger {
            Some(time) => {
                annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), time.0.to_string());
            }
            None => {
                annotations.remove(LAST_CHANGE_TRIGGER_TIME);
            }
        }
        if subsets::truncate(&mut subsets) {
            desired
                .annotations_mut()
                .insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            desired.annotations_mut().remove(OVER_CAPACITY);
        }
        desired.subsets = (!subsets.is_empty()).then_some(subsets);
        let mut labels = service.labels().clone();
        let headless = matches!(spec.cluster_ip.as_deref(), None | Some("") | Some("None"));
        if headless {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        } else {
            labels.remove(HEADLESS_LABEL);
        }
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        desired.metadata.labels = Some(labels);

        let params = PostParams {
            field_manager: Some(NAME.into()),
            ..PostParams::default()
        };
        let written = match &current {
            None => api.create(&params, &desired).await,
            Some(_) => api.replace(key.name(), &params, &desired).await,
        };
        match written {
            Ok(written) => {
                ctx.wrote(&written);
                Ok(Action::Done)
            }
            Err(source) => {
                let (reason, what) = match current {
                    None => (FAILED_TO_CREATE_ENDPOINT, "creating"),
                    Some(_) => (FAILED_TO_UPDATE_ENDPOINT, "updating"),
                };
                let note = format!(
                    "Failed to {} endpoint for service {key}: {source}",
                    &what[..what.len() - 3]
                );
                ctx.event(EventType::Warning, reason, &note);
                Err(error(what)(source))
            }
        }
    }
}

/// Every (address, port, readiness) the selected pods give: the pod's address of the
/// Service's first family, for each Service port that resolves on the pod.
fn entries(service: &Service, pods: &[Arc<PodView>]) -> Vec<Entry> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses == Some(true);
    let mut out = Vec::new();
    for pod in pods.iter().map(|p| &**p) {
        if !has_endpoint(pod, publish) {
            continue;
        }
        let Some(mut address) = pod_address(service, pod) else {
            continue;
        };
        let pod_spec = pod.spec.clone().unwrap_or_default();
        if pod_spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
            && pod_spec.subdomain.as_deref() == Some(service.name_any().as_str())
        {
            address.hostname = pod_spec.hostname.clone();
        }
        let ready = publish || is_ready(pod);
        let ports = spec.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            if spec.cluster_ip.as_deref() == Some("None") {
                out.push(Entry {
                    address,
                    port: None,
                    ready,
                });
            }
            continue;
        }
        for port in &ports {
            let Some(number) = find_port(pod, port) else {
                continue;
            };
            out.push(Entry {
                address: address.clone(),
                port: Some(EndpointPort {
                    name: port.name.clone().filter(|n| !n.is_empty()),
                    port: number,
                    protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: port.app_protocol.clone(),
                }),
                ready,
            });
        }
    }
    out
}

/// The pod's address in the Service's first IP family.
fn pod_address(service: &Service, pod: &PodView) -> Option<EndpointAddress> {
    let spec = service.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let want_v6 = match spec.ip_families.as_ref().and_then(|f| f.first()) {
        Some(family) => family == "IPv6",
        None => match spec.cluster_ip.as_deref() {
            Some(ip) if !ip.is_empty() && ip != "None" => ip.contains(':'),
            _ => status.pod_ip.as_deref().is_some_and(|ip| ip.contains(':')),
        },
    };
    let ip = status.pod_ips.iter().flatten().find_map(|ip| {
        let parsed: std::net::IpAddr = ip.ip.parse().ok()?;
        (parsed.is_ipv6() == want_v6).then(|| parsed.to_string())
    })?;
    Some(EndpointAddress {
        ip,
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    })
}

fn same_subsets(
    current: &Endpoints,
    subsets: &[k8s_openapi::api::core::v1::EndpointSubset],
) -> bool {
    let strip = |list: &[k8s_openapi::api::core::v1::EndpointSubset]| {
        let mut list = list.to_vec();
        for subset in &mut list {
            for address in subset
                .addresses
                .iter_mut()
                .flatten()
                .chain(subset.not_ready_addresses.iter_mut().flatten())
            {
                if let Some(target) = address.target_ref.as_mut() {
                    target.resource_version = None;
                }
            }
        }
        list
    };
    let existing = current.subsets.clone().unwrap_or_default();
    strip(&existing) == strip(subsets)
}

fn labels_correct(current: &Endpoints, service: &Service) -> bool {
    let labels = current.labels();
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return false;
    }
    let own: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(k, _)| *k != MANAGED_BY_LABEL && *k != HEADLESS_LABEL)
        .collect();
    own.len() == service.labels().len()
        && own
            .iter()
            .all(|(k, v)| service.labels().get(*k) == Some(*v))
}

fn capacity_correct(current: &Endpoints) -> bool {
    let count: usize = current
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    count <= MAX_CAPACITY && !current.annotations().contains_key(OVER_CAPACITY)
}
