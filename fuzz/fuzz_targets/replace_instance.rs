//! `escape::replace_instance` and `escape_instance`: never panic; a result is a valid instance
//! name of the same template carrying exactly the given instance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unitwright::escape::{self, Kind, Kinds};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |&b| b == 0);
    let template = parts.next().unwrap_or_default();
    let instance = parts.next().unwrap_or_default();
    if let Ok(name) = escape::replace_instance(template, instance) {
        assert!(escape::is_valid(&name, Kinds::INSTANCE), "{name:?}");
        let (kind, got) = escape::to_instance(&name).unwrap();
        assert_eq!(kind, Kind::Instance);
        assert_eq!(got.unwrap().as_bytes(), instance);
        assert_eq!(
            escape::template_of(&name).unwrap(),
            escape::template_of(template).unwrap()
        );
    }
    if let Ok(template) = std::str::from_utf8(template) {
        if let Ok(name) = escape::escape_instance(template, instance) {
            let id = escape::unescape_instance_of(template, &name).unwrap();
            let until_nul = instance.split(|&b| b == 0).next().unwrap_or_default();
            assert_eq!(id, until_nul);
        }
    }
});
