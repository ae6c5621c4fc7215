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

/// Where a tag starts that is longer than [`MAX_TAG`] bytes, or that is never
/// closed in a text whose rest is longer than that.
///
/// Cuts the text into tags as minijinja's lexer does with the default syntax
/// (its `tokenize_root`, `handle_start_marker`, `handle_raw_tag` and
/// `tokenize_block_or_var`): a `{{`, `{%` or `{#` opens a tag (a `-` or `+`
/// right after it belongs to it); a comment ends at the next `#}`; `{% raw %}`
/// runs to the next `{% endraw %}`; a variable or block tag ends at the first
/// `}}` or `%}` (optionally after `-` or `+`) outside string literals while no
/// bracket is open. Where it could differ from the lexer it errs towards
/// longer tags.
fn long_tag(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = find(bytes, at, b"{") {
        let start = found;
        let marker = bytes.get(start + 1).copied();
        if !matches!(marker, Some(b'{' | b'%' | b'#')) {
            at = start + 1;
            continue;
        }
        let content = start + 2 + usize::from(matches!(bytes.get(start + 2), Some(b'-' | b'+')));
        // Comments and raw text are not parsed: skipped, not measured. An
        // unclosed one is a syntax error after which nothing is parsed.
        if marker == Some(b'#') {
            at = find(bytes, content, b"#}")? + 2;
            continue;
        }
        let end = if marker == Some(b'%')
            && let Some(len) = basic_tag(&text[content..], "raw", false)
        {
            let mut from = content + len;
            let mut close = None;
            while let Some(open) = find(bytes, from, b"{%") {
                from = open + 2;
                if let Some(len) = basic_tag(&text[from..], "endraw", true) {
                    close = Some(from + len);
                    break;
                }
            }
            at = close?;
            continue;
        } else {
            tag_end(bytes, content, if marker == Some(b'{') { b"}}" } else { b"%}" })
        };
        match end {
            Some(end) if end - start <= MAX_TAG => at = end,
            Some(_) => return Some(start),
            None if text.len() - start <= MAX_TAG => return None,
            None => return Some(start),
        }
    }
    None
}

/// First index of `needle` in `bytes` at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| from + i)
}

