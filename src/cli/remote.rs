//! Verbs that run `unitwright` itself on the host of `-H` (`instance ...`): their state (the
//! instance settings store) lives on that host, so the remote `unitwright` does the work.
//!
//! One `ssh` (the same command, options and `BatchMode` rule as the D-Bus transport, see
//! `bus::remote`) runs a small `sh` script there that first checks that `unitwright` is
//! installed and is this version, then `exec`s it with the same arguments minus `-H`. Its
//! standard output is passed through unchanged (so `--json` is the remote's JSON), its standard
//! error too, except for the script's own markers, which become messages naming the host and
//! the version found.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ExitCode, Stdio};

use anyhow::Context as _;

use crate::bus::{self, Host};

/// Exit status of the remote script when `unitwright` is missing there.
const NOT_INSTALLED: i32 = 98;
/// Exit status of the remote script when the remote `unitwright` has another version.
const OTHER_VERSION: i32 = 97;
/// The marker line carrying the remote version.
const VERSION_MARKER: &str = "unitwright-remote-version: ";

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The arguments without the program name and without `-H`/`--host` and its value.
pub fn without_host(args: &[OsString]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg
            .to_str()
            .with_context(|| format!("argument {arg:?} is not UTF-8"))?;
        if arg == "--" {
            out.push(arg.to_owned());
            out.extend(iter.map(|a| a.to_string_lossy().into_owned()));
            break;
        }
        if arg == "-H" || arg == "--host" {
            iter.next();
        } else if !(arg.starts_with("--host=") || (arg.starts_with("-H") && arg.len() > 2)) {
            out.push(arg.to_owned());
        }
    }
    Ok(out)
}

/// The remote script: check the installed version, then run `unitwright ARGS`. Without a
/// login session (no pam_systemd) ssh sets no `XDG_RUNTIME_DIR`; the user manager's is
/// `/run/user/UID`, which `--user` needs for its bus and settings.
pub fn script(args: &[String]) -> String {
    let version = format!("unitwright {}", env!("CARGO_PKG_VERSION"));
    let quoted: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    format!(
        "v=$(unitwright --version 2>/dev/null) || exit {NOT_INSTALLED}; \
         XDG_RUNTIME_DIR=${{XDG_RUNTIME_DIR:-/run/user/$(id -u)}}; export XDG_RUNTIME_DIR; \
         if [ \"$v\" != {want} ]; then echo \"{VERSION_MARKER}$v\" >&2; exit {OTHER_VERSION}; fi; \
         exec unitwright {args}",
        want = sh_quote(&version),
        args = quoted.join(" "),
    )
}

/// `--set-file KEY=PATH` names a file *here*: its contents travel on ssh's standard input and
/// the remote side reads `--set-file KEY=-` (so secrets stay out of every command line). One
/// such file per call (standard input is one stream); `KEY=-` passes our own standard input on.
fn local_files_to_stdin(
    mut args: Vec<String>,
    host: &Host,
) -> anyhow::Result<(Vec<String>, Option<Vec<u8>>)> {
    let mut data = None;
    let mut uses_stdin = false;
    let mut i = 0;
    while i < args.len() {
        let (value_at, value) = if args[i] == "--set-file" {
            (i + 1, args.get(i + 1).cloned())
        } else if let Some(v) = args[i].strip_prefix("--set-file=") {
            (i, Some(v.to_owned()))
        } else if args[i] == "--" {
            break;
        } else {
            i += 1;
            continue;
        };
        let Some((key, path)) = value.as_deref().and_then(|v| v.split_once('=')) else {
            i = value_at + 1;
            continue; // the remote side reports the malformed option
        };
        if path == "-" {
            uses_stdin = true;
        } else {
            anyhow::ensure!(
                data.is_none(),
                "with -H, only one --set-file KEY=PATH is possible per call (its contents go to \
                 {host} on standard input)"
            );
            let contents =
                std::fs::read(path).with_context(|| format!("reading --set-file {key}={path}"))?;
            data = Some(contents);
            let replacement = format!("{key}=-");
            args[value_at] = if value_at == i {
                format!("--set-file={replacement}")
            } else {
                replacement
            };
        }
        i = value_at + 1;
    }
    anyhow::ensure!(
        !(uses_stdin && data.is_some()),
        "with -H, --set-file KEY=- and --set-file KEY=PATH cannot be combined (both would use \
         standard input)"
    );
    Ok((args, data))
}

/// Local files for a quadlet verb: each PATH goes to the remote side as `pN/<its name>` in a
/// temporary directory there (a tar stream on ssh's standard input), keeping the name so that
/// an app keeps its default name (a directory's, a `.quadlets` file's).
#[derive(Debug, Default)]
pub struct Staging {
    /// (local path as given, name on the remote side relative to the staging directory)
    pub paths: Vec<(String, String)>,
}

