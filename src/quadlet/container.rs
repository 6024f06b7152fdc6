//! `.container` files, group `[Container]`, to `<name>.service` (Quadlet 5.4.2 `ConvertContainer`,
//! quadlet-keys.md §4).
//!
//! The `podman run` arguments come in the order of quadlet-keys §4.1 (groups C0–C45). The three
//! groups whose order 5.4.2 took from Go map iteration (C9 strings, C10 lists, C11 booleans) use
//! the fixed "literal" order listed there, which is one of the orders 5.4.2 itself produces.
//!
//! Keys added after 5.4.2 (accepted when the podman version allows, see
//! [`super::compat::NEW_KEYS`]) go where podman 5.8.2 puts them: `Memory=`, `Retry=` and
//! `RetryDelay=` in C9 (after `--pull`), `HttpProxy=` in C11 (before `--read-only-tmpfs`),
//! `AppArmor=` after the SELinux labels (C19); `ReloadCmd=`/`ReloadSignal=` add `ExecReload=`
//! (see `add_exec_reload`).
//!
//! Differences from 5.4.2: a `Mount=` of type volume/bind/glob/image without a source is an error
//! (`source parameter is required for mount type T`, as podman's main branch says) instead of a
//! crash, and a `source=` value containing `=` is kept whole.

use super::common::{
    add_all_strings, add_bools, add_key_vals, add_networks, add_publish_ports, add_source_path,
    add_strings, add_syslog_identifier, add_user_mappings, add_volumes, check_kill_mode,
    check_service_type, new_service, resolve_image_source, resolve_path, resolve_storage_source,
    set_notify_type, KeySet, SERVICE, UNIT,
};
use super::compat::check_keys;
use super::podman::{ExecLine, PodmanCmd, Service};
use super::{versions, Context, ConvertError, OrCollect, Quadlet};
use crate::unit::file::{key_bit, parse_bool, Group};
use crate::unit::UnitFile;

const GROUP: &str = "Container";

/// The keys `[Container]` accepts in 5.4.2 (`supportedContainerKeys`); later ones are in
/// [`super::compat::NEW_KEYS`].
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "AddCapability",
    "AddDevice",
    "AddHost",
    "Annotation",
    "AutoUpdate",
    "CgroupsMode",
    "ContainerName",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "DropCapability",
    "Entrypoint",
    "Environment",
    "EnvironmentFile",
    "EnvironmentHost",
    "Exec",
    "ExposeHostPort",
    "GIDMap",
    "GlobalArgs",
    "Group",
    "GroupAdd",
    "HealthCmd",
    "HealthInterval",
    "HealthLogDestination",
    "HealthMaxLogCount",
    "HealthMaxLogSize",
    "HealthOnFailure",
    "HealthRetries",
    "HealthStartPeriod",
    "HealthStartupCmd",
    "HealthStartupInterval",
    "HealthStartupRetries",
    "HealthStartupSuccess",
    "HealthStartupTimeout",
    "HealthTimeout",
    "HostName",
    "IP",
    "IP6",
    "Image",
    "Label",
    "LogDriver",
    "LogOpt",
    "Mask",
    "Mount",
    "Network",
    "NetworkAlias",
    "NoNewPrivileges",
    "Notify",
    "PidsLimit",
    "Pod",
    "PodmanArgs",
    "PublishPort",
    "Pull",
    "ReadOnly",
    "ReadOnlyTmpfs",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "Rootfs",
    "RunInit",
    "SeccompProfile",
    "Secret",
    "SecurityLabelDisable",
    "SecurityLabelFileType",
    "SecurityLabelLevel",
    "SecurityLabelNested",
    "SecurityLabelType",
    "ServiceName",
    "ShmSize",
    "StartWithPod",
    "StopSignal",
    "StopTimeout",
    "SubGIDMap",
    "SubUIDMap",
    "Sysctl",
    "Timezone",
    "Tmpfs",
    "UIDMap",
    "Ulimit",
    "Unmask",
    "User",
    "UserNS",
    "VolatileTmp",
    "Volume",
    "WorkingDir",
]);

