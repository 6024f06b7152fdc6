//! systemd unit files: parser, model, serializer, drop-ins, and quoting per context.
//!
//! * [`parse`]: the parser (Quadlet 5.4.2's `UnitFile.Parse` with systemd's continuation rule);
//!   errors name the file and physical line.
//! * [`file`](mod@file): the model ([`UnitFile`]), Quadlet's look-ups and the byte-exact serializer.
//! * [`split`]: word splitting, a port of systemd's `extract_first_word()`.
//! * [`dropin`]: drop-in directory names and precedence.
//! * [`quote`]: quoting of values per unit-file context.
//! * [`value`]: systemd's time spans and sizes.

pub mod dropin;
pub mod file;
pub mod parse;
pub mod quote;
pub mod split;
pub mod value;

pub use file::{parse_bool, Group, Line, Origin, UnitFile};
pub use parse::{parse_bytes, parse_file, parse_str, ParseError};
