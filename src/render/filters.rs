//! The context filters and the per-render session they record into.
//!
//! A render runs in one of two modes (see the module docs of [`super`]):
//! * **real**: each filter escapes its value with [`crate::unit::quote`] / [`crate::escape`] and
//!   records, per filter call, the text it wrote and what systemd must read back from it;
//! * **placeholder**: each filter writes inert placeholder words (`<nonce><call>n<item>z`, letters
//!   and digits only) instead, one per item, without looking at the value.
//!
//! Tera renders synchronously on the calling thread, so the session lives in a thread-local.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;

use tera::Value;

use crate::escape;
use crate::unit::quote;

/// A context filter: which unit-file context a value is escaped for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `exec_arg`: arguments of `ExecStart=` & co. ([`quote::exec_argument`]).
    ExecArg,
    /// `exec_arg_literal`: arguments of a `:`-prefixed exec line ([`quote::exec_argument_literal`]).
    ExecArgLiteral,
    /// `exec_path`: the executable of an exec line ([`quote::exec_path`]).
    ExecPath,
    /// `env`: words of `Environment=` ([`quote::environment_assignment`]).
    Env,
    /// `setting`: plain settings such as `Description=` ([`quote::plain_setting`]).
    Setting,
    /// `path`: path settings such as `WorkingDirectory=` ([`quote::path_setting`]).
    Path,
    /// `unit_names`: dependency lists such as `After=` ([`quote::unit_name_list`]).
    UnitNames,
    /// `specifier`: `%` → `%%` only ([`quote::escape_specifiers`]).
    Specifier,
    /// `unit_name`: `systemd-escape` ([`escape::escape`]).
    UnitName,
    /// `path_escape`: `systemd-escape --path` ([`escape::escape_path`]).
    PathEscape,
    /// `instance`: `systemd-escape --template=T` ([`escape::escape_instance`]).
    Instance,
    /// `quadlet_arg`: words of Quadlet's `Exec=`, `Environment=`, `Label=` ([`quote::quadlet_argument`]).
    QuadletArg,
    /// `quadlet_value`: single-valued Quadlet keys ([`quote::quadlet_value`]).
    QuadletValue,
}

impl Kind {
    /// Every filter with its name in templates.
    pub const ALL: [(&'static str, Kind); 13] = [
        ("exec_arg", Kind::ExecArg),
        ("exec_arg_literal", Kind::ExecArgLiteral),
        ("exec_path", Kind::ExecPath),
        ("env", Kind::Env),
        ("setting", Kind::Setting),
        ("path", Kind::Path),
        ("unit_names", Kind::UnitNames),
        ("specifier", Kind::Specifier),
        ("unit_name", Kind::UnitName),
        ("path_escape", Kind::PathEscape),
        ("instance", Kind::Instance),
        ("quadlet_arg", Kind::QuadletArg),
        ("quadlet_value", Kind::QuadletValue),
    ];

    /// The filter's name in templates.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    /// The filter named `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// Whether a list value gives one word per element.
    fn takes_lists(self) -> bool {
        matches!(
            self,
            Kind::ExecArg | Kind::ExecArgLiteral | Kind::Env | Kind::UnitNames | Kind::QuadletArg
        )
    }

    /// The name of the argument that prefixes `NAME=` to each word (`env(name=…)`,
    /// `quadlet_arg(key=…)`); without it, a map gives one `key=value` word per entry.
    fn prefix_arg(self) -> Option<&'static str> {
        match self {
            Kind::Env => Some("name"),
            Kind::QuadletArg => Some("key"),
            _ => None,
        }
    }
}

/// One word (or one whole value) a filter wrote.
#[derive(Debug, Clone)]
pub struct Item {
    /// What systemd must read back from `text` in its context.
    pub meaning: Vec<u8>,
    /// The escaped text written into the unit.
    pub text: String,
}

/// One call of a context filter in the real render.
#[derive(Debug, Clone)]
pub struct Call {
    /// The filter.
    pub kind: Kind,
    /// The words it wrote (joined by single spaces).
    pub items: Vec<Item>,
}

