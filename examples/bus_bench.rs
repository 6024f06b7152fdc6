//! Benchmark of the D-Bus client against a real `systemd --user` (in the test sandbox).
//!
//! Run with `bench/bus.sh` (or `cargo run --release --example bus_bench [UNITWRIGHT_BINARY]`).
//! Needs root (namespaces). Prints, in one run so that the ratios are comparable:
//! * in-process start-and-wait and stop-and-wait latency per unit (median, p90), one
//!   connection, sequential calls;
//! * one `unitwright --user start` of 100 template instances versus 100 sequential
//!   `systemctl --user start` calls (run inside the sandbox's namespaces, in one shell loop,
//!   so that no per-call nsenter is counted), and the same for stop.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use unitwright::bus::{Manager, Options, Scope};

const N_IN_PROCESS: usize = 200;
const N_CLI: usize = 100;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `pct`-th percentile (nearest rank below).
fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * pct / 100]
}

#[tokio::main]
async fn main() {
    let binary = std::env::args().nth(1).unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap();
        // target/<profile>/examples/bus_bench → target/<profile>/unitwright
        me.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("unitwright")
            .display()
            .to_string()
    });
    let sb = support::UserManager::builder()
        .unit("bench@.service", "[Service]\nExecStart=/bin/sleep 600\n")
        .start()
        .expect("the sandbox could not be started (run as root)");
    let options = Options {
        address: Some(sb.bus_address()),
        ..Options::default()
    };

    // 1. In process: one connection, sequential start+wait and stop+wait.
    let connect_start = Instant::now();
    let m = Manager::connect_with(Scope::User, &options).await.unwrap();
    let connect = connect_start.elapsed();
    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    for i in 0..N_IN_PROCESS {
        let unit = format!("bench@p{i}.service");
        let t = Instant::now();
        assert!(m.start(&unit).await.unwrap().is_success());
        starts.push(t.elapsed());
        let t = Instant::now();
        assert!(m.stop(&unit).await.unwrap().is_success());
        stops.push(t.elapsed());
    }

    // 2. One CLI call for 100 instances against 100 systemctl calls.
    let cli = |verb: &str, prefix: &str| {
        let units: Vec<String> = (0..N_CLI).map(|i| format!("bench@{prefix}{i}")).collect();
        let t = Instant::now();
        let out = Command::new(&binary)
            .envs(sb.client_env())
            .arg("--user")
            .arg(verb)
            .args(&units)
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    };
    let systemctl = |verb: &str, prefix: &str| {
        let pid = sb.manager_pid().unwrap().to_string();
        let script = format!(
            "i=0; while [ $i -lt {N_CLI} ]; do systemctl --user {verb} bench@{prefix}$i || exit 1; i=$((i+1)); done"
        );
        let t = Instant::now();
        let status = Command::new("nsenter")
            .args(["-t", &pid, "-m", "-p", "--", "sh", "-c", &script])
            .env("XDG_RUNTIME_DIR", &sb.runtime_dir)
            .status()
            .unwrap();
        let took = t.elapsed();
        assert!(status.success());
        took
    };
    let uw_start = cli("start", "u");
    let sc_start = systemctl("start", "s");
    let uw_stop = cli("stop", "u");
    let sc_stop = systemctl("stop", "s");
    let active = m
        .list_units_filtered(&["active"], &["bench@*"])
        .await
        .unwrap();
    assert!(active.is_empty(), "every benchmark unit was stopped");

    let sc_per_unit = sc_start / u32::try_from(N_CLI).unwrap();
    println!("unitwright D-Bus client benchmark (systemd --user in a sandbox)");
    println!(
        "connect + subscribe (once):          {:8.2} ms",
        ms(connect)
    );
    println!(
        "in process, start+wait per unit:    {:8.2} ms median, {:.2} ms p90 (n={N_IN_PROCESS})",
        ms(percentile(&mut starts, 50)),
        ms(percentile(&mut starts, 90))
    );
    println!(
        "in process, stop+wait per unit:     {:8.2} ms median, {:.2} ms p90 (n={N_IN_PROCESS})",
        ms(percentile(&mut stops, 50)),
        ms(percentile(&mut stops, 90))
    );
    println!(
        "systemctl --user start, per unit:   {:8.2} ms (mean of {N_CLI} sequential calls)",
        ms(sc_per_unit)
    );
    println!(
        "ratio systemctl start / in-process start+wait (median): {:.1}x",
        sc_per_unit.as_secs_f64() / percentile(&mut starts, 50).as_secs_f64()
    );
    println!();
    println!("start {N_CLI} instances:");
    println!(
        "  unitwright --user start (1 call):  {:8.1} ms",
        ms(uw_start)
    );
    println!(
        "  systemctl --user start ({N_CLI} calls): {:8.1} ms",
        ms(sc_start)
    );
    println!(
        "  ratio: {:.1}x faster",
        sc_start.as_secs_f64() / uw_start.as_secs_f64()
    );
    println!("stop {N_CLI} instances:");
    println!(
        "  unitwright --user stop (1 call):   {:8.1} ms",
        ms(uw_stop)
    );
    println!(
        "  systemctl --user stop ({N_CLI} calls):  {:8.1} ms",
        ms(sc_stop)
    );
    println!(
        "  ratio: {:.1}x faster",
        sc_stop.as_secs_f64() / uw_stop.as_secs_f64()
    );
}
