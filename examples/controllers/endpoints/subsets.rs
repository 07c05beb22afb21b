//! An Endpoints object's subsets as kube-controller-manager writes them: one subset per
//! group of addresses that share the same ports and readiness, sorted, and truncated to
//! [`MAX_CAPACITY`] addresses (ready ones first) when a Service has more.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

/// The most addresses an Endpoints object carries.
pub const MAX_CAPACITY: usize = 1000;

/// Addresses by (IP, pod UID), each with whether it is ready.
type Readiness = BTreeMap<(String, String), (EndpointAddress, bool)>;

/// One address of one pod for one port (or none): what [`repack`] groups.
pub struct Entry {
    pub address: EndpointAddress,
    pub port: Option<EndpointPort>,
    pub ready: bool,
}

/// Groups entries into subsets: ports whose addresses (with their readiness) are the
/// same share one subset. An address seen not ready for a port stays not ready for it.
pub fn repack(entries: Vec<Entry>) -> Vec<EndpointSubset> {
    // For each port, each address's readiness (not ready wins, as in the reference).
    let mut by_port: BTreeMap<String, (Option<EndpointPort>, Readiness)> = BTreeMap::new();
    for entry in entries {
        let port_key = entry.port.as_ref().map_or_else(String::new, |p| {
            serde_json::to_string(p).expect("ports serialize")
        });
        let slot = by_port
            .entry(port_key)
            .or_insert_with(|| (entry.port.clone(), BTreeMap::new()));
        let key = address_key(&entry.address);
        let ready = slot
            .1
            .get(&key)
            .map_or(entry.ready, |(_, was)| *was && entry.ready);
        slot.1.insert(key, (entry.address, ready));
    }
    // Ports whose address sets (with readiness) are equal share one subset.
    let mut by_addresses: BTreeMap<String, (Vec<EndpointPort>, Readiness)> = BTreeMap::new();
    for (port, addresses) in by_port.into_values() {
        let set_key: Vec<String> = addresses
            .iter()
            .map(|((ip, uid), (_, r))| format!("{ip}|{uid}:{r}"))
            .collect();
        let slot = by_addresses
            .entry(set_key.join(","))
            .or_insert_with(|| (Vec::new(), addresses.clone()));
        slot.0.extend(port);
    }
    let mut subsets: Vec<EndpointSubset> = by_addresses
        .into_values()
        .map(|(mut ports, addresses)| {
            ports.sort_by_key(|p| (p.name.clone(), p.port, p.protocol.clone()));
            let (ready, not_ready): (Vec<_>, Vec<_>) =
                addresses.into_values().partition(|(_, r)| *r);
            EndpointSubset {
                addresses: non_empty(ready.into_iter().map(|(a, _)| a).collect()),
                not_ready_addresses: non_empty(not_ready.into_iter().map(|(a, _)| a).collect()),
                ports: non_empty(ports),
            }
        })
        .collect();
    subsets.sort_by_key(|s| serde_json::to_string(s).expect("subsets serialize"));
    subsets
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// Addresses sort by IP (as text), then by the pod's UID.
fn address_key(address: &EndpointAddress) -> (String, String) {
    let uid = address
        .target_ref
        .as_ref()
        .and_then(|t| t.uid.clone())
        .unwrap_or_default();
    (address.ip.clone(), uid)
}

/// Truncates to [`MAX_CAPACITY`] addresses: not-ready addresses go first; if the ready
/// ones alone are too many, only ready ones are kept. Each subset keeps a share in
/// proportion to its size (rounded up, while room remains), its first addresses in
/// order. Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |s: &EndpointSubset, ready: bool| {
        if ready {
            &s.addresses
        } else {
            &s.not_ready_addresses
        }
        .as_ref()
        .map_or(0, Vec::len)
    };
    let ready: usize = subsets.iter().map(|s| count(s, true)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(s, false)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut room = max;
    for subset in subsets.iter_mut() {
        let in_subset = count(subset, truncate_ready);
        let share = ((in_subset as f64 / total as f64) * max as f64).ceil() as usize;
        let keep = share.min(room);
        let list = if truncate_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        if let Some(addresses) = list.as_mut() {
            addresses.truncate(keep);
            room -= addresses.len();
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    fn port(name: &str, number: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port: number,
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_with_the_same_ports_share_a_subset() {
        let entry = |ip: &str, p: &EndpointPort, ready| Entry {
            address: address(ip),
            port: Some(p.clone()),
            ready,
        };
        let (http, metrics) = (port("http", 8080), port("metrics", 9090));
        let both = vec![
            entry("10.0.0.1", &http, true),
            entry("10.0.0.1", &metrics, true),
            entry("10.0.0.2", &http, false),
            entry("10.0.0.2", &metrics, false),
        ];
        let subsets = repack(both);
        assert_eq!(subsets.len(), 1, "{subsets:#?}");
        assert_eq!(subsets[0].ports.as_ref().unwrap().len(), 2);
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
        assert_eq!(
            subsets[0].not_ready_addresses.as_ref().unwrap()[0].ip,
            "10.0.0.2"
        );

        // One more address on one port only: the ports no longer share their addresses.
        let mut split = vec![
            entry("10.0.0.1", &http, true),
            entry("10.0.0.1", &metrics, true),
        ];
        split.push(entry("10.0.0.3", &http, true));
        let subsets = repack(split);
        assert_eq!(subsets.len(), 2, "{subsets:#?}");
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let many = |n: usize, prefix: &str| -> Vec<EndpointAddress> {
            (0..n)
                .map(|i| address(&format!("{prefix}.{}.{}", i / 250, i % 250)))
                .collect()
        };
        let mut subsets = vec![EndpointSubset {
            addresses: Some(many(900, "10.0")),
            not_ready_addresses: Some(many(300, "10.1")),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }
}
