//! The CRD derive against a real kube-apiserver: the generated CRD is accepted and
//! Established, objects round-trip (unknown fields pruned), and every invalid input is
//! rejected by the server with the rule's message — and by `validate()` (or serde) in
//! Rust, where a rule can be checked without the previous object.

mod support;

use garde::Validate;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use kube_reconcile::{crd::CustomResourceExt, testing::ControlPlane};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

#[path = "crd_types/widget.rs"]
mod widget;

use widget::{Widget, WidgetSpec};

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

/// Typed and untyped access to Widgets in a fresh namespace.
async fn widgets() -> (Api<Widget>, Api<DynamicObject>) {
    let cp = support::shared(&CONTROL_PLANE, || {
        ControlPlane::builder().crds([Widget::crd()])
    })
    .await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "widgets").await.unwrap();
    let dynamic = Api::namespaced_with(client.clone(), &ns, &Widget::api_resource());
    (Api::namespaced(client, &ns), dynamic)
}

/// A spec that passes every rule; each invalid case changes one thing.
fn valid_spec() -> Value {
    json!({
        "displayName": "front door",
        "slug": "front-door",
        "ownerEmail": "team@example.com",
        "homepage": "https://example.com/widgets",
        "address": "10.0.0.1",
        "gateway": "192.168.1.1",
        "environment": "eu-prod-1",
        "versionTag": "v1.2.3",
        "serviceHost": "front.default.svc",
        "label": "plain ascii",
        "minReplicas": 1,
        "maxReplicas": 3,
        "port": 8080,
        "tags": ["web"],
        "owner": "team-a",
        "limits": {"cpuMillis": 500, "memoryMiB": 256},
        "storageClass": "fast",
        "tier": "Gold",
        "ports": [{"name": "http", "port": 80}],
        "zones": ["a", "b"],
        "targetPort": 8080,
        "generationLimit": 5,
        "rollout": {"type": "RollingUpdate", "maxUnavailable": 1},
        "redirectStatus": 301,
    })
}

fn with(change: Value) -> Value {
    let mut spec = valid_spec();
    merge(&mut spec, change);
    spec
}

fn without(field: &str) -> Value {
    let mut spec = valid_spec();
    spec.as_object_mut().unwrap().remove(field);
    spec
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (k, v) in patch {
                merge(base.entry(k).or_insert(Value::Null), v);
            }
        }
        (base, patch) => *base = patch,
    }
}

