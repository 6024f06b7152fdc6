//! The structure check: how systemd (and Quadlet) read each rendered value back.
//!
//! [`decode`] turns a setting's raw value into the words its reader sees, as tokens that keep
//! apart what is literal text (`Tok::B`) and what the reader interprets: a specifier (`%i`), an
//! exec-time variable (`$X`, `${X}`), an exec prefix (`-`, `:`, …), a command separator (`;`).
//! Two values mean the same thing exactly when their token words are equal.

use crate::unit::split::{split_args, split_strv};

/// One token of a decoded word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A literal byte.
    B(u8),
    /// A specifier `%c`, expanded by systemd.
    Spec(u8),
    /// An exec-time environment expansion (`${…}` inside a word, or a word starting with `$`).
    Var,
    /// A byte of the name of an exec-time variable (never literal text).
    VarName(u8),
    /// An exec prefix character (`-@:+!`) on the first word of a command.
    Prefix(u8),
    /// An unquoted `;` word: a new command starts.
    Sep,
}

/// How a setting's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// `config_parse_exec`: words with quotes and C escapes, prefixes, `;`, specifiers, `$`.
    Exec,
    /// `config_parse_environ`: words with quotes and C escapes, then specifiers.
    Environ,
    /// `config_parse_unit_deps`: whitespace-separated words, backslashes kept, specifiers.
    UnitList,
    /// `config_parse_unit_string_printf` and every other setting: the value, specifiers.
    Plain,
    /// Quadlet `LookupAllArgs`/`LookupAllKeyVal`, each word then read by systemd in the generated
    /// exec line (specifiers, `$`).
    QuadletArgs,
    /// Quadlet `LookupAllStrv`, each word then read in the generated exec line.
    QuadletStrv,
    /// Quadlet `Lookup` (trailing blanks and surrounding `"` stripped), one word of the generated
    /// exec line.
    QuadletPlain,
}

const EXEC_KEYS: &[&str] = &[
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecCondition",
    "ExecReload",
    "ExecStop",
    "ExecStopPre",
    "ExecStopPost",
];

const UNIT_LIST_KEYS: &[&str] = &[
    "After",
    "Before",
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "JoinsNamespaceOf",
    "WantedBy",
    "RequiredBy",
    "UpheldBy",
    "Also",
    "Sockets",
];

const QUADLET_ARG_KEYS: &[&str] = &[
    "Annotation",
    "Environment",
    "EnvironmentFile",
    "Exec",
    "GlobalArgs",
    "Label",
    "Mask",
    "Mount",
    "Options",
    "PodmanArgs",
    "Secret",
    "Unmask",
];

const QUADLET_STRV_KEYS: &[&str] = &[
    "AddCapability",
    "AddDevice",
    "DropCapability",
    "GIDMap",
    "LogOpt",
    "RemapGid",
    "RemapUid",
    "Sysctl",
    "UIDMap",
];

/// Quadlet's file types and the section each converts.
const QUADLET_SECTIONS: &[(&str, &str)] = &[
    ("container", "Container"),
    ("volume", "Volume"),
    ("network", "Network"),
    ("kube", "Kube"),
    ("pod", "Pod"),
    ("image", "Image"),
    ("build", "Build"),
];

/// The Quadlet section converted for a file named `name` (after `.tera`/`.j2` is dropped), or
/// `None` for a systemd unit.
pub fn quadlet_section(name: &str) -> Option<&'static str> {
    let base = name
        .strip_suffix(".tera")
        .or_else(|| name.strip_suffix(".j2"))
        .unwrap_or(name);
    let ext = base.rsplit_once('.')?.1;
    QUADLET_SECTIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, s)| *s)
}

/// The grammar of `key` in `section`, for a Quadlet file converting `quadlet` or a systemd unit.
pub fn grammar(quadlet: Option<&str>, section: &str, key: &str) -> Grammar {
    if quadlet == Some(section) {
        if QUADLET_ARG_KEYS.contains(&key) {
            Grammar::QuadletArgs
        } else if QUADLET_STRV_KEYS.contains(&key) {
            Grammar::QuadletStrv
        } else {
            Grammar::QuadletPlain
        }
    } else if EXEC_KEYS.contains(&key) {
        Grammar::Exec
    } else if key == "Environment" {
        Grammar::Environ
    } else if UNIT_LIST_KEYS.contains(&key) {
        Grammar::UnitList
    } else {
        Grammar::Plain
    }
}

