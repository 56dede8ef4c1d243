//! What makes a drawn chart accessible: `role="img"`, `aria-labelledby` pointing at an
//! inserted `<title>` and `<desc>` (the description summarises the data), and the axis names
//! (charts-rs draws tick labels, not axis names) as `<text>` in the margins. Every user text
//! put into the SVG is escaped.

use crate::types::ChartData;

const INK: &str = "#464646";
const EMPTY_HEIGHT: f32 = 180.0;

/// Text fit for XML: escaped, without the control characters XML 1.0 forbids.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn text(x: f32, y: f32, rotate: i32, size: u32, body: &str) -> String {
    format!(
        r#"<text x="{x}" y="{y}" transform="rotate({rotate} {x} {y})" text-anchor="middle" font-size="{size}" font-family="Roboto" fill="{INK}">{}</text>"#,
        escape(body)
    )
}

/// A chart with nothing to draw: its title and "No data yet".
pub fn empty(data: &ChartData, width: f32) -> String {
    let h = EMPTY_HEIGHT;
    format!(
        r##"<svg width="{width}" height="{h}" viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg"><rect x="0" y="0" width="{width}" height="{h}" fill="#FFFFFF"/><text x="12" y="28" font-size="16" font-weight="bold" font-family="Roboto" fill="{INK}">{}</text>{}</svg>"##,
        escape(&data.title),
        text(width / 2.0, h / 2.0 + 10.0, 0, 15, "No data yet")
    )
}

/// `body` (an `<svg>` element) with role, title, description and axis names (`x_name` empty:
/// none, as for an empty chart).
pub fn accessible(
    body: &str,
    data: &ChartData,
    x_name: &str,
    (width, height): (f32, f32),
) -> String {
    let mut axes = String::new();
    if !x_name.is_empty() {
        axes.push_str(&text(width / 2.0, height - 6.0, 0, 13, x_name));
        axes.push_str(&text(13.0, height / 2.0, -90, 13, &data.y_label));
        if let Some(y2) = &data.y2_label {
            axes.push_str(&text(width - 11.0, height / 2.0, 90, 13, y2));
        }
    }
    let id = format!(
        "pl-chart-{}-{}",
        data.kind,
        &data.experiment_id.simple().to_string()[..8]
    );
    let head = format!(
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&data.title),
        escape(&data.description)
    );
    let open_end = body.find('>').unwrap_or(0);
    format!(
        r#"<svg role="img" aria-labelledby="{id}-title {id}-desc"{}>{head}{}{axes}</svg>"#,
        &body[4..open_end],
        body[open_end + 1..].trim_end().trim_end_matches("</svg>")
    )
}
