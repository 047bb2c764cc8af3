//! When to try a new connection, and when to give up: exponential backoff with jitter, a
//! budget of attempts, restored after a healthy stretch of audio; and which server errors are
//! worth a new connection at all.

use crate::protocol::Notice;
use std::time::Duration;

/// Audio on a healthy connection after which the reconnect budget is restored.
pub const HEALTHY_SECS: f64 = 60.0;
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

#[derive(Debug)]
pub struct Reconnect {
    /// Attempts since the last healthy stretch.
    attempts: u32,
    max: u32,
    /// Stream time at which the current connection came up.
    up_since: f64,
    rng: fastrand::Rng,
}

impl Reconnect {
    pub fn new(max: u32) -> Reconnect {
        Reconnect {
            attempts: 0,
            max,
            up_since: 0.0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same, with a seeded jitter (tests).
    #[cfg(test)]
    pub fn seeded(max: u32, seed: u64) -> Reconnect {
        Reconnect {
            rng: fastrand::Rng::with_seed(seed),
            ..Reconnect::new(max)
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// A connection was lost or refused: the delay before the next attempt, or `None` when
    /// the budget is spent. Exponential with jitter, so many clients do not retry in step.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.attempts += 1;
        if self.attempts > self.max {
            return None;
        }
        let exp = BACKOFF_BASE.saturating_mul(1u32 << (self.attempts - 1).min(10));
        Some(exp.min(BACKOFF_MAX).mul_f64(0.5 + self.rng.f64() * 0.5))
    }

    /// A connection came up with `sent` seconds of the stream sent.
    pub fn connected(&mut self, sent: f64) {
        self.up_since = sent;
    }

    /// Whether new audio went out on the current connection (`sent` past where it came up).
    pub fn progressed(&self, sent: f64) -> bool {
        sent > self.up_since
    }

    /// Audio has been sent up to `sent`: after a healthy stretch the budget is whole again.
    pub fn progress(&mut self, sent: f64) {
        if self.attempts > 0 && sent - self.up_since >= HEALTHY_SECS {
            self.attempts = 0;
        }
    }
}

/// A fatal `Error` worth a new connection: the server's own trouble (internal errors,
/// timeouts, overload, a restart), not something flux sent. `close` is the close code that
/// followed it.
pub fn retryable_error(error: &Notice, close: Option<u16>) -> bool {
    let code = error.code.as_deref().unwrap_or("");
    let server_side = ["INTERNAL", "UNAVAILABLE", "TIMEOUT", "OVERLOAD", "NET-"]
        .iter()
        .any(|k| code.contains(k));
    let close_says_retry = matches!(close, Some(1011..=1014));
    let client_fault = ["UNPARSABLE", "INVALID", "UNSUPPORTED", "AUTH", "PERMISSION"]
        .iter()
        .any(|k| code.contains(k));
    !client_fault && (server_side || close_says_retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_then_gives_up() {
        let mut r = Reconnect::seeded(7, 1);
        let mut previous_cap = Duration::ZERO;
        for attempt in 1..=7u32 {
            let d = r.next_delay().expect("within budget");
            let cap = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_MAX);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
            assert!(cap >= previous_cap);
            previous_cap = cap;
        }
        assert_eq!(r.next_delay(), None);
        assert_eq!(Reconnect::new(0).next_delay(), None);
    }

    #[test]
    fn a_healthy_minute_restores_the_budget() {
        let mut r = Reconnect::seeded(1, 2);
        assert!(r.next_delay().is_some());
        r.connected(10.0);
        r.progress(69.0);
        assert_eq!(r.attempts(), 1);
        r.progress(70.0);
        assert_eq!(r.attempts(), 0);
        assert!(!r.progressed(10.0) && r.progressed(10.1));
        assert!(r.next_delay().is_some());
    }

    #[test]
    fn retryable_errors_are_the_servers_own_trouble() {
        let n = |c: &str| Notice::new(c, "d");
        assert!(retryable_error(&n("INTERNAL_SERVER_ERROR"), None));
        assert!(retryable_error(&n("SOMETHING"), Some(1011)));
        assert!(!retryable_error(&n("SOMETHING"), None));
        assert!(!retryable_error(
            &n("UNPARSABLE_CLIENT_MESSAGE"),
            Some(1011)
        ));
    }
}
