//! Rendering unit files (and Quadlet files) from tera templates, with every value escaped for its
//! exact unit-file context and every rendered file checked before it is returned.
//!
//! The rules come from systemd 252's readers (spec §5, §6): `config_parse_exec`,
//! `config_parse_environ`, `config_parse_unit_string_printf`, `config_parse_unit_deps`,
//! `specifier_printf`, `replace_env_argv`, and for Quadlet files podman Quadlet 5.4.2's
//! `LookupAllArgs`/`Lookup` followed by systemd reading the generated exec line. The escaping
//! itself is [`crate::unit::quote`] and [`crate::escape`]; this module applies it and checks it.
//!
//! # Filters
//! Every `{{ … }}` that prints a value must end in one of these filters (chaining tera's own
//! filters before it is fine: `{{ name | lower | setting }}`):
//!
//! | filter | for | writes |
//! |---|---|---|
//! | `exec_arg` | arguments of `ExecStart=` & co. | `"…"` with `\\ \" %% $$ \xNN`; a list gives one word per element |
//! | `exec_arg_literal` | arguments of a `:`-prefixed exec line | the same without `$$` |
//! | `exec_path` | the executable of an exec line | an absolute normalized path as `"…"` |
//! | `env(name="N")` | `Environment=` | `"N=…"` (no `$$`: `Environment=` does not expand); a map without `name` gives one word per entry |
//! | `setting` | `Description=` and other plain settings | `%%`; refuses control characters, edge blanks, a trailing `\` |
//! | `path` | `WorkingDirectory=`, `Where=`, … | like `setting`, for an absolute normalized path |
//! | `unit_names` | `After=`, `Wants=`, `WantedBy=`, … | valid unit names (or a list), space-separated |
//! | `specifier` | composing literal text | `%` → `%%` only |
//! | `unit_name` | a unit name from any text | `systemd-escape` |
//! | `path_escape` | a unit name from a path | `systemd-escape --path` |
//! | `instance(template="t@.service")` | an instance name from any id | `systemd-escape --template=t@.service` |
//! | `quadlet_arg` / `quadlet_arg(key="K")` | Quadlet `Exec=`, `Environment=`, `Label=`, `PodmanArgs=`, … | `"…"` (or `"K=…"`) with `\\ \" %% $$`, controls as `\xNN`; a list/map gives one word per element/entry |
//! | `quadlet_value` | single-valued Quadlet keys: `Image=`, `ContainerName=`, `PublishPort=`, … | `%%`, `$$`; refuses what `setting` refuses and edge `"` |
//!
//! Numbers and booleans are written as JSON writes them; `null` is an error.
//!
//! # No autoescape, no unfiltered values
//! tera's HTML autoescape is off. Instead, every template is checked when it is added: an
//! expression that prints a variable (or the result of a function or tera filter) without ending
//! in a context filter is an error, and so is tera's `safe`. The right escaping depends on where
//! the value goes (the same `$` must be `$$` in `ExecStart=` and `$` in `Environment=`), which a
//! default cannot know, and a wrong default would be silently wrong. Literals (`{{ "x" }}`,
//! `{{ 5 }}`) are template text and need no filter, and `{{ throw(message="…") }}` stops the
//! render with a message (for checks a template makes on its values). There is no raw escape
//! hatch: text that is systemd syntax belongs in the template itself.
//!
//! # The structure check
//! Escaping is necessary but not enough: a correct filter in the wrong place (`setting` in
//! `ExecStart=`, a filtered value wrapped in the template's own quotes, a `%` just before a value)
//! still lets a value change the unit. So every render is checked:
//! 1. The template is rendered twice with the same values (so `if`/`for` take the same branches):
//!    once with every filter writing *inert placeholders* (letters and digits, one word per item,
//!    nothing systemd interprets), once for real. The placeholder render is the structure the
//!    template author wrote; no value can have changed it.
//! 2. The real output must equal the placeholder output with each placeholder replaced by its
//!    filter's text (else control flow depended on filtered text, which is refused).
//! 3. Both are parsed with [`crate::unit::parse`]; they must have the same sections, in the same
//!    order, each with the same keys and comments in the same order (an injected newline, `\r`,
//!    section header or continuation backslash shows up here). The output may not contain NUL or
//!    `\r` at all, since systemd ends lines there, nor a line over 1 MiB (`LONG_LINE_MAX`).
//! 4. Every key line holding a value is decoded the way its reader reads it ([`decode`]:
//!    exec lines with quotes, C escapes, `;`, prefixes, specifiers and exec-time `$`;
//!    `Environment=` words; dependency lists; plain values; Quadlet's splitting followed by
//!    systemd's reading of the generated podman command). The placeholder line is decoded the
//!    same way and each placeholder replaced by what its value must mean (the value itself, or
//!    `NAME=value`). The two token lists must be equal word for word: same number of words, and
//!    every value read back byte for byte, with no specifier, variable, prefix or separator the
//!    template did not write.
//!
//! Values cannot appear in section names or keys, and a line whose whole value came from values
//! may not end up empty (`Environment=` from an empty map would *reset* the setting); an empty
//! list next to other words just adds no words.
//!
//! Which reader applies ([`grammar`]) depends on the unit's file name (the template name without
//! `.tera`, or the name given to [`Renderer::render_as`]): in the type section of a Quadlet file
//! (`[Container]` of a `.container`, …) keys are read by Quadlet, everywhere else by systemd.
//! The check is exactly as good as those readers' models; `tests/render_systemd.rs` holds them
//! against a real `systemd --user` (and our Quadlet conversion) with random values.
//!
//! # Errors
//! Errors name the template, the template line when it can be found (the line that has the
//! key and the filter; with loops the rendered line is given too), the key, the filter and the
//! value. Values may hold credentials, so at most their first 16 characters are shown, escaped,
//! with the length of the whole.

