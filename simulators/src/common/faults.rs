//! Fault injection, deterministic under a seed: per-route error rates, 429 bursts, added
//! latency, hung requests, dropped connections and whole outage windows. Each simulator
//! turns an [`Outcome`] into its vendor's own error shape.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One rule: which requests it applies to and what goes wrong with them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    pub method: Option<String>,
    /// Path glob (`*` matches any run of characters), e.g. `/v1/patients*`. Any when absent.
    pub path: Option<String>,
    /// Probability (0..=1) of answering with one of `error_statuses`.
    pub error_rate: f64,
    /// Statuses to pick from for errors; 500, 502 and 503 when empty.
    pub error_statuses: Vec<u16>,
    /// Probability of a rate-limit answer (429) regardless of the real budget.
    pub rate_limit_rate: f64,
    /// Probability of a hung request: nothing is answered until `hang_ms` passes.
    pub hang_rate: f64,
    /// Probability of a dropped connection: headers go out, then the connection breaks.
    pub drop_rate: f64,
    /// Latency added to every matching request.
    pub latency_ms: u64,
    /// Apply to this many matching requests, then retire the rule. Forever when absent.
    pub remaining: Option<u32>,
}

impl FaultRule {
    /// Every matching request fails with `status`, `times` times.
    pub fn fail_next(path: &str, status: u16, times: u32) -> Self {
        FaultRule {
            path: Some(path.to_string()),
            error_rate: 1.0,
            error_statuses: vec![status],
            remaining: Some(times),
            ..Default::default()
        }
    }

    /// The next `times` requests (any route) are answered 429.
    pub fn rate_limit_burst(times: u32) -> Self {
        FaultRule {
            rate_limit_rate: 1.0,
            remaining: Some(times),
            ..Default::default()
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method));
        let path_ok = self.path.as_deref().is_none_or(|p| glob_match(p, path));
        method_ok && path_ok
    }
}

/// What the fault layer decided for one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Serve normally, after the given delay.
    Pass(Duration),
    /// Answer with this 5xx status.
    Error(u16, Duration),
    /// Answer 429 as the vendor does.
    RateLimited(Duration),
    /// Hold the request for this long (a client with a shorter timeout gives up).
    Hang(Duration),
    /// Break the connection after the status line.
    Drop(Duration),
    /// The whole service is down (503).
    Outage,
}

#[derive(Debug)]
struct FaultState {
    rules: Vec<FaultRule>,
    outage: bool,
    hang: Duration,
    rng: ChaCha8Rng,
}

/// Shared handle to the fault configuration of one simulator.
#[derive(Clone, Debug)]
pub struct FaultHandle {
    state: Arc<Mutex<FaultState>>,
}

