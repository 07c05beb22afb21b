//! The CRD derive against CRDs other projects publish. external-dns's `DNSEndpoint` and
//! the CSI snapshotter's `VolumeSnapshot` and `VolumeGroupSnapshot` (served at three
//! versions) are modelled as Rust types from their YAML; the upstream CRD (under a
//! renamed group) and the derived one are installed side by side in one kube-apiserver,
//! and every upstream example, every upstream CEL test case and a set of invalid
//! objects get the same verdict, message and stored object from both. The upstream
//! files come from the projects' Go modules at pinned versions.

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod types {
    pub mod dns_endpoint;
    pub mod volume_group_snapshot;
    pub mod volume_snapshot;
}

use std::path::PathBuf;

use harness::{Outcome, Pair, cel_cases, renamed_crd, renamed_group, run_cel_cases};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Resource, api::PostParams};
use kube_reconcile::{crd::CustomResourceExt, testing::ControlPlane};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use types::{dns_endpoint::DNSEndpoint, volume_group_snapshot, volume_snapshot::VolumeSnapshot};

const DNS_ENDPOINT_CRD: &str = "config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml";
const VOLUME_SNAPSHOT_CRD: &str = "config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml";
const VOLUME_GROUP_SNAPSHOT_CRD: &str =
    "config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshots.yaml";

/// Each upstream CRD as published, and the derived one.
fn crds() -> Vec<(CustomResourceDefinition, CustomResourceDefinition)> {
    let (dns, snap) = (harness::external_dns(), harness::external_snapshotter());
    let published = |dir: &PathBuf, file: &str| -> CustomResourceDefinition {
        serde_json::from_value(harness::read_yaml(&dir.join(file))).expect("a CRD")
    };
    vec![
        (published(&dns, DNS_ENDPOINT_CRD), DNSEndpoint::crd()),
        (published(&snap, VOLUME_SNAPSHOT_CRD), VolumeSnapshot::crd()),
        (
            published(&snap, VOLUME_GROUP_SNAPSHOT_CRD),
            volume_group_snapshot::crd(),
        ),
    ]
}

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

/// The shared control plane with every pair installed, and a namespace for one test.
async fn pair(group: &str, kind: &str, plural: &str) -> Pair {
    let (client, namespace) = support::namespace(
        &CONTROL_PLANE,
        || {
            let (dns, snap) = (harness::external_dns(), harness::external_snapshotter());
            let upstream = [
                (dns.join(DNS_ENDPOINT_CRD), "externaldns.k8s.io"),
                (snap.join(VOLUME_SNAPSHOT_CRD), "snapshot.storage.k8s.io"),
                (
                    snap.join(VOLUME_GROUP_SNAPSHOT_CRD),
                    "groupsnapshot.storage.k8s.io",
                ),
            ]
            .map(|(path, group)| renamed_crd(&path, &renamed_group(group)));
            let derived = crds().into_iter().map(|(_, derived)| derived);
            ControlPlane::builder().crds(upstream.into_iter().chain(derived))
        },
        plural,
    )
    .await;
    Pair {
        client,
        namespace,
        group: group.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Differences from the published CRDs, each with the reason it is there. Descriptions
/// (prose) are not compared; everything else is.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "volumegroupsnapshots.versions.v1.schema.openAPIV3Schema.properties.spec.properties.source.properties.selector.properties.matchExpressions",
        "k8s-openapi's LabelSelector schema has no x-kubernetes-list-type markers; the Go \
         type's `+listType=atomic` reaches controller-gen (only server-side apply differs: \
         unmarked lists are atomic there too)",
    ),
    (
        "volumegroupsnapshots.versions.v1beta1.schema.openAPIV3Schema.properties.spec.properties.source.properties.selector.properties.matchExpressions",
        "as for v1",
    ),
    (
        "volumegroupsnapshots.versions.v1beta2.schema.openAPIV3Schema.properties.spec.properties.source.properties.selector.properties.matchExpressions",
        "as for v1",
    ),
    (
        "volumesnapshots.versions.v1beta1",
        "not modelled: upstream keeps it unserved and unstored, with no schema rules",
    ),
    (
        "volumesnapshots.versions.v1.schema.openAPIV3Schema.properties.status.properties.restoreSize",
        "a k8s-openapi Quantity is `anyOf: [integer, string]` with x-kubernetes-int-or-string; \
         controller-gen writes `type: string` plus Quantity's pattern beside the same marker",
    ),
];