/// The key that 5.8.2 writes apart from [`STRING_OPTIONS`] ([`versions::ENTRYPOINT_EQUALS`]).
const ENTRYPOINT: &str = "Entrypoint";

/// C9: single-valued options, literal order; the keys after `Pull` are from podman 5.5.0.
const STRING_OPTIONS: &[(&str, &str)] = &[
    ("Timezone", "--tz"),
    ("PidsLimit", "--pids-limit"),
    ("ShmSize", "--shm-size"),
    (ENTRYPOINT, "--entrypoint"),
    ("WorkingDir", "--workdir"),
    ("IP", "--ip"),
    ("IP6", "--ip6"),
    ("HostName", "--hostname"),
    ("StopSignal", "--stop-signal"),
    ("StopTimeout", "--stop-timeout"),
    ("Pull", "--pull"),
    ("Memory", "--memory"),
    ("Retry", "--retry"),
    ("RetryDelay", "--retry-delay"),
];

/// C10: repeatable options, literal order.
const LIST_OPTIONS: &[(&str, &str)] = &[
    ("NetworkAlias", "--network-alias"),
    ("Ulimit", "--ulimit"),
    ("DNS", "--dns"),
    ("DNSOption", "--dns-option"),
    ("DNSSearch", "--dns-search"),
    ("GroupAdd", "--group-add"),
    ("AddHost", "--add-host"),
    ("Tmpfs", "--tmpfs"),
];

/// C11: boolean options, literal order (of 5.7.0, which added `HttpProxy`).
const BOOL_OPTIONS: &[(&str, &str)] = &[
    ("RunInit", "--init"),
    ("EnvironmentHost", "--env-host"),
    ("HttpProxy", "--http-proxy"),
    ("ReadOnlyTmpfs", "--read-only-tmpfs"),
];

/// The file `podman run` writes the container id to; the stop and reload commands find the
/// container through it.
const CIDFILE: &str = "--cidfile=%t/%N.cid";

/// C41: health options, fixed order.
const HEALTH_OPTIONS: &[(&str, &str)] = &[
    ("HealthCmd", "--health-cmd"),
    ("HealthInterval", "--health-interval"),
    ("HealthOnFailure", "--health-on-failure"),
    ("HealthLogDestination", "--health-log-destination"),
    ("HealthMaxLogCount", "--health-max-log-count"),
    ("HealthMaxLogSize", "--health-max-log-size"),
    ("HealthRetries", "--health-retries"),
    ("HealthStartPeriod", "--health-start-period"),
    ("HealthTimeout", "--health-timeout"),
    ("HealthStartupCmd", "--health-startup-cmd"),
    ("HealthStartupInterval", "--health-startup-interval"),
    ("HealthStartupRetries", "--health-startup-retries"),
    ("HealthStartupSuccess", "--health-startup-success"),
    ("HealthStartupTimeout", "--health-startup-timeout"),
];

/// The container name: `ContainerName=` if non-empty, else `systemd-%N`, or `systemd-%p_%i` for
/// a file name with `@` (templates and instances).
pub fn container_name(q: &Quadlet) -> String {
    if let Some(n) = q.unit.lookup_nonempty(GROUP, "ContainerName") {
        return n.to_owned();
    }
    if q.name.contains('@') {
        "systemd-%p_%i".to_owned()
    } else {
        "systemd-%N".to_owned()
    }
}

/// `ExposeHostPort=` values must end in `\d+(-\d+)?(/udp|/tcp)?` (the 5.4.2 regular expression is
/// not anchored at the start).
fn valid_expose_port(v: &str) -> bool {
    let rest = v
        .strip_suffix("/udp")
        .or_else(|| v.strip_suffix("/tcp"))
        .unwrap_or(v);
    rest.ends_with(|c: char| c.is_ascii_digit())
}

