//! A non-blocking front for kube's events.k8s.io recorder.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use k8s_openapi::api::core::v1::ObjectReference;
use tokio::sync::mpsc;
use tracing::warn;

use super::{Event, Recorder};

/// Records events without ever making a reconcile wait for them, as client-go's event
/// broadcaster does: events go into a bounded buffer and one background task writes
/// them in order. When the buffer is full, new events are dropped and counted.
///
/// Why: one slow or contended write per created pod would otherwise stretch a sync
/// creating hundreds of pods to seconds.
///
/// ```no_run
/// # async fn demo(client: kube::Client, pod: k8s_openapi::api::core::v1::Pod) {
/// use kube::Resource;
/// use kube_reconcile::events::{BufferedRecorder, Event, EventType, Recorder, Reporter};
///
/// let events = BufferedRecorder::new(Recorder::new(client, Reporter::from("my-controller")), 1000);
/// events.record(
///     Event {
///         type_: EventType::Normal,
///         reason: "Synced".into(),
///         note: None,
///         action: "Sync".into(),
///         secondary: None,
///     },
///     pod.object_ref(&()),
/// );
/// # }
/// ```
#[derive(Clone)]
pub struct BufferedRecorder {
    sender: mpsc::Sender<(Event, ObjectReference)>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for BufferedRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedRecorder")
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl BufferedRecorder {
    /// Buffers up to `capacity` events for `recorder`; its writer task runs until
    /// every clone of the returned handle is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(recorder: Recorder, capacity: usize) -> Self {
        let (sender, mut receiver) = mpsc::channel::<(Event, ObjectReference)>(capacity.max(1));
        tokio::spawn(async move {
            while let Some((event, regarding)) = receiver.recv().await {
                if let Err(error) = recorder.publish(&event, &regarding).await {
                    warn!(%error, reason = %event.reason, "writing an event failed");
                }
            }
        });
        Self {
            sender,
            dropped: Arc::default(),
        }
    }

    /// Queues an event about `regarding`; never waits.
    pub fn record(&self, event: Event, regarding: ObjectReference) {
        if self.sender.try_send((event, regarding)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the buffer was full (or the writer stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
