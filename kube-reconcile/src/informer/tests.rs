use std::{sync::Mutex, time::Duration};

use futures::channel::mpsc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::Event as WatchEvent;

use super::*;

type Feed = mpsc::UnboundedSender<Result<WatchEvent<ConfigMap>, watcher::Error>>;

fn config_map(name: &str, version: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": version,
                     "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
    }))
    .unwrap()
}

fn started(transform: Option<Transform<ConfigMap>>) -> (Informer<ConfigMap>, Feed) {
    let (feed, stream) = mpsc::unbounded();
    let informer = Informer::from_stream(stream, transform);
    informer.start();
    (informer, feed)
}

/// Events seen by a handler, as `kind:name@version` strings.
fn record(informer: &Informer<ConfigMap>) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    informer.add_handler(move |event| {
        let describe =
            |o: &ConfigMap| format!("{}@{}", o.name_any(), o.resource_version().unwrap());
        sink.lock().unwrap().push(match event {
            Change::Added(o) => format!("added:{}", describe(o)),
            Change::Updated { old, new } => format!("updated:{}->{}", describe(old), describe(new)),
            Change::Deleted(o) => format!("deleted:{}", describe(o)),
        });
    });
    seen
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn list(feed: &Feed, objects: &[ConfigMap]) {
    feed.unbounded_send(Ok(WatchEvent::Init)).unwrap();
    for o in objects {
        feed.unbounded_send(Ok(WatchEvent::InitApply(o.clone())))
            .unwrap();
    }
    feed.unbounded_send(Ok(WatchEvent::InitDone)).unwrap();
}

#[tokio::test]
async fn syncs_after_the_first_list_and_follows_the_watch() {
    let (informer, feed) = started(Some(strip_managed_fields()));
    let seen = record(&informer);
    list(&feed, &[config_map("a", "1")]);
    tokio::time::timeout(Duration::from_secs(5), informer.wait_for_sync())
        .await
        .unwrap();
    feed.unbounded_send(Ok(WatchEvent::Apply(config_map("a", "2"))))
        .unwrap();
    feed.unbounded_send(Ok(WatchEvent::Apply(config_map("b", "3"))))
        .unwrap();
    feed.unbounded_send(Ok(WatchEvent::Delete(config_map("a", "4"))))
        .unwrap();
    settle().await;
    assert_eq!(
        *seen.lock().unwrap(),
        ["added:a@1", "updated:a@1->a@2", "added:b@3", "deleted:a@2"]
    );
    let b = informer.store().get_named(Some("ns"), "b").unwrap();
    assert!(
        b.metadata.managed_fields.is_none(),
        "managedFields stripped by default"
    );
}

#[tokio::test]
async fn without_a_transform_objects_are_stored_as_received() {
    let (informer, feed) = started(None);
    list(&feed, &[config_map("a", "1")]);
    informer.wait_for_sync().await;
    let a = informer.store().get_named(Some("ns"), "a").unwrap();
    assert!(a.metadata.managed_fields.is_some());
}

#[tokio::test]
async fn a_relist_emits_only_the_differences() {
    let (informer, feed) = started(None);
    let seen = record(&informer);
    list(
        &feed,
        &[
            config_map("keep", "1"),
            config_map("change", "1"),
            config_map("gone", "1"),
        ],
    );
    settle().await;
    seen.lock().unwrap().clear();
    // As after 410 Gone: a fresh list that missed some changes.
    list(
        &feed,
        &[
            config_map("keep", "1"),
            config_map("change", "7"),
            config_map("new", "8"),
        ],
    );
    settle().await;
    let mut events = seen.lock().unwrap().clone();
    events.sort();
    assert_eq!(
        events,
        [
            "added:new@8",
            "deleted:gone@1",
            "updated:change@1->change@7"
        ]
    );
    assert_eq!(informer.store().len(), 3);
}

#[tokio::test]
async fn a_late_handler_gets_the_stored_objects_first() {
    let (informer, feed) = started(None);
    list(&feed, &[config_map("a", "1"), config_map("b", "1")]);
    informer.wait_for_sync().await;
    let seen = record(&informer);
    let mut replay = seen.lock().unwrap().clone();
    replay.sort();
    assert_eq!(replay, ["added:a@1", "added:b@1"]);
    feed.unbounded_send(Ok(WatchEvent::Apply(config_map("c", "2"))))
        .unwrap();
    settle().await;
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn watch_errors_are_counted_and_do_not_stop_the_informer() {
    tokio::time::pause();
    let (informer, feed) = started(None);
    feed.unbounded_send(Err(watcher::Error::NoResourceVersion))
        .unwrap();
    list(&feed, &[config_map("a", "1")]);
    // The default backoff waits before polling again after an error.
    tokio::time::timeout(Duration::from_secs(60), informer.wait_for_sync())
        .await
        .unwrap();
    assert_eq!(informer.watch_errors(), 1);
    assert!(informer.is_running());
}

#[tokio::test]
async fn a_full_subscription_drops_and_reports_what_it_missed() {
    let (informer, feed) = started(None);
    let mut subscription = informer.subscribe(2);
    for version in 1..=5 {
        let version = version.to_string();
        feed.unbounded_send(Ok(WatchEvent::Apply(config_map("a", &version))))
            .unwrap();
    }
    settle().await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(match subscription.recv().await.unwrap() {
            Notification::Missed(n) => format!("missed {n}"),
            Notification::Change(e) => format!("event {}", e.object().resource_version().unwrap()),
        });
    }
    assert_eq!(got, ["missed 3", "event 1", "event 2"]);
}

#[tokio::test]
async fn removed_handlers_hear_nothing_more() {
    let (informer, feed) = started(None);
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let id = informer.add_handler(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    feed.unbounded_send(Ok(WatchEvent::Apply(config_map("a", "1"))))
        .unwrap();
    settle().await;
    informer.remove_handler(id);
    feed.unbounded_send(Ok(WatchEvent::Apply(config_map("a", "2"))))
        .unwrap();
    settle().await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