/// Converts a `.container` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    check_keys(q, ctx, &SUPPORTED_KEYS)?;
    let u = &q.unit;
    let mut service = new_service(q, ctx)?;
    add_source_path(&mut service, q);
    if ctx.writes(versions::MOUNTS_AFTER_SOURCE_PATH) {
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
    }

    let image = u.lookup_nonempty(GROUP, "Image");
    let rootfs = u.lookup_nonempty(GROUP, "Rootfs");
    let image = match (image, rootfs) {
        (None, None) => {
            ctx.recover(ConvertError::new("no Image or Rootfs key specified").about_key("Image"))?;
            None
        }
        (Some(img), Some(_)) => {
            ctx.recover(ConvertError::at_key(
                q,
                GROUP,
                "Rootfs",
                "the Image And Rootfs keys conflict can not be specified together",
            ))?;
            Some(img.to_owned())
        }
        (Some(img), None) => {
            Some(resolve_image_source(q, &mut service, ctx, img).or_collect(ctx, img.to_owned())?)
        }
        (None, Some(_)) => None,
    };
    if !ctx.writes(versions::MOUNTS_AFTER_SOURCE_PATH) {
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
    }

    service.add(SERVICE, "Environment", "PODMAN_SYSTEMD_UNIT=%n");
    check_kill_mode(q, &mut service).or_collect(ctx, ())?;
    let name = container_name(q);
    // Since 5.6 the stop and reload commands address the container by name. Templates with
    // instance settings keep the cid file: their container name comes from the settings, which
    // stopping must not depend on (see `settings`).
    let by_name = ctx.writes(versions::BY_NAME) && !super::settings::enabled(q);
    let target = if by_name { name.as_str() } else { CIDFILE };
    let base = PodmanCmd::base(ctx, q);
    let mut stop = base.clone().with_sub(&["rm"]);
    stop.extend(["-v", "-f", "-i"]);
    stop.arg(target.to_owned());
    // ExecStopPost also runs when conmon was killed and ExecStop did not run; the `-` ignores the
    // failure when ExecStop already removed the container.
    service.add_exec("ExecStop", stop.clone());
    service.add_exec("ExecStopPost", ExecLine::ignoring_failure(stop));
    add_exec_reload(q, ctx, &mut service, target).or_collect(ctx, ())?;
    service.add(SERVICE, "Delegate", "yes");

    let mut cmd = base.with_sub(&["run"]);
    cmd.add("--name");
    cmd.add(name);
    if !by_name {
        cmd.add(CIDFILE);
    }
    cmd.extend(["--replace", "--rm"]);
    if let Some(d) = u.lookup(GROUP, "LogDriver") {
        cmd.add("--log-driver");
        cmd.add(d);
    }
    cmd.add_each("--log-opt", u.lookup_all_strv(GROUP, "LogOpt"));
    match u.lookup_nonempty(GROUP, "CgroupsMode") {
        Some(m) => {
            cmd.add("--cgroups");
            cmd.add(m);
        }
        None => cmd.add("--cgroups=split"),
    }
    if ctx.writes(versions::ENTRYPOINT_EQUALS) {
        // One word, before the other strings; an empty value clears the image's entrypoint.
        if let Some(e) = u.lookup(GROUP, ENTRYPOINT) {
            cmd.add(format!("--entrypoint={e}"));
        }
        let others: Vec<(&str, &str)> = STRING_OPTIONS
            .iter()
            .copied()
            .filter(|(k, _)| *k != ENTRYPOINT)
            .collect();
        add_strings(&mut cmd, q, &others);
    } else {
        add_strings(&mut cmd, q, STRING_OPTIONS);
    }
    add_all_strings(&mut cmd, q, LIST_OPTIONS);
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    add_networks(q, &mut service, ctx, &mut cmd)?;

    if !check_service_type(q, &service).or_collect(ctx, false)? {
        let notify = u.lookup(GROUP, "Notify");
        if notify.is_some_and(|n| n.eq_ignore_ascii_case("healthy")) {
            cmd.add("--sdnotify=healthy");
        } else if u.lookup_bool_or(GROUP, "Notify", false) {
            cmd.add("--sdnotify=container");
        } else {
            cmd.add("--sdnotify=conmon");
        }
        set_notify_type(&mut service);
        cmd.add("-d");
    }

    add_security_options(q, &mut cmd);
    add_user(q, &mut cmd).or_collect(ctx, ())?;
    add_user_mappings(q, &mut cmd, true).or_collect(ctx, ())?;
    add_volumes(q, &mut service, ctx, &mut cmd)?;

    if let Some(v) = u.lookup_nonempty(GROUP, "AutoUpdate") {
        cmd.add("--label");
        cmd.add(format!("io.containers.autoupdate={v}"));
    }
    for v in u.lookup_all(GROUP, "ExposeHostPort") {
        let v = v.trim();
        if !valid_expose_port(v) {
            ctx.recover(ConvertError::at_key(
                q,
                GROUP,
                "ExposeHostPort",
                format!("invalid port format '{v}'"),
            ))?;
            continue;
        }
        cmd.add("--expose");
        cmd.add(v);
    }
    add_publish_ports(&mut cmd, q);
    add_key_vals(
        &mut cmd,
        q,
        ctx,
        &[
            ("Environment", "--env"),
            ("Label", "--label"),
            ("Annotation", "--annotation"),
        ],
    );
    for w in u.lookup_all_args(GROUP, "Mask") {
        cmd.add("--security-opt");
        cmd.add(format!("mask={w}"));
    }
    for w in u.lookup_all_args(GROUP, "Unmask") {
        cmd.add("--security-opt");
        cmd.add(format!("unmask={w}"));
    }
    for w in u.lookup_all_args(GROUP, "EnvironmentFile") {
        cmd.add("--env-file");
        cmd.add(resolve_path(q, &w));
    }
    cmd.add_each("--secret", u.lookup_all_args(GROUP, "Secret"));
    for m in u.lookup_all_args(GROUP, "Mount") {
        let m = match resolve_mount(q, &mut service, ctx, &m) {
            Ok(m) => m,
            Err(e) => {
                ctx.recover(e)?;
                continue;
            }
        };
        cmd.add("--mount");
        cmd.add(m);
    }
    add_strings(&mut cmd, q, HEALTH_OPTIONS);
    add_pod(q, &mut service, ctx, &mut cmd, by_name).or_collect(ctx, ())?;
    cmd.extend(u.lookup_all_args(GROUP, "PodmanArgs"));
    if let Some(img) = image {
        cmd.arg(img);
    } else {
        cmd.arg("--rootfs");
        cmd.arg(rootfs.unwrap_or_default());
    }
    if let Some(words) = u.lookup_last_args(GROUP, "Exec") {
        cmd.extend_args(words);
    }

    add_syslog_identifier(&mut service);
    service.add_exec("ExecStart", cmd);
    Ok(service)
}

