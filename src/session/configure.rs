//! Mid-stream Configure requests: one in flight at a time (Flux caps un-acked Configures),
//! later ones queued; what succeeded is merged (later wins) so that one message re-applies
//! everything on a new connection; queued requests still go out before CloseStream.

use crate::protocol::{Configure, Thresholds};
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct Configures {
    queued: VecDeque<Configure>,
    in_flight: Option<Configure>,
    /// Every successful Configure merged.
    applied: Option<Configure>,
}

impl Configures {
    pub fn push(&mut self, c: Configure) {
        self.queued.push_back(c);
    }

    /// The next request to send, if none is awaiting its answer. Call [`Self::sent`] once
    /// it is on its way; a request that could not be sent is dropped with its connection.
    pub fn next(&mut self) -> Option<Configure> {
        if self.in_flight.is_some() {
            return None;
        }
        self.queued.pop_front()
    }

    pub fn sent(&mut self, c: Configure) {
        self.in_flight = Some(c);
    }

    /// ConfigureSuccess: the request in flight is now part of the configuration.
    pub fn succeeded(&mut self) {
        if let Some(c) = self.in_flight.take() {
            self.applied = Some(merge(self.applied.take(), c));
        }
    }

    /// ConfigureFailure: the previous configuration stays.
    pub fn failed(&mut self) {
        self.in_flight = None;
    }

    /// A new connection: what was configured (and what was in flight) goes first.
    pub fn reconnected(&mut self) {
        if let Some(c) = self.in_flight.take() {
            self.queued.push_front(c);
        }
        if let Some(applied) = self.applied.clone() {
            self.queued.push_front(applied);
        }
    }

    /// Every request sent has been answered and none is queued.
    pub fn settled(&self) -> bool {
        self.in_flight.is_none() && self.queued.is_empty()
    }
}

/// Merges a successful Configure into the configuration applied so far (later wins; lists
/// replace).
pub fn merge(applied: Option<Configure>, next: Configure) -> Configure {
    let Some(mut base) = applied else {
        return next;
    };
    if let Some(t) = next.thresholds {
        let b = base.thresholds.get_or_insert_with(Thresholds::default);
        b.eot_threshold = t.eot_threshold.or(b.eot_threshold);
        b.eager_eot_threshold = t.eager_eot_threshold.or(b.eager_eot_threshold);
        b.eot_timeout_ms = t.eot_timeout_ms.or(b.eot_timeout_ms);
    }
    base.keyterms = next.keyterms.or(base.keyterms);
    base.language_hints = next.language_hints.or(base.language_hints);
    base.numerals = next.numerals.or(base.numerals);
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(x: f64) -> Configure {
        Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(x),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn one_in_flight_then_the_next_and_a_reconnect_reapplies_all() {
        let mut c = Configures::default();
        c.push(threshold(0.6));
        c.push(threshold(0.7));
        let first = c.next().unwrap();
        c.sent(first);
        assert!(c.next().is_none(), "one in flight at a time");
        c.succeeded();
        let second = c.next().unwrap();
        c.sent(second);
        assert!(!c.settled());
        // The connection drops with the second in flight: both go again, merged first.
        c.reconnected();
        let again = c.next().unwrap();
        assert_eq!(again.thresholds.as_ref().unwrap().eot_threshold, Some(0.6));
        c.sent(again);
        c.failed();
        assert_eq!(
            c.next().unwrap().thresholds.unwrap().eot_threshold,
            Some(0.7)
        );
        assert!(c.settled());
    }

    #[test]
    fn configures_merge_later_wins_lists_replace() {
        let a = Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.8),
                eot_timeout_ms: Some(6000),
                ..Default::default()
            }),
            keyterms: Some(vec!["x".into()]),
            ..Default::default()
        };
        let b = Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.9),
                ..Default::default()
            }),
            keyterms: Some(vec![]),
            numerals: Some(true),
            ..Default::default()
        };
        let m = merge(Some(a), b);
        let t = m.thresholds.unwrap();
        assert_eq!((t.eot_threshold, t.eot_timeout_ms), (Some(0.9), Some(6000)));
        assert_eq!(m.keyterms, Some(vec![]));
        assert_eq!(m.numerals, Some(true));
    }
}
