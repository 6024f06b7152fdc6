//! The D-Bus connection to a service manager on another host: one `ssh` process per
//! [`super::Manager`], running `systemd-stdio-bridge` on the remote side.
//!
//! # How
//! * `ssh -xT [-o BatchMode=yes] [-p PORT] [-l USER] -- HOST COMMAND`, with the user's own
//!   ssh configuration and agent. `BatchMode` is set when our standard input is not a terminal
//!   (nobody could answer a password or host-key prompt). `$UNITWRIGHT_SSH` replaces `ssh`
//!   (a program and arguments separated by blanks, e.g. `ssh -F /path/config`), as
//!   `$SYSTEMD_SSH` does for systemctl.
//! * The ssh process gets one end of a Unix socket pair as its standard input and output; the
//!   other end carries the zbus connection. The bridge on the remote side authenticates itself
//!   to the remote bus as the remote user and accepts `ANONYMOUS` from us (sd-bus's bridge
//!   runs as an anonymous-auth server), so we authenticate with `ANONYMOUS`: our local uid
//!   means nothing there.
//! * The remote command names the bus explicitly: `--system` for the system manager, and for
//!   `--user` the bus of the remote user's own manager,
//!   `--bus-path=unix:path=/run/user/$(id -u)/bus` (the uid is the remote login's, expanded by
//!   a remote `sh`). systemctl refuses `-H --user` (systemd #24261); with an explicit path a
//!   user request can never silently reach the system bus.
//! * The bridge is told to log to its standard error (`SYSTEMD_LOG_TARGET=console`; on a
//!   pipe it would log to the journal), so that its reason for failing reaches us through ssh.
//! * When the connection cannot be set up, ssh's and the bridge's standard error and ssh's
//!   exit status say why: the host is unreachable, authentication was refused, the bridge is
//!   missing, or the bus is not running ([`Problem`]).
//! * While connected, ssh's standard error is kept (its last lines); when the connection
//!   breaks, [`Tunnel::ended`] says how ssh ended, for the message about the lost connection.

use std::fmt;
use std::io::IsTerminal as _;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

use super::{Error, Scope};

/// Where to reach a remote service manager: `[USER@]HOST[:PORT]` (an IPv6 address with a
/// port in brackets: `[::1]:2222`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The login name (`-l`), or the one ssh picks (its config, else the local user name).
    pub user: Option<String>,
    /// Host name or address, as ssh resolves it (aliases of `~/.ssh/config` work).
    pub host: String,
    /// The port (`-p`), or ssh's choice.
    pub port: Option<u16>,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.port, self.host.contains(':')) {
            (Some(port), true) => write!(f, "[{}]:{port}", self.host),
            (Some(port), false) => write!(f, "{}:{port}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

impl FromStr for Host {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "invalid host {s:?}: {why}; expected [USER@]HOST[:PORT]"
            ))
        };
        if s.is_empty() {
            return bad("empty");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains blanks or control characters");
        }
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, s),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((h, after)) = bracketed.split_once(']') else {
                return bad("missing ']'");
            };
            match after {
                "" => (h, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return bad("unexpected text after ']'"),
                },
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None) // a bare IPv6 address
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return bad("no host name");
        }
        if host.starts_with('-') || user.is_some_and(|u| u.is_empty() || u.starts_with('-')) {
            return bad("names must not be empty or start with '-'");
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return bad("the port must be a number from 1 to 65535"),
            },
        };
        Ok(Host {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
        })
    }
}

/// Why a remote connection could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// ssh is not installed here.
    NoSsh,
    /// The host name did not resolve, or no connection to its ssh port could be made.
    Unreachable,
    /// The host's key is unknown or changed and could not be confirmed.
    HostKey,
    /// The ssh server refused our authentication.
    AuthRefused,
    /// `systemd-stdio-bridge` is not installed (or not on the PATH) on the host.
    NoBridge,
    /// The bridge ran but the bus it was pointed at is not there.
    BusNotRunning,
    /// Anything else (ssh's exit status and messages say what).
    Other,
}

impl Problem {
    /// Classifies a failed connection from ssh's exit code and standard error.
    pub fn classify(code: Option<i32>, stderr: &str) -> Problem {
        let has = |needle: &str| stderr.contains(needle);
        if has("Permission denied")
            || has("Too many authentication failures")
            || has("No more authentication methods")
        {
            Problem::AuthRefused
        } else if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION") {
            Problem::HostKey
        } else if has("Could not resolve hostname")
            || has("Connection refused")
            || has("Network is unreachable")
            || has("No route to host")
            || has("Connection timed out")
            || has("Name or service not known")
            || (code == Some(255) && has("connect to host"))
        {
            Problem::Unreachable
        } else if has("Failed to start bus client")
            || has("Failed to connect to bus")
            || has("Failed to set address")
        {
            Problem::BusNotRunning
        } else if code == Some(127) || (has("systemd-stdio-bridge") && has("not found")) {
            Problem::NoBridge
        } else {
            Problem::Other
        }
    }

    /// What to tell the user, before the details from ssh.
    fn explain(self, host: &Host, scope: Scope) -> String {
        match self {
            Problem::NoSsh => "ssh is not installed here (Debian: openssh-client)".to_owned(),
            Problem::Unreachable => format!("host {} is unreachable", host.host),
            Problem::HostKey => format!(
                "the host key of {} could not be verified (add it to known_hosts first)",
                host.host
            ),
            Problem::AuthRefused => format!(
                "authentication refused by {host} (is the key in your ssh agent or \
                 ~/.ssh/config, and in the remote user's authorized_keys?)"
            ),
            Problem::NoBridge => format!(
                "systemd-stdio-bridge is not installed on {} (it comes with systemd)",
                host.host
            ),
            Problem::BusNotRunning => match scope {
                Scope::User => format!(
                    "the user manager's bus is not running on {} (/run/user/UID/bus of the \
                     remote user; is the user logged in or lingering?)",
                    host.host
                ),
                Scope::System => format!("the system bus is not running on {}", host.host),
            },
            Problem::Other => "ssh failed".to_owned(),
        }
    }
}

