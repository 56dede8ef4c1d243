//! Drawing every kind of chart from hand-made data: accessible, well-formed SVG, user text
//! escaped, and "No data yet" for empty charts.

use chrono::Utc;
use uuid::Uuid;

use super::report::{embed, table};
use super::svg;
use crate::types::{AxisScale, ChartData, ChartKind, ChartPoint, ChartSeries, Spread};

/// Checks that every tag is closed in order (enough to catch broken markup).
pub fn well_formed(svg: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').ok_or("unclosed <")? + start;
        let tag = &rest[start + 1..end];
        let text = &rest[..start];
        if text.contains('<') || (text.contains('&') && !text.contains(';')) {
            return Err(format!("bad text {text:?}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag.split_whitespace().next().unwrap_or_default();
            stack.push(name.to_owned());
        }
        rest = &rest[end + 1..];
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

fn point(x: Option<f64>, category: Option<&str>, y: f64) -> ChartPoint {
    ChartPoint {
        x,
        category: category.map(Into::into),
        y,
        low: Some(y - 0.1),
        high: Some(y + 0.05),
        n: 4,
        ..ChartPoint::default()
    }
}

fn chart(kind: ChartKind, x_scale: AxisScale, series: Vec<ChartSeries>) -> ChartData {
    ChartData {
        kind,
        experiment_id: Uuid::from_u128(7),
        title: "Weighted score by <prompt> & co".into(),
        x_label: "temperature".into(),
        y_label: "Weighted score".into(),
        y2_label: None,
        x_scale,
        series,
        frontier: Vec::new(),
        param: Some("temperature".into()),
        scorer: None,
        description: "Best: \"a<b>\" & more".into(),
    }
}

fn series(name: &str, points: Vec<ChartPoint>) -> ChartSeries {
    ChartSeries {
        name: name.into(),
        axis: 0,
        points,
    }
}

fn check(data: &ChartData) -> String {
    let svg = svg(data);
    assert!(
        svg.starts_with("<svg role=\"img\" aria-labelledby=\"pl-chart-"),
        "{svg}"
    );
    well_formed(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    assert!(svg.contains("<title id=\"pl-chart-"), "{svg}");
    assert!(svg.contains("Weighted score by &lt;prompt&gt; &amp; co</title>"));
    assert!(svg.contains("<desc id=") && svg.contains("&quot;a&lt;b&gt;&quot; &amp; more"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    assert!(svg.ends_with("</svg>"));
    svg
}

pub fn samples() -> Vec<ChartData> {
    let numeric = chart(
        ChartKind::ScoreVsParam,
        AxisScale::Numeric,
        vec![
            series(
                "sim-large",
                vec![
                    point(Some(0.1), None, 0.9),
                    point(Some(0.5), None, 0.8),
                    point(Some(0.9), None, 0.6),
                ],
            ),
            series("sim-small", vec![point(Some(0.1), None, 0.5)]),
        ],
    );
    let categories = chart(
        ChartKind::ScoreVsParam,
        AxisScale::Category,
        vec![
            series(
                "m",
                vec![
                    point(None, Some("<b>&"), 0.7),
                    point(None, Some("terse"), 0.4),
                ],
            ),
            series("n", vec![point(None, Some("terse"), 0.3)]),
        ],
    );
    let mut cost = chart(
        ChartKind::ScoreVsCost,
        AxisScale::Numeric,
        vec![
            series(
                "Other configurations",
                vec![point(Some(0.00002), None, 0.3)],
            ),
            series(
                "Pareto frontier",
                vec![
                    point(Some(0.00001), None, 0.4),
                    point(Some(0.00003), None, 0.9),
                ],
            ),
        ],
    );
    cost.x_label = "Mean cost per run ($)".into();
    let mut latency = chart(
        ChartKind::ScoreVsLatency,
        AxisScale::Numeric,
        vec![
            series("Other configurations", vec![]),
            series("Pareto frontier", vec![point(Some(0.0), None, 0.4)]),
        ],
    );
    latency.x_label = "Mean latency per run (ms)".into();
    let boxes = chart(
        ChartKind::Distribution,
        AxisScale::Category,
        (0..3)
            .map(|i| ChartPoint {
                category: Some(format!("#{}", i + 1)),
                y: 0.6,
                spread: Some(Spread {
                    min: 0.1,
                    q1: 0.4 - i as f64 * 0.1,
                    median: 0.6,
                    q3: 0.7,
                    max: 1.0,
                }),
                n: 10,
                ..ChartPoint::default()
            })
            .collect::<Vec<_>>()
            .pipe(|p| vec![series("Per-item scores", p)]),
    );
    let mut progress = chart(
        ChartKind::Progress,
        AxisScale::Time,
        vec![
            series(
                "Completed runs",
                (0..60)
                    .map(|i| ChartPoint {
                        x: Some(i as f64 * 0.5),
                        y: (i * 10) as f64,
                        time: Some(Utc::now()),
                        ..ChartPoint::default()
                    })
                    .collect(),
            ),
            ChartSeries {
                axis: 1,
                ..series(
                    "Best weighted score",
                    (20..60)
                        .map(|i| ChartPoint {
                            x: Some(i as f64 * 0.5),
                            y: 0.5 + i as f64 / 200.0,
                            ..ChartPoint::default()
                        })
                        .collect(),
                )
            },
        ],
    );
    progress.y_label = "Completed runs".into();
    progress.y2_label = Some("Best weighted score".into());
    vec![numeric, categories, cost, latency, boxes, progress]
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn every_kind_draws_accessible_well_formed_svg() {
    for data in samples() {
        let svg = check(&data);
        // Axis names are shown.
        assert!(svg.contains(&format!(">{}</text>", data.y_label)), "{svg}");
        if let Some(y2) = &data.y2_label {
            assert!(svg.contains(&format!(">{y2}</text>")), "{svg}");
        }
        if data.x_scale == AxisScale::Category && data.kind == ChartKind::ScoreVsParam {
            assert!(svg.contains("&lt;b&gt;&amp;"), "category escaped: {svg}");
        }
        if std::env::var("PL_CHART_SAMPLES").is_ok() {
            let dir = std::env::temp_dir().join("pl-charts");
            std::fs::create_dir_all(&dir).unwrap();
            let name = format!("{}-{:?}.svg", data.kind, data.x_scale);
            std::fs::write(dir.join(name), &svg).unwrap();
        }
        let md = embed(&data);
        assert!(md.contains("](data:image/svg+xml;base64,"), "{md}");
        assert!(table(&data).lines().count() >= 3, "{}", table(&data));
    }
}

#[test]
fn empty_charts_say_no_data_yet() {
    let mut data = chart(ChartKind::Distribution, AxisScale::Category, Vec::new());
    data.description = "No data yet: no configuration has a score.".into();
    let svg = check(&ChartData {
        description: "Best: \"a<b>\" & more".into(),
        ..data
    });
    assert!(svg.contains(">No data yet</text>"), "{svg}");
    assert!(well_formed("<svg><g></svg>").is_err() && well_formed("<a>x < y</a>").is_err());
}