mod check;
mod filters;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use check::{decode, grammar, quadlet_section, Grammar, Tok};
pub use filters::{shown, Kind};

use crate::unit::file::{Group, UnitFile};
use filters::{placeholder, with_session, Call, ContextFilter, Mode, EMPTY};

/// What went wrong, without the location (see [`Error`]).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The template does not parse, or tera failed to render it.
    #[error("{0}")]
    Tera(String),
    /// An expression prints a value without a context filter.
    #[error(
        "`{{{{ {expr} }}}}` prints a value without a context filter; end it in one of: {filters}"
    )]
    Unfiltered {
        /// The expression, as far as it can be shown.
        expr: String,
        /// The filters to choose from.
        filters: String,
    },
    /// tera's `safe` filter was used.
    #[error("the `safe` filter is not allowed: values are always escaped for their context")]
    Safe,
    /// A filter refused a value.
    #[error("{filter}: value {value} {why}")]
    Refused {
        /// The filter.
        filter: &'static str,
        /// The shortened value.
        value: String,
        /// Why.
        why: String,
    },
    /// A value would change the structure or meaning of the unit.
    #[error("{}", changed_message(filter, value, why))]
    Changed {
        /// The filter (empty if unknown).
        filter: &'static str,
        /// The shortened value (empty if unknown).
        value: String,
        /// What changed.
        why: String,
    },
    /// The rendered file cannot be parsed.
    #[error("the rendered unit does not parse: {0}")]
    Parse(String),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn changed_message(filter: &str, value: &str, why: &str) -> String {
    if filter.is_empty() {
        format!("a value {why}")
    } else {
        format!("{filter}: value {value} {why}")
    }
}

/// A rendering error: the template, where in it, and what.
#[derive(Debug)]
pub struct Error {
    /// The template name (its file name for templates read from files).
    pub template: String,
    /// The 1-based template line, when known.
    pub line: Option<usize>,
    /// The 1-based line of the rendered output, when known and different from `line`.
    pub rendered_line: Option<usize>,
    /// The key (`[Section] Key`), when known.
    pub key: Option<String>,
    /// What went wrong (boxed: errors travel through every render call).
    pub kind: Box<ErrorKind>,
}

