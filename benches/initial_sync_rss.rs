//! Peak resident memory of a fresh process whose Pod informer does its first sync:
//! kube-reconcile's informer (full `Pod`, and the example controllers' Pod projection;
//! each by streaming list, the default, and by pages) against kube-runtime's reflector
//! and client-go's informer, on the same pods in one run.
//!
//! ```text
//! cargo bench --bench initial_sync_rss              # 10,000 pods, 3 rounds
//! cargo bench --bench initial_sync_rss -- 2000 5    # 2,000 pods, 5 rounds
//! ```
//!
//! Creates the pods of `pod_memory` once on the local control plane, then per round
//! starts each variant as its own process (this binary again with `--variant`, or
//! `benches/go/initial-sync-rss`), which lists and watches the namespace's pods until
//! synced and prints its `VmHWM` from `/proc/self/status`. Variants alternate, in a
//! rotated order each round; the table shows medians. The Rust side uses the system
//! allocator, as a controller does unless it picks another.

mod common;
#[path = "common/pods.rs"]
mod pods;

use std::{path::Path, process::Command, time::Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use kube_reconcile::{
    informer::{InformerFactory, Scope},
    testing::ControlPlane,
};

/// Every variant, by the name `--variant` takes.
const VARIANTS: &[(&str, &str)] = &[
    (
        "ours-full",
        "kube-reconcile informer, full Pod (drops managedFields)",
    ),
    ("ours-projection", "kube-reconcile informer, Pod projection"),
    (
        "ours-full-paged",
        "kube-reconcile informer, full Pod, paged list",
    ),
    (
        "ours-projection-paged",
        "kube-reconcile informer, Pod projection, paged list",
    ),
    ("kube-runtime", "kube-runtime reflector (paged list)"),
    (
        "kube-runtime-streaming",
        "kube-runtime reflector (streaming list)",
    ),
    ("client-go", "client-go informer (WatchListClient on)"),
    ("client-go-list", "client-go informer (WatchListClient off)"),
];

/// What one variant's process reported, and the API requests it made.
struct Sample {
    objects: usize,
    peak_kib: u64,
    rss_kib: u64,
    seconds: f64,
    lists: f64,
    watches: f64,
}

fn proc_status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .expect("a kB line")
}

/// The child side: one informer, synced, then its peak RSS.
fn child(variant: &str, kubeconfig: &Path, ns: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let objects = runtime.block_on(async {
        let config = kube_reconcile::kubeconfig::load(kubeconfig, None).await?;
        let client = Client::try_from(config)?;
        let scope = Scope::all().namespace(ns);
        // Ours list by streaming unless the variant says paged.
        let factory =
            InformerFactory::new(client.clone()).streaming_lists(!variant.ends_with("-paged"));
        let objects = match variant {
            "ours-full" | "ours-full-paged" => {
                let informer = factory.informer::<Pod>(&scope);
                informer.start();
                informer.wait_for_sync().await;
                informer.store().len()
            }
            "ours-projection" | "ours-projection-paged" => {
                let informer = factory.informer::<pods::PodView>(&scope);
                informer.start();
                informer.wait_for_sync().await;
                informer.store().len()
            }
            "kube-runtime" | "kube-runtime-streaming" => {
                let mut config = watcher::Config::default();
                if variant == "kube-runtime-streaming" {
                    config = config.streaming_lists();
                }
                let (reader, writer) = reflector::store::<Pod>();
                let stream = reflector(writer, watcher(Api::namespaced(client, ns), config));
                tokio::spawn(stream.applied_objects().for_each(|_| async {}));
                reader.wait_until_ready().await?;
                reader.state().len()
            }
            other => anyhow::bail!("unknown variant {other}"),
        };
        anyhow::Ok(objects)
    })?;
    println!("objects {objects}");
    println!("vmhwm_kib {}", proc_status_kib("VmHWM"));
    println!("vmrss_kib {}", proc_status_kib("VmRSS"));
    // Exit without tearing the runtime down: the figures are out.
    std::process::exit(0)
}

/// Pod LIST and WATCH requests the API server has served so far.
async fn pod_requests(client: &Client) -> anyhow::Result<(f64, f64)> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let count = |verb: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| l.contains("resource=\"pods\"") && l.contains(&format!("verb=\"{verb}\"")))
            // The pods themselves, not their status or binding subresources.
            .filter(|l| l.contains("subresource=\"\"") || !l.contains("subresource="))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok((count("LIST"), count("WATCH")))
}

