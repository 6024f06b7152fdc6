//! `.container` files, group `[Container]`, to `<name>.service` (Quadlet 5.4.2 `ConvertContainer`,
//! quadlet-keys.md §4).

use super::common::not_converted_yet;
use super::{Context, ConvertError, Quadlet};
use crate::unit::UnitFile;

/// The container name: `ContainerName=` if non-empty, else `systemd-%N`, or `systemd-%p_%i` for
/// a file name with `@` (templates and instances).
pub fn container_name(q: &Quadlet) -> String {
    if let Some(n) = q.unit.lookup_nonempty("Container", "ContainerName") {
        return n.to_owned();
    }
    if q.name.contains('@') {
        "systemd-%p_%i".to_owned()
    } else {
        "systemd-%N".to_owned()
    }
}

/// Converts a `.container` file into its service unit (see [`super::ConvertFn`]).
pub fn convert(q: &Quadlet, _ctx: &mut Context) -> Result<UnitFile, ConvertError> {
    Err(not_converted_yet(q))
}