impl Error {
    /// The error without the template name, for callers that name the template themselves:
    /// `line 5 (rendered line 7), [Service] ExecStart=: exec_arg: value "…" …`.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        if let Some(line) = self.line {
            let _ = write!(out, "line {line}");
        }
        if let Some(r) = self.rendered_line.filter(|r| Some(*r) != self.line) {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "(rendered line {r})");
        }
        if let Some(key) = &self.key {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(key);
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&self.kind.to_string());
        out
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.template)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(r) = self.rendered_line.filter(|r| Some(*r) != self.line) {
            write!(f, " (rendered line {r})")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", {key}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.kind.as_ref() {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Renders templates with the context filters and checks every result. See the module docs.
#[derive(Debug)]
pub struct Renderer {
    tera: tera::Tera,
    /// Template sources by name, for locating errors and choosing placeholders.
    sources: Vec<(String, String)>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer without templates.
    pub fn new() -> Self {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(Vec::new());
        for (name, kind) in Kind::ALL {
            tera.register_filter(name, ContextFilter(kind));
        }
        Renderer {
            tera,
            sources: Vec::new(),
        }
    }

    /// Adds the template `name` (its name decides Quadlet or systemd rules: `x.container.tera`
    /// is a Quadlet `.container`). Fails if it does not parse or prints a value without a
    /// context filter.
    pub fn add_template(&mut self, name: &str, source: &str) -> Result<(), Error> {
        let err = |line, kind| Error {
            template: name.to_owned(),
            line,
            rendered_line: None,
            key: None,
            kind: Box::new(kind),
        };
        self.tera
            .add_raw_template(name, source)
            .map_err(|e| err(None, ErrorKind::Tera(tera_message(&e))))?;
        let template = self
            .tera
            .get_template(name)
            .map_err(|e| err(None, ErrorKind::Tera(tera_message(&e))))?;
        let mut bad = None;
        walk(&template.ast, &mut bad);
        for m in template.macros.values() {
            walk(&m.body, &mut bad);
        }
        if let Some((expr, safe)) = bad {
            let line = find_line(source, |l| l.contains("{{") && l.contains(expr.as_str()));
            let kind = if safe {
                ErrorKind::Safe
            } else {
                ErrorKind::Unfiltered {
                    expr,
                    filters: Kind::ALL.map(|(n, _)| n).join(", "),
                }
            };
            return Err(err(line, kind));
        }
        self.sources.retain(|(n, _)| n != name);
        self.sources.push((name.to_owned(), source.to_owned()));
        Ok(())
    }

    /// Reads and adds the template at `path`, named by its file name; returns the name.
    pub fn add_template_file(&mut self, path: &Path) -> Result<String, Error> {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let source = std::fs::read_to_string(path).map_err(|e| Error {
            template: path.display().to_string(),
            line: None,
            rendered_line: None,
            key: None,
            kind: Box::new(ErrorKind::Io(e)),
        })?;
        self.add_template(&name, &source)?;
        Ok(name)
    }

    /// Renders the template `name` with `values` (a JSON object) and checks the result.
    pub fn render(&self, name: &str, values: &serde_json::Value) -> Result<String, Error> {
        self.render_as(name, values, name)
    }

    /// Like [`render`](Self::render) for a unit that will be named `file_name`, whose type
    /// (systemd unit or Quadlet `.container`, …) decides how values are read back, when the
    /// template's own name does not tell (`x.tera` rendered to `web.container`).
    pub fn render_as(
        &self,
        name: &str,
        values: &serde_json::Value,
        file_name: &str,
    ) -> Result<String, Error> {
        let source = self
            .sources
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, s)| s.as_str());
        let err = |kind| Error {
            template: name.to_owned(),
            line: None,
            rendered_line: None,
            key: None,
            kind: Box::new(kind),
        };
        let context = tera::Context::from_value(values.clone())
            .map_err(|e| err(ErrorKind::Tera(format!("the values must be a map: {e}"))))?;
        let nonce = self.nonce();
        let (shape, _) = with_session(Mode::Placeholder(nonce.clone()), || {
            self.tera.render(name, &context)
        });
        // Leading blank lines are dropped, so that a template can open with a `{# … #}` block
        // (tera keeps the newline after a comment).
        let shape = shape.map_err(|e| err(ErrorKind::Tera(tera_message(&e))))?;
        let shape = shape.trim_start_matches('\n');
        let (real, session) = with_session(Mode::Real, || self.tera.render(name, &context));
        let locator = Locator {
            name,
            file_name,
            source,
            shape,
            nonce: &nonce,
            calls: &session.calls,
        };
        let real = match real {
            Ok(r) => r.trim_start_matches('\n').to_owned(),
            Err(e) => {
                return Err(match session.refusal {
                    Some(r) => locator.error(
                        r.index,
                        ErrorKind::Refused {
                            filter: r.kind.name(),
                            value: r.shown,
                            why: r.why,
                        },
                    ),
                    None => err(ErrorKind::Tera(tera_message(&e))),
                })
            }
        };
        locator.check(&real)?;
        Ok(real)
    }

    /// Renders the template file at `path` with `values` (convenience for one-off renders).
    pub fn render_file(path: &Path, values: &serde_json::Value) -> Result<String, Error> {
        let mut r = Renderer::new();
        let name = r.add_template_file(path)?;
        r.render(&name, values)
    }

    /// A placeholder prefix that occurs in no template source.
    fn nonce(&self) -> String {
        let mut nonce = String::from("uwph");
        let mut suffix = b'a';
        while self.sources.iter().any(|(_, s)| s.contains(nonce.as_str())) {
            nonce.push(char::from(suffix));
            suffix = if suffix == b'z' { b'a' } else { suffix + 1 };
        }
        nonce
    }
}

