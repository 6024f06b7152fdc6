//! systemd 252's unit-name rules, byte for byte: escaping (`systemd-escape`), validity, template
//! instances, mangling, and names derived from paths (with the hashing of over-long names).
//!
//! Every function here mirrors a function of systemd 252's `src/basic/unit-name.c` (named in its
//! doc comment) and is checked against the real `/usr/bin/systemd-escape` in
//! `tests/escape_systemd.rs`. Inputs are bytes: systemd never checks UTF-8 here, and escaping
//! works byte by byte. Escaped output is always ASCII, so it is returned as `str`.
//!
//! Where systemd works on C strings, a NUL byte ends the string; these functions take byte
//! slices, so a NUL is just another byte that gets escaped (`\x00`), while [`unescape`] truncates
//! its result at a decoded NUL exactly like systemd does.
//!
//! The most useful entry points for the rest of unitwright:
//! * [`escape_instance`]: `systemd-escape --template=T ID`, the instance name for any id;
//! * [`unescape_instance`]: the id back from such an instance name;
//! * [`from_path`]: the name a `.mount`/`.swap`/`.automount` unit must have for its path.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

pub mod path;
mod siphash;

pub use siphash::siphash24;

/// Longest valid unit name in bytes (systemd's `UNIT_NAME_MAX` is 256 including the NUL).
pub const UNIT_NAME_MAX_LEN: usize = 255;

/// Key of the SipHash used by [`hash_long`] (`LONG_UNIT_NAME_HASH_KEY`).
const LONG_NAME_HASH_KEY: [u8; 16] = [
    0xec, 0xf2, 0x37, 0xfb, 0x58, 0x32, 0x4a, 0x32, 0x84, 0x9f, 0x06, 0x9b, 0x0d, 0x21, 0xeb, 0x9a,
];
/// Length of the hex hash in a hashed name.
const HASH_HEX_LEN: usize = 16;

/// Errors of the unit-name functions. Each says what was wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input was empty where a non-empty string is needed.
    #[error("the string is empty")]
    Empty,
    /// A `\` not followed by `x` and two hex digits.
    #[error(
        "invalid escape sequence at byte {offset}: `\\` must be followed by `x` and two hex digits"
    )]
    BadEscape {
        /// Byte offset of the `\`.
        offset: usize,
    },
    /// A path that cannot be escaped reversibly.
    #[error("not a valid normalized path (no `..`, no component over 255 bytes, shorter than 4096 bytes)")]
    PathNotNormalized,
    /// An escaped path that does not decode to a normalized absolute path.
    #[error("does not decode to a normalized absolute path")]
    NotAnEscapedPath,
    /// A unit name that is not valid for what the function needs.
    #[error("{name:?} is not a valid {expected} unit name")]
    InvalidName {
        /// The offending name (lossily decoded).
        name: String,
        /// What kind of name was needed.
        expected: Kinds,
    },
    /// An instance string outside `[A-Za-z0-9:_.\\@-]`, or empty.
    #[error("{instance:?} is not a valid instance: it must be non-empty and use only A-Z a-z 0-9 : - _ . \\ @")]
    InvalidInstance {
        /// The offending instance (lossily decoded).
        instance: String,
    },
    /// A unit prefix outside `[A-Za-z0-9:_.\\-]`, or empty.
    #[error("{prefix:?} is not a valid unit prefix: it must be non-empty and use only A-Z a-z 0-9 : - _ . \\")]
    InvalidPrefix {
        /// The offending prefix (lossily decoded).
        prefix: String,
    },
    /// A suffix that is not `.` followed by a unit type.
    #[error("{suffix:?} is not a unit suffix such as \".service\" or \".mount\"")]
    InvalidSuffix {
        /// The offending suffix (lossily decoded).
        suffix: String,
    },
    /// The resulting name would exceed 255 bytes.
    #[error("the unit name would be {len} bytes long, at most 255 are allowed")]
    TooLong {
        /// Length the name would have had.
        len: usize,
    },
    /// The name is a hashed long name, whose path cannot be recovered.
    #[error("{name:?} is a hashed long unit name; its path cannot be recovered from it")]
    Hashed {
        /// The hashed name.
        name: String,
    },
    /// The unit name has no instance (plain or template).
    #[error("unit {name} has no instance")]
    MissingInstance {
        /// The name.
        name: String,
    },
    /// The instance's template is not the expected one.
    #[error("unit {name} is an instance of {found}, not of {expected}")]
    TemplateMismatch {
        /// The instance name.
        name: String,
        /// Its template.
        found: String,
        /// The template that was expected.
        expected: String,
    },
}

