//! Status conditions (`status.conditions`, a list of [`Condition`]) with the semantics
//! Kubernetes' own controllers give them: one entry per `type`, and a
//! `lastTransitionTime` that records when the *status* last flipped, not when the entry
//! was last written.
//!
//! - [`new`] builds a condition from its type, status, reason and message; the
//!   [`ConditionExt`] methods add the `observedGeneration`.
//! - [`set`] inserts or updates the entry of that type and reports whether anything
//!   changed, so a controller writes status only when needed.
//! - [`find`], [`remove`], [`is_true`], [`is_false`] and [`is_unknown`] read and edit
//!   the list by type.
//!
//! ```
//! use k8s_openapi::api::apps::v1::Deployment;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
//! use kube_reconcile::conditions::{self, ConditionExt, Status};
//!
//! let object = Deployment {
//!     metadata: ObjectMeta { generation: Some(4), ..Default::default() },
//!     ..Default::default()
//! };
//! let mut status_conditions: Vec<Condition> = Vec::new();
//!
//! // First reconcile: not ready yet.
//! let progressing = conditions::new("Ready", false, "Scaling", "1 of 3 replicas ready")
//!     .for_generation(&object);
//! assert!(conditions::set(&mut status_conditions, progressing));
//! assert!(conditions::is_false(&status_conditions, "Ready"));
//! let since = conditions::find(&status_conditions, "Ready").unwrap().last_transition_time.clone();
//!
//! // Same status, new message: the entry changes, its transition time does not.
//! let progressing = conditions::new("Ready", Status::False, "Scaling", "2 of 3 replicas ready")
//!     .for_generation(&object);
//! assert!(conditions::set(&mut status_conditions, progressing.clone()));
//! assert_eq!(conditions::find(&status_conditions, "Ready").unwrap().last_transition_time, since);
//!
//! // Nothing new: `set` says so, and the controller can skip the status write.
//! assert!(!conditions::set(&mut status_conditions, progressing));
//!
//! // A type that was never set is neither true nor false.
//! assert!(!conditions::is_true(&status_conditions, "Degraded"));
//! assert!(!conditions::is_false(&status_conditions, "Degraded"));
//! assert!(conditions::is_unknown(&status_conditions, "Degraded"));
//! ```
//!
//! Caveats:
//! - Nothing here validates the fields. The API server does for built-in types, and
//!   for CRDs whose schema carries the constraints (controller-gen's does; the
//!   k8s-openapi schema that `#[derive(Crd)]` uses for a `Vec<Condition>` field only
//!   marks the fields required): `reason` must be non-empty, start with a letter and
//!   contain only letters, digits, `_`, `,` and `:` (so `CamelCase` words, not
//!   sentences); `type` is at most 316 characters; `status` is one of `True`, `False`,
//!   `Unknown` (which [`Status`] guarantees when built with [`new`]). Keep to these
//!   rules either way, since other tools read conditions by them.
//! - Times travel in whole seconds (k8s-openapi serialises [`Time`] without a fraction,
//!   as the API server does). The time [`set`] stamps is truncated to whole seconds, so
//!   a condition read back from the server compares equal to the one written; a time
//!   given explicitly in the condition passed to [`set`] is kept as is, fraction
//!   included, so give whole seconds there too.
//! - The functions assume one entry per type, which [`set`] maintains. On a list that
//!   has duplicates anyway, [`set`], [`find`] and the `is_*` checks use the first entry
//!   of the type and [`remove`] removes them all.
//! - Writing the list back with a JSON merge patch replaces it whole, so send the whole
//!   list, as computed from the object the reconcile started from.

use std::{fmt, time::SystemTime};

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::Resource;

/// A condition's status: `True`, `False` or `Unknown`, the only values Kubernetes
/// allows in [`Condition::status`].
///
/// Converts from `bool`, so `new(type, true, ...)` reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`: the controller could not determine the condition (for example
    /// because a dependency is unreachable).
    Unknown,
}

