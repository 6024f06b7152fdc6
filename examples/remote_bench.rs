//! Benchmark of `-H`: 100 units started (and stopped) on a remote host in one
//! `unitwright -H` call against 100 `systemctl -H` calls, in one run.
//!
//! Run with `bench/remote.sh` (or `cargo run --release --example remote_bench
//! [UNITWRIGHT_BINARY]`). Needs root. The remote host is the one of `tests/remote.rs`
//! (`tests/support/remote.rs`): real sshd and systemd in private namespaces, reached over the
//! loopback of its own network namespace, so each ssh connection costs what it costs on a LAN
//! minus the wire. Both clients use the same ssh client configuration (systemctl through a
//! wrapper named `ssh` first on its PATH, adding `-F`), run from one shell loop in that network namespace,
//! and start `bench@N.target` instances (no process to fork, so the numbers are the clients'
//! and the connections', not the manager's). `ROUNDS` rounds on fresh names, alternating which
//! side goes first; medians and ranges are printed.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::remote::RemoteHost;

const N: usize = 100;
const ROUNDS: usize = 3;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `script` with `sh -c` in the remote host's network namespace; returns its wall time.
fn timed(host: &RemoteHost, script: &str, env: &[(&str, &str)]) -> Duration {
    let mut cmd = host.command("sh");
    cmd.args(["-c", script]).envs(env.iter().copied());
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let unitwright = std::env::args()
        .nth(1)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").to_owned() + "/target/release/unitwright");
    let host = RemoteHost::start(&[("bench@.target", "[Unit]\nDescription=bench %i\n")], &[])
        .expect("the remote host sandbox");
    // systemd 252's sd-bus runs plain `ssh` from the PATH (no $SYSTEMD_SSH yet): a wrapper
    // named ssh, first on systemctl's PATH, adds the sandbox's client configuration.
    let bin = host.root.path().join("ssh-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec /usr/bin/ssh {} \"$@\"\n",
            host.ssh_options().join(" ")
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let target = "root@127.0.0.1";
    let names = |round: usize, side: &str| -> Vec<String> {
        (0..N)
            .map(|i| format!("bench@{side}{round}-{i}.target"))
            .collect()
    };
    let (mut ours_start, mut ours_stop, mut theirs_start, mut theirs_stop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let run_ours = |start: &mut Vec<Duration>, stop: &mut Vec<Duration>| {
            let units = names(round, "u").join(" ");
            start.push(timed(
                &host,
                &format!("{unitwright} -H {target} start {units}"),
                &[],
            ));
            assert_eq!(host.is_active(&names(round, "u")[N - 1]), "active");
            stop.push(timed(
                &host,
                &format!("{unitwright} -H {target} stop {units}"),
                &[],
            ));
        };
        let run_theirs = |start: &mut Vec<Duration>, stop: &mut Vec<Duration>| {
            let units = names(round, "s").join(" ");
            let env = [("PATH", path.as_str())];
            start.push(timed(
                &host,
                &format!("for u in {units}; do systemctl -H {target} start $u || exit 1; done"),
                &env,
            ));
            assert_eq!(host.is_active(&names(round, "s")[N - 1]), "active");
            stop.push(timed(
                &host,
                &format!("for u in {units}; do systemctl -H {target} stop $u || exit 1; done"),
                &env,
            ));
        };
        if round % 2 == 0 {
            run_ours(&mut ours_start, &mut ours_stop);
            run_theirs(&mut theirs_start, &mut theirs_stop);
        } else {
            run_theirs(&mut theirs_start, &mut theirs_stop);
            run_ours(&mut ours_start, &mut ours_stop);
        }
    }
    let range = |v: &[Duration]| {
        let min = v.iter().min().unwrap();
        let max = v.iter().max().unwrap();
        format!("{:.0}-{:.0} ms", ms(*min), ms(*max))
    };
    for (what, ours, theirs) in [
        ("start", &mut ours_start, &mut theirs_start),
        ("stop", &mut ours_stop, &mut theirs_stop),
    ] {
        let (o, t) = (median(ours), median(theirs));
        println!(
            "{what} {N} bench@N.target on a remote host: one unitwright -H call {:.0} ms ({}), \
             {N} systemctl -H calls {:.0} ms ({}): {:.1}x (medians of {ROUNDS})",
            ms(o),
            range(ours),
            ms(t),
            range(theirs),
            t.as_secs_f64() / o.as_secs_f64()
        );
    }
}
