//! The two vendors' rate limits: Cliniko's fixed per-minute budget per user (answered with
//! `X-RateLimit-Reset`), and Reckon's Azure APIM token bucket per subscription key (answered
//! with `Retry-After`).

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `limit` requests per `window_secs` per key; `limit == 0` means unlimited.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    inner: Arc<Mutex<WindowState>>,
}

#[derive(Debug)]
struct WindowState {
    limit: u32,
    window_secs: i64,
    windows: HashMap<String, (i64, u32)>,
}

impl FixedWindow {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        FixedWindow {
            inner: Arc::new(Mutex::new(WindowState {
                limit,
                window_secs: window_secs.max(1),
                windows: HashMap::new(),
            })),
        }
    }

    pub fn set_limit(&self, limit: u32) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.limit = limit;
        s.windows.clear();
    }

    pub fn limit(&self) -> u32 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).limit
    }

    /// Counts one request. `Err(reset)` gives the Unix second when the window resets.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), i64> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if s.limit == 0 {
            return Ok(());
        }
        let (limit, window) = (s.limit, s.window_secs);
        let now = now.timestamp();
        let entry = s.windows.entry(key.to_string()).or_insert((now, 0));
        if now >= entry.0 + window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return Err(entry.0 + window);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Token bucket: `capacity` burst, refilled at `per_minute / 60` tokens a second.
/// `per_minute == 0` means unlimited.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    inner: Arc<Mutex<BucketState>>,
}

#[derive(Debug)]
struct BucketState {
    capacity: f64,
    per_minute: f64,
    buckets: HashMap<String, (f64, DateTime<Utc>)>,
}

impl TokenBucket {
    pub fn new(per_minute: u32, capacity: u32) -> Self {
        TokenBucket {
            inner: Arc::new(Mutex::new(BucketState {
                capacity: f64::from(capacity.max(1)),
                per_minute: f64::from(per_minute),
                buckets: HashMap::new(),
            })),
        }
    }

    pub fn set_rate(&self, per_minute: u32, capacity: u32) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.per_minute = f64::from(per_minute);
        s.capacity = f64::from(capacity.max(1));
        s.buckets.clear();
    }

    /// Takes one token. `Err(secs)` is the whole number of seconds until one is available.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), u64> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if s.per_minute <= 0.0 {
            return Ok(());
        }
        let (capacity, per_sec) = (s.capacity, s.per_minute / 60.0);
        let entry = s.buckets.entry(key.to_string()).or_insert((capacity, now));
        let elapsed = (now - entry.1).num_milliseconds().max(0) as f64 / 1000.0;
        entry.0 = (entry.0 + elapsed * per_sec).min(capacity);
        entry.1 = now;
        if entry.0 >= 1.0 {
            entry.0 -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - entry.0) / per_sec).ceil();
            Err(wait.max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn fixed_window_allows_limit_then_reports_reset() {
        let rl = FixedWindow::new(3, 60);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for _ in 0..3 {
            assert!(rl.check("k", t0).is_ok());
        }
        assert_eq!(
            rl.check("k", t0 + TimeDelta::seconds(10)),
            Err(1_700_000_060)
        );
        assert!(rl.check("other", t0).is_ok(), "limits are per key");
        assert!(
            rl.check("k", t0 + TimeDelta::seconds(60)).is_ok(),
            "a new window starts"
        );
    }

    #[test]
    fn token_bucket_refills_over_time() {
        let rl = TokenBucket::new(60, 2);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(rl.check("k", t0).is_ok());
        assert!(rl.check("k", t0).is_ok());
        assert_eq!(rl.check("k", t0), Err(1));
        assert!(rl.check("k", t0 + TimeDelta::seconds(1)).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let t0 = Utc::now();
        let fw = FixedWindow::new(0, 60);
        let tb = TokenBucket::new(0, 1);
        for _ in 0..1000 {
            assert!(fw.check("k", t0).is_ok());
            assert!(tb.check("k", t0).is_ok());
        }
    }
}
