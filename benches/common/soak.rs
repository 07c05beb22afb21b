//! The soak: our `controller-manager` binary (every controller) on a real control plane
//! under churn — Deployments scaled and rolled, pod readiness flipped, kube-apiserver
//! restarted — while its resident memory, open file descriptors and tokio tasks are
//! sampled from its `/metrics`, then a convergence check and a flatness verdict.
//!
//! Shared by `benches/soak.rs` (30 minutes) and `tests/soak_smoke.rs` (2 minutes), each
//! including this file with `#[path]`; it is not part of `benches/common/mod.rs`.
#![allow(dead_code)] // each includer uses part of it

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Endpoints, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::testing::{ControlPlane, MANUAL_NODE_NAME, PodState, set_pod_state};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Label on every pod of the soak, selected by its Service.
const POD_LABEL: (&str, &str) = ("soak", "yes");
/// The Service over every pod.
const SERVICE: &str = "soak";
/// The Deployment whose pods live on the hand-driven Node; the soak flips their readiness.
const MANUAL_DEPLOYMENT: &str = "manual";
const MANUAL_REPLICAS: i32 = 3;

/// How long and how hard to churn.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Total churn time.
    pub duration: Duration,
    /// How often RSS, fds, tasks and reconcile errors are sampled.
    pub sample_every: Duration,
    /// How often kube-apiserver is restarted (at each multiple inside `duration`).
    pub restart_every: Duration,
    /// Pause between churn steps.
    pub step_every: Duration,
    /// Deployments on kwok's fake Nodes, scaled and rolled in turn.
    pub deployments: usize,
    /// The `controller-manager` example to run.
    pub binary: PathBuf,
    /// Where its log goes (kept after the run, for a post-mortem).
    pub log: PathBuf,
}

impl SoakConfig {
    /// The soak proper: sampling each minute, a restart every 5 minutes.
    pub fn soak(duration: Duration, binary: PathBuf) -> Self {
        Self {
            duration,
            sample_every: Duration::from_secs(60),
            restart_every: Duration::from_secs(300),
            step_every: Duration::from_secs(5),
            deployments: 3,
            binary,
            log: target_dir().join("soak/controller-manager-soak.log"),
        }
    }

    /// The CI smoke: 2 minutes, a sample every 20 s, one restart (at 1 minute).
    pub fn smoke(binary: PathBuf) -> Self {
        Self {
            duration: Duration::from_secs(120),
            sample_every: Duration::from_secs(20),
            restart_every: Duration::from_secs(60),
            log: target_dir().join("soak/controller-manager-smoke.log"),
            ..Self::soak(Duration::from_secs(120), binary)
        }
    }
}

/// The cargo target folder (`CARGO_TARGET_DIR` or the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// One reading of the binary.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since churn started.
    pub at: Duration,
    /// `process_resident_memory_bytes` from its `/metrics`, in MiB.
    pub rss_mib: Option<f64>,
    /// `process_open_fds` from its `/metrics`.
    pub fds: Option<f64>,
    /// `tokio_alive_tasks` from its `/metrics`.
    pub tasks: Option<f64>,
    /// The same two read from outside, `/proc/<pid>/status` VmRSS and `/proc/<pid>/fd`.
    pub proc_rss_mib: f64,
    /// See `proc_rss_mib`.
    pub proc_fds: usize,
    /// OS threads (`/proc/<pid>/status`).
    pub threads: usize,
    /// `controller_runtime_reconcile_errors_total` summed over controllers.
    pub reconcile_errors: f64,
    /// API server restarts done so far.
    pub restarts: usize,
}

/// Spread of one figure over the samples after warm-up.
#[derive(Debug, Clone)]
pub struct Spread {
    /// The figure's name.
    pub name: &'static str,
    /// Its minimum and maximum after warm-up (`None`: not reported).
    pub range: Option<(f64, f64)>,
    /// Its first and last value after warm-up: growth, as opposed to noise.
    pub ends: Option<(f64, f64)>,
}

