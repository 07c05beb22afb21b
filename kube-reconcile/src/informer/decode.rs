//! Decoding listed and watched objects one at a time, so an object the Rust type cannot
//! represent is skipped and reported instead of failing the whole list or watch.
//!
//! kube's watcher decodes a list response as one `ObjectList<K>`: a single item that
//! does not fit `K` (a CRD whose stored objects changed shape, a field a newer server
//! version fills differently) fails the list, the watcher retries, fails again, and the
//! informer never syncs. The factory's informers watch [`Decoded<K>`] instead, which
//! cannot fail on the object's body: it keeps the object's raw JSON just long enough to
//! try `K`, and on failure keeps only `metadata` (to know the object's key) and the
//! error text.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::value::RawValue;
use tracing::warn;

use crate::ObjectKey;

/// One listed or watched object: decoded as `K`, or not. `LEAN` decodes it without
/// `metadata.managedFields` ([`super::lean`]), for informers that would drop them.
#[derive(Debug, Clone)]
pub(crate) enum Decoded<K, const LEAN: bool = false> {
    Object(K),
    Undecodable(Box<Failure>),
}

impl<K> Decoded<K, true> {
    /// The same outcome, as the type informers consume.
    pub(crate) fn kept(self) -> Decoded<K> {
        match self {
            Self::Object(object) => Decoded::Object(object),
            Self::Undecodable(failure) => Decoded::Undecodable(failure),
        }
    }
}

/// What is left of an object that did not decode: enough to key it and say why.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    metadata: ObjectMeta,
    error: String,
}

impl Failure {
    pub(crate) fn key(&self) -> ObjectKey {
        ObjectKey::new(
            self.metadata.namespace.as_deref(),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    pub(crate) fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
}

/// Only `metadata`, ignoring every other field (serde's default for unknown fields).
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

impl<'de, K: DeserializeOwned, const LEAN: bool> Deserialize<'de> for Decoded<K, LEAN> {
    /// Captures the object's JSON text (a copy of its bytes, no parse tree), then
    /// decodes `K` from it (with `managedFields` cut out first if `LEAN`); only
    /// failures decode a second time, for `metadata`.
    ///
    /// Caveat: only works under serde_json's own deserializer (as kube uses it), and
    /// an object whose `metadata` itself does not decode still fails the list.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let lean = if LEAN {
            super::lean::without_managed_fields(raw.get())
        } else {
            None
        };
        let text = lean.as_deref().unwrap_or(raw.get());
        match serde_json::from_str::<K>(text) {
            Ok(object) => Ok(Self::Object(object)),
            Err(error) => {
                let MetadataOnly { metadata } =
                    serde_json::from_str(text).map_err(serde::de::Error::custom)?;
                Ok(Self::Undecodable(Box::new(Failure {
                    metadata,
                    error: error.to_string(),
                })))
            }
        }
    }
}

/// The URL, kind and scope are `K`'s, so `Api<Decoded<K>>` lists and watches exactly
/// what `Api<K>` would.
impl<K: Resource<DynamicType = ()>, const LEAN: bool> Resource for Decoded<K, LEAN> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn metadata_api() -> bool {
        K::metadata_api()
    }
    fn url_path(dt: &(), namespace: Option<&str>) -> String {
        K::url_path(dt, namespace)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Object(object) => object.meta(),
            Self::Undecodable(failure) => &failure.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Object(object) => object.meta_mut(),
            Self::Undecodable(failure) => &mut failure.metadata,
        }
    }
}

/// An object an informer saw but could not decode as its Rust type, from
/// [`Informer::undecodable`](super::Informer::undecodable).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Undecodable {
    /// The object's namespace and name.
    pub key: ObjectKey,
    /// Its resourceVersion when it failed to decode.
    pub resource_version: Option<String>,
    /// serde's reason, e.g. `invalid type: string "three", expected i32 at line 1 column 210`.
    pub error: String,
}

/// An informer's record of objects that did not decode: each object version is logged
/// and counted once, however often a relist shows it again.
pub(super) struct DecodeFailures {
    total: AtomicU64,
    /// `current.len()`, read without the lock on the hot path (every decoded event).
    count: AtomicUsize,
    current: Mutex<HashMap<ObjectKey, Undecodable>>,
    report: Option<Report>,
}

/// Where failures are reported besides the log: a counter per object.
pub(super) struct Report {
    pub(super) metrics: crate::metrics::Metrics,
    pub(super) resource: String,
}

