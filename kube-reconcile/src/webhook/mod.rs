//! Admission and conversion webhooks for custom resources (feature `webhook`):
//! validating (the spec's garde rules plus checks the schema cannot express), defaulting
//! (serde's defaults plus a hook), and conversion between versions (a
//! [`Conversion`]), served over TLS, with the webhook configurations generated from
//! the types.
//!
//! ```no_run
//! # async fn demo(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use kube_reconcile::{crd::Crd, webhook::{WebhookEndpoint, Webhooks}};
//!
//! #[derive(Crd, Clone, Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
//! #[crd(group = "example.com", version = "v1", kind = "Range", namespaced)]
//! pub struct RangeSpec {
//!     #[garde(skip)]
//!     pub min: i32,
//!     #[garde(skip)]
//!     pub max: i32,
//!     #[garde(skip)]
//!     pub label: Option<String>,
//! }
//!
//! let webhooks = Webhooks::new()
//!     .validate::<Range>(|range, _old| {
//!         if range.spec.min > range.spec.max {
//!             return Err("spec.min must not exceed spec.max".into());
//!         }
//!         Ok(())
//!     })
//!     .defaults::<Range>(|range| {
//!         range.spec.label.get_or_insert_with(|| "unnamed".into());
//!     });
//! let endpoint = WebhookEndpoint::service("operators", "range-webhooks", 443, ca_pem);
//! let validating = webhooks.validating_configuration("range-operator", &endpoint);
//! let mutating = webhooks.mutating_configuration("range-operator", &endpoint);
//! // kubectl apply both; then serve (cert-manager's certificate, say):
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9443").await?;
//! webhooks.serve(listener, cert_pem, key_pem)?.await;
//! # Ok(()) }
//! ```
//!
//! Caveats: a hook runs on the server's task and must not block; a panicking hook
//! answers HTTP 500 and the API server applies the configuration's failure policy
//! (`Fail`). The defaulting patch covers `spec` only.

mod review;
mod server;

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
        ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::core::{Resource, object::HasSpec};
use serde::{Serialize, de::DeserializeOwned};
use tokio::net::TcpListener;

use crate::crd::Conversion;
use review::Handler;
pub use review::Verdict;

/// A webhook server that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key is unusable.
    #[error("webhook TLS: {0}")]
    Tls(String),
}

/// Where the API server reaches the webhooks: a URL or an in-cluster Service, with the
/// CA bundle (PEM) that signed the server's certificate.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    target: Target,
    ca_pem: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Target {
    /// `https://host:port`, no path.
    Url(String),
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

impl WebhookEndpoint {
    /// Reached at `base` (`https://host:port`, e.g. a webhook outside the cluster or
    /// on the test machine).
    pub fn url(base: impl Into<String>, ca_pem: &[u8]) -> Self {
        Self {
            target: Target::Url(base.into().trim_end_matches('/').to_string()),
            ca_pem: ca_pem.to_vec(),
        }
    }

    /// Reached through Service `namespace/name` on `port`.
    pub fn service(namespace: &str, name: &str, port: i32, ca_pem: &[u8]) -> Self {
        Self {
            target: Target::Service {
                namespace: namespace.into(),
                name: name.into(),
                port,
            },
            ca_pem: ca_pem.to_vec(),
        }
    }

    fn admission(&self, path: &str) -> WebhookClientConfig {
        let (url, service) = self.parts(path);
        WebhookClientConfig {
            ca_bundle: Some(ByteString(self.ca_pem.clone())),
            url,
            service: service.map(|(namespace, name, port)| ServiceReference {
                namespace,
                name,
                port: Some(port),
                path: Some(path.to_string()),
            }),
        }
    }

    fn conversion(&self, path: &str) -> apiextensions::WebhookClientConfig {
        let (url, service) = self.parts(path);
        apiextensions::WebhookClientConfig {
            ca_bundle: Some(ByteString(self.ca_pem.clone())),
            url,
            service: service.map(|(namespace, name, port)| apiextensions::ServiceReference {
                namespace,
                name,
                port: Some(port),
                path: Some(path.to_string()),
            }),
        }
    }

    #[allow(clippy::type_complexity)]
    fn parts(&self, path: &str) -> (Option<String>, Option<(String, String, i32)>) {
        match &self.target {
            Target::Url(base) => (Some(format!("{base}{path}")), None),
            Target::Service {
                namespace,
                name,
                port,
            } => (None, Some((namespace.clone(), name.clone(), *port))),
        }
    }
}

/// The resource a hook serves: group, version, plural and scope.
#[derive(Debug, Clone)]
struct Hooked {
    group: String,
    version: String,
    plural: String,
    namespaced: bool,
}

impl Hooked {
    fn of<K: Resource<DynamicType = ()>>() -> Self {
        Self {
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            namespaced: std::any::type_name::<K::Scope>()
                == std::any::type_name::<k8s_openapi::NamespaceResourceScope>(),
        }
    }

    fn path(&self, kind: &str) -> String {
        format!("/{kind}/{}/{}/{}", self.group, self.version, self.plural)
    }

    fn rule(&self) -> RuleWithOperations {
        RuleWithOperations {
            api_groups: Some(vec![self.group.clone()]),
            api_versions: Some(vec![self.version.clone()]),
            resources: Some(vec![self.plural.clone()]),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            scope: Some(
                if self.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                }
                .into(),
            ),
        }
    }

    /// A webhook name: fully qualified, as the API server requires.
    fn webhook_name(&self, kind: &str) -> String {
        format!("{kind}.{}.{}", self.plural, self.group)
    }
}