impl Spread {
    /// (max − min) / min.
    pub fn relative(&self) -> Option<f64> {
        self.range.map(|(min, max)| {
            if min > 0.0 {
                (max - min) / min
            } else {
                f64::INFINITY
            }
        })
    }

    /// Whether the spread is at most `bound` (a figure not reported is not flat).
    pub fn within(&self, bound: f64) -> bool {
        self.relative().is_some_and(|r| r <= bound)
    }
}

/// Everything a soak measured.
#[derive(Debug)]
pub struct SoakReport {
    /// One per `sample_every`, the first right after the binary became ready.
    pub samples: Vec<Sample>,
    /// Churn steps done, and those the API refused or could not take (mostly while it
    /// restarted); the driver's, not the controllers'.
    pub steps: usize,
    /// See `steps`.
    pub driver_errors: usize,
    /// API server restarts.
    pub restarts: usize,
    /// `Ok` when every Deployment and the Service's endpoints settled after churn.
    pub converged: Result<Duration, String>,
    /// Per controller: reconcile errors, of them terminal, and panics (the manager's
    /// counters, which are labelled by controller only).
    pub errors_by_controller: BTreeMap<String, [f64; 3]>,
    /// Failed reconciles by controller and kind, classified from the binary's log.
    pub errors_by_kind: BTreeMap<(String, String), usize>,
    /// Other warnings and errors of the binary's log, by source and message.
    pub other_log_problems: BTreeMap<String, usize>,
    /// The binary's log.
    pub log: PathBuf,
}

impl SoakReport {
    /// Samples after warm-up: all but the first third.
    pub fn steady(&self) -> &[Sample] {
        &self.samples[self.samples.len() / 3..]
    }

    /// RSS, fds and tasks over the steady samples.
    pub fn spreads(&self) -> [Spread; 3] {
        let spread = |name, f: fn(&Sample) -> Option<f64>| {
            let values: Option<Vec<f64>> = self.steady().iter().map(f).collect();
            let values = values.filter(|v| !v.is_empty());
            let range = values.as_ref().map(|v| {
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (min, max)
            });
            let ends = values.map(|v| (v[0], v[v.len() - 1]));
            Spread { name, range, ends }
        };
        [
            spread("RSS (MiB)", |s| s.rss_mib),
            spread("open fds", |s| s.fds),
            spread("tokio tasks", |s| s.tasks),
        ]
    }

    /// Whether RSS, fds and tasks stayed within 10% after warm-up.
    pub fn flat(&self) -> bool {
        self.spreads().iter().all(|s| s.within(0.10))
    }

