//! The WebApp operator: one sync function that applies the Deployment and the Service
//! a WebApp describes and reports the Deployment's progress in the WebApp's status.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, ContainerPort, EnvVar, PodSpec, PodTemplateSpec, Service, ServicePort,
            ServiceSpec,
        },
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use kube::{Resource, ResourceExt};
use kube_reconcile::{
    apply::ApplyError,
    conditions::{self, ConditionExt},
    ownership::is_controlled_by,
    prelude::*,
};

use super::resource::{ServiceType, WebApp, WebAppStatus};

/// The field manager of everything this operator writes (and its controller name).
pub const MANAGER: &str = "webapp-operator";
/// The condition type saying whether every wanted replica is ready.
pub const READY: &str = "Ready";
/// `Ready` is true: as many ready replicas as the spec asks for.
pub const REASON_REPLICAS_READY: &str = "ReplicasReady";
/// `Ready` is false: fewer ready replicas than the spec asks for.
pub const REASON_REPLICAS_NOT_READY: &str = "ReplicasNotReady";

/// What can fail in a sync; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Applying a child or the status failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Shared state of the workers.
pub struct WebAppOperator {
    deployments: Store<Deployment>,
}

/// The controller for WebApps in `scope`: WebApps are primary; changes to the
/// Deployments and Services they control bring them back to the queue.
pub fn controller(factory: &InformerFactory, scope: &Scope) -> Controller<WebApp, WebAppOperator> {
    let builder = Controller::<WebApp>::builder(MANAGER, factory, scope)
        .owns::<Deployment>(scope)
        .owns::<Service>(scope)
        // Server-side apply is a patch, and creates what does not exist yet.
        .needs::<Deployment>(&["create", "patch"])
        .needs::<Service>(&["create", "patch"])
        .needs_subresource::<WebApp>("status", &["patch"])
        .workers(2);
    let deployments = builder.store::<Deployment>().expect("owned above");
    builder.build(WebAppOperator { deployments })
}

impl Reconcile<WebApp> for WebAppOperator {
    type Error = Error;

    async fn reconcile(&self, request: Request<WebApp>) -> Result<Action, Error> {
        // A deleted WebApp's children go with it: they carry its controller reference,
        // and the garbage collector deletes what lost its owner.
        let Some(app) = request.object else {
            return Ok(Action::Done);
        };
        let apply = request.ctx.applier();
        apply.apply(&deployment(&app)).await?;
        apply.apply(&service(&app)).await?;

        // Status from the cached Deployment: its changes requeue us, so it converges.
        let status = self.status(&app);
        if app.status.as_ref() != Some(&status) {
            apply.apply_status(&*app, &status).await?;
        }
        Ok(Action::Done)
    }
}

impl WebAppOperator {
    fn status(&self, app: &WebApp) -> WebAppStatus {
        let name = app.name_any();
        let observed = self
            .deployments
            .get_named(app.namespace().as_deref(), &name)
            .filter(|d| is_controlled_by(&**d, app))
            .and_then(|d| d.status.clone())
            .unwrap_or_default();
        let ready = observed.ready_replicas.unwrap_or(0);
        let wanted = app.spec.replicas;
        let all_ready = ready >= wanted;
        let reason = if all_ready {
            REASON_REPLICAS_READY
        } else {
            REASON_REPLICAS_NOT_READY
        };
        // Start from the stored conditions so the transition time survives.
        let mut conditions_now = app
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let message = format!("{ready} of {wanted} replicas ready");
        let condition = conditions::new(READY, all_ready, reason, message).for_generation(app);
        conditions::set(&mut conditions_now, condition);
        WebAppStatus {
            replicas: observed.replicas.unwrap_or(0),
            ready_replicas: ready,
            selector: Some(format!("app.kubernetes.io/instance={name}")),
            observed_generation: app.metadata.generation,
            conditions: conditions_now,
        }
    }
}

fn labels(app: &WebApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "webapp".into()),
        ("app.kubernetes.io/instance".into(), app.name_any()),
        ("app.kubernetes.io/managed-by".into(), MANAGER.into()),
    ])
}

/// The metadata of a child: same name and namespace, our labels, controlled by `app`.
fn child_metadata(app: &WebApp) -> ObjectMeta {
    ObjectMeta {
        name: Some(app.name_any()),
        namespace: app.namespace(),
        labels: Some(labels(app)),
        owner_references: app.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

fn selector(app: &WebApp) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/instance".into(), app.name_any())])
}

/// The Deployment a WebApp describes (only the fields this operator owns).
pub fn deployment(app: &WebApp) -> Deployment {
    let env = app
        .spec
        .env
        .iter()
        .map(|e| EnvVar {
            name: e.name.clone(),
            value: Some(e.value.clone()),
            ..EnvVar::default()
        })
        .collect();
    let container = Container {
        name: "web".into(),
        image: Some(app.spec.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: app.spec.port,
            ..ContainerPort::default()
        }]),
        env: Some(env),
        ..Container::default()
    };
    Deployment {
        metadata: child_metadata(app),
        spec: DeploymentSpec {
            replicas: Some(app.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(app)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(app)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// The Service in front of a WebApp's pods.
pub fn service(app: &WebApp) -> Service {
    let type_ = match app.spec.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
    };
    Service {
        metadata: child_metadata(app),
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            selector: Some(selector(app)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: app.spec.port,
                target_port: Some(IntOrString::String("http".into())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
