//! An instance settings file, as `instance exec` reads it from `%t/unitwright/instances/%n`
//! (`instance::Store::read`, then `instance::exec::prepare`): any bytes are either refused
//! with an error or give settings that survive a write and a read unchanged, and preparing
//! the command never panics, whatever the file holds (keys, values, NUL bytes, huge numbers).
#![no_main]

use std::ffi::{OsStr, OsString};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unitwright::instance::exec::{prepare, ExecRequest};
use unitwright::instance::Store;

const UNIT: &str = "console@fuzz.service";

/// One private directory for the whole run: `$UNITWRIGHT_FUZZ_DIR` when set (fuzz/run-all.sh
/// makes one and removes it afterwards: libFuzzer ends the process with exit(), so nothing of
/// ours is dropped), else a new one on tmpfs when there is one, left behind.
fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("UNITWRIGHT_FUZZ_DIR") {
            return d.into();
        }
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        tempfile::Builder::new()
            .prefix("unitwright-fuzz-")
            .tempdir_in(base)
            .expect("a temporary directory")
            .keep()
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let store = Store::new(dir);
    std::fs::write(dir.join(UNIT), data).expect("writing the settings file");
    let Ok(Some(settings)) = store.read(UNIT) else {
        return;
    };
    let command: Vec<OsString> = [
        "podman",
        "run",
        "--name=${UNITWRIGHT_CONTAINER_NAME}",
        "$PORT",
        "${PASSWORD}",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let dirs = [dir.to_path_buf()];
    let _ = prepare(&ExecRequest {
        settings_dirs: &dirs,
        unit: OsStr::new(UNIT),
        required: &[],
        command: &command,
    });
    // What was read can be written and read back unchanged (unless the writer refuses it).
    // (The file names its own unit, which may differ from the file's name.)
    if store.write(&settings).is_ok() {
        let again = store
            .read(&settings.unit)
            .expect("re-reading")
            .expect("present");
        assert_eq!(again, settings);
        if settings.unit != UNIT {
            let _ = store.remove(&settings.unit);
        }
    }
});
