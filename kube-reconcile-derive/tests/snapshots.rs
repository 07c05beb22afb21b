//! The generated CRDs of representative spec types, as committed insta snapshots; each
//! also passes `check_structural`, and a real kube-apiserver accepts every one of them
//! and round-trips objects through it.

mod common;

use std::collections::{BTreeMap, HashMap};

use garde::Validate;
use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity, apis::meta::v1::Time, util::intstr::IntOrString,
};
use kube_reconcile::crd::{Crd, CrdSchema, CustomResourceExt, merge_versions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A web application: every `#[crd]` key at least once.
#[derive(Crd, Clone, Debug, Serialize, Deserialize, Validate)]
#[crd(group = "example.com", version = "v1", kind = "WebApp", namespaced,
      plural = "webapps", singular = "webapp", short_names("wa"), categories("all"),
      status = WebAppStatus,
      scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas", label_selector_path = ".status.selector"),
      printer_column(name = "Replicas", type = "integer", json_path = ".spec.replicas", description = "Desired replicas", priority = 0),
      printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp"),
      selectable_field(json_path = ".spec.image"),
      validation(rule = "self.minReplicas <= self.maxReplicas", message = "minReplicas must not exceed maxReplicas", field_path = ".minReplicas"),
      served = true, storage = true, deprecated, deprecation_warning = "example.com/v1 WebApp is deprecated")]
#[serde(rename_all = "camelCase")]
pub struct WebAppSpec {
    /// The container image.
    #[garde(length(min = 1, max = 63), pattern(r"^[a-z0-9-]+$"))]
    #[crd(immutable)]
    pub image: String,
    #[garde(range(min = 0, max = 100))]
    #[serde(default)]
    pub replicas: i32,
    #[garde(range(min = 0))]
    pub min_replicas: i32,
    #[garde(range(max = 1000))]
    pub max_replicas: i32,
    #[garde(dive, length(max = 16))]
    #[crd(list_type = "map", list_map_keys("name"))]
    pub ports: Vec<Port>,
    #[garde(skip)]
    #[crd(list_type = "set")]
    #[serde(default)]
    pub hosts: Vec<String>,
    #[garde(skip)]
    #[crd(map_type = "atomic")]
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[garde(skip)]
    #[serde(default)]
    pub env: HashMap<String, EnvValue>,
    #[garde(skip)]
    #[crd(preserve_unknown_fields)]
    pub extra: Option<serde_json::Value>,
    #[garde(skip)]
    #[crd(embedded_resource)]
    pub template: Option<serde_json::Value>,
    #[garde(skip)]
    #[crd(int_or_string)]
    pub max_surge: Option<IntOrString>,
    #[garde(skip)]
    pub memory: Option<Quantity>,
    #[garde(skip)]
    pub not_before: Option<Time>,
    #[garde(skip)]
    #[crd(
        default = "Always",
        validation(
            rule = "self in ['Always', 'Never']",
            message = "bad policy",
            reason = "FieldValueInvalid"
        )
    )]
    pub pull_policy: Option<String>,
    #[garde(skip)]
    #[crd(format = "cidr")]
    pub cidr: Option<String>,
    #[garde(dive)]
    pub resources: Option<Resources>,
}

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize, Validate)]
#[crd(validation(rule = "self.port != 0", message = "port 0 is reserved"))]
pub struct Port {
    #[garde(length(min = 1))]
    pub name: String,
    #[garde(range(min = 1, max = 65535))]
    pub port: u16,
    #[garde(skip)]
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// Transmission Control Protocol.
    #[default]
    TCP,
    /// User Datagram Protocol.
    UDP,
}

#[derive(JsonSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvValue {
    pub value: Option<String>,
    pub secret_ref: Option<String>,
}

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize, Validate)]
#[crd(struct_type = "atomic")]
pub struct Resources {
    #[garde(skip)]
    pub cpu: Option<Quantity>,
}

