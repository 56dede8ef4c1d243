//! The arithmetic of an endpoint's pace, the same whether it lives in memory (SQLite: one
//! process) or in a locked row (PostgreSQL: every process).
//!
//! Two token buckets, one for requests (`rpm`) and one for LLM tokens (`tpm`). A call takes its
//! share at once, even into debt, and waits until the debt would have been repaid: each call
//! costs one database round, not a poll. Each bucket holds one second's worth (at least 1) and
//! refills so that no 60-second window ever sees more than the limit.
//!
//! A 429 lowers the rate the endpoint is driven at (multiplicative decrease) to 90 % of the
//! rate the provider let through over the last minute (successful calls, counted by every
//! process), or to half the current rate when it let nothing through. It falls at most once a
//! second, so the calls already on their way when it fell (and processes that have not yet
//! seen it) do not cut it again. It then climbs back by 10 % of the rate it fell to each minute
//! (additive increase), and is forgotten five minutes after the last 429 or once it climbs past
//! the configured `rpm`.

use std::time::Duration;

/// An endpoint's configured limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_concurrency: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
}

impl Limits {
    /// Whether any limit is configured (an endpoint without one is paced only after a 429).
    pub fn any(&self) -> bool {
        self.max_concurrency.is_some() || self.rpm.is_some() || self.tpm.is_some()
    }
}

/// After a 429 the rate falls to this share of the rate the provider let through.
const CUT: f64 = 0.9;
/// ...or, when it let nothing through, to this share of the current rate.
const CUT_BLIND: f64 = 0.5;
/// It falls at most once in this long.
const CUT_EVERY_MS: i64 = 2_000;
/// A Retry-After this long says the provider counts a quota over a window (a minute).
const QUOTA_HINT: Duration = Duration::from_secs(5);
/// Successful calls counted this long after a cut still count towards it.
const LATE_COUNTS_MS: i64 = 2_000;
/// It climbs back by the rate it fell to once every this many seconds (10 % a minute).
const CLIMB_SECS: f64 = 600.0;
/// A learned rate is forgotten this long after the last 429.
const FORGET_MS: i64 = 300_000;
/// Successful calls are counted per minute, to know the rate the provider lets through.
const WINDOW_MS: i64 = 60_000;
/// The slowest an endpoint is ever paced at, in requests per minute.
const FLOOR_RPM: f64 = 1.0;
/// The rate an unpaced endpoint falls to when the provider let nothing through.
const BLIND_RPM: f64 = 60.0;
/// The longest a call is ever told to wait for its turn.
const MAX_WAIT_SECS: f64 = 3_600.0;

/// One endpoint's pace. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// Requests available now (below zero: owed by calls admitted ahead).
    pub requests: f64,
    /// LLM tokens available now (below zero: owed).
    pub tokens: f64,
    /// When the levels were last brought up to date.
    pub at_ms: i64,
    /// The rate learned from 429s, requests per minute (`None`: not throttled lately).
    pub learned_rpm: Option<f64>,
    pub cut_at_ms: i64,
    /// The rate the last 429 set (the climb back is a share of it).
    pub cut_to_rpm: f64,
    /// Successful calls in the current minute (from `window_start_ms`) and the one before.
    pub window_start_ms: i64,
    pub window_calls: i64,
    pub prev_calls: i64,
    /// When counting began (the endpoint's first use).
    pub since_ms: i64,
}

/// Burst and refill (per second) for a per-minute limit: no 60 s window sees more than it.
fn shape(per_minute: f64) -> (f64, f64) {
    let burst = (per_minute / 60.0).max(1.0);
    let refill = (per_minute - burst).max(per_minute / 2.0) / 60.0;
    (burst, refill)
}

impl Bucket {
    /// A bucket seen for the first time: full.
    pub fn fresh(limits: &Limits, now_ms: i64) -> Bucket {
        Bucket {
            requests: limits.rpm.map_or(1.0, |r| shape(r as f64).0),
            tokens: limits.tpm.map_or(0.0, |t| shape(t as f64).0),
            at_ms: now_ms,
            learned_rpm: None,
            cut_at_ms: 0,
            cut_to_rpm: 0.0,
            window_start_ms: now_ms,
            window_calls: 0,
            prev_calls: 0,
            since_ms: now_ms,
        }
    }

