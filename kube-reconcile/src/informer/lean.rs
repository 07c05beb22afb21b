//! Decoding an object without its `metadata.managedFields`, which the informer's default
//! transform drops anyway.
//!
//! k8s-openapi decodes each `managedFields` entry's `fieldsV1` into a `serde_json::Value`
//! tree, map by map: on a realistic pod that is a third of the decoding time, all of it
//! thrown away by the transform. Types give serde no way to skip one nested field,
//! so this works on the object's JSON text instead: find the span of
//! `metadata.managedFields` (by decoding the text's structure, never by searching for
//! the name, so an annotation or a spec field of that name is left alone) and decode
//! the text with that member cut out. Finding it reads the object only up to the end
//! of `metadata`.
//!
//! Caveat: an error in the object after `managedFields` is reported at its place in
//! the cut text, so its column is off by the cut's length.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor},
};
use serde_json::value::RawValue;

/// Decodes `json` as `K` as if its `metadata.managedFields` were absent: what an
/// informer with the default transform stores, in about two thirds of the time on
/// objects that carry `managedFields` (every object the API server has written; a
/// realistic pod: 47 µs instead of 68). Objects without them decode as usual.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
///
/// let json = r#"{"metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]},
///                "data": {"managedFields": "a key like any other"}}"#;
/// let cm: ConfigMap = kube_reconcile::informer::decode_without_managed_fields(json).unwrap();
/// assert_eq!(cm.metadata.name.as_deref(), Some("web"));
/// assert!(cm.metadata.managed_fields.is_none());
/// assert_eq!(cm.data.unwrap()["managedFields"], "a key like any other");
/// ```
pub fn decode_without_managed_fields<K: DeserializeOwned>(json: &str) -> serde_json::Result<K> {
    match without_managed_fields(json) {
        Some(lean) => serde_json::from_str(&lean),
        None => serde_json::from_str(json),
    }
}

/// Whether decoding `K` builds `metadata.managedFields`, so that cutting them out of the
/// text first saves work: true unless a probe object decodes without them (a type that
/// skips them itself), or when the probe does not decode as `K` at all (a type with
/// required fields: cutting is then the safe guess).
pub(crate) fn decodes_managed_fields<K: DeserializeOwned + kube::Resource>() -> bool {
    const PROBE: &str = r#"{"metadata": {"managedFields": [{"manager": "probe"}]}}"#;
    serde_json::from_str::<K>(PROBE).map_or(true, |object| object.meta().managed_fields.is_some())
}

/// A top-level key: `metadata` or another (told apart without allocating).
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum TopKey {
    Metadata,
    #[serde(other)]
    Other,
}

/// Reads an object's members up to `metadata` and keeps its span of the text, leaving
/// the rest (usually `spec` and `status`, most of the text) unread.
struct MetadataSpan<'a, 'out>(&'out mut Option<&'a RawValue>);