/// A filter that refused its value in the real render.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Index of the filter call.
    pub index: usize,
    /// The filter.
    pub kind: Kind,
    /// The value, shortened for messages.
    pub shown: String,
    /// Why it was refused.
    pub why: String,
}

#[derive(Debug)]
pub(super) enum Mode {
    Real,
    Placeholder(String),
}

#[derive(Debug)]
pub(super) struct Session {
    mode: Mode,
    count: usize,
    pub calls: Vec<Call>,
    pub refusal: Option<Refusal>,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Runs `render` with a fresh session in `mode` and returns its result and the session.
pub(super) fn with_session<R>(mode: Mode, render: impl FnOnce() -> R) -> (R, Session) {
    SESSION.with(|s| {
        *s.borrow_mut() = Some(Session {
            mode,
            count: 0,
            calls: Vec::new(),
            refusal: None,
        });
    });
    let result = render();
    let session = SESSION
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| Session {
            mode: Mode::Real,
            count: 0,
            calls: Vec::new(),
            refusal: None,
        });
    (result, session)
}

/// The item number of the marker written for a filter call that writes nothing (an empty list).
pub(super) const EMPTY: usize = usize::MAX;

/// The placeholder of item `item` of filter call `call` (`<nonce><call>n<item>z`), or for
/// [`EMPTY`] the marker of a call that writes nothing (`<nonce><call>nz`).
pub(super) fn placeholder(nonce: &str, call: usize, item: usize) -> String {
    if item == EMPTY {
        format!("{nonce}{call}nz")
    } else {
        format!("{nonce}{call}n{item}z")
    }
}

/// Longest part of a value shown in an error message: values may hold credentials.
const SHOWN_MAX: usize = 16;

/// `value` for an error message: at most 16 characters, escaped like a Rust string,
/// with the total length when shortened.
pub fn shown(value: &str) -> String {
    let count = value.chars().count();
    if count <= SHOWN_MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_MAX).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

fn shown_value(value: &Value) -> String {
    match value {
        Value::String(s) => shown(s),
        other => shown(&other.to_string()),
    }
}

/// The text of a scalar value.
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("is null (missing)".into()),
        Value::Array(_) => Err("is a list, but this filter takes one value".into()),
        Value::Object(_) => Err("is a map, but this filter takes one value".into()),
    }
}

fn string_arg<'a>(args: &'a HashMap<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("the argument `{name}` must be a string")),
    }
}

/// How many words the filter writes for `value` (used by the placeholder render, which must not
/// look at values beyond their shape).
fn item_count(kind: Kind, value: &Value, args: &HashMap<String, Value>) -> usize {
    match value {
        Value::Array(a) if kind.takes_lists() => a.len(),
        Value::Object(o) if kind.prefix_arg().is_some_and(|arg| !args.contains_key(arg)) => o.len(),
        _ => 1,
    }
}

