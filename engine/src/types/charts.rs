//! Charts the server draws (SVG) and the data behind them. Shared with the dashboard, so
//! wasm-safe: the drawing itself is server-only (`engine::charts`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

/// Which chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ChartKind {
    /// Mean score (with a 95% interval) for each value of one varied parameter, per model.
    ScoreVsParam,
    /// Score against mean cost per run, one point per configuration, Pareto frontier marked.
    ScoreVsCost,
    /// Score against mean latency per run, one point per configuration, Pareto frontier marked.
    ScoreVsLatency,
    /// The spread of per-item scores of the top configurations (box plots).
    Distribution,
    /// Completed runs and the best score over time.
    Progress,
}

impl ChartKind {
    pub const ALL: [ChartKind; 5] = [
        ChartKind::ScoreVsParam,
        ChartKind::ScoreVsCost,
        ChartKind::ScoreVsLatency,
        ChartKind::Distribution,
        ChartKind::Progress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::ScoreVsParam => "score-vs-param",
            ChartKind::ScoreVsCost => "score-vs-cost",
            ChartKind::ScoreVsLatency => "score-vs-latency",
            ChartKind::Distribution => "distribution",
            ChartKind::Progress => "progress",
        }
    }

    pub fn parse(text: &str) -> Option<ChartKind> {
        ChartKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// A short name for pickers and headings.
    pub fn name(self) -> &'static str {
        match self {
            ChartKind::ScoreVsParam => "Score by parameter",
            ChartKind::ScoreVsCost => "Score vs cost",
            ChartKind::ScoreVsLatency => "Score vs latency",
            ChartKind::Distribution => "Score distribution of the top configurations",
            ChartKind::Progress => "Progress",
        }
    }
}

impl std::fmt::Display for ChartKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the x axis reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AxisScale {
    /// Points sit at `x`.
    Numeric,
    /// Points sit at their `category`, in the order of first appearance.
    Category,
    /// Points sit at `x` = minutes since the first run ended (and carry their `time`).
    Time,
}

/// Five-number summary of a configuration's per-item scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Spread {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

/// One point of a series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ChartPoint {
    /// Position on a numeric or time axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Position on a category axis (a prompt variant, a model, a rank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub y: f64,
    /// The 95% interval of `y`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Distribution charts: the spread of the per-item scores (`y` is their mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// Observations behind `y` (per-item scores, configurations or runs).
    pub n: i64,
    /// The configuration this point is (cost, latency and distribution charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_key: Option<String>,
    /// The configuration's short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Time charts: the end of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ChartSeries {
    pub name: String,
    /// Which y axis the series is read on: 0 (left, `y_label`) or 1 (right, `y2_label`).
    pub axis: u8,
    pub points: Vec<ChartPoint>,
}

/// What a chart shows, as numbers (`…/charts/{kind}.json`); the SVG is drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ChartData {
    pub kind: ChartKind,
    pub experiment_id: Uuid,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The right axis, when a series is read on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y2_label: Option<String>,
    pub x_scale: AxisScale,
    pub series: Vec<ChartSeries>,
    /// Cost and latency charts: the configurations on the Pareto frontier (no other
    /// configuration scores at least as well for at most the cost), cheapest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frontier: Vec<String>,
    /// score-vs-param: the parameter on the x axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The scorer whose mean is the score (absent: the weighted score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<String>,
    /// What the chart shows in words (and why it is empty, when it is).
    pub description: String,
}

impl ChartData {
    /// No point to draw.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.points.is_empty())
    }
}

/// A chart: its data and the SVG drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Chart {
    pub data: ChartData,
    pub svg: String,
}

/// A parameter that varies among an experiment's configurations. Names: the parameter
/// (`temperature`, `max_tokens`, `prompt` for the prompt variant, `model`), prefixed with
/// `stage N ` for stages after the first (`stage 2 temperature`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ChartParam {
    pub name: String,
    /// Every value is a number: drawn on a numeric axis (else as categories).
    pub numeric: bool,
    /// Distinct values among the configurations.
    pub values: i64,
}

/// A chart an experiment offers (`GET …/charts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ChartInfo {
    pub kind: ChartKind,
    pub title: String,
    /// There is something to draw (otherwise the chart says why it is empty).
    pub available: bool,
    /// The SVG's REST path (`….json` has its data).
    pub path: String,
    /// score-vs-param: the parameters to choose from (`?param=`), and the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ChartParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_param: Option<String>,
}

/// What to draw: the parameter (score-vs-param), the scorer (default: the weighted score)
/// and how many top configurations (distribution: 1 to 20, default 5).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ChartOptions {
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub scorer: Option<String>,
    #[serde(default)]
    pub top: Option<i64>,
}
