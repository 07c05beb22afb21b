//! Property tests: random event streams with explicit timestamps, checked against a
//! model of client-go's correlator (aggregation, counting, spam filter) and against
//! model-free invariants (counts only grow, the spam limit bounds the writes).

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use proptest::prelude::*;

use super::*;

const OBJECTS: &[&str] = &["web", "db"];
const TYPES: &[&str] = &["Normal", "Warning"];
const REASONS: &[&str] = &["Created", "Failed"];
/// More messages than the largest aggregation threshold, so combining happens.
const MESSAGES: usize = 14;

#[derive(Debug, Clone)]
struct Input {
    /// Time since the previous event.
    gap: Duration,
    object: usize,
    type_: usize,
    reason: usize,
    message: usize,
}

fn input() -> impl Strategy<Value = Input> {
    // Mostly bursts, sometimes gaps around the refill period and the aggregation interval.
    let gap = prop_oneof![
        6 => Just(0u64),
        3 => 1u64..=5,
        1 => prop::sample::select(&[59u64, 60, 61, 299, 300, 301, 599, 600, 601, 3_000][..]),
    ]
    .prop_map(Duration::from_secs);
    (
        gap,
        0..OBJECTS.len(),
        0..TYPES.len(),
        0..REASONS.len(),
        0..MESSAGES,
    )
        .prop_map(|(gap, object, type_, reason, message)| Input {
            gap,
            object,
            type_,
            reason,
            message,
        })
}

fn options() -> impl Strategy<Value = CorrelatorOptions> {
    (
        2usize..=10,
        prop::sample::select(&[60u64, 600][..]),
        1u32..=30,
        prop::sample::select(&[1u64, 60, 300][..]),
    )
        .prop_map(|(max, interval, burst, refill)| CorrelatorOptions {
            aggregate_max_events: max,
            aggregate_interval: Duration::from_secs(interval),
            spam_burst: burst,
            spam_qps: 1.0 / refill as f64,
            ..CorrelatorOptions::default()
        })
}

fn event(input: &Input, n: usize) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!("event-{n}")),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("ns".into()),
            name: Some(OBJECTS[input.object].into()),
            uid: Some(format!("uid-{}", input.object)),
            ..Default::default()
        },
        source: Some(EventSource {
            component: Some("proptest-controller".into()),
            host: None,
        }),
        type_: Some(TYPES[input.type_].into()),
        reason: Some(REASONS[input.reason].into()),
        message: Some(format!("message {}", input.message)),
        first_timestamp: Some(Time(Timestamp::from_second(n as i64).unwrap())),
        count: Some(1),
        ..Default::default()
    }
}

/// Similar events: same object, type and reason.
type Group = (usize, usize, usize);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CountKey {
    Identical(Group, usize),
    Combined(Group),
}

#[derive(Debug)]
struct AggregateModel {
    /// Every distinct message since the window started.
    seen: BTreeSet<usize>,
    last: Duration,
    /// Whether the threshold was reached in this window.
    combining: bool,
}

/// What is known of one count key: its count so far (a lower bound once a skipped
/// event may or may not have counted here) and the first event's name and time.
#[derive(Debug)]
struct CountModel {
    count: i32,
    exact: bool,
    first: Option<(Option<String>, Option<Time>)>,
}

impl CountModel {
    fn new() -> Self {
        Self {
            count: 0,
            exact: true,
            first: None,
        }
    }
}

