use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
use kube_reconcile::projection::Projection;

#[derive(Projection)]
#[projection(of = PodStatus, nested)]
pub struct StatusView {
    /// The source has `Option<String>`.
    pub phase: String,
    /// The source has `Option<String>`, not a list.
    pub pod_ip: Option<Vec<String>>,
    /// The source has `Option<Vec<ContainerStatus>>`; `i32` reads none of it.
    pub container_statuses: Option<Vec<i32>>,
}

#[derive(Projection)]
#[projection(of = ContainerStatus, nested)]
pub struct Restarts {
    /// The source has `i32`.
    pub restart_count: u64,
}
fn main() {}
