//! Sends queued deliveries: claims due ones under a lease (so each goes out from one process),
//! POSTs the signed body, records the attempt, and schedules a retry with exponential backoff
//! and jitter for up to a day. A webhook failing for a whole day is turned off, saying why.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use super::sign;
use crate::server::core::Core;
use crate::server::outbound;
use crate::server::store::webhooks::{self as store, Attempt, DeliveryRow, WebhookRow};
use crate::server::store::{events as event_store, experiments, settings};
use crate::types::WEBHOOK_EVENTS;

/// Deliveries claimed at once, and sent concurrently.
const BATCH: i64 = 32;
const CONCURRENCY: usize = 8;
/// How long a claim holds (longer than one attempt's timeout).
const LEASE: Duration = Duration::from_secs(60);
/// One attempt's time limit.
const TIMEOUT: Duration = Duration::from_secs(10);
/// When there is nothing due, look again after this long (events wake it sooner).
const IDLE: Duration = Duration::from_secs(1);
/// Retries stop a day after the event; a webhook failing that long is turned off.
const GIVE_UP: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// The first retry waits about this long; each one doubles it, up to `MAX_WAIT`.
const FIRST_WAIT_SECS: f64 = 5.0;
const MAX_WAIT_SECS: f64 = 3600.0;

/// How long to wait before attempt `n + 1` after `n` failed attempts (±20 % jitter).
pub fn backoff(failed_attempts: i64) -> Duration {
    let exp = (failed_attempts.clamp(1, 30) - 1) as i32;
    let base = (FIRST_WAIT_SECS * 2f64.powi(exp)).min(MAX_WAIT_SECS);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    Duration::from_secs_f64(base * jitter)
}

/// What one POST did.
pub struct Sent {
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

/// One signed POST of `body` to the webhook (resolved, checked against `allow_private` and
/// pinned; no redirects).
pub async fn send(
    core: &Core,
    hook: &WebhookRow,
    id: &str,
    body: &str,
    allow_private: bool,
) -> Sent {
    let started = Instant::now();
    let failed = |error: String, started: Instant| Sent {
        ok: false,
        status: None,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        error: Some(error),
    };
    let prepared = async {
        let url = outbound::parse("url", &hook.url).map_err(|e| e.to_string())?;
        let addrs = outbound::resolve(&url, allow_private).await?;
        let client = outbound::client(&url, &addrs, TIMEOUT)?;
        let secret = core.secrets.open(&hook.secret).map_err(|e| e.to_string())?;
        let headers: Vec<(String, String)> = match &hook.headers {
            Some(sealed) => {
                let plain = core.secrets.open(sealed).map_err(|e| e.to_string())?;
                serde_json::from_str::<std::collections::BTreeMap<String, String>>(&plain)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect()
            }
            None => Vec::new(),
        };
        let timestamp = Utc::now().timestamp();
        let signature = sign(&secret, id, timestamp, body).map_err(|e| e.to_string())?;
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        Ok::<_, String>((request.body(body.to_owned()), headers))
    }
    .await;
    let (request, headers) = match prepared {
        Ok(p) => p,
        Err(e) => return failed(e, started),
    };
    // Header values never go into a logged or stored error (a receiver may echo them).
    let scrub = |text: String| {
        headers.iter().fold(text, |t, (_, v)| {
            if v.len() >= 4 {
                t.replace(v.as_str(), "***")
            } else {
                t
            }
        })
    };
    match request.send().await {
        Ok(res) => {
            let status = res.status();
            // Read (a little of) the answer so the connection is reused; it is not kept.
            let mut stream = res.bytes_stream();
            let mut read = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                read += chunk.len();
                if read > 64 * 1024 {
                    break;
                }
            }
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            Sent {
                ok: status.is_success(),
                status: Some(status.as_u16()),
                latency_ms,
                error: (!status.is_success()).then(|| {
                    if status.is_redirection() {
                        format!("answered {status} (redirects are not followed)")
                    } else {
                        format!("answered {status}")
                    }
                }),
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!("timed out after {} s", TIMEOUT.as_secs())
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                format!("request failed: {}", e.without_url())
            };
            failed(scrub(what), started)
        }
    }
}

