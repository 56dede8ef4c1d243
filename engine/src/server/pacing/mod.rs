//! Endpoint limits that hold across processes: `max_concurrency`, `rpm` and `tpm`, and a rate
//! learned from 429s (the arithmetic is in `bucket`).
//!
//! On SQLite (one process) the pace lives in memory. On PostgreSQL it is the endpoint's
//! `endpoint_pace` row, which each admission locks for a moment, and each call in flight to an
//! endpoint with a `max_concurrency` is a row of `endpoint_flights`. An endpoint with no limits
//! costs no database round per call: its process counts the calls and, once a second, adds
//! them to the row and reads whether a 429 (seen by any process) has the endpoint paced.

mod bucket;
mod store;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::error::{Error, Result};
use super::providers::ProviderError;
use super::store::Db;
use super::store::endpoints::EndpointRow;
use bucket::Bucket;
pub use bucket::Limits;

/// How often an unlimited endpoint's process shares its count and looks for a learned rate.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// A flight row is not counted once its call could not still be running: the endpoint's
/// timeout plus this.
const FLIGHT_SLACK: Duration = Duration::from_secs(60);

/// One endpoint's pace, shared by every call this process makes to it.
pub struct Pace {
    endpoint: Uuid,
    name: Arc<str>,
    limits: Limits,
    stale: Duration,
    /// This process's share of `max_concurrency`: never more than the whole.
    local: Option<Arc<Semaphore>>,
    shared: Shared,
}

enum Shared {
    Memory(Mutex<Bucket>),
    Postgres {
        pool: sqlx::PgPool,
        node: Arc<str>,
        look: Mutex<Look>,
        /// Woken when one of this process's flights lands (other processes' are polled).
        landed: Notify,
    },
}

#[derive(Default)]
struct Look {
    last: Option<Instant>,
    /// Calls that succeeded since the count was last shared.
    unflushed: i64,
    /// Whether the endpoint is paced at a learned rate (every call then goes through the row).
    throttled: bool,
}

/// Whether the provider answered a call 429, and when it asked to be called again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    No,
    Yes(Option<Duration>),
}

/// A call's admission; its concurrency slot is held until `Pace::finish` (or drop).
pub struct Pass {
    _local: Option<OwnedSemaphorePermit>,
    flight: Option<(sqlx::PgPool, Uuid)>,
    sent_ms: i64,
    estimate: f64,
}

