//! `unitwright::unit::quote` against systemd 252's real unit-file parser: values are rendered
//! into a unit, `systemd --test` (no running manager needed) loads and dumps it, and what systemd
//! parsed must be exactly the original values.
//!
//! `systemd --test` refuses to run as root, so as root it is run through `runuser -u nobody`.
//! With `CI=true` the test fails when systemd cannot be run; otherwise it is skipped loudly.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use unitwright::unit::quote::{self, EnvExpansion};

const SYSTEMD: &str = "/lib/systemd/systemd";
const UNIT: &str = "uw-quote.service";

fn systemd_available() -> bool {
    if Path::new(SYSTEMD).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{SYSTEMD} is missing: install systemd 252 to check quoting against the real parser"
    );
    eprintln!("SKIPPED: {SYSTEMD} is missing, cannot check quoting against systemd's parser");
    false
}

/// Loads `unit_text` as `uw-quote.service` with `systemd --test` and returns the dump of that
/// unit (from its `-> Unit` header to the next unit).
fn systemd_dump(unit_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join(UNIT), unit_text).unwrap();
    let unit_path = format!("SYSTEMD_UNIT_PATH={}:", dir.path().display());
    let test_args = [SYSTEMD, "--test", "--system", "--no-pager"];
    let is_root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "env", &unit_path]);
        c
    } else {
        let mut c = Command::new("env");
        c.arg(&unit_path);
        c
    };
    let output = cmd
        .args(test_args)
        .arg(format!("--unit={UNIT}"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd --test runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd --test failed ({}): {stderr}",
        output.status
    );
    let header = format!("-> Unit {UNIT}:");
    let start = stdout
        .find(&header)
        .unwrap_or_else(|| panic!("no dump of {UNIT} in systemd's output; stderr: {stderr}"));
    let rest = &stdout[start + header.len()..];
    let end = rest.find("\n\t-> Unit ").unwrap_or(rest.len());
    let dump = rest[..end].to_owned();
    assert!(
        dump.contains("Unit Load State: loaded"),
        "unit did not load: {stderr}\n{unit_text}"
    );
    // Anything systemd had to say about our file means a value was not read as written.
    assert!(
        !stderr.contains(UNIT),
        "systemd complained about the unit: {stderr}\n{unit_text}"
    );
    dump
}

/// Decodes one `Command Line:` of the dump (systemd quotes words that need it in `"…"`, with
/// `\\ \" \$ \`` , C escapes and `\NNN` octal for bytes that are not UTF-8).
fn decode_command_line(line: &str) -> Vec<Vec<u8>> {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let mut word = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    let c = b[i];
                    match c {
                        b'0'..=b'7' => {
                            let oct = std::str::from_utf8(&b[i..i + 3]).unwrap();
                            word.push(u8::from_str_radix(oct, 8).unwrap());
                            i += 2;
                        }
                        b'a' => word.push(0x07),
                        b'b' => word.push(0x08),
                        b't' => word.push(b'\t'),
                        b'n' => word.push(b'\n'),
                        b'v' => word.push(0x0b),
                        b'f' => word.push(0x0c),
                        b'r' => word.push(b'\r'),
                        b'\\' | b'"' | b'$' | b'`' => word.push(c),
                        _ => panic!("unknown escape \\{} in {line:?}", char::from(c)),
                    }
                } else {
                    word.push(b[i]);
                }
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                word.push(b[i]);
                i += 1;
            }
        }
        words.push(word);
        // One space between words.
        i += 1;
    }
    words
}

fn command_lines(dump: &str) -> Vec<Vec<Vec<u8>>> {
    dump.lines()
        .filter_map(|l| l.trim_start_matches('\t').strip_prefix("Command Line: "))
        .map(decode_command_line)
        .collect()
}

/// The value systemd stored for `Environment=` variable `name` (values may hold raw newlines,
/// so a value runs up to the next `Environment:` line).
fn environment_value(dump: &str, name: &str) -> String {
    let marker = format!("\t\tEnvironment: {name}=");
    let start = dump
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} missing in dump"))
        + marker.len();
    let end = dump[start..].find("\n\t\tEnvironment: ").unwrap() + start;
    dump[start..end].to_owned()
}

fn exec_arg() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"\"'\\%$; {}=#`\n\r\tax".to_vec()),
        2 => 1u8..=255,
    ];
    prop_oneof![
        6 => prop::collection::vec(byte.clone(), 0..20),
        1 => prop::collection::vec(byte, 1000..1500),
        2 => "\\PC{0,12}".prop_map(String::into_bytes),
        1 => Just(b"${HOME}".to_vec()),
        1 => Just(b"$HOME x".to_vec()),
        1 => Just(b";".to_vec()),
        1 => Just(b"-".to_vec()),
    ]
}

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[\"'\\\\%$; {}=#`\n\r\tx\u{e9}\u{1f600}]{0,16}",
        2 => "[^\u{0}]{0,16}",
        1 => "[a-z]{500,600}",
    ]
}

