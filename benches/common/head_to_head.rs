//! What the head-to-head benchmarks share: runs alternating between the two sides and
//! their table of medians, reading a process's CPU and peak memory from /proc, counting
//! API requests from kube-apiserver's metrics, counting pods.

use std::{collections::BTreeMap, fmt::Debug, future::Future};

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, api::ListParams};

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of /proc/PID/stat; `fields` starts at field 3. 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// One `apiserver_request_total` series: resource, subresource, verb.
pub struct Request<'a> {
    pub resource: &'a str,
    pub subresource: &'a str,
    pub verb: &'a str,
}

/// `apiserver_request_total` by `resource/subresource verb code`, for the series
/// `counted` accepts (the controller's requests, not the bench's own).
pub async fn request_counts(
    client: &Client,
    counted: impl Fn(&Request) -> bool,
) -> BTreeMap<String, f64> {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let (Some(resource), Some(subresource), Some(verb), Some(code)) = (
            label(line, "resource"),
            label(line, "subresource"),
            label(line, "verb"),
            label(line, "code"),
        ) else {
            continue;
        };
        let series = Request {
            resource: &resource,
            subresource: &subresource,
            verb: &verb,
        };
        if !counted(&series) {
            continue;
        }
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        *counts
            .entry(format!("{resource}/{subresource} {verb} {code}"))
            .or_default() += value.unwrap_or(0.0);
    }
    counts
}

/// The requests made between two readings, by kind, and their total.
pub fn requests_between(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (BTreeMap<String, f64>, f64) {
    let delta: BTreeMap<String, f64> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    let total = delta.values().sum();
    (delta, total)
}

/// How many pods exist, from a one-item list (the rest is `remainingItemCount`).
pub async fn pod_count(pods: &Api<Pod>) -> anyhow::Result<usize> {
    let page = pods.list_metadata(&ListParams::default().limit(1)).await?;
    let remaining = page.metadata.remaining_item_count.unwrap_or(0);
    Ok(page.items.len() + usize::try_from(remaining).unwrap_or(0))
}

/// The middle value (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The release `controller-manager` example, which the benches run as the
/// kube-reconcile side; fails with the command that builds it when missing.
pub fn our_controller_manager() -> anyhow::Result<std::path::PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let ours = target.join("release/examples/controller-manager");
    anyhow::ensure!(
        ours.is_file(),
        "{} is missing: run `cargo build --release --example controller-manager` first",
        ours.display()
    );
    Ok(ours)
}

