//! Adapting generated units to the podman that is installed.
//!
//! The kinds produce what Quadlet 5.4.2 produces. Older podman releases do not know some of those
//! options: Debian 12 ships podman 4.3.1, which has no Quadlet of its own and rejects, among
//! others, `--module`, `--sdnotify=healthy`, the `--health-startup-*` options and
//! `volume create --ignore`. This module edits the typed podman command lines the kinds made
//! ([`super::podman::ExecLine`]: it finds options among a command's global options or its
//! sub-command's options, never among its final arguments such as the `Exec=` words, and never
//! looks at lines the user wrote in `[Service]`) and, for every option the installed podman is
//! too old for, either translates it into something equivalent or refuses the Quadlet key that
//! produced it, naming file, line and key (the unit is then not written; the others are).
//!
//! # Which podman
//! The caller passes the setting ([`Setting`], `ConvertOptions::podman_version`); the generator
//! takes it, first match wins, from
//! * the environment variable `UNITWRIGHT_PODMAN_VERSION` (`auto`, `off` or a version such as
//!   `4.3.1`), for tests and one-off runs;
//! * `PodmanVersion=` in group `[Generator]` of the first of `/etc/unitwright/generator.conf`,
//!   `/run/unitwright/generator.conf`, `/usr/local/lib/unitwright/generator.conf`,
//!   `/usr/lib/unitwright/generator.conf` that sets it;
//! * otherwise `auto`: the units are written for the podman that is installed (a source
//!   install needs no configuration file). `off` writes exactly Quadlet 5.4.2's units.
//!
//! With `auto`, `$PODMAN --version` is run at most once per run and only when there is a file
//! to convert; the answer is cached ([`Compat::with_cache`]: the generator uses
//! `/run/unitwright/podman-version`, or `$XDG_RUNTIME_DIR/unitwright/` in user mode) under the
//! identity of the podman binary (path, device, inode, size, modification time), so later runs,
//! at boot and at every daemon-reload, read a small file instead, and an upgraded podman is asked
//! again. `podman --version` gets [`DETECT_TIMEOUT`] to answer (podman 4.3.1 needs about 25 ms):
//! a generator must never hold up the boot. If podman cannot be run, does not answer in time or
//! its answer cannot be read, a warning says so and the units are 5.4.2's.
//!
//! # Behaviour
//! Besides options, one behaviour differs: podman 4.3.1 leaves the `--cidfile` in place when
//! `podman rm --cidfile=F` (the generated `ExecStop=`/`ExecStopPost=`) removes the container, and
//! its next `podman run --cidfile=F` then fails with "container id file exists" (checked here:
//! `podman run --cidfile=F --replace --rm -d …`, `podman rm -v -f -i --cidfile=F`, F is still
//! there, the next run fails; `podman rm` 4.3.1 has no option to remove it). So below
//! [`CIDFILE_REMOVED_SINCE`] a container unit gets `ExecStartPre=-/bin/rm -f F` in front of its
//! `ExecStart=` (`/bin/rm` exists with and without the merged `/usr`). The boundary 4.4 is the
//! release that brought Quadlet, whose units depend on the file going away; only 4.3.1 was
//! observed. Removing a stale file before the start is harmless: `--replace` takes over a
//! container of the same name anyway.
//!
//! # The table
//! [`RULES`] lists each option with the first podman release that accepts it. The 4.3.1 entries
//! were checked by running podman 4.3.1 (`podman run --help`, real `podman run`/`volume create`
//! commands); the later "since" versions come from podman's release notes and are the boundary
//! below which the rule applies.
//!
//! # Keys added after 5.4.2
//! The other direction: [`NEW_KEYS`] lists the keys Quadlet gained in podman 5.5.0 to 5.8.x
//! (quadlet-keys.md §13), each with the release that brought it. A kind accepts such a key only
//! when the podman version known here is at least that release ([`check_keys`]); otherwise
//! (`off`, an older podman, a version podman did not tell) the key is the same `unsupported key`
//! error as in 5.4.2, followed by a hint naming the release and `PodmanVersion=`.
//! The kinds emit the options where podman 5.8.2 puts them, adapted to the 5.4.2 command lines
//! they otherwise write (see each kind).

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::Path;

use super::common::{check_keys_by, check_supported_keys, unsupported_keys, KeySet, SERVICE};
use super::podman::{Arg, ExecLine, PodmanCmd, Service};
use super::{Context, ConvertError, Diagnostic, Kind, Quadlet, Severity};

/// Configuration files read for `PodmanVersion=`, highest priority first.
pub const CONFIG_FILES: [&str; 4] = [
    "/etc/unitwright/generator.conf",
    "/run/unitwright/generator.conf",
    "/usr/local/lib/unitwright/generator.conf",
    "/usr/lib/unitwright/generator.conf",
];

/// The environment variable that overrides the configuration files.
pub const VERSION_ENV: &str = "UNITWRIGHT_PODMAN_VERSION";

/// A podman release number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Reads `4.3.1`, `v5.0.0-rc1`, `4.9` or podman's own `podman version 4.3.1` line.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix("podman version ").unwrap_or(s);
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+', '~', ' ']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What `PodmanVersion=` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Emit Quadlet 5.4.2's options unchanged.
    Off,
    /// Ask the installed podman (`$PODMAN --version`) when needed.
    Auto,
    /// Adapt to this release.
    Fixed(Version),
}

impl Setting {
    /// Parses `auto`, `off` (also `no`, `none`) or a version.
    pub fn parse(s: &str) -> Option<Setting> {
        match s.trim() {
            "auto" => Some(Setting::Auto),
            "off" | "no" | "none" => Some(Setting::Off),
            v => Version::parse(v).map(Setting::Fixed),
        }
    }
}

/// The podman sub-commands the kinds write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Global options, before the sub-command (`--module`).
    Global,
    /// `podman run` (containers).
    Run,
    /// `podman volume create`.
    VolumeCreate,
    /// `podman network create`.
    NetworkCreate,
    /// `podman kube play`.
    KubePlay,
    /// `podman kube down`.
    KubeDown,
    /// `podman image pull`.
    ImagePull,
}

impl Cmd {
    /// The words that name the sub-command.
    fn words(self) -> &'static [&'static str] {
        match self {
            Cmd::Global => &[],
            Cmd::Run => &["run"],
            Cmd::VolumeCreate => &["volume", "create"],
            Cmd::NetworkCreate => &["network", "create"],
            Cmd::KubePlay => &["kube", "play"],
            Cmd::KubeDown => &["kube", "down"],
            Cmd::ImagePull => &["image", "pull"],
        }
    }
}

/// What to do with an option the installed podman lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refuse the key: the unit is not written.
    Refuse,
    /// Leave the option out and warn (it only tunes something podman then does its default way).
    DropWithWarning,
    /// Leave the option out silently: it asks for podman's default behaviour anyway.
    DropDefault,
    /// `volume/network create --ignore NAME`: run the create command with its failure ignored,
    /// then `volume/network exists NAME`, so the unit succeeds exactly when the resource exists
    /// afterwards (what `--ignore` means) and fails otherwise.
    CreateThenCheckExists,
    /// `run --sdnotify=healthy` (`Notify=healthy`: ready once the health check passes): run
    /// with `--sdnotify=conmon` (ready when started) and add an `ExecStartPost=` that runs
    /// `podman healthcheck run NAME` every health check interval until it passes
    /// ([`WAIT_HEALTHY`]). systemd completes a start job only after `ExecStartPost=`, so the
    /// start completes when the container is healthy; it fails when the container stops first
    /// (`healthcheck run` exits 125) or when `TimeoutStartSec=` ends.
    WaitHealthy,
}

