//! kube-reconcile's work queue against client-go's, side by side in one run.
//!
//! ```text
//! cargo bench --bench versus_client_go            # 15 rounds of 1,000,000 ops
//! cargo bench --bench versus_client_go -- 21      # 21 rounds
//! VERSUS_CPUS=2,3 cargo bench --bench versus_client_go   # pin to other CPUs
//! VERSUS_ONLY_OURS=single cargo bench --bench versus_client_go   # ours only, to profile
//! ```
//!
//! Builds `benches/go/workqueue-bench` (client-go v0.37.2's rate-limiting queue) with
//! the local Go toolchain. Each round runs every workload once on each side, in turn,
//! the side that goes first alternating between rounds, so both see the same machine
//! load; each Go run is a fresh process, each Rust run a fresh queue and runtime. The
//! table gives each side's min/median/max ops/s, the ratio of the medians and the
//! lowest and highest ratio of one round (ours / client-go's run next to it).
//!
//! The same work on both sides:
//! - the same keys: the strings `namespace-N/object-M` (Go `string`, our `ObjectKey`,
//!   one shared `Arc<str>`), and the same rate limiter (client-go's default controller
//!   limiter, [`client_go_default`]; neither add, get nor done consult it); no metrics
//!   on either side;
//! - the same OS threads: the process pins itself (all its threads, and the Go child
//!   it spawns, which inherits the mask) to `VERSUS_CPUS` (default `0,1`) with
//!   `taskset`; `single` and `batch` run on one thread (a current-thread tokio runtime;
//!   `GOMAXPROCS=1`), `contended` on two (a 2-worker tokio runtime; `GOMAXPROCS=2`).
//!
//! Workloads:
//! - `single`: one task does add, get, done in turn (1,000 distinct keys);
//! - `batch`: add 1,000 keys, then get and done them all;
//! - `contended`: 4 producers add (10,000 distinct keys) while 4 workers get and done;
//!   ops/s counts adds. Producers and workers are tasks on the 2-thread runtime
//!   (goroutines on `GOMAXPROCS=2` in Go); a producer adds its 250,000 keys without
//!   yielding, as a goroutine does until the Go scheduler preempts it.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

mod common;

use common::keys;
use kube_reconcile::{
    ObjectKey,
    queue::{WorkQueue, client_go_default},
};

const OPS: usize = 1_000_000;
const WORKLOADS: [&str; 3] = ["single", "batch", "contended"];

fn queue() -> WorkQueue<ObjectKey> {
    WorkQueue::builder("bench")
        .rate_limiter(client_go_default())
        .build()
}

/// The OS threads each workload runs on, on both sides.
fn threads(workload: &str) -> usize {
    if workload == "contended" { 2 } else { 1 }
}

fn current_thread() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all().build().unwrap()
}

