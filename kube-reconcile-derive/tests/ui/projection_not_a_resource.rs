use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_reconcile::projection::Projection;

/// A nested type with metadata, not marked `nested`.
#[derive(Projection)]
#[projection(of = PodTemplateSpec)]
pub struct TemplateView {
    pub metadata: ObjectMeta,
}
fn main() {}
