//! podman's multi-file `.quadlets` format as `quadlet install app.quadlets` reads it
//! (`lifecycle::quadlets::split`): any text is either refused with the line of the section at
//! fault, or split into sections whose names are plain Quadlet file names and whose texts,
//! joined with `---` lines, hold every non-separator line of the input in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::lifecycle::{adapter, quadlets};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    match quadlets::split(text) {
        Err(e) => assert!(e.line >= 1 && e.line <= lines + 1, "{e}"),
        Ok(sections) => {
            let mut last = 0;
            for s in &sections {
                assert!(!s.name.is_empty() && !s.name.contains('/'), "{}", s.name);
                assert!(adapter::is_quadlet_name(&s.name), "{}", s.name);
                assert!(s.line > last, "sections in order");
                last = s.line;
                assert!(s.text.ends_with('\n') && !s.text.trim().is_empty());
                assert!(s.text.lines().all(|l| l.trim() != "---"));
            }
        }
    }
});
