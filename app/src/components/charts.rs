//! Charts drawn by the server (accessible SVG, see `engine::charts`), each in a `<figure>`
//! with its caption, a link to its REST path and a data table for screen readers. Loaded in
//! the browser only (they change as runs end).

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::{get_charts, list_charts};
use crate::components::{client_resource, loaded};
use crate::types::{AxisScale, Chart, ChartData, ChartKind, ChartOptions, ChartPoint};

/// A query-string value, percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The chart's REST path (`.svg`), with the parameter it was drawn over.
pub fn chart_path(experiment_id: Uuid, data: &ChartData) -> String {
    let query = match (&data.param, data.kind) {
        (Some(p), ChartKind::ScoreVsParam) => format!("?param={}", encode(p)),
        _ => String::new(),
    };
    format!(
        "/api/v1/experiments/{experiment_id}/charts/{}.svg{query}",
        data.kind
    )
}

fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn position(data: &ChartData, p: &ChartPoint) -> String {
    match (&p.category, p.x, data.x_scale) {
        (Some(c), _, _) => c.clone(),
        (None, Some(x), AxisScale::Time) => match p.time {
            Some(t) => format!("{x:.1} ({})", t.format("%H:%M:%S UTC")),
            None => format!("{x:.1}"),
        },
        (None, Some(x), _) if data.kind == ChartKind::ScoreVsCost => {
            // Three significant digits however small.
            let decimals = if x > 0.0 {
                (2 - x.log10().floor() as i64).clamp(2, 12) as usize
            } else {
                2
            };
            format!("${x:.decimals$}")
        }
        (None, Some(x), _) => format!("{x}"),
        _ => "–".to_owned(),
    }
}

fn interval(p: &ChartPoint) -> String {
    if let Some(s) = &p.spread {
        return format!(
            "min {:.3} · q1 {:.3} · median {:.3} · q3 {:.3} · max {:.3}",
            s.min, s.q1, s.median, s.q3, s.max
        );
    }
    match (p.low, p.high) {
        (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
        _ => "–".to_owned(),
    }
}

/// Every point of a chart as a table (the SVG's fallback for screen readers).
pub fn data_table(data: &ChartData) -> impl IntoView + use<> {
    let two_axes = data.series.iter().any(|s| s.axis == 1);
    let y_head = if two_axes {
        "Value".to_owned()
    } else {
        data.y_label.clone()
    };
    let spread_head = if data.kind == ChartKind::Distribution {
        "Spread"
    } else {
        "95% interval"
    };
    let rows = data
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(move |p| (s, p)))
        .map(|(s, p)| {
            view! {
                <tr>
                    <td>{s.name.clone()}</td>
                    <td>{position(data, p)}</td>
                    <td>{value(p.y)}</td>
                    <td>{interval(p)}</td>
                    <td>{p.n}</td>
                    <td class="small">{p.label.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="scroll" tabindex="0">
            <table class="table chart-table">
                <caption>{data.title.clone()}</caption>
                <thead><tr>
                    <th scope="col">"Series"</th>
                    <th scope="col">{data.x_label.clone()}</th>
                    <th scope="col">{y_head}</th>
                    <th scope="col">{spread_head}</th>
                    <th scope="col">"n"</th>
                    <th scope="col">"Configuration"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// One chart: the SVG as the server drew it, its caption, its link and its data.
pub fn figure(chart: Chart, experiment_id: Uuid) -> impl IntoView {
    let data = chart.data;
    let href = chart_path(experiment_id, &data);
    let table = (!data.is_empty()).then(|| {
        view! {
            <details class="chart-data">
                <summary>"Data table"</summary>
                {data_table(&data)}
            </details>
        }
    });
    view! {
        <figure class="chart" data-kind=data.kind.as_str()>
            <div class="chart-svg" inner_html=chart.svg></div>
            <figcaption>
                <strong>{data.title.clone()}</strong>" "
                <span class="muted">{data.description.clone()}</span>" "
                <a href=href target="_blank" rel="noopener">"SVG"</a>
            </figcaption>
            {table}
        </figure>
    }
}

/// Every chart of an experiment, with a picker for the parameter of score-vs-param.
#[component]
pub fn ChartsCard(
    experiment_id: Uuid,
    /// Changes when runs or scores change, so the charts are drawn again.
    #[prop(into)]
    changed: Signal<usize>,
) -> impl IntoView {
    let param = RwSignal::new(None::<String>);
    let infos = client_resource(move || changed.get(), move |_| list_charts(experiment_id));
    let charts = client_resource(
        move || (changed.get(), param.get()),
        move |(_, param)| {
            let options = ChartOptions {
                param,
                ..ChartOptions::default()
            };
            get_charts(experiment_id, Vec::new(), options)
        },
    );
    let picker = move || {
        let params = infos
            .get()
            .and_then(Result::ok)
            .and_then(|list| list.into_iter().find(|i| i.kind == ChartKind::ScoreVsParam))
            .filter(|i| i.params.len() > 1)?;
        let current = param.get().or(params.default_param.clone());
        let options = params
            .params
            .into_iter()
            .map(|p| {
                let selected = current.as_deref() == Some(p.name.as_str());
                view! { <option value=p.name.clone() selected=selected>{p.name.clone()}</option> }
            })
            .collect_view();
        Some(view! {
            <label class="inline">"Score by "
                <select data-field="param" aria-label="Parameter to chart the score by"
                    on:change=move |ev| param.set(Some(event_target_value(&ev)))>
                    {options}
                </select>
            </label>
        })
    };
    view! {
        <section class="card charts" data-testid="charts">
            <div class="card-head">
                <h2>"Charts"</h2>
                {picker}
            </div>
            <div class="chart-grid">
                {loaded(charts, move |list| {
                    list.into_iter().map(|c| figure(c, experiment_id)).collect_view()
                })}
            </div>
        </section>
    }
}

/// The progress chart alone (completed runs and the best score over time), for the live view.
#[component]
pub fn ProgressChart(
    experiment_id: Uuid,
    /// Changes when runs end, so the chart is drawn again.
    #[prop(into)]
    changed: Signal<usize>,
) -> impl IntoView {
    let chart = client_resource(
        move || changed.get(),
        move |_| {
            get_charts(
                experiment_id,
                vec![ChartKind::Progress],
                ChartOptions::default(),
            )
        },
    );
    view! {
        <div class="chart-progress" data-testid="progress-chart">
            {loaded(chart, move |list| {
                list.into_iter().map(|c| figure(c, experiment_id)).collect_view()
            })}
        </div>
    }
}
