//! The one pod cache every example controller reads: a typed projection of Pod with
//! just the fields the ReplicaSet, Deployment, Endpoints and EndpointSlice controllers
//! read, so a controller-manager running all four caches each pod once, lean.
//!
//! The field names mirror Pod's, so code reads `pod.spec`, `pod.status.phase` as on a
//! full Pod. The controllers never write a pod back from this view: pods are created
//! from a ReplicaSet's template as full `Pod`s, and adoption, release and deletion are
//! patches and deletes built from scratch.

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, ContainerStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube_reconcile::projection::Projection;

/// A cached pod.
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = Pod)]
pub struct PodView {
    /// Full metadata but `managedFields`, which no controller reads: skipped unbuilt.
    #[serde(deserialize_with = "kube_reconcile::projection::metadata_without_managed_fields")]
    pub metadata: ObjectMeta,
    /// What the controllers read of the spec.
    pub spec: Option<PodSpecView>,
    /// What the controllers read of the status.
    pub status: Option<PodStatusView>,
}

/// `spec`: where the pod runs, its DNS name, and the ports Services target by name.
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = PodSpec, nested)]
pub struct PodSpecView {
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub containers: Vec<ContainerView>,
    pub init_containers: Option<Vec<ContainerView>>,
}

/// A container's name, ports, and restart policy (`Always` marks a sidecar).
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = Container, nested)]
pub struct ContainerView {
    pub name: String,
    pub ports: Option<Vec<ContainerPort>>,
    pub restart_policy: Option<String>,
}

/// `status`: phase, conditions, addresses and restart counts.
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = PodStatus, nested)]
pub struct PodStatusView {
    pub phase: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    pub pod_ip: Option<String>,
    pub pod_ips: Option<Vec<PodIP>>,
    pub container_statuses: Option<Vec<RestartsView>>,
    pub init_container_statuses: Option<Vec<RestartsView>>,
}

/// A container status's name and restart count.
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = ContainerStatus, nested)]
pub struct RestartsView {
    pub name: String,
    pub restart_count: i32,
}

// The fields above mirror Pod's names and wrappers, so the library's helpers read them
// as they read a Pod.
kube_reconcile::impl_pod_fields!(PodView);

#[cfg(test)]
mod tests {
    // Imports inside the test: the benches compile this file with cfg(test) and no
    // test harness, where module-level imports would be unused.
    #[test]
    fn every_field_is_named_as_the_api_names_it() {
        use super::*;
        use kube_reconcile::projection::check_names;

        check_names::<PodView>().unwrap();
        check_names::<PodSpecView>().unwrap();
        check_names::<ContainerView>().unwrap();
        check_names::<PodStatusView>().unwrap();
        check_names::<RestartsView>().unwrap();
    }
}