/// `cunescape_one` on bytes: decodes the escape at `s[0..]` (after the backslash). Returns the
/// bytes and how many input bytes were used, or `None` for an unknown or NUL escape.
fn cunescape_one(s: &[u8]) -> Option<(Vec<u8>, usize)> {
    let simple = match *s.first()? {
        b'a' => 7,
        b'b' => 8,
        b'f' => 12,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 11,
        b's' => b' ',
        c @ (b'\\' | b'"' | b'\'') => c,
        _ => 0,
    };
    if simple != 0 {
        return Some((vec![simple], 1));
    }
    let num = |n: usize, radix: u32| -> Option<u32> {
        let digits = std::str::from_utf8(s.get(1..=n)?).ok()?;
        if !digits.bytes().all(|b| char::from(b).is_digit(radix)) {
            return None;
        }
        u32::from_str_radix(digits, radix).ok()
    };
    let (code, used, byte) = match s[0] {
        b'x' => (num(2, 16)?, 3, true),
        b'u' => (num(4, 16)?, 5, false),
        b'U' => (num(8, 16)?, 9, false),
        b'0'..=b'7' => {
            let digits = std::str::from_utf8(s.get(..3)?).ok()?;
            (u32::from_str_radix(digits, 8).ok()?, 3, true)
        }
        _ => return None,
    };
    if code == 0 {
        return None;
    }
    if byte {
        return Some((vec![u8::try_from(code).ok()?], used));
    }
    let c = char::from_u32(code)?;
    Some((c.to_string().into_bytes(), used))
}

/// systemd's `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)` over a whole value, on
/// bytes; an unknown escape is kept verbatim (the `_and_warn` retry). Each word comes with
/// whether any of it was quoted or escaped.
fn split_systemd(value: &[u8]) -> Result<Vec<(Vec<u8>, bool)>, String> {
    let is_sep = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < value.len() && is_sep(value[i]) {
            i += 1;
        }
        if i >= value.len() {
            return Ok(words);
        }
        let mut word = Vec::new();
        let mut special = false;
        let mut quote = None;
        while i < value.len() {
            let b = value[i];
            i += 1;
            if b == b'\\' {
                special = true;
                if i >= value.len() {
                    return Err("ends in a lone backslash".into());
                }
                if let Some((bytes, used)) = cunescape_one(&value[i..]) {
                    word.extend(bytes);
                    i += used;
                } else {
                    word.push(b'\\');
                    word.push(value[i]);
                    i += 1;
                }
            } else if let Some(q) = quote {
                if b == q {
                    quote = None;
                } else {
                    word.push(b);
                }
            } else if b == b'"' || b == b'\'' {
                special = true;
                quote = Some(b);
            } else if is_sep(b) {
                break;
            } else {
                word.push(b);
            }
        }
        if quote.is_some() {
            return Err("has an unbalanced quote".into());
        }
        words.push((word, special));
    }
}

/// `specifier_printf`: `%%` is a literal `%`, `%c` (c alphanumeric) a specifier.
fn specifiers(word: &[u8]) -> Vec<Tok> {
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        match (word[i], word.get(i + 1)) {
            (b'%', Some(b'%')) => {
                out.push(Tok::B(b'%'));
                i += 2;
            }
            (b'%', Some(&c)) if c.is_ascii_alphanumeric() => {
                out.push(Tok::Spec(c));
                i += 2;
            }
            (b, _) => {
                out.push(Tok::B(b));
                i += 1;
            }
        }
    }
    out
}

/// `replace_env_argv` on one word: a word starting with `$` (not `$$`/`${`) is a variable
/// named by the rest of the word; inside a word `$$` is `$` and `${NAME}` a variable.
fn dollars(word: Vec<Tok>) -> Vec<Tok> {
    let name = |t: Tok| match t {
        Tok::B(b) => Tok::VarName(b),
        other => other,
    };
    let dollar = Tok::B(b'$');
    if word.first() == Some(&dollar) && !matches!(word.get(1), Some(Tok::B(b'$' | b'{'))) {
        return std::iter::once(Tok::Var)
            .chain(word.into_iter().skip(1).map(name))
            .collect();
    }
    let mut out = Vec::with_capacity(word.len());
    let mut it = word.into_iter().peekable();
    while let Some(t) = it.next() {
        if t != dollar {
            out.push(t);
            continue;
        }
        match it.peek() {
            Some(Tok::B(b'$')) => {
                it.next();
                out.push(dollar.clone());
            }
            Some(Tok::B(b'{')) => {
                out.push(Tok::Var);
                for t in it.by_ref() {
                    let end = t == Tok::B(b'}');
                    out.push(name(t));
                    if end {
                        break;
                    }
                }
            }
            _ => out.push(t),
        }
    }
    out
}

