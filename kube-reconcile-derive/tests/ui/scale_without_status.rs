#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Thing",
      scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"))]
pub struct ThingSpec {
    pub replicas: i32,
}
fn main() {}
