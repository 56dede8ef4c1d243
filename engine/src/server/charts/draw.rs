//! Drawing a chart's data as SVG with charts-rs (then made accessible by `a11y`).
//!
//! charts-rs has no error bars, box plots or lines on scatter charts, so they are composed from
//! what it has: an interval is a dashed line per bound (category axes) or a column of small
//! dots (numeric axes); the Pareto frontier is a series of larger dots joined by a dotted
//! line of small dots; a box plot is two candlesticks meeting at the median (q1→median with
//! the lower whisker, median→q3 with the upper one).

use charts_rs::{
    Align, Box as Margin, CandlestickChart, Color, LineChart, NIL_VALUE, ScatterChart, Series,
    Symbol,
};

use super::a11y;
use crate::types::{AxisScale, ChartData, ChartKind, ChartPoint};

const WIDTH: f32 = 640.0;
const HEIGHT: f32 = 400.0;
const PALETTE: [&str; 8] = [
    "#2f6db5", "#d9822b", "#2f7d6d", "#b3261e", "#7b4fa0", "#8c6d1f", "#4a9fd0", "#5d6b7e",
];

/// A name for charts-rs to draw (it escapes; control characters are dropped, long names cut).
fn clean(text: &str, max: usize) -> String {
    let t: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .collect();
    if t.chars().count() > max {
        format!("{}…", t.chars().take(max - 1).collect::<String>())
    } else {
        t
    }
}

fn color(i: usize) -> Color {
    PALETTE[i % PALETTE.len()].into()
}

/// Sets what every chart shares: size, margins (room for the axis names), title, legend.
macro_rules! frame {
    ($c:expr, $data:expr) => {{
        $c.width = WIDTH;
        $c.height = HEIGHT;
        $c.margin = Margin {
            left: 30.0,
            top: 8.0,
            right: if $data.y2_label.is_some() { 30.0 } else { 16.0 },
            bottom: 28.0,
        };
        $c.title_text = clean(&$data.title, 70);
        $c.title_font_size = 16.0;
        $c.title_align = Align::Left;
        $c.legend_align = Align::Left;
        $c.legend_font_size = 12.0;
        $c.legend_margin = Some(Margin {
            top: 28.0,
            bottom: 6.0,
            ..Margin::default()
        });
        $c.x_axis_font_size = 12.0;
        for y in $c.y_axis_configs.iter_mut() {
            y.axis_font_size = 12.0;
        }
        $c.series_colors = (0..PALETTE.len()).map(color).collect();
    }};
}

/// Score axes run from 0 to 1 when every value is in that range.
fn score_axis(values: impl IntoIterator<Item = f64>) -> (Option<f32>, Option<f32>) {
    let mut all = values.into_iter().peekable();
    if all.peek().is_some() && all.all(|v| (0.0..=1.0).contains(&v)) {
        (Some(0.0), Some(1.0))
    } else {
        (None, None)
    }
}

/// Axis bounds charts-rs can divide (it cannot when every value is the same).
fn spread_axis(values: &[f64]) -> Option<f32> {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (max <= min || max <= 0.0).then(|| (max.max(0.0) + 1.0) as f32)
}

fn all_y(data: &ChartData, axis: u8) -> Vec<f64> {
    data.series
        .iter()
        .filter(|s| s.axis == axis)
        .flat_map(|s| s.points.iter())
        .flat_map(|p| [Some(p.y), p.low, p.high])
        .flatten()
        .collect()
}

/// A column of small dots from `low` to `high` at `x` (an interval on a scatter chart).
fn dots(from: (f64, f64), to: (f64, f64), n: usize) -> Vec<f32> {
    (0..=n)
        .flat_map(|k| {
            let t = k as f64 / n as f64;
            [
                (from.0 + (to.0 - from.0) * t) as f32,
                (from.1 + (to.1 - from.1) * t) as f32,
            ]
        })
        .collect()
}

/// A scatter chart of (name, flattened x/y pairs, dot size, colour) series.
fn scatter(data: &ChartData, series: Vec<(String, Vec<f32>, f32, Color)>) -> String {
    let ys = all_y(data, 0);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().step_by(2).map(|x| *x as f64))
        .collect();
    let mut c = ScatterChart::new(
        series
            .iter()
            .map(|(name, d, _, _)| Series::new(name.clone(), d.clone()))
            .collect(),
    );
    frame!(c, data);
    c.series_colors = series.iter().map(|s| s.3).collect();
    c.series_symbol_sizes = series.iter().map(|s| s.2).collect();
    (c.y_axis_configs[0].axis_min, c.y_axis_configs[0].axis_max) = score_axis(ys);
    c.y_axis_configs[0].axis_split_number = 5;
    c.x_axis_config.axis_font_size = 12.0;
    c.x_axis_config.axis_max = spread_axis(&xs);
    c.svg().unwrap_or_default()
}

