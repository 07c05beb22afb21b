//! A custom resource that uses every validation the derive offers, for the
//! control-plane tests. Rules the server checks with CEL are mirrored by garde
//! `custom` rules, so `validate()` refuses the same inputs.

use kube_reconcile::crd::{Crd, CrdSchema};
use serde::{Deserialize, Serialize};

/// A made-up workload with one field per kind of rule.
#[derive(Crd, Clone, Debug, Serialize, Deserialize, garde::Validate)]
#[crd(
    group = "tests.kube-reconcile.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    short_names("wdg"),
    status = WidgetStatus,
    validation(
        rule = "self.minReplicas <= self.maxReplicas",
        message = "minReplicas must not exceed maxReplicas"
    ),
    validation(
        rule = "self.port != 443 || self.tier != 'Bronze'",
        message_expression = "'port 443 needs tier Gold or Silver, not ' + self.tier"
    ),
    validation(
        rule = "self.tier != 'Bronze' || size(self.zones) <= 2",
        message = "Bronze widgets run in at most 2 zones",
        field_path = ".zones",
        reason = "FieldValueForbidden"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    /// Shown to humans.
    #[garde(length(chars, min = 3, max = 20))]
    pub display_name: String,
    /// DNS-label-like.
    #[garde(pattern(r"^[a-z][a-z0-9-]*$"))]
    pub slug: String,
    /// Who to call.
    #[garde(email)]
    pub owner_email: String,
    /// Where to read more.
    #[garde(url)]
    pub homepage: String,
    /// Any IP address.
    #[garde(ip)]
    pub address: String,
    /// An IPv4 address.
    #[garde(ipv4)]
    pub gateway: String,
    /// Must mention prod.
    #[garde(contains("prod"))]
    pub environment: String,
    /// A version tag like v1.2.3.
    #[garde(prefix("v"))]
    pub version_tag: String,
    /// An in-cluster host name.
    #[garde(suffix(".svc"))]
    pub service_host: String,
    /// ASCII only.
    #[garde(ascii)]
    pub label: String,
    /// At least this many replicas...
    #[garde(range(min = 1, max = 10), custom(at_most(self.max_replicas)))]
    pub min_replicas: i32,
    /// ...and at most this many.
    #[garde(range(min = 1, max = 10))]
    pub max_replicas: i32,
    /// The serving port.
    #[garde(range(min = 1, max = 65535), custom(port_fits_tier(&self.tier)))]
    pub port: i32,
    /// 1 to 3 tags of 1 to 10 characters.
    #[garde(length(min = 1, max = 3), inner(length(chars, min = 1, max = 10)))]
    pub tags: Vec<String>,
    /// Required although optional in Rust's eyes.
    #[garde(required)]
    pub owner: Option<String>,
    /// Resource limits, with a rule of their own.
    #[garde(dive)]
    pub limits: Limits,
    /// Set once.
    #[crd(immutable)]
    #[garde(skip)]
    pub storage_class: String,
    /// Service tier.
    #[garde(skip)]
    pub tier: Tier,
    /// Named ports, keyed by name.
    #[crd(list_type = "map", list_map_keys("name"))]
    #[garde(dive, custom(unique_names))]
    pub ports: Vec<NamedPort>,
    /// Zones, a set.
    #[crd(list_type = "set")]
    #[garde(custom(unique_zones), custom(zones_fit_tier(&self.tier)))]
    pub zones: Vec<String>,
    /// A port number or name.
    #[crd(int_or_string)]
    #[garde(skip)]
    pub target_port: PortRef,
    /// May only grow once set.
    #[crd(validation(
        rule = "!oldSelf.hasValue() || self >= oldSelf.value()",
        message = "generationLimit may only grow",
        optional_old_self = true
    ))]
    #[garde(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_limit: Option<i64>,
    /// A second tier, optional. serde writes `None` as `null`, which the server must
    /// prune rather than refuse (an `Option` is "may be absent", not "may be null").
    #[garde(skip)]
    #[serde(default)]
    pub fallback_tier: Option<Tier>,
    /// A count or a percentage: a pattern on an int-or-string applies to strings.
    #[schemars(extend("pattern" = "^[0-9]+%?$"))]
    #[garde(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Defaulted by the server when absent, and when sent as `null`.
    #[crd(default = "eu-west")]
    #[garde(skip)]
    #[serde(default)]
    pub region: Option<String>,
    /// How to roll out: a discriminated union (`type` says which members may be set).
    #[garde(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// An HTTP redirect status: an integer enum.
    #[crd(enum_values(301, 302, 307, 308))]
    #[garde(custom(is_redirect))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_status: Option<u16>,
}

