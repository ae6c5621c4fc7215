//! Measuring tags before minijinja parses them: its parser limits nesting
//! but not chains, so a long enough tag would overflow the stack.

use super::MAX_TAG;

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
pub(super) fn long_tag(text: &str) -> Option<usize> {
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
