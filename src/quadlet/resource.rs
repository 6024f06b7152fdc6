//! Helpers shared by the kinds that create a podman resource once and exit: `.volume`,
//! `.network`, `.image` and `.build` (Quadlet 5.4.2 `ConvertVolume`, `ConvertNetwork`,
//! `ConvertImage`, `ConvertBuild`; quadlet-keys.md §7–10).
//!
//! These services are `Type=oneshot` jobs running one `podman … create|pull|build` command; the
//! volume, network and image ones stay active (`RemainAfterExit=yes`) so that units requiring
//! them see the resource as present. Their resource names are published in
//! [`UnitInfo::resource_name`](super::UnitInfo::resource_name) for the containers, pods, kubes
//! and builds that refer to them.
//!
//! Difference from 5.4.2: `%N` and `%n` in a published name are replaced by the resource unit's
//! own name (see [`own_unit_specifiers`]); 5.4.2 left them for the referring unit to expand.

use super::common::{
    add_service_default, add_source_path, add_syslog_identifier, new_service, KeySet, UNIT,
};
use super::compat::check_keys;
use super::podman::{PodmanCmd, Service};
use super::{versions, Context, ConvertError, Quadlet};

/// The start of a volume, network or image conversion: checks the keys of the type group
/// against `supported` (and the later keys the podman version allows, see [`check_keys`]), makes the service skeleton with `SourcePath=` and
/// `RequiresMountsFor=%t/containers`, and the base podman command followed by `subcommand`.
pub fn begin<'q>(
    q: &'q Quadlet,
    ctx: &Context,
    supported: &KeySet,
    subcommand: &'static [&'static str],
) -> Result<(Service<'q>, PodmanCmd<'q>), ConvertError> {
    check_keys(q, ctx, supported)?;
    let mut service = new_service(q, ctx)?;
    add_source_path(&mut service, q);
    service.add(UNIT, "RequiresMountsFor", "%t/containers");
    let cmd = PodmanCmd::base(ctx, q).with_sub(subcommand);
    Ok((service, cmd))
}

/// The end of a volume, network or image conversion: appends the `PodmanArgs=` words and the
/// final `target` word (volume, network or image name) to `cmd`, adds the `[Service]` lines of
/// a one-shot that stays active, and publishes `resource_name` for the units that refer to `q`.
pub fn finish<'q>(
    q: &'q Quadlet,
    ctx: &mut Context,
    mut service: Service<'q>,
    mut cmd: PodmanCmd<'q>,
    target: &str,
    resource_name: &str,
) -> Service<'q> {
    cmd.extend(q.unit.lookup_all_args(q.kind.group(), "PodmanArgs"));
    cmd.arg(target.to_owned());
    add_oneshot_service(&mut service, cmd, true);
    // Only a converted unit publishes its name, so a reference to one that failed sees none.
    if let Some(info) = ctx.units.get_mut(&q.name) {
        info.resource_name = own_unit_specifiers(resource_name, &q.service_name);
    }
    service
}

/// Replaces `%N` and `%n` in a resource name by what systemd expands them to in the resource's
/// own unit (`<service name>`, `<service name>.service`), so that a unit referring to it, where
/// they would expand to *its* name, uses the same resource. `%%` and other specifiers (the same
/// in every unit of a manager, such as `%h` or `%U`) are kept. 5.4.2 copied the name unchanged,
/// so `VolumeName=%N-data` made every container use a volume of its own name.
pub fn own_unit_specifiers(name: &str, service_name: &str) -> String {
    if !name.contains('%') {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len() + service_name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('N') => out.push_str(service_name),
            Some('n') => {
                out.push_str(service_name);
                out.push_str(".service");
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The name of a volume or network: the value of `key` (`VolumeName`, `NetworkName`) when
/// non-empty, otherwise `systemd-<file base name>`; for a template (`data@.volume`) that is
/// `systemd-data@` up to 5.6 and `systemd-data-%i` from 5.7 on, one resource per instance
/// ([`versions::TEMPLATE_RESOURCES`]).
pub fn name_or_default(q: &Quadlet, ctx: &Context, key: &str) -> String {
    match q.unit.lookup_nonempty(q.kind.group(), key) {
        Some(n) => n.to_owned(),
        None => match q.base_name().strip_suffix('@') {
            Some(template) if ctx.writes(versions::TEMPLATE_RESOURCES) => {
                format!("systemd-{template}-%i")
            }
            _ => format!("systemd-{}", q.base_name()),
        },
    }
}

/// The `[Service]` lines of a one-shot resource unit, in 5.4.2's order: `ExecStart=`, then
/// `SyslogIdentifier=%N`, `Type=oneshot` and (when `remain_after_exit`) `RemainAfterExit=yes`,
/// each only if the user did not set that key. A user `Type=` is kept as is.
pub fn add_oneshot_service<'q>(
    service: &mut Service<'q>,
    cmd: PodmanCmd<'q>,
    remain_after_exit: bool,
) {
    service.add_exec("ExecStart", cmd);
    add_syslog_identifier(service);
    add_service_default(service, "Type", "oneshot");
    if remain_after_exit {
        add_service_default(service, "RemainAfterExit", "yes");
    }
}

#[cfg(test)]
mod tests {
    use super::own_unit_specifiers;

    #[test]
    fn unit_name_specifiers_take_the_resource_units_name() {
        assert_eq!(own_unit_specifiers("plain", "x-volume"), "plain");
        assert_eq!(own_unit_specifiers("%N-data", "x-volume"), "x-volume-data");
        assert_eq!(
            own_unit_specifiers("for-%n", "x-network"),
            "for-x-network.service"
        );
        assert_eq!(own_unit_specifiers("%%N-%h-%", "x-volume"), "%%N-%h-%");
    }
}
