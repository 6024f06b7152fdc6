//! `.image` files, group `[Image]`, to `<name>-image.service` (quadlet-keys.md, section on `.image`).
//!
//! Not written yet: the conversion reports an error so that the rest of the generator works.

use super::common::not_converted_yet;
use super::{Context, ConvertError, Quadlet};
use crate::unit::UnitFile;

/// Converts a `.image` file into its service unit (see [`super::ConvertFn`]).
pub fn convert(q: &Quadlet, _ctx: &mut Context) -> Result<UnitFile, ConvertError> {
    Err(not_converted_yet(q))
}
