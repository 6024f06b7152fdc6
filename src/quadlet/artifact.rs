//! `.artifact` files, group `[Artifact]`, to `<name>-artifact.service` (podman 5.7.0, #26624):
//! a one-shot `podman artifact pull … <artifact>` that stays active, so that containers
//! mounting it (`Mount=type=artifact,source=x.artifact,destination=…`) find it pulled.
//!
//! The kind exists from podman 5.7.0 on ([`super::versions::ARTIFACT`]); for an older target
//! (or `PodmanVersion=off`) the file is refused with a hint naming the release.
//!
//! Options in podman 5.8.2's order: `AuthFile=`, `CertDir=`, `Creds=`, `DecryptionKey=`,
//! `Retry=`, `RetryDelay=` (5.8.2 takes them from Go map iteration, so its own order varies from
//! run to run), then `Quiet=`, `TLSVerify=` and the `PodmanArgs=` words. The resource name
//! containers use is the `Artifact=` value.

use super::common::{add_bools, add_strings, KeySet};
use super::podman::Service;
use super::resource::{begin, finish};
use super::{versions, Context, ConvertError, OrCollect, Quadlet};

const GROUP: &str = "Artifact";

/// The keys `[Artifact]` accepts (5.7.0).
pub const SUPPORTED_KEYS: KeySet = KeySet::new(&[
    "Artifact",
    "AuthFile",
    "CertDir",
    "ContainersConfModule",
    "Creds",
    "DecryptionKey",
    "GlobalArgs",
    "PodmanArgs",
    "Quiet",
    "Retry",
    "RetryDelay",
    "ServiceName",
    "TLSVerify",
]);

const STRING_OPTIONS: &[(&str, &str)] = &[
    ("AuthFile", "--authfile"),
    ("CertDir", "--cert-dir"),
    ("Creds", "--creds"),
    ("DecryptionKey", "--decryption-key"),
    ("Retry", "--retry"),
    ("RetryDelay", "--retry-delay"),
];

const BOOL_OPTIONS: &[(&str, &str)] = &[("Quiet", "--quiet"), ("TLSVerify", "--tls-verify")];

/// Converts a `.artifact` file into its service unit (see [`super::ConvertFn`]).
pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError> {
    if !ctx.writes(versions::ARTIFACT) {
        let mut e = ConvertError::new("unsupported file type .artifact");
        e.hint = Some(super::compat::needs_release_hint(
            ".artifact files",
            versions::ARTIFACT.since,
            ctx.podman_version,
        ));
        return Err(e);
    }
    let (service, mut cmd) = begin(q, ctx, &SUPPORTED_KEYS, &["artifact", "pull"])?;
    let artifact = q
        .unit
        .lookup_nonempty(GROUP, "Artifact")
        .ok_or_else(|| ConvertError::at_key(q, GROUP, "Artifact", "no Artifact key specified"))
        .or_collect(ctx, "")?;
    add_strings(&mut cmd, q, STRING_OPTIONS);
    add_bools(&mut cmd, q, BOOL_OPTIONS);
    Ok(finish(q, ctx, service, cmd, artifact, artifact))
}
