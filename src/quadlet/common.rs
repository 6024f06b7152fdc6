//! Helpers shared by the Quadlet kinds (Quadlet 5.4.2 `pkg/systemd/quadlet/quadlet.go`): the
//! service skeleton, dependency look-ups, networks, volumes, user namespaces, image sources,
//! `[Service]` rules and option groups. Byte-level rules are in `quadlet-keys.md` §3.
//!
//! Typical use in a kind:
//!
//! ```ignore
//! check_supported_keys(q, SUPPORTED_KEYS)?;          // unsupported key → error (file:line)
//! let mut service = new_service(q, ctx);             // copy, rename groups, default deps
//! add_source_path(&mut service, q);
//! service.add(UNIT, "RequiresMountsFor", "%t/containers");
//! let mut cmd = PodmanCmd::base(ctx, q).with_sub(&["network", "create"]);
//! cmd.add("--ignore");
//! add_networks(q, &mut service, ctx, &mut cmd)?;
//! cmd.arg(name);                                     // final arguments after the options
//! service.add_exec("ExecStart", cmd);                // typed until the unit is finished
//! add_syslog_identifier(&mut service);
//! ```

use super::podman::{escape_words_as, PodmanCmd, Service};
use super::{versions, Context, ConvertError, Kind, Quadlet};
use crate::unit::file::{key_bit, parse_bool, Group};
use crate::unit::UnitFile;

/// `[Unit]`
pub const UNIT: &str = "Unit";
/// `[Service]`
pub const SERVICE: &str = "Service";
/// `[Install]`
pub const INSTALL: &str = "Install";
/// `[Quadlet]`
pub const QUADLET: &str = "Quadlet";
/// Keys accepted in `[Quadlet]`.
pub const QUADLET_KEYS: KeySet = KeySet::new(&["DefaultDependencies"]);

/// A fixed list of key names with a membership test that costs one hash and one comparison:
/// the open-addressing table is built at compile time (`check_supported_keys` runs for every
/// line of every unit).
#[derive(Debug, Clone, Copy)]
pub struct KeySet {
    keys: &'static [&'static str],
    /// `index + 1` of the key hashed to each slot (linear probing); 0 for an empty slot.
    slots: [u8; KEY_SLOTS],
}

/// Slots of a [`KeySet`] table (one per value of a byte): at least twice the longest key list,
/// so probes stay short.
const KEY_SLOTS: usize = 256;

