//! `.build` files, group `[Build]`, to `<name>-build.service` (Quadlet 5.4.2 `ConvertBuild` and
//! `handleSetWorkingDirectory`, quadlet-keys.md §10): a one-shot `podman build … [context]`.
//!
//! The first `ImageTag=` is the resource name containers use for `Image=x.build` (the framework
//! fills it in before any conversion, as 5.4.2 does). The option groups whose order 5.4.2 took
//! from Go map iteration use the fixed order of quadlet-keys §12.
//!
//! Keys added after 5.4.2 (accepted when the podman version allows, see
//! [`super::compat::NEW_KEYS`]), placed as podman 5.8.2 does: `IgnoreFile=` (5.7.0, unresolved),
//! `Retry=` and `RetryDelay=` (5.5.0) in B2, in 5.8.2's literal order; `BuildArg=` (5.7.0) as
//! `--build-arg K=V`, sorted. In 5.8.2 the four key-value groups (build-arg, env, label,
//! annotation) come in Go map order, any rotation of that list; the rotation that starts at
//! annotation keeps 5.4.2's fixed annotation, env, label order, with `--build-arg` after
//! `--annotation`.
//!
//! # Build context and `WorkingDirectory=`
//! `SetWorkingDirectory=` (compared case-insensitively) says where the build runs:
//! * `file`: in the directory of `File=` (resolved against the unit's directory);
//! * `unit`: in the unit file's directory;
//! * a URL (anything starting with `http`, `git://`, or containing `github.com/`) or an
//!   absolute path: that is the context, no `WorkingDirectory=`;
//! * another (relative) path: that is the context, run in the unit file's directory;
//! * `yaml`: only valid for `.kube` files (an error here).
//!
//! A `[Service] WorkingDirectory=` set by the user is kept and wins (a relative context is then
//! dropped). When no context results and `File=` is not absolute or a URL, the service's
//! `WorkingDirectory=` is the context.
//!
//! Difference from 5.4.2: a `File=` starting with a specifier (`%h/Containerfile`) counts as
//! absolute, as it does from podman 5.7 on (podman #26746); 5.4.2 rejected it without
//! `SetWorkingDirectory=`. A user `WorkingDirectory=-/path` gives the context `/path` (5.4.2
//! passed `-/path`). With `SetWorkingDirectory=file` and a relative `File=` with a
//! directory part (`ctx/Containerfile`), `--file` gets the file name only: 5.4.2 passed
//! `ctx/Containerfile` unchanged while running podman in `ctx/`, so podman looked for
//! `ctx/ctx/Containerfile` and the build failed (seen with real podman). For `File=Containerfile`
//! the output is 5.4.2's. With `SetWorkingDirectory=file` and a URL `File=`, no
//! `WorkingDirectory=` is added (5.4.2 added a nonsensical path below the unit's directory).

use super::common::{
    add_all_strings, add_bools, add_key_vals, add_networks, add_source_path, add_strings,
    add_volumes, dir_of, new_service, resolve_path, KeySet, SERVICE, UNIT,
};
use super::compat::check_keys;
use super::podman::{PodmanCmd, Service};
use super::resource::add_oneshot_service;
use super::{versions, Context, ConvertError, OrCollect, Quadlet};
use crate::unit::UnitFile;

const GROUP: &str = "Build";

/// The keys `[Build]` accepts in 5.4.2 (`supportedBuildKeys`); later ones are in
/// [`super::compat::NEW_KEYS`].
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "Annotation",
    "Arch",
    "AuthFile",
    "ContainersConfModule",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "Environment",
    "File",
    "ForceRM",
    "GlobalArgs",
    "GroupAdd",
    "ImageTag",
    "Label",
    "Network",
    "PodmanArgs",
    "Pull",
    "Secret",
    "ServiceName",
    "SetWorkingDirectory",
    "TLSVerify",
    "Target",
    "Variant",
    "Volume",
]);

/// B2: single-valued options, literal order (of 5.8.2).
const STRING_OPTIONS: &[(&str, &str)] = &[
    ("Arch", "--arch"),
    ("AuthFile", "--authfile"),
    ("IgnoreFile", "--ignorefile"),
    ("Target", "--target"),
    ("Variant", "--variant"),
    ("Retry", "--retry"),
    ("RetryDelay", "--retry-delay"),
];

/// B3: boolean options, literal order.
const BOOL_OPTIONS: &[(&str, &str)] = &[("TLSVerify", "--tls-verify"), ("ForceRM", "--force-rm")];

/// B4: repeatable options, literal order.
const LIST_OPTIONS: &[(&str, &str)] = &[
    ("DNS", "--dns"),
    ("DNSOption", "--dns-option"),
    ("DNSSearch", "--dns-search"),
    ("GroupAdd", "--group-add"),
    ("ImageTag", "--tag"),
];

/// Quadlet's `isURL` test for build contexts and files. 5.4.2's expression
/// `^((https?)|(git)://)|(github\.com/).+$` accepts anything starting with `http` (the `://`
/// only binds to `git`) and anything containing `github.com/` followed by more text.
fn is_url(v: &str) -> bool {
    v.starts_with("http")
        || v.starts_with("git://")
        || v.match_indices("github.com/").any(|(i, m)| {
            let rest = &v[i + m.len()..];
            !rest.is_empty() && !rest.contains('\n')
        })
}

/// An absolute `File=`: a `/` path or one starting with a specifier such as `%h` (not `%%`).
fn is_absolute_file(f: &str) -> bool {
    f.starts_with('/') || (f.starts_with('%') && !f.starts_with("%%"))
}

