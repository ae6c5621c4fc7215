//! The crate's shape, read off its source: each area imports only the areas
//! below it (so no two areas form an import circle, and nothing below the web
//! layer imports the router or the pages), and the pages write no HTML by hand.
//! ARCHITECTURE.md's cloud-api table lists the areas in this order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The areas, lowest first.
const LAYERS: &[&str] = &[
    "db",
    "common",
    "accounts",
    "domain_events",
    "catalog",
    "notifications",
    "tickets",
    "sale",
    "venue",
    "analytics",
    "web",
];
/// What sits above every area and may use any of them.
const TOP: &[&str] = &["config", "server", "cli", "main", "lib"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the names at the group's top level.
            let (mut depth, mut token, mut start) = (0, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_ascii_alphanumeric() || c == '_') => token.push(c),
                    _ if start && !token.is_empty() => {
                        names.insert(std::mem::take(&mut token));
                        start = false;
                    }
                    _ => {}
                }
            }
            if !token.is_empty() {
                names.insert(token);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.insert(name);
        }
    }
    names.remove("params"); // the store's macro, exported at the crate root
    names
}

#[test]
fn areas_import_only_the_areas_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 40, "found the sources: {}", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let area = first.trim_end_matches(".rs");
        let text = std::fs::read_to_string(file).expect("readable");
        if TOP.contains(&area) {
            continue;
        }
        let Some(level) = LAYERS.iter().position(|a| *a == area) else {
            wrong.push(format!("{}: not an area listed in LAYERS", relative.display()));
            continue;
        };
        for name in crate_paths(&text) {
            match LAYERS.iter().position(|a| *a == name) {
                Some(other) if other <= level => {}
                _ => wrong.push(format!("{} ({area}) uses crate::{name}", relative.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_reader_sees_grouped_and_plain_paths() {
    let names = crate_paths("use crate::{common::clock, sale::{self, orders}};\nlet x = crate::web::AppState;");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["common", "sale", "web"]);
}

#[test]
fn pages_build_html_only_through_the_escaping_template() {
    let pages = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/pages");
    let mut files = Vec::new();
    rust_files(&pages, &mut files);
    assert!(!files.is_empty(), "found the pages");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for hand_made in ["fn escape", "format!(\"<", "push_str(\"<", "format!(\"{}<"] {
            assert!(!text.contains(hand_made), "{}: `{hand_made}`: HTML is written with maud's html!", file.display());
        }
    }
}
