//! What the server says: messages (moved onto the stream's timeline, tracked, passed to the
//! sink, and timed: an EndOfTurn's latency against the send record), closes and losses.

use super::reconnect::retryable_error;
use super::run::{FINISH_IDLE_TIMEOUT, Flow, Link, Phase, Run};
use super::{ClientEvent, Event};
use crate::error::FluxError;
use crate::event::TurnLatency;
use crate::protocol::sanitize::sanitize_max as sanitize;
use crate::protocol::{Received, ServerMessage, Trigger, TurnEvent};
use crate::transport::{Broken, Message};
use tokio::time::Instant;

impl Run<'_> {
    pub(super) async fn on_incoming(&mut self, incoming: Option<Result<Message, Broken>>) -> Flow {
        match incoming {
            Some(Ok(Message::Text(text))) => self.on_text(&text).await,
            Some(Ok(Message::Close { code, reason })) => self.on_close(code, &reason),
            Some(Ok(Message::Binary(_))) => {
                self.warn(
                    "unexpected_binary_message",
                    "the server sent a binary message; Flux sends only JSON text, so it was skipped"
                        .into(),
                );
                Flow::Continue
            }
            Some(Err(e)) => self.on_lost(&e),
            None => self.on_close(None, ""),
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        self.last_heard = Instant::now();
        self.sent_since_heard = false;
        let received = match ServerMessage::parse(text) {
            Ok(r) => r,
            Err(e) => {
                self.warn(
                    "unparsable_server_message",
                    format!("{e}; the message was skipped: {}", sanitize(text, 200)),
                );
                return Flow::Continue;
            }
        };
        let received = self.timeline.shift(received);
        let is_connected = matches!(received.message, ServerMessage::Connected(_));
        let answers_force_end = answers_force_end(&received.message);
        let end_of_turn = matches!(&received.message,
            ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn);
        match &received.message {
            ServerMessage::ConfigureSuccess(_) => self.configures.succeeded(),
            ServerMessage::ConfigureFailure(_) => self.configures.failed(),
            // Some proxies and self-hosted builds drop the request id header: the greeting
            // still carries it.
            ServerMessage::Connected(c) if self.outcome.request_id.is_none() => {
                self.outcome.request_id = Some(c.request_id.clone()).filter(|id| !id.is_empty());
            }
            _ => {}
        }
        let latency = self.eot_latency(&received);
        self.on_server(received);
        // Received → parsed, tracked and written out (the sinks flush each line).
        self.output_latency.record(self.last_heard.elapsed());
        if let Some(latency) = latency {
            self.emit(Event::Client(ClientEvent::EotLatency(latency)));
        }
        self.replay.trim(
            self.turns.is_open(),
            self.turns.last_end(),
            self.turns.heard_until(),
        );

        if self.link == Link::AwaitConnected && is_connected {
            self.link_up().await;
        }
        self.send_next_configure().await;
        match self.phase {
            Phase::AwaitForceEnd if answers_force_end || self.force_end_answered => {
                self.force_end_answered = true;
                if self.configures.settled() {
                    self.close_stream().await;
                } else {
                    self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
                }
            }
            Phase::AwaitForceEnd | Phase::Closing => {
                self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
            }
            Phase::Padding if end_of_turn && !self.turns.is_open() => {
                self.queue.drop_new();
                self.close_stream().await;
            }
            _ => {}
        }
        if self.outcome.output_closed && self.input_open {
            // The reader went away: stop sending and leave quietly.
            self.input_open = false;
            self.queue.drop_new();
            self.end_reason = "output_closed".into();
            self.maybe_finish_input().await;
        }
        Flow::Continue
    }

    /// An EndOfTurn's latency: from when the frame holding its audio's end went to now (it
    /// arrived at `last_heard`).
    fn eot_latency(&self, received: &Received) -> Option<TurnLatency> {
        let ServerMessage::TurnInfo(t) = &received.message else {
            return None;
        };
        if t.event != TurnEvent::EndOfTurn {
            return None;
        }
        let sent = self.sent_log.sent_at(t.audio_window_end)?;
        let latency = self.last_heard.saturating_duration_since(sent);
        Some(TurnLatency {
            turn_index: t.turn_index,
            audio_window_end: t.audio_window_end,
            latency_ms: (latency.as_secs_f64() * 10_000.0).round() / 10.0,
        })
    }

    fn on_server(&mut self, received: Received) {
        match &received.message {
            ServerMessage::TurnInfo(t) => self.turns.observe(t),
            ServerMessage::Error(n) => self.fatal = Some(n.clone()),
            _ => {}
        }
        self.emit(Event::Server(received));
    }

    /// The server closed the pipe (with a close message, or just EOF).
    pub(super) fn on_close(&mut self, code: Option<u16>, reason: &str) -> Flow {
        let how = match code {
            Some(c) => format!("with code {c}{}", reason_suffix(reason)),
            None => "without a close code".to_string(),
        };
        if let Some(fatal) = self.fatal.clone() {
            let retryable = retryable_error(&fatal, code);
            if retryable && !self.close_sent {
                // If the retries run out, the server's error is why: exit 6, not 4.
                self.last_connect_error = Some(FluxError::Server(String::new()));
                return Flow::Reconnect(format!(
                    "the server reported {} and closed {how}",
                    sanitize(&fatal.summary(), 300)
                ));
            }
            self.finish_unconfirmed("server_error");
            // How it closed says more on some providers (SageMaker's ModelStreamError code).
            self.outcome.error = Some(FluxError::Server(format!(
                "the server ended the stream with an error: {}, and closed {how}{}",
                sanitize(&fatal.summary(), 300),
                self.request_suffix()
            )));
            return Flow::Stop;
        }
        // 1005 is "no status received": a close frame without a code.
        let clean = matches!(code, None | Some(1000) | Some(1005));
        if self.close_sent && clean {
            // Flux closes without a status code after CloseStream: that is success.
            self.finish_unconfirmed("stream_closed");
            return Flow::Stop;
        }
        if self.close_sent && self.owes_more() {
            // Cut off after CloseStream (SageMaker's cap, a container that failed) with a
            // turn still owed: a new connection gets its audio again and ends it properly.
            self.close_sent = false;
            self.phase = Phase::Streaming;
            return Flow::Reconnect(format!(
                "the server closed the connection {how} before the open turn ended"
            ));
        }
        if self.close_sent {
            self.finish_unconfirmed("connection_lost");
            self.outcome.error = Some(FluxError::Connection(format!(
                "the server closed the connection {how} while the stream was closing{}",
                self.request_suffix()
            )));
            return Flow::Stop;
        }
        Flow::Reconnect(format!(
            "the server closed the connection unexpectedly {how}"
        ))
    }

    /// A turn is open, or audio sent has not been reported on yet.
    fn owes_more(&self) -> bool {
        let unheard = self.turns.heard_until() + 0.3 < self.sent_until - self.padding_sent;
        self.turns.is_open() || unheard
    }

    fn on_lost(&mut self, broken: &Broken) -> Flow {
        if self.fatal.is_some() {
            return self.on_close(None, "");
        }
        if self.close_sent {
            self.finish_unconfirmed("stream_closed");
            return Flow::Stop;
        }
        if broken.planned {
            return Flow::MoveOn(sanitize(&broken.detail, 200));
        }
        Flow::Reconnect(format!(
            "lost the connection: {}",
            sanitize(&broken.detail, 200)
        ))
    }
}

/// Does this message answer the ForceEndTurn flux sent?
fn answers_force_end(message: &ServerMessage) -> bool {
    match message {
        // Servers before August 2026 send no trigger at all.
        ServerMessage::TurnInfo(t) if t.event == TurnEvent::EndOfTurn => {
            matches!(t.trigger, None | Some(Trigger::Manual))
        }
        ServerMessage::Warning(_) => true,
        _ => false,
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", sanitize(reason, 200))
    }
}
