//! CustomResourceDefinitions derived from Rust types (feature `derive`, on by default).
//!
//! `#[derive(Crd)]` on a *spec* struct generates the resource type (named by `kind`),
//! its [`kube::Resource`] impl, serde, a `new(name, spec)` constructor, and a
//! [`CustomResourceExt`] impl whose [`crd()`](CustomResourceExt::crd) is a complete,
//! *structural* `apiextensions.k8s.io/v1` CRD. Validation is written once, as
//! [garde](https://docs.rs/garde) rules: `validate()` checks them in the client and the
//! CRD schema makes kube-apiserver check them too (see "garde rules" below).
//! `#[derive(CrdSchema)]` gives nested types the same `#[crd(...)]` field rules; nested
//! types without such rules may simply derive `schemars::JsonSchema`. Do not derive
//! `JsonSchema` yourself on a type that derives `Crd` or `CrdSchema`: they implement it.
//!
//! ```
//! use kube_reconcile::crd::{Crd, CrdSchema, CustomResourceExt as _};
//! use schemars::JsonSchema;
//!
//! /// A web application.
//! #[derive(Crd, Clone, Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
//! #[crd(group = "example.com", version = "v1", kind = "WebApp", namespaced,
//!       short_names("wa"), categories("all"), status = WebAppStatus,
//!       scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"),
//!       printer_column(name = "Replicas", type = "integer", json_path = ".spec.replicas"),
//!       selectable_field(json_path = ".spec.image"),
//!       validation(rule = "self.replicas <= 100", message = "at most 100 replicas"))]
//! #[serde(rename_all = "camelCase")]
//! pub struct WebAppSpec {
//!     /// The container image.
//!     #[garde(length(min = 1, max = 253))]
//!     #[crd(immutable)]
//!     pub image: String,
//!     #[garde(range(min = 0, max = 100))]
//!     #[serde(default)]
//!     pub replicas: i32,
//!     #[garde(dive)]
//!     #[crd(list_type = "map", list_map_keys("name"))]
//!     #[serde(default)]
//!     pub ports: Vec<Port>,
//! }
//!
//! #[derive(CrdSchema, Clone, Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
//! pub struct Port {
//!     #[garde(length(min = 1))]
//!     pub name: String,
//!     #[garde(range(min = 1, max = 65535))]
//!     pub port: u16,
//! }
//!
//! #[derive(JsonSchema, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
//! pub struct WebAppStatus {
//!     pub replicas: i32,
//! }
//!
//! let app = WebApp::new("web", WebAppSpec { image: "nginx".into(), replicas: 2, ports: vec![] });
//! assert_eq!(serde_json::to_value(&app).unwrap()["apiVersion"], "example.com/v1");
//! assert_eq!(WebApp::crd_name(), "webapps.example.com");
//! let crd = WebApp::crd();
//! let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
//! kube_reconcile::crd::structural::check_structural(&schema).unwrap();
//! assert_eq!(schema["properties"]["spec"]["properties"]["replicas"]["maximum"], 100.0);
//! print!("{}", WebApp::to_yaml()); // for `kubectl apply -f -`
//! ```
//!
//! Every field and container key, and how each lands in the schema:
//!
//! ```
//! use std::collections::BTreeMap;
//! use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
//! use kube_reconcile::crd::{Crd, CrdSchema, CustomResourceExt as _};
//!
//! #[derive(Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! #[crd(group = "example.com", version = "v1beta1", kind = "Job", plural = "jobs",
//!       served = true, storage = false, deprecated, deprecation_warning = "use v1",
//!       printer_column(name = "Image", type = "string", json_path = ".spec.image",
//!                      description = "the image", priority = 1),
//!       validation(rule = "!has(self.retries) || self.retries <= 10", message = "too many",
//!                  reason = "FieldValueForbidden", field_path = ".retries"))]
//! #[serde(rename_all = "camelCase")]
//! pub struct JobSpec {
//!     #[crd(immutable = "the image is fixed at creation",
//!           validation(rule = "self.contains(':')", message_expression = "'no tag in ' + self"))]
//!     pub image: String,
//!     #[crd(nullable)]
//!     pub retries: Option<i32>,
//!     #[crd(list_type = "set")]
//!     pub args: Vec<String>,
//!     #[crd(map_type = "atomic")]
//!     pub env: BTreeMap<String, String>,
//!     #[crd(int_or_string)]
//!     pub parallelism: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
//!     pub memory: Option<Quantity>,
//!     #[crd(preserve_unknown_fields)]
//!     pub config: Option<serde_json::Value>,
//!     #[crd(embedded_resource)]
//!     pub template: Option<serde_json::Value>,
//!     #[crd(default = "IfNotPresent")]
//!     pub pull_policy: Option<String>,
//!     #[crd(format = "cidr")]
//!     pub network: Option<String>,
//!     #[crd(enum_values(301, 302))]
//!     pub redirect: Option<u16>,
//!     #[crd(nullable = false)]
//!     pub note: Option<String>,
//!     #[crd(validation(rule = "!oldSelf.hasValue() || self == oldSelf.value()", optional_old_self = true))]
//!     pub size: Size,
//!     pub limits: Limits,
//! }
//!
//! /// Untagged integer-or-string enums need `int_or_string`.
//! #[derive(CrdSchema, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! #[serde(untagged)]
//! #[crd(int_or_string)]
//! pub enum Size { Count(i64), Named(String) }
//!
//! #[derive(CrdSchema, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! #[crd(struct_type = "atomic", validation(rule = "self.cpu >= 1"))]
//! pub struct Limits { pub cpu: i32 }
//!
//! let schema = serde_json::to_value(&Job::crd().spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
//! kube_reconcile::crd::structural::check_structural(&schema).unwrap();
//! let p = &schema["properties"]["spec"]["properties"];
//! assert_eq!(p["image"]["x-kubernetes-validations"][0]["rule"], "self == oldSelf");
//! assert_eq!(p["image"]["x-kubernetes-validations"][1]["messageExpression"], "'no tag in ' + self");
//! assert_eq!(p["args"]["x-kubernetes-list-type"], "set");
//! assert_eq!(p["env"]["x-kubernetes-map-type"], "atomic");
//! assert_eq!(p["parallelism"]["x-kubernetes-int-or-string"], true);
//! assert_eq!(p["memory"]["x-kubernetes-int-or-string"], true);
//! assert_eq!(p["config"]["x-kubernetes-preserve-unknown-fields"], true);
//! assert_eq!(p["template"]["x-kubernetes-embedded-resource"], true);
//! assert_eq!(p["pullPolicy"]["default"], "IfNotPresent");
//! assert_eq!(p["network"]["format"], "cidr");
//! assert_eq!(p["size"]["x-kubernetes-validations"][0]["optionalOldSelf"], true);
//! assert_eq!(p["limits"]["x-kubernetes-map-type"], "atomic");
//! assert_eq!(p["retries"]["nullable"], true);
//! assert_eq!(p["redirect"]["enum"], serde_json::json!([301, 302]));
//! assert_eq!(p["note"]["nullable"], false);
//! assert_eq!(schema["required"], serde_json::json!(["spec"]));
//! ```
//!
//! The root requires `spec` unless the spec type is `#[serde(default)]` (and so
//! `Default`): then an object without a spec is valid, and reads as the default spec.
//!
//! ```
//! use kube_reconcile::crd::{Crd, CustomResourceExt as _};
//!
//! #[derive(Crd, Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
//! #[crd(group = "example.com", version = "v1", kind = "Zone")]
//! #[serde(default)]
//! pub struct ZoneSpec { pub records: Option<Vec<String>> }
//!
//! let schema = serde_json::to_value(&Zone::crd().spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
//! assert!(schema.get("required").is_none());
//! let zone: Zone = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "example.com/v1", "kind": "Zone", "metadata": {"name": "z"}
//! })).unwrap();
//! assert!(zone.spec.records.is_none());
//! ```
//!
//! The attribute grammar, the garde rules enforced by the server, and a table mapping
//! every controller-gen marker to its `#[crd]` spelling are in the
//! [`kube_reconcile_derive`] crate docs.
//!
//! Several versions of one kind are separate Rust types (usually in modules `v1`, `v2`)
//! whose CRDs [`merge_versions`] joins; [`Conversion`] converts objects between them
//! through `From` impls.

