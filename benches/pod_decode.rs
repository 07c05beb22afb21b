//! What decoding a pod costs, by wire format and target type: the API server's own JSON
//! and protobuf answers for the same pods, decoded in one process, side by side.
//!
//! ```text
//! cargo bench --bench pod_decode            # 2,000 pods, 15 rounds
//! cargo bench --bench pod_decode -- 500 9   # 500 pods, 9 rounds
//! ```
//!
//! Starts the local control plane, creates the realistic pods of `pod_memory` (two
//! containers with env, ports, probes, resources and mounts, an owner, a Running status,
//! the server's managedFields), and fetches one list of them twice: as JSON and as
//! protobuf (`application/vnd.kubernetes.protobuf`, what kube-controller-manager asks
//! for). Each round then decodes, in turn (JSON always from the body's text, as kube
//! reads responses):
//! - k8s-openapi's `Pod`: the whole list at once (kube's lists and watcher); each
//!   object's text kept and decoded on its own (our informers, so one object that does
//!   not fit cannot fail the list); the same with `metadata.managedFields` cut from the
//!   text first (`informer::decode_without_managed_fields`: our informers' default);
//! - the example controllers' `PodView` projection (its `metadata` skips
//!   `managedFields` itself) the same three ways, and once with a plain `ObjectMeta`
//!   (`managedFields` built, as before the projection skipped them);
//! - protobuf into k8s-pb's `Pod` (prost; the envelope first: the `k8s\0` magic and a
//!   `runtime.Unknown` whose `raw` is the list).
//!
//! It prints nanoseconds per pod (min/median/max over the rounds), each form's ratio of
//! medians to the first, and bytes per pod on the wire. Decoding only: no cache, no
//! network.

#[path = "common/pods.rs"]
mod pods;

use std::time::Instant;

use futures::AsyncReadExt;
use http::header::ACCEPT;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client, core::ObjectList};
use kube_reconcile::{
    informer::decode_without_managed_fields, projection::Projection, testing::ControlPlane,
};
use pods::{
    PodView, create_pods,
    pod_view::{PodSpecView, PodStatusView},
};

/// `PodView` with its `metadata` decoded whole, `managedFields` included.
#[derive(Projection, Clone, Debug)]
#[projection(of = Pod)]
struct PodViewWithManagedFields {
    metadata: ObjectMeta,
    spec: Option<PodSpecView>,
    status: Option<PodStatusView>,
}
use prost::Message;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// The prefix of every protobuf body kube-apiserver sends.
const PROTOBUF_MAGIC: &[u8] = b"k8s\0";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The body of a list of the pods in `namespace`, in the format `accept` asks for.
async fn list_body(client: &Client, namespace: &str, accept: &str) -> anyhow::Result<Vec<u8>> {
    let request = http::Request::get(format!("/api/v1/namespaces/{namespace}/pods"))
        .header(ACCEPT, accept)
        .body(Vec::new())?;
    let mut body = Vec::new();
    client
        .request_stream(request)
        .await?
        .read_to_end(&mut body)
        .await?;
    Ok(body)
}

/// Decodes a protobuf list body into k8s-pb's pods.
fn decode_protobuf(body: &[u8]) -> Vec<k8s_pb::api::core::v1::Pod> {
    let envelope = body
        .strip_prefix(PROTOBUF_MAGIC)
        .expect("a protobuf body starts with the k8s magic");
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope).unwrap();
    let raw = unknown.raw.expect("the envelope carries the list");
    k8s_pb::api::core::v1::PodList::decode(raw.as_slice())
        .unwrap()
        .items
}

/// What every decoded form of a pod has: a spec and a status, once decoded.
trait Whole {
    fn whole(&self) -> bool;
}

macro_rules! whole {
    ($($pod:ty),*) => {$(
        impl Whole for $pod {
            fn whole(&self) -> bool {
                self.spec.is_some() && self.status.is_some()
            }
        }
    )*};
}

whole!(
    Pod,
    PodView,
    PodViewWithManagedFields,
    k8s_pb::api::core::v1::Pod
);

