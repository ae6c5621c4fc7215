//! Bar charts as inline SVG for the organizer's pages: no script, no
//! external assets, readable with styles off (each bar has a `<title>`).
//! Pure; unit-tested here.

use super::escape;

/// Width and height of a chart, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for labels under the bars and the scale on the left.
const BOTTOM: f64 = 40.0;
const LEFT: f64 = 48.0;

/// A bar chart of `bars` (label, value); an empty chart says "no data yet".
pub fn bars(title: &str, bars: &[(String, i64)]) -> String {
    let mut svg = format!(
        "<svg class=\"plot\" role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = escape(title)
    );
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(0);
    if bars.is_empty() || top == 0 {
        svg.push_str(&format!(
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data yet</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        ));
        return svg;
    }
    let plot_height = HEIGHT - BOTTOM - 10.0;
    let slot = (WIDTH - LEFT) / bars.len() as f64;
    let width = (slot * 0.8).max(1.0);
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{WIDTH}\" y2=\"{y}\" stroke=\"#888\"/>\
         <text x=\"{x}\" y=\"16\" text-anchor=\"end\" font-size=\"11\">{top}</text>\
         <text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" font-size=\"11\">0</text>",
        y = HEIGHT - BOTTOM,
        x = LEFT - 4.0,
    ));
    // Label at most about twelve bars, so many hours stay legible.
    let label_every = bars.len().div_ceil(12);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = plot_height * (*value).max(0) as f64 / top as f64;
        let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
        let y = HEIGHT - BOTTOM - h;
        svg.push_str(&format!(
            "<rect class=\"bar\" data-value=\"{value}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" \
             fill=\"#2b6cb0\"><title>{l}: {value}</title></rect>",
            l = escape(label)
        ));
        if i % label_every == 0 {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                x + width / 2.0,
                HEIGHT - BOTTOM + 14.0,
                escape(label)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
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
        let svg = bars("Tickets", &[("10:00".into(), 5), ("11:00".into(), 10), ("12:00".into(), 0)]);
        let h = heights(&svg);
        assert_eq!(h.len(), 3);
        assert!((h[1] - 2.0 * h[0]).abs() < 0.2, "{h:?}");
        assert_eq!(h[2], 0.0);
        assert!(svg.contains("<title>11:00: 10</title>"));
    }

    #[test]
    fn an_empty_chart_says_so_and_labels_are_escaped() {
        assert!(bars("Entries", &[]).contains("no data yet"));
        assert!(bars("Entries", &[("north".into(), 0)]).contains("no data yet"));
        let svg = bars("<Sales>", &[("<script>".into(), 1)]);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "{svg}");
    }

    #[test]
    fn many_bars_label_only_some() {
        let many: Vec<(String, i64)> = (0..48).map(|h| (format!("h{h}"), h)).collect();
        let svg = bars("Day", &many);
        assert_eq!(heights(&svg).len(), 48);
        assert_eq!(svg.matches("font-size=\"11\">h").count(), 12);
    }
}