/// What to tell the user about a failed ssh to `host`: the class of problem, then ssh's
/// (or the remote command's) own words.
pub fn describe_failure(host: &Host, scope: Scope, code: Option<i32>, stderr: &str) -> String {
    let problem = Problem::classify(code, stderr);
    let detail = match (stderr.trim(), code) {
        ("", Some(c)) => format!("ssh exited with status {c}"),
        ("", None) => "ssh was killed".to_owned(),
        (text, _) => text.lines().collect::<Vec<_>>().join("; "),
    };
    format!("{}: {detail}", problem.explain(host, scope))
}

/// The ssh process carrying one connection.
#[derive(Debug)]
pub(crate) struct Tunnel {
    child: Mutex<Option<tokio::process::Child>>,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How many of ssh's last stderr lines are kept.
const KEPT_LINES: usize = 20;

/// The command line run on the remote host.
pub fn remote_command(scope: Scope) -> String {
    match scope {
        Scope::System => "env SYSTEMD_LOG_TARGET=console systemd-stdio-bridge --system".to_owned(),
        Scope::User => "env SYSTEMD_LOG_TARGET=console sh -c 'exec systemd-stdio-bridge --user \
                        --bus-path=unix:path=/run/user/$(id -u)/bus'"
            .to_owned(),
    }
}

/// The local ssh command: `$UNITWRIGHT_SSH` split on blanks, else `ssh`.
fn ssh_program() -> Vec<String> {
    let words: Vec<String> = std::env::var("UNITWRIGHT_SSH")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        vec!["ssh".to_owned()]
    } else {
        words
    }
}

/// The full ssh argument vector (program first) for running `command` on `host`.
pub fn ssh_argv(host: &Host, command: &str, batch: bool) -> Vec<String> {
    let mut argv = ssh_program();
    argv.push("-xT".to_owned());
    if batch {
        argv.extend(["-o".to_owned(), "BatchMode=yes".to_owned()]);
    }
    if let Some(port) = host.port {
        argv.extend(["-p".to_owned(), port.to_string()]);
    }
    if let Some(user) = &host.user {
        argv.extend(["-l".to_owned(), user.clone()]);
    }
    argv.extend(["--".to_owned(), host.host.clone(), command.to_owned()]);
    argv
}

/// Whether ssh must not prompt: our standard input is not a terminal.
pub fn batch_mode() -> bool {
    !std::io::stdin().is_terminal()
}

