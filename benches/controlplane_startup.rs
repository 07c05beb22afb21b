//! How fast the local control plane starts and how much memory it holds at rest.
//!
//! ```text
//! cargo bench --bench controlplane_startup            # 5 starts of each setup
//! cargo bench --bench controlplane_startup -- 9       # 9 starts
//! ```
//!
//! Prints the median start time of etcd + kube-apiserver alone and with
//! kube-scheduler + kwok (3 fake Nodes), and the summed resident memory (VmRSS, and
//! peak VmHWM) of every control-plane process 10 s after a start.

mod common;

use std::{fs, time::Duration, time::Instant};

use kube_reconcile::testing::{ControlPlane, ControlPlaneBuilder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = common::count_arg(5);
    // Build or locate the binaries once, outside the timings.
    ControlPlane::builder().start().await?.stop().await;

    for (label, with_nodes) in [
        ("etcd + kube-apiserver", false),
        ("+ scheduler + kwok (3 nodes)", true),
    ] {
        let setup = || -> ControlPlaneBuilder {
            if with_nodes {
                ControlPlane::builder().fake_nodes(3)
            } else {
                ControlPlane::builder()
            }
        };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let control_plane = setup().start().await?;
            times.push(started.elapsed());
            control_plane.stop().await;
        }
        times.sort();
        println!(
            "start {label}: median {:.2?} (min {:.2?}, max {:.2?}, {runs} runs)",
            times[runs / 2],
            times[0],
            times[runs - 1]
        );

        let control_plane = setup().start().await?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let pids = fs::read_to_string(control_plane.dir().join("pids"))?;
        let (mut rss, mut peak) = (0, 0);
        for pid in pids.lines() {
            let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
            let field = |name: &str| -> u64 {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let name = status
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("Name:")
                .trim()
                .to_string();
            println!(
                "  {name:<24} rss {:>5} MiB  peak {:>5} MiB",
                field("VmRSS:") / 1024,
                field("VmHWM:") / 1024
            );
            rss += field("VmRSS:");
            peak += field("VmHWM:");
        }
        println!(
            "memory at rest {label}: rss {} MiB, peak {} MiB",
            rss / 1024,
            peak / 1024
        );
        control_plane.stop().await;
    }
    Ok(())
}