impl Staging {
    /// Stages `paths`, rewriting their occurrences among `args` (positional arguments only:
    /// the value after `--app` is left alone).
    pub fn new(args: &mut [String], paths: &[std::path::PathBuf]) -> anyhow::Result<Staging> {
        let mut staging = Staging::default();
        for (i, path) in paths.iter().enumerate() {
            let given = path.to_str().context("a PATH is not UTF-8")?.to_owned();
            let name = std::fs::canonicalize(path)
                .with_context(|| format!("reading {given}"))?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("{given} has no file name"))?;
            staging.paths.push((given, format!("p{i}/{name}")));
        }
        let mut next = 0;
        let mut skip = false;
        for arg in args.iter_mut() {
            if std::mem::take(&mut skip) {
                continue;
            }
            if arg == "--app" {
                skip = true;
                continue;
            }
            if let Some((given, staged)) = staging.paths.get(next) {
                if arg == given {
                    arg.clone_from(staged);
                    next += 1;
                }
            }
        }
        anyhow::ensure!(
            next == staging.paths.len(),
            "cannot find the PATH arguments"
        );
        Ok(staging)
    }

    /// The tar stream of the staged files (`tar -h`: symbolic links are followed).
    fn tar(&self) -> anyhow::Result<Vec<u8>> {
        let dir = tempfile::tempdir().context("creating a staging directory")?;
        for (given, staged) in &self.paths {
            let link = dir.path().join(staged);
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let target = std::fs::canonicalize(given)?;
            std::os::unix::fs::symlink(target, &link)?;
        }
        let out = std::process::Command::new("tar")
            .args(["-c", "-h", "-f", "-", "-C"])
            .arg(dir.path())
            .arg(".")
            .stderr(Stdio::inherit())
            .output()
            .context("running tar")?;
        anyhow::ensure!(out.status.success(), "tar failed ({})", out.status);
        Ok(out.stdout)
    }

    /// Puts the local paths back into a text of the remote side.
    fn unstage(&self, text: &str, remote_dir: Option<&str>) -> String {
        let mut text = text.to_owned();
        for (given, staged) in &self.paths {
            if let Some(dir) = remote_dir {
                text = text.replace(&format!("{dir}/{staged}"), given);
            }
            text = text.replace(staged.as_str(), given);
        }
        text
    }
}

/// The marker line carrying the remote staging directory.
const STAGING_MARKER: &str = "unitwright-remote-staging: ";

/// Runs this invocation (`args` as given, program name first) on `host`.
pub fn run(host: &Host, scope: bus::Scope, args: &[OsString]) -> anyhow::Result<ExitCode> {
    let (args, stdin_data) = local_files_to_stdin(without_host(args)?, host)?;
    run_remote(host, scope, &args, stdin_data, None, false)
}

/// Runs a `quadlet` verb on `host`: the files of `paths` travel as a tar stream; with `json`
/// the result gets a `host` field (each element of an array).
pub fn run_quadlet(
    host: &Host,
    scope: bus::Scope,
    args: &[OsString],
    paths: &[std::path::PathBuf],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut args = without_host(args)?;
    if paths.is_empty() {
        return run_remote(host, scope, &args, None, None, json);
    }
    let staging = Staging::new(&mut args, paths)?;
    let data = staging.tar()?;
    run_remote(host, scope, &args, Some(data), Some(&staging), json)
}

/// Adds `"host"` to a JSON object, or to each object of an array.
fn with_host(value: &mut serde_json::Value, host: &str) {
    match value {
        serde_json::Value::Object(map) => {
            map.insert("host".to_owned(), host.into());
        }
        serde_json::Value::Array(items) => {
            for item in items {
                with_host(item, host);
            }
        }
        _ => {}
    }
}

