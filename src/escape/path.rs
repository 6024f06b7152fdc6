//! Ports of the path helpers from systemd 252's `src/basic/path-util.c` that unit-name escaping
//! depends on, on bytes.
//!
//! These follow v252 exactly, including its quirks: [`simplify`] keeps `..` components (newer
//! systemd drops a leading `..` of absolute paths), and a component longer than 255 bytes makes
//! the rest of the path be copied verbatim.

use std::borrow::Cow;

/// Longest file-name component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// `PATH_MAX`, counted with the terminating NUL: a valid path has fewer bytes than this.
pub const PATH_MAX: usize = 4096;

/// Why [`find_first_component`] refused a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentError {
    /// The component is longer than [`NAME_MAX`] bytes.
    TooLong,
    /// The component is `..` and `..` was not accepted.
    DotDot,
}

/// One step of [`find_first_component`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component<'a> {
    /// The component's bytes (never empty, never `.`).
    pub name: &'a [u8],
    /// The rest of the path after the component and any `/` or `./` that follow it.
    pub rest: &'a [u8],
}

/// Skips any run of `/` and `./` (systemd's `skip_slash_or_dot`).
fn skip_slash_or_dot(mut p: &[u8]) -> &[u8] {
    loop {
        match p {
            [b'/', rest @ ..] | [b'.', b'/', rest @ ..] => p = rest,
            _ => return p,
        }
    }
}

/// The first component of `p`: mirrors `path_find_first_component(&p, accept_dot_dot, &ret)`.
///
/// `Ok(None)` means there is no further component (the rest is empty or `.`).
pub fn find_first_component(
    p: &[u8],
    accept_dot_dot: bool,
) -> Result<Option<Component<'_>>, ComponentError> {
    let first = skip_slash_or_dot(p);
    if first.is_empty() || first == b"." {
        return Ok(None);
    }
    let len = first.iter().position(|&b| b == b'/').unwrap_or(first.len());
    let name = &first[..len];
    if len > NAME_MAX {
        return Err(ComponentError::TooLong);
    }
    if !accept_dot_dot && name == b".." {
        return Err(ComponentError::DotDot);
    }
    let next = skip_slash_or_dot(&first[len..]);
    let rest = if next == b"." { &next[1..] } else { next };
    Ok(Some(Component { name, rest }))
}

/// Whether `p` starts with `/` (`path_is_absolute`).
pub fn is_absolute(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
}

/// Mirrors `path_simplify` of systemd 252: keeps a leading `/`, drops `.` components, duplicate
/// and trailing slashes, keeps `..`; a relative path that simplifies to nothing becomes `.`.
/// From a component longer than 255 bytes on, the rest is copied unchanged.
pub fn simplify(path: &[u8]) -> Cow<'_, [u8]> {
    if path.is_empty() {
        return Cow::Borrowed(path);
    }
    let absolute = is_absolute(path);
    let mut out = Vec::with_capacity(path.len());
    if absolute {
        out.push(b'/');
    }
    let start = out.len();
    let mut rest = &path[start..];
    let mut add_slash = false;
    loop {
        match find_first_component(rest, true) {
            Ok(None) => break,
            Ok(Some(c)) => {
                if add_slash {
                    out.push(b'/');
                }
                out.extend_from_slice(c.name);
                rest = c.rest;
                add_slash = true;
            }
            Err(_) => {
                if add_slash {
                    out.push(b'/');
                }
                out.extend_from_slice(rest);
                return into_cow(path, out);
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    into_cow(path, out)
}

fn into_cow(original: &[u8], out: Vec<u8>) -> Cow<'_, [u8]> {
    if out == original {
        Cow::Borrowed(original)
    } else {
        Cow::Owned(out)
    }
}

/// Mirrors `path_is_valid_full(p, accept_dot_dot)`.
fn is_valid_full(p: &[u8], accept_dot_dot: bool) -> bool {
    if p.is_empty() || p.len() >= PATH_MAX {
        return false;
    }
    let mut rest = p;
    loop {
        match find_first_component(rest, accept_dot_dot) {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(c)) => rest = c.rest,
        }
    }
}

/// Mirrors `path_is_valid`: non-empty, shorter than 4096 bytes, no component over 255 bytes.
pub fn is_valid(p: &[u8]) -> bool {
    is_valid_full(p, true)
}