/// `ReloadCmd=` (AR1) or `ReloadSignal=` (L), podman 5.5.0: an `ExecReload=` that runs the
/// command in the container (`podman exec`) or sends it the signal (`podman kill --signal`).
/// Setting both (non-empty) is an error.
///
/// The container is found through `--cidfile=%t/%N.cid`, the form of podman 5.5.x, not through
/// its name as podman 5.6.0 and later write it. Those releases changed the whole unit at once:
/// their `podman run` has no `--cidfile` and their stop commands use the name. Our units are
/// 5.4.2's, where `podman run` writes the cid file and `ExecStop=` removes the container through
/// it, so reloading through the same file addresses exactly the container this unit started,
/// whatever `ContainerName=` says. It also holds for template instances whose container name is
/// `${UNITWRIGHT_CONTAINER_NAME}`, which only the instance-settings wrapper can expand (see
/// [`super::settings`]). Podman 5.5.x's own Quadlet writes these forms, so its `exec` and
/// `kill` take `--cidfile`; the keys are only accepted for podman 5.5.0 and newer.
fn add_exec_reload<'q>(
    q: &'q Quadlet,
    ctx: &Context,
    service: &mut Service<'q>,
    target: &str,
) -> Result<(), ConvertError> {
    let words = q
        .unit
        .lookup_last_args(GROUP, "ReloadCmd")
        .filter(|w| !w.is_empty());
    let signal = q.unit.lookup_nonempty(GROUP, "ReloadSignal");
    let reload = PodmanCmd::base(ctx, q);
    let target = target.to_owned();
    let reload = match (words, signal) {
        (None, None) => return Ok(()),
        (Some(_), Some(_)) => {
            return Err(ConvertError::at_key(
                q,
                GROUP,
                "ReloadSignal",
                "ReloadCmd and ReloadSignal are mutually exclusive but both are set",
            ))
        }
        (Some(words), None) => {
            let mut exec = reload.with_sub(&["exec"]);
            exec.arg(target);
            exec.extend_args(words);
            exec
        }
        // 5.6 writes `kill --signal S NAME`; 5.5 wrote the cid file before the signal.
        (None, Some(signal)) => {
            let mut kill = reload.with_sub(&["kill"]);
            if target == CIDFILE {
                kill.extend([CIDFILE, "--signal", signal]);
            } else {
                kill.extend(["--signal", signal]);
                kill.arg(target);
            }
            kill
        }
    };
    service.add_exec("ExecReload", reload);
    Ok(())
}

