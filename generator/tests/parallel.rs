#![allow(clippy::unwrap_used)]
//! Large runs are spread over two threads (`generator/src/parallel.rs`); these tests prove
//! that this changes nothing a user can see: the same files, symlinks, log records in the same
//! order and the same exit status as on one thread, with bad units of every kind mixed in.
//! `UNITWRIGHT_GENERATOR_THREADS` selects the path: `1` one thread, `2` two threads whatever the
//! size and CPUs, unset the automatic choice (two threads for this many units on a multi-CPU
//! machine).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

mod support;
use support::{snapshot, Tree};

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

/// Many more units than the threshold for a second thread.
const UNITS: usize = 300;

/// Writes the corpus: two search directories `a` (first) and `b`, with good units and, mixed
/// in, every kind of failure and of order-dependent result.
fn write_corpus(root: &Path) {
    let a = root.join("a");
    let b = root.join("b");
    fs::create_dir_all(a.join("container.d")).unwrap();
    fs::create_dir_all(a.join("app5.container.d")).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::write(
        a.join("container.d/10-restart.conf"),
        "[Service]\nRestart=on-failure\n",
    )
    .unwrap();
    // A drop-in that does not parse: app5 is skipped.
    fs::write(a.join("app5.container.d/20-bad.conf"), "[Service]\noops\n").unwrap();
    fs::write(a.join("shared.network"), "[Network]\nSubnet=10.89.0.0/24\n").unwrap();
    fs::write(a.join("data.volume"), "[Volume]\nUser=1000\n").unwrap();
    fs::write(a.join("shop.pod"), "[Pod]\nPodName=shop\n").unwrap();
    // The first file of this name does not parse, so the second directory's one is used.
    fs::write(a.join("fallback.container"), "[Container]\nnot a key\n").unwrap();
    fs::write(
        b.join("fallback.container"),
        "[Container]\nImage=quay.io/example/fallback\n",
    )
    .unwrap();
    for i in 0..UNITS {
        let mut text = format!(
            "[Unit]\nDescription=App {i}\n\n[Container]\nImage=quay.io/example/app:{i}\n\
             Environment=ID={i} \"GREETING=hello world\"\nExec=--id {i} \"--name=app {i}\"\n"
        );
        if i % 2 == 0 {
            text.push_str("Network=shared.network\nVolume=data.volume:/data\n");
        }
        if i % 10 == 3 {
            text.push_str("Pod=shop.pod\n");
        }
        if i % 11 == 4 {
            text.push_str("Frobnicate=yes\n"); // conversion error
        }
        if i % 13 == 6 {
            text.push_str("this line is not a key\n"); // parse error
        }
        if i % 17 == 8 {
            // Duplicate service names: the unit processed last replaces the others.
            text.push_str("\n[Service]\nX-Which=");
            let _ = writeln!(text, "{i}");
            text.insert_str(
                text.find("[Container]\n").unwrap() + 12,
                "ServiceName=dup\n",
            );
        }
        if i % 3 == 0 {
            text.push_str("\n[Install]\nWantedBy=multi-user.target default.target\n");
            if i % 9 == 0 {
                // Conflicting aliases: the symlink of the last unit wins.
                text.push_str("Alias=shared-alias.service\n");
            }
        }
        fs::write(a.join(format!("app{i}.container")), text).unwrap();
    }
    // Shadowed by a/app7.container: never read.
    fs::write(b.join("app7.container"), "[Container]\n").unwrap();
}

/// What one run left: exit status, stderr (pid removed), stdout, output tree.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: Option<i32>,
    stderr: String,
    stdout: String,
    tree: Tree,
}

/// Runs the generator on the corpus with `threads` (None: unset) into a fresh `out`; the output
/// directory holds a directory where `app43.service` goes, so that one unit cannot be written.
fn run(root: &Path, threads: Option<&str>, args: &[&str]) -> Outcome {
    let out = root.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(out.join("app43.service/blocker")).unwrap();
    let mut cmd = Command::new(GEN);
    cmd.env_clear()
        .env("PODMAN", "/usr/bin/podman")
        .env(
            "QUADLET_UNIT_DIRS",
            format!("{}:{}", root.join("a").display(), root.join("b").display()),
        )
        .arg("-no-kmsg-log")
        .args(args)
        .arg(&out);
    if let Some(t) = threads {
        cmd.env("UNITWRIGHT_GENERATOR_THREADS", t);
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    let stderr = stderr
        .lines()
        .map(|l| match l.split_once("]: ") {
            Some((_, rest)) => format!("unitwright-generator[PID]: {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    Outcome {
        status: res.status.code(),
        stderr,
        stdout: String::from_utf8_lossy(&res.stdout).into_owned(),
        tree: snapshot(&out),
    }
}

fn assert_same(one: &Outcome, other: &Outcome, what: &str) {
    assert_eq!(one.status, other.status, "{what}: exit status differs");
    assert_eq!(one.stdout, other.stdout, "{what}: stdout differs");
    if one.stderr != other.stderr {
        let pos = one
            .stderr
            .lines()
            .zip(other.stderr.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "{what}: log records differ from line {}:\none thread: {:?}\nother:      {:?}",
            pos + 1,
            one.stderr.lines().nth(pos),
            other.stderr.lines().nth(pos)
        );
    }
    let keys = |o: &Outcome| o.tree.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(one), keys(other), "{what}: different output entries");
    for (rel, v) in &one.tree {
        assert_eq!(
            Some(v),
            other.tree.get(rel),
            "{what}: {} differs",
            rel.display()
        );
    }
}

#[test]
fn two_threads_write_the_same_files_links_and_log_records_as_one() {
    let root = tempfile::tempdir().unwrap();
    write_corpus(root.path());
    let one = run(root.path(), Some("1"), &["-v"]);

    // The corpus exercises what it is meant to: a failed write, failed loads and conversions,
    // duplicates, conflicting links, the fallback to a later directory.
    assert_eq!(one.status, Some(1));
    for needle in [
        "generating service file",
        "error loading drop-in of app5.container",
        "unsupported key 'Frobnicate'",
        "is not a key-value pair",
        "both generate dup.service",
        "Creating symlink",
    ] {
        assert!(one.stderr.contains(needle), "stderr lacks {needle:?}");
    }
    assert!(one.tree.len() > UNITS, "only {} entries", one.tree.len());
    assert!(one.tree.contains_key(Path::new("fallback.service")));
    assert!(matches!(
        one.tree.get(Path::new("shared-alias.service")),
        Some(Err(_))
    ));
    assert!(!one.tree.contains_key(Path::new("app5.service")));

    assert_same(&one, &run(root.path(), Some("2"), &["-v"]), "two threads");
    assert_same(&one, &run(root.path(), None, &["-v"]), "automatic choice");
    // Without -v (no debug records) as well.
    assert_same(
        &run(root.path(), Some("1"), &[]),
        &run(root.path(), Some("2"), &[]),
        "two threads, default log level",
    );
}

#[test]
fn dryrun_prints_the_same_units_and_records_with_either_setting() {
    let root = tempfile::tempdir().unwrap();
    write_corpus(root.path());
    let one = run(root.path(), Some("1"), &["-dryrun"]);
    assert!(one.stdout.matches("---app").count() > UNITS / 2);
    assert_same(&one, &run(root.path(), Some("2"), &["-dryrun"]), "dryrun");
}
