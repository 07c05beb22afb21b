//! external-dns's `DNSEndpoint` (`externaldns.k8s.io/v1alpha1`), modelled from the CRD
//! external-dns publishes (`config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml`).
//! Every field is optional, the spec included: an object without one is valid.

use std::collections::BTreeMap;

use kube_reconcile::crd::Crd;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The DNS records external-dns should publish.
#[derive(Crd, Clone, Debug, Default, Serialize, Deserialize)]
#[crd(
    group = "externaldns.k8s.io",
    version = "v1alpha1",
    kind = "DNSEndpoint",
    namespaced,
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes-sigs/external-dns/pull/2007"
    ),
    status = DnsEndpointStatus
)]
#[serde(default, rename_all = "camelCase")]
pub struct DnsEndpointSpec {
    /// The records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
}

/// One DNS record set.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The record's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    /// What the record points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// A, AAAA, CNAME, TXT...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// Tells apart records of the same name and type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Seconds.
    #[serde(rename = "recordTTL", skip_serializing_if = "Option::is_none")]
    pub record_ttl: Option<i64>,
    /// Labels of the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Settings only one DNS provider understands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_specific: Option<Vec<ProviderSpecificProperty>>,
}

/// A provider's own setting.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProviderSpecificProperty {
    /// Its name, e.g. `aws/failover`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What external-dns has seen.
#[derive(JsonSchema, Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsEndpointStatus {
    /// The generation external-dns last acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
