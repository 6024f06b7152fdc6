//! What `status UNIT...` shows: the text of `systemctl status` and its `--json` form.
//!
//! Everything comes from the manager over D-Bus (unit and type properties, `GetUnitProcesses`)
//! and from the journal ([`crate::journal`]), so it works the same for `--user` and
//! `--system`. The JSON numbers are the bus-level ones of [`crate::bus::Resources`].

use serde_json::{json, Value};

use super::fmt::{self, paint, Colour};
use crate::bus::{format_cpus, UnitProcess, UnitState};
use crate::journal::Entry;

/// One unit as `status` shows it.
#[derive(Debug, Clone)]
pub struct UnitView {
    /// The unit's properties.
    pub state: UnitState,
    /// The processes of its cgroup (empty when it has none or they could not be read).
    pub processes: Vec<UnitProcess>,
    /// Its last journal lines, oldest first (`None` when the journal could not be read).
    pub journal: Option<Vec<Entry>>,
    /// Why the journal could not be read, if it could not.
    pub journal_error: Option<String>,
}

fn nonzero(t: u64) -> Option<u64> {
    (t != 0).then_some(t)
}

/// When the unit entered its current active state (systemctl's "since").
pub fn since(s: &UnitState) -> Option<u64> {
    let t = match s.active_state.as_str() {
        "active" | "reloading" => s.active_enter_timestamp,
        "activating" => s.inactive_exit_timestamp,
        "inactive" | "failed" => s.inactive_enter_timestamp,
        _ => s.state_change_timestamp,
    };
    nonzero(t).or_else(|| nonzero(s.state_change_timestamp))
}

/// The command line of the main process: from its cgroup's process list, else the first
/// configured `ExecStart=`.
pub fn main_command(v: &UnitView) -> Option<String> {
    let svc = v.state.service.as_ref()?;
    if svc.main_pid != 0 {
        if let Some(p) = v.processes.iter().find(|p| p.pid == svc.main_pid) {
            if !p.command.is_empty() {
                return Some(p.command.clone());
            }
        }
    }
    (svc.main_pid != 0)
        .then(|| svc.exec_start.first().map(|argv| argv.join(" ")))
        .flatten()
}

/// The `status --json` object of one unit (docs/json.md, "status").
pub fn json(v: &UnitView) -> Value {
    let s = &v.state;
    let service = s.service.as_ref();
    let r = &s.resources;
    json!({
        "unit": s.name,
        "description": s.description,
        "load_state": s.load_state,
        "active_state": s.active_state,
        "sub_state": s.sub_state,
        "unit_file_state": s.unit_file_state,
        "unit_file_preset": s.unit_file_preset,
        "fragment_path": s.fragment_path,
        "source_path": (!s.source_path.is_empty()).then_some(s.source_path.as_str()),
        "drop_in_paths": s.drop_in_paths,
        "condition_result": s.condition_result,
        "condition_failed": condition_failed(s),
        "active_enter_timestamp_us": s.active_enter_timestamp,
        "since_us": since(s),
        "since": since(s).map(fmt::rfc3339),
        "invocation_id": (!s.invocation_id.is_empty()).then_some(s.invocation_id.as_str()),
        "main_pid": service.map(|s| s.main_pid),
        "main_command": main_command(v),
        "control_pid": service.map(|s| s.control_pid),
        "service_type": service.map(|s| s.service_type.as_str()),
        "service_result": service.map(|s| s.result.as_str()),
        "exec_main_code": service.map(|s| s.exec_main_code),
        "exec_main_status": service.map(|s| s.exec_main_status),
        "restarts": service.map(|s| s.n_restarts),
        "control_group": (!r.control_group.is_empty()).then_some(r.control_group.as_str()),
        "memory_current_bytes": r.memory_current_bytes,
        "cpu_usage_nsec": r.cpu_usage_nsec,
        "tasks_current": r.tasks_current,
        "tasks_max": r.tasks_max,
        "effective_cpus": r.effective_cpus,
        "processes": v.processes.iter().map(|p| json!({
            "pid": p.pid,
            "command": p.command,
            "cgroup": p.cgroup,
        })).collect::<Vec<_>>(),
        "journal": v.journal.as_ref().map(|lines| lines.iter().map(Entry::to_json).collect::<Vec<_>>()),
    })
}

