//! Controllers on the real API server: shared watches that stop with their last
//! controller, owned objects and source filters, per-key exclusivity under many
//! workers, panics, error policies, metrics, cancellation and graceful shutdown,
//! batched sources, and reading the controller's own writes.

mod support;

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, PodTemplate, Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    ObjectKey,
    controller::{Controller, Source},
    informer::{InformerFactory, Scope},
    metrics::Metrics,
    reconcile::{Action, OnError, Reconcile, Request},
    testing::ControlPlane,
};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

async fn setup(prefix: &str) -> (Client, String) {
    support::namespace(&CONTROL_PLANE, ControlPlane::builder, prefix).await
}

/// Records every reconcile and whether two ever overlapped for one key.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<Mutex<Vec<ObjectKey>>>,
    in_flight: Arc<Mutex<HashSet<ObjectKey>>>,
    overlaps: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    work: Duration,
}

impl Recording {
    fn count(&self, name: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.name() == name)
            .count()
    }
}

impl<K: Send + Sync + 'static> Reconcile<K> for Recording {
    type Error = Infallible;

    async fn reconcile(&self, request: Request<K>) -> Result<Action, Infallible> {
        if !self.in_flight.lock().unwrap().insert(request.key.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        self.calls.lock().unwrap().push(request.key.clone());
        tokio::time::sleep(self.work).await;
        self.in_flight.lock().unwrap().remove(&request.key);
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Action::Done)
    }
}

/// Sum of `apiserver_longrunning_requests` for WATCHes of `resource`.
async fn open_watches(client: &Client, resource: &str) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let metrics = client.request_text(request).await.unwrap();
    let needle = format!("resource=\"{resource}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_longrunning_requests{"))
        .filter(|l| l.contains(&needle) && l.contains("verb=\"WATCH\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_controllers_share_one_watch_per_type() {
    let (client, ns) = setup("shared").await;
    let before = (
        open_watches(&client, "podtemplates").await,
        open_watches(&client, "limitranges").await,
    );
    let factory = InformerFactory::new(client.clone());
    let (first, second) = (Recording::default(), Recording::default());
    let scope = Scope::all().namespace(&ns);
    let controller = |name: &str, reconciler: Recording| {
        Controller::<PodTemplate>::builder(name, &factory, &scope)
            .owns::<LimitRange>(&scope)
            .build(reconciler)
    };
    let (a, b) = (
        controller("first", first.clone()),
        controller("second", second.clone()),
    );
    let (a, b) = (a.start(), b.start());

    let template: PodTemplate = serde_json::from_value(json!({
        "metadata": {"name": "tpl"},
        "template": {"spec": {"containers": [{"name": "c", "image": "pause"}]}},
    }))
    .unwrap();
    Api::<PodTemplate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    support::eventually("both controllers to reconcile", || {
        first.count("tpl") > 0 && second.count("tpl") > 0
    })
    .await;

    assert_eq!(factory.len(), 2, "one informer per type");
    let after = (
        open_watches(&client, "podtemplates").await,
        open_watches(&client, "limitranges").await,
    );
    assert_eq!(
        after.0 - before.0,
        1.0,
        "one pod-template watch for two controllers"
    );
    assert_eq!(
        after.1 - before.1,
        1.0,
        "one limit-range watch for two controllers"
    );

    // The watches stay while one controller reads them, and close with the last.
    a.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(open_watches(&client, "podtemplates").await - before.0, 1.0);
    b.shutdown().await;
    support::eventually_async(
        "the watches to close with the last controller",
        async || {
            open_watches(&client, "podtemplates").await == before.0
                && open_watches(&client, "limitranges").await == before.1
        },
    )
    .await;
}

fn owned_secret(name: &str, owner: &ConfigMap, value: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(),
            "uid": owner.uid().unwrap(), "controller": true,
        }]},
        "stringData": {"value": value},
    }))
    .unwrap()
}

