//! podman command lines: the typed command every Quadlet kind builds ([`PodmanCmd`]: program,
//! podman's global options, sub-command, options, final arguments), the `Exec*=` line around it
//! ([`ExecLine`]: systemd prefix characters and the words of a wrapper), the [`Service`] that
//! keeps them typed while the version rules ([`super::compat`]) and the settings wrapper
//! ([`super::settings`]) edit them, and their serialization, done once when the unit is
//! finished, byte for byte as Quadlet 5.4.2's `escapeWords` (`pkg/systemd/parser/split.go`).
//!
//! Serialization rules: words are joined by single spaces. A word is written bare unless it
//! contains (among code points up to U+0080) whitespace, a control character, `"`, `'` or `\`;
//! then it is written in double quotes with `\a \b \n \r \t \v \f \\ \"` escapes and `\xNN` for
//! other control characters. `%` and `$` are not escaped (systemd expands them at run time, as
//! with Quadlet). An empty word is written as nothing (leaving two spaces), as Quadlet does.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::common::SERVICE;
use super::{Context, Quadlet};
use crate::unit::{Line, Origin, UnitFile};

/// One word of a command line: the code's own literals and values of the Quadlet file are
/// borrowed, words made here are owned. How a word is quoted is decided from the word alone when
/// the line is written ([`ExecLine::to_text`]).
pub type Arg<'a> = Cow<'a, str>;

/// A command, typed: the program, podman's global options, the sub-command, its options and the
/// final (positional) arguments. The kinds build it, version rules and the settings wrapper edit
/// it, and it becomes text once, when the unit is finished ([`Service::finish`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodmanCmd<'a> {
    /// argv\[0\]: podman (or `/bin/rm`, or the program of a line the user wrote).
    pub program: Arg<'a>,
    /// podman's global options: `--module=V` for each `ContainersConfModule`, then the
    /// `GlobalArgs` words.
    pub global: Vec<Arg<'a>>,
    /// The sub-command words (`volume create`); empty for a program that is not podman.
    pub sub: &'static [&'static str],
    /// The sub-command's options, in order (including `PodmanArgs` words).
    pub options: Vec<Arg<'a>>,
    /// The final arguments: the image and `Exec=` words of `podman run`, a resource name, YAML
    /// files, a build context; all words of a program that is not podman.
    pub args: Vec<Arg<'a>>,
}

impl<'a> PodmanCmd<'a> {
    /// Quadlet's `createBasePodmanCommand`: podman, then `--module=V` for each
    /// `ContainersConfModule` value, then the `GlobalArgs` words of the type group of `q`.
    pub fn base(ctx: &Context, q: &Quadlet) -> Self {
        let group = q.kind.group();
        let mut global: Vec<Arg<'a>> = q
            .unit
            .lookup_all(group, "ContainersConfModule")
            .into_iter()
            .map(|m| Cow::Owned(format!("--module={m}")))
            .collect();
        global.extend(
            q.unit
                .lookup_all_args(group, "GlobalArgs")
                .into_iter()
                .map(Cow::Owned),
        );
        PodmanCmd {
            program: Cow::Owned(ctx.podman.clone()),
            global,
            sub: &[],
            options: Vec::with_capacity(48),
            args: Vec::new(),
        }
    }

    /// A command of another program, its words all final arguments.
    pub fn program(program: impl Into<Arg<'a>>) -> Self {
        PodmanCmd {
            program: program.into(),
            ..PodmanCmd::default()
        }
    }