impl FaultHandle {
    pub fn new(seed: u64) -> Self {
        FaultHandle {
            state: Arc::new(Mutex::new(FaultState {
                rules: Vec::new(),
                outage: false,
                hang: Duration::from_secs(300),
                rng: ChaCha8Rng::seed_from_u64(seed),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // A poisoned lock only means a test panicked mid-update; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.outage = false;
    }

    pub fn rules(&self) -> Vec<FaultRule> {
        self.lock().rules.clone()
    }

    /// Starts or ends an outage window: every request is answered 503 while it lasts.
    pub fn set_outage(&self, down: bool) {
        self.lock().outage = down;
    }

    pub fn outage(&self) -> bool {
        self.lock().outage
    }

    /// How long a hung request is held before the simulator gives up on it (default 300 s).
    pub fn set_hang_duration(&self, hang: Duration) {
        self.lock().hang = hang;
    }

    /// Decides the fate of one request. Rules are consulted in order; the first that fires wins,
    /// and latency from every matching rule adds up.
    pub fn decide(&self, method: &str, path: &str) -> Outcome {
        let mut s = self.lock();
        if s.outage {
            return Outcome::Outage;
        }
        let hang = s.hang;
        let mut delay = Duration::ZERO;
        let mut outcome = None;
        let FaultState { rules, rng, .. } = &mut *s;
        for rule in rules.iter_mut() {
            if !rule.matches(method, path) || rule.remaining == Some(0) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            delay += Duration::from_millis(rule.latency_ms);
            if outcome.is_some() {
                continue;
            }
            if rng.random_bool(rule.error_rate.clamp(0.0, 1.0)) {
                let statuses: &[u16] = if rule.error_statuses.is_empty() {
                    &[500, 502, 503]
                } else {
                    &rule.error_statuses
                };
                let status = statuses[rng.random_range(0..statuses.len())];
                outcome = Some(Kind::Error(status));
            } else if rng.random_bool(rule.rate_limit_rate.clamp(0.0, 1.0)) {
                outcome = Some(Kind::RateLimited);
            } else if rng.random_bool(rule.hang_rate.clamp(0.0, 1.0)) {
                outcome = Some(Kind::Hang);
            } else if rng.random_bool(rule.drop_rate.clamp(0.0, 1.0)) {
                outcome = Some(Kind::Drop);
            }
        }
        rules.retain(|r| r.remaining != Some(0));
        match outcome {
            None => Outcome::Pass(delay),
            Some(Kind::Error(status)) => Outcome::Error(status, delay),
            Some(Kind::RateLimited) => Outcome::RateLimited(delay),
            Some(Kind::Hang) => Outcome::Hang(hang + delay),
            Some(Kind::Drop) => Outcome::Drop(delay),
        }
    }
}

enum Kind {
    Error(u16),
    RateLimited,
    Hang,
    Drop,
}

/// Glob with `*` as "any run of characters"; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let last = rest.len() - 1;
    for (i, part) in rest.iter().enumerate() {
        if i == last {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_prefixes_and_middles() {
        assert!(glob_match("/v1/patients*", "/v1/patients/12"));
        assert!(glob_match("*/customers", "/r1/v2/abc/customers"));
        assert!(glob_match("/a/*/c", "/a/b/c"));
        assert!(!glob_match("/v1/patients*", "/v1/invoices"));
        assert!(!glob_match("/exact", "/exact/more"));
    }

    #[test]
    fn counted_rules_retire_after_their_budget() {
        let faults = FaultHandle::new(1);
        faults.add(FaultRule::fail_next("/v1/patients*", 502, 2));
        assert_eq!(
            faults.decide("GET", "/v1/patients"),
            Outcome::Error(502, Duration::ZERO)
        );
        assert_eq!(
            faults.decide("GET", "/v1/invoices"),
            Outcome::Pass(Duration::ZERO)
        );
        assert_eq!(
            faults.decide("GET", "/v1/patients/1"),
            Outcome::Error(502, Duration::ZERO)
        );
        assert_eq!(
            faults.decide("GET", "/v1/patients"),
            Outcome::Pass(Duration::ZERO)
        );
        assert!(faults.rules().is_empty());
    }

    #[test]
    fn same_seed_same_faults() {
        let run = |seed| {
            let f = FaultHandle::new(seed);
            f.add(FaultRule {
                error_rate: 0.3,
                ..Default::default()
            });
            (0..200).map(|_| f.decide("GET", "/x")).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let errors = run(7)
            .iter()
            .filter(|o| matches!(o, Outcome::Error(..)))
            .count();
        assert!((30..90).contains(&errors), "about 30% of 200, got {errors}");
    }

    #[test]
    fn outage_wins_and_ends() {
        let f = FaultHandle::new(1);
        f.set_outage(true);
        assert_eq!(f.decide("GET", "/x"), Outcome::Outage);
        f.set_outage(false);
        assert_eq!(f.decide("GET", "/x"), Outcome::Pass(Duration::ZERO));
    }

    #[test]
    fn latency_adds_up_and_method_filters() {
        let f = FaultHandle::new(1);
        f.add(FaultRule {
            latency_ms: 5,
            ..Default::default()
        });
        f.add(FaultRule {
            method: Some("POST".into()),
            latency_ms: 7,
            ..Default::default()
        });
        assert_eq!(
            f.decide("GET", "/x"),
            Outcome::Pass(Duration::from_millis(5))
        );
        assert_eq!(
            f.decide("post", "/x"),
            Outcome::Pass(Duration::from_millis(12))
        );
    }
}
