//! Just enough of the D-Bus wire protocol to read one string property, for the ready check of
//! a sandbox's manager: a unix socket, `AUTH EXTERNAL`, `Hello`, one `Properties.Get`.
//!
//! The ready check polls every few milliseconds while a manager starts; a `busctl` subprocess
//! per poll cost a fork and exec each time. A D-Bus library is no option here: zbus (which the
//! `unitwright` crate uses) needs an async runtime, and its blocking API runs one of its own,
//! which panics inside a caller's runtime (`#[tokio::test]`, the `unitwright sandbox` command);
//! and the testkit's dependencies stay rustix and tempfile.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A D-Bus message being marshalled (little endian).
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `s` or `o`: length, bytes, NUL.
    fn string(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// A `g`: one byte of length, bytes, NUL.
    fn signature(&mut self, s: &str) {
        self.buf.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
}

/// A method call with `args` (all strings) as its body.
fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[&str],
) -> Vec<u8> {
    let mut body = Writer { buf: Vec::new() };
    for a in args {
        body.string(a);
    }
    let mut m = Writer {
        buf: vec![b'l', 1, 0, 1],
    };
    m.u32(u32::try_from(body.buf.len()).unwrap_or(u32::MAX));
    m.u32(serial);
    m.u32(0); // the header fields' length, set below
    let fields_start = m.buf.len();
    let field = |m: &mut Writer, code: u8, sig: &str, value: &str| {
        m.align(8);
        m.buf.push(code);
        m.signature(sig);
        if sig == "g" {
            m.signature(value);
        } else {
            m.string(value);
        }
    };
    field(&mut m, 1, "o", path);
    field(&mut m, 2, "s", interface);
    field(&mut m, 3, "s", member);
    field(&mut m, 6, "s", destination);
    if !args.is_empty() {
        field(&mut m, 8, "g", &"s".repeat(args.len()));
    }
    let fields_len = u32::try_from(m.buf.len() - fields_start).unwrap_or(u32::MAX);
    m.buf[12..16].copy_from_slice(&fields_len.to_le_bytes());
    m.align(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

/// A received message: its type, the serial it replies to, and its body.
struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    body: Vec<u8>,
    big_endian: bool,
}

fn read_u32(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn align(at: usize, n: usize) -> usize {
    at.div_ceil(n) * n
}

/// Reads one message from `stream`.
fn read_message(stream: &mut UnixStream) -> Option<Message> {
    let mut fixed = [0u8; 16];
    stream.read_exact(&mut fixed).ok()?;
    let big_endian = match fixed[0] {
        b'l' => false,
        b'B' => true,
        _ => return None,
    };
    let body_len = usize::try_from(read_u32(&fixed, 4, big_endian)?).ok()?;
    let fields_len = usize::try_from(read_u32(&fixed, 12, big_endian)?).ok()?;
    if body_len > 1 << 20 || fields_len > 1 << 20 {
        return None;
    }
    let mut rest = vec![0u8; align(16 + fields_len, 8) - 16 + body_len];
    stream.read_exact(&mut rest).ok()?;
    let mut all = fixed.to_vec();
    all.extend_from_slice(&rest);
    // The header fields: (code, variant) structs, each 8-aligned.
    let end = 16 + fields_len;
    let mut at = 16;
    let mut reply_serial = None;
    while at < end {
        at = align(at, 8);
        let code = *all.get(at)?;
        let sig_len = usize::from(*all.get(at + 1)?);
        let sig = all.get(at + 2..at + 2 + sig_len)?.to_vec();
        at += 3 + sig_len;
        match sig.as_slice() {
            b"u" => {
                at = align(at, 4);
                if code == 5 {
                    reply_serial = read_u32(&all, at, big_endian);
                }
                at += 4;
            }
            b"s" | b"o" => {
                at = align(at, 4);
                let len = usize::try_from(read_u32(&all, at, big_endian)?).ok()?;
                at += 4 + len + 1;
            }
            b"g" => at += usize::from(*all.get(at)?) + 2,
            _ => return None,
        }
    }
    let body_start = align(end, 8);
    Some(Message {
        kind: fixed[1],
        reply_serial,
        body: all.get(body_start..)?.to_vec(),
        big_endian,
    })
}

/// The string property `property` of `interface` at `path` of `destination`, on the bus at
/// `address` (`unix:path=...`); `None` if anything fails (no socket yet, no such name yet, an
/// error reply).
pub(crate) fn get_string_property(
    address: &str,
    destination: &str,
    path: &str,
    interface: &str,
    property: &str,
) -> Option<String> {
    let socket = address.strip_prefix("unix:path=")?;
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let uid = rustix::process::getuid().as_raw().to_string();
    let hex = uid.bytes().fold(String::new(), |mut h, b| {
        let _ = write!(h, "{b:02x}");
        h
    });
    stream
        .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
        .ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 512 {
        stream.read_exact(&mut byte).ok()?;
        line.push(byte[0]);
    }
    if !line.starts_with(b"OK ") {
        return None;
    }
    stream.write_all(b"BEGIN\r\n").ok()?;
    let hello = method_call(
        1,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "Hello",
        &[],
    );
    let get = method_call(
        2,
        destination,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        &[interface, property],
    );
    stream.write_all(&hello).ok()?;
    stream.write_all(&get).ok()?;
    // Skip the reply to Hello and any signal (NameAcquired) until the reply to Get.
    for _ in 0..16 {
        let m = read_message(&mut stream)?;
        if m.reply_serial != Some(2) {
            continue;
        }
        // 2: a method return with a variant: signature "s", then the string.
        if m.kind != 2 || m.body.get(..3)? != [1, b's', 0] {
            return None;
        }
        let len = usize::try_from(read_u32(&m.body, 4, m.big_endian)?).ok()?;
        return String::from_utf8(m.body.get(8..8 + len)?.to_vec()).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::get_string_property;

    const PATH: &str = "/org/freedesktop/systemd1";
    const MANAGER: &str = "org.freedesktop.systemd1.Manager";

    /// Against the real buses of both sandboxes (whose start already polled with it): a string
    /// property, and `None` for what does not exist.
    #[test]
    fn reads_a_string_property_from_real_managers() {
        let Some(user) = crate::UserManager::start() else {
            return;
        };
        let Some(system) = crate::SystemManager::start(&[]) else {
            return;
        };
        for address in [user.bus_address(), system.bus_address()] {
            let get = |dest: &str, path: &str, iface: &str, prop: &str| {
                get_string_property(&address, dest, path, iface, prop)
            };
            let dest = "org.freedesktop.systemd1";
            let version = get(dest, PATH, MANAGER, "Version").expect("Version");
            assert!(
                version.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{version}"
            );
            assert_eq!(
                get(dest, PATH, MANAGER, "SystemState").as_deref(),
                Some("running")
            );
            assert_eq!(get(dest, PATH, MANAGER, "NoSuchProperty"), None);
            assert_eq!(get(dest, PATH, MANAGER, "NNames"), None, "not a string");
            assert_eq!(get("org.example.None", PATH, MANAGER, "Version"), None);
        }
        assert_eq!(
            get_string_property(
                "unix:path=/nonexistent/bus",
                "a.b",
                PATH,
                MANAGER,
                "Version"
            ),
            None
        );
    }
}