/// The body an event's deliveries carry: `{"type", "timestamp", "data"}`; an
/// `experiment.completed` also names the best configuration as it stands when first sent.
async fn body_for(core: &Core, event_id: i64) -> Result<Option<String>, String> {
    let Some(event) = event_store::get(&core.db, event_id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut data = match event.payload {
        Value::Object(o) => o,
        other => {
            let mut o = serde_json::Map::new();
            o.insert("payload".into(), other);
            o
        }
    };
    data.insert("event_id".into(), json!(event.id));
    data.insert("experiment_id".into(), json!(event.experiment_id));
    if event.sweep_id.is_some() {
        data.insert("sweep_id".into(), json!(event.sweep_id));
    }
    if event.run_id.is_some() {
        data.insert("run_id".into(), json!(event.run_id));
    }
    if event.event_type == "experiment.completed"
        && let Some(id) = event.experiment_id
        && let Some(e) = experiments::get(&core.db, id)
            .await
            .map_err(|e| e.to_string())?
    {
        let best = crate::server::leaderboard::top(core, &e)
            .await
            .map_err(|e| e.to_string())?;
        data.insert(
            "best".into(),
            match best {
                Some(b) => json!({
                    "config_key": b.config_key, "label": b.label, "score": b.score,
                    "ci_low": b.ci_low, "ci_high": b.ci_high, "config": b.config,
                    "runs": b.runs, "run_id": b.best_run_id,
                }),
                None => Value::Null,
            },
        );
    }
    Ok(Some(
        json!({
            "type": event.event_type,
            "timestamp": event.created_at,
            "data": data,
        })
        .to_string(),
    ))
}

/// Sends one claimed delivery and records what happened.
async fn attempt(core: &Core, d: DeliveryRow, allow_private: bool) {
    let owner = core.node.to_string();
    let hook = match store::get(&core.db, d.webhook_id).await {
        Ok(Some(h)) if h.enabled => h,
        Ok(_) => {
            let _ = store::abandon(&core.db, d.id, &owner, "the webhook is off or gone").await;
            return;
        }
        Err(e) => {
            tracing::warn!(delivery = %d.id, error = %e, "reading a webhook failed");
            return;
        }
    };
    let body = match &d.body {
        Some(b) => b.clone(),
        None => match body_for(core, d.event_id).await {
            Ok(Some(b)) => {
                if let Err(e) = store::set_body(&core.db, d.id, &b).await {
                    tracing::warn!(delivery = %d.id, error = %e, "keeping a webhook body failed");
                }
                b
            }
            Ok(None) => {
                let _ = store::abandon(&core.db, d.id, &owner, "the event no longer exists").await;
                return;
            }
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "building a webhook body failed");
                return;
            }
        },
    };
    let sent = send(core, &hook, &d.id.to_string(), &body, allow_private).await;
    let now = Utc::now();
    let attempts = d.attempts + 1;
    let (status, next, disable) = next_step(&sent, attempts, d.created_at, hook.failing_since, now);
    if !sent.ok {
        tracing::info!(webhook = %hook.id, delivery = %d.id, attempt = attempts, error = ?sent.error, "webhook delivery failed");
    }
    let recorded = store::record(
        &core.db,
        &Attempt {
            delivery_id: d.id,
            webhook_id: hook.id,
            owner: &owner,
            attempt: attempts,
            status_code: sent.status.map(i64::from),
            error: sent.error.clone(),
            latency_ms: sent.latency_ms,
            at: now,
            status,
            next_attempt_at: next,
            disable,
        },
    )
    .await;
    if let Err(e) = recorded {
        tracing::warn!(delivery = %d.id, error = %e, "recording a webhook attempt failed");
    }
}

/// After an attempt: the delivery's new status, its next attempt, and whether to turn the
/// webhook off (it has failed for a day).
pub fn next_step(
    sent: &Sent,
    attempts: i64,
    created_at: DateTime<Utc>,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (&'static str, DateTime<Utc>, Option<String>) {
    if sent.ok {
        return ("delivered", now, None);
    }
    let failing_since = failing_since.unwrap_or(now);
    let disable = (now - failing_since >= GIVE_UP).then(|| {
        format!(
            "turned off: every delivery failed for a day (since {}); last: {}",
            failing_since.format("%Y-%m-%d %H:%M UTC"),
            sent.error.as_deref().unwrap_or("no answer")
        )
    });
    let next =
        now + chrono::TimeDelta::from_std(backoff(attempts)).unwrap_or(chrono::TimeDelta::hours(1));
    if disable.is_some() || next - created_at > GIVE_UP {
        ("failed", now, disable)
    } else {
        ("pending", next, None)
    }
}

/// Sends due deliveries until the process stops.
pub async fn run(core: Core, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut events = core.hub.subscribe();
    let owner = core.node.to_string();
    loop {
        if *stopped.borrow() {
            return;
        }
        let now = Utc::now();
        let until = now + chrono::TimeDelta::from_std(LEASE).unwrap_or_default();
        let claimed = match store::claim(&core.db, &owner, now, until, BATCH).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        let full = claimed.len() as i64 == BATCH;
        if !claimed.is_empty() {
            // The admin setting, read once per batch.
            let allow = settings::load(&core.db)
                .await
                .map(|s| s.allow_private_webhook_targets)
                .unwrap_or(false);
            futures::stream::iter(claimed)
                .for_each_concurrent(CONCURRENCY, |d| attempt(&core, d, allow))
                .await;
        }
        if full {
            continue;
        }
        // Nothing more due: wait for a webhook event, the next poll, or the stop.
        let woken = async {
            loop {
                match events.recv().await {
                    Ok(e) if WEBHOOK_EVENTS.contains(&e.event_type.as_str()) => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                }
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(IDLE) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Sent {
        Sent {
            ok: false,
            status: Some(500),
            latency_ms: 3.0,
            error: Some("answered 500".into()),
        }
    }

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let first = backoff(1).as_secs_f64();
        assert!((4.0..=6.0).contains(&first), "{first}");
        assert!(backoff(5).as_secs_f64() > 60.0);
        assert!(backoff(30).as_secs_f64() <= MAX_WAIT_SECS * 1.2);
        let t0 = Utc::now();
        let (status, next, off) = next_step(&failed(), 1, t0, None, t0);
        assert_eq!(status, "pending");
        assert!(next > t0);
        assert!(off.is_none());
        // A day after the event: give up on it.
        let late = t0 + chrono::TimeDelta::hours(23) + chrono::TimeDelta::minutes(59);
        let (status, _, off) = next_step(&failed(), 20, t0, Some(late), late);
        assert_eq!(status, "failed");
        assert!(off.is_none());
        // Failing for a whole day: the webhook is turned off, saying why.
        let day = t0 + chrono::TimeDelta::hours(25);
        let (status, _, off) = next_step(&failed(), 20, day, Some(t0), day);
        assert_eq!(status, "failed");
        assert!(off.unwrap().contains("failed for a day"));
        let ok = Sent {
            ok: true,
            status: Some(204),
            latency_ms: 1.0,
            error: None,
        };
        assert_eq!(next_step(&ok, 3, t0, Some(t0), day).0, "delivered");
    }
}
