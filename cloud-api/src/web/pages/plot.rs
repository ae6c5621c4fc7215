//! Bar charts as inline SVG for the organizer's pages: no script, no
//! external assets, readable with styles off (each bar has a `<title>`).
//! Pure; unit-tested here.

use maud::{Markup, html};

/// Width and height of a chart, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for labels under the bars and the scale on the left.
const BOTTOM: f64 = 40.0;
const LEFT: f64 = 48.0;

/// A bar chart of `bars` (label, value); an empty chart says "no data yet".
pub fn bars(title: &str, bars: &[(String, i64)]) -> Markup {
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(0);
    html! {
        svg class="plot" role="img" aria-label=(title) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @if bars.is_empty() || top == 0 {
                text class="empty" x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" { "no data yet" }
            } @else {
                (scale(top))
                (columns(bars, top))
            }
        }
    }
}

/// The baseline, and the top value and zero on the left.
fn scale(top: i64) -> Markup {
    let (x, y) = (LEFT - 4.0, HEIGHT - BOTTOM);
    html! {
        // Closed explicitly: in HTML, an SVG element without `/>` or an end tag
        // would take the elements after it as its children.
        line x1=(LEFT) y1=(y) x2=(WIDTH) y2=(y) stroke="#888" {}
        text x=(x) y="16" text-anchor="end" font-size="11" { (top) }
        text x=(x) y=(y) text-anchor="end" font-size="11" { "0" }
    }
}

/// A bar for each value, each with a `<title>`, and labels under some.
fn columns(bars: &[(String, i64)], top: i64) -> Markup {
    let plot_height = HEIGHT - BOTTOM - 10.0;
    let slot = (WIDTH - LEFT) / bars.len() as f64;
    let width = (slot * 0.8).max(1.0);
    // Label at most about twelve bars, so many hours stay legible.
    let label_every = bars.len().div_ceil(12);
    html! {
        @for (i, (label, value)) in bars.iter().enumerate() {
            @let h = plot_height * (*value).max(0) as f64 / top as f64;
            @let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
            @let y = HEIGHT - BOTTOM - h;
            rect class="bar" data-value=(value) x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                width=(format!("{width:.1}")) height=(format!("{h:.1}")) fill="#2b6cb0" {
                title { (label) ": " (value) }
            }
            @if i % label_every == 0 {
                text x=(format!("{:.1}", x + width / 2.0)) y=(format!("{:.1}", HEIGHT - BOTTOM + 14.0))
                    text-anchor="middle" font-size="11" { (label) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heights(svg: &str) -> Vec<f64> {
        svg.split("<rect class=\"bar\"")
            .skip(1)
            .map(|r| {
                let h = r.split("height=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("nan");
                h.parse().unwrap_or(f64::NAN)
            })
            .collect()
    }

    #[test]
    fn bars_are_as_tall_as_their_values() {
        let svg = bars("Tickets", &[("10:00".into(), 5), ("11:00".into(), 10), ("12:00".into(), 0)]).into_string();
        let h = heights(&svg);
        assert_eq!(h.len(), 3);
        assert!((h[1] - 2.0 * h[0]).abs() < 0.2, "{h:?}");
        assert_eq!(h[2], 0.0);
        assert!(svg.contains("<title>11:00: 10</title>"));
    }

    #[test]
    fn an_empty_chart_says_so_and_labels_are_escaped() {
        assert!(bars("Entries", &[]).into_string().contains("no data yet"));
        assert!(bars("Entries", &[("north".into(), 0)]).into_string().contains("no data yet"));
        let svg = bars("<Sales>", &[("<script>".into(), 1)]).into_string();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "{svg}");
    }

    #[test]
    fn many_bars_label_only_some() {
        let many: Vec<(String, i64)> = (0..48).map(|h| (format!("h{h}"), h)).collect();
        let svg = bars("Day", &many).into_string();
        assert_eq!(heights(&svg).len(), 48);
        assert_eq!(svg.matches("font-size=\"11\">h").count(), 12);
    }
}
