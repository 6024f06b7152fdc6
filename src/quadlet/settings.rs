//! Per-instance settings for Quadlet templates: the `[X-Unitwright]` extension group.
//!
//! A template such as `console@.container` may say
//!
//! ```ini
//! [X-Unitwright]
//! InstanceSettings=yes
//! RequiredSettings=IMAGE PORT
//! SecretSettings=PASSWORD
//! ```
//!
//! (`SecretSettings=` names the keys whose values `unitwright instance show` masks.)
//!
//! and refer to settings as `${IMAGE}` / `$PORT` anywhere in its podman command
//! (`Image=${IMAGE}`, `PublishPort=127.0.0.1:${PORT}:5900`, `Environment=APP=${APP}`, ...).
//! Each instance's settings are stored by `unitwright instance start` in one file named exactly
//! by the instance unit name under `%t/unitwright/instances/` (see `crate::instance`), so that
//! no daemon-reload is needed per instance.
//!
//! After a unit is converted, [`apply`] wraps every `Exec*=` line of `[Service]` whose words
//! contain a `$` (the kinds' typed podman commands, edited as such, and the lines the user
//! wrote, read once here) so that it is written as
//!
//! ```text
//! ExecStart=:/usr/bin/unitwright instance exec --settings-dir=%t/unitwright/instances --settings-dir=%S/unitwright/instances|--user-state [--require=KEY]... %n -- /usr/bin/podman run ...
//! ```
//!
//! * The runtime directory comes first; then the settings of instances started with
//!   `--persistent`, which survive a reboot: `--settings-dir=%S/unitwright/instances`
//!   (`/var/lib/...`) for system units, `--user-state` (`$XDG_STATE_HOME/unitwright/instances`)
//!   for user units.
//! * `%n` in an argument reaches the wrapper with its backslashes intact, so the settings file is
//!   found by its exact name. (`EnvironmentFile=%t/…/%n` would not work: systemd treats that path
//!   as a glob pattern, so `\x2d` matches `x2d` and the ids `a-b` and `ax2db` would collide.)
//! * The `:` prefix turns systemd's exec-time `$` expansion off; the wrapper does the same
//!   expansion (`replace_env_argv` semantics) with the settings added to the environment, then
//!   execs the command in the same process (so `Type=notify` keeps working).
//! * Other prefixes (`-`, `+`, `!`, `!!`) are kept; a line with `:` already has no expansion and
//!   is left alone, and so is a line with `@` (its argv\[0\] is a separate word), with a warning.
//! * Lines without any `$` (e.g. the `podman rm --cidfile=…` of `ExecStop=`) are not wrapped, so
//!   stopping never depends on the settings.
//! * A template's default container name (`systemd-%p_%i`) is not a valid podman name once the
//!   instance holds escapes (`\x2d`); when `ContainerName=` is not set it is replaced by
//!   `${UNITWRIGHT_CONTAINER_NAME}`, which the wrapper derives injectively from the unit name.
//!
//! The wrapper's path is [`Context::unitwright`] (the generator passes `$UNITWRIGHT`; it must
//! be absolute), else `/usr/bin/unitwright`. The `[X-Unitwright]` group itself is copied to the unit like every
//! other group; systemd ignores `X-` groups.

use super::common::SERVICE;
#[cfg(test)]
use super::podman::escape_words;
use super::podman::{Arg, ExecLine, PodmanCmd, Service};
use super::{Context, ConvertError, Kind, Quadlet};
use crate::unit::quote::is_valid_env_name;
use crate::unit::split::split_args;

/// The extension group.
pub const GROUP: &str = "X-Unitwright";

/// Keys of [`GROUP`].
const KEYS: &[&str] = &["InstanceSettings", "RequiredSettings", "SecretSettings"];

/// Where the wrapper is installed unless `$UNITWRIGHT` says otherwise.
pub const DEFAULT_UNITWRIGHT: &str = "/usr/bin/unitwright";

/// The settings directory as the unit sees it.
pub const SETTINGS_DIR: &str = "%t/unitwright/instances";

/// The directory of `--persistent` settings of system units (`%S` is `/var/lib`); looked in
/// after [`SETTINGS_DIR`].
pub const PERSISTENT_SETTINGS_DIR: &str = "%S/unitwright/instances";

