//! What client-go's event correlator decides before an Event is written: fold
//! identical events into a count, combine many similar ones (same object and reason,
//! different messages) into one event, and cap how many events one source may write
//! about one object. Pure and clocked by the caller, so it is tested without waiting.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Event;

/// Limits of the correlation, with client-go's defaults.
#[derive(Clone, Debug)]
pub struct CorrelatorOptions {
    /// Distinct messages of one object and reason after which they are combined into
    /// one event whose message starts with `(combined from similar events): `.
    pub aggregate_max_events: usize,
    /// Similar events further apart than this start a fresh aggregation.
    pub aggregate_interval: Duration,
    /// Events one source may write about one object (and event type) at once...
    pub spam_burst: u32,
    /// ...and how fast that allowance refills, in events per second.
    pub spam_qps: f64,
    /// Entries kept in each of the correlator's caches; beyond it, old entries are
    /// forgotten (their next event starts afresh).
    pub cache_size: usize,
}

impl Default for CorrelatorOptions {
    fn default() -> Self {
        Self {
            aggregate_max_events: 10,
            aggregate_interval: Duration::from_secs(600),
            spam_burst: 25,
            spam_qps: 1.0 / 300.0,
            cache_size: 4096,
        }
    }
}

/// The write an event turns into.
#[derive(Debug, PartialEq)]
pub(crate) enum Write {
    /// A new Event object.
    Create(Event),
    /// Raise the count of the existing Event `event.metadata.name` (falls back to a
    /// create when it has gone).
    Patch(Event),
    /// Dropped by the spam filter.
    Skip,
}

/// The message prefix of an event standing for several similar ones.
pub(crate) const COMBINED_PREFIX: &str = "(combined from similar events): ";

#[derive(Debug)]
pub(crate) struct Correlator {
    options: CorrelatorOptions,
    /// Similar-event groups: the distinct messages seen recently.
    aggregates: BoundedMap<String, Aggregate>,
    /// The Event object each identical-event key was last written as.
    observed: BoundedMap<String, Observation>,
    /// Per source, object and type: the spam allowance.
    spam: BoundedMap<String, Allowance>,
}

#[derive(Debug)]
struct Aggregate {
    messages: HashSet<String>,
    last_seen: Instant,
}

#[derive(Clone, Debug)]
struct Observation {
    count: i32,
    name: String,
    first_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

impl Correlator {
    pub(crate) fn new(options: CorrelatorOptions) -> Self {
        let size = options.cache_size.max(1);
        Self {
            options,
            aggregates: BoundedMap::new(size),
            observed: BoundedMap::new(size),
            spam: BoundedMap::new(size),
        }
    }

    /// Decides how `event` is written at `now`. The event is fresh: count 1 and a
    /// unique name chosen by the caller (client-go names events `<object>.<nanos>`,
    /// which lets a repeat patch the object before the create has even returned).
    pub(crate) fn correlate(&mut self, event: Event, now: Instant) -> Write {
        let (event, key) = self.aggregate(event, now);
        let event = self.observe(event, key);
        if !self.allow(&event, now) {
            return Write::Skip;
        }
        if event.count.unwrap_or(1) > 1 {
            Write::Patch(event)
        } else {
            Write::Create(event)
        }
    }

    /// Past the threshold of distinct messages, swaps the event for the combined one.
    fn aggregate(&mut self, event: Event, now: Instant) -> (Event, String) {
        let group = group_key(&event);
        let message = event.message.clone().unwrap_or_default();
        let interval = self.options.aggregate_interval;
        let aggregate = self
            .aggregates
            .entry_or_insert_with(group.clone(), || Aggregate {
                messages: HashSet::new(),
                last_seen: now,
            });
        if now.duration_since(aggregate.last_seen) > interval {
            aggregate.messages.clear();
        }
        aggregate.messages.insert(message.clone());
        aggregate.last_seen = now;
        if aggregate.messages.len() < self.options.aggregate_max_events {
            let key = identity_key(&event);
            return (event, key);
        }
        // Keep the set below the threshold so every later distinct message combines.
        if let Some(any) = aggregate.messages.iter().next().cloned() {
            aggregate.messages.remove(&any);
        }
        let combined = Event {
            message: Some(format!("{COMBINED_PREFIX}{message}")),
            ..event
        };
        (combined, group)
    }

