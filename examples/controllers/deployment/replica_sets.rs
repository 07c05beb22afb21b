//! Pure arithmetic over a Deployment's ReplicaSets: sizes, fenceposts, orderings and
//! the proportions of a scaling event, as kube-controller-manager computes them.

use std::cmp::Ordering;

use k8s_openapi::{
    api::apps::v1::{Deployment, ReplicaSet},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::ResourceExt;
use kube_reconcile::workloads::{
    int_or_percent::{InvalidIntOrPercent, Rounding, scaled_value},
    template::equal_ignoring_hash,
};

use super::{DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, RECREATE};

/// `spec.replicas` (the API server defaults it to 1).
pub fn desired(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

/// A ReplicaSet's `spec.replicas`.
pub fn size(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

/// Sum of `spec.replicas`.
pub fn total_size<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(size).sum()
}

/// Sum of a status counter.
pub fn total_status<'a>(
    sets: impl IntoIterator<Item = &'a ReplicaSet>,
    counter: fn(&ReplicaSet) -> i32,
) -> i32 {
    sets.into_iter().map(counter).sum()
}

/// `status.replicas`.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// `status.readyReplicas`.
pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// `status.availableReplicas`.
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The sum of `status.terminatingReplicas`, or `None` when a ReplicaSet that has been
/// synced does not report it (an older controller): then the count is unknown.
pub fn terminating<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> Option<i32> {
    let mut total = 0;
    for rs in sets {
        let status = rs.status.clone().unwrap_or_default();
        match (
            status.observed_generation.unwrap_or(0),
            status.terminating_replicas,
        ) {
            (0, None) => {}
            (_, None) => return None,
            (_, Some(n)) => total += n,
        }
    }
    Some(total)
}

/// Whether the Deployment rolls by `RollingUpdate` (the default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    let kind = d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref());
    kind != Some(RECREATE)
}

/// `maxSurge` and `maxUnavailable` resolved against `spec.replicas`: surge rounds up,
/// unavailable down, and both 0 makes unavailable 1.
pub fn fenceposts(d: &Deployment) -> Result<(i32, i32), InvalidIntOrPercent> {
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.clone())
        .unwrap_or_default();
    let zero = IntOrString::Int(0);
    let replicas = desired(d);
    let surge = scaled_value(
        rolling.max_surge.as_ref().unwrap_or(&zero),
        replicas,
        Rounding::Up,
    )?;
    let unavailable = scaled_value(
        rolling.max_unavailable.as_ref().unwrap_or(&zero),
        replicas,
        Rounding::Down,
    )?;
    Ok(if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    })
}

/// How many pods may exist above `spec.replicas` (0 for Recreate, and when the values
/// do not parse, as kube-controller-manager treats them).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).map_or(0, |(surge, _)| surge)
}

/// How many pods may be unavailable, at most `spec.replicas`.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling_update(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).map_or(0, |(_, unavailable)| unavailable.min(desired(d)))
}

/// The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label).
pub fn find_new<'a>(d: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut by_age: Vec<&ReplicaSet> = sets.iter().collect();
    by_age.sort_by(|a, b| by_creation(a, b));
    by_age.into_iter().find(|rs| {
        rs.spec
            .template
            .as_ref()
            .is_some_and(|t| equal_ignoring_hash(t, &d.spec.template))
    })
}

/// Oldest first; ties by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let time = |rs: &ReplicaSet| rs.creation_timestamp().map(|t| t.0);
    time(a)
        .cmp(&time(b))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// Largest first; among equals, oldest first (whom to scale down first).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    size(b).cmp(&size(a)).then_with(|| by_creation(a, b))
}

/// Largest first; among equals, newest first (whom to scale up first).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    size(b).cmp(&size(a)).then_with(|| by_creation(b, a))
}

/// Lowest revision first; without a comparable revision, oldest first.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    use kube_reconcile::workloads::revision;
    match (revision::of(a), revision::of(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}

/// A non-negative integer annotation, or `None` when absent or malformed.
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    let value: u32 = rs.annotations().get(key)?.parse().ok()?;
    i32::try_from(value).ok()
}

/// Whether the replicas annotations need writing for `desired` and `max` replicas.
pub fn replicas_annotations_differ(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.annotations();
    annotations.get(DESIRED_REPLICAS_ANNOTATION) != Some(&desired.to_string())
        || annotations.get(MAX_REPLICAS_ANNOTATION) != Some(&max.to_string())
}

/// Writes the replicas annotations; returns whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let changed = replicas_annotations_differ(rs, desired, max);
    let annotations = rs.annotations_mut();
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), desired.to_string());
    annotations.insert(MAX_REPLICAS_ANNOTATION.into(), max.to_string());
    changed
}

/// Whether `rs` already runs the whole Deployment: sized and annotated for it, all
/// available.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let desired_annotation = rs
        .annotations()
        .get(DESIRED_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok());
    size(rs) == desired(d) && desired_annotation == Some(desired(d)) && available(rs) == desired(d)
}

/// The size the new ReplicaSet may grow to now.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, InvalidIntOrPercent> {
    if !is_rolling_update(d) {
        return Ok(desired(d));
    }
    let max_surge = fenceposts(d)?.0;
    let current = total_size(all.iter().copied());
    let max_total = desired(d) + max_surge;
    if current >= max_total {
        return Ok(size(new_rs));
    }
    let scale_up = (max_total - current).min(desired(d) - size(new_rs));
    Ok(size(new_rs) + scale_up)
}

/// How many of `to_add` replicas (positive or negative) `rs` takes, in proportion to
/// its share of the Deployment's size before the scaling event (its max-replicas
/// annotation), never more than what is left.
pub fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if size(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(d, rs);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn fraction(d: &Deployment, rs: &ReplicaSet) -> i32 {
    if desired(d) == 0 {
        return -size(rs);
    }
    let max_now = desired(d) + max_surge(d);
    let max_before = match int_annotation(rs, MAX_REPLICAS_ANNOTATION) {
        Some(n) if n != 0 => n,
        _ => {
            let replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if replicas == 0 {
                return 0;
            }
            replicas
        }
    };
    let scaled = f64::from(size(rs)) * f64::from(max_now) / f64::from(max_before);
    // Go's RoundToInt32: half away from zero.
    scaled.round() as i32 - size(rs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "spec": {
                "replicas": replicas,
                "selector": {},
                "template": {},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            }
        }))
        .unwrap()
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let d = deployment(10, json!("25%"), json!("25%"));
        assert_eq!(fenceposts(&d).unwrap(), (3, 2));
        let d = deployment(3, json!(0), json!("10%"));
        assert_eq!(
            fenceposts(&d).unwrap(),
            (0, 1),
            "both 0: one may be unavailable"
        );
        let d = deployment(2, json!(1), json!(5));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
        assert_eq!(max_surge(&d), 1);
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        let d = deployment(10, json!(3), json!(2));
        let rs = |replicas: i32| -> ReplicaSet {
            serde_json::from_value(json!({"spec": {"replicas": replicas, "selector": {}}})).unwrap()
        };
        let (old, new) = (rs(10), rs(0));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new).unwrap(), 3);
        let (old, new) = (rs(8), rs(3));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new).unwrap(), 5);
        let (old, new) = (rs(10), rs(3));
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new).unwrap(),
            3,
            "at the surge"
        );
    }
}