/// C14–C26: security options, devices, capabilities, sysctls, read-only.
fn add_security_options<'q>(q: &'q Quadlet, cmd: &mut PodmanCmd<'q>) {
    let u = &q.unit;
    // Most of these keys are absent from a given file: one pass over the group's keys rules
    // them out without a look-up each.
    let mask = u.group(GROUP).map_or(0, Group::key_mask);
    let present = |key: &str| mask & key_bit(key) != 0;
    let look = |key: &str| {
        if present(key) {
            u.lookup(GROUP, key)
        } else {
            None
        }
    };
    let look_bool = |key: &str| look(key).is_some_and(parse_bool);
    if look_bool("NoNewPrivileges") {
        cmd.add("--security-opt=no-new-privileges");
    }
    if look_bool("SecurityLabelDisable") {
        cmd.extend(["--security-opt", "label=disable"]);
    }
    if look_bool("SecurityLabelNested") {
        cmd.extend(["--security-opt", "label=nested"]);
    }
    for (key, prefix) in [
        ("SecurityLabelType", "label=type:"),
        ("SecurityLabelFileType", "label=filetype:"),
        ("SecurityLabelLevel", "label=level:"),
    ] {
        if let Some(v) = look(key).filter(|v| !v.is_empty()) {
            cmd.add("--security-opt");
            cmd.add(format!("{prefix}{v}"));
        }
    }
    // 5.8.0: after the SELinux labels, before the devices.
    if let Some(p) = look("AppArmor").filter(|v| !v.is_empty()) {
        cmd.add("--security-opt");
        cmd.add(format!("apparmor={p}"));
    }
    for dev in u.lookup_all_strv(GROUP, "AddDevice") {
        // A leading `-` makes the device optional: added only if the host path exists now.
        if let Some(optional) = dev.strip_prefix('-') {
            let host = optional.split(':').next().unwrap_or_default();
            if std::fs::metadata(host).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                continue;
            }
            cmd.add("--device");
            cmd.add(optional.to_owned());
        } else {
            cmd.add("--device");
            cmd.add(dev);
        }
    }
    if let Some(p) = look("SeccompProfile") {
        cmd.add("--security-opt");
        cmd.add(format!("seccomp={p}"));
    }
    for c in u.lookup_all_strv(GROUP, "DropCapability") {
        cmd.add("--cap-drop");
        cmd.add(c.to_lowercase());
    }
    for c in u.lookup_all_strv(GROUP, "AddCapability") {
        cmd.add("--cap-add");
        cmd.add(c.to_lowercase());
    }
    cmd.add_each("--sysctl", u.lookup_all_strv(GROUP, "Sysctl"));
    let read_only = look("ReadOnly").map(parse_bool);
    if let Some(ro) = read_only {
        cmd.add_bool("--read-only", ro);
    }
    if read_only != Some(true) && look_bool("VolatileTmp") {
        cmd.extend(["--tmpfs", "/tmp:rw,size=512M,mode=1777"]);
    }
}

