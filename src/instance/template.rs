//! What an instance's unit file says about its settings, read from the unit's
//! `FragmentPath` (for a Quadlet template, the unit the generator wrote, which keeps the
//! `[X-Unitwright]` group):
//!
//! * whether its commands read the settings at all: `InstanceSettings=yes`, or an `Exec*=`
//!   line that runs `unitwright instance exec`. Settings given to a unit that does not read
//!   them would be silently ignored (a console would publish some other port than the one
//!   allocated), so `instance start` refuses that;
//! * the settings it needs: `RequiredSettings=` if given, else every `$KEY`/`${KEY}` its
//!   wrapped commands refer to that has no default in the unit's `Environment=`;
//! * the settings whose values are secret (`SecretSettings=`), masked by `instance show`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::quadlet::settings::GROUP;
use crate::unit::split::split_args;
use crate::unit::UnitFile;

/// The settings-related facts of one unit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Whether the unit's commands read the instance settings.
    pub reads_settings: bool,
    /// Keys that must be set.
    pub required: BTreeSet<String>,
    /// Keys whose values are secret.
    pub secret: BTreeSet<String>,
    /// Keys its wrapped commands refer to (`$KEY`, `${KEY}`), or that it declares
    /// (`RequiredSettings=`, `SecretSettings=`, `[Service] Environment=` defaults).
    pub known: BTreeSet<String>,
}

const EXEC_KEYS: &[&str] = &[
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
];

impl TemplateInfo {
    /// Reads the unit file at `path`; `None` if it cannot be read or parsed (the checks that
    /// need it are then skipped, the wrapper still refuses missing settings at exec time).
    pub fn read(path: &Path) -> Option<TemplateInfo> {
        let unit = crate::unit::parse_file(path).ok()?;
        Some(Self::of(&unit))
    }

    /// The facts of a parsed unit file.
    pub fn of(unit: &UnitFile) -> TemplateInfo {
        let declared = unit.lookup_bool_or(GROUP, "InstanceSettings", false);
        let mut wrapped = Vec::new();
        for key in EXEC_KEYS {
            for value in unit.lookup_all("Service", key) {
                let Ok(words) = split_args(value) else {
                    continue;
                };
                if runs_wrapper(&words) {
                    wrapped.push(words);
                }
            }
        }
        let explicit = unit.lookup_all_strv(GROUP, "RequiredSettings");
        let defaults: BTreeSet<String> = unit
            .lookup_all_args("Service", "Environment")
            .iter()
            .filter_map(|a| a.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        let references: BTreeSet<String> = wrapped
            .iter()
            .flat_map(|words| {
                let cmd = words.iter().position(|w| w == "--").map_or(0, |i| i + 1);
                words[cmd..]
                    .iter()
                    .flat_map(|w| referenced(w))
                    .collect::<Vec<_>>()
            })
            .filter(|k| !k.starts_with("UNITWRIGHT_"))
            .collect();
        let required: BTreeSet<String> = if explicit.is_empty() {
            references
                .iter()
                .filter(|k| !defaults.contains(*k))
                .cloned()
                .collect()
        } else {
            explicit.into_iter().collect()
        };
        let secret: BTreeSet<String> = unit
            .lookup_all_strv(GROUP, "SecretSettings")
            .into_iter()
            .collect();
        let mut known = references;
        known.extend(defaults);
        known.extend(required.iter().cloned());
        known.extend(secret.iter().cloned());
        TemplateInfo {
            reads_settings: declared || !wrapped.is_empty(),
            required,
            secret,
            known,
        }
    }
}

impl TemplateInfo {
    /// Whether `key` is a setting the unit is known to read ([`TemplateInfo::known`]). A
    /// command may still read others from its environment (a script reading `$X`), so this
    /// only explains a missing required setting, never refuses a key.
    pub fn reads(&self, key: &str) -> bool {
        self.known.contains(key)
    }
}

/// Whether an exec line's words run `unitwright instance exec` (any path, any prefix).
fn runs_wrapper(words: &[String]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    let program = first.trim_start_matches(['-', '@', ':', '+', '!']);
    Path::new(program)
        .file_name()
        .is_some_and(|n| n == "unitwright")
        && words.get(1).is_some_and(|w| w == "instance")
        && words.get(2).is_some_and(|w| w == "exec")
}

/// The variable names `$NAME` and `${NAME}` in `word` (`$$` is a literal `$`).
fn referenced(word: &str) -> Vec<String> {
    let b = word.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let is_name = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let end = b[start..]
                    .iter()
                    .position(|&c| c == b'}')
                    .map(|p| start + p);
                match end {
                    Some(end) if end > start && b[start..end].iter().all(|&c| is_name(c)) => {
                        out.push(word[start..end].to_owned());
                        i = end + 1;
                    }
                    _ => i += 2,
                }
            }
            Some(&c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i + 1;
                let end = b[start..]
                    .iter()
                    .position(|&c| !is_name(c))
                    .map_or(b.len(), |p| start + p);
                out.push(word[start..end].to_owned());
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(text: &str) -> TemplateInfo {
        TemplateInfo::of(&crate::unit::parse_str(text, Path::new("/t/x@.service")).unwrap())
    }

    #[test]
    fn references_without_defaults_are_required() {
        let i = info(
            "[Service]\nEnvironment=APP= READ_ONLY=false\nExecStart=:/usr/bin/unitwright instance exec --settings-dir=%t/x %n -- /usr/bin/podman run --name ${UNITWRIGHT_CONTAINER_NAME} -p 127.0.0.1:${PORT}:5900 -e APP=${APP} $IMAGE $$NOT ${READ_ONLY}\nExecStop=/usr/bin/podman rm $GONE\n",
        );
        assert!(i.reads_settings);
        assert_eq!(
            i.required.iter().map(String::as_str).collect::<Vec<_>>(),
            ["IMAGE", "PORT"]
        );
    }

    #[test]
    fn required_settings_win_and_secrets_are_read() {
        let i = info("[Service]\nExecStart=/bin/true\n[X-Unitwright]\nInstanceSettings=yes\nRequiredSettings=B A\nSecretSettings=PW TOKEN\n");
        assert!(i.reads_settings);
        assert_eq!(i.required.len(), 2);
        assert!(i.secret.contains("PW") && i.secret.contains("TOKEN"));
    }

    #[test]
    fn a_unit_without_the_wrapper_does_not_read_settings() {
        let i = info("[Service]\nExecStart=/usr/bin/podman run -p 127.0.0.1:${PORT}:80 img\n");
        assert!(!i.reads_settings);
        assert!(i.required.is_empty());
    }

    #[test]
    fn variable_references_are_found() {
        assert_eq!(referenced("a${B}c$D-$$E${}${F"), ["B", "D"]);
    }
}
