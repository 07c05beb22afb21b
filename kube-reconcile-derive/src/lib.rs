//! Derive macros for kube-reconcile: complete, structural CustomResourceDefinitions from
//! Rust types, with garde rules mirrored into the schema. Use them through
//! `kube_reconcile::crd` (runnable examples live there); generated code only names
//! `::kube_reconcile::crd::__private::...`, so this crate is never a direct dependency.
//!
//! # `#[derive(Crd)]` (on the spec struct)
//!
//! Generates `pub struct <Kind> { pub metadata: ObjectMeta, pub spec: <Spec>, pub status:
//! Option<<Status>> }` (no `status` field without `status = ...`) with `Clone`, `Debug`,
//! serde (serializing `apiVersion` and `kind`), `kube::Resource` (`DynamicType = ()`),
//! `HasSpec`/`HasStatus`, `<Kind>::new(name, spec)`, `CustomResourceExt` (`crd()`,
//! `crd_name()`, `api_resource()`, `short_names()`, `to_yaml()`, `to_json()`), and the
//! spec's `schemars::JsonSchema`. The spec must be `Clone + Debug + Serialize +
//! Deserialize`, and not generic.
//!
//! | Key | Meaning | Example |
//! |---|---|---|
//! | `group = "..."` (required) | API group | `group = "example.com"` |
//! | `version = "..."` (required) | version name | `version = "v1"` |
//! | `kind = "..."` (required) | kind, and the generated type's name | `kind = "WebApp"` |
//! | `namespaced` | Namespaced scope (default: Cluster) | `namespaced` |
//! | `plural = "..."` | resource name (default: English plural of the lower-cased kind) | `plural = "webapps"` |
//! | `singular = "..."` | default: lower-cased kind | `singular = "webapp"` |
//! | `short_names("..", ..)` | `kubectl` short names | `short_names("wa")` |
//! | `categories("..", ..)` | e.g. `all` | `categories("all")` |
//! | `annotation("key", "value")` | an annotation on the CRD object itself, e.g. the `api-approved.kubernetes.io` one that groups under `k8s.io` and `kubernetes.io` need; repeatable | none |
//! | `status = Type` | status type and the `status` subresource | `status = WebAppStatus` |
//! | `scale(spec_replicas_path, status_replicas_path, label_selector_path?)` | `scale` subresource | `scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas")` |
//! | `printer_column(name, type, json_path, description?, format?, priority?)` | one `additionalPrinterColumns` entry (repeatable); `type` is integer, number, string, boolean or date | `printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp")` |
//! | `selectable_field(json_path)` | one `selectableFields` entry (repeatable) | `selectable_field(json_path = ".spec.image")` |
//! | `served = bool`, `storage = bool` | version flags (default: both true; see `merge_versions`) | `storage = false` |
//! | `deprecated`, `deprecation_warning = "..."` | deprecated version and its warning | `deprecated, deprecation_warning = "use v2"` |
//! | `validation(...)`, `struct_type`, `preserve_unknown_fields` | on the spec schema, as for containers below | `validation(rule = "self.min <= self.max")` |
//!
//! # `#[derive(CrdSchema)]` (nested structs and enums) and field keys
//!
//! Container keys (`CrdSchema`): `validation(...)` (repeatable), `struct_type = "atomic" |
//! "granular"`, `preserve_unknown_fields`, `int_or_string` (untagged enums of an integer
//! and a string variant), `embedded_resource`, `nullable`. Variant keys: `validation(...)`
//! (kept only where the variant's schema survives the enum merge).
//!
//! Field keys (both derives):
//!
//! | Key | Schema | Example |
//! |---|---|---|
//! | `validation(rule, message?, message_expression?, reason?, field_path?, optional_old_self?)` | one `x-kubernetes-validations` entry (CEL); `reason` is `FieldValueInvalid`, `FieldValueForbidden`, `FieldValueRequired` or `FieldValueDuplicate` | `validation(rule = "self.startsWith('v')", message = "must start with v")` |
//! | `immutable`, `immutable = "message"` | rule `self == oldSelf`, message `<json name> is immutable` | `immutable` |
//! | `list_type = "atomic" \| "set" \| "map"` | `x-kubernetes-list-type` | `list_type = "set"` |
//! | `list_map_keys("..", ..)` | `x-kubernetes-list-map-keys` (needs `list_type = "map"`) | `list_map_keys("name")` |
//! | `map_type = "atomic" \| "granular"` | `x-kubernetes-map-type` on a map | `map_type = "atomic"` |
//! | `struct_type = "atomic" \| "granular"` | `x-kubernetes-map-type` on a struct | `struct_type = "atomic"` |
//! | `int_or_string` | `x-kubernetes-int-or-string` with `anyOf: [integer, string]` | `int_or_string` |
//! | `preserve_unknown_fields` | `x-kubernetes-preserve-unknown-fields` (required on `serde_json::Value` and flattened maps) | `preserve_unknown_fields` |
//! | `embedded_resource` | `x-kubernetes-embedded-resource` + preserve-unknown-fields + `type: object` | `embedded_resource` |
//! | `default = <JSON>` | `default` (also produced by `#[serde(default)]`) | `default = {"port": 80}` |
//! | `format = "..."` | `format` (one of kube-apiserver's: `uri`, `email`, `ipv4`, `ipv6`, `cidr`, `mac`, `uuid`, `date`, `date-time`, `duration`, `byte`, `hostname`, `k8s-short-name`, `k8s-long-name`, ...) | `format = "cidr"` |
//! | `nullable`, `nullable = <bool>` | `nullable: true` (or `false`): `null` is a stored value (an `Option` alone only means the field may be absent; the server prunes an explicit `null` and applies the default) | `nullable` |
//! | `enum_values(..)` | `enum` on a type that is not a Rust enum, e.g. an integer enum (the values are JSON literals) | `enum_values(301, 302, 307, 308)` |
//!
//! Descriptions come from doc comments; `#[serde(...)]` renames, tagging, `default`,
//! `skip` and `flatten`, and `#[schemars(...)]` keys (e.g. `#[schemars(extend("multipleOf"
//! = 8))]`, accepted on types using these derives), are honoured as schemars does.
//!
//! # `#[derive(Projection)]`
//!
//! A struct of the fields a controller reads from another type (`#[projection(of =
//! Pod)]`), each checked against it at compile time; its informers watch the source's
//! API path. Documented, with examples and caveats, in `kube_reconcile::projection`.
//!
//! # `Option`: absent, not null
//!
//! As with controller-gen, an `Option<T>` field is optional: it may be absent. It is
//! not nullable: the schema gets no `nullable: true`, and an `Option` of an enum does
//! not list `null` among its values. kube-apiserver prunes an explicit `null` on such
//! a field (and then applies its `default`), so the `null` serde writes for `None`
//! is accepted and stored as absent, and a typed object always round-trips through its
//! own CRD. Mark a field `nullable` only when `null` must be stored as a value.
//!
//! The same rule holds for the spec itself: the root schema requires `spec` unless the
//! spec struct is `#[serde(default)]` (so `Default`), in which case an object without a
//! spec is valid and the generated type reads it as the default spec (and writes it
//! back as `{}`).
//!
//! # Discriminated unions
//!
//! An internally tagged enum (`#[serde(tag = "type")]`) becomes the shape controller-gen
//! users write by hand: one object whose `properties` are every variant's members,
//! `type` an `enum` of the variants' tags and `required` (with any member every variant
//! requires), and one CEL rule per member tying it to the tags that allow it (`<member>
//! may only be set when type is ...`) and, where a variant requires it, to the tags that
//! require it (`<member> is required when type is ...`). Members whose names CEL cannot
//! address as `self.<name>` get no rule. Use struct variants (`Recreate {}` rather than
//! `Recreate`) with `deny_unknown_fields` so that serde refuses the same objects:
//!
//! ```
//! use kube_reconcile::crd::{Crd, CrdSchema, CustomResourceExt as _};
//!
//! #[derive(CrdSchema, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! #[serde(tag = "type", deny_unknown_fields, rename_all_fields = "camelCase")]
//! pub enum Strategy {
//!     Recreate {},
//!     RollingUpdate { max_unavailable: i32 },
//! }
//!
//! #[derive(Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
//! #[crd(group = "example.com", version = "v1", kind = "App")]
//! pub struct AppSpec { pub strategy: Strategy }
//!
//! let schema = serde_json::to_value(&App::crd().spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
//! let strategy = &schema["properties"]["spec"]["properties"]["strategy"];
//! assert_eq!(strategy["required"], serde_json::json!(["type"]));
//! assert_eq!(strategy["properties"]["type"]["enum"], serde_json::json!(["Recreate", "RollingUpdate"]));
//! assert_eq!(strategy["x-kubernetes-validations"][0]["rule"],
//!            "!has(self.maxUnavailable) || self.type == 'RollingUpdate'");
//! assert_eq!(strategy["x-kubernetes-validations"][1]["message"],
//!            "maxUnavailable is required when type is RollingUpdate");
//! ```
//!
//! # garde rules
//!
//! Enforced by kube-apiserver too (the same values `validate()` rejects are rejected):
//! - `range(min, max)` → `minimum`/`maximum`; `length(min, max)` on lists → `minItems`/
//!   `maxItems`; on strings → `minLength`/`maxLength` **and**, because garde's default
//!   mode counts bytes while the server counts characters, CEL `size(bytes(self))`
//!   rules (`length(chars, ...)` maps to `minLength`/`maxLength` alone);
//! - `pattern(r"...")` → `pattern` (Go RE2 on the server: avoid look-around and
//!   back-references, which the Rust `regex` crate rejects anyway);
//! - `contains("x")` on strings → an escaped `pattern`; `required` on `Option` → `required`;
//! - `email` → `format: email`; `ipv4`/`ipv6` → those formats; `ip` → CEL `isIP(self)`
//!   (`ip` is no CRD format); `url` → `format: uri` plus a CEL rule requiring a scheme
//!   (the server's `uri` alone also accepts bare paths);
//! - `prefix("x")`/`suffix("x")` → CEL `startsWith`/`endsWith`; `ascii` → CEL `matches`;
//!   `length(bytes, min, max)` on strings → CEL `size(bytes(self))` (and `maxLength`);
//! - `inner(...)` → the same rules on list items (not on map values), for the rules
//!   schemars maps; on an `Option<Vec<T>>` garde's spelling `inner(inner(...))` reaches
//!   the items, and the schema gets the same item rules; `dive` recurses into the nested
//!   type's own rules.
//!
//! Client-side only (document them to your users): `alphanumeric`, `credit_card`,
//! `phone_number`, `matches(field)`, `custom(...)`, `length` on maps, `length(graphemes|
//! utf16, ...)` (schemars emits character counts, which differ), rules with non-literal
//! arguments, CEL-mapped rules inside `inner(...)`. `email` follows Go's `net/mail` on
//! the server, which accepts a few forms (e.g. `Name <a@b.c>`) garde rejects.
//!
//! # Compile errors
//!
//! Rejected with a span on the culprit: `serde_json::Value` (or a bare `Value`) without
//! `preserve_unknown_fields`; tuples, tuple structs and tuple variants of several fields;
//! `#[serde(flatten)]` of a map without `preserve_unknown_fields`; untagged enums whose
//! variants serialize to different JSON types (integer + string needs `int_or_string`);
//! externally tagged enums mixing unit and data variants; unknown or misspelt `#[crd]`
//! keys (with a suggestion) and keys in the wrong place; missing `group`/`version`/
//! `kind`; a scale path into `.status` without `status`; `deprecation_warning` without
//! `deprecated`; non-boolean `served`/`storage`; `list_map_keys` without
//! `list_type = "map"` (and the reverse); `immutable` on the spec itself; generic specs.
//! Detection is by type name, so an alias such as `type Json = serde_json::Value` escapes
//! it; `check_structural` in your tests catches what the macro cannot see.
//!
//! # controller-gen markers
//!
//! | controller-gen marker | kube-reconcile |
//! |---|---|
//! | `+groupName` | `#[crd(group = "...")]` |
//! | `+kubebuilder:resource:path=` | `plural = "..."` |
//! | `+kubebuilder:resource:scope=` | `namespaced` (absent: Cluster) |
//! | `+kubebuilder:resource:shortName=` | `short_names(...)` |
//! | `+kubebuilder:resource:categories=` | `categories(...)` |
//! | `+kubebuilder:metadata:annotations=` (on the package) | `annotation("key", "value")` |
//! | `+kubebuilder:resource:singular=` | `singular = "..."` |
//! | `+kubebuilder:subresource:status` | `status = Type` |
//! | `+kubebuilder:subresource:scale` | `scale(...)` |
//! | `+kubebuilder:printcolumn` | `printer_column(...)` |
//! | `+kubebuilder:selectablefield` | `selectable_field(json_path = ...)` |
//! | `+kubebuilder:storageversion` | `storage = true` / `merge_versions(.., "v2")` |
//! | `+kubebuilder:deprecatedversion:warning=` | `deprecated, deprecation_warning = "..."` |
//! | `+kubebuilder:skipversion` | leave the type out of `merge_versions` |
//! | `+kubebuilder:unservedversion` | `served = false` |
//! | `+kubebuilder:validation:Minimum` / `Maximum` | `#[garde(range(min, max))]` |
//! | `+kubebuilder:validation:ExclusiveMinimum` / `ExclusiveMaximum` | not supported yet (use `validation(rule = "self > 0")`) |
//! | `+kubebuilder:validation:MultipleOf` | `#[schemars(extend("multipleOf" = n))]` |
//! | `+kubebuilder:validation:MinLength` / `MaxLength` | `#[garde(length(chars, min, max))]` |
//! | `+kubebuilder:validation:Pattern` | `#[garde(pattern(r"..."))]` |
//! | `+kubebuilder:validation:MinItems` / `MaxItems` | `#[garde(length(min, max))]` on a `Vec` |
//! | `+kubebuilder:validation:UniqueItems` | `list_type = "set"` (or a `BTreeSet`/`HashSet`, which schemars marks `uniqueItems`) |
//! | `+kubebuilder:validation:MinProperties` / `MaxProperties` | `#[schemars(extend("minProperties" = n))]` |
//! | `+kubebuilder:validation:Enum` | a unit-only Rust enum; `enum_values(..)` for other types (integer enums) |
//! | `+kubebuilder:validation:Format` | `format = "..."` (or garde `email`/`url`/`ip*`) |
//! | `+kubebuilder:validation:Type` | not supported (the Rust type decides) |
//! | `+kubebuilder:validation:Required` / `Optional` | a non-`Option` field without default / `Option<T>` or `#[serde(default)]`; `#[garde(required)]`; an optional `spec`: `#[serde(default)]` on the spec struct |
//! | `+nullable` / `+kubebuilder:validation:Nullable` | `nullable` (an `Option` alone is optional, not nullable) |
//! | `+unionDiscriminator` / `+unionMember` (and the CEL rules written beside them) | an internally tagged enum, `#[serde(tag = "...")]` (see "Discriminated unions") |
//! | `+kubebuilder:validation:XValidation` | `validation(rule, message, message_expression, reason, field_path, optional_old_self)` |
//! | `+kubebuilder:validation:XEmbeddedResource` / `EmbeddedResource` | `embedded_resource` |
//! | `+kubebuilder:validation:XIntOrString` | `int_or_string` (or `IntOrString`/`Quantity` types) |
//! | `+kubebuilder:validation:Schemaless` | `preserve_unknown_fields` on a `serde_json::Value` |
//! | `+kubebuilder:default` / `+default` | `#[serde(default)]` or `default = <JSON>` |
//! | `+kubebuilder:pruning:PreserveUnknownFields` | `preserve_unknown_fields` |
//! | `+listType` / `+listMapKey` | `list_type = ".."` / `list_map_keys(..)` |
//! | `+mapType` / `+structType` | `map_type = ".."` / `struct_type = ".."` |
//! | `+kubebuilder:example` | not supported (examples are dropped: CRDs have no such field) |
//! | `+kubebuilder:title` | not supported (titles are dropped) |
//! | `+kubebuilder:metadata:labels` | not supported yet (edit `crd().metadata`) |
//! | `+kubebuilder:validation:items:*` | `#[garde(inner(...))]` |
//! | `+kubebuilder:validation:AtMostOneOf` / `ExactlyOneOf` | not supported yet (use a CEL `validation`) |

