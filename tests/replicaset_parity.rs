//! ReplicaSet parity: every scenario runs against kube-controller-manager's
//! replicaset-controller and against kube-reconcile's example controller, and the
//! normalised results must be equal (see tests/differential/mod.rs).

#[path = "../examples/controllers/mod.rs"]
mod controllers;
mod differential;
mod support;

use differential::{Env, OTHER_MANUAL_NODE, Refusal, Refused, merge, pod, replica_set, run};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition};
use kube::ResourceExt;
use kube_reconcile::testing::{MANUAL_NODE_NAME, PodState};
use serde_json::json;

/// An owner reference to something that is not a ReplicaSet we manage.
fn foreign_owner(controller: bool) -> serde_json::Value {
    json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "someone",
            "uid": "00000000-0000-0000-0000-000000000001", "controller": controller}])
}

#[tokio::test]
async fn scale_with_status_tracking() {
    run("scale", |env: Env| async move {
        env.create_rs(replica_set("web", 2, false, json!({}))).await;
        env.wait_quiet().await;
        env.scale_through("web", &[3, 0, 2]).await;
        env
    })
    .await;
}

#[tokio::test]
async fn scale_subresource() {
    run("scale-subresource", |env: Env| async move {
        env.create_rs(replica_set("web", 1, false, json!({}))).await;
        env.wait_quiet().await;
        let scale = json!({"spec": {"replicas": 4}});
        env.replica_sets()
            .patch_scale("web", &Default::default(), &kube::api::Patch::Merge(&scale))
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn adopts_orphans_beside_non_controller_owners_and_hands_off_others_pods() {
    run("adoption", |env: Env| async move {
        env.create_pod(pod("orphan", "web", json!(null))).await;
        env.create_pod(pod("shared", "web", foreign_owner(false)))
            .await;
        env.create_pod(pod("taken", "web", foreign_owner(true)))
            .await;
        env.let_caches_catch_up().await;
        env.create_rs(replica_set("web", 3, false, json!({}))).await;
        env
    })
    .await;
}

#[tokio::test]
async fn extra_orphans_are_adopted_then_deleted_down_to_replicas() {
    run("extra-orphans", |env: Env| async move {
        // Distinct states decide the order: pending, then not ready, go first.
        for name in ["orphan-pending", "orphan-not-ready", "orphan-ready"] {
            let mut manifest = pod(name, "web", json!(null));
            merge(
                &mut manifest,
                json!({"spec": {"nodeName": MANUAL_NODE_NAME}}),
            );
            env.create_pod(manifest).await;
        }
        env.drive("orphan-not-ready", PodState::not_ready(env.ip()))
            .await;
        env.drive("orphan-ready", PodState::ready(env.ip())).await;
        env.let_caches_catch_up().await;
        env.create_rs(replica_set("web", 1, true, json!({}))).await;
        env
    })
    .await;
}

#[tokio::test]
async fn without_a_controller_no_pods_count_as_sharing_a_node() {
    run("no-colocation", |env: Env| async move {
        env.create_other_manual_node().await;
        // Two orphans share the manual Node; the one alone on the other Node has
        // restarted. A ReplicaSet owned by no Deployment has no related pods, so
        // sharing a Node does not rank first: the most restarts do.
        for (name, node, restarts) in [
            ("shared-1", MANUAL_NODE_NAME, 0),
            ("shared-2", MANUAL_NODE_NAME, 0),
            ("alone", OTHER_MANUAL_NODE, 3),
        ] {
            let mut manifest = pod(name, "web", json!(null));
            merge(&mut manifest, json!({"spec": {"nodeName": node}}));
            env.create_pod(manifest).await;
            let state = PodState::not_ready(env.ip()).with_restarts(restarts);
            env.drive(name, state).await;
        }
        env.let_caches_catch_up().await;
        env.create_rs(replica_set("web", 2, true, json!({}))).await;
        env
    })
    .await;
}

#[tokio::test]
async fn releases_on_label_change_and_re_adopts_on_match() {
    run("release", |env: Env| async move {
        env.create_rs(replica_set("web", 2, false, json!({}))).await;
        env.wait_quiet().await;
        let first = env.pods_by_age("app=web").await[0]
            .metadata
            .name
            .clone()
            .unwrap();
        env.patch_pod(
            &first,
            json!({"metadata": {"labels": {"app": "elsewhere"}}}),
        )
        .await;
        env.wait_quiet().await;
        env.patch_pod(&first, json!({"metadata": {"labels": {"app": "web"}}}))
            .await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_released_pod_is_adopted_by_the_replica_set_it_now_matches() {
    run("handover", |env: Env| async move {
        env.create_rs(replica_set("web", 2, true, json!({}))).await;
        env.create_rs(replica_set("other", 1, true, json!({})))
            .await;
        env.wait_quiet().await;
        for p in env.pods_by_age("app=web").await {
            env.drive(&p.name_any(), PodState::ready(env.ip())).await;
        }
        env.wait_quiet().await;
        // "web" releases its pod (and replaces it); the release alone must bring
        // "other" to adopt it, which then deletes its own pod (still Pending) as surplus.
        let first = env.pods_by_age("app=web").await[0].name_any();
        env.patch_pod(&first, json!({"metadata": {"labels": {"app": "other"}}}))
            .await;
        env
    })
    .await;
}

#[tokio::test]
async fn overlapping_selectors_keep_their_own_pods() {
    run("overlap", |env: Env| async move {
        env.create_rs(replica_set("web", 2, false, json!({}))).await;
        env.wait_quiet().await;
        // Selects every pod of "web" too, but must not take them.
        let wide = replica_set("wide", 1, false, json!({}));
        let mut wide = wide;
        merge(
            &mut wide,
            json!({"spec": {
                "selector": {"matchLabels": null, "matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["web", "wide"]}]},
            }}),
        );
        env.create_rs(wide).await;
        env
    })
    .await;
}

#[tokio::test]
async fn fully_labeled_replicas_count_template_labels() {
    run("fully-labeled", |env: Env| async move {
        // The orphan has the selector's label but not the template's extra label.
        env.create_pod(pod("partial", "web", json!(null))).await;
        env.let_caches_catch_up().await;
        env.create_rs(replica_set("web", 2, false, json!({}))).await;
        env
    })
    .await;
}

#[tokio::test]
async fn failed_and_deleted_pods_are_replaced() {
    run("replace", |env: Env| async move {
        env.create_rs(replica_set("web", 3, true, json!({}))).await;
        env.wait_quiet().await;
        let pods = env.pods_by_age("app=web").await;
        for p in &pods {
            env.drive(&p.name_any(), PodState::ready(env.ip())).await;
        }
        env.wait_quiet().await;
        env.drive(&pods[0].name_any(), PodState::failed()).await;
        env.pods()
            .delete(&pods[1].name_any(), &Default::default())
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn scale_down_honours_deletion_cost_then_restarts_and_pod_states() {
    run("scale-down-order", |env: Env| async move {
        env.create_rs(replica_set("web", 6, true, json!({}))).await;
        env.wait_quiet().await;
        let pods = env.pods_by_age("app=web").await;
        let name = |i: usize| pods[i].name_any();
        // 0: left Pending; 1: running, not ready; 2..5: ready.
        env.drive(&name(1), PodState::not_ready(env.ip())).await;
        for i in 2..6 {
            let restarts = if i == 3 { 4 } else { 0 };
            env.drive(&name(i), PodState::ready(env.ip()).with_restarts(restarts))
                .await;
        }
        let cost = |c: &str| {
            json!({"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": c, "kept": "yes"}}})
        };
        env.patch_pod(&name(4), cost("-100")).await;
        env.patch_pod(&name(5), cost("100")).await;
        // Label the survivors-to-be so the snapshot shows which pods remain.
        for (i, role) in [
            (0, "pending"),
            (1, "not-ready"),
            (2, "ready"),
            (3, "restarted"),
        ] {
            env.patch_pod(&name(i), json!({"metadata": {"labels": {"role": role}}}))
                .await;
        }
        env.wait_quiet().await;
        env.scale_through("web", &[4, 2, 1]).await;
        env
    })
    .await;
}

#[tokio::test]
async fn ready_is_not_available_until_min_ready_seconds_pass() {
    run("min-ready", |env: Env| async move {
        let extra = json!({"spec": {"minReadySeconds": 6}});
        env.create_rs(replica_set("web", 2, true, extra)).await;
        env.wait_quiet().await;
        for p in env.pods_by_age("app=web").await {
            env.drive(&p.name_any(), PodState::ready(env.ip())).await;
        }
        let status = |rs: &k8s_openapi::api::apps::v1::ReplicaSet| {
            let s = rs.status.clone().unwrap_or_default();
            (
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
            )
        };
        let api = env.replica_sets();
        let ready = support::wait_for(&api, "web", "2 ready replicas", move |rs: Option<&_>| {
            rs.is_some_and(|rs| status(rs).0 == 2)
        })
        .await;
        assert_eq!(
            status(&ready),
            (2, 0),
            "{:?}: available before minReadySeconds",
            env.side
        );
        // Nothing changes on the server when the pods become available: only the
        // controller's timed re-check can notice.
        support::wait_for(
            &api,
            "web",
            "2 available replicas",
            move |rs: Option<&_>| rs.is_some_and(|rs| status(rs) == (2, 2)),
        )
        .await;
        env
    })
    .await;
}

#[tokio::test]
async fn the_selector_is_immutable_in_apps_v1() {
    run("immutable-selector", |env: Env| async move {
        env.create_rs(replica_set("web", 1, false, json!({}))).await;
        env.wait_quiet().await;
        let patch = json!({"spec": {"selector": {"matchLabels": {"app": "other"}},
                                    "template": {"metadata": {"labels": {"app": "other"}}}}});
        let rejected = env
            .replica_sets()
            .patch("web", &Default::default(), &kube::api::Patch::Merge(&patch))
            .await
            .unwrap_err();
        assert!(
            rejected.to_string().contains("field is immutable"),
            "{rejected}"
        );
        env
    })
    .await;
}

#[tokio::test]
async fn a_replica_failure_condition_is_removed_once_creating_works_again() {
    run("failure-cleared", |env: Env| async move {
        let refusal = Refusal::install(&env, Refused::Pods).await;
        env.create_rs(replica_set("web", 2, true, json!({}))).await;
        let api = env.replica_sets();
        support::wait_for(
            &api,
            "web",
            "a ReplicaFailure condition",
            |rs: Option<&_>| rs.is_some_and(|rs| replica_failure(rs).is_some()),
        )
        .await;
        refusal.remove(&env).await;
        support::wait_for(&api, "web", "2 replicas", |rs: Option<&_>| {
            rs.is_some_and(|rs: &ReplicaSet| rs.status.as_ref().is_some_and(|s| s.replicas == 2))
        })
        .await;
        env.wait_quiet().await;
        env.drop_events_after_checking("FailedCreate").await;
        env
    })
    .await;
}

fn replica_failure(rs: &ReplicaSet) -> Option<&ReplicaSetCondition> {
    let conditions = rs.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_.as_deref() == Some("ReplicaFailure"))
}
