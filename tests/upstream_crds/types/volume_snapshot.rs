//! The CSI snapshotter's `VolumeSnapshot` (`snapshot.storage.k8s.io/v1`), modelled from
//! the CRD external-snapshotter publishes
//! (`client/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml`). "Exactly one
//! source" is a CEL rule there, so it is one here too (a Rust enum would give the same
//! verdicts with a different message).

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Time};
use kube_reconcile::crd::{Crd, CrdSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request for a point-in-time copy of a volume.
#[derive(Crd, Clone, Debug, Serialize, Deserialize)]
#[crd(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    namespaced,
    short_names("vs"),
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes-csi/external-snapshotter/pull/814"
    ),
    status = VolumeSnapshotStatus,
    printer_column(name = "ReadyToUse", type = "boolean", json_path = ".status.readyToUse"),
    printer_column(name = "SourcePVC", type = "string", json_path = ".spec.source.persistentVolumeClaimName"),
    printer_column(name = "SourceSnapshotContent", type = "string", json_path = ".spec.source.volumeSnapshotContentName"),
    printer_column(name = "RestoreSize", type = "string", json_path = ".status.restoreSize"),
    printer_column(name = "SnapshotClass", type = "string", json_path = ".spec.volumeSnapshotClassName"),
    printer_column(name = "SnapshotContent", type = "string", json_path = ".status.boundVolumeSnapshotContentName"),
    printer_column(name = "CreationTime", type = "date", json_path = ".status.creationTime"),
    printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    /// What to snapshot, or the snapshot that already exists.
    pub source: VolumeSnapshotSource,
    /// The class to snapshot with (the default class when absent).
    #[crd(validation(
        rule = "size(self) > 0",
        message = "volumeSnapshotClassName must not be the empty string when set"
    ))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

/// Exactly one of a claim to snapshot or an existing snapshot's content.
#[derive(CrdSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[crd(
    validation(
        rule = "!has(oldSelf.persistentVolumeClaimName) || has(self.persistentVolumeClaimName)",
        message = "persistentVolumeClaimName is required once set"
    ),
    validation(
        rule = "!has(oldSelf.volumeSnapshotContentName) || has(self.volumeSnapshotContentName)",
        message = "volumeSnapshotContentName is required once set"
    ),
    validation(
        rule = "(has(self.volumeSnapshotContentName) && !has(self.persistentVolumeClaimName)) || (!has(self.volumeSnapshotContentName) && has(self.persistentVolumeClaimName))",
        message = "exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    /// The claim to snapshot.
    #[crd(immutable = "persistentVolumeClaimName is immutable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    /// An existing snapshot's content.
    #[crd(immutable = "volumeSnapshotContentName is immutable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

/// What the snapshot controller has done.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    /// The content this snapshot is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_volume_snapshot_content_name: Option<String>,
    /// When the storage system took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SnapshotError>,
    /// Whether it can be restored from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// The smallest volume it restores into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<Quantity>,
    /// The group snapshot it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_name: Option<String>,
}

/// An error the snapshot controller met.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotError {
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}
