//! Upstream CRDs taken from their projects' Go modules (the published YAML, fetched and
//! checksum-verified by `go mod download`), installed under a renamed group beside the
//! derived ones; one object sent to both, and the two outcomes compared.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
};
use serde_json::{Value, json};

/// A Go module's extracted files; panics with the reason when it cannot be fetched.
pub fn go_module(module: &str, version: &str) -> PathBuf {
    let spec = format!("{module}@{version}");
    let out = Command::new("go")
        .args(["mod", "download", "-json", &spec])
        .env("GOTOOLCHAIN", "local")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("the upstream CRDs come from the Go module {spec}, but `go` did not run: {e}")
        });
    let info: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`go mod download -json {spec}` printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    match (info.get("Dir").and_then(Value::as_str), info.get("Error")) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, error) => panic!("could not fetch the Go module {spec}: {error:?}"),
    }
}

/// external-dns, whose module carries its CRDs and documented examples.
pub fn external_dns() -> PathBuf {
    go_module("sigs.k8s.io/external-dns", "v0.20.0")
}

/// external-snapshotter's client module: the snapshot CRDs and their CEL test cases.
pub fn external_snapshotter() -> PathBuf {
    go_module(
        "github.com/kubernetes-csi/external-snapshotter/client/v8",
        "v8.7.0",
    )
}

/// One YAML document as JSON.
pub fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// An upstream CRD moved to `group`, so that it can sit beside the derived one (the
/// API-approval annotation goes: only `*.k8s.io` groups may carry it).
pub fn renamed_crd(path: &Path, group: &str) -> CustomResourceDefinition {
    let mut crd: CustomResourceDefinition = serde_json::from_value(read_yaml(path))
        .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", path.display()));
    crd.spec.group = group.to_owned();
    crd.metadata.name = Some(format!("{}.{group}", crd.spec.names.plural));
    if let Some(annotations) = crd.metadata.annotations.as_mut() {
        annotations.remove("api-approved.kubernetes.io");
    }
    crd
}

/// The upstream CRD's group and the one it is served under here.
pub const UPSTREAM_SUFFIX: &str = ".upstream.kube-reconcile.dev";

/// `snapshot.storage.k8s.io` → `snapshot.storage.upstream.kube-reconcile.dev`.
pub fn renamed_group(group: &str) -> String {
    let stem = group.strip_suffix(".k8s.io").unwrap_or(group);
    format!("{stem}{UPSTREAM_SUFFIX}")
}

/// One kind served twice: by the upstream CRD (renamed group) and the derived one.
#[derive(Clone)]
pub struct Pair {
    pub client: Client,
    pub namespace: String,
    pub group: String,
    pub kind: String,
    pub plural: String,
}

/// What the server made of a request: the stored object (the parts a user wrote and the
/// server may default or prune), or the refusal with the group written as `<group>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stored(Value),
    Refused(String),
}

impl Outcome {
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Outcome::Refused(message) => Some(message),
            Outcome::Stored(_) => None,
        }
    }
}

/// The two outcomes of one request.
#[derive(Debug)]
pub struct Verdicts {
    pub upstream: Outcome,
    pub derived: Outcome,
}

impl Verdicts {
    /// Panics unless both servers' CRDs said the same thing.
    pub fn assert_same(&self, case: &str) -> &Outcome {
        assert_eq!(
            self.upstream, self.derived,
            "{case}: upstream (left) and derived (right) CRDs disagree"
        );
        &self.derived
    }
}

