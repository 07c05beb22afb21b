#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Thing")]
pub struct ThingSpec {
    pub range: Option<(u16, u16)>,
}
fn main() {}