async fn run(
    variant: &str,
    kubeconfig: &Path,
    ns: &str,
    client: &Client,
) -> anyhow::Result<Sample> {
    let mut command = if let Some(watch_list) = match variant {
        "client-go" => Some("true"),
        "client-go-list" => Some("false"),
        _ => None,
    } {
        let mut go = Command::new(common::go_benchmark("initial-sync-rss"));
        go.env("KUBE_FEATURE_WatchListClient", watch_list);
        go
    } else {
        let mut rust = Command::new(std::env::current_exe()?);
        rust.args(["--variant", variant]);
        rust
    };
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--namespace={ns}"));
    let (lists, watches) = pod_requests(client).await?;
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let seconds = started.elapsed().as_secs_f64();
    let (lists_after, watches_after) = pod_requests(client).await?;
    anyhow::ensure!(
        output.status.success(),
        "{variant}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        objects: value("objects ") as usize,
        peak_kib: value("vmhwm_kib "),
        rss_kib: value("vmrss_kib "),
        seconds,
        lists: lists_after - lists,
        watches: watches_after - watches,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_string))
    };
    if let Some(i) = args.iter().position(|a| a == "--variant") {
        let kubeconfig = flag("kubeconfig").expect("--kubeconfig");
        let ns = flag("namespace").expect("--namespace");
        return child(&args[i + 1], Path::new(&kubeconfig), &ns);
    }
    let mut numbers = args.iter().skip(1).filter_map(|a| a.parse::<usize>().ok());
    let count = numbers.next().unwrap_or(10_000);
    let rounds = numbers.next().unwrap_or(3);
    tokio::runtime::Runtime::new()?.block_on(parent(count, rounds))
}

async fn parent(count: usize, rounds: usize) -> anyhow::Result<()> {
    let cp = ControlPlane::builder().start().await?;
    let client = cp.client().await?;
    let ns = cp.create_namespace(&client, "initial-sync").await?;
    let api = Api::<Pod>::namespaced(client.clone(), &ns);
    let started = Instant::now();
    pods::create_pods(&api, count).await?;
    let sample = api.get("web-00000").await?;
    println!(
        "created {count} pods in {:.1?}; one pod is {} bytes of JSON",
        started.elapsed(),
        serde_json::to_vec(&sample)?.len()
    );
    common::go_benchmark("initial-sync-rss");

    let mut samples: Vec<Vec<Sample>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..VARIANTS.len() {
            let index = (k + round) % VARIANTS.len();
            let (variant, _) = VARIANTS[index];
            let s = run(variant, cp.kubeconfig_path(), &ns, &client).await?;
            println!(
                "round {round} {variant:<24} peak {:>7.1} MiB, at sync {:>7.1} MiB, {:.2} s, {} objects, {} LIST + {} WATCH",
                s.peak_kib as f64 / 1024.0,
                s.rss_kib as f64 / 1024.0,
                s.seconds,
                s.objects,
                s.lists,
                s.watches
            );
            anyhow::ensure!(s.objects == count, "{variant} synced {} pods", s.objects);
            samples[index].push(s);
        }
    }

    println!("\nmedians of {rounds} rounds, {count} pods:");
    println!(
        "{:<58} {:>10} {:>10} {:>8} {:>6} {:>6}",
        "variant", "peak MiB", "sync MiB", "time s", "LISTs", "WATCHs"
    );
    let mut peaks = Vec::new();
    for ((_, label), runs) in VARIANTS.iter().zip(&samples) {
        let of = |f: fn(&Sample) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        let peak = of(|s| s.peak_kib as f64 / 1024.0);
        println!(
            "{label:<58} {peak:>10.1} {:>10.1} {:>8.2} {:>6} {:>6}",
            of(|s| s.rss_kib as f64 / 1024.0),
            of(|s| s.seconds),
            of(|s| s.lists),
            of(|s| s.watches),
        );
        peaks.push(peak);
    }
    let client_go = VARIANTS.iter().position(|(name, _)| *name == "client-go");
    let go = peaks[client_go.expect("client-go is a variant")];
    println!("\npeak RSS / client-go (WatchListClient on), target <= 0.5:");
    for ((_, label), peak) in VARIANTS.iter().zip(&peaks) {
        println!("  {label:<58} {:.2}", peak / go);
    }
    cp.stop().await;
    Ok(())
}