fn object(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "tests.kube-reconcile.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// One invalid input: what is wrong, the spec, and words the server's message must hold.
struct Invalid {
    what: &'static str,
    spec: Value,
    message: &'static str,
}

fn invalid_inputs() -> Vec<Invalid> {
    let case = |what, spec, message| Invalid {
        what,
        spec,
        message,
    };
    vec![
        // garde length on strings
        case(
            "displayName too short",
            with(json!({"displayName": "ab"})),
            "spec.displayName in body should be at least 3 chars long",
        ),
        case(
            "displayName too long",
            with(json!({"displayName": "x".repeat(21)})),
            "spec.displayName: Too long: may not be more than 20",
        ),
        // a discriminated union: the tag is required, members follow it
        case(
            "a Recreate rollout with a RollingUpdate member",
            with(json!({"rollout": {"type": "Recreate", "maxUnavailable": 1}})),
            "maxUnavailable may only be set when type is RollingUpdate",
        ),
        case(
            "a RollingUpdate rollout without its member",
            with(json!({"rollout": {"type": "RollingUpdate", "maxUnavailable": null}})),
            "maxUnavailable is required when type is RollingUpdate",
        ),
        case(
            "a rollout without type",
            with(json!({"rollout": {"type": null, "maxUnavailable": 1}})),
            "spec.rollout.type: Required value",
        ),
        case(
            "a rollout of an unknown type",
            with(json!({"rollout": {"type": "Canary"}})),
            "spec.rollout.type: Unsupported value: \"Canary\"",
        ),
        // an integer enum
        case(
            "redirectStatus is no redirect",
            with(json!({"redirectStatus": 303})),
            "spec.redirectStatus: Unsupported value: 303: supported values: \"301\", \"302\", \"307\", \"308\"",
        ),
        // garde pattern
        case(
            "slug breaks its pattern",
            with(json!({"slug": "Front_Door"})),
            "spec.slug in body should match '^[a-z][a-z0-9-]*$'",
        ),
        // garde email / url / ip / ipv4
        case(
            "ownerEmail is no email",
            with(json!({"ownerEmail": "not-an-email"})),
            "spec.ownerEmail in body must be of type email",
        ),
        case(
            "homepage is no URL",
            with(json!({"homepage": "no scheme here"})),
            "spec.homepage in body must be of type uri",
        ),
        case(
            "address is no IP",
            with(json!({"address": "10.0.0.256"})),
            "spec.address: Invalid value: \"10.0.0.256\": must be a valid IP address",
        ),
        case(
            "gateway is no IPv4",
            with(json!({"gateway": "::1"})),
            "spec.gateway in body must be of type ipv4",
        ),
        // garde contains / prefix / suffix / ascii
        case(
            "environment lacks 'prod'",
            with(json!({"environment": "eu-dev-1"})),
            "spec.environment in body should match 'prod'",
        ),
        case(
            "versionTag lacks prefix v",
            with(json!({"versionTag": "1.2.3"})),
            "must start with \"v\"",
        ),
        case(
            "serviceHost lacks suffix .svc",
            with(json!({"serviceHost": "front.example.com"})),
            "must end with \".svc\"",
        ),
        case(
            "label is not ASCII",
            with(json!({"label": "naïve"})),
            "spec.label: Invalid value: \"naïve\": must contain only ASCII characters",
        ),
        // garde range
        case(
            "minReplicas below range",
            with(json!({"minReplicas": 0})),
            "spec.minReplicas in body should be greater than or equal to 1",
        ),
        case(
            "maxReplicas above range",
            with(json!({"maxReplicas": 11, "minReplicas": 1})),
            "spec.maxReplicas in body should be less than or equal to 10",
        ),
        case(
            "port above range",
            with(json!({"port": 70000})),
            "spec.port in body should be less than or equal to 65535",
        ),
        // garde length on lists, and inner rules on items
        case(
            "tags empty",
            with(json!({"tags": []})),
            "spec.tags in body should have at least 1 items",
        ),
        case(
            "too many tags",
            with(json!({"tags": ["a", "b", "c", "d"]})),
            "spec.tags: Too many: 4: must have at most 3 items",
        ),
        case(
            "a tag is empty",
            with(json!({"tags": [""]})),
            "spec.tags[0] in body should be at least 1 chars long",
        ),
        case(
            "a tag is too long",
            with(json!({"tags": ["x".repeat(11)]})),
            "spec.tags[0]: Too long: may not be more than 10",
        ),
        // garde required on an Option, and a plain required field
        case(
            "owner missing",
            without("owner"),
            "spec.owner: Required value",
        ),
        case("slug missing", without("slug"), "spec.slug: Required value"),
        // nested type: garde range and its own CEL rule
        case(
            "limits.cpuMillis above range",
            with(json!({"limits": {"cpuMillis": 100000}})),
            "spec.limits.cpuMillis in body should be less than or equal to 64000",
        ),
        case(
            "limits CEL rule",
            with(json!({"limits": {"cpuMillis": 2000, "memoryMiB": 64}})),
            "spec.limits: Invalid value: at least 128 MiB of memory per CPU",
        ),
        // struct-level CEL rules on the spec: message, messageExpression, fieldPath+reason
        case(
            "minReplicas > maxReplicas",
            with(json!({"minReplicas": 5, "maxReplicas": 3})),
            "spec: Invalid value: minReplicas must not exceed maxReplicas",
        ),
        case(
            "messageExpression",
            with(json!({"port": 443, "tier": "Bronze"})),
            "spec: Invalid value: port 443 needs tier Gold or Silver, not Bronze",
        ),
        case(
            "fieldPath and reason",
            with(json!({"zones": ["a", "b", "c", "d", "e"], "tier": "Bronze"})),
            "spec.zones: Forbidden: Bronze widgets run in at most 2 zones",
        ),
        // wrong JSON types
        case(
            "port as a string",
            with(json!({"port": "eighty"})),
            "spec.port in body must be of type integer",
        ),
        case(
            "tags as a string",
            with(json!({"tags": "web"})),
            "spec.tags in body must be of type array",
        ),
        case(
            "limits as a string",
            with(json!({"limits": "large"})),
            "spec.limits in body must be of type object",
        ),
        case(
            "targetPort as a boolean",
            with(json!({"targetPort": true})),
            "spec.targetPort in body must be of type integer,string",
        ),
        // enums, list types
        case(
            "tier outside the enum",
            with(json!({"tier": "Platinum"})),
            "spec.tier: Unsupported value: \"Platinum\": supported values: \"Gold\", \"Silver\", \"Bronze\"",
        ),
        case(
            "ports list-map key repeated",
            with(json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]})),
            "spec.ports[1]: Duplicate value: {\"name\":\"http\"}",
        ),
        case(
            "zones set repeats a value",
            with(json!({"zones": ["a", "a"]})),
            "spec.zones[1]: Duplicate value: \"a\"",
        ),
    ]
}