/// Result of the functions in this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Unit types, compared exactly and case-sensitively (`unit_type_from_string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitType {
    /// `.service`
    Service,
    /// `.mount`
    Mount,
    /// `.swap`
    Swap,
    /// `.socket`
    Socket,
    /// `.target`
    Target,
    /// `.device`
    Device,
    /// `.automount`
    Automount,
    /// `.timer`
    Timer,
    /// `.path`
    Path,
    /// `.slice`
    Slice,
    /// `.scope`
    Scope,
}

impl UnitType {
    /// All unit types, in systemd's order.
    pub const ALL: [UnitType; 11] = [
        UnitType::Service,
        UnitType::Mount,
        UnitType::Swap,
        UnitType::Socket,
        UnitType::Target,
        UnitType::Device,
        UnitType::Automount,
        UnitType::Timer,
        UnitType::Path,
        UnitType::Slice,
        UnitType::Scope,
    ];

    /// The type's name without the dot, e.g. `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Service => "service",
            UnitType::Mount => "mount",
            UnitType::Swap => "swap",
            UnitType::Socket => "socket",
            UnitType::Target => "target",
            UnitType::Device => "device",
            UnitType::Automount => "automount",
            UnitType::Timer => "timer",
            UnitType::Path => "path",
            UnitType::Slice => "slice",
            UnitType::Scope => "scope",
        }
    }

    /// Mirrors `unit_type_from_string`: the type named exactly `s` (no dot).
    pub fn from_bytes(s: &[u8]) -> Option<UnitType> {
        UnitType::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == s)
    }
}

impl fmt::Display for UnitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a valid unit name is (`UNIT_NAME_PLAIN`, `UNIT_NAME_TEMPLATE`, `UNIT_NAME_INSTANCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `foo.service`: no `@`.
    Plain,
    /// `foo@.service`: an `@` right before the suffix.
    Template,
    /// `foo@bar.service`: an `@` and a non-empty instance.
    Instance,
}

/// A set of [`Kind`]s, the `flags` of `unit_name_is_valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kinds(u8);

impl Kinds {
    /// `UNIT_NAME_PLAIN`
    pub const PLAIN: Kinds = Kinds(1);
    /// `UNIT_NAME_TEMPLATE`
    pub const TEMPLATE: Kinds = Kinds(2);
    /// `UNIT_NAME_INSTANCE`
    pub const INSTANCE: Kinds = Kinds(4);
    /// `UNIT_NAME_ANY`
    pub const ANY: Kinds = Kinds(7);

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: Kind) -> bool {
        let bit = match kind {
            Kind::Plain => Kinds::PLAIN,
            Kind::Template => Kinds::TEMPLATE,
            Kind::Instance => Kinds::INSTANCE,
        };
        self.0 & bit.0 != 0
    }
}

impl std::ops::BitOr for Kinds {
    type Output = Kinds;
    fn bitor(self, rhs: Kinds) -> Kinds {
        Kinds(self.0 | rhs.0)
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (Kinds::PLAIN, "plain"),
            (Kinds::TEMPLATE, "template"),
            (Kinds::INSTANCE, "instance"),
        ]
        .into_iter()
        .filter(|(k, _)| self.0 & k.0 != 0)
        .map(|(_, n)| n)
        .collect();
        f.write_str(&names.join(" or "))
    }
}

/// `VALID_CHARS`: `[0-9A-Za-z:_.\\-]`.
pub fn is_valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\')
}

