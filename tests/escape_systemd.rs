//! `unitwright escape` against the real `/usr/bin/systemd-escape` of systemd 252: same stdout,
//! exit status and stderr for random byte strings in every mode, and for option-parsing edge
//! cases. With `CI=true` a missing `systemd-escape` fails the tests; otherwise they are skipped
//! with a loud message.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use proptest::prelude::*;

const SYSTEMD_ESCAPE: &str = "/usr/bin/systemd-escape";

/// Whether the oracle can run; panics under `CI=true` when it cannot.
fn oracle_available() -> bool {
    if Path::new(SYSTEMD_ESCAPE).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{SYSTEMD_ESCAPE} is missing: install systemd (Debian 12: systemd 252) to run this test"
    );
    eprintln!("SKIPPED: {SYSTEMD_ESCAPE} is missing, cannot compare against systemd-escape");
    false
}

fn run(program: &str, pre: &[&str], args: &[Vec<u8>]) -> Output {
    let mut cmd = if program == SYSTEMD_ESCAPE {
        let mut c = Command::new(SYSTEMD_ESCAPE);
        // getopt names argv[0] in its messages.
        c.arg0("systemd-escape");
        c
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_unitwright"));
        c.arg("escape");
        c
    };
    cmd.args(pre)
        .args(args.iter().map(|a| OsString::from_vec(a.clone())))
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/bin:/bin");
    cmd.output().expect("the program runs")
}

/// Runs both with the same arguments and checks stdout, exit status and stderr (with
/// getopt's program name normalised).
fn assert_same(pre: &[&str], args: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let theirs = run(SYSTEMD_ESCAPE, pre, args);
    let ours = run("unitwright", pre, args);
    let show = |o: &Output| {
        format!(
            "rc={:?} stdout={:?} stderr={:?}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let context = format!(
        "args {pre:?} {:?}\n systemd-escape: {}\n unitwright:     {}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>(),
        show(&theirs),
        show(&ours)
    );
    prop_assert_eq!(theirs.status.code(), ours.status.code(), "{}", context);
    // Help and version texts name their own program; everything else is byte-exact.
    if theirs.stdout.starts_with(b"systemd-escape [OPTIONS...]") {
        prop_assert!(
            ours.stdout.starts_with(b"unitwright escape [OPTIONS...]"),
            "{}",
            context
        );
        return Ok(());
    }
    if theirs.stdout.starts_with(b"systemd 252") {
        prop_assert!(ours.stdout.starts_with(b"unitwright "), "{}", context);
        return Ok(());
    }
    prop_assert!(theirs.stdout == ours.stdout, "stdout differs: {}", context);
    let their_err =
        String::from_utf8_lossy(&theirs.stderr).replace("systemd-escape:", "unitwright escape:");
    prop_assert_eq!(
        their_err,
        String::from_utf8_lossy(&ours.stderr).into_owned(),
        "{}",
        context
    );
    Ok(())
}

/// Bytes (no NUL: argv cannot carry it) biased towards what matters to unit names.
fn operand() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"/.-\\x@_:aZ09fF".to_vec()),
        1 => prop::sample::select(b" \n\r\t$%\"'*?[]!".to_vec()),
        1 => 1u8..=255,
    ];
    prop_oneof![
        8 => prop::collection::vec(byte.clone(), 0..24),
        1 => prop::collection::vec(byte, 240..270),
        // Strings that look like escaped names and paths.
        2 => prop::collection::vec(
            prop::sample::select(vec![
                b"\\x2d".to_vec(), b"\\x00".to_vec(), b"\\x2f".to_vec(), b"\\x2e".to_vec(),
                b"-".to_vec(), b"foo".to_vec(), b"@".to_vec(), b".service".to_vec(),
                b"..".to_vec(), b"/".to_vec(), b"dev".to_vec(), b"\\x4".to_vec(),
            ]),
            0..8,
        ).prop_map(|parts| parts.concat()),
    ]
}