mod attrs;
mod checks;
mod garde_rules;
mod projection;
mod resource;
mod serde_info;
mod shadow;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

use attrs::Position;

/// Derives the resource type, its CRD and the spec's `JsonSchema`; see the crate docs.
#[proc_macro_derive(Crd, attributes(crd, schemars))]
pub fn derive_crd(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let (res, schema) = match attrs::parse(&input.attrs, Position::Resource) {
        Ok(parsed) => parsed,
        Err(mut e) => {
            // Report the fields' mistakes in the same build, not one round-trip later.
            if let Err(fields) = shadow::expand(&input, &attrs::SchemaAttrs::default()) {
                e.combine(fields);
            }
            return e.into_compile_error().into();
        }
    };
    let result = resource::validate(&input, &res, &schema).and_then(|()| {
        let schema_impl = shadow::expand(&input, &schema)?;
        let resource_impl = resource::expand(&input, &res);
        Ok(quote::quote!(#schema_impl #resource_impl))
    });
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `schemars::JsonSchema` honouring `#[crd(...)]` field and container keys.
#[proc_macro_derive(CrdSchema, attributes(crd, schemars))]
pub fn derive_crd_schema(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    attrs::parse(&input.attrs, Position::Container)
        .and_then(|(_, schema)| shadow::expand(&input, &schema))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives a typed projection: `Deserialize` reading only the declared fields,
/// `ProjectionOf<Source>`, `kube::Resource` for a top-level projection, and a
/// compile-time check of each field against the source. Documented with runnable
/// examples in `kube_reconcile::projection`.
#[proc_macro_derive(Projection, attributes(projection, serde))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    projection::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
