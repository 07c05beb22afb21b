//! An informer's task: applies list and watch events to the store, records objects
//! that do not decode, and retries failures with backoff.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, atomic::Ordering},
};

use futures::StreamExt;
use kube::{Resource, runtime::watcher};
use tracing::debug;

use super::{Informer, Shared, WatchStream, decode::Decoded, report::Retry};
use crate::ObjectKey;

/// A list in progress: the objects listed so far, and the keys that did not decode.
struct Listing<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    undecodable: HashSet<ObjectKey>,
}

impl<K> Default for Listing<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            undecodable: HashSet::new(),
        }
    }
}

pub(super) async fn run<K>(shared: Arc<Shared<K>>, stream: WatchStream<K>)
where
    K: Resource + Clone + Send + Sync + 'static,
{
    use watcher::Event;
    let informer = Informer { shared };
    let failures = &informer.shared.decode_failures;
    let resource = informer.shared.origin.resource.as_str();
    let mut stream = std::pin::pin!(stream);
    let mut retry = Retry::default();
    let mut listing: Option<Listing<K>> = None;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                informer.shared.watch_errors.fetch_add(1, Ordering::Relaxed);
                let delay = retry.failed(&informer.shared.origin, &error);
                // Polling the watcher again is what retries, so waiting here is the
                // backoff (the watcher itself restarts its list or watch when polled).
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        // The watcher says Init before each list request, so Init proves nothing
        // reached the server: resetting on it (as kube's own backoff does) keeps an
        // unreachable server retried every second, forever.
        if !matches!(event, Event::Init) {
            retry.succeeded();
        }
        match event {
            Event::Init => listing = Some(Listing::default()),
            Event::InitApply(Decoded::Object(object)) => {
                let object = informer.prepare(object);
                let key = ObjectKey::of(&*object);
                failures.forget(|| key.clone());
                listing.get_or_insert_default().objects.insert(key, object);
            }
            Event::InitApply(Decoded::Undecodable(failure)) => {
                let key = failure.key();
                let listing = listing.get_or_insert_default();
                // Listing the last decodable state keeps a relist from deleting it.
                let kept = informer.shared.store.get(&key);
                failures.failed(resource, &failure, kept.is_some());
                if let Some(kept) = kept {
                    listing.objects.insert(key.clone(), kept);
                }
                informer
                    .shared
                    .writer
                    .observe_version(failure.resource_version());
                listing.undecodable.insert(key);
            }
            Event::InitDone => {
                let Listing {
                    objects,
                    undecodable,
                } = listing.take().unwrap_or_default();
                failures.retain(&undecodable);
                let lists = informer.shared.lists.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(objects = objects.len(), lists, "informer listed");
                informer.replace(objects);
            }
            Event::Apply(Decoded::Object(object)) => {
                failures.forget(|| ObjectKey::of(&object));
                informer.apply(object);
            }
            Event::Apply(Decoded::Undecodable(failure)) => {
                let kept = informer.shared.store.get(&failure.key()).is_some();
                failures.failed(resource, &failure, kept);
                // Read-your-writes waits on versions: a write that made the object
                // undecodable was still seen.
                informer
                    .shared
                    .writer
                    .observe_version(failure.resource_version());
            }
            Event::Delete(Decoded::Object(object)) => {
                failures.forget(|| ObjectKey::of(&object));
                informer.delete(object);
            }
            Event::Delete(Decoded::Undecodable(failure)) => {
                let key = failure.key();
                failures.forget(|| key.clone());
                informer.delete_undecodable(&key, failure.resource_version());
            }
        }
    }
}
