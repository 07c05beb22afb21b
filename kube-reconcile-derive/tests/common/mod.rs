//! Shared by the integration tests: the schema of a CRD, checked structural.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The `openAPIV3Schema` of the first version, after asserting it is structural.
pub fn checked_schema(crd: &CustomResourceDefinition) -> Value {
    let mut out = Value::Null;
    for v in &crd.spec.versions {
        let schema = serde_json::to_value(&v.schema).unwrap()["openAPIV3Schema"].clone();
        if let Err(violations) = kube_reconcile::crd::structural::check_structural(&schema) {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            panic!(
                "version {} is not structural:\n{}\n{schema:#}",
                v.name,
                list.join("\n")
            );
        }
        if out.is_null() {
            out = schema;
        }
    }
    out
}
