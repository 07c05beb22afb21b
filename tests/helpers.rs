//! The operator helpers on the real API server: finalizers through a stale cache and
//! against a competing writer, server-side apply's field ownership, and status
//! conditions whose transition times survive the round trip.

mod support;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::ConfigMap},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    apply::{Applier, ApplyError},
    conditions::{self, ConditionExt},
    crd::{Crd, CustomResourceExt},
    finalizer::{FinalizerEvent, finalizer},
    reconcile::Action,
    testing::ControlPlane,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

async fn setup(prefix: &str) -> (Client, String) {
    let builder = || ControlPlane::builder().crds([Probe::crd()]);
    support::namespace(&CONTROL_PLANE, builder, prefix).await
}

/// A custom resource with conditions in its status, for the conditions test.
#[derive(Crd, Clone, Debug, Default, Serialize, Deserialize, garde::Validate)]
#[crd(
    group = "helpers.kube-reconcile.dev",
    version = "v1",
    kind = "Probe",
    namespaced,
    status = ProbeStatus
)]
pub struct ProbeSpec {
    /// Anything.
    #[garde(skip)]
    #[serde(default)]
    pub note: String,
}

/// The probe's status: just conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeStatus {
    /// The conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

const OURS: &str = "example.com/cleanup";
const THEIRS: &str = "someone.else/keep";

/// Runs the finalizer wrapper once on `cached`, counting applies and cleanups.
async fn finalize(api: &Api<ConfigMap>, cached: ConfigMap, counts: &Counts) -> Action {
    finalizer(api, OURS, Arc::new(cached), |event| async move {
        match event {
            FinalizerEvent::Apply(_) => counts.applies.fetch_add(1, Ordering::SeqCst),
            FinalizerEvent::Cleanup(_) => counts.cleanups.fetch_add(1, Ordering::SeqCst),
        };
        Ok::<_, Infallible>(Action::Done)
    })
    .await
    .unwrap()
}

#[derive(Default)]
struct Counts {
    applies: AtomicUsize,
    cleanups: AtomicUsize,
}

#[tokio::test]
async fn finalizer_cleanup_runs_once_through_a_stale_cache() {
    let (client, ns) = setup("finalizer-stale").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    let mut object = support::config_map("guarded", "v");
    object.metadata.finalizers = Some(vec![THEIRS.to_string()]); // keeps it after our removal
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    let counts = Counts::default();

    finalize(&api, created, &counts).await;
    assert_eq!(counts.applies.load(Ordering::SeqCst), 1);
    assert_eq!(
        api.get("guarded").await.unwrap().finalizers(),
        [THEIRS, OURS]
    );

    api.delete("guarded", &DeleteParams::default())
        .await
        .unwrap();
    let deleting = api.get("guarded").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    finalize(&api, deleting.clone(), &counts).await;
    assert_eq!(counts.cleanups.load(Ordering::SeqCst), 1);
    assert_eq!(
        api.get("guarded").await.unwrap().finalizers(),
        [THEIRS],
        "ours removed, theirs kept"
    );

    // A cache that still shows our finalizer on the deleting object: no second cleanup.
    finalize(&api, deleting.clone(), &counts).await;
    assert_eq!(
        counts.cleanups.load(Ordering::SeqCst),
        1,
        "cleanup ran once"
    );

    // The object goes for good; the stale copy still shows our finalizer: no error.
    let release = json!({"metadata": {"finalizers": null}});
    api.patch("guarded", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    support::eventually_async("the object to go", async || {
        api.get_opt("guarded").await.unwrap().is_none()
    })
    .await;
    assert_eq!(finalize(&api, deleting, &counts).await, Action::Done);
    assert_eq!(counts.cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn finalizer_edits_never_overwrite_a_competing_writer() {
    let (client, ns) = setup("finalizer-conflict").await;
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    let created = api
        .create(
            &PostParams::default(),
            &support::config_map("contested", "v"),
        )
        .await
        .unwrap();
    let counts = Counts::default();

    // Another writer adds its finalizer after our cache was filled: our add must not
    // drop theirs, though our cached list is empty.
    let theirs = json!({"metadata": {"finalizers": [THEIRS]}});
    api.patch("contested", &PatchParams::default(), &Patch::Merge(&theirs))
        .await
        .unwrap();
    finalize(&api, created, &counts).await;
    assert_eq!(
        api.get("contested").await.unwrap().finalizers(),
        [THEIRS, OURS]
    );

    // And on removal: another writer removes its own finalizer while our cleanup runs,
    // after we read the list (kube-apiserver forbids adding one to a deleting object).
    // Ours goes; theirs is not brought back; a third stays.
    let three = json!({"metadata": {"finalizers": [THEIRS, OURS, "third.party/hold"]}});
    api.patch("contested", &PatchParams::default(), &Patch::Merge(&three))
        .await
        .unwrap();
    api.delete("contested", &DeleteParams::default())
        .await
        .unwrap();
    let deleting = api.get("contested").await.unwrap();
    let competitor = api.clone();
    finalizer(&api, OURS, Arc::new(deleting), |event| async move {
        assert!(matches!(event, FinalizerEvent::Cleanup(_)));
        let drop_theirs = json!({"metadata": {"finalizers": [OURS, "third.party/hold"]}});
        competitor
            .patch(
                "contested",
                &PatchParams::default(),
                &Patch::Merge(&drop_theirs),
            )
            .await
            .unwrap();
        Ok::<_, Infallible>(Action::Done)
    })
    .await
    .unwrap();
    assert_eq!(
        api.get("contested").await.unwrap().finalizers(),
        ["third.party/hold"],
        "only ours removed; theirs not brought back"
    );
    let release = json!({"metadata": {"finalizers": null}});
    api.patch(
        "contested",
        &PatchParams::default(),
        &Patch::Merge(&release),
    )
    .await
    .unwrap();
}

fn data(name: &str, entries: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": entries})).unwrap()
}

#[tokio::test]
async fn apply_owns_the_fields_it_sends_and_keeps_others() {
    let (client, ns) = setup("apply").await;
    let mut ours = data("shared", json!({"a": "1", "b": "1"}));
    ours.metadata.namespace = Some(ns.clone());
    let mut theirs = data("shared", json!({"c": "1"}));
    theirs.metadata.namespace = Some(ns.clone());
    let (us, them) = (
        Applier::new(client.clone(), "operator-a"),
        Applier::new(client.clone(), "operator-b").force(false),
    );

    us.apply(&ours).await.unwrap();
    let merged = them.apply(&theirs).await.unwrap();
    let keys: Vec<_> = merged.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["a", "b", "c"], "both managers' fields");

    // We stop sending `b`: it goes; their `c` stays.
    ours.data = Some([("a".to_string(), "2".to_string())].into());
    let after = us.apply(&ours).await.unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("2"));
    assert!(
        !data.contains_key("b"),
        "a field we no longer send is removed"
    );
    assert!(data.contains_key("c"), "their field is kept");
    let managers: Vec<_> = after
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(
        managers.contains(&"operator-a".to_string())
            && managers.contains(&"operator-b".to_string())
    );

    // Without force, taking a field another manager owns is a conflict naming it.
    theirs.data = Some([("a".to_string(), "theirs".to_string())].into());
    match them.apply(&theirs).await {
        Err(ApplyError::Api {
            source: kube::Error::Api(status),
            ..
        }) => {
            assert_eq!(status.code, 409);
            assert!(status.message.contains("operator-a"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn apply_status_needs_no_hand_written_envelope() {
    let (client, ns) = setup("apply-status").await;
    let api = Api::<ReplicaSet>::namespaced(client.clone(), &ns);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "pause"}]}}},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &rs).await.unwrap();
    let status = json!({"replicas": 0, "observedGeneration": 1});
    let applier = Applier::new(client, "status-writer");
    let stored = applier.apply_status(&created, &status).await.unwrap();
    assert_eq!(stored.status.unwrap().observed_generation, Some(1));
    assert_eq!(created.name_any(), stored.metadata.name.unwrap());
}