/// A rollout strategy. `deny_unknown_fields` makes serde refuse a member the variant
/// does not have, as the schema's CEL rules make the server do.
#[derive(Clone, Debug, Serialize, Deserialize, CrdSchema)]
#[serde(tag = "type", deny_unknown_fields, rename_all_fields = "camelCase")]
pub enum Rollout {
    /// Stop everything, then start the new version. (A unit variant would let serde
    /// ignore unknown members; an empty struct variant refuses them.)
    Recreate {},
    /// Replace a few at a time.
    RollingUpdate {
        /// How many may be down at once.
        max_unavailable: i32,
    },
}

/// What the controller saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    /// Replicas running.
    pub replicas: i32,
}

/// CPU and memory limits.
#[derive(Clone, Debug, Serialize, Deserialize, CrdSchema, garde::Validate)]
#[crd(validation(
    rule = "self.memoryMiB * 1000 >= self.cpuMillis * 128",
    message = "at least 128 MiB of memory per CPU"
))]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Thousandths of a CPU.
    #[garde(range(min = 1, max = 64000), custom(enough_memory(self.memory_mi_b)))]
    pub cpu_millis: i64,
    /// Mebibytes.
    #[garde(range(min = 1))]
    #[serde(rename = "memoryMiB")]
    pub memory_mi_b: i64,
}

/// One named port.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema, garde::Validate)]
pub struct NamedPort {
    /// The key.
    #[garde(length(min = 1))]
    pub name: String,
    /// The number.
    #[garde(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Service tiers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Tier {
    /// The best.
    Gold,
    /// Middle.
    Silver,
    /// Cheapest.
    Bronze,
}

/// A port by number or by name.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PortRef {
    /// By number.
    Number(i32),
    /// By name.
    Name(String),
}

fn at_most(max: i32) -> impl FnOnce(&i32, &()) -> garde::Result {
    move |min, _| {
        if *min <= max {
            Ok(())
        } else {
            Err(garde::Error::new("minReplicas must not exceed maxReplicas"))
        }
    }
}

fn port_fits_tier(tier: &Tier) -> impl FnOnce(&i32, &()) -> garde::Result + '_ {
    move |port, _| {
        if *port == 443 && *tier == Tier::Bronze {
            Err(garde::Error::new("port 443 needs tier Gold or Silver"))
        } else {
            Ok(())
        }
    }
}

fn zones_fit_tier(tier: &Tier) -> impl FnOnce(&Vec<String>, &()) -> garde::Result + '_ {
    move |zones, _| {
        if *tier == Tier::Bronze && zones.len() > 2 {
            Err(garde::Error::new("Bronze widgets run in at most 2 zones"))
        } else {
            Ok(())
        }
    }
}

fn enough_memory(memory_mib: i64) -> impl FnOnce(&i64, &()) -> garde::Result {
    move |cpu_millis, _| {
        if memory_mib * 1000 >= cpu_millis * 128 {
            Ok(())
        } else {
            Err(garde::Error::new("at least 128 MiB of memory per CPU"))
        }
    }
}

fn is_redirect(status: &Option<u16>, _: &()) -> garde::Result {
    match status {
        None | Some(301 | 302 | 307 | 308) => Ok(()),
        Some(other) => Err(garde::Error::new(format!("{other} is no redirect status"))),
    }
}

fn unique_names(ports: &[NamedPort], _: &()) -> garde::Result {
    unique(ports.iter().map(|p| p.name.as_str()))
}

fn unique_zones(zones: &[String], _: &()) -> garde::Result {
    unique(zones.iter().map(String::as_str))
}

fn unique<'a>(values: impl Iterator<Item = &'a str>) -> garde::Result {
    let mut seen = std::collections::HashSet::new();
    for value in values {
        if !seen.insert(value) {
            return Err(garde::Error::new(format!("{value} appears twice")));
        }
    }
    Ok(())
}
