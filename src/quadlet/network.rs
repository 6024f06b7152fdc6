//! `.network` files, group `[Network]`, to `<name>-network.service` (Quadlet 5.4.2
//! `ConvertNetwork`, quadlet-keys.md §7): a one-shot `podman network create --ignore …
//! <network name>`.
//!
//! The network name (`NetworkName=`, else `systemd-<base name>`) is the resource name that
//! containers, pods, kubes and builds use for `Network=x.network`. The boolean and string option
//! groups, whose order 5.4.2 took from Go map iteration, use the fixed order of quadlet-keys §12.
//!
//! Keys added after 5.4.2 (accepted when the podman version allows, see
//! [`super::compat::NEW_KEYS`]), placed as podman 5.8.2 does: `InterfaceName=` (5.6.0) is last
//! in N2; `NetworkDeleteOnStop=true` (5.5.0) adds `ExecStopPost=podman network rm <name>`
//! before `ExecStart=`.

use super::common::{add_all_strings, add_bools, add_key_vals, add_strings, KeySet};
use super::podman::{PodmanCmd, Service};
use super::resource::{begin, finish, name_or_default};
use super::{Context, ConvertError, OrCollect, Quadlet};

const GROUP: &str = "Network";

/// The keys `[Network]` accepts in 5.4.2 (`supportedNetworkKeys`); later ones are in
/// [`super::compat::NEW_KEYS`].
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "ContainersConfModule",
    "DNS",
    "DisableDNS",
    "Driver",
    "Gateway",
    "GlobalArgs",
    "IPAMDriver",
    "IPRange",
    "IPv6",
    "Internal",
    "Label",
    "NetworkName",
    "Options",
    "PodmanArgs",
    "ServiceName",
    "Subnet",
]);

/// N1: boolean options, literal order.
const BOOL_OPTIONS: &[(&str, &str)] = &[
    ("DisableDNS", "--disable-dns"),
    ("Internal", "--internal"),
    ("IPv6", "--ipv6"),
];

/// N2: single-valued options, literal order (of 5.6.0, which added `InterfaceName`).
const STRING_OPTIONS: &[(&str, &str)] = &[
    ("Driver", "--driver"),
    ("IPAMDriver", "--ipam-driver"),
    ("InterfaceName", "--interface-name"),
];

/// Converts a `.network` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    let (mut service, mut cmd) = begin(q, ctx, &SUPPORTED_KEYS, &["network", "create"])?;
    cmd.add("--ignore");
    let u = &q.unit;
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    add_strings(&mut cmd, q, STRING_OPTIONS);
    add_all_strings(&mut cmd, q, &[("DNS", "--dns")]);
    add_subnets(q, &mut cmd).or_collect(ctx, ())?;
    add_key_vals(
        &mut cmd,
        q,
        ctx,
        &[("Options", "--opt"), ("Label", "--label")],
    );
    let name = name_or_default(q, ctx, "NetworkName");
    if u.lookup_bool_or(GROUP, "NetworkDeleteOnStop", false) {
        let mut rm = PodmanCmd::base(ctx, q).with_sub(&["network", "rm"]);
        rm.arg(name.clone());
        service.add_exec("ExecStopPost", rm);
    }
    Ok(finish(q, ctx, service, cmd, &name, &name))
}

/// N4: `--subnet S` per subnet, each followed by the gateway and the IP range of the same index
/// (`Subnet=`, `Gateway=` and `IPRange=` values pair up in file order).
fn add_subnets<'q>(q: &'q Quadlet, cmd: &mut PodmanCmd<'q>) -> Result<(), ConvertError> {
    let u = &q.unit;
    let subnets = u.lookup_all(GROUP, "Subnet");
    let gateways = u.lookup_all(GROUP, "Gateway");
    let ranges = u.lookup_all(GROUP, "IPRange");
    let err = |key: &str, msg: &str| Err(ConvertError::at_key(q, GROUP, key, msg));
    if subnets.is_empty() {
        if !gateways.is_empty() {
            return err("Gateway", "cannot set gateway or range without subnet");
        }
        if !ranges.is_empty() {
            return err("IPRange", "cannot set gateway or range without subnet");
        }
        return Ok(());
    }
    if gateways.len() > subnets.len() {
        return err("Gateway", "cannot set more gateways than subnets");
    }
    if ranges.len() > subnets.len() {
        return err("IPRange", "cannot set more ranges than subnets");
    }
    for (i, subnet) in subnets.iter().enumerate() {
        cmd.add("--subnet");
        cmd.add(*subnet);
        if let Some(g) = gateways.get(i) {
            cmd.add("--gateway");
            cmd.add(*g);
        }
        if let Some(r) = ranges.get(i) {
            cmd.add("--ip-range");
            cmd.add(*r);
        }
    }
    Ok(())
}