/// `crd` as the parts that decide validation and display, with versions by name.
fn comparable(crd: &CustomResourceDefinition) -> Value {
    let value = harness::without_descriptions(&serde_json::to_value(crd).unwrap());
    let versions: serde_json::Map<String, Value> = value["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v.clone()))
        .collect();
    let mut annotations = value["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove("controller-gen.kubebuilder.io/version");
    }
    json!({
        "annotations": annotations,
        "group": value["spec"]["group"],
        "names": value["spec"]["names"],
        "scope": value["spec"]["scope"],
        "versions": versions,
    })
}

#[test]
fn derived_crds_read_like_the_published_ones() {
    let mut found = Vec::new();
    for (upstream, derived) in crds() {
        let plural = &derived.spec.names.plural;
        harness::differences(
            &comparable(&upstream),
            &comparable(&derived),
            plural,
            &mut found,
        );
    }
    let unexplained: Vec<&String> = found
        .iter()
        .filter(|d| {
            !KNOWN_DIFFERENCES
                .iter()
                .any(|(path, _)| d.starts_with(path))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "derived CRDs differ from upstream:\n{unexplained:#?}"
    );
    for (path, why) in KNOWN_DIFFERENCES {
        assert!(
            found.iter().any(|d| d.starts_with(path)),
            "{path} no longer differs ({why}): remove it from KNOWN_DIFFERENCES"
        );
    }
}

/// Creates `doc` through the typed API as `name` and checks the server stores what it
/// stored for the untyped object: the Rust type loses and adds nothing.
async fn typed_round_trip<K>(pair: &Pair, name: &str, doc: &Value, stored: &Outcome)
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let mut doc = doc.clone();
    doc["apiVersion"] = json!(K::api_version(&()));
    doc["metadata"] = json!({ "name": name });
    doc.as_object_mut().unwrap().remove("status");
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{name}: the Rust type cannot read {doc}: {e}"));
    let api: Api<K> = Api::namespaced(pair.client.clone(), &pair.namespace);
    let created = api
        .create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("{name}: the typed create was refused: {e}"));
    let created = harness::user_parts(
        &serde_json::from_value(serde_json::to_value(created).unwrap()).unwrap(),
    );
    let Outcome::Stored(expected) = stored else {
        panic!("{name}: the untyped object was refused: {stored:?}")
    };
    // An absent spec reads as the spec's `Default` and is written back as `{}`.
    let expected_spec = match &expected["spec"] {
        Value::Null => json!({}),
        spec => spec.clone(),
    };
    assert_eq!(created["spec"], expected_spec, "{name}: typed round trip");
}

fn dns_endpoint(spec: Value) -> Value {
    json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": "x"},
        "spec": spec,
    })
}

