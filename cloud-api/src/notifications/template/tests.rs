//! The template engine's unit and property tests.

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
    assert_eq!(message(&t), "body, line 2, column 35: syntax error: unexpected end of input, expected end of block");
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