#[tokio::test]
async fn the_generated_crd_is_established_and_objects_round_trip_with_unknown_fields_pruned() {
    let (api, dynamic) = widgets().await;
    let mut manifest = object("round-trip", valid_spec());
    manifest["spec"]["notInTheSchema"] = json!("dropped");
    manifest["spec"]["limits"]["alsoUnknown"] = json!(1);
    // A plain create: server-side apply refuses unknown fields outright instead.
    let manifest: DynamicObject = serde_json::from_value(manifest).unwrap();
    dynamic
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let stored = dynamic.get("round-trip").await.unwrap();
    assert!(
        stored.data["spec"].get("notInTheSchema").is_none(),
        "pruned: {:#}",
        stored.data
    );
    assert!(
        stored.data["spec"]["limits"].get("alsoUnknown").is_none(),
        "pruned: {:#}",
        stored.data
    );
    let typed = api.get("round-trip").await.unwrap();
    assert_eq!(typed.spec.slug, "front-door");
    assert_eq!(serde_json::to_value(&typed.spec).unwrap()["tier"], "Gold");
    typed
        .spec
        .validate()
        .expect("a valid spec passes validate()");
}

#[tokio::test]
async fn the_server_rejects_each_invalid_input_with_the_rules_message_and_so_does_rust() {
    let (_, dynamic) = widgets().await;
    let cases = invalid_inputs();
    assert!(cases.len() >= 30, "at least 30 distinct invalid inputs");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let manifest: DynamicObject =
            serde_json::from_value(object(&format!("invalid-{i}"), case.spec.clone())).unwrap();
        match dynamic.create(&PostParams::default(), &manifest).await {
            Ok(_) => failures.push(format!("{}: accepted by the server", case.what)),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 || !status.message.contains(case.message) {
                    failures.push(format!(
                        "{}: expected 422 mentioning {:?}, got {}: {}",
                        case.what, case.message, status.code, status.message
                    ));
                }
            }
            Err(other) => failures.push(format!("{}: {other}", case.what)),
        }
        // The same input in Rust: serde refuses wrong types and missing fields,
        // validate() the rules.
        if let Ok(spec) = serde_json::from_value::<WidgetSpec>(case.spec.clone())
            && spec.validate().is_ok()
        {
            failures.push(format!("{}: passes validate() in Rust", case.what));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn immutable_and_transition_rules_apply_on_update() {
    let (api, _) = widgets().await;
    let created = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(object("updates", valid_spec())).unwrap(),
        )
        .await
        .unwrap();
    let name = "updates";
    let patch = |spec: Value| {
        let api = api.clone();
        async move {
            api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
        }
    };
    let refused = |result: Result<Widget, kube::Error>, words: &str| match result {
        Err(kube::Error::Api(status)) => assert!(
            status.code == 422 && status.message.contains(words),
            "expected a 422 mentioning {words:?}: {status:?}"
        ),
        other => panic!("expected a refusal mentioning {words:?}, got {other:?}"),
    };
    refused(
        patch(json!({"storageClass": "slow"})).await,
        "storageClass is immutable",
    );
    refused(
        patch(json!({"generationLimit": 4})).await,
        "generationLimit may only grow",
    );
    let grown = patch(json!({"generationLimit": 6})).await.unwrap();
    assert_eq!(grown.spec.generation_limit, Some(6));
    let unchanged = patch(json!({"storageClass": "fast", "port": 8081}))
        .await
        .unwrap();
    assert_eq!(unchanged.spec.port, 8081);
    assert_eq!(created.spec.storage_class, "fast");
}

#[test]
fn the_crd_is_structural_and_prints_as_yaml_and_json() {
    let crd = Widget::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref();
    let schema = serde_json::to_value(schema.unwrap()).unwrap();
    kube_reconcile::crd::structural::check_structural(&schema).expect("structural");
    let yaml = Widget::to_yaml();
    assert!(yaml.contains("kind: CustomResourceDefinition"), "{yaml}");
    assert!(yaml.contains("x-kubernetes-validations"), "{yaml}");
    let json: Value = serde_json::from_str(&Widget::to_json()).unwrap();
    assert_eq!(json["metadata"]["name"], "widgets.tests.kube-reconcile.dev");
}

