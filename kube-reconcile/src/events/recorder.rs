//! core/v1 Events written the way kube-controller-manager's controllers write them.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{
    Client, Resource,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    EventType,
    correlator::{Correlator, CorrelatorOptions, Write},
};

/// Writes core/v1 Events with client-go's correlation, so `kubectl get events` shows
/// what it shows for kube-controller-manager's own controllers: a repeat of an event
/// raises its count; from the 10th distinct message of one object and reason, they
/// are combined into one event (`(combined from similar events): …`); one source
/// writes at most 25 events about one object, then one every 5 minutes (see
/// [`CorrelatorOptions`]).
///
/// [`record`](Self::record) never waits: events go into a bounded buffer (1,000, as
/// client-go's) that one background task correlates and writes in order, retrying
/// connection failures (12 tries, 10 s apart) and dropping what the server rejects.
/// Events that do not fit the buffer are dropped and counted in
/// [`dropped`](Self::dropped).
///
/// Use kube's [`Recorder`](super::Recorder) instead for the newer events.k8s.io API;
/// both show up in `kubectl get events`.
///
/// ```no_run
/// # async fn demo(client: kube::Client, rs: k8s_openapi::api::apps::v1::ReplicaSet) {
/// use kube::Resource;
/// use kube_reconcile::events::{EventRecorder, EventType};
///
/// let recorder = EventRecorder::new(client, "replicaset-controller");
/// recorder.record(&rs.object_ref(&()), EventType::Normal, "SuccessfulCreate", "Created pod: web-x7k2p");
/// # }
/// ```
#[derive(Clone)]
pub struct EventRecorder {
    sender: mpsc::Sender<Event>,
    component: Arc<str>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("component", &self.component)
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// How many recorded events may wait for the writer.
const BUFFER: usize = 1000;
/// Attempts to write one event while the API server cannot be reached.
const TRIES: u32 = 12;
/// The pause between those attempts (the first is randomised).
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl EventRecorder {
    /// A recorder for events from `component` (the event's `source.component`, e.g.
    /// `replicaset-controller`), with client-go's correlation limits.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: Client, component: &str) -> Self {
        Self::with_options(client, component, CorrelatorOptions::default())
    }

    /// As [`new`](Self::new), with other correlation limits.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn with_options(client: Client, component: &str, options: CorrelatorOptions) -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(write_events(client, Correlator::new(options), receiver));
        Self {
            sender,
            component: component.into(),
            dropped: Arc::default(),
        }
    }

    /// Queues an event about `regarding`; never waits. `reason` is a short
    /// UpperCamelCase word; `message` is for humans.
    pub fn record(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let event = self.event(regarding, type_, reason, message);
        if self.sender.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            debug!(reason, "event buffer full, event dropped");
        }
    }

    /// Events dropped because the buffer was full (or the writer stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Event {
        let now = Timestamp::now();
        let object = regarding.name.as_deref().unwrap_or("");
        Event {
            metadata: ObjectMeta {
                // Named on the client (`<object>.<nanoseconds>`), so a repeat can be
                // patched by name without waiting for the create's answer.
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                ..ObjectMeta::default()
            },
            involved_object: regarding.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            source: Some(EventSource {
                component: Some(self.component.to_string()),
                host: None,
            }),
            reporting_component: Some(self.component.to_string()),
            reporting_instance: Some(String::new()),
            ..Event::default()
        }
    }
}

/// The writer task: correlate each event, then create or patch it.
async fn write_events(
    client: Client,
    mut correlator: Correlator,
    mut events: mpsc::Receiver<Event>,
) {
    while let Some(event) = events.recv().await {
        let write = correlator.correlate(event, Instant::now());
        if write == Write::Skip {
            continue;
        }
        for attempt in 1..=TRIES {
            match send(&client, &write).await {
                Ok(()) => break,
                Err(kube::Error::Api(status)) => {
                    // The server understood and refused (exists, namespace terminating,
                    // invalid): sending it again would not change its mind.
                    debug!(reason = %status.reason, message = %status.message, "event rejected");
                    break;
                }
                Err(error) if attempt < TRIES => {
                    warn!(%error, attempt, "writing an event failed; retrying");
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
                Err(error) => warn!(%error, "writing an event failed; giving up"),
            }
        }
    }
}

async fn send(client: &Client, write: &Write) -> Result<(), kube::Error> {
    let (Write::Create(event) | Write::Patch(event)) = write else {
        return Ok(());
    };
    let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
    let events = kube::core::Request::new(Event::url_path(&(), Some(namespace)));
    if let Write::Patch(event) = write {
        let name = event.metadata.name.as_deref().unwrap_or("");
        let patch = json!({
            "count": event.count,
            "lastTimestamp": event.last_timestamp,
            "message": event.message,
        });
        let request = events
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .map_err(kube::Error::BuildRequest)?;
        match send_unread(client, request, "patch").await {
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            other => return other,
        }
    }
    // A first occurrence, or a repeat whose event was deleted meanwhile.
    let mut fresh = event.clone();
    fresh.metadata.resource_version = None;
    let body = serde_json::to_vec(&fresh).map_err(kube::Error::SerdeError)?;
    let request = events
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    send_unread(client, request, "create").await
}

/// Sends `request`, leaving the server's copy of the event in the answer undecoded:
/// nothing reads it, and decoding a full Event (its managedFields included) for each
/// write was a tenth of a busy controller's CPU.
async fn send_unread(
    client: &Client,
    mut request: http::Request<Vec<u8>>,
    verb: &'static str,
) -> Result<(), kube::Error> {
    // The verb name kube's own calls give their requests (for tracing).
    request.extensions_mut().insert(verb);
    client.request_text(request).await.map(drop)
}

/// Spreads the first retry so many clients do not come back at once.
fn retry_delay(attempt: u32) -> Duration {
    if attempt > 1 {
        return RETRY_AFTER;
    }
    let jitter = u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs()) % 1000;
    RETRY_AFTER.mul_f64(jitter as f64 / 1000.0)
}
