//! Leader election with three replicas of the controller-manager example (ReplicaSet
//! controller) on the real control plane, client-go's default timings: a SIGTERMed
//! leader hands over within 2 s (it releases the lease), a SIGKILLed one within lease +
//! retry (17 s), and a leader frozen with SIGSTOP past its renew deadline never writes
//! again once it resumes: the API server's audit log shows every write with the
//! replica's identity (its user agent), and no two identities interleave.

mod support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::ReplicaSet, coordination::v1::Lease};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use kube_reconcile::testing::ControlPlane;
use serde_json::json;

const LEASE: &str = "kube-reconcile-controller-manager";
const AGENT: &str = "kube-reconcile-controller-manager/";

struct Replica {
    identity: String,
    child: Child,
}

impl Replica {
    fn spawn(cp: &ControlPlane, identity: &str) -> Self {
        let log = std::fs::File::create(cp.dir().join(format!("{identity}.log"))).unwrap();
        let child = Command::new(support::controller_manager_binary())
            .arg(format!("--kubeconfig={}", cp.kubeconfig_path().display()))
            .args([
                "--controllers=replicaset",
                "--leader-elect=true",
                "--health-address=127.0.0.1:0",
                "--kube-api-qps=0",
            ])
            .arg(format!("--leader-elect-identity={identity}"))
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the controller-manager example starts");
        Self {
            identity: identity.to_string(),
            child,
        }
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {signal} {}", self.identity);
    }

    /// Waits for the process to exit; its success, or a failure after `within`.
    fn exited_ok(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.identity
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> String {
    let lease = leases.get_opt(LEASE).await.unwrap();
    lease
        .and_then(|l| l.spec?.holder_identity)
        .unwrap_or_default()
}

/// Waits until the lease is held by someone other than `not`; the holder and when.
async fn new_holder(leases: &Api<Lease>, not: &str, within: Duration) -> (String, Instant) {
    let deadline = Instant::now() + within + Duration::from_secs(10);
    loop {
        let now = holder(leases).await;
        if !now.is_empty() && now != not {
            return (now, Instant::now());
        }
        assert!(Instant::now() < deadline, "nobody took over from {not:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn replica_set(replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                         "terminationGracePeriodSeconds": 0,
                         "tolerations": [{"operator": "Exists"}]},
            },
        },
    }))
    .unwrap()
}

async fn scale(sets: &Api<ReplicaSet>, replicas: i32) {
    let patch = json!({"spec": {"replicas": replicas}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn wait_available(sets: &Api<ReplicaSet>, replicas: i32) {
    support::wait_for(
        sets,
        "web",
        "the replicas available",
        move |rs: Option<&ReplicaSet>| {
            let status = rs.and_then(|rs| rs.status.as_ref());
            status.is_some_and(|s| s.replicas == replicas && s.available_replicas == Some(replicas))
        },
    )
    .await;
}

/// Every write our replicas made (leases aside), as (received at, identity), in order.
fn writes_by_identity(audit_log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(audit_log).unwrap();
    let mut writes: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            let verb = event["verb"].as_str().unwrap_or_default();
            let resource = event["objectRef"]["resource"].as_str().unwrap_or_default();
            matches!(verb, "create" | "update" | "patch" | "delete") && resource != "leases"
        })
        .filter_map(|event| {
            let identity = event["userAgent"]
                .as_str()?
                .strip_prefix(AGENT)?
                .to_string();
            Some((
                event["requestReceivedTimestamp"].as_str()?.to_string(),
                identity,
            ))
        })
        .collect();
    writes.sort();
    writes
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_frozen_leader_never_writes_again() {
    let cp = support::start(ControlPlane::builder().fake_nodes(2).audit_log()).await;
    let client: Client = cp.client().await.unwrap();
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-system");
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let mut replicas: Vec<Replica> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| Replica::spawn(&cp, id))
        .collect();
    let take = |replicas: &mut Vec<Replica>, identity: &str| {
        let at = replicas.iter().position(|r| r.identity == identity);
        replicas.remove(at.unwrap_or_else(|| panic!("{identity} is not one of ours")))
    };

    let (first, _) = new_holder(&leases, "", Duration::from_secs(30)).await;
    sets.create(&PostParams::default(), &replica_set(2))
        .await
        .unwrap();
    wait_available(&sets, 2).await;

    // SIGTERM: the leader drains, releases the lease, and a standby takes it at once.
    let mut leader = take(&mut replicas, &first);
    let stopped = Instant::now();
    leader.signal("TERM");
    let (second, took_over) = new_holder(&leases, &first, Duration::from_secs(2)).await;
    let handover = took_over - stopped;
    assert!(
        handover <= Duration::from_secs(2),
        "SIGTERM handover took {handover:?}"
    );
    assert!(
        leader.exited_ok(Duration::from_secs(10)),
        "a leader stopped by SIGTERM exits cleanly"
    );
    replicas.push(Replica::spawn(&cp, "r4"));
    scale(&sets, 3).await;
    wait_available(&sets, 3).await;

    // SIGKILL: nothing is released; a standby takes over once the lease expires.
    let leader = take(&mut replicas, &second);
    let killed = Instant::now();
    leader.signal("KILL");
    drop(leader);
    let (third, took_over) = new_holder(&leases, &second, Duration::from_secs(17)).await;
    let handover = took_over - killed;
    assert!(
        handover <= Duration::from_secs(17),
        "SIGKILL handover took {handover:?} (lease 15 s + retry 2 s)"
    );
    replicas.push(Replica::spawn(&cp, "r5"));
    scale(&sets, 4).await;
    wait_available(&sets, 4).await;

    // SIGSTOP: the leader freezes while work keeps coming; another takes over after the
    // lease expires; resumed, the old leader finds its fence closed and exits.
    let mut frozen = take(&mut replicas, &third);
    frozen.signal("STOP");
    let mut size = 4;
    let mut fourth = None;
    let started = Instant::now();
    while fourth.is_none() || started.elapsed() < Duration::from_secs(20) {
        size = if size == 4 { 5 } else { 4 };
        scale(&sets, size).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = holder(&leases).await;
        if !now.is_empty() && now != third {
            fourth = Some(now);
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "nobody took over from {third}"
        );
    }
    frozen.signal("CONT");
    assert!(
        !frozen.exited_ok(Duration::from_secs(15)),
        "a leader that lost its lease exits with an error"
    );
    for _ in 0..4 {
        size = if size == 4 { 5 } else { 4 };
        scale(&sets, size).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_available(&sets, size).await;
    drop(replicas);

    let writes = writes_by_identity(&cp.audit_log_path().expect("audit log on"));
    let mut terms: Vec<&str> = Vec::new();
    for (_, identity) in &writes {
        if terms.last() != Some(&identity.as_str()) {
            assert!(
                !terms.contains(&identity.as_str()),
                "{identity} wrote again after another replica did: terms {terms:?}"
            );
            terms.push(identity);
        }
    }
    let fourth = fourth.unwrap();
    for leader in [&first, &second, &third, &fourth] {
        assert!(
            terms.contains(&leader.as_str()),
            "{leader} led but made no write: terms {terms:?}"
        );
    }
}
