//! `escape::escape_path`: never panics; what it accepts unescapes to the simplified absolute
//! path (for inputs without NUL, which argv and file names cannot carry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape::{self, path};

fuzz_target!(|data: &[u8]| {
    let Ok(e) = escape::escape_path(data) else {
        return;
    };
    assert!(escape::is_valid_instance(e.as_ref()), "{e:?}");
    if data.contains(&0) {
        return;
    }
    let simplified = path::simplify(data);
    let mut expected = b"/".to_vec();
    if !path::empty_or_root(&simplified) {
        let trimmed: &[u8] = &simplified;
        let end = trimmed.len() - trimmed.iter().rev().take_while(|&&b| b == b'/').count();
        let start = trimmed[..end].iter().take_while(|&&b| b == b'/').count();
        expected.extend_from_slice(&trimmed[start..end]);
    }
    // A relative path of 4095 bytes escapes but cannot come back as a 4096-byte absolute path.
    if expected.len() < path::PATH_MAX {
        assert_eq!(escape::unescape_path(e.as_ref()).unwrap(), expected);
    }
});
