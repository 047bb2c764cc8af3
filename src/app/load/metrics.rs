//! What a load test measures, taken from each stream's events as the session emits them: the
//! stream's state (for the live status), its counts and errors, and the latency samples of
//! every stream together.
//!
//! Each stream has its own [`StreamSink`]; they share one [`Board`]. The client runs every
//! session on one thread, so the board's lock is never contended; it is held only to push a
//! sample or bump a count.

use super::audio::{Recording, speech_from};
use crate::event::{ClientEvent, Event, Sink};
use crate::protocol::{ServerMessage, TurnEvent};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where a stream is, for the live status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum State {
    /// Not started yet (the ramp).
    Waiting = 0,
    Connecting = 1,
    Up = 2,
    Reconnecting = 3,
    /// Ended, successfully.
    Done = 4,
    /// Ended with an error.
    Failed = 5,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Connecting,
            2 => State::Up,
            3 => State::Reconnecting,
            4 => State::Done,
            5 => State::Failed,
            _ => State::Waiting,
        }
    }
}

/// Latency samples of every stream, in milliseconds.
#[derive(Debug, Default, Clone)]
pub(super) struct Samples {
    /// Connection attempt started (the stream's start, or a reconnect's retry) → ready.
    pub connected: Vec<f32>,
    /// A turn's speech was due on the wire → its first TurnInfo arrived.
    pub first_update: Vec<f32>,
    /// The frame holding a turn's end went → its EndOfTurn arrived (`flux.eot_latency`).
    pub eot: Vec<f32>,
}

/// What every stream shares.
pub(super) struct Board {
    states: Vec<AtomicU8>,
    samples: Mutex<Samples>,
    turns: std::sync::atomic::AtomicU64,
}

impl Board {
    pub fn new(streams: usize) -> Board {
        Board {
            states: (0..streams).map(|_| AtomicU8::new(0)).collect(),
            samples: Mutex::default(),
            turns: Default::default(),
        }
    }

    pub fn set(&self, stream: usize, state: State) {
        if let Some(s) = self.states.get(stream) {
            s.store(state as u8, Ordering::Relaxed);
        }
    }

    /// How many streams are in each state, indexed by `State as usize`.
    pub fn census(&self) -> [usize; 6] {
        let mut n = [0; 6];
        for s in &self.states {
            n[State::from_u8(s.load(Ordering::Relaxed)) as usize] += 1;
        }
        n
    }

    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    pub fn samples(&self) -> MutexGuard<'_, Samples> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stream's counts, for its line of the report.
#[derive(Debug, Default, Clone)]
pub(super) struct StreamStats {
    /// Connection attempts: upgrades that succeeded and handshakes or connects that failed.
    pub attempts: u64,
    /// Upgrades that succeeded.
    pub connections: u64,
    pub reconnects: u64,
    pub turns: u64,
    pub unconfirmed_turns: u64,
    /// Errors by kind (see [`error_kind`]).
    pub errors: BTreeMap<String, u64>,
    /// Each connection's `dg-request-id`, where the server sent one.
    pub request_ids: Vec<String>,
}

impl StreamStats {
    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_insert(0) += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// What one stream plays: its recordings from `first` on, looping.
pub(super) struct Program {
    pub recordings: Arc<Vec<Recording>>,
    pub first: usize,
    pub sample_rate: u32,
}

impl Program {
    /// Where speech next begins at or after stream time `t`.
    fn speech_from(&self, t: f64) -> Option<f64> {
        speech_from(&self.recordings, self.first, t, self.sample_rate)
    }
}

/// One stream's sink: turns its session's events into counts and samples.
pub(super) struct StreamSink {
    pub index: usize,
    pub board: Arc<Board>,
    pub stats: StreamStats,
    /// The provider sends `Connected` (the stream is ready then, not at the upgrade).
    pub waits_for_connected: bool,
    pub pace: f64,
    /// What this stream plays (its recordings from `first` on, looping): where speech begins.
    pub program: Program,
    /// When the current connection attempt began.
    attempt_began: Instant,
    /// Wall-clock instant of stream time 0: when the first connection became ready (the
    /// pacer's anchor).
    origin: Option<Instant>,
    /// Stream time already sent when the connection was last lost: turns that began before it
    /// are replayed at once on the next connection, off the real-time schedule.
    replayed_until: f64,
    /// The last turn whose first TurnInfo was measured.
    last_turn_seen: Option<u64>,
    /// The `Error` message of the current connection, already counted.
    server_error_seen: bool,
}

impl StreamSink {
    pub fn new(
        index: usize,
        board: Arc<Board>,
        waits_for_connected: bool,
        pace: f64,
        program: Program,
    ) -> Self {
        board.set(index, State::Connecting);
        StreamSink {
            index,
            board,
            stats: StreamStats::default(),
            waits_for_connected,
            pace,
            program,
            attempt_began: Instant::now(),
            origin: None,
            replayed_until: 0.0,
            last_turn_seen: None,
            server_error_seen: false,
        }
    }

