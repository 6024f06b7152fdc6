//! `unitwright instance exec`: the wrapper the generator puts in front of podman commands that
//! refer to settings (see `crate::quadlet::settings`).
//!
//! It reads the settings of the unit named exactly by its argument (systemd passes `%n` with
//! its backslashes intact), puts them into the environment together with
//! `UNITWRIGHT_UNIT`, `UNITWRIGHT_ID` and `UNITWRIGHT_CONTAINER_NAME`, expands `$VAR` and
//! `${VAR}` in the command's arguments exactly as systemd would have ([`super::expand`]), and
//! execs the command in the same process, so that the service's main PID, `Type=notify` and
//! `NotifyAccess=` are unaffected. It never talks to D-Bus and never prints values.
//!
//! Exit status when it cannot exec: 78 (`EX_CONFIG`) when the settings are missing,
//! incomplete or unreadable, 127 when the command does not exist, 126 when it cannot be run
//! ([`super::Error::exec_exit_status`]).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use super::expand::{expand_argv, Env};
use super::store::Store;
use super::Error;

/// Variables the wrapper sets besides the settings.
pub const UNIT_VAR: &str = "UNITWRIGHT_UNIT";
/// The unescaped instance id.
pub const ID_VAR: &str = "UNITWRIGHT_ID";
/// A podman-safe container name derived from the unit name ([`container_name`]).
pub const CONTAINER_NAME_VAR: &str = crate::quadlet::settings::CONTAINER_NAME_VAR;

/// A name podman accepts (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`) derived injectively from a unit name:
/// `systemd-` + the name without its `.service` suffix, with `_` → `__`, `\` → `_s`,
/// `@` → `_a`, `:` → `_c` (the other characters valid in unit names are valid for podman).
pub fn container_name(unit: &str) -> String {
    let stem = unit.strip_suffix(".service").unwrap_or(unit);
    let mut out = String::with_capacity(8 + stem.len() * 2);
    out.push_str("systemd-");
    for c in stem.chars() {
        match c {
            '_' => out.push_str("__"),
            '\\' => out.push_str("_s"),
            '@' => out.push_str("_a"),
            ':' => out.push_str("_c"),
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => out.push(c),
            // Not valid in unit names; encode anyway so the result stays valid.
            c => {
                for b in c.to_string().bytes() {
                    let _ = write!(out, "_{b:02x}");
                }
            }
        }
    }
    out
}

/// What `instance exec` was asked to do.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    /// The settings directories (`--settings-dir`, repeatable), looked in in order: the
    /// first that has a file for the unit wins (the generator passes the runtime directory,
    /// then the persistent one).
    pub settings_dirs: &'a [PathBuf],
    /// The exact unit name (`%n`).
    pub unit: &'a OsStr,
    /// Keys that must be set (`--require`), by the settings or the service's environment.
    pub required: &'a [String],
    /// The command: program and arguments (arguments are expanded, the program is not, as in
    /// systemd).
    pub command: &'a [OsString],
}

/// The command `instance exec` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The program (not expanded, as in systemd).
    pub program: OsString,
    /// The expanded arguments.
    pub args: Vec<OsString>,
    /// Variables added to the inherited environment: the `UNITWRIGHT_*` ones, then the
    /// settings.
    pub vars: Vec<(String, String)>,
}

/// Builds the command to exec (program, expanded arguments, added variables). Separate from
/// [`exec`] so that it can be tested.
pub fn prepare(req: &ExecRequest<'_>) -> Result<Prepared, Error> {
    let unit = req.unit.to_str().ok_or_else(|| Error::BadUnitName {
        name: req.unit.to_string_lossy().into_owned(),
    })?;
    let (program, args) = req.command.split_first().ok_or(Error::NoCommand)?;
    let mut found = None;
    for dir in req.settings_dirs {
        if let Some(s) = Store::new(dir).read(unit)? {
            found = Some(s);
            break;
        }
    }
    let settings = found.ok_or_else(|| Error::NoSettings {
        unit: unit.to_owned(),
    })?;
    let mut vars = vec![
        (UNIT_VAR.to_owned(), unit.to_owned()),
        (ID_VAR.to_owned(), settings.id),
        (CONTAINER_NAME_VAR.to_owned(), container_name(unit)),
    ];
    vars.extend(settings.settings);
    let mut env = Env::new();
    for (k, v) in std::env::vars_os() {
        env.push(k.as_bytes(), v.as_bytes());
    }
    for (k, v) in &vars {
        env.push(k.as_bytes(), v.as_bytes());
    }
    let missing: Vec<String> = req
        .required
        .iter()
        .filter(|k| env.get(k.as_bytes()).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingSettings {
            unit: unit.to_owned(),
            keys: missing,
            unread: Vec::new(),
        });
    }
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let args = expand_argv(&args, &env)
        .into_iter()
        .map(OsString::from_vec)
        .collect();
    Ok(Prepared {
        program: program.clone(),
        args,
        vars,
    })
}

/// Runs the request: on success this never returns (the process becomes the command, same
/// PID); otherwise it returns why not.
pub fn exec(req: &ExecRequest<'_>) -> Error {
    let p = match prepare(req) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let source = std::process::Command::new(&p.program)
        .args(&p.args)
        .envs(p.vars)
        .exec();
    Error::Exec {
        program: p.program.to_string_lossy().into_owned(),
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_valid_for_podman_and_distinct() {
        let names = [
            "console@a\\x2db.service",
            "console@ax2db.service",
            "console@a_sx2db.service",
            "console@a_b.service",
            "console@a__b.service",
            "console@a:b.service",
            "console@a_cb.service",
        ];
        let encoded: std::collections::BTreeSet<String> =
            names.iter().map(|n| container_name(n)).collect();
        assert_eq!(encoded.len(), names.len());
        for n in &encoded {
            assert!(n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
        }
        assert_eq!(
            container_name("console@a\\x2db.service"),
            "systemd-console_aa_sx2db"
        );
    }
}