#[tokio::test]
async fn a_typed_create_with_options_unset_round_trips_and_nulls_are_defaulted() {
    let (api, dynamic) = widgets().await;
    // serde writes `None` as `null`: for an optional enum and a defaulted field.
    let spec: WidgetSpec = serde_json::from_value(valid_spec()).unwrap();
    assert_eq!((&spec.fallback_tier, &spec.region), (&None, &None));
    let mut widget = Widget::new("typed", spec);
    widget.spec.fallback_tier = None;
    let sent = serde_json::to_value(&widget).unwrap();
    assert!(sent["spec"]["fallbackTier"].is_null() && sent["spec"]["region"].is_null());
    let created = api
        .create(&PostParams::default(), &widget)
        .await
        .expect("the server accepts the type's own serialisation of None");
    assert_eq!(created.spec.fallback_tier, None);
    assert_eq!(
        created.spec.region.as_deref(),
        Some("eu-west"),
        "null is defaulted"
    );
    let stored = dynamic.get("typed").await.unwrap();
    assert!(
        stored.data["spec"].get("fallbackTier").is_none(),
        "null pruned, not stored: {:#}",
        stored.data["spec"]
    );

    // Set, it is an enum value like any other; explicit null on a dynamic create too.
    let mut manifest = object("explicit-null", valid_spec());
    manifest["spec"]["fallbackTier"] = json!("Silver");
    manifest["spec"]["region"] = Value::Null;
    let manifest: DynamicObject = serde_json::from_value(manifest).unwrap();
    dynamic
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let typed = api.get("explicit-null").await.unwrap();
    assert_eq!(typed.spec.fallback_tier, Some(widget::Tier::Silver));
    assert_eq!(typed.spec.region.as_deref(), Some("eu-west"));
}

#[tokio::test]
async fn a_pattern_on_an_int_or_string_field_is_enforced_on_strings() {
    let (_, dynamic) = widgets().await;
    let schema = serde_json::to_value(Widget::crd()).unwrap();
    let field = &schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["maxSurge"];
    assert_eq!(
        field["pattern"], "^[0-9]+%?$",
        "kept in the schema: {field:#}"
    );
    for (name, surge, accepted) in [
        ("count", json!(5), true),
        ("percent", json!("25%"), true),
        ("word", json!("lots"), false),
    ] {
        let mut manifest = object(&format!("surge-{name}"), valid_spec());
        manifest["spec"]["maxSurge"] = surge;
        let manifest: DynamicObject = serde_json::from_value(manifest).unwrap();
        let result = dynamic.create(&PostParams::default(), &manifest).await;
        match (accepted, result) {
            (true, Ok(_)) => {}
            (false, Err(kube::Error::Api(status))) => assert!(
                status.code == 422 && status.message.contains("spec.maxSurge"),
                "{status:?}"
            ),
            (_, other) => panic!("{name}: expected accepted={accepted}, got {other:?}"),
        }
    }
}

/// A resource in a group under `k8s.io`, which kube-apiserver accepts as conformant
/// only with the `api-approved.kubernetes.io` annotation on the CRD.
#[derive(
    kube_reconcile::crd::Crd,
    Clone,
    Debug,
    Default,
    serde::Serialize,
    serde::Deserialize,
    garde::Validate,
)]
#[crd(
    group = "gadgets.x.k8s.io",
    version = "v1",
    kind = "Gadget",
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes/enhancements/pull/1111"
    )
)]
pub struct GadgetSpec {
    /// Anything.
    #[garde(skip)]
    #[serde(default)]
    pub note: String,
}

#[tokio::test]
async fn crd_annotations_reach_the_server_and_satisfy_the_api_approval_policy() {
    let cp = support::shared(&CONTROL_PLANE, || {
        ControlPlane::builder().crds([Widget::crd()])
    })
    .await;
    let client = cp.client().await.unwrap();
    let crd = Gadget::crd();
    assert_eq!(
        crd.metadata.annotations.as_ref().unwrap()["api-approved.kubernetes.io"],
        "https://github.com/kubernetes/enhancements/pull/1111"
    );
    cp.install_crds(&client, &[crd]).await.unwrap();
    let crds = Api::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>::all(client);
    let stored = crds.get(Gadget::crd_name()).await.unwrap();
    let conditions = stored.status.unwrap().conditions.unwrap_or_default();
    let conformant = conditions
        .iter()
        .find(|c| c.type_ == "KubernetesAPIApprovalPolicyConformant")
        .unwrap_or_else(|| panic!("no approval condition in {conditions:?}"));
    assert_eq!(conformant.status, "True", "{conformant:?}");
}
