//! `.image` files, group `[Image]`, to `<name>-image.service` (Quadlet 5.4.2 `ConvertImage`,
//! quadlet-keys.md §9): a one-shot `podman image pull … <image>`.
//!
//! The resource name that containers and image volumes use for `Image=x.image` (and mounts for
//! `source=x.image`) is `ImageTag=` when non-empty, else `Image=`. The string and boolean option
//! groups, whose order 5.4.2 took from Go map iteration, use the fixed order of quadlet-keys §12.
//! Paths (`AuthFile=`, `CertDir=`, `DecryptionKey=`) are passed unresolved, as in 5.4.2.

use super::common::{add_bools, add_strings, check_supported_keys, new_service};
use super::podman::PodmanCmd;
use super::resource::{add_oneshot_service, add_unit_lines, publish_resource_name};
use super::{Context, ConvertError, Quadlet};
use crate::unit::UnitFile;

const GROUP: &str = "Image";

/// The keys `[Image]` accepts in 5.4.2 (`supportedImageKeys`).
pub const SUPPORTED_KEYS: &[&str] = &[
    "AllTags",
    "Arch",
    "AuthFile",
    "CertDir",
    "ContainersConfModule",
    "Creds",
    "DecryptionKey",
    "GlobalArgs",
    "Image",
    "ImageTag",
    "OS",
    "PodmanArgs",
    "ServiceName",
    "TLSVerify",
    "Variant",
];

/// I1: single-valued options, literal order.
const STRING_OPTIONS: &[(&str, &str)] = &[
    ("Arch", "--arch"),
    ("AuthFile", "--authfile"),
    ("CertDir", "--cert-dir"),
    ("Creds", "--creds"),
    ("DecryptionKey", "--decryption-key"),
    ("OS", "--os"),
    ("Variant", "--variant"),
];

/// I2: boolean options, literal order.
const BOOL_OPTIONS: &[(&str, &str)] = &[("AllTags", "--all-tags"), ("TLSVerify", "--tls-verify")];

/// Converts a `.image` file into its service unit (see [`super::ConvertFn`]).
pub fn convert(q: &Quadlet, ctx: &mut Context) -> Result<UnitFile, ConvertError> {
    check_supported_keys(q, SUPPORTED_KEYS)?;
    let u = &q.unit;
    let Some(image) = u.lookup_nonempty(GROUP, "Image") else {
        return Err(ConvertError::at_key(
            q,
            GROUP,
            "Image",
            "no Image key specified",
        ));
    };
    let mut service = new_service(q, ctx);
    add_unit_lines(&mut service, q);

    let mut cmd = PodmanCmd::base(ctx, q);
    cmd.extend(["image", "pull"]);
    add_strings(&mut cmd, q, STRING_OPTIONS);
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    cmd.extend(u.lookup_all_args(GROUP, "PodmanArgs"));
    cmd.add(image);

    add_oneshot_service(&mut service, &cmd, true);
    let name = u.lookup_nonempty(GROUP, "ImageTag").unwrap_or(image);
    publish_resource_name(ctx, q, name.to_owned());
    Ok(service)
}
