//! Kubernetes Events about the objects a controller manages.
//!
//! Two recorders, one per Events API; both show up in `kubectl get events` and
//! `kubectl describe`:
//! - [`EventRecorder`] writes core/v1 Events with client-go's correlation (repeats
//!   counted, similar events combined, a per-object spam limit) — what
//!   kube-controller-manager's own controllers write, so an operator that replaces one
//!   of them leaves the same trail;
//! - kube's [`Recorder`] (re-exported, with its [`Event`] and [`Reporter`]) writes
//!   events.k8s.io/v1 Events folded into series; [`BufferedRecorder`] puts it behind a
//!   buffer so a reconcile never waits for it.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, pod: k8s_openapi::api::core::v1::Pod) -> Result<(), kube::Error> {
//! use kube::Resource;
//! use kube_reconcile::events::{Event, EventType, Recorder, Reporter};
//!
//! let recorder = Recorder::new(client, Reporter::from("replicaset-controller"));
//! recorder
//!     .publish(
//!         &Event {
//!             type_: EventType::Normal,
//!             reason: "SuccessfulCreate".into(),
//!             note: Some("Created pod: web-abcde".into()),
//!             action: "Create".into(),
//!             secondary: None,
//!         },
//!         &pod.object_ref(&()),
//!     )
//!     .await?;
//! # Ok(()) }
//! ```

pub use kube::runtime::events::{Event, EventType, Recorder, Reporter};

mod buffered;
mod correlator;
mod recorder;

pub use buffered::BufferedRecorder;
pub use correlator::CorrelatorOptions;
pub use recorder::EventRecorder;