#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
pub struct WebAppStatus {
    pub replicas: i32,
    pub selector: Option<String>,
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

#[test]
fn rich_webapp() {
    let crd = WebApp::crd();
    common::checked_schema(&crd);
    insta::assert_yaml_snapshot!(crd);
}

/// Enums of every serde representation, cluster-scoped.
#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(
    group = "example.com",
    version = "v1alpha1",
    kind = "Pipeline",
    printer_column(name = "Mode", type = "string", json_path = ".spec.mode")
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    pub mode: Mode,
    pub source: Source,
    pub steps: Vec<Step>,
    pub trigger: Option<Trigger>,
    pub port: PortSpec,
    pub retries: Option<Retries>,
}

/// How the pipeline runs.
#[derive(JsonSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Run once.
    Once,
    /// Run forever.
    Continuous,
}

/// Externally tagged: exactly one key.
#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A git repository.
    Git {
        url: String,
        revision: Option<String>,
    },
    /// An image reference.
    Image(String),
    Inline(InlineSource),
}

#[derive(JsonSchema, Clone, Debug, Serialize, Deserialize)]
pub struct InlineSource {
    pub script: String,
}

/// Internally tagged.
#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Step {
    Build {
        image: String,
        args: Vec<String>,
    },
    Test {
        image: String,
        timeout_seconds: Option<u32>,
    },
    Approve,
}

/// Adjacently tagged.
#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config")]
pub enum Trigger {
    Cron {
        schedule: String,
    },
    Webhook {
        path: String,
        secret: Option<String>,
    },
}

/// Untagged integer-or-string.
#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
#[crd(int_or_string)]
pub enum PortSpec {
    Number(u16),
    Name(String),
}

/// Untagged, all objects.
// serde takes the first variant that fits, so the one with more fields comes first.
#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Retries {
    Backoff { count: u32, max_seconds: u32 },
    Fixed { count: u32 },
}

#[test]
fn enum_heavy_pipeline() {
    let crd = Pipeline::crd();
    let schema = common::checked_schema(&crd);
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.metadata.name.as_deref(), Some("pipelines.example.com"));
    let spec = &schema["properties"]["spec"]["properties"];
    assert_eq!(
        spec["mode"]["enum"],
        serde_json::json!(["once", "continuous"])
    );
    assert_eq!(spec["source"]["oneOf"].as_array().map(Vec::len), Some(3));
    assert_eq!(spec["port"]["x-kubernetes-int-or-string"], true);
    insta::assert_yaml_snapshot!(crd);
}

mod v1 {
    use super::*;

    /// The first version of a database.
    #[derive(Crd, Clone, Debug, Serialize, Deserialize)]
    #[crd(group = "db.example.com", version = "v1", kind = "Database", namespaced, status = DatabaseStatus,
          served = true, storage = false, deprecated, deprecation_warning = "db.example.com/v1 is deprecated; use v2")]
    #[serde(rename_all = "camelCase")]
    pub struct DatabaseSpec {
        pub size_gb: i32,
    }

    #[derive(JsonSchema, Clone, Debug, Serialize, Deserialize)]
    pub struct DatabaseStatus {
        pub ready: bool,
    }
}

mod v2 {
    use super::*;

    /// The second version: sizes as quantities, and a storage class.
    #[derive(Crd, Clone, Debug, Serialize, Deserialize, Validate)]
    #[crd(group = "db.example.com", version = "v2", kind = "Database", namespaced, status = DatabaseStatus,
          printer_column(name = "Size", type = "string", json_path = ".spec.size"))]
    #[serde(rename_all = "camelCase")]
    pub struct DatabaseSpec {
        #[garde(skip)]
        pub size: Quantity,
        #[garde(length(min = 1))]
        #[crd(immutable = "the storage class cannot be changed")]
        pub storage_class: String,
    }

    #[derive(JsonSchema, Clone, Debug, Serialize, Deserialize)]
    pub struct DatabaseStatus {
        pub ready: bool,
        pub endpoint: Option<String>,
    }
}

