//! Waiting out an overloaded or unreachable API server as one controller, not key by
//! key.
//!
//! client-go's per-key backoff reads every failure as the key's: under a minute of
//! 429s each failing key doubles its delay on every try, and once the server recovers
//! a key can sleep for many minutes (5 ms doubling reaches 1000 s after 18 failures).
//! An overload says nothing about the key, so here a key whose reconcile failed with
//! one is parked behind a gate the whole controller shares. While the gate is closed
//! one parked key at a time goes ahead as a *probe*, after a delay that doubles with
//! every failed probe up to [`OverloadBackoff::max`]; the first probe that the server
//! answers opens the gate and every parked key is queued again at once (each after its
//! own short delay, see below), paced from there by the client's QPS budget.
//!
//! A key keeps a count of its own consecutive overload failures, cleared when the
//! server answers one of its reconciles: on release it waits `initial * 2^(n-1)`
//! (at most `max`). A key that keeps failing while others succeed (one aggregated API
//! down, say) is so retried at most every `max`, instead of after every success.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prometheus_client::metrics::gauge::Gauge;
use tracing::{info, warn};

use crate::{
    ObjectKey,
    metrics::{Metrics, controller_labels},
    queue::{Priority, WorkQueue},
};

/// How a controller waits out an API server that is overloaded or unreachable (see
/// [`ControllerBuilder::overload_backoff`](super::ControllerBuilder::overload_backoff)).
///
/// The default probes after 100 ms, doubling to at most 2 s: while the server is down
/// a controller sends about one request every 2 s, and it notices recovery within 2 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadBackoff {
    /// The delay before the first probe, and a released key's delay after its first
    /// overload failure.
    pub initial: Duration,
    /// The longest delay between probes, and the longest a released key waits.
    pub max: Duration,
}

impl Default for OverloadBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

