//! Audio on its way out: taking frames from the feed (a live source's backlog while
//! disconnected, only a little read-ahead for a file), sending those that are due in batches,
//! the bookkeeping per frame sent (totals, `--save-audio`, replay, the send record), silence
//! for a stalled paced source, and the stall watch.

use super::Feed;
use super::frames::Frame;
use super::run::{Flow, Link, Phase, Run};
use crate::transport::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Audio taken from a live source while disconnected, at most (then the source waits).
const BACKLOG_CAP_SECS: f64 = 60.0;
/// Audio read ahead from a source that is not live (a file) while no connection is ready:
/// enough to start at once, little enough that finishing early drops next to nothing and
/// that the source does not report its end long before its audio has gone.
const READ_AHEAD_SECS: f64 = 1.0;

impl Run<'_> {
    /// Take a frame from the source? While connected, one batch at a time (pacing decides when
    /// it goes); while not, a live source keeps being drained into a bounded backlog, and a
    /// file is only read a little ahead.
    pub(super) fn wants_frame(&self) -> bool {
        if !self.input_open || self.phase != Phase::Streaming {
            return false;
        }
        if self.link == Link::Up {
            return self.queue.only_replay();
        }
        let cap = if self.opts.live_source {
            BACKLOG_CAP_SECS
        } else {
            READ_AHEAD_SECS
        };
        self.queue.backlog() < cap
    }

    pub(super) async fn on_feed(&mut self, item: Option<Feed>) -> Flow {
        match item {
            Some(Feed::Frames { frames, ready }) => {
                let ready = Instant::from_std(ready);
                // Without ForceEndTurn the stream ends with silence: the input's short last
                // frame is filled up to a full one, so only the stream's very last is short.
                let pad = !self.opts.endpoint.capabilities.force_end_turn;
                for frame in frames {
                    self.outcome.totals.input_seconds = frame.end_secs();
                    self.queue.push_input(frame.data, ready, pad);
                }
                self.heard_audio = true;
                self.pacer.follow_source(ready, self.queue.enqueued_until);
                Flow::Continue
            }
            Some(Feed::End { error, note }) => {
                if let Some(note) = note {
                    self.warn("input_note", note);
                }
                if error.is_some() {
                    self.end_reason = "input_error".into();
                }
                self.outcome.input_error = error;
                self.input_ended().await
            }
            None => self.input_ended().await,
        }
    }

    /// The source is done (or gone).
    async fn input_ended(&mut self) -> Flow {
        if !self.input_open {
            return Flow::Continue;
        }
        self.input_open = false;
        if !self.heard_audio && !self.connected_once {
            // No audio at all: nothing to send, so no connection is ever opened.
            return Flow::Stop;
        }
        self.maybe_finish_input().await;
        Flow::Continue
    }

    pub(super) fn can_send(&self) -> bool {
        self.link == Link::Up && !self.queue.is_empty() && self.phase != Phase::Closing
    }

    /// When the next frame may go (see [`super::pacer`]).
    pub(super) fn send_due(&self) -> Instant {
        self.paced_due().unwrap_or_else(Instant::now)
    }

    /// The pacing deadline of the next frame; `None` when it may go at once (unpaced,
    /// replayed audio, or the silence that ends a stream).
    fn paced_due(&self) -> Option<Instant> {
        match self.queue.front() {
            Some(f) if !f.replay && self.phase == Phase::Streaming => self.pacer.due(f.start),
            _ => None,
        }
    }

    /// Sends every frame that is due now, up to a batch, with one flush: at `--fast` (or
    /// after an outage) a wake-up per frame would cost more than the frames themselves. When
    /// the queue runs dry, the next frame is taken from the feed without waiting.
    pub(super) async fn send_due_frames(&mut self, feed: &mut mpsc::Receiver<Feed>) -> Flow {
        const BATCH: usize = 32;
        let now = Instant::now();
        let mut fed = 0;
        self.in_batch.clear();
        while fed < BATCH && self.can_send() {
            let due = self.paced_due();
            if due.is_some_and(|due| due > now) {
                break;
            }
            let Some(frame) = self.queue.pop() else {
                break;
            };
            // Added latency runs from when the frame could first have gone: ready, and due.
            if let (false, Some(ready)) = (frame.replay, frame.ready) {
                self.in_batch.push(due.map_or(ready, |due| due.max(ready)));
            }
            let Some(tx) = self.tx.as_mut() else {
                self.queue.unpop(frame);
                break;
            };
            // A clone shares the bytes: the replay buffer and the saved copy cost nothing.
            if tx.send(Message::Binary(frame.data.clone())).await.is_err() {
                self.tx = None;
                self.queue.unpop(frame);
                return Flow::Reconnect("the connection broke while sending audio".into());
            }
            fed += 1;
            self.after_send(frame).await;
            if self.queue.is_empty() && self.wants_frame() {
                match feed.try_recv() {
                    Ok(item) => {
                        if self.on_feed(Some(item)).await == Flow::Stop {
                            return Flow::Stop;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.on_feed(None).await;
                    }
                }
            }
        }
        if let Some(tx) = self.tx.as_mut()
            && tx.flush().await.is_err()
        {
            self.tx = None;
            return Flow::Reconnect("the connection broke while sending audio".into());
        }
        let written = Instant::now();
        for &start in &self.in_batch {
            self.send_latency
                .record(written.saturating_duration_since(start));
        }
        if self.phase == Phase::Padding && self.padding_done() && self.configures.settled() {
            self.close_stream().await;
        }
        self.maybe_finish_input().await;
        Flow::Continue
    }

    /// Bookkeeping for a frame handed to the transport.
    async fn after_send(&mut self, frame: Frame) {
        self.sent_since_heard = true;
        self.sent_log.record(frame.start, frame.end, Instant::now());
        if frame.replay {
            return;
        }
        if self.phase == Phase::Padding {
            self.padding_sent += frame.secs();
        }
        self.sent_until = frame.end;
        self.outcome.totals.frames_sent += 1;
        self.outcome.totals.bytes_sent += frame.data.len() as u64;
        if let Some(tap) = &self.tap {
            tap.frame(&frame.data);
        }
        self.replay.remember(frame);
        self.reconnect.progress(self.sent_until);
        if !self.timed.is_empty() {
            self.release_timed().await;
        }
    }

    /// A paced source that falls behind (a pause on stdin) gets silence in its place, so
    /// the server's turn timers keep running and an open turn can end.
    pub(super) fn should_fill(&self) -> bool {
        self.pacer.paced()
            && self.input_open
            && self.link == Link::Up
            && self.phase == Phase::Streaming
            && self.queue.is_empty()
            && self.outcome.totals.frames_sent > 0
    }

    pub(super) fn fill_due(&self) -> Instant {
        self.pacer
            .fill_due(self.queue.enqueued_until)
            .unwrap_or_else(Instant::now)
    }

    pub(super) fn fill_silence(&mut self) {
        let from = self.queue.enqueued_until;
        self.outcome.totals.filled_seconds += self.queue.push_silence(from);
    }

    /// Silence after everything sent, to end a turn on a server without ForceEndTurn.
    pub(super) fn queue_silence(&mut self) {
        self.queue.push_silence(self.sent_until);
    }

    pub(super) fn watching_stall(&self) -> bool {
        self.link == Link::Up
            && self.sent_since_heard
            && matches!(self.phase, Phase::Streaming | Phase::Padding)
    }

    pub(super) fn stall_due(&self) -> Instant {
        self.last_heard + self.opts.stall_timeout
    }
}