/// The words the reader of `grammar` sees in `value`.
pub fn decode(grammar: Grammar, value: &str) -> Result<Vec<Vec<Tok>>, String> {
    let exec_word = |w: &[u8]| dollars(specifiers(w));
    Ok(match grammar {
        Grammar::Exec => {
            let mut out = Vec::new();
            let mut first = true;
            let mut expand = true;
            for (word, special) in split_systemd(value.as_bytes())? {
                // An unquoted `;` separates commands; as the first word even a quoted one does.
                if word == b";" && (!special || first) {
                    out.push(vec![Tok::Sep]);
                    first = true;
                    continue;
                }
                let mut toks = Vec::new();
                let mut rest = word.as_slice();
                if first {
                    let n = rest
                        .iter()
                        .take_while(|b| matches!(b, b'-' | b'@' | b':' | b'+' | b'!'))
                        .count();
                    toks.extend(rest[..n].iter().map(|&b| Tok::Prefix(b)));
                    expand = !rest[..n].contains(&b':');
                    rest = &rest[n..];
                    first = false;
                }
                toks.extend(if expand {
                    exec_word(rest)
                } else {
                    specifiers(rest)
                });
                out.push(toks);
            }
            out
        }
        Grammar::Environ => split_systemd(value.as_bytes())?
            .into_iter()
            .map(|(w, _)| specifiers(&w))
            .collect(),
        Grammar::UnitList => value
            .split_ascii_whitespace()
            .map(|w| specifiers(w.as_bytes()))
            .collect(),
        Grammar::Plain => vec![specifiers(value.as_bytes())],
        Grammar::QuadletArgs => split_args(value)
            .map_err(|e| format!("Quadlet cannot split it: {e}"))?
            .iter()
            .map(|w| exec_word(w.as_bytes()))
            .collect(),
        Grammar::QuadletStrv => {
            let mut words = Vec::new();
            split_strv(value, &mut words);
            words.iter().map(|w| exec_word(w.as_bytes())).collect()
        }
        Grammar::QuadletPlain => {
            let v = value.trim_end().trim_matches('"');
            vec![exec_word(v.as_bytes())]
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Vec<Tok> {
        s.bytes().map(Tok::B).collect()
    }

    #[test]
    fn exec_lines_decode_quotes_escapes_specifiers_and_dollars() {
        let words = decode(
            Grammar::Exec,
            r#"-/bin/echo "a b" 100%% $$X \x41 ; :/bin/x $Y"#,
        )
        .unwrap();
        let mut first = vec![Tok::Prefix(b'-')];
        first.extend(lit("/bin/echo"));
        assert_eq!(
            words,
            vec![
                first,
                lit("a b"),
                lit("100%"),
                lit("$X"),
                lit("A"),
                vec![Tok::Sep],
                std::iter::once(Tok::Prefix(b':'))
                    .chain(lit("/bin/x"))
                    .collect(),
                lit("$Y"),
            ]
        );
        assert_eq!(
            decode(Grammar::Exec, "/bin/x ${A}b %i").unwrap()[1..],
            [
                vec![
                    Tok::Var,
                    Tok::VarName(b'{'),
                    Tok::VarName(b'A'),
                    Tok::VarName(b'}'),
                    Tok::B(b'b')
                ],
                vec![Tok::Spec(b'i')]
            ]
        );
        assert!(decode(Grammar::Exec, r#"/bin/x "a"#).is_err());
        assert_eq!(decode(Grammar::Exec, r#"/bin/x ";""#).unwrap()[1], lit(";"));
    }

    #[test]
    fn environment_does_not_expand_dollars() {
        assert_eq!(
            decode(Grammar::Environ, r#""A=$X 5%%" B=1"#).unwrap(),
            vec![lit("A=$X 5%"), lit("B=1")]
        );
    }

    #[test]
    fn quadlet_words_are_read_twice() {
        assert_eq!(
            decode(Grammar::QuadletArgs, r#""APP=a b $$x %%" L=\xe9"#).unwrap(),
            vec![lit("APP=a b $x %"), lit("L=é")]
        );
        assert_eq!(
            decode(Grammar::QuadletPlain, "$HOME").unwrap(),
            vec![std::iter::once(Tok::Var)
                .chain(b"HOME".iter().map(|&b| Tok::VarName(b)))
                .collect::<Vec<_>>()]
        );
    }

    #[test]
    fn grammars_follow_the_file_type_and_section() {
        assert_eq!(quadlet_section("console.container.tera"), Some("Container"));
        assert_eq!(quadlet_section("web.service.tera"), None);
        assert_eq!(
            grammar(Some("Container"), "Container", "Environment"),
            Grammar::QuadletArgs
        );
        assert_eq!(
            grammar(Some("Container"), "Service", "Environment"),
            Grammar::Environ
        );
        assert_eq!(grammar(None, "Service", "ExecStopPost"), Grammar::Exec);
        assert_eq!(grammar(None, "Unit", "After"), Grammar::UnitList);
        assert_eq!(grammar(None, "Unit", "Description"), Grammar::Plain);
    }
}
