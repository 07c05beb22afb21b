//! The webhooks' pure part: an AdmissionReview or ConversionReview in, the review with
//! its response out.

use std::sync::Arc;

use kube::core::{
    DynamicObject, Resource,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
    conversion::{ConversionRequest, ConversionResponse, ConversionReview},
    object::HasSpec,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::crd::Conversion;

/// Answers one review body with the response body.
pub(super) type Handler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What a validating hook says about an object: `Err` refuses it with that message.
pub type Verdict = Result<(), String>;

fn answer(response: AdmissionResponse) -> Vec<u8> {
    serde_json::to_vec(&response.into_review()).expect("a review serializes")
}

/// Reads an AdmissionReview, or answers with why it could not.
fn admission_request(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Vec<u8>> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).map_err(|e| {
        answer(AdmissionResponse::invalid(format!(
            "not an AdmissionReview: {e}"
        )))
    })?;
    review
        .try_into()
        .map_err(|e| answer(AdmissionResponse::invalid(format!("{e}"))))
}

/// The request's object as `K`, if it has one.
fn typed<K: DeserializeOwned>(object: Option<&DynamicObject>) -> Result<Option<K>, String> {
    let Some(object) = object else {
        return Ok(None);
    };
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("the object does not decode: {e}"))
}

/// Answers a review: `decide` judges creates and updates, anything else (deletes,
/// connects) is allowed, and a body that is not a review is refused.
fn on_create_or_update(
    body: &[u8],
    decide: impl FnOnce(&AdmissionRequest<DynamicObject>, AdmissionResponse) -> AdmissionResponse,
) -> Vec<u8> {
    let request = match admission_request(body) {
        Ok(request) => request,
        Err(answered) => return answered,
    };
    let response = AdmissionResponse::from(&request);
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return answer(response);
    }
    answer(decide(&request, response))
}

/// Validation of `K` on create and update: the spec's garde rules, then `check(new,
/// old)`. Anything else (deletes, connects) is allowed.
pub(super) fn validating<K, F>(check: F) -> Handler
where
    K: Resource + HasSpec + DeserializeOwned + Send + Sync + 'static,
    K::Spec: garde::Validate<Context = ()>,
    F: Fn(&K, Option<&K>) -> Verdict + Send + Sync + 'static,
{
    Arc::new(move |body| {
        on_create_or_update(body, |request, response| {
            let verdict = (|| {
                let object: K =
                    typed(request.object.as_ref())?.ok_or("the request has no object")?;
                let old: Option<K> = typed(request.old_object.as_ref())?;
                garde::Validate::validate(object.spec()).map_err(|report| report.to_string())?;
                check(&object, old.as_ref())
            })();
            match verdict {
                Ok(()) => response,
                Err(reason) => response.deny(reason),
            }
        })
    })
}

/// Defaulting of `K` on create and update: the object decoded as `K` (serde's defaults
/// fill what is missing), `hook` run on it, and the differences in its spec sent back
/// as a JSON patch.
pub(super) fn defaulting<K, F>(hook: F) -> Handler
where
    K: Resource + HasSpec + DeserializeOwned + Send + Sync + 'static,
    K::Spec: Serialize,
    F: Fn(&mut K) + Send + Sync + 'static,
{
    Arc::new(move |body| {
        on_create_or_update(body, |request, response| {
            let object = match typed::<K>(request.object.as_ref()) {
                Ok(Some(object)) => object,
                Ok(None) => return response,
                Err(reason) => return response.deny(reason),
            };
            let before = request
                .object
                .as_ref()
                .and_then(|o| o.data.get("spec").cloned())
                .unwrap_or(Value::Null);
            let mut defaulted = object;
            hook(&mut defaulted);
            let mut after = serde_json::to_value(defaulted.spec()).expect("a spec serializes");
            drop_new_nulls(&before, &mut after);
            let patch = json_patch::diff(
                &serde_json::json!({ "spec": before }),
                &serde_json::json!({ "spec": after }),
            );
            if patch.0.is_empty() {
                return response;
            }
            match response.clone().with_patch(patch) {
                Ok(patched) => patched,
                Err(e) => response.deny(format!("the defaulting patch does not serialize: {e}")),
            }
        })
    })
}

/// Removes, from `after`, object entries that are `null` and absent from `before`:
/// Rust's `None` serialized as `null` is not a default worth patching in.
fn drop_new_nulls(before: &Value, after: &mut Value) {
    if let Value::Object(fields) = after {
        fields.retain(|key, value| !value.is_null() || before.get(key).is_some());
        for (key, value) in fields.iter_mut() {
            drop_new_nulls(before.get(key).unwrap_or(&Value::Null), value);
        }
    }
}