/// The webhooks one server answers; see the [module docs](self).
#[derive(Clone, Default)]
pub struct Webhooks {
    routes: HashMap<String, Handler>,
    validating: Vec<Hooked>,
    mutating: Vec<Hooked>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut paths: Vec<&String> = self.routes.keys().collect();
        paths.sort();
        f.debug_struct("Webhooks").field("paths", &paths).finish()
    }
}

impl Webhooks {
    /// No webhooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates `K` on create and update: the spec's garde rules (which the CRD schema
    /// mostly mirrors, so this matters for rules it cannot), then `check(new, old)`;
    /// `Err(message)` refuses the request with that message.
    pub fn validate<K>(
        mut self,
        check: impl Fn(&K, Option<&K>) -> Verdict + Send + Sync + 'static,
    ) -> Self
    where
        K: Resource<DynamicType = ()> + HasSpec + DeserializeOwned + Send + Sync + 'static,
        K::Spec: garde::Validate<Context = ()>,
    {
        let target = Hooked::of::<K>();
        self.routes
            .insert(target.path("validate"), review::validating::<K, _>(check));
        self.validating.push(target);
        self
    }

    /// Defaults `K` on create and update: the object is decoded as `K` (serde's
    /// defaults fill missing fields), `hook` may set more, and the spec's changes go
    /// back to the API server as a patch.
    pub fn defaults<K>(mut self, hook: impl Fn(&mut K) + Send + Sync + 'static) -> Self
    where
        K: Resource<DynamicType = ()> + HasSpec + DeserializeOwned + Send + Sync + 'static,
        K::Spec: Serialize,
    {
        let target = Hooked::of::<K>();
        self.routes
            .insert(target.path("default"), review::defaulting::<K, _>(hook));
        self.mutating.push(target);
        self
    }

    /// Converts between the versions of the CRD `crd_name` (`<plural>.<group>`) with
    /// `conversion`; [`set_conversion`](Self::set_conversion) points the CRD here.
    pub fn convert(mut self, crd_name: &str, conversion: Conversion) -> Self {
        self.routes
            .insert(conversion_path(crd_name), review::converting(conversion));
        self
    }

    /// The ValidatingWebhookConfiguration `name` for every [`validate`](Self::validate)
    /// (failure policy `Fail`, no side effects).
    pub fn validating_configuration(
        &self,
        name: &str,
        endpoint: &WebhookEndpoint,
    ) -> ValidatingWebhookConfiguration {
        let webhooks = self.validating.iter().map(|target| ValidatingWebhook {
            name: target.webhook_name("validate"),
            client_config: endpoint.admission(&target.path("validate")),
            rules: Some(vec![target.rule()]),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            ..ValidatingWebhook::default()
        });
        ValidatingWebhookConfiguration {
            metadata: named(name),
            webhooks: Some(webhooks.collect()),
        }
    }

    /// The MutatingWebhookConfiguration `name` for every [`defaults`](Self::defaults).
    pub fn mutating_configuration(
        &self,
        name: &str,
        endpoint: &WebhookEndpoint,
    ) -> MutatingWebhookConfiguration {
        let webhooks = self.mutating.iter().map(|target| MutatingWebhook {
            name: target.webhook_name("default"),
            client_config: endpoint.admission(&target.path("default")),
            rules: Some(vec![target.rule()]),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            reinvocation_policy: Some("IfNeeded".into()),
            ..MutatingWebhook::default()
        });
        MutatingWebhookConfiguration {
            metadata: named(name),
            webhooks: Some(webhooks.collect()),
        }
    }

    /// Points `crd`'s conversion at this server's [`convert`](Self::convert) route.
    pub fn set_conversion(
        crd: &mut apiextensions::CustomResourceDefinition,
        endpoint: &WebhookEndpoint,
    ) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crd.spec.conversion = Some(apiextensions::CustomResourceConversion {
            strategy: "Webhook".into(),
            webhook: Some(apiextensions::WebhookConversion {
                client_config: Some(endpoint.conversion(&conversion_path(&name))),
                conversion_review_versions: vec!["v1".into()],
            }),
        });
    }

    /// Serves the webhooks over TLS with the PEM certificate chain and key on
    /// `listener`: the returned future runs until dropped.
    pub fn serve(
        self,
        listener: TcpListener,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<impl Future<Output = ()> + Send + 'static, WebhookError> {
        let acceptor = server::acceptor(cert_pem, key_pem)?;
        Ok(server::serve(listener, acceptor, Arc::new(self.routes)))
    }
}

fn conversion_path(crd_name: &str) -> String {
    format!("/convert/{crd_name}")
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}
