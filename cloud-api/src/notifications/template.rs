//! Message templates: text with `{{placeholder}}`s, checked when an organizer
//! saves one and filled when a message is sent. Pure; no I/O.

use std::collections::BTreeMap;

/// Every placeholder a template may use, and what it becomes.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("name", "the buyer's name"),
    ("email", "the buyer's e-mail address"),
    ("event", "the event's title"),
    ("venue", "the venue's name and address"),
    ("starts", "when the event starts (UTC)"),
    ("order", "the order number"),
    ("amount", "the amount paid, e.g. 45.00 EUR"),
    ("count", "how many tickets"),
    ("tickets", "one line per ticket: its QR code's attachment, or its wallet link"),
];

/// Longest template body, bytes.
pub const MAX_BODY: usize = 10_000;
/// Longest subject, bytes.
pub const MAX_SUBJECT: usize = 200;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{…}}` names no known placeholder.
    #[error("unknown placeholder {{{{{0}}}}}; known: {known}", known = known())]
    Unknown(String),
    /// A `{{` is never closed.
    #[error("a {{{{ at byte {0} is never closed")]
    Unclosed(usize),
    /// Too long or empty.
    #[error("{field}: 1 to {max} bytes")]
    Length {
        /// `subject` or `body`.
        field: &'static str,
        /// Limit.
        max: usize,
    },
    /// A subject is one line.
    #[error("subject: one line")]
    Multiline,
}

fn known() -> String {
    PLACEHOLDERS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// A template as stored: the subject is used by e-mail only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

impl Template {
    /// Checks lengths and placeholders.
    pub fn check(&self) -> Result<(), TemplateError> {
        if self.subject.trim().is_empty() || self.subject.len() > MAX_SUBJECT {
            return Err(TemplateError::Length { field: "subject", max: MAX_SUBJECT });
        }
        if self.subject.contains(['\r', '\n']) {
            return Err(TemplateError::Multiline);
        }
        if self.body.trim().is_empty() || self.body.len() > MAX_BODY {
            return Err(TemplateError::Length { field: "body", max: MAX_BODY });
        }
        fill(&self.subject, &BTreeMap::new())?;
        fill(&self.body, &BTreeMap::new())?;
        Ok(())
    }

    /// The subject and body with placeholders filled; unknown ones are an error.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Result<(String, String), TemplateError> {
        // A value never brings a line break into the subject (header injection).
        let subject = fill(&self.subject, values)?.replace(['\r', '\n'], " ");
        Ok((subject, fill(&self.body, values)?))
    }
}

/// Replaces each `{{name}}` with its value (empty if `values` lacks it).
fn fill(text: &str, values: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unclosed(offset + start))?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.iter().any(|(known, _)| *known == name) {
            return Err(TemplateError::Unknown(name.to_owned()));
        }
        out.push_str(values.get(name).map_or("", String::as_str));
        offset += start + 2 + end + 2;
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The e-mail sent when an event has no template of its own.
pub fn default_email() -> Template {
    Template {
        subject: "Your tickets for {{event}} (order {{order}})".into(),
        body: "Hello {{name}},\n\nthank you for your order {{order}} ({{amount}}).\n\n\
               {{event}}\n{{starts}}\n{{venue}}\n\nYour {{count}} ticket(s):\n{{tickets}}\n\n\
               Show the QR code at the door, on paper or on your phone.\n"
            .into(),
    }
}

/// The text message sent when an event has no template of its own.
pub fn default_sms() -> Template {
    Template {
        subject: "SMS".into(),
        body: "Order {{order}} paid: {{count}} ticket(s) for {{event}}, {{starts}}. Sent to {{email}}.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("name", "Ann".to_owned()), ("event", "Concert\r\nBcc: x@y".to_owned())])
    }

    #[test]
    fn placeholders_are_filled_and_spaces_inside_braces_allowed() {
        let t = Template { subject: "{{ event }}!".into(), body: "Hi {{name}}, {{event}}; {{count}}.".into() };
        let (subject, body) = t.render(&values()).unwrap_or_default();
        assert_eq!(subject, "Concert  Bcc: x@y!", "no line break reaches the subject");
        assert_eq!(body, "Hi Ann, Concert\r\nBcc: x@y; .");
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_refused_with_their_place() {
        let t = Template { subject: "s".into(), body: "Hi {{nmae}}".into() };
        assert_eq!(t.check(), Err(TemplateError::Unknown("nmae".into())));
        assert!(t.check().err().map(|e| e.to_string()).unwrap_or_default().contains("{{nmae}}"));
        let t = Template { subject: "s".into(), body: "ok {{name}} then {{event".into() };
        assert_eq!(t.check(), Err(TemplateError::Unclosed(17)));
        let t = Template { subject: "two\nlines".into(), body: "b".into() };
        assert_eq!(t.check(), Err(TemplateError::Multiline));
        let t = Template { subject: "s".into(), body: "x".repeat(MAX_BODY + 1) };
        assert_eq!(t.check(), Err(TemplateError::Length { field: "body", max: MAX_BODY }));
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(default_email().check(), Ok(()));
        assert_eq!(default_sms().check(), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn any_text_renders_or_is_refused_without_panicking(subject in "\\PC{0,40}", body in "[{}a-z ]{0,60}") {
            let t = Template { subject, body };
            if t.check().is_ok() {
                proptest::prop_assert!(t.render(&values()).is_ok());
            }
        }
    }
}