impl Status {
    /// The string stored in [`Condition::status`].
    ///
    /// ```
    /// use kube_reconcile::conditions::Status;
    /// assert_eq!(Status::True.as_str(), "True");
    /// assert_eq!(Status::from(false).as_str(), "False");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// Reads a [`Condition::status`] string. Only the exact spellings `True`, `False`
    /// and `Unknown` are accepted (as the API server's validation does); anything else,
    /// `"true"` included, is `None`.
    ///
    /// ```
    /// use kube_reconcile::conditions::Status;
    /// assert_eq!(Status::parse("Unknown"), Some(Status::Unknown));
    /// assert_eq!(Status::parse("true"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "True" => Some(Status::True),
            "False" => Some(Status::False),
            "Unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `lastTransitionTime` that means "not set yet": Go's zero time,
/// `0001-01-01T00:00:00Z`.
///
/// [`new`] puts it in every condition it builds, and [`set`] replaces it with the current
/// time when the condition is added or its status changes. A condition carrying it
/// should not reach the API server: depending on the resource it is rejected as missing
/// a time or stored with that date.
pub const UNSET_TIME: Time = Time(Timestamp::constant(-62_135_596_800, 0));

/// A condition of type `type_` with the given status, reason and message, no
/// `observedGeneration` and no transition time yet ([`UNSET_TIME`], which [`set`]
/// fills in).
///
/// `status` is a [`Status`] or a `bool`. Add the object's generation with
/// [`ConditionExt::for_generation`] or [`ConditionExt::with_observed_generation`].
/// See the [module docs](self) for what the API server requires of `reason`.
///
/// ```
/// use kube_reconcile::conditions::{self, ConditionExt, Status, UNSET_TIME};
///
/// let c = conditions::new("Available", Status::Unknown, "Checking", "")
///     .with_observed_generation(2);
/// assert_eq!(
///     (c.type_.as_str(), c.status.as_str(), c.reason.as_str(), c.observed_generation),
///     ("Available", "Unknown", "Checking", Some(2)),
/// );
/// assert_eq!(c.last_transition_time, UNSET_TIME);
/// ```
pub fn new(
    type_: &str,
    status: impl Into<Status>,
    reason: &str,
    message: impl Into<String>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.into().as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: None,
        last_transition_time: UNSET_TIME,
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {}
}

/// Builder-style additions to a [`Condition`], typically one made by [`new`].
///
/// Implemented for [`Condition`] only.
pub trait ConditionExt: sealed::Sealed + Sized {
    /// Sets `observedGeneration`: the `metadata.generation` of the object whose state
    /// the condition describes, so readers can tell a stale condition from a current one.
    fn with_observed_generation(self, generation: i64) -> Self;

    /// Sets `observedGeneration` to `object`'s `metadata.generation`, or clears it when
    /// the object has none (objects not yet stored, and kinds whose server does not
    /// track generations).
    ///
    /// Pass the object the reconcile computed the condition from, not a fresher copy:
    /// the generation must be the one actually observed.
    fn for_generation<K: Resource>(self, object: &K) -> Self;
}

impl ConditionExt for Condition {
    fn with_observed_generation(mut self, generation: i64) -> Self {
        self.observed_generation = Some(generation);
        self
    }

    fn for_generation<K: Resource>(mut self, object: &K) -> Self {
        self.observed_generation = object.meta().generation;
        self
    }
}

/// Inserts `new` or updates the entry of the same type, stamping the current time (whole
/// seconds) where a transition time is due; returns whether `conditions` changed.
///
/// Exactly [`set_at`] with now; see there for the rules.
pub fn set(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    // Any clock this runs on is within jiff's range (years -9999 to 9999).
    let now = Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX);
    set_at(conditions, new, now)
}

/// [`set`] with an explicit "now", for tests and for stamping several conditions with
/// one time.
///
/// - No entry of `new.type_` yet: `new` is appended, with `now` as its
///   `lastTransitionTime` if it has none ([`UNSET_TIME`]). Returns `true`.
/// - An entry exists and its `status` differs: the entry takes `new`'s status and a new
///   `lastTransitionTime`, `new`'s own if it has one, else `now`.
/// - Whatever the status did, the entry takes `new`'s `reason`, `message` and
///   `observedGeneration` (a `None` generation clears it); when the status is unchanged
///   the entry keeps its `lastTransitionTime`, even if `new` carries another one.
///
/// Returns whether any field of the list changed. Entries keep their position; new types
/// go last. `now` is truncated to whole seconds, like the API server's copy will be.
///
/// ```
/// use k8s_openapi::jiff::Timestamp;
/// use kube_reconcile::conditions::{self, Status};
///
/// let t = |s| Timestamp::from_second(s).unwrap();
/// let mut list = Vec::new();
/// conditions::set_at(&mut list, conditions::new("Ready", false, "Starting", ""), t(100));
/// conditions::set_at(&mut list, conditions::new("Ready", false, "Waiting", ""), t(200));
/// assert_eq!(list[0].last_transition_time.0, t(100)); // status unchanged
/// conditions::set_at(&mut list, conditions::new("Ready", Status::True, "Up", ""), t(300));
/// assert_eq!(list[0].last_transition_time.0, t(300)); // status flipped
/// ```
pub fn set_at(conditions: &mut Vec<Condition>, new: Condition, now: impl Into<Time>) -> bool {
    let now = Time(whole_seconds(now.into().0));
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        let mut new = new;
        if new.last_transition_time == UNSET_TIME {
            new.last_transition_time = now;
        }
        conditions.push(new);
        return true;
    };

    let Condition {
        type_: _,
        status,
        reason,
        message,
        observed_generation,
        last_transition_time,
    } = new;
    let mut changed = false;
    if existing.status != status {
        existing.status = status;
        existing.last_transition_time = if last_transition_time == UNSET_TIME {
            now
        } else {
            last_transition_time
        };
        changed = true;
    }
    if existing.reason != reason {
        existing.reason = reason;
        changed = true;
    }
    if existing.message != message {
        existing.message = message;
        changed = true;
    }
    if existing.observed_generation != observed_generation {
        existing.observed_generation = observed_generation;
        changed = true;
    }
    changed
}

