//! Driving pod status by hand, for pods bound to the manual Node.

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{Patch, PatchParams},
};

use super::{Error, MANUAL_NODE_NAME};

/// The status a test gives a pod on the manual Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: &'static str,
    /// The Ready and ContainersReady conditions.
    pub ready: bool,
    /// Restart count of every container.
    pub restarts: i32,
    /// The pod IP; `None` leaves the pod without one.
    pub pod_ip: Option<String>,
}

impl PodState {
    /// Running and Ready, with `ip`.
    pub fn ready(ip: impl Into<String>) -> Self {
        Self {
            phase: "Running",
            ready: true,
            restarts: 0,
            pod_ip: Some(ip.into()),
        }
    }

    /// Running but not Ready, with `ip`.
    pub fn not_ready(ip: impl Into<String>) -> Self {
        Self {
            ready: false,
            ..Self::ready(ip)
        }
    }

    /// Terminated with failure; no longer counts as active.
    pub fn failed() -> Self {
        Self {
            phase: "Failed",
            ready: false,
            restarts: 0,
            pod_ip: None,
        }
    }

    /// With every container restarted `restarts` times.
    pub fn with_restarts(mut self, restarts: i32) -> Self {
        self.restarts = restarts;
        self
    }
}

/// Writes `state` into the status of pod `name` (as a kubelet would), with one
/// container status per container of its spec. The Ready condition's transition time
/// is now, so "ready since" rankings follow the order of calls.
pub async fn set_pod_state(api: &Api<Pod>, name: &str, state: &PodState) -> Result<Pod, Error> {
    let pod = api.get(name).await.map_err(Error::Api)?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = |b: bool| if b { "True" } else { "False" };
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    let container_statuses: Vec<_> = containers
        .map(|c| {
            let running = state.phase == "Running";
            serde_json::json!({
                "name": c.name, "image": c.image, "imageID": "", "ready": state.ready,
                "started": running, "restartCount": state.restarts,
                "state": if running { serde_json::json!({"running": {"startedAt": now}}) }
                         else { serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error"}}) },
            })
        })
        .collect();
    let patch = serde_json::json!({
        "status": {
            "phase": state.phase,
            "hostIP": "192.0.2.250",
            "podIP": state.pod_ip,
            "podIPs": state.pod_ip.as_ref().map(|ip| vec![serde_json::json!({"ip": ip})]),
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": status(state.ready), "lastTransitionTime": now},
                {"type": "Ready", "status": status(state.ready), "lastTransitionTime": now},
            ],
            "containerStatuses": container_statuses,
        }
    });
    if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(MANUAL_NODE_NAME) {
        tracing::warn!(
            pod = name,
            "set_pod_state on a pod outside the manual Node; kwok may overwrite it"
        );
    }
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Api)
}