    /// This command with the sub-command `words` (`&["volume", "create"]`).
    #[must_use]
    pub fn with_sub(mut self, words: &'static [&'static str]) -> Self {
        self.sub = words;
        self
    }

    /// Appends one option word.
    pub fn add(&mut self, word: impl Into<Arg<'a>>) {
        self.options.push(word.into());
    }

    /// Appends several option words.
    pub fn extend<I, S>(&mut self, words: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<Arg<'a>>,
    {
        self.options.extend(words.into_iter().map(Into::into));
    }

    /// Appends `flag value` for each value.
    pub fn add_each<I, S>(&mut self, flag: &'static str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<Arg<'a>>,
    {
        for v in values {
            self.options.push(Cow::Borrowed(flag));
            self.options.push(v.into());
        }
    }

    /// Appends `flag K=V` for each word (as returned by
    /// [`UnitFile::lookup_all_key_val_words`](crate::unit::UnitFile::lookup_all_key_val_words)).
    pub fn add_key_vals(&mut self, flag: &'static str, words: Vec<String>) {
        self.options.reserve(2 * words.len());
        for w in words {
            self.options.push(Cow::Borrowed(flag));
            self.options.push(Cow::Owned(w));
        }
    }

    /// Appends `flag` (true) or `flag=false`.
    pub fn add_bool(&mut self, flag: &'static str, value: bool) {
        if value {
            self.options.push(Cow::Borrowed(flag));
        } else {
            self.options.push(Cow::Owned(format!("{flag}=false")));
        }
    }

    /// Appends one final argument.
    pub fn arg(&mut self, word: impl Into<Arg<'a>>) {
        self.args.push(word.into());
    }

    /// Appends several final arguments.
    pub fn extend_args<I, S>(&mut self, words: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<Arg<'a>>,
    {
        self.args.extend(words.into_iter().map(Into::into));
    }

    /// Every word, in order: program, global options, sub-command, options, final arguments.
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(&*self.program)
            .chain(self.global.iter().map(|w| &**w))
            .chain(self.sub.iter().copied())
            .chain(self.options.iter().map(|w| &**w))
            .chain(self.args.iter().map(|w| &**w))
    }
}

/// A command line of `[Service]`, typed: the systemd prefix characters (`-` ignores a failure,
/// `:` turns `$` expansion off), the words of a wrapper that runs the command
/// (`unitwright instance exec … --`, see [`super::settings`]) and the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecLine<'a> {
    /// The prefix characters, written in front of the first word (inside its quotes when it is
    /// quoted, as 5.4.2 writes `"-/opt/my podman"`).
    pub prefix: String,
    /// The wrapper's words, its program first; empty when the command runs directly.
    pub wrapper: Vec<Arg<'a>>,
    /// The command.
    pub cmd: PodmanCmd<'a>,
}

impl<'a> From<PodmanCmd<'a>> for ExecLine<'a> {
    fn from(cmd: PodmanCmd<'a>) -> Self {
        ExecLine {
            prefix: String::new(),
            wrapper: Vec::new(),
            cmd,
        }
    }
}

impl<'a> ExecLine<'a> {
    /// `cmd` with the `-` prefix: systemd ignores its failure.
    pub fn ignoring_failure(cmd: PodmanCmd<'a>) -> Self {
        ExecLine {
            prefix: "-".to_owned(),
            ..ExecLine::from(cmd)
        }
    }

    /// Every word, in order: the wrapper's, then the command's (without the prefix).
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        self.wrapper.iter().map(|w| &**w).chain(self.cmd.words())
    }

    /// The `Exec*=` value: the words serialized as `escapeWords` does, the prefix in front of
    /// the first word; a space in a quoted word is `\x20` when `hex_space`
    /// ([`super::versions::ESCAPE_SPACE`]).
    pub fn to_text(&self, hex_space: bool) -> String {
        // Plain loops over the parts: this runs for every command line of every unit.
        let cmd = &self.cmd;
        let len = |words: &[Arg<'_>]| words.iter().map(|w| w.len() + 3).sum::<usize>();
        let mut out = String::with_capacity(
            self.prefix.len()
                + len(&self.wrapper)
                + cmd.program.len()
                + len(&cmd.global)
                + cmd.sub.iter().map(|w| w.len() + 1).sum::<usize>()
                + len(&cmd.options)
                + len(&cmd.args)
                + 3,
        );
        let (first, wrapper) = match self.wrapper.split_first() {
            Some((first, rest)) => (first, rest),
            None => (&cmd.program, &[][..]),
        };
        write_word(&mut out, &self.prefix, first, hex_space);
        let rest = |out: &mut String, words: &[Arg<'_>]| {
            for w in words {
                out.push(' ');
                write_word(out, "", w, hex_space);
            }
        };
        rest(&mut out, wrapper);
        if !self.wrapper.is_empty() {
            rest(&mut out, std::slice::from_ref(&cmd.program));
        }
        rest(&mut out, &cmd.global);
        for w in cmd.sub {
            // The code's own sub-command words (`volume create`) never need quoting.
            debug_assert!(!needs_quoting(w));
            out.push(' ');
            out.push_str(w);
        }
        rest(&mut out, &cmd.options);
        rest(&mut out, &cmd.args);
        out
    }
}

