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
    let snapshot = run("burst", |env: Env| async move {
        env.create_rs(replica_set("web", 1000, true, json!({})))
            .await;
        env
    })
    .await;
    // Both sides' event trails: client-go's correlator writes 9 single events, then
    // combines the rest into one, and stops at 25 per object.
    let events = snapshot["events"]["web"].as_array().unwrap();
    let single = json!({"type": "Normal", "reason": "SuccessfulCreate", "message": "Created pod: web-*", "count": 1});
    assert_eq!(
        events.iter().filter(|e| **e == single).count(),
        9,
        "{events:#?}"
    );
    let combined = json!({
        "type": "Normal",
        "reason": "SuccessfulCreate",
        "message": "(combined from similar events): Created pod: web-*",
        "count": 16,
    });
    assert!(events.contains(&combined), "{events:#?}");
}
