//! Drop-in discovery for Quadlet files (`foo.container.d/*.conf` and friends).
//!
//! Candidate directory names follow Quadlet 5.4.2's `GetUnitDropinPaths` (which mirrors systemd's
//! dash-truncation of unit names): for `foo-bar-baz.container`, most specific first,
//! `foo-bar-baz.container.d`, `foo-bar-.container.d`, `foo-.container.d`, `container.d`; for an
//! instance `foo-bar@inst.container` also the template forms:
//! `foo-bar@inst.container.d`, `foo-bar@.container.d`, `foo-@.container.d`, `foo-.container.d`,
//! `container.d`.
//!
//! **Precedence** (podman bug #26555, fixed upstream in 5.6.0): when several directories provide a
//! drop-in with the same file name, the one in the **most specific directory name** wins; among
//! directories of the same name, the one in the earlier (higher-priority) search directory wins.
//! Quadlet 5.4.2 instead let the first *search directory* win, so `container.d/10.conf` in
//! `/run/containers/systemd` overrode `foo.container.d/10.conf` in `/etc/containers/systemd`.
//! The winners are applied in alphabetical order of their file names (like systemd).

use std::collections::HashSet;
use std::path::PathBuf;

/// The drop-in directory names for the Quadlet file `file_name`, most specific first.
pub fn dropin_dir_names(file_name: &str) -> Vec<String> {
    let (stem, ext) = match file_name.rfind('.') {
        Some(i) => (&file_name[..i], &file_name[i + 1..]),
        None => (file_name, ""),
    };
    let (base, instance) = match stem.split_once('@') {
        Some((b, i)) => (b, Some(i)),
        None => (stem, None),
    };
    let is_instance = instance.is_some_and(|i| !i.is_empty());
    // Built broad → specific, reversed at the end (`concat`, not `format!`: this runs for every
    // unit).
    let mut names = vec![[ext, ".d"].concat()];
    let parts: Vec<&str> = base.split('-').collect();
    let mut prefix = String::new();
    for part in &parts[..parts.len().saturating_sub(1)] {
        prefix.push_str(part);
        prefix.push('-');
        names.push([prefix.as_str(), ".", ext, ".d"].concat());
        if is_instance {
            names.push([prefix.as_str(), "@.", ext, ".d"].concat());
        }
    }
    if is_instance {
        names.push([base, "@.", ext, ".d"].concat());
    }
    names.push([file_name, ".d"].concat());
    names.reverse();
    names.dedup();
    names
}

/// Chooses the drop-in files to apply. `candidates` yields, for each drop-in directory name from
/// most to least specific and within it for each search directory from highest to lowest
/// priority, the `.conf` files found there. The first file seen for each file name wins; the
/// winners are returned sorted by file name.
pub fn select_dropins<I>(candidates: I) -> Vec<PathBuf>
where
    I: IntoIterator<Item = PathBuf>,
{
    let mut seen = HashSet::new();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in candidates {
        let Some(name) = p.file_name().map(std::ffi::OsStr::to_os_string) else {
            continue;
        };
        if seen.insert(name) {
            out.push(p);
        }
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dashed_names_truncate_at_each_dash() {
        assert_eq!(
            dropin_dir_names("foo-bar-baz.container"),
            vec![
                "foo-bar-baz.container.d",
                "foo-bar-.container.d",
                "foo-.container.d",
                "container.d"
            ]
        );
    }

    #[test]
    fn instances_also_look_at_template_dirs() {
        assert_eq!(
            dropin_dir_names("foo-bar@inst.container"),
            vec![
                "foo-bar@inst.container.d",
                "foo-bar@.container.d",
                "foo-@.container.d",
                "foo-.container.d",
                "container.d"
            ]
        );
        assert_eq!(
            dropin_dir_names("web@.container"),
            vec!["web@.container.d", "container.d"]
        );
    }

    #[test]
    fn first_seen_file_name_wins_and_result_is_sorted() {
        let got = select_dropins(vec![
            PathBuf::from("/etc/x/foo.container.d/20-b.conf"),
            PathBuf::from("/run/x/container.d/20-b.conf"),
            PathBuf::from("/run/x/container.d/10-a.conf"),
        ]);
        assert_eq!(
            got,
            vec![
                PathBuf::from("/run/x/container.d/10-a.conf"),
                PathBuf::from("/etc/x/foo.container.d/20-b.conf"),
            ]
        );
    }
}
