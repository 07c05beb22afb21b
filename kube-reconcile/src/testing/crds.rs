//! Installing CustomResourceDefinitions and waiting until they are served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams},
    core::GroupVersionKind,
};

use super::Error;

/// Server-side applies each CRD, then waits until it is Established with its names
/// accepted and a list of its storage version answers.
pub(crate) async fn install(
    client: &Client,
    crds: &[CustomResourceDefinition],
    timeout: Duration,
) -> Result<(), Error> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let params = PatchParams::apply("kube-reconcile-testing").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(Error::Api)?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        while !is_served(client, &api, &name).await {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("CRD {name} to be established and served"),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn is_served(client: &Client, api: &Api<CustomResourceDefinition>, name: &str) -> bool {
    let Ok(crd) = api.get(name).await else {
        return false;
    };
    let conditions = crd.status.as_ref().and_then(|s| s.conditions.as_ref());
    let holds = |kind: &str| {
        conditions.is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    if !(holds("Established") && holds("NamesAccepted")) {
        return false;
    }
    let Some(version) = crd.spec.versions.iter().find(|v| v.storage) else {
        return false;
    };
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    let objects: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    objects.list(&ListParams::default().limit(1)).await.is_ok()
}
