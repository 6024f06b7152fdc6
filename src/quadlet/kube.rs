//! `.kube` files, group `[Kube]`, to `<name>.service` (Quadlet 5.4.2 `ConvertKube`,
//! quadlet-keys.md §6).
//!
//! `ExecStart=podman kube play …` runs the Kubernetes YAML with a service container (arguments in
//! the order K0–K11 of quadlet-keys §6; none of them comes from Go map iteration, so the output
//! is deterministic as in 5.4.2), and `ExecStopPost=podman kube down …` tears it down. The
//! `KillMode=` and `Type=` rules are those of `.container`; `SetWorkingDirectory=` adds
//! `WorkingDirectory=`.
//!
//! Error messages are 5.4.2's; the two about `Yaml=` and `SetWorkingDirectory=` also say what
//! would be valid.

use super::common::{
    add_networks, add_publish_ports, add_source_path, add_syslog_identifier, add_user_mappings,
    check_kill_mode, check_service_type, check_supported_keys, dir_of, new_service, resolve_path,
    set_notify_type, KeySet, SERVICE, UNIT,
};
use super::podman::{PodmanCmd, Service};
use super::{versions, Context, ConvertError, OrCollect, Quadlet};
use crate::unit::UnitFile;

const GROUP: &str = "Kube";

/// The keys `[Kube]` accepts in 5.4.2 (`supportedKubeKeys`).
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "AutoUpdate",
    "ConfigMap",
    "ContainersConfModule",
    "ExitCodePropagation",
    "GlobalArgs",
    "KubeDownForce",
    "LogDriver",
    "LogOpt",
    "Network",
    "PodmanArgs",
    "PublishPort",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "ServiceName",
    "SetWorkingDirectory",
    "UserNS",
    "Yaml",
]);

/// The annotation podman's auto-update reads.
const AUTO_UPDATE_ANNOTATION: &str = "io.containers.autoupdate";

/// One `AutoUpdate=` word as a `--annotation=` word: `ctr/policy` applies to one container
/// (`io.containers.autoupdate/ctr=policy`), a bare `policy` to all of them.
fn auto_update_annotation(word: &str) -> String {
    match word.split_once('/') {
        Some((container, policy)) => {
            format!("--annotation={AUTO_UPDATE_ANNOTATION}/{container}={policy}")
        }
        None => format!("--annotation={AUTO_UPDATE_ANNOTATION}={word}"),
    }
}

/// Converts a `.kube` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    check_supported_keys(q, &SUPPORTED_KEYS).or_collect(ctx, ())?;
    let u = &q.unit;
    let mut service = new_service(q, ctx)?;
    add_source_path(&mut service, q);
    let early_mounts = ctx.writes(versions::MOUNTS_AFTER_SOURCE_PATH);
    if early_mounts {
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
    }

    // 5.7 plays every `Yaml=` (split like a list); before, the last one.
    let yamls: Vec<String> = if ctx.writes(versions::SEVERAL_YAML) {
        u.lookup_all_strv(GROUP, "Yaml")
    } else {
        u.lookup_nonempty(GROUP, "Yaml")
            .map(str::to_owned)
            .into_iter()
            .collect()
    };
    if yamls.is_empty() {
        ctx.recover(ConvertError::new(
            "no Yaml key specified (Yaml= names the Kubernetes YAML file to play)",
        ))?;
    }
    let yamls: Vec<String> = yamls.iter().map(|y| resolve_path(q, y)).collect();
    if !early_mounts {
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
    }

    check_kill_mode(q, &mut service).or_collect(ctx, ())?;
    service.add(SERVICE, "Environment", "PODMAN_SYSTEMD_UNIT=%n");
    if !check_service_type(q, &service).or_collect(ctx, false)? {
        set_notify_type(&mut service);
    }
    add_syslog_identifier(&mut service);

    let mut play = PodmanCmd::base(ctx, q).with_sub(&["kube", "play"]);
    play.extend(["--replace", "--service-container=true"]);
    if let Some(v) = u.lookup_nonempty(GROUP, "ExitCodePropagation") {
        play.add(format!("--service-exit-code-propagation={v}"));
    }
    if let Some(d) = u.lookup(GROUP, "LogDriver") {
        play.add("--log-driver");
        play.add(d);
    }
    play.add_each("--log-opt", u.lookup_all_strv(GROUP, "LogOpt"));
    add_user_mappings(q, &mut play, false).or_collect(ctx, ())?;
    add_networks(q, &mut service, ctx, &mut play)?;
    for w in u.lookup_all_strv(GROUP, "AutoUpdate") {
        play.add(auto_update_annotation(&w));
    }
    for path in u.lookup_all_strv(GROUP, "ConfigMap") {
        play.add("--configmap");
        play.add(resolve_path(q, &path));
    }
    add_publish_ports(&mut play, q);
    play.extend(u.lookup_all_args(GROUP, "PodmanArgs"));
    play.extend_args(yamls.iter().cloned());
    service.add_exec("ExecStart", play);

    let mut down = PodmanCmd::base(ctx, q).with_sub(&["kube", "down"]);
    if let Some(force) = u.lookup_bool(GROUP, "KubeDownForce") {
        down.add_bool("--force", force);
    }
    down.extend_args(yamls.iter().cloned());
    service.add_exec("ExecStopPost", down);

    if let Some(dir) = working_directory(q, &service, &yamls).or_collect(ctx, None)? {
        service.add(SERVICE, "WorkingDirectory", dir);
    }
    Ok(service)
}

/// `SetWorkingDirectory=` (compared ignoring ASCII case): `yaml` gives the directory of the
/// resolved Yaml path (only with a single `Yaml=`), `unit` the directory of the Quadlet file.
/// Nothing when the key is absent or empty, or when `[Service]` already has a non-empty
/// `WorkingDirectory=`.
fn working_directory(
    q: &Quadlet,
    service: &UnitFile,
    yamls: &[String],
) -> Result<Option<String>, ConvertError> {
    if service
        .lookup_nonempty(SERVICE, "WorkingDirectory")
        .is_some()
    {
        return Ok(None);
    }
    let Some(value) = q.unit.lookup_nonempty(GROUP, "SetWorkingDirectory") else {
        return Ok(None);
    };
    let err = |msg: String| Err(ConvertError::at_key(q, GROUP, "SetWorkingDirectory", msg));
    match value.to_ascii_lowercase().as_str() {
        "yaml" => match yamls {
            [yaml] => Ok(Some(dir_of(yaml))),
            _ => err(
                "SetWorkingDirectory=yaml is only supported when a single Yaml key is provided"
                    .to_owned(),
            ),
        },
        "unit" => Ok(Some(dir_of(&q.path.display().to_string()))),
        "file" => err(format!(
            "SetWorkingDirectory={value} is only supported in .build files"
        )),
        _ => err(format!(
            "unsupported value for WorkingDirectory: {value} (valid values are yaml and unit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_update_words_name_a_container_before_the_slash() {
        assert_eq!(
            auto_update_annotation("registry"),
            "--annotation=io.containers.autoupdate=registry"
        );
        assert_eq!(
            auto_update_annotation("web/local"),
            "--annotation=io.containers.autoupdate/web=local"
        );
    }
}
