//! A CRD-based operator built on kube-reconcile: `WebApp` resources (defined with
//! `#[derive(Crd)]`) reconciled into a Deployment and a Service each.
//!
//! ```text
//! cargo run --example webapp-operator -- --print-crd       # the CRD as YAML, for kubectl apply -f -
//! cargo run --example webapp-operator -- --print-rbac      # the ClusterRole it needs, as YAML
//! cargo run --example webapp-operator                      # on a local control plane, with a sample WebApp
//! cargo run --example webapp-operator -- --kubeconfig ~/.kube/config
//! ```
//!
//! On the local control plane, kube-controller-manager runs the Deployment,
//! ReplicaSet and garbage-collector controllers, and kwok's fake Nodes run the pods.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logging.rs"]
mod logging;
mod webapp;

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use kube_reconcile::{
    crd::CustomResourceExt,
    informer::Scope,
    leader::LeaderElection,
    manager::{Manager, ManagerBuilder},
    testing::ControlPlane,
};
use serde_json::json;
use webapp::resource::WebApp;

#[derive(Debug, Parser)]
#[command(about = "Runs the WebApp operator")]
struct Args {
    /// Print the WebApp CRD as YAML and exit.
    #[arg(long)]
    print_crd: bool,
    /// Print the ClusterRole the operator needs as YAML and exit.
    #[arg(long)]
    print_rbac: bool,
    /// kubeconfig of the cluster to manage (the CRD must be installed); without it a
    /// local control plane is started with the CRD and a sample WebApp.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Elect a leader among replicas (Lease `default/webapp-operator`) before reconciling.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Where to serve /metrics, /healthz and /readyz (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    health_address: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_crd {
        print!("{}", WebApp::to_yaml());
        return Ok(());
    }
    if args.print_rbac {
        // Nothing is sent: the client only has to exist for the operator to be built.
        let offline = Client::try_from(kube::Config::new("https://127.0.0.1:1".parse()?))?;
        let manager = operator(Manager::builder(offline), &args, None).await?;
        let role = manager.permissions().cluster_role("webapp-operator");
        print!("{}", serde_saphyr::to_string(&role)?);
        return Ok(());
    }
    logging::init_tracing("info");

    let cluster::Connection {
        client,
        server_url,
        control_plane,
    } = cluster::connect(args.kubeconfig.as_deref(), Default::default(), || {
        ControlPlane::builder()
            .fake_nodes(2)
            .kube_controller_manager([
                "deployment-controller",
                "replicaset-controller",
                "garbage-collector-controller",
            ])
            .crds([WebApp::crd()])
    })
    .await?;

    let builder = Manager::builder(client.clone()).server_url(server_url);
    let manager = operator(builder, &args, Some(args.health_address)).await?;
    if let Some(address) = manager.health_address() {
        println!("Serving /metrics, /healthz and /readyz on http://{address}");
    }
    let local = control_plane.is_some();
    cluster::run(manager, control_plane, async move {
        if local {
            sample(client).await?;
        }
        Ok(())
    })
    .await
}

/// The manager running the operator, as the flags say.
async fn operator(
    mut builder: ManagerBuilder,
    args: &Args,
    health_address: Option<std::net::SocketAddr>,
) -> anyhow::Result<Manager> {
    if let Some(address) = health_address {
        builder = builder.health_address(address);
    }
    if args.leader_elect {
        builder = builder.leader_election(LeaderElection::new("default", "webapp-operator"));
    }
    let mut manager = builder.build().await?;
    manager.add(webapp::operator::controller(
        manager.factory(),
        &Scope::all(),
    ));
    Ok(manager)
}

/// Creates a sample WebApp and prints its status until it is ready.
async fn sample(client: Client) -> anyhow::Result<()> {
    let api = Api::<WebApp>::namespaced(client, "default");
    let manifest = json!({
        "apiVersion": "demo.kube-reconcile.dev/v1",
        "kind": "WebApp",
        "metadata": {"name": "hello"},
        "spec": {"image": "nginx:1.27", "replicas": 3, "port": 8080},
    });
    api.patch(
        "hello",
        &PatchParams::apply("demo"),
        &Patch::Apply(&manifest),
    )
    .await?;
    println!("created WebApp default/hello (3 replicas); kubectl get webapps shows it too");
    for _ in 0..120 {
        let app = api.get("hello").await?;
        let status = app.status.unwrap_or_default();
        println!(
            "hello: {}/{} ready",
            status.ready_replicas, app.spec.replicas
        );
        if status.ready_replicas == app.spec.replicas {
            println!("ready; Ctrl-C to stop");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