/// Whether the last start was skipped by a false `Condition*=`: only when the conditions
/// were checked at all (`ConditionTimestamp` set). A unit that never started has
/// `ConditionResult=no` and no timestamp, and is not reported as skipped.
pub fn condition_failed(s: &UnitState) -> bool {
    s.condition_timestamp != 0 && s.condition_result == Some(false)
}

/// Prints one unit like `systemctl status` (colour when `colour`).
pub fn print(v: &UnitView, colour: bool, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let s = &v.state;
    let (dot, dot_colour) = match s.active_state.as_str() {
        "active" | "reloading" => ("●", Colour::Green),
        "failed" => ("×", Colour::Red),
        "activating" | "deactivating" => ("●", Colour::Yellow),
        _ => ("○", Colour::Bold),
    };
    let title = if s.description.is_empty() || s.description == s.name {
        s.name.clone()
    } else {
        format!("{} - {}", s.name, s.description)
    };
    writeln!(out, "{} {title}", paint(colour, dot_colour, dot))?;
    let mut file = Vec::new();
    if !s.fragment_path.is_empty() {
        file.push(s.fragment_path.clone());
    }
    if !s.unit_file_state.is_empty() {
        file.push(s.unit_file_state.clone());
    }
    if !s.unit_file_preset.is_empty()
        && matches!(s.unit_file_state.as_str(), "enabled" | "disabled")
    {
        file.push(format!("preset: {}", s.unit_file_preset));
    }
    let load = match s.load_state.as_str() {
        "loaded" => s.load_state.clone(),
        other => paint(colour, Colour::Red, other),
    };
    if file.is_empty() {
        writeln!(out, "     Loaded: {load}")?;
    } else {
        writeln!(out, "     Loaded: {load} ({})", file.join("; "))?;
    }
    if !s.source_path.is_empty() {
        writeln!(out, "     Source: {}", s.source_path)?;
    }
    print_drop_ins(&s.drop_in_paths, out)?;
    let state = format!("{} ({})", s.active_state, s.sub_state);
    let state = match s.active_state.as_str() {
        "active" | "reloading" => paint(colour, Colour::Green, &state),
        "failed" => paint(colour, Colour::Red, &state),
        _ => state,
    };
    match since(s) {
        Some(t) => writeln!(
            out,
            "     Active: {state} since {}; {}",
            fmt::timestamp(t),
            fmt::ago(t)
        )?,
        None => writeln!(out, "     Active: {state}")?,
    }
    if condition_failed(s) {
        writeln!(
            out,
            "  Condition: start condition failed at {}; {}",
            fmt::timestamp(s.condition_timestamp),
            fmt::ago(s.condition_timestamp)
        )?;
    }
    if let Some(svc) = &s.service {
        if svc.main_pid != 0 {
            // Like systemctl: the program's name, not its arguments.
            let comm = main_command(v)
                .and_then(|c| {
                    let first = c.split_whitespace().next()?.to_owned();
                    Some(format!(" ({})", first.rsplit('/').next().unwrap_or(&first)))
                })
                .unwrap_or_default();
            writeln!(out, "   Main PID: {}{comm}", svc.main_pid)?;
        } else if let Some(exit) = svc.main_process_exit() {
            writeln!(out, "   Main PID: {} ({exit})", svc.exec_main_pid)?;
        }
        if svc.control_pid != 0 {
            writeln!(out, "    Control: {}", svc.control_pid)?;
        }
        if !svc.result.is_empty() && svc.result != "success" {
            writeln!(
                out,
                "     Result: {}",
                paint(colour, Colour::Red, &svc.result)
            )?;
        }
    }
    let r = &s.resources;
    if let Some(tasks) = r.tasks_current {
        match r.tasks_max {
            Some(max) => writeln!(out, "      Tasks: {tasks} (limit: {max})")?,
            None => writeln!(out, "      Tasks: {tasks}")?,
        }
    }
    if let Some(m) = r.memory_current_bytes {
        writeln!(out, "     Memory: {}", fmt::bytes(m))?;
    }
    if let Some(cpu) = r.cpu_usage_nsec {
        writeln!(out, "        CPU: {}", fmt::timespan_ns(cpu))?;
    }
    if let Some(cpus) = &r.effective_cpus {
        writeln!(out, "       CPUs: {}", format_cpus(cpus))?;
    }
    if !r.control_group.is_empty() && (!v.processes.is_empty() || s.active_state != "inactive") {
        writeln!(out, "     CGroup: {}", r.control_group)?;
        print_processes(&r.control_group, &v.processes, out)?;
    }
    if let Some(lines) = &v.journal {
        if !lines.is_empty() {
            writeln!(out)?;
            for e in lines {
                writeln!(out, "{}", e.short_line(colour))?;
            }
        }
    } else if let Some(why) = &v.journal_error {
        writeln!(out)?;
        writeln!(out, "(journal not available: {why})")?;
    }
    Ok(())
}