/// Conversion between the versions `conversion` knows.
pub(super) fn converting(conversion: Conversion) -> Handler {
    Arc::new(move |body| {
        let answer = |response: ConversionResponse| {
            serde_json::to_vec(&response.into_review()).expect("a review serializes")
        };
        let invalid = |message: String| {
            answer(ConversionResponse::invalid(kube::core::Status::failure(
                &message,
                "BadRequest",
            )))
        };
        let review: ConversionReview = match serde_json::from_slice(body) {
            Ok(review) => review,
            Err(e) => return invalid(format!("not a ConversionReview: {e}")),
        };
        let request = match ConversionRequest::from_review(review) {
            Ok(request) => request,
            Err(e) => return invalid(format!("{e}")),
        };
        let desired = request.desired_api_version.clone();
        let converted: Result<Vec<Value>, String> = request
            .objects
            .iter()
            .map(|o| conversion.convert(o, &desired).map_err(|e| e.to_string()))
            .collect();
        let response = ConversionResponse::for_request(request);
        answer(match converted {
            Ok(objects) => response.success(objects),
            Err(message) => {
                response.failure(kube::core::Status::failure(&message, "ConversionFailed"))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use std::borrow::Cow;

    use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};

    /// A custom resource written out by hand (the derive names this crate by its
    /// external path, which unit tests inside it cannot use).
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    struct Gadget {
        metadata: ObjectMeta,
        spec: GadgetSpec,
    }

    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
    struct GadgetSpec {
        #[garde(length(min = 1))]
        name: String,
        #[garde(skip)]
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<i32>,
        #[garde(skip)]
        color: Option<String>,
    }

    impl Resource for Gadget {
        type DynamicType = ();
        type Scope = NamespaceResourceScope;
        fn kind(_: &()) -> Cow<'_, str> {
            "Gadget".into()
        }
        fn group(_: &()) -> Cow<'_, str> {
            "example.com".into()
        }
        fn version(_: &()) -> Cow<'_, str> {
            "v1".into()
        }
        fn plural(_: &()) -> Cow<'_, str> {
            "gadgets".into()
        }
        fn meta(&self) -> &ObjectMeta {
            &self.metadata
        }
        fn meta_mut(&mut self) -> &mut ObjectMeta {
            &mut self.metadata
        }
    }

    impl HasSpec for Gadget {
        type Spec = GadgetSpec;
        fn spec(&self) -> &GadgetSpec {
            &self.spec
        }
        fn spec_mut(&mut self) -> &mut GadgetSpec {
            &mut self.spec
        }
    }

    fn review(spec: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1", "operation": "CREATE", "name": "g", "namespace": "default",
                "kind": {"group": "example.com", "version": "v1", "kind": "Gadget"},
                "resource": {"group": "example.com", "version": "v1", "resource": "gadgets"},
                "userInfo": {"username": "someone"},
                "object": {"apiVersion": "example.com/v1", "kind": "Gadget",
                           "metadata": {"name": "g", "namespace": "default"}, "spec": spec},
            }
        }))
        .unwrap()
    }

    fn response(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["response"].clone()
    }

    #[test]
    fn validation_runs_garde_then_the_check() {
        let handler = validating::<Gadget, _>(|g, _| match g.spec.size {
            Some(size) if size > 10 => Err("too big".into()),
            _ => Ok(()),
        });
        let allowed = response(&handler(&review(json!({"name": "a", "size": 3}))));
        assert_eq!(
            (allowed["allowed"].clone(), allowed["uid"].clone()),
            (json!(true), json!("u-1"))
        );
        let big = response(&handler(&review(json!({"name": "a", "size": 30}))));
        assert_eq!(big["allowed"], false);
        assert_eq!(big["status"]["message"], "too big");
        let unnamed = response(&handler(&review(json!({"name": ""}))));
        assert_eq!(unnamed["allowed"], false, "garde's rule: {unnamed}");
        let garbage = response(&handler(b"not json"));
        assert_eq!(garbage["allowed"], false);
    }

    #[test]
    fn defaulting_patches_only_what_the_hook_set() {
        let handler = defaulting::<Gadget, _>(|g| {
            g.spec.size.get_or_insert(1);
        });
        let answered = response(&handler(&review(json!({"name": "a"}))));
        assert_eq!(answered["allowed"], true);
        // kube writes the patch's bytes as a JSON array, which the API server reads.
        let bytes: Vec<u8> = serde_json::from_value(answered["patch"].clone()).expect("a patch");
        let patch: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/size", "value": 1}]),
            "no nulls for color"
        );
        let untouched = response(&handler(&review(json!({"name": "a", "size": 5}))));
        assert!(
            untouched.get("patch").is_none_or(|p| p.is_null()),
            "{untouched}"
        );
    }
}
