//! The WebApp operator: one sync function that applies the Deployment and the Service
//! a WebApp describes and reports the Deployment's progress in the WebApp's status.

use std::collections::BTreeMap;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use kube_reconcile::{
    controller::Controller,
    informer::{InformerFactory, Scope},
    reconcile::{Action, Reconcile, Request},
    store::Store,
};
use serde_json::{Value, json};

use super::resource::{ServiceType, WebApp, WebAppStatus};

/// The field manager of everything this operator writes.
pub const MANAGER: &str = "webapp-operator";

/// What can fail in a sync; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Applying a child or the status failed.
    #[error("applying {what} of {name} failed")]
    Apply {
        /// Which object.
        what: &'static str,
        /// The WebApp.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Shared state of the workers.
pub struct WebAppOperator {
    client: Client,
    deployments: Store<Deployment>,
}

/// The controller for WebApps in `scope`: WebApps are primary; changes to the
/// Deployments and Services they control bring them back to the queue.
pub fn controller(
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
) -> Controller<WebApp, WebAppOperator> {
    let deployments = factory.informer::<Deployment>(scope).store().clone();
    Controller::<WebApp>::builder("webapp", factory, scope)
        .owns::<Deployment>(scope)
        .owns::<Service>(scope)
        .workers(2)
        .build(WebAppOperator {
            client,
            deployments,
        })
}

impl Reconcile<WebApp> for WebAppOperator {
    type Error = Error;

    async fn reconcile(&self, request: Request<WebApp>) -> Result<Action, Error> {
        // A deleted WebApp's children go with it: they carry its controller reference,
        // and the garbage collector deletes what lost its owner.
        let Some(app) = request.object else {
            return Ok(Action::Done);
        };
        let name = app.name_any();
        let namespace = app.namespace().unwrap_or_default();
        let apply = PatchParams::apply(MANAGER).force();
        let failed = |what| {
            let name = name.clone();
            move |source| Error::Apply { what, name, source }
        };

        Api::<Deployment>::namespaced(self.client.clone(), &namespace)
            .patch(&name, &apply, &Patch::Apply(deployment(&app)))
            .await
            .map_err(failed("Deployment"))?;
        Api::<Service>::namespaced(self.client.clone(), &namespace)
            .patch(&name, &apply, &Patch::Apply(service(&app)))
            .await
            .map_err(failed("Service"))?;

        // Status from the cached Deployment: its changes requeue us, so it converges.
        let status = self.status(&app, &namespace, &name);
        if app.status.as_ref() != Some(&status) {
            let patch = json!({
                "apiVersion": WebApp::api_version(&()),
                "kind": WebApp::kind(&()),
                "status": status,
            });
            Api::<WebApp>::namespaced(self.client.clone(), &namespace)
                .patch_status(&name, &apply, &Patch::Apply(patch))
                .await
                .map_err(failed("status"))?;
        }
        Ok(Action::Done)
    }
}

impl WebAppOperator {
    fn status(&self, app: &WebApp, namespace: &str, name: &str) -> WebAppStatus {
        let observed = self
            .deployments
            .get_named(Some(namespace), name)
            .filter(|d| is_controlled_by(&d.metadata, app))
            .and_then(|d| d.status.clone())
            .unwrap_or_default();
        WebAppStatus {
            replicas: observed.replicas.unwrap_or(0),
            ready_replicas: observed.ready_replicas.unwrap_or(0),
            selector: Some(format!("app.kubernetes.io/instance={name}")),
            observed_generation: app.metadata.generation,
        }
    }
}

fn is_controlled_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    app: &WebApp,
) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(&r.uid) == app.metadata.uid.as_ref())
}

fn labels(app: &WebApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "webapp".into()),
        ("app.kubernetes.io/instance".into(), app.name_any()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
    ])
}

fn owner(app: &WebApp) -> Value {
    json!([app
        .controller_owner_ref(&())
        .expect("a stored WebApp has a name and UID")])
}

/// The Deployment a WebApp describes (only the fields this operator owns).
pub fn deployment(app: &WebApp) -> Value {
    let selector = json!({"app.kubernetes.io/instance": app.name_any()});
    let env: Vec<Value> = app
        .spec
        .env
        .iter()
        .map(|e| json!({"name": e.name, "value": e.value}))
        .collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app.name_any(), "labels": labels(app), "ownerReferences": owner(app)},
        "spec": {
            "replicas": app.spec.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(app)},
                "spec": {"containers": [{
                    "name": "web",
                    "image": app.spec.image,
                    "ports": [{"name": "http", "containerPort": app.spec.port}],
                    "env": env,
                }]},
            },
        },
    })
}

/// The Service in front of a WebApp's pods.
pub fn service(app: &WebApp) -> Value {
    let type_ = match app.spec.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app.name_any(), "labels": labels(app), "ownerReferences": owner(app)},
        "spec": {
            "type": type_,
            "selector": {"app.kubernetes.io/instance": app.name_any()},
            "ports": [{"name": "http", "port": app.spec.port, "targetPort": "http"}],
        },
    })
}
