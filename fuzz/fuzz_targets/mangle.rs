//! `escape::mangle`: never panics; a result is a valid unit name and mangling it again changes
//! nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = escape::mangle(data) {
        assert!(escape::classify(m.as_ref()).is_some(), "{m:?}");
        assert_eq!(escape::mangle(m.as_ref()).unwrap(), m);
    }
});