fn run_remote(
    host: &Host,
    scope: bus::Scope,
    args: &[String],
    stdin_data: Option<Vec<u8>>,
    staging: Option<&Staging>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let script = match staging {
        None => script(args),
        Some(_) => staged_script(args),
    };
    let command = format!("sh -c {}", sh_quote(&script));
    let ssh = bus::ssh_argv(host, &command, bus::ssh_batch_mode());
    ::log::debug!("running {ssh:?}");
    let capture = staging.is_some() || json;
    let mut child = std::process::Command::new(&ssh[0])
        .args(&ssh[1..])
        .stdin(if stdin_data.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", ssh[0]))?;
    if let (Some(data), Some(mut pipe)) = (stdin_data, child.stdin.take()) {
        // A thread, so that a remote side that does not read cannot block us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let stdout = child.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let mut version = None;
    let mut remote_dir = None;
    let mut kept = Vec::new();
    if let Some(pipe) = child.stderr.take() {
        for line in BufReader::new(pipe).lines() {
            let line = line.unwrap_or_default();
            if let Some(v) = line.strip_prefix(VERSION_MARKER) {
                version = Some(v.to_owned());
                continue;
            }
            if let Some(d) = line.strip_prefix(STAGING_MARKER) {
                remote_dir = Some(d.to_owned());
                continue;
            }
            let line =
                staging.map_or_else(|| line.clone(), |s| s.unstage(&line, remote_dir.as_deref()));
            super::log::line(&line);
            kept.push(line);
        }
    }
    let status = child.wait().context("waiting for ssh")?;
    if let Some(reader) = stdout {
        let mut text = reader.join().unwrap_or_default();
        if let Some(s) = staging {
            text = s.unstage(&text, remote_dir.as_deref());
        }
        if json {
            text = add_host_to_json(&text, &host.to_string());
        }
        out!("{text}");
        let _ = std::io::stdout().flush();
    }
    match status.code() {
        Some(NOT_INSTALLED) => anyhow::bail!(
            "unitwright is not installed on {host} (this verb with -H runs it there; \
             install the same version, {})",
            env!("CARGO_PKG_VERSION")
        ),
        Some(OTHER_VERSION) => anyhow::bail!(
            "{host} has {}, this is unitwright {} (this verb with -H needs the same version \
             on both sides)",
            version.as_deref().unwrap_or("another version"),
            env!("CARGO_PKG_VERSION")
        ),
        Some(255) => anyhow::bail!(
            "{}",
            bus::describe_ssh_failure(host, scope, Some(255), &kept.join("\n"))
        ),
        Some(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        None => anyhow::bail!("ssh to {host} ended by a signal ({status})"),
    }
}

/// `host` added to the JSON document, or to each JSON Lines object, of `text`; text that is not
/// JSON is left as it is.
fn add_host_to_json(text: &str, host: &str) -> String {
    if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) {
        with_host(&mut value, host);
        return format!("{value}\n");
    }
    text.lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(mut v) => {
                with_host(&mut v, host);
                format!("{v}\n")
            }
            Err(_) => format!("{l}\n"),
        })
        .collect()
}

/// [`script`] for staged files: unpack the tar stream from standard input into a temporary
/// directory, run there, remove it.
pub fn staged_script(args: &[String]) -> String {
    let run = script(args).replace("exec unitwright", "unitwright");
    format!(
        "d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; \
         echo \"{STAGING_MARKER}$d\" >&2; tar -x -f - -C \"$d\" || exit 1; cd \"$d\" || exit 1; \
         {run}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn strips_the_host_option_in_every_spelling() {
        for args in [
            &["uw", "-H", "h", "instance", "list", "t@.service"][..],
            &["uw", "instance", "--host", "h", "list", "t@.service"],
            &["uw", "--host=h", "instance", "list", "t@.service"],
            &["uw", "-Hh", "instance", "list", "t@.service"],
        ] {
            assert_eq!(
                without_host(&os(args)).expect("utf-8"),
                ["instance", "list", "t@.service"]
            );
        }
        assert_eq!(
            without_host(&os(&["uw", "instance", "start", "t", "--", "-H"])).expect("utf-8"),
            ["instance", "start", "t", "--", "-H"]
        );
    }

    #[test]
    fn a_local_set_file_travels_on_stdin() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret").expect("writing");
        let host: Host = "h".parse().expect("a host");
        let args: Vec<String> = ["instance", "start", "t", "x", "--set-file"]
            .iter()
            .map(ToString::to_string)
            .chain([format!("PW={}", file.display())])
            .collect();
        let (args, data) = local_files_to_stdin(args, &host).expect("accepted");
        assert_eq!(args.last().map(String::as_str), Some("PW=-"));
        assert_eq!(data.as_deref(), Some(&b"s3cret"[..]));
        let two = vec![
            format!("--set-file=A={}", file.display()),
            format!("--set-file=B={}", file.display()),
        ];
        assert!(local_files_to_stdin(two, &host).is_err());
    }

    #[test]
    fn quotes_for_the_remote_shell() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's $x"), r"'it'\''s $x'");
        let s = script(&["instance".into(), "start".into(), "t".into(), "x'y".into()]);
        assert!(
            s.ends_with(r"exec unitwright 'instance' 'start' 't' 'x'\''y'"),
            "{s}"
        );
    }
}
