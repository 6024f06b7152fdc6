//! The Quadlet generator: Quadlet files to systemd service units.

/// Entry point of the `unitwright-generator` binary.
pub fn generator_main() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
