//! Text from outside, refused when it holds control characters: C0 (U+0000 to
//! U+001F) and DEL anywhere in a request's path, query, form fields and JSON
//! strings (keys too), except tab, line feed and carriage return in the fields
//! documented as several lines of text ([`MULTILINE_FIELDS`]).
//!
//! A NUL byte is text to SQLite and an error to PostgreSQL, and the other
//! controls end up in logs, e-mails and pages; so they are stopped here, once for
//! every route, and not field by field. Pure: the HTTP side calls these with the
//! bytes it has.

use std::fmt;

/// JSON fields that hold several lines: an event's description, a
/// notification template's body, a case's resolution note.
pub const MULTILINE_FIELDS: &[&str] = &["description", "body", "note"];

/// A control character where text is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlCharacter {
    /// Where: `path`, `query parameter q`, `form field email`, or a JSON
    /// location such as `body: ticket_types[0].name`.
    pub place: String,
    /// The character.
    pub character: char,
}

impl fmt::Display for ControlCharacter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: control character U+{:04X} is not allowed", self.place, u32::from(self.character))
    }
}

impl std::error::Error for ControlCharacter {}

/// The first control character of `text`; tab, line feed and carriage return
/// pass when `multiline`.
pub fn first_control(text: &str, multiline: bool) -> Option<char> {
    text.chars().find(|&c| (c.is_ascii_control()) && !(multiline && matches!(c, '\t' | '\n' | '\r')))
}

/// Checks a percent-encoded request path (before routing splits it).
pub fn check_path(path: &str) -> Result<(), ControlCharacter> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    match first_control(&decoded, false) {
        Some(character) => Err(ControlCharacter { place: "path".into(), character }),
        None => Ok(()),
    }
}

/// Checks `application/x-www-form-urlencoded` text: a query string or a form body.
pub fn check_urlencoded(what: &str, encoded: &[u8]) -> Result<(), ControlCharacter> {
    for (name, value) in form_urlencoded::parse(encoded) {
        for text in [&name, &value] {
            if let Some(character) = first_control(text, false) {
                return Err(ControlCharacter { place: format!("{what} {}", printable(&name)), character });
            }
        }
    }
    Ok(())
}

/// Checks every string of a JSON document, keys included. Bytes that are not
/// JSON pass: the parser that follows refuses them with its own message.
pub fn check_json(bytes: &[u8]) -> Result<(), ControlCharacter> {
    // Raw C0 characters are not JSON at all, so they come escaped; DEL may come
    // raw. A document with neither a backslash nor a DEL needs no parse here.
    if !bytes.iter().any(|&b| b == b'\\' || b == 0x7f) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let mut place = String::from("body");
    check_value(&value, None, &mut place)
}

fn check_value(value: &serde_json::Value, field: Option<&str>, place: &mut String) -> Result<(), ControlCharacter> {
    match value {
        serde_json::Value::String(text) => {
            let multiline = field.is_some_and(|f| MULTILINE_FIELDS.contains(&f));
            match first_control(text, multiline) {
                Some(character) => Err(ControlCharacter { place: place.clone(), character }),
                None => Ok(()),
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = place.len();
                place.push_str(&format!("[{i}]"));
                check_value(item, field, place)?;
                place.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                if let Some(character) = first_control(key, false) {
                    return Err(ControlCharacter { place: format!("{place} (a field name)"), character });
                }
                let len = place.len();
                place.push_str(if len == "body".len() { ": " } else { "." });
                place.push_str(key);
                check_value(item, Some(key), place)?;
                place.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A name as it may be shown back: its control characters replaced.
fn printable(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_and_escape_are_refused_in_any_field_and_newlines_only_where_documented() {
        let err = check_json(br#"{"email":"n\u0000@example.com","password":"x"}"#).unwrap_err();
        assert_eq!((err.place.as_str(), err.character), ("body: email", '\0'));
        let err = check_json(br#"{"ticket_types":[{"name":"A"},{"name":"B\u001b[2J"}]}"#).unwrap_err();
        assert_eq!(err.place, "body: ticket_types[1].name");
        assert!(check_json(br#"{"title":"two\nlines"}"#).is_err());
        assert!(check_json(br#"{"description":"two\nlines\twith a tab\r\n"}"#).is_ok());
        assert!(check_json(br#"{"description":"but no \u0000"}"#).is_err());
        assert!(check_json(br#"{"k\u0001":1}"#).is_err());
        // Escaped backslashes and other escapes are text.
        assert!(check_json(br#"{"name":"C:\\u0000 \u00e9 \" \/"}"#).is_ok());
    }

    #[test]
    fn paths_queries_and_forms_are_decoded_before_the_check() {
        assert!(check_path("/events/12").is_ok());
        assert_eq!(check_path("/media/a%00b").unwrap_err().character, '\0');
        assert_eq!(check_path("/media/a%7Fb").unwrap_err().character, '\u{7f}');
        assert!(check_urlencoded("query parameter", b"q=rock+%26+roll&page=2").is_ok());
        let err = check_urlencoded("query parameter", b"page=1&q=a%00b").unwrap_err();
        assert_eq!(err.to_string(), "query parameter q: control character U+0000 is not allowed");
        assert!(check_urlencoded("form field", b"email=a%0Ab").is_err());
    }

    proptest! {
        #[test]
        fn json_strings_are_refused_exactly_when_they_hold_a_control(text in "\\PC{0,8}[\\x00-\\x1f\\x7f]?\\PC{0,8}") {
            let doc = serde_json::json!({ "name": text.clone(), "description": text.clone() });
            let bytes = serde_json::to_vec(&doc).unwrap();
            let has_control = text.chars().any(|c| c.is_ascii_control());
            prop_assert_eq!(check_json(&bytes).is_err(), has_control);
        }

        #[test]
        fn any_bytes_are_checked_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = check_json(&bytes);
            let _ = check_urlencoded("form field", &bytes);
            let _ = check_path(&String::from_utf8_lossy(&bytes));
        }
    }
}
