//! Retrying provider calls: capped exponential backoff with jitter, honouring the provider's
//! `Retry-After`; errors that cannot improve (auth, quota, bad request) fail at once.

use std::future::Future;
use std::time::Duration;

use super::ProviderError;

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` we wait for; longer requests are capped to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// How long to wait after failed attempt number `attempt` (1-based), or `None` to give up.
    /// `jitter` is a uniform draw in [0, 1): the wait is 50–100 % of the exponential step.
    pub fn delay(&self, attempt: u32, error: &ProviderError, jitter: f64) -> Option<Duration> {
        if !error.retryable || attempt >= self.max_attempts {
            return None;
        }
        if let Some(wait) = error.retry_after {
            return Some(wait.min(self.max_retry_after));
        }
        let step = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        Some(step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0))
    }

    /// Runs `call` until it succeeds or the policy gives up. Returns the result and how many
    /// attempts were made.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> (Result<T, ProviderError>, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return (Ok(value), attempt),
                Err(error) => match self.delay(attempt, &error, rand::random::<f64>()) {
                    Some(wait) => {
                        tracing::debug!(attempt, ?wait, error = %error, "retrying LLM call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => {
                        let error = if error.retryable && attempt > 1 {
                            ProviderError {
                                message: format!("{} (after {attempt} attempts)", error.message),
                                ..error
                            }
                        } else {
                            error
                        };
                        return (Err(error), attempt);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(retryable: bool, status: Option<u16>, retry_after_ms: Option<u64>) -> ProviderError {
        ProviderError {
            retryable,
            status,
            retry_after: retry_after_ms.map(Duration::from_millis),
            message: "x".into(),
        }
    }

    #[test]
    fn the_retry_table() {
        let p = RetryPolicy::default();
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        // (attempt, error, jitter) → expected wait in ms (None: give up)
        let cases: &[(u32, ProviderError, f64, Option<u64>)] = &[
            (1, err(true, Some(500), None), 0.0, Some(250)),
            (1, err(true, Some(500), None), 1.0, Some(500)),
            (2, err(true, Some(502), None), 1.0, Some(1000)),
            (3, err(true, None, None), 1.0, Some(2000)),
            (4, err(true, Some(529), None), 0.0, Some(2000)),
            (1, err(true, Some(429), Some(1500)), 0.3, Some(1500)),
            (1, err(true, Some(429), Some(600_000)), 0.3, Some(60_000)),
            (5, err(true, Some(500), None), 0.0, None),
            (1, err(false, Some(401), None), 0.0, None),
            (1, err(false, Some(429), Some(10)), 0.0, None),
        ];
        for (attempt, error, jitter, expected) in cases {
            assert_eq!(
                ms(p.delay(*attempt, error, *jitter)),
                *expected,
                "attempt {attempt}, {error:?}"
            );
        }
        let capped = RetryPolicy {
            max_attempts: 30,
            ..RetryPolicy::default()
        };
        assert_eq!(
            ms(capped.delay(20, &err(true, None, None), 1.0)),
            Some(20_000)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_until_success_and_counts_attempts() {
        let p = RetryPolicy::default();
        let mut calls = 0;
        let (result, attempts) = p
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(err(true, Some(503), Some(10)))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!((result, attempts), (Ok(3), 3));

        let (result, attempts) = p
            .run(|| async { Err::<(), _>(err(false, Some(401), None)) })
            .await;
        assert_eq!(attempts, 1);
        assert!(!result.unwrap_err().message.contains("attempts"));

        let (result, attempts) = p
            .run(|| async { Err::<(), _>(err(true, Some(500), None)) })
            .await;
        assert_eq!(attempts, 5);
        assert!(result.unwrap_err().message.ends_with("(after 5 attempts)"));
    }
}
