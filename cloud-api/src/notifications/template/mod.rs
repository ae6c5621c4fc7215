//! Message templates: text with `{{placeholder}}`s, checked when an organizer
//! saves one and filled when a message is sent. Pure; no I/O.
//!
//! The text is a Jinja template run by minijinja, so besides `{{ name }}` an
//! organizer may write `{% if venue %}…{% endif %}`, `{% for %}` loops and
//! `{# comments #}`. The engine is a sandbox:
//! - it knows no other templates (no loader: `include`, `import`, `extends`
//!   and macros do not parse) and no filters, tests or functions;
//! - its output is plain text: no HTML escaping, and a value is never read as
//!   template text;
//! - a name that is not a placeholder is an error (strict undefined values),
//!   and so is everything the trial run on saving trips over;
//! - its work is bounded: [`FUEL`] per render (instructions and bytes made),
//!   [`RECURSION_LIMIT`] levels of nesting at run time, the parser's own depth
//!   limit, and [`MAX_TAG`] bytes in one `{{ … }}` or `{% … %}` tag, since the
//!   parser's depth limit does not cover chains such as `- - - 1` or `a ~ b ~
//!   c`, which in a longer tag overflow the stack.

use std::collections::BTreeMap;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

mod tags;

use tags::long_tag;

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
/// Longest `{{ … }}` or `{% … %}` tag, bytes, delimiters included.
pub const MAX_TAG: usize = 500;
/// Work one render may do: about one unit per instruction and per 64 bytes of
/// text made (minijinja's fuel), so also about 3 MB of output at most.
pub const FUEL: u64 = 50_000;
/// Nesting the engine allows at run time (loops calling themselves, blocks in blocks).
pub const RECURSION_LIMIT: usize = 32;

/// Why a template was refused, or could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A name that is no known placeholder.
    #[error("{field}: unknown placeholder {{{{{name}}}}}; known: {known}", known = known())]
    Unknown {
        /// `subject` or `body`.
        field: &'static str,
        /// The name as written.
        name: String,
    },
    /// Not a valid template: an unclosed `{{`, an unknown statement, …
    #[error("{}: {detail}", at(field, *line, *column))]
    Syntax {
        /// `subject` or `body`.
        field: &'static str,
        /// Line, from 1.
        line: usize,
        /// Column in characters, from 1; 0 if unknown.
        column: usize,
        /// The parser's message.
        detail: String,
    },
    /// A tag longer than [`MAX_TAG`], or one never closed before the end of a longer text.
    #[error("{}: a {{{{ … }}}} or {{% … %}} tag must close within {max} bytes", at(field, *line, *column))]
    LongTag {
        /// `subject` or `body`.
        field: &'static str,
        /// Line of the tag's start, from 1.
        line: usize,
        /// Column of the tag's start, in characters from 1.
        column: usize,
        /// [`MAX_TAG`].
        max: usize,
    },
    /// Parses but fails when run: an attribute a text lacks, an operation on
    /// the wrong kind of value, a filter or function (there are none), …
    #[error("{}: {detail}", at(field, *line, *column))]
    Run {
        /// `subject` or `body`.
        field: &'static str,
        /// Line, from 1; 0 if unknown.
        line: usize,
        /// Column in characters, from 1; 0 if unknown.
        column: usize,
        /// What failed, and the expression if known.
        detail: String,
    },
    /// More work than [`FUEL`] allows (loops in loops, long text made).
    #[error("{field}: too much work for one message (loops or text too long)")]
    TooMuchWork {
        /// `subject` or `body`.
        field: &'static str,
    },
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

