#![allow(clippy::unwrap_used)]
//! Golden output trees for the generator: every directory under `tests/generator/` is a case.
//!
//! A case has
//! * `input/`: Quadlet files (the search directories are sub-directories, see `dirs`);
//! * `case.conf`: `key = value` lines:
//!   * `dirs = a b`: sub-directories of `input/` passed as `QUADLET_UNIT_DIRS`, highest priority
//!     first (default: `input/` itself); `dirs = none` leaves `QUADLET_UNIT_DIRS` unset;
//!   * `args = -user`: extra flags; `env = NAME=VALUE` (repeatable; `UNITWRIGHT_PODMAN_VERSION`
//!     is `off`, Quadlet 5.4.2's output, unless a case sets it);
//!   * `exit = N` (default 0); `stderr = TEXT` (repeatable, each must appear in stderr);
//!   * `dryrun = true`: run with `-dryrun` and compare stdout with `expected.stdout`;
//! * `expected/`: the expected output directory, symlinks included (otherwise).
//!
//! In every file, env value and expected text, `@INPUT@` stands for the absolute path of
//! `input/` and `@GENERATOR@` for the generator binary. Regenerate the expected output with
//! `UPDATE_GOLDEN=1 cargo test -p unitwright-generator --test golden` and review the diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::snapshot;

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

#[derive(Default)]
struct Case {
    dirs: Option<Vec<String>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    exit: i32,
    stderr: Vec<String>,
    dryrun: bool,
}

fn read_case(dir: &Path, input: &str) -> Case {
    let mut c = Case::default();
    let text = fs::read_to_string(dir.join("case.conf")).unwrap_or_default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: bad line {line:?}", dir.display()));
        let v = v.trim().replace("@INPUT@", input);
        match k.trim() {
            "dirs" => c.dirs = Some(v.split_whitespace().map(str::to_owned).collect()),
            "args" => c.args.extend(v.split_whitespace().map(str::to_owned)),
            "env" => {
                let (n, val) = v.split_once('=').expect("env = NAME=VALUE");
                c.env.push((n.to_owned(), val.to_owned()));
            }
            "exit" => c.exit = v.parse().expect("exit = N"),
            "stderr" => c.stderr.push(v),
            "dryrun" => c.dryrun = v == "true",
            other => panic!("{}: unknown key {other}", dir.display()),
        }
    }
    c
}

/// A small line diff (longest common subsequence) for readable failures.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        }
    }
    out
}

fn normalize(text: &str, input: &str) -> String {
    text.replace(input, "@INPUT@").replace(GEN, "@GENERATOR@")
}

fn copy_tree(snap: &BTreeMap<PathBuf, Result<String, PathBuf>>, to: &Path, input: &str) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for (rel, v) in snap {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        match v {
            Ok(text) => fs::write(&dest, normalize(text, input)).unwrap(),
            Err(target) => std::os::unix::fs::symlink(target, &dest).unwrap(),
        }
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let input_dir = fs::canonicalize(dir.join("input")).unwrap();
    let input = input_dir.to_str().unwrap().to_owned();
    let case = read_case(dir, &input);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(GEN);
    // The trees show Quadlet 5.4.2's output unless a case names a podman version (the default,
    // `auto`, would depend on the podman installed).
    cmd.env_clear()
        .env("PODMAN", "/usr/bin/podman")
        .env("UNITWRIGHT_PODMAN_VERSION", "off");
    match &case.dirs {
        None => {
            cmd.env("QUADLET_UNIT_DIRS", &input);
        }
        Some(d) if d == &["none"] => {}
        Some(d) => {
            let list: Vec<String> = d.iter().map(|s| format!("{input}/{s}")).collect();
            cmd.env("QUADLET_UNIT_DIRS", list.join(":"));
        }
    }
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    cmd.args(&case.args).arg("-no-kmsg-log");
    if case.dryrun {
        cmd.arg("-dryrun");
    } else {
        cmd.arg(out.path());
    }
    let res = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    let mut problems = Vec::new();
    if res.status.code() != Some(case.exit) {
        problems.push(format!(
            "exit status {:?}, expected {}",
            res.status.code(),
            case.exit
        ));
    }
    for s in &case.stderr {
        if !stderr.contains(s.as_str()) {
            problems.push(format!("stderr lacks {s:?}"));
        }
    }
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if case.dryrun {
        let actual = normalize(&String::from_utf8_lossy(&res.stdout), &input);
        let path = dir.join("expected.stdout");
        if update {
            fs::write(&path, &actual).unwrap();
        }
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            problems.push(format!("stdout differs:\n{}", diff(&expected, &actual)));
        }
    } else {
        let actual = snapshot(out.path());
        if update {
            copy_tree(&actual, &dir.join("expected"), &input);
        }
        let expected = snapshot(&dir.join("expected"));
        for (rel, exp) in &expected {
            match (exp, actual.get(rel)) {
                (_, None) => problems.push(format!("missing {}", rel.display())),
                (Ok(e), Some(Ok(a))) => {
                    let a = normalize(a, &input);
                    if *e != a {
                        problems.push(format!("{} differs:\n{}", rel.display(), diff(e, &a)));
                    }
                }
                (Err(e), Some(Err(a))) if e == a => {}
                (e, Some(a)) => {
                    problems.push(format!("{}: expected {e:?}, got {a:?}", rel.display()));
                }
            }
        }
        for rel in actual.keys().filter(|r| !expected.contains_key(*r)) {
            problems.push(format!("unexpected {}", rel.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nstderr:\n{stderr}", problems.join("\n")))
    }
}

#[test]
fn generator_output_matches_golden_trees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    let mut failures = Vec::new();
    for c in &cases {
        if let Err(e) = run_case(c) {
            failures.push(format!(
                "=== {}\n{e}",
                c.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
