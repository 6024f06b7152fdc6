//! `escape::unescape`: never panics; a result never holds a NUL, and escaping it again and
//! unescaping gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = escape::unescape(data) {
        assert!(!u.contains(&0));
        let again = escape::escape(u.as_ref());
        assert_eq!(
            escape::unescape(again.as_ref()).unwrap().as_ref(),
            u.as_ref()
        );
    }
});
