//! The CSI snapshotter's `VolumeGroupSnapshot`, a CRD served at three versions
//! (`groupsnapshot.storage.k8s.io` v1, v1beta1 deprecated, v1beta2 stored), modelled
//! from the CRD external-snapshotter publishes
//! (`client/config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshots.yaml`). The
//! versions share the spec; v1beta1's status lacks the rule that keeps the bound
//! content's name once set. One module per version, as an operator would write them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube_reconcile::crd::{CrdSchema, CustomResourceExt as _, merge_versions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Stamps out one version: the spec is the same at every version.
macro_rules! group_snapshot_version {
    ($module:ident, $version:tt, $status:tt $(, $flag:tt)*) => {
        pub mod $module {
            #[allow(unused_imports)]
            use super::{GroupSnapshotStatus, GroupSnapshotStatusV1beta1, VolumeGroupSnapshotSource};

            /// A request to snapshot several volumes at one point in time.
            #[derive(kube_reconcile::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
            #[crd(
                group = "groupsnapshot.storage.k8s.io",
                version = $version,
                kind = "VolumeGroupSnapshot",
                namespaced,
                short_names("vgs"),
                annotation(
                    "api-approved.kubernetes.io",
                    "https://github.com/kubernetes-csi/external-snapshotter/pull/1337"
                ),
                status = $status,
                printer_column(name = "ReadyToUse", type = "boolean", json_path = ".status.readyToUse"),
                printer_column(name = "VolumeGroupSnapshotClass", type = "string", json_path = ".spec.volumeGroupSnapshotClassName"),
                printer_column(name = "VolumeGroupSnapshotContent", type = "string", json_path = ".status.boundVolumeGroupSnapshotContentName"),
                printer_column(name = "CreationTime", type = "date", json_path = ".status.creationTime"),
                printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp")
                $(, $flag)*
            )]
            #[serde(rename_all = "camelCase")]
            pub struct VolumeGroupSnapshotSpec {
                /// The volumes to snapshot, or the group snapshot that already exists.
                pub source: VolumeGroupSnapshotSource,
                /// The class to snapshot with (the default class when absent).
                #[crd(validation(
                    rule = "size(self) > 0",
                    message = "volumeGroupSnapshotClassName must not be the empty string when set"
                ))]
                #[serde(skip_serializing_if = "Option::is_none")]
                pub volume_group_snapshot_class_name: Option<String>,
            }
        }
    };
}

group_snapshot_version!(v1, "v1", GroupSnapshotStatus);
group_snapshot_version!(v1beta1, "v1beta1", GroupSnapshotStatusV1beta1, deprecated);
group_snapshot_version!(v1beta2, "v1beta2", GroupSnapshotStatus);

/// The three versions as one CRD, v1beta2 stored.
pub fn crd() -> CustomResourceDefinition {
    merge_versions(
        [
            v1::VolumeGroupSnapshot::crd(),
            v1beta1::VolumeGroupSnapshot::crd(),
            v1beta2::VolumeGroupSnapshot::crd(),
        ],
        "v1beta2",
    )
    .expect("one group, kind and scope")
}

/// Exactly one of a label selector over claims or an existing group snapshot's content.
#[derive(CrdSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[crd(
    validation(
        rule = "!has(oldSelf.selector) || has(self.selector)",
        message = "selector is required once set"
    ),
    validation(
        rule = "!has(oldSelf.volumeGroupSnapshotContentName) || has(self.volumeGroupSnapshotContentName)",
        message = "volumeGroupSnapshotContentName is required once set"
    ),
    validation(
        rule = "(has(self.selector) && !has(self.volumeGroupSnapshotContentName)) || (!has(self.selector) && has(self.volumeGroupSnapshotContentName))",
        message = "exactly one of selector and volumeGroupSnapshotContentName must be set"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeGroupSnapshotSource {
    /// Claims with these labels are snapshot together.
    #[crd(struct_type = "atomic", immutable = "selector is immutable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// An existing group snapshot's content.
    #[crd(immutable = "volumeGroupSnapshotContentName is immutable")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_content_name: Option<String>,
}

/// What the group snapshot controller has done (v1, v1beta2).
#[derive(CrdSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSnapshotStatus {
    /// The content this group snapshot is bound to; fixed once set.
    #[crd(immutable = "boundVolumeGroupSnapshotContentName is immutable once set")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_volume_group_snapshot_content_name: Option<String>,
    /// When the storage system took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GroupSnapshotError>,
    /// Whether every snapshot in the group can be restored from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
}

/// v1beta1's status: the bound content's name carries no rule.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSnapshotStatusV1beta1 {
    /// The content this group snapshot is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_volume_group_snapshot_content_name: Option<String>,
    /// When the storage system took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GroupSnapshotError>,
    /// Whether every snapshot in the group can be restored from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
}

/// An error the group snapshot controller met.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupSnapshotError {
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}
