//! End-of-turn latency, measured from the events a sink sees.
//!
//! The session does not report when each frame left, but it paces frames by a fixed clock:
//! frame `k` (stream time `k × frame`) goes at `origin + k × frame / pace`, where `origin` is
//! the moment the link came up — right after the server's `Connected` (Deepgram), or right
//! after the upgrade when a provider sends none (Cloudflare). The sink sees both of those
//! events as they happen, so it can tell when the audio up to any stream time was sent:
//! when the frame holding that time went. After a reconnect the open turn's audio and any
//! backlog go out at once, so audio from `resume_from` on was sent no earlier than the
//! `flux.reconnected` event.
//!
//! This holds for paced streams whose source keeps up (files, stdin from a file); with
//! `--fast` there is no clock to measure against, which is why `--max-eot-latency-ms`
//! refuses it.

use crate::event::{ClientEvent, Event, TurnLatency};
use crate::protocol::{ServerMessage, TurnEvent};
use std::time::Instant;

/// Tells when audio was sent, from the session's events.
#[derive(Debug)]
pub struct SendClock {
    pace: f64,
    frame_secs: f64,
    origin: Option<Instant>,
    /// The origin came from the server's `Connected`: later events do not move it.
    origin_final: bool,
    /// (stream time a reconnect resumed from, when it came up).
    bursts: Vec<(f64, Instant)>,
}

impl SendClock {
    pub fn new(pace: f64, frame_secs: f64) -> SendClock {
        SendClock {
            pace: if pace > 0.0 { pace } else { 1.0 },
            frame_secs: frame_secs.max(1e-3),
            origin: None,
            origin_final: false,
            bursts: Vec::new(),
        }
    }

    /// Follows one event seen at `now`; returns the latency when it is an EndOfTurn.
    pub fn observe(&mut self, event: &Event, now: Instant) -> Option<TurnLatency> {
        match event {
            Event::Client(ClientEvent::Connected { .. }) if self.origin.is_none() => {
                self.origin = Some(now);
            }
            Event::Client(ClientEvent::Reconnected { resume_from, .. }) => {
                self.bursts.push((*resume_from, now));
            }
            Event::Server(r) => match &r.message {
                ServerMessage::Connected(_) if !self.origin_final => {
                    self.origin = Some(now);
                    self.origin_final = true;
                }
                ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => {
                    // Audio flows once a connection is up: no later `Connected` may move
                    // the origin (a reconnect's is not the stream's start).
                    self.origin_final = true;
                    let sent = self.sent_at(t.audio_window_end)?;
                    let latency = now.saturating_duration_since(sent);
                    return Some(TurnLatency {
                        turn_index: t.turn_index,
                        audio_window_end: t.audio_window_end,
                        latency_ms: (latency.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
                    });
                }
                ServerMessage::TurnInfo(_) => self.origin_final = true,
                _ => {}
            },
            _ => {}
        }
        None
    }

    /// When the frame holding stream time `t` was sent.
    fn sent_at(&self, t: f64) -> Option<Instant> {
        let origin = self.origin?;
        // The frame that ends at or after `t` (a small slack absorbs float noise at edges).
        let k = ((t / self.frame_secs) - 1e-6).ceil().max(1.0) - 1.0;
        let paced = origin + std::time::Duration::from_secs_f64(k * self.frame_secs / self.pace);
        let burst = self
            .bursts
            .iter()
            .filter(|(from, _)| *from <= t)
            .map(|(_, at)| *at)
            .max();
        Some(burst.map_or(paced, |b| b.max(paced)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;
    use std::time::Duration;

    fn server(json: &str) -> Event {
        Event::Server(ServerMessage::parse(json).unwrap())
    }

    fn eot(index: u64, end: f64) -> Event {
        server(&format!(
            r#"{{"type":"TurnInfo","event":"EndOfTurn","turn_index":{index},"audio_window_end":{end},"transcript":"x"}}"#
        ))
    }

    fn connected_client() -> Event {
        Event::Client(ClientEvent::Connected {
            provider: "deepgram".into(),
            url: "ws://x".into(),
            request_id: None,
            model: "m".into(),
            encoding: "linear16".into(),
            sample_rate: 16000,
        })
    }

    #[test]
    fn measures_from_the_frame_that_holds_the_turn_end() {
        let t0 = Instant::now();
        let mut c = SendClock::new(1.0, 0.08);
        c.observe(&connected_client(), t0);
        c.observe(
            &server(r#"{"type":"Connected","request_id":"r","sequence_id":0}"#),
            t0 + Duration::from_millis(50),
        );
        // The turn ends at 1.0 s: the frame 0.96–1.04 went at origin + 0.96 s.
        let l = c
            .observe(&eot(0, 1.0), t0 + Duration::from_millis(50 + 960 + 200))
            .unwrap();
        assert_eq!(l.turn_index, 0);
        assert!((l.latency_ms - 200.0).abs() < 0.2, "{l:?}");
        // Exactly on a frame edge: 1.28 s is the end of the frame that starts at 1.20 s.
        let l = c
            .observe(&eot(1, 1.28), t0 + Duration::from_millis(50 + 1200 + 30))
            .unwrap();
        assert!((l.latency_ms - 30.0).abs() < 0.2, "{l:?}");
    }

    #[test]
    fn without_a_server_connected_the_upgrade_is_the_origin_and_pace_scales() {
        let t0 = Instant::now();
        let mut c = SendClock::new(2.0, 0.1);
        c.observe(&connected_client(), t0);
        let l = c
            .observe(&eot(0, 2.0), t0 + Duration::from_millis(950 + 100))
            .unwrap();
        assert!((l.latency_ms - 100.0).abs() < 0.2, "{l:?}");
    }

    #[test]
    fn audio_resent_after_a_reconnect_counts_from_the_reconnect() {
        let t0 = Instant::now();
        let mut c = SendClock::new(1.0, 0.08);
        c.observe(&connected_client(), t0);
        c.observe(
            &Event::Client(ClientEvent::Reconnected {
                attempt: 1,
                request_id: None,
                resume_from: 2.0,
                replayed_seconds: 1.0,
                turn_offset: 1,
            }),
            t0 + Duration::from_secs(5),
        );
        let l = c
            .observe(&eot(1, 3.0), t0 + Duration::from_millis(5300))
            .unwrap();
        assert!((l.latency_ms - 300.0).abs() < 0.2, "{l:?}");
        // Before any connection there is nothing to measure against.
        let mut fresh = SendClock::new(1.0, 0.08);
        assert!(fresh.observe(&eot(0, 1.0), t0).is_none());
    }
}