const MODES: &[&[&str]] = &[
    &[],
    &["--path"],
    &["--unescape"],
    &["--unescape", "--path"],
    &["--mangle"],
    &["--template=foo@.service"],
    &["--suffix=mount"],
    &["--path", "--suffix=mount"],
    &["--path", "--template=foo@.service"],
    &["--unescape", "--template=foo@.service"],
    &["--unescape", "--instance"],
    &["--unescape", "--instance", "--path"],
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_modes_match_systemd_escape_on_several_operands(
        mode in 0..MODES.len(),
        operands in prop::collection::vec(operand(), 1..3),
    ) {
        if !oracle_available() {
            return Ok(());
        }
        let mut pre = MODES[mode].to_vec();
        pre.push("--");
        assert_same(&pre, &operands)?;
    }
}

#[test]
fn each_mode_matches_systemd_escape_on_its_own_random_bytes() {
    if !oracle_available() {
        return;
    }
    for mode in MODES {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        let mut pre = mode.to_vec();
        pre.push("--");
        runner
            .run(&operand(), |op| assert_same(&pre, &[op]))
            .unwrap_or_else(|e| panic!("mode {mode:?}: {e}"));
    }
}

#[test]
fn option_parsing_matches_getopt_long() {
    if !oracle_available() {
        return;
    }
    let cases: &[&[&str]] = &[
        &["a/b", "--path"],
        &["--", "-p", "-"],
        &["-"],
        &["--suffix", "mount", "x"],
        &["--suffix", "--path", "x"],
        &["--suf=mount", "x"],
        &["--suffix=", "x"],
        &["--suffix=Service", "x"],
        &["x", "--suffix"],
        &["--template", "a@.service", "x"],
        &["--template=a@b.service", "x"],
        &["--temp=a@.socket", "x y"],
        &["-pu", "a-b"],
        &["-up", "-"],
        &["-u", "-m", "x"],
        &["-m", "-u", "x"],
        &["-mp", "x"],
        &["--bogus=1", "--help"],
        &["--help", "--bogus"],
        &["-ph"],
        &["-pi"],
        &["-i"],
        &["-v"],
        &["--version=1"],
        &["--version", "--bogus"],
        &["--vers"],
        &["--=x"],
        &["--", "--=x"],
        &["--p", "--in", "--un", "foo@a.service"],
        &["--instance", "x"],
        &["--instance", "--template=a@.service", "-u", "a@x.service"],
        &["--template=a@.service", "--suffix=mount"],
        &["--template=a@.service", "--suffix=mount", "x"],
        &["--template=a@.service", "-m", "x"],
        &["--suffix=mount", "-u", "x"],
        &["-p", "-m", "x"],
        &[],
        &["--"],
        &["-u", "a", "b\\x", "c"],
        &["-u", "--template=a@.service", "b@x.service"],
        &["-u", "--template=a@.service", "a@.service"],
        &["-u", "--instance", "a.service"],
        &["-p", "", "rel", "/ok"],
        &["--template=a@.service", ""],
        &["x", "y", "--mangle", "/dev/sda", "foo*"],
    ];
    let mut failures = Vec::new();
    for case in cases {
        if let Err(e) = assert_same(case, &[]) {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn posixly_correct_stops_at_the_first_operand() {
    if !oracle_available() {
        return;
    }
    let theirs = Command::new(SYSTEMD_ESCAPE)
        .args(["a/b", "--path"])
        .env("POSIXLY_CORRECT", "1")
        .output()
        .unwrap();
    let ours = Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .args(["escape", "a/b", "--path"])
        .env("POSIXLY_CORRECT", "1")
        .output()
        .unwrap();
    assert_eq!(theirs.status.code(), ours.status.code());
    assert_eq!(theirs.stdout, ours.stdout);
}

#[test]
fn long_paths_are_hashed_like_systemd_when_mangled() {
    if !oracle_available() {
        return;
    }
    let long =
        |prefix: &str, fill: &str| format!("{prefix}{}/{}", fill.repeat(100), "b".repeat(100));
    let operands: Vec<Vec<u8>> = [
        long("/", "aa"),
        long("/dev/", "a"),
        long("/sys/", "\u{fc}"),
        long("/x/", "%"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for mode in [
        &["--mangle", "--"][..],
        &["--path", "--suffix=mount", "--"],
        &["--path", "--"],
    ] {
        for op in &operands {
            assert_same(mode, std::slice::from_ref(op)).unwrap();
        }
    }
}