    /// The rate calls are paced at now, requests per minute (`None`: unpaced).
    pub fn rpm(&self, limits: &Limits) -> Option<f64> {
        match (limits.rpm.map(|r| r as f64), self.learned_rpm) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Brings the levels and the learned rate up to `now_ms`.
    pub fn refresh(&mut self, limits: &Limits, now_ms: i64) {
        let dt = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        if let Some(rpm) = self.rpm(limits) {
            let (burst, refill) = shape(rpm);
            self.requests = (self.requests + refill * dt).min(burst);
        }
        if let Some(tpm) = limits.tpm {
            let (burst, refill) = shape(tpm as f64);
            self.tokens = (self.tokens + refill * dt).min(burst);
        }
        if let Some(rate) = self.learned_rpm {
            let grown = rate + self.cut_to_rpm / CLIMB_SECS * dt;
            let past_limit = limits.rpm.is_some_and(|r| grown >= r as f64);
            self.learned_rpm =
                (now_ms - self.cut_at_ms <= FORGET_MS && !past_limit).then_some(grown);
        }
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Counts `calls` that succeeded by now. Counts that arrive within two seconds of a cut
    /// (other processes report theirs once a second) still raise the rate it fell to.
    pub fn count(&mut self, calls: i64, now_ms: i64) {
        let minutes = (now_ms - self.window_start_ms) / WINDOW_MS;
        if minutes >= 1 {
            self.prev_calls = if minutes == 1 { self.window_calls } else { 0 };
            self.window_calls = 0;
            self.window_start_ms += minutes * WINDOW_MS;
        }
        self.window_calls += calls;
        if let Some(rate) = self.learned_rpm
            && calls > 0
            && now_ms - self.cut_at_ms <= LATE_COUNTS_MS
        {
            let counted = self.observed_rpm(now_ms) * CUT;
            if counted > rate {
                self.learned_rpm = Some(counted);
                self.cut_to_rpm = counted;
            }
        }
    }

    /// The rate of successful calls over the last minute, requests per minute (the minute
    /// before counts for the part of it that falls inside the last 60 s).
    pub fn observed_rpm(&self, now_ms: i64) -> f64 {
        let into = (now_ms - self.window_start_ms) as f64 / WINDOW_MS as f64;
        let prev = match into {
            x if x < 1.0 => self.prev_calls as f64 * (1.0 - x.max(0.0)),
            x if x < 2.0 => self.window_calls as f64 * (2.0 - x),
            _ => 0.0,
        };
        let current = if into < 1.0 {
            self.window_calls as f64
        } else {
            0.0
        };
        prev + current
    }

    /// Admits one call estimated to cost `tokens`: how long it waits before it goes.
    pub fn take(&mut self, limits: &Limits, tokens: f64, now_ms: i64) -> Duration {
        self.refresh(limits, now_ms);
        let mut wait: f64 = 0.0;
        if let Some(rpm) = self.rpm(limits) {
            self.requests -= 1.0;
            wait = wait.max(-self.requests / shape(rpm).1);
        }
        if let Some(tpm) = limits.tpm {
            self.tokens -= tokens;
            wait = wait.max(-self.tokens / shape(tpm as f64).1);
        }
        Duration::from_secs_f64(wait.clamp(0.0, MAX_WAIT_SECS))
    }

    /// A call estimated at `estimate` tokens used `used`: the difference is given back or owed.
    pub fn settle(&mut self, limits: &Limits, estimate: f64, used: f64) {
        if limits.tpm.is_some() {
            self.tokens += estimate - used;
        }
    }

    /// A call sent at `sent_ms` was answered 429, asking to come back after `retry_after`:
    /// nobody calls before then, and the rate falls, unless it fell less than two seconds before
    /// the call was sent. Returns the new rate when it fell.
    pub fn throttled(
        &mut self,
        limits: &Limits,
        sent_ms: i64,
        now_ms: i64,
        retry_after: Option<Duration>,
    ) -> Option<f64> {
        self.refresh(limits, now_ms);
        let to = self.cut(limits, sent_ms, now_ms, retry_after);
        if let (Some(wait), Some(rpm)) = (retry_after, self.rpm(limits)) {
            let owed = wait.as_secs_f64().min(MAX_WAIT_SECS) * shape(rpm).1;
            self.requests = self.requests.min(-owed);
        }
        to
    }

    fn cut(
        &mut self,
        limits: &Limits,
        sent_ms: i64,
        now_ms: i64,
        retry_after: Option<Duration>,
    ) -> Option<f64> {
        if self.cut_at_ms > 0 && sent_ms < self.cut_at_ms + CUT_EVERY_MS {
            return None;
        }
        // A long Retry-After means the provider counts over a long window (a minute): what got
        // through in it is the limit. Otherwise it limits a rate: what got through per minute
        // of the time the endpoint has been used.
        let minute_quota = retry_after.is_some_and(|w| w >= QUOTA_HINT);
        let used_secs = ((now_ms - self.since_ms) as f64 / 1000.0).clamp(1.0, 60.0);
        let through = match minute_quota {
            true => self.observed_rpm(now_ms),
            false => self.observed_rpm(now_ms) * 60.0 / used_secs,
        };
        let to = if through >= 1.0 {
            through * CUT
        } else {
            self.rpm(limits).map_or(BLIND_RPM, |r| r * CUT_BLIND)
        }
        .max(FLOOR_RPM);
        self.learned_rpm = Some(to);
        self.cut_to_rpm = to;
        self.cut_at_ms = now_ms;
        // The burst is spent: calls after the cut go at the new rate.
        self.requests = self.requests.min(0.0);
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<i64>, tpm: Option<i64>) -> Limits {
        Limits {
            max_concurrency: None,
            rpm,
            tpm,
        }
    }

    /// Admits calls as fast as they are allowed, from t = 0 for `secs` seconds: their send times.
    fn drive(b: &mut Bucket, l: &Limits, tokens: f64, secs: i64) -> Vec<i64> {
        let mut now = 0;
        let mut sent = Vec::new();
        while now < secs * 1000 {
            let wait = b.take(l, tokens, now).as_millis() as i64;
            now += wait;
            sent.push(now);
        }
        sent
    }

    fn most_in_a_minute(sent: &[i64]) -> usize {
        sent.iter()
            .map(|&t| sent.iter().filter(|&&s| s >= t && s < t + 60_000).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_minute_sees_more_than_the_limit() {
        for rpm in [1, 2, 5, 30, 120, 600, 6000] {
            let l = limits(Some(rpm), None);
            let mut b = Bucket::fresh(&l, 0);
            let sent = drive(&mut b, &l, 0.0, 180);
            let most = most_in_a_minute(&sent);
            assert!(most <= rpm as usize, "rpm {rpm}: {most} in one minute");
            assert!(
                most as f64 >= rpm as f64 * 0.5,
                "rpm {rpm}: only {most} in one minute"
            );
        }
        let l = limits(Some(120), None);
        let mut b = Bucket::fresh(&l, 0);
        let most = most_in_a_minute(&drive(&mut b, &l, 0.0, 300));
        assert!((118..=120).contains(&most), "{most}");
    }

    #[test]
    fn tokens_per_minute_hold_and_are_settled() {
        let l = limits(None, Some(6_000));
        let mut b = Bucket::fresh(&l, 0);
        // 500-token calls: 12 a minute fit.
        let sent = drive(&mut b, &l, 500.0, 240);
        assert!(most_in_a_minute(&sent) <= 12, "{}", most_in_a_minute(&sent));
        // A call that used more than estimated delays the next one.
        let mut b = Bucket::fresh(&l, 0);
        let first = b.take(&l, 100.0, 0);
        assert_eq!(first, Duration::ZERO);
        b.settle(&l, 100.0, 1_100.0);
        assert!(b.take(&l, 100.0, 0) > Duration::from_secs(9));
    }

    #[test]
    fn a_429_drops_to_what_got_through_once_a_second_then_climbs_back() {
        let l = limits(Some(200), None);
        let mut b = Bucket::fresh(&l, 0);
        b.count(150, 30_000);
        // A minute's quota (a long Retry-After): 150 went through this minute, so 135.
        let quota = Some(Duration::from_secs(30));
        assert_eq!(b.throttled(&l, 30_000, 30_000, quota), Some(135.0));
        // 429s for calls sent within two seconds of the cut change nothing.
        assert_eq!(b.throttled(&l, 30_500, 31_000, None), None);
        assert!(
            (b.rpm(&l).unwrap() - 135.225).abs() < 1e-9,
            "it climbed a second's worth"
        );
        // It climbs by 13.5 a minute, and is forgotten past the configured 200.
        b.refresh(&l, 90_000);
        assert!((b.rpm(&l).unwrap() - 148.5).abs() < 0.1, "{:?}", b.rpm(&l));
        b.refresh(&l, 30_000 + 5 * 60_000);
        assert_eq!((b.learned_rpm, b.rpm(&l)), (None, Some(200.0)));
        // Nothing got through: half the current rate.
        let mut b = Bucket::fresh(&l, 0);
        assert_eq!(b.throttled(&l, 0, 1_000, None), Some(100.0));
        assert!(
            b.take(&l, 0.0, 1_000) > Duration::ZERO,
            "the burst is spent after a cut"
        );
    }

    #[test]
    fn counts_that_arrive_just_after_a_cut_still_count() {
        let l = limits(None, None);
        let mut b = Bucket::fresh(&l, 0);
        b.count(40, 1_000);
        let quota = Some(Duration::from_secs(59));
        assert_eq!(b.throttled(&l, 1_000, 1_000, quota), Some(36.0));
        // Another process reports its 80 a second later: 120 got through.
        b.count(80, 2_000);
        assert_eq!(b.learned_rpm, Some(108.0));
        // Later counts (made at the paced rate) change nothing.
        b.count(5, 4_000);
        assert!(b.learned_rpm.unwrap() < 109.0);
    }

    #[test]
    fn retry_after_holds_every_call_back() {
        let l = limits(None, None);
        let mut b = Bucket::fresh(&l, 0);
        b.count(120, 1_000);
        let to = b.throttled(&l, 1_000, 1_000, Some(Duration::from_secs(30)));
        assert_eq!(to, Some(108.0));
        // No call goes before the 30 s are up, even one sent after the cut.
        assert!(b.take(&l, 0.0, 1_000) >= Duration::from_secs(30));
        assert_eq!(
            b.throttled(&l, 1_200, 1_500, Some(Duration::from_secs(50))),
            None
        );
        assert!(b.take(&l, 0.0, 1_500) >= Duration::from_secs(50));
    }

    #[test]
    fn the_rate_that_got_through_spans_the_last_minute() {
        let l = limits(None, None);
        let mut b = Bucket::fresh(&l, 0);
        b.count(60, 10_000);
        assert_eq!(b.observed_rpm(10_000), 60.0);
        b.count(30, 70_000);
        // 60 in the minute before, half of which lies in the last 60 s, and 30 now.
        assert_eq!(b.observed_rpm(90_000), 60.0 * 0.5 + 30.0);
        assert_eq!(b.observed_rpm(150_000), 30.0 * 0.5);
        b.count(0, 200_000);
        assert_eq!(b.observed_rpm(200_000), 0.0);
        // An unpaced endpoint falls from what got through, and forgets it after 5 minutes.
        let mut b = Bucket::fresh(&l, 0);
        b.count(300, 15_000);
        // No long Retry-After: a rate limit. 300 in the 15 s it has been used is 1,200 a minute.
        assert_eq!(b.throttled(&l, 15_000, 15_000, None), Some(1080.0));
        b.refresh(&l, 15_000 + FORGET_MS + 1);
        assert_eq!(b.rpm(&l), None);
    }
}
