//! The one error type of the [`crd`](super) module.

/// What can go wrong when merging CRD versions or converting objects between versions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrdError {
    /// [`merge_versions`](super::merge_versions) was given no CRD.
    #[error("no CustomResourceDefinition to merge")]
    NoCrds,
    /// Two CRDs disagree on a field that must be the same in every version.
    #[error("CRD versions disagree on {field}: {first:?} vs {other:?}")]
    Mismatch {
        /// Which field differs: `group`, `kind`, `scope` or `plural`.
        field: &'static str,
        /// The value in the first CRD.
        first: String,
        /// The value in the CRD that differs.
        other: String,
    },
    /// The same version name appears in two CRDs.
    #[error("version {0} is defined more than once")]
    DuplicateVersion(String),
    /// The requested storage version is not among the merged versions.
    #[error("storage version {0} is not one of the merged versions")]
    StorageVersionNotFound(String),
    /// The object to convert is not a JSON object with a string `apiVersion`.
    #[error("object to convert has no string apiVersion")]
    MissingApiVersion,
    /// No chain of registered `From` conversions leads from one version to the other.
    #[error("no conversion registered from {from} to {to}")]
    NoConversion {
        /// The object's apiVersion.
        from: String,
        /// The desired apiVersion.
        to: String,
    },
    /// The object does not deserialize as the Rust type of its version, or the converted
    /// value does not serialize.
    #[error("object of {api_version} does not match its Rust type")]
    Serde {
        /// The apiVersion whose type failed.
        api_version: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}
