//! The kube-reconcile demo: a real local control plane with fake Nodes, kube-reconcile's
//! ReplicaSet, Deployment, EndpointSlice and Endpoints controllers running on it, a
//! ReplicaSet scaled up and down, then a Deployment rolled out to a new image and rolled
//! back, with live progress in the words of `kubectl rollout status`, then a Service
//! over its pods whose endpoints follow the pods live (one on a hand-driven Node turns
//! NotReady). Then it keeps running for `kubectl` until Ctrl-C.
//!
//! ```text
//! cargo run --example demo                 # the embedded control plane, 3 fake Nodes
//! cargo run --example demo -- --nodes 5    # with five fake Nodes
//! ```

mod controllers;
#[path = "common/logging.rs"]
mod logging;

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    controller::shutdown_signal,
    informer::{InformerFactory, Scope},
    testing::{ControlPlane, KUBERNETES_VERSION, MANUAL_NODE_NAME, PodState, set_pod_state},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init_tracing("warn");
    let nodes = parse_nodes(std::env::args().skip(1))?;

    println!("Starting a local control plane ({KUBERNETES_VERSION}) with {nodes} fake Nodes...");
    let started = Instant::now();
    let control_plane = ControlPlane::builder()
        .fake_nodes(nodes)
        .manual_node()
        .start()
        .await?;
    let client = control_plane.client().await?;
    let version = client.apiserver_version().await?;
    println!(
        "Control plane up in {:.1?}: kube-apiserver {} at {}",
        started.elapsed(),
        version.git_version,
        control_plane.server_url()
    );
    println!(
        "Reach it with:\n  export KUBECONFIG={}",
        control_plane.kubeconfig_path().display()
    );

    let factory = InformerFactory::new(client.clone()).with_server_url(control_plane.server_url());
    let running = [
        controllers::replicaset::controller(client.clone(), &factory, &Scope::all(), 5).start(),
        controllers::deployment::controller(client.clone(), &factory, &Scope::all(), 5).start(),
        controllers::endpointslice::controller(
            client.clone(),
            &factory,
            &Scope::all(),
            5,
            controllers::endpointslice::MAX_ENDPOINTS_PER_SLICE,
            Duration::ZERO,
        )
        .start(),
        controllers::endpoints::controller(
            client.clone(),
            &factory,
            &Scope::all(),
            5,
            Duration::ZERO,
        )
        .start(),
    ];
    println!(
        "Running kube-reconcile's ReplicaSet, Deployment, EndpointSlice and Endpoints \
         controllers (kube-controller-manager is not started)."
    );

    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    replica_sets
        .create(&PostParams::default(), &demo_replica_set())
        .await?;
    for replicas in [5, 2, 0, 3] {
        println!("\nScaling ReplicaSet default/demo to {replicas}:");
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        replica_sets
            .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        follow(&replica_sets, replicas).await?;
    }
    replica_sets.delete("demo", &Default::default()).await?;

    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let steps = [
        (
            "Creating Deployment default/web with 5 replicas of pause:3.10",
            None,
        ),
        (
            "Rolling out a new image (pause:3.9)",
            Some(image_patch("3.9")),
        ),
        (
            "Rolling back to the previous revision",
            Some(rollback_patch()),
        ),
    ];
    for (what, patch) in steps {
        println!("\n{what}:");
        match patch {
            None => {
                deployments
                    .create(&PostParams::default(), &demo_deployment())
                    .await?;
            }
            Some(patch) => {
                deployments
                    .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
        }
        rollout_status(&deployments, "web").await?;
    }
    service_endpoints_part(&client, &deployments).await?;
    println!(
        "\nTry: kubectl get deploy,rs,pods,endpointslices -o wide; kubectl rollout history \
         deploy/web; kubectl set image deploy/web app=registry.k8s.io/pause:3.8"
    );
    println!("Press Ctrl-C to stop.");

    shutdown_signal().await;
    println!("Stopping...");
    for controller in running {
        controller.shutdown().await;
    }
    control_plane.stop().await;
    println!("Stopped.");
    Ok(())
}