/// End (exclusive) of a variable or block tag whose content starts at `from`.
fn tag_end(bytes: &[u8], from: usize, close: &[u8; 2]) -> Option<usize> {
    let mut i = from;
    let mut balance: isize = 0;
    while i < bytes.len() {
        if balance == 0 {
            let rest = &bytes[i..];
            if rest.starts_with(close) {
                return Some(i + 2);
            }
            if matches!(rest.first(), Some(b'-' | b'+')) && rest[1..].starts_with(close) {
                return Some(i + 3);
            }
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => balance += 1,
            b')' | b']' | b'}' => balance -= 1,
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// minijinja's `skip_basic_tag`: the length of `name %}` (with optional
/// whitespace and `-`/`+` markers) at the start of `text`.
fn basic_tag(text: &str, name: &str, skip_ws_control: bool) -> Option<usize> {
    let mut rest = text;
    if skip_ws_control {
        rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    }
    rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace()).strip_prefix(name)?;
    rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    rest = rest.strip_prefix("%}")?;
    Some(text.len() - rest.len())
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
    use proptest::prelude::*;

    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("name", "Ann".to_owned()), ("event", "Concert\r\nBcc: x@y".to_owned())])
    }

    fn body(text: &str) -> Template {
        Template { subject: "s".into(), body: text.into() }
    }

    fn message(t: &Template) -> String {
        t.check().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn placeholders_are_filled_and_spaces_inside_braces_allowed() {
        let t = Template { subject: "{{ event }}!".into(), body: "Hi {{name}}, {{event}}; {{count}}.".into() };
        let (subject, body) = t.render(&values()).unwrap_or_default();
        assert_eq!(subject, "Concert  Bcc: x@y!", "no line break reaches the subject");
        assert_eq!(body, "Hi Ann, Concert\r\nBcc: x@y; .");
        // Nor one the template makes itself.
        let t = Template { subject: "a{{ '\\r\\n' }}b".into(), body: "b".into() };
        assert_eq!(t.render(&values()).map(|(subject, _)| subject), Ok("a  b".to_owned()));
    }

    #[test]
    fn the_defaults_render_as_the_former_engine_did() {
        assert_eq!(default_email().check(), Ok(()));
        assert_eq!(default_sms().check(), Ok(()));
        let (subject, body) = default_email().render(&sample_values()).unwrap_or_default();
        assert_eq!(subject, "Your tickets for Concert (order 1234)");
        assert_eq!(
            body,
            "Hello Ann Example,\n\nthank you for your order 1234 (45.00 EUR).\n\nConcert\n2030-05-01 19:30 UTC\n\
             Town Hall, 1 Main Street\n\nYour 2 ticket(s):\n- Ticket 1 (Standing): QR code attached as ticket-1.png\n\
             - Ticket 2 (Standing): QR code attached as ticket-2.png\n\n\
             Show the QR code at the door, on paper or on your phone.\n",
            "the final line break is kept"
        );
        let (_, text) = default_sms().render(&sample_values()).unwrap_or_default();
        assert_eq!(text, "Order 1234 paid: 2 ticket(s) for Concert, 2030-05-01 19:30 UTC. Sent to ann@example.com.");
    }

    #[test]
    fn unknown_names_and_bad_syntax_are_refused_with_their_place() {
        let t = body("Hi {{nmae}}");
        assert_eq!(t.check(), Err(TemplateError::Unknown { field: "body", name: "nmae".into() }));
        assert!(message(&t).contains("{{nmae}}") && message(&t).contains(&known()), "{}", message(&t));
        // The first one written is named.
        let t = body("{{ zz }} {% if aa %}{% endif %}");
        assert_eq!(t.check(), Err(TemplateError::Unknown { field: "body", name: "zz".into() }));
        let t = Template { subject: "{{ titel }}".into(), body: "b".into() };
        assert_eq!(t.check(), Err(TemplateError::Unknown { field: "subject", name: "titel".into() }));

        let t = body("ok {{name}} then {{event");
        assert!(matches!(t.check(), Err(TemplateError::Syntax { field: "body", line: 1, column: 20, .. })));
        assert_eq!(
            message(&t),
            "body, line 1, column 20: syntax error: unexpected end of input, expected end of variable block"
        );
        let t = body("Hello,\nsee you {% if venue %}at {{ venue }}");
        assert_eq!(
            message(&t),
            "body, line 2, column 35: syntax error: unexpected end of input, expected end of block"
        );
        let t = body("{{ }}");
        assert!(matches!(t.check(), Err(TemplateError::Syntax { .. })));

        let t = Template { subject: "two\nlines".into(), body: "b".into() };
        assert_eq!(t.check(), Err(TemplateError::Multiline));
        let t = body(&"x".repeat(MAX_BODY + 1));
        assert_eq!(t.check(), Err(TemplateError::Length { field: "body", max: MAX_BODY }));
    }

    #[test]
    fn jinja_statements_work() {
        let t = body(
            "{# note #}{% if venue %}at {{ venue }}{% else %}online{% endif %}; \
             {{ count }} ticket{% if count != '1' %}s{% endif %}; \
             {% for c in order %}[{{ c }}]{% endfor %}; {% set who = name ~ '!' %}{{ who }}\n",
        );
        assert_eq!(t.check(), Ok(()));
        let filled = BTreeMap::from([("count", "1".to_owned()), ("order", "42".to_owned()), ("name", "Ann".into())]);
        assert_eq!(t.render(&filled).map(|(_, body)| body), Ok("online; 1 ticket; [4][2]; Ann!\n".to_owned()));
        let t = body("{% raw %}{{ name }} {% if {% endraw %}{{ name }}");
        assert_eq!(t.render(&values()).map(|(_, body)| body), Ok("{{ name }} {% if Ann".to_owned()));
    }

    #[test]
    fn the_sandbox_reaches_nothing_but_the_placeholders() {
        // No other templates.
        for statement in
            ["{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}", "{% macro m() %}{% endmacro %}"]
        {
            assert!(matches!(body(statement).check(), Err(TemplateError::Syntax { .. })), "{statement}");
        }
        // No globals, functions, filters or tests.
        assert_eq!(body("{{ range(9) }}").check(), Err(TemplateError::Unknown { field: "body", name: "range".into() }));
        assert_eq!(body("{{ debug() }}").check(), Err(TemplateError::Unknown { field: "body", name: "debug".into() }));
        let t = body("{{ name|upper }}");
        assert!(matches!(t.check(), Err(TemplateError::Run { field: "body", line: 1, column: 9, .. })));
        assert!(message(&t).contains("unknown filter"), "{}", message(&t));
        assert!(matches!(body("{% if name is defined %}x{% endif %}").check(), Err(TemplateError::Run { .. })));
        // Strict: an attribute a text lacks, a place past its end (tried with empty values too), `self`.
        let t = body("Dear {{ name.first }}");
        assert_eq!(message(&t), "body, line 1, column 9: undefined value in `name.first`");
        assert!(matches!(body("{{ name[0] }}").check(), Err(TemplateError::Run { .. })));
        assert!(matches!(body("{{ self }}").check(), Err(TemplateError::Run { .. })));
        assert!(matches!(body("{{ count + 1 }}").check(), Err(TemplateError::Run { .. })));
        // Plain text out, and a value is never read as a template.
        let t = body("<b>{{ name }}</b> & {{ '<i>' }}");
        let sneaky = BTreeMap::from([("name", "{{ email }} <script>".to_owned())]);
        assert_eq!(t.render(&sneaky).map(|(_, body)| body), Ok("<b>{{ email }} <script></b> & <i>".to_owned()));
    }

    #[test]
    fn work_is_bounded() {
        let lines = "- Ticket 1 (Standing): QR code attached as ticket-1.png\n".repeat(40);
        let many = BTreeMap::from([("tickets", lines)]);
        let started = std::time::Instant::now();
        // Loops in loops: out of fuel, on saving already.
        let nested = "{% for a in tickets %}{% for b in tickets %}{% for c in tickets %}{{ tickets }}\
                      {% endfor %}{% endfor %}{% endfor %}";
        assert_eq!(body(nested).check(), Err(TemplateError::TooMuchWork { field: "body" }));
        // Fine with the samples, too much with a large order: refused when sent.
        let t = body("{% for a in tickets %}{{ tickets }}{% endfor %}");
        assert_eq!(t.check(), Ok(()));
        assert_eq!(t.render(&many), Err(TemplateError::TooMuchWork { field: "body" }));
        assert_eq!(body("{{ name * 100000000 }}").check(), Err(TemplateError::TooMuchWork { field: "body" }));
        // A loop calling itself: the recursion limit.
        let t = body("{% for x in name recursive %}{{ loop([name]) }}{% endfor %}");
        assert!(message(&t).contains("recursion limit"), "{}", message(&t));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn deep_nesting_is_refused_before_it_reaches_the_parser() {
        // Chains the parser's depth limit does not cover overflow the stack in
        // a tag of a few thousand bytes; a body of 10,000 is refused calmly.
        let chains = [
            format!("{{{{ {}1 }}}}", "-".repeat(MAX_BODY - 10)),
            format!("{{{{ {}name }}}}", "not ".repeat(MAX_BODY / 4 - 5)),
            format!("{{{{ name{} }}}}", " ~ name".repeat(MAX_BODY / 7 - 5)),
            format!("{{{{ 1{} }}}}", "+1".repeat(MAX_BODY / 2 - 5)),
            format!("{{{{ name{} }}}}", "()".repeat(MAX_BODY / 2 - 5)),
            // `}}` inside brackets does not end a tag.
            format!("{{{{ ({{1: 2}}}} + ({}1) }}}}", "-".repeat(MAX_BODY - 30)),
            // Nor inside a string.
            format!("{{{{ '}}}}' ~ {}1 }}}}", "-".repeat(MAX_BODY - 30)),
            // Unclosed: the parser would read the chain before it finds the end.
            format!("x {{% if {}1", "-".repeat(MAX_BODY - 10)),
        ];
        for text in &chains {
            assert!(
                matches!(body(text).check(), Err(TemplateError::LongTag { field: "body", line: 1, .. })),
                "{:?}",
                &text[..40]
            );
            // Rendering an unchecked text is guarded the same way.
            assert!(matches!(body(text).render(&values()), Err(TemplateError::LongTag { .. })));
        }
        assert_eq!(
            body(&chains[7]).check().map_err(|e| e.to_string()),
            Err("body, line 1, column 3: a {{ … }} or {% … %} tag must close within 500 bytes".to_owned())
        );
        // Up to the limit, chains are fine; so are long comments and raw text.
        let chain = format!("{{{{ {}1 }}}}", "-".repeat(MAX_TAG - 7));
        assert_eq!(chain.len(), MAX_TAG);
        assert_eq!(body(&chain.repeat(MAX_BODY / MAX_TAG)).check(), Ok(()));
        let prose = "Don't forget: {{ \"and }} so on\" }} ".repeat(MAX_TAG / 10);
        assert_eq!(body(&format!("{{# {prose} #}}{{% raw %}}{prose}{{% endraw %}}")).check(), Ok(()));
        // Statements nest 150 deep at most (the parser's limit).
        let deep = format!("{}x{}", "{% if name %}".repeat(200), "{% endif %}".repeat(200));
        assert!(matches!(body(&deep).check(), Err(TemplateError::Syntax { .. })));
        let deep = format!("{}x{}", "{% if name %}".repeat(100), "{% endif %}".repeat(100));
        assert_eq!(body(&deep).check(), Ok(()));
    }

    /// Loose tokens: mostly broken templates.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "{{",
                "}}",
                "{%",
                "%}",
                "{#",
                "#}",
                "-",
                "+",
                "(",
                ")",
                "[",
                "]",
                "{",
                "}",
                "'",
                "\"",
                "\\",
                "~",
                "|",
                ".",
                ",",
                ":",
                "*",
                " if ",
                " else ",
                " for ",
                " in ",
                " not ",
                " is ",
                " and ",
                "endif",
                "endfor",
                "set ",
                "raw",
                "endraw",
                "with",
                "endwith",
                " recursive",
                "loop",
                "self",
                "\n",
                " ",
                "0",
                "1",
                "x",
                "\u{e9}",
            ])
            .prop_map(str::to_owned),
            placeholder(),
            "\\PC{0,4}",
        ]
    }

    fn placeholder() -> impl Strategy<Value = String> {
        prop::sample::select(PLACEHOLDERS.iter().map(|(name, _)| *name).collect::<Vec<_>>()).prop_map(str::to_owned)
    }

    /// Expressions over the placeholders, now and then with a name that is none.
    fn expr() -> impl Strategy<Value = String> + Clone {
        let leaf = prop_oneof![
            20 => placeholder(),
            4 => "'[a-z {}%#]{0,5}'",
            4 => "[0-9]{1,3}",
            1 => Just("loop.index".to_owned()),
            1 => "[a-z]{1,3}",
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec![" ~ ", " == ", " != ", " < ", " and ", " or ", " + ", " in "]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("({a}{op}{b})")),
                inner.clone().prop_map(|a| format!("(not {a})")),
                inner.clone().prop_map(|a| format!("({a})")),
                (inner.clone(), 0..20_u8).prop_map(|(a, i)| format!("{a}[{i}]")),
                inner.clone().prop_map(|a| format!("{a}.first")),
                (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            ]
        })
    }

    /// Text, a placeholder, a `set`, a comment or raw text.
    fn part() -> impl Strategy<Value = String> + Clone {
        let text = prop_oneof![30 => "[a-zA-Z ,.!\n]{0,12}", 1 => Just("{".to_owned()), 1 => Just("}".to_owned())];
        prop_oneof![
            3 => text.clone(),
            3 => expr().prop_map(|e| format!("{{{{ {e} }}}}")),
            1 => expr().prop_map(|e| format!("{{% set v = {e} %}}{{{{ v }}}}")),
            1 => text.prop_map(|t| format!("{{# {t} #}}{{% raw %}}{{{{{t}{{% endraw %}}")),
        ]
    }

    /// Templates, well-formed more often than not: parts in `if`s and `for`s.
    fn template() -> impl Strategy<Value = String> {
        prop::collection::vec(part(), 0..6).prop_map(|parts| parts.concat()).prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                (expr(), inner.clone(), inner.clone())
                    .prop_map(|(e, a, b)| format!("{{% if {e} %}}{a}{{% else %}}{b}{{% endif %}}")),
                (placeholder(), inner.clone())
                    .prop_map(|(p, a)| format!("{{% for c in {p} %}}{{{{ c }}}}{a}{{% endfor %}}")),
                prop::collection::vec(inner, 1..4).prop_map(|parts| parts.concat()),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text is refused or filled without a panic; what is accepted is
        /// filled, the subject without a line break.
        #[test]
        fn any_text_renders_or_is_refused_without_panicking(
            subject in "\\PC{0,40}",
            pieces in prop::collection::vec(piece(), 0..40),
            plain in "[{}a-z %#]{0,60}",
            jinja in template(),
            heading in prop::collection::vec(part(), 0..3),
        ) {
            let made = [
                Template { subject: subject.clone(), body: pieces.concat() },
                Template { subject: "s".into(), body: plain },
                Template { subject: heading.concat().replace(['\r', '\n'], " ") + "!", body: jinja + "." },
            ];
            for t in made {
                let checked = t.check();
                let filled = t.render(&sample_values());
                let _ = t.render(&values());
                if checked.is_ok() {
                    let (subject, _) = filled.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(!subject.contains(['\r', '\n']));
                }
            }
        }
    }
}