/// The `ExecStartPost=` script of [`Action::WaitHealthy`], run as `/bin/sh -c SCRIPT
/// wait-healthy PODMAN NAME`. The interval is the container's own (`HealthInterval=` or the
/// image's), read when it runs; `podman healthcheck run` exits 0 when healthy, 1 when the check
/// failed (still starting, or unhealthy), 125 when it cannot check (not running, no health
/// check). No `${`, `$$` or word starting with `$`: neither systemd nor `unitwright instance
/// exec` expands anything in it.
pub const WAIT_HEALTHY: &str = "i=$(\"$1\" inspect --format '{{.Config.Healthcheck.Interval.Seconds}}' \"$2\") || { echo 'Notify=healthy: no health check interval (is HealthCmd= set?)' >&2; exit 1; }; [ \"$i\" != 0 ] || i=1; until \"$1\" healthcheck run \"$2\" >/dev/null; do [ $? = 1 ] || exit 1; sleep \"$i\"; done";

/// How an option is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// `--flag` (one word, or `--flag=...`).
    Flag(&'static str),
    /// `--flag V` or `--flag=V` (the value is its own word in the first form).
    FlagWithValue(&'static str),
    /// Exactly this word (`--sdnotify=healthy`).
    Word(&'static str),
    /// `--flag V` or `--flag=V` where V, read as comma-separated fields, has the field `F`
    /// (`--mount type=glob,...`).
    FlagValueField(&'static str, &'static str),
}

/// One entry of [`RULES`].
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The command the option belongs to.
    pub cmd: Cmd,
    /// How the option is recognised.
    pub matches: Match,
    /// The first podman release that accepts it.
    pub since: Version,
    /// The Quadlet key that produces it (in the type group).
    pub key: &'static str,
    /// What to do on an older podman.
    pub action: Action,
    /// A hint added to a refusal.
    pub hint: &'static str,
}

const fn v(a: u32, b: u32, c: u32) -> Version {
    Version(a, b, c)
}

const fn refuse(
    cmd: Cmd,
    matches: Match,
    since: Version,
    key: &'static str,
    hint: &'static str,
) -> Rule {
    Rule {
        cmd,
        matches,
        since,
        key,
        action: Action::Refuse,
        hint,
    }
}

const fn translate(
    cmd: Cmd,
    matches: Match,
    since: Version,
    key: &'static str,
    action: Action,
) -> Rule {
    Rule {
        cmd,
        matches,
        since,
        key,
        action,
        hint: "",
    }
}

const REMOVE: &str = "remove the key";

/// The translation table (see the module documentation).
pub const RULES: &[Rule] = &[
    refuse(
        Cmd::Global,
        Match::FlagWithValue("--module"),
        v(4, 7, 0),
        "ContainersConfModule",
        "put the settings into a containers.conf file (CONTAINERS_CONF= in [Service] Environment=) instead",
    ),
    translate(Cmd::Run, Match::Word("--sdnotify=healthy"), v(4, 7, 0), "Notify", Action::WaitHealthy),
    refuse(Cmd::Run, Match::FlagWithValue("--health-startup-cmd"), v(4, 4, 0), "HealthStartupCmd", REMOVE),
    refuse(Cmd::Run, Match::FlagWithValue("--health-startup-interval"), v(4, 4, 0), "HealthStartupInterval", REMOVE),
    refuse(Cmd::Run, Match::FlagWithValue("--health-startup-retries"), v(4, 4, 0), "HealthStartupRetries", REMOVE),
    refuse(Cmd::Run, Match::FlagWithValue("--health-startup-success"), v(4, 4, 0), "HealthStartupSuccess", REMOVE),
    refuse(Cmd::Run, Match::FlagWithValue("--health-startup-timeout"), v(4, 4, 0), "HealthStartupTimeout", REMOVE),
    refuse(
        Cmd::Run,
        Match::FlagWithValue("--health-log-destination"),
        v(5, 3, 0),
        "HealthLogDestination",
        "health check results stay in podman's own storage; remove the key",
    ),
    translate(Cmd::Run, Match::FlagWithValue("--health-max-log-count"), v(5, 3, 0), "HealthMaxLogCount", Action::DropWithWarning),
    translate(Cmd::Run, Match::FlagWithValue("--health-max-log-size"), v(5, 3, 0), "HealthMaxLogSize", Action::DropWithWarning),
    refuse(
        Cmd::Run,
        Match::FlagValueField("--mount", "type=glob"),
        v(4, 6, 0),
        "Mount",
        "list the matching paths as separate type=bind mounts",
    ),
    refuse(Cmd::Run, Match::FlagWithValue("--retry"), v(5, 0, 0), "PodmanArgs", REMOVE),
    refuse(Cmd::Run, Match::FlagWithValue("--retry-delay"), v(5, 0, 0), "PodmanArgs", REMOVE),
    translate(Cmd::VolumeCreate, Match::Flag("--ignore"), v(4, 4, 0), "VolumeName", Action::CreateThenCheckExists),
    translate(Cmd::NetworkCreate, Match::Flag("--ignore"), v(4, 4, 0), "NetworkName", Action::CreateThenCheckExists),
    refuse(
        Cmd::NetworkCreate,
        Match::FlagWithValue("--dns"),
        v(4, 6, 0),
        "DNS",
        "set DNS= in the .container files that use the network instead",
    ),
    refuse(Cmd::KubePlay, Match::FlagWithValue("--publish"), v(4, 5, 0), "PublishPort", "publish the ports with hostPort: in the YAML instead"),
    refuse(
        Cmd::KubePlay,
        Match::FlagWithValue("--service-exit-code-propagation"),
        v(4, 6, 0),
        "ExitCodePropagation",
        REMOVE,
    ),
    translate(Cmd::KubeDown, Match::Word("--force=false"), v(4, 5, 0), "KubeDownForce", Action::DropDefault),
    refuse(
        Cmd::KubeDown,
        Match::Word("--force"),
        v(4, 5, 0),
        "KubeDownForce",
        "remove the volumes with a separate ExecStopPost= instead",
    ),
    refuse(Cmd::ImagePull, Match::FlagWithValue("--decryption-key"), v(4, 5, 0), "DecryptionKey", REMOVE),
];

/// A key that Quadlet gained after 5.4.2 (quadlet-keys.md §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewKey {
    /// The kind whose type group has it.
    pub kind: Kind,
    /// The key.
    pub key: &'static str,
    /// The first podman release whose Quadlet accepts it.
    pub since: Version,
}

const fn new_key(kind: Kind, key: &'static str, since: Version) -> NewKey {
    NewKey { kind, key, since }
}

