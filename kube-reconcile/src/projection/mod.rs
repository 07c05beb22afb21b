//! Typed projections: a struct holding only the fields a controller reads from a
//! resource, decoded straight from the wire, cached, indexed and watched under the
//! source kind's API path.
//!
//! A controller that reads five fields of a Pod still caches the whole Pod: every
//! container's env, probes, volumes, tolerations. `#[derive(Projection)]` declares the
//! subset instead (like `PartialObjectMeta`, but any subset): decoding skips every
//! field not declared without building it, and the informer's store holds only what was
//! declared. Every field is checked at compile time against the source type.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodSpec, PodStatus, Container, ContainerPort};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//! use kube::Resource;
//! use kube_reconcile::projection::Projection;
//!
//! /// What the controller reads of a Pod. `Clone` and `Debug` are the user's own.
//! #[derive(Projection, Clone, Debug)]
//! #[projection(of = Pod)]
//! struct PodView {
//!     metadata: ObjectMeta,
//!     spec: Option<PodSpecView>,
//!     status: Option<PodStatusView>,
//! }
//!
//! #[derive(Projection, Clone, Debug)]
//! #[projection(of = PodSpec, nested)]
//! struct PodSpecView {
//!     node_name: Option<String>,
//!     containers: Vec<ContainerView>,
//! }
//!
//! #[derive(Projection, Clone, Debug)]
//! #[projection(of = Container, nested)]
//! struct ContainerView {
//!     name: String,
//!     ports: Option<Vec<ContainerPort>>,
//! }
//!
//! #[derive(Projection, Clone, Debug)]
//! #[projection(of = PodStatus, nested)]
//! struct PodStatusView {
//!     phase: Option<String>,
//!     pod_ip: Option<String>, // on the wire: podIP
//!     container_statuses: Option<Vec<RestartsView>>,
//! }
//!
//! #[derive(Projection, Clone, Debug)]
//! #[projection(of = ContainerStatus, nested)]
//! struct RestartsView {
//!     restart_count: i32,
//! }
//!
//! let pod: PodView = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "web-0", "namespace": "default"},
//!     "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1",
//!              "env": [{"name": "A", "value": "never decoded"}]}]},
//!     "status": {"phase": "Running", "podIP": "10.0.0.7",
//!                "containerStatuses": [{"name": "app", "restartCount": 2, "ready": true,
//!                                       "image": "app:1", "imageID": ""}]},
//! })).unwrap();
//! assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-1"));
//! assert_eq!(pod.status.as_ref().unwrap().pod_ip.as_deref(), Some("10.0.0.7"));
//! // Same kind, same API path as the source: informers and `Api` reach Pods.
//! assert_eq!(PodView::url_path(&(), Some("default")), Pod::url_path(&(), Some("default")));
//! ```
//!
//! With the view, [`InformerFactory::informer::<PodView>(&scope)`](crate::informer::InformerFactory::informer)
//! lists and watches `/api/v1/pods` and fills a `Store<PodView>`; indexes, handlers and
//! `Controller::<PodView>` work as for any type. The factory shares informers by Rust
//! type, so a process that also asks for `informer::<Pod>` watches pods twice and
//! caches both: switch every reader of a kind in a process, or none.
//!
//! # What the derive generates
//!
//! - `serde::Deserialize`, reading each field under its JSON name and ignoring every
//!   other field. The JSON name is the source field's Rust name in camelCase, with the
//!   acronyms Kubernetes spells in capitals restored (`pod_ip` → `podIP`, `pod_ips` →
//!   `podIPs`, `container_id` → `containerID`, `pod_cidrs` → `podCIDRs`, ...) and a
//!   trailing `_` dropped (`type_` → `type`). Where that guess is wrong, say it:
//!   `#[serde(rename = "...")]` on the field (every `#[serde(...)]` field attribute is
//!   passed on to serde; container `#[serde(...)]` attributes are not). `Vec`, map and
//!   `metadata` fields default to empty when absent, as k8s-openapi decodes them.
//! - [`Projection`] (the source type and the JSON names read), [`ProjectionOf<Source>`],
//!   and for a top-level projection (any without `nested`)
//!   `kube::Resource` with the source's kind, group, version, plural and scope, reading
//!   its `metadata: ObjectMeta` field.
//! - A compile-time check of every field (see below).
//!
//! Not generated: `Clone` and `Debug` (derive them: informers need both), and
//! `Serialize` (a projection is not written back; see below). Do not derive
//! `Deserialize` as well: the impls would conflict.
//!
//! Keys: `#[projection(of = Path)]` (required) names the source type; `nested` marks a
//! projection of a type that is not a resource itself (`PodSpec`, `Container`): no
//! `Resource` impl and no `metadata` needed; `rename_all = "camelCase"` uses serde's
//! plain camelCase instead of Kubernetes' acronyms, for sources written in Rust with
//! `#[serde(rename_all = "camelCase")]` (a `#[derive(Crd)]` spec). On a field,
//! `#[projection(field = name)]` reads the source field `name` into a differently named
//! Rust field. Generic projections, enums and tuple structs are refused.
//!
//! # The compile-time check
//!
//! Each field must exist in the source type (else rustc's `no field ... on type` at the
//! field), with a compatible type: the same type, or a type that is a
//! [`ProjectionOf`] the source field's type, under the same `Option`, `Vec` and
//! `BTreeMap<String, _>` wrappers in the same order (so `Option<Vec<ContainerView>>` for
//! `Option<Vec<Container>>`). A mismatch is reported at the field, e.g.
//! ``the field type `String` cannot read the source's `Option<String>` ``, or
//! ``the projection declares `Option<..>` here but the source field has type `String` ``.
//! The wrappers are recognised by name (`Option`, `Vec`, `BTreeMap`), so a type alias
//! hiding one is compared as a whole and refused unless it is the source's exact type.
//! Wrappers must match exactly: `Vec<ContainerPort>` for the source's
//! `Option<Vec<ContainerPort>>` is refused, not read as empty when absent.
//!
//! What the check cannot see: the JSON name. It follows the rule above; a field whose
//! name the rule gets wrong decodes as absent (`None`, empty) rather than failing.
//! [`check_names`] compares the names with the source's JSON schema at run time: call
//! it in a unit test for each projection type.
//!
//! # When not to use a projection
//!
//! A projection is for reading. Do not use one:
//! - to write an object back (`replace`, a merge patch built from the cached object, an
//!   update of status from it): every field you did not declare would be missing, and a
//!   replace would erase them. Such a controller must read the full type;
//! - to build a server-side apply of the full object, or any patch that needs the
//!   object's current contents beyond the declared fields;
//! - when the controller needs fields you did not declare, e.g. to compare a pod's
//!   containers with a desired template when only their ports are declared: the
//!   projection silently has nothing there. Declare them, or read the full type.
//!
//! A projection's `metadata` is a full `ObjectMeta`, so owner references, labels and
//! the resource version are there; the informer's default transform still drops
//! `managedFields`, and [`metadata_without_managed_fields`] skips them while decoding
//! (the cheaper choice when nothing reads them). Writing with the source type (a `Patch` of a `Pod` built from
//! scratch, an `Api<Pod>` delete) while reading a projection is fine, and
//! [`create_as`] decodes a create's answer as the projection, so a controller that
//! creates many objects it caches as a projection does not decode each one whole.