fn at(field: &str, line: usize, column: usize) -> String {
    match (line, column) {
        (0, _) => field.to_owned(),
        (line, 0) => format!("{field}, line {line}"),
        (line, column) => format!("{field}, line {line}, column {column}"),
    }
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
    /// Checks lengths, syntax and placeholders, then fills the template with
    /// sample values and with empty ones, so that what would only fail when a
    /// message is sent is refused now.
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
        for (field, text) in [("subject", &self.subject), ("body", &self.body)] {
            let engine = engine();
            let template = compile(&engine, field, text)?;
            let mut unknown: Vec<String> =
                template.undeclared_variables(false).into_iter().filter(|name| !is_placeholder(name)).collect();
            unknown.sort_by_key(|name| (text.find(name.as_str()), name.clone()));
            if let Some(name) = unknown.into_iter().next() {
                return Err(TemplateError::Unknown { field, name });
            }
        }
        self.render(&sample_values())?;
        self.render(&BTreeMap::new())?;
        Ok(())
    }

    /// The subject and body with placeholders filled (empty for those
    /// `values` lacks; names that are no placeholder are ignored).
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Result<(String, String), TemplateError> {
        let context = Value::from(
            PLACEHOLDERS
                .iter()
                .map(|(name, _)| (*name, Value::from(values.get(name).map_or("", String::as_str))))
                .collect::<BTreeMap<&str, Value>>(),
        );
        // A value never brings a line break into the subject (header injection).
        let subject = fill("subject", &self.subject, &context)?.replace(['\r', '\n'], " ");
        Ok((subject, fill("body", &self.body, &context)?))
    }
}

/// Realistic values for the trial run of [`Template::check`].
pub fn sample_values() -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("name", "Ann Example".to_owned()),
        ("email", "ann@example.com".to_owned()),
        ("event", "Concert".to_owned()),
        ("venue", "Town Hall, 1 Main Street".to_owned()),
        ("starts", "2030-05-01 19:30 UTC".to_owned()),
        ("order", "1234".to_owned()),
        ("amount", "45.00 EUR".to_owned()),
        ("count", "2".to_owned()),
        (
            "tickets",
            "- Ticket 1 (Standing): QR code attached as ticket-1.png\n\
             - Ticket 2 (Standing): QR code attached as ticket-2.png"
                .to_owned(),
        ),
    ])
}

fn is_placeholder(name: &str) -> bool {
    PLACEHOLDERS.iter().any(|(known, _)| *known == name)
}

/// The sandbox, configured explicitly rather than by minijinja's defaults.
fn engine<'source>() -> Environment<'source> {
    // No templates, loader, filters, tests or globals.
    let mut engine = Environment::empty();
    engine.set_auto_escape_callback(|_| AutoEscape::None);
    engine.set_undefined_behavior(UndefinedBehavior::Strict);
    engine.set_fuel(Some(FUEL));
    engine.set_recursion_limit(RECURSION_LIMIT);
    // Error positions are kept either way; debug mode would copy the state into errors.
    engine.set_debug(false);
    // A final line break is kept, as written (Jinja drops it by default).
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        engine.set_syntax(syntax);
    }
    engine
}

fn compile<'env, 'source>(
    engine: &'env Environment<'source>,
    field: &'static str,
    text: &'source str,
) -> Result<minijinja::Template<'env, 'source>, TemplateError> {
    if let Some(start) = long_tag(text) {
        let (line, column) = place(text, start);
        return Err(TemplateError::LongTag { field, line, column, max: MAX_TAG });
    }
    engine.template_from_named_str(field, text).map_err(|e| refusal(field, text, &e))
}

fn fill(field: &'static str, text: &str, context: &Value) -> Result<String, TemplateError> {
    let engine = engine();
    let template = compile(&engine, field, text)?;
    template.render(context).map_err(|e| refusal(field, text, &e))
}

fn refusal(field: &'static str, text: &str, e: &minijinja::Error) -> TemplateError {
    let (line, column) = match e.range() {
        Some(range) if range.start <= text.len() => place(text, range.start),
        _ => (e.line().unwrap_or(0), 0),
    };
    let mut detail = e.kind().to_string();
    if let Some(more) = e.detail() {
        detail = format!("{detail}: {more}");
    }
    match e.kind() {
        ErrorKind::SyntaxError | ErrorKind::BadEscape => TemplateError::Syntax { field, line, column, detail },
        ErrorKind::OutOfFuel => TemplateError::TooMuchWork { field },
        _ => {
            let source = e.range().and_then(|range| text.get(range)).unwrap_or_default();
            if !source.is_empty() {
                let short: String = source.chars().take(60).collect();
                detail = format!("{detail} in `{short}`");
            }
            TemplateError::Run { field, line, column, detail }
        }
    }
}

/// Line and column (characters), both from 1, of a byte offset.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
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
mod tests;