/// `VALID_CHARS_WITH_AT`: [`is_valid_char`] or `@`.
pub fn is_valid_char_with_at(b: u8) -> bool {
    b == b'@' || is_valid_char(b)
}

/// Mirrors `unit_name_is_valid(n, ANY)` and tells which kind of name `n` is.
///
/// A name is valid if it is 1 to 255 bytes, has a last `.` not at the start followed by a known
/// type, only `@` + `VALID_CHARS` before it, and does not start with `@`.
pub fn classify<S: AsRef<[u8]> + ?Sized>(n: &S) -> Option<Kind> {
    let n = n.as_ref();
    if n.is_empty() || n.len() > UNIT_NAME_MAX_LEN {
        return None;
    }
    let e = n.iter().rposition(|&b| b == b'.')?;
    if e == 0 || UnitType::from_bytes(&n[e + 1..]).is_none() {
        return None;
    }
    let stem = &n[..e];
    if !stem.iter().all(|&b| is_valid_char_with_at(b)) {
        return None;
    }
    match stem.iter().position(|&b| b == b'@') {
        None => Some(Kind::Plain),
        Some(0) => None,
        Some(at) if at + 1 == e => Some(Kind::Template),
        Some(_) => Some(Kind::Instance),
    }
}

/// Mirrors `unit_name_is_valid(n, flags)`.
pub fn is_valid<S: AsRef<[u8]> + ?Sized>(n: &S, kinds: Kinds) -> bool {
    classify(n).is_some_and(|k| kinds.contains(k))
}

/// Mirrors `unit_prefix_is_valid`: non-empty, only `VALID_CHARS` (so no `@`).
pub fn is_valid_prefix<S: AsRef<[u8]> + ?Sized>(p: &S) -> bool {
    let p = p.as_ref();
    !p.is_empty() && p.iter().all(|&b| is_valid_char(b))
}

/// Mirrors `unit_instance_is_valid`: non-empty, only `@` + `VALID_CHARS`.
pub fn is_valid_instance<S: AsRef<[u8]> + ?Sized>(i: &S) -> bool {
    let i = i.as_ref();
    !i.is_empty() && i.iter().all(|&b| is_valid_char_with_at(b))
}

/// Mirrors `unit_suffix_is_valid`: `.` followed by a unit type.
pub fn is_valid_suffix<S: AsRef<[u8]> + ?Sized>(s: &S) -> bool {
    s.as_ref()
        .strip_prefix(b".")
        .is_some_and(|t| UnitType::from_bytes(t).is_some())
}

/// Mirrors `unit_name_to_type`: the type of a valid name.
pub fn unit_type<S: AsRef<[u8]> + ?Sized>(n: &S) -> Option<UnitType> {
    let n = n.as_ref();
    classify(n)?;
    let e = n.iter().rposition(|&b| b == b'.')?;
    UnitType::from_bytes(&n[e + 1..])
}

fn push_hex_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// The escaped form of `f` as an owned string if it differs from `f`, else `f` itself (it is
/// then ASCII, since every byte survived unchanged).
fn finish(f: &[u8], out: String) -> Cow<'_, str> {
    if out.as_bytes() == f {
        // Unchanged output is ASCII, so `f` is valid UTF-8.
        match std::str::from_utf8(f) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(out),
        }
    } else {
        Cow::Owned(out)
    }
}

/// Mirrors `unit_name_escape`: makes any bytes usable in a unit name. Never fails.
///
/// `/` becomes `-`; `-`, `\` and every byte outside `[0-9A-Za-z:_.]` become `\xNN` (lower-case
/// hex); a `.` in first position becomes `\x2e`. Example: `ab+-c.a/bc@foo.service` gives
/// `ab\x2b\x2dc.a-bc\x40foo.service`.
pub fn escape<S: AsRef<[u8]> + ?Sized>(f: &S) -> Cow<'_, str> {
    let f = f.as_ref();
    let mut out = String::with_capacity(f.len());
    for (i, &b) in f.iter().enumerate() {
        if i == 0 && b == b'.' {
            push_hex_escape(&mut out, b);
        } else if b == b'/' {
            out.push('-');
        } else if b == b'-' || b == b'\\' || !is_valid_char(b) {
            push_hex_escape(&mut out, b);
        } else {
            out.push(char::from(b));
        }
    }
    finish(f, out)
}

