//! The priority queue on the real API server: a change made while a controller works
//! through the initial sync of 10,000 ConfigMaps is reconciled at once with priorities
//! (the default), and only after the backlog without them; the same for a controller
//! that attaches to an informer already synced (its stored objects are replayed).
//!
//! Prints the latencies: `cargo test --test priority_queue -- --nocapture`.

mod support;

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    ObjectKey,
    controller::Controller,
    informer::{InformerFactory, Scope},
    reconcile::{Action, Reconcile, Request},
    testing::ControlPlane,
};
use serde_json::json;
use tokio::{sync::OnceCell, time::Instant};

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

const OBJECTS: usize = 10_000;
/// How long each reconcile takes.
const WORK: Duration = Duration::from_millis(1);
const WORKERS: usize = 2;
/// Reconciles of the initial sync done before the change is made.
const BEFORE_CHANGE: usize = 500;

/// What the reconciler saw: every reconcile, and when each changed object was first
/// reconciled in its changed state (its `value` equals `marker`).
struct Seen {
    marker: String,
    reconciled: Mutex<Vec<ObjectKey>>,
    changed: Mutex<Vec<(String, Instant)>>,
}

impl Seen {
    /// How long after `since` the changed `object` was reconciled, if it was.
    fn changed_after(&self, object: &str, since: Instant) -> Option<Duration> {
        let changed = self.changed.lock().unwrap();
        let (_, at) = changed.iter().find(|(name, _)| name == object)?;
        Some(*at - since)
    }
}

/// A reconciler that takes [`WORK`] and records what it saw.
struct Timing(Arc<Seen>);

impl Reconcile<ConfigMap> for Timing {
    type Error = Infallible;

    async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, Infallible> {
        let seen = &self.0;
        let value = request
            .object
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|data| data.get("value"));
        if value == Some(&seen.marker) {
            let mut changed = seen.changed.lock().unwrap();
            if !changed.iter().any(|(name, _)| name == request.key.name()) {
                changed.push((request.key.name().to_string(), Instant::now()));
            }
        }
        seen.reconciled.lock().unwrap().push(request.key.clone());
        tokio::time::sleep(WORK).await;
        Ok(Action::Done)
    }
}

/// How long after its change each changed object's reconcile started.
#[derive(Debug)]
struct Latencies {
    /// An object reconciled early in the sync, so its key was no longer queued.
    reconciled_before: Duration,
    /// An object still waiting for its first reconcile (raised, with priorities).
    still_queued: Duration,
    /// Keys queued when the change was made.
    backlog: usize,
}

/// Starts a controller over the namespace's ConfigMaps, changes two of them once
/// [`BEFORE_CHANGE`] reconciles are done, and times their reconciles.
async fn measure(
    client: &Client,
    ns: &str,
    run: &str,
    priorities: bool,
    factory: &InformerFactory,
) -> Latencies {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let marker = format!("changed-{run}");
    let seen = Arc::new(Seen {
        marker: marker.clone(),
        reconciled: Mutex::default(),
        changed: Mutex::default(),
    });
    let scope = Scope::all().namespace(ns);
    let controller = Controller::<ConfigMap>::builder(format!("priority-{run}"), factory, &scope)
        .workers(WORKERS)
        .priority_queue(priorities)
        .shutdown_timeout(Duration::from_secs(5))
        .build(Timing(seen.clone()));
    let queue = controller.queue().clone();
    let started = Instant::now();
    let handle = controller.start();

    let limit = Duration::from_secs(300);
    while seen.reconciled.lock().unwrap().len() < BEFORE_CHANGE {
        assert!(started.elapsed() < limit, "{run}: the sync did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (early, waiting) = {
        let reconciled = seen.reconciled.lock().unwrap();
        let done: HashSet<&str> = reconciled.iter().map(|k| k.name()).collect();
        let early = reconciled[0].name().to_string();
        // Names are created in order, so the last ones not reconciled yet are likely to
        // stay queued for a while (listing order is the store's, not creation order).
        let waiting = (0..OBJECTS)
            .rev()
            .map(name)
            .find(|n| !done.contains(n.as_str()))
            .expect("not everything is reconciled yet");
        (early, waiting)
    };
    let backlog = queue.len();
    let changed_at = Instant::now();
    let patch = Patch::Merge(json!({"data": {"value": marker}}));
    let params = PatchParams::default();
    let (a, b) = tokio::join!(
        api.patch(&early, &params, &patch),
        api.patch(&waiting, &params, &patch)
    );
    a.unwrap();
    b.unwrap();
    let (reconciled_before, still_queued) = loop {
        if let (Some(a), Some(b)) = (
            seen.changed_after(&early, changed_at),
            seen.changed_after(&waiting, changed_at),
        ) {
            break (a, b);
        }
        assert!(
            started.elapsed() < limit,
            "{run}: the changed objects were not reconciled"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    handle.shutdown().await;
    Latencies {
        reconciled_before,
        still_queued,
        backlog,
    }
}

fn name(i: usize) -> String {
    format!("cm-{i:05}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_an_initial_sync_of_10000_objects_is_reconciled_at_once() {
    let (client, ns) = support::namespace(&CONTROL_PLANE, ControlPlane::builder, "pq").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &support::config_map(&name(i), "listed"),
                )
                .await
            }
        })
        .buffer_unordered(50)
        .try_for_each(|_| async { Ok(()) })
        .await
        .unwrap();
    println!("created {OBJECTS} ConfigMaps in {:.1?}", created.elapsed());

    // Each run lists anew (a factory of its own), so each sees a real initial list.
    let off = measure(
        &client,
        &ns,
        "off",
        false,
        &InformerFactory::new(client.clone()),
    )
    .await;
    let on = measure(
        &client,
        &ns,
        "on",
        true,
        &InformerFactory::new(client.clone()),
    )
    .await;

    // A controller attaching to an informer that already synced gets the stored
    // objects replayed: also its initial list.
    let warm = InformerFactory::new(client.clone());
    let informer = warm.informer::<ConfigMap>(&Scope::all().namespace(&ns));
    let reader = informer.reader();
    informer.wait_for_sync().await;
    let replayed = measure(&client, &ns, "replayed", true, &warm).await;
    drop(reader);

    for (run, l) in [("off", &off), ("on", &on), ("on, warm informer", &replayed)] {
        println!(
            "priorities {run}: change of an object already reconciled: {:.1?}; of one still \
             queued: {:.1?} ({} keys queued at the change, {WORKERS} workers, {WORK:?} each)",
            l.reconciled_before, l.still_queued, l.backlog
        );
    }
    // Without priorities the change waits behind the rest of the initial sync (about
    // 9,500 reconciles of 1 ms over 2 workers); with them it goes first.
    assert!(
        off.backlog > OBJECTS / 2,
        "the sync was still underway: {off:?}"
    );
    for fast in [&on, &replayed] {
        assert!(
            fast.backlog > OBJECTS / 2,
            "the sync was still underway: {fast:?}"
        );
        assert!(
            fast.reconciled_before * 5 < off.reconciled_before,
            "with priorities {fast:?}, without {off:?}"
        );
        assert!(
            fast.still_queued * 5 < off.reconciled_before,
            "a queued key is raised: with priorities {fast:?}, without {off:?}"
        );
    }
}