#[test]
fn command_line_decoder_reads_systemds_quoting() {
    let words = decode_command_line(r#"/bin/echo "a b" 100% "\$\$" "\\" "\"" "x\377y" "\n" """#);
    let expected: Vec<&[u8]> = vec![
        b"/bin/echo",
        b"a b",
        b"100%",
        b"$$",
        b"\\",
        b"\"",
        b"x\xffy",
        b"\n",
        b"",
    ];
    assert_eq!(words, expected);
}

proptest! {
    // Each case loads one unit holding many values, so few cases cover many values.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn systemd_reads_back_quoted_exec_lines_and_environment(
        commands in prop::collection::vec((prop::collection::vec(exec_arg(), 0..5), any::<bool>()), 1..12),
        envs in prop::collection::vec(env_value(), 1..12),
        description in "[^\u{0}-\u{1f}\u{7f}]{0,30}",
    ) {
        if !systemd_available() {
            return Ok(());
        }
        let mut unit = String::from("[Unit]\n");
        // Plain settings cannot carry edge blanks or a trailing backslash: strip both until
        // neither is left ("! \\" would otherwise leave a trailing blank).
        let mut description = description.as_str();
        loop {
            let next = description.trim_matches(' ').trim_end_matches('\\');
            if next == description {
                break;
            }
            description = next;
        }
        let description = description.to_owned();
        if !description.is_empty() {
            writeln!(unit, "Description={}", quote::plain_setting(&description).unwrap()).unwrap();
        }
        unit += "[Service]\n";
        for (args, literal) in &commands {
            let env = if *literal { EnvExpansion::Disabled } else { EnvExpansion::Enabled };
            writeln!(unit, "ExecStartPre={}", quote::exec_command("/bin/echo", args, env).unwrap()).unwrap();
        }
        unit += "ExecStart=/bin/true\n";
        for (k, value) in envs.iter().enumerate() {
            writeln!(unit, "Environment={}", quote::environment_assignment(&format!("UW{k}"), value).unwrap()).unwrap();
        }
        unit += "Environment=UWEND=end\n";

        let dump = systemd_dump(&unit);
        let lines = command_lines(&dump);
        // ExecStartPre lines in order, then ExecStart.
        prop_assert_eq!(lines.len(), commands.len() + 1, "{}", dump);
        for ((args, literal), line) in commands.iter().zip(&lines) {
            prop_assert_eq!(&line[0], &b"/bin/echo".to_vec());
            // systemd keeps `$$` until exec time, where replace_env_argv turns it into `$`.
            let expected: Vec<Vec<u8>> = args
                .iter()
                .map(|a| if *literal { a.clone() } else { double_dollars(a) })
                .collect();
            prop_assert_eq!(&line[1..], expected.as_slice(), "unit:\n{}", unit);
        }
        for (k, value) in envs.iter().enumerate() {
            prop_assert_eq!(&environment_value(&dump, &format!("UW{k}")), value, "unit:\n{}", unit);
        }
        if !description.is_empty() {
            let got = dump.lines().find_map(|l| l.strip_prefix("\t\tDescription: ")).unwrap();
            prop_assert_eq!(got, description.as_str());
        }
    }
}

fn double_dollars(a: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    for &b in a {
        out.push(b);
        if b == b'$' {
            out.push(b);
        }
    }
    out
}

#[test]
fn exec_prefix_characters_stay_arguments_and_dollar_words_stay_words() {
    if !systemd_available() {
        return;
    }
    // Arguments that naive rendering turns into flags, extra commands, variables or specifiers.
    let args: Vec<&[u8]> = vec![
        b"-",
        b"@x",
        b";",
        b"a ; /bin/evil",
        b"$HOME",
        b"%n",
        b"\\;",
        b"\"",
        b"'",
    ];
    let unit = format!(
        "[Service]\nExecStart={}\n",
        quote::exec_command("/bin/echo", &args, EnvExpansion::Enabled).unwrap()
    );
    let dump = systemd_dump(&unit);
    let lines = command_lines(&dump);
    assert_eq!(lines.len(), 1, "{dump}");
    let expected: Vec<Vec<u8>> = args.iter().map(|a| double_dollars(a)).collect();
    assert_eq!(lines[0][1..], expected[..]);
}

#[test]
fn executables_with_spaces_percent_and_unicode_load_as_written() {
    if !systemd_available() {
        return;
    }
    let exe = "/opt/my tool/100%/b\u{ef}n";
    let unit = format!(
        "[Service]\nExecStart={}\n",
        quote::exec_command(exe, &["x"], EnvExpansion::Disabled).unwrap()
    );
    let lines = command_lines(&systemd_dump(&unit));
    assert_eq!(lines, vec![vec![exe.as_bytes().to_vec(), b"x".to_vec()]]);
}

#[test]
fn what_systemd_refuses_in_executables_is_refused_before_writing() {
    // systemd 252 fails the whole unit ("Executable name contains special characters") for these.
    for exe in ["/bin/o'k", "/bin/a\\b", "/bin/a\u{7f}b", "/bin/a\"b"] {
        assert!(quote::exec_path(exe).is_err(), "{exe:?}");
    }
}
