//! `.volume` files, group `[Volume]`, to `<name>-volume.service` (Quadlet 5.4.2 `ConvertVolume`,
//! quadlet-keys.md §8): a one-shot `podman volume create --ignore … <volume name>`.
//!
//! The volume name (`VolumeName=`, else `systemd-<base name>`) is the resource name that
//! containers, pods and builds use for `Volume=x.volume` and `Mount=…source=x.volume`.
//!
//! Difference from 5.4.2: `Driver=image` with an empty `Image=` is the same error as a missing
//! `Image=` (5.4.2 emitted `--opt image=`: an image volume without an image).

use super::common::{
    add_key_vals, add_requires_mounts_for, lookup_u32, resolve_image_source, KeySet,
};
use super::podman::{PodmanCmd, Service};
use super::resource::{begin, finish, name_or_default};
use super::{versions, Context, ConvertError, OrCollect, Quadlet};
use crate::unit::UnitFile;

const GROUP: &str = "Volume";

/// The keys `[Volume]` accepts in 5.4.2 (`supportedVolumeKeys`).
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "ContainersConfModule",
    "Copy",
    "Device",
    "Driver",
    "GlobalArgs",
    "Group",
    "Image",
    "Label",
    "Options",
    "PodmanArgs",
    "ServiceName",
    "Type",
    "User",
    "VolumeName",
]);

/// Converts a `.volume` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    let (mut service, mut cmd) = begin(q, ctx, &SUPPORTED_KEYS, &["volume", "create"])?;
    cmd.add("--ignore");
    let u = &q.unit;
    let driver = u.lookup(GROUP, "Driver");
    if let Some(d) = driver {
        // Present but empty still gives the (empty) word, as in 5.4.2.
        cmd.add("--driver");
        cmd.add(d);
    }
    if driver == Some("image") {
        match u.lookup_nonempty(GROUP, "Image") {
            Some(image) => {
                // User, Group, Copy, Device, Type and Options do not apply to image volumes.
                let image = resolve_image_source(q, &mut service, ctx, image)
                    .or_collect(ctx, image.to_owned())?;
                cmd.add("--opt");
                cmd.add(format!("image={image}"));
            }
            None => ctx.recover(ConvertError::at_key(
                q,
                GROUP,
                "Driver",
                "the key Image is mandatory when using the image driver",
            ))?,
        }
    } else {
        add_device_options(q, ctx, &mut service, &mut cmd).or_collect(ctx, ())?;
    }
    add_key_vals(&mut cmd, q, ctx, &[("Label", "--label")]);
    let name = name_or_default(q, ctx, "VolumeName");
    Ok(finish(q, ctx, service, cmd, &name, &name))
}

/// V2–V5: `--opt copy|nocopy`, `--opt device=`, `--opt type=`, and one `--opt o=` word made of
/// `uid=N`, `gid=N` (whenever `User=`/`Group=` exist; non-numeric values count as 0) and
/// `Options=`. `Type=` and `Options=` need `Device=`.
/// From 5.6 on a `Type=bind` volume also requires its device path to be mounted
/// ([`versions::BIND_VOLUME_MOUNTS`]).
fn add_device_options<'q>(
    q: &'q Quadlet,
    ctx: &Context,
    service: &mut UnitFile,
    cmd: &mut PodmanCmd<'q>,
) -> Result<(), ConvertError> {
    let u = &q.unit;
    if let Some(copy) = u.lookup_bool(GROUP, "Copy") {
        cmd.add("--opt");
        cmd.add(if copy { "copy" } else { "nocopy" });
    }
    let device = u.lookup_nonempty(GROUP, "Device");
    let without_device = |key: &str| {
        ConvertError::at_key(
            q,
            GROUP,
            key,
            format!("key {key} can't be used without Device"),
        )
    };
    if let Some(dev) = device {
        cmd.add("--opt");
        cmd.add(format!("device={dev}"));
    }
    if let Some(t) = u.lookup_nonempty(GROUP, "Type") {
        if device.is_none() {
            return Err(without_device("Type"));
        }
        cmd.add("--opt");
        cmd.add(format!("type={t}"));
        if t == "bind" && ctx.writes(versions::BIND_VOLUME_MOUNTS) {
            add_requires_mounts_for(service, ctx, device.unwrap_or_default());
        }
    }
    let mut o = Vec::new();
    if let Some(uid) = lookup_u32(u, GROUP, "User") {
        o.push(format!("uid={uid}"));
    }
    if let Some(gid) = lookup_u32(u, GROUP, "Group") {
        o.push(format!("gid={gid}"));
    }
    if let Some(opts) = u.lookup_nonempty(GROUP, "Options") {
        if device.is_none() {
            return Err(without_device("Options"));
        }
        o.push(opts.to_owned());
    }
    if !o.is_empty() {
        cmd.add("--opt");
        cmd.add(format!("o={}", o.join(",")));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::quadlet::compat::Setting;
    use crate::quadlet::{convert_all, ConvertOptions, Quadlet};
    use std::path::Path;

    /// G097: a `.volume` without any group (empty, blank or comment lines only) gets exactly
    /// the one empty line Quadlet 5.4.2 (and 5.8.6) writes before `[Unit]`, and its comments
    /// are not copied.
    #[test]
    fn a_volume_file_without_groups_gets_quadlets_blank_lines() {
        for text in ["", "\n", "# just a comment\n", "\n\n; two\n# comments"] {
            let q = Quadlet::from_text(Path::new("/q/e.volume"), text).unwrap();
            for version in [
                Setting::Off,
                Setting::Fixed(crate::quadlet::Version(5, 8, 6)),
            ] {
                let options = ConvertOptions {
                    podman_version: version,
                    ..ConvertOptions::default()
                };
                let out = convert_all(&mut [q.clone()], &options);
                let unit = out[0].unit.as_ref().unwrap().to_text();
                assert!(
                    unit.starts_with("\n[Unit]\nWants=network-online.target\n"),
                    "{text:?}: {unit:?}"
                );
            }
        }
    }
}