/// The latest whole second at or before `t` (the precision the API server keeps).
fn whole_seconds(t: Timestamp) -> Timestamp {
    let mut second = t.as_second();
    // Before 1970 the fraction is negative: step down rather than towards zero.
    if t.subsec_nanosecond() < 0 {
        second -= 1;
    }
    Timestamp::from_second(second).unwrap_or(t)
}

/// The entry of type `type_`, if any (the first one, should the list hold duplicates).
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Removes every entry of type `type_`; returns whether there was one.
///
/// Removing a condition is not the same as setting it to `Unknown`: readers see the type
/// disappear, and its transition history with it.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// Whether the entry of type `type_` exists and has status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(Status::True)
}

/// Whether the entry of type `type_` exists and has status `False`.
///
/// A missing condition is *not* false: `!is_true(..)` and `is_false(..)` differ exactly
/// when the condition is unknown or absent.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(Status::False)
}

/// Whether the condition of type `type_` is neither true nor false: absent, `Unknown`,
/// or carrying a status string Kubernetes does not allow.
///
/// Treating an absent condition as unknown follows the Kubernetes API conventions. For
/// any list and type exactly one of [`is_true`], [`is_false`] and `is_unknown` holds.
pub fn is_unknown(conditions: &[Condition], type_: &str) -> bool {
    !matches!(
        status_of(conditions, type_),
        Some(Status::True | Status::False)
    )
}

