//! Ending the stream, and the requests that can start it early.
//!
//! Once input is over (or finishing was asked for) and the audio queued is sent, the open
//! turn is ended the best way the server allows: `ForceEndTurn` and its answer, or silence
//! until the turn ends by itself; then `CloseStream`, and reading until the server closes.
//! Finishing early drops audio not yet sent whatever the source's state, but what was sent
//! still ends properly.

use super::run::{FINISH_IDLE_TIMEOUT, Flow, Link, Phase, Run};
use super::{ClientEvent, Control, Event};
use crate::error::FluxError;
use crate::protocol::ClientMessage;
use std::time::Duration;
use tokio::time::Instant;

/// Extra silence beyond eot_timeout_ms when ending a turn without ForceEndTurn.
const PADDING_MARGIN_SECS: f64 = 0.5;

impl Run<'_> {
    /// Once input is over and everything queued is sent, finish the open turn the best way
    /// the server allows.
    pub(super) async fn maybe_finish_input(&mut self) {
        if self.input_open
            || self.phase != Phase::Streaming
            || self.link != Link::Up
            || !self.queue.is_empty()
        {
            return;
        }
        if !self.audio_finished_sent {
            self.audio_finished_sent = true;
            for (at, control) in std::mem::take(&mut self.timed) {
                self.warn(
                    "control_not_applied",
                    format!(
                        "{control:?} was due at {at}s of audio, but the audio ended at {:.2}s",
                        self.sent_until
                    ),
                );
            }
            let reason = self.end_reason.clone();
            self.emit(Event::Client(ClientEvent::AudioFinished {
                reason,
                audio_seconds: self.sent_until,
                frames: self.outcome.totals.frames_sent,
                bytes: self.outcome.totals.bytes_sent,
            }));
        }
        if self.outcome.output_closed {
            self.close_stream().await;
        } else if self.opts.endpoint.capabilities.force_end_turn {
            if self.send_control(ClientMessage::ForceEndTurn).await {
                self.phase = Phase::AwaitForceEnd;
                self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
            }
        } else {
            self.phase = Phase::Padding;
            if self.padding_done() && self.configures.settled() {
                self.close_stream().await;
            }
        }
    }

    /// Padding ends when the server has heard all audio and no turn is open, or when enough
    /// silence has gone for eot_timeout_ms to end any turn.
    pub(super) fn padding_done(&self) -> bool {
        let limit = self.opts.eot_timeout_ms as f64 / 1000.0 + PADDING_MARGIN_SECS;
        let caught_up = self.turns.heard_until() + 0.3 >= self.sent_until - self.padding_sent;
        (!self.turns.is_open() && caught_up) || self.padding_sent >= limit
    }

    pub(super) async fn close_stream(&mut self) {
        self.queue.clear();
        self.close_sent = self.send_control(ClientMessage::CloseStream).await;
        self.phase = Phase::Closing;
        self.deadline = Instant::now() + FINISH_IDLE_TIMEOUT;
    }

    pub(super) fn waiting(&self) -> bool {
        self.link == Link::AwaitConnected
            || (self.link == Link::Up
                && matches!(self.phase, Phase::AwaitForceEnd | Phase::Closing))
            || (self.phase == Phase::Closing && self.link == Link::Down)
    }

    pub(super) async fn on_deadline(&mut self) -> Flow {
        if self.link == Link::AwaitConnected {
            return Flow::Reconnect(format!(
                "the server accepted the connection but sent no Connected message within {}s",
                super::run::CONNECTED_TIMEOUT.as_secs()
            ));
        }
        match self.phase {
            Phase::AwaitForceEnd => {
                self.warn(
                    "force_end_turn_unanswered",
                    format!(
                        "no reply to ForceEndTurn within {}s; closing the stream",
                        FINISH_IDLE_TIMEOUT.as_secs()
                    ),
                );
                self.close_stream().await;
                Flow::Continue
            }
            _ => {
                if self.close_sent {
                    self.warn(
                        "close_unanswered",
                        format!(
                            "the server did not close the stream within {}s of CloseStream; closing it",
                            FINISH_IDLE_TIMEOUT.as_secs()
                        ),
                    );
                }
                if let Some(mut tx) = self.tx.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
                }
                self.finish_unconfirmed("stream_closed");
                if !self.close_sent {
                    self.outcome.error = Some(FluxError::Connection(format!(
                        "the connection broke while the stream was closing{}",
                        self.request_suffix()
                    )));
                }
                Flow::Stop
            }
        }
    }

    pub(super) fn finish_unconfirmed(&mut self, reason: &str) {
        if let Some(t) = self.turns.take_unconfirmed() {
            self.outcome.totals.unconfirmed_turns += 1;
            self.emit(Event::Client(ClientEvent::UnconfirmedTurn {
                turn_index: t.turn_index,
                transcript: t.transcript,
                audio_window_start: t.audio_window_start,
                audio_window_end: t.audio_window_end,
                words: t.words,
                confirmed: false,
                reason: reason.to_string(),
            }));
        }
    }

    // ---- control requests ------------------------------------------------------------

    pub(super) async fn on_control(&mut self, control: Control) -> Flow {
        match control {
            Control::At(at, inner) if at > self.sent_until => {
                self.timed.push((at, *inner));
                Flow::Continue
            }
            Control::At(_, inner) => self.apply_control(*inner).await,
            other => self.apply_control(other).await,
        }
    }

    async fn apply_control(&mut self, control: Control) -> Flow {
        match control {
            Control::Finish if !self.audio_finished_sent => {
                // The user asked to stop now: audio not yet sent is dropped, whether or not
                // the source has already delivered all of it (replayed audio is kept: the
                // server still owes its turn), and the turn in progress is finished as at
                // end of input.
                self.input_open = false;
                self.queue.drop_new();
                self.end_reason = "interrupted".into();
                if self.link == Link::Down && !self.connected_once {
                    return Flow::Stop;
                }
                self.maybe_finish_input().await;
            }
            Control::Finish => {}
            Control::ForceEndTurn => {
                if !self.opts.endpoint.capabilities.force_end_turn {
                    self.warn(
                        "force_end_turn_unsupported",
                        format!(
                            "{} does not support ForceEndTurn; the turn ends when the speaker stops",
                            self.opts.endpoint.provider
                        ),
                    );
                } else if self.phase == Phase::Streaming && self.link == Link::Up {
                    self.send_control(ClientMessage::ForceEndTurn).await;
                }
            }
            Control::Configure(c) => {
                if !self.opts.endpoint.capabilities.configure {
                    self.warn(
                        "configure_unsupported",
                        format!(
                            "{} does not support Configure; reconnect with new flags instead",
                            self.opts.endpoint.provider
                        ),
                    );
                } else {
                    self.configures.push(c);
                    self.send_next_configure().await;
                }
            }
            Control::At(at, inner) => self.timed.push((at, *inner)),
        }
        Flow::Continue
    }

    /// Sends the next queued Configure if none is awaiting its answer. Queued requests still
    /// go out while the stream is ending (before CloseStream), so none is silently dropped.
    pub(super) async fn send_next_configure(&mut self) {
        if self.link != Link::Up || self.phase == Phase::Closing {
            return;
        }
        if let Some(c) = self.configures.next()
            && self.send_control(ClientMessage::Configure(c.clone())).await
        {
            self.configures.sent(c);
        }
    }

    /// Applies timed requests whose stream time has been reached.
    pub(super) async fn release_timed(&mut self) {
        while let Some(i) = self.timed.iter().position(|(at, _)| *at <= self.sent_until) {
            let (_, control) = self.timed.remove(i);
            if self.apply_control(control).await == Flow::Stop {
                return;
            }
        }
    }
}
