//! Kubernetes Events about the objects a controller manages.
//!
//! kube's recorder already does what is needed here (events.k8s.io/v1, repeated events
//! folded into a series with a count, a bounded cache), so kube-reconcile re-exports it
//! instead of writing another. Events written this way also show up in
//! `kubectl describe` and through the core/v1 Events API.
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
