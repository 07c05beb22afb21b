//! Bytes per cached Pod: kube-reconcile's informer against kube-runtime's reflector
//! store and client-go's informer, holding the same 10,000 pods in one run; and what a
//! typed projection of the fields a controller reads (`#[derive(Projection)]`) holds.
//!
//! ```text
//! cargo bench --bench pod_memory            # 10,000 pods
//! cargo bench --bench pod_memory -- 2000    # fewer
//! ```
//!
//! Starts the local control plane, creates realistic pods (two containers with env,
//! ports, probes, resources and mounts, an owner, a Running status) whose
//! `metadata.managedFields` the server fills from the create and the status update,
//! then measures, one cache at a time, the live heap a synced cache adds: jemalloc's
//! allocated-bytes counter for the Rust caches, Go's HeapAlloc after GC for client-go
//! (`benches/go/informer-memory`).

mod common;
#[path = "common/pods.rs"]
mod pods;

use std::{path::Path, process::Command, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use kube_reconcile::{
    informer::{Informer, InformerFactory, Scope},
    testing::ControlPlane,
};
use pods::{PodView, create_pods};

/// How many pods every cache must hold once synced.
static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn allocated() -> usize {
    tikv_jemalloc_ctl::epoch::advance().expect("jemalloc epoch");
    tikv_jemalloc_ctl::stats::allocated::read().expect("jemalloc stats")
}

/// Bytes the synced cache adds to the heap, per object.
async fn measure<F, Fut>(label: &str, count: usize, run: F) -> f64
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Box<dyn std::any::Any>>,
{
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = allocated();
    let cache = run().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = allocated();
    drop(cache);
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "  (heap before {before}, with cache {after}, after drop {})",
        allocated()
    );
    let per_object = (after as f64 - before as f64) / count as f64;
    println!("{label:<48} {per_object:>8.0} bytes/pod");
    per_object
}

async fn ours(client: Client, ns: &str, strip: bool) -> Box<dyn std::any::Any> {
    let factory = InformerFactory::new(client);
    let scope = Scope::all().namespace(ns);
    let transform = strip.then(kube_reconcile::informer::strip_managed_fields);
    synced(factory.informer_with_transform::<Pod>(&scope, transform)).await
}

async fn ours_projection(client: Client, ns: &str) -> Box<dyn std::any::Any> {
    let factory = InformerFactory::new(client);
    synced(factory.informer::<PodView>(&Scope::all().namespace(ns))).await
}

async fn ours_metadata(client: Client, ns: &str) -> Box<dyn std::any::Any> {
    let factory = InformerFactory::new(client);
    synced(factory.metadata_informer::<Pod>(&Scope::all().namespace(ns))).await
}

/// Starts the informer, waits for its first list, stops watching and keeps the cache.
async fn synced<K>(informer: Informer<K>) -> Box<dyn std::any::Any>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
{
    informer.start();
    informer.wait_for_sync().await;
    informer.stop();
    let expected = COUNT.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(informer.store().len(), expected);
    Box::new(informer)
}

async fn kube_runtime(client: Client, ns: &str) -> Box<dyn std::any::Any> {
    let (reader, writer) = reflector::store::<Pod>();
    let api = Api::<Pod>::namespaced(client, ns);
    let stream = reflector(writer, watcher(api, watcher::Config::default())).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.expect("reflector ready");
    task.abort();
    let _ = task.await;
    assert_eq!(
        reader.state().len(),
        COUNT.load(std::sync::atomic::Ordering::Relaxed)
    );
    Box::new(reader)
}

fn client_go(kubeconfig: &Path, ns: &str) -> (f64, f64) {
    let binary = common::go_benchmark("informer-memory");
    let output = Command::new(&binary)
        .arg(format!("-kubeconfig={}", kubeconfig.display()))
        .arg(format!("-namespace={ns}"))
        .output()
        .expect("run the client-go informer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    (
        value("bytes_per_object "),
        value("bytes_per_object_without_managed_fields "),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count = common::count_arg(10_000);
    COUNT.store(count, std::sync::atomic::Ordering::Relaxed);
    let cp = ControlPlane::builder().start().await?;
    let client = cp.client().await?;
    let ns = cp.create_namespace(&client, "pod-memory").await?;
    let api = Api::<Pod>::namespaced(client.clone(), &ns);
    let started = std::time::Instant::now();
    create_pods(&api, count).await?;
    let sample = api.get("web-00000").await?;
    let json_size = serde_json::to_vec(&sample)?.len();
    let managed = serde_json::to_vec(&sample.metadata.managed_fields)?.len();
    println!(
        "created {count} pods in {:.1?}; one pod is {json_size} bytes of JSON, {managed} of them managedFields",
        started.elapsed()
    );

    // The heap one decoded pod takes, as a yardstick for the caches below.
    let bytes = serde_json::to_vec(&sample)?;
    let before = allocated();
    let decoded: Vec<Pod> = (0..100)
        .map(|_| serde_json::from_slice(&bytes).unwrap())
        .collect();
    let one_pod = (allocated() - before) / decoded.len();
    drop(decoded);
    println!("one decoded Pod takes {one_pod} bytes of heap (with its managedFields)");

    let c = || client.clone();
    let reconcile = measure("kube-reconcile informer (default transform)", count, || {
        ours(c(), &ns, true)
    })
    .await;
    let reconcile_raw = measure("kube-reconcile informer (no transform)", count, || {
        ours(c(), &ns, false)
    })
    .await;
    measure("kube-reconcile metadata-only informer", count, || {
        ours_metadata(c(), &ns)
    })
    .await;
    let projection = measure("kube-reconcile Pod projection informer", count, || {
        ours_projection(c(), &ns)
    })
    .await;
    let reflector = measure("kube-runtime reflector store", count, || {
        kube_runtime(c(), &ns)
    })
    .await;
    let (go, go_stripped) = client_go(cp.kubeconfig_path(), &ns);
    println!(
        "{:<48} {go:>8.0} bytes/pod",
        "client-go informer (no transform)"
    );
    println!(
        "{:<48} {go_stripped:>8.0} bytes/pod",
        "client-go informer (managedFields dropped)"
    );
    println!(
        "ratio kube-reconcile / kube-runtime reflector: {:.2}",
        reconcile / reflector
    );
    println!(
        "ratio kube-reconcile / client-go (no transform): {:.2}",
        reconcile / go
    );
    println!(
        "ratio kube-reconcile (no transform) / kube-runtime reflector: {:.2}",
        reconcile_raw / reflector
    );
    println!(
        "ratio kube-reconcile Pod projection / full Pod (default transform): {:.2}",
        projection / reconcile
    );
    // Issue 15's targets: projection <= 0.5x client-go's stripped pod, full stripped
    // type <= client-go's untransformed pod.
    println!(
        "ratio kube-reconcile Pod projection / client-go (managedFields dropped): {:.2}",
        projection / go_stripped
    );
    println!(
        "ratio kube-reconcile (default transform) / client-go (managedFields dropped): {:.2}",
        reconcile / go_stripped
    );
    cp.stop().await;
    Ok(())
}
