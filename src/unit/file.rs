//! The unit-file model: groups of lines kept in source order, with the look-ups Quadlet uses and a
//! serializer that writes the model back byte for byte as Quadlet 5.4.2 does.
//!
//! The model mirrors what podman's `pkg/systemd/parser` keeps of a file: for every group its name,
//! the comment lines that preceded its header and its lines (key/value pairs and comments, in file
//! order). Repeated groups are merged into the first one. Values are stored raw (as written, after
//! the line was trimmed and continuations joined) and are only interpreted by the look-up helpers:
//!
//! | helper | Quadlet name | behaviour |
//! |---|---|---|
//! | [`UnitFile::lookup_last_raw`] | `LookupLastRaw` | last value as stored |
//! | [`UnitFile::lookup`] | `Lookup` | last value, trailing whitespace and all outer `"` removed |
//! | [`UnitFile::lookup_all`] | `LookupAll` | every value; an empty assignment resets the list |
//! | [`UnitFile::lookup_bool`] | `LookupBoolean` | `1`, `yes`, `true`, `on` (ASCII case-insensitive) |
//! | [`UnitFile::lookup_all_strv`] | `LookupAllStrv` | systemd `config_parse_strv` splitting |
//! | [`UnitFile::lookup_all_args`] | `LookupAllArgs` | exec-style splitting of every value |
//! | [`UnitFile::lookup_last_args`] | `LookupLastArgs` | exec-style splitting of the last value |
//! | [`UnitFile::lookup_all_key_val`] | `LookupAllKeyVal` | exec-split words `K=V` into a sorted map |

use std::collections::BTreeMap;

use super::split::{split_args, split_strv};

/// One line of a group: a `Key=Value` assignment or a comment (an empty line counts as a comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The key; empty for comments.
    pub key: String,
    /// The raw value, or the comment text for comments.
    pub value: String,
    /// True for comment and empty lines.
    pub comment: bool,
    /// Where the line comes from: the index into [`UnitFile::sources`] and the 1-based physical line
    /// number (0 for lines added by a program).
    pub origin: Origin,
}

impl Line {
    /// True if this is an assignment of `key`. The look-ups run this for every line of a group,
    /// tens of times per unit: the length and the first byte rule out most keys before the
    /// comparison of the bytes (a call to `memcmp`).
    #[inline]
    pub fn is_assignment_of(&self, key: &str) -> bool {
        !self.comment
            && self.key.len() == key.len()
            && self.key.as_bytes().first() == key.as_bytes().first()
            && self.key == key
    }
}

/// Where a line was read: which file of [`UnitFile::sources`] and which physical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// Index into [`UnitFile::sources`].
    pub source: u16,
    /// 1-based physical line number; 0 means "added by a program, not read from a file".
    pub line: u32,
}

/// A `[Group]` with its comments and lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group name (without brackets).
    pub name: String,
    /// Comment lines written before the group header (one leading empty line is dropped on parse
    /// and re-added by the serializer).
    pub comments: Vec<String>,
    /// The lines of the group, in file order.
    pub lines: Vec<Line>,
}

impl Group {
    fn new(name: &str) -> Self {
        Group {
            name: name.to_owned(),
            comments: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// The last assignment of `key`, if any.
    pub fn last(&self, key: &str) -> Option<&Line> {
        self.lines.iter().rev().find(|l| l.is_assignment_of(key))
    }

    /// `Lookup` within this group: the last value of `key`, trailing whitespace and all outer `"`
    /// removed.
    pub fn lookup(&self, key: &str) -> Option<&str> {
        self.last(key).map(|l| unquote_lookup(&l.value))
    }

    /// `LookupAll` within this group: every raw value of `key` in order; an empty assignment
    /// clears the values before it.
    pub fn lookup_all(&self, key: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for l in self.lines.iter().filter(|l| l.is_assignment_of(key)) {
            if l.value.is_empty() {
                out.clear();
            } else {
                out.push(l.value.as_str());
            }
        }
        out
    }

    /// A 64-bit summary of the keys assigned in this group: a key whose [`key_bit`] is not in it
    /// is certainly absent. Callers that look up a fixed list of keys (most of them absent in a
    /// given unit) compute it once and skip the scan of the lines for those keys.
    pub fn key_mask(&self) -> u64 {
        self.lines
            .iter()
            .filter(|l| !l.comment)
            .fold(0, |m, l| m | key_bit(&l.key))
    }

    /// All assignments of `key` in order, without the reset rule.
    pub fn entries<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| l.is_assignment_of(key))
    }
}

