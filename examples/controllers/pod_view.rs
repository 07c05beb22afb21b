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
use kube_reconcile::{projection::Projection, service_endpoints::PodFields};

/// A cached pod.
#[derive(Projection, Clone, Debug, Default)]
#[projection(of = Pod)]
pub struct PodView {
    /// Full metadata (`managedFields` dropped by the informer).
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

impl PodFields for PodView {
    fn phase(&self) -> Option<&str> {
        self.status.as_ref()?.phase.as_deref()
    }

    fn conditions(&self) -> &[PodCondition] {
        let status = self.status.as_ref();
        status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
    }

    fn pod_ip(&self) -> Option<&str> {
        self.status.as_ref()?.pod_ip.as_deref()
    }

    fn pod_ips(&self) -> &[PodIP] {
        let status = self.status.as_ref();
        status
            .and_then(|s| s.pod_ips.as_deref())
            .unwrap_or_default()
    }

    fn serving_ports(&self) -> impl Iterator<Item = &ContainerPort> {
        let spec = self.spec.as_ref();
        let containers = spec.into_iter().flat_map(|s| &s.containers);
        let sidecars = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        containers
            .chain(sidecars)
            .flat_map(|c| c.ports.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use kube_reconcile::projection::check_names;

    use super::*;

    #[test]
    fn every_field_is_named_as_the_api_names_it() {
        check_names::<PodView>().unwrap();
        check_names::<PodSpecView>().unwrap();
        check_names::<ContainerView>().unwrap();
        check_names::<PodStatusView>().unwrap();
        check_names::<RestartsView>().unwrap();
    }
}