fn print_drop_ins(paths: &[String], out: &mut impl std::io::Write) -> std::io::Result<()> {
    // Grouped by directory, as systemctl does.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for p in paths {
        let (dir, file) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
        match groups.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, files)) => files.push(file),
            None => groups.push((dir, vec![file])),
        }
    }
    for (i, (dir, files)) in groups.iter().enumerate() {
        let label = if i == 0 {
            "    Drop-In:"
        } else {
            "            "
        };
        writeln!(out, "{label} {dir}")?;
        writeln!(out, "             └─{}", files.join(", "))?;
    }
    Ok(())
}

/// The processes, grouped by sub-cgroup below the unit's, as a tree like systemctl's.
fn print_processes(
    root: &str,
    procs: &[UnitProcess],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut groups: Vec<(&str, Vec<&UnitProcess>)> = Vec::new();
    for p in procs {
        let sub = p.cgroup.strip_prefix(root).unwrap_or("");
        match groups.iter_mut().find(|(g, _)| *g == sub) {
            Some((_, v)) => v.push(p),
            None => groups.push((sub, vec![p])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(b.0));
    let mut rows: Vec<(usize, String)> = Vec::new();
    for (sub, ps) in &groups {
        let depth = usize::from(!sub.is_empty());
        if !sub.is_empty() {
            rows.push((0, sub.trim_start_matches('/').to_owned()));
        }
        for p in ps {
            rows.push((depth, format!("{} {}", p.pid, p.command)));
        }
    }
    // A row is the last of its siblings when the next row at its depth or above is above it
    // (or there is none); below a last sub-cgroup the rail stops, as in systemctl's tree.
    let mut parent_last = false;
    for (i, (depth, text)) in rows.iter().enumerate() {
        let last = rows[i + 1..]
            .iter()
            .find(|(d, _)| d <= depth)
            .map_or(true, |(d, _)| d < depth);
        let branch = if last { "└─" } else { "├─" };
        let indent = match (*depth, parent_last) {
            (0, _) => "",
            (_, false) => "│ ",
            (_, true) => "  ",
        };
        if *depth == 0 {
            parent_last = last;
        }
        writeln!(out, "             {indent}{branch}{text}")?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn process(cgroup: &str, pid: u32, command: &str) -> UnitProcess {
        UnitProcess {
            cgroup: cgroup.to_owned(),
            pid,
            command: command.to_owned(),
        }
    }

    fn tree(procs: &[UnitProcess]) -> String {
        let mut out = Vec::new();
        print_processes("/app.slice/web.service", procs, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_process_tree_draws_last_children_and_rails_as_systemctl_does() {
        // podman's --cgroups=split: the container's payload and conmon in sub-cgroups.
        let procs = [
            process("/app.slice/web.service/runtime", 230, "/usr/bin/conmon"),
            process("/app.slice/web.service/libpod-payload-ab", 240, "httpd -f"),
        ];
        assert_eq!(
            tree(&procs),
            "             ├─libpod-payload-ab\n\
             \x20            │ └─240 httpd -f\n\
             \x20            └─runtime\n\
             \x20              └─230 /usr/bin/conmon\n"
        );
        // Processes of the unit's own cgroup first, then a sub-cgroup with two.
        let procs = [
            process("/app.slice/web.service", 10, "sh"),
            process("/app.slice/web.service/sub", 11, "a"),
            process("/app.slice/web.service/sub", 12, "b"),
        ];
        assert_eq!(
            tree(&procs),
            "             ├─10 sh\n\
             \x20            └─sub\n\
             \x20              ├─11 a\n\
             \x20              └─12 b\n"
        );
        assert_eq!(
            tree(&[process("/app.slice/web.service", 10, "sh")]),
            "             └─10 sh\n"
        );
    }
}