    /// The samples table, error counts, convergence and verdict, for printing.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let opt = |v: Option<f64>, decimals: usize| match v {
            Some(v) => format!("{v:.decimals$}"),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:>7} {:>9} {:>6} {:>6} {:>10} {:>9} {:>8} {:>11} {:>9}",
            "t (s)",
            "RSS MiB",
            "fds",
            "tasks",
            "/proc RSS",
            "/proc fds",
            "threads",
            "rec. errors",
            "restarts"
        );
        for s in &self.samples {
            let _ = writeln!(
                out,
                "{:>7.0} {:>9} {:>6} {:>6} {:>10.1} {:>9} {:>8} {:>11.0} {:>9}",
                s.at.as_secs_f64(),
                opt(s.rss_mib, 1),
                opt(s.fds, 0),
                opt(s.tasks, 0),
                s.proc_rss_mib,
                s.proc_fds,
                s.threads,
                s.reconcile_errors,
                s.restarts,
            );
        }
        let _ = writeln!(
            out,
            "\nchurn steps: {} ({} refused by or unreachable on the API server); API server restarts: {}",
            self.steps, self.driver_errors, self.restarts
        );
        let _ = writeln!(
            out,
            "\nreconcile errors by controller (the manager's counters, labelled by controller only):"
        );
        for (controller, [errors, terminal, panics]) in &self.errors_by_controller {
            let _ = writeln!(
                out,
                "  {controller:<26} errors {errors:>5.0}  terminal {terminal:>3.0}  panics {panics:>3.0}"
            );
        }
        let _ = writeln!(
            out,
            "reconcile errors by kind (from the binary's log, {}):",
            self.log.display()
        );
        if self.errors_by_kind.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for ((controller, kind), n) in &self.errors_by_kind {
            let _ = writeln!(out, "  {controller:<26} {n:>5}  {kind}");
        }
        let _ = writeln!(out, "other warnings and errors in the log:");
        if self.other_log_problems.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for (what, n) in &self.other_log_problems {
            let _ = writeln!(out, "  {n:>5}  {what}");
        }
        match &self.converged {
            Ok(took) => {
                let _ = writeln!(
                    out,
                    "\nconverged: yes, {:.1} s after churn ended",
                    took.as_secs_f64()
                );
            }
            Err(why) => {
                let _ = writeln!(out, "\nconverged: NO: {why}");
            }
        }
        let steady = self.steady();
        let _ = writeln!(
            out,
            "after warm-up ({} of {} samples, from t = {:.0} s):",
            steady.len(),
            self.samples.len(),
            steady.first().map_or(0.0, |s| s.at.as_secs_f64())
        );
        for spread in self.spreads() {
            let text = match (spread.range, spread.relative(), spread.ends) {
                (Some((min, max)), Some(r), Some((first, last))) => format!(
                    "{min:.1} .. {max:.1}, spread {:.1}% (first {first:.1}, last {last:.1})",
                    r * 100.0
                ),
                _ => "not reported".to_string(),
            };
            let _ = writeln!(out, "  {:<12} {text}", spread.name);
        }
        let _ = writeln!(
            out,
            "verdict: {}",
            if self.flat() {
                "flat within 10% after warm-up"
            } else {
                "NOT flat within 10% after warm-up"
            }
        );
        out
    }
}

/// Our `controller-manager` under the run, killed on drop.
struct Binary {
    child: Child,
    pid: u32,
    metrics: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// Fails with the exit status and the log's tail if the process has exited.
    fn alive(&mut self, log: &Path) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "controller-manager exited ({status}) during the soak; its log ends:\n{}",
                log_tail(log, 40)
            );
        }
        Ok(())
    }
}

/// Runs the soak: starts the control plane and the binary, churns for
/// `config.duration`, checks convergence, and reports. Fails (rather than reporting)
/// only if something could not start or the binary died.
pub async fn run(config: &SoakConfig) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(
        config.binary.is_file(),
        "{} is missing",
        config.binary.display()
    );
    let cp = ControlPlane::builder()
        .fake_nodes(2)
        .manual_node()
        .start()
        .await
        .context("the local control plane must start for the soak")?;
    let client = cp.client().await?;
    let namespace = cp.create_namespace(&client, "soak").await?;
    let result = churn_and_report(config, &cp, &client, &namespace).await;
    cp.stop().await;
    result
}

