#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Thing", namespace)]
pub struct ThingSpec {
    #[crd(imutable)]
    pub name: String,
}
fn main() {}
