//! Connections coming and going: a new connection (first or replacement), the link becoming
//! ready for audio, scheduling the next attempt after a loss, and sending on the pipe.

use super::run::{CONNECTED_TIMEOUT, Flow, Link, Phase, Run};
use super::timeline::{Timeline, round6};
use super::{ClientEvent, Event};
use crate::error::FluxError;
use crate::protocol::ClientMessage;
use crate::protocol::sanitize::sanitize_max as sanitize;
use crate::transport::{Message, PipeTx};
use tokio::time::Instant;

impl Run<'_> {
    pub(super) async fn on_connected(
        &mut self,
        tx: Box<dyn PipeTx>,
        request_id: Option<String>,
    ) -> Flow {
        self.tx = Some(tx);
        self.fatal = None;
        self.last_connect_error = None;
        self.last_heard = Instant::now();
        self.sent_since_heard = false;
        // The new connection's audio starts with the replayed frames, or where the stream is.
        self.timeline = Timeline {
            time: self
                .replay
                .start()
                .unwrap_or_else(|| self.queue.start_or(self.sent_until)),
            turns: self.turns.finished(),
        };
        self.reconnect.connected(self.sent_until);
        if self.connected_once {
            let replayed = self.replay.secs();
            self.queue.prepend_replay(self.replay.frames());
            self.outcome.totals.reconnects += 1;
            let attempt = self.reconnect.attempts();
            self.emit(Event::Client(ClientEvent::Reconnected {
                attempt,
                request_id,
                resume_from: round6(self.timeline.time),
                replayed_seconds: round6(replayed),
                turn_offset: self.timeline.turns,
            }));
            // What was configured on the lost connection is configured again, first.
            self.configures.reconnected();
            // Whatever ending had begun starts again once the replayed audio is through
            // (after CloseStream, a reconnect happens only for a turn still owed: see
            // `on_close`).
            self.phase = Phase::Streaming;
            self.padding_sent = 0.0;
            self.force_end_answered = false;
        } else {
            self.connected_once = true;
            self.outcome.request_id = request_id.clone();
            self.emit(Event::Client(ClientEvent::Connected {
                provider: self.opts.endpoint.provider.to_string(),
                url: crate::provider::redact_url(&self.opts.endpoint.url),
                request_id,
                model: self.opts.model.clone(),
                encoding: "linear16".into(),
                sample_rate: self.opts.sample_rate,
            }));
        }
        if self.opts.endpoint.capabilities.sends_connected {
            self.link = Link::AwaitConnected;
            self.deadline = Instant::now() + CONNECTED_TIMEOUT;
        } else {
            self.link_up().await;
        }
        Flow::Continue
    }

    /// The connection is ready for audio.
    pub(super) async fn link_up(&mut self) {
        self.link = Link::Up;
        // Pacing counts from the link that carries the first audio (see pacer.rs).
        if self.outcome.totals.frames_sent == 0 {
            self.pacer.anchor(Instant::now());
        }
        self.send_next_configure().await;
        self.maybe_finish_input().await;
    }

    /// Decides whether to try again and when; gives up when the budget is spent.
    pub(super) fn schedule_reconnect(&mut self, reason: String) -> Flow {
        self.link = Link::Down;
        let Some(delay) = self.reconnect.next_delay() else {
            self.finish_unconfirmed("connection_lost");
            let max = self.reconnect.max();
            let tries = if max == 0 {
                "reconnecting is disabled (--max-reconnects 0)".to_string()
            } else {
                format!("gave up after {max} reconnect attempt(s)")
            };
            let message = format!(
                "{}; {tries}; {:.2}s of audio were sent{}",
                sanitize(&reason, 400),
                self.sent_until,
                self.request_suffix()
            );
            self.outcome.error = Some(match self.last_connect_error.take() {
                Some(FluxError::Server(_)) => FluxError::Server(message),
                _ => FluxError::Connection(message),
            });
            return Flow::Stop;
        };
        self.retry_at = Instant::now() + delay;
        self.emit(Event::Client(ClientEvent::Reconnecting {
            attempt: self.reconnect.attempts(),
            max_attempts: self.reconnect.max(),
            delay_ms: delay.as_millis() as u64,
            reason: sanitize(&reason, 400),
            audio_seconds: round6(self.sent_until),
            planned: false,
        }));
        Flow::Continue
    }

    /// The transport gave the connection up on purpose (SageMaker's 30-minute cap): the next
    /// one is tried at once, and neither this move nor a healthy budget is spent on it (a
    /// failure to open the next stream counts as usual).
    pub(super) fn move_on(&mut self, reason: String) -> Flow {
        // A stream given up before any new audio went on it is not moving on but going
        // round: count it, so a rotation shorter than a replay cannot loop for ever.
        if !self.reconnect.progressed(self.sent_until) {
            return self.schedule_reconnect(reason);
        }
        self.link = Link::Down;
        self.retry_at = Instant::now();
        self.emit(Event::Client(ClientEvent::Reconnecting {
            attempt: self.reconnect.attempts(),
            max_attempts: self.reconnect.max(),
            delay_ms: 0,
            reason,
            audio_seconds: round6(self.sent_until),
            planned: true,
        }));
        Flow::Continue
    }

    pub(super) async fn send(&mut self, message: Message) -> bool {
        let Some(tx) = self.tx.as_mut() else {
            return false;
        };
        if tx.send(message).await.is_err() || tx.flush().await.is_err() {
            // The pipe is gone; the read side reports why, or the deadline moves on.
            self.tx = None;
            return false;
        }
        true
    }

    pub(super) async fn send_control(&mut self, message: ClientMessage) -> bool {
        self.send(Message::Text(message.to_json())).await
    }
}