/// C27: `--user U` or `--user U:G`; a group without a user is an error.
fn add_user<'q>(q: &'q Quadlet, cmd: &mut PodmanCmd<'q>) -> Result<(), ConvertError> {
    let user = q.unit.lookup_nonempty(GROUP, "User");
    let group = q.unit.lookup_nonempty(GROUP, "Group");
    match (user, group) {
        (None, Some(_)) => Err(ConvertError::at_key(
            q,
            GROUP,
            "Group",
            "invalid Group set without User",
        )),
        (Some(u), None) => {
            cmd.add("--user");
            cmd.add(u);
            Ok(())
        }
        (Some(u), Some(g)) => {
            cmd.add("--user");
            cmd.add(format!("{u}:{g}"));
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// C42: `Pod=x.pod` joins the pod: `BindsTo=`/`After=` and `--pod-id-file`; unless
/// `StartWithPod=false` the pod will `Wants=`/`Before=` this service.
fn add_pod<'q>(
    q: &'q Quadlet,
    service: &mut UnitFile,
    ctx: &mut Context,
    cmd: &mut PodmanCmd<'q>,
    by_name: bool,
) -> Result<(), ConvertError> {
    let Some(pod) = q.unit.lookup_nonempty(GROUP, "Pod") else {
        return Ok(());
    };
    if !pod.ends_with(".pod") {
        return Err(ConvertError::at_key(
            q,
            GROUP,
            "Pod",
            format!("pod {pod} is not Quadlet based"),
        ));
    }
    let Some(info) = ctx.units.get_mut(pod) else {
        return Err(ConvertError::at_key(
            q,
            GROUP,
            "Pod",
            format!("quadlet pod unit {pod} does not exist"),
        ));
    };
    let pod_service = info.service_file_name();
    service.add(UNIT, "BindsTo", pod_service.as_str());
    service.add(UNIT, "After", pod_service.as_str());
    if by_name {
        cmd.add("--pod");
        cmd.add(info.resource_name.clone());
    } else {
        cmd.add("--pod-id-file");
        cmd.add(format!("%t/{}.pod-id", info.service_name));
    }
    if q.unit.lookup_bool_or(GROUP, "StartWithPod", true) {
        info.containers_to_start.push(q.service_file_name());
    }
    Ok(())
}

/// Splits one CSV record the way Go's `encoding/csv` reader does (`,` separator, `"` quoting,
/// no lazy quotes). More than one record (a newline outside quotes) is an error.
fn parse_csv_record(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            i + 1
                        ))
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => {
                    return Err(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    i + 1
                ))
                }
            }
        } else {
            while let Some(&c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => {
                        return Err(format!(
                            "parse error on line 1, column {}: bare \" in non-quoted-field",
                            i + 1
                        ))
                    }
                    '\n' | '\r' => {
                        return Err("wrong number of records: a mount must be one CSV record".into())
                    }
                    c => field.push(c),
                }
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

/// Writes fields as one CSV record like Go's `csv.Writer` (without the final newline).
fn to_csv(fields: &[String]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = !f.is_empty()
            && (f.contains([',', '"', '\r', '\n'])
                || f == "\\."
                || f.starts_with(char::is_whitespace));
        if quote {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out
}

/// C40 (quadlet-keys §3.6): resolves the source of volume/bind/glob/image mounts and re-serializes
/// the mount with `type=` first; other mount types pass through unchanged.
fn resolve_mount(
    q: &Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
    mount: &str,
) -> Result<String, ConvertError> {
    let err = |msg: String| ConvertError::at_key(q, GROUP, "Mount", msg);
    let fields = parse_csv_record(mount).map_err(err)?;
    let mut mount_type = None;
    let mut tokens = Vec::with_capacity(fields.len());
    for f in fields {
        if mount_type.is_none() {
            if let Some(t) = f.strip_prefix("type=").filter(|t| !t.contains('=')) {
                mount_type = Some(t.to_owned());
                continue;
            }
        }
        tokens.push(f);
    }
    let Some(mount_type) = mount_type else {
        return Err(err("incorrect mount format: should be --mount type=<bind|glob|tmpfs|volume>,[src=<host-dir|volume-name>,]target=<ctr-dir>[,options]".into()));
    };
    let artifact = mount_type == "artifact" && ctx.writes(versions::ARTIFACT);
    if !artifact && !matches!(mount_type.as_str(), "volume" | "bind" | "glob" | "image") {
        return Ok(mount.to_owned());
    }
    let mut source = None;
    for (i, t) in tokens.iter().enumerate() {
        let key = t.split('=').next().unwrap_or_default();
        if key == "source" || key == "src" {
            let Some((_, v)) = t.split_once('=') else {
                return Err(err("source parameter does not include a value".into()));
            };
            source = Some((i, v.to_owned()));
        }
    }
    let Some((idx, original)) = source else {
        return Err(err(format!(
            "source parameter is required for mount type {mount_type}"
        )));
    };
    if original.is_empty() && ctx.writes(versions::EMPTY_SOURCE_ERROR) {
        return Err(err("source cannot be empty".into()));
    }
    let resolved = resolve_storage_source(q, service, ctx, &original, true, "Mount")?;
    tokens[idx] = format!("source={resolved}");
    tokens.insert(0, format!("type={mount_type}"));
    Ok(to_csv(&tokens))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn supported_keys_are_sorted_and_each_is_found() {
        // Sorted (and so distinct) for the reader; the set finds every one and nothing else.
        assert!(SUPPORTED_KEYS.keys().windows(2).all(|w| w[0] < w[1]));
        assert!(SUPPORTED_KEYS
            .keys()
            .iter()
            .all(|k| SUPPORTED_KEYS.contains(k)));
        for other in [
            "",
            "image",
            "Images",
            "Imag",
            "Frobnicate",
            "DefaultDependencies",
        ] {
            assert!(!SUPPORTED_KEYS.contains(other), "{other}");
        }
    }

    #[test]
    fn expose_port_must_end_in_a_port() {
        assert!(valid_expose_port("80"));
        assert!(valid_expose_port("8000-8080/udp"));
        assert!(valid_expose_port("abc80"));
        assert!(!valid_expose_port("80/sctp"));
        assert!(!valid_expose_port("/udp"));
    }

    #[test]
    fn csv_round_trip_quotes_fields_with_commas() {
        let f = parse_csv_record(r#"type=bind,"src=/q,x",dst=/c2"#).unwrap();
        assert_eq!(f, vec!["type=bind", "src=/q,x", "dst=/c2"]);
        assert_eq!(to_csv(&f), r#"type=bind,"src=/q,x",dst=/c2"#);
        assert!(parse_csv_record(r#"a"b"#).is_err());
    }
}