/// The message of a tera error with its causes (tera puts the useful part in the sources).
fn tera_message(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The 1-based number of the first line of `source` matching `pred`.
fn find_line(source: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    source.lines().position(pred).map(|i| i + 1)
}

/// A short description of an expression for messages.
fn describe(expr: &tera::ast::Expr) -> String {
    use tera::ast::ExprVal;
    let base = match &expr.val {
        ExprVal::Ident(i) => i.clone(),
        ExprVal::FunctionCall(f) => format!("{}(…)", f.name),
        ExprVal::StringConcat(c) => c
            .values
            .iter()
            .map(|v| match v {
                ExprVal::Ident(i) => i.clone(),
                _ => "…".into(),
            })
            .collect::<Vec<_>>()
            .join(" ~ "),
        _ => "…".into(),
    };
    expr.filters
        .iter()
        .fold(base, |acc, f| format!("{acc} | {}", f.name))
}

/// Finds the first printed expression that is neither a literal nor ends in a context filter
/// (`(description, uses safe)`).
fn walk(nodes: &[tera::ast::Node], bad: &mut Option<(String, bool)>) {
    use tera::ast::{ExprVal, Node};
    for node in nodes {
        if bad.is_some() {
            return;
        }
        match node {
            Node::VariableBlock(_, expr) => {
                let safe = expr.filters.iter().any(|f| f.name == "safe");
                let filtered = expr
                    .filters
                    .last()
                    .is_some_and(|f| Kind::from_name(&f.name).is_some());
                let literal = expr.filters.is_empty()
                    && matches!(
                        expr.val,
                        ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_)
                    );
                let macro_call = matches!(expr.val, ExprVal::MacroCall(_));
                let throw = matches!(&expr.val, ExprVal::FunctionCall(f) if f.name == "throw");
                if safe || !(filtered || literal || macro_call || throw) {
                    *bad = Some((describe(expr), safe));
                }
            }
            Node::MacroDefinition(_, m, _) => walk(&m.body, bad),
            Node::FilterSection(_, f, _) => {
                if f.filter.name == "safe" {
                    *bad = Some(("filter safe".into(), true));
                }
                walk(&f.body, bad);
            }
            Node::Block(_, b, _) => walk(&b.body, bad),
            Node::Forloop(_, f, _) => {
                walk(&f.body, bad);
                if let Some(empty) = &f.empty_body {
                    walk(empty, bad);
                }
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    walk(body, bad);
                }
                if let Some((_, body)) = &i.otherwise {
                    walk(body, bad);
                }
            }
            _ => {}
        }
    }
}

/// A placeholder found in the placeholder render: filter call and item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ph {
    call: usize,
    item: usize,
}

/// Finds the placeholders in `text` (each `<nonce><digits>n<digits>z`, or `<nonce><digits>nz`
/// for a call that wrote nothing, reported with item [`EMPTY`]).
fn placeholders(text: &str, nonce: &str) -> Vec<(usize, Ph)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(nonce) {
        let start = from + pos;
        let rest = &text[start + nonce.len()..];
        let call_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = &rest[call_len..];
        let item_len = after
            .strip_prefix('n')
            .map_or(0, |a| a.bytes().take_while(u8::is_ascii_digit).count());
        let end = call_len + 1 + item_len;
        let ends = after.starts_with('n') && rest.as_bytes().get(end) == Some(&b'z');
        if call_len > 0 && ends {
            let item = if item_len == 0 {
                Ok(EMPTY)
            } else {
                rest[call_len + 1..end].parse()
            };
            if let (Ok(call), Ok(item)) = (rest[..call_len].parse(), item) {
                out.push((start, Ph { call, item }));
            }
            from = start + nonce.len() + end + 1;
        } else {
            from = start + nonce.len();
        }
    }
    out
}

