//! `unit::parse_bytes`: never panics; what parses serializes to text that parses again to the same
//! groups, keys and values; after that first round the text is a fixed point. (The first round can
//! move comments: trailing comments after a repeated group header, and blank lines before the
//! first group, which the parser drops like Quadlet does.) Every value splits without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use unitwright::unit::{self, split, UnitFile};

fn entries(u: &UnitFile) -> Vec<(&str, &str, &str)> {
    u.groups
        .iter()
        .flat_map(|g| {
            g.lines
                .iter()
                .filter(|l| !l.comment)
                .map(move |l| (g.name.as_str(), l.key.as_str(), l.value.as_str()))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/input.container");
    let Ok(u) = unit::parse_bytes(data, path) else {
        return;
    };
    let t1 = u.to_text();
    let again = unit::parse_str(&t1, path).expect("serialized unit must parse");
    assert_eq!(entries(&again), entries(&u), "keys or values changed");
    let t2 = again.to_text();
    if !t2.starts_with('\n') {
        let t3 = unit::parse_str(&t2, path).expect("parses").to_text();
        assert_eq!(t3, t2, "serialization is not a fixed point");
    }
    for l in u
        .groups
        .iter()
        .flat_map(|g| &g.lines)
        .filter(|l| !l.comment)
    {
        assert!(!l.key.is_empty());
        if let Ok(words) = split::split_args(&l.value) {
            assert!(words.iter().all(|w| !w.is_empty()));
        }
        let mut strv = Vec::new();
        split::split_strv(&l.value, &mut strv);
    }
});
