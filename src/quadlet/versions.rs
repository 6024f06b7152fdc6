//! What Quadlet writes differently after 5.4.2, release by release: one [`Change`] per podman
//! change, each with the release that brought it and the podman pull request it follows.
//!
//! The kinds write 5.4.2's units and ask [`Context::writes`] where a later release writes
//! something else; the answer depends on the podman version targeted
//! ([`Context::podman_version`]: `PodmanVersion=`, detected with `auto`). Without a version
//! (`PodmanVersion=off`) and for releases before 5.5 the output is 5.4.2's; a release newer than
//! the newest one listed here gets the newest behaviour known (the generator says so once).
//! Older releases (podman 4.3 on Debian 12) are handled after conversion by [`super::compat`].
//!
//! Fixes made upstream after 5.4.2 that only turn an error or a broken unit into a working one
//! are applied for every target and are not listed here: a pod keeps the user's
//! `Environment=` (#26522), a `.build` `File=` starting with a specifier (`%h/…`) is absolute
//! (#27027), drop-ins of the most specific directory win (#26555).
//!
//! Keys added after 5.4.2 are listed in [`super::compat::NEW_KEYS`] with the release that
//! accepts them; kinds added after 5.4.2 (`.artifact`, 5.7) are refused before their release.

use super::compat::Version;
use super::Context;

/// One change of Quadlet's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The first podman release whose Quadlet writes it.
    pub since: Version,
    /// The podman pull request (containers/podman) that made it.
    pub pr: u32,
}

const fn change(a: u32, b: u32, c: u32, pr: u32) -> Change {
    Change {
        since: Version(a, b, c),
        pr,
    }
}

// --- 5.5.0 ---

/// `Wants=`, `Requires=`, `After=` ... (the unit relationship keys of `[Unit]`) may name Quadlet
/// files (`db.container`); they are replaced by the service names (#25899, more keys #25914). A
/// Quadlet name that is not loaded is an error.
pub const TRANSLATE_DEPENDENCIES: Change = change(5, 5, 0, 25914);
/// `[Install]` `UpheldBy=` gets `<target>.upholds/` links (#25699).
pub const UPHELD_BY: Change = change(5, 5, 0, 25699);

// --- 5.6.0 ---

/// Containers and pods are addressed by name: no `--cidfile`/`--pod-id-file`; `ExecStop=` and
/// `ExecStopPost=` remove the container by name, a pod is started, stopped and removed by name,
/// a container joins its pod with `--pod NAME` (#26007).
pub const BY_NAME: Change = change(5, 6, 0, 26007);
/// `[Unit] RequiresMountsFor=%t/containers` right after `SourcePath=`, for every kind (the
/// common service skeleton, #26001).
pub const MOUNTS_AFTER_SOURCE_PATH: Change = change(5, 6, 0, 26001);
/// A space inside a quoted word is written `\x20` (#25722).
pub const ESCAPE_SPACE: Change = change(5, 6, 0, 25722);
/// `Environment=NAME` (no `=`) becomes `--env NAME`, which takes the value from the host
/// (#26322); key-value lists that cannot be split are warnings instead of silently dropped
/// (#26563).
pub const ENV_FROM_HOST: Change = change(5, 6, 0, 26322);
/// `User=`, `Group=`, `DynamicUser=` in `[Service]` are warned about (#26552).
pub const WARN_SERVICE_USER: Change = change(5, 6, 0, 26552);
/// A `.volume` with `Type=bind` requires its `Device=` path to be mounted (#26282).
pub const BIND_VOLUME_MOUNTS: Change = change(5, 6, 0, 26282);
/// `pod create --exit-policy stop` (two words, after `--replace`, from `ExitPolicy=`, #26466).
pub const POD_EXIT_POLICY_WORDS: Change = change(5, 6, 0, 26466);

// --- 5.7.0 ---

/// Templates of volumes, networks, images, builds, pods and artifacts: `foo@.volume` is the
/// service `foo-volume@` and its resource `systemd-foo-%i`, and containers may depend on them
/// (#27169).
pub const TEMPLATE_RESOURCES: Change = change(5, 7, 0, 27169);
/// `.kube` takes several `Yaml=` (#27340).
pub const SEVERAL_YAML: Change = change(5, 7, 0, 27340);
/// The `.artifact` kind and `Mount=type=artifact` (#26624).
pub const ARTIFACT: Change = change(5, 7, 0, 26624);
/// An empty mount source is an error instead of a crash (#26977).
pub const EMPTY_SOURCE_ERROR: Change = change(5, 7, 0, 26977);

// --- 5.8.0 ---

/// `RequiresMountsFor=` paths are escaped like command words (a path with a space is quoted,
/// #28042).
pub const ESCAPE_MOUNTS_FOR: Change = change(5, 8, 0, 28042);

