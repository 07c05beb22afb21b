#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Thing")]
pub struct ThingSpec {
    #[crd(list_type = "set", list_map_keys("name"))]
    pub items: Vec<Item>,
}

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
}
fn main() {}
