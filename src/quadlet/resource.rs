//! Helpers shared by the kinds that create a podman resource once and exit: `.volume`,
//! `.network`, `.image` and `.build` (Quadlet 5.4.2 `ConvertVolume`, `ConvertNetwork`,
//! `ConvertImage`, `ConvertBuild`; quadlet-keys.md §7–10).
//!
//! These services are `Type=oneshot` jobs running one `podman … create|pull|build` command; the
//! volume, network and image ones stay active (`RemainAfterExit=yes`) so that units requiring
//! them see the resource as present. Their resource names are published in
//! [`UnitInfo::resource_name`](super::UnitInfo::resource_name) for the containers, pods, kubes
//! and builds that refer to them.

use super::common::{add_service_default, add_source_path, add_syslog_identifier, SERVICE, UNIT};
use super::podman::PodmanCmd;
use super::{Context, Quadlet};
use crate::unit::UnitFile;

/// The `[Unit]` lines every volume, network and image unit gets after the default
/// dependencies: `SourcePath=` then `RequiresMountsFor=%t/containers`.
pub fn add_unit_lines(service: &mut UnitFile, q: &Quadlet) {
    add_source_path(service, q);
    service.add(UNIT, "RequiresMountsFor", "%t/containers");
}

/// The name of a volume or network: the value of `key` (`VolumeName`, `NetworkName`) when
/// non-empty, otherwise `systemd-<file base name>` (also for templates: `systemd-data@`).
pub fn name_or_default(q: &Quadlet, key: &str) -> String {
    match q.unit.lookup_nonempty(q.kind.group(), key) {
        Some(n) => n.to_owned(),
        None => format!("systemd-{}", q.base_name()),
    }
}

/// Publishes the resource name of `q` for the units that refer to it. Called only once the
/// conversion succeeded, so a reference to a unit that failed to convert sees no name.
pub fn publish_resource_name(ctx: &mut Context, q: &Quadlet, name: String) {
    if let Some(info) = ctx.units.get_mut(&q.name) {
        info.resource_name = name;
    }
}

/// The `[Service]` lines of a one-shot resource unit, in 5.4.2's order: `ExecStart=`, then
/// `SyslogIdentifier=%N`, `Type=oneshot` and (when `remain_after_exit`) `RemainAfterExit=yes`,
/// each only if the user did not set that key. A user `Type=` is kept as is.
pub fn add_oneshot_service(service: &mut UnitFile, cmd: &PodmanCmd, remain_after_exit: bool) {
    service.add(SERVICE, "ExecStart", cmd.to_exec_line());
    add_syslog_identifier(service);
    add_service_default(service, "Type", "oneshot");
    if remain_after_exit {
        add_service_default(service, "RemainAfterExit", "yes");
    }
}
