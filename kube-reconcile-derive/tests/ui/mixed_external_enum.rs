#![allow(unused_imports)]
use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
pub enum Source {
    None,
    Git { url: String },
}
fn main() {}
