//! A real local Kubernetes control plane for integration tests (feature `testing`).
//!
//! [`ControlPlane`] starts etcd and kube-apiserver on free loopback ports with a
//! throwaway PKI and RBAC on, and can add kube-scheduler plus kwok (fake Nodes whose
//! pods become Running and Ready with IPs), one hand-driven Node whose pod status the
//! test sets itself, and kube-controller-manager with chosen controllers (the
//! reference side of differential tests). No mock server is involved anywhere.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kube_reconcile::testing::ControlPlane;
//!
//! let control_plane = ControlPlane::builder().fake_nodes(2).start().await?;
//! let client = control_plane.client().await?;
//! let namespace = control_plane.create_namespace(&client, "my-test").await?;
//! // ... create objects in `namespace`, run a controller, assert on the results ...
//! # Ok(()) }
//! ```
//!
//! Caveats:
//! - Processes are stopped and the temporary folder removed on drop, also when a test
//!   panics. A control plane kept in a `static` is never dropped: a small watchdog
//!   process then cleans up within seconds of the test process exiting.
//! - Create one [`kube::Client`] per tokio runtime with [`ControlPlane::client`]: a
//!   client's connections belong to the runtime that opened them, and every
//!   `#[tokio::test]` has its own runtime.
//! - Without kube-controller-manager's namespace controller, deleting a namespace never
//!   finishes; tests isolate themselves by namespace and leave them behind.
//! - Set `KUBE_RECONCILE_KEEP_CONTROL_PLANE=1` to keep the folder (logs, kubeconfig,
//!   etcd data) after the control plane stops.

mod assets;
mod crds;
mod error;
mod fault_proxy;
mod nodes;
mod pki;
mod pods;
mod process;

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{Api, Client, Config, api::PostParams};
use tracing::{info, instrument::WithSubscriber, subscriber::NoSubscriber};

pub use assets::{Assets, KUBERNETES_VERSION};
pub use error::Error;
pub use fault_proxy::FaultProxy;
pub use nodes::{FAKE_NODE_LABEL, MANUAL_NODE_NAME};
pub use pki::LocalServingCertificate;
pub use pods::{PodState, set_pod_state};
use process::{Process, Watchdog, free_port, http_get, http_request, wait_until};

/// How long one component may take to become ready; a cold kube-apiserver on two busy
/// cores has been seen to need tens of seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The Service ClusterIP range; pods get IPs from [`POD_CIDR`], which must not overlap.
const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The audit log's file name in the control plane's folder.
const AUDIT_LOG: &str = "audit.log";
/// Pod IPs handed out by kwok.
const POD_CIDR: &str = "10.244.0.0/16";

/// What to start besides etcd and kube-apiserver. Made by [`ControlPlane::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ControlPlaneBuilder {
    assets: Option<Assets>,
    fake_nodes: usize,
    manual_node: bool,
    controllers: Option<Vec<String>>,
    controller_manager_args: Vec<String>,
    controller_manager_through_proxy: bool,
    scheduler_args: Vec<String>,
    crds: Vec<CustomResourceDefinition>,
    audit_log: bool,
    fault_proxy: bool,
    apiserver_args: Vec<String>,
}

impl ControlPlaneBuilder {
    /// Has kube-apiserver write an audit log of every request (metadata level, one JSON
    /// event per line when the response is complete, written before it is sent) to
    /// [`ControlPlane::audit_log_path`]: who sent which request when, e.g. to check that
    /// two replicas never write in the same term.
    pub fn audit_log(mut self) -> Self {
        self.audit_log = true;
        self
    }

    /// Starts a fault-injecting proxy (toxiproxy) in front of kube-apiserver, reached
    /// through [`ControlPlane::fault_proxy`]: clients made from it can have their
    /// connections cut, blackholed or slowed while the test's own client is untouched.
    pub fn fault_proxy(mut self) -> Self {
        self.fault_proxy = true;
        self
    }

    /// Extra flags for kube-apiserver (later flags win), e.g.
    /// `--max-requests-inflight=1` to make it shed load with 429s.
    pub fn kube_apiserver_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.apiserver_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Uses these binaries instead of [`Assets::locate`].
    pub fn assets(mut self, assets: Assets) -> Self {
        self.assets = Some(assets);
        self
    }