fn unhex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Mirrors `unit_name_unescape`: `-` becomes `/`, `\xNN` (lower-case `x`, hex digits of either
/// case) becomes byte NN, other bytes are kept.
///
/// Like systemd, whose result is a C string, the result ends at the first decoded NUL:
/// `a\x00b` gives `a`. The whole input is still checked for bad escapes.
pub fn unescape<S: AsRef<[u8]> + ?Sized>(f: &S) -> Result<Cow<'_, [u8]>> {
    let f = f.as_ref();
    if !f.iter().any(|&b| b == b'-' || b == b'\\' || b == 0) {
        return Ok(Cow::Borrowed(f));
    }
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        match f[i] {
            b'-' => out.push(b'/'),
            b'\\' => {
                let bad = Error::BadEscape { offset: i };
                if f.get(i + 1) != Some(&b'x') {
                    return Err(bad);
                }
                let hi = f.get(i + 2).copied().and_then(unhex).ok_or(bad.clone())?;
                let lo = f.get(i + 3).copied().and_then(unhex).ok_or(bad)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => out.push(b),
        }
        i += 1;
    }
    if let Some(nul) = out.iter().position(|&b| b == 0) {
        out.truncate(nul);
    }
    Ok(Cow::Owned(out))
}

/// Mirrors `unit_name_path_escape`: [`path::simplify`]s `f`; the root (or empty) path gives `-`;
/// a path that is not normalized afterwards (`..`, a component over 255 bytes, `.`) is refused;
/// otherwise leading and trailing `/` are dropped and the rest is [`escape`]d.
///
/// Relative paths are accepted (`foo/bar/` gives `foo-bar`), as in systemd.
pub fn escape_path<S: AsRef<[u8]> + ?Sized>(f: &S) -> Result<Cow<'_, str>> {
    let f = f.as_ref();
    let simplified = path::simplify(f);
    if path::empty_or_root(&simplified) {
        return Ok(Cow::Borrowed("-"));
    }
    if !path::is_normalized(&simplified) {
        return Err(Error::PathNotNormalized);
    }
    let end = simplified.len() - simplified.iter().rev().take_while(|&&b| b == b'/').count();
    let start = simplified[..end].iter().take_while(|&&b| b == b'/').count();
    Ok(match simplified {
        // Keep borrowing `f` when escaping changes nothing.
        Cow::Borrowed(s) => escape(&s[start..end]),
        Cow::Owned(s) => Cow::Owned(escape(&s[start..end]).into_owned()),
    })
}

/// Mirrors `unit_name_path_unescape`: `-` gives `/`; otherwise the [`unescape`]d text must not
/// start or end with `/`, and `/` + text must be a normalized path.
pub fn unescape_path<S: AsRef<[u8]> + ?Sized>(f: &S) -> Result<Vec<u8>> {
    let f = f.as_ref();
    if f.is_empty() {
        return Err(Error::Empty);
    }
    if f == b"-" {
        return Ok(b"/".to_vec());
    }
    let w = unescape(f)?;
    if w.starts_with(b"/") || w.ends_with(b"/") {
        return Err(Error::NotAnEscapedPath);
    }
    let mut s = Vec::with_capacity(w.len() + 1);
    s.push(b'/');
    s.extend_from_slice(&w);
    if !path::is_normalized(&s) {
        return Err(Error::NotAnEscapedPath);
    }
    Ok(s)
}

/// Positions of the first `@` and the last `.` of a name that [`classify`] accepted.
fn at_and_dot(n: &[u8]) -> (Option<usize>, usize) {
    let e = n.iter().rposition(|&b| b == b'.').unwrap_or(n.len());
    (n[..e].iter().position(|&b| b == b'@'), e)
}

fn require(n: &[u8], kinds: Kinds) -> Result<Kind> {
    classify(n)
        .filter(|k| kinds.contains(*k))
        .ok_or_else(|| Error::InvalidName {
            name: lossy(n),
            expected: kinds,
        })
}