fn status_of(conditions: &[Condition], type_: &str) -> Option<Status> {
    find(conditions, type_).and_then(|c| Status::parse(&c.status))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta};

    use super::*;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn ready(status: impl Into<Status>, reason: &str) -> Condition {
        new("Ready", status, reason, "")
    }

    #[test]
    fn a_new_type_is_appended_with_now_as_its_transition_time() {
        let mut list = vec![new("Other", true, "Fine", "")];
        assert!(set_at(&mut list, ready(false, "Starting"), t(100)));
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].type_, "Ready");
        assert_eq!(list[1].status, "False");
        assert_eq!(list[1].last_transition_time, Time(t(100)));
    }

    #[test]
    fn a_new_type_keeps_its_own_transition_time() {
        let mut list = Vec::new();
        let mut c = ready(true, "Up");
        c.last_transition_time = Time(t(42));
        assert!(set_at(&mut list, c, t(100)));
        assert_eq!(list[0].last_transition_time, Time(t(42)));
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut list = Vec::new();
        set_at(&mut list, ready(false, "Starting"), t(100));
        assert!(set_at(&mut list, ready(true, "Up"), t(200)));
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].status.as_str(), list[0].reason.as_str()),
            ("True", "Up")
        );
        assert_eq!(list[0].last_transition_time, Time(t(200)));

        // A status change with an explicit time takes that time.
        let mut c = ready(Status::Unknown, "Lost");
        c.last_transition_time = Time(t(250));
        assert!(set_at(&mut list, c, t(300)));
        assert_eq!(list[0].last_transition_time, Time(t(250)));
    }

    #[test]
    fn reason_message_and_generation_changes_keep_the_transition_time() {
        let mut list = Vec::new();
        set_at(&mut list, ready(false, "Starting"), t(100));

        assert!(set_at(&mut list, ready(false, "Pulling"), t(200)));
        assert!(set_at(
            &mut list,
            new("Ready", false, "Pulling", "image 3/5"),
            t(300)
        ));
        assert!(set_at(
            &mut list,
            new("Ready", false, "Pulling", "image 3/5").with_observed_generation(7),
            t(400)
        ));
        // An explicit time does not count when the status stays.
        let mut c = new("Ready", false, "Pulling", "image 3/5").with_observed_generation(7);
        c.last_transition_time = Time(t(450));
        assert!(!set_at(&mut list, c, t(500)));

        let c = &list[0];
        assert_eq!(c.reason, "Pulling");
        assert_eq!(c.message, "image 3/5");
        assert_eq!(c.observed_generation, Some(7));
        assert_eq!(c.last_transition_time, Time(t(100)));

        // A None generation clears it, and that is a change.
        assert!(set_at(
            &mut list,
            new("Ready", false, "Pulling", "image 3/5"),
            t(600)
        ));
        assert_eq!(list[0].observed_generation, None);
        assert_eq!(list[0].last_transition_time, Time(t(100)));
    }

    #[test]
    fn setting_the_same_condition_again_changes_nothing() {
        let mut list = Vec::new();
        assert!(set_at(
            &mut list,
            ready(true, "Up").with_observed_generation(3),
            t(100)
        ));
        let before = list.clone();
        assert!(!set_at(
            &mut list,
            ready(true, "Up").with_observed_generation(3),
            t(200)
        ));
        assert_eq!(list, before);
    }

    #[test]
    fn set_stamps_whole_seconds() {
        let mut list = Vec::new();
        assert!(set(&mut list, ready(true, "Up")));
        let stamped = list[0].last_transition_time.0;
        assert_eq!(stamped.subsec_nanosecond(), 0);
        assert_ne!(list[0].last_transition_time, UNSET_TIME);

        let mut list = Vec::new();
        let fractional = Timestamp::new(100, 999_999_999).unwrap();
        set_at(&mut list, ready(true, "Up"), fractional);
        assert_eq!(list[0].last_transition_time, Time(t(100)));
        let before_epoch = Timestamp::new(-100, -500_000_000).unwrap();
        set_at(&mut list, ready(false, "Down"), before_epoch);
        assert_eq!(list[0].last_transition_time, Time(t(-101)));
    }

    #[test]
    fn a_stamped_condition_survives_a_json_round_trip() {
        let mut list = Vec::new();
        set(&mut list, ready(true, "Up").with_observed_generation(1));
        let json = serde_json::to_string(&list).unwrap();
        let back: Vec<Condition> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn find_and_remove_by_type() {
        let mut list = Vec::new();
        set_at(&mut list, ready(true, "Up"), t(1));
        set_at(&mut list, new("Degraded", false, "Fine", ""), t(1));
        assert_eq!(find(&list, "Degraded").unwrap().reason, "Fine");
        assert!(find(&list, "Progressing").is_none());

        assert!(remove(&mut list, "Ready"));
        assert!(!remove(&mut list, "Ready"));
        assert!(find(&list, "Ready").is_none());
        assert_eq!(list.len(), 1);

        // Duplicates (not made by `set`) all go.
        list.push(new("Degraded", true, "Broken", ""));
        assert!(remove(&mut list, "Degraded"));
        assert!(list.is_empty());
        assert!(!remove(&mut list, "Degraded"));
    }

    #[test]
    fn true_false_unknown_and_missing() {
        let mut list = Vec::new();
        set_at(&mut list, new("A", true, "R", ""), t(1));
        set_at(&mut list, new("B", false, "R", ""), t(1));
        set_at(&mut list, new("C", Status::Unknown, "R", ""), t(1));
        let mut odd = new("D", true, "R", "");
        odd.status = "true".into();
        list.push(odd);

        let checks = |type_| {
            (
                is_true(&list, type_),
                is_false(&list, type_),
                is_unknown(&list, type_),
            )
        };
        assert_eq!(checks("A"), (true, false, false));
        assert_eq!(checks("B"), (false, true, false));
        assert_eq!(checks("C"), (false, false, true));
        assert_eq!(checks("D"), (false, false, true));
        assert_eq!(checks("Missing"), (false, false, true));
        assert_eq!(
            checks("a"),
            (false, false, true),
            "types are case-sensitive"
        );
    }

    #[test]
    fn for_generation_copies_the_objects_generation() {
        let mut object = ConfigMap {
            metadata: ObjectMeta {
                generation: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            ready(true, "Up")
                .for_generation(&object)
                .observed_generation,
            Some(5)
        );
        object.metadata.generation = None;
        let c = ready(true, "Up")
            .with_observed_generation(1)
            .for_generation(&object);
        assert_eq!(c.observed_generation, None);
    }

    #[test]
    fn status_strings() {
        for s in [Status::True, Status::False, Status::Unknown] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(Status::from(true), Status::True);
        assert_eq!(Status::parse("false"), None);
        assert_eq!(
            serde_json::to_value(&UNSET_TIME).unwrap(),
            "0001-01-01T00:00:00Z"
        );
    }
}