/// Prints the ReplicaSet's status each time it changes until it settles at `replicas`.
async fn follow(api: &Api<ReplicaSet>, replicas: i32) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let rs = api.get("demo").await?;
        let status = rs.status.unwrap_or_default();
        let line = format!(
            "  replicas {}  ready {}  available {}  terminating {}",
            status.replicas,
            status.ready_replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.terminating_replicas.unwrap_or(0),
        );
        if line != last {
            println!("{line}   (+{:.1?})", started.elapsed());
            last = line;
        }
        let settled =
            status.replicas == replicas && status.available_replicas.unwrap_or(0) == replicas;
        if settled && status.observed_generation == rs.metadata.generation {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the ReplicaSet did not settle"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Service over the Deployment's pods: its endpoints follow a scale-down, a pod on the
/// hand-driven Node turning Ready, then NotReady.
async fn service_endpoints_part(
    client: &kube::Client,
    deployments: &Api<Deployment>,
) -> anyhow::Result<()> {
    let services = Api::<Service>::namespaced(client.clone(), "default");
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "default");
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    println!("\nCreating Service default/web over the Deployment's pods:");
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }))?;
    services.create(&PostParams::default(), &service).await?;
    follow_endpoints(&slices, (5, 0)).await?;
    println!("\nScaling Deployment default/web to 3:");
    let three = serde_json::json!({"spec": {"replicas": 3}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&three))
        .await?;
    follow_endpoints(&slices, (3, 0)).await?;
    println!("\nA pod of the Service on the hand-driven Node turns Ready, then NotReady:");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hand-driven", "labels": {"app": "web"}},
        "spec": {"nodeName": MANUAL_NODE_NAME, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    set_pod_state(&pods, "hand-driven", &PodState::ready("10.250.0.10")).await?;
    follow_endpoints(&slices, (4, 0)).await?;
    set_pod_state(&pods, "hand-driven", &PodState::not_ready("10.250.0.10")).await?;
    follow_endpoints(&slices, (3, 1)).await?;
    Ok(())
}

/// Prints the Service's endpoints (ready, not ready) each time they change until they
/// reach `wanted`.
async fn follow_endpoints(
    slices: &Api<EndpointSlice>,
    wanted: (usize, usize),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = None;
    loop {
        let listed = slices
            .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=web"))
            .await?;
        let endpoints = listed
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten());
        let (mut ready, mut not_ready) = (0, 0);
        for endpoint in endpoints {
            let is_ready = endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true);
            if is_ready { ready += 1 } else { not_ready += 1 }
        }
        if last != Some((ready, not_ready)) {
            println!(
                "  endpoints of Service default/web: {ready} ready, {not_ready} not ready   (+{:.1?})",
                started.elapsed()
            );
            last = Some((ready, not_ready));
        }
        if (ready, not_ready) == wanted {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the endpoints did not follow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints the rollout's progress as `kubectl rollout status` words it, each time it
/// changes, until the rollout finishes.
async fn rollout_status(api: &Api<Deployment>, name: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let d = api.get(name).await?;
        let (line, done) = rollout_message(&d);
        if line != last {
            println!("  {line}   (+{:.1?})", started.elapsed());
            last = line;
        }
        if done {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the rollout did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// kubectl's message for a Deployment's rollout, and whether it is finished.
fn rollout_message(d: &Deployment) -> (String, bool) {
    let name = d.metadata.name.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation > status.observed_generation {
        return (
            "Waiting for deployment spec update to be observed...".into(),
            false,
        );
    }
    let desired = d.spec.replicas.unwrap_or(1);
    let (replicas, updated, available) = (
        status.replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    );
    let waiting = |what: String| {
        (
            format!("Waiting for deployment {name:?} rollout to finish: {what}..."),
            false,
        )
    };
    if updated < desired {
        waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ))
    } else if replicas > updated {
        waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ))
    } else if available < updated {
        waiting(format!(
            "{available} of {updated} updated replicas are available"
        ))
    } else {
        (format!("deployment {name:?} successfully rolled out"), true)
    }
}

fn demo_deployment() -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}},
        }
    }))
    .expect("a static manifest is valid")
}

fn image_patch(tag: &str) -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": format!("registry.k8s.io/pause:{tag}")}]}}}})
}

/// The rollback request of the deprecated rollback API (revision 0: the previous one),
/// which the Deployment controller carries out.
fn rollback_patch() -> serde_json::Value {
    serde_json::json!({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "0"}}})
}

fn demo_replica_set() -> ReplicaSet {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "demo"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}},
        }
    }))
    .expect("a static manifest is valid")
}

fn parse_nodes(mut args: impl Iterator<Item = String>) -> anyhow::Result<usize> {
    let mut nodes = 3;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let value = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--nodes needs a number"))?;
                nodes = value.parse()?;
            }
            other => anyhow::bail!("unknown argument {other:?}; usage: demo [--nodes N]"),
        }
    }
    Ok(nodes)
}
