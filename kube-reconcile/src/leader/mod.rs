//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics and
//! defaults, and a [`Fence`] that stops a deposed leader's writes.
//!
//! Replicas run the same [`LeaderElection`]; one holds the Lease and renews it every
//! retry period, the others wait. Validity is judged as client-go judges it: a
//! candidate takes the lease when its record has not changed for the record's lease
//! duration *as the candidate observed it* (no clock comparison between machines), or
//! at once when the holder released it. Unlike client-go's polling, a standby also
//! watches the Lease, so a released lease is taken within a round trip and an
//! abandoned one right when it expires.
//!
//! Fencing: the leader that cannot renew within the renew deadline gives up, and its
//! [`Fence`] closes at that deadline even if the process was frozen meanwhile; the
//! lease outlasts the renew deadline, so no other replica can hold it while the fence
//! is open. Use [`Manager`](crate::manager::Manager), which wires the fence into its
//! client and stops reconciling when leadership ends, or drive an [`Elector`] yourself.

mod fence;
mod lease;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use fence::{Fence, Fenced, fenced};
use lease::Record;

/// How a replica elects its leader; client-go's defaults.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    namespace: String,
    name: String,
    identity: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

/// A [`LeaderElection`] that cannot work as configured.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The durations must order as lease > renew deadline > 1.2 × retry period.
    #[error(
        "lease duration ({lease:?}) must exceed the renew deadline ({renew:?}), which must exceed 1.2 x the retry period ({retry:?})"
    )]
    Durations {
        /// The lease duration.
        lease: Duration,
        /// The renew deadline.
        renew: Duration,
        /// The retry period.
        retry: Duration,
    },
    /// The identity is empty.
    #[error("the leader election identity must not be empty")]
    EmptyIdentity,
}

/// A replica's part in the election, as [`Elector::status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Waiting for the lease (caches may be warm).
    Standby,
    /// Holding the lease.
    Leading,
    /// Held it and lost it (could not renew in time, or another took it).
    Lost,
}

impl LeaderElection {
    /// Elects on Lease `namespace/name` with client-go's defaults (lease 15 s, renew
    /// deadline 10 s, retry 2 s) and an identity of this host's name plus a random
    /// suffix (unique per process).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// This replica's identity in the Lease's `holderIdentity`.
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// How long a lease holds without renewal (`--leader-elect-lease-duration`).
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// How long the leader keeps retrying a failing renewal before it gives up
    /// (`--leader-elect-renew-deadline`); its fence closes then.
    pub fn renew_deadline(mut self, deadline: Duration) -> Self {
        self.renew_deadline = deadline;
        self
    }

    /// How often candidates try and the leader renews (`--leader-elect-retry-period`).
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.retry_period = period;
        self
    }

    /// The identity this replica campaigns as.
    pub fn identity_str(&self) -> &str {
        &self.identity
    }

    /// The Lease's name.
    pub fn lease_name(&self) -> &str {
        &self.name
    }

    /// Checks the durations' order and the identity, as client-go does.
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        if self.identity.is_empty() {
            return Err(LeaderElectionError::EmptyIdentity);
        }
        let ordered = self.lease_duration > self.renew_deadline
            && self.renew_deadline > self.retry_period.mul_f64(1.2);
        if !ordered {
            return Err(LeaderElectionError::Durations {
                lease: self.lease_duration,
                renew: self.renew_deadline,
                retry: self.retry_period,
            });
        }
        Ok(())
    }
}

/// `<hostname>_<random hex>`, as kube-controller-manager names its replicas.
fn default_identity() -> String {
    use std::hash::{BuildHasher, RandomState};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    // RandomState is seeded randomly per process: enough to tell replicas apart.
    let random = RandomState::new().hash_one(std::process::id());
    format!("{host}_{random:016x}")
}

