#![allow(unused_imports)]
use k8s_openapi::api::core::v1::Pod;
use kube_reconcile::projection::Projection;

#[derive(Projection)]
#[projection(of = Pod)]
pub struct PodView {
    pub spec: Option<k8s_openapi::api::core::v1::PodSpec>,
}
fn main() {}
