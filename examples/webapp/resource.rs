//! The `WebApp` custom resource: one set of attributes gives its CRD (schema, CEL rules,
//! printer columns, subresources) and `validate()`.

use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

/// A stateless web application: an image served on a port by some replicas.
#[derive(Crd, Clone, Debug, PartialEq, Serialize, Deserialize, garde::Validate)]
#[crd(
    group = "demo.kube-reconcile.dev",
    version = "v1",
    kind = "WebApp",
    namespaced,
    short_names("wa"),
    categories("all"),
    status = WebAppStatus,
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printer_column(name = "Image", type = "string", json_path = ".spec.image"),
    printer_column(name = "Desired", type = "integer", json_path = ".spec.replicas"),
    printer_column(name = "Ready", type = "integer", json_path = ".status.readyReplicas"),
    printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp"),
    validation(
        rule = "self.serviceType != 'NodePort' || self.port >= 1024",
        message = "a NodePort WebApp must serve on port 1024 or above"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WebAppSpec {
    /// The container image, e.g. `nginx:1.27`.
    #[garde(length(min = 1, max = 255), pattern(r"^[^\s]+$"))]
    pub image: String,
    /// How many pods serve it.
    #[garde(range(min = 0, max = 100))]
    #[serde(default = "one")]
    pub replicas: i32,
    /// The port the container listens on, and the Service's port.
    #[garde(range(min = 1, max = 65535), custom(node_port_needs_high_port(&self.service_type)))]
    #[serde(default = "http")]
    pub port: i32,
    /// Environment of the container, keyed by name (at most 64 variables: a bound the
    /// server also needs to cost the item rules).
    #[crd(list_type = "map", list_map_keys("name"))]
    #[garde(length(max = 64), dive)]
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// How the Service is exposed; fixed at creation.
    #[crd(immutable = "serviceType cannot change once the WebApp exists")]
    #[garde(skip)]
    #[serde(default)]
    pub service_type: ServiceType,
}

fn one() -> i32 {
    1
}

fn http() -> i32 {
    8080
}

fn node_port_needs_high_port(
    service_type: &ServiceType,
) -> impl FnOnce(&i32, &()) -> garde::Result + '_ {
    move |port, _| match service_type {
        ServiceType::NodePort if *port < 1024 => Err(garde::Error::new(
            "a NodePort WebApp must serve on port 1024 or above",
        )),
        _ => Ok(()),
    }
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, CrdSchema, garde::Validate)]
pub struct EnvVar {
    /// A C identifier.
    #[garde(
        length(chars, min = 1, max = 128),
        pattern(r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    /// The value, up to 4,096 characters.
    #[garde(length(chars, max = 4096))]
    #[serde(default)]
    pub value: String,
}

/// How the Service is exposed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ServiceType {
    /// Inside the cluster only.
    #[default]
    ClusterIP,
    /// On a port of every Node too.
    NodePort,
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAppStatus {
    /// Pods of the current Deployment.
    pub replicas: i32,
    /// Of those, ready.
    pub ready_replicas: i32,
    /// The pods' label selector, for the scale subresource (`kubectl scale`, HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: whether every wanted replica is ready (see `kube_reconcile::conditions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