/// The bit of `key` in [`Group::key_mask`] (from its length and first byte).
pub fn key_bit(key: &str) -> u64 {
    let first = key.as_bytes().first().copied().unwrap_or(0);
    1 << ((key.len() * 7 + usize::from(first)) % 64)
}

/// A parsed unit file (or several merged ones: a unit and its drop-ins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    /// The groups, in order of first appearance.
    pub groups: Vec<Group>,
    /// The files the lines were read from ([`Origin::source`] indexes this list).
    pub sources: Vec<std::path::PathBuf>,
    /// How [`lookup`](Self::lookup) unquotes: `false` strips every leading and trailing `"` (Quadlet
    /// up to 5.8.1), `true` only one matched pair around the value (5.8.2, podman #28475).
    pub matched_quotes: bool,
}

/// Trim like Go's `strings.TrimRightFunc(v, unicode.IsSpace)` followed by `strings.Trim(v, "\"")`.
fn unquote_lookup(v: &str) -> &str {
    v.trim_end().trim_matches('"')
}

/// Trim trailing whitespace, then strip one pair of `"` if the value starts and ends with one
/// (Quadlet 5.8.2 `Lookup`).
fn unquote_matched(v: &str) -> &str {
    let v = v.trim_end();
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner,
        None => v,
    }
}

