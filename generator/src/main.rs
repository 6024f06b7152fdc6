//! `unitwright-generator`: the systemd generator binary. All logic lives in
//! [`unitwright::quadlet`]; this crate only exists so that the generator links
//! neither zbus, tokio nor tera.

fn main() -> std::process::ExitCode {
    unitwright::quadlet::generator_main()
}
