//! `quadlet::podman::escape_words` (Quadlet's `escapeWords`) is undone by `unit::split::split_args`
//! (systemd's exec-line splitting): every non-empty word comes back unchanged, so a generated
//! `ExecStart=` passes exactly the intended argv to podman.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::quadlet::podman::escape_words;
use unitwright::unit::split::split_args;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // NUL cannot be represented in a unit file; `\x1f` separates the fuzzer's words.
    if s.contains('\0') {
        return;
    }
    let words: Vec<&str> = s.split('\u{1f}').collect();
    let line = escape_words(&words);
    let expected: Vec<&str> = words.iter().copied().filter(|w| !w.is_empty()).collect();
    let got = split_args(&line).expect("escaped words always split");
    assert_eq!(got, expected, "line: {line:?}");
});
