//! Which EndpointSlices to create, update and delete for a Service, packed as
//! kube-controller-manager packs them: keep endpoints where they are, refresh what
//! changed, fill the slices being updated (fullest first), then fill an unchanged slice
//! that has just enough room, and only then create; a slice left empty is deleted, a
//! would-be create reuses the name of a slice that would be deleted, and one
//! placeholder slice stays when nothing matches.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
};

use k8s_openapi::{
    api::{
        core::v1::Service,
        discovery::v1::{Endpoint, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::ResourceExt;
use kube_reconcile::ownership::controller_reference;

use super::endpoints::{endpoint_changed, endpoint_key, port_key, slice_labels};

/// What one sync writes.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

/// The endpoints wanted for one port set.
pub struct Desired {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// What packing needs to know besides the endpoints.
pub struct Packer<'a> {
    pub service: &'a Service,
    pub managed_by: &'a str,
    pub max_per_slice: usize,
}

impl Packer<'_> {
    /// The plan for one address type: `existing` are the Service's slices of that type
    /// (managed by us), `desired` the endpoints by port set.
    pub fn plan(
        &self,
        address_type: &str,
        existing: &[&EndpointSlice],
        desired: BTreeMap<String, Desired>,
    ) -> Plan {
        let mut plan = Plan::default();
        let service_uid = self.service.uid();
        let mut existing_by_ports: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
        for &slice in existing {
            let owned = slice.owner_references().iter().any(|o| {
                Some(&o.uid) == service_uid.as_ref() && o.kind == "Service" && o.api_version == "v1"
            });
            if owned {
                existing_by_ports
                    .entry(port_key(slice.ports.as_deref().unwrap_or_default()))
                    .or_default()
                    .push(slice);
            } else {
                plan.delete.push(slice.clone());
            }
        }
        for (key, wanted) in desired {
            let slices = existing_by_ports.remove(&key).unwrap_or_default();
            let part = self.by_port_set(address_type, &slices, wanted);
            plan.create.extend(part.create);
            plan.update.extend(part.update);
            plan.delete.extend(part.delete);
        }
        // What is left has a port set no pod has any more.
        let unwanted = existing_by_ports.into_values().flatten();
        plan.delete.extend(unwanted.cloned());
        if existing.len() == plan.delete.len() && plan.create.is_empty() {
            let placeholder = self.new_slice(address_type, Vec::new());
            let keep = plan.delete.len() == 1 && is_placeholder_like(&plan.delete[0], &placeholder);
            if keep {
                plan.delete.clear();
            } else {
                plan.create.push(placeholder);
            }
        }
        reuse_names(&mut plan, &service_uid);
        plan
    }

    fn by_port_set(
        &self,
        address_type: &str,
        existing: &[&EndpointSlice],
        wanted: Desired,
    ) -> Plan {
        let mut remaining: HashMap<String, Endpoint> = wanted
            .endpoints
            .into_iter()
            .map(|e| (endpoint_key(&e), e))
            .collect();
        // Unchanged slices stay borrowed; only the ones written are copied.
        let mut by_name: BTreeMap<String, Cow<'_, EndpointSlice>> = BTreeMap::new();
        let (mut unchanged, mut to_update, mut to_delete) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for &slice in existing {
            let name = slice.name_any();
            let mut kept = Vec::new();
            let mut endpoint_updated = false;
            for endpoint in endpoints_of(slice) {
                if let Some(got) = remaining.remove(&endpoint_key(endpoint)) {
                    endpoint_updated |= endpoint_changed(&got, endpoint);
                    kept.push(got);
                }
            }
            let (labels, labels_changed) =
                slice_labels(slice.labels(), self.service, self.managed_by);
            if endpoint_updated || kept.len() != endpoints_of(slice).len() {
                if kept.is_empty() {
                    to_delete.insert(name.clone());
                    by_name.insert(name, Cow::Borrowed(slice));
                } else {
                    let mut copy = with_endpoints(slice, kept);
                    copy.metadata.labels = Some(labels);
                    to_update.insert(name.clone());
                    by_name.insert(name, Cow::Owned(copy));
                }
            } else if labels_changed {
                let mut copy = slice.clone();
                copy.metadata.labels = Some(labels);
                to_update.insert(name.clone());
                by_name.insert(name, Cow::Owned(copy));
            } else {
                unchanged.insert(name.clone());
                by_name.insert(name, Cow::Borrowed(slice));
            }
        }
        // Kubernetes pops "any" endpoint from a Go map; taking them sorted by key makes
        // ours deterministic.
        let mut left: Vec<Endpoint> = {
            let mut keyed: Vec<(String, Endpoint)> = remaining.into_iter().collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0));
            keyed.into_iter().map(|(_, e)| e).collect()
        };
        if !left.is_empty() && !to_update.is_empty() {
            let mut fullest_first: Vec<String> = to_update.iter().cloned().collect();
            fullest_first.sort_by_key(|n| std::cmp::Reverse(endpoints_of(&by_name[n]).len()));
            for name in fullest_first {
                let slice = by_name.get_mut(&name).expect("listed above").to_mut();
                let endpoints = slice.endpoints.get_or_insert_with(Vec::new);
                while !left.is_empty() && endpoints.len() < self.max_per_slice {
                    endpoints.push(left.pop().expect("not empty"));
                }
            }
        }
        let mut create = Vec::new();
        while !left.is_empty() {
            let fill = (left.len() < self.max_per_slice)
                .then(|| self.slice_to_fill(&unchanged, &by_name, left.len()))
                .flatten();
            let mut slice = match &fill {
                Some(name) => by_name[name].clone().into_owned(),
                None => self.new_slice(address_type, wanted.ports.clone()),
            };
            let endpoints = slice.endpoints.get_or_insert_with(Vec::new);
            while !left.is_empty() && endpoints.len() < self.max_per_slice {
                endpoints.push(left.pop().expect("not empty"));
            }
            match fill {
                Some(name) => {
                    unchanged.remove(&name);
                    to_update.insert(name.clone());
                    by_name.insert(name, Cow::Owned(slice));
                }
                None => create.push(slice),
            }
        }
        let mut take = |name: &String| by_name.remove(name).expect("listed").into_owned();
        Plan {
            create,
            update: to_update.iter().map(&mut take).collect(),
            delete: to_delete.iter().map(&mut take).collect(),
        }
    }

    /// The unchanged slice whose free room is closest to (but not below) `count`.
    fn slice_to_fill(
        &self,
        unchanged: &BTreeSet<String>,
        by_name: &BTreeMap<String, Cow<'_, EndpointSlice>>,
        count: usize,
    ) -> Option<String> {
        let mut best: Option<(usize, &String)> = None;
        for name in unchanged {
            let used = endpoints_of(&by_name[name]).len();
            let Some(room) = self.max_per_slice.checked_sub(count + used) else {
                continue;
            };
            if room < best.map_or(self.max_per_slice, |(r, _)| r) {
                best = Some((room, name));
                if room == 0 {
                    break;
                }
            }
        }
        best.map(|(_, name)| name.clone())
    }

    /// A new slice (named by the API server from `<service>-`).
    pub fn new_slice(&self, address_type: &str, ports: Vec<EndpointPort>) -> EndpointSlice {
        let (labels, _) = slice_labels(&BTreeMap::new(), self.service, self.managed_by);
        EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", self.service.name_any())),
                namespace: self.service.namespace(),
                owner_references: Some(vec![controller_reference(self.service)]),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            address_type: address_type.into(),
            endpoints: Some(Vec::new()),
            ports: Some(ports),
        }
    }
}