/// The keys of tagged podman releases after 5.4.2, up to 5.8.2 (see the module documentation).
/// Not here: `UID=`/`GID=` of `.volume` (only on podman's main branch) and the `.artifact` kind.
pub const NEW_KEYS: &[NewKey] = &[
    new_key(Kind::Container, "AppArmor", v(5, 8, 0)),
    new_key(Kind::Container, "HttpProxy", v(5, 7, 0)),
    new_key(Kind::Container, "Memory", v(5, 5, 0)),
    new_key(Kind::Container, "ReloadCmd", v(5, 5, 0)),
    new_key(Kind::Container, "ReloadSignal", v(5, 5, 0)),
    new_key(Kind::Container, "Retry", v(5, 5, 0)),
    new_key(Kind::Container, "RetryDelay", v(5, 5, 0)),
    new_key(Kind::Image, "Policy", v(5, 6, 0)),
    new_key(Kind::Image, "Retry", v(5, 5, 0)),
    new_key(Kind::Image, "RetryDelay", v(5, 5, 0)),
    new_key(Kind::Pod, "ExitPolicy", v(5, 6, 0)),
    new_key(Kind::Pod, "HostName", v(5, 5, 0)),
    new_key(Kind::Pod, "Label", v(5, 6, 0)),
    new_key(Kind::Pod, "StopTimeout", v(5, 7, 0)),
    new_key(Kind::Network, "InterfaceName", v(5, 6, 0)),
    new_key(Kind::Network, "NetworkDeleteOnStop", v(5, 5, 0)),
    new_key(Kind::Build, "BuildArg", v(5, 7, 0)),
    new_key(Kind::Build, "IgnoreFile", v(5, 7, 0)),
    new_key(Kind::Build, "Retry", v(5, 5, 0)),
    new_key(Kind::Build, "RetryDelay", v(5, 5, 0)),
];

/// The entry of [`NEW_KEYS`] for `key` in the type group of `kind`.
fn new_key_of(kind: Kind, key: &str) -> Option<&'static NewKey> {
    NEW_KEYS.iter().find(|k| k.kind == kind && k.key == key)
}

/// [`check_supported_keys`] with `supported` (the kind's 5.4.2 keys) plus the keys of
/// [`NEW_KEYS`] that [`Context::podman_version`] allows. A refused key of [`NEW_KEYS`] keeps
/// 5.4.2's message and location and gets a hint saying which podman it needs.
pub fn check_keys(q: &Quadlet, ctx: &Context, supported: &KeySet) -> Result<(), ConvertError> {
    // Files with 5.4.2's keys only (nearly all) take the first check alone.
    if check_supported_keys(q, supported).is_ok() {
        return Ok(());
    }
    let newer: Vec<&str> = NEW_KEYS
        .iter()
        .filter(|k| k.kind == q.kind && ctx.podman_version.is_some_and(|v| v >= k.since))
        .map(|k| k.key)
        .collect();
    let allowed = |key: &str| supported.contains(key) || newer.contains(&key);
    if ctx.collecting {
        for (group, mut e) in unsupported_keys(q, allowed) {
            let key = e.at.as_ref().and_then(|a| a.key.as_deref());
            if let Some(new) = key
                .filter(|_| group == q.kind.group())
                .and_then(|k| new_key_of(q.kind, k))
            {
                e.hint = Some(new_key_hint(new, ctx.podman_version));
            }
            ctx.recover(e)?;
        }
        return Ok(());
    }
    check_keys_by(q, allowed).map_err(|mut e| {
        // The key reported is the first one of the type group that is not allowed (the
        // `[Quadlet]` group is checked after it and has no new keys).
        let refused = q
            .unit
            .group(q.kind.group())
            .and_then(|g| g.lines.iter().find(|l| !l.comment && !allowed(&l.key)));
        if let Some(new) = refused.and_then(|l| new_key_of(q.kind, &l.key)) {
            e.hint = Some(new_key_hint(new, ctx.podman_version));
        }
        e
    })
}

/// The hint for a key of [`NEW_KEYS`] refused because podman `version` (if known) is older.
fn new_key_hint(key: &NewKey, version: Option<Version>) -> String {
    needs_release_hint(&format!("{}=", key.key), key.since, version)
}

/// The hint for `what` (a key, a kind) refused because it needs podman `since` and the podman
/// targeted, `version` (if known), is older.
pub fn needs_release_hint(what: &str, since: Version, version: Option<Version>) -> String {
    match version {
        Some(v) => format!(
            "{what} needs podman {since} or newer, but the podman version in use is {v} (see PodmanVersion= in {})",
            CONFIG_FILES[0]
        ),
        None => format!(
            "{what} needs podman {since} or newer; if yours is, set PodmanVersion=auto (or its version) in {}",
            CONFIG_FILES[0]
        ),
    }
}

/// The first podman release whose `podman rm --cidfile` removes the file (see the module
/// documentation, "Behaviour").
pub const CIDFILE_REMOVED_SINCE: Version = Version(4, 4, 0);

/// A found option: its words `[start, end)` in the option list.
#[derive(Debug, Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
}

impl Match {
    /// Finds the option in `words` (the global options or the sub-command's options of a typed
    /// command line).
    fn find(self, words: &[Arg<'_>]) -> Option<Found> {
        for (i, w) in words.iter().enumerate() {
            let w: &str = w;
            let with_value = |flag: &str| -> Option<(usize, Option<&str>)> {
                if w == flag {
                    Some((2, words.get(i + 1).map(|v| &**v)))
                } else {
                    w.strip_prefix(flag)
                        .and_then(|r| r.strip_prefix('='))
                        .map(|v| (1, Some(v)))
                }
            };
            let hit = match self {
                Match::Flag(f) => {
                    (w == f || w.strip_prefix(f).is_some_and(|r| r.starts_with('='))).then_some(1)
                }
                Match::Word(x) => (w == x).then_some(1),
                Match::FlagWithValue(f) => with_value(f).map(|(n, _)| n),
                Match::FlagValueField(f, field) => with_value(f)
                    .filter(|(_, v)| v.is_some_and(|v| v.split(',').any(|p| p == field)))
                    .map(|(n, _)| n),
            };
            if let Some(n) = hit {
                return Some(Found {
                    start: i,
                    end: (i + n).min(words.len()),
                });
            }
        }
        None
    }
}

impl Cmd {
    /// The command whose sub-command words are `sub` (none for `Global`, which every command
    /// has, or for a sub-command without rules).
    fn of(sub: &[&str]) -> Option<Cmd> {
        [
            Cmd::Run,
            Cmd::VolumeCreate,
            Cmd::NetworkCreate,
            Cmd::KubePlay,
            Cmd::KubeDown,
            Cmd::ImagePull,
        ]
        .into_iter()
        .find(|c| c.words() == sub)
    }
}

/// Adapts generated units to the installed podman; see the module documentation.
#[derive(Debug)]
pub struct Compat {
    setting: Setting,
    podman: String,
    detected: OnceCell<Option<Version>>,
    /// Debug records about the detection, for the caller to take ([`Compat::take_notes`]).
    notes: RefCell<Vec<Diagnostic>>,
    /// Where the detected version is cached (see [`Compat::with_cache`]).
    cache: Option<std::path::PathBuf>,
    /// How long `podman --version` may take.
    timeout: std::time::Duration,
}

/// How long `podman --version` may take before it is given up (it takes 25 ms for podman 4.3.1
/// on an idle machine; a generator must never hold up the boot).
pub const DETECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The cache file's name in the cache directory.
const CACHE_FILE: &str = "podman-version";

impl Compat {
    /// A compat layer with an explicit setting.
    pub fn with_setting(podman: &str, setting: Setting) -> Self {
        Compat {
            setting,
            podman: podman.to_owned(),
            detected: OnceCell::new(),
            notes: RefCell::new(Vec::new()),
            cache: None,
            timeout: DETECT_TIMEOUT,
        }
    }