#[tokio::test]
async fn owned_object_changes_reconcile_the_owner() {
    let (client, ns) = setup("owned").await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let parent = config_maps
        .create(&PostParams::default(), &support::config_map("parent", "v"))
        .await
        .unwrap();

    let factory = InformerFactory::new(client.clone());
    let recording = Recording::default();
    let scope = Scope::all().namespace(&ns);
    let controller = Controller::<ConfigMap>::builder("owner", &factory, &scope)
        .owns::<Secret>(&scope)
        .build(recording.clone());
    let controller = controller.start();
    support::eventually("the initial reconcile", || recording.count("parent") == 1).await;

    let mut expected = 1;
    let mut step = async |what: &str| {
        expected += 1;
        let wanted = expected;
        support::eventually(what, || recording.count("parent") >= wanted).await;
    };
    secrets
        .create(&PostParams::default(), &owned_secret("child", &parent, "1"))
        .await
        .unwrap();
    step("a reconcile after the child's creation").await;
    let patch = json!({"stringData": {"value": "2"}});
    secrets
        .patch("child", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    step("a reconcile after the child's update").await;
    secrets
        .delete("child", &DeleteParams::default())
        .await
        .unwrap();
    step("a reconcile after the child's deletion").await;

    // A secret owned by something else never reaches this controller.
    let mut stranger = owned_secret("stranger", &parent, "x");
    stranger.metadata.owner_references.as_mut().unwrap()[0].uid = "another-uid".into();
    stranger.metadata.owner_references.as_mut().unwrap()[0].name = "another".into();
    secrets
        .create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(recording.count("another"), 0);
    assert_eq!(recording.count("parent"), 4);
    controller.shutdown().await;
}

#[tokio::test]
async fn many_workers_never_reconcile_one_key_concurrently() {
    let (client, ns) = setup("exclusive").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..4).map(|i| format!("cm-{i}")).collect();
    for name in &names {
        api.create(&PostParams::default(), &support::config_map(name, "0"))
            .await
            .unwrap();
    }
    let factory = InformerFactory::new(client.clone());
    let recording = Recording {
        work: Duration::from_millis(300),
        ..Recording::default()
    };
    let controller =
        Controller::<ConfigMap>::builder("exclusive", &factory, Scope::all().namespace(&ns))
            .workers(8)
            .build(recording.clone());
    let queue = controller.queue().clone();
    let controller = controller.start();

    support::eventually("the initial reconciles", || {
        recording.calls.lock().unwrap().len() == 4
    })
    .await;
    // 60 updates at once, while reconciles take 300 ms: they must collapse per key.
    let updates = (1..=15).flat_map(|round| names.iter().map(move |name| (name.clone(), round)));
    let patches = updates.map(|(name, round)| {
        let api = api.clone();
        async move {
            let patch = json!({"data": {"value": round.to_string()}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    });
    futures::future::join_all(patches).await;
    // Wait until the controller is idle: nothing queued, nothing in flight.
    let idle = || queue.is_empty() && recording.in_flight.lock().unwrap().is_empty();
    support::eventually("the controller to go idle", idle).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    support::eventually("the controller to stay idle", idle).await;
    controller.shutdown().await;
    assert_eq!(recording.overlaps.load(Ordering::SeqCst), 0);
    let total = recording.calls.lock().unwrap().len();
    assert!(
        total <= 4 * 8,
        "bursts of updates collapse: {total} reconciles for 64 updates"
    );
    assert!(names.iter().all(|n| recording.count(n) >= 1));
}

/// Panics on its first reconcile of each key, then succeeds.
#[derive(Clone, Default)]
struct PanicsOnce {
    attempts: Arc<AtomicUsize>,
}

impl Reconcile<ConfigMap> for PanicsOnce {
    type Error = Infallible;

    async fn reconcile(&self, _request: Request<ConfigMap>) -> Result<Action, Infallible> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("deliberate panic in reconcile");
        }
        Ok(Action::Done)
    }
}

#[tokio::test]
async fn a_panicking_reconcile_is_caught_counted_and_retried() {
    let (client, ns) = setup("panics").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &support::config_map("boom", "v"))
        .await
        .unwrap();
    let metrics = Metrics::new();
    let reconciler = PanicsOnce::default();
    let controller = Controller::builder(
        "panics",
        &InformerFactory::new(client),
        Scope::all().namespace(&ns),
    )
    .metrics(&metrics)
    .build(reconciler.clone())
    .start();
    support::eventually("a retry after the panic", || {
        reconciler.attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    let text = metrics.encode();
    for line in [
        r#"controller_runtime_reconcile_panics_total{controller="panics"} 1"#,
        r#"controller_runtime_reconcile_errors_total{controller="panics"} 1"#,
        r#"controller_runtime_reconcile_total{controller="panics",result="error"} 1"#,
        r#"controller_runtime_reconcile_total{controller="panics",result="success"} 1"#,
        r#"controller_runtime_max_concurrent_reconciles{controller="panics"} 1"#,
        r#"workqueue_retries_total{name="panics"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for family in [
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "controller_runtime_reconcile_time_seconds",
        "controller_runtime_active_workers",
        "controller_runtime_terminal_reconcile_errors_total",
    ] {
        assert!(text.contains(family), "missing family {family}");
    }
    controller.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_reconciles_finish_and_cancels_after_the_timeout() {
    let (client, ns) = setup("shutdown").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &support::config_map("slow", "v"))
        .await
        .unwrap();
    let scope = Scope::all().namespace(&ns);

    // Drains: a 2 s reconcile in flight at shutdown completes.
    let recording = Recording {
        work: Duration::from_secs(2),
        ..Recording::default()
    };
    let controller =
        Controller::<ConfigMap>::builder("drain", &InformerFactory::new(client.clone()), &scope)
            .build(recording.clone())
            .start();
    support::eventually("the reconcile to start", || recording.count("slow") == 1).await;
    controller.shutdown().await;
    assert_eq!(
        recording.finished.load(Ordering::SeqCst),
        1,
        "in-flight work finished"
    );

    // Cancels: a 60 s reconcile does not hold shutdown past a 300 ms timeout.
    let stuck = Recording {
        work: Duration::from_secs(60),
        ..Recording::default()
    };
    let controller =
        Controller::<ConfigMap>::builder("cancel", &InformerFactory::new(client), &scope)
            .shutdown_timeout(Duration::from_millis(300))
            .build(stuck.clone())
            .start();
    support::eventually("the reconcile to start", || stuck.count("slow") == 1).await;
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), controller.shutdown())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        stuck.finished.load(Ordering::SeqCst),
        0,
        "cancelled, not finished"
    );
}