    /// Starts kube-scheduler and kwok with `count` fake Nodes (labelled
    /// [`FAKE_NODE_LABEL`]): pods created by anyone get scheduled there and become
    /// Running and Ready with a pod IP. Zero (the default) starts neither.
    pub fn fake_nodes(mut self, count: usize) -> Self {
        self.fake_nodes = count;
        self
    }

    /// Adds the Node [`MANUAL_NODE_NAME`], which nothing manages: it is unschedulable and
    /// tainted, so only pods that name it in `spec.nodeName` land there, and the test
    /// drives their status with [`set_pod_state`].
    pub fn manual_node(mut self) -> Self {
        self.manual_node = true;
        self
    }

    /// Starts kube-controller-manager running exactly these controllers (names as in
    /// its `--controllers` flag, e.g. `replicaset-controller`).
    pub fn kube_controller_manager<I, S>(mut self, controllers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.controllers = Some(controllers.into_iter().map(Into::into).collect());
        self
    }

    /// Extra flags for kube-controller-manager, e.g. `--kube-api-qps=100`.
    pub fn kube_controller_manager_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.controller_manager_args
            .extend(args.into_iter().map(Into::into));
        self
    }

    /// Has kube-controller-manager reach the API server through the
    /// [`fault_proxy`](Self::fault_proxy) (which this turns on), so that the proxy's
    /// faults hit it as they hit a controller under test, e.g. to compare how each
    /// recovers from an outage. kube-scheduler and kwok still go direct.
    pub fn kube_controller_manager_through_fault_proxy(mut self) -> Self {
        self.controller_manager_through_proxy = true;
        self.fault_proxy = true;
        self
    }

    /// Extra flags for kube-scheduler, e.g. `--kube-api-qps=1000` so that scheduling
    /// is not the bottleneck of a benchmark.
    pub fn kube_scheduler_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scheduler_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Installs these CRDs once the API server is up and waits until they are served.
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// Starts everything and waits until it is ready.
    pub async fn start(self) -> Result<ControlPlane, Error> {
        let assets = match self.assets.clone() {
            Some(assets) => assets,
            None => tokio::task::spawn_blocking(Assets::locate)
                .await
                .map_err(|e| Error::Task(e.to_string()))??,
        };
        ControlPlane::start(assets, self).await
    }
}

/// A running etcd + kube-apiserver (and whatever the builder added). See the
/// [module docs](self) for an example and caveats.
#[derive(Debug)]
pub struct ControlPlane {
    // Field order is drop order: processes stop before the folder goes.
    processes: Mutex<Vec<Process>>,
    _watchdog: Watchdog,
    assets: Assets,
    apiserver_args: Vec<String>,
    apiserver_port: u16,
    server: String,
    etcd_endpoint: String,
    etcd_port: u16,
    kubeconfig: PathBuf,
    fake_nodes: Vec<String>,
    fault_proxy: Option<FaultProxy>,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// What to start; `.start().await` starts it.
    pub fn builder() -> ControlPlaneBuilder {
        ControlPlaneBuilder::default()
    }