// --- 5.8.2 ---

/// `Entrypoint=` is written `--entrypoint=VALUE`, before the other string options, and an empty
/// value clears the image's entrypoint (#28475).
pub const ENTRYPOINT_EQUALS: Change = change(5, 8, 2, 28475);
/// Only a matched pair of surrounding double quotes is stripped from a value; before, every
/// leading and trailing `"` was (#28475, `HealthCmd="..."` with inner quotes).
pub const MATCHED_QUOTES: Change = change(5, 8, 2, 28475);

/// Every change, oldest first.
pub const ALL: &[Change] = &[
    TRANSLATE_DEPENDENCIES,
    UPHELD_BY,
    BY_NAME,
    MOUNTS_AFTER_SOURCE_PATH,
    ESCAPE_SPACE,
    ENV_FROM_HOST,
    WARN_SERVICE_USER,
    BIND_VOLUME_MOUNTS,
    POD_EXIT_POLICY_WORDS,
    TEMPLATE_RESOURCES,
    SEVERAL_YAML,
    ARTIFACT,
    EMPTY_SOURCE_ERROR,
    ESCAPE_MOUNTS_FOR,
    ENTRYPOINT_EQUALS,
    MATCHED_QUOTES,
];

/// The newest Quadlet release whose output is known here (checked against 5.8.6).
pub const NEWEST_KNOWN: Version = Version(5, 8, 6);

/// True if the podman release `version` writes `change` (`None`: 5.4.2's output).
pub fn writes(version: Option<Version>, change: Change) -> bool {
    version.is_some_and(|v| v >= change.since)
}