/// FNV-1a of `key`, folded to a slot.
const fn key_slot(key: &str) -> usize {
    let b = key.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h = (h ^ b[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    // The low byte of the folded hash: one of the KEY_SLOTS slots.
    #[allow(clippy::cast_possible_truncation)]
    let slot = (h ^ (h >> 32)) as u8;
    slot as usize
}

impl KeySet {
    /// The set of `keys` (at most 127, distinct; checked at compile time).
    pub const fn new(keys: &'static [&'static str]) -> Self {
        assert!(keys.len() < KEY_SLOTS / 2, "too many keys for a KeySet");
        let mut slots = [0u8; KEY_SLOTS];
        let mut k = 0;
        while k < keys.len() {
            let mut s = key_slot(keys[k]);
            while slots[s] != 0 {
                s = (s + 1) % KEY_SLOTS;
            }
            #[allow(clippy::cast_possible_truncation)]
            {
                slots[s] = (k + 1) as u8;
            }
            k += 1;
        }
        KeySet { keys, slots }
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &'static [&'static str] {
        self.keys
    }

    /// True if `key` is in the set.
    pub fn contains(&self, key: &str) -> bool {
        let mut s = key_slot(key);
        loop {
            match self.slots[s] {
                0 => return false,
                i if self.keys[usize::from(i) - 1] == key => return true,
                _ => s = (s + 1) % KEY_SLOTS,
            }
        }
    }
}

/// Checks that every key of the type group is in `supported` (then that `[Quadlet]` only has
/// `DefaultDependencies`). The first offending key, by order of appearance, is the error
/// `unsupported key 'K' in group 'G' in <path>` with its line.
pub fn check_supported_keys(q: &Quadlet, supported: &KeySet) -> Result<(), ConvertError> {
    check_keys_by(q, |key| supported.contains(key))
}

/// [`check_supported_keys`] with a predicate for the type group's keys.
pub fn check_keys_by(q: &Quadlet, supported: impl Fn(&str) -> bool) -> Result<(), ConvertError> {
    for group in [q.kind.group(), QUADLET] {
        let Some(g) = q.unit.group(group) else {
            continue;
        };
        let known = |key: &str| {
            if group == QUADLET {
                QUADLET_KEYS.contains(key)
            } else {
                supported(key)
            }
        };
        if let Some(l) = g.lines.iter().find(|l| !l.comment && !known(&l.key)) {
            return Err(unsupported_key(q, group, l));
        }
    }
    Ok(())
}

/// Every key [`check_keys_by`] refuses (not only the first), with its group, for a collecting
/// conversion ([`super::Context::collecting`]).
pub fn unsupported_keys(
    q: &Quadlet,
    supported: impl Fn(&str) -> bool,
) -> Vec<(&'static str, ConvertError)> {
    let mut out = Vec::new();
    for group in [q.kind.group(), QUADLET] {
        let Some(g) = q.unit.group(group) else {
            continue;
        };
        for l in &g.lines {
            let known = if group == QUADLET {
                QUADLET_KEYS.contains(&l.key)
            } else {
                supported(&l.key)
            };
            if !l.comment && !known {
                out.push((group, unsupported_key(q, group, l)));
            }
        }
    }
    out
}

/// `unsupported key 'K' in group 'G' in <path>` at the line `l`.
fn unsupported_key(q: &Quadlet, group: &str, l: &crate::unit::Line) -> ConvertError {
    ConvertError::at_origin(
        q,
        l.origin,
        format!(
            "unsupported key '{}' in group '{group}' in {}",
            l.key,
            q.path.display()
        ),
    )
    .about_key(&l.key)
}

/// The service skeleton: a copy of the Quadlet file with the type group renamed `X-<Type>` and
/// `[Quadlet]` renamed `X-Quadlet`, and unless `[Quadlet] DefaultDependencies=false` the lines
/// `Wants=` and `After=` of `network-online.target` (system) or
/// `podman-user-wait-network-online.service` (user) prepended to `[Unit]` (created if absent,
/// so it always precedes `[Service]`).
///
/// From 5.5 on, Quadlet file names in the unit relationship keys of `[Unit]` are first replaced
/// by their service names (`translate_dependencies`).
pub fn new_service<'a>(q: &Quadlet, ctx: &Context) -> Result<Service<'a>, ConvertError> {
    let mut s = q.unit.clone();
    // A file without any group (empty, or comments only) leaves an unnamed group: Quadlet
    // writes nothing for it but the empty line that separates it from `[Unit]`.
    if let Some(g) = s.groups.first_mut().filter(|g| g.name.is_empty()) {
        g.comments.clear();
        g.lines.clear();
    }
    if ctx.writes(versions::TRANSLATE_DEPENDENCIES) {
        translate_dependencies(q, &mut s, ctx)?;
    }
    s.rename_group(q.kind.group(), q.kind.x_group());
    s.rename_group(QUADLET, "X-Quadlet");
    if q.unit.lookup_bool_or(QUADLET, "DefaultDependencies", true) {
        let target = if ctx.user {
            "podman-user-wait-network-online.service"
        } else {
            "network-online.target"
        };
        s.prepend(UNIT, "After", target);
        s.prepend(UNIT, "Wants", target);
    } else {
        s.ensure_group(UNIT);
    }
    Ok(s.into())
}

/// The `[Unit]` keys whose values name other units (5.5 `unitDependencyKeys`).
const DEPENDENCY_KEYS: [&str; 15] = [
    "After",
    "Before",
    "BindsTo",
    "Conflicts",
    "OnFailure",
    "OnSuccess",
    "PartOf",
    "PropagatesReloadTo",
    "PropagatesStopTo",
    "ReloadPropagatedFrom",
    "Requires",
    "Requisite",
    "StopPropagatedFrom",
    "Upholds",
    "Wants",
];

/// 5.5 `translateUnitDependencies` ([`versions::TRANSLATE_DEPENDENCIES`]): in each key of
/// [`DEPENDENCY_KEYS`] whose values name a Quadlet file (`db.container`), every value is
/// replaced by one line listing the values with Quadlet names translated to service names,
/// appended to `[Unit]`. A Quadlet name that is not loaded is an error.
fn translate_dependencies(
    q: &Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
) -> Result<(), ConvertError> {
    let Some(group) = service.group(UNIT) else {
        return Ok(());
    };
    // Only the keys with a value that may name a Quadlet file (`x.container`: a `.`) are looked
    // up: the others keep their lines (most units have one or two of the fifteen keys).
    let mask = group
        .lines
        .iter()
        .filter(|l| {
            !l.comment && l.value.contains('.') && DEPENDENCY_KEYS.contains(&l.key.as_str())
        })
        .fold(0, |m, l| m | key_bit(&l.key));
    if mask == 0 {
        return Ok(());
    }
    for key in DEPENDENCY_KEYS {
        if mask & key_bit(key) == 0 {
            continue;
        }
        let deps = service.lookup_all_strv(UNIT, key);
        let mut translated = false;
        let mut out = Vec::with_capacity(deps.len());
        for dep in deps {
            let is_quadlet = dep
                .rsplit_once('.')
                .and_then(|(_, ext)| Kind::from_extension(ext))
                .is_some_and(|k| k != Kind::Artifact || ctx.writes(versions::ARTIFACT));
            if !is_quadlet {
                out.push(dep);
                continue;
            }
            let Some(info) = ctx.units.get(&dep) else {
                ctx.recover(ConvertError::at_key(
                    q,
                    UNIT,
                    key,
                    format!("unable to translate dependency for {dep}"),
                ))?;
                out.push(dep);
                continue;
            };
            out.push(info.service_file_name());
            translated = true;
        }
        if translated {
            if let Some(g) = service.group_mut(UNIT) {
                g.lines.retain(|l| !l.is_assignment_of(key));
            }
            service.add(UNIT, key, out.join(" "));
        }
    }
    Ok(())
}

/// Appends `RequiresMountsFor=<path>` to `[Unit]`, the path escaped like a command word from
/// 5.8 on ([`versions::ESCAPE_MOUNTS_FOR`]; systemd splits the value at spaces).
pub fn add_requires_mounts_for(service: &mut UnitFile, ctx: &Context, path: &str) {
    if ctx.writes(versions::ESCAPE_MOUNTS_FOR) {
        service.add(UNIT, "RequiresMountsFor", escape_words_as(&[path], true));
    } else {
        service.add(UNIT, "RequiresMountsFor", path);
    }
}

/// Appends `SourcePath=<path of the Quadlet file>` to `[Unit]`.
pub fn add_source_path(service: &mut UnitFile, q: &Quadlet) {
    // `to_string_lossy` writes what `display()` would (invalid UTF-8 as U+FFFD) without the
    // formatting machinery.
    service.add(UNIT, "SourcePath", q.path.to_string_lossy().into_owned());
}

/// Appends `SyslogIdentifier=%N` to `[Service]` unless the user set one.
pub fn add_syslog_identifier(service: &mut UnitFile) {
    if !service.has_key(SERVICE, "SyslogIdentifier") {
        service.add(SERVICE, "SyslogIdentifier", "%N");
    }
}

/// Appends `key=value` to `[Service]` unless the user set `key` (e.g. `Type=oneshot`,
/// `RemainAfterExit=yes`).
pub fn add_service_default(service: &mut UnitFile, key: &str, value: &str) {
    if !service.has_key(SERVICE, key) {
        service.add(SERVICE, key, value);
    }
}

/// Appends `Requires=<svc>` and `After=<svc>` to `[Unit]`.
pub fn add_requires(service: &mut UnitFile, svc: &str) {
    service.add(UNIT, "Requires", svc);
    service.add(UNIT, "After", svc);
}

/// `[Service] KillMode=`: absent → `KillMode=mixed` appended; `mixed` or `control-group` kept;
/// anything else → `invalid KillMode 'X'`.
pub fn check_kill_mode(q: &Quadlet, service: &mut UnitFile) -> Result<(), ConvertError> {
    match service.lookup(SERVICE, "KillMode") {
        None => {
            service.add(SERVICE, "KillMode", "mixed");
            Ok(())
        }
        Some("mixed" | "control-group") => Ok(()),
        Some(other) => Err(ConvertError::at_key(
            q,
            SERVICE,
            "KillMode",
            format!("invalid KillMode '{other}'"),
        )),
    }
}

/// `[Service] Type=` may only be absent, `notify` or `oneshot` (else `invalid service Type 'X'`).
/// Returns true for `oneshot`.
pub fn check_service_type(q: &Quadlet, service: &UnitFile) -> Result<bool, ConvertError> {
    match service.lookup(SERVICE, "Type") {
        None | Some("notify") => Ok(false),
        Some("oneshot") => Ok(true),
        Some(other) => Err(ConvertError::at_key(
            q,
            SERVICE,
            "Type",
            format!("invalid service Type '{other}'"),
        )),
    }
}

/// *Sets* `Type=notify` and `NotifyAccess=all` (overwriting the user's last lines in place).
pub fn set_notify_type(service: &mut UnitFile) {
    service.set(SERVICE, "Type", "notify");
    service.set(SERVICE, "NotifyAccess", "all");
}

/// Quadlet's `lookupAndAddString`: for each `(key, flag)` in order, `flag V` if the L value is
/// non-empty. The order is the fixed "literal" order (5.4.2 iterated a Go map).
pub fn add_strings<'q>(cmd: &mut PodmanCmd<'q>, q: &'q Quadlet, keys: &[(&str, &'static str)]) {
    for (g, key, flag) in present_keys(q, keys) {
        if let Some(v) = q.unit.lookup_in(g, key).filter(|v| !v.is_empty()) {
            cmd.add(flag);
            cmd.add(v);
        }
    }
}

