#![allow(clippy::unwrap_used)]
//! `units/kube@.kube` end to end: a Kubernetes YAML started by its escaped path as
//! `kube@<path>.service` (`podman kube play` through the generated unit) in a real
//! `systemd --user`, with real podman 4.3.1 and a local busybox image (no registry).
//!
//! podman 4.3.1 creates a pod's cgroup in every cgroup controller the kernel has enabled; this
//! machine enables `net_cls`, `net_prio`, `perf_event` and `hugetlb` without mounting them
//! (a booted host mounts them all), so the sandbox mounts every enabled controller
//! ([`support::UserManagerBuilder::all_controllers`]) in its own cgroup namespace. The pod's
//! infra container needs a pause image, which podman builds locally from `catatonit`
//! (`packaging/install-build-deps.sh`). The pod uses the host's network (`hostNetwork`), so no
//! CNI state is created; its container serves HTTP on a free port of 127.0.0.1.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use support::podman::{Podman, WithContainers};
use support::UserManager;

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");
const IMAGE: &str = "localhost/uw-kube-bb:latest";

fn sandbox(podman: &Podman) -> Option<WithContainers> {
    let quadlets = podman.dir.path().join("quadlet");
    std::fs::create_dir_all(&quadlets).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("units/kube@.kube"),
        quadlets.join("kube@.kube"),
    )
    .unwrap();
    let mut b = UserManager::builder()
        .journal(true)
        .all_controllers(true)
        .generator(support::generator_binary(UNITWRIGHT))
        .env("QUADLET_UNIT_DIRS", &quadlets);
    for (k, v) in podman.env() {
        b = b.env(k, v);
    }
    Some(WithContainers::new(b.start()?, podman.env()))
}

/// `podman ARGS` in the sandbox: its output, which must be a success.
fn podman_out(m: &WithContainers, args: &[&str]) -> String {
    let out = m.podman().args(args).output().unwrap();
    assert!(out.status.success(), "podman {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn cli(m: &UserManager, args: &[&str]) -> Output {
    m.command(UNITWRIGHT)
        .arg("--user")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16) -> String {
    support::podman::http_get(port, "kube pod")
}

#[test]
fn a_yaml_started_by_its_escaped_path_runs_its_pod_and_stop_removes_it() {
    let Some(podman) = Podman::setup("uwkube", IMAGE) else {
        return;
    };
    let Some(m) = sandbox(&podman) else {
        return;
    };
    // A path that needs escaping: a space and a dash.
    let apps = podman.dir.path().join("my apps");
    std::fs::create_dir_all(&apps).unwrap();
    let yaml = apps.join("web-1.yaml");
    let port = free_port();
    std::fs::write(
        &yaml,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: uwkube-web
spec:
  hostNetwork: true
  containers:
  - name: web
    image: {IMAGE}
    command: ["/bin/sh", "-c", "printf 'kube pod %s\n' $WHO > /www/index.html; trap 'exit 0' TERM; /bin/httpd -f -p 127.0.0.1:{port} -h /www & wait"]
    env:
    - name: WHO
      value: web-1
"#
        ),
    )
    .unwrap();
    // The README's recipe: the unit named by the escaped path.
    let out = Command::new(UNITWRIGHT)
        .args(["escape", "--template=kube@.service"])
        .arg(&yaml)
        .output()
        .unwrap();
    let unit = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        unit.starts_with("kube@-tmp-") && unit.ends_with("-my\\x20apps-web\\x2d1.yaml.service"),
        "{unit}"
    );

    let out = cli(&m, &["start", &unit]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out),
        text(&m.systemctl(&["status", "--no-pager", "-l", &unit]))
    );
    assert_eq!(m.is_active(&unit), "active");
    assert!(http_get(port).contains("kube pod web-1"));
    let pods = podman_out(&m, &["pod", "ps", "--format", "{{.Name}} {{.Status}}"]);
    assert_eq!(pods.trim(), "uwkube-web Running", "{pods}");

    let out = cli(&m, &["stop", &unit]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.is_active(&unit), "inactive");
    assert_eq!(
        podman_out(&m, &["pod", "ps", "-q"]).trim(),
        "",
        "the pod is left"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the pod's server still answers"
    );

    // A YAML that does not exist: the start is skipped by the unit's condition, nothing runs.
    let out = Command::new(UNITWRIGHT)
        .args(["escape", "--template=kube@.service"])
        .arg(apps.join("absent.yaml"))
        .output()
        .unwrap();
    let absent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = cli(&m, &["start", &absent]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a Condition*= was not met"),
        "{}",
        text(&out)
    );
    assert_eq!(podman_out(&m, &["pod", "ps", "-q"]).trim(), "");
}