/// Mirrors `unit_name_to_instance`: the text between the first `@` and the last `.`, with the
/// kind of name. `foo@.service` gives `(Template, Some(""))`, `foo.service` gives
/// `(Plain, None)`.
pub fn to_instance<S: AsRef<[u8]> + ?Sized>(n: &S) -> Result<(Kind, Option<&str>)> {
    let n = n.as_ref();
    let kind = require(n, Kinds::ANY)?;
    let (at, e) = at_and_dot(n);
    // A valid name is ASCII.
    let instance = at.map(|at| std::str::from_utf8(&n[at + 1..e]).unwrap_or_default());
    Ok((kind, instance))
}

/// Mirrors `unit_name_to_prefix`: the text before the first `@`, or before the last `.`.
pub fn to_prefix<S: AsRef<[u8]> + ?Sized>(n: &S) -> Result<&str> {
    let n = n.as_ref();
    require(n, Kinds::ANY)?;
    let (at, e) = at_and_dot(n);
    Ok(std::str::from_utf8(&n[..at.unwrap_or(e)]).unwrap_or_default())
}

/// Mirrors `unit_name_template`: `prefix@.type` of an instance or template name.
pub fn template_of<S: AsRef<[u8]> + ?Sized>(n: &S) -> Result<String> {
    let n = n.as_ref();
    require(n, Kinds::INSTANCE | Kinds::TEMPLATE)?;
    let (at, e) = at_and_dot(n);
    let at = at.unwrap_or_default();
    let mut s = Vec::with_capacity(at + 1 + n.len() - e);
    s.extend_from_slice(&n[..=at]);
    s.extend_from_slice(&n[e..]);
    Ok(lossy(&s))
}

/// Mirrors `unit_name_replace_instance`: `template` (an instance or template name) with its
/// instance replaced by `instance`, which must be a valid instance; the result must be a valid
/// instance name, so at most 255 bytes.
pub fn replace_instance<S, I>(template: &S, instance: &I) -> Result<String>
where
    S: AsRef<[u8]> + ?Sized,
    I: AsRef<[u8]> + ?Sized,
{
    let (f, i) = (template.as_ref(), instance.as_ref());
    require(f, Kinds::INSTANCE | Kinds::TEMPLATE)?;
    if !is_valid_instance(i) {
        return Err(Error::InvalidInstance { instance: lossy(i) });
    }
    let (at, e) = at_and_dot(f);
    let at = at.unwrap_or_default();
    let mut s = Vec::with_capacity(at + 1 + i.len() + f.len() - e);
    s.extend_from_slice(&f[..=at]);
    s.extend_from_slice(i);
    s.extend_from_slice(&f[e..]);
    if s.len() > UNIT_NAME_MAX_LEN {
        return Err(Error::TooLong { len: s.len() });
    }
    require(&s, Kinds::INSTANCE)?;
    Ok(lossy(&s))
}

/// `systemd-escape --template=TEMPLATE ID`: the instance name of `template` for the arbitrary
/// bytes `id` ([`escape`] then [`replace_instance`]). Fails for an empty `id`, an invalid
/// template, or a result over 255 bytes.
pub fn escape_instance<I: AsRef<[u8]> + ?Sized>(template: &str, id: &I) -> Result<String> {
    if !is_valid(template, Kinds::TEMPLATE) {
        return Err(Error::InvalidName {
            name: template.to_owned(),
            expected: Kinds::TEMPLATE,
        });
    }
    replace_instance(template, escape(id).as_ref())
}

/// `systemd-escape --unescape --instance UNIT`: the unescaped instance of `unit`. Fails if
/// `unit` is not an instance name (a template or plain name has no instance).
pub fn unescape_instance<S: AsRef<[u8]> + ?Sized>(unit: &S) -> Result<Vec<u8>> {
    let unit = unit.as_ref();
    match to_instance(unit)? {
        (_, Some(i)) if !i.is_empty() => Ok(unescape(i)?.into_owned()),
        _ => Err(Error::MissingInstance { name: lossy(unit) }),
    }
}

