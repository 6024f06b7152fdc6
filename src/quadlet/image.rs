//! `.image` files, group `[Image]`, to `<name>-image.service` (Quadlet 5.4.2 `ConvertImage`,
//! quadlet-keys.md §9): a one-shot `podman image pull … <image>`.
//!
//! The resource name that containers and image volumes use for `Image=x.image` (and mounts for
//! `source=x.image`) is `ImageTag=` when non-empty, else `Image=`. The string and boolean option
//! groups, whose order 5.4.2 took from Go map iteration, use the fixed order of quadlet-keys §12.
//! Paths (`AuthFile=`, `CertDir=`, `DecryptionKey=`) are passed unresolved, as in 5.4.2.
//!
//! Keys added after 5.4.2 (accepted when the podman version allows, see
//! [`super::compat::NEW_KEYS`]) are in I1, in podman 5.8.2's literal order: `Policy=` (5.6.0)
//! before `--variant`, `Retry=` and `RetryDelay=` (5.5.0) last.

use super::common::{add_bools, add_strings, KeySet};
use super::podman::Service;
use super::resource::{begin, finish};
use super::{Context, ConvertError, OrCollect, Quadlet};

const GROUP: &str = "Image";

/// The keys `[Image]` accepts in 5.4.2 (`supportedImageKeys`); later ones are in
/// [`super::compat::NEW_KEYS`].
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
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
]);

/// I1: single-valued options, literal order (of 5.8.2).
const STRING_OPTIONS: &[(&str, &str)] = &[
    ("Arch", "--arch"),
    ("AuthFile", "--authfile"),
    ("CertDir", "--cert-dir"),
    ("Creds", "--creds"),
    ("DecryptionKey", "--decryption-key"),
    ("OS", "--os"),
    ("Policy", "--policy"),
    ("Variant", "--variant"),
    ("Retry", "--retry"),
    ("RetryDelay", "--retry-delay"),
];

/// I2: boolean options, literal order.
const BOOL_OPTIONS: &[(&str, &str)] = &[("AllTags", "--all-tags"), ("TLSVerify", "--tls-verify")];

/// Converts a `.image` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    let (service, mut cmd) = begin(q, ctx, &SUPPORTED_KEYS, &["image", "pull"])?;
    let u = &q.unit;
    let image = u
        .lookup_nonempty(GROUP, "Image")
        .ok_or_else(|| ConvertError::at_key(q, GROUP, "Image", "no Image key specified"))
        .or_collect(ctx, "")?;
    add_strings(&mut cmd, q, STRING_OPTIONS);
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    let name = u.lookup_nonempty(GROUP, "ImageTag").unwrap_or(image);
    Ok(finish(q, ctx, service, cmd, image, name))
}