use std::collections::BTreeMap;

#[doc(inline)]
pub use kube_reconcile_derive::Projection;

mod metadata;

pub use metadata::metadata_without_managed_fields;

/// What `#[derive(Projection)]` implements: the source type and the JSON names read.
///
/// The trait and the derive share a name, as serde's `Deserialize` does.
pub trait Projection: ProjectionOf<Self::Source> {
    /// The type projected, from `#[projection(of = ...)]`.
    type Source;
    /// The JSON names of the fields decoded (not those `#[serde(skip)]`ped or
    /// flattened, nor one renamed in a form the derive does not read).
    const FIELDS: &'static [&'static str];
}

/// A projection reads JSON names its source does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The names below are not properties of the source's schema: the naming rule
    /// guessed wrong (give the field `#[serde(rename = "...")]`), or a rename is wrong.
    #[error(
        "{projection} reads {names:?}, which {source_type} does not have; \
         give such a field #[serde(rename = \"<JSON name>\")]"
    )]
    Unknown {
        /// The projection's Rust type.
        projection: &'static str,
        /// The source's Rust type.
        source_type: &'static str,
        /// The names read that the source lacks.
        names: Vec<&'static str>,
    },
    /// The source's schema lists no properties to compare with (a schema written by
    /// hand, or one that preserves unknown fields).
    #[error("the schema of {source_type} lists no properties to check {projection} against")]
    NoProperties {
        /// The projection's Rust type.
        projection: &'static str,
        /// The source's Rust type.
        source_type: &'static str,
    },
}