/// Escapes one scalar `text` (with an optional `NAME=` prefix) for `kind`.
fn escape_one(
    kind: Kind,
    text: &str,
    prefix: Option<&str>,
    args: &HashMap<String, Value>,
) -> Result<Item, String> {
    let same = |out: String| Item {
        meaning: text.as_bytes().to_vec(),
        text: out,
    };
    let verbatim = |out: String| Item {
        meaning: out.clone().into_bytes(),
        text: out,
    };
    let e = |e: quote::QuoteError| e.to_string();
    Ok(match kind {
        Kind::ExecArg => same(quote::exec_argument(text).map_err(e)?),
        Kind::ExecArgLiteral => same(quote::exec_argument_literal(text).map_err(e)?),
        Kind::ExecPath => same(quote::exec_path(text).map_err(e)?),
        Kind::Env => {
            let name = prefix.ok_or("needs a variable name: env(name=\"NAME\")")?;
            Item {
                meaning: format!("{name}={text}").into_bytes(),
                text: quote::environment_assignment(name, text).map_err(e)?,
            }
        }
        Kind::Setting => same(quote::plain_setting(text).map_err(e)?.into_owned()),
        Kind::Path => same(quote::path_setting(text).map_err(e)?.into_owned()),
        Kind::UnitNames => verbatim(quote::unit_name_list(&[text]).map_err(e)?),
        Kind::Specifier => same(quote::escape_specifiers(text).into_owned()),
        Kind::UnitName => verbatim(escape::escape(text).into_owned()),
        Kind::PathEscape => verbatim(
            escape::escape_path(text)
                .map_err(|e| e.to_string())?
                .into_owned(),
        ),
        Kind::Instance => {
            let template = string_arg(args, "template")?
                .ok_or("needs the template: instance(template=\"name@.service\")")?;
            verbatim(escape::escape_instance(template, text).map_err(|e| e.to_string())?)
        }
        Kind::QuadletArg => {
            let word = match prefix {
                Some(key) => {
                    if key.is_empty() || key.contains(['=', '\0']) {
                        return Err(format!(
                            "the key {} must be non-empty and without `=`",
                            shown(key)
                        ));
                    }
                    format!("{key}={text}")
                }
                None => text.to_owned(),
            };
            Item {
                text: quote::quadlet_argument(&word).map_err(e)?,
                meaning: word.into_bytes(),
            }
        }
        Kind::QuadletValue => same(quote::quadlet_value(text).map_err(e)?.into_owned()),
    })
}

/// Escapes `value` for `kind`: one item per list element or map entry where the filter takes
/// them, else one item.
fn escape_items(
    kind: Kind,
    value: &Value,
    args: &HashMap<String, Value>,
) -> Result<Vec<Item>, String> {
    let prefix_arg = kind.prefix_arg();
    let prefix = match prefix_arg {
        Some(arg) => string_arg(args, arg)?,
        None => None,
    };
    match value {
        Value::Array(list) if kind.takes_lists() => list
            .iter()
            .map(|v| escape_one(kind, &scalar(v)?, prefix, args))
            .collect(),
        Value::Object(map) if prefix_arg.is_some() && prefix.is_none() => map
            .iter()
            .map(|(k, v)| escape_one(kind, &scalar(v)?, Some(k), args))
            .collect(),
        v => Ok(vec![escape_one(kind, &scalar(v)?, prefix, args)?]),
    }
}

/// A registered context filter.
#[derive(Debug)]
pub(super) struct ContextFilter(pub Kind);

impl tera::Filter for ContextFilter {
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
        SESSION.with(|s| {
            let mut s = s.borrow_mut();
            let Some(session) = s.as_mut() else {
                return Err(tera::Error::msg(
                    "unitwright's filters only work in unitwright::render::Renderer",
                ));
            };
            let index = session.count;
            session.count += 1;
            match &session.mode {
                Mode::Placeholder(nonce) => {
                    let count = item_count(self.0, value, args);
                    if count == 0 {
                        return Ok(Value::String(placeholder(nonce, index, EMPTY)));
                    }
                    let mut out = String::new();
                    for item in 0..count {
                        if item > 0 {
                            out.push(' ');
                        }
                        let _ = write!(out, "{}", placeholder(nonce, index, item));
                    }
                    Ok(Value::String(out))
                }
                Mode::Real => match escape_items(self.0, value, args) {
                    Ok(items) => {
                        let text = items
                            .iter()
                            .map(|i| i.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                        session.calls.push(Call {
                            kind: self.0,
                            items,
                        });
                        Ok(Value::String(text))
                    }
                    Err(why) => {
                        let refusal = Refusal {
                            index,
                            kind: self.0,
                            shown: shown_value(value),
                            why,
                        };
                        let msg = format!(
                            "{}: value {} {}",
                            refusal.kind.name(),
                            refusal.shown,
                            refusal.why
                        );
                        session.refusal = Some(refusal);
                        Err(tera::Error::msg(msg))
                    }
                },
            }
        })
    }

    fn is_safe(&self) -> bool {
        true
    }
}