impl DecodeFailures {
    pub(super) fn new(report: Option<Report>) -> Self {
        Self {
            total: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            current: Mutex::default(),
            report,
        }
    }

    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Undecodable>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn current(&self) -> Vec<Undecodable> {
        let mut current: Vec<_> = self.lock().values().cloned().collect();
        current.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        current
    }

    /// Records a failure; logs and counts it unless this key already failed at this
    /// resourceVersion. `kept` says whether an earlier, decodable state stays cached.
    pub(super) fn failed(&self, resource: &str, failure: &Failure, kept: bool) {
        let key = failure.key();
        let version = failure.resource_version();
        let mut current = self.lock();
        if current
            .get(&key)
            .is_some_and(|seen| seen.resource_version.as_deref() == version)
        {
            return;
        }
        let consequence = if kept {
            "keeping its last decodable state in the cache"
        } else {
            "leaving it out of the cache"
        };
        warn!(
            resource,
            object = %key,
            resource_version = version.unwrap_or_default(),
            error = %failure.error,
            "cannot decode {resource} {key}; {consequence}"
        );
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(report) = &self.report {
            report
                .metrics
                .informer_decode_failure(&report.resource, key.as_str());
        }
        current.insert(
            key.clone(),
            Undecodable {
                key,
                resource_version: version.map(str::to_string),
                error: failure.error.clone(),
            },
        );
        self.count.store(current.len(), Ordering::Relaxed);
    }

    /// Forgets `key`'s failure: it decoded again, or is gone.
    pub(super) fn forget(&self, key: impl FnOnce() -> ObjectKey) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut current = self.lock();
        current.remove(&key());
        self.count.store(current.len(), Ordering::Relaxed);
    }

    /// After a complete list: forgets failures of objects the list no longer shows
    /// undecodable (deleted, or fixed, while the watch was down).
    pub(super) fn retain(&self, listed: &HashSet<ObjectKey>) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut current = self.lock();
        current.retain(|key, _| listed.contains(key));
        self.count.store(current.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::{ObjectList, WatchEvent};

    use super::*;

    fn names(list: &ObjectList<Decoded<ConfigMap>>) -> Vec<String> {
        list.items
            .iter()
            .map(|item| match item {
                Decoded::Object(cm) => format!("ok:{}", cm.metadata.name.as_deref().unwrap()),
                Decoded::Undecodable(failure) => format!("bad:{}", failure.key()),
            })
            .collect()
    }

    #[test]
    fn one_bad_item_does_not_fail_the_list() {
        // Decoded the way kube decodes a list response (serde_json from text).
        let text = r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"9"},
            "items":[
              {"metadata":{"name":"good","namespace":"ns","resourceVersion":"7"},"data":{"a":"b"}},
              {"metadata":{"name":"bad","namespace":"ns","resourceVersion":"8"},"data":{"a":3}}
            ]}"#;
        let list: ObjectList<Decoded<ConfigMap>> = serde_json::from_str(text).unwrap();
        assert_eq!(names(&list), ["ok:good", "bad:ns/bad"]);
        let Decoded::Undecodable(failure) = &list.items[1] else {
            unreachable!()
        };
        assert_eq!(failure.resource_version(), Some("8"));
        assert!(
            failure.error.contains("invalid type: integer `3`"),
            "{}",
            failure.error
        );
        assert!(
            serde_json::from_str::<ObjectList<ConfigMap>>(text).is_err(),
            "the plain type must fail, or this test proves nothing"
        );
    }

    #[test]
    fn watch_events_decode_per_object() {
        let line = r#"{"type":"MODIFIED","object":{"metadata":{"name":"bad","namespace":"ns"},"data":[]}}"#;
        let event: WatchEvent<Decoded<ConfigMap>> = serde_json::from_str(line).unwrap();
        let WatchEvent::Modified(Decoded::Undecodable(failure)) = event else {
            panic!("expected an undecodable MODIFIED event, got {event:?}")
        };
        assert_eq!(failure.key().as_str(), "ns/bad");
    }

    #[test]
    fn failures_are_counted_once_per_resource_version() {
        let failures = DecodeFailures::new(None);
        let failure = |version: &str| Failure {
            metadata: ObjectMeta {
                name: Some("bad".into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            error: "nope".into(),
        };
        failures.failed("configmaps", &failure("1"), false);
        failures.failed("configmaps", &failure("1"), false);
        assert_eq!(failures.total(), 1, "a relist showing it again is not new");
        failures.failed("configmaps", &failure("2"), false);
        assert_eq!(failures.total(), 2);
        assert_eq!(failures.current().len(), 1);
        failures.retain(&HashSet::new());
        assert!(failures.current().is_empty());
    }
}
