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
//! namespaces in one shell loop, so no per-call nsenter is counted against it. The CLI
//! comparison runs `ROUNDS` times on fresh instance names and reports medians, the min-max
//! range, and the CPU time per round of the manager, the sandbox's bus daemon and the client
//! processes (from `/proc/<pid>/stat`, 10 ms resolution): on this 2-core machine the 100
//! unitwright starts are bounded by manager plus bus CPU time, not by the client.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use unitwright::bus::{Manager, Options, Scope};

const N_IN_PROCESS: usize = 200;
const N_CLI: usize = 100;
/// Rounds of the CLI comparison; medians are reported (the machine may be busy).
const ROUNDS: usize = 5;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time (user + system) of `pid` from `/proc/<pid>/stat`; with `children`, the CPU time
/// of its waited-for children instead (`cutime`, `cstime`).
fn cpu(pid: &str, children: bool) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: state is field 3, utime field 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let first = if children { 13 } else { 11 };
    let ticks = fields.get(first..first + 2).map_or(0, |f| f[0] + f[1]);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// CPU time used so far by the sandbox's manager, its bus daemons, and this process's
/// waited-for children (the CLI runs).
#[derive(Clone, Copy)]
struct Cpu {
    manager: Duration,
    bus: Duration,
    client: Duration,
}

impl Cpu {
    fn now(sb: &support::UserManager) -> Cpu {
        let manager = sb.manager_pid().unwrap().to_string();
        // The bus daemons of the sandbox: the one its init forked (a sibling of the manager)
        // and the one the manager itself may have socket-activated for `dbus.socket`.
        let parent = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r).to_owned();
            rest.split_whitespace().nth(1).unwrap_or("").to_owned()
        };
        let init = parent(&manager);
        let bus = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "dbus-daemon")
                    && [&manager, &init].contains(&&parent(pid))
            })
            .map(|pid| cpu(&pid, false))
            .sum();
        Cpu {
            manager: cpu(&manager, false),
            bus,
            client: cpu("self", true),
        }
    }

    /// The CPU time used since `self` (10 ms resolution).
    fn since(self, sb: &support::UserManager) -> Cpu {
        let now = Cpu::now(sb);
        Cpu {
            manager: now.manager.saturating_sub(self.manager),
            bus: now.bus.saturating_sub(self.bus),
            client: now.client.saturating_sub(self.client),
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, o: Cpu) -> Cpu {
        Cpu {
            manager: self.manager + o.manager,
            bus: self.bus + o.bus,
            client: self.client + o.client,
        }
    }
}

/// One side of the comparison over all rounds: wall times and the summed CPU time.
#[derive(Default)]
struct Side {
    wall: Vec<Duration>,
    cpu: Option<Cpu>,
}

impl Side {
    fn add(&mut self, (wall, cpu): (Duration, Cpu)) {
        self.wall.push(wall);
        self.cpu = Some(self.cpu.map_or(cpu, |c| c + cpu));
    }

    fn median(&mut self) -> Duration {
        percentile(&mut self.wall, 50)
    }

    /// "min-max ms; cpu per round: manager X ms, bus Y ms, client(s) Z ms".
    fn detail(&mut self) -> String {
        self.wall.sort();
        let rounds = u32::try_from(self.wall.len()).unwrap();
        let cpu = self.cpu.unwrap();
        format!(
            "{:.1}-{:.1} ms; cpu per round: manager {:.0} ms, bus {:.0} ms, client(s) {:.0} ms",
            ms(self.wall[0]),
            ms(*self.wall.last().unwrap()),
            ms(cpu.manager / rounds),
            ms(cpu.bus / rounds),
            ms(cpu.client / rounds),
        )
    }
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
    fn unitwright(&self, verb: &str, units: &[String]) -> (Duration, Cpu) {
        let before = Cpu::now(self.sb);
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
        (took, before.since(self.sb))
    }

    /// One `systemctl --user VERB UNIT` call per unit, in one shell loop in the namespace.
    fn systemctl(&self, verb: &str, units: &[String]) -> (Duration, Cpu) {
        let pid = self.sb.manager_pid().unwrap().to_string();
        let before = Cpu::now(self.sb);
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
        (took, before.since(self.sb))
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
        let (mut uw_start, mut sc_start, mut uw_stop, mut sc_stop) = Default::default();
        for round in 0..ROUNDS {
            let (ours, theirs) = (names(&format!("u{round}-")), names(&format!("s{round}-")));
            Side::add(&mut uw_start, self.unitwright("start", &ours));
            Side::add(&mut sc_start, self.systemctl("start", &theirs));
            Side::add(&mut uw_stop, self.unitwright("stop", &ours));
            Side::add(&mut sc_stop, self.systemctl("stop", &theirs));
        }
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
        let sc_start_median = sc_start.median();
        println!(
            "  systemctl --user start, per unit: {:7.2} ms ({:.1}x the in-process median)",
            ms(sc_start_median / n),
            (sc_start_median / n).as_secs_f64() / start_median.as_secs_f64()
        );
        for (verb, uw, sc) in [
            ("start", &mut uw_start, &mut sc_start),
            ("stop ", &mut uw_stop, &mut sc_stop),
        ] {
            let (u, s) = (uw.median(), sc.median());
            println!(
                "  {verb} {N_CLI} (median of {ROUNDS}): unitwright 1 call {:7.1} ms | systemctl {N_CLI} calls {:7.1} ms | {:.1}x faster",
                ms(u),
                ms(s),
                s.as_secs_f64() / u.as_secs_f64()
            );
            println!("    unitwright {}", uw.detail());
            println!("    systemctl  {}", sc.detail());
        }
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