    fn ready(&mut self, now: Instant) {
        self.board.set(self.index, State::Up);
        let ms = now
            .saturating_duration_since(self.attempt_began)
            .as_secs_f64()
            * 1e3;
        self.board.samples().connected.push(ms as f32);
        self.origin.get_or_insert(now);
    }

    fn on_client(&mut self, event: &ClientEvent, now: Instant) {
        match event {
            // The first connection is `Connected`, every later one `Reconnected`.
            ClientEvent::Connected { request_id, .. }
            | ClientEvent::Reconnected { request_id, .. } => {
                self.stats.request_ids.extend(request_id.clone());
                self.stats.attempts += 1;
                self.stats.connections += 1;
                if matches!(event, ClientEvent::Reconnected { .. }) {
                    self.stats.reconnects += 1;
                }
                self.server_error_seen = false;
                if !self.waits_for_connected {
                    self.ready(now);
                }
            }
            ClientEvent::Reconnecting {
                reason,
                delay_ms,
                audio_seconds,
                planned,
                ..
            } => {
                self.board.set(self.index, State::Reconnecting);
                let kind = error_kind(reason);
                if kind.starts_with("handshake") || kind == "connect" || kind == "timeout" {
                    // A failed attempt, never upgraded: it counts as an attempt here.
                    self.stats.attempts += 1;
                }
                // An `Error` message was counted when it arrived; its close is the same error.
                // A planned move to the next stream (SageMaker's cap) is no error at all.
                let counted_already = kind == "server error" && self.server_error_seen;
                if !*planned && !counted_already {
                    self.stats.error(kind);
                }
                self.replayed_until = self.replayed_until.max(*audio_seconds);
                self.attempt_began = now + Duration::from_millis(*delay_ms);
            }
            ClientEvent::EotLatency(l) => {
                self.board.samples().eot.push(l.latency_ms as f32);
            }
            ClientEvent::UnconfirmedTurn { .. } => self.stats.unconfirmed_turns += 1,
            _ => {}
        }
    }

    fn on_server(&mut self, message: &ServerMessage, now: Instant) {
        match message {
            ServerMessage::Connected(_) if self.waits_for_connected => self.ready(now),
            ServerMessage::TurnInfo(t) => {
                if t.event == TurnEvent::EndOfTurn {
                    self.stats.turns += 1;
                    self.board.turns.fetch_add(1, Ordering::Relaxed);
                }
                let new_turn = self.last_turn_seen.is_none_or(|last| t.turn_index > last);
                let speaking = matches!(t.event, TurnEvent::StartOfTurn | TurnEvent::Update)
                    && !t.transcript.is_empty();
                if new_turn && speaking {
                    self.last_turn_seen = Some(t.turn_index);
                    let began = self.program.speech_from(t.audio_window_start);
                    if let (Some(origin), Some(began)) = (self.origin, began)
                        && t.audio_window_start >= self.replayed_until
                    {
                        let due = origin + Duration::from_secs_f64(began / self.pace);
                        let ms = now.saturating_duration_since(due).as_secs_f64() * 1e3;
                        self.board.samples().first_update.push(ms as f32);
                    }
                }
            }
            ServerMessage::Error(n) => {
                self.server_error_seen = true;
                let code = n.code.as_deref().unwrap_or("no code");
                self.stats.error(format!("Error {code}"));
            }
            _ => {}
        }
    }

    /// The session is over: its final error (if any) is counted, and the state set.
    pub fn finish(&mut self, error: Option<&str>) {
        match error {
            Some(message) => {
                let kind = error_kind(message);
                if kind.starts_with("handshake") || kind == "connect" || kind == "timeout" {
                    self.stats.attempts += 1;
                }
                if !(kind == "server error" && self.server_error_seen) {
                    self.stats.error(kind);
                }
                self.board.set(self.index, State::Failed);
            }
            None => self.board.set(self.index, State::Done),
        }
    }
}

impl Sink for StreamSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let now = Instant::now();
        match event {
            Event::Client(c) => self.on_client(c, now),
            Event::Server(r) => self.on_server(&r.message, now),
        }
        Ok(())
    }
}

