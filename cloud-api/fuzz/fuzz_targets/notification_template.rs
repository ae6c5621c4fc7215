//! Any subject (the first line) and body (the rest), checked and filled with
//! any values: never a panic nor a stack overflow; what the check accepts fills
//! with the sample values and with empty ones; a filled subject never holds a
//! line break.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/notifications/template/mod.rs"]
mod template;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (subject, body) = text.split_once('\n').unwrap_or((&text, ""));
    let t = template::Template { subject: subject.to_owned(), body: body.to_owned() };
    if let Err(e) = t.check() {
        assert!(!e.to_string().is_empty());
    } else {
        for values in [template::sample_values(), BTreeMap::new()] {
            let filled = t.render(&values);
            assert!(filled.is_ok(), "accepted, then {filled:?}");
        }
    }
    // Values that look like template text and break lines: never read as either.
    let odd: BTreeMap<&str, String> =
        template::PLACEHOLDERS.iter().map(|(name, _)| (*name, format!("{{{{ {name} }}}}\r\n{{% x"))).collect();
    for values in [template::sample_values(), odd] {
        if let Ok((subject, _)) = t.render(&values) {
            assert!(!subject.contains(['\r', '\n']), "{subject:?}");
        }
    }
});
