//! Admission and conversion webhooks served by kube-reconcile and called by the real
//! kube-apiserver (URL client config to 127.0.0.1, CA from the harness): a rule only
//! the webhook can check refuses with its message, a default is filled in, and an
//! object written as v1 is read as v2 and round-trips.

mod support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
};
use kube_reconcile::{
    crd::{Conversion, CustomResourceExt, merge_versions},
    testing::{ControlPlane, LocalServingCertificate},
    webhook::{WebhookEndpoint, Webhooks},
};

mod v1 {
    /// A window of time, v1: two numbers.
    #[derive(
        kube_reconcile::crd::Crd,
        Clone,
        Debug,
        serde::Serialize,
        serde::Deserialize,
        garde::Validate,
    )]
    #[crd(
        group = "hooks.kube-reconcile.dev",
        version = "v1",
        kind = "Window",
        namespaced
    )]
    pub struct WindowSpec {
        /// Where it starts.
        #[garde(range(min = 0))]
        pub start: i32,
        /// Where it ends.
        #[garde(skip)]
        pub end: i32,
        /// Who owns it; defaulted by the webhook.
        #[garde(skip)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<String>,
    }
}

mod v2 {
    /// v2 groups the bounds.
    #[derive(
        kube_reconcile::crd::Crd,
        Clone,
        Debug,
        serde::Serialize,
        serde::Deserialize,
        garde::Validate,
    )]
    #[crd(
        group = "hooks.kube-reconcile.dev",
        version = "v2",
        kind = "Window",
        namespaced
    )]
    pub struct WindowSpec {
        /// The bounds.
        #[garde(dive)]
        pub span: Span,
        /// Who owns it.
        #[garde(skip)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<String>,
    }

    /// Two bounds.
    #[derive(
        kube_reconcile::crd::CrdSchema,
        Clone,
        Debug,
        serde::Serialize,
        serde::Deserialize,
        garde::Validate,
    )]
    pub struct Span {
        /// Start.
        #[garde(skip)]
        pub from: i32,
        /// End.
        #[garde(skip)]
        pub to: i32,
    }
}

impl From<v1::Window> for v2::Window {
    fn from(w: v1::Window) -> Self {
        let span = v2::Span {
            from: w.spec.start,
            to: w.spec.end,
        };
        v2::Window {
            metadata: w.metadata,
            spec: v2::WindowSpec {
                span,
                owner: w.spec.owner,
            },
        }
    }
}

impl From<v2::Window> for v1::Window {
    fn from(w: v2::Window) -> Self {
        v1::Window {
            metadata: w.metadata,
            spec: v1::WindowSpec {
                start: w.spec.span.from,
                end: w.spec.span.to,
                owner: w.spec.owner,
            },
        }
    }
}

const REFUSAL: &str = "spec.start must not be after spec.end";

fn window(name: &str, start: i32, end: i32) -> v1::Window {
    let spec = v1::WindowSpec {
        start,
        end,
        owner: None,
    };
    v1::Window::new(name, spec)
}

#[tokio::test]
async fn webhooks_validate_default_and_convert_for_the_real_api_server() {
    let certificate = LocalServingCertificate::generate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let endpoint = WebhookEndpoint::url(base, certificate.ca_pem.as_bytes());
    let mut crd = merge_versions([v1::Window::crd(), v2::Window::crd()], "v1").unwrap();
    Webhooks::set_conversion(&mut crd, &endpoint);
    let crd_name = crd.name_any();

    let webhooks = Webhooks::new()
        .validate::<v1::Window>(|window, _old| {
            if window.spec.start > window.spec.end {
                return Err(REFUSAL.to_string());
            }
            Ok(())
        })
        .defaults::<v1::Window>(|window| {
            window.spec.owner.get_or_insert_with(|| "nobody".into());
        })
        .convert(
            &crd_name,
            Conversion::new().between::<v1::Window, v2::Window>(),
        );
    let validating = webhooks.validating_configuration("windows", &endpoint);
    let mutating = webhooks.mutating_configuration("windows", &endpoint);
    let serving = webhooks
        .serve(
            listener,
            certificate.cert_pem.as_bytes(),
            certificate.key_pem.as_bytes(),
        )
        .unwrap();
    let server = tokio::spawn(serving);

    let cp = support::start(ControlPlane::builder().crds([crd])).await;
    let client: Client = cp.client().await.unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &validating)
        .await
        .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mutating)
        .await
        .unwrap();
    let windows = Api::<v1::Window>::namespaced(client.clone(), "default");

    // The API server picks the configurations up within a moment: until it refuses,
    // an accepted object is removed and the attempt repeated.
    let mut attempt = 0;
    let refusal = loop {
        attempt += 1;
        assert!(attempt < 100, "the validating webhook never refused");
        let name = format!("backwards-{attempt}");
        match windows
            .create(&PostParams::default(), &window(&name, 5, 1))
            .await
        {
            Err(kube::Error::Api(status)) => break status,
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => {
                windows
                    .delete(&name, &DeleteParams::default())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(
        refusal.message.contains(REFUSAL),
        "the webhook's message reaches the client: {refusal:?}"
    );

    support::eventually_async("the owner defaulted by the webhook", async || {
        let _ = windows.delete("morning", &DeleteParams::default()).await;
        let Ok(created) = windows
            .create(&PostParams::default(), &window("morning", 1, 5))
            .await
        else {
            return false;
        };
        created.spec.owner.as_deref() == Some("nobody")
    })
    .await;

    // Written as v1, read as v2; changed as v2, read back as v1.
    let as_v2 = Api::<v2::Window>::namespaced(client.clone(), "default");
    let mut read = as_v2.get("morning").await.unwrap();
    assert_eq!((read.spec.span.from, read.spec.span.to), (1, 5));
    assert_eq!(read.spec.owner.as_deref(), Some("nobody"));
    read.spec.span.to = 9;
    as_v2
        .replace("morning", &PostParams::default(), &read)
        .await
        .unwrap();
    let back = windows.get("morning").await.unwrap();
    assert_eq!((back.spec.start, back.spec.end), (1, 9));
    assert_eq!(back.spec.owner.as_deref(), Some("nobody"));
    assert_eq!(back.labels(), read.labels(), "metadata is carried over");

    // A v2 write that breaks the rule is refused too (converted to v1 for the check).
    let mut read = as_v2.get("morning").await.unwrap();
    read.spec.span.from = 20;
    let refused = as_v2
        .replace("morning", &PostParams::default(), &read)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains(REFUSAL), "{refused}");
    server.abort();
}