    /// Caches the version `auto` detects in `dir` (created if needed, best effort), keyed by
    /// the identity of the podman binary (path, device, inode, size, modification time): a
    /// later run with the same binary does not run it again, an upgraded one is asked anew.
    /// The generator uses `/run/unitwright` (system) or `$XDG_RUNTIME_DIR/unitwright` (user).
    #[must_use]
    pub fn with_cache(mut self, dir: &Path) -> Self {
        self.cache = Some(dir.to_owned());
        self
    }

    /// Sets how long `podman --version` may take (default [`DETECT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The identity of the podman binary: `path dev inode size mtime.nsec`.
    fn identity(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&self.podman).ok()?;
        Some(format!(
            "{} {} {} {} {}.{}",
            self.podman,
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ))
    }

    /// The cached version for `identity`, if the cache holds it.
    fn cached(&self, identity: &str) -> Option<Version> {
        let text = std::fs::read_to_string(self.cache.as_ref()?.join(CACHE_FILE)).ok()?;
        let (key, version) = text.split_once('\n')?;
        (key == identity).then(|| Version::parse(version)).flatten()
    }

    /// Stores `version` for `identity` (atomically; failures are ignored: the cache only saves
    /// time).
    fn store(&self, identity: &str, version: Version) {
        let Some(dir) = &self.cache else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            use std::io::Write;
            if writeln!(tmp, "{identity}\n{version}").is_ok() {
                let _ = tmp.persist(dir.join(CACHE_FILE));
            }
        }
    }

    /// Runs `podman --version`, waiting at most [`Self::timeout`].
    fn ask_podman(&self) -> Result<Version, String> {
        use std::io::Read;
        let mut child = std::process::Command::new(&self.podman)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.podman))?;
        let deadline = std::time::Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} --version did not answer within {} ms",
                        self.podman,
                        self.timeout.as_millis()
                    ));
                }
            }
        };
        let mut out = String::new();
        if let Some(mut so) = child.stdout.take() {
            let _ = so.read_to_string(&mut out);
        }
        if !status.success() {
            return Err(format!("{} --version failed ({status})", self.podman));
        }
        Version::parse(&out).ok_or_else(|| format!("cannot read the version in {out:?}"))
    }

    /// The podman version to adapt to, asking podman (once) with [`Setting::Auto`].
    pub fn version(&self) -> Option<Version> {
        match self.setting {
            Setting::Off => None,
            Setting::Fixed(v) => Some(v),
            Setting::Auto => *self.detected.get_or_init(|| {
                let identity = self.identity();
                if let Some(v) = identity.as_deref().and_then(|i| self.cached(i)) {
                    self.note(Severity::Debug, format!("{} is version {v} (cached)", self.podman));
                    return Some(v);
                }
                match self.ask_podman() {
                    Ok(v) => {
                        self.note(Severity::Debug, format!("{} is version {v}", self.podman));
                        if let Some(i) = &identity {
                            self.store(i, v);
                        }
                        Some(v)
                    }
                    Err(why) => {
                        self.note(
                            Severity::Warning,
                            format!("{why}; writing units as Quadlet 5.4.2 does (set PodmanVersion= in {} to choose)", CONFIG_FILES[0]),
                        );
                        None
                    }
                }
            }),
        }
    }

    fn note(&self, severity: Severity, message: String) {
        self.notes
            .borrow_mut()
            .push(Diagnostic::new(severity, message));
    }

    /// The records made since the last call (how the version was found), in order.
    pub fn take_notes(&self) -> Vec<Diagnostic> {
        std::mem::take(&mut *self.notes.borrow_mut())
    }

    /// Adapts the generated `service` of `q`: translations are applied to its typed podman
    /// command lines (the lines the user wrote are left alone), warnings pushed to `warnings`;
    /// a refused key is the error.
    pub fn adapt(
        &self,
        q: &Quadlet,
        service: &mut Service<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConvertError> {
        self.adapt_with(q, service, warnings, &Err)
    }

    /// [`Self::adapt`], where `refused` decides about each refused key: `Err` ends the
    /// adaptation with it (the generator's way), `Ok` goes on without the option, so that a
    /// collecting conversion ([`super::Context::recover`]) reports every refused key.
    pub fn adapt_with(
        &self,
        q: &Quadlet,
        service: &mut Service<'_>,
        warnings: &mut Vec<String>,
        refused: &dyn Fn(ConvertError) -> Result<(), ConvertError>,
    ) -> Result<(), ConvertError> {
        if self.setting == Setting::Off {
            return Ok(());
        }
        // A podman that has every option of the table (4.4 and later for the cid file, 5.3 for
        // the newest option): nothing to adapt.
        if self
            .version()
            .is_some_and(|v| v >= CIDFILE_REMOVED_SINCE && RULES.iter().all(|r| v >= r.since))
        {
            return Ok(());
        }
        let mut i = 0;
        while let Some(line) = service.group(SERVICE).and_then(|g| g.lines.get(i)) {
            let is_start = line.key == "ExecStart";
            let key = line.key.clone();
            let Some(exec) = service.exec_at_mut(i) else {
                i += 1;
                continue;
            };
            let Some(cmd) = Cmd::of(exec.cmd.sub) else {
                i += 1;
                continue;
            };
            let removal = if is_start && cmd == Cmd::Run {
                self.stale_cidfile_removal(&exec.cmd)
            } else {
                None
            };
            let mut post = None;
            let extra = self.adapt_line(q, cmd, exec, &mut post, warnings, refused)?;
            if let Some(rm) = removal {
                service.insert_exec(i, "ExecStartPre", rm);
                i += 1;
            }
            if let Some(extra) = extra {
                service.insert_exec(i + 1, &key, extra);
                i += 1;
            }
            if let Some(post) = post {
                // Before any other ExecStartPost= (they may expect a ready service).
                let at = service
                    .group(SERVICE)
                    .and_then(|g| {
                        g.lines
                            .iter()
                            .position(|l| !l.comment && l.key == "ExecStartPost")
                    })
                    .map_or(i + 1, |p| p.min(i + 1));
                service.insert_exec(at, "ExecStartPost", post);
                i += 1;
            }
            i += 1;
        }
        Ok(())
    }

    /// For a podman older than [`CIDFILE_REMOVED_SINCE`], an `ExecStartPre=` that removes the
    /// `--cidfile` of the container's `podman run` command `run` left behind by the previous run
    /// (see the module documentation, "Behaviour").
    fn stale_cidfile_removal<'a>(&self, run: &PodmanCmd<'a>) -> Option<ExecLine<'a>> {
        let found = Match::FlagWithValue("--cidfile").find(&run.options)?;
        let path = match run.options[found.start].strip_prefix("--cidfile=") {
            Some(p) => Arg::Owned(p.to_owned()),
            None => run.options.get(found.start + 1)?.clone(),
        };
        if self.version()? >= CIDFILE_REMOVED_SINCE {
            return None;
        }
        let mut rm = PodmanCmd::program("/bin/rm");
        rm.add("-f");
        rm.arg(path);
        Some(ExecLine::ignoring_failure(rm))
    }

    /// Applies the rules to one command line `line` of the sub-command `cmd`. Returns a command
    /// line to add after it, if any; `post` receives one for `ExecStartPost=`.
    fn adapt_line<'a>(
        &self,
        q: &Quadlet,
        cmd: Cmd,
        line: &mut ExecLine<'a>,
        post: &mut Option<ExecLine<'a>>,
        warnings: &mut Vec<String>,
        refused: &dyn Fn(ConvertError) -> Result<(), ConvertError>,
    ) -> Result<Option<ExecLine<'a>>, ConvertError> {
        let mut extra = None;
        for rule in RULES {
            let words = if rule.cmd == Cmd::Global {
                &mut line.cmd.global
            } else if rule.cmd == cmd {
                &mut line.cmd.options
            } else {
                continue;
            };
            let Some(found) = rule.matches.find(words) else {
                continue;
            };
            let Some(installed) = self.version() else {
                return Ok(extra);
            };
            if installed >= rule.since {
                continue;
            }
            let option = words[found.start..found.end].join(" ");
            words.drain(found.start..found.end);
            match rule.action {
                Action::Refuse => refused(refusal(q, rule, &option, installed))?,
                Action::DropWithWarning => warnings.push(format!(
                    "{}: {}= is left out: podman {installed} does not know {option} (podman {} or newer does)",
                    q.name, rule.key, rule.since
                )),
                Action::DropDefault => {}
                Action::CreateThenCheckExists => {
                    let sub: &'static [&'static str] = match cmd {
                        Cmd::NetworkCreate => &["network", "exists"],
                        _ => &["volume", "exists"],
                    };
                    let check = PodmanCmd {
                        program: line.cmd.program.clone(),
                        global: line.cmd.global.clone(),
                        sub,
                        options: Vec::new(),
                        args: line.cmd.args.last().cloned().into_iter().collect(),
                    };
                    // The check keeps the line's wrapper and other prefixes (`:` of the wrapper).
                    extra = Some(ExecLine {
                        prefix: line.prefix.replace('-', ""),
                        wrapper: line.wrapper.clone(),
                        cmd: check,
                    });
                    if !line.prefix.contains('-') {
                        line.prefix.insert(0, '-');
                    }
                }
                Action::WaitHealthy => {
                    words.insert(found.start, Arg::Borrowed("--sdnotify=conmon"));
                    let options = &line.cmd.options;
                    let name = Match::FlagWithValue("--name")
                        .find(options)
                        .and_then(|n| match options[n.start].strip_prefix("--name=") {
                            Some(v) => Some(Arg::Owned(v.to_owned())),
                            None => options.get(n.start + 1).cloned(),
                        })
                        .ok_or_else(|| refusal(q, rule, &option, installed))?;
                    let mut wait = PodmanCmd::program("/bin/sh");
                    wait.add("-c");
                    wait.add(WAIT_HEALTHY);
                    wait.add("wait-healthy");
                    wait.arg(line.cmd.program.clone());
                    wait.arg(name);
                    // The wrapper (`unitwright instance exec ... --`) and its `:` stay in
                    // front, so a name made from settings is expanded alike.
                    *post = Some(ExecLine {
                        prefix: line.prefix.replace('-', ""),
                        wrapper: line.wrapper.clone(),
                        cmd: wait,
                    });
                }
            }
        }
        Ok(extra)
    }
}