#[tokio::test]
async fn condition_transition_times_move_only_when_the_status_flips() {
    let (client, ns) = setup("conditions").await;
    let api = Api::<Probe>::namespaced(client.clone(), &ns);
    let created = api
        .create(
            &PostParams::default(),
            &Probe::new("probe", ProbeSpec::default()),
        )
        .await
        .unwrap();
    let applier = Applier::new(client, "probe-controller");
    // One reconcile: start from the stored conditions, set one, write if it changed.
    let write = async |ready: bool, reason: &str| {
        let stored = api.get("probe").await.unwrap();
        let mut status = stored.status.clone().unwrap_or_default();
        let condition = conditions::new("Ready", ready, reason, format!("{reason} now"))
            .for_generation(&stored);
        if conditions::set(&mut status.conditions, condition) {
            applier.apply_status(&stored, &status).await.unwrap();
        }
        let stored = api.get("probe").await.unwrap();
        let conditions = stored.status.unwrap().conditions;
        assert_eq!(conditions.len(), 1);
        conditions[0].clone()
    };

    let first = write(false, "Starting").await;
    assert_eq!(first.status, "False");
    assert_eq!(first.observed_generation, created.metadata.generation);
    assert!(conditions::is_false(
        &api.get("probe").await.unwrap().status.unwrap().conditions,
        "Ready"
    ));

    // Whole seconds on the wire: let the clock pass one, so a moved time would show.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let same = write(false, "StillStarting").await;
    assert_eq!(same.reason, "StillStarting", "the reason changed");
    assert_eq!(
        same.last_transition_time, first.last_transition_time,
        "the status did not flip, so the transition time stays"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let flipped = write(true, "Started").await;
    assert_eq!(flipped.status, "True");
    assert!(
        flipped.last_transition_time.0 > first.last_transition_time.0,
        "a flip moves the transition time: {:?} -> {:?}",
        first.last_transition_time,
        flipped.last_transition_time
    );

    // Writing the same again changes nothing, so no write at all.
    let before = api.get("probe").await.unwrap().metadata.resource_version;
    write(true, "Started").await;
    assert_eq!(
        api.get("probe").await.unwrap().metadata.resource_version,
        before
    );
}