/// What user units pass instead of [`PERSISTENT_SETTINGS_DIR`]: systemd 252's `%S` of a user
/// manager is `$XDG_CONFIG_HOME` (later releases: `$XDG_STATE_HOME`), so the wrapper resolves
/// `$XDG_STATE_HOME/unitwright/instances` (default `~/.local/state/...`) from its own
/// environment, as `unitwright --user instance start --persistent` does from the caller's.
pub const USER_STATE_FLAG: &str = "--user-state";

/// The variable holding a podman-safe container name derived from the unit name.
pub const CONTAINER_NAME_VAR: &str = "UNITWRIGHT_CONTAINER_NAME";

const EXEC_KEYS: &[&str] = &[
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];

/// True if `q` asks for instance settings (`[X-Unitwright] InstanceSettings=yes`).
pub fn enabled(q: &Quadlet) -> bool {
    q.unit.lookup_bool_or(GROUP, "InstanceSettings", false)
}

/// True if the image of `q` comes from its instance settings (`Image=${IMAGE}`): the "not a
/// fully qualified image name" warning about the literal `${IMAGE}` would say nothing useful,
/// so the converter does not make it.
pub fn image_from_settings(q: &Quadlet) -> bool {
    enabled(q)
        && q.unit
            .lookup(q.kind.group(), "Image")
            .is_some_and(|i| i.contains('$'))
}

/// Applies `[X-Unitwright]` of `q` to its converted `service` (see the module docs). Does
/// nothing when the group is absent or `InstanceSettings=` is not true.
pub fn apply(
    q: &Quadlet,
    ctx: &mut Context,
    service: &mut Service<'_>,
) -> Result<(), ConvertError> {
    let Some(group) = q.unit.group(GROUP) else {
        return Ok(());
    };
    for l in group
        .lines
        .iter()
        .filter(|l| !l.comment && !KEYS.contains(&l.key.as_str()))
    {
        ctx.recover(ConvertError::at_origin(
            q,
            l.origin,
            format!(
                "unsupported key '{}' in group '{GROUP}' in {} (valid: {})",
                l.key,
                q.path.display(),
                KEYS.join(", ")
            ),
        ))?;
    }
    let required = q.unit.lookup_all_strv(GROUP, "RequiredSettings");
    for key in ["RequiredSettings", "SecretSettings"] {
        let names = q.unit.lookup_all_strv(GROUP, key);
        for bad in names.iter().filter(|k| !is_valid_env_name(k)) {
            ctx.recover(ConvertError::at_key(
                q,
                GROUP,
                key,
                format!("{key}: {bad:?} is not a variable name (letters, digits and _, not starting with a digit)"),
            ))?;
        }
    }
    if !q.unit.lookup_bool_or(GROUP, "InstanceSettings", false) {
        if !required.is_empty() {
            ctx.warn(format!(
                "{}: RequiredSettings= has no effect without InstanceSettings=yes",
                q.name
            ));
        }
        return Ok(());
    }
    let unitwright = if ctx.unitwright.is_empty() {
        DEFAULT_UNITWRIGHT.to_owned()
    } else {
        ctx.unitwright.clone()
    };
    if !unitwright.starts_with('/') {
        return Err(ConvertError::new(format!(
            "$UNITWRIGHT must be an absolute path, not {unitwright:?}"
        )));
    }
    let default_name = (q.kind == Kind::Container
        && q.name.contains('@')
        && q.unit
            .lookup_nonempty(Kind::Container.group(), "ContainerName")
            .is_none())
    .then(|| super::container::container_name(q));
    let mut instance_exec: Vec<Arg<'static>> = vec![
        Arg::Owned(unitwright),
        Arg::Borrowed("instance"),
        Arg::Borrowed("exec"),
        Arg::Owned(format!("--settings-dir={SETTINGS_DIR}")),
        if ctx.user {
            Arg::Borrowed(USER_STATE_FLAG)
        } else {
            Arg::Owned(format!("--settings-dir={PERSISTENT_SETTINGS_DIR}"))
        },
    ];
    instance_exec.extend(
        required
            .iter()
            .map(|k| Arg::Owned(format!("--require={k}"))),
    );
    instance_exec.extend([Arg::Borrowed("%n"), Arg::Borrowed("--")]);
    let mut wrapped = 0;
    let mut i = 0;
    while let Some(line) = service.group(SERVICE).and_then(|g| g.lines.get(i)) {
        i += 1;
        if line.comment || !EXEC_KEYS.contains(&line.key.as_str()) {
            continue;
        }
        let key = line.key.clone();
        // The podman commands the kinds made are typed; a line the user wrote is read here.
        let as_written = if service.exec_of(line).is_some() {
            None
        } else {
            let words = split_args(&line.value)
                .map_err(|e| ConvertError::new(format!("{}={}: {e}", line.key, line.value)))?;
            let Some((first, rest)) = words.split_first() else {
                continue;
            };
            let prefix_len = first
                .find(|c| !matches!(c, '-' | '@' | ':' | '+' | '!'))
                .unwrap_or(first.len());
            let mut cmd = PodmanCmd::program(first[prefix_len..].to_owned());
            cmd.extend_args(rest.iter().cloned());
            Some(ExecLine {
                prefix: first[..prefix_len].to_owned(),
                ..ExecLine::from(cmd)
            })
        };
        let mut own = as_written;
        let Some(exec) = own.as_mut().or(service.exec_at_mut(i - 1)) else {
            continue;
        };
        if key == "ExecStart" {
            if let Some(default) = &default_name {
                rename_default_container(&mut exec.cmd, default);
            }
        }
        if !exec.words().any(|w| w.contains('$')) {
            continue;
        }
        if exec.prefix.contains(':') || exec.prefix.contains('@') {
            ctx.warn(format!(
                "{}: {key}= has the '{}' prefix; settings are not expanded in it",
                q.name, exec.prefix
            ));
            continue;
        }
        exec.prefix.push(':');
        exec.wrapper.clone_from(&instance_exec);
        if let Some(own) = own {
            service.replace_with_exec(i - 1, own);
        }
        wrapped += 1;
    }
    if wrapped == 0 {
        ctx.warn(format!(
            "{}: InstanceSettings=yes, but no command refers to a setting (${{NAME}} or $NAME)",
            q.name
        ));
    }
    Ok(())
}

