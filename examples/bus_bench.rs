//! Benchmark of the D-Bus client against a real `systemd --user` (in the test sandbox).
//!
//! Run with `bench/bus.sh` (or `cargo run --release --example bus_bench [UNITWRIGHT_BINARY]`).
//! Needs root (namespaces). In one run, so that the ratios are comparable, for two kinds of
//! template instances:
//! * `bench@.target`: no process to spawn, so the manager's own work is small and the numbers
//!   show what the client costs;
//! * `bench@.service` (`ExecStart=/bin/sleep 600`): the manager forks a process and sets up
//!   its cgroups per start, which bounds every client alike;
//!
//! it prints the in-process start-and-wait and stop-and-wait latency per unit (one connection,
//! sequential calls), and one `unitwright --user start` (and `stop`) of 100 instances against
//! 100 sequential `systemctl --user start` (`stop`) calls. systemctl runs inside the sandbox's
//! namespaces in one shell loop, so no per-call nsenter is counted against it.
#![allow(clippy::unwrap_used)]

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

struct Bench<'a> {
    sb: &'a support::UserManager,
    binary: String,
    manager: Manager,
}

impl Bench<'_> {
    /// One `unitwright --user VERB` call for `units`.
    fn unitwright(&self, verb: &str, units: &[String]) -> Duration {
        let t = Instant::now();
        let out = Command::new(&self.binary)
            .envs(self.sb.client_env())
            .arg("--user")
            .arg(verb)
            .args(units)
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// One `systemctl --user VERB UNIT` call per unit, in one shell loop in the namespace.
    fn systemctl(&self, verb: &str, units: &[String]) -> Duration {
        let pid = self.sb.manager_pid().unwrap().to_string();
        let script = format!("for u in \"$@\"; do systemctl --user {verb} \"$u\" || exit 1; done");
        let t = Instant::now();
        let status = Command::new("nsenter")
            .args(["-t", &pid, "-m", "-p", "--", "sh", "-c", &script, "sh"])
            .args(units)
            .env("XDG_RUNTIME_DIR", &self.sb.runtime_dir)
            .status()
            .unwrap();
        let took = t.elapsed();
        assert!(status.success());
        took
    }

    async fn run(&self, kind: &str) {
        let m = &self.manager;
        let (mut starts, mut stops) = (Vec::new(), Vec::new());
        for i in 0..N_IN_PROCESS {
            let unit = format!("bench@p{i}.{kind}");
            let t = Instant::now();
            assert!(m.start(&unit).await.unwrap().is_success());
            starts.push(t.elapsed());
            let t = Instant::now();
            assert!(m.stop(&unit).await.unwrap().is_success());
            stops.push(t.elapsed());
        }
        let names = |prefix: &str| -> Vec<String> {
            (0..N_CLI)
                .map(|i| format!("bench@{prefix}{i}.{kind}"))
                .collect()
        };
        let (ours, theirs) = (names("u"), names("s"));
        let uw_start = self.unitwright("start", &ours);
        let sc_start = self.systemctl("start", &theirs);
        let uw_stop = self.unitwright("stop", &ours);
        let sc_stop = self.systemctl("stop", &theirs);
        let pattern = format!("bench@*.{kind}");
        let left = m
            .list_units_filtered(&["active"], &[pattern])
            .await
            .unwrap();
        assert!(left.is_empty(), "every benchmark unit was stopped");

        let n = u32::try_from(N_CLI).unwrap();
        let start_median = percentile(&mut starts, 50);
        println!("\nbench@.{kind}");
        println!(
            "  in process, start+wait per unit:  {:7.2} ms median, {:.2} ms p90 (n={N_IN_PROCESS})",
            ms(start_median),
            ms(percentile(&mut starts, 90))
        );
        println!(
            "  in process, stop+wait per unit:   {:7.2} ms median, {:.2} ms p90 (n={N_IN_PROCESS})",
            ms(percentile(&mut stops, 50)),
            ms(percentile(&mut stops, 90))
        );
        println!(
            "  systemctl --user start, per unit: {:7.2} ms mean ({:.1}x the in-process median)",
            ms(sc_start / n),
            (sc_start / n).as_secs_f64() / start_median.as_secs_f64()
        );
        println!(
            "  start {N_CLI}: unitwright 1 call {:7.1} ms | systemctl {N_CLI} calls {:7.1} ms | {:.1}x faster",
            ms(uw_start),
            ms(sc_start),
            sc_start.as_secs_f64() / uw_start.as_secs_f64()
        );
        println!(
            "  stop  {N_CLI}: unitwright 1 call {:7.1} ms | systemctl {N_CLI} calls {:7.1} ms | {:.1}x faster",
            ms(uw_stop),
            ms(sc_stop),
            sc_stop.as_secs_f64() / uw_stop.as_secs_f64()
        );
    }
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
        .unit("bench@.target", "[Unit]\nDescription=benchmark target %i\n")
        .start()
        .expect("the sandbox could not be started (run as root)");
    let options = Options {
        address: Some(sb.bus_address()),
        ..Options::default()
    };
    let t = Instant::now();
    let manager = Manager::connect_with(Scope::User, &options).await.unwrap();
    println!("unitwright D-Bus client benchmark (systemd --user in a sandbox, one run)");
    println!("connect (once): {:.2} ms", ms(t.elapsed()));
    let bench = Bench {
        sb: &sb,
        binary,
        manager,
    };
    bench.run("target").await;
    bench.run("service").await;
}