/// Mirrors `path_is_safe`: [`is_valid`] and no `..` component.
pub fn is_safe(p: &[u8]) -> bool {
    is_valid_full(p, false)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Mirrors `path_is_normalized`: [`is_safe`], and not `.`, `./…`, `…/.`, `…/./…` or `…//…`.
/// A trailing `/` is allowed.
pub fn is_normalized(p: &[u8]) -> bool {
    is_safe(p)
        && p != b"."
        && !p.starts_with(b"./")
        && !p.ends_with(b"/.")
        && !contains(p, b"/./")
        && !contains(p, b"//")
}

/// Mirrors `empty_or_root`: empty, or absolute with no component (`/`, `//`, `/./`, …).
pub fn empty_or_root(p: &[u8]) -> bool {
    p.is_empty() || (is_absolute(p) && matches!(find_first_component(p, true), Ok(None)))
}

/// Mirrors `path_startswith` (`path_startswith_full` accepting `..`): if `prefix` matches `path`
/// component by component, the rest of `path` from its next component on.
pub fn startswith<'a>(path: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if is_absolute(path) != is_absolute(prefix) {
        return None;
    }
    let (mut path, mut prefix) = (path, prefix);
    loop {
        let before = path;
        let p = find_first_component(path, true).ok()?;
        let q = find_first_component(prefix, true).ok()?;
        let Some(q) = q else {
            // The rest starts at the next component of `path`, or is the end.
            return Some(match p {
                Some(c) => component_start(before, c),
                None => &before[before.len()..],
            });
        };
        let p = p?;
        if p.name != q.name {
            return None;
        }
        path = p.rest;
        prefix = q.rest;
    }
}

/// The slice of `within` that starts at component `c` (which was found in `within`).
fn component_start<'a>(within: &'a [u8], c: Component<'a>) -> &'a [u8] {
    let offset = c.name.as_ptr() as usize - within.as_ptr() as usize;
    &within[offset..]
}

/// Mirrors `is_device_path` of v252: the part after `/dev/` or `/sys/` (compared component by
/// component) is not empty. True for `/dev/sda`, `/dev/..`, `/./dev/x`; false for `/dev`,
/// `/dev/`, `/../dev/sda`.
pub fn is_device_path(p: &[u8]) -> bool {
    [b"/dev/".as_slice(), b"/sys/".as_slice()]
        .iter()
        .find_map(|prefix| startswith(p, prefix))
        .is_some_and(|rest| !rest.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn simp(p: &str) -> String {
        String::from_utf8(simplify(p.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn simplify_drops_dots_and_duplicate_slashes_but_keeps_dot_dot() {
        assert_eq!(simp("///foo//./bar/."), "/foo/bar");
        assert_eq!(simp(".//./foo//./bar/."), "foo/bar");
        assert_eq!(simp("/foo/../bar/"), "/foo/../bar");
        assert_eq!(simp("/../foo"), "/../foo");
        assert_eq!(simp("./"), ".");
        assert_eq!(simp("/./"), "/");
        assert_eq!(simp(""), "");
        assert!(matches!(simplify(b"/a/b"), Cow::Borrowed(_)));
    }

    #[test]
    fn simplify_copies_the_rest_verbatim_from_an_overlong_component() {
        let long = "y".repeat(256);
        assert_eq!(simp(&format!("/x//{long}//z/")), format!("/x/{long}//z/"));
        assert_eq!(simp(&format!("//./{long}")), format!("//./{long}"));
    }

    #[test]
    fn validity_checks_component_and_total_length() {
        assert!(is_valid(b"/a/.."));
        assert!(!is_safe(b"/a/.."));
        assert!(!is_valid(b""));
        assert!(is_valid("a".repeat(255).as_bytes()));
        assert!(!is_valid("a".repeat(256).as_bytes()));
        let long_path = "/a".repeat(2048);
        assert_eq!(long_path.len(), 4096);
        assert!(!is_valid(long_path.as_bytes()));
        assert!(is_valid(&long_path.as_bytes()[1..]));
    }

    #[test]
    fn normalized_allows_a_trailing_slash_only() {
        assert!(is_normalized(b"/foo/bar/"));
        assert!(is_normalized(b"foo"));
        for bad in [
            "/foo//bar",
            "/foo/./bar",
            "/foo/.",
            "./foo",
            ".",
            "/foo/../bar",
            "",
        ] {
            assert!(!is_normalized(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn empty_or_root_accepts_every_spelling_of_root() {
        for root in ["", "/", "//", "/.", "/./", "/.//./"] {
            assert!(empty_or_root(root.as_bytes()), "{root}");
        }
        for not_root in [".", "/a", "/..", "a"] {
            assert!(!empty_or_root(not_root.as_bytes()), "{not_root}");
        }
    }

    #[test]
    fn device_paths_need_something_after_dev_or_sys() {
        for yes in ["/dev/sda", "/dev/..", "/./dev/x", "/sys/x y", "//dev//a/"] {
            assert!(is_device_path(yes.as_bytes()), "{yes}");
        }
        for no in [
            "/dev",
            "/dev/",
            "/../dev/sda",
            "dev/sda",
            "/devx/a",
            "/dev/.",
        ] {
            assert!(!is_device_path(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn startswith_returns_the_rest_from_the_next_component() {
        assert_eq!(
            startswith(b"/dev//sda/1", b"/dev/"),
            Some(b"sda/1".as_slice())
        );
        assert_eq!(startswith(b"/dev", b"/dev"), Some(b"".as_slice()));
        assert_eq!(startswith(b"dev/a", b"/dev"), None);
    }
}