/// Waits for cancellation (up to a minute) and records whether it came.
#[derive(Clone, Default)]
struct WaitsForCancellation {
    started: Arc<AtomicUsize>,
    saw_cancellation: Arc<AtomicUsize>,
}

impl Reconcile<ConfigMap> for WaitsForCancellation {
    type Error = Infallible;

    async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, Infallible> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let cancelled = request.ctx.cancellation().cancelled();
        if tokio::time::timeout(Duration::from_secs(60), cancelled)
            .await
            .is_ok()
        {
            self.saw_cancellation.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Action::Done)
    }
}

#[tokio::test]
async fn reconciles_see_cancellation_when_shutdown_begins() {
    let (client, ns) = setup("cancelled").await;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::config_map("waits", "v"))
        .await
        .unwrap();
    let reconciler = WaitsForCancellation::default();
    let controller = Controller::<ConfigMap>::builder(
        "cancelled",
        &InformerFactory::new(client),
        Scope::all().namespace(&ns),
    )
    .shutdown_timeout(Duration::from_secs(60))
    .build(reconciler.clone())
    .start();
    support::eventually("the reconcile to start", || {
        reconciler.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let started = tokio::time::Instant::now();
    controller.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the reconcile returned on cancellation, long before the 60 s timeout"
    );
    assert_eq!(reconciler.saw_cancellation.load(Ordering::SeqCst), 1);
}

/// Fails every reconcile; the error policy depends on the object's name.
#[derive(Clone, Default)]
struct Fails {
    attempts: Arc<Mutex<Vec<(String, tokio::time::Instant)>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("deliberate failure")]
struct Deliberate;

impl Reconcile<ConfigMap> for Fails {
    type Error = Deliberate;

    async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, Deliberate> {
        let now = tokio::time::Instant::now();
        self.attempts
            .lock()
            .unwrap()
            .push((request.key.name().to_string(), now));
        Err(Deliberate)
    }

