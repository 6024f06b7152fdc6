//! Helpers shared by the generator's integration tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A generated tree: relative path → file content (`Ok`) or symlink target (`Err`).
pub type Tree = BTreeMap<PathBuf, Result<String, PathBuf>>;

/// Reads the tree under `root` (an absent `root` is an empty tree; directories only show
/// through what they contain).
pub fn snapshot(root: &Path) -> Tree {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_owned();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Err(fs::read_link(&p).unwrap()));
            } else if meta.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, Ok(fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}
