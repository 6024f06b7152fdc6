//! `escape::escape`: never panics, always yields a valid instance string (or nothing), and
//! `unescape` gives the input back up to its first NUL (systemd's C-string truncation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape;

fuzz_target!(|data: &[u8]| {
    let e = escape::escape(data);
    assert!(e.is_ascii());
    assert_eq!(e.is_empty(), data.is_empty());
    if !e.is_empty() {
        assert!(escape::is_valid_instance(e.as_ref()), "{e:?}");
        assert!(!e.contains('@') && !e.contains('/'));
    }
    let back = escape::unescape(e.as_ref()).expect("escape output always unescapes");
    let until_nul = data.split(|&b| b == 0).next().unwrap_or_default();
    assert_eq!(back.as_ref(), until_nul);
});