/// Checks that every JSON name `P` reads is a property of its source's JSON schema:
/// the run-time half of the compile-time check, which cannot see JSON names. A name
/// the source lacks would decode as absent forever, silently; call this in a unit test
/// for each projection type (it checks one level: call it for nested ones too).
///
/// Needs the source's `schemars::JsonSchema`, which k8s-openapi types have with the
/// `schemars` feature (which this crate's `derive` feature turns on) and derived CRD
/// specs and `#[derive(CrdSchema)]` types have.
///
/// ```
/// # use k8s_openapi::api::core::v1::PodStatus;
/// # use kube_reconcile::projection::{Projection, check_names};
/// #[derive(Projection)]
/// #[projection(of = PodStatus, nested)]
/// struct Ips {
///     pod_ips: Option<Vec<k8s_openapi::api::core::v1::PodIP>>,
///     #[serde(rename = "hostIp")] // wrong: the API says hostIP
///     host_ip: Option<String>,
/// }
/// let error = check_names::<Ips>().unwrap_err();
/// assert!(error.to_string().contains(r#"["hostIp"]"#), "{error}");
/// ```
pub fn check_names<P>() -> Result<(), NameError>
where
    P: Projection,
    P::Source: schemars::JsonSchema,
{
    let projection = std::any::type_name::<P>();
    let source_type = std::any::type_name::<P::Source>();
    let schema = crate::crd::__private::schema_for::<P::Source>();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Err(NameError::NoProperties {
            projection,
            source_type,
        });
    };
    let names: Vec<_> = P::FIELDS
        .iter()
        .copied()
        .filter(|name| !properties.contains_key(*name))
        .collect();
    if names.is_empty() {
        Ok(())
    } else {
        Err(NameError::Unknown {
            projection,
            source_type,
            names,
        })
    }
}

/// `Self` reads a subset of `S`'s fields from `S`'s wire form.
///
/// Every type is a projection of itself; `#[derive(Projection)]` implements it for its
/// struct and the source. The derive's field check asks for it on each field's type
/// after matching wrappers; implementing it by hand for a type not derived claims a
/// compatibility the compiler cannot check (the JSON shapes must agree).
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` cannot read the source's `{S}`",
    label = "not `{S}` nor a projection of it",
    note = "a projection field must have the source field's type, or a `#[derive(Projection)]` \
            type with `#[projection(of = ...)]` of it, under the same Option/Vec/BTreeMap wrappers"
)]
pub trait ProjectionOf<S: ?Sized> {}

impl<T: ?Sized> ProjectionOf<T> for T {}