impl Context {
    /// True if the targeted podman release writes `change` (see the module documentation).
    pub fn writes(&self, change: Change) -> bool {
        writes(self.podman_version, change)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::quadlet::compat::Setting;
    use crate::quadlet::{convert_all, ConvertOptions, Converted, Quadlet};
    use std::path::Path;

    /// Converts `files` (name, text) for podman `version`; the results by source name.
    fn convert_at(version: Version, files: &[(&str, &str)]) -> Vec<Converted> {
        let mut units: Vec<Quadlet> = files
            .iter()
            .map(|(n, t)| Quadlet::from_text(&Path::new("/q").join(n), t).unwrap())
            .collect();
        let options = ConvertOptions {
            podman_version: Setting::Fixed(version),
            ..ConvertOptions::default()
        };
        convert_all(&mut units, &options)
    }

    /// The text of the unit made from `source`.
    fn text(results: &[Converted], source: &str) -> String {
        let c = results.iter().find(|c| c.source == source).unwrap();
        c.unit
            .as_ref()
            .map(crate::unit::UnitFile::to_text)
            .unwrap_or_default()
    }

    /// The text of `source` converted just before and at the release of `change`.
    fn before_and_at(change: Change, files: &[(&str, &str)], source: &str) -> (String, String) {
        let Version(a, b, c) = change.since;
        let before = if c > 0 {
            Version(a, b, c - 1)
        } else {
            Version(a, b - 1, 9)
        };
        (
            text(&convert_at(before, files), source),
            text(&convert_at(change.since, files), source),
        )
    }

    const WEB: (&str, &str) = ("web.container", "[Container]\nImage=quay.io/a/web:1\n");

    #[test]
    fn changes_are_listed_oldest_first_and_apply_from_their_release_on() {
        assert!(ALL.windows(2).all(|w| w[0].since <= w[1].since));
        for c in ALL {
            assert!(!writes(None, *c), "off means 5.4.2's output");
            assert!(!writes(Some(Version(5, 4, 2)), *c));
            assert!(writes(Some(c.since), *c));
            assert!(writes(Some(NEWEST_KNOWN), *c));
            assert!(
                writes(Some(Version(7, 0, 0)), *c),
                "newer: newest behaviour"
            );
        }
    }

    /// podman #25899/#25914 (5.5.0): Quadlet names in `[Unit]` dependencies are translated.
    #[test]
    fn pr25914_dependencies_on_quadlet_files_are_translated() {
        let app = (
            "app.container",
            "[Unit]\nWants=db.volume x.service\n[Container]\nImage=quay.io/a/b:1\n",
        );
        let files = [app, ("db.volume", "[Volume]\n")];
        let (before, at) = before_and_at(TRANSLATE_DEPENDENCIES, &files, "app.container");
        assert!(before.contains("Wants=db.volume x.service\n"), "{before}");
        assert!(at.contains("Wants=db-volume.service x.service\n"), "{at}");
        let missing = convert_at(Version(5, 5, 0), &[app]);
        assert!(missing[0].diagnostics[0]
            .message
            .contains("unable to translate dependency for db.volume"));
    }

    /// podman #25699 (5.5.0): `UpheldBy=` makes an `.upholds/` link.
    #[test]
    fn pr25699_upheld_by_links() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\n[Install]\nUpheldBy=x.target\n",
        )];
        assert!(convert_at(Version(5, 4, 2), &f)[0].links.is_empty());
        let links = &convert_at(UPHELD_BY.since, &f)[0].links;
        assert_eq!(links[0], Path::new("x.target.upholds/w.service"));
    }

    /// podman #26007 (5.6.0): containers and pods addressed by name, no cid/pod-id files.
    #[test]
    fn pr26007_containers_and_pods_by_name() {
        let files = [
            (
                "web.container",
                "[Container]\nImage=quay.io/a/web:1\nPod=p.pod\n",
            ),
            ("p.pod", "[Pod]\n"),
        ];
        let (before, at) = before_and_at(BY_NAME, &files, "web.container");
        assert!(before.contains("ExecStop=/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid"));
        assert!(before.contains("--pod-id-file %t/p-pod.pod-id"));
        assert!(
            at.contains("ExecStop=/usr/bin/podman rm -v -f -i systemd-%N\n"),
            "{at}"
        );
        assert!(
            at.contains("--pod systemd-p") && !at.contains("cid"),
            "{at}"
        );
        let (_, pod) = before_and_at(BY_NAME, &files, "p.pod");
        assert!(
            pod.contains("ExecStart=/usr/bin/podman pod start systemd-p\n"),
            "{pod}"
        );
    }

    /// podman #26001 (5.6.0): `RequiresMountsFor=%t/containers` right after `SourcePath=`.
    #[test]
    fn pr26001_mounts_right_after_source_path() {
        let f = [(
            "b.build",
            "[Build]\nImageTag=localhost/b\nFile=/srv/Containerfile\n",
        )];
        let (before, at) = before_and_at(MOUNTS_AFTER_SOURCE_PATH, &f, "b.build");
        assert!(before.contains("RequiresMountsFor=%t/containers\nSourcePath=/q/b.build\n"));
        assert!(at.contains("SourcePath=/q/b.build\nRequiresMountsFor=%t/containers\n"));
    }

    /// podman #25722 (5.6.0): a space in a quoted word is `\x20`.
    #[test]
    fn pr25722_space_in_quoted_word() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\nExec=\"a b\" 'c\\td'\n",
        )];
        let (before, at) = before_and_at(ESCAPE_SPACE, &f, "w.container");
        assert!(before.contains(r#" "a b" "c\td""#), "{before}");
        assert!(at.contains(r#" "a\x20b" "c\td""#), "{at}");
    }

    /// podman #26322 (5.6.0): `Environment=NAME` passes NAME from the host; #26563: values that
    /// cannot be split are warned about.
    #[test]
    fn pr26322_environment_from_the_host_and_pr26563_split_warnings() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\nEnvironment=A=1 HOSTVAR\nLabel=x=\\.\n",
        )];
        let (before, at) = before_and_at(ENV_FROM_HOST, &f, "w.container");
        assert!(
            before.contains("--env A=1 quay") && !before.contains("--env HOSTVAR"),
            "{before}"
        );
        assert!(at.contains("--env A=1 --env HOSTVAR quay"), "{at}");
        let warned = |v| {
            convert_at(v, &f)[0].diagnostics.iter().any(|d| {
                d.message.contains("Label=x=\\.") && d.message.contains("unsupported escape char")
            })
        };
        assert!(!warned(Version(5, 5, 2)) && warned(ENV_FROM_HOST.since));
    }

    /// podman #26552 (5.6.0): `User=`, `Group=`, `DynamicUser=` in `[Service]` are warned about.
    #[test]
    fn pr26552_service_user_warning() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\n[Service]\nUser=ann\n",
        )];
        let warned = |v| {
            convert_at(v, &f)[0].diagnostics.iter().any(|d| {
                d.message == "Warning: using key User in the Service group is not supported - use at your own risk"
            })
        };
        assert!(!warned(Version(5, 5, 2)) && warned(WARN_SERVICE_USER.since));
    }

    /// podman #26282 (5.6.0) and #28042 (5.8.0): a bind volume requires its device, escaped.
    #[test]
    fn pr26282_bind_volume_mounts_and_pr28042_escaped() {
        let f = [("d.volume", "[Volume]\nDevice=/srv/my data\nType=bind\n")];
        let (before, at) = before_and_at(BIND_VOLUME_MOUNTS, &f, "d.volume");
        assert!(
            !before.contains("RequiresMountsFor=/srv")
                && at.contains("RequiresMountsFor=/srv/my data\n")
        );
        let (_, escaped) = before_and_at(ESCAPE_MOUNTS_FOR, &f, "d.volume");
        assert!(
            escaped.contains("RequiresMountsFor=\"/srv/my\\x20data\"\n"),
            "{escaped}"
        );
    }

    /// podman #26466 (5.6.0): `pod create ... --replace --exit-policy stop`.
    #[test]
    fn pr26466_exit_policy_words() {
        let f = [("p.pod", "[Pod]\n")];
        let (before, at) = before_and_at(POD_EXIT_POLICY_WORDS, &f, "p.pod");
        assert!(before.contains("--exit-policy=stop --replace"));
        assert!(at.contains("--replace --exit-policy stop"));
    }

    /// podman #27169 (5.7.0): templated volumes are per instance, named like their service.
    #[test]
    fn pr27169_template_resources() {
        let files = [
            (
                "app@.container",
                "[Container]\nImage=quay.io/a/b:1\nVolume=data@.volume:/d\n",
            ),
            ("data@.volume", "[Volume]\n"),
        ];
        let (before, at) = before_and_at(TEMPLATE_RESOURCES, &files, "app@.container");
        assert!(
            before.contains("Requires=data@-volume.service")
                && before.contains("-v systemd-data@:/d")
        );
        assert!(
            at.contains("Requires=data-volume@.service") && at.contains("-v systemd-data-%i:/d"),
            "{at}"
        );
    }

    /// podman #27340 (5.7.0): several `Yaml=` are played together.
    #[test]
    fn pr27340_several_yaml() {
        let f = [("k.kube", "[Kube]\nYaml=/a.yml\nYaml=/b.yml\n")];
        let (before, at) = before_and_at(SEVERAL_YAML, &f, "k.kube");
        assert!(
            before.contains("--service-container=true /b.yml\n"),
            "{before}"
        );
        assert!(
            at.contains("--service-container=true /a.yml /b.yml\n"),
            "{at}"
        );
    }

    /// podman #26624 (5.7.0): the `.artifact` kind and `Mount=type=artifact`.
    #[test]
    fn pr26624_artifacts() {
        let files = [
            ("m.artifact", "[Artifact]\nArtifact=quay.io/a/model:1\n"),
            ("w.container", "[Container]\nImage=quay.io/a/b:1\nMount=type=artifact,source=m.artifact,destination=/m\n"),
        ];
        let old = convert_at(Version(5, 6, 2), &files);
        let refused = &old
            .iter()
            .find(|c| c.source == "m.artifact")
            .unwrap()
            .diagnostics[0]
            .message;
        assert!(
            refused.contains(".artifact files needs podman 5.7.0 or newer"),
            "{refused}"
        );
        let new = convert_at(ARTIFACT.since, &files);
        assert!(text(&new, "m.artifact")
            .contains("ExecStart=/usr/bin/podman artifact pull quay.io/a/model:1\n"));
        let w = text(&new, "w.container");
        assert!(
            w.contains("Requires=m-artifact.service")
                && w.contains("--mount type=artifact,source=quay.io/a/model:1,destination=/m"),
            "{w}"
        );
    }

    /// podman #26977 (5.7.0): an empty mount source is an error.
    #[test]
    fn pr26977_empty_mount_source() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\nMount=type=bind,source=,destination=/m\n",
        )];
        assert!(convert_at(Version(5, 6, 2), &f)[0].ok());
        let at = convert_at(EMPTY_SOURCE_ERROR.since, &f);
        assert!(at[0].diagnostics[0]
            .message
            .contains("source cannot be empty"));
    }

    /// podman #28475 (5.8.2): `--entrypoint=V`, an empty one clears; matched quotes only.
    #[test]
    fn pr28475_entrypoint_and_quotes() {
        let f = [(
            "w.container",
            "[Container]\nImage=quay.io/a/b:1\nEntrypoint=\nHealthCmd=/bin/sh -c \"x\"\n",
        )];
        let (before, at) = before_and_at(ENTRYPOINT_EQUALS, &f, "w.container");
        assert!(
            !before.contains("--entrypoint")
                && before.contains(r#"--health-cmd "/bin/sh\x20-c\x20\"x""#),
            "{before}"
        );
        assert!(
            at.contains("--entrypoint= ")
                && at.contains(r#"--health-cmd "/bin/sh\x20-c\x20\"x\"""#),
            "{at}"
        );
        assert_eq!(ENTRYPOINT_EQUALS, MATCHED_QUOTES);
    }

    #[test]
    fn a_newer_podman_gets_the_newest_behaviour_and_one_notice() {
        let r = convert_at(
            Version(6, 1, 0),
            &[WEB, ("b.container", "[Container]\nImage=quay.io/a/b:1\n")],
        );
        assert!(text(&r, "web.container").contains("rm -v -f -i systemd-%N"));
        let notices: Vec<_> = r
            .iter()
            .flat_map(|c| &c.diagnostics)
            .filter(|d| d.message.contains("newer than the newest"))
            .collect();
        assert_eq!(notices.len(), 1);
    }
}
