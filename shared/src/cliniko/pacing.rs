//! Self-pacing under Cliniko's per-user rate limit: a sliding window of at most `limit`
//! requests in any `window`, shared by every clone of a client, plus a "blocked until" set by
//! 429 answers so every clone waits for the reset, not just the one that was refused.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    limit: usize,
    window: Duration,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Pacer {
    /// `limit` requests per `window`; `limit == 0` paces nothing (429 blocks still apply).
    pub fn new(limit: u32, window: Duration) -> Self {
        Pacer {
            limit: limit as usize,
            window,
            state: Mutex::new(PacerState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        // The state is a queue of instants; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until one more request fits, then counts it as sent.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.blocked_until {
                    Some(until) if until > now => Some(until - now),
                    _ => {
                        s.blocked_until = None;
                        if self.limit == 0 {
                            None
                        } else {
                            while s.sent.front().is_some_and(|t| now - *t >= self.window) {
                                s.sent.pop_front();
                            }
                            if s.sent.len() < self.limit {
                                s.sent.push_back(now);
                                None
                            } else {
                                s.sent.front().map(|t| (*t + self.window) - now)
                            }
                        }
                    }
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// After a 429: nobody sends before `wait` has passed.
    pub fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.lock();
        if s.blocked_until.is_none_or(|b| b < until) {
            s.blocked_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_request_over_the_limit_waits_for_the_window() {
        let pacer = Pacer::new(3, Duration::from_millis(300));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(150));
        pacer.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(290),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn zero_means_no_pacing() {
        let pacer = Pacer::new(0, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_block_holds_every_sharer() {
        let pacer = Arc::new(Pacer::new(0, Duration::from_secs(60)));
        pacer.block_for(Duration::from_millis(200));
        let other = Arc::clone(&pacer);
        let start = Instant::now();
        let t = tokio::spawn(async move { other.acquire().await });
        pacer.acquire().await;
        t.await.expect("task ran");
        assert!(start.elapsed() >= Duration::from_millis(190));
        // A shorter block never shortens a longer one.
        pacer.block_for(Duration::from_millis(200));
        pacer.block_for(Duration::from_millis(1));
        let start = Instant::now();
        pacer.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(190));
    }
}