/// Runs one replica's side of a [`LeaderElection`].
pub struct Elector {
    config: LeaderElection,
    api: Api<Lease>,
    fence: Fence,
    status: watch::Sender<Leadership>,
    /// The lease record as last read, and when it last changed (on our clock).
    observed: Option<(Record, Instant)>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Elector {
    /// An elector writing the Lease with `client` (which must not be fenced itself).
    pub fn new(client: Client, config: LeaderElection) -> Result<Self, LeaderElectionError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            fence: Fence::default(),
            status: watch::Sender::new(Leadership::Standby),
            observed: None,
        })
    }

    /// The fence that is open while this replica may write as leader.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The Lease's name.
    pub fn lease_name(&self) -> &str {
        &self.config.name
    }

    /// Follows this replica's [`Leadership`].
    pub fn status(&self) -> watch::Receiver<Leadership> {
        self.status.subscribe()
    }

    /// Campaigns until leading, then renews until `shutdown` is cancelled (then it
    /// releases the lease, so a standby takes over at once, and returns `Ok`) or the
    /// lease is lost (`Err`; the fence is closed by then). Returns `Ok` at once if
    /// `shutdown` fires while campaigning.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LostLeadership> {
        if !self.campaign(&shutdown).await {
            return Ok(());
        }
        info!(identity = %self.config.identity, lease = %self.config.name, "became leader");
        self.status.send_replace(Leadership::Leading);
        let outcome = self.renew_until(&shutdown).await;
        // Closed before the release: nothing this replica sends can land after another
        // replica takes over.
        self.fence.close();
        if outcome.is_ok() {
            self.release().await;
        }
        self.status.send_replace(match outcome {
            Ok(()) => Leadership::Standby,
            Err(_) => Leadership::Lost,
        });
        outcome
    }
}

/// The lease was lost: this replica must stop acting as leader (controllers exit, as
/// kube-controller-manager does, to start over as a candidate).
#[derive(Debug, Clone, thiserror::Error)]
#[error("lost the leader lease {lease}: {reason}")]
pub struct LostLeadership {
    /// The Lease's name.
    pub lease: String,
    /// Why.
    pub reason: String,
}

impl Elector {
    /// Tries at once, then after every retry period (with client-go's jitter), when
    /// the observed record expires, and whenever the Lease changes. True once leading.
    async fn campaign(&mut self, shutdown: &CancellationToken) -> bool {
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let by_name =
            watcher::Config::default().fields(&format!("metadata.name={}", self.config.name));
        let mut changes = watcher(self.api.clone(), by_name).default_backoff().boxed();
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, lease = %self.config.name, "could not read or take the lease")
                }
            }
            let wait = self.until_next_attempt();
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
                _ = changes.next() => {}
            }
        }
    }

    /// The retry period with up to 20 % jitter, or less if the observed record expires
    /// sooner.
    fn until_next_attempt(&self) -> Duration {
        let jitter = {
            use std::hash::{BuildHasher, RandomState};
            (RandomState::new().hash_one(Instant::now()) % 1000) as f64 / 1000.0
        };
        let retry = self.config.retry_period.mul_f64(1.0 + 0.2 * jitter);
        match &self.observed {
            Some((record, seen)) if !record.holder.is_empty() => {
                let expires = *seen + record.duration(self.config.lease_duration);
                retry.min(
                    expires.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
                )
            }
            _ => retry,
        }
    }

    /// Renews every retry period; each renewal may retry until the renew deadline
    /// (counted from the last success) before leadership is given up.
    async fn renew_until(&mut self, shutdown: &CancellationToken) -> Result<(), LostLeadership> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            loop {
                let deadline = self.fence.valid_until().unwrap_or_else(Instant::now);
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(self.lost("the renew deadline passed"));
                }
                match tokio::time::timeout(remaining, self.try_acquire_or_renew()).await {
                    Ok(Ok(true)) => break,
                    Ok(Ok(false)) => return Err(self.lost("another replica holds it")),
                    Ok(Err(error)) => {
                        warn!(%error, lease = %self.config.name, "renewing the lease failed; retrying");
                        let pause = self.config.retry_period.min(remaining);
                        tokio::select! {
                            _ = shutdown.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(pause) => {}
                        }
                    }
                    Err(_) => return Err(self.lost("the renew deadline passed")),
                }
            }
        }
    }

    fn lost(&self, reason: &str) -> LostLeadership {
        self.fence.close();
        warn!(identity = %self.config.identity, lease = %self.config.name, reason, "lost leadership");
        LostLeadership {
            lease: self.config.name.clone(),
            reason: reason.to_string(),
        }
    }
}
