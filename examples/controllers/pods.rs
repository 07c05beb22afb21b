//! Pod helpers shared by the example controllers (kube-controller-manager keeps the
//! same rules in controller_utils.go and pkg/api/v1/pod).

use std::cmp::Ordering;

use k8s_openapi::jiff::Timestamp;

use super::pod_view::PodView;

/// Not finished (Succeeded/Failed) and not being deleted.
pub fn is_active(pod: &PodView) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not finished: counted as terminating.
pub fn is_terminating(pod: &PodView) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

fn is_terminal(pod: &PodView) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn phase(pod: &PodView) -> &str {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// The Ready condition's transition time, if the pod is Ready.
pub fn ready_since(pod: &PodView) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        ready
            .last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
    )
}

/// Whether the pod is Ready.
pub fn is_ready(pod: &PodView) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &PodView, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) if since == Timestamp::UNIX_EPOCH => false,
        Some(since) => seconds_between(since, now) >= f64::from(min_ready_seconds),
    }
}

/// When the pod becomes available, if it is Ready but not yet available.
pub fn seconds_until_available(
    pod: &PodView,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<f64> {
    let since = ready_since(pod)?;
    let left = f64::from(min_ready_seconds) - seconds_between(since, now);
    (left > 0.0).then_some(left)
}

fn seconds_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.as_nanosecond() - earlier.as_nanosecond()) as f64 / 1e9
}

/// `namespace/name`, as expectations track pods.
pub fn key(pod: &PodView) -> String {
    let meta = &pod.metadata;
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// The `controller.kubernetes.io/pod-deletion-cost` annotation (0 when absent or bad).
fn deletion_cost(pod: &PodView) -> i32 {
    let annotations = pod.metadata.annotations.as_ref();
    annotations
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Highest restart count of regular containers, then of sidecar (restartable init)
/// containers.
fn max_restarts(pod: &PodView) -> (i32, i32) {
    let status = pod.status.as_ref();
    let regular = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    let sidecars: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular, sidecar)
}

fn phase_rank(pod: &PodView) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// floor(log2(age in ns)), -1 for no age: times this close count as equal.
fn log_age(time: Timestamp, now: Timestamp) -> i64 {
    let age = now.as_nanosecond() - time.as_nanosecond();
    if age > 0 {
        (age as f64).log2() as i64
    } else {
        -1
    }
}

/// Orders two times newer-first on a log2 scale, ties broken by UID; a missing time
/// sorts first.
fn newer_first(
    a: (Option<Timestamp>, &PodView),
    b: (Option<Timestamp>, &PodView),
    now: Timestamp,
) -> Ordering {
    match (a.0, b.0) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_age(x, now).cmp(&log_age(y, now)) {
            Ordering::Equal => a.1.metadata.uid.cmp(&b.1.metadata.uid),
            other => other,
        },
    }
}

/// Sorts `items` by `order` with a merge sort that accepts an order which is not
/// transitive. kube-controller-manager's scale-down ranking is not: two pods with equal
/// times fall through to later rules while two with different times in one log2 bucket
/// are decided by UID, so A = B, A < C and C < B can all hold. The standard library's
/// sorts may panic on such an order (seen under load: every scale-down of the
/// ReplicaSet panicked); Go's sort quietly returns some order, and so does this.
pub fn sort_tolerant<T>(items: &mut Vec<T>, order: &impl Fn(&T, &T) -> Ordering) {
    if items.len() <= 1 {
        return;
    }
    let mut right = items.split_off(items.len() / 2);
    let mut left = std::mem::take(items);
    sort_tolerant(&mut left, order);
    sort_tolerant(&mut right, order);
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (left.peek(), right.peek()) {
        // Ties keep the left item first, so the sort is stable.
        let next = if order(b, a) == Ordering::Less {
            right.next()
        } else {
            left.next()
        };
        items.extend(next);
    }
    items.extend(left);
    items.extend(right);
}