/// `1`, `yes`, `true`, `on`, ignoring ASCII case: Quadlet's `LookupBoolean` truth set.
pub fn parse_bool(v: &str) -> bool {
    ["1", "yes", "true", "on"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

impl UnitFile {
    /// An empty unit file.
    pub fn new() -> Self {
        UnitFile::default()
    }

    /// The group called `name`, if present.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group called `name`, if present, for modification.
    pub fn group_mut(&mut self, name: &str) -> Option<&mut Group> {
        self.groups.iter_mut().find(|g| g.name == name)
    }

    /// The group called `name`, created at the end if absent.
    pub fn ensure_group(&mut self, name: &str) -> &mut Group {
        let idx = self
            .groups
            .iter()
            .position(|g| g.name == name)
            .unwrap_or_else(|| {
                self.groups.push(Group::new(name));
                self.groups.len() - 1
            });
        &mut self.groups[idx]
    }

    /// True if the group exists.
    pub fn has_group(&self, name: &str) -> bool {
        self.group(name).is_some()
    }

    /// True if `key` is assigned in `group` (even with an empty value).
    pub fn has_key(&self, group: &str, key: &str) -> bool {
        self.group(group).and_then(|g| g.last(key)).is_some()
    }

    /// The last assignment line of `key` (for error locations).
    pub fn last_line(&self, group: &str, key: &str) -> Option<&Line> {
        self.group(group).and_then(|g| g.last(key))
    }

    /// Renames a group (`[Container]` → `[X-Container]`), keeping its position. If a group with
    /// the new name already exists the renamed group is merged into it.
    pub fn rename_group(&mut self, from: &str, to: &str) {
        let Some(src) = self.groups.iter().position(|g| g.name == from) else {
            return;
        };
        if let Some(dst) = self.groups.iter().position(|g| g.name == to) {
            let g = self.groups.remove(src);
            let dst = if dst > src { dst - 1 } else { dst };
            self.groups[dst].comments.extend(g.comments);
            self.groups[dst].lines.extend(g.lines);
        } else {
            to.clone_into(&mut self.groups[src].name);
        }
    }

    /// Appends `key=value` to `group` (created at the end if absent).
    pub fn add(&mut self, group: &str, key: &str, value: impl Into<String>) {
        self.ensure_group(group).lines.push(Line {
            key: key.to_owned(),
            value: value.into(),
            comment: false,
            origin: Origin::default(),
        });
    }

    /// Inserts `key=value` at the top of `group` (created at the end if absent).
    pub fn prepend(&mut self, group: &str, key: &str, value: impl Into<String>) {
        self.ensure_group(group).lines.insert(
            0,
            Line {
                key: key.to_owned(),
                value: value.into(),
                comment: false,
                origin: Origin::default(),
            },
        );
    }

    /// Quadlet's `Set`: replaces the value of the **last** assignment of `key` in place, or appends
    /// one when there is none.
    pub fn set(&mut self, group: &str, key: &str, value: impl Into<String>) {
        let g = self.ensure_group(group);
        if let Some(l) = g.lines.iter_mut().rev().find(|l| l.is_assignment_of(key)) {
            l.value = value.into();
            l.origin = Origin::default();
        } else {
            self.add(group, key, value);
        }
    }

    /// Inserts comment lines before the first group's header (the generator's header).
    pub fn prepend_comments(&mut self, comments: &[&str]) {
        if self.groups.is_empty() {
            self.groups.push(Group::new(""));
        }
        let g = &mut self.groups[0];
        g.comments
            .splice(0..0, comments.iter().map(|c| (*c).to_owned()));
    }

    /// Appends all groups of `other` (a drop-in) to this file: lines and comments of a group are
    /// added after the existing ones, new groups are created at the end. Line origins are
    /// re-pointed at this file's source list.
    pub fn merge(&mut self, other: &UnitFile) {
        let base = u16::try_from(self.sources.len()).unwrap_or(u16::MAX);
        self.sources.extend(other.sources.iter().cloned());
        for g in &other.groups {
            let dst = self.ensure_group(&g.name);
            dst.comments.extend(g.comments.iter().cloned());
            dst.lines.extend(g.lines.iter().map(|l| {
                let mut l = l.clone();
                if l.origin.line != 0 {
                    l.origin.source = l.origin.source.saturating_add(base);
                }
                l
            }));
        }
    }

    /// `LookupLastRaw`: the last value of `key`, exactly as stored.
    pub fn lookup_last_raw(&self, group: &str, key: &str) -> Option<&str> {
        self.last_line(group, key).map(|l| l.value.as_str())
    }

    /// `Lookup`: the last value with trailing whitespace and all leading/trailing `"` removed.
    pub fn lookup(&self, group: &str, key: &str) -> Option<&str> {
        self.lookup_in(self.group(group)?, key)
    }

    /// [`lookup`](Self::lookup) in `group`, a group of this file found already.
    pub fn lookup_in<'g>(&self, group: &'g Group, key: &str) -> Option<&'g str> {
        let v = group.last(key)?.value.as_str();
        Some(if self.matched_quotes {
            unquote_matched(v)
        } else {
            unquote_lookup(v)
        })
    }

    /// [`lookup`](Self::lookup), `None` when the value is empty.
    pub fn lookup_nonempty(&self, group: &str, key: &str) -> Option<&str> {
        self.lookup(group, key).filter(|v| !v.is_empty())
    }

    /// `LookupBoolean`: `None` when absent.
    pub fn lookup_bool(&self, group: &str, key: &str) -> Option<bool> {
        self.lookup(group, key).map(parse_bool)
    }

    /// `LookupBooleanWithDefault`.
    pub fn lookup_bool_or(&self, group: &str, key: &str, default: bool) -> bool {
        self.lookup_bool(group, key).unwrap_or(default)
    }

    /// `LookupAll`: every raw value in order; an empty assignment clears the values before it.
    pub fn lookup_all(&self, group: &str, key: &str) -> Vec<&str> {
        self.group(group)
            .map(|g| g.lookup_all(key))
            .unwrap_or_default()
    }

    /// `LookupAllStrv`: every value split like systemd's `config_parse_strv`
    /// (`extract_first_word` with `EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE`); an empty assignment
    /// resets; an assignment with an unbalanced quote contributes nothing.
    pub fn lookup_all_strv(&self, group: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(g) = self.group(group) {
            for l in g.entries(key) {
                if l.value.is_empty() {
                    out.clear();
                } else {
                    split_strv(&l.value, &mut out);
                }
            }
        }
        out
    }

    /// `LookupAllArgs`: every value (after the reset rule) split like an exec command line; a
    /// value with an invalid escape contributes nothing.
    pub fn lookup_all_args(&self, group: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.lookup_all(group, key) {
            if let Ok(words) = split_args(v) {
                out.extend(words);
            }
        }
        out
    }

    /// `LookupLastArgs`: the last value split like an exec command line (`None` if absent or if it
    /// does not split).
    pub fn lookup_last_args(&self, group: &str, key: &str) -> Option<Vec<String>> {
        self.lookup_last_raw(group, key)
            .and_then(|v| split_args(v).ok())
    }

    /// `LookupAllKeyVal`: the words of [`lookup_all_args`](Self::lookup_all_args) split at their
    /// first `=` into a map sorted by key; words without `=` are dropped, later keys win.
    pub fn lookup_all_key_val(&self, group: &str, key: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for mut w in self.lookup_all_args(group, key) {
            if let Some(eq) = w.find('=') {
                // The word's own buffer becomes the key: one allocation per pair, not two.
                let v = w[eq + 1..].to_owned();
                w.truncate(eq);
                map.insert(w, v);
            }
        }
        map
    }

    /// [`lookup_all_key_val`](Self::lookup_all_key_val) as the `K=V` words themselves, sorted by
    /// key, one per key (the last wins): what podman's `--env`/`--label` flags take, without
    /// splitting each word into a map and joining it again.
    pub fn lookup_all_key_val_words(&self, group: &str, key: &str) -> Vec<String> {
        self.lookup_all_key_vals(group, key, false)
    }

    /// [`lookup_all_key_val_words`](Self::lookup_all_key_val_words), also keeping words without
    /// `=` when `bare` (Quadlet 5.6 and later: `Environment=NAME` takes NAME from the host); a
    /// bare word and a `NAME=V` word of the same name replace each other, the later one wins.
    pub fn lookup_all_key_vals(&self, group: &str, key: &str, bare: bool) -> Vec<String> {
        // On bytes: `split_once('=')` goes through the general searcher, and the sort below
        // calls this twice per comparison.
        fn key_of(w: &str) -> &str {
            w.as_bytes()
                .iter()
                .position(|&b| b == b'=')
                .map_or(w, |i| &w[..i])
        }
        let mut words = self.lookup_all_args(group, key);
        if !bare {
            words.retain(|w| w.as_bytes().contains(&b'='));
        }
        // Stable: the words of one key stay in source order, so the last one is the last.
        words.sort_by(|a, b| key_of(a).cmp(key_of(b)));
        let mut out: Vec<String> = Vec::with_capacity(words.len());
        for w in words {
            if let Some(prev) = out.last_mut() {
                if key_of(prev) == key_of(&w) {
                    *prev = w;
                    continue;
                }
            }
            out.push(w);
        }
        out
    }

    /// Serializes the file as Quadlet does: for each group its comments, `[Name]` and its lines,
    /// with one empty line between groups. The unnamed group (comments of a file without groups)
    /// has no header.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.size_hint());
        self.write_to(&mut out);
        out
    }

    fn size_hint(&self) -> usize {
        self.groups
            .iter()
            .map(|g| {
                g.name.len()
                    + 4
                    + g.comments.iter().map(|c| c.len() + 1).sum::<usize>()
                    + g.lines
                        .iter()
                        .map(|l| l.key.len() + l.value.len() + 2)
                        .sum::<usize>()
            })
            .sum()
    }

    /// Appends the serialization (see [`to_text`](Self::to_text)) to `out`.
    pub fn write_to(&self, out: &mut String) {
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            for c in &g.comments {
                out.push_str(c);
                out.push('\n');
            }
            if !g.name.is_empty() {
                out.push('[');
                out.push_str(&g.name);
                out.push_str("]\n");
            }
            for l in &g.lines {
                if l.comment {
                    out.push_str(&l.value);
                } else {
                    out.push_str(&l.key);
                    out.push('=');
                    out.push_str(&l.value);
                }
                out.push('\n');
            }
        }
    }

    /// A human-readable location for a line: `path:line`, or just the main file's path.
    pub fn describe_origin(&self, origin: Origin) -> String {
        let path = self
            .sources
            .get(usize::from(origin.source))
            .or_else(|| self.sources.first());
        match (path, origin.line) {
            (Some(p), 0) => p.display().to_string(),
            (Some(p), n) => format!("{}:{n}", p.display()),
            (None, 0) => String::new(),
            (None, n) => format!("line {n}"),
        }
    }
}