/// Converts a `.build` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    let u = &q.unit;
    if u.lookup_all(GROUP, "ImageTag").is_empty() {
        ctx.recover(ConvertError::at_key(
            q,
            GROUP,
            "ImageTag",
            "no ImageTag key specified",
        ))?;
    }
    check_keys(q, ctx, &SUPPORTED_KEYS)?;
    let mut service = new_service(q, ctx)?;
    if ctx.writes(versions::MOUNTS_AFTER_SOURCE_PATH) {
        add_source_path(&mut service, q);
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
    } else {
        // The reverse of the other kinds' order, as in 5.4.2.
        service.add(UNIT, "RequiresMountsFor", "%t/containers");
        add_source_path(&mut service, q);
    }

    let mut cmd = PodmanCmd::base(ctx, q).with_sub(&["build"]);
    if let Some(pull) = u.lookup_nonempty(GROUP, "Pull") {
        cmd.add(format!("--pull={pull}"));
    }
    add_strings(&mut cmd, q, STRING_OPTIONS);
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    add_all_strings(&mut cmd, q, LIST_OPTIONS);
    add_key_vals(
        &mut cmd,
        q,
        ctx,
        &[
            ("Annotation", "--annotation"),
            ("BuildArg", "--build-arg"),
            ("Environment", "--env"),
            ("Label", "--label"),
        ],
    );
    add_networks(q, &mut service, ctx, &mut cmd)?;
    cmd.add_each("--secret", u.lookup_all_args(GROUP, "Secret"));
    add_volumes(q, &mut service, ctx, &mut cmd)?;

    let place = build_place(q, &mut service).or_collect(
        ctx,
        Place {
            file: None,
            context: None,
        },
    )?;
    if let Some(f) = place.file {
        cmd.add("--file");
        cmd.add(f);
    }
    cmd.extend(u.lookup_all_args(GROUP, "PodmanArgs"));
    if let Some(c) = place.context {
        cmd.arg(c);
    }

    add_oneshot_service(&mut service, cmd, false);
    Ok(service)
}

/// Where podman builds: the `--file` word and the context argument.
struct Place {
    file: Option<String>,
    context: Option<String>,
}

/// Applies `SetWorkingDirectory=` (adding `[Service] WorkingDirectory=` where it says so) and
/// returns the `--file` word and the build context; see the module documentation.
fn build_place(q: &Quadlet, service: &mut UnitFile) -> Result<Place, ConvertError> {
    let key_err = |key: &str, msg: String| ConvertError::at_key(q, GROUP, key, msg);
    let unit_dir = || q.dir.display().to_string();
    let file = q.unit.lookup_nonempty(GROUP, "File");
    let mut file_word = file.map(str::to_owned);
    let mut context = None;
    let mut working_dir = None;
    if let Some(swd) = q.unit.lookup_nonempty(GROUP, "SetWorkingDirectory") {
        match swd.to_ascii_lowercase().as_str() {
            "yaml" => {
                return Err(key_err(
                    "SetWorkingDirectory",
                    format!("SetWorkingDirectory={swd} is only supported in .kube files"),
                ))
            }
            "file" => {
                let f = file.ok_or_else(|| {
                    key_err("SetWorkingDirectory", "no File key specified".into())
                })?;
                if !is_url(f) {
                    let resolved = resolve_path(q, f);
                    working_dir = Some(dir_of(&resolved));
                    if !is_absolute_file(f) {
                        // podman reads a relative --file from the working directory, which is
                        // now the file's own directory.
                        let name = resolved.rsplit('/').next().unwrap_or_default();
                        file_word = Some(name.to_owned());
                    }
                }
            }
            "unit" => working_dir = Some(unit_dir()),
            _ => {
                if !is_url(swd) && !swd.starts_with('/') {
                    working_dir = Some(unit_dir());
                }
                context = Some(swd.to_owned());
            }
        }
    }
    if let Some(dir) = working_dir {
        if service
            .lookup_nonempty(SERVICE, "WorkingDirectory")
            .is_some()
        {
            // The user's WorkingDirectory wins, and what is relative to ours no longer holds.
            context = None;
            file_word = file.map(str::to_owned);
        } else {
            service.add(SERVICE, "WorkingDirectory", dir);
        }
    }
    let file_stands_alone = file.is_some_and(|f| is_absolute_file(f) || is_url(f));
    if context.is_none() && !file_stands_alone {
        // systemd's `-` prefix (ignore a missing directory) is not part of the path.
        context = service
            .lookup_nonempty(SERVICE, "WorkingDirectory")
            .map(|w| w.strip_prefix('-').unwrap_or(w).to_owned());
    }
    if context.is_none() {
        match file {
            None => {
                return Err(ConvertError::new(
                    "neither SetWorkingDirectory, nor File key specified",
                ))
            }
            Some(_) if !file_stands_alone => {
                return Err(key_err(
                    "File",
                    "relative path in File key requires SetWorkingDirectory key to be set".into(),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(Place {
        file: file_word,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_what_5_4_2_took_for_urls() {
        assert!(is_url("https://example.com/x.git"));
        assert!(is_url("httpd/Containerfile"));
        assert!(is_url("git://example.com/x"));
        assert!(is_url("github.com/containers/PodmanHello.git"));
        assert!(is_url("mirror/github.com/x"));
        assert!(!is_url("github.com/"));
        assert!(!is_url("git/x"));
        assert!(!is_url("./ctx"));
    }

    #[test]
    fn specifier_files_count_as_absolute() {
        assert!(is_absolute_file("/etc/Containerfile"));
        assert!(is_absolute_file("%h/Containerfile"));
        assert!(!is_absolute_file("%%h/Containerfile"));
        assert!(!is_absolute_file("Containerfile"));
    }
}
