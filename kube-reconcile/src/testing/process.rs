//! Child processes of a control plane: spawning with logs, readiness polling, stopping,
//! and a watchdog that cleans up when the test process dies without dropping them.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::Error;

/// How long a stopped process gets between SIGTERM and SIGKILL. kube-apiserver waits
/// for open watches before it exits on SIGTERM; test data is thrown away, so there is
/// nothing to gain from a long grace.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// One running binary of the control plane.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program` in its own process group (so a Ctrl-C meant for the test or
    /// demo reaches it only through an orderly stop), logging to `logs/<name>.log`.
    pub(crate) fn spawn(
        dir: &Path,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> Result<Self, Error> {
        let log = dir.join("logs").join(format!("{name}.log"));
        fs::create_dir_all(dir.join("logs")).map_err(Error::io("create the logs folder"))?;
        let out = File::create(&log).map_err(Error::io("create a log file"))?;
        let err = out.try_clone().map_err(Error::io("clone a log file"))?;
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: program.display().to_string(),
                source,
            })?;
        let mut pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("pids"))
            .map_err(Error::io("record a pid"))?;
        writeln!(pids, "{}", child.id()).map_err(Error::io("record a pid"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// Fails with the log's tail if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: self.log_tail(),
            }),
            Err(e) => Err(Error::io("wait for a child")(e)),
        }
    }

    /// The last lines of the process's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The operating system's process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log file's path.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// SIGKILL at once; reaps the child.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]; reaps the child.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A shell loop that outlives the test process: once that process is gone (killed, or
/// exited with a control plane still in a `static`), it stops every recorded pid and
/// removes the folder. An orderly drop kills the watchdog first.
#[derive(Debug)]
pub(crate) struct Watchdog(Child);

impl Watchdog {
    pub(crate) fn start(dir: &Path, keep_dir: bool) -> Result<Self, Error> {
        const SCRIPT: &str = r#"
parent=$1 dir=$2 keep=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
pids=$(cat "$dir/pids" 2>/dev/null)
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
sleep 5
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
[ "$keep" = 1 ] || rm -rf "$dir"
"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("kube-reconcile-watchdog")
            .arg(std::process::id().to_string())
            .arg(dir)
            .arg(if keep_dir { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: "sh (watchdog)".into(),
                source,
            })?;
        Ok(Self(child))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that was free a moment ago, from outside the kernel's ephemeral
/// range: a port the kernel hands to `bind(0)` comes from the range it also takes
/// source ports of outgoing connections from, so one of the many loopback connections
/// a test makes could take it before the server it was picked for binds it ("address
/// already in use"). Ports are taken in turn from a process-wide counter, starting at a
/// place that differs per process, so two control planes starting at once do not get
/// the same one.
pub(crate) fn free_port() -> Result<u16, Error> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (first, count) = unreserved_ports();
    if count > 0 {
        let start = std::process::id().wrapping_mul(7_919) % count;
        for _ in 0..count.min(1_000) {
            let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % count;
            let port = u16::try_from(first + offset).unwrap_or(u16::MAX);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("find a free port"))?
        .port();
    Ok(port)
}

/// The first port and the number of ports to pick from: below the ephemeral range
/// (from 10000, above most well-known services), or above it if that is too narrow.
fn unreserved_ports() -> (u32, u32) {
    const LOWEST: u32 = 10_000;
    const ENOUGH: u32 = 1_000;
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u32>().ok());
    let (low, high) = match (bounds.next(), bounds.next()) {
        (Some(low), Some(high)) => (low, high),
        // Linux's default.
        _ => (32_768, 60_999),
    };
    if low >= LOWEST + ENOUGH {
        (LOWEST, low - LOWEST)
    } else if high + ENOUGH <= 65_535 {
        (high + 1, 65_535 - high)
    } else {
        (0, 0)
    }
}

/// Polls `probe` every 100 ms until it returns true, the process dies, or `timeout`.
pub(crate) async fn wait_until<F, Fut>(
    process: &mut Process,
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<Duration, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        process.check_alive()?;
        if probe().await {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                what: what.to_string(),
                timeout,
                log_tail: process.log_tail(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain-HTTP GET on loopback that returns the response (for etcd's `/health`).
pub(crate) async fn http_get(port: u16, path: &str) -> Option<String> {
    http_request(port, "GET", path, "").await
}

/// A plain-HTTP request on loopback; returns the whole response, headers included.
pub(crate) async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let (first, count) = unreserved_ports();
        assert!(count >= 1_000, "{first}+{count}");
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), ports.len());
        for port in ports {
            assert!((first..first + count).contains(&u32::from(port)), "{port}");
            TcpListener::bind(("127.0.0.1", port)).expect("still free");
        }
    }
}