async fn churn_and_report(
    config: &SoakConfig,
    cp: &ControlPlane,
    client: &Client,
    namespace: &str,
) -> anyhow::Result<SoakReport> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services.create(&PostParams::default(), &service()).await?;
    for i in 0..config.deployments {
        deployments
            .create(
                &PostParams::default(),
                &deployment(&format!("web-{i}"), 2, false),
            )
            .await?;
    }
    deployments
        .create(
            &PostParams::default(),
            &deployment(MANUAL_DEPLOYMENT, MANUAL_REPLICAS, true),
        )
        .await?;

    let mut binary = spawn(config, cp)?;
    let mut kubelet = ManualKubelet::default();
    // Started and first synced before the clock starts, so sample 0 is a running binary.
    wait_until(
        Duration::from_secs(120),
        "the controller-manager's /readyz",
        || http_get(&binary.metrics, "/readyz"),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}; its log ends:\n{}", log_tail(&config.log, 40)))?;

    let first = scrape(&binary.metrics).await?;
    anyhow::ensure!(
        metric(&first, "tokio_alive_tasks").is_some(),
        "{} does not report tokio_alive_tasks: it predates the process metrics; rebuild it",
        config.binary.display()
    );

    let started = Instant::now();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let (mut steps, mut driver_errors, mut restarts) = (0, 0, 0);
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut next_restart = config.restart_every;
    loop {
        binary.alive(&config.log)?;
        let now = started.elapsed();
        if now >= next_sample {
            let sample = sample(&binary, now, restarts).await?;
            eprintln!("soak sample: {sample:?}");
            samples.push(sample);
            next_sample += config.sample_every;
        }
        if now >= config.duration {
            break;
        }
        if now >= next_restart {
            eprintln!(
                "soak: restarting kube-apiserver at {:.0} s",
                now.as_secs_f64()
            );
            cp.restart_apiserver()
                .await
                .context("kube-apiserver must come back after a restart")?;
            restarts += 1;
            next_restart += config.restart_every;
            continue;
        }
        let step = step(steps, &mut rng, config, &deployments, &pods, &mut kubelet).await;
        if let Err(error) = step {
            driver_errors += 1;
            eprintln!("soak: churn step {steps} failed: {error:#}");
        }
        steps += 1;
        let wait = config
            .step_every
            .min(next_sample.saturating_sub(started.elapsed()));
        tokio::time::sleep(wait).await;
    }

    // Churn over: every manual pod Ready, then everything must settle.
    let settle_started = Instant::now();
    let converged = converge(config, &deployments, &pods, client, namespace, &mut kubelet)
        .await
        .map(|()| settle_started.elapsed());
    binary.alive(&config.log)?;
    let text = scrape(&binary.metrics).await?;
    drop(binary);
    let (errors_by_kind, other_log_problems) = classify_log(&config.log);
    Ok(SoakReport {
        samples,
        steps,
        driver_errors,
        restarts,
        converged,
        errors_by_controller: errors_by_controller(&text),
        errors_by_kind,
        other_log_problems,
        log: config.log.clone(),
    })
}