/// One decode: how many of the pods it produced are whole (to check them and keep the
/// work from being optimised away).
type Decode = fn(&[u8]) -> usize;

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).expect("a JSON body is UTF-8")
}

/// The list decoded at once, as kube decodes a list response (from its text).
fn listed<T: DeserializeOwned + Clone + Whole>(body: &[u8]) -> usize {
    let list: ObjectList<T> = serde_json::from_str(text(body)).unwrap();
    list.items.iter().filter(|pod| pod.whole()).count()
}

/// Each item's text kept, then decoded on its own, as our informers decode (so one
/// object that does not fit the type cannot fail the list); `cut` first cuts out
/// `metadata.managedFields`, as informers with the default transform now do.
fn per_object<T: DeserializeOwned + Whole, const CUT: bool>(body: &[u8]) -> usize {
    let list: ObjectList<Box<RawValue>> = serde_json::from_str(text(body)).unwrap();
    let decode = |raw: &RawValue| match CUT {
        true => decode_without_managed_fields::<T>(raw.get()),
        false => serde_json::from_str::<T>(raw.get()),
    };
    list.items
        .iter()
        .filter(|raw| decode(raw).unwrap().whole())
        .count()
}

fn protobuf(body: &[u8]) -> usize {
    decode_protobuf(body)
        .iter()
        .filter(|pod| pod.whole())
        .count()
}

fn decode_forms(json: Vec<u8>, protobuf_body: Vec<u8>) -> Vec<(&'static str, Vec<u8>, Decode)> {
    vec![
        ("Pod, whole list (kube)", json.clone(), listed::<Pod>),
        (
            "Pod, per object (before)",
            json.clone(),
            per_object::<Pod, false>,
        ),
        (
            "Pod, per object, cut (now)",
            json.clone(),
            per_object::<Pod, true>,
        ),
        ("PodView, whole list", json.clone(), listed::<PodView>),
        (
            "PodView, per object",
            json.clone(),
            per_object::<PodView, false>,
        ),
        (
            "PodView, per object, cut",
            json.clone(),
            per_object::<PodView, true>,
        ),
        (
            "PodView keeping managedFields",
            json,
            listed::<PodViewWithManagedFields>,
        ),
        ("protobuf: k8s-pb Pod", protobuf_body, protobuf),
    ]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let count: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(15), |a| a.parse())?;
    let (json, protobuf) = tokio::runtime::Runtime::new()?.block_on(async {
        let cp = ControlPlane::builder().start().await?;
        let client = cp.client().await?;
        let ns = cp.create_namespace(&client, "pod-decode").await?;
        create_pods(&Api::<Pod>::namespaced(client.clone(), &ns), count).await?;
        let json = list_body(&client, &ns, "application/json").await?;
        let protobuf = list_body(&client, &ns, PROTOBUF).await?;
        cp.stop().await;
        anyhow::Ok((json, protobuf))
    })?;

    let forms = decode_forms(json, protobuf);
    let mut nanos: Vec<Vec<f64>> = vec![Vec::new(); forms.len()];
    for _ in 0..rounds {
        for (form, (_, body, decode)) in forms.iter().enumerate() {
            let start = Instant::now();
            let decoded = decode(body);
            let elapsed = start.elapsed();
            assert_eq!(decoded, count, "every pod decoded, spec and status");
            nanos[form].push(elapsed.as_nanos() as f64 / count as f64);
        }
    }
    println!("{count} pods, {rounds} rounds; ns per pod decoded (min / median / max)");
    let baseline = median(&mut nanos[0].clone());
    for ((label, body, _), nanos) in forms.iter().zip(&mut nanos) {
        let mid = median(nanos);
        println!(
            "  {label:<30} {:>7.0} / {mid:>7.0} / {:>7.0} ns   {:.2}x   {:>6.0} B/pod on the wire",
            nanos[0],
            nanos[nanos.len() - 1],
            mid / baseline,
            body.len() as f64 / count as f64,
        );
    }
    Ok(())
}
