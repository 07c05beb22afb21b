//! Criterion micro-benchmarks of the work queue and the store.
//!
//! ```text
//! cargo bench --bench core
//! ```

use std::{sync::Arc, time::Duration};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
mod common;

use common::keys;
use kube_reconcile::{
    ObjectKey,
    queue::WorkQueue,
    store::{Store, Writer},
};

fn pods(n: usize) -> Vec<Arc<Pod>> {
    (0..n)
        .map(|i| {
            let pod = serde_json::json!({
                "metadata": {"namespace": format!("namespace-{}", i % 50), "name": format!("pod-{i}"),
                             "labels": {"app": "web"},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "rs", "uid": format!("uid-{}", i % 100), "controller": true}]},
                "spec": {"nodeName": format!("node-{}", i % 20), "containers": [{"name": "app"}]},
            });
            Arc::new(serde_json::from_value(pod).unwrap())
        })
        .collect()
}

fn queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    let keys = keys(1000);
    group.throughput(Throughput::Elements(keys.len() as u64));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("add_get_done/single", |b| {
        let queue = WorkQueue::new("bench");
        b.iter(|| {
            runtime.block_on(async {
                for key in &keys {
                    queue.add(key.clone());
                    let key = queue.get().await.unwrap();
                    queue.done(&key);
                }
            })
        })
    });
    let threads = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("add_get_done/contended_4_workers", |b| {
        b.iter_batched(
            || WorkQueue::new("bench"),
            |queue| {
                threads.block_on(async {
                    let workers: Vec<_> = (0..4)
                        .map(|_| {
                            let queue = queue.clone();
                            tokio::spawn(async move {
                                while let Some(key) = queue.get().await {
                                    queue.done(&key);
                                }
                            })
                        })
                        .collect();
                    for key in &keys {
                        queue.add(key.clone());
                    }
                    queue.shutdown_with_drain().await;
                    for worker in workers {
                        worker.await.unwrap();
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let pods = pods(10_000);
    let node_index = |store: &Store<Pod>| {
        store.add_index("node", |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .into_iter()
                .collect()
        });
    };
    group.throughput(Throughput::Elements(pods.len() as u64));
    group.bench_function("insert_10k_with_3_indexes", |b| {
        b.iter_batched(
            || {
                let writer = Writer::new();
                node_index(&writer.store());
                writer
            },
            |writer| {
                for pod in &pods {
                    writer.apply(pod.clone());
                }
                writer
            },
            BatchSize::LargeInput,
        )
    });
    let writer = Writer::new();
    let store = writer.store();
    node_index(&store);
    for pod in &pods {
        writer.apply(pod.clone());
    }
    let keys: Vec<_> = pods.iter().map(|p| ObjectKey::of(&**p)).collect();
    group.bench_function("get_10k", |b| {
        b.iter(|| keys.iter().filter(|k| store.get(k).is_some()).count())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("by_index/node_500_of_10k", |b| {
        b.iter(|| store.by_index("node", "node-7").unwrap().len())
    });
    group.bench_function("controlled_by/100_of_10k", |b| {
        b.iter(|| store.controlled_by("uid-42").len())
    });
    group.bench_function("list_namespace/200_of_10k", |b| {
        b.iter(|| store.list_namespace("namespace-3").len())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = queue, store
}
criterion_main!(benches);