/// Quadlet's `lookupAndAddKeyVals`: for each `(key, flag)`, `flag K=V` per key of the key-value
/// list, sorted by key (the last value of a key wins); words without `=` are `flag K` from 5.6
/// on ([`versions::ENV_FROM_HOST`]) and dropped before.
pub fn add_key_vals<'q>(
    cmd: &mut PodmanCmd<'q>,
    q: &'q Quadlet,
    ctx: &Context,
    keys: &[(&str, &'static str)],
) {
    let bare = ctx.writes(versions::ENV_FROM_HOST);
    for (key, flag) in keys {
        cmd.add_key_vals(flag, q.unit.lookup_all_key_vals(q.kind.group(), key, bare));
    }
}

/// Quadlet's `lookupAndAddAllStrings`: for each `(key, flag)`, `flag V` per LA value.
pub fn add_all_strings<'q>(cmd: &mut PodmanCmd<'q>, q: &'q Quadlet, keys: &[(&str, &'static str)]) {
    for (g, key, flag) in present_keys(q, keys) {
        cmd.add_each(flag, g.lookup_all(key));
    }
}

/// Quadlet's `lookupAndAddBoolean`: for each present key, `flag` or `flag=false`.
pub fn add_bools<'q>(cmd: &mut PodmanCmd<'q>, q: &'q Quadlet, keys: &[(&str, &'static str)]) {
    for (g, key, flag) in present_keys(q, keys) {
        if let Some(v) = q.unit.lookup_in(g, key) {
            cmd.add_bool(flag, parse_bool(v));
        }
    }
}

