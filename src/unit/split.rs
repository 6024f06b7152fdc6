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
fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
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

fn hex(c: char) -> Option<u32> {
    c.to_digit(16)
}

/// `cunescape_one`: decodes the escape after a backslash. `rest` starts at the character after
/// the backslash. Returns the character and how many characters of `rest` were consumed.
fn cunescape_one(rest: &[char]) -> Result<(char, usize), SplitError> {
    let first = *rest.first().ok_or(SplitError::BadEscape)?;
    let simple = match first {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '"' => Some('"'),
        '\'' => Some('\''),
        's' => Some(' '),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, 1));
    }
    let digits = |n: usize, radix: u32| -> Result<u32, SplitError> {
        if rest.len() < n + 1 {
            return Err(SplitError::BadEscape);
        }
        rest[1..=n].iter().try_fold(0u32, |acc, c| {
            c.to_digit(radix)
                .map(|d| acc * radix + d)
                .ok_or(SplitError::BadEscape)
        })
    };
    let (code, used) = match first {
        'x' => (digits(2, 16)?, 3),
        'u' => (digits(4, 16)?, 5),
        'U' => (digits(8, 16)?, 9),
        '0'..='7' => {
            if rest.len() < 3 {
                return Err(SplitError::BadEscape);
            }
            let mut v = 0u32;
            for c in &rest[..3] {
                v = v * 8 + c.to_digit(8).ok_or(SplitError::BadEscape)?;
            }
            if v > 0o377 {
                return Err(SplitError::BadEscape);
            }
            (v, 3)
        }
        _ => return Err(SplitError::BadEscape),
    };
    let _ = hex;
    if code == 0 {
        return Err(SplitError::BadEscape);
    }
    char::from_u32(code)
        .map(|c| (c, used))
        .ok_or(SplitError::BadEscape)
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

fn split_with(value: &str, flags: Flags, out: &mut Vec<String>) -> Result<(), SplitError> {
    // Fast path for the common value without quotes or backslashes (most values of most units):
    // the words are then exactly the non-empty runs between separators, in every mode.
    // Separators are ASCII, so their byte positions are character boundaries.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\'')) {
        let bytes = value.as_bytes();
        let mut start = None;
        for (i, &b) in bytes.iter().enumerate() {
            match (is_sep(char::from(b)), start) {
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
    let chars: Vec<char> = value.chars().collect();
    let mut pos = 0;
    let start = out.len();
    loop {
        match extract_first_word(&chars, &mut pos, flags) {
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
