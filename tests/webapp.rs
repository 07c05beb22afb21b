//! The WebApp example operator end to end: its CRD (from `#[derive(Crd)]`) on a real
//! control plane, the Deployment and Service it applies, status that follows the pods,
//! the scale subresource, and the server refusing invalid WebApps.

mod support;
#[path = "../examples/webapp/mod.rs"]
mod webapp;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    conditions,
    crd::CustomResourceExt,
    informer::{InformerFactory, Scope},
    testing::ControlPlane,
};
use serde_json::json;
use webapp::{operator, resource::WebApp};

fn web_app(name: &str, spec: serde_json::Value) -> WebApp {
    serde_json::from_value(json!({
        "apiVersion": "demo.kube-reconcile.dev/v1",
        "kind": "WebApp",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_web_app_gets_a_deployment_and_a_service_and_reports_ready_pods() {
    let cp = support::start(
        ControlPlane::builder()
            .fake_nodes(2)
            .kube_controller_manager(["deployment-controller", "replicaset-controller"])
            .crds([WebApp::crd()]),
    )
    .await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "webapp").await.unwrap();
    // The operator runs as a ServiceAccount allowed only its generated role.
    let operator = support::impersonating(&cp, &ns, "webapp-operator").await;
    let factory = InformerFactory::new(operator);
    let scope = Scope::all().namespace(&ns);
    let controller = webapp::operator::controller(&factory, &scope);
    support::grant(&client, &ns, "webapp-operator", controller.permissions()).await;
    let controller = controller.start();

    let apps = Api::<WebApp>::namespaced(client.clone(), &ns);
    let spec =
        json!({"image": "nginx:1.27", "replicas": 2, "env": [{"name": "MODE", "value": "demo"}]});
    let created = apps
        .create(&PostParams::default(), &web_app("hello", spec))
        .await
        .unwrap();
    assert_eq!(created.spec.port, 8080, "the schema's default applies");

    let ready = |n: i32| {
        move |app: Option<&WebApp>| {
            app.and_then(|a| a.status.as_ref())
                .is_some_and(|s| s.ready_replicas == n && s.replicas == n)
        }
    };
    let app = support::wait_for(&apps, "hello", "2 ready replicas", ready(2)).await;
    let status = app.status.unwrap();
    let condition = conditions::find(&status.conditions, operator::READY).unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", operator::REASON_REPLICAS_READY)
    );
    assert_eq!(condition.observed_generation, app.metadata.generation);

    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("hello")
        .await
        .unwrap();
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("WebApp", Some(true))
    );
    let container = &deployment.spec.template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(container.env.as_ref().unwrap()[0].name, "MODE");
    let service = Api::<Service>::namespaced(client.clone(), &ns)
        .get("hello")
        .await
        .unwrap();
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.port, 8080);

    // `kubectl scale webapp hello --replicas=3` goes through the scale subresource.
    let scale = json!({"spec": {"replicas": 3}});
    apps.patch_scale("hello", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    support::wait_for(&apps, "hello", "3 ready replicas", ready(3)).await;
    let scale = apps.get_scale("hello").await.unwrap();
    assert_eq!(
        scale.status.and_then(|s| s.selector).as_deref(),
        Some("app.kubernetes.io/instance=hello")
    );

    // The server refuses what the schema and the CEL rules forbid.
    let refused = |result: Result<WebApp, kube::Error>, words: &str| match result {
        Err(kube::Error::Api(status)) => assert!(
            status.code == 422 && status.message.contains(words),
            "expected a 422 mentioning {words:?}: {status:?}"
        ),
        other => panic!("expected a refusal mentioning {words:?}, got {other:?}"),
    };
    let too_many = web_app("big", json!({"image": "nginx", "replicas": 1000}));
    refused(
        apps.create(&PostParams::default(), &too_many).await,
        "spec.replicas",
    );
    let low_node_port = web_app(
        "np",
        json!({"image": "nginx", "serviceType": "NodePort", "port": 80}),
    );
    refused(
        apps.create(&PostParams::default(), &low_node_port).await,
        "a NodePort WebApp must serve on port 1024 or above",
    );
    let change_type = json!({"spec": {"serviceType": "NodePort"}});
    refused(
        apps.patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(&change_type),
        )
        .await,
        "serviceType cannot change once the WebApp exists",
    );

    controller.shutdown().await;
    assert_eq!(
        factory.len(),
        3,
        "WebApps, Deployments and Services, one watch each"
    );
}

#[test]
fn the_printed_crd_is_what_the_operator_installs() {
    let yaml = WebApp::to_yaml();
    assert!(
        yaml.contains("name: webapps.demo.kube-reconcile.dev"),
        "{yaml}"
    );
    assert!(yaml.contains("scale:"), "{yaml}");
    assert!(yaml.contains("additionalPrinterColumns:"), "{yaml}");
}