/// The unit a kind builds: the unit model, with its podman command lines kept typed until
/// [`Service::finish`] writes them. It dereferences to the [`UnitFile`], so the helpers that add
/// lines work on it unchanged; [`Service::add_exec`] adds a command line at its place among
/// them.
#[derive(Debug, Clone, Default)]
pub struct Service<'a> {
    /// The unit; each typed command line has its place in `[Service]` as a placeholder line
    /// (its [`Origin::source`] is `EXEC_SLOT`, its [`Origin::line`] the index of the command
    /// line) whose value is written by [`Service::finish`].
    pub unit: UnitFile,
    execs: Vec<ExecLine<'a>>,
}

/// The [`Origin::source`] of a `[Service]` line that stands for a typed command line of a
/// [`Service`] (its value is empty until [`Service::finish`]).
const EXEC_SLOT: u16 = u16::MAX;

impl From<UnitFile> for Service<'_> {
    fn from(unit: UnitFile) -> Self {
        Service {
            unit,
            execs: Vec::new(),
        }
    }
}

impl std::ops::Deref for Service<'_> {
    type Target = UnitFile;
    fn deref(&self) -> &UnitFile {
        &self.unit
    }
}

impl std::ops::DerefMut for Service<'_> {
    fn deref_mut(&mut self) -> &mut UnitFile {
        &mut self.unit
    }
}

impl<'a> Service<'a> {
    /// A placeholder line for `line`, stored in [`Self::execs`].
    fn slot(&mut self, key: &str, line: ExecLine<'a>) -> Line {
        let index = u32::try_from(self.execs.len()).unwrap_or(u32::MAX);
        self.execs.push(line);
        Line {
            key: key.to_owned(),
            value: String::new(),
            comment: false,
            origin: Origin {
                source: EXEC_SLOT,
                line: index,
            },
        }
    }

    /// Appends the command line `key=line` to `[Service]`.
    pub fn add_exec(&mut self, key: &str, line: impl Into<ExecLine<'a>>) {
        let slot = self.slot(key, line.into());
        self.unit.ensure_group(SERVICE).lines.push(slot);
    }

    /// Inserts the command line `key=line` as line `at` of `[Service]` (which must exist).
    pub fn insert_exec(&mut self, at: usize, key: &str, line: ExecLine<'a>) {
        let slot = self.slot(key, line);
        self.unit.ensure_group(SERVICE).lines.insert(at, slot);
    }

    /// The typed command line that `line` (of `[Service]`) stands for, if it is one.
    pub fn exec_of(&self, line: &Line) -> Option<&ExecLine<'a>> {
        self.exec_index(line).map(|i| &self.execs[i])
    }

    /// The index into [`Self::execs`] of the command line that `line` stands for.
    fn exec_index(&self, line: &Line) -> Option<usize> {
        (line.origin.source == EXEC_SLOT && !line.comment)
            .then(|| usize::try_from(line.origin.line).ok())
            .flatten()
            .filter(|&i| i < self.execs.len())
    }

    /// The typed command line of line `i` of `[Service]`, if it is one.
    pub fn exec_at_mut(&mut self, i: usize) -> Option<&mut ExecLine<'a>> {
        let line = self.unit.group(SERVICE)?.lines.get(i)?;
        let index = self.exec_index(line)?;
        Some(&mut self.execs[index])
    }

    /// Turns line `i` of `[Service]` (a line as written in the file) into the typed `line`.
    pub fn replace_with_exec(&mut self, i: usize, line: ExecLine<'a>) {
        let Some(key) = self
            .unit
            .group(SERVICE)
            .and_then(|g| g.lines.get(i))
            .map(|l| l.key.clone())
        else {
            return;
        };
        let slot = self.slot(&key, line);
        self.unit.ensure_group(SERVICE).lines[i] = slot;
    }

    /// The text of the finished unit ([`Self::finish`] on a copy). (A `Service` also
    /// dereferences to its [`UnitFile`], whose `to_text` would leave the command lines empty;
    /// this method, asking for `hex_space`, is found first.)
    pub fn to_text(&self, hex_space: bool) -> String {
        self.clone().finish(hex_space).to_text()
    }

    /// The unit with every command line written (see [`ExecLine::to_text`]).
    pub fn finish(mut self, hex_space: bool) -> UnitFile {
        if self.execs.is_empty() {
            return self.unit;
        }
        let execs = std::mem::take(&mut self.execs);
        if let Some(g) = self.unit.group_mut(SERVICE) {
            for l in &mut g.lines {
                if l.origin.source == EXEC_SLOT && !l.comment {
                    if let Some(e) = usize::try_from(l.origin.line)
                        .ok()
                        .and_then(|i| execs.get(i))
                    {
                        l.value = e.to_text(hex_space);
                    }
                    l.origin = Origin::default();
                }
            }
        }
        self.unit
    }
}