    /// Turns a repeat of an already written event into a count increment.
    fn observe(&mut self, mut event: Event, key: String) -> Event {
        if let Some(previous) = self.observed.get(&key).cloned() {
            event.metadata.name = Some(previous.name);
            event.first_timestamp = previous.first_timestamp;
            event.count = Some(previous.count + 1);
        }
        self.observed.insert(
            key,
            Observation {
                count: event.count.unwrap_or(1),
                name: event.metadata.name.clone().unwrap_or_default(),
                first_timestamp: event.first_timestamp.clone(),
            },
        );
        event
    }

    fn allow(&mut self, event: &Event, now: Instant) -> bool {
        let burst = f64::from(self.options.spam_burst);
        let allowance = self
            .spam
            .entry_or_insert_with(spam_key(event), || Allowance {
                tokens: burst,
                at: now,
            });
        allowance.tokens = (allowance.tokens
            + now.duration_since(allowance.at).as_secs_f64() * self.options.spam_qps)
            .min(burst);
        allowance.at = now;
        if allowance.tokens >= 1.0 {
            allowance.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A token bucket that refuses rather than delays.
#[derive(Debug)]
struct Allowance {
    tokens: f64,
    at: Instant,
}

fn involved(event: &Event) -> [&str; 5] {
    let object = &event.involved_object;
    [
        object.kind.as_deref().unwrap_or(""),
        object.namespace.as_deref().unwrap_or(""),
        object.name.as_deref().unwrap_or(""),
        object.uid.as_deref().unwrap_or(""),
        object.api_version.as_deref().unwrap_or(""),
    ]
}

fn source(event: &Event) -> [&str; 2] {
    let source = event.source.as_ref();
    [
        source.and_then(|s| s.component.as_deref()).unwrap_or(""),
        source.and_then(|s| s.host.as_deref()).unwrap_or(""),
    ]
}

/// Identical events: same source, object, type, reason and message.
fn identity_key(event: &Event) -> String {
    let mut parts = source(event).to_vec();
    parts.extend(involved(event));
    parts.extend([
        event.involved_object.field_path.as_deref().unwrap_or(""),
        event.type_.as_deref().unwrap_or(""),
        event.reason.as_deref().unwrap_or(""),
        event.message.as_deref().unwrap_or(""),
    ]);
    parts.join("\u{1f}")
}

/// Similar events: identical but for the message.
fn group_key(event: &Event) -> String {
    let mut parts = source(event).to_vec();
    parts.extend(involved(event));
    parts.extend([
        event.type_.as_deref().unwrap_or(""),
        event.reason.as_deref().unwrap_or(""),
        "combined",
    ]);
    parts.join("\u{1f}")
}

/// One allowance per source, object and event type (any reason).
fn spam_key(event: &Event) -> String {
    let mut parts = source(event).to_vec();
    parts.extend(involved(event));
    parts.push(event.type_.as_deref().unwrap_or(""));
    parts.join("\u{1f}")
}

/// A map that forgets its oldest insertions beyond a size, so a long-running
/// controller's event caches stay bounded.
#[derive(Debug)]
struct BoundedMap<K, V> {
    entries: HashMap<K, (u64, V)>,
    next: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            next: 0,
            capacity,
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    fn insert(&mut self, key: K, value: V) {
        self.make_room(&key);
        self.next += 1;
        self.entries.insert(key, (self.next, value));
    }

    fn entry_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.make_room(&key);
        self.next += 1;
        let stamp = self.next;
        let entry = self.entries.entry(key).or_insert_with(|| (stamp, make()));
        entry.0 = stamp;
        &mut entry.1
    }

    /// Evicts the least recently touched entry when a new key would overflow.
    fn make_room(&mut self, key: &K) {
        if self.entries.len() < self.capacity || self.entries.contains_key(key) {
            return;
        }
        let oldest = self.entries.iter().min_by_key(|(_, (stamp, _))| *stamp);
        if let Some(oldest) = oldest.map(|(key, _)| key.clone()) {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};

    use super::*;

    fn event(reason: &str, message: &str) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some("ReplicaSet".into()),
                namespace: Some("ns".into()),
                name: Some("web".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            source: Some(EventSource {
                component: Some("replicaset-controller".into()),
                host: None,
            }),
            type_: Some("Normal".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            count: Some(1),
            ..Default::default()
        }
    }

    /// Correlates a fresh event named `event-<n>`, as the recorder names them.
    fn write(correlator: &mut Correlator, mut event: Event, now: Instant, n: &mut u32) -> Write {
        *n += 1;
        event.metadata.name = Some(format!("event-{n}"));
        correlator.correlate(event, now)
    }

    #[test]
    fn identical_events_become_one_event_with_a_count() {
        let mut correlator = Correlator::new(CorrelatorOptions::default());
        let now = Instant::now();
        let mut n = 0;
        let first = write(&mut correlator, event("Failed", "boom"), now, &mut n);
        assert!(matches!(first, Write::Create(_)));
        let Write::Patch(second) = write(&mut correlator, event("Failed", "boom"), now, &mut n)
        else {
            panic!("a repeat patches the first event");
        };
        assert_eq!(second.count, Some(2));
        assert_eq!(second.metadata.name.as_deref(), Some("event-1"));
    }

    #[test]
    fn the_tenth_distinct_message_starts_a_combined_event() {
        let mut correlator = Correlator::new(CorrelatorOptions::default());
        let now = Instant::now();
        let mut n = 0;
        let writes: Vec<Write> = (0..12)
            .map(|i| {
                write(
                    &mut correlator,
                    event("SuccessfulCreate", &format!("Created pod: p{i}")),
                    now,
                    &mut n,
                )
            })
            .collect();
        let created: Vec<&Event> = writes
            .iter()
            .filter_map(|w| {
                if let Write::Create(e) = w {
                    Some(e)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(created.len(), 10, "9 single events and 1 combined one");
        assert_eq!(
            created[9].message.as_deref(),
            Some("(combined from similar events): Created pod: p9")
        );
        let Write::Patch(last) = &writes[11] else {
            panic!("later similar events raise the combined event's count");
        };
        assert_eq!(last.count, Some(3));
        assert_eq!(
            last.message.as_deref(),
            Some("(combined from similar events): Created pod: p11")
        );
    }

    #[test]
    fn one_object_gets_at_most_the_burst_then_refills_slowly() {
        let mut correlator = Correlator::new(CorrelatorOptions::default());
        let start = Instant::now();
        let mut n = 0;
        let allowed = (0..40)
            .filter(|i| {
                let e = event("SuccessfulDelete", &format!("Deleted pod: p{i}"));
                write(&mut correlator, e, start, &mut n) != Write::Skip
            })
            .count();
        assert_eq!(allowed, 25);
        let later = start + Duration::from_secs(300);
        let refilled = write(&mut correlator, event("Other", "x"), later, &mut n);
        assert!(
            matches!(refilled, Write::Create(_)),
            "one token per 5 minutes"
        );
        let again = write(&mut correlator, event("Other", "y"), later, &mut n);
        assert_eq!(again, Write::Skip);
    }

    #[test]
    fn aggregation_restarts_after_the_interval() {
        let mut correlator = Correlator::new(CorrelatorOptions::default());
        let start = Instant::now();
        let mut n = 0;
        for i in 0..9 {
            write(&mut correlator, event("R", &format!("m{i}")), start, &mut n);
        }
        let later = start + Duration::from_secs(601);
        let Write::Create(fresh) = write(&mut correlator, event("R", "m9"), later, &mut n) else {
            panic!("a fresh event");
        };
        assert_eq!(fresh.message.as_deref(), Some("m9"));
    }

    #[test]
    fn caches_stay_bounded() {
        let mut map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.entry_or_insert_with("a", || 0);
        map.insert("c", 3);
        assert!(
            map.get(&"b").is_none(),
            "the least recently touched entry goes"
        );
        assert_eq!(map.get(&"a"), Some(&1));
        assert_eq!(map.get(&"c"), Some(&3));
    }
}
