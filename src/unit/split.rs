//! Word splitting of unit-file values: a port of the behaviour of systemd's `extract_first_word()`
//! (src/basic/extract-word.c) and `cunescape_one()` (src/basic/escape.c), restricted to the flag
//! combinations Quadlet uses:
//!
//! * [`split_strv`]: `EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE` on whitespace, as systemd's
//!   `config_parse_strv` and Quadlet's `LookupAllStrv` (backslash is an ordinary character; an
//!   unbalanced quote makes the whole value contribute nothing).
//! * [`split_args`]: `EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE|EXTRACT_RELAX` on whitespace, as Quadlet's
//!   `LookupAllArgs`/`LookupLastArgs` (C escapes inside and outside quotes; an unknown escape or a
//!   NUL escape is an error; an unbalanced quote runs to the end; a trailing lone backslash is
//!   dropped).
//!
//! In both, splitting stops at the first empty word (an empty quoted word `""` ends the value, as
//! in systemd's `strv_split_full` loop).

/// True for the whitespace separators (`WHITESPACE` in systemd: space, tab, newline, return).
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Splitting failed: an invalid escape (args) or an unbalanced quote (strv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A backslash escape that systemd's `cunescape_one` rejects.
    #[error("invalid escape sequence")]
    BadEscape,
    /// A quote that is never closed.
    #[error("unbalanced quote")]
    UnbalancedQuote,
}

#[derive(Clone, Copy)]
struct Flags {
    cunescape: bool,
    relax: bool,
    retain_escape: bool,
}

/// `cunescape_one`: decodes the escape after a backslash. `rest` starts at the byte after the
/// backslash. Returns the character and how many bytes of `rest` were consumed (every valid
/// escape is ASCII; a non-ASCII byte where a letter or digit is expected makes it invalid).
fn cunescape_one(rest: &[u8]) -> Result<(char, usize), SplitError> {
    let first = *rest.first().ok_or(SplitError::BadEscape)?;
    let simple = match first {
        b'a' => Some('\u{7}'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'v' => Some('\u{b}'),
        b'\\' => Some('\\'),
        b'"' => Some('"'),
        b'\'' => Some('\''),
        b's' => Some(' '),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, 1));
    }
    let number = |digits: &[u8], radix: u32| -> Result<u32, SplitError> {
        digits.iter().try_fold(0u32, |acc, &c| {
            char::from(c)
                .to_digit(radix)
                .map(|d| acc * radix + d)
                .ok_or(SplitError::BadEscape)
        })
    };
    let (code, used) = match first {
        b'x' | b'u' | b'U' => {
            let n = match first {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = rest.get(1..=n).ok_or(SplitError::BadEscape)?;
            (number(digits, 16)?, n + 1)
        }
        b'0'..=b'7' => {
            let digits = rest.get(..3).ok_or(SplitError::BadEscape)?;
            let v = number(digits, 8)?;
            if v > 0o377 {
                return Err(SplitError::BadEscape);
            }
            (v, 3)
        }
        _ => return Err(SplitError::BadEscape),
    };
    if code == 0 {
        return Err(SplitError::BadEscape);
    }
    char::from_u32(code)
        .map(|c| (c, used))
        .ok_or(SplitError::BadEscape)
}

/// Extracts the next word from `s[*pos..]`. Returns `Ok(None)` at the end. Mirrors
/// `extract_first_word()` for the flags in [`Flags`]. Works on bytes: every character with a
/// meaning here (separators, quotes, backslash) is ASCII, so runs of other bytes are copied
/// whole and always end on a character boundary.
fn extract_first_word(
    s: &str,
    pos: &mut usize,
    flags: Flags,
) -> Result<Option<String>, SplitError> {
    let b = s.as_bytes();
    while b.get(*pos).copied().is_some_and(is_sep) {
        *pos += 1;
    }
    if *pos >= b.len() {
        return Ok(None);
    }
    let mut word = String::new();
    let mut quote: Option<u8> = None;
    loop {
        let start = *pos;
        while let Some(&c) = b.get(*pos) {
            let special = (c == b'\\' && !flags.retain_escape)
                || match quote {
                    Some(q) => c == q,
                    None => c == b'"' || c == b'\'' || is_sep(c),
                };
            if special {
                break;
            }
            *pos += 1;
        }
        word.push_str(&s[start..*pos]);
        let Some(&c) = b.get(*pos) else {
            // End of input.
            if quote.is_some() && !flags.relax {
                return Err(SplitError::UnbalancedQuote);
            }
            return Ok(Some(word));
        };
        *pos += 1;
        if c == b'\\' {
            // (A special byte only without `retain_escape`.)
            if *pos >= b.len() {
                // A trailing lone backslash: dropped in RELAX mode.
                if flags.relax {
                    return Ok(Some(word));
                }
                return Err(SplitError::BadEscape);
            }
            if flags.cunescape {
                let (ch, used) = cunescape_one(&b[*pos..])?;
                word.push(ch);
                *pos += used;
            } else if let Some(ch) = s[*pos..].chars().next() {
                word.push(ch);
                *pos += ch.len_utf8();
            }
            continue;
        }
        match quote {
            // The closing quote.
            Some(_) => quote = None,
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None => {
                // A separator ends the word.
                while b.get(*pos).copied().is_some_and(is_sep) {
                    *pos += 1;
                }
                return Ok(Some(word));
            }
        }
    }
}

