#![allow(clippy::unwrap_used)]
//! The generator under hostile conditions and input (issue 14, item 7): killed mid-run, files
//! systemd could not load, special files and links in the search path.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

fn generator(qdir: &Path) -> Command {
    let mut c = Command::new(GEN);
    c.env_clear()
        .env("QUADLET_UNIT_DIRS", qdir)
        .env("UNITWRIGHT_PODMAN_VERSION", "5.8.6")
        .arg("-no-kmsg-log");
    c
}

fn run(qdir: &Path, out: &Path) -> Output {
    generator(qdir).arg(out).output().unwrap()
}

/// Every entry under `dir` whose name starts with `.#` (a temporary file).
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".#") {
            found.push(name.clone());
        }
        if e.file_type().unwrap().is_dir() {
            found.extend(
                temporaries(&e.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
    }
    found
}

#[test]
fn a_hundred_kills_into_one_output_dir_leave_no_temporary_file() {
    let q = tempfile::tempdir().unwrap();
    for i in 0..300 {
        fs::write(
            q.path().join(format!("c{i}.container")),
            "[Container]\nImage=quay.io/x/y:1\n[Install]\nWantedBy=default.target\n",
        )
        .unwrap();
    }
    // On tmpfs, as /run/systemd/generator is (no fsync: short runs).
    let out = tempfile::tempdir_in("/dev/shm").unwrap();
    // The units exist from the first run on, so every later write goes through a temporary
    // file renamed over the unit.
    assert_eq!(run(q.path(), out.path()).status.code(), Some(0));
    let mut mid_write = 0;
    for _ in 0..100 {
        let mut child = generator(q.path())
            .arg(out.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it (SIGKILL) as soon as one of its temporary files exists, or when it ended.
        while child.try_wait().unwrap().is_none() {
            if !temporaries(out.path()).is_empty() {
                mid_write += 1;
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(mid_write > 0, "no run was killed while writing");
    let o = run(q.path(), out.path());
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let left = temporaries(out.path());
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(out.path().join("c299.service").exists());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the generator over one file `name` holding `text`: its exit code, its stderr and the
/// output directory.
fn run_one(name: &str, text: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let q = tempfile::tempdir().unwrap();
    fs::write(q.path().join(name), text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run(q.path(), out.path());
    (o.status.code(), stderr(&o), out)
}

#[test]
fn names_systemd_cannot_load_are_refused_with_the_file_and_reason() {
    let q = tempfile::tempdir().unwrap();
    let text = "[Container]\nImage=quay.io/x/y:1\n";
    for name in ["my app.container", ".container", "ok.container"] {
        fs::write(q.path().join(name), text).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let o = run(q.path(), out.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("converting \"my app.container\": \"my app.service\" is not a unit name systemd can load"),
        "{err}"
    );
    assert!(
        err.contains("converting \".container\": \".service\" is not a unit name"),
        "{err}"
    );
    let written: Vec<_> = fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, ["ok.service"]);
}

#[test]
fn a_line_longer_than_systemd_reads_is_refused() {
    let long = "x".repeat(1024 * 1024);
    let (code, err, out) = run_one(
        "big.container",
        &format!("[Container]\nImage=quay.io/x/y:1\nEnvironment=A={long}\n"),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "converting \"big.container\": the line Environment= in [X-Container] would be"
        ) && err.contains("systemd reads lines of at most 1048576 bytes (line 3)"),
        "{err}"
    );
    assert!(!out.path().join("big.service").exists());
}

#[test]
fn nul_bytes_are_refused_with_file_and_line() {
    let (code, err, out) = run_one(
        "nul.container",
        "[Container]\nImage=quay.io/x/y:1\nEnvironment=A=b\0c\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("nul.container:3: the line holds a NUL byte"),
        "{err}"
    );
    assert!(!out.path().join("nul.service").exists());
}

#[test]
fn special_files_and_broken_links_are_reported_not_silently_skipped() {
    let q = tempfile::tempdir().unwrap();
    let p = q.path();
    let fifo = p.join("fifo.container");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(p.join("missing.container"), p.join("dangling.container")).unwrap();
    std::os::unix::fs::symlink(p.join("loop-b.container"), p.join("loop-a.container")).unwrap();
    std::os::unix::fs::symlink(p.join("loop-a.container"), p.join("loop-b.container")).unwrap();
    fs::write(p.join("ok.container"), "[Container]\nImage=quay.io/x/y:1\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run(p, out.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for (name, what) in [
        ("fifo.container", "a FIFO"),
        ("dangling.container", "a dangling symbolic link"),
        ("loop-a.container", "a symbolic link loop"),
    ] {
        assert!(
            err.contains(&format!(
                "{name}: skipped: it is {what}, not a regular file"
            )),
            "{name}: {err}"
        );
    }
    assert!(out.path().join("ok.service").exists());
}

#[test]
fn a_symlinked_directory_is_not_followed_out_of_its_search_directory() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let sibling = top.path().join("sibling");
    fs::create_dir_all(root.join("inside")).unwrap();
    fs::create_dir_all(&sibling).unwrap();
    fs::write(
        sibling.join("stranger.container"),
        "[Container]\nImage=quay.io/x/y:1\n",
    )
    .unwrap();
    fs::write(
        root.join("inside/mine.container"),
        "[Container]\nImage=quay.io/x/y:1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&sibling, root.join("out")).unwrap();
    std::os::unix::fs::symlink(root.join("inside"), root.join("alias")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run(&root, out.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.path().join("mine.service").exists());
    assert!(!out.path().join("stranger.service").exists(), "{err}");
    assert!(
        err.contains("out: not followed: the symbolic link leads to"),
        "{err}"
    );
}

#[test]
fn install_targets_with_a_slash_are_dropped_with_a_message() {
    let (code, err, out) = run_one(
        "w.container",
        "[Container]\nImage=quay.io/x/y:1\n[Install]\nWantedBy=../../x.target default.target\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("w.container: WantedBy=../../x.target is not a unit name (it contains \"/\"); no link is made for it"),
        "{err}"
    );
    assert!(out.path().join("default.target.wants/w.service").exists());
    assert!(!top_level_escape(out.path()));
}

/// True if anything was written next to the output directory.
fn top_level_escape(out: &Path) -> bool {
    out.parent().unwrap().join("x.target.wants").exists()
}

/// Issue 13: a unit made from a file only its owner may read may hold secrets: 0600.
#[test]
fn a_unit_from_a_private_source_is_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let q = tempfile::tempdir().unwrap();
    let text = "[Container]\nImage=quay.io/x/y:1\nEnvironment=BMC_PASSWORD=hunter2\n";
    for (name, mode) in [("secret.container", 0o600), ("open.container", 0o644)] {
        let p = q.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    for out in [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir_in("/dev/shm").unwrap(),
    ] {
        // Twice: a new file, then one replacing the unit of the first run.
        for _ in 0..2 {
            let o = run(q.path(), out.path());
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let mode = |n: &str| {
                fs::metadata(out.path().join(n))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("secret.service"), 0o600);
            assert_eq!(mode("open.service"), 0o644);
        }
    }
}
