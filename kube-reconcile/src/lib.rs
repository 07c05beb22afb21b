//! kube-reconcile: build Kubernetes operators in Rust.
//!
//! The pieces, each in its own module:
//! - [`informer`]: one list+watch per type and scope, shared by every consumer in the
//!   process, filling an indexed [`store`];
//! - [`queue`]: the work queue and rate limiters (client-go's semantics);
//! - [`reconcile`]: the [`Reconcile`](reconcile::Reconcile) trait,
//!   [`Action`](reconcile::Action) and [`OnError`](reconcile::OnError), a leaf that
//!   reconcilers depend on, and the [`context`] each reconcile gets (client, events,
//!   apply, finalizers, cancellation);
//! - [`controller`]: the builder and runner tying informers, queue and reconciler
//!   together, with change [`filter`](controller::filter)s and
//!   [`handler`](controller::handler)s;
//! - helpers every operator writes by hand otherwise: server-side [`apply`] with a
//!   field manager, [`finalizer`]s safe against conflicts and stale caches, and
//!   owners across namespaces ([`OwnerTag`](ownership::OwnerTag));
//! - [`client`]: client-side request limits (QPS and burst, as client-go);
//! - [`manager`]: many controllers in one process with one client, factory, metrics
//!   registry and shutdown, `/metrics`, `/healthz` and `/readyz`, and [`leader`]
//!   election on a Lease with fencing; [`rbac`]: the least ClusterRole a controller
//!   or manager needs, from what it watches and declares it writes;
//! - [`metrics`]: client-go's and controller-runtime's metric names on
//!   prometheus-client;
//! - helpers every real controller needs: [`expectations`], [`consistency`] (read
//!   your own writes), [`ownership`]
//!   (claim, adopt, release), compiled label [`selector`]s, [`events`], and status
//!   [`conditions`] (set, find, remove, with Kubernetes' transition-time rules);
//! - [`workloads`]: what controllers of pod-owning workloads share (int-or-percent
//!   values, pod template hashes, revisions, `apps/v1` conditions);
//! - [`service_endpoints`]: what controllers turning a Service's pods into endpoints
//!   share (which pods count, named target ports, last-change trigger times);
//! - [`crd`] (feature `derive`, on by default): `#[derive(Crd)]` turns a spec struct
//!   into a resource type and a structural CustomResourceDefinition, with garde rules
//!   enforced by kube-apiserver too; several versions merged, converted with `From`;
//! - [`projection`] (feature `derive`): `#[derive(Projection)]` declares the fields a
//!   controller reads of a resource, checked against it at compile time, and informers,
//!   stores and controllers work on that smaller type under the resource's API path;
//! - [`ObjectKey`]: how queues and stores name objects;
//! - [`testing`] (feature `testing`): a real local control plane — etcd and
//!   kube-apiserver v1.37 built from Go modules, optionally kube-scheduler with kwok's
//!   fake Nodes and kube-controller-manager — for integration tests and demos.
//!
//! Like kube, this crate does not pick a Kubernetes version for k8s-openapi: the
//! application selects one with a feature on its own k8s-openapi dependency, e.g.
//! `k8s-openapi = { version = "0.29", features = ["v1_37"] }` (a library selects it in
//! its dev-dependencies only). Without one, k8s-openapi's build script stops the build
//! and says so.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod apply;
pub mod client;
pub mod conditions;
pub mod consistency;
pub mod context;
pub mod controller;
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub mod crd;
pub mod events;
pub mod expectations;
pub mod finalizer;
pub mod informer;
mod key;
pub mod kubeconfig;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod ownership;
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub mod projection;
pub mod queue;
pub mod rbac;
pub mod reconcile;
pub mod selector;
pub mod service_endpoints;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;
pub mod workloads;

pub use key::ObjectKey;

// Lets this crate's unit tests use its own derives, whose code names `::kube_reconcile`.
#[cfg(test)]
extern crate self as kube_reconcile;

/// The names most controllers use, for `use kube_reconcile::prelude::*;`.
pub mod prelude {
    #[cfg(unix)]
    pub use crate::controller::shutdown_signal;
    pub use crate::{
        ObjectKey,
        apply::Applier,
        context::Context,
        controller::{Controller, ControllerHandle, Source, filter},
        events::EventType,
        finalizer::FinalizerEvent,
        informer::{Change, InformerFactory, Scope},
        reconcile::{Action, OnError, Reconcile, Request},
        store::Store,
    };
}
