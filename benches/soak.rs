//! The soak: our `controller-manager` (every controller) on a real control plane for 30
//! minutes of churn — Deployments scaled up and down and rolled, readiness of pods on
//! the hand-driven Node flipped, kube-apiserver restarted every 5 minutes — sampling
//! its resident memory, open file descriptors and tokio tasks each minute.
//!
//! ```text
//! cargo build --release --example controller-manager && cargo bench --bench soak
//! cargo bench --bench soak -- --minutes 10           # shorter (or SOAK_MINUTES=10)
//! cargo bench --bench soak -- --debug                # the debug build of the binary
//! ```
//!
//! Prints the samples, reconcile errors by controller and by kind, whether everything
//! converged after the churn, and the verdict: RSS, fds and tasks each within 10%
//! (max − min over min) over the samples after the first third. Exits non-zero if not
//! flat or not converged.

#[path = "common/soak.rs"]
mod soak;

use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let minutes = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--minutes=").map(str::to_string))
        })
        .or_else(|| std::env::var("SOAK_MINUTES").ok())
        .map(|m| m.parse::<f64>())
        .transpose()?
        .unwrap_or(30.0);
    let profile = if args.iter().any(|a| a == "--debug") {
        "debug"
    } else {
        "release"
    };
    let binary = soak::target_dir()
        .join(profile)
        .join("examples/controller-manager");
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: run `cargo build {}--example controller-manager` first",
        binary.display(),
        if profile == "release" {
            "--release "
        } else {
            ""
        }
    );
    let config = soak::SoakConfig::soak(Duration::from_secs_f64(minutes * 60.0), binary);
    println!(
        "soak: {minutes} min, {} build of {}, sample every {:?}, kube-apiserver restart every {:?}",
        profile,
        config.binary.display(),
        config.sample_every,
        config.restart_every
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(soak::run(&config))?;
    println!("\n{}", report.render());
    if let Err(why) = &report.converged {
        anyhow::bail!("not converged after the churn: {why}");
    }
    anyhow::ensure!(report.flat(), "not flat within 10% after warm-up");
    Ok(())
}
