use std::{sync::Mutex, time::Duration};

use futures::channel::mpsc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::Event as WatchEvent;

use super::{decode::Decoded, report::Origin, *};

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

type DecodedFeed = mpsc::UnboundedSender<Result<WatchEvent<Decoded<ConfigMap>>, watcher::Error>>;

/// An informer decoding per object (as the factory's do), fed by hand.
fn decoding() -> (Informer<ConfigMap>, DecodedFeed) {
    let (feed, stream) = mpsc::unbounded();
    let stream = Mutex::new(Some(stream));
    let informer = Informer::from_decoding_watch(
        move || stream.lock().unwrap().take().expect("started once"),
        None,
        Origin::default(),
        None,
    );
    informer.start();
    (informer, feed)
}

/// ConfigMap `name` at `version`, decodable unless `bad` (then `data` is a number).
fn decoded(name: &str, version: &str, bad: bool) -> Decoded<ConfigMap> {
    let data = if bad {
        serde_json::json!(3)
    } else {
        serde_json::json!({"v": version})
    };
    let object = serde_json::json!({
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": version},
        "data": data,
    });
    serde_json::from_str(&object.to_string()).unwrap()
}

fn list_decoded(feed: &DecodedFeed, objects: &[Decoded<ConfigMap>]) {
    feed.unbounded_send(Ok(WatchEvent::Init)).unwrap();
    for o in objects {
        feed.unbounded_send(Ok(WatchEvent::InitApply(o.clone())))
            .unwrap();
    }
    feed.unbounded_send(Ok(WatchEvent::InitDone)).unwrap();
}

fn cached_versions(informer: &Informer<ConfigMap>) -> Vec<String> {
    let mut names: Vec<_> = informer
        .store()
        .list()
        .iter()
        .map(|o| format!("{}@{}", o.name_any(), o.resource_version().unwrap()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_undecodable_object_is_skipped_and_counted_once() {
    let (informer, feed) = decoding();
    list_decoded(
        &feed,
        &[decoded("good", "1", false), decoded("bad", "2", true)],
    );
    tokio::time::timeout(Duration::from_secs(5), informer.wait_for_sync())
        .await
        .unwrap();
    assert_eq!(cached_versions(&informer), ["good@1"]);
    assert_eq!(informer.decode_failures(), 1);
    let undecodable = informer.undecodable();
    assert_eq!(undecodable.len(), 1);
    assert_eq!(undecodable[0].key.as_str(), "ns/bad");
    assert_eq!(undecodable[0].resource_version.as_deref(), Some("2"));

    // A relist showing the same version again is not a new failure.
    list_decoded(
        &feed,
        &[decoded("good", "1", false), decoded("bad", "2", true)],
    );
    settle().await;
    assert_eq!(informer.lists(), 2);
    assert_eq!(informer.decode_failures(), 1);
    assert_eq!(
        informer.watch_errors(),
        0,
        "a bad object is not a watch error"
    );

    // Fixed: it is added and leaves the undecodable list.
    feed.unbounded_send(Ok(WatchEvent::Apply(decoded("bad", "3", false))))
        .unwrap();
    settle().await;
    assert_eq!(cached_versions(&informer), ["bad@3", "good@1"]);
    assert!(informer.undecodable().is_empty());
}

#[tokio::test]
async fn an_object_updated_into_an_undecodable_shape_keeps_its_last_good_state() {
    let (informer, feed) = decoding();
    let seen = record(&informer);
    list_decoded(&feed, &[decoded("a", "1", false), decoded("b", "2", false)]);
    settle().await;
    feed.unbounded_send(Ok(WatchEvent::Apply(decoded("a", "3", true))))
        .unwrap();
    settle().await;
    assert_eq!(cached_versions(&informer), ["a@1", "b@2"]);
    assert_eq!(informer.decode_failures(), 1);
    assert_eq!(
        informer.store().resource_version(),
        Some(3),
        "the undecodable write was still seen"
    );

    // A relist that finds it still undecodable (or newly so, for b) deletes nothing.
    list_decoded(&feed, &[decoded("a", "3", true), decoded("b", "4", true)]);
    settle().await;
    assert_eq!(cached_versions(&informer), ["a@1", "b@2"]);
    assert_eq!(informer.decode_failures(), 2, "only b@4 is new");

    // Decodable again: an update from the last good state.
    feed.unbounded_send(Ok(WatchEvent::Apply(decoded("a", "5", false))))
        .unwrap();
    // Deleted while undecodable: handlers get the last good state.
    feed.unbounded_send(Ok(WatchEvent::Delete(decoded("b", "6", true))))
        .unwrap();
    settle().await;
    let mut seen = seen.lock().unwrap().clone();
    seen[..2].sort(); // the first list's order is the cache's
    assert_eq!(
        seen,
        ["added:a@1", "added:b@2", "updated:a@1->a@5", "deleted:b@2"]
    );
    assert!(informer.undecodable().is_empty());
}