/// The `(key, flag)` pairs of `keys` that may be assigned in the type group of `q` (with the
/// group): the group is found once and keys ruled out by its [`Group::key_mask`] are skipped
/// (these tables are looked up for every unit, and most of their keys are absent).
fn present_keys<'a, 'k>(
    q: &'a Quadlet,
    keys: &'k [(&'k str, &'static str)],
) -> impl Iterator<Item = (&'a Group, &'k str, &'static str)> + use<'a, 'k> {
    let group = q.unit.group(q.kind.group());
    let mask = group.map_or(0, Group::key_mask);
    group.into_iter().flat_map(move |g| {
        keys.iter()
            .filter(move |(k, _)| mask & key_bit(k) != 0)
            .map(move |&(k, f)| (g, k, f))
    })
}

/// `--publish V` for each `PublishPort=` value, unchanged.
pub fn add_publish_ports<'q>(cmd: &mut PodmanCmd<'q>, q: &'q Quadlet) {
    cmd.add_each(
        "--publish",
        q.unit.lookup_all(q.kind.group(), "PublishPort"),
    );
}

/// Go's `filepath.Clean` on a path string.
pub fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// The `+P` rule: an absolute path is kept (not cleaned), a value starting with `%` (not `%%`)
/// is kept (a specifier such as `%h`), anything else is joined to the Quadlet file's directory
/// and cleaned.
pub fn resolve_path(q: &Quadlet, p: &str) -> String {
    if p.starts_with('/') || (p.starts_with('%') && !p.starts_with("%%")) {
        return p.to_owned();
    }
    clean_path(&format!("{}/{p}", q.dir.display()))
}