/// kube-controller-manager's scale-down order: `Less` means `a` is deleted first.
/// `colocated_*` counts active related pods on the pod's node.
pub fn deletion_order(
    (a, colocated_a): (&PodView, usize),
    (b, colocated_b): (&PodView, usize),
    now: Timestamp,
) -> Ordering {
    let node = |p: &PodView| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (node_a, node_b) = (node(a), node(b));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        // Unscheduled before scheduled.
        return if node_a.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    phase_rank(a)
        .cmp(&phase_rank(b))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| colocated_b.cmp(&colocated_a))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                // A Ready condition without a transition time counts as "no time".
                let since = |p: &PodView| ready_since(p).filter(|t| *t != Timestamp::UNIX_EPOCH);
                newer_first((since(a), a), (since(b), b), now)
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let created = |p: &PodView| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            newer_first((created(a), a), (created(b), b), now)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, patch: serde_json::Value) -> PodView {
        let mut value = serde_json::json!({
            "metadata": {"name": name, "uid": name, "creationTimestamp": "2026-11-29T10:00:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-29T10:00:10Z"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                       "image": "i", "imageID": ""}]},
        });
        merge(&mut value, patch);
        serde_json::from_value(value).unwrap()
    }

    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }

    fn first_deleted(a: &PodView, b: &PodView) -> String {
        let now: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let (first, second) = match deletion_order((a, 0), (b, 0), now) {
            Ordering::Less => (a, b),
            _ => (b, a),
        };
        assert_eq!(
            deletion_order((second, 0), (first, 0), now),
            Ordering::Greater,
            "the order must be antisymmetric"
        );
        first.metadata.name.clone().unwrap()
    }

    #[test]
    fn a_non_transitive_order_sorts_without_panicking() {
        // Rock, paper, scissors: every pair is ordered, no total order exists.
        let beats = |a: &u8, b: &u8| match (a % 3, b % 3) {
            (x, y) if x == y => Ordering::Equal,
            (x, y) if (x + 1) % 3 == y => Ordering::Less,
            _ => Ordering::Greater,
        };
        let mut items: Vec<u8> = (0..200).map(|i| (i * 7 % 256) as u8).collect();
        let mut expected = items.clone();
        sort_tolerant(&mut items, &beats);
        items.sort_unstable();
        expected.sort_unstable();
        assert_eq!(items, expected, "every item kept, none duplicated");
        let mut numbers: Vec<u32> = vec![5, 3, 9, 1, 7, 3];
        sort_tolerant(&mut numbers, &|a: &u32, b: &u32| a.cmp(b));
        assert_eq!(numbers, [1, 3, 3, 5, 7, 9]);
    }

    #[test]
    fn each_rule_in_order() {
        let base = pod("base", serde_json::json!({}));
        let unscheduled = pod(
            "unscheduled",
            serde_json::json!({"spec": {"nodeName": null}}),
        );
        assert_eq!(first_deleted(&base, &unscheduled), "unscheduled");
        let pending = pod(
            "pending",
            serde_json::json!({"status": {"phase": "Pending"}}),
        );
        assert_eq!(first_deleted(&base, &pending), "pending");
        let unknown = pod(
            "unknown",
            serde_json::json!({"status": {"phase": "Unknown"}}),
        );
        assert_eq!(first_deleted(&unknown, &pending), "pending");
        let not_ready = pod(
            "not-ready",
            serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}}),
        );
        assert_eq!(first_deleted(&base, &not_ready), "not-ready");
        let cheap = pod(
            "cheap",
            serde_json::json!({"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": "-5"}}}),
        );
        assert_eq!(first_deleted(&base, &cheap), "cheap");
        let recently_ready = pod(
            "recent",
            serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-29T11:59:00Z"}]}}),
        );
        assert_eq!(first_deleted(&base, &recently_ready), "recent");
        let restarted = pod(
            "restarted",
            serde_json::json!({"status": {"containerStatuses": [
            {"name": "app", "ready": true, "restartCount": 3, "image": "i", "imageID": ""}]}}),
        );
        assert_eq!(first_deleted(&base, &restarted), "restarted");
        let newer = pod(
            "newer",
            serde_json::json!({"metadata": {"creationTimestamp": "2026-11-29T11:00:00Z"}}),
        );
        assert_eq!(first_deleted(&base, &newer), "newer");
    }

    #[test]
    fn readiness_beats_deletion_cost_and_cost_beats_restarts() {
        let expensive_not_ready = pod(
            "a",
            serde_json::json!({
            "metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "100"}},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        let cheap_ready = pod(
            "b",
            serde_json::json!({"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": "-100"}}}),
        );
        assert_eq!(first_deleted(&expensive_not_ready, &cheap_ready), "a");
        let cheap = pod(
            "cheap",
            serde_json::json!({"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": "-1"}}}),
        );
        let restarted = pod(
            "restarted",
            serde_json::json!({"status": {"containerStatuses": [
            {"name": "app", "ready": true, "restartCount": 9, "image": "i", "imageID": ""}]}}),
        );
        assert_eq!(first_deleted(&cheap, &restarted), "cheap");
    }

    #[test]
    fn more_colocated_pods_go_first_and_close_times_tie_on_uid() {
        let now: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let (a, b) = (
            pod("a", serde_json::json!({})),
            pod("b", serde_json::json!({})),
        );
        assert_eq!(deletion_order((&a, 1), (&b, 3), now), Ordering::Greater);
        // Ready 100 s and 110 s ago fall in the same log2 bucket: the UID decides.
        let ready_at = |name: &str, t: &str| {
            pod(
                name,
                serde_json::json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": t}]}}),
            )
        };
        let (x, y) = (
            ready_at("x", "2026-11-29T11:58:20Z"),
            ready_at("y", "2026-11-29T11:58:10Z"),
        );
        assert_eq!(deletion_order((&x, 0), (&y, 0), now), Ordering::Less);
        assert_eq!(deletion_order((&y, 0), (&x, 0), now), Ordering::Greater);
    }

    #[test]
    fn availability_needs_min_ready_seconds() {
        let now: Timestamp = "2026-11-29T10:00:30Z".parse().unwrap();
        let p = pod("p", serde_json::json!({}));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 20, now));
        assert!(!is_available(&p, 30, now));
        assert_eq!(seconds_until_available(&p, 30, now), Some(10.0));
    }
}
