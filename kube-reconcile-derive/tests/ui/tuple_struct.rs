#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
pub struct Pair(pub String, pub i32);
fn main() {}