/// The directory part of a path string (Go `filepath.Dir`).
pub fn dir_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => clean_path(&p[..i]),
        None => ".".to_owned(),
    }
}

/// Quadlet's `convertNumber` as used by `LookupUint32`: `strtol`-style base detection (`0x` hex,
/// leading `0` octal); empty, unparsable, negative or too large values give 0 (5.4.2 multiplies
/// negative numbers by −11 and then rejects them). `None` when the key is absent.
pub fn lookup_u32(unit: &UnitFile, group: &str, key: &str) -> Option<u32> {
    let v = unit.lookup(group, key)?;
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let parsed = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse::<u64>().ok()
    };
    Some(match parsed {
        Some(n) if !neg || n == 0 => u32::try_from(n).unwrap_or(0),
        _ => 0,
    })
}

/// The user-namespace options (quadlet-keys §3.8): `UserNS`, `UIDMap`, `GIDMap`, `SubUIDMap`,
/// `SubGIDMap`, or the deprecated `RemapUsers`/`RemapUid`/`RemapGid`/`RemapUidSize`.
/// `manual_ok` is false for `.kube` (`RemapUsers=manual is not supported`).
pub fn add_user_mappings<'q>(
    q: &'q Quadlet,
    cmd: &mut PodmanCmd<'q>,
    manual_ok: bool,
) -> Result<(), ConvertError> {
    let group = q.kind.group();
    let u = &q.unit;
    let start = cmd.options.len();
    if let Some(v) = u.lookup_nonempty(group, "UserNS") {
        cmd.add("--userns");
        cmd.add(v);
    }
    cmd.add_each("--uidmap", u.lookup_all_strv(group, "UIDMap"));
    cmd.add_each("--gidmap", u.lookup_all_strv(group, "GIDMap"));
    if let Some(v) = u.lookup_nonempty(group, "SubUIDMap") {
        cmd.add("--subuidname");
        cmd.add(v);
    }
    if let Some(v) = u.lookup_nonempty(group, "SubGIDMap") {
        cmd.add("--subgidname");
        cmd.add(v);
    }
    let remap_keys = ["RemapUid", "RemapGid", "RemapUsers"];
    if cmd.options.len() > start {
        if let Some(k) = remap_keys.iter().find(|k| u.has_key(group, k)) {
            return Err(ConvertError::at_key(
                q,
                group,
                k,
                "deprecated Remap keys are set along with explicit mapping keys",
            ));
        }
        return Ok(());
    }
    let uid_maps = u.lookup_all_strv(group, "RemapUid");
    let gid_maps = u.lookup_all_strv(group, "RemapGid");
    let remap = u.lookup_last_raw(group, "RemapUsers").unwrap_or("");
    let err = |key: &str, msg: String| Err(ConvertError::at_key(q, group, key, msg));
    match remap {
        "" => {
            if !uid_maps.is_empty() {
                return err("RemapUid", "UidMap set without RemapUsers".into());
            }
            if !gid_maps.is_empty() {
                return err("RemapGid", "GidMap set without RemapUsers".into());
            }
        }
        "manual" => {
            if !manual_ok {
                return err("RemapUsers", "RemapUsers=manual is not supported".into());
            }
            cmd.add_each("--uidmap", uid_maps);
            cmd.add_each("--gidmap", gid_maps);
        }
        "auto" => {
            let mut opts: Vec<String> = uid_maps
                .iter()
                .map(|w| format!("uidmapping={w}"))
                .chain(gid_maps.iter().map(|w| format!("gidmapping={w}")))
                .collect();
            if let Some(n) = lookup_u32(u, group, "RemapUidSize").filter(|n| *n > 0) {
                opts.push(format!("size={n}"));
            }
            add_userns_mode(cmd, "auto", &opts);
        }
        "keep-id" => {
            if uid_maps.len() > 1 {
                return err(
                    "RemapUid",
                    "RemapUsers=keep-id supports only a single value for UID mapping".into(),
                );
            }
            if gid_maps.len() > 1 {
                return err(
                    "RemapGid",
                    "RemapUsers=keep-id supports only a single value for GID mapping".into(),
                );
            }
            let mut opts = Vec::new();
            if let Some(w) = uid_maps.first() {
                opts.push(format!("uid={w}"));
            }
            if let Some(w) = gid_maps.first() {
                opts.push(format!("gid={w}"));
            }
            add_userns_mode(cmd, "keep-id", &opts);
        }
        other => {
            return err(
                "RemapUsers",
                format!("unsupported RemapUsers option '{other}'"),
            )
        }
    }
    Ok(())
}

