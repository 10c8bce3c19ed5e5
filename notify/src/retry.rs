//! When to try again: [`RetryPolicy`]. Pure: it looks at the attempt count and the failure and
//! returns a delay or "give up"; the caller sleeps. Jitter comes from a caller-provided RNG so
//! tests can seed it.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::error::Failure;

/// Exponential backoff with jitter, honouring `Retry-After`.
///
/// After the n-th failed attempt (n from 1) the base delay is
/// `initial_backoff * multiplier^(n-1)`, capped at `max_backoff`; jitter then removes a random
/// part of up to `jitter` (a fraction in 0..=1) of it, so many clients that failed together do
/// not retry together. A server's `Retry-After` replaces the computed delay (capped at
/// `max_retry_after`, so a hostile or confused server cannot park us for a day).
///
/// Only retryable failures ([`Failure::is_retryable`]) are retried.
///
/// ```
/// use notify::{RetryPolicy, Retry, Failure};
/// use rand::SeedableRng;
/// use std::time::Duration;
/// let policy = RetryPolicy::default().jitter(0.0);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let e500 = Failure::Status { status: 500, message: String::new(), retry_after: None };
/// assert_eq!(policy.next(1, &e500, &mut rng), Retry::After(Duration::from_millis(500)));
/// assert_eq!(policy.next(2, &e500, &mut rng), Retry::After(Duration::from_secs(1)));
/// let e400 = Failure::Status { status: 400, message: String::new(), retry_after: None };
/// assert_eq!(policy.next(1, &e400, &mut rng), Retry::GiveUp);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: Option<u32>,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    jitter: f64,
    max_retry_after: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Wait this long, then try again.
    After(Duration),
    /// Stop: the failure is permanent or the attempts are used up.
    GiveUp,
}

impl Default for RetryPolicy {
    /// 5 attempts, 500 ms doubling up to 30 s, 20 % jitter, `Retry-After` honoured up to 10 min.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Some(5),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            max_retry_after: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The default policy without an attempt limit: what the [`Notifier`](crate::Notifier)'s
    /// queue uses, so an outage delays notifications instead of dropping them.
    pub fn unlimited() -> Self {
        RetryPolicy {
            max_attempts: None,
            ..RetryPolicy::default()
        }
    }

    /// Most attempts in total (the first included); `None` retries transient failures forever.
    /// `Some(0)` is treated as `Some(1)`.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts.map(|n| n.max(1));
        self
    }

    /// Delay after the first failure.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// Longest computed delay (a `Retry-After` is capped by [`max_retry_after`](Self::max_retry_after) instead).
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Growth factor between attempts; values below 1 (or NaN) are treated as 1.
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m >= 1.0 { m } else { 1.0 };
        self
    }

    /// Fraction of each delay that is randomised away, clamped to 0..=1 (NaN means 0).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// Longest `Retry-After` we wait for.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The attempt limit, `None` for unlimited.
    pub fn attempts_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// Decides what follows the `attempt`-th (from 1) attempt, which failed with `failure`.
    pub fn next<R: Rng + ?Sized>(&self, attempt: u32, failure: &Failure, rng: &mut R) -> Retry {
        if !failure.is_retryable() {
            return Retry::GiveUp;
        }
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return Retry::GiveUp;
        }
        if let Failure::Status {
            retry_after: Some(wait),
            ..
        } = failure
        {
            return Retry::After((*wait).min(self.max_retry_after));
        }
        Retry::After(self.backoff(attempt, rng))
    }

    /// The jittered backoff after the `attempt`-th failure, ignoring `Retry-After`.
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let exponent = attempt.saturating_sub(1).min(1000) as i32;
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let factor = if self.jitter > 0.0 {
            1.0 - self.jitter * rng.gen::<f64>()
        } else {
            1.0
        };
        // `capped` is finite and non-negative here (powi overflow gives +inf, which `min` caps).
        Duration::try_from_secs_f64(capped * factor).unwrap_or(self.max_backoff)
    }
}

/// Reads a `Retry-After` value: delay-seconds (`120`) or an HTTP-date, relative to `now`.
/// A date in the past means "now" (zero). Garbage gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds is not a real request; saturate.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = crate::time::parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::UNIX_EPOCH;

    fn status(status: u16, retry_after: Option<Duration>) -> Failure {
        Failure::Status {
            status,
            message: String::new(),
            retry_after,
        }
    }

    #[test]
    fn exponential_and_capped_without_jitter() {
        let p = RetryPolicy::default()
            .jitter(0.0)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(700))
            .max_attempts(None);
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (1..=6)
            .map(|n| p.next(n, &Failure::Timeout, &mut rng))
            .collect();
        let ms = |m| Retry::After(Duration::from_millis(m));
        assert_eq!(
            delays,
            vec![ms(100), ms(200), ms(400), ms(700), ms(700), ms(700)]
        );
        // Huge attempt numbers do not overflow.
        assert_eq!(p.next(u32::MAX, &Failure::Timeout, &mut rng), ms(700));
    }

    #[test]
    fn jitter_stays_in_range_and_is_deterministic_per_seed() {
        let p = RetryPolicy::default()
            .jitter(0.5)
            .initial_backoff(Duration::from_secs(1));
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50).map(|_| p.backoff(1, &mut rng)).collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        assert!(a
            .iter()
            .all(|d| *d > Duration::from_millis(500) && *d <= Duration::from_secs(1)));
    }

    #[test]
    fn attempts_limit_and_permanent_failures() {
        let p = RetryPolicy::default().max_attempts(Some(3));
        let mut rng = StdRng::seed_from_u64(0);
        assert!(matches!(
            p.next(2, &status(503, None), &mut rng),
            Retry::After(_)
        ));
        assert_eq!(p.next(3, &status(503, None), &mut rng), Retry::GiveUp);
        for code in [400, 401, 403, 404, 413, 301] {
            assert_eq!(
                p.next(1, &status(code, None), &mut rng),
                Retry::GiveUp,
                "{code}"
            );
        }
        assert_eq!(
            p.next(
                1,
                &Failure::Request {
                    message: "bad url".into()
                },
                &mut rng
            ),
            Retry::GiveUp
        );
        assert_eq!(
            RetryPolicy::default()
                .max_attempts(Some(0))
                .attempts_limit(),
            Some(1)
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(60));
        let mut rng = StdRng::seed_from_u64(0);
        let wait = p.next(1, &status(429, Some(Duration::from_secs(7))), &mut rng);
        assert_eq!(wait, Retry::After(Duration::from_secs(7)));
        let wait = p.next(1, &status(503, Some(Duration::from_secs(3600))), &mut rng);
        assert_eq!(wait, Retry::After(Duration::from_secs(60)));
        // 429 without Retry-After falls back to backoff.
        assert!(
            matches!(p.next(1, &status(429, None), &mut rng), Retry::After(d) if d <= Duration::from_millis(500))
        );
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