fn split_with(value: &str, flags: Flags, out: &mut Vec<String>) -> Result<(), SplitError> {
    // Fast path for the common value without quotes or backslashes (most values of most units):
    // the words are then exactly the non-empty runs between separators, in every mode.
    // Separators are ASCII, so their byte positions are character boundaries.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\'')) {
        let bytes = value.as_bytes();
        let mut start = None;
        for (i, &b) in bytes.iter().enumerate() {
            match (is_sep(b), start) {
                (true, Some(st)) => {
                    out.push(value[st..i].to_owned());
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(st) = start {
            out.push(value[st..].to_owned());
        }
        return Ok(());
    }
    split_slow(value, flags, out)
}

/// The general case of [`split_with`]: [`extract_first_word`] until the end or an empty word.
fn split_slow(value: &str, flags: Flags, out: &mut Vec<String>) -> Result<(), SplitError> {
    let mut pos = 0;
    let start = out.len();
    loop {
        match extract_first_word(value, &mut pos, flags) {
            Ok(Some(w)) if !w.is_empty() => out.push(w),
            Ok(_) => return Ok(()),
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}

/// Splits one value like systemd's `config_parse_strv` (Quadlet `LookupAllStrv`) and appends the
/// words to `out`. An unbalanced quote makes the value contribute nothing.
pub fn split_strv(value: &str, out: &mut Vec<String>) {
    let _ = split_with(
        value,
        Flags {
            cunescape: false,
            relax: false,
            retain_escape: true,
        },
        out,
    );
}

/// Splits one value like an exec command line (`EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE|EXTRACT_RELAX`,
/// Quadlet `splitString(..., SplitRelax|SplitUnquote|SplitCUnescape)`).
pub fn split_args(value: &str) -> Result<Vec<String>, SplitError> {
    let mut out = Vec::new();
    split_with(
        value,
        Flags {
            cunescape: true,
            relax: true,
            retain_escape: false,
        },
        &mut out,
    )?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        split_args(s).unwrap()
    }

    proptest::proptest! {
        /// The fast path for values without quotes or backslashes splits exactly like the
        /// general `extract_first_word` loop, in both modes.
        #[test]
        fn plain_values_split_like_the_general_path(v in "[a-z=/%$ \t\r\n\u{b}\u{a0}é]{0,24}") {
            for flags in [
                Flags { cunescape: true, relax: true, retain_escape: false },
                Flags { cunescape: false, relax: false, retain_escape: true },
            ] {
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                split_with(&v, flags, &mut fast).unwrap();
                split_slow(&v, flags, &mut slow).unwrap();
                proptest::prop_assert_eq!(fast, slow);
            }
        }
    }

    /// The previous word extraction on characters (a direct port of `extract_first_word`), kept
    /// as the oracle for the byte-based one.
    mod reference {
        use super::super::{Flags, SplitError};

        fn is_sep(c: char) -> bool {
            matches!(c, ' ' | '\t' | '\n' | '\r')
        }

        /// The escape after a backslash, by the byte-based `cunescape_one` (escapes are ASCII;
        /// what is compared here is the word extraction); the count is in characters.
        fn cunescape_one(rest: &[char]) -> Result<(char, usize), SplitError> {
            let tail: String = rest.iter().collect();
            let (c, used) = super::super::cunescape_one(tail.as_bytes())?;
            Ok((c, tail[..used].chars().count()))
        }

        /// Extracts the next word from `s[*pos..]` (the characters of the value). Returns `Ok(None)` at
        /// the end. Mirrors `extract_first_word()` for the flags in [`Flags`].
        fn extract_first_word(
            s: &[char],
            pos: &mut usize,
            flags: Flags,
        ) -> Result<Option<String>, SplitError> {
            while *pos < s.len() && is_sep(s[*pos]) {
                *pos += 1;
            }
            if *pos >= s.len() {
                return Ok(None);
            }
            let mut word = String::new();
            let mut quote: Option<char> = None;
            loop {
                let Some(&c) = s.get(*pos) else {
                    // End of input.
                    if quote.is_some() && !flags.relax {
                        return Err(SplitError::UnbalancedQuote);
                    }
                    return Ok(Some(word));
                };
                *pos += 1;
                if c == '\\' && !flags.retain_escape {
                    if *pos >= s.len() {
                        // A trailing lone backslash: dropped in RELAX mode.
                        if flags.relax {
                            return Ok(Some(word));
                        }
                        return Err(SplitError::BadEscape);
                    }
                    if flags.cunescape {
                        let (ch, used) = cunescape_one(&s[*pos..])?;
                        word.push(ch);
                        *pos += used;
                    } else {
                        word.push(s[*pos]);
                        *pos += 1;
                    }
                    continue;
                }
                match quote {
                    Some(q) => {
                        if c == q {
                            quote = None;
                        } else {
                            word.push(c);
                        }
                    }
                    None => {
                        if c == '\'' || c == '"' {
                            quote = Some(c);
                        } else if is_sep(c) {
                            while *pos < s.len() && is_sep(s[*pos]) {
                                *pos += 1;
                            }
                            return Ok(Some(word));
                        } else {
                            word.push(c);
                        }
                    }
                }
            }
        }

        pub fn split(value: &str, flags: Flags) -> Result<Vec<String>, SplitError> {
            let chars: Vec<char> = value.chars().collect();
            let mut pos = 0;
            let mut out = Vec::new();
            loop {
                match extract_first_word(&chars, &mut pos, flags)? {
                    Some(w) if !w.is_empty() => out.push(w),
                    _ => return Ok(out),
                }
            }
        }
    }

    proptest::proptest! {
        /// The byte-based splitting gives exactly the words (or the error) of the character-based
        /// port, in both modes, on values full of quotes, escapes and non-ASCII characters.
        #[test]
        fn byte_splitting_matches_the_character_port(
            v in "([a-z0-7xuU =/é€\u{80}\t\"'\\\\]|\\\\x[0-9a-fé]{0,2}|\\\\u[0-9a-f]{0,4}|\\\\[0-7]{0,3}){0,16}"
        ) {
            for flags in [
                Flags { cunescape: true, relax: true, retain_escape: false },
                Flags { cunescape: false, relax: false, retain_escape: true },
            ] {
                let mut ours = Vec::new();
                let got = split_slow(&v, flags, &mut ours).map(|()| ours);
                proptest::prop_assert_eq!(got, reference::split(&v, flags), "value {:?}", v);
            }
        }
    }

    fn strv(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        split_strv(s, &mut v);
        v
    }

    #[test]
    fn args_handle_quotes_and_c_escapes() {
        assert_eq!(
            args(r#"/some/path "an arg" "a;b\nc\td'e" a;b\nc\td 'a"b' '\110ello \127orld'"#),
            vec![
                "/some/path",
                "an arg",
                "a;b\nc\td'e",
                "a;b\nc\td",
                "a\"b",
                "Hello World"
            ]
        );
    }

    proptest::proptest! {
        /// Exec-style splitting fails only on a backslash (callers skip values without one).
        #[test]
        fn args_fail_only_on_a_backslash(v in "[a-z \"'\\\\\t$%=]{0,16}") {
            if !v.contains('\\') {
                proptest::prop_assert!(split_args(&v).is_ok(), "{:?}", v);
            }
        }
    }

    #[test]
    fn args_reject_unknown_and_nul_escapes() {
        assert_eq!(split_args(r"a \$HOME"), Err(SplitError::BadEscape));
        assert_eq!(split_args(r"a\x00"), Err(SplitError::BadEscape));
        assert_eq!(split_args(r"\400"), Err(SplitError::BadEscape));
    }

    #[test]
    fn args_relax_unbalanced_quote_and_trailing_backslash() {
        assert_eq!(args(r#"a "b c"#), vec!["a", "b c"]);
        assert_eq!(args("a b\\"), vec!["a", "b"]);
    }

    #[test]
    fn args_stop_at_empty_quoted_word() {
        assert_eq!(args(r#"a "" b"#), vec!["a"]);
    }

    #[test]
    fn args_high_escape_becomes_code_point() {
        assert_eq!(args(r"\xe9"), vec!["é"]);
        assert_eq!(args(r"\u00e9\s"), vec!["é "]);
    }

    #[test]
    fn strv_keeps_backslashes_and_groups_quotes() {
        assert_eq!(
            strv(r#"CAP_A "CAP_B CAP_C" a\tb"#),
            vec!["CAP_A", "CAP_B CAP_C", r"a\tb"]
        );
    }

    #[test]
    fn strv_unbalanced_quote_contributes_nothing() {
        assert!(strv(r#"a "b"#).is_empty());
    }

    #[test]
    fn strv_empty_quoted_word_ends_split() {
        assert_eq!(strv(r"a '' b"), vec!["a"]);
    }
}