/// `--userns MODE` or `--userns MODE:OPT,OPT...`.
fn add_userns_mode(cmd: &mut PodmanCmd<'_>, mode: &'static str, opts: &[String]) {
    cmd.add("--userns");
    if opts.is_empty() {
        cmd.add(mode);
    } else {
        cmd.add(format!("{mode}:{}", opts.join(",")));
    }
}

/// `Network=` values (quadlet-keys §3.5): `--network X` each; `x.network` and `x.container`
/// references become resource names plus `Requires=`/`After=`.
pub fn add_networks<'q>(
    q: &'q Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
    cmd: &mut PodmanCmd<'q>,
) -> Result<(), ConvertError> {
    let group = q.kind.group();
    let err = |msg: String| ConvertError::at_key(q, group, "Network", msg);
    for v in q.unit.lookup_all(group, "Network") {
        let (name, opts) = match v.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (v, None),
        };
        let is_net = name.ends_with(".network");
        let is_ctr = name.ends_with(".container");
        let arg = if is_net || is_ctr {
            let Some(info) = ctx.units.get(name) else {
                ctx.recover(err(format!("requested Quadlet unit {name} was not found")))?;
                continue;
            };
            add_requires(service, &info.service_file_name());
            if info.resource_name.is_empty() {
                ctx.recover(err(format!("cannot get the resource name of {name}")))?;
                continue;
            }
            match (opts, is_ctr) {
                (Some(_), true) => {
                    ctx.recover(err(
                        "extra options are not supported when joining another container's network"
                            .into(),
                    ))?;
                    continue;
                }
                (Some(o), false) => format!("{}:{o}", info.resource_name),
                (None, true) => format!("container:{}", info.resource_name),
                (None, false) => info.resource_name.clone(),
            }
        } else {
            v.to_owned()
        };
        cmd.add("--network");
        cmd.add(arg);
    }
    Ok(())
}

