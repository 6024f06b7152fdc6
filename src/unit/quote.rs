//! Quoting of values for each unit-file context, so that systemd 252 reads back exactly the value
//! that was meant, or the value is refused with a typed error.
//!
//! Each unit-file setting has its own value grammar, decided by the parser systemd uses for it:
//!
//! | function | context | systemd parser |
//! |---|---|---|
//! | [`exec_argument`] | one argument of `ExecStart=` & co. | `config_parse_exec` (`extract_first_word` with `EXTRACT_UNQUOTE\|EXTRACT_CUNESCAPE`, specifiers), then `replace_env_argv` at exec time |
//! | [`exec_argument_literal`] | the same on a line whose executable has the `:` prefix (no env expansion) | `config_parse_exec` |
//! | [`exec_path`] | the executable of an exec line | `config_parse_exec` (`unit_path_printf`, `string_is_safe`) |
//! | [`exec_command`] | a whole exec line value | `config_parse_exec` |
//! | [`environment_assignment`] | one word of `Environment=` | `config_parse_environ`, `env_assignment_is_valid` |
//! | [`plain_setting`] | `Description=`, `Options=`, … | `config_parse_unit_string_printf` |
//! | [`path_setting`] | `Where=`, `What=`, `SourcePath=`, … | `config_parse_unit_path_printf` |
//! | [`unit_name_list`] | `After=`, `Wants=`, … | `config_parse_unit_deps` (`EXTRACT_RETAIN_ESCAPE`) |
//! | [`escape_specifiers`] | `%` alone | `specifier_printf` |
//! | [`quadlet_argument`] | one word of Quadlet's `Exec=`, `Environment=`, `Label=`, … | Quadlet `LookupAllArgs`, then `config_parse_exec` on the generated line |
//! | [`quadlet_value`] | a single-valued Quadlet key (`Image=`, `PublishPort=`, …) | Quadlet `Lookup`, then `config_parse_exec` on the generated line |
//!
//! Facts behind the rules (systemd 252): a line ends at `\n`, `\r` or NUL; a trailing unescaped
//! `\` joins the next line; values are whitespace-stripped; a file that is not UTF-8 fails to
//! load; `%` starts a specifier everywhere; in exec lines `$` is expanded at exec time even inside
//! quotes, and C escapes are decoded before specifiers are expanded (so `\x25` does not protect a
//! `%`). Verified against the real parser in `tests/quote_systemd.rs`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::escape::{self, path};

/// Longest logical line systemd reads (`LONG_LINE_MAX`, 1 MiB).
pub const LINE_MAX: usize = 1024 * 1024;

