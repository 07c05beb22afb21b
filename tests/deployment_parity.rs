//! Deployment parity: every scenario runs against kube-controller-manager's
//! deployment-controller and replicaset-controller and against kube-reconcile's two
//! example controllers, and the normalised results must be equal — the final objects,
//! the events, and every size each ReplicaSet went through (see
//! tests/differential/mod.rs). Pods on the hand-driven Node become ready only when a
//! step says so, which makes each rollout's fenceposts deterministic.

#[path = "../examples/controllers/mod.rs"]
mod controllers;
mod differential;
mod support;

use std::time::Duration;

use differential::{Env, Refusal, Refused, merge, run_deployment};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube_reconcile::testing::MANUAL_NODE_NAME;
use serde_json::{Value, json};

/// A Deployment manifest: selector `app=<name>`, one container, pods on the manual Node
/// when `manual` is set; `extra` is merged in.
fn deployment(name: &str, replicas: i32, manual: bool, extra: Value) -> Value {
    let mut manifest = json!({
        "metadata": {"name": name, "annotations": {"team": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        }
    });
    if manual {
        manifest["spec"]["template"]["spec"]["nodeName"] = json!(MANUAL_NODE_NAME);
    }
    merge(&mut manifest, extra);
    manifest
}

fn image(tag: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": format!("registry.k8s.io/pause:{tag}")}]}}}})
}

fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"spec": {"strategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
}

impl Env {
    /// Lets the side settle, then makes one waiting pod on the manual Node ready, until
    /// none waits or `steps` pods were made ready.
    async fn step_rollout(&self, steps: usize) {
        for _ in 0..steps {
            self.wait_quiet().await;
            if !self.make_one_manual_pod_ready().await {
                return;
            }
        }
        self.wait_quiet().await;
    }
}

#[tokio::test]
async fn a_new_deployment_completes() {
    run_deployment("new", |env: Env| async move {
        env.create_deployment(deployment("web", 3, false, json!({})))
            .await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_rolling_update_keeps_within_surge_and_unavailability() {
    run_deployment("rolling", |env: Env| async move {
        let extra = rolling(json!(1), json!(1));
        env.create_deployment(deployment("web", 4, true, extra))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", image("3.9")).await;
        env.step_rollout(20).await;
        env
    })
    .await;
}

#[tokio::test]
async fn percentages_round_surge_up_and_unavailability_down() {
    run_deployment("percentages", |env: Env| async move {
        let extra = rolling(json!("30%"), json!("30%"));
        env.create_deployment(deployment("web", 5, true, extra))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", image("3.9")).await;
        env.step_rollout(20).await;
        env
    })
    .await;
}

#[tokio::test]
async fn recreate_waits_for_old_pods_to_stop() {
    run_deployment("recreate", |env: Env| async move {
        // Old pods that take their time to stop: nothing stops them on the manual Node
        // until the step deletes them for good.
        let extra = json!({"spec": {"strategy": {"type": "Recreate"},
            "template": {"spec": {"terminationGracePeriodSeconds": 30}}}});
        env.create_deployment(deployment("web", 2, true, extra))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", image("3.9")).await;
        env.wait_quiet().await;
        let old = env.pods().list(&ListParams::default()).await.unwrap();
        assert!(
            old.items
                .iter()
                .all(|p| p.metadata.deletion_timestamp.is_some())
        );
        for pod in old.items {
            let name = pod.metadata.name.unwrap();
            let now = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            env.pods().delete(&name, &now).await.unwrap();
        }
        env.step_rollout(6).await;
        env
    })
    .await;
}

#[tokio::test]
async fn paused_deployments_scale_but_do_not_roll_until_resumed() {
    run_deployment("paused", |env: Env| async move {
        env.create_deployment(deployment("web", 2, true, json!({})))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", json!({"spec": {"paused": true}}))
            .await;
        env.wait_quiet().await;
        env.patch_deployment("web", image("3.9")).await;
        env.patch_deployment("web", json!({"spec": {"replicas": 4}}))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", json!({"spec": {"paused": false}}))
            .await;
        env.step_rollout(12).await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_rollout_that_never_becomes_ready_exceeds_its_deadline() {
    run_deployment("deadline", |env: Env| async move {
        let extra = json!({"spec": {"progressDeadlineSeconds": 2}});
        env.create_deployment(deployment("web", 2, true, extra))
            .await;
        // Nothing makes the pods ready: the deadline passes. Each side is snapshotted
        // once its own controller has said so (the two sides' clocks start apart).
        let deadline_exceeded = async || {
            let web = env.deployments().get("web").await.unwrap();
            let conditions = web.status.and_then(|s| s.conditions).unwrap_or_default();
            conditions.iter().any(|c| {
                c.type_.as_deref() == Some("Progressing")
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        };
        let started = std::time::Instant::now();
        while !deadline_exceeded().await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{:?} side: no ProgressDeadlineExceeded within 60 s",
                env.side
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        env
    })
    .await;
}

#[tokio::test]
async fn overlapping_deployments_keep_their_own_replica_sets() {
    run_deployment("overlap", |env: Env| async move {
        let both = json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}}}});
        let mut second = deployment("other", 2, false, both.clone());
        merge(&mut second, image("3.9"));
        env.create_deployment(deployment("web", 2, false, both))
            .await;
        env.create_deployment(second).await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_hash_collision_does_not_block_the_rollout() {
    run_deployment("collision", |env: Env| async move {
        env.create_deployment(deployment("web", 2, false, json!({})))
            .await;
        env.wait_quiet().await;
        // Someone edits the ReplicaSet's template: its name (the template's hash) now
        // holds another template, and the Deployment must pick another name.
        let sets = env
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap();
        let name = sets.items[0].metadata.name.clone().unwrap();
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}});
        env.replica_sets()
            .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn replicas_and_template_changed_together() {
    run_deployment("scaled-rollout", |env: Env| async move {
        env.create_deployment(deployment("web", 3, true, json!({})))
            .await;
        env.step_rollout(20).await;
        let mut change = image("3.9");
        merge(&mut change, json!({"spec": {"replicas": 5}}));
        env.patch_deployment("web", change).await;
        env.step_rollout(20).await;
        env
    })
    .await;
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional() {
    run_deployment("proportional", |env: Env| async move {
        let extra = rolling(json!(3), json!(2));
        env.create_deployment(deployment("web", 10, true, extra))
            .await;
        env.step_rollout(20).await;
        // The new pods never become ready: the rollout stops half-way...
        env.patch_deployment("web", image("3.9")).await;
        env.wait_quiet().await;
        // ...and the scale-up is shared between old and new ReplicaSets.
        env.patch_deployment("web", json!({"spec": {"replicas": 15}}))
            .await;
        env.wait_quiet().await;
        env.patch_deployment("web", json!({"spec": {"replicas": 7}}))
            .await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_third_template_mid_rollout_rolls_over() {
    run_deployment("rollover", |env: Env| async move {
        let extra = rolling(json!(2), json!(1));
        env.create_deployment(deployment("web", 4, true, extra))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", image("3.9")).await;
        env.wait_quiet().await;
        env.patch_deployment("web", image("3.8")).await;
        env.step_rollout(20).await;
        env
    })
    .await;
}

#[tokio::test]
async fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    run_deployment("history", |env: Env| async move {
        let extra = json!({"spec": {"revisionHistoryLimit": 1}});
        env.create_deployment(deployment("web", 2, true, extra))
            .await;
        env.step_rollout(20).await;
        for tag in ["3.9", "3.8", "3.7"] {
            env.patch_deployment("web", image(tag)).await;
            env.step_rollout(12).await;
        }
        env
    })
    .await;
}

#[tokio::test]
async fn replica_sets_are_adopted_and_released() {
    run_deployment("adoption", |env: Env| async move {
        // An orphan with the Deployment's template (and a hash label of its own) is
        // adopted as the new ReplicaSet; one that stops matching is released.
        let orphan = json!({
            "metadata": {"name": "web-orphan", "labels": {"app": "web", "pod-template-hash": "orphan"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "orphan"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "pod-template-hash": "orphan"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                             "terminationGracePeriodSeconds": 0},
                },
            },
        });
        env.create_rs(orphan).await;
        env.let_caches_catch_up().await;
        env.create_deployment(deployment("web", 2, false, json!({}))).await;
        env.wait_quiet().await;
        let release = json!({"metadata": {"labels": {"app": "elsewhere"}}});
        env.patch_rs("web-orphan", release).await;
        env
    })
    .await;
}

#[tokio::test]
async fn the_scale_subresource_scales() {
    run_deployment("scale-subresource", |env: Env| async move {
        env.create_deployment(deployment("web", 1, false, json!({})))
            .await;
        env.wait_quiet().await;
        let scale = json!({"spec": {"replicas": 3}});
        env.deployments()
            .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn the_rollback_annotation_rolls_back() {
    run_deployment("rollback", |env: Env| async move {
        env.create_deployment(deployment("web", 2, true, json!({})))
            .await;
        env.step_rollout(20).await;
        env.patch_deployment("web", image("3.9")).await;
        env.step_rollout(12).await;
        let back = json!({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "0"}}});
        env.patch_deployment("web", back).await;
        env.step_rollout(12).await;
        // A revision that does not exist is reported and forgotten.
        let nowhere =
            json!({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "42"}}});
        env.patch_deployment("web", nowhere).await;
        env
    })
    .await;
}

#[tokio::test]
async fn invalid_deployments_are_refused_by_the_api_server() {
    run_deployment("bad-input", |env: Env| async move {
        for (what, extra) in [
            (
                "a maxSurge that is no number",
                rolling(json!("many"), json!(1)),
            ),
            (
                "a selector that misses the template",
                json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}),
            ),
            (
                "an empty selector",
                json!({"spec": {"selector": {"matchLabels": null}}}),
            ),
        ] {
            let manifest = deployment("web", 1, false, extra);
            let d: k8s_openapi::api::apps::v1::Deployment =
                serde_json::from_value(manifest).unwrap();
            let error = env
                .deployments()
                .create(&Default::default(), &d)
                .await
                .expect_err(what);
            let kube::Error::Api(status) = error else {
                panic!("{what}: {error}")
            };
            assert_eq!(status.code, 422, "{what}: {}", status.message);
        }
        env
    })
    .await;
}

#[tokio::test]
async fn a_refused_replica_set_is_reported_and_retried_with_backoff() {
    run_deployment("create-refused", |env: Env| async move {
        let refusal = Refusal::install(&env, Refused::ReplicaSets).await;
        env.create_deployment(deployment("web", 2, false, json!({})))
            .await;
        let api = env.deployments();
        support::wait_for(
            &api,
            "web",
            "a ReplicaSetCreateError condition",
            |d: Option<&Deployment>| {
                d.and_then(|d| {
                    d.status
                        .as_ref()?
                        .conditions
                        .as_ref()?
                        .iter()
                        .find(|c| c.reason.as_deref() == Some("ReplicaSetCreateError"))
                })
                .is_some()
            },
        )
        .await;
        refusal.remove(&env).await;
        env.wait_quiet().await;
        env.drop_events_after_checking("ReplicaSetCreateError")
            .await;
        env
    })
    .await;
}