/// `systemd-escape --unescape --template=TEMPLATE UNIT`: like [`unescape_instance`], but `unit`
/// must also be an instance of `template`.
pub fn unescape_instance_of<S: AsRef<[u8]> + ?Sized>(template: &str, unit: &S) -> Result<Vec<u8>> {
    let id = unescape_instance(unit)?;
    let found = template_of(unit)?;
    if found != template {
        return Err(Error::TemplateMismatch {
            name: lossy(unit.as_ref()),
            found,
            expected: template.to_owned(),
        });
    }
    Ok(id)
}

/// Mirrors `unit_name_hash_long`: shortens the over-long name `name` (which must end in a unit
/// suffix) to exactly 255 bytes: a prefix of `name`, `_`, the SipHash-2-4 of `name` (plus its
/// terminating NUL) as 16 lower-case hex digits, and the suffix.
pub fn hash_long<S: AsRef<[u8]> + ?Sized>(name: &S) -> Result<String> {
    let name = name.as_ref();
    let dot = name
        .iter()
        .rposition(|&b| b == b'.')
        .filter(|&d| UnitType::from_bytes(&name[d + 1..]).is_some())
        .ok_or_else(|| Error::InvalidSuffix {
            suffix: lossy(name),
        })?;
    let suffix = &name[dot..];
    let mut hashed = Vec::with_capacity(name.len() + 1);
    hashed.extend_from_slice(name);
    hashed.push(0);
    let h = siphash24(&hashed, &LONG_NAME_HASH_KEY).to_le_bytes();
    let keep = UNIT_NAME_MAX_LEN - (suffix.len() - 1) - HASH_HEX_LEN - 2;
    let mut s = String::with_capacity(UNIT_NAME_MAX_LEN);
    s.push_str(&lossy(&name[..keep.min(name.len())]));
    s.push('_');
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s.push_str(&lossy(suffix));
    Ok(s)
}

