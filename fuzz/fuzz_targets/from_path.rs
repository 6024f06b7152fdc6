//! `escape::from_path`: never panics; a result is a valid plain name of at most 255 bytes with
//! the requested suffix, and unless hashed (or holding a NUL) it maps back to the same name through `to_path`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape::{self, Kinds, UnitType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, path)) = data.split_first() else {
        return;
    };
    let unit_type = UnitType::ALL[usize::from(selector) % UnitType::ALL.len()];
    let suffix = format!(".{unit_type}");
    let Ok(name) = escape::from_path(path, &suffix) else {
        return;
    };
    assert!(escape::is_valid(&name, Kinds::PLAIN), "{name:?}");
    assert!(name.ends_with(&suffix));
    // Paths cannot hold NUL; escaped `\x00` comes back truncated, as in systemd.
    if path.contains(&0) {
        return;
    }
    if escape::is_hashed(&name) {
        assert!(name.len() == 255 || escape::to_path(&name).is_err());
        return;
    }
    let back = escape::to_path(&name).expect("a non-hashed name has a path");
    assert_eq!(escape::from_path(&back, &suffix).unwrap(), name);
});
