#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Thing")]
pub struct ThingSpec {
    pub name: String,
    #[serde(flatten)]
    pub rest: std::collections::BTreeMap<String, String>,
}
fn main() {}