/// Everything needed to check a render and to say where a problem is.
struct Locator<'a> {
    name: &'a str,
    /// The name of the unit being rendered (decides systemd or Quadlet reading).
    file_name: &'a str,
    source: &'a str,
    shape: &'a str,
    nonce: &'a str,
    calls: &'a [Call],
}

impl Locator<'_> {
    fn ph_len(&self, ph: Ph) -> usize {
        placeholder(self.nonce, ph.call, ph.item).len()
    }

    /// An error about filter call `call`, located through the placeholder render.
    fn error(&self, call: usize, kind: ErrorKind) -> Error {
        let at = placeholders(self.shape, self.nonce)
            .into_iter()
            .find(|(_, ph)| ph.call == call)
            .map(|(pos, _)| pos);
        let (rendered_line, key) = match at {
            Some(pos) => {
                let line_no = self.shape[..pos].matches('\n').count() + 1;
                let line = self.shape.lines().nth(line_no - 1).unwrap_or("");
                let key = line
                    .split_once('=')
                    .map(|(k, _)| k.trim().to_owned())
                    .filter(|k| !k.is_empty() && !k.contains(self.nonce));
                (Some(line_no), key)
            }
            None => (None, None),
        };
        self.error_at(rendered_line, key, call, kind)
    }

    fn error_at(
        &self,
        rendered_line: Option<usize>,
        key: Option<String>,
        call: usize,
        kind: ErrorKind,
    ) -> Error {
        let filter = match &kind {
            ErrorKind::Refused { filter, .. } | ErrorKind::Changed { filter, .. } => *filter,
            _ => self.calls.get(call).map_or("", |c| c.kind.name()),
        };
        // The template line: the one with this key and filter (exact when the template has no
        // loop producing several such lines).
        let line = key
            .as_deref()
            .and_then(|k| {
                find_line(self.source, |l| {
                    let l = l.trim_start();
                    l.starts_with(k)
                        && l[k.len()..].trim_start().starts_with('=')
                        && (filter.is_empty() || l.contains(filter))
                })
            })
            .or(rendered_line
                .filter(|&r| self.source.lines().count() == self.shape.lines().count() && r > 0));
        let section = rendered_line.and_then(|r| {
            self.shape
                .lines()
                .take(r)
                .filter_map(|l| {
                    let l = l.trim();
                    l.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
                })
                .last()
                .map(str::to_owned)
        });
        Error {
            template: self.name.to_owned(),
            line,
            rendered_line,
            key: key.map(|k| match section {
                Some(s) => format!("[{s}] {k}="),
                None => format!("{k}="),
            }),
            kind: Box::new(kind),
        }
    }

    /// An error about a value that changed the unit, for the placeholder `ph` (if known).
    fn changed(&self, line: Option<usize>, key: Option<&str>, ph: Option<Ph>, why: &str) -> Error {
        let (filter, value) = ph
            .and_then(|ph| {
                let call = self.calls.get(ph.call)?;
                let item = call.items.get(ph.item)?;
                Some((
                    call.kind.name(),
                    shown(&String::from_utf8_lossy(&item.meaning)),
                ))
            })
            .unwrap_or(("", "(unknown)".into()));
        let kind = ErrorKind::Changed {
            filter,
            value,
            why: why.to_owned(),
        };
        self.error_at(
            line,
            key.map(str::to_owned),
            ph.map_or(usize::MAX, |p| p.call),
            kind,
        )
    }

    /// Replaces every placeholder of `text` with what `f` gives for it.
    fn substitute(&self, text: &str, f: impl Fn(&filters::Item) -> String) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (pos, ph) in placeholders(text, self.nonce) {
            let call = self.calls.get(ph.call)?;
            out.push_str(&text[last..pos]);
            if ph.item == EMPTY {
                if !call.items.is_empty() {
                    return None;
                }
            } else {
                out.push_str(&f(call.items.get(ph.item)?));
            }
            last = pos + self.ph_len(ph);
        }
        out.push_str(&text[last..]);
        Some(out)
    }

    /// Steps 2–4 of the structure check (module docs).
    fn check(&self, real: &str) -> Result<(), Error> {
        let expected = self.substitute(self.shape, |i| i.text.clone());
        if expected.as_deref() != Some(real) {
            return Err(self.changed(
                None,
                None,
                None,
                "changed the template's output beyond its own place: the template's control flow must not depend on filtered text",
            ));
        }
        if let Some(pos) = real.find(['\r', '\0']) {
            let line = real[..pos].matches('\n').count() + 1;
            return Err(self.changed(
                Some(line),
                None,
                None,
                "left a carriage return or NUL, which ends a line in a unit file",
            ));
        }
        if let Some((i, _)) = real
            .split('\n')
            .enumerate()
            .find(|(_, l)| l.len() > crate::unit::quote::LINE_MAX)
        {
            return Err(self.changed(
                Some(i + 1),
                None,
                None,
                "make a line longer than the 1 MiB systemd reads; the whole unit would fail to load",
            ));
        }
        let path = PathBuf::from(self.name);
        let parse = |t: &str| {
            crate::unit::parse_str(t, &path).map_err(|e| Error {
                template: self.name.to_owned(),
                line: None,
                rendered_line: None,
                key: None,
                kind: Box::new(ErrorKind::Parse(e.to_string())),
            })
        };
        let shape = parse(self.shape)?;
        let real_file = parse(real)?;
        self.compare(&shape, &real_file)
    }

    fn first_ph(&self, text: &str) -> Option<Ph> {
        placeholders(text, self.nonce).first().map(|(_, p)| *p)
    }

    fn compare(&self, shape: &UnitFile, real: &UnitFile) -> Result<(), Error> {
        let quadlet = quadlet_section(self.file_name);
        let line_of = |g: &Group, i: usize| {
            g.lines
                .get(i)
                .map(|l| usize::try_from(l.origin.line).unwrap_or(0))
        };
        for (gi, sg) in shape.groups.iter().enumerate() {
            if sg.name.contains(self.nonce) {
                return Err(self.changed(
                    None,
                    None,
                    self.first_ph(&sg.name),
                    "is used in a section name; values can only be used in values",
                ));
            }
            let Some(rg) = real.groups.get(gi).filter(|rg| rg.name == sg.name) else {
                let ph = sg.lines.iter().rev().find_map(|l| self.first_ph(&l.value));
                return Err(self.changed(
                    None,
                    None,
                    ph,
                    &format!("changed the sections of the unit (section [{}] is not where the template put it)", sg.name),
                ));
            };
            for (i, sl) in sg.lines.iter().enumerate() {
                let rl = rg.lines.get(i);
                let line = line_of(sg, i);
                if sl.key.contains(self.nonce) {
                    return Err(self.changed(
                        line,
                        None,
                        self.first_ph(&sl.key),
                        "is used in a key; values can only be used in values",
                    ));
                }
                let same_shape = rl.is_some_and(|rl| rl.key == sl.key && rl.comment == sl.comment);
                if !same_shape {
                    // The value that broke the line is on this line or the one before.
                    let ph = self.first_ph(&sl.value).or_else(|| {
                        i.checked_sub(1)
                            .and_then(|p| self.first_ph(&sg.lines[p].value))
                    });
                    return Err(self.changed(
                        line,
                        Some(&sl.key).filter(|k| !k.is_empty()).map(String::as_str),
                        ph,
                        "would add, remove or merge lines of the unit (a newline, carriage return, section header or trailing backslash)",
                    ));
                }
                let rl = rl.expect("checked above");
                if sl.comment {
                    continue;
                }
                self.compare_value(quadlet, &sg.name, sl, rl, line)?;
            }
            if rg.lines.len() != sg.lines.len() || rg.comments.len() != sg.comments.len() {
                let ph = sg.lines.iter().rev().find_map(|l| self.first_ph(&l.value));
                return Err(self.changed(
                    line_of(sg, sg.lines.len().saturating_sub(1)),
                    None,
                    ph,
                    "would add lines to the unit",
                ));
            }
        }
        if real.groups.len() != shape.groups.len() {
            return Err(self.changed(None, None, None, "would add sections to the unit"));
        }
        Ok(())
    }

    fn compare_value(
        &self,
        quadlet: Option<&str>,
        section: &str,
        shape: &crate::unit::Line,
        real: &crate::unit::Line,
        line: Option<usize>,
    ) -> Result<(), Error> {
        let phs = placeholders(&shape.value, self.nonce);
        let key = Some(shape.key.as_str());
        let Some(&(_, first)) = phs.first() else {
            if shape.value == real.value {
                return Ok(());
            }
            return Err(self.changed(line, key, None, "changed a line without values"));
        };
        let g = grammar(quadlet, section, &shape.key);
        let fail = |why: String| self.changed(line, key, Some(first), &why);
        if real.value.is_empty() {
            return Err(fail(format!(
                "leaves {k}= empty, which resets {k} in systemd; put the line in {{% if … %}}",
                k = shape.key
            )));
        }
        let got = decode(g, &real.value)
            .map_err(|e| fail(format!("makes the value unreadable: it {e}")))?;
        let want_words = decode(g, &shape.value).map_err(|e| {
            fail(format!(
                "is in a place the value's reader cannot read: it {e}"
            ))
        })?;
        let mut found = 0;
        let mut want = Vec::with_capacity(want_words.len());
        for word in want_words {
            let (w, n) = self.splice(&word);
            found += n;
            want.extend(w);
        }
        if found != phs.len() {
            return Err(fail(format!(
                "is next to text that {} interprets together with it (a `%`, `$` or quote of the template?)",
                shape.key
            )));
        }
        if got.len() != want.len() {
            return Err(fail(format!(
                "changes the number of words of {} from {} to {}: use the filter for this key",
                shape.key,
                want.len(),
                got.len()
            )));
        }
        for (gw, ww) in got.iter().zip(&want) {
            if gw != ww {
                let ph = placeholders(&shape.value, self.nonce)
                    .into_iter()
                    .map(|(_, p)| p)
                    .find(|p| {
                        self.calls
                            .get(p.call)
                            .and_then(|c| c.items.get(p.item))
                            .is_some_and(|item| {
                                let needle: Vec<Tok> =
                                    item.meaning.iter().map(|&b| Tok::B(b)).collect();
                                !contains(gw, &needle)
                            })
                    })
                    .unwrap_or(first);
                return Err(self.changed(
                    line,
                    key,
                    Some(ph),
                    &format!(
                        "would not be read back as written in {} (it holds something {} interprets: use the filter for this key)",
                        shape.key, shape.key
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Replaces the placeholders in a decoded word by the meaning of their values; returns the
    /// word (`None` if it consisted only of markers of empty lists, and so is no word at all)
    /// and how many placeholders were replaced.
    fn splice(&self, word: &[Tok]) -> (Option<Vec<Tok>>, usize) {
        let mut out = Vec::with_capacity(word.len());
        let mut count = 0;
        let mut only_empty = true;
        let mut i = 0;
        let nonce: Vec<Tok> = self.nonce.bytes().map(Tok::B).collect();
        while i < word.len() {
            if word[i..].starts_with(&nonce) {
                let rest: String = word[i..]
                    .iter()
                    .map_while(|t| match t {
                        Tok::B(b) if b.is_ascii_alphanumeric() => Some(char::from(*b)),
                        _ => None,
                    })
                    .collect();
                if let Some(&(0, ph)) = placeholders(&rest, self.nonce).first() {
                    if let Some(call) = self.calls.get(ph.call) {
                        let meaning = if ph.item == EMPTY {
                            call.items.is_empty().then_some(&[][..])
                        } else {
                            only_empty = false;
                            call.items.get(ph.item).map(|item| item.meaning.as_slice())
                        };
                        if let Some(meaning) = meaning {
                            out.extend(meaning.iter().map(|&b| Tok::B(b)));
                            count += 1;
                            i += self.ph_len(ph);
                            continue;
                        }
                    }
                }
            }
            only_empty = false;
            out.push(word[i].clone());
            i += 1;
        }
        ((!only_empty || word.is_empty()).then_some(out), count)
    }
}

fn contains(hay: &[Tok], needle: &[Tok]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