fn run(options: CorrelatorOptions, inputs: Vec<Input>) -> Result<(), TestCaseError> {
    let mut correlator = Correlator::new(options.clone());
    let start = Instant::now();
    let max = options.aggregate_max_events;
    // Spam allowance in nanoseconds of refill, exact in integers: an event costs
    // `period`, the bucket holds `burst * period`.
    let period = (1e9 / options.spam_qps).round() as i128;
    let capacity = i128::from(options.spam_burst) * period;
    let margin = period / 1_000_000;

    let mut now = Duration::ZERO;
    let mut aggregates: HashMap<Group, AggregateModel> = HashMap::new();
    let mut counts: HashMap<CountKey, CountModel> = HashMap::new();
    let mut buckets: HashMap<(usize, usize), (i128, Duration)> = HashMap::new();
    let mut written: HashMap<(usize, usize), Vec<Duration>> = HashMap::new();
    let mut last_count_by_name: HashMap<String, i32> = HashMap::new();

    for (n, input) in inputs.iter().enumerate() {
        now += input.gap;
        let event = event(input, n);
        let group = (input.object, input.type_, input.reason);

        // Aggregation: combined exactly from the threshold-th distinct message in a
        // window; after that a never-seen message always combines, a repeat may or may
        // not (which message the correlator forgot is unspecified).
        let aggregate = aggregates.entry(group).or_insert(AggregateModel {
            seen: BTreeSet::new(),
            last: now,
            combining: false,
        });
        if now - aggregate.last > options.aggregate_interval {
            aggregate.seen.clear();
            aggregate.combining = false;
        }
        aggregate.last = now;
        let fresh = aggregate.seen.insert(input.message);
        let expect_combined = if !aggregate.combining {
            aggregate.combining = aggregate.seen.len() >= max;
            Some(aggregate.combining)
        } else if fresh {
            Some(true)
        } else {
            None
        };

        // Spam filter, per object and type.
        let (tokens, at) = buckets
            .entry((input.object, input.type_))
            .or_insert((capacity, now));
        *tokens = (*tokens + (now - *at).as_nanos() as i128).min(capacity);
        *at = now;
        let must_allow = *tokens >= period + margin;
        let must_skip = *tokens < period - margin;

        let write = correlator.correlate(event.clone(), start + now);
        let out = match &write {
            Write::Skip => None,
            Write::Create(e) | Write::Patch(e) => Some(e),
        };
        // Only clear-cut cases: the correlator counts tokens in floating point.
        if must_allow || must_skip {
            prop_assert_eq!(
                out.is_some(),
                must_allow,
                "event {} at {:?}: spam allowance {} of {} per event, got {:?}",
                n,
                now,
                tokens,
                period,
                write
            );
        }
        if out.is_some() {
            *tokens -= period;
        }

        let Some(out) = out else {
            // Which key counted this event is unknown if its aggregation was.
            match expect_combined {
                Some(combined) => {
                    let key = if combined {
                        CountKey::Combined(group)
                    } else {
                        CountKey::Identical(group, input.message)
                    };
                    let model = counts.entry(key).or_insert_with(CountModel::new);
                    model.count += 1;
                    if model.exact && model.count == 1 {
                        model.first = Some((event.metadata.name, event.first_timestamp));
                    }
                }
                None => {
                    for key in [
                        CountKey::Combined(group),
                        CountKey::Identical(group, input.message),
                    ] {
                        counts.entry(key).or_insert_with(CountModel::new).exact = false;
                    }
                }
            }
            continue;
        };

        let message = event.message.as_deref().unwrap();
        let combined = match out
            .message
            .as_deref()
            .unwrap()
            .strip_prefix(COMBINED_PREFIX)
        {
            Some(rest) => {
                prop_assert_eq!(rest, message);
                true
            }
            None => {
                prop_assert_eq!(out.message.as_deref(), Some(message));
                false
            }
        };
        if let Some(expected) = expect_combined {
            prop_assert_eq!(
                combined,
                expected,
                "event {}: {} distinct messages, threshold {}",
                n,
                aggregates[&group].seen.len(),
                max
            );
        }

        // Counts: exact where known, otherwise only growing; repeats patch the first.
        let key = if combined {
            CountKey::Combined(group)
        } else {
            CountKey::Identical(group, input.message)
        };
        let model = counts.entry(key).or_insert_with(CountModel::new);
        let count = out.count.unwrap_or(1);
        if model.exact {
            prop_assert_eq!(count, model.count + 1);
        } else {
            prop_assert!(count > model.count, "count {} after {}", count, model.count);
        }
        model.count = count;
        model.exact = true;
        if count == 1 {
            prop_assert!(matches!(write, Write::Create(_)));
            model.first = Some((event.metadata.name.clone(), event.first_timestamp.clone()));
        } else {
            prop_assert!(matches!(write, Write::Patch(_)));
        }
        let first = model
            .first
            .get_or_insert_with(|| (out.metadata.name.clone(), out.first_timestamp.clone()));
        prop_assert_eq!(&out.metadata.name, &first.0);
        prop_assert_eq!(&out.first_timestamp, &first.1);

        // Model-free: an event object's count only grows.
        let name = out.metadata.name.clone().unwrap();
        if let Some(previous) = last_count_by_name.insert(name.clone(), count) {
            prop_assert!(count > previous, "{name}: count {count} after {previous}");
        }

        // Model-free: writes per object and type never exceed the burst plus the
        // refill since the first write.
        let times = written.entry((input.object, input.type_)).or_default();
        times.push(now);
        let refilled = (now - times[0]).as_secs_f64() * options.spam_qps;
        prop_assert!(
            times.len() as f64 <= f64::from(options.spam_burst) + refilled + 1e-9,
            "{} writes in {:?} with burst {}",
            times.len(),
            now - times[0],
            options.spam_burst
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_the_model(
        options in options(),
        inputs in prop::collection::vec(input(), 1..120),
    ) {
        run(options, inputs)?;
    }

    /// With client-go's defaults: the 10th distinct message within 10 minutes is the
    /// first combined one, and one object gets 25 events at once, then 1 per 5 minutes.
    #[test]
    fn defaults(inputs in prop::collection::vec(input(), 1..120)) {
        run(CorrelatorOptions::default(), inputs)?;
    }
}