#[test]
fn multi_version_database() {
    let crd = merge_versions([v1::Database::crd(), v2::Database::crd()], "v2").unwrap();
    common::checked_schema(&crd);
    let flags: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(flags, [("v1", true, false), ("v2", true, true)]);
    insta::assert_yaml_snapshot!(crd);
}

#[test]
fn resource_type_round_trips() {
    use kube::Resource as _;
    let app = v2::Database::new(
        "db",
        v2::DatabaseSpec {
            size: Quantity("1Gi".into()),
            storage_class: "fast".into(),
        },
    );
    let json = serde_json::to_value(&app).unwrap();
    assert_eq!(json["apiVersion"], "db.example.com/v2");
    assert_eq!(json["kind"], "Database");
    assert_eq!(json["metadata"]["name"], "db");
    assert!(json.get("status").is_none());
    let back: v2::Database = serde_json::from_value(json).unwrap();
    assert_eq!(back.spec.storage_class, "fast");
    assert_eq!(v2::Database::plural(&()), "databases");
    assert_eq!(
        v2::Database::url_path(&(), Some("ns")),
        "/apis/db.example.com/v2/namespaces/ns/databases"
    );
    let ar = v2::Database::api_resource();
    assert_eq!(
        (ar.group.as_str(), ar.kind.as_str()),
        ("db.example.com", "Database")
    );
    assert_eq!(WebApp::short_names(), ["wa"]);
    let yaml = WebApp::to_yaml();
    assert!(
        yaml.starts_with("apiVersion: apiextensions.k8s.io/v1\n"),
        "{yaml}"
    );
    let json: serde_json::Value = serde_json::from_str(&WebApp::to_json()).unwrap();
    assert_eq!(json["metadata"]["name"], "webapps.example.com");
    // kube's typed Api accepts the generated type.
    fn _api(client: kube::Client) -> kube::Api<v2::Database> {
        kube::Api::namespaced(client, "default")
    }
}

/// `to_yaml` text is whatever the YAML writer makes of it; what matters is that it reads
/// back as exactly the CRD (multi-line descriptions go through block scalars, strings
/// such as `""` or ones containing `: ` through quoting).
#[test]
fn to_yaml_reads_back_as_the_crd() {
    fn check<K: CustomResourceExt>() {
        let yaml = K::to_yaml();
        let back: serde_json::Value = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("to_yaml output does not parse: {e}\n{yaml}"));
        assert_eq!(back, serde_json::to_value(K::crd()).unwrap(), "{yaml}");
    }
    check::<WebApp>();
    check::<Pipeline>();
    check::<v1::Database>();
    check::<v2::Database>();
    check::<Bag>();
}

/// Shapes that need a marker: a flattened map, a generic nested type, CEL on a nested
/// struct, a container `#[serde(default)]`.
#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Bag")]
pub struct BagSpec {
    pub name: String,
    #[serde(flatten)]
    #[crd(preserve_unknown_fields)]
    pub rest: BTreeMap<String, serde_json::Value>,
    pub limits: Range<i64>,
    pub tuning: Tuning,
}

#[derive(CrdSchema, Clone, Debug, Serialize, Deserialize)]
#[crd(validation(rule = "self.min <= self.max", message = "min must not exceed max"))]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

#[derive(CrdSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tuning {
    /// `#[schemars(...)]` keys pass through (here: controller-gen's MultipleOf).
    #[schemars(extend("multipleOf" = 8))]
    pub batch_size: u32,
    #[crd(default = {"mode": "fast"}, preserve_unknown_fields)]
    pub extra: serde_json::Value,
}

