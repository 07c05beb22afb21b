#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(version = "v1", kind = "Thing")]
pub struct ThingSpec {
    pub name: String,
}
fn main() {}
