use k8s_openapi::api::core::v1::PodSpec;
use kube_reconcile::projection::Projection;

#[derive(Projection)]
#[projection(of = PodSpec, nested)]
pub struct SpecView {
    pub node_name: Option<String>,
    pub node: Option<String>,
}
fn main() {}