#[tokio::test]
async fn dns_endpoint_examples_and_invalid_objects_get_the_same_verdict() {
    let pair = pair("externaldns.k8s.io", "DNSEndpoint", "dnsendpoints").await;
    let docs = harness::external_dns().join("docs/sources/crd");
    let mut examples: Vec<(String, Value)> =
        ["dnsendpoint-example.yaml", "dnsendpoint-aws-example.yaml"]
            .iter()
            .map(|f| (f.to_string(), harness::read_yaml(&docs.join(f))))
            .collect();
    let mut no_spec = dns_endpoint(json!(null));
    no_spec.as_object_mut().unwrap().remove("spec");
    examples.extend([
        ("no spec".to_string(), no_spec),
        ("empty spec".into(), dns_endpoint(json!({}))),
        (
            "unknown fields are pruned".into(),
            dns_endpoint(json!({"endpoints": [{"dnsName": "a.example.com", "weight": 3}], "zone": "x"})),
        ),
        (
            "nulls are pruned".into(),
            dns_endpoint(json!({"endpoints": [{"dnsName": "a.example.com", "labels": null, "recordTTL": null}]})),
        ),
    ]);
    for (i, (what, doc)) in examples.iter().enumerate() {
        let name = format!("example-{i}");
        let stored = pair.create(&name, doc).await.assert_same(what).clone();
        assert!(stored.refusal().is_none(), "{what}: {stored:?}");
        typed_round_trip::<DNSEndpoint>(&pair, &format!("typed-{i}"), doc, &stored).await;
    }

    let invalid = [
        (
            "recordTTL as a string",
            json!({"endpoints": [{"recordTTL": "180"}]}),
        ),
        (
            "targets as a string",
            json!({"endpoints": [{"targets": "10.0.0.1"}]}),
        ),
        (
            "endpoints as an object",
            json!({"endpoints": {"dnsName": "a"}}),
        ),
        (
            "a label value as a number",
            json!({"endpoints": [{"labels": {"a": 1}}]}),
        ),
        (
            "a provider setting as a number",
            json!({"endpoints": [{"providerSpecific": [{"name": "x", "value": 1}]}]}),
        ),
        (
            "a fractional TTL",
            json!({"endpoints": [{"recordTTL": 1.5}]}),
        ),
        ("spec as a string", json!("records")),
    ];
    pair.assert_all_refused(&invalid, dns_endpoint).await;

    let status = |generation: Value| {
        let mut doc = dns_endpoint(json!({}));
        doc["status"] = json!({ "observedGeneration": generation });
        doc
    };
    let ok = pair.replace_status("example-0", &status(json!(3))).await;
    assert!(ok.assert_same("observedGeneration 3").refusal().is_none());
    let bad = pair
        .replace_status("example-0", &status(json!("three")))
        .await;
    assert!(
        bad.assert_same("observedGeneration as a string")
            .refusal()
            .is_some()
    );
}

fn volume_snapshot(spec: Value) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "x"},
        "spec": spec,
    })
}

#[tokio::test]
async fn volume_snapshot_upstream_cel_cases_and_invalid_objects_get_the_same_verdict() {
    let pair = pair(
        "snapshot.storage.k8s.io",
        "VolumeSnapshot",
        "volumesnapshots",
    )
    .await;
    let cases = cel_cases(&harness::external_snapshotter().join("hack/cel-tests/volumesnapshot"));
    assert_eq!(cases.len(), 13, "upstream's cases at v8.7.0");
    run_cel_cases(&pair, &cases, "v1").await;

    let invalid = [
        ("no source", json!({"volumeSnapshotClassName": "a"})),
        ("source as a string", json!({"source": "pvc-1"})),
        (
            "the claim's name as a number",
            json!({"source": {"persistentVolumeClaimName": 1}}),
        ),
        (
            "the class as a list",
            json!({"source": {"persistentVolumeClaimName": "a"}, "volumeSnapshotClassName": ["a"]}),
        ),
    ];
    pair.assert_all_refused(&invalid, volume_snapshot).await;
    let mut no_spec = volume_snapshot(json!(null));
    no_spec.as_object_mut().unwrap().remove("spec");
    let outcome = pair.create("no-spec", &no_spec).await;
    assert!(outcome.assert_same("no spec").refusal().is_some());

    for (i, case) in cases
        .iter()
        .filter(|c| c.pre.is_none() && c.error.is_none())
        .enumerate()
    {
        let name = format!("valid-{i}");
        let stored = pair
            .create(&name, &case.object)
            .await
            .assert_same(&case.name)
            .clone();
        typed_round_trip::<VolumeSnapshot>(&pair, &format!("typed-{i}"), &case.object, &stored)
            .await;
    }

    let mut status = volume_snapshot(json!({"source": {"persistentVolumeClaimName": "a"}}));
    status["status"] = json!({
        "boundVolumeSnapshotContentName": "content-1",
        "creationTime": "2026-11-30T07:00:00Z",
        "readyToUse": true,
        "restoreSize": "1Gi",
        "error": {"message": "none", "time": "2026-11-30T07:00:00Z"},
    });
    let written = pair.replace_status("valid-0", &status).await;
    assert!(written.assert_same("a full status").refusal().is_none());
    status["status"]["creationTime"] = json!("yesterday");
    let refused = pair.replace_status("valid-0", &status).await;
    assert!(
        refused
            .assert_same("a creationTime that is no time")
            .refusal()
            .is_some()
    );
}

