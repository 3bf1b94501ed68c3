//! A token bucket per endpoint, so a burst of license events never hits a receiver faster
//! than the rate it asked for. Pure: the caller passes the time, so tests need no sleeps.

use std::time::{Duration, Instant};

/// A rejected limit; the message names the value so config validation can quote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate must be a positive, finite number of requests per second, got {0}")]
    InvalidRate(f64),
    #[error("burst must be a finite number of at least one request, got {0}")]
    InvalidBurst(f64),
}

/// Tokens earned at `rate` per second, up to `burst`; each request takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` until first use.
    updated: Option<Instant>,
}

/// Floating-point slack when comparing token counts: a caller that waits exactly the
/// duration it was told must get its token, not a second wait of a few nanoseconds.
const EPSILON: f64 = 1e-9;

impl TokenBucket {
    /// A bucket that starts full, so an idle endpoint's first `burst` requests go at once.
    ///
    /// Values no bucket can use are brought to the nearest usable one rather than panicking
    /// later: a rate that is zero, negative or NaN becomes the smallest positive rate (a
    /// token almost never), an infinite one the largest finite; a burst below one (or NaN)
    /// becomes one. Configuration should reject such values up front with [`Self::try_new`].
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        let rate = if rate_per_sec.is_nan() || rate_per_sec <= 0.0 {
            f64::MIN_POSITIVE
        } else {
            rate_per_sec.min(f64::MAX)
        };
        let burst = if burst.is_nan() {
            1.0
        } else {
            burst.clamp(1.0, f64::MAX)
        };
        Self {
            rate,
            burst,
            tokens: burst,
            updated: None,
        }
    }

    /// Like [`Self::new`], but rejects a rate that is not positive and finite, or a burst
    /// that is not finite and at least one, naming the value.
    pub fn try_new(rate_per_sec: f64, burst: f64) -> Result<Self, RateLimitError> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
            return Err(RateLimitError::InvalidRate(rate_per_sec));
        }
        if !(burst.is_finite() && burst >= 1.0) {
            return Err(RateLimitError::InvalidBurst(burst));
        }
        Ok(Self::new(rate_per_sec, burst))
    }

    /// Takes a token if one is available at `now`; otherwise says how long until one is.
    /// A `now` earlier than a previous call's counts as no time passing.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(updated) = self.updated {
            let elapsed = now.saturating_duration_since(updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        if self.updated.is_none_or(|updated| now > updated) {
            self.updated = Some(now);
        }
        if self.tokens + EPSILON >= 1.0 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            return Ok(());
        }
        let nanos = ((1.0 - self.tokens) / self.rate * 1e9).ceil();
        // `as` saturates, so an absurdly slow rate yields a very long wait, not a panic.
        Err(Duration::from_nanos(nanos as u64))
    }

    /// Tokens available as of the last call, for metrics and tests.
    pub fn available(&self) -> f64 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_then_paces() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        // Empty: the next token comes after 1/10 s.
        assert_eq!(bucket.try_take(t0), Err(Duration::from_millis(100)));
        assert_eq!(
            bucket.try_take(t0 + Duration::from_millis(40)),
            Err(Duration::from_millis(60))
        );
        assert_eq!(bucket.try_take(t0 + Duration::from_millis(100)), Ok(()));
    }

    #[test]
    fn waiting_the_advised_time_is_enough() {
        let t0 = Instant::now();
        let mut now = t0;
        let mut bucket = TokenBucket::new(3.0, 1.0);
        let mut sent = 0;
        // Sixty requests, each waiting exactly as told: 1 immediately, then 3 per second.
        while sent < 60 {
            match bucket.try_take(now) {
                Ok(()) => sent += 1,
                Err(wait) => {
                    assert!(wait > Duration::ZERO);
                    now += wait;
                    assert_eq!(bucket.try_take(now), Ok(()), "told to wait {wait:?}");
                    sent += 1;
                }
            }
        }
        // The pace is the rate, not slower: 59 paced tokens at 3/s.
        let elapsed = (now - t0).as_secs_f64();
        assert!((elapsed - 59.0 / 3.0).abs() < 1e-6, "took {elapsed} s");
    }

    #[test]
    fn the_rate_over_a_long_run_matches() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(50.0, 5.0);
        let mut sent = 0;
        // Try every millisecond for 10 s: 5 burst + 50/s × 10 s.
        for ms in 0..=10_000 {
            if bucket.try_take(t0 + Duration::from_millis(ms)).is_ok() {
                sent += 1;
            }
        }
        assert_eq!(sent, 505);
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 2.0);
        bucket.try_take(t0).unwrap();
        bucket.try_take(t0).unwrap();
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.try_take(later), Ok(()));
        assert_eq!(bucket.try_take(later), Ok(()));
        assert!(bucket.try_take(later).is_err());
    }

    #[test]
    fn time_going_backwards_earns_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1.0, 1.0);
        bucket.try_take(t0).unwrap();
        assert!(bucket.try_take(t0 - Duration::from_secs(5)).is_err());
        // And the clock was not rewound: one second after t0 a token is there.
        assert_eq!(bucket.try_take(t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn invalid_limits_are_errors() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                TokenBucket::try_new(rate, 1.0),
                Err(RateLimitError::InvalidRate(_))
            ));
        }
        for burst in [0.0, 0.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                TokenBucket::try_new(1.0, burst),
                Err(RateLimitError::InvalidBurst(_))
            ));
        }
    }

    #[test]
    fn unusable_limits_are_clamped_not_panicking() {
        let t0 = Instant::now();
        // Zero rate: the burst is usable, then the wait is effectively forever.
        let mut zero = TokenBucket::new(0.0, 2.0);
        assert_eq!(zero.try_take(t0), Ok(()));
        assert_eq!(zero.try_take(t0), Ok(()));
        assert!(
            zero.try_take(t0 + Duration::from_secs(3600)).unwrap_err() > Duration::from_secs(3600)
        );
        // NaN burst becomes one.
        let mut nan = TokenBucket::new(1.0, f64::NAN);
        assert_eq!(nan.try_take(t0), Ok(()));
        assert!(nan.try_take(t0).is_err());
        // Infinite rate: never waits after any time passes.
        let mut fast = TokenBucket::new(f64::INFINITY, 1.0);
        for i in 1..100 {
            assert_eq!(fast.try_take(t0 + Duration::from_nanos(i)), Ok(()));
        }
    }

    #[test]
    fn a_tiny_rate_gives_a_long_wait_not_a_panic() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1e-300, 1.0);
        bucket.try_take(t0).unwrap();
        let wait = bucket.try_take(t0).unwrap_err();
        assert!(wait > Duration::from_secs(1_000_000_000));
    }
}