impl Tunnel {
    /// Starts ssh to `host` running the bridge for `scope`; returns our end of the socket.
    #[allow(clippy::result_large_err)] // the crate's one error type, as everywhere else
    pub(crate) fn open(
        host: &Host,
        scope: Scope,
    ) -> Result<(tokio::net::UnixStream, Tunnel), Error> {
        let io_err = |e: std::io::Error| Error::Remote {
            host: host.to_string(),
            why: format!("setting up the connection: {e}"),
        };
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(io_err)?;
        let theirs_out: OwnedFd = theirs.try_clone().map_err(io_err)?.into();
        let theirs_in: OwnedFd = theirs.into();
        let argv = ssh_argv(host, &remote_command(scope), batch_mode());
        log::debug!("connecting through {argv:?}");
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::from(theirs_in))
            .stdout(Stdio::from(theirs_out))
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            let problem = if e.kind() == std::io::ErrorKind::NotFound {
                Problem::NoSsh
            } else {
                Problem::Other
            };
            Error::Remote {
                host: host.to_string(),
                why: format!("{}: running {}: {e}", problem.explain(host, scope), argv[0]),
            }
        })?;
        // `cmd` holds the parent's copies of the child's ends: drop them, so that our end sees
        // EOF when ssh exits.
        drop(cmd);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stderr.take().map(|pipe| {
            let lines = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut pipe = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = pipe.next_line().await {
                    log::debug!("ssh: {line}");
                    let mut kept = lines.lock().unwrap_or_else(PoisonError::into_inner);
                    if kept.len() == KEPT_LINES {
                        kept.remove(0);
                    }
                    kept.push(line);
                }
            })
        });
        ours.set_nonblocking(true).map_err(io_err)?;
        let stream = tokio::net::UnixStream::from_std(ours).map_err(io_err)?;
        Ok((
            stream,
            Tunnel {
                child: Mutex::new(Some(child)),
                stderr,
                reader: Mutex::new(reader),
            },
        ))
    }

    /// Waits (up to `limit`) for ssh to exit and its standard error to be read; returns the
    /// exit code (`None` if killed by a signal or still running) and the kept stderr lines.
    pub(crate) async fn finish(&self, limit: Duration) -> (Option<i32>, String) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut code = None;
        if let Some(mut child) = child {
            match tokio::time::timeout(limit, child.wait()).await {
                Ok(Ok(status)) => code = status.code(),
                _ => {
                    let _ = child.start_kill();
                }
            }
        }
        let reader = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reader) = reader {
            let _ = tokio::time::timeout(limit, reader).await;
        }
        (code, self.stderr_text())
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            // ssh's note about a host key it just learned is no reason for anything.
            .filter(|l| !l.starts_with("Warning: Permanently added"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether ssh has exited (waiting up to `limit`), and if so how (exit status and its last
    /// stderr line), for the message about a lost connection.
    pub(crate) async fn ended(&self, limit: Duration) -> Option<String> {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut child = child?;
        let Ok(Ok(status)) = tokio::time::timeout(limit, child.wait()).await else {
            // Still running: put it back (it is killed when the connection is dropped).
            *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
            return None;
        };
        let reader = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(reader) = reader {
            let _ = tokio::time::timeout(limit, reader).await;
        }
        let last = self.stderr_text().lines().last().map(str::to_owned);
        Some(match last {
            Some(line) => format!("ssh exited with {status}: {line}"),
            None => format!("ssh exited with {status}"),
        })
    }

    /// The error for a connection that could not be set up: why, from ssh's exit and messages.
    pub(crate) async fn failure(&self, host: &Host, scope: Scope, error: &str) -> Error {
        let (code, stderr) = self.finish(Duration::from_secs(5)).await;
        let problem = Problem::classify(code, &stderr);
        let detail = match (stderr.trim(), code) {
            ("", Some(c)) => format!("ssh exited with status {c}; {error}"),
            ("", None) => error.to_owned(),
            (text, _) => text.lines().collect::<Vec<_>>().join("; "),
        };
        Error::Remote {
            host: host.to_string(),
            why: format!("{}: {detail}", problem.explain(host, scope)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Host {
        s.parse().expect("a valid host")
    }

    #[test]
    fn parses_user_host_port() {
        assert_eq!(
            host("root@web1:2222"),
            Host {
                user: Some("root".into()),
                host: "web1".into(),
                port: Some(2222)
            }
        );
        assert_eq!(host("web1").user, None);
        assert_eq!(host("web1").port, None);
        assert_eq!(host("[::1]:22").host, "::1");
        assert_eq!(host("[::1]:22").port, Some(22));
        assert_eq!(host("fe80::1").host, "fe80::1");
        assert_eq!(host("a@b@c").user.as_deref(), Some("a@b"));
        assert_eq!(host("u@[::1]:2").to_string(), "u@[::1]:2");
        assert_eq!(host("u@h:2").to_string(), "u@h:2");
        for bad in [
            "",
            "-oProxyCommand=x",
            "u@",
            "@h",
            "-u@h",
            "h:0",
            "h:x",
            "h:70000",
            "a b",
            "[::1",
        ] {
            assert!(bad.parse::<Host>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn argv_passes_user_port_and_batch_mode() {
        let argv = ssh_argv(&host("alice@h:2222"), "cmd", true);
        let tail: Vec<&str> = argv[argv.len() - 10..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "-xT",
                "-o",
                "BatchMode=yes",
                "-p",
                "2222",
                "-l",
                "alice",
                "--",
                "h",
                "cmd"
            ]
        );
        let plain = ssh_argv(&host("h"), "cmd", false);
        assert!(!plain.iter().any(|a| a.contains("BatchMode")));
    }

    #[test]
    fn user_scope_names_the_user_bus_explicitly() {
        let user = remote_command(Scope::User);
        assert!(user.contains("--bus-path=unix:path=/run/user/$(id -u)/bus"));
        assert!(remote_command(Scope::System).contains("--system"));
    }

    #[test]
    fn classifies_ssh_failures() {
        let c = Problem::classify;
        assert_eq!(
            c(
                Some(255),
                "ssh: connect to host 127.0.0.1 port 1: Connection refused"
            ),
            Problem::Unreachable
        );
        assert_eq!(
            c(Some(255), "root@h: Permission denied (publickey)."),
            Problem::AuthRefused
        );
        assert_eq!(
            c(
                Some(127),
                "env: 'systemd-stdio-bridge': No such file or directory"
            ),
            Problem::NoBridge
        );
        assert_eq!(
            c(
                Some(1),
                "Failed to start bus client: No such file or directory"
            ),
            Problem::BusNotRunning
        );
        assert_eq!(
            c(Some(255), "Host key verification failed."),
            Problem::HostKey
        );
        assert_eq!(c(Some(1), "something else"), Problem::Other);
    }
}
