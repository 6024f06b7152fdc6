//! `escape::unescape_path`: never panics; a result is a normalized absolute path whose escaped
//! form unescapes to it again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape::{self, path};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = escape::unescape_path(data) else {
        return;
    };
    assert!(path::is_absolute(&p) && path::is_normalized(&p));
    let e = escape::escape_path(&p).expect("a normalized absolute path escapes");
    assert_eq!(escape::unescape_path(e.as_ref()).unwrap(), p);
});