#[tokio::test]
async fn volume_group_snapshot_cel_cases_get_the_same_verdict_at_every_served_version() {
    let pair = pair(
        "groupsnapshot.storage.k8s.io",
        "VolumeGroupSnapshot",
        "volumegroupsnapshots",
    )
    .await;
    let cases =
        cel_cases(&harness::external_snapshotter().join("hack/cel-tests/volumegroupsnapshot"));
    assert_eq!(cases.len(), 10, "upstream's cases at v8.7.0");
    for version in ["v1", "v1beta1", "v1beta2"] {
        run_cel_cases(&pair, &cases, version).await;
    }

    let invalid = json!({"source": {"selector": {"matchExpressions": [{"key": "app"}]}}});
    let doc = json!({
        "apiVersion": "groupsnapshot.storage.k8s.io/v1beta2",
        "kind": "VolumeGroupSnapshot",
        "metadata": {"name": "x"},
        "spec": invalid,
    });
    let outcome = pair.create("no-operator", &doc).await;
    assert!(
        outcome
            .assert_same("a match expression without operator")
            .refusal()
            .is_some()
    );

    let valid = cases
        .iter()
        .find(|c| c.name == "vgs-with-selector")
        .expect("upstream's vgs-with-selector case");
    let stored = pair
        .create("selector", &valid.object)
        .await
        .assert_same("selector")
        .clone();
    typed_round_trip::<volume_group_snapshot::v1beta2::VolumeGroupSnapshot>(
        &pair,
        "typed-selector",
        &valid.object,
        &stored,
    )
    .await;
}

/// v1 and v1beta2 keep the bound content's name once set; v1beta1 does not: the rule
/// that applies is the one of the version the status is written at.
#[tokio::test]
async fn volume_group_snapshot_status_rules_follow_the_version_written() {
    let pair = pair(
        "groupsnapshot.storage.k8s.io",
        "VolumeGroupSnapshot",
        "volumegroupsnapshots",
    )
    .await;
    for (version, may_change) in [("v1", false), ("v1beta1", true), ("v1beta2", false)] {
        let name = format!("bound-{version}");
        let mut doc = json!({
            "apiVersion": format!("groupsnapshot.storage.k8s.io/{version}"),
            "kind": "VolumeGroupSnapshot",
            "metadata": {"name": "x"},
            "spec": {"source": {"volumeGroupSnapshotContentName": "content"}},
        });
        let created = pair.create(&name, &doc).await;
        assert!(created.assert_same(&name).refusal().is_none());
        doc["status"] =
            json!({"boundVolumeGroupSnapshotContentName": "first", "readyToUse": false});
        let first = pair.replace_status(&name, &doc).await;
        assert!(
            first
                .assert_same(&format!("{name}: bound"))
                .refusal()
                .is_none()
        );
        doc["status"]["boundVolumeGroupSnapshotContentName"] = json!("second");
        let changed = pair.replace_status(&name, &doc).await;
        let changed = changed.assert_same(&format!("{name}: rebound"));
        assert_eq!(
            changed.refusal().is_none(),
            may_change,
            "{name}: {changed:?}"
        );
    }
}