impl OverloadBackoff {
    /// `initial * 2^(step - 1)`, at most `max`; step 0 is no delay.
    fn delay(&self, step: u32) -> Duration {
        if step == 0 {
            return Duration::ZERO;
        }
        let factor = 2_u32.saturating_pow(step.saturating_sub(1).min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// The gauges of one controller's gate.
struct GateMetrics {
    active: Gauge,
    waiting: Gauge,
}

/// One controller's gate: keys parked while the server is overloaded, and the probe.
pub(super) struct OverloadGate {
    backoff: OverloadBackoff,
    controller: String,
    queue: WorkQueue<ObjectKey>,
    /// Whether anything is parked or probing: lets the common case (a reconcile that
    /// succeeds while the server is fine) skip the lock.
    engaged: AtomicBool,
    state: Mutex<GateState>,
    metrics: Option<GateMetrics>,
}

#[derive(Default)]
struct GateState {
    /// Failed probes since the gate closed: the step of the next probe's delay.
    step: u32,
    /// The key sent ahead to learn whether the server answers again.
    probe: Option<ObjectKey>,
    /// Parked keys, the longest-waiting first (the next probe), with the priority
    /// they were taken at.
    parked: VecDeque<(ObjectKey, Priority)>,
    parked_keys: HashSet<ObjectKey>,
    /// Consecutive overload failures per key, until the server answers that key.
    failures: HashMap<ObjectKey, u32>,
}

impl OverloadGate {
    pub(super) fn new(
        backoff: OverloadBackoff,
        controller: &str,
        queue: WorkQueue<ObjectKey>,
        metrics: Option<&Metrics>,
    ) -> Self {
        let metrics = metrics.map(|metrics| {
            let families = metrics.controller();
            let labels = controller_labels(controller);
            GateMetrics {
                active: families.overload_active.get_or_create_owned(&labels),
                waiting: families.overload_waiting.get_or_create_owned(&labels),
            }
        });
        Self {
            backoff,
            controller: controller.to_string(),
            queue,
            engaged: AtomicBool::new(false),
            state: Mutex::new(GateState::default()),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `key`'s reconcile failed because the server is overloaded or unreachable: park
    /// it, and send a probe if none is out.
    pub(super) fn overloaded(&self, key: ObjectKey, priority: Priority) {
        let mut state = self.lock();
        self.engaged.store(true, Ordering::Release);
        *state.failures.entry(key.clone()).or_default() += 1;
        let was_probe = state.probe.as_ref() == Some(&key);
        if state.probe.is_none() && state.step == 0 {
            warn!(controller = %self.controller,
                  "the API server is overloaded or unreachable: failed keys wait for it \
                   together, probing every {:?} at most", self.backoff.max);
        }
        if state.parked_keys.insert(key.clone()) {
            state.parked.push_back((key, priority));
        }
        if was_probe || state.probe.is_none() {
            state.step += 1;
            self.send_probe(&mut state);
        }
        self.report(&state);
    }

    /// Sends the longest-parked key ahead after the current step's delay.
    fn send_probe(&self, state: &mut GateState) {
        state.probe = None;
        let Some((key, priority)) = state.parked.pop_front() else {
            return;
        };
        state.parked_keys.remove(&key);
        let delay = self.backoff.delay(state.step);
        state.probe = Some(key.clone());
        self.queue.add_after_with_priority(key, delay, priority);
    }

    /// The server answered `key`'s reconcile (it succeeded, or failed for a reason of
    /// its own): clear the key's count, and open the gate if it was the probe.
    pub(super) fn answered(&self, key: &ObjectKey) {
        if !self.engaged.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        state.failures.remove(key);
        if state.probe.as_ref() != Some(key) {
            // A parked key reconciled by a new event: it is no longer waiting.
            if state.parked_keys.remove(key) {
                state.parked.retain(|(parked, _)| parked != key);
            }
            self.settle(&state);
            return;
        }
        let released = state.parked.len();
        info!(controller = %self.controller, released,
              "the API server answers again: retrying the keys that waited for it");
        state.step = 0;
        state.probe = None;
        state.parked_keys.clear();
        for (parked, priority) in std::mem::take(&mut state.parked) {
            let step = state.failures.get(&parked).copied().unwrap_or(0);
            self.queue
                .add_after_with_priority(parked, self.backoff.delay(step), priority);
        }
        self.settle(&state);
    }

    /// `key` is done with for now (a terminal error, or its object is gone from the
    /// queue's view): forget its count, and if it was the probe send another.
    pub(super) fn forget(&self, key: &ObjectKey) {
        if !self.engaged.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        state.failures.remove(key);
        if state.probe.as_ref() == Some(key) {
            self.send_probe(&mut state);
        }
        self.settle(&state);
    }

    /// Disengages the fast path once nothing is parked, probing or counted.
    fn settle(&self, state: &GateState) {
        if state.probe.is_none() && state.parked.is_empty() && state.failures.is_empty() {
            self.engaged.store(false, Ordering::Release);
        }
        self.report(state);
    }

    fn report(&self, state: &GateState) {
        let Some(metrics) = &self.metrics else { return };
        metrics.active.set(i64::from(state.probe.is_some()));
        let waiting = state.parked.len() + usize::from(state.probe.is_some());
        metrics
            .waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    #[cfg(test)]
    fn parked(&self) -> (Option<ObjectKey>, usize) {
        let state = self.lock();
        (state.probe.clone(), state.parked.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(Some("ns"), name)
    }

    fn gate() -> (OverloadGate, WorkQueue<ObjectKey>) {
        let queue = WorkQueue::new("gate");
        let backoff = OverloadBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        };
        (
            OverloadGate::new(backoff, "test", queue.clone(), None),
            queue,
        )
    }

    #[test]
    fn delays_double_from_initial_up_to_max() {
        let backoff = OverloadBackoff::default();
        let delays: Vec<_> = (0..8).map(|step| backoff.delay(step).as_millis()).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff.delay(u32::MAX), backoff.max);
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_goes_ahead_and_its_answer_releases_every_parked_key() {
        let (gate, queue) = gate();
        for name in ["a", "b", "c"] {
            gate.overloaded(key(name), Priority::Normal);
        }
        // "a" failed first: it is the probe, due after the first step; b and c wait.
        assert_eq!(gate.parked(), (Some(key("a")), 2));
        assert_eq!(queue.len(), 0);
        tokio::time::advance(Duration::from_millis(101)).await;
        let probe = queue.get().await.unwrap();
        assert_eq!(probe, key("a"));

        // The probe fails again: the next probe (the longest parked, b) waits twice as
        // long, and nothing else is queued.
        gate.overloaded(probe.clone(), Priority::Normal);
        queue.done(&probe);
        assert_eq!(gate.parked(), (Some(key("b")), 2));
        tokio::time::advance(Duration::from_millis(150)).await;
        assert_eq!(queue.len(), 0, "the second probe waits 200 ms");
        tokio::time::advance(Duration::from_millis(60)).await;
        let probe = queue.get().await.unwrap();
        assert_eq!(probe, key("b"));

        // The server answers: a and c are released, each after its own short delay
        // (a failed twice: 200 ms; c once: 100 ms).
        gate.answered(&probe);
        queue.done(&probe);
        assert_eq!(gate.parked(), (None, 0));
        tokio::time::advance(Duration::from_millis(101)).await;
        assert_eq!(queue.get().await.unwrap(), key("c"));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(queue.get().await.unwrap(), key("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_answered_while_parked_leaves_the_gate_and_others_keep_waiting() {
        let (gate, queue) = gate();
        gate.overloaded(key("a"), Priority::Normal);
        gate.overloaded(key("b"), Priority::Low);
        // b's object changed and its reconcile got through before the probe.
        gate.answered(&key("b"));
        assert_eq!(gate.parked(), (Some(key("a")), 0));
        tokio::time::advance(Duration::from_millis(101)).await;
        assert_eq!(queue.get().await.unwrap(), key("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_keeps_failing_while_others_succeed_waits_up_to_max() {
        let (gate, queue) = gate();
        for round in 1..=5_u32 {
            // "fine" fails first, so it is the probe; "broken" waits behind it.
            gate.overloaded(key("fine"), Priority::Normal);
            gate.overloaded(key("broken"), Priority::Normal);
            tokio::time::advance(Duration::from_millis(101)).await;
            let probe = queue.get().await.unwrap();
            assert_eq!(probe, key("fine"), "round {round}");
            gate.answered(&probe);
            queue.done(&probe);
            // "broken" has failed `round` times in a row: its own delay grows to max.
            let own = gate.backoff.delay(round);
            tokio::time::advance(own - Duration::from_millis(1)).await;
            assert_eq!(
                queue.len(),
                0,
                "round {round}: released before its own delay"
            );
            tokio::time::advance(Duration::from_millis(2)).await;
            assert_eq!(queue.get().await.unwrap(), key("broken"));
            queue.done(&key("broken"));
        }
        assert_eq!(gate.backoff.delay(5), gate.backoff.max);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_probe_hands_over_to_the_next_parked_key() {
        let (gate, queue) = gate();
        gate.overloaded(key("a"), Priority::Normal);
        gate.overloaded(key("b"), Priority::Normal);
        tokio::time::advance(Duration::from_millis(101)).await;
        let probe = queue.get().await.unwrap();
        assert_eq!(probe, key("a"));
        // Its reconcile ended in a way that says nothing about the server (a terminal
        // error, say): b goes ahead in its place.
        gate.forget(&probe);
        queue.done(&probe);
        assert_eq!(gate.parked(), (Some(key("b")), 0));
        tokio::time::advance(Duration::from_millis(101)).await;
        assert_eq!(queue.get().await.unwrap(), key("b"));
    }
}
