//! Several versions of one resource, each derived from its own Rust type, as one CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::CrdError;

/// Merges single-version CRDs of the same group, kind and scope into one CRD served at
/// every version, with `storage_version` the one version stored in etcd.
///
/// Each input's `storage` flag is overwritten: exactly `storage_version` is marked as
/// storage. Versions keep their order of appearance.
///
/// ```
/// use kube_reconcile::crd::{Crd, CustomResourceExt, merge_versions};
/// mod v1 {
///     #[derive(kube_reconcile::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
///     #[crd(group = "example.com", version = "v1", kind = "Widget")]
///     pub struct WidgetSpec { pub size: i32 }
/// }
/// mod v2 {
///     #[derive(kube_reconcile::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
///     #[crd(group = "example.com", version = "v2", kind = "Widget")]
///     pub struct WidgetSpec { pub size: i64, pub color: Option<String> }
/// }
/// let crd = merge_versions([v1::Widget::crd(), v2::Widget::crd()], "v2").unwrap();
/// let versions = &crd.spec.versions;
/// assert_eq!(versions.iter().map(|v| (v.name.as_str(), v.storage)).collect::<Vec<_>>(),
///            [("v1", false), ("v2", true)]);
/// assert!(merge_versions([v1::Widget::crd()], "v9").is_err());
/// ```
pub fn merge_versions(
    crds: impl IntoIterator<Item = CustomResourceDefinition>,
    storage_version: &str,
) -> Result<CustomResourceDefinition, CrdError> {
    let mut crds = crds.into_iter();
    let mut merged = crds.next().ok_or(CrdError::NoCrds)?;
    for crd in crds {
        same("group", &merged.spec.group, &crd.spec.group)?;
        same("kind", &merged.spec.names.kind, &crd.spec.names.kind)?;
        same("scope", &merged.spec.scope, &crd.spec.scope)?;
        same("plural", &merged.spec.names.plural, &crd.spec.names.plural)?;
        for version in crd.spec.versions {
            if merged.spec.versions.iter().any(|v| v.name == version.name) {
                return Err(CrdError::DuplicateVersion(version.name));
            }
            merged.spec.versions.push(version);
        }
    }
    if !merged
        .spec
        .versions
        .iter()
        .any(|v| v.name == storage_version)
    {
        return Err(CrdError::StorageVersionNotFound(storage_version.to_owned()));
    }
    for v in &mut merged.spec.versions {
        v.storage = v.name == storage_version;
    }
    Ok(merged)
}

fn same(field: &'static str, first: &str, other: &str) -> Result<(), CrdError> {
    if first == other {
        Ok(())
    } else {
        Err(CrdError::Mismatch {
            field,
            first: first.to_owned(),
            other: other.to_owned(),
        })
    }
}
