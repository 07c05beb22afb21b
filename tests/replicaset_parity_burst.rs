//! ReplicaSet parity under load: a burst of 1,000 replicas. Kept in its own test binary
//! (its own pair of control planes) so the load does not delay the other scenarios'
//! events on the shared kube-controller-manager.

#[path = "../examples/controllers/mod.rs"]
mod controllers;
mod differential;
mod support;

use differential::{Env, replica_set, run};
use serde_json::json;

#[tokio::test]
async fn a_burst_of_a_thousand_replicas_is_created_without_over_creation() {
    run("burst", |env: Env| async move {
        env.create_rs(replica_set("web", 1000, true, json!({})))
            .await;
        env
    })
    .await;
}