/// A number of x-axis units per shown unit, and the axis name to show.
fn x_scale(data: &ChartData) -> (f64, String) {
    let max = data
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.x))
        .fold(0.0, f64::max);
    if data.kind != ChartKind::ScoreVsCost || max <= 0.0 || max >= 1.0 {
        return (1.0, data.x_label.clone());
    }
    let (factor, per) = if max >= 1e-3 {
        (1e3, "1,000")
    } else {
        (1e6, "1,000,000")
    };
    (factor, format!("Mean cost per {per} runs ($)"))
}

fn numeric(data: &ChartData) -> (String, String) {
    let (factor, x_name) = x_scale(data);
    let xy = |p: &ChartPoint| ((p.x.unwrap_or(0.0) * factor), p.y);
    let mut series = Vec::new();
    if data.kind == ChartKind::ScoreVsParam {
        for (i, s) in data.series.iter().enumerate() {
            let flat = s.points.iter().flat_map(|p| {
                let (x, y) = xy(p);
                [x as f32, y as f32]
            });
            series.push((clean(&s.name, 40), flat.collect(), 5.0, color(i)));
        }
        for (i, s) in data.series.iter().enumerate() {
            let bars: Vec<f32> = s
                .points
                .iter()
                .filter_map(|p| {
                    let x = xy(p).0;
                    Some(dots((x, p.low?), (x, p.high?), 10))
                })
                .flatten()
                .collect();
            series.push((String::new(), bars, 1.5, color(i).with_alpha(170)));
        }
    } else {
        let flat = |pts: &[ChartPoint]| -> Vec<f32> {
            pts.iter()
                .flat_map(|p| {
                    let (x, y) = xy(p);
                    [x as f32, y as f32]
                })
                .collect()
        };
        // Other configurations, then the frontier (larger, joined by a dotted line).
        let part = |i: usize| {
            data.series
                .get(i)
                .map(|s| (s.name.clone(), s.points.as_slice()))
        };
        let (others, front) = (part(0).unwrap_or_default(), part(1).unwrap_or_default());
        let line: Vec<f32> = front
            .1
            .windows(2)
            .flat_map(|w| dots(xy(&w[0]), xy(&w[1]), 16))
            .collect();
        series.push((others.0, flat(others.1), 4.0, color(7)));
        series.push((front.0, flat(front.1), 6.5, color(3)));
        series.push((String::new(), line, 1.2, color(3)));
    }
    (scatter(data, series), x_name)
}

/// Categories of every series, in order of first appearance.
fn categories(data: &ChartData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in data.series.iter().flat_map(|s| s.points.iter()) {
        if let Some(c) = &p.category
            && !out.contains(c)
        {
            out.push(c.clone());
        }
    }
    out
}

fn by_category(
    cats: &[String],
    points: &[ChartPoint],
    f: impl Fn(&ChartPoint) -> Option<f64>,
) -> Vec<f32> {
    cats.iter()
        .map(|c| {
            points
                .iter()
                .find(|p| p.category.as_ref() == Some(c))
                .and_then(&f)
                .map_or(NIL_VALUE, |v| v as f32)
        })
        .collect()
}

/// Means per category as lines, their intervals as dashed lines of the same colour.
fn category_lines(data: &ChartData) -> String {
    let cats = categories(data);
    let mut series = Vec::new();
    for (i, s) in data.series.iter().enumerate() {
        let mut mean = Series::new(
            clean(&s.name, 40),
            by_category(&cats, &s.points, |p| Some(p.y)),
        );
        mean.index = Some(i);
        series.push(mean);
    }
    for (i, s) in data.series.iter().enumerate() {
        for bound in [|p: &ChartPoint| p.low, |p: &ChartPoint| p.high] {
            let mut b = Series::new(String::new(), by_category(&cats, &s.points, bound));
            b.index = Some(i);
            b.stroke_dash_array = Some("4,3".to_owned());
            series.push(b);
        }
    }
    let mut c = LineChart::new(series, cats.iter().map(|c| clean(c, 24)).collect());
    frame!(c, data);
    (c.y_axis_configs[0].axis_min, c.y_axis_configs[0].axis_max) = score_axis(all_y(data, 0));
    c.y_axis_configs[0].axis_split_number = 5;
    c.svg().unwrap_or_default()
}