/// Why a value cannot be written in a given context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// A NUL byte: it ends the line in a unit file and cannot be escaped anywhere.
    #[error("contains a NUL byte, which no unit-file setting can carry")]
    Nul,
    /// A control character in a context without escapes.
    #[error("contains the control character {0:#04x}, which this setting cannot carry (a newline or carriage return would start a new line)")]
    ControlChar(u8),
    /// Leading or trailing whitespace, which systemd strips.
    #[error("has leading or trailing whitespace, which systemd would strip; remove it")]
    Whitespace,
    /// A trailing backslash, which would join the next line.
    #[error("ends in a backslash, which systemd reads as a line continuation")]
    TrailingBackslash,
    /// Bytes that are not UTF-8 in a context without escapes (the whole unit would fail to load).
    #[error("is not valid UTF-8; systemd refuses to load a unit file that is not UTF-8 clean")]
    NotUtf8,
    /// The executable is not an absolute, normalized path without trailing `/`.
    #[error("{0:?} is not an absolute, normalized path to an executable (no `.`/`..` components, no `//`, no trailing `/`)")]
    BadExecutable(String),
    /// A character systemd refuses or misreads in an executable path.
    #[error(
        "{path:?} contains {found:?}, which is not allowed in the executable path of an exec line"
    )]
    UnsafeExecutable {
        /// The path (lossily decoded).
        path: String,
        /// The refused character.
        found: char,
    },
    /// A path setting that is not an absolute, normalized path.
    #[error("{0:?} is not an absolute, normalized path (no `.`/`..` components, no `//`)")]
    BadPath(String),
    /// An environment variable name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{0:?} is not a valid environment variable name: use letters, digits and `_`, not starting with a digit")]
    BadEnvName(String),
    /// Not a valid unit name.
    #[error("{0:?} is not a valid unit name; escape names with unitwright::escape first")]
    BadUnitName(String),
    /// U+0080 in a Quadlet value: Quadlet writes it back as the byte `\x80`, not the character.
    #[error("contains U+0080, which Quadlet rewrites as the single byte 0x80 (not UTF-8)")]
    QuadletC1,
    /// An empty value where an empty word cannot be written.
    #[error("is empty, which cannot be written here")]
    Empty,
    /// A leading or trailing `"`, which Quadlet strips.
    #[error("starts or ends with a double quote, which Quadlet strips")]
    EdgeQuote,
    /// The value is longer than systemd accepts.
    #[error("is {len} bytes long once written, more than the {max} bytes systemd accepts here")]
    TooLong {
        /// Length of the rendered value.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Result of the quoting functions.
pub type Result<T, E = QuoteError> = std::result::Result<T, E>;

/// `out` if it fits in one line systemd reads ([`LINE_MAX`]).
fn fits_line(out: String) -> Result<String> {
    if out.len() > LINE_MAX {
        return Err(QuoteError::TooLong {
            len: out.len(),
            max: LINE_MAX,
        });
    }
    Ok(out)
}

/// `%` → `%%`: the value survives `specifier_printf` unchanged.
pub fn escape_specifiers(value: &str) -> Cow<'_, str> {
    if value.contains('%') {
        Cow::Owned(value.replace('%', "%%"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Writes `bytes` inside a `"…"` word for `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`
/// followed by specifier expansion: `\` → `\\`, `"` → `\"`, `%` → `%%`, `$` → `$$` if
/// `double_dollar`, control characters, DEL and bytes ≥ 0x80 → `\xNN` (the file stays ASCII).
fn quoted_word(bytes: &[u8], double_dollar: bool) -> Result<String> {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            0 => return Err(QuoteError::Nul),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'%' => out.push_str("%%"),
            b'$' if double_dollar => out.push_str("$$"),
            b if !(0x20..0x7f).contains(&b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            b => out.push(char::from(b)),
        }
    }
    out.push('"');
    fits_line(out)
}

/// One argument of an exec line (`ExecStart=` & co., parsed by `config_parse_exec`), as a
/// double-quoted word that systemd turns back into exactly `arg`, including after exec-time
/// environment expansion (`$` is written `$$`). Any bytes but NUL can be carried.
pub fn exec_argument<A: AsRef<[u8]> + ?Sized>(arg: &A) -> Result<String> {
    quoted_word(arg.as_ref(), true)
}

/// Like [`exec_argument`] for a line whose executable carries the `:` prefix, where systemd does
/// no environment expansion: `$` stays as it is.
pub fn exec_argument_literal<A: AsRef<[u8]> + ?Sized>(arg: &A) -> Result<String> {
    quoted_word(arg.as_ref(), false)
}

/// The executable of an exec line: an absolute, normalized path without trailing `/`, without
/// control characters, quotes, `\`, `$` or `;` (`string_is_safe` and `config_parse_exec` refuse
/// or misread them), at most 4095 bytes (`PATH_MAX - 1`). Written as a quoted word with `%%`.
/// A leading `-@:+!` cannot occur: the path starts with `/`.
pub fn exec_path<P: AsRef<[u8]> + ?Sized>(exe: &P) -> Result<String> {
    let exe = exe.as_ref();
    let shown = || String::from_utf8_lossy(exe).into_owned();
    if exe.contains(&0) {
        return Err(QuoteError::Nul);
    }
    if !path::is_absolute(exe) || !path::is_normalized(exe) || exe.ends_with(b"/") {
        return Err(QuoteError::BadExecutable(shown()));
    }
    if let Some(&b) = exe
        .iter()
        .find(|&&b| b < 0x20 || b == 0x7f || matches!(b, b'"' | b'\'' | b'\\' | b'$' | b';'))
    {
        return Err(QuoteError::UnsafeExecutable {
            path: shown(),
            found: char::from(b),
        });
    }
    if exe.len() >= path::PATH_MAX {
        return Err(QuoteError::TooLong {
            len: exe.len(),
            max: path::PATH_MAX - 1,
        });
    }
    quoted_word(exe, false)
}

/// Whether exec-time environment variable expansion applies to an exec line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvExpansion {
    /// The default: `$VAR`/`${VAR}` are expanded at exec time, so every `$` is written `$$`.
    #[default]
    Enabled,
    /// The line gets the `:` prefix; `$` is written as it is.
    Disabled,
}

/// A whole exec-line value: the executable ([`exec_path`]) followed by its arguments
/// ([`exec_argument`] or, with [`EnvExpansion::Disabled`], a `:` prefix and
/// [`exec_argument_literal`]), separated by single spaces. `args` does not include argv\[0\];
/// systemd sets it to the executable.
pub fn exec_command<P, A>(exe: &P, args: &[A], env: EnvExpansion) -> Result<String>
where
    P: AsRef<[u8]> + ?Sized,
    A: AsRef<[u8]>,
{
    let mut line = match env {
        EnvExpansion::Enabled => exec_path(exe)?,
        EnvExpansion::Disabled => format!(":{}", exec_path(exe)?),
    };
    for arg in args {
        line.push(' ');
        line.push_str(&match env {
            EnvExpansion::Enabled => exec_argument(arg.as_ref())?,
            EnvExpansion::Disabled => exec_argument_literal(arg.as_ref())?,
        });
    }
    if line.len() > LINE_MAX {
        return Err(QuoteError::TooLong {
            len: line.len(),
            max: LINE_MAX,
        });
    }
    Ok(line)
}

/// `env_name_is_valid`: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One word of `Environment=` (`config_parse_environ`): `"NAME=value"` with `\` → `\\`,
/// `"` → `\"`, `%` → `%%`, control characters, DEL and non-ASCII → `\xNN`. `$` is not escaped:
/// `Environment=` does no `$` expansion. The value must be UTF-8 (systemd ignores assignments
/// whose value is not, hence `&str`) and cannot hold NUL.
pub fn environment_assignment(name: &str, value: &str) -> Result<String> {
    if !is_valid_env_name(name) {
        return Err(QuoteError::BadEnvName(name.to_owned()));
    }
    let mut assignment = Vec::with_capacity(name.len() + 1 + value.len());
    assignment.extend_from_slice(name.as_bytes());
    assignment.push(b'=');
    assignment.extend_from_slice(value.as_bytes());
    quoted_word(&assignment, false)
}

/// A setting read by `config_parse_unit_string_printf` (`Description=`, Mount `Options=`, …),
/// which does no unquoting and no C unescaping: `%` → `%%`; control characters (newline,
/// carriage return, tab, …) and DEL, leading/trailing whitespace and a trailing `\` are refused
/// because they cannot be represented. Quotes and inner backslashes are literal.
pub fn plain_setting(value: &str) -> Result<Cow<'_, str>> {
    if let Some(b) = value.bytes().find(|&b| b < 0x20 || b == 0x7f) {
        return Err(if b == 0 {
            QuoteError::Nul
        } else {
            QuoteError::ControlChar(b)
        });
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(QuoteError::Whitespace);
    }
    if value.ends_with('\\') {
        return Err(QuoteError::TrailingBackslash);
    }
    let out = escape_specifiers(value);
    if out.len() > LINE_MAX {
        return Err(QuoteError::TooLong {
            len: out.len(),
            max: LINE_MAX,
        });
    }
    Ok(out)
}

/// A path setting read by `config_parse_unit_path_printf` (`Where=`, `What=`, `SourcePath=`):
/// an absolute, normalized path (a trailing `/` allowed), UTF-8, at most 4095 bytes, written with
/// the rules of [`plain_setting`]. Spaces inside are fine (`Where=/mnt/my disk`).
pub fn path_setting<P: AsRef<[u8]> + ?Sized>(p: &P) -> Result<Cow<'_, str>> {
    let p = p.as_ref();
    if p.contains(&0) {
        return Err(QuoteError::Nul);
    }
    let s = std::str::from_utf8(p).map_err(|_| QuoteError::NotUtf8)?;
    if !path::is_absolute(p) || !path::is_normalized(p) {
        return Err(QuoteError::BadPath(s.to_owned()));
    }
    plain_setting(s)
}