impl Pair {
    fn api(&self, group: &str, version: &str) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: format!("{group}/{version}"),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        };
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
    }

    fn both(&self) -> [String; 2] {
        [renamed_group(&self.group), self.group.clone()]
    }

    /// Creates `doc` (its apiVersion's version, its group replaced) under both CRDs.
    pub async fn create(&self, name: &str, doc: &Value) -> Verdicts {
        self.each(name, doc, Request::Create).await
    }

    /// Replaces the object `name` (created before) with `doc` under both CRDs.
    pub async fn replace(&self, name: &str, doc: &Value) -> Verdicts {
        self.each(name, doc, Request::Replace).await
    }

    /// Replaces the status of the object `name` with `doc`'s under both CRDs.
    pub async fn replace_status(&self, name: &str, doc: &Value) -> Verdicts {
        self.each(name, doc, Request::ReplaceStatus).await
    }

    /// Creates one object per `(what, spec)` and checks both CRDs refuse each alike.
    pub async fn assert_all_refused(&self, specs: &[(&str, Value)], object: fn(Value) -> Value) {
        for (i, (what, spec)) in specs.iter().enumerate() {
            let verdicts = self
                .create(&format!("invalid-{i}"), &object(spec.clone()))
                .await;
            let outcome = verdicts.assert_same(what);
            assert!(
                outcome.refusal().is_some(),
                "{what} was accepted: {outcome:?}"
            );
        }
    }

    async fn each(&self, name: &str, doc: &Value, request: Request) -> Verdicts {
        let [upstream, derived] = self.both();
        Verdicts {
            upstream: self.send(&upstream, name, doc, request).await,
            derived: self.send(&derived, name, doc, request).await,
        }
    }

    async fn send(&self, group: &str, name: &str, doc: &Value, request: Request) -> Outcome {
        let version = version_of(doc);
        let api = self.api(group, &version);
        let mut object = doc.clone();
        object["apiVersion"] = json!(format!("{group}/{version}"));
        object["metadata"]["name"] = json!(name);
        if request != Request::Create {
            let current = api.get(name).await.expect("the object was created before");
            object["metadata"]["resourceVersion"] = json!(current.metadata.resource_version);
        }
        let object: DynamicObject = serde_json::from_value(object).expect("an object");
        let pp = PostParams::default();
        let result = match request {
            Request::Create => api.create(&pp, &object).await,
            Request::Replace => api.replace(name, &pp, &object).await,
            Request::ReplaceStatus => api.replace_status(name, &pp, &object).await,
        };
        match result {
            Ok(stored) => Outcome::Stored(user_parts(&stored)),
            Err(kube::Error::Api(status)) => Outcome::Refused(
                status
                    .message
                    .replace(&renamed_group(&self.group), "<group>")
                    .replace(&self.group, "<group>"),
            ),
            Err(other) => panic!("{name}: the request failed outside validation: {other}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    Create,
    Replace,
    ReplaceStatus,
}

fn version_of(doc: &Value) -> String {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    api_version
        .rsplit_once('/')
        .map_or(api_version, |(_, v)| v)
        .to_owned()
}

/// What a stored object says that its author controls.
pub fn user_parts(object: &DynamicObject) -> Value {
    let value = serde_json::to_value(object).expect("serializable");
    json!({
        "labels": value["metadata"]["labels"],
        "annotations": value["metadata"]["annotations"],
        "spec": value["spec"],
        "status": value["status"],
    })
}

/// One upstream CEL test case of external-snapshotter's `hack/cel-tests`: `X.yaml` is
/// created (and must fail with `X.yaml.err`'s text when present); `X.pre.yaml` is
/// created and then replaced by `X.post.yaml` (failing with `X.post.yaml.tx_err`'s).
pub struct CelCase {
    pub name: String,
    pub pre: Option<Value>,
    pub object: Value,
    pub error: Option<String>,
}

/// Every case in one directory of `hack/cel-tests`, in name order.
pub fn cel_cases(dir: &Path) -> Vec<CelCase> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(name, path);
    }
    let expected = |file: &str| {
        files
            .get(file)
            .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned())
    };
    let mut cases = Vec::new();
    for (file, path) in &files {
        if let Some(stem) = file.strip_suffix(".post.yaml") {
            let pre = files
                .get(&format!("{stem}.pre.yaml"))
                .unwrap_or_else(|| panic!("{file} has no .pre.yaml"));
            cases.push(CelCase {
                name: stem.to_owned(),
                pre: Some(read_yaml(pre)),
                object: read_yaml(path),
                error: expected(&format!("{file}.tx_err")),
            });
        } else if let Some(stem) = file.strip_suffix(".yaml")
            && !stem.ends_with(".pre")
        {
            cases.push(CelCase {
                name: stem.to_owned(),
                pre: None,
                object: read_yaml(path),
                error: expected(&format!("{file}.err")),
            });
        }
    }
    cases
}

/// Runs every case against both CRDs at `version`: the same verdict, the same stored
/// object or message, and the upstream test's expectation met. Returns how many ran.
pub async fn run_cel_cases(pair: &Pair, cases: &[CelCase], version: &str) -> usize {
    for (i, case) in cases.iter().enumerate() {
        let name = format!("{version}-{i}");
        let at_version = |doc: &Value| {
            let mut doc = doc.clone();
            doc["apiVersion"] = json!(format!("{}/{version}", pair.group));
            doc
        };
        let what = format!("{} at {version}", case.name);
        let outcome = match &case.pre {
            Some(pre) => {
                let created = pair.create(&name, &at_version(pre)).await;
                let first = created.assert_same(&format!("{what} (before)"));
                assert!(first.refusal().is_none(), "{what}: {first:?}");
                pair.replace(&name, &at_version(&case.object))
                    .await
                    .assert_same(&what)
                    .clone()
            }
            None => pair
                .create(&name, &at_version(&case.object))
                .await
                .assert_same(&what)
                .clone(),
        };
        match (&case.error, outcome.refusal()) {
            (None, None) => {}
            (Some(expected), Some(message)) => {
                // Older servers named the value's type where v1.37 quotes the value.
                let expected = expected
                    .strip_prefix("Invalid value: \"string\": ")
                    .unwrap_or(expected);
                assert!(
                    message.contains(expected),
                    "{what}: expected {expected:?} in {message:?}"
                )
            }
            (expected, _) => panic!("{what}: expected {expected:?}, got {outcome:?}"),
        }
    }
    cases.len()
}

/// `value` without `description`s, which are prose and differ by design.
pub fn without_descriptions(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "description")
                .map(|(k, v)| (k.clone(), without_descriptions(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_descriptions).collect()),
        other => other.clone(),
    }
}

/// Every JSON path where `a` and `b` differ.
pub fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                differences(va, vb, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: upstream {a} derived {b}")),
    }
}