/// A copy of `slice` with `endpoints` instead of its own (which are not copied).
fn with_endpoints(slice: &EndpointSlice, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        metadata: slice.metadata.clone(),
        address_type: slice.address_type.clone(),
        endpoints: Some(endpoints),
        ports: slice.ports.clone(),
    }
}

/// A slice's endpoints (none when the list is absent).
pub fn endpoints_of(slice: &EndpointSlice) -> &[Endpoint] {
    slice.endpoints.as_deref().unwrap_or_default()
}

/// Whether an existing slice is already the placeholder: same namespace and labels, no
/// endpoints and no ports.
fn is_placeholder_like(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    slice.namespace() == placeholder.namespace()
        && slice.labels() == placeholder.labels()
        && endpoints_of(slice).is_empty()
        && slice.ports.as_deref().unwrap_or_default().is_empty()
        && slice.address_type == placeholder.address_type
}

/// Turns creates into updates of slices that would be deleted (same address type, owned
/// by the Service): one write instead of two.
fn reuse_names(plan: &mut Plan, service_uid: &Option<String>) {
    let mut i = 0;
    while i < plan.delete.len() && !plan.create.is_empty() {
        let deleted = &plan.delete[i];
        let owned = deleted
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == service_uid.as_ref() && o.kind == "Service");
        let last = plan.create.last().expect("not empty");
        if deleted.address_type == last.address_type && owned {
            let mut slice = plan.create.pop().expect("not empty");
            let deleted = plan.delete.remove(i);
            slice.metadata.name = deleted.metadata.name.clone();
            slice.metadata.generate_name = None;
            slice.metadata.resource_version = deleted.metadata.resource_version.clone();
            slice.metadata.uid = deleted.metadata.uid.clone();
            plan.update.push(slice);
        } else {
            i += 1;
        }
    }
}