/// Writes `prefix` and `word` as one word of an exec line (see the module documentation); the
/// prefix characters never need quoting themselves.
fn write_word(out: &mut String, prefix: &str, w: &str, hex_space: bool) {
    if !needs_quoting(w) {
        out.push_str(prefix);
        out.push_str(w);
        return;
    }
    out.push('"');
    out.push_str(prefix);
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
/// 5.6 and later, [`super::versions::ESCAPE_SPACE`]); systemd reads both forms as the same word.
pub fn escape_words_as<S: AsRef<str>>(words: &[S], hex_space: bool) -> String {
    let mut out = String::with_capacity(words.iter().map(|w| w.as_ref().len() + 3).sum::<usize>());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_word(&mut out, "", w.as_ref(), hex_space);
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
        for (program, expected) in [
            ("/usr/bin/podman", r#"-/usr/bin/podman rm "a b""#),
            ("/opt/my podman", r#""-/opt/my podman" rm "a b""#),
            ("/x\\y", r#""-/x\\y" rm "a b""#),
        ] {
            let mut cmd = PodmanCmd::program(program).with_sub(&["rm"]);
            cmd.arg("a b");
            assert_eq!(ExecLine::ignoring_failure(cmd).to_text(false), expected);
        }
    }

    #[test]
    fn a_command_is_written_in_the_order_of_its_parts() {
        let mut cmd = PodmanCmd::program("/usr/bin/podman").with_sub(&["volume", "create"]);
        cmd.global.push("--log-level=debug".into());
        cmd.arg("data");
        cmd.add("--ignore");
        cmd.add_bool("--opt", false);
        let mut line = ExecLine::from(cmd);
        line.prefix = ":".to_owned();
        line.wrapper = vec!["/usr/bin/unitwright".into(), "--".into()];
        assert_eq!(
            line.to_text(false),
            ":/usr/bin/unitwright -- /usr/bin/podman --log-level=debug volume create --ignore --opt=false data"
        );
    }

    #[test]
    fn a_service_writes_its_command_lines_in_their_places() {
        let mut s = Service::from(UnitFile::new());
        s.add(SERVICE, "Type", "oneshot");
        s.add_exec("ExecStart", PodmanCmd::program("/bin/a b"));
        s.add(SERVICE, "Delegate", "yes");
        s.insert_exec(0, "ExecStartPre", PodmanCmd::program("/bin/true").into());
        s.exec_at_mut(2).unwrap().prefix.push('-');
        let unit = s.finish(true);
        assert_eq!(
            unit.to_text(),
            "[Service]\nExecStartPre=/bin/true\nType=oneshot\nExecStart=\"-/bin/a\\x20b\"\nDelegate=yes\n"
        );
        assert!(unit.groups[0]
            .lines
            .iter()
            .all(|l| l.origin == Origin::default()));
    }

    #[test]
    fn empty_words_leave_two_spaces() {
        assert_eq!(
            escape_words(&["--log-driver", "", "--cgroups=split"]),
            "--log-driver  --cgroups=split"
        );
    }
}
