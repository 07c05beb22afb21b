//! Reading, taking, renewing and releasing the Lease record.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::api::PostParams;
use tracing::{info, warn};

use super::Elector;

/// What a candidate compares between reads of the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// `holderIdentity`; empty when nobody holds it.
    pub(super) holder: String,
    lease_duration_seconds: Option<i32>,
    /// Any write changes it, renewals included.
    resource_version: Option<String>,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Self {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default(),
            lease_duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }

    /// How long the record holds: its own `leaseDurationSeconds`, else `default`.
    pub(super) fn duration(&self, default: Duration) -> Duration {
        self.lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(default, Duration::from_secs)
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl Elector {
    /// Notes the record, restarting its expiry clock if it changed.
    fn observe(&mut self, lease: &Lease) {
        let record = Record::of(lease);
        if self.observed.as_ref().map(|(r, _)| r) != Some(&record) {
            self.observed = Some((record, Instant::now()));
        }
    }

    /// Whether another replica's hold on the lease is still valid, as observed here.
    fn held_by_another(&self) -> bool {
        let Some((record, seen)) = &self.observed else {
            return false;
        };
        !record.holder.is_empty()
            && record.holder != self.config.identity
            && seen.elapsed() < record.duration(self.config.lease_duration)
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let ours = previous.and_then(|p| p.holder_identity.as_deref())
            == Some(self.config.identity.as_str());
        let previous = previous.cloned().unwrap_or_default();
        let seconds = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(now)),
            acquire_time: if ours {
                previous.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            lease_transitions: if ours {
                previous.lease_transitions
            } else {
                previous.lease_transitions.map(|t| t + 1).or(Some(0))
            },
            ..previous
        }
    }

    /// One attempt to take or renew the lease, as client-go's `tryAcquireOrRenew`.
    /// On success the fence opens until the renew deadline, counted from before the
    /// request was sent.
    pub(super) async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let sent = Instant::now();
        let now = Timestamp::now();
        let written = match self.api.get_opt(&self.config.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(None, now)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                self.observe(&lease);
                if self.held_by_another() {
                    return Ok(false);
                }
                lease.spec = Some(self.spec(lease.spec.as_ref(), now));
                let name = self.config.name.clone();
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.observe(&lease);
                self.fence.extend(sent + self.config.renew_deadline);
                Ok(true)
            }
            // Another candidate wrote first.
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the lease up (holder empty, one-second duration) so a standby takes it at
    /// once; only if this replica still holds it.
    pub(super) async fn release(&mut self) {
        let lease = match self.api.get_opt(&self.config.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(error) => {
                warn!(%error, "could not read the lease to release it");
                return;
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        let released = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..spec
            }),
            ..lease
        };
        let name = self.config.name.clone();
        match self
            .api
            .replace(&name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => info!(lease = %name, "released the leader lease"),
            Err(error) => warn!(%error, lease = %name, "could not release the lease"),
        }
    }
}