/// Box plots: two candlesticks per configuration meeting at the median.
fn boxes(data: &ChartData) -> String {
    let points = data.series.first().map_or(&[][..], |s| &s.points);
    let (mut lower, mut upper) = (Vec::new(), Vec::new());
    let mut values = Vec::new();
    for s in points.iter().filter_map(|p| p.spread.as_ref()) {
        lower.extend([s.q1, s.median, s.min, s.median].map(|v| v as f32));
        upper.extend([s.q3, s.median, s.median, s.max].map(|v| v as f32));
        values.extend([s.min, s.max]);
    }
    let cats = points
        .iter()
        .map(|p| p.category.clone().unwrap_or_default())
        .collect();
    let mut c = CandlestickChart::new(
        vec![
            Series::new(String::new(), lower),
            Series::new(String::new(), upper),
        ],
        cats,
    );
    frame!(c, data);
    c.legend_show = Some(false);
    let (fill, border): (Color, Color) = ("#9dbde6".into(), "#1f3a5f".into());
    c.candlestick_up_color = fill;
    c.candlestick_down_color = fill;
    c.candlestick_up_border_color = border;
    c.candlestick_down_border_color = border;
    (c.y_axis_configs[0].axis_min, c.y_axis_configs[0].axis_max) = score_axis(values);
    c.y_axis_configs[0].axis_split_number = 5;
    c.svg().unwrap_or_default()
}

/// Runs done (left axis) and the best score (right axis) over time.
fn progress(data: &ChartData) -> (String, String) {
    let Some(first) = data.series.first() else {
        return (String::new(), String::new());
    };
    let runs = &first.points;
    let last = runs.last().and_then(|p| p.x).unwrap_or(0.0);
    let (unit, x_name) = if last < 2.0 {
        (60.0, "Seconds since the first run ended")
    } else {
        (1.0, "Minutes since the first run ended")
    };
    let step = match runs.as_slice() {
        [a, b, ..] => (b.x.unwrap_or(0.0) - a.x.unwrap_or(0.0)) * unit,
        _ => 1.0,
    };
    let digits = match step {
        s if s >= 1.0 => 0,
        s if s >= 0.1 => 1,
        s if s >= 0.01 => 2,
        _ => 3,
    };
    let labels = runs
        .iter()
        .map(|p| format!("{:.digits$}", p.x.unwrap_or(0.0) * unit))
        .collect();
    let best = data.series.get(1);
    let by_x = |p: &ChartPoint| {
        best.and_then(|b| b.points.iter().find(|q| q.x == p.x))
            .map_or(NIL_VALUE, |q| q.y as f32)
    };
    let mut series = vec![Series::new(
        clean(&first.name, 40),
        runs.iter().map(|p| p.y as f32).collect(),
    )];
    if let Some(b) = best {
        let mut s = Series::new(clean(&b.name, 40), runs.iter().map(by_x).collect());
        s.y_axis_index = 1;
        series.push(s);
    }
    let mut c = LineChart::new(series, labels);
    frame!(c, data);
    c.series_symbol = Some(Symbol::None);
    // Both axes in 5 steps, so they share the grid lines.
    c.y_axis_configs[0].axis_min = Some(0.0);
    c.y_axis_configs[0].axis_max = spread_axis(&all_y(data, 0));
    c.y_axis_configs[0].axis_split_number = 5;
    let mut right = c.y_axis_configs[0].clone();
    (right.axis_min, right.axis_max) = score_axis(all_y(data, 1));
    c.y_axis_configs.push(right);
    (c.svg().unwrap_or_default(), x_name.to_owned())
}

/// The chart as an accessible SVG ("No data yet" when it has no point).
pub fn svg(data: &ChartData) -> String {
    let drawn = if data.is_empty() {
        None
    } else {
        let (body, x_name) = match (data.kind, data.x_scale) {
            (ChartKind::Progress, _) => progress(data),
            (ChartKind::Distribution, _) => (boxes(data), data.x_label.clone()),
            (_, AxisScale::Category) => (category_lines(data), data.x_label.clone()),
            _ => numeric(data),
        };
        body.starts_with("<svg").then_some((body, x_name))
    };
    match drawn {
        Some((body, x_name)) => a11y::accessible(&body, data, &x_name, (WIDTH, HEIGHT)),
        None => a11y::accessible(&a11y::empty(data, WIDTH), data, "", (WIDTH, HEIGHT)),
    }
}