/// Starts our `controller-manager` (at `ours`) against the control plane with the
/// controller flags `args` and the client limits (`None`: no client-side limit), its
/// output discarded; `HEAD_TO_HEAD_OURS_ARGS` (whitespace-separated) adds flags, e.g.
/// `--http2`. The caller kills it.
pub fn spawn_ours(
    ours: &std::path::Path,
    cp: &kube_reconcile::testing::ControlPlane,
    args: &[&str],
    limits: Option<(u32, u32)>,
) -> std::io::Result<std::process::Child> {
    let (qps, burst) = limits.unwrap_or((0, 0));
    std::process::Command::new(ours)
        .arg(format!("--kubeconfig={}", cp.kubeconfig_path().display()))
        .args(args)
        // As the reference runs in these benches: alone, no leader election.
        .args(["--leader-elect=false", "--health-address=127.0.0.1:0"])
        .arg(format!("--kube-api-qps={qps}"))
        .arg(format!("--kube-api-burst={burst}"))
        .args(
            std::env::var("HEAD_TO_HEAD_OURS_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

/// The controller a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// kube-controller-manager's controller (the reference).
    KubeControllerManager,
    /// Our `controller-manager` example.
    KubeReconcile,
}

/// The client limits every head-to-head bench compares at: QPS 100 / burst 100 for
/// both, then none (ours with `--kube-api-qps=0`, kube-controller-manager 10000/10000).
pub const CONFIGURATIONS: [(&str, Option<(u32, u32)>); 2] = [
    ("QPS 100 / burst 100", Some((100, 100))),
    ("no client-side limit", None),
];

/// Reads one figure of a run.
pub type Metric<M> = fn(&M) -> f64;

/// The figures of every run, by side.
pub struct Results<M>(BTreeMap<Side, Vec<M>>);

/// Runs `run_once` `runs` times for each side, alternating which side goes first so
/// drift in the machine's load hits both, and logs each run under `label`.
pub async fn alternating_runs<M, F, Fut>(
    runs: usize,
    label: &str,
    mut run_once: F,
) -> anyhow::Result<Results<M>>
where
    M: Debug,
    F: FnMut(Side) -> Fut,
    Fut: Future<Output = anyhow::Result<M>>,
{
    let mut results: BTreeMap<Side, Vec<M>> = BTreeMap::new();
    for run in 0..runs {
        let order = if run % 2 == 0 {
            [Side::KubeReconcile, Side::KubeControllerManager]
        } else {
            [Side::KubeControllerManager, Side::KubeReconcile]
        };
        for side in order {
            let measured = run_once(side).await?;
            eprintln!("{label}, run {}: {side:?} {measured:?}", run + 1);
            results.entry(side).or_default().push(measured);
        }
    }
    Ok(Results(results))
}

impl<M> Results<M> {
    /// The median of `metric` over `side`'s runs.
    pub fn median(&self, side: Side, metric: Metric<M>) -> f64 {
        median(self.0[&side].iter().map(metric).collect())
    }

    /// Prints `title`, then one row per metric: both sides' medians and our ratio.
    pub fn print_table(&self, title: &str, metrics: &[(&str, Metric<M>)]) {
        println!("\n{title}");
        println!(
            "{:<30} {:>14} {:>14} {:>7}",
            "", "kube-ctrl-mgr", "kube-reconcile", "ratio"
        );
        for (name, metric) in metrics {
            let theirs = self.median(Side::KubeControllerManager, *metric);
            let ours = self.median(Side::KubeReconcile, *metric);
            let ratio = if theirs > 0.0 {
                format!("{:.2}x", ours / theirs)
            } else {
                "-".to_string()
            };
            println!("{name:<30} {theirs:>14.2} {ours:>14.2} {ratio:>7}");
        }
    }
}

/// With `HEAD_TO_HEAD_SPLIT_CORES=1`, the run splits this machine's two cores: the
/// control plane (etcd, kube-apiserver, kube-scheduler, kwok) on CPU 1, and everything
/// else — the bench process with its plain client, and the controller it starts or
/// kube-controller-manager — on CPU 0. It shows whether the controller or the control
/// plane sets the pace when neither takes the other's core.
pub fn split_cores() -> bool {
    std::env::var("HEAD_TO_HEAD_SPLIT_CORES").is_ok_and(|v| v == "1")
}

/// Pins every thread of `pid` to `cpu` (`taskset -a -p`).
fn pin(pid: u32, cpu: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "taskset failed to pin {pid} to CPU {cpu}");
    Ok(())
}

/// Under [`split_cores`], pins this process to CPU 0: the processes it starts inherit it.
pub fn pin_self_if_split() -> anyhow::Result<()> {
    if split_cores() {
        pin(std::process::id(), 0)?;
    }
    Ok(())
}

/// Under [`split_cores`], moves the control plane's own processes to CPU 1
/// (kube-controller-manager, when started, stays on CPU 0 with the bench).
pub fn pin_control_plane_if_split(
    cp: &kube_reconcile::testing::ControlPlane,
) -> anyhow::Result<()> {
    if split_cores() {
        for component in ["etcd", "kube-apiserver", "kube-scheduler", "kwok"] {
            if let Some(pid) = cp.pid(component) {
                pin(pid, 1)?;
            }
        }
    }
    Ok(())
}