    async fn start(assets: Assets, options: ControlPlaneBuilder) -> Result<Self, Error> {
        let keep = std::env::var_os("KUBE_RECONCILE_KEEP_CONTROL_PLANE").is_some_and(|v| v == "1");
        let mut dir = tempfile::Builder::new()
            .prefix("kube-reconcile-cp-")
            .tempdir()
            .map_err(Error::io("create the control plane folder"))?;
        dir.disable_cleanup(keep);
        let root = dir.path().to_path_buf();
        let watchdog = Watchdog::start(&root, keep)?;
        pki::write(&root)?;

        let (client_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let mut etcd = Process::spawn(
            &root,
            "etcd",
            &assets.binary("etcd")?,
            &etcd_args(&root, client_port, peer_port),
        )?;
        let took = wait_until(&mut etcd, "etcd /health", READY_TIMEOUT, || async {
            http_get(client_port, "/health")
                .await
                .is_some_and(|r| r.contains(r#""health":"true""#))
        })
        .await?;
        info!(?took, "etcd is ready");

        let etcd_endpoint = format!("http://127.0.0.1:{client_port}");
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = root.join("kubeconfig");
        std::fs::write(&kubeconfig, pki::kubeconfig(&root, &server))
            .map_err(Error::io("write the kubeconfig"))?;
        let mut apiserver_args = apiserver_args(&root, &etcd_endpoint, api_port);
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        if options.audit_log {
            let policy = root.join("audit-policy.yaml");
            let rules = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";
            std::fs::write(&policy, rules).map_err(Error::io("write the audit policy"))?;
            apiserver_args.extend([
                format!("--audit-policy-file={}", policy.display()),
                format!("--audit-log-path={}", root.join(AUDIT_LOG).display()),
                "--audit-log-format=json".to_string(),
                "--audit-log-mode=blocking".to_string(),
            ]);
        }
        let control_plane = Self {
            processes: Mutex::new(vec![etcd]),
            _watchdog: watchdog,
            assets,
            apiserver_args,
            apiserver_port: api_port,
            server,
            etcd_endpoint,
            etcd_port: client_port,
            kubeconfig,
            fake_nodes: Vec::new(),
            fault_proxy: None,
            dir,
        };
        control_plane.start_apiserver().await?;
        control_plane.start_extras(options).await
    }

    /// Starts what the builder asked for beyond etcd and kube-apiserver.
    async fn start_extras(mut self, options: ControlPlaneBuilder) -> Result<Self, Error> {
        let client = self.client().await?;
        if options.fault_proxy {
            self.fault_proxy = Some(self.start_fault_proxy().await?);
        }
        if options.manual_node {
            nodes::create_manual_node(&client).await?;
        }
        if options.fake_nodes > 0 {
            self.fake_nodes = nodes::create_fake_nodes(&client, options.fake_nodes).await?;
            let mut scheduler = vec![
                format!("--kubeconfig={}", self.kubeconfig.display()),
                "--leader-elect=false".to_string(),
                "--secure-port=0".to_string(),
            ];
            scheduler.extend(options.scheduler_args.iter().cloned());
            self.spawn("kube-scheduler", &scheduler)?;
            let kwok = nodes::kwok_args(&self.assets, &self.kubeconfig, POD_CIDR);
            self.spawn("kwok", &kwok)?;
            nodes::wait_for_ready_nodes(&client, &self.fake_nodes, READY_TIMEOUT).await?;
            info!(
                nodes = self.fake_nodes.len(),
                "kube-scheduler and kwok are running"
            );
        }
        if let Some(controllers) = &options.controllers {
            let kubeconfig = match &self.fault_proxy {
                Some(proxy) if options.controller_manager_through_proxy => proxy.kubeconfig_path(),
                _ => &self.kubeconfig,
            };
            let mut args = vec![
                format!("--kubeconfig={}", kubeconfig.display()),
                "--leader-elect=false".to_string(),
                "--secure-port=0".to_string(),
                format!("--controllers={}", controllers.join(",")),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            ];
            args.extend(options.controller_manager_args.iter().cloned());
            self.spawn("kube-controller-manager", &args)?;
        }
        if !options.crds.is_empty() {
            crds::install(&client, &options.crds, READY_TIMEOUT).await?;
        }
        Ok(self)
    }

    async fn start_fault_proxy(&self) -> Result<FaultProxy, Error> {
        let (api_port, listen_port) = (free_port()?, free_port()?);
        let mut toxiproxy = Process::spawn(
            self.dir.path(),
            "toxiproxy",
            &self.assets.binary("toxiproxy")?,
            &fault_proxy::args(api_port),
        )?;
        let took = wait_until(
            &mut toxiproxy,
            "toxiproxy /version",
            READY_TIMEOUT,
            || async move { http_get(api_port, "/version").await.is_some() },
        )
        .await?;
        self.lock_processes().push(toxiproxy);
        let proxy =
            FaultProxy::create(self.dir.path(), api_port, listen_port, self.apiserver_port).await?;
        info!(?took, server = proxy.server_url(), "fault proxy is ready");
        Ok(proxy)
    }

    fn spawn(&self, name: &str, args: &[String]) -> Result<(), Error> {
        let process = Process::spawn(self.dir.path(), name, &self.assets.binary(name)?, args)?;
        self.lock_processes().push(process);
        Ok(())
    }

    fn lock_processes(&self) -> std::sync::MutexGuard<'_, Vec<Process>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start_apiserver(&self) -> Result<(), Error> {
        let binary = self.assets.binary("kube-apiserver")?;
        let mut apiserver = Process::spawn(
            self.dir.path(),
            "kube-apiserver",
            &binary,
            &self.apiserver_args,
        )?;
        let client = self.client().await?;
        let port = self.apiserver_port;
        let took = wait_until(
            &mut apiserver,
            "kube-apiserver /readyz",
            READY_TIMEOUT,
            || async {
                // Probing the port first keeps the client from logging refused connects.
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                {
                    return false;
                }
                let request = http::Request::get("/readyz").body(Vec::new());
                let Ok(request) = request else { return false };
                // Each 500 before readiness is expected: keep the client's trace layer
                // from logging it as an error.
                let probe = client.request_text(request);
                let answer = probe.with_subscriber(NoSubscriber::default()).await;
                answer.is_ok_and(|text| text == "ok")
            },
        )
        .await?;
        info!(?took, server = %self.server, "kube-apiserver is ready");
        self.lock_processes().push(apiserver);
        Ok(())
    }

    /// Stops kube-apiserver and starts it again on the same port and etcd, waiting until
    /// it is ready. Watches through it break; informers must recover on their own.
    pub async fn restart_apiserver(&self) -> Result<(), Error> {
        self.restart_apiserver_after(Duration::ZERO).await
    }

    /// Kills kube-apiserver with SIGKILL — no graceful shutdown: connections drop
    /// mid-response and in-flight writes may or may not have reached etcd — and starts
    /// it again, waiting until it is ready.
    pub async fn crash_apiserver(&self) -> Result<(), Error> {
        let mut old = self.take_apiserver()?;
        tokio::task::spawn_blocking(move || old.kill())
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        self.start_apiserver().await
    }

    /// The fault proxy in front of kube-apiserver, if the builder asked for
    /// [`fault_proxy`](ControlPlaneBuilder::fault_proxy).
    pub fn fault_proxy(&self) -> Option<&FaultProxy> {
        self.fault_proxy.as_ref()
    }

    fn take_apiserver(&self) -> Result<Process, Error> {
        let mut processes = self.lock_processes();
        let index = processes
            .iter()
            .position(|p| p.name == "kube-apiserver")
            .ok_or_else(|| Error::Task("kube-apiserver is not running".into()))?;
        Ok(processes.remove(index))
    }

    /// Like [`restart_apiserver`](Self::restart_apiserver), leaving the API server down
    /// for `downtime` (clients back off meanwhile).
    pub async fn restart_apiserver_after(&self, downtime: Duration) -> Result<(), Error> {
        let old = self.take_apiserver()?;
        tokio::task::spawn_blocking(move || drop(old))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        tokio::time::sleep(downtime).await;
        self.start_apiserver().await
    }

    /// A new client for the admin user (`system:masters`). Make one per tokio runtime.
    pub async fn client(&self) -> Result<Client, Error> {
        Client::try_from(self.config().await?).map_err(Error::Client)
    }

    /// The admin client's configuration, to adjust (timeouts, user agent) before use.
    pub async fn config(&self) -> Result<Config, Error> {
        crate::kubeconfig::load(&self.kubeconfig, None)
            .await
            .map_err(|e| Error::Kubeconfig(e.source))
    }

    /// Creates a namespace named `<prefix>-<random>` and returns its name.
    pub async fn create_namespace(&self, client: &Client, prefix: &str) -> Result<String, Error> {
        let mut namespace = Namespace::default();
        namespace.metadata.generate_name = Some(format!("{prefix}-"));
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(Error::Api)?;
        Ok(created.metadata.name.unwrap_or_default())
    }

    /// Installs CRDs and waits until they are established and served.
    pub async fn install_crds(
        &self,
        client: &Client,
        crds: &[CustomResourceDefinition],
    ) -> Result<(), Error> {
        crds::install(client, crds, READY_TIMEOUT).await
    }

    /// The kubeconfig file for the admin user, for `kubectl --kubeconfig` or
    /// `KUBECONFIG`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// etcd's client URL, for tests that act on storage directly (e.g. compaction).
    pub fn etcd_endpoint(&self) -> &str {
        &self.etcd_endpoint
    }

    /// Compacts etcd's history up to its current revision and returns that revision.
    /// Watches (and lists) from an older resourceVersion then fail with 410 Gone, which
    /// is how tests force informers to relist.
    pub async fn compact_etcd(&self) -> Result<i64, Error> {
        let port = self.etcd_port;
        let failed = |what: &str| Error::Task(format!("etcd {what} failed"));
        // The key "/" base64-encoded; any key works, the header carries the revision.
        let range = http_request(port, "POST", "/v3/kv/range", r#"{"key":"Lw==","limit":1}"#)
            .await
            .ok_or_else(|| failed("range"))?;
        let revision = json_body(&range)
            .and_then(|v| v["header"]["revision"].as_str()?.parse::<i64>().ok())
            .ok_or_else(|| failed("range (no revision)"))?;
        let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
        let compacted = http_request(port, "POST", "/v3/kv/compaction", &body)
            .await
            .ok_or_else(|| failed("compaction"))?;
        json_body(&compacted)
            .filter(|v| v.get("header").is_some())
            .ok_or_else(|| Error::Task(format!("etcd compaction failed: {compacted}")))?;
        Ok(revision)
    }

    /// Names of the fake Nodes that kwok manages.
    pub fn fake_node_names(&self) -> &[String] {
        &self.fake_nodes
    }

    /// The folder holding the kubeconfig, the PKI, etcd's data and every log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of one component, if it was started (to read its CPU time or
    /// memory from `/proc`).
    pub fn pid(&self, component: &str) -> Option<u32> {
        self.lock_processes()
            .iter()
            .find(|p| p.name == component)
            .map(Process::id)
    }

    /// The API server's audit log, if the builder asked for
    /// [`audit_log`](ControlPlaneBuilder::audit_log).
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        let path = self.dir.path().join(AUDIT_LOG);
        self.apiserver_args
            .iter()
            .any(|a| a.starts_with("--audit-log-path="))
            .then_some(path)
    }

    /// The log file of one component (`etcd`, `kube-apiserver`, `kube-scheduler`,
    /// `kwok`, `kube-controller-manager`), if it was started.
    pub fn log_path(&self, component: &str) -> Option<PathBuf> {
        self.lock_processes()
            .iter()
            .find(|p| p.name == component)
            .map(|p| p.log_path().to_path_buf())
    }

    /// Stops every process, newest first, and removes the folder. Dropping does the
    /// same; this spells it out and runs off the async runtime's threads.
    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut processes = self.lock_processes();
        while let Some(mut process) = processes.pop() {
            process.stop();
        }
    }
}

/// The JSON body of a raw HTTP response.
fn json_body(response: &str) -> Option<serde_json::Value> {
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

fn etcd_args(dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        "--name=default".into(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ]
}

fn apiserver_args(dir: &Path, etcd: &str, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let signing_key = file(pki::SERVICE_ACCOUNT_KEY);
    vec![
        format!("--etcd-servers={etcd}"),
        format!("--cert-dir={}", file("apiserver-certs")),
        format!("--tls-cert-file={}", file(pki::SERVING_CERT)),
        format!("--tls-private-key-file={}", file(pki::SERVING_KEY)),
        format!("--client-ca-file={}", file(pki::CA_CERT)),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--allow-privileged=true".into(),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer=https://127.0.0.1:{port}/"),
        format!(
            "--service-account-key-file={}",
            file(pki::SERVICE_ACCOUNT_PUB)
        ),
        format!("--service-account-signing-key-file={signing_key}"),
        // No controller creates default service accounts, and no node-lifecycle
        // controller removes the not-ready taint that new Nodes would get.
        "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition".into(),
        "--endpoint-reconciler-type=none".into(),
    ]
}
