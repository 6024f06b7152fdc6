//! `.pod` files, group `[Pod]`, to `<name>-pod.service` (Quadlet 5.4.2 `ConvertPod`,
//! quadlet-keys.md §5).
//!
//! The pod is created by `ExecStartPre=podman pod create …` (arguments in the order P0–P9 of
//! quadlet-keys §5), started by `ExecStart=podman pod start`, and stopped and removed by
//! `ExecStop`/`ExecStopPost`; every command finds the pod through `%t/%N.pod-id`. Containers that
//! join with `Pod=x.pod` (converted before the pod, see [`super::Kind::priority`]) are recorded
//! in [`super::UnitInfo::containers_to_start`]; the pod `Wants=` and starts `Before=` each of
//! them. The two option groups whose order 5.4.2 took from Go map iteration (P5 strings, P6
//! lists) use the fixed "literal" order of quadlet-keys §12.
//!
//! Keys added after 5.4.2 (accepted when the podman version allows, see
//! [`super::compat::NEW_KEYS`]) go where podman 5.8.2 puts them, in our 5.4.2 command lines:
//! * `HostName=` (5.5.0): `--hostname V` per value, last in P6;
//! * `Label=` (5.6.0): `--label K=V`, sorted, between `--publish` and `--network`;
//! * `ExitPolicy=` (5.6.0): `--exit-policy V` (two words) right after `--replace`, in place of
//!   5.4.2's `--exit-policy=stop` before it; without the key the line is 5.4.2's;
//! * `StopTimeout=` (5.7.0): `--time=V` in `ExecStop=` instead of `--time=10`.
//!
//! Unlike 5.8.2, an empty `ExitPolicy=` or `StopTimeout=` means the default (5.8.2 writes an
//! empty word or `--time=`, which break the pod's start or stop).
//!
//! The pod is still found through `--pod-id-file` (5.6.0 and later use the pod name), as the
//! containers that join it do.
//!
//! Deliberate differences from 5.4.2, following fixes made upstream later:
//! * `Environment=PODMAN_SYSTEMD_UNIT=%n` is appended instead of overwriting the user's last
//!   `Environment=` line (podman 5.6.0), so a pod keeps the environment its unit file sets.
//! * A `Restart=` of the user is kept; `Restart=on-failure` is only the default (podman main).
//!   `Type=forking` and `PIDFile=` are still forced: the pod's start mechanism needs them.
//! * A template container (`web@.container`) joining the pod is not added to `Wants=`/`Before=`
//!   (podman main): systemd cannot want a template without an instance.

use super::common::{
    add_all_strings, add_key_vals, add_networks, add_publish_ports, add_service_default,
    add_source_path, add_strings, add_syslog_identifier, add_user_mappings, add_volumes,
    new_service, KeySet, SERVICE, UNIT,
};
use super::compat::check_keys;
use super::podman::{PodmanCmd, Service};
use super::{versions, Context, ConvertError, OrCollect, Quadlet};

const GROUP: &str = "Pod";

/// The keys `[Pod]` accepts in 5.4.2 (`supportedPodKeys`); later ones are in
/// [`super::compat::NEW_KEYS`].
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "AddHost",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "GIDMap",
    "GlobalArgs",
    "IP",
    "IP6",
    "Network",
    "NetworkAlias",
    "PodName",
    "PodmanArgs",
    "PublishPort",
    "RemapGid",
    "RemapUid",
    "RemapUidSize",
    "RemapUsers",
    "ServiceName",
    "ShmSize",
    "SubGIDMap",
    "SubUIDMap",
    "UIDMap",
    "UserNS",
    "Volume",
]);

/// P5: single-valued options, literal order.
const STRING_OPTIONS: &[(&str, &str)] =
    &[("IP", "--ip"), ("IP6", "--ip6"), ("ShmSize", "--shm-size")];

/// P6: repeatable options, literal order (of 5.5.0, which added `HostName`).
const LIST_OPTIONS: &[(&str, &str)] = &[
    ("NetworkAlias", "--network-alias"),
    ("DNS", "--dns"),
    ("DNSOption", "--dns-option"),
    ("DNSSearch", "--dns-search"),
    ("AddHost", "--add-host"),
    ("HostName", "--hostname"),
];

/// The file every pod command finds the pod through.
const POD_ID_FILE: &str = "--pod-id-file=%t/%N.pod-id";

