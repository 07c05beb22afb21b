//! Helpers for controllers of pod-owning workloads (the `apps/v1` kinds and custom
//! resources shaped like them): what kube-controller-manager's Deployment, StatefulSet
//! and DaemonSet controllers share, so an operator does not rewrite it.
//!
//! - [`int_or_percent`]: `maxSurge: 25%`-style values resolved against a total, with
//!   Kubernetes' rounding;
//! - [`template`]: a stable hash of a pod template (the `pod-template-hash` label) and
//!   template equality that ignores that label;
//! - [`revision`]: the `deployment.kubernetes.io/revision` bookkeeping (current, last,
//!   history);
//! - [`conditions`]: the `apps/v1` condition lists (`DeploymentCondition`,
//!   `ReplicaSetCondition`, ...), which carry their own types rather than
//!   `metav1.Condition`, with the same set/find/remove rules as Kubernetes' helpers.

pub mod conditions;
pub mod int_or_percent;
pub mod revision;
pub mod template;