impl Drop for Pass {
    fn drop(&mut self) {
        // A call abandoned mid-way (its run cancelled) still gives its flight back.
        if let Some((pool, id)) = self.flight.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = store::land(&pool, id).await;
            });
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pace {
    pub fn new(db: &Db, node: Arc<str>, row: &EndpointRow) -> Pace {
        let limits = Limits {
            max_concurrency: row.max_concurrency,
            rpm: row.rpm,
            tpm: row.tpm,
        };
        let shared = match db {
            Db::Sqlite(_) => Shared::Memory(Mutex::new(Bucket::fresh(&limits, now_ms()))),
            Db::Postgres(pool) => Shared::Postgres {
                pool: pool.clone(),
                node,
                look: Mutex::new(Look::default()),
                landed: Notify::new(),
            },
        };
        Pace {
            endpoint: row.id,
            name: row.name.as_str().into(),
            limits,
            stale: Duration::from_millis(row.timeout_ms.max(1) as u64) + FLIGHT_SLACK,
            local: row
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n.clamp(1, 1 << 20) as usize))),
            shared,
        }
    }

    /// Whether calls' token estimates matter (the endpoint has a `tpm`).
    pub fn counts_tokens(&self) -> bool {
        self.limits.tpm.is_some()
    }

    /// Waits until a call estimated at `estimate` tokens may go.
    pub async fn admit(&self, estimate: f64) -> Result<Pass> {
        let local = match &self.local {
            Some(slots) => Some(
                slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let mut pass = Pass {
            _local: local,
            flight: None,
            sent_ms: 0,
            estimate,
        };
        let wait = match &self.shared {
            Shared::Memory(bucket) => lock(bucket).take(&self.limits, estimate, now_ms()),
            Shared::Postgres {
                pool,
                node,
                look,
                landed,
            } => {
                if !self.limits.any() && !self.throttled_lately(pool, look).await? {
                    Duration::ZERO
                } else {
                    loop {
                        let calls = std::mem::take(&mut lock(look).unflushed);
                        let admission = store::admit(
                            pool,
                            self.endpoint,
                            node,
                            &self.limits,
                            (estimate, calls),
                            self.stale,
                        )
                        .await;
                        let admission = match admission {
                            Ok(a) => a,
                            Err(e) => {
                                lock(look).unflushed += calls;
                                return Err(e);
                            }
                        };
                        match admission {
                            store::Admission::Go {
                                flight,
                                wait,
                                throttled,
                            } => {
                                pass.flight = flight.map(|id| (pool.clone(), id));
                                lock(look).throttled = throttled;
                                break wait;
                            }
                            store::Admission::Full => {
                                let poll = Duration::from_millis(20 + rand::random::<u64>() % 40);
                                tokio::select! {
                                    _ = landed.notified() => {}
                                    _ = tokio::time::sleep(poll) => {}
                                }
                            }
                        }
                    }
                }
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        pass.sent_ms = now_ms();
        Ok(pass)
    }

    /// An unlimited endpoint on PostgreSQL: whether a 429 has it paced. Once a second it
    /// shares the count of successful calls and reads the answer from the row.
    async fn throttled_lately(&self, pool: &sqlx::PgPool, look: &Mutex<Look>) -> Result<bool> {
        let calls = {
            let mut l = lock(look);
            if l.throttled || l.last.is_some_and(|t| t.elapsed() < LOOK_EVERY) {
                return Ok(l.throttled);
            }
            l.last = Some(Instant::now());
            std::mem::take(&mut l.unflushed)
        };
        match store::flush(pool, self.endpoint, &self.limits, calls).await {
            Ok(throttled) => {
                lock(look).throttled = throttled;
                Ok(throttled)
            }
            Err(e) => {
                lock(look).unflushed += calls;
                Err(e)
            }
        }
    }

    /// The call is over: it used `used` tokens (`None`: it failed), or the provider answered
    /// 429 (`throttled`, with its `Retry-After`), which slows the endpoint down for every process.
    pub async fn finish(&self, mut pass: Pass, used: Option<i64>, throttled: Throttled) {
        let (throttled, retry_after) = match throttled {
            Throttled::No => (false, None),
            Throttled::Yes(retry_after) => (true, retry_after),
        };
        let used_known = used.is_some();
        let used = match (throttled, used) {
            (true, _) => 0.0,
            (false, Some(n)) => n as f64,
            (false, None) => pass.estimate,
        };
        let learned = match &self.shared {
            Shared::Memory(bucket) => {
                let mut b = lock(bucket);
                b.settle(&self.limits, pass.estimate, used);
                if !throttled && used_known {
                    b.count(1, now_ms());
                }
                throttled
                    .then(|| b.throttled(&self.limits, pass.sent_ms, now_ms(), retry_after))
                    .flatten()
            }
            Shared::Postgres {
                pool, look, landed, ..
            } => {
                if !throttled && used_known {
                    lock(look).unflushed += 1;
                }
                if let Some((_, id)) = pass.flight.take() {
                    if let Err(e) = store::land(pool, id).await {
                        tracing::warn!(error = %e, "could not record the end of an endpoint call");
                    }
                    landed.notify_one();
                }
                let mut learned = None;
                let owed = pass.estimate - used;
                if self.limits.tpm.is_some()
                    && owed.abs() >= 1.0
                    && let Err(e) = store::settle(pool, self.endpoint, owed).await
                {
                    tracing::warn!(error = %e, "could not settle an endpoint call's tokens");
                }
                if throttled {
                    let calls = std::mem::take(&mut lock(look).unflushed);
                    let sent = (pass.sent_ms, retry_after);
                    match store::throttled(pool, self.endpoint, &self.limits, sent, calls).await {
                        Ok(to) => {
                            lock(look).throttled = true;
                            learned = to;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "could not slow a throttled endpoint down")
                        }
                    }
                }
                learned
            }
        };
        if throttled {
            super::telemetry::llm_throttled(&self.name, learned);
            if let Some(rpm) = learned {
                tracing::info!(endpoint = %self.name, rpm = rpm.round(), "the endpoint answered 429: pacing it slower for a while");
            }
        }
    }

    /// One attempt at a call, admitted by the pace and reported back to it. `used` reads the
    /// tokens a successful answer used.
    pub async fn attempt<T, Fut>(
        &self,
        estimate: f64,
        used: impl Fn(&T) -> i64,
        call: impl FnOnce() -> Fut,
    ) -> std::result::Result<T, ProviderError>
    where
        Fut: Future<Output = std::result::Result<T, ProviderError>>,
    {
        let pass = self.admit(estimate).await.map_err(|e| {
            ProviderError::retryable(None, None, format!("could not pace the call: {e}"))
        })?;
        let result = call().await;
        let throttled = match &result {
            Err(e) if e.status == Some(429) => Throttled::Yes(e.retry_after),
            _ => Throttled::No,
        };
        self.finish(pass, result.as_ref().ok().map(&used), throttled)
            .await;
        result
    }
}

/// Forgets the flights of processes found dead (PostgreSQL).
pub use store::forget_nodes;