fn single(keys: &[ObjectKey]) -> f64 {
    let queue = queue();
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
    let queue = queue();
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
        .worker_threads(threads("contended"))
        .enable_all()
        .build()
        .unwrap();
    let queue = queue();
    let (producers, workers) = (4, 4);
    let per = OPS / producers;
    let keys: std::sync::Arc<[ObjectKey]> = keys.into();
    let elapsed = runtime.block_on(async {
        let start = Instant::now();
        let workers: Vec<_> = (0..workers)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    while let Some(key) = queue.get().await {
                        queue.done(&key);
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..producers)
            .map(|p| {
                let (queue, keys) = (queue.clone(), keys.clone());
                tokio::spawn(async move {
                    for i in 0..per {
                        queue.add(keys[(p * per + i) % keys.len()].clone());
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.unwrap();
        }
        queue.shutdown_with_drain().await;
        for worker in workers {
            worker.await.unwrap();
        }
        start.elapsed()
    });
    (per * producers) as f64 / elapsed.as_secs_f64()
}

fn go_run(binary: &Path, workload: &str) -> f64 {
    let output = Command::new(binary)
        .arg(format!("-ops={OPS}"))
        .arg(format!("-workload={workload}"))
        .env("GOMAXPROCS", threads(workload).to_string())
        .output()
        .expect("run the Go work-queue benchmark");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = |name: &str| {
        stdout.lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.parse::<f64>().ok()).flatten()
        })
    };
    assert_eq!(
        value("gomaxprocs"),
        Some(threads(workload) as f64),
        "the Go side must run on as many threads as ours: {stdout}"
    );
    value(workload).unwrap_or_else(|| panic!("no {workload} figure in: {stdout}"))
}

fn our_run(workload: &str, small: &[ObjectKey], large: &[ObjectKey]) -> f64 {
    match workload {
        "single" => single(small),
        "batch" => batch(small),
        _ => contended(large),
    }
}

/// Pins this process (every thread, and so every child it starts) to `cpus`.
fn pin(cpus: &str) -> String {
    let pid = std::process::id().to_string();
    match Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "warning: taskset failed, running unpinned: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("warning: no taskset ({e}), running unpinned"),
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values
}

fn median(values: &[f64]) -> f64 {
    let values = sorted(values);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The 1-minute load average, to record how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn millions(ops: f64) -> String {
    format!("{:.2}M", ops / 1e6)
}

fn main() {
    let rounds = common::count_arg(15);
    let cpus = std::env::var("VERSUS_CPUS").unwrap_or_else(|_| "0,1".into());
    let allowed = pin(&cpus);
    let (small, large) = (keys(1000), keys(10_000));
    if let Ok(workload) = std::env::var("VERSUS_ONLY_OURS") {
        // For profiling (`perf record`/`perf stat`): only our side of one workload.
        for _ in 0..rounds {
            println!("{workload} {:.0}", our_run(&workload, &small, &large));
        }
        return;
    }
    let binary = common::go_benchmark("workqueue-bench");
    let load_before = load_average();

    // (workload, side) -> one figure per round.
    let mut results: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    let started = Instant::now();
    for round in 1..=rounds {
        for workload in WORKLOADS {
            let go_first = round % 2 == 1;
            for side in if go_first { [0, 1] } else { [1, 0] } {
                let (name, ops) = if side == 0 {
                    ("client-go", go_run(&binary, workload))
                } else {
                    ("kube-reconcile", our_run(workload, &small, &large))
                };
                results.entry((workload, name)).or_default().push(ops);
            }
        }
        eprintln!("round {round}/{rounds} done");
    }
    let took = Duration::from_secs(started.elapsed().as_secs());

    println!(
        "{rounds} rounds of {OPS} ops per workload and side, pinned to CPUs {allowed}, \
         {took:?}, load average before {load_before}, after {}; ops/s min / median / max",
        load_average()
    );
    println!(
        "{:<10} {:>3} {:>24} {:>24} {:>8} {:>13} {:>6}",
        "workload", "thr", "client-go", "kube-reconcile", "ratio", "round ratios", ">=2x"
    );
    for workload in WORKLOADS {
        let go = &results[&(workload, "client-go")];
        let ours = &results[&(workload, "kube-reconcile")];
        let ratios: Vec<f64> = go.iter().zip(ours).map(|(g, o)| o / g).collect();
        let triple = |v: &[f64]| {
            let s = sorted(v);
            format!(
                "{} {} {}",
                millions(s[0]),
                millions(median(v)),
                millions(s[s.len() - 1])
            )
        };
        let r = sorted(&ratios);
        let at_least_2x = ratios.iter().filter(|r| **r >= 2.0).count();
        println!(
            "{workload:<10} {:>3} {:>24} {:>24} {:>7.2}x {:>13} {:>3}/{}",
            threads(workload),
            triple(go),
            triple(ours),
            median(ours) / median(go),
            format!("{:.2}-{:.2}x", r[0], r[r.len() - 1]),
            at_least_2x,
            ratios.len(),
        );
    }
    println!(
        "(thr: OS threads on each side, GOMAXPROCS for client-go; ratio: of the medians; \
         round ratios: lowest and highest of one round's; >=2x: rounds at or above 2x)"
    );
}