impl<'a> Visitor<'a> for MetadataSpan<'a, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut members: M) -> Result<(), M::Error> {
        while let Some(key) = members.next_key::<TopKey>()? {
            match key {
                TopKey::Metadata => {
                    *self.0 = Some(members.next_value()?);
                    return Ok(());
                }
                TopKey::Other => {
                    members.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The span of `json`'s top-level `metadata`, if it is an object that has one.
fn metadata_span(json: &str) -> Option<&RawValue> {
    let mut span = None;
    // Returning before the object's end makes serde_json report the members left
    // unread as an error, which is expected: the span is already out.
    let _ = serde_json::Deserializer::from_str(json).deserialize_map(MetadataSpan(&mut span));
    span
}

/// An object's `metadata`: only `managedFields`, as a span of the text.
#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, rename = "managedFields")]
    managed_fields: Option<&'a RawValue>,
}

/// `json` with the `managedFields` member of its `metadata` cut out, or `None` if it
/// has none (or is not an object: decoding it then says why).
pub(crate) fn without_managed_fields(json: &str) -> Option<String> {
    let metadata: Metadata<'_> = serde_json::from_str(metadata_span(json)?.get()).ok()?;
    let value = metadata.managed_fields?.get();
    // `value` borrows from `json`: its place there is the difference of the addresses.
    let start = (value.as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
    let end = start + value.len();
    json.get(start..end)?;
    // The key is the last string before the value (only `:` and whitespace between).
    let key = json[..start]
        .rfind('"')
        .and_then(|close| json[..close].rfind('"'))?;
    let before = json[..key].trim_end();
    let cut = if before.ends_with(',') {
        // A member after others: cut from the comma before it.
        before.len() - 1..end
    } else {
        // The first member: cut it and the comma after it, if another member follows.
        let after = &json[end..];
        let rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(_) => key..end + (after.len() - rest.len()) + 1,
            None => key..end,
        }
    };
    let mut lean = String::with_capacity(json.len() - cut.len());
    lean.push_str(&json[..cut.start]);
    lean.push_str(&json[cut.end..]);
    Some(lean)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use k8s_openapi::{
        api::{apps::v1::Deployment, core::v1::Pod},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;

    fn lean(json: &str) -> serde_json::Value {
        let cut = without_managed_fields(json).expect("managedFields found");
        serde_json::from_str(&cut).expect("still JSON")
    }

    fn expected(json: &str) -> serde_json::Value {
        let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
        value["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        value
    }

    #[test]
    fn the_member_is_cut_wherever_it_stands() {
        let mf = r#"[{"manager":"k","fieldsV1":{"f:metadata":{"f:labels":{".":{}}}}}]"#;
        for json in [
            format!(r#"{{"metadata":{{"name":"a","managedFields":{mf},"uid":"u"}}}}"#),
            format!(r#"{{"metadata":{{"name":"a","managedFields":{mf}}},"spec":{{}}}}"#),
            format!(r#"{{"metadata":{{"managedFields":{mf},"name":"a"}}}}"#),
            format!(r#"{{"metadata":{{"managedFields":{mf}}}}}"#),
            format!("{{ \"metadata\" : {{ \"name\" : \"a\" ,\n \"managedFields\" : {mf} \n}} }}"),
            format!("{{\"metadata\": {{\"managedFields\" :\t{mf} ,  \"name\": \"a\"}}}}"),
        ] {
            assert_eq!(lean(&json), expected(&json), "{json}");
        }
    }

    #[test]
    fn only_metadata_managed_fields_are_cut() {
        // An annotation, a spec field and a string holding the name stay.
        let json = r#"{"spec":{"managedFields":[1]},
            "metadata":{"annotations":{"managedFields":"x","y":"\"managedFields\":[]"},
                        "managedFields":[{"manager":"k"}]}}"#;
        let cut = lean(json);
        assert_eq!(cut, expected(json));
        assert_eq!(cut["spec"]["managedFields"], serde_json::json!([1]));
        assert_eq!(cut["metadata"]["annotations"]["managedFields"], "x");
    }

    /// A type whose `metadata` skips `managedFields` while decoding.
    #[derive(Clone, Debug, Deserialize)]
    struct SkipsThem {
        #[serde(deserialize_with = "crate::projection::metadata_without_managed_fields")]
        metadata: ObjectMeta,
    }

    impl kube::Resource for SkipsThem {
        type DynamicType = ();
        type Scope = k8s_openapi::NamespaceResourceScope;

        fn kind(_: &()) -> Cow<'_, str> {
            "Pod".into()
        }
        fn group(_: &()) -> Cow<'_, str> {
            "".into()
        }
        fn version(_: &()) -> Cow<'_, str> {
            "v1".into()
        }
        fn plural(_: &()) -> Cow<'_, str> {
            "pods".into()
        }
        fn meta(&self) -> &ObjectMeta {
            &self.metadata
        }
        fn meta_mut(&mut self) -> &mut ObjectMeta {
            &mut self.metadata
        }
    }

    #[test]
    fn only_types_that_build_them_are_cut_for() {
        assert!(decodes_managed_fields::<Pod>());
        assert!(decodes_managed_fields::<Deployment>());
        assert!(!decodes_managed_fields::<SkipsThem>());
    }

    #[test]
    fn objects_without_them_are_left_alone() {
        assert_eq!(without_managed_fields(r#"{"metadata":{"name":"a"}}"#), None);
        assert_eq!(without_managed_fields(r#"{"data":{}}"#), None);
        assert_eq!(without_managed_fields(r#"[1, 2]"#), None);
        assert_eq!(without_managed_fields("not json"), None);
    }
}
