//! Assembling the CustomResourceDefinition from what `#[derive(Crd)]` collected; called
//! by generated code only, so the macro stays small and this logic stays testable.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::structural::make_structural;

/// Everything `#[crd(...)]` says about a resource, as plain data.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct CrdInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Annotations on the CRD object (e.g. `api-approved.kubernetes.io`).
    pub annotations: &'static [(&'static str, &'static str)],
    pub namespaced: bool,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<&'static str>,
    /// The spec type is `#[serde(default)]`, so the root does not require `spec`.
    pub spec_optional: bool,
    /// spec, status and label-selector replica paths
    pub scale: Option<(&'static str, &'static str, Option<&'static str>)>,
    pub printer_columns: &'static [PrinterColumn],
    pub selectable_fields: &'static [&'static str],
}

/// One `printer_column(...)`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PrinterColumn {
    pub name: &'static str,
    pub type_: &'static str,
    pub json_path: &'static str,
    pub description: Option<&'static str>,
    pub format: Option<&'static str>,
    pub priority: Option<i32>,
}

/// The schema of `T`, with every subschema inlined (CRDs cannot hold `$ref`s).
#[doc(hidden)]
pub fn schema_for<T: JsonSchema + ?Sized>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null)
}

/// The root `openAPIV3Schema`: apiVersion, kind, metadata, spec (required unless
/// `spec_optional`) and (optional) status, made structural.
#[doc(hidden)]
pub fn root_schema(spec: Value, status: Option<Value>, spec_optional: bool) -> Value {
    let mut props = Map::new();
    props.insert("apiVersion".into(), json!({ "type": "string" }));
    props.insert("kind".into(), json!({ "type": "string" }));
    props.insert("metadata".into(), json!({ "type": "object" }));
    props.insert("spec".into(), spec);
    if let Some(mut status) = status {
        // The status is written by the controller, which may omit it: null is fine.
        if let Value::Object(s) = &mut status {
            s.remove("nullable");
        }
        props.insert("status".into(), status);
    }
    let mut root = json!({ "type": "object", "properties": props });
    if !spec_optional {
        root["required"] = json!(["spec"]);
    }
    make_structural(root)
}

/// The whole CRD.
#[doc(hidden)]
pub fn build_crd(info: &CrdInfo, spec: Value, status: Option<Value>) -> CustomResourceDefinition {
    let has_status = status.is_some();
    let mut version = json!({
        "name": info.version,
        "served": info.served,
        "storage": info.storage,
        "schema": { "openAPIV3Schema": root_schema(spec, status, info.spec_optional) },
    });
    let v = version.as_object_mut().expect("a JSON object literal");
    if info.deprecated {
        v.insert("deprecated".into(), true.into());
    }
    if let Some(w) = info.deprecation_warning {
        v.insert("deprecationWarning".into(), w.into());
    }
    let mut subresources = Map::new();
    if has_status {
        subresources.insert("status".into(), json!({}));
    }
    if let Some((spec_path, status_path, selector)) = info.scale {
        let mut scale = json!({ "specReplicasPath": spec_path, "statusReplicasPath": status_path });
        if let Some(sel) = selector {
            scale["labelSelectorPath"] = sel.into();
        }
        subresources.insert("scale".into(), scale);
    }
    if !subresources.is_empty() {
        v.insert("subresources".into(), subresources.into());
    }
    if !info.printer_columns.is_empty() {
        v.insert(
            "additionalPrinterColumns".into(),
            info.printer_columns.iter().map(column).collect(),
        );
    }
    if !info.selectable_fields.is_empty() {
        let fields: Vec<Value> = info
            .selectable_fields
            .iter()
            .map(|p| json!({ "jsonPath": p }))
            .collect();
        v.insert("selectableFields".into(), fields.into());
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata(info),
        "spec": {
            "group": info.group,
            "names": names(info),
            "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [version],
        },
    });
    // Every key above is a CRD field with the right JSON type, and the schema only keeps
    // JSONSchemaProps keys: this cannot fail short of a bug in this module.
    serde_json::from_value(crd).expect("kube-reconcile built an invalid CustomResourceDefinition")
}

fn metadata(info: &CrdInfo) -> Value {
    let mut metadata = json!({ "name": format!("{}.{}", info.plural, info.group) });
    if !info.annotations.is_empty() {
        let annotations: Map<String, Value> = info
            .annotations
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
            .collect();
        metadata["annotations"] = annotations.into();
    }
    metadata
}

fn names(info: &CrdInfo) -> Value {
    let mut names = json!({
        "kind": info.kind,
        "listKind": format!("{}List", info.kind),
        "plural": info.plural,
        "singular": info.singular,
    });
    if !info.short_names.is_empty() {
        names["shortNames"] = info.short_names.into();
    }
    if !info.categories.is_empty() {
        names["categories"] = info.categories.into();
    }
    names
}

fn column(c: &PrinterColumn) -> Value {
    let mut col = json!({ "name": c.name, "type": c.type_, "jsonPath": c.json_path });
    if let Some(d) = c.description {
        col["description"] = d.into();
    }
    if let Some(f) = c.format {
        col["format"] = f.into();
    }
    if let Some(p) = c.priority {
        col["priority"] = p.into();
    }
    col
}