fn spawn(config: &SoakConfig, cp: &ControlPlane) -> anyhow::Result<Binary> {
    if let Some(dir) = config.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::File::create(&config.log)?;
    let port = free_port()?;
    let child = Command::new(&config.binary)
        .arg(format!("--kubeconfig={}", cp.kubeconfig_path().display()))
        .args(["--leader-elect=false"])
        .arg(format!("--health-address=127.0.0.1:{port}"))
        // Warnings and errors, plus the info line each write conflict gets (a filter
        // target matches by prefix: `kube=` would cover kube_reconcile too).
        .env("RUST_LOG", "warn,kube_reconcile=info")
        .env("NO_COLOR", "1")
        // The examples log to stdout.
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", config.binary.display()))?;
    Ok(Binary {
        pid: child.id(),
        child,
        metrics: format!("127.0.0.1:{port}"),
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One churn step, chosen by its number: one Deployment scaled, rolled, or both; and
/// one manual pod's readiness flipped (new manual pods made Ready first).
async fn step(
    n: usize,
    rng: &mut u64,
    config: &SoakConfig,
    deployments: &Api<Deployment>,
    pods: &Api<Pod>,
    kubelet: &mut ManualKubelet,
) -> anyhow::Result<()> {
    let name = format!("web-{}", n % config.deployments);
    let replicas = 1 + (next(rng) % 5) as i32;
    let annotation = json!({"soak/revision": n.to_string()});
    let patch = match (n / config.deployments) % 3 {
        0 => json!({"spec": {"replicas": replicas}}),
        1 => json!({"spec": {"template": {"metadata": {"annotations": annotation}}}}),
        _ => json!({"spec": {"replicas": replicas,
                             "template": {"metadata": {"annotations": annotation}}}}),
    };
    deployments
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    kubelet.flip(pods, n).await
}

/// Plays the kubelet of the hand-driven Node: a pod there gets Ready once, then the
/// soak flips it.
#[derive(Default)]
struct ManualKubelet {
    ips: BTreeMap<String, String>,
}

impl ManualKubelet {
    async fn manual_pods(&self, pods: &Api<Pod>) -> anyhow::Result<Vec<Pod>> {
        let selector = format!("app={MANUAL_DEPLOYMENT}");
        let list = pods.list(&ListParams::default().labels(&selector)).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect())
    }

    fn ip(&mut self, pod: &str) -> String {
        let n = self.ips.len();
        self.ips
            .entry(pod.to_string())
            .or_insert_with(|| format!("10.245.{}.{}", n / 250, n % 250 + 1))
            .clone()
    }

    /// New pods become Ready; pod `n % count` turns the other way.
    async fn flip(&mut self, pods: &Api<Pod>, n: usize) -> anyhow::Result<()> {
        let manual = self.manual_pods(pods).await?;
        let count = manual.len().max(1);
        for (i, pod) in manual.iter().enumerate() {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let has_ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_ref())
                .is_some();
            let ready = is_ready(pod);
            let state = if !has_ip || (i == n % count && !ready) {
                PodState::ready(self.ip(&name))
            } else if i == n % count {
                PodState::not_ready(self.ip(&name))
            } else {
                continue;
            };
            set_pod_state(pods, &name, &state).await?;
        }
        Ok(())
    }

    async fn all_ready(&mut self, pods: &Api<Pod>) -> anyhow::Result<()> {
        for pod in self.manual_pods(pods).await? {
            if !is_ready(&pod) {
                let name = pod.metadata.name.clone().unwrap_or_default();
                set_pod_state(pods, &name, &PodState::ready(self.ip(&name))).await?;
            }
        }
        Ok(())
    }
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// xorshift64: reproducible replica counts without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Waits (up to 3 minutes) until every Deployment has all its replicas updated, ready
/// and available with nothing else left, and the Service's EndpointSlices and Endpoints
/// list exactly those pods, Ready. `Err` says what was still off.
async fn converge(
    config: &SoakConfig,
    deployments: &Api<Deployment>,
    pods: &Api<Pod>,
    client: &Client,
    namespace: &str,
    kubelet: &mut ManualKubelet,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    while Instant::now() < deadline {
        // Keep playing the manual Node's kubelet: a pod replaced meanwhile needs Ready.
        match kubelet.all_ready(pods).await {
            Ok(()) => match settled(config, deployments, client, namespace).await {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            },
            Err(e) => last = format!("setting manual pods Ready: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

async fn settled(
    config: &SoakConfig,
    deployments: &Api<Deployment>,
    client: &Client,
    namespace: &str,
) -> Result<(), String> {
    let names = (0..config.deployments)
        .map(|i| format!("web-{i}"))
        .chain([MANUAL_DEPLOYMENT.to_string()]);
    let mut expected = 0;
    for name in names {
        let d = deployments
            .get(&name)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let want = d.spec.replicas.unwrap_or(1);
        let generation = d.metadata.generation.unwrap_or(0);
        let status = d.status.unwrap_or_default();
        let got = [
            status.replicas.unwrap_or(0),
            status.updated_replicas.unwrap_or(0),
            status.ready_replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
        ];
        if status.observed_generation.unwrap_or(0) < generation || got != [want; 4] {
            return Err(format!(
                "Deployment {name}: want {want} replicas, status (replicas, updated, ready, \
                 available) = {got:?}, observed generation {:?} of {generation}",
                status.observed_generation
            ));
        }
        expected += usize::try_from(want).unwrap_or(0);
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let by_service = format!("kubernetes.io/service-name={SERVICE}");
    let slices = slices
        .list(&ListParams::default().labels(&by_service))
        .await
        .map_err(|e| format!("EndpointSlices: {e}"))?;
    let endpoints: Vec<_> = slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .collect();
    let ready = endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    if endpoints.len() != expected || ready != expected {
        return Err(format!(
            "EndpointSlices of {SERVICE}: {} endpoints, {ready} Ready; want {expected}",
            endpoints.len()
        ));
    }
    let legacy: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
    let legacy = legacy
        .get(SERVICE)
        .await
        .map_err(|e| format!("Endpoints: {e}"))?;
    let subsets = legacy.subsets.unwrap_or_default();
    let addresses: usize = subsets
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    let not_ready: usize = subsets
        .iter()
        .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
        .sum();
    if addresses != expected || not_ready != 0 {
        return Err(format!(
            "Endpoints {SERVICE}: {addresses} ready and {not_ready} not-ready addresses; want {expected}"
        ));
    }
    Ok(())
}

async fn sample(binary: &Binary, at: Duration, restarts: usize) -> anyhow::Result<Sample> {
    let text = scrape(&binary.metrics).await?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", binary.pid))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let proc_fds = std::fs::read_dir(format!("/proc/{}/fd", binary.pid))?.count();
    Ok(Sample {
        at,
        rss_mib: metric(&text, "process_resident_memory_bytes").map(|b| b / 1048576.0),
        fds: metric(&text, "process_open_fds"),
        tasks: metric(&text, "tokio_alive_tasks"),
        proc_rss_mib: field("VmRSS:") / 1024.0,
        proc_fds,
        threads: field("Threads:") as usize,
        reconcile_errors: errors_by_controller(&text).values().map(|v| v[0]).sum(),
        restarts,
    })
}

/// The value of an unlabelled sample `name` on a metrics page.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Per controller: reconcile errors, terminal errors, panics.
fn errors_by_controller(text: &str) -> BTreeMap<String, [f64; 3]> {
    let families = [
        "controller_runtime_reconcile_errors_total{",
        "controller_runtime_terminal_reconcile_errors_total{",
        "controller_runtime_reconcile_panics_total{",
    ];
    let mut by = BTreeMap::<String, [f64; 3]>::new();
    for line in text.lines() {
        for (i, family) in families.iter().enumerate() {
            let Some(rest) = line.strip_prefix(family) else {
                continue;
            };
            let controller = rest
                .split_once("controller=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            let value = rest.rsplit(' ').next().and_then(|v| v.parse().ok());
            by.entry(controller).or_default()[i] += value.unwrap_or(0.0);
        }
    }
    by
}

/// GETs `path` from the binary's health server; `Some(body)` on a 200.
async fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

async fn scrape(address: &str) -> anyhow::Result<String> {
    let scraped = tokio::time::timeout(Duration::from_secs(10), http_get(address, "/metrics"));
    scraped
        .await
        .ok()
        .flatten()
        .with_context(|| format!("scraping http://{address}/metrics"))
}

async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let deadline = Instant::now() + within;
    while check().await.is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} did not answer within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Failed reconciles by (controller, kind), and every other warning or error by source
/// and message, from the binary's log (tracing's default format).
fn classify_log(log: &Path) -> (BTreeMap<(String, String), usize>, BTreeMap<String, usize>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut kinds, mut other) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(kind) = reconcile_error_kind(line) {
            let controller = line
                .split_once("controller=")
                .and_then(|(_, r)| r.split([' ', '}']).next())
                .unwrap_or("?")
                .to_string();
            *kinds.entry((controller, kind)).or_default() += 1;
        } else if line.contains(" WARN ") || line.contains(" ERROR ") {
            *other.entry(problem_key(line)).or_default() += 1;
        }
    }
    (kinds, other)
}

/// The kind of a failed reconcile logged on `line`, if it is one.
fn reconcile_error_kind(line: &str) -> Option<String> {
    let kind = if line.contains("reconcile hit a write conflict") {
        "write conflict (409), retried".to_string()
    } else if line.contains("reconcile refused by RBAC") {
        "forbidden (403)".to_string()
    } else if line.contains("reconcile panicked") {
        "panic".to_string()
    } else if line.contains("reconcile failed with a terminal error") {
        format!("terminal: {}", cause(line))
    } else if line.contains("reconcile failed; retrying") {
        cause(line)
    } else {
        return None;
    };
    Some(kind)
}

/// A failed reconcile's cause, from the `error=` text of its log line.
fn cause(line: &str) -> String {
    let error = line.split_once(" error=").map_or(line, |(_, e)| e);
    let lower = error.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let kind = if has(&[
        "connection refused",
        "error trying to connect",
        "connection reset",
        "broken pipe",
        "connection closed",
    ]) {
        "API server unreachable"
    } else if has(&["timed out", "timeout", "deadline"]) {
        "timeout"
    } else if has(&["429", "too many requests"]) {
        "throttled (429)"
    } else if has(&["notfound", "not found", "404"]) {
        "not found (404)"
    } else if has(&["alreadyexists", "already exists", "409", "conflict"]) {
        "conflict (409)"
    } else if has(&["invalid", "422"]) {
        "invalid (422)"
    } else if has(&["500", "503", "unavailable", "internal error"]) {
        "server error (5xx)"
    } else {
        return format!("other: {}", error.chars().take(80).collect::<String>());
    };
    kind.to_string()
}

/// `LEVEL target: message`, without the timestamp, spans and fields.
fn problem_key(line: &str) -> String {
    let level = if line.contains(" ERROR ") {
        "ERROR"
    } else {
        "WARN"
    };
    let rest = line
        .split_once(&format!(" {level} "))
        .map_or(line, |(_, r)| r);
    let rest = rest.rsplit_once("}: ").map_or(rest, |(_, r)| r);
    // Fields follow the message as ` name=value`.
    let mut message = rest;
    for (i, _) in rest.match_indices(' ') {
        let word = rest[i + 1..].split(' ').next().unwrap_or("");
        if let Some((name, _)) = word.split_once('=')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            message = &rest[..i];
            break;
        }
    }
    // Retry delays, ports and resource versions differ per line: one key per message.
    let mut key = String::new();
    let mut depth = 0;
    for c in message.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            // Numbers only, not digits inside names such as `k8s`.
            '0'..='9' if key.ends_with('N') => {}
            '0'..='9' if !key.ends_with(|p: char| p.is_ascii_alphabetic()) => key.push('N'),
            _ => key.push(c),
        }
    }
    format!("{level} {}", key.chars().take(110).collect::<String>())
}

/// The last `n` lines of `path`.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn service() -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": SERVICE},
        "spec": {"selector": {POD_LABEL.0: POD_LABEL.1},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .expect("a valid Service")
}

/// A Deployment of `replicas` pods labelled for the Service: on kwok's fake Nodes, or
/// (`manual`) on the hand-driven Node, whose kubelet the soak plays.
fn deployment(name: &str, replicas: i32, manual: bool) -> Deployment {
    let mut pod_spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "ports": [{"name": "http", "containerPort": 8080}]}],
        "terminationGracePeriodSeconds": 0,
    });
    if manual {
        pod_spec["nodeName"] = json!(MANUAL_NODE_NAME);
        pod_spec["tolerations"] = json!([{"operator": "Exists"}]);
    }
    // No tolerations otherwise: one for every taint would let the scheduler place pods
    // on the hand-driven Node (its taints are all that keep them off), where they would
    // stay Pending.
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name, POD_LABEL.0: POD_LABEL.1}},
                "spec": pod_spec,
            },
        },
    }))
    .expect("a valid Deployment")
}
