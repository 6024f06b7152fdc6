//! unitwright: systemd as the engine for containerised and templated services.
//!
//! The library holds all the logic; the `unitwright` CLI (`src/main.rs`) and the
//! `unitwright-generator` binary (`generator/`) are thin shells around it.
//!
//! * [`escape`]: systemd 252's unit-name escaping, byte for byte (`systemd-escape`).
//! * [`unit`](mod@unit): the unit-file parser, model and serializer, and value quoting per context.
//! * [`quadlet`]: the Quadlet generator (`.container`, `.volume`, ... to service units).
//! * `bus` (feature `bus`): the `org.freedesktop.systemd1` D-Bus client.
//! * `render` (feature `render`): tera templates with unit-file-context escaping filters.
//! * `instance` (feature `bus`): template instances with per-instance settings.
//! * `journal` (feature `cli`): reading the journal through libsystemd's sd-journal.
//!
//! The generator links this crate with `default-features = false`, so it carries
//! neither zbus, tokio nor tera.

pub mod escape;
pub mod lifecycle;
pub mod quadlet;
pub mod quadlet_env;
pub mod unit;

#[cfg(feature = "bus")]
pub mod bus;
#[cfg(feature = "bus")]
pub mod instance;
#[cfg(feature = "render")]
pub mod render;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod journal;