/// What generated code refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::marker::PhantomData;

    pub use super::{Projection, ProjectionOf};
    pub use k8s_openapi;
    pub use kube;
    pub use serde;

    /// The type of a source field, for the check; never evaluated at run time.
    pub fn field<T>(_: &T) -> PhantomData<T> {
        PhantomData
    }

    /// A source field's type after peeling wrappers.
    pub struct Source<S>(PhantomData<S>);

    /// Ends the peeling: `S` is known here, so the compiler cannot infer it from the
    /// projection's type (which would turn a mismatch into a confusing type error).
    pub fn source<S>(_: PhantomData<S>) -> Source<S> {
        Source(PhantomData)
    }

    impl<S> Source<S> {
        /// Requires `P` to read `S`.
        pub fn require<P: ProjectionOf<S>>(self) {}
    }

    /// A source type that is a top-level resource.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a top-level resource, so a projection of it cannot be watched",
        label = "not a `kube::Resource`",
        note = "mark a projection of a nested type `#[projection(of = ..., nested)]`"
    )]
    pub trait TopLevel {}
    impl<T: kube::Resource<DynamicType = ()>> TopLevel for T {}

    /// Requires `S` to be a top-level resource.
    pub fn top_level<S: TopLevel>() {}

    /// A source type that is an `Option`.
    #[diagnostic::on_unimplemented(
        message = "the projection declares `Option<..>` here but the source field has type `{Self}`",
        label = "not an `Option` in the source",
        note = "declare the field as the source does, with the same wrappers"
    )]
    pub trait IsOption {
        /// The optional type.
        type Inner;
    }
    impl<T> IsOption for Option<T> {
        type Inner = T;
    }

    /// A source type that is a `Vec`.
    #[diagnostic::on_unimplemented(
        message = "the projection declares `Vec<..>` here but the source field has type `{Self}`",
        label = "not a `Vec` in the source",
        note = "declare the field as the source does, with the same wrappers"
    )]
    pub trait IsVec {
        /// The item type.
        type Inner;
    }
    impl<T> IsVec for Vec<T> {
        type Inner = T;
    }

    /// A source type that is a map with string keys.
    #[diagnostic::on_unimplemented(
        message = "the projection declares `BTreeMap<String, ..>` here but the source field has type `{Self}`",
        label = "not a `BTreeMap<String, _>` in the source",
        note = "declare the field as the source does, with the same wrappers"
    )]
    pub trait IsStringMap {
        /// The value type.
        type Inner;
    }
    impl<T> IsStringMap for super::BTreeMap<String, T> {
        type Inner = T;
    }

    /// Peels an `Option` off the source side.
    pub fn option<T: IsOption>(_: PhantomData<T>) -> PhantomData<T::Inner> {
        PhantomData
    }

    /// Peels a `Vec` off the source side.
    pub fn vec<T: IsVec>(_: PhantomData<T>) -> PhantomData<T::Inner> {
        PhantomData
    }

    /// Peels a `BTreeMap<String, _>` off the source side.
    pub fn map<T: IsStringMap>(_: PhantomData<T>) -> PhantomData<T::Inner> {
        PhantomData
    }
}

/// Creates `object` with `api`, as `api.create(params, object)` does, but decodes the
/// API server's answer (the created object) as the projection `P` instead of the full
/// type: a controller that creates pods and caches them as a projection then decodes
/// only the declared fields of each created pod, not its whole spec again.
///
/// Errors are `Api::create`'s: the API server's refusal as [`kube::Error::Api`],
/// [`kube::Error::SerdeError`] if `object` does not serialize or the answer does not
/// decode as `P`.
pub async fn create_as<P>(
    api: &kube::Api<P::Source>,
    params: &kube::api::PostParams,
    object: &P::Source,
) -> Result<P, kube::Error>
where
    P: Projection + serde::de::DeserializeOwned,
    P::Source: kube::Resource + Clone + serde::Serialize,
{
    let body = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
    let mut request = kube::core::Request::new(api.resource_url())
        .create(params, body)
        .map_err(kube::Error::BuildRequest)?;
    // The verb name kube's own `create` gives its requests (for tracing).
    request.extensions_mut().insert("create");
    api.clone().into_client().request::<P>(request).await
}

#[cfg(test)]
mod tests;