/// A dependency list (`After=`, `Wants=`, … read by `config_parse_unit_deps`): valid unit names
/// (as produced by [`crate::escape`]) separated by spaces. Valid names carry no whitespace, `%`
/// or quotes, so they need no quoting; anything else is refused.
pub fn unit_name_list<N: AsRef<str>>(names: &[N]) -> Result<String> {
    let mut out = String::new();
    for name in names {
        let name = name.as_ref();
        if escape::classify(name).is_none() {
            return Err(QuoteError::BadUnitName(name.to_owned()));
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
    }
    Ok(out)
}

/// Checks what no Quadlet value can carry: NUL, U+0080 (Quadlet re-escapes it as the byte
/// `\x80`, which is not the character), and the empty word (Quadlet's splitting stops at it).
fn check_quadlet_word(value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(QuoteError::Nul);
    }
    if value.contains('\u{80}') {
        return Err(QuoteError::QuadletC1);
    }
    Ok(())
}

/// One word of a Quadlet key that Quadlet splits like an exec line (`Exec=`, `Environment=`,
/// `Label=`, `PodmanArgs=`, ... read with `LookupAllArgs`/`LookupAllKeyVal`), which Quadlet then
/// re-quotes into podman's `ExecStart=`: `"…"` with `\` → `\\`, `"` → `\"`, control characters
/// and DEL → `\xNN`, and `%` → `%%`, `$` → `$$` for systemd, which reads them in the generated
/// exec line. Non-ASCII stays raw UTF-8: Quadlet decodes `\xNN` to the code point NN, not the
/// byte. An empty word cannot be written (Quadlet stops splitting at `""`).
pub fn quadlet_argument(value: &str) -> Result<String> {
    check_quadlet_word(value)?;
    if value.is_empty() {
        return Err(QuoteError::Empty);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    fits_line(out)
}

/// A single-valued Quadlet key (`Image=`, `ContainerName=`, `PublishPort=`, ...) that Quadlet
/// reads without unquoting (and strips surrounding `"`) and passes as one podman argument into
/// the generated exec line: the rules of [`plain_setting`], plus `$` → `$$` (exec-time expansion
/// in the generated line), and no leading or trailing `"`.
pub fn quadlet_value(value: &str) -> Result<Cow<'_, str>> {
    check_quadlet_word(value)?;
    if value.starts_with('"') || value.ends_with('"') {
        return Err(QuoteError::EdgeQuote);
    }
    let plain = plain_setting(value)?;
    Ok(if plain.contains('$') {
        Cow::Owned(plain.replace('$', "$$"))
    } else {
        plain
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test-only model of how systemd reads back one word written by `quoted_word`: the part of
    /// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` our output uses, then `%%` → `%`
    /// and, for exec lines, `$$` → `$`. The real parser is exercised in `tests/quote_systemd.rs`.
    fn read_back(word: &str, dollars: bool) -> Vec<u8> {
        let inner = word
            .strip_prefix('"')
            .unwrap()
            .strip_suffix('"')
            .unwrap()
            .as_bytes();
        let mut unescaped = Vec::new();
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == b'\\' {
                match inner[i + 1] {
                    b'x' => {
                        let hex = std::str::from_utf8(&inner[i + 2..i + 4]).unwrap();
                        unescaped.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 4;
                    }
                    c @ (b'\\' | b'"') => {
                        unescaped.push(c);
                        i += 2;
                    }
                    c => panic!("unexpected escape \\{}", char::from(c)),
                }
            } else {
                assert_ne!(inner[i], b'"', "unescaped quote inside {word}");
                unescaped.push(inner[i]);
                i += 1;
            }
        }
        let mut out = Vec::new();
        let mut j = 0;
        while j < unescaped.len() {
            let b = unescaped[j];
            if b == b'%' || (dollars && b == b'$') {
                assert_eq!(
                    unescaped.get(j + 1),
                    Some(&b),
                    "lone {} in {word}",
                    char::from(b)
                );
                j += 1;
            }
            out.push(b);
            j += 1;
        }
        out
    }

    #[test]
    fn exec_argument_escapes_quotes_backslashes_specifiers_and_dollars() {
        assert_eq!(
            exec_argument(r#"a "b" \ 100% $HOME"#).unwrap(),
            r#""a \"b\" \\ 100%% $$HOME""#
        );
        assert_eq!(exec_argument("").unwrap(), r#""""#);
        assert_eq!(
            exec_argument(b"\n\t\x7f\xff".as_slice()).unwrap(),
            r#""\x0a\x09\x7f\xff""#
        );
        assert_eq!(exec_argument("; ü").unwrap(), r#""; \xc3\xbc""#);
        assert_eq!(exec_argument(b"a\0b".as_slice()), Err(QuoteError::Nul));
    }

    #[test]
    fn literal_exec_argument_keeps_dollars() {
        assert_eq!(exec_argument_literal("$HOME %i").unwrap(), r#""$HOME %%i""#);
    }

    #[test]
    fn exec_path_refuses_relative_unnormalized_and_unsafe_paths() {
        assert_eq!(
            exec_path("/usr/bin/my tool").unwrap(),
            r#""/usr/bin/my tool""#
        );
        assert_eq!(exec_path("/opt/100%/x").unwrap(), r#""/opt/100%%/x""#);
        for bad in [
            "bin/true",
            "-/bin/true",
            "/bin/../true",
            "/bin//true",
            "/bin/",
            "",
            "/",
        ] {
            assert!(
                matches!(exec_path(bad), Err(QuoteError::BadExecutable(_))),
                "{bad:?}"
            );
        }
        for bad in ["/bin/a;b", "/bin/$x", "/bin/a\"b", "/bin/a\nb", "/bin/a\\b"] {
            assert!(
                matches!(exec_path(bad), Err(QuoteError::UnsafeExecutable { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn exec_command_joins_words_and_marks_literal_lines() {
        assert_eq!(
            exec_command("/bin/echo", &["a b", "$X"], EnvExpansion::Enabled).unwrap(),
            r#""/bin/echo" "a b" "$$X""#
        );
        assert_eq!(
            exec_command("/bin/echo", &["$X"], EnvExpansion::Disabled).unwrap(),
            r#":"/bin/echo" "$X""#
        );
        let none: [&str; 0] = [];
        assert_eq!(
            exec_command("/bin/true", &none, EnvExpansion::Enabled).unwrap(),
            r#""/bin/true""#
        );
    }

    #[test]
    fn environment_assignment_is_one_quoted_word_without_dollar_escaping() {
        assert_eq!(
            environment_assignment("A", "x BAR=evil $HOME 5%").unwrap(),
            r#""A=x BAR=evil $HOME 5%%""#
        );
        assert_eq!(environment_assignment("_a1", "").unwrap(), r#""_a1=""#);
        assert_eq!(
            environment_assignment("N", "l1\nl2 ü").unwrap(),
            r#""N=l1\x0al2 \xc3\xbc""#
        );
        for bad in ["", "1A", "A-B", "A B", "Ä"] {
            assert_eq!(
                environment_assignment(bad, "v"),
                Err(QuoteError::BadEnvName(bad.into()))
            );
        }
        assert_eq!(environment_assignment("A", "\0"), Err(QuoteError::Nul));
    }

    #[test]
    fn plain_setting_refuses_what_the_reader_would_change() {
        assert_eq!(
            plain_setting(r#"50% "quoted" back\slash"#).unwrap(),
            r#"50%% "quoted" back\slash"#
        );
        assert_eq!(
            plain_setting("x\nExecStartPre=/bin/evil"),
            Err(QuoteError::ControlChar(b'\n'))
        );
        assert_eq!(plain_setting("x\r"), Err(QuoteError::ControlChar(b'\r')));
        assert_eq!(
            plain_setting("tab\there"),
            Err(QuoteError::ControlChar(b'\t'))
        );
        assert_eq!(plain_setting(" x"), Err(QuoteError::Whitespace));
        assert_eq!(plain_setting("x "), Err(QuoteError::Whitespace));
        assert_eq!(plain_setting("x\\"), Err(QuoteError::TrailingBackslash));
        assert_eq!(plain_setting("\0"), Err(QuoteError::Nul));
        assert!(matches!(
            plain_setting("plain").unwrap(),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn path_setting_needs_a_normalized_absolute_utf8_path() {
        assert_eq!(path_setting("/mnt/my disk").unwrap(), "/mnt/my disk");
        assert_eq!(path_setting("/mnt/100%").unwrap(), "/mnt/100%%");
        assert!(matches!(path_setting("mnt"), Err(QuoteError::BadPath(_))));
        assert!(matches!(
            path_setting("/a/../b"),
            Err(QuoteError::BadPath(_))
        ));
        assert_eq!(path_setting(b"/a\xff".as_slice()), Err(QuoteError::NotUtf8));
    }

    #[test]
    fn unit_name_list_accepts_only_valid_names() {
        let name = escape::escape_instance("console@.service", "a b/%").unwrap();
        assert_eq!(
            unit_name_list(&["network-online.target", name.as_str()]).unwrap(),
            format!("network-online.target {name}")
        );
        assert!(matches!(
            unit_name_list(&["a b.service"]),
            Err(QuoteError::BadUnitName(_))
        ));
        assert!(matches!(
            unit_name_list(&["x%i.service"]),
            Err(QuoteError::BadUnitName(_))
        ));
    }

    #[test]
    fn specifiers_are_doubled() {
        assert_eq!(
            escape_specifiers("%i and %%"),
            "%i and %%".replace('%', "%%")
        );
        assert!(matches!(escape_specifiers("none"), Cow::Borrowed(_)));
    }

    #[test]
    fn quadlet_words_double_specifiers_and_dollars_and_keep_unicode_raw() {
        assert_eq!(
            quadlet_argument("APP=a \"b\" \\ $X 5% é\n").unwrap(),
            r#""APP=a \"b\" \\ $$X 5%% é\x0a""#
        );
        assert_eq!(quadlet_argument(""), Err(QuoteError::Empty));
        assert_eq!(quadlet_argument("\u{80}"), Err(QuoteError::QuadletC1));
        assert_eq!(quadlet_value("img:$v%").unwrap(), "img:$$v%%");
        assert_eq!(quadlet_value("\"x\""), Err(QuoteError::EdgeQuote));
        assert_eq!(quadlet_value("a\nb"), Err(QuoteError::ControlChar(b'\n')));
    }

    proptest! {
        #[test]
        fn exec_arguments_read_back_to_the_same_bytes(arg in prop::collection::vec(1u8..=255, 0..64)) {
            let word = exec_argument(&arg).unwrap();
            prop_assert!(word.is_ascii());
            prop_assert_eq!(read_back(&word, true), arg.clone());
            prop_assert_eq!(read_back(&exec_argument_literal(&arg).unwrap(), false), arg);
        }

        #[test]
        fn environment_values_read_back_to_the_same_text(value in "[^\u{0}]{0,40}") {
            let word = environment_assignment("V", &value).unwrap();
            prop_assert!(word.is_ascii());
            prop_assert_eq!(read_back(&word, false), format!("V={value}").into_bytes());
        }
    }
}
