//! kube-reconcile's work queue against client-go's, side by side in one run.
//!
//! ```text
//! cargo bench --bench versus_client_go            # 5 alternating rounds of 1,000,000 ops
//! cargo bench --bench versus_client_go -- 3       # 3 rounds
//! ```
//!
//! Builds `benches/go/workqueue-bench` (client-go v0.37.2's rate-limiting queue) with
//! the local Go toolchain, then alternates Go and Rust rounds so both see the same
//! machine load, and prints the median ops/s of each workload and their ratio:
//! - `single`: one thread does add, get, done in turn (1,000 distinct keys);
//! - `batch`: add 1,000 keys, then get and done them all;
//! - `contended`: 4 producers add (10,000 distinct keys) while 4 workers get and done;
//!   ops/s counts adds. Producers are OS threads (goroutines in Go), workers are
//!   tasks on a 2-thread tokio runtime (goroutines on GOMAXPROCS=2 in Go). Mapping the
//!   producers to tokio tasks instead measured slower here (tokio's wake-ups of parked
//!   workers cost more than Go's goroutine hand-off).

use std::{collections::BTreeMap, path::Path, process::Command, time::Instant};

mod common;

use common::keys;
use kube_reconcile::{ObjectKey, queue::WorkQueue};

const OPS: usize = 1_000_000;

fn current_thread() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all().build().unwrap()
}

fn single(keys: &[ObjectKey]) -> f64 {
    let queue = WorkQueue::new("bench");
    current_thread().block_on(async {
        let start = Instant::now();
        for i in 0..OPS {
            queue.add(keys[i % keys.len()].clone());
            let key = queue.get().await.unwrap();
            queue.done(&key);
        }
        OPS as f64 / start.elapsed().as_secs_f64()
    })
}

fn batch(keys: &[ObjectKey]) -> f64 {
    let queue = WorkQueue::new("bench");
    current_thread().block_on(async {
        let start = Instant::now();
        let mut done = 0;
        while done < OPS {
            for key in keys {
                queue.add(key.clone());
            }
            for _ in keys {
                let key = queue.get().await.unwrap();
                queue.done(&key);
            }
            done += keys.len();
        }
        OPS as f64 / start.elapsed().as_secs_f64()
    })
}

fn contended(keys: &[ObjectKey]) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let queue = WorkQueue::new("bench");
    let (producers, workers) = (4, 4);
    let per = OPS / producers;
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let queue = queue.clone();
            runtime.spawn(async move {
                while let Some(key) = queue.get().await {
                    queue.done(&key);
                }
            })
        })
        .collect();
    std::thread::scope(|scope| {
        for p in 0..producers {
            let queue = queue.clone();
            scope.spawn(move || {
                for i in 0..per {
                    queue.add(keys[(p * per + i) % keys.len()].clone());
                }
            });
        }
    });
    runtime.block_on(async {
        queue.shutdown_with_drain().await;
        for task in tasks {
            task.await.unwrap();
        }
    });
    (per * producers) as f64 / start.elapsed().as_secs_f64()
}

fn go_round(binary: &Path) -> BTreeMap<String, f64> {
    let output = Command::new(binary)
        .arg(format!("-ops={OPS}"))
        .output()
        .expect("run the Go work-queue benchmark");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let (name, ops) = l.split_once(' ')?;
            Some((name.to_string(), ops.parse().ok()?))
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = common::count_arg(5);
    let binary = common::go_benchmark("workqueue-bench");

    let (small, large) = (keys(1000), keys(10_000));
    let mut results: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for round in 1..=rounds {
        for (name, ops) in go_round(&binary) {
            let name: &str = match name.as_str() {
                "single" => "single",
                "batch" => "batch",
                _ => "contended",
            };
            results.entry((name, "client-go")).or_default().push(ops);
        }
        results
            .entry(("single", "kube-reconcile"))
            .or_default()
            .push(single(&small));
        results
            .entry(("batch", "kube-reconcile"))
            .or_default()
            .push(batch(&small));
        results
            .entry(("contended", "kube-reconcile"))
            .or_default()
            .push(contended(&large));
        eprintln!("round {round}/{rounds} done");
    }
    println!(
        "workload    client-go ops/s   kube-reconcile ops/s   ratio  ({rounds} rounds, medians)"
    );
    for workload in ["single", "batch", "contended"] {
        let go = median(results[&(workload, "client-go")].clone());
        let ours = median(results[&(workload, "kube-reconcile")].clone());
        println!("{workload:<11} {go:>15.0} {ours:>22.0} {:>7.2}x", ours / go);
    }
}