#[test]
fn markers_on_flatten_generics_and_defaults() {
    let schema = common::checked_schema(&Bag::crd());
    let spec = &schema["properties"]["spec"];
    assert_eq!(
        spec["x-kubernetes-preserve-unknown-fields"], true,
        "{spec:#}"
    );
    assert!(spec.get("additionalProperties").is_none());
    assert_eq!(spec["properties"]["name"]["type"], "string");
    let limits = &spec["properties"]["limits"];
    assert_eq!(limits["properties"]["min"]["type"], "integer");
    assert_eq!(
        limits["x-kubernetes-validations"][0]["rule"],
        "self.min <= self.max"
    );
    let tuning = &spec["properties"]["tuning"];
    assert_eq!(tuning["properties"]["batchSize"]["default"], 0);
    assert_eq!(tuning["properties"]["batchSize"]["multipleOf"], 8.0);
    assert_eq!(
        tuning["properties"]["extra"]["default"],
        serde_json::json!({"mode": "fast"})
    );
}

/// Every CRD above on a real kube-apiserver: accepted, Established (the harness waits
/// for it), and objects made in Rust come back equal.
#[tokio::test]
async fn every_crd_is_accepted_by_kube_apiserver_and_round_trips_objects() {
    use kube::{Api, api::PostParams};
    use kube_reconcile::testing::ControlPlane;

    let database = merge_versions([v1::Database::crd(), v2::Database::crd()], "v2").unwrap();
    let cp = ControlPlane::builder()
        .crds([WebApp::crd(), Pipeline::crd(), database, Bag::crd()])
        .start()
        .await
        .unwrap_or_else(|e| panic!("the local control plane must start for this test: {e}"));
    let client = cp.client().await.unwrap();

    async fn round_trip<K>(api: Api<K>, object: K)
    where
        K: kube::Resource + Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let created = api.create(&PostParams::default(), &object).await.unwrap();
        let spec = |o: &K| serde_json::to_value(o).unwrap()["spec"].clone();
        assert_eq!(spec(&created), spec(&object), "spec came back changed");
    }

    let web_app: WebApp = serde_json::from_value(serde_json::json!({
        "apiVersion": "example.com/v1", "kind": "WebApp", "metadata": {"name": "web"},
        "spec": {
            "image": "web", "replicas": 2, "minReplicas": 1, "maxReplicas": 3,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "hosts": ["a.example.com"], "labels": {"team": "a"},
            "env": {"MODE": {"value": "demo", "secretRef": null}},
            "extra": {"anything": [1, 2]},
            "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            "maxSurge": "25%", "memory": "1Gi", "notBefore": "2026-01-01T00:00:00Z",
            "pullPolicy": "Never", "cidr": "10.0.0.0/8", "resources": {"cpu": "500m"},
        },
    }))
    .unwrap();
    round_trip(Api::namespaced(client.clone(), "default"), web_app).await;

    let pipeline = Pipeline::new(
        "build",
        PipelineSpec {
            mode: Mode::Continuous,
            source: Source::Git {
                url: "https://example.com/repo.git".into(),
                revision: Some("main".into()),
            },
            steps: vec![
                Step::Build {
                    image: "rust".into(),
                    args: vec!["build".into()],
                },
                Step::Approve,
            ],
            trigger: Some(Trigger::Cron {
                schedule: "@daily".into(),
            }),
            port: PortSpec::Name("http".into()),
            retries: Some(Retries::Backoff {
                count: 3,
                max_seconds: 60,
            }),
        },
    );
    round_trip(Api::all(client.clone()), pipeline).await;

    let database = v2::Database::new(
        "db",
        v2::DatabaseSpec {
            size: Quantity("10Gi".into()),
            storage_class: "fast".into(),
        },
    );
    round_trip(Api::namespaced(client.clone(), "default"), database).await;

    let bag = Bag::new(
        "bag",
        BagSpec {
            name: "bag".into(),
            rest: BTreeMap::from([("free".into(), serde_json::json!({"form": true}))]),
            limits: Range { min: 1, max: 2 },
            tuning: Tuning {
                batch_size: 16,
                extra: serde_json::json!({"mode": "slow"}),
            },
        },
    );
    round_trip(Api::all(client), bag).await;
    cp.stop().await;
}