/// Quadlet's `handleStorageSource` (quadlet-keys §3.4, §3.6): a source starting with `.` is made
/// absolute; an absolute source adds `RequiresMountsFor=`; `x.volume` (and `x.image` when
/// `allow_image`) becomes the resource name plus `Requires=`/`After=`.
pub fn resolve_storage_source(
    q: &Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
    source: &str,
    allow_image: bool,
    key: &str,
) -> Result<String, ConvertError> {
    let source = if source.starts_with('.') {
        resolve_path(q, source)
    } else {
        source.to_owned()
    };
    if source.starts_with('/') {
        add_requires_mounts_for(service, ctx, &source);
        return Ok(source);
    }
    if source.ends_with(".volume")
        || (allow_image && source.ends_with(".image"))
        || (source.ends_with(".artifact") && ctx.writes(versions::ARTIFACT))
    {
        let info = ctx.units.get(&source).ok_or_else(|| {
            ConvertError::at_key(
                q,
                q.kind.group(),
                key,
                format!("requested Quadlet source {source} was not found"),
            )
        })?;
        add_requires(service, &info.service_file_name());
        return Ok(info.resource_name.clone());
    }
    Ok(source)
}

/// `Volume=` values (quadlet-keys §3.4): `-v SRC:DEST[:OPTS]`, `-v DEST` for a single part or an
/// empty source.
pub fn add_volumes<'q>(
    q: &'q Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
    cmd: &mut PodmanCmd<'q>,
) -> Result<(), ConvertError> {
    let group = q.kind.group();
    for v in q.unit.lookup_all(group, "Volume") {
        let mut parts = v.splitn(3, ':');
        let first = parts.next().unwrap_or_default();
        let Some(dest) = parts.next() else {
            cmd.add("-v");
            cmd.add(v);
            continue;
        };
        let opts = parts.next();
        let source = if first.is_empty() {
            String::new()
        } else {
            match resolve_storage_source(q, service, ctx, first, false, "Volume") {
                Ok(s) => s,
                Err(e) => {
                    ctx.recover(e)?;
                    continue;
                }
            }
        };
        cmd.add("-v");
        if source.is_empty() {
            cmd.add(dest);
        } else if let Some(o) = opts {
            cmd.add([source.as_str(), ":", dest, ":", o].concat());
        } else {
            cmd.add([source.as_str(), ":", dest].concat());
        }
    }
    Ok(())
}

/// Quadlet's `handleImageSource` (§3.7): `x.image`/`x.build` becomes that unit's image name plus
/// `Requires=`/`After=`; other values are returned unchanged.
pub fn resolve_image_source(
    q: &Quadlet,
    service: &mut UnitFile,
    ctx: &Context,
    image: &str,
) -> Result<String, ConvertError> {
    if image.ends_with(".build") || image.ends_with(".image") {
        let info = ctx.units.get(image).ok_or_else(|| {
            ConvertError::at_key(
                q,
                q.kind.group(),
                "Image",
                format!("requested Quadlet image {image} was not found"),
            )
        })?;
        add_requires(service, &info.service_file_name());
        return Ok(info.resource_name.clone());
    }
    Ok(image.to_owned())
}

/// True for a full image id (64 lowercase hex digits) or a name whose first path component is a
/// registry (contains `.` or `:`, or is `localhost`) — Quadlet's `isUnambiguousName`.
pub fn is_unambiguous_image_name(name: &str) -> bool {
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return true;
    }
    match name.split_once('/') {
        Some((domain, _)) => domain.contains(['.', ':']) || domain == "localhost",
        None => false,
    }
}

/// Quadlet's short-name warning for `Image=` of `.container`, `.volume` and `.image` files.
pub fn warn_if_ambiguous_image(q: &Quadlet, ctx: &mut Context) {
    let Some(image) = q.unit.lookup(q.kind.group(), "Image") else {
        return;
    };
    if image.ends_with(".build") || image.ends_with(".image") || is_unambiguous_image_name(image) {
        return;
    }
    ctx.warn(format!(
        "Warning: {} specifies the image \"{image}\" which not a fully qualified image name. This is not ideal for performance and security reasons. See the podman-pull manpage discussion of short-name-aliases.conf for details.",
        q.name
    ));
}