/// The kind of a connection error, from the session's own words (src/session: connect.rs,
/// incoming.rs, ending.rs): `handshake 429`, `close 1011`, `dropped`, `stall`, `timeout`,
/// `connect`, `server error`, or `other`. These are the reasons the session gives in
/// `flux.reconnecting` and in its final error.
pub(super) fn error_kind(reason: &str) -> String {
    if let Some(rest) = reason.split("refused the connection: HTTP ").nth(1) {
        let status: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return format!("handshake {status}");
    }
    if reason.contains("the server reported") || reason.contains("ended the stream with an error") {
        return "server error".into();
    }
    if reason.contains("sent nothing for") {
        return "stall".into();
    }
    if let Some(rest) = reason
        .split("closed the connection unexpectedly with code ")
        .nth(1)
    {
        let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return format!("close {code}");
    }
    if reason.contains("without a close code")
        || reason.contains("lost the connection")
        || reason.contains("broke while sending")
    {
        return "dropped".into();
    }
    if reason.contains("timed out") {
        return "timeout".into();
    }
    if reason.contains("cannot connect") || reason.contains("refused") {
        return "connect".into();
    }
    "other".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn program() -> Program {
        Program {
            recordings: Arc::new(vec![Recording::all_speech(10.0, 16000)]),
            first: 0,
            sample_rate: 16000,
        }
    }

    fn server(v: serde_json::Value) -> Event {
        Event::Server(ServerMessage::parse(&v.to_string()).unwrap())
    }

    #[test]
    fn errors_are_sorted_by_kind_from_the_sessions_words() {
        let cases = [
            (
                "the server refused the connection: HTTP 429 Too Many Requests. Too many",
                "handshake 429",
            ),
            (
                "the server reported INTERNAL_SERVER_ERROR: x and closed with code 1011",
                "server error",
            ),
            (
                "the server sent nothing for 10.0s while audio was flowing",
                "stall",
            ),
            (
                "the server closed the connection unexpectedly with code 1011 (bye)",
                "close 1011",
            ),
            (
                "the server closed the connection unexpectedly without a close code",
                "dropped",
            ),
            ("lost the connection: reset by peer", "dropped"),
            ("timed out after 15s connecting to 127.0.0.1:1", "timeout"),
            ("something new", "other"),
        ];
        for (reason, kind) in cases {
            assert_eq!(error_kind(reason), kind, "{reason}");
        }
    }

    #[test]
    fn a_stream_counts_attempts_errors_turns_and_latencies() {
        let board = Arc::new(Board::new(1));
        let mut sink = StreamSink::new(0, board.clone(), true, 1.0, program());
        assert_eq!(board.census()[State::Connecting as usize], 1);
        let connected = ClientEvent::Connected {
            provider: "deepgram".into(),
            url: "ws://x".into(),
            request_id: None,
            model: "m".into(),
            encoding: "linear16".into(),
            sample_rate: 16000,
        };
        sink.event(&Event::Client(connected)).unwrap();
        // Ready only at the server's Connected.
        assert!(board.samples().connected.is_empty());
        sink.event(&server(
            json!({"type": "Connected", "request_id": "r", "sequence_id": 0}),
        ))
        .unwrap();
        assert_eq!(board.samples().connected.len(), 1);
        assert_eq!(board.census()[State::Up as usize], 1);
        let turn = |event: &str, index: u64, start: f64| {
            server(
                json!({"type": "TurnInfo", "event": event, "turn_index": index,
                "audio_window_start": start, "audio_window_end": start + 1.0,
                "transcript": "hi", "words": [], "end_of_turn_confidence": 0.9}),
            )
        };
        sink.event(&turn("StartOfTurn", 0, 0.0)).unwrap();
        sink.event(&turn("Update", 0, 0.0)).unwrap();
        sink.event(&turn("EndOfTurn", 0, 0.0)).unwrap();
        assert_eq!(board.samples().first_update.len(), 1, "one per turn");
        sink.event(&Event::Client(ClientEvent::Reconnecting {
            attempt: 1,
            max_attempts: 5,
            delay_ms: 0,
            reason: "the server refused the connection: HTTP 429".into(),
            audio_seconds: 5.0,
            planned: false,
        }))
        .unwrap();
        assert_eq!(board.census()[State::Reconnecting as usize], 1);
        sink.event(&Event::Client(ClientEvent::Reconnected {
            attempt: 1,
            request_id: None,
            resume_from: 4.0,
            replayed_seconds: 1.0,
            turn_offset: 1,
        }))
        .unwrap();
        // A turn in the replayed audio is off the schedule: not measured.
        sink.event(&turn("StartOfTurn", 1, 4.5)).unwrap();
        assert_eq!(board.samples().first_update.len(), 1);
        sink.finish(None);
        assert_eq!(sink.stats.attempts, 3);
        assert_eq!(sink.stats.connections, 2);
        assert_eq!(sink.stats.reconnects, 1);
        assert_eq!(sink.stats.turns, 1);
        assert_eq!(board.turns(), 1);
        assert_eq!(sink.stats.errors.get("handshake 429"), Some(&1));
        assert_eq!(board.census()[State::Done as usize], 1);
    }

    #[test]
    fn a_server_error_and_the_close_after_it_are_one_error() {
        let board = Arc::new(Board::new(1));
        let mut sink = StreamSink::new(0, board, true, 1.0, program());
        sink.event(&server(
            json!({"type": "Error", "code": "NET-0001", "description": "x"}),
        ))
        .unwrap();
        sink.finish(Some(
            "the server ended the stream with an error: NET-0001: x",
        ));
        assert_eq!(sink.stats.error_count(), 1);
        assert_eq!(sink.stats.errors.get("Error NET-0001"), Some(&1));
    }
}
