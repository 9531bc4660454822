//! Charts as inline SVG drawn on the server: no chart library, no script. Each chart has a
//! title for screen readers and every bar a tooltip with its exact value.

use maud::{html, Markup};

/// One bar: its label under the axis, its value, and the value as the operator reads it.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const AXIS: f64 = 24.0;

/// A bar chart; an empty series says so instead of drawing an empty frame.
pub fn bars(title: &str, series: &[Bar]) -> Markup {
    if series.is_empty() {
        return html! { p class="empty" { (title) ": no data yet." } };
    }
    let max = series
        .iter()
        .map(|b| b.value)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let slot = WIDTH / series.len() as f64;
    let bar_width = (slot * 0.7).max(1.0);
    // Label every bar when few, else about a dozen of them.
    let every = series.len().div_ceil(12).max(1);
    html! {
        figure class="chart" {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                viewBox={ "-24 0 " (WIDTH + 48.0) " " (HEIGHT + AXIS) } width="100%"
                preserveAspectRatio="xMinYMid meet" {
                title { (title) }
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) class="axis" {}
                @for (i, bar) in series.iter().enumerate() {
                    @let h = (bar.value / max * (HEIGHT - 10.0)).max(if bar.value > 0.0 { 1.0 } else { 0.0 });
                    @let x = i as f64 * slot + (slot - bar_width) / 2.0;
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - h))
                        width=(format!("{bar_width:.1}")) height=(format!("{h:.1}")) class="bar" {
                        title { (bar.label) ": " (bar.shown) }
                    }
                    @if i % every == 0 {
                        text x=(format!("{:.1}", x + bar_width / 2.0)) y=(HEIGHT + 16.0)
                            text-anchor="middle" class="tick" { (bar.label) }
                    }
                }
            }
            figcaption { (title) " (highest: " (series.iter().max_by(|a, b| a.value.total_cmp(&b.value)).map(|b| b.shown.as_str()).unwrap_or("")) ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(value: f64) -> Bar {
        Bar {
            label: "d".into(),
            value,
            shown: format!("{value}"),
        }
    }

    #[test]
    fn one_rect_per_bar_with_its_value_and_a_title() {
        let svg = bars("Traffic", &[bar(0.0), bar(5.0), bar(10.0)]).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("role=\"img\"") && svg.contains("<title>Traffic</title>"));
        assert!(svg.contains("<title>d: 10</title>"));
        assert!(svg.contains("(highest: 10)"));
        let empty = bars("Traffic", &[]).into_string();
        assert!(empty.contains("no data yet") && !empty.contains("<svg"));
    }
}