/// The keys whose values 5.6 and later split with a warning when they cannot be split
/// (`LookupAllKeyVal`, `LookupLastArgs`; [`versions::ENV_FROM_HOST`]): the key-value lists and
/// the command lines of the type groups.
const SPLIT_WARNED_KEYS: [&str; 7] = [
    "Environment",
    "Label",
    "Annotation",
    "Options",
    "BuildArg",
    "Exec",
    "ReloadCmd",
];

/// Warnings for values of the type group of `q` that cannot be split into words (an invalid
/// escape such as `\.`, an unbalanced quote) and are therefore ignored, as 5.6 and later warn
/// (5.4.2 ignored them silently). Only the last `Exec=`/`ReloadCmd=` counts, as only it is used.
pub fn unsplittable_value_warnings(q: &Quadlet) -> Vec<String> {
    let Some(g) = q.unit.group(q.kind.group()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, l) in g.lines.iter().enumerate() {
        // Exec-style splitting (relaxed: an open quote runs to the end) fails only on an
        // invalid escape, so only a value with a backslash can fail.
        if l.comment || !l.value.contains('\\') || !SPLIT_WARNED_KEYS.contains(&l.key.as_str()) {
            continue;
        }
        let last_only = matches!(l.key.as_str(), "Exec" | "ReloadCmd");
        if last_only && g.lines[i + 1..].iter().any(|m| m.is_assignment_of(&l.key)) {
            continue;
        }
        if let Err(e) = crate::unit::split::split_args(&l.value) {
            let why = match e {
                crate::unit::split::SplitError::BadEscape => "unsupported escape char",
                crate::unit::split::SplitError::UnbalancedQuote => "unbalanced quotes",
            };
            let at = if l.origin.line == 0 {
                String::new()
            } else {
                format!(" ({})", q.unit.describe_origin(l.origin))
            };
            out.push(format!(
                "{}: {}={}{at}: {why}; the value is ignored",
                q.name, l.key, l.value
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn key_sets_find_exactly_their_keys_even_when_slots_collide() {
        // 127 keys fill half the table: many probe sequences run into each other.
        let keys: Vec<&'static str> = (0..127)
            .map(|i| &*Box::leak(format!("Key{i}").into_boxed_str()))
            .collect();
        let set = KeySet::new(Box::leak(keys.into_boxed_slice()));
        assert!(set.keys().iter().all(|k| set.contains(k)));
        assert!((127..400).all(|i| !set.contains(&format!("Key{i}"))));
        assert!(!set.contains(""));
    }

    #[test]
    fn clean_path_matches_go_filepath_clean() {
        assert_eq!(clean_path("/a/b/../c/./d/"), "/a/c/d");
        assert_eq!(clean_path("/a//b"), "/a/b");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path("a/../.."), "..");
    }

    #[test]
    fn numbers_use_strtol_bases_and_reject_negatives() {
        let u = crate::unit::parse_str(
            "[V]\nA=0x10\nB=010\nC=-1\nD=abc\nE=\nF=42\n",
            Path::new("t"),
        )
        .unwrap();
        let n = |k| lookup_u32(&u, "V", k);
        assert_eq!(
            [n("A"), n("B"), n("C"), n("D"), n("E"), n("F"), n("G")],
            [Some(16), Some(8), Some(0), Some(0), Some(0), Some(42), None]
        );
    }

    #[test]
    fn image_names_need_a_registry() {
        assert!(is_unambiguous_image_name("quay.io/x/y"));
        assert!(is_unambiguous_image_name("localhost/x"));
        assert!(is_unambiguous_image_name("reg:5000/x"));
        assert!(!is_unambiguous_image_name("fedora"));
        assert!(!is_unambiguous_image_name("library/fedora"));
    }
}