/// The pod name: `PodName=` if non-empty, else `systemd-<file base name>` (`systemd-db@` for the
/// template `db@.pod`, as in 5.4.2).
pub fn pod_name(q: &Quadlet) -> String {
    q.unit
        .lookup_nonempty(GROUP, "PodName")
        .map_or_else(|| format!("systemd-{}", q.base_name()), str::to_owned)
}

/// Converts a `.pod` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    check_keys(q, ctx, &SUPPORTED_KEYS)?;
    let mut service = new_service(q, ctx)?;
    add_source_path(&mut service, q);
    service.add(UNIT, "RequiresMountsFor", "%t/containers");

    let members = ctx.units.get(&q.name).map(|i| &i.containers_to_start);
    for member in members.into_iter().flatten() {
        if !member.ends_with("@.service") {
            service.add(UNIT, "Wants", member.as_str());
            service.add(UNIT, "Before", member.as_str());
        }
    }

    // Since 5.6 every command addresses the pod by name (versions::BY_NAME).
    let by_name = ctx.writes(versions::BY_NAME);
    let name = pod_name(q);
    let mut create = PodmanCmd::base(ctx, q).with_sub(&["pod", "create"]);
    create.add("--infra-conmon-pidfile=%t/%N.pid");
    if !by_name {
        create.add(POD_ID_FILE);
    }
    // ExitPolicy (5.6.0) is L. 5.8.2 turns an empty value into an empty word, which systemd
    // drops when it splits the line, so podman would take the next option as the policy;
    // here an empty value resets to the default, as empty assignments do in unit files.
    let policy = q.unit.lookup(GROUP, "ExitPolicy").filter(|p| !p.is_empty());
    if ctx.writes(versions::POD_EXIT_POLICY_WORDS) {
        create.extend(["--replace", "--exit-policy", policy.unwrap_or("stop")]);
    } else {
        match policy {
            Some(policy) => create.extend(["--replace", "--exit-policy", policy]),
            None => create.extend(["--exit-policy=stop", "--replace"]),
        }
    }
    add_user_mappings(q, &mut create, true).or_collect(ctx, ())?;
    add_publish_ports(&mut create, q);
    add_key_vals(&mut create, q, ctx, &[("Label", "--label")]);
    add_networks(q, &mut service, ctx, &mut create)?;
    add_strings(&mut create, q, STRING_OPTIONS);
    add_all_strings(&mut create, q, LIST_OPTIONS);
    add_volumes(q, &mut service, ctx, &mut create)?;
    create.add("--infra-name");
    create.add(format!("{name}-infra"));
    create.add("--name");
    create.add(name.clone());
    create.extend(q.unit.lookup_all_args(GROUP, "PodmanArgs"));

    add_syslog_identifier(&mut service);
    // `pod VERB [--pod-id-file=…] OPTIONS [NAME]`: the pod is found through the id file
    // (5.4.2) or by its name (5.6 and later).
    let pod_command = |sub: &'static [&'static str], options: Vec<String>| {
        let mut cmd = PodmanCmd::base(ctx, q).with_sub(sub);
        if !by_name {
            cmd.add(POD_ID_FILE);
        }
        cmd.extend(options);
        if by_name {
            cmd.arg(name.clone());
        }
        cmd
    };
    service.add_exec("ExecStart", pod_command(&["pod", "start"], Vec::new()));
    // StopTimeout (5.7.0) is L. 5.8.2 writes `--time=` for an empty value, which podman
    // rejects when the pod stops; here an empty value resets to the default.
    let time = q
        .unit
        .lookup(GROUP, "StopTimeout")
        .filter(|t| !t.is_empty())
        .map_or_else(|| "--time=10".to_owned(), |t| format!("--time={t}"));
    service.add_exec(
        "ExecStop",
        pod_command(&["pod", "stop"], vec!["--ignore".to_owned(), time]),
    );
    service.add_exec(
        "ExecStopPost",
        pod_command(
            &["pod", "rm"],
            vec!["--ignore".to_owned(), "--force".to_owned()],
        ),
    );
    service.add_exec("ExecStartPre", create);

    service.add(SERVICE, "Environment", "PODMAN_SYSTEMD_UNIT=%n");
    service.set(SERVICE, "Type", "forking");
    add_service_default(&mut service, "Restart", "on-failure");
    service.set(SERVICE, "PIDFile", "%t/%N.pid");
    Ok(service)
}
