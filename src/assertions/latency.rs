//! End-of-turn latency for `--max-eot-latency-ms`, as the session measured it.
//!
//! The session records when each frame was really handed to the transport and, when an
//! EndOfTurn arrives, reports how long after the frame holding its `audio_window_end` went
//! (`flux.eot_latency`, right after the EndOfTurn). Assertions only read those events: there
//! is one measure, shared with anything else that wants it, and no second copy of the pacing
//! rule here. After a reconnect, audio sent again is measured from when it went again.

use crate::event::{ClientEvent, Event, TurnLatency};
use std::time::Instant;

/// Collects the session's end-of-turn latencies from its events.
#[derive(Debug, Default)]
pub struct SendClock;

impl SendClock {
    /// The arguments (the pace and the frame length) are no longer needed: the session
    /// measures against its own send record. Kept so callers need not change.
    pub fn new(_pace: f64, _frame_secs: f64) -> SendClock {
        SendClock
    }

    /// Follows one event; returns the latency the session measured when it is one.
    pub fn observe(&mut self, event: &Event, _now: Instant) -> Option<TurnLatency> {
        match event {
            Event::Client(ClientEvent::EotLatency(l)) => Some(l.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    #[test]
    fn reads_the_sessions_measure_and_nothing_else() {
        let mut c = SendClock::new(1.0, 0.08);
        let now = Instant::now();
        let eot = Event::Server(
            ServerMessage::parse(
                r#"{"type":"TurnInfo","event":"EndOfTurn","turn_index":0,"audio_window_end":1.0,"transcript":"x"}"#,
            )
            .unwrap(),
        );
        assert!(c.observe(&eot, now).is_none());
        let measured = TurnLatency {
            turn_index: 0,
            audio_window_end: 1.0,
            latency_ms: 212.5,
        };
        let got = c.observe(
            &Event::Client(ClientEvent::EotLatency(measured.clone())),
            now,
        );
        assert_eq!(got, Some(measured));
    }
}
