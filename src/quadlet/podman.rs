//! podman command lines: the base command every Quadlet kind starts from and the serialization
//! of argv words into an `Exec*=` value, byte for byte as Quadlet 5.4.2's `escapeWords`
//! (`pkg/systemd/parser/split.go`).
//!
//! Serialization rules: words are joined by single spaces. A word is written bare unless it
//! contains (among code points up to U+0080) whitespace, a control character, `"`, `'` or `\`;
//! then it is written in double quotes with `\a \b \n \r \t \v \f \\ \"` escapes and `\xNN` for
//! other control characters. `%` and `$` are not escaped (systemd expands them at run time, as
//! with Quadlet). An empty word is written as nothing (leaving two spaces), as Quadlet does.

use std::fmt::Write as _;

use super::{versions, Context, Quadlet};

/// An argv being built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodmanCmd {
    /// The words.
    pub args: Vec<String>,
    /// Write a space inside a quoted word as `\x20` (podman 5.6 and later,
    /// [`versions::ESCAPE_SPACE`]).
    pub hex_space: bool,
}

impl PodmanCmd {
    /// Quadlet's `createBasePodmanCommand`: podman, then `--module=V` for each
    /// `ContainersConfModule` value, then the `GlobalArgs` words of the type group of `q`.
    pub fn base(ctx: &Context, q: &Quadlet) -> Self {
        let group = q.kind.group();
        let mut args = Vec::with_capacity(48);
        args.push(ctx.podman.clone());
        let mut cmd = PodmanCmd {
            args,
            hex_space: ctx.writes(versions::ESCAPE_SPACE),
        };
        for m in q.unit.lookup_all(group, "ContainersConfModule") {
            cmd.args.push(format!("--module={m}"));
        }
        cmd.args.extend(q.unit.lookup_all_args(group, "GlobalArgs"));
        cmd
    }

    /// Appends one word.
    pub fn add(&mut self, word: impl Into<String>) {
        self.args.push(word.into());
    }

    /// Appends several words.
    pub fn extend<I, S>(&mut self, words: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(words.into_iter().map(Into::into));
    }

    /// Appends `flag value` for each value.
    pub fn add_each<I, S>(&mut self, flag: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for v in values {
            self.args.push(flag.to_owned());
            self.args.push(v.into());
        }
    }

    /// Appends `flag K=V` for each word (as returned by
    /// [`UnitFile::lookup_all_key_val_words`](crate::unit::UnitFile::lookup_all_key_val_words)).
    pub fn add_key_vals(&mut self, flag: &str, words: Vec<String>) {
        self.args.reserve(2 * words.len());
        for w in words {
            self.args.push(flag.to_owned());
            self.args.push(w);
        }
    }

    /// Appends `flag` (true) or `flag=false`.
    pub fn add_bool(&mut self, flag: &str, value: bool) {
        if value {
            self.args.push(flag.to_owned());
        } else {
            self.args.push(format!("{flag}=false"));
        }
    }

    /// The serialized command line (see the module documentation).
    pub fn to_exec_line(&self) -> String {
        escape_words_as(&self.args, self.hex_space)
    }

    /// The command line with `-` prefixed to the program (systemd then ignores a failure), given
    /// `line`, this command's [`to_exec_line`](Self::to_exec_line): that line with `-` in front
    /// when the program is written bare, else the words serialized again with the `-` inside the
    /// program's quotes (as 5.4.2 does).
    pub fn to_exec_line_ignoring_failure(&self, line: &str) -> String {
        match self.args.first() {
            Some(program) if needs_quoting(program) => {
                let mut args = self.args.clone();
                args[0].insert(0, '-');
                escape_words_as(&args, self.hex_space)
            }
            _ => ["-", line].concat(),
        }
    }
}

/// Bytes that force quoting: whitespace and control characters up to space, `"`, `'`, `\\`, DEL,
/// and 0xC2 (the first byte of U+0080, checked further in [`needs_quoting`]).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b <= b' ' as usize {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xc2] = true;
    t
};

/// True if `word` has a code point up to U+0080 that is whitespace, a control character, `"`,
/// `'` or `\`. Checked on bytes with a table (this runs for every word of every unit): all such
/// code points are single bytes except U+0080 (`C2 80`).
fn needs_quoting(word: &str) -> bool {
    let b = word.as_bytes();
    // Eight bytes at a time first: a chunk with no candidate byte is plain (the tests below have
    // no false negatives); a word with a candidate gets the exact check.
    let mut chunks = b.chunks_exact(8);
    let flagged = chunks.by_ref().any(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        chunk_may_need_quoting(u64::from_le_bytes(w))
    });
    if flagged {
        return needs_quoting_exact(b);
    }
    needs_quoting_exact(chunks.remainder())
}

