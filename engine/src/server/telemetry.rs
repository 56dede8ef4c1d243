//! Prometheus metrics, served at `GET /metrics` (the `metrics` facade with the
//! `metrics-exporter-prometheus` recorder).
//!
//! Counters and histograms are recorded where things happen: HTTP requests (by matched route,
//! never the raw path), LLM calls (by endpoint name, model and outcome), tokens and cost, cache
//! hits and misses, runs this process finished. Gauges that describe the whole deployment are
//! read when scraped: runs by status and lane jobs by status (the database, every process),
//! this process's run slots, leases, driven sweeps and live event subscribers.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::core::Core;
use super::error::Result;
use super::store::on_db;

/// Latency buckets in seconds, for requests and LLM calls alike.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only the gauges");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "promptlooper_http_requests_total",
        "HTTP requests answered, by method, matched route and status."
    );
    describe_histogram!(
        "promptlooper_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and matched route."
    );
    describe_counter!(
        "promptlooper_llm_calls_total",
        "LLM calls made (after retries), by endpoint, model and outcome (ok or error)."
    );
    describe_histogram!(
        "promptlooper_llm_call_duration_seconds",
        Unit::Seconds,
        "Time an LLM call took including retries, by endpoint, model and outcome."
    );
    describe_counter!(
        "promptlooper_llm_throttled_total",
        "LLM call attempts the provider answered 429 (rate limited), by endpoint."
    );
    describe_gauge!(
        "promptlooper_endpoint_learned_rpm",
        "The rate an endpoint is paced at since its last 429 (requests per minute; 0 when not throttled lately), as this process last saw it."
    );
    describe_counter!(
        "promptlooper_llm_tokens_total",
        "Tokens of LLM calls made, by endpoint, model and kind (input or output)."
    );
    describe_gauge!(
        "promptlooper_llm_cost_usd",
        "Estimated cost of the LLM calls runs made since start, in US dollars, by endpoint and model (priced models only)."
    );
    describe_counter!(
        "promptlooper_cache_hits_total",
        "Stage calls the response cache answered."
    );
    describe_counter!(
        "promptlooper_cache_misses_total",
        "Stage calls the response cache did not answer (an LLM call followed)."
    );
    describe_counter!(
        "promptlooper_runs_finished_total",
        "Runs this process executed to an end, by status."
    );
    describe_gauge!(
        "promptlooper_runs",
        "Runs in the database by status (every process)."
    );
    describe_gauge!(
        "promptlooper_lane_jobs",
        "Sweep lane jobs in the queue by status (every process)."
    );
    describe_gauge!(
        "promptlooper_run_slots",
        "MAX_CONCURRENT_RUNS of this process."
    );
    describe_gauge!(
        "promptlooper_run_slots_in_use",
        "Runs executing in this process now."
    );
    describe_gauge!(
        "promptlooper_run_leases",
        "Runs leased to this process now."
    );
    describe_gauge!(
        "promptlooper_sweeps_driven",
        "Sweeps this process drives lanes for now."
    );
    describe_gauge!(
        "promptlooper_event_subscribers",
        "Live event streams (SSE and WebSocket) this process serves now."
    );
    describe_gauge!(
        "promptlooper_uptime_seconds",
        Unit::Seconds,
        "Seconds since this process started."
    );
}

/// An HTTP request answered.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let (method, route) = (method.to_owned(), route.to_owned());
    counter!("promptlooper_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    histogram!("promptlooper_http_request_duration_seconds", "method" => method, "route" => route)
        .record(took.as_secs_f64());
}

/// An LLM call made; `tokens` (input, output) when it succeeded.
pub fn llm_call(endpoint: &str, model: &str, tokens: Option<(i64, i64)>, took: Duration) {
    let outcome = if tokens.is_some() { "ok" } else { "error" };
    let labels = [
        ("endpoint", endpoint.to_owned()),
        ("model", model.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    counter!("promptlooper_llm_calls_total", &labels).increment(1);
    histogram!("promptlooper_llm_call_duration_seconds", &labels).record(took.as_secs_f64());
    if let Some((input, output)) = tokens {
        for (kind, n) in [("input", input), ("output", output)] {
            counter!("promptlooper_llm_tokens_total", "endpoint" => endpoint.to_owned(), "model" => model.to_owned(), "kind" => kind)
                .increment(n.max(0) as u64);
        }
    }
}

/// A call attempt was answered 429; `learned_rpm` is the rate the endpoint is paced at now.
pub fn llm_throttled(endpoint: &str, learned_rpm: Option<f64>) {
    counter!("promptlooper_llm_throttled_total", "endpoint" => endpoint.to_owned()).increment(1);
    if let Some(rpm) = learned_rpm {
        gauge!("promptlooper_endpoint_learned_rpm", "endpoint" => endpoint.to_owned()).set(rpm);
    }
}

/// The estimated cost of a call a run made.
pub fn llm_cost(endpoint: &str, model: &str, usd: f64) {
    if usd > 0.0 {
        gauge!("promptlooper_llm_cost_usd", "endpoint" => endpoint.to_owned(), "model" => model.to_owned()).increment(usd);
    }
}

/// A stage call the cache answered (`true`) or did not.
pub fn cache_lookup(hit: bool) {
    if hit {
        counter!("promptlooper_cache_hits_total").increment(1);
    } else {
        counter!("promptlooper_cache_misses_total").increment(1);
    }
}

/// A run this process executed ended with `status`.
pub fn run_finished(status: &str) {
    counter!("promptlooper_runs_finished_total", "status" => status.to_owned()).increment(1);
}

/// The exposition text: the scrape-time gauges read now, then everything recorded.
pub async fn render(core: &Core) -> Result<String> {
    let handle = install();
    let runs: Vec<(String, i64)> = on_db!(&core.db, p => sqlx::query_as(
        "SELECT status, COUNT(*) FROM runs GROUP BY status").fetch_all(p).await)?;
    // Statuses that have none now read 0 rather than keeping their last value.
    for status in ["pending", "running", "completed", "cached", "failed"] {
        let n = runs
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        gauge!("promptlooper_runs", "status" => status).set(n as f64);
    }
    for (status, n) in super::jobs::queue_status(&core.db).await? {
        gauge!("promptlooper_lane_jobs", "status" => status.to_lowercase()).set(n as f64);
    }
    let leases: i64 = on_db!(&core.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE status = 'running' AND lease_owner = $1").bind(&*core.node).fetch_one(p).await)?;
    gauge!("promptlooper_run_leases").set(leases as f64);
    let slots = core.max_concurrent_runs;
    gauge!("promptlooper_run_slots").set(slots as f64);
    gauge!("promptlooper_run_slots_in_use")
        .set(slots.saturating_sub(core.run_slots.available_permits()) as f64);
    gauge!("promptlooper_sweeps_driven").set(core.driving.ids().len() as f64);
    gauge!("promptlooper_event_subscribers").set(core.hub.subscribers() as f64);
    gauge!("promptlooper_uptime_seconds").set(core.started_at.elapsed().as_secs_f64());
    handle.run_upkeep();
    Ok(handle.render())
}
