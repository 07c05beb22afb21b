//! A control plane leaves nothing behind: its processes end and its folder is removed
//! when it is dropped, whether the test ends normally or panics.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use kube_reconcile::testing::ControlPlane;

/// The pids the control plane recorded, and its folder.
fn footprint(cp: &ControlPlane) -> (Vec<i32>, PathBuf) {
    let pids = fs::read_to_string(cp.dir().join("pids")).unwrap();
    let pids = pids.lines().map(|l| l.parse().unwrap()).collect();
    (pids, cp.dir().to_path_buf())
}

fn is_running(pid: i32) -> bool {
    // A reaped child has no /proc entry; a zombie would still show "Z" state.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

fn assert_gone(pids: &[i32], dir: &Path) {
    assert!(!pids.is_empty(), "the control plane recorded no processes");
    for pid in pids {
        assert!(
            !is_running(*pid),
            "process {pid} outlived its control plane"
        );
    }
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[tokio::test]
async fn dropping_stops_every_process_and_removes_the_folder() {
    support::init_tracing();
    let cp = ControlPlane::builder().start().await.unwrap();
    let (pids, dir) = footprint(&cp);
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver");
    assert!(pids.iter().all(|p| is_running(*p)));
    cp.stop().await;
    assert_gone(&pids, &dir);
}

#[test]
fn a_panicking_test_still_cleans_up() {
    support::init_tracing();
    let (sender, receiver) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let cp = ControlPlane::builder().start().await.unwrap();
            sender.send(footprint(&cp)).unwrap();
            panic!("a test failing with a control plane in scope");
        })
    })
    .join();
    assert!(outcome.is_err(), "the thread was meant to panic");
    let (pids, dir) = receiver.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_gone(&pids, &dir);
}