/// The error for a refused key. The key named is the rule's key if the file sets it, else
/// `PodmanArgs` or `GlobalArgs` (where the option must then come from).
fn refusal(q: &Quadlet, rule: &Rule, option: &str, installed: Version) -> ConvertError {
    let group = q.kind.group();
    let key = [rule.key, "PodmanArgs", "GlobalArgs"]
        .into_iter()
        .find(|k| q.unit.has_key(group, k))
        .unwrap_or(rule.key);
    ConvertError::at_key(
        q,
        group,
        key,
        format!(
            "{key}= in [{group}] needs podman {} or newer (it becomes {option}), but the installed podman is {installed}; {}",
            rule.since, rule.hint
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::quadlet::{Context, Kind, Quadlet};
    use crate::unit::UnitFile;
    use std::path::Path;
    use std::path::PathBuf;

    fn quadlet(name: &str, text: &str) -> Quadlet {
        let path = PathBuf::from("/q").join(name);
        let kind = Kind::from_file_name(name).unwrap();
        let unit = crate::unit::parse_str(text, &path).unwrap();
        Quadlet {
            name: name.to_owned(),
            path,
            dir: PathBuf::from("/q"),
            kind,
            service_name: name.rsplit_once('.').unwrap().0.to_owned(),
            unit,
        }
    }

    fn container(text: &str, version: &str) -> Result<(UnitFile, Vec<String>), ConvertError> {
        let q = quadlet("web.container", text);
        let mut ctx = Context {
            podman: "/usr/bin/podman".to_owned(),
            ..Context::default()
        };
        let mut service = crate::quadlet::container::convert(&q, &mut ctx).unwrap();
        let compat = Compat::with_setting(
            "/usr/bin/podman",
            Setting::Fixed(Version::parse(version).unwrap()),
        );
        let mut warnings = Vec::new();
        compat
            .adapt(&q, &mut service, &mut warnings)
            .map(|()| (service.finish(false), warnings))
    }

    fn exec_start(service: &UnitFile) -> &str {
        service.lookup_last_raw("Service", "ExecStart").unwrap()
    }

    #[test]
    fn versions_parse_from_podman_output_and_config_values() {
        assert_eq!(
            Version::parse("podman version 4.3.1\n"),
            Some(Version(4, 3, 1))
        );
        assert_eq!(Version::parse("v5.0.0-rc1"), Some(Version(5, 0, 0)));
        assert_eq!(Version::parse("4.9"), Some(Version(4, 9, 0)));
        assert_eq!(Version::parse("four"), None);
        assert_eq!(Setting::parse("auto"), Some(Setting::Auto));
        assert_eq!(Setting::parse("off"), Some(Setting::Off));
        assert_eq!(Setting::parse("bogus"), None);
        assert!(Version(4, 3, 1) < Version(4, 4, 0));
    }

    fn unadapted_container(text: &str) -> UnitFile {
        crate::quadlet::container::convert(
            &quadlet("web.container", text),
            &mut Context {
                podman: "/usr/bin/podman".to_owned(),
                ..Context::default()
            },
        )
        .unwrap()
        .finish(false)
    }

    fn service_lines(service: &UnitFile) -> Vec<(String, String)> {
        service
            .groups
            .iter()
            .find(|g| g.name == "Service")
            .unwrap()
            .lines
            .iter()
            .filter(|l| !l.comment)
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect()
    }

    #[test]
    fn a_plain_container_on_podman_4_3_only_gains_the_stale_cidfile_removal() {
        let text = "[Container]\nImage=localhost/bb\nExec=/bin/sh -c 'sleep 1'\n";
        let (adapted, warnings) = container(text, "4.3.1").unwrap();
        assert!(warnings.is_empty());
        let mut expected = service_lines(&unadapted_container(text));
        let start = expected.iter().position(|(k, _)| k == "ExecStart").unwrap();
        expected.insert(
            start,
            (
                "ExecStartPre".to_owned(),
                "-/bin/rm -f %t/%N.cid".to_owned(),
            ),
        );
        assert_eq!(service_lines(&adapted), expected);
        assert!(exec_start(&adapted).contains("--cidfile=%t/%N.cid"));
    }

    #[test]
    fn the_stale_cidfile_is_left_to_podman_4_4_and_newer() {
        let text = "[Container]\nImage=localhost/bb\n";
        for version in ["4.4.0", "5.4.2"] {
            let (adapted, _) = container(text, version).unwrap();
            assert_eq!(adapted, unadapted_container(text), "{version}");
        }
    }

    #[test]
    fn the_users_own_start_commands_are_kept_beside_the_stale_cidfile_removal() {
        let text = "[Container]\nImage=localhost/bb\n[Service]\nExecStartPre=/bin/true\n";
        let (adapted, _) = container(text, "4.3.1").unwrap();
        let mut pre = adapted.lookup_all("Service", "ExecStartPre");
        pre.sort_unstable();
        assert_eq!(pre, ["-/bin/rm -f %t/%N.cid", "/bin/true"]);
    }

    /// The rule of `--sdnotify=healthy` ([`Action::WaitHealthy`]).
    #[test]
    fn notify_healthy_below_4_7_waits_for_podman_healthcheck_run() {
        let text = "[Container]\nImage=localhost/bb\nNotify=healthy\nHealthCmd=/bin/true\n\
                    [Service]\nExecStartPost=/bin/echo started\n";
        let (s, warnings) = container(text, "4.6.9").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let start = exec_start(&s);
        assert!(
            start.contains(" --sdnotify=conmon ") && !start.contains("healthy"),
            "{start}"
        );
        let lines = service_lines(&s);
        let posts: Vec<&str> = lines
            .iter()
            .filter(|(k, _)| k == "ExecStartPost")
            .map(|(_, v)| v.as_str())
            .collect();
        // The wait comes before the user's own ExecStartPost=, which may need a ready service.
        assert_eq!(posts.len(), 2, "{lines:?}");
        let words = crate::unit::split::split_args(posts[0]).unwrap();
        assert_eq!(
            words,
            [
                "/bin/sh",
                "-c",
                WAIT_HEALTHY,
                "wait-healthy",
                "/usr/bin/podman",
                "systemd-%N"
            ]
        );
        assert_eq!(posts[1], "/bin/echo started");
        assert!(lines.contains(&("Type".to_owned(), "notify".to_owned())));
        // From 4.7 on, podman's own --sdnotify=healthy.
        let (s, _) = container(text, "4.7.0").unwrap();
        assert!(exec_start(&s).contains("--sdnotify=healthy"));
        assert!(!service_lines(&s)
            .iter()
            .any(|(_, v)| v.contains("healthcheck run")));
    }

    #[test]
    fn notify_healthy_waits_behind_the_instance_exec_wrapper() {
        let text = "[Container]\nImage=localhost/bb\nNotify=healthy\nContainerName=c-${N}\n\
                    [X-Unitwright]\nInstanceSettings=yes\n";
        let q = quadlet("web@.container", text);
        let mut ctx = Context {
            podman: "/usr/bin/podman".to_owned(),
            ..Context::default()
        };
        let mut s = crate::quadlet::container::convert(&q, &mut ctx).unwrap();
        crate::quadlet::settings::apply(&q, &mut ctx, &mut s).unwrap();
        Compat::with_setting("/usr/bin/podman", Setting::Fixed(Version(4, 3, 1)))
            .adapt(&q, &mut s, &mut Vec::new())
            .unwrap();
        let s = s.finish(false);
        let lines = service_lines(&s);
        let post = &lines.iter().find(|(k, _)| k == "ExecStartPost").unwrap().1;
        let start = exec_start(&s);
        // Same wrapper (and `:` prefix) as the podman run line, so ${N} is the instance's.
        let wrapper = &start[..start.find(" -- ").unwrap() + 4];
        assert!(wrapper.starts_with(":/"), "{start}");
        assert!(post.starts_with(wrapper), "{post}");
        assert!(
            post.ends_with(" wait-healthy /usr/bin/podman c-${N}"),
            "{post}"
        );
    }

    #[test]
    fn newer_podman_gets_the_options_unchanged() {
        let text = "[Container]\nImage=localhost/bb\nNotify=healthy\nHealthStartupCmd=/bin/true\n";
        let (s, _) = container(text, "5.4.2").unwrap();
        assert!(exec_start(&s).contains("--sdnotify=healthy"));
        assert!(exec_start(&s).contains("--health-startup-cmd /bin/true"));
    }

    #[test]
    fn startup_health_checks_and_modules_are_refused_below_their_release() {
        let e = container(
            "[Container]\nImage=x\nHealthStartupCmd=/bin/true\n",
            "4.3.1",
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("HealthStartupCmd= in [Container] needs podman 4.4.0"));
        assert!(container(
            "[Container]\nImage=x\nHealthStartupCmd=/bin/true\n",
            "4.4.0"
        )
        .is_ok());
        let e = container(
            "[Container]\nImage=x\nContainersConfModule=/m.conf\n",
            "4.3.1",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("ContainersConfModule="), "{e}");
    }

    #[test]
    fn options_from_podman_args_are_blamed_on_podman_args() {
        let e = container(
            "[Container]\nImage=x\nPodmanArgs=--health-startup-cmd /bin/true\n",
            "4.3.1",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("PodmanArgs="), "{e}");
        assert_eq!(e.location.as_deref(), Some("line 3"));
    }

    #[test]
    fn exec_words_after_the_image_are_not_podman_options() {
        let (s, _) = container(
            "[Container]\nImage=x\nExec=/bin/tool --sdnotify=healthy --module=x\n",
            "4.3.1",
        )
        .unwrap();
        assert!(exec_start(&s).ends_with("x /bin/tool --sdnotify=healthy --module=x"));
    }

    #[test]
    fn glob_mounts_are_refused_and_bind_mounts_kept() {
        let e = container(
            "[Container]\nImage=x\nMount=type=glob,source=/etc/h*,destination=/g\n",
            "4.3.1",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("Mount="), "{e}");
        let (s, _) = container(
            "[Container]\nImage=x\nMount=type=bind,source=/etc,destination=/g\n",
            "4.3.1",
        )
        .unwrap();
        assert!(exec_start(&s).contains("--mount type=bind,source=/etc,destination=/g"));
    }

    #[test]
    fn health_log_tuning_is_dropped_with_a_warning() {
        let (s, w) = container(
            "[Container]\nImage=x\nHealthCmd=/bin/true\nHealthMaxLogCount=5\n",
            "4.3.1",
        )
        .unwrap();
        assert!(!exec_start(&s).contains("--health-max-log-count"));
        assert!(exec_start(&s).contains("--health-cmd /bin/true"));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("HealthMaxLogCount= is left out"), "{w:?}");
    }

    /// The typed command line a kind would have made for `line`, whose sub-command is `sub`
    /// (an optional wrapper up to `--`, podman, global options, `sub`, options, a final word).
    fn typed(line: &str, sub: &'static [&'static str]) -> ExecLine<'static> {
        let mut words = crate::unit::split::split_args(line).unwrap();
        let cut = words[0].len() - words[0].trim_start_matches([':', '-']).len();
        let prefix: String = words[0].drain(..cut).collect();
        let mut wrapper: Vec<Arg<'static>> = Vec::new();
        if let Some(end) = words.iter().position(|w| w == "--") {
            wrapper = words.drain(..=end).map(Arg::Owned).collect();
        }
        let at = (1..words.len())
            .find(|&i| words[i..].iter().take(sub.len()).eq(sub.iter().copied()))
            .unwrap();
        let mut cmd = PodmanCmd::program(words[0].clone()).with_sub(sub);
        cmd.global = words[1..at].iter().cloned().map(Arg::Owned).collect();
        let last = words.len() - 1;
        cmd.options = words[at + sub.len()..last]
            .iter()
            .cloned()
            .map(Arg::Owned)
            .collect();
        cmd.arg(words[last].clone());
        ExecLine {
            prefix,
            wrapper,
            cmd,
        }
    }

    fn oneshot(
        name: &str,
        text: &str,
        exec: ExecLine<'static>,
        version: &str,
    ) -> Result<UnitFile, ConvertError> {
        let q = quadlet(name, text);
        let mut service = Service::from(UnitFile::new());
        service.add("Service", "Type", "oneshot");
        service.add_exec("ExecStart", exec);
        Compat::with_setting(
            "/usr/bin/podman",
            Setting::Fixed(Version::parse(version).unwrap()),
        )
        .adapt(&q, &mut service, &mut Vec::new())
        .map(|()| service.finish(false))
    }

    #[test]
    fn create_ignore_becomes_create_then_exists_check() {
        let s = oneshot(
            "data.volume",
            "[Volume]\nGlobalArgs=--log-level=debug\n",
            typed(
                "/usr/bin/podman --log-level=debug volume create --ignore --driver local systemd-data",
                &["volume", "create"],
            ),
            "4.3.1",
        )
        .unwrap();
        assert_eq!(
            s.lookup_all("Service", "ExecStart"),
            vec![
                "-/usr/bin/podman --log-level=debug volume create --driver local systemd-data",
                "/usr/bin/podman --log-level=debug volume exists systemd-data",
            ]
        );
        let s = oneshot(
            "n.network",
            "[Network]\n",
            typed(
                "/usr/bin/podman network create --ignore systemd-n",
                &["network", "create"],
            ),
            "4.3.1",
        )
        .unwrap();
        assert_eq!(
            s.lookup_all("Service", "ExecStart"),
            vec![
                "-/usr/bin/podman network create systemd-n",
                "/usr/bin/podman network exists systemd-n",
            ]
        );
        let s = oneshot(
            "n.network",
            "[Network]\n",
            typed(
                "/usr/bin/podman network create --ignore systemd-n",
                &["network", "create"],
            ),
            "4.4.0",
        )
        .unwrap();
        assert_eq!(s.lookup_all("Service", "ExecStart").len(), 1);
    }

    #[test]
    fn commands_wrapped_by_instance_exec_are_adapted_behind_the_wrapper() {
        let s = oneshot(
            "data@.volume",
            "[Volume]\n",
            typed(
                ":/usr/bin/unitwright instance exec %n -- /usr/bin/podman volume create --ignore ${NAME}",
                &["volume", "create"],
            ),
            "4.3.1",
        )
        .unwrap();
        assert_eq!(
            s.lookup_all("Service", "ExecStart"),
            vec![
                "-:/usr/bin/unitwright instance exec %n -- /usr/bin/podman volume create ${NAME}",
                ":/usr/bin/unitwright instance exec %n -- /usr/bin/podman volume exists ${NAME}",
            ]
        );
    }

    /// The whole typed path: the kinds' commands, wrapped by the settings wrapper, then adapted
    /// to podman 4.3 behind the wrapper, written once.
    #[test]
    fn templates_with_settings_are_wrapped_then_adapted_to_podman_4_3() {
        let files = [
            (
                "v@.volume",
                "[Volume]\nVolumeName=v-${X}\nGlobalArgs=--log-level=debug\n[X-Unitwright]\nInstanceSettings=yes\n",
            ),
            (
                "t@.container",
                "[Container]\nImage=localhost/bb\nExec=/bin/echo ${GREETING}\n[X-Unitwright]\nInstanceSettings=yes\n",
            ),
        ];
        let mut units: Vec<Quadlet> = files.iter().map(|(n, t)| quadlet(n, t)).collect();
        let options = crate::quadlet::ConvertOptions {
            podman_version: Setting::Fixed(Version(4, 3, 1)),
            ..crate::quadlet::ConvertOptions::default()
        };
        let out = crate::quadlet::convert_all(&mut units, &options);
        let unit = |source: &str| {
            let c = out.iter().find(|c| c.source == source).unwrap();
            c.unit
                .clone()
                .unwrap_or_else(|| panic!("{:?}", c.diagnostics))
        };
        let wrapper = ":/usr/bin/unitwright instance exec --settings-dir=%t/unitwright/instances --settings-dir=%S/unitwright/instances %n --";
        assert_eq!(
            unit("v@.volume").lookup_all("Service", "ExecStart"),
            [
                format!("-{wrapper} /usr/bin/podman --log-level=debug volume create v-${{X}}"),
                format!("{wrapper} /usr/bin/podman --log-level=debug volume exists v-${{X}}"),
            ]
        );
        let t = unit("t@.container");
        assert_eq!(
            service_lines(&t)
                .into_iter()
                .filter(|(k, _)| k.starts_with("Exec"))
                .collect::<Vec<_>>(),
            [
                ("ExecStop", "/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid".to_owned()),
                ("ExecStopPost", "-/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid".to_owned()),
                ("ExecStartPre", "-/bin/rm -f %t/%N.cid".to_owned()),
                ("ExecStart", format!("{wrapper} /usr/bin/podman run --name ${{UNITWRIGHT_CONTAINER_NAME}} --cidfile=%t/%N.cid --replace --rm --cgroups=split --sdnotify=conmon -d localhost/bb /bin/echo ${{GREETING}}")),
            ]
            .map(|(k, v)| (k.to_owned(), v))
        );
    }

    #[test]
    fn kube_down_force_false_is_dropped_and_force_refused() {
        let s = oneshot(
            "k.kube",
            "[Kube]\nYaml=/k.yml\nKubeDownForce=false\n",
            typed(
                "/usr/bin/podman kube down --force=false /k.yml",
                &["kube", "down"],
            ),
            "4.3.1",
        )
        .unwrap();
        assert_eq!(
            s.lookup_last_raw("Service", "ExecStart"),
            Some("/usr/bin/podman kube down /k.yml")
        );
        let e = oneshot(
            "k.kube",
            "[Kube]\nYaml=/k.yml\nKubeDownForce=true\n",
            typed(
                "/usr/bin/podman kube down --force /k.yml",
                &["kube", "down"],
            ),
            "4.3.1",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("KubeDownForce= in [Kube]"), "{e}");
    }

    #[test]
    fn lines_written_by_the_user_are_left_alone() {
        let q = quadlet("web.container", "[Container]\nImage=x\n");
        let service = crate::unit::parse_str(
            "[Service]\nExecStartPre=/usr/bin/podman run --sdnotify=healthy x\n",
            Path::new("/q/web.container"),
        )
        .unwrap();
        let mut out = Service::from(service.clone());
        Compat::with_setting("/usr/bin/podman", Setting::Fixed(Version(4, 3, 1)))
            .adapt(&q, &mut out, &mut Vec::new())
            .unwrap();
        assert_eq!(out.finish(false), service);
    }

    #[test]
    fn off_changes_nothing() {
        let q = quadlet("web.container", "[Container]\nImage=x\nNotify=healthy\n");
        let mut ctx = Context {
            podman: "/usr/bin/podman".to_owned(),
            ..Context::default()
        };
        let s = crate::quadlet::container::convert(&q, &mut ctx).unwrap();
        let mut out = s.clone();
        Compat::with_setting("/usr/bin/podman", Setting::Off)
            .adapt(&q, &mut out, &mut Vec::new())
            .unwrap();
        assert_eq!(out.finish(false), s.finish(false));
    }

    /// A file of `kind` with the keys it needs to convert, then `extra`.
    fn minimal(kind: Kind, extra: &str) -> Quadlet {
        let needed = match kind {
            Kind::Container | Kind::Image => "Image=quay.io/x/y\n",
            Kind::Build => "ImageTag=localhost/x\nFile=/srv/Containerfile\n",
            Kind::Artifact => "Artifact=quay.io/x/a:1\n",
            Kind::Volume | Kind::Network | Kind::Kube | Kind::Pod => "",
        };
        quadlet(
            &format!("x.{}", kind.extension()),
            &format!("[{}]\n{needed}{extra}", kind.group()),
        )
    }

    fn convert_for(q: &Quadlet, version: Option<Version>) -> Result<UnitFile, ConvertError> {
        let mut ctx = Context {
            podman: "/usr/bin/podman".to_owned(),
            podman_version: version,
            ..Context::default()
        };
        ctx.units.insert(
            q.name.clone(),
            crate::quadlet::UnitInfo {
                kind: q.kind,
                service_name: q.service_name.clone(),
                resource_name: String::new(),
                containers_to_start: Vec::new(),
            },
        );
        (q.kind.converter())(q, &mut ctx).map(|s| s.finish(false))
    }

    /// The release just before `v` (`5.5.0` → `5.4.99`).
    fn just_before(v: Version) -> Version {
        match v {
            Version(a, 0, 0) => Version(a - 1, 99, 99),
            Version(a, b, 0) => Version(a, b - 1, 99),
            Version(a, b, c) => Version(a, b, c - 1),
        }
    }

    #[test]
    fn each_new_key_is_accepted_from_its_release_on_and_refused_before() {
        for k in NEW_KEYS {
            let q = minimal(k.kind, &format!("{}=1\n", k.key));
            let ok = convert_for(&q, Some(k.since));
            assert!(ok.is_ok(), "{} {}: {ok:?}", k.kind.extension(), k.key);
            for version in [Some(just_before(k.since)), None] {
                let e = convert_for(&q, version).unwrap_err();
                assert_eq!(
                    e.message,
                    format!(
                        "unsupported key '{}' in group '{}' in {}",
                        k.key,
                        k.kind.group(),
                        q.path.display()
                    )
                );
                let hint = e.hint.unwrap_or_default();
                assert!(
                    hint.starts_with(&format!("{}= needs podman {} or newer", k.key, k.since)),
                    "{hint}"
                );
            }
        }
    }

    #[test]
    fn new_keys_are_not_keys_of_5_4_2() {
        for k in NEW_KEYS {
            let supported = match k.kind {
                Kind::Container => crate::quadlet::container::SUPPORTED_KEYS,
                Kind::Pod => crate::quadlet::pod::SUPPORTED_KEYS,
                Kind::Network => crate::quadlet::network::SUPPORTED_KEYS,
                Kind::Image => crate::quadlet::image::SUPPORTED_KEYS,
                Kind::Build => crate::quadlet::build::SUPPORTED_KEYS,
                Kind::Volume | Kind::Kube | Kind::Artifact => {
                    panic!("no new keys for {:?} yet", k.kind)
                }
            };
            assert!(!supported.contains(k.key), "{}", k.key);
            let same = NEW_KEYS
                .iter()
                .filter(|o| o.kind == k.kind && o.key == k.key);
            assert_eq!(same.count(), 1, "{} listed twice", k.key);
        }
    }

    #[test]
    fn the_refusal_keeps_5_4_2s_message_and_line_and_puts_the_hint_last() {
        let q = minimal(Kind::Container, "Memory=1g\n");
        let e = convert_for(&q, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported key 'Memory' in group 'Container' in /q/x.container (line 3); \
             Memory= needs podman 5.5.0 or newer; if yours is, set PodmanVersion=auto (or its \
             version) in /etc/unitwright/generator.conf"
        );
        let e = convert_for(&q, Some(Version(4, 3, 1))).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "Memory= needs podman 5.5.0 or newer, but the podman version in use is 4.3.1 \
                 (see PodmanVersion= in /etc/unitwright/generator.conf)"
            )
        );
    }

    #[test]
    fn the_first_refused_key_is_reported_and_only_new_keys_get_a_hint() {
        let q = minimal(Kind::Container, "Frobnicate=1\nMemory=1g\n");
        let e = convert_for(&q, None).unwrap_err();
        assert!(e.message.starts_with("unsupported key 'Frobnicate'"), "{e}");
        assert_eq!(e.hint, None);
        // An accepted new key before it does not hide it.
        let q = minimal(Kind::Container, "Memory=1g\nFrobnicate=1\n");
        let e = convert_for(&q, Some(Version(5, 8, 2))).unwrap_err();
        assert!(e.message.starts_with("unsupported key 'Frobnicate'"), "{e}");
        assert_eq!(e.location.as_deref(), Some("line 4"));
        assert_eq!(e.hint, None);
        // A key of the wrong kind is not a new key there: pods have no Memory=.
        let q = minimal(Kind::Pod, "Memory=1g\n");
        let e = convert_for(&q, Some(Version(5, 8, 2))).unwrap_err();
        assert!(e.message.starts_with("unsupported key 'Memory'"), "{e}");
        assert_eq!(e.hint, None);
    }

    #[test]
    fn a_fixed_version_applies_without_asking_and_off_is_none() {
        let fixed = Compat::with_setting("/nonexistent/podman", Setting::Fixed(Version(5, 6, 0)));
        assert_eq!(fixed.version(), Some(Version(5, 6, 0)));
        assert!(fixed.detected.get().is_none());
        let off = Compat::with_setting("/nonexistent/podman", Setting::Off);
        assert_eq!(off.version(), None);
    }

    /// A fake podman: a script printing `version`, counting its runs in `runs`.
    fn fake_podman(dir: &Path, version: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("podman");
        let runs = dir.join("runs");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho x >> {}\necho 'podman version {version}'\n",
                runs.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("runs")).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn auto_asks_podman_once_and_caches_by_the_binary_identity() {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join("cache");
        let podman = fake_podman(d.path(), "5.6.1");
        let auto =
            || Compat::with_setting(podman.to_str().unwrap(), Setting::Auto).with_cache(&cache);
        let first = auto();
        assert_eq!(first.version(), Some(Version(5, 6, 1)));
        assert_eq!(first.version(), Some(Version(5, 6, 1)));
        assert_eq!(runs(d.path()), 1, "asked twice in one run");
        // A later run finds the answer in the cache.
        assert_eq!(auto().version(), Some(Version(5, 6, 1)));
        assert_eq!(runs(d.path()), 1, "the cache was not used");
        // Another binary (an upgrade: new size and mtime) is asked again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fake_podman(d.path(), "5.8.10");
        assert_eq!(auto().version(), Some(Version(5, 8, 10)));
        assert_eq!(runs(d.path()), 2);
    }

    #[test]
    fn a_podman_that_does_not_answer_in_time_is_given_up() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("podman");
        std::fs::write(&p, "#!/bin/sh\nexec sleep 60\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = Compat::with_setting(p.to_str().unwrap(), Setting::Auto)
            .with_timeout(std::time::Duration::from_millis(200));
        assert_eq!(c.version(), None);
        let notes = c.take_notes();
        assert!(notes[0].message.contains("did not answer"), "{notes:?}");
    }

    #[test]
    fn the_man_page_lists_every_new_key_with_its_release() {
        let page = include_str!("../../doc/man/unitwright.quadlet.5");
        for k in NEW_KEYS {
            let row = format!("{}=\t{}\t{}", k.key, k.kind.extension(), k.since);
            assert!(page.contains(&row), "no man page row {row:?}");
        }
    }
}