    fn error_policy(&self, _error: &Deliberate, key: &ObjectKey) -> OnError {
        match key.name() {
            "terminal" => OnError::Terminal,
            _ => OnError::RetryAfter(Duration::from_millis(1500)),
        }
    }
}

impl Fails {
    fn times(&self, name: &str) -> Vec<tokio::time::Instant> {
        let attempts = self.attempts.lock().unwrap();
        attempts
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }
}

#[tokio::test]
async fn the_error_policy_chooses_the_retry_per_error() {
    let (client, ns) = setup("policy").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    for name in ["terminal", "delayed"] {
        api.create(&PostParams::default(), &support::config_map(name, "v"))
            .await
            .unwrap();
    }
    let metrics = Metrics::new();
    let reconciler = Fails::default();
    let controller = Controller::<ConfigMap>::builder(
        "policy",
        &InformerFactory::new(client),
        Scope::all().namespace(&ns),
    )
    .metrics(&metrics)
    .build(reconciler.clone())
    .start();
    support::eventually("three delayed attempts", || {
        reconciler.times("delayed").len() >= 3
    })
    .await;
    controller.shutdown().await;
    let delayed = reconciler.times("delayed");
    for pair in delayed.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(1400),
            "retried after {gap:?}, not 1.5 s"
        );
    }
    assert_eq!(
        reconciler.times("terminal").len(),
        1,
        "a terminal error is not retried"
    );
    let text = metrics.encode();
    let line = r#"controller_runtime_terminal_reconcile_errors_total{controller="policy"} 1"#;
    assert!(text.contains(line), "missing {line:?} in\n{text}");
}

#[tokio::test]
async fn filters_on_an_owned_source_drop_changes_before_the_queue() {
    let (client, ns) = setup("filtered").await;
    let parent = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::config_map("parent", "v"))
        .await
        .unwrap();
    let recording = Recording::default();
    let scope = Scope::all().namespace(&ns);
    let watched = |change: &kube_reconcile::informer::Change<Secret>| {
        change.object().labels().contains_key("watched")
    };
    let controller =
        Controller::<ConfigMap>::builder("filtered", &InformerFactory::new(client.clone()), &scope)
            .owns::<Secret>(Source::new(&scope).filter(watched))
            .build(recording.clone())
            .start();
    support::eventually("the initial reconcile", || recording.count("parent") == 1).await;
    let secrets = Api::<Secret>::namespaced(client, &ns);
    secrets
        .create(
            &PostParams::default(),
            &owned_secret("ignored", &parent, "1"),
        )
        .await
        .unwrap();
    let mut labelled = owned_secret("seen", &parent, "1");
    labelled.metadata.labels = Some([("watched".to_string(), "yes".to_string())].into());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        recording.count("parent"),
        1,
        "an unlabelled child is filtered out"
    );
    secrets
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    support::eventually("a reconcile for the labelled child", || {
        recording.count("parent") == 2
    })
    .await;
    controller.shutdown().await;
}

#[tokio::test]
async fn a_delayed_source_batches_changes_into_one_reconcile() {
    let (client, ns) = setup("batched").await;
    let parent = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::config_map("parent", "v"))
        .await
        .unwrap();
    let recording = Recording::default();
    let scope = Scope::all().namespace(&ns);
    let delay = Duration::from_secs(3);
    let controller =
        Controller::<ConfigMap>::builder("batched", &InformerFactory::new(client.clone()), &scope)
            .owns::<Secret>(Source::new(&scope).delay(delay))
            .build(recording.clone())
            .start();
    support::eventually("the initial reconcile", || recording.count("parent") == 1).await;
    let secrets = Api::<Secret>::namespaced(client, &ns);
    let first_change = tokio::time::Instant::now();
    secrets
        .create(&PostParams::default(), &owned_secret("child", &parent, "0"))
        .await
        .unwrap();
    for value in 1..4 {
        let mut secret = secrets.get("child").await.unwrap();
        secret.string_data = Some([("value".to_string(), value.to_string())].into());
        secrets
            .replace("child", &PostParams::default(), &secret)
            .await
            .unwrap();
    }
    support::eventually("a reconcile for the children's changes", || {
        recording.count("parent") == 2
    })
    .await;
    let waited = first_change.elapsed();
    assert!(
        waited >= delay,
        "reconciled {waited:?} after the first change"
    );
    tokio::time::sleep(delay + Duration::from_secs(1)).await;
    assert_eq!(
        recording.count("parent"),
        2,
        "four changes within the delay are one reconcile"
    );
    controller.shutdown().await;
}

