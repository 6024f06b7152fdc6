//! Hand-written zbus proxy for the parts of `org.freedesktop.systemd1.Manager` we use.
//!
//! Signatures follow org.freedesktop.systemd1(5) of systemd 252. Only what the client needs is
//! declared; properties are never read through zbus's property cache (systemd emits
//! PropertiesChanged only to subscribers, so a cache could go stale): unit and service
//! properties are read with one `org.freedesktop.DBus.Properties.GetAll` call instead
//! (see [`super::unit`]).

use std::collections::HashMap;

use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// The well-known bus name of the service manager.
pub const SYSTEMD1: &str = "org.freedesktop.systemd1";
/// Unit objects live under this path.
pub const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// One row of `ListUnitsByPatterns`: name, description, load state, active state, sub state,
/// followed unit, unit path, job id, job type, job path.
pub type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// One change reported by `EnableUnitFiles`/`DisableUnitFiles`: type (`symlink`, `unlink`),
/// file name, destination.
pub type FileChange = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
pub trait Manager {
    /// `StartUnit(s name, s mode) → o job`.
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `StopUnit(s name, s mode) → o job`.
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `RestartUnit(s name, s mode) → o job`.
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `TryRestartUnit(s name, s mode) → o job`.
    fn try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `ReloadOrRestartUnit(s name, s mode) → o job`.
    fn reload_or_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `ReloadUnit(s name, s mode) → o job`.
    fn reload_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// `KillUnit(s name, s whom, i signal)`.
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    /// `SetUnitProperties(s name, b runtime, a(sv) properties)`.
    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, &zbus::zvariant::Value<'_>)],
    ) -> zbus::Result<()>;
    /// `ResetFailedUnit(s name)`.
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    /// `ResetFailed()`.
    fn reset_failed(&self) -> zbus::Result<()>;
    /// `GetUnitProcesses(s name) → a(sus)`: cgroup, PID, command line.
    fn get_unit_processes(&self, name: &str) -> zbus::Result<Vec<(String, u32, String)>>;
    /// `LoadUnit(s name) → o unit`.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    /// `ListUnitsByPatterns(as states, as patterns) → a(ssssssouso)`.
    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<UnitRow>>;
    /// `ListUnitFilesByPatterns(as states, as patterns) → a(ss)`: path, unit file state.
    fn list_unit_files_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<(String, String)>>;
    /// `EnableUnitFiles(as files, b runtime, b force) → (b carries_install_info, a(sss))`.
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<FileChange>)>;
    /// `DisableUnitFiles(as files, b runtime) → a(sss)`.
    fn disable_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<FileChange>>;
    /// `MaskUnitFiles(as files, b runtime, b force) → a(sss)`.
    fn mask_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<Vec<FileChange>>;
    /// `UnmaskUnitFiles(as files, b runtime) → a(sss)`.
    fn unmask_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<FileChange>>;
    /// `GetUnitFileState(s file) → s`.
    fn get_unit_file_state(&self, file: &str) -> zbus::Result<String>;
    /// `ListJobs() → a(usssoo)`: id, unit, type, state, job path, unit path.
    fn list_jobs(
        &self,
    ) -> zbus::Result<
        Vec<(
            u32,
            String,
            String,
            String,
            OwnedObjectPath,
            OwnedObjectPath,
        )>,
    >;
    /// `Reload()`: the reply is sent after the reload has finished.
    fn reload(&self) -> zbus::Result<()>;
    /// `Subscribe()`: ask for all signals (PropertiesChanged, Reloading, UnitNew, ...).
    fn subscribe(&self) -> zbus::Result<()>;

    /// `JobRemoved(u id, o job, s unit, s result)`.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
    /// `UnitNew(s id, o unit)`.
    #[zbus(signal)]
    fn unit_new(&self, id: String, unit: OwnedObjectPath) -> zbus::Result<()>;
    /// `UnitRemoved(s id, o unit)`.
    #[zbus(signal)]
    fn unit_removed(&self, id: String, unit: OwnedObjectPath) -> zbus::Result<()>;
}

/// `org.freedesktop.DBus.Properties` on a manager object (unit or manager), for explicit,
/// uncached reads.
#[zbus::proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
pub trait Properties {
    /// `Get(s interface, s name) → v`.
    fn get(&self, interface: &str, name: &str) -> zbus::Result<OwnedValue>;
    /// `GetAll(s interface) → a{sv}`.
    fn get_all(&self, interface: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
}