/// The byte-by-byte check of [`needs_quoting`].
fn needs_quoting_exact(b: &[u8]) -> bool {
    b.iter().enumerate().any(|(i, &c)| {
        // 0xC2 is always a lead byte: followed by 0x80 it is U+0080.
        SPECIAL[usize::from(c)] && (c != 0xc2 || b.get(i + 1) == Some(&0x80))
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// True if some byte of `x` is below `n` (n ≤ 128); may also be true when one is, never false
/// when one is (the classic "has less" bit trick).
fn has_less(x: u64, n: u8) -> bool {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0
}

/// True if some byte of `x` may be one that [`SPECIAL`] marks (no false negatives).
fn chunk_may_need_quoting(x: u64) -> bool {
    let has = |byte: u8| has_less(x ^ (ONES * u64::from(byte)), 1);
    has_less(x, b' ' + 1) | has(b'"') | has(b'\'') | has(b'\\') | has(0x7f) | has(0xc2)
}

/// Quadlet 5.4.2's `escapeWords`: joins `words` with spaces, quoting where needed.
pub fn escape_words<S: AsRef<str>>(words: &[S]) -> String {
    escape_words_as(words, false)
}

/// [`escape_words`], writing a space inside a quoted word as `\x20` when `hex_space` (Quadlet
/// 5.6 and later, [`versions::ESCAPE_SPACE`]); systemd reads both forms as the same word.
pub fn escape_words_as<S: AsRef<str>>(words: &[S], hex_space: bool) -> String {
    let mut out = String::with_capacity(words.iter().map(|w| w.as_ref().len() + 3).sum::<usize>());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let w = w.as_ref();
        if !needs_quoting(w) {
            out.push_str(w);
            continue;
        }
        out.push('"');
        for c in w.chars() {
            match c {
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                '\u{c}' => out.push_str("\\f"),
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                ' ' if hex_space => out.push_str("\\x20"),
                c if c <= '\u{80}' && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(
            escape_words(&[
                "echo 'hi there' \"q\" \\ $HOME %h",
                "single \n",
                "a\tb",
                "\u{1}",
                "é",
                "100%",
                "${X}",
                "semi;colon"
            ]),
            r#""echo 'hi there' \"q\" \\ $HOME %h" "single \n" "a\tb" "\x01" é 100% ${X} semi;colon"#
        );
        assert_eq!(escape_words(&["x\u{7f}y", "it's"]), r#""x\x7fy" "it's""#);
        // U+0080 is quoted (a control character up to U+0080); U+0081 and U+00C2 are not.
        assert_eq!(
            escape_words(&["a\u{80}", "b\u{81}", "\u{c2}"]),
            "\"a\\x80\" b\u{81} \u{c2}"
        );
    }

    proptest::proptest! {
        /// systemd's exec-line splitting (our port of `extract_first_word`) gives back exactly
        /// the words that were serialized, so podman receives the intended argv.
        #[test]
        fn escaped_words_split_back_to_the_same_words(words in proptest::collection::vec("[^\\x00]{0,12}", 0..8)) {
            let line = escape_words(&words);
            let expected: Vec<&String> = words.iter().filter(|w| !w.is_empty()).collect();
            let got = crate::unit::split::split_args(&line).unwrap();
            proptest::prop_assert_eq!(got.iter().collect::<Vec<_>>(), expected, "line: {:?}", line);
        }
    }

    proptest::proptest! {
        /// The eight-byte screen never misses a byte the exact check would quote on.
        #[test]
        fn chunked_quoting_check_matches_the_exact_one(word in "[ -~\t\n\u{7f}\u{80}\u{c2}é\"'\\\\]{0,20}") {
            proptest::prop_assert_eq!(needs_quoting(&word), needs_quoting_exact(word.as_bytes()));
        }
    }

    #[test]
    fn ignoring_failure_prefixes_the_program_inside_its_quotes() {
        for program in ["/usr/bin/podman", "/opt/my podman", "/x\\y"] {
            let cmd = PodmanCmd {
                args: vec![program.to_owned(), "rm".to_owned(), "a b".to_owned()],
                hex_space: false,
            };
            let mut prefixed = cmd.args.clone();
            prefixed[0].insert(0, '-');
            assert_eq!(
                cmd.to_exec_line_ignoring_failure(&cmd.to_exec_line()),
                escape_words(&prefixed)
            );
        }
    }

    #[test]
    fn empty_words_leave_two_spaces() {
        assert_eq!(
            escape_words(&["--log-driver", "", "--cgroups=split"]),
            "--log-driver  --cgroups=split"
        );
    }
}
