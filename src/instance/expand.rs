//! Exec-time `$VAR` expansion of command arguments, exactly as systemd 252 does it for an
//! `ExecStart=` line without the `:` prefix (`replace_env_argv()` and `replace_env()` with no
//! flags, src/basic/env-util.c; the word splitting is `strv_split_full(WHITESPACE,
//! EXTRACT_RELAX|EXTRACT_UNQUOTE)`, src/basic/extract-word.c).
//!
//! `unitwright instance exec` runs with the `:` prefix (so that systemd leaves the arguments
//! alone) and applies these rules itself, with the instance's settings in the environment:
//!
//! * A word that starts with `$`, not followed by `{` or `$`, is a whole-word variable: the rest
//!   of the word is the name; the value is split on whitespace with quote removal (`"…"`,
//!   `'…'`, a backslash takes the next byte literally) and replaces the word by as many words as
//!   it yields; an unset variable removes the word.
//! * Inside any other word, `${NAME}` is replaced by the value (nothing if unset) and `$$` by
//!   `$`; `$NAME` inside a word is left alone; an unterminated `${…` stays as it is; `${A:…}`
//!   (shell-style defaults) is not supported by systemd 252 and stays as it is.
//!
//! Everything works on bytes: arguments and values need not be UTF-8.

/// systemd's `WHITESPACE`.
const WHITESPACE: &[u8] = b" \t\n\r";

/// An environment: `NAME=value` entries in order; later entries are searched first, like
/// `strv_env_get_n()` (which walks the list backwards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    entries: Vec<Vec<u8>>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Env::default()
    }

    /// Appends `name=value` (shadowing an earlier entry of the same name).
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let mut e = Vec::with_capacity(name.len() + 1 + value.len());
        e.extend_from_slice(name);
        e.push(b'=');
        e.extend_from_slice(value);
        self.entries.push(e);
    }

    /// `strv_env_get_n(env, name, len)`: the value of the last entry that starts with `name`
    /// followed by `=`. An empty name is never found.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        if name.is_empty() {
            return None;
        }
        self.entries.iter().rev().find_map(|e| {
            (e.len() > name.len() && e.starts_with(name) && e[name.len()] == b'=')
                .then(|| &e[name.len() + 1..])
        })
    }
}

/// Expands `args` like systemd expands an exec line's arguments (see the module docs).
pub fn expand_argv(args: &[Vec<u8>], env: &Env) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        if arg.first() == Some(&b'$') && !matches!(arg.get(1), Some(b'{' | b'$')) {
            if let Some(value) = env.get(&arg[1..]) {
                out.extend(split_unquote(value));
            }
            continue;
        }
        out.push(replace_env(arg, env));
    }
    out
}

/// `replace_env(format, env, 0)`: `${NAME}` and `$$` inside a word.
pub fn replace_env(word: &[u8], env: &Env) -> Vec<u8> {
    #[derive(PartialEq)]
    enum State {
        Word,
        Curly,
        Variable,
    }
    let mut state = State::Word;
    let mut out = Vec::with_capacity(word.len());
    // Start of the part of `word` not copied to `out` yet.
    let mut start = 0;
    for (i, &c) in word.iter().enumerate() {
        match state {
            State::Word => {
                if c == b'$' {
                    state = State::Curly;
                }
            }
            State::Curly => {
                if c == b'{' {
                    out.extend_from_slice(&word[start..i - 1]);
                    start = i - 1;
                    state = State::Variable;
                } else if c == b'$' {
                    out.extend_from_slice(&word[start..i]);
                    start = i + 1;
                    state = State::Word;
                } else {
                    state = State::Word;
                }
            }
            State::Variable => {
                if c == b'}' {
                    if let Some(v) = env.get(&word[start + 2..i]) {
                        out.extend_from_slice(v);
                    }
                    start = i + 1;
                    state = State::Word;
                } else if c == b':' {
                    // Extended syntax is off for exec lines: no replacement.
                    state = State::Word;
                }
            }
        }
    }
    out.extend_from_slice(&word[start..]);
    out
}

/// `strv_split_full(value, WHITESPACE, EXTRACT_RELAX|EXTRACT_UNQUOTE)`: words separated by
/// whitespace; `'…'` and `"…"` quote (an unbalanced quote runs to the end); a backslash, inside
/// or outside quotes, takes the next byte literally (a trailing one is dropped). Empty quoted
/// words (`''`) are words.
pub fn split_unquote(value: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < value.len() && WHITESPACE.contains(&value[i]) {
            i += 1;
        }
        if i >= value.len() {
            return words;
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < value.len() {
            let c = value[i];
            i += 1;
            match quote {
                Some(q) if c == q => quote = None,
                _ if c == b'\\' => {
                    if let Some(&next) = value.get(i) {
                        word.push(next);
                        i += 1;
                    }
                }
                None if c == b'\'' || c == b'"' => quote = Some(c),
                None if WHITESPACE.contains(&c) => break,
                Some(_) | None => word.push(c),
            }
        }
        words.push(word);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut e = Env::new();
        for (k, v) in pairs {
            e.push(k.as_bytes(), v.as_bytes());
        }
        e
    }

    fn expand(args: &[&str], e: &Env) -> Vec<String> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        expand_argv(&args, e)
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn whole_word_variables_split_and_unset_ones_vanish() {
        let e = env(&[("A", "one  two\t'three four' \"fi\\\"ve\""), ("E", "")]);
        assert_eq!(
            expand(&["x", "$A", "$UNSET", "$E", "y"], &e),
            ["x", "one", "two", "three four", "fi\"ve", "y"]
        );
    }

    #[test]
    fn whole_word_takes_the_rest_of_the_word_as_the_name() {
        let e = env(&[("PORT", "80")]);
        assert_eq!(expand(&["$PORT/tcp", "$", "a$PORT"], &e), ["a$PORT"]);
    }

    #[test]
    fn braces_expand_inside_words_and_dollar_dollar_is_a_dollar() {
        let e = env(&[("P", "5900"), ("J", "{\"a\": 1}")]);
        assert_eq!(
            expand(
                &[
                    "127.0.0.1:${P}:5900",
                    "X=${J}",
                    "$${P}",
                    "a$$b",
                    "${NOPE}z",
                    "${P"
                ],
                &e
            ),
            [
                "127.0.0.1:5900:5900",
                "X={\"a\": 1}",
                "${P}",
                "a$b",
                "z",
                "${P"
            ]
        );
    }

    #[test]
    fn defaults_syntax_is_left_alone_as_systemd_252_does() {
        let e = env(&[("A", "1")]);
        assert_eq!(expand(&["${A:-x}", "${}"], &e), ["${A:-x}", ""]);
    }

    #[test]
    fn values_are_never_rescanned() {
        let e = env(&[("A", "${B}"), ("B", "no")]);
        assert_eq!(expand(&["${A}", "$A"], &e), ["${B}", "${B}"]);
    }

    #[test]
    fn later_entries_shadow_earlier_ones() {
        let e = env(&[("A", "old"), ("A", "new")]);
        assert_eq!(expand(&["${A}"], &e), ["new"]);
    }

    #[test]
    fn splitting_keeps_empty_quoted_words_and_drops_a_trailing_backslash() {
        assert_eq!(
            split_unquote(b" a '' \"b c\\\" 'unbalanced x\\"),
            vec![b"a".to_vec(), Vec::new(), b"b c\" 'unbalanced x".to_vec()]
        );
    }
}
