//! The kube-reconcile demo: a real local control plane with fake Nodes, kube-reconcile's
//! ReplicaSet controller running on it, and a ReplicaSet scaled up and down with live
//! progress. Then it keeps running for `kubectl` until Ctrl-C.
//!
//! ```text
//! cargo run --example demo                 # the embedded control plane, 3 fake Nodes
//! cargo run --example demo -- --nodes 5    # with five fake Nodes
//! ```

mod controllers;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    controller::shutdown_signal,
    informer::{InformerFactory, Scope},
    testing::{ControlPlane, KUBERNETES_VERSION},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let nodes = parse_nodes(std::env::args().skip(1))?;

    println!("Starting a local control plane ({KUBERNETES_VERSION}) with {nodes} fake Nodes...");
    let started = Instant::now();
    let control_plane = ControlPlane::builder().fake_nodes(nodes).start().await?;
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

    let factory = InformerFactory::new(client.clone());
    let controller =
        controllers::replicaset::controller(client.clone(), &factory, &Scope::all(), 5);
    let running = controller.start();
    println!(
        "Running kube-reconcile's ReplicaSet controller (kube-controller-manager is not started)."
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
    println!("\nTry: kubectl get rs,pods -o wide; kubectl scale rs demo --replicas=7");
    println!("Press Ctrl-C to stop.");

    shutdown_signal().await;
    println!("Stopping...");
    running.shutdown().await;
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