/// Counts a Secret up through the API on each reconcile of its parent, and requeues
/// at once: the next reconcile must see the count it wrote last.
#[derive(Clone)]
struct CountsUp {
    secrets: Api<Secret>,
    cache: kube_reconcile::store::Store<Secret>,
    written: Arc<Mutex<Option<u32>>>,
    stale_reads: Arc<AtomicUsize>,
    reconciles: Arc<AtomicUsize>,
}

const COUNT_TO: u32 = 15;

impl Reconcile<ConfigMap> for CountsUp {
    type Error = kube::Error;

    async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, kube::Error> {
        self.reconciles.fetch_add(1, Ordering::SeqCst);
        let key = ObjectKey::new(request.key.namespace(), "counter");
        let cached = self.cache.get(&key).expect("created before the controller");
        let value = cached.data.as_ref().and_then(|d| d.get("n"));
        let read: u32 = value
            .map(|v| String::from_utf8_lossy(&v.0).parse().unwrap())
            .unwrap_or(0);
        let last = *self.written.lock().unwrap();
        if last.is_some_and(|last| read < last) {
            self.stale_reads.fetch_add(1, Ordering::SeqCst);
        }
        if read >= COUNT_TO {
            return Ok(Action::Done);
        }
        let mut next = (*cached).clone();
        next.data = None;
        next.string_data = Some([("n".to_string(), (read + 1).to_string())].into());
        let updated = self
            .secrets
            .replace("counter", &PostParams::default(), &next)
            .await?;
        *self.written.lock().unwrap() = Some(read + 1);
        request.ctx.wrote(&updated);
        Ok(Action::RequeueAfter(Duration::ZERO))
    }
}

#[tokio::test]
async fn a_reconcile_never_reads_a_cache_older_than_its_own_last_write() {
    let (client, ns) = setup("own-writes").await;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::config_map("parent", "v"))
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let counter: Secret = serde_json::from_value(json!({
        "metadata": {"name": "counter"}, "stringData": {"n": "0"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &counter)
        .await
        .unwrap();
    let scope = Scope::all().namespace(&ns);
    // The Secret is only read: its changes enqueue nothing, so each requeued reconcile
    // that ran before the cache showed the last write would read a stale count.
    let builder =
        Controller::<ConfigMap>::builder("own-writes", &InformerFactory::new(client), &scope)
            .reads::<Secret>(&scope);
    let reconciler = CountsUp {
        secrets,
        cache: builder.store::<Secret>().unwrap(),
        written: Arc::default(),
        stale_reads: Arc::default(),
        reconciles: Arc::default(),
    };
    let controller = builder.build(reconciler.clone()).start();
    support::eventually("the count to reach its end", || {
        *reconciler.written.lock().unwrap() == Some(COUNT_TO)
    })
    .await;
    support::eventually("the last reconcile, which reads the end", || {
        reconciler.reconciles.load(Ordering::SeqCst) == COUNT_TO as usize + 1
    })
    .await;
    controller.shutdown().await;
    assert_eq!(reconciler.stale_reads.load(Ordering::SeqCst), 0);
    assert_eq!(
        reconciler.reconciles.load(Ordering::SeqCst),
        COUNT_TO as usize + 1,
        "a reconcile waits for its cache instead of running on a stale one"
    );
}

#[tokio::test]
async fn a_rate_limited_client_spaces_requests_after_the_burst() {
    let (client, ns) = setup("qps").await;
    let limited = kube_reconcile::client::rate_limited(client, 5.0, 2);
    let api = Api::<ConfigMap>::namespaced(limited, &ns);
    let started = tokio::time::Instant::now();
    for i in 0..7 {
        api.create(
            &PostParams::default(),
            &support::config_map(&format!("cm-{i}"), "v"),
        )
        .await
        .unwrap();
    }
    // 2 tokens at once, then 5 more at 5 a second: at least one second in all.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(990),
        "7 requests took only {elapsed:?}"
    );
}