/// Mirrors `unit_name_is_hashed`: a plain name with `_` and 16 lower-case hex digits right
/// before the suffix.
pub fn is_hashed<S: AsRef<[u8]> + ?Sized>(name: &S) -> bool {
    let name = name.as_ref();
    if !is_valid(name, Kinds::PLAIN) {
        return false;
    }
    let (_, e) = at_and_dot(name);
    if e < HASH_HEX_LEN + 1 {
        return false;
    }
    let hex = &name[e - HASH_HEX_LEN..e];
    name[e - HASH_HEX_LEN - 1] == b'_'
        && hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn check_suffix(suffix: &str) -> Result<()> {
    if is_valid_suffix(suffix) {
        Ok(())
    } else {
        Err(Error::InvalidSuffix {
            suffix: suffix.to_owned(),
        })
    }
}

/// Mirrors `unit_name_from_path`: the name a unit for `path` must have, e.g. the `.mount` unit
/// for `Where=` (`/home/x y` with `.mount` gives `home-x\x20y.mount`). Names of 256 bytes or more
/// are shortened with [`hash_long`]. `suffix` includes the dot.
pub fn from_path<S: AsRef<[u8]> + ?Sized>(path: &S, suffix: &str) -> Result<String> {
    check_suffix(suffix)?;
    let mut s = escape_path(path)?.into_owned();
    s.push_str(suffix);
    if s.len() > UNIT_NAME_MAX_LEN {
        s = hash_long(&s)?;
    }
    require(s.as_bytes(), Kinds::PLAIN)?;
    Ok(s)
}

/// Mirrors `unit_name_from_path_instance`: `prefix@<escaped path>suffix`. Unlike [`from_path`]
/// this never hashes: over 255 bytes is an error.
pub fn from_path_instance<S: AsRef<[u8]> + ?Sized>(
    prefix: &str,
    path: &S,
    suffix: &str,
) -> Result<String> {
    if !is_valid_prefix(prefix) {
        return Err(Error::InvalidPrefix {
            prefix: prefix.to_owned(),
        });
    }
    check_suffix(suffix)?;
    let escaped = escape_path(path)?;
    let s = format!("{prefix}@{escaped}{suffix}");
    if s.len() > UNIT_NAME_MAX_LEN {
        return Err(Error::TooLong { len: s.len() });
    }
    require(s.as_bytes(), Kinds::INSTANCE)?;
    Ok(s)
}

/// Mirrors `unit_name_to_path`: the path a (non-hashed) name stands for, by [`unescape_path`]
/// of its prefix.
pub fn to_path<S: AsRef<[u8]> + ?Sized>(name: &S) -> Result<Vec<u8>> {
    let name = name.as_ref();
    let prefix = to_prefix(name)?;
    if is_hashed(name) {
        return Err(Error::Hashed { name: lossy(name) });
    }
    unescape_path(prefix)
}

/// Mirrors `do_escape_mangle` without globs: `/` becomes `-`, bytes outside `@` +
/// `VALID_CHARS` become `\xNN`; `-`, `\`, `@` and a leading `.` are kept.
fn escape_mangle(f: &[u8]) -> String {
    let mut out = String::with_capacity(f.len());
    for &b in f {
        if b == b'/' {
            out.push('-');
        } else if is_valid_char_with_at(b) {
            out.push(char::from(b));
        } else {
            push_hex_escape(&mut out, b);
        }
    }
    out
}

/// Mirrors `unit_name_mangle_with_suffix(name, flags = 0, suffix)`, which `systemd-escape -m`
/// and `systemctl` use (with suffix `.service`) to turn what a user typed into a unit name.
///
/// A valid name is returned unchanged; a device path gives its `.device` name, another absolute
/// path its `.mount` name (via [`from_path`], so possibly hashed); anything else is escaped
/// loosely and gets `suffix` if it has no valid one. Globs are not kept (no `MANGLE_GLOB`).
pub fn mangle_with_suffix<'a, S: AsRef<[u8]> + ?Sized>(
    name: &'a S,
    suffix: &str,
) -> Result<Cow<'a, str>> {
    let name = name.as_ref();
    if name.is_empty() {
        return Err(Error::Empty);
    }
    check_suffix(suffix)?;
    if classify(name).is_some() {
        // Valid names are ASCII.
        if let Ok(s) = std::str::from_utf8(name) {
            return Ok(Cow::Borrowed(s));
        }
    }
    if path::is_device_path(name) {
        if let Ok(s) = from_path(name, ".device") {
            return Ok(Cow::Owned(s));
        }
    }
    if path::is_absolute(name) {
        if let Ok(s) = from_path(name, ".mount") {
            return Ok(Cow::Owned(s));
        }
    }
    let mut s = escape_mangle(name);
    if classify(&s).is_none() {
        s.push_str(suffix);
    }
    if classify(&s).is_none() {
        return Err(if s.len() > UNIT_NAME_MAX_LEN {
            Error::TooLong { len: s.len() }
        } else {
            Error::InvalidName {
                name: s,
                expected: Kinds::ANY,
            }
        });
    }
    Ok(Cow::Owned(s))
}

/// Mirrors `unit_name_mangle(name, 0)`: [`mangle_with_suffix`] with `.service`, exactly
/// `systemd-escape --mangle NAME`.
pub fn mangle<S: AsRef<[u8]> + ?Sized>(name: &S) -> Result<Cow<'_, str>> {
    mangle_with_suffix(name, ".service")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

/// `s` as one POSIX shell word, for commands printed for the user to paste: unchanged when
/// it has only characters no shell treats specially (`[A-Za-z0-9@%+=:,./_-]`, not empty),
/// else in single quotes with each `'` written `'\''`. Unit names often contain `\`
/// (`console@a\x2db.service`), which a shell would otherwise eat.
pub fn shell_quote(s: &str) -> Cow<'_, str> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod shell_quote_tests {
    use super::shell_quote;

    #[test]
    fn words_with_shell_characters_are_single_quoted() {
        assert_eq!(shell_quote("web@1.service"), "web@1.service");
        assert_eq!(
            shell_quote(r"console@a\x2db.service"),
            r"'console@a\x2db.service'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
