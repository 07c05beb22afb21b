#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Number(i64),
    Name(String),
}
fn main() {}
