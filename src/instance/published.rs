//! The addresses a running unit actually publishes: the TCP sockets in the listening state
//! that processes of the unit's cgroup hold open, in the caller's network namespace (the
//! host's, where clients connect).
//!
//! This reads what is, not what the settings say should be: for a root podman container the
//! host port is held open by the container's `conmon` (podman hands the bound socket over to
//! reserve the port), for rootless podman by `rootlessport`, for a container with
//! `--network=host` or a plain service by the process itself; all of them are in the unit's
//! cgroup. Sockets of processes in another network namespace (the container's own
//! `0.0.0.0:5900`) are not published addresses and are left out.
//!
//! Processes are found through the cgroup file system (`cgroup.procs` below the unit's
//! `ControlGroup`, on the unified or the v1 `name=systemd` hierarchy), which gives their PIDs
//! as the caller sees them even when the manager runs in another PID namespace; when that is
//! not readable, the PIDs the manager reported (`GetUnitProcesses`) are used.

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The listening TCP addresses of the unit whose cgroup is `control_group`, sorted, as
/// `127.0.0.1:8080` / `[::1]:8080`. `manager_pids` are used when the cgroup cannot be read.
pub fn published(control_group: &str, manager_pids: &[u32]) -> Vec<String> {
    let mut pids = cgroup_pids(control_group);
    if pids.is_empty() {
        pids = manager_pids.iter().copied().collect();
    }
    let Ok(own_netns) = fs::read_link("/proc/self/ns/net") else {
        return Vec::new();
    };
    let mut inodes = BTreeSet::new();
    for pid in pids {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if fs::read_link(proc.join("ns/net")).ok().as_ref() != Some(&own_netns) {
            continue;
        }
        let Ok(fds) = fs::read_dir(proc.join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if let Ok(target) = fs::read_link(fd.path()) {
                if let Some(inode) = socket_inode(&target) {
                    inodes.insert(inode);
                }
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = BTreeSet::new();
    for (file, v6) in [("/proc/self/net/tcp", false), ("/proc/self/net/tcp6", true)] {
        let Ok(table) = fs::read_to_string(file) else {
            continue;
        };
        for (addr, inode) in listening(&table, v6) {
            if inodes.contains(&inode) {
                out.insert(addr);
            }
        }
    }
    // Sorted by address, then port.
    out.into_iter().map(|a| a.to_string()).collect()
}

/// `socket:[12345]` → 12345.
fn socket_inode(target: &Path) -> Option<u64> {
    target
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The LISTEN rows (state `0A`) of a `/proc/net/tcp` or `tcp6` table: address and inode.
fn listening(table: &str, v6: bool) -> Vec<(SocketAddr, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None;
            }
            let (ip, port) = f.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let inode = f.get(9)?.parse().ok()?;
            let ip = if v6 { parse_v6(ip)? } else { parse_v4(ip)? };
            Some((SocketAddr::new(ip, port), inode))
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address in host byte order.
fn parse_v4(hex: &str) -> Option<std::net::IpAddr> {
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(word.to_ne_bytes()).into())
}

fn parse_v6(hex: &str) -> Option<std::net::IpAddr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let ip = Ipv6Addr::from(bytes);
    Some(ip.to_ipv4_mapped().map_or(ip.into(), Into::into))
}

/// The PIDs in `control_group` and below, read from the cgroup file system; empty when it
/// cannot be found or read.
fn cgroup_pids(control_group: &str) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    let rel = control_group.trim_start_matches('/');
    if rel.is_empty() {
        return pids;
    }
    for root in hierarchies() {
        let dir = root.join(rel);
        if dir.is_dir() {
            collect(&dir, &mut pids, 0);
            if !pids.is_empty() {
                break;
            }
        }
    }
    pids
}

fn collect(dir: &Path, pids: &mut BTreeSet<u32>, depth: usize) {
    if depth > 32 {
        return;
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect(&e.path(), pids, depth + 1);
            }
        }
    }
}

/// Mount points of the hierarchies systemd tracks units in: cgroup2 and the v1
/// `name=systemd` one, from `/proc/self/mountinfo`.
fn hierarchies() -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or_default();
        let options = r.nth(1).unwrap_or_default();
        let systemd_v1 = fstype == "cgroup" && options.split(',').any(|o| o == "name=systemd");
        if fstype == "cgroup2" || systemd_v1 {
            // mountinfo escapes space, tab, newline and backslash as octal.
            out.push(PathBuf::from(unescape_octal(mount_point)));
        }
    }
    out
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tables_are_decoded() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4243 1\n";
        let rows = listening(v4, false);
        assert_eq!(rows, [("127.0.0.1:8080".parse().unwrap(), 4242)]);
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1\n";
        assert_eq!(listening(v6, true), [("[::1]:80".parse().unwrap(), 77)]);
        assert_eq!(socket_inode(Path::new("socket:[99]")), Some(99));
        assert_eq!(socket_inode(Path::new("pipe:[99]")), None);
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
    }

    #[test]
    fn a_listener_of_this_process_is_found_through_its_pid() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let found = published("", &[std::process::id()]);
        assert!(found.contains(&format!("127.0.0.1:{port}")), "{found:?}");
    }
}
