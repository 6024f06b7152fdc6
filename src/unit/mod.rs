//! systemd unit files: parser, model, serializer, drop-ins, and quoting per context.

pub mod quote;
