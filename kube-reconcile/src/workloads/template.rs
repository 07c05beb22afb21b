//! Pod templates: the `pod-template-hash` a controller stamps on what it creates from a
//! template, and template equality that ignores that label.
//!
//! ```
//! use k8s_openapi::api::core::v1::PodTemplateSpec;
//! use kube_reconcile::workloads::template::{POD_TEMPLATE_HASH_LABEL, equal_ignoring_hash, hash};
//!
//! let mut template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
//!     "metadata": {"labels": {"app": "web"}},
//!     "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
//! })).unwrap();
//! let first = hash(&template, None);
//! assert_eq!(first, hash(&template, None), "deterministic");
//! assert_ne!(first, hash(&template, Some(1)), "a collision count gives another hash");
//! assert!(first.len() <= 10 && first.bytes().all(|b| b.is_ascii_alphanumeric()));
//!
//! let mut stamped = template.clone();
//! stamped.metadata.as_mut().unwrap().labels.as_mut().unwrap()
//!     .insert(POD_TEMPLATE_HASH_LABEL.into(), first.clone());
//! assert!(equal_ignoring_hash(&template, &stamped));
//! template.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.28".into());
//! assert!(!equal_ignoring_hash(&template, &stamped));
//! ```

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label that tells the pods (and ReplicaSets) of one template apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The characters a hash is spelt with: no vowels (no words) and no look-alikes (`0`,
/// `1`, `3`), so it reads safely in a name.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A short, stable hash of `template` (and `collision_count`, which a controller bumps
/// when the hash names an object that holds a different template), fit for names and
/// label values.
///
/// Stable means: the same template gives the same hash in every process and release of
/// this crate with the same k8s-openapi major version, because it is an FNV-1a over the
/// template's JSON (whose maps are ordered). It is not the value kube-controller-manager
/// computes (Go hashes its own in-memory dump), so a controller taking over Go's
/// ReplicaSets recognises them by template, not by hash.
pub fn hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // A PodTemplateSpec holds only strings, numbers, booleans, maps and lists.
    let bytes = serde_json::to_vec(template).expect("a pod template always serializes");
    let mut state = fnv1a32(FNV_OFFSET, &bytes);
    if let Some(count) = collision_count {
        let mut count_bytes = [0u8; 8];
        count_bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        state = fnv1a32(state, &count_bytes);
    }
    state
        .to_string()
        .bytes()
        .map(|digit| char::from(ALPHABET[usize::from(digit) % ALPHABET.len()]))
        .collect()
}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

fn fnv1a32(mut state: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        state ^= u32::from(*byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// Whether two templates are the same once the [`POD_TEMPLATE_HASH_LABEL`] is taken off
/// both (an empty label map and none count as the same).
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    equal_ignoring_label(a, b, POD_TEMPLATE_HASH_LABEL)
}

/// Whether two templates are the same once the label `key` is taken off both.
pub fn equal_ignoring_label(a: &PodTemplateSpec, b: &PodTemplateSpec, key: &str) -> bool {
    without_label(a, key) == without_label(b, key)
}

fn without_label(template: &PodTemplateSpec, key: &str) -> PodTemplateSpec {
    let mut copy = template.clone();
    let metadata = copy.metadata.get_or_insert_with(Default::default);
    if let Some(labels) = metadata.labels.as_mut() {
        labels.remove(key);
        if labels.is_empty() {
            metadata.labels = None;
        }
    }
    if metadata == &Default::default() {
        copy.metadata = None;
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a32(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(FNV_OFFSET, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn absent_and_empty_labels_compare_equal() {
        let bare = PodTemplateSpec::default();
        let labelled: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {POD_TEMPLATE_HASH_LABEL: "abc"}}
        }))
        .unwrap();
        assert!(equal_ignoring_hash(&bare, &labelled));
    }
}