mod build;
mod conversion;
mod error;
mod merge;
pub mod structural;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub use conversion::Conversion;
pub use error::CrdError;
#[doc(inline)]
pub use kube_reconcile_derive::{Crd, CrdSchema};
pub use merge::merge_versions;

/// What `#[derive(Crd)]` implements on the generated resource type.
pub trait CustomResourceExt {
    /// The complete CustomResourceDefinition (one version) for this type.
    fn crd() -> CustomResourceDefinition;
    /// The CRD's own name, `<plural>.<group>`.
    fn crd_name() -> &'static str;
    /// Group, version, kind and plural, for [`kube::Api::all_with`] and dynamic clients.
    fn api_resource() -> kube::core::ApiResource;
    /// The short names declared with `short_names(...)`.
    fn short_names() -> &'static [&'static str];
    /// The CRD as YAML, ready for `kubectl apply -f`.
    ///
    /// Written by `serde-saphyr` (the YAML crate kube itself uses) with its defaults:
    /// two-space indentation, no document marker, quotes around strings that a YAML 1.1
    /// reader would take for a number, boolean or null, and multi-line strings (such as
    /// doc comments of several paragraphs) as literal block scalars (`|-`). The exact text
    /// may change with serde-saphyr versions; compare parsed values, not text.
    fn to_yaml() -> String {
        // A CRD is plain data with string keys: serialization cannot fail.
        serde_saphyr::to_string(&Self::crd()).expect("a CRD always serializes")
    }
    /// The CRD as pretty-printed JSON.
    fn to_json() -> String {
        serde_json::to_string_pretty(&Self::crd()).expect("a CRD always serializes")
    }
}

/// What generated code refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::CustomResourceExt;
    pub use super::build::{CrdInfo, PrinterColumn, build_crd, schema_for};
    pub use k8s_openapi;
    pub use kube;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}