/// Replaces the value of `--name` in a podman command when it is the generated default.
fn rename_default_container(cmd: &mut PodmanCmd<'_>, default: &str) {
    let mut words: Vec<&mut Arg<'_>> = cmd
        .global
        .iter_mut()
        .chain(cmd.options.iter_mut())
        .chain(cmd.args.iter_mut())
        .collect();
    if let Some(i) = words.iter().position(|w| *w == "--name") {
        if words.get(i + 1).is_some_and(|n| **n == default) {
            *words[i + 1] = Arg::Owned(format!("${{{CONTAINER_NAME_VAR}}}"));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_words_split_back_exactly() {
        let words: Vec<String> = [
            ":/usr/bin/x",
            "--settings-dir=%t/unitwright/instances",
            "%n",
            "a b",
            "q\"uo'te",
            "back\\slash",
            "tab\there\n",
            "${X}",
            "é",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(split_args(&escape_words(&words)).unwrap(), words);
    }

    fn quadlet(name: &str, text: &str) -> Quadlet {
        let path = std::path::PathBuf::from(format!("/q/{name}"));
        Quadlet {
            name: name.to_owned(),
            unit: crate::unit::parse_str(text, &path).unwrap(),
            path,
            dir: "/q".into(),
            kind: Kind::Container,
            service_name: name.trim_end_matches(".container").to_owned(),
        }
    }

    #[test]
    fn no_short_name_warning_for_an_image_from_the_settings() {
        for (name, image, warned) in [
            ("a@.container", "${IMAGE}", false),
            ("b@.container", "web", true),
        ] {
            let q = quadlet(
                name,
                &format!("[Container]\nImage={image}\n[X-Unitwright]\nInstanceSettings=yes\n"),
            );
            let options = crate::quadlet::ConvertOptions {
                podman_version: crate::quadlet::compat::Setting::Off,
                ..crate::quadlet::ConvertOptions::default()
            };
            let out = crate::quadlet::convert_all(&mut [q], &options);
            let short_name = out[0]
                .diagnostics
                .iter()
                .any(|d| d.message.contains("fully qualified"));
            assert_eq!(short_name, warned, "{name}: {:?}", out[0].diagnostics);
        }
    }

    #[test]
    fn only_the_default_name_is_replaced() {
        for (name, expected) in [
            ("systemd-%p_%i", "${UNITWRIGHT_CONTAINER_NAME}"),
            ("mine", "mine"),
        ] {
            let mut cmd = PodmanCmd::program("/usr/bin/podman").with_sub(&["run"]);
            cmd.extend(["--name", name]);
            cmd.arg("img");
            rename_default_container(&mut cmd, "systemd-%p_%i");
            assert_eq!(cmd.options[1], expected);
        }
    }
}
