//! Process metrics on the manager's `/metrics`, read when it is scraped (so a
//! long-running operator shows whether its memory, file descriptors or tasks creep):
//!
//! - `process_resident_memory_bytes`: resident set size (`VmRSS` of `/proc/self/status`);
//!   Linux only.
//! - `process_open_fds`: open file descriptors (entries of `/proc/self/fd`, not counting
//!   the one used to list them); Linux only.
//! - `tokio_alive_tasks`: tasks alive on the tokio runtime serving the scrape
//!   ([`tokio::runtime::RuntimeMetrics::num_alive_tasks`]), including the scrape's own
//!   connection task.
//!
//! A figure that cannot be read is left out of the page rather than reported as zero.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::ConstGauge,
};

use crate::metrics::Metrics;

/// Adds the process metrics to `metrics`' registry.
pub(super) fn register(metrics: &Metrics) {
    metrics
        .registry()
        .register_collector(Box::new(ProcessCollector));
}

/// Reads the figures afresh at each encode.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(bytes) = resident_memory_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                bytes,
            )?;
        }
        if let Some(fds) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                fds,
            )?;
        }
        if let Some(tasks) = alive_tasks() {
            gauge(
                &mut encoder,
                "tokio_alive_tasks",
                "Tasks alive on the tokio runtime",
                tasks,
            )?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

/// `VmRSS` of `/proc/self/status`, which the kernel gives in KiB.
fn resident_memory_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss_kib(&status).map(|kib| kib * 1024)
}

fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count();
    // Listing the directory holds one descriptor open itself.
    u64::try_from(entries.saturating_sub(1)).ok()
}

/// `None` outside a tokio runtime (e.g. `Metrics::encode` called from plain code).
fn alive_tasks() -> Option<u64> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    u64::try_from(handle.metrics().num_alive_tasks()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name <value>` in `text`.
    fn value(text: &str, name: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t  8192 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(8192));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrape_reports_the_process_and_its_tasks() {
        let metrics = Metrics::new();
        register(&metrics);
        let before = value(&metrics.encode(), "tokio_alive_tasks").expect("tasks reported");

        // Ten tasks parked until released show up, and go away once they end.
        let (release, parked) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let mut parked = parked.clone();
                tokio::spawn(async move {
                    let _ = parked.wait_for(|go| *go).await;
                })
            })
            .collect();
        let during = value(&metrics.encode(), "tokio_alive_tasks").unwrap();
        assert_eq!(during, before + 10);
        release.send(true).unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        // A finished task leaves the count just after its JoinHandle resolves.
        let mut after = u64::MAX;
        for _ in 0..100 {
            after = value(&metrics.encode(), "tokio_alive_tasks").unwrap();
            if after == before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(after, before);

        let text = metrics.encode();
        assert!(text.contains("# TYPE tokio_alive_tasks gauge"), "{text}");
        if cfg!(target_os = "linux") {
            let rss = value(&text, "process_resident_memory_bytes").expect("RSS reported");
            assert!(
                rss > 1024 * 1024,
                "a test process holds more than 1 MiB: {rss}"
            );
            let fds = value(&text, "process_open_fds").expect("fds reported");
            // 50 more open files show; the slack is for other tests of this binary
            // closing theirs meanwhile.
            let files: Vec<_> = (0..50)
                .map(|_| std::fs::File::open("/proc/self/status").unwrap())
                .collect();
            let with_files = value(&metrics.encode(), "process_open_fds").unwrap();
            drop(files);
            assert!(
                with_files >= fds + 40,
                "{fds} then {with_files} with 50 more"
            );
        } else {
            assert!(!text.contains("process_open_fds"), "{text}");
        }
    }

    #[test]
    fn outside_a_runtime_tasks_are_left_out() {
        let metrics = Metrics::new();
        register(&metrics);
        let text = metrics.encode();
        assert!(!text.contains("tokio_alive_tasks"), "{text}");
    }
}
