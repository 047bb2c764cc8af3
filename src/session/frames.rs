//! Frames on the stream's timeline and the queue of those waiting to be sent.
//!
//! A frame's times are stream time (seconds since the stream began), which keeps running
//! across reconnects; the conditioner's own frame times are not used past the feed.

use bytes::Bytes;
use std::collections::VecDeque;
use tokio::time::Instant;

/// A frame of audio on the stream's timeline.
#[derive(Clone, Debug)]
pub struct Frame {
    pub data: Bytes,
    pub start: f64,
    pub end: f64,
    /// Sent before, on a lost connection: not counted or saved again.
    pub replay: bool,
    /// When the audio thread handed it over; `None` for silence flux made itself.
    pub ready: Option<Instant>,
}

impl Frame {
    pub fn secs(&self) -> f64 {
        self.end - self.start
    }
}

/// Frames to send on the current connection, in order: replayed audio first. Knows the
/// stream time of the next frame taken from the source or made of silence.
#[derive(Debug)]
pub struct Queue {
    frames: VecDeque<Frame>,
    /// Seconds of new (not replayed) audio queued: the backlog.
    backlog: f64,
    /// Stream time of the next frame taken from the source or made of silence.
    pub enqueued_until: f64,
    silence: Bytes,
    sample_rate: u32,
}

impl Queue {
    pub fn new(frame_bytes: usize, sample_rate: u32) -> Queue {
        Queue {
            frames: VecDeque::new(),
            backlog: 0.0,
            enqueued_until: 0.0,
            silence: Bytes::from(vec![0u8; frame_bytes]),
            sample_rate: sample_rate.max(1),
        }
    }

    /// Seconds of one full frame.
    pub fn frame_secs(&self) -> f64 {
        self.secs_of(self.silence.len())
    }

    fn secs_of(&self, bytes: usize) -> f64 {
        bytes as f64 / 2.0 / f64::from(self.sample_rate)
    }

    /// Appends input audio after everything enqueued. With `pad`, a short frame (the input's
    /// last) is filled up with silence to a full frame: the stream then ends with silence,
    /// and every frame but the stream's very last is full.
    pub fn push_input(&mut self, data: Bytes, ready: Instant, pad: bool) {
        let data = if pad && data.len() < self.silence.len() {
            let mut full = data.to_vec();
            full.resize(self.silence.len(), 0);
            Bytes::from(full)
        } else {
            data
        };
        let secs = self.secs_of(data.len());
        self.push(Frame {
            data,
            start: self.enqueued_until,
            end: self.enqueued_until + secs,
            replay: false,
            ready: Some(ready),
        });
    }

    /// Appends a frame of silence at `from` (or after everything enqueued, if later).
    pub fn push_silence(&mut self, from: f64) -> f64 {
        let start = from.max(self.enqueued_until);
        let secs = self.frame_secs();
        self.push(Frame {
            data: self.silence.clone(),
            start,
            end: start + secs,
            replay: false,
            ready: None,
        });
        secs
    }

    fn push(&mut self, frame: Frame) {
        self.enqueued_until = frame.end;
        self.backlog += frame.secs();
        self.frames.push_back(frame);
    }

    /// Puts replayed frames before everything queued, in place of any replayed audio still
    /// queued from an earlier connection (the replay buffer holds it too).
    pub fn prepend_replay(&mut self, replay: impl DoubleEndedIterator<Item = Frame>) {
        for mut f in replay.rev() {
            f.replay = true;
            self.frames.push_front(f);
        }
    }

    pub fn front(&self) -> Option<&Frame> {
        self.frames.front()
    }

    pub fn pop(&mut self) -> Option<Frame> {
        let f = self.frames.pop_front()?;
        if self.frames.is_empty() {
            // Start from exact zero again: no rounding drift over hours of frames.
            self.backlog = 0.0;
        } else if !f.replay {
            self.backlog -= f.secs();
        }
        Some(f)
    }

    /// Gives a frame that could not be sent back to the head of the queue.
    pub fn unpop(&mut self, frame: Frame) {
        if !frame.replay {
            self.backlog += frame.secs();
        }
        self.frames.push_front(frame);
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Only replayed audio (or nothing) is queued.
    pub fn only_replay(&self) -> bool {
        self.backlog <= 1e-9 || self.frames.iter().all(|f| f.replay)
    }

    /// Seconds of new audio queued.
    pub fn backlog(&self) -> f64 {
        self.backlog.max(0.0)
    }

    /// Drops every frame not yet sent, replayed audio included (CloseStream is going out).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.backlog = 0.0;
    }

    /// Drops new audio, keeping replayed audio (the server still owes its turn).
    pub fn drop_new(&mut self) {
        self.frames.retain(|f| f.replay);
        self.backlog = 0.0;
    }

    /// Where a connection with nothing to replay starts: the first queued frame, or `sent`.
    pub fn start_or(&self, sent: f64) -> f64 {
        self.frames.front().map_or(sent, |f| f.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_last_frame_is_padded_only_when_asked() {
        let now = Instant::now();
        let mut q = Queue::new(320, 16000); // 10 ms frames
        q.push_input(Bytes::from(vec![1u8; 320]), now, true);
        q.push_input(Bytes::from(vec![1u8; 100]), now, true);
        assert_eq!(q.pop().unwrap().data.len(), 320);
        let last = q.pop().unwrap();
        assert_eq!(last.data.len(), 320);
        assert_eq!(&last.data[..100], &[1u8; 100][..]);
        assert!(last.data[100..].iter().all(|&b| b == 0));
        assert!((last.end - 0.02).abs() < 1e-9);
        q.push_input(Bytes::from(vec![1u8; 100]), now, false);
        assert_eq!(q.pop().unwrap().data.len(), 100);
    }

    #[test]
    fn backlog_counts_new_audio_only() {
        let now = Instant::now();
        let mut q = Queue::new(320, 16000);
        q.push_input(Bytes::from(vec![0u8; 320]), now, false);
        let replayed = Frame {
            data: Bytes::from(vec![0u8; 320]),
            start: 0.0,
            end: 0.01,
            replay: false,
            ready: None,
        };
        q.prepend_replay(vec![replayed].into_iter());
        assert!(q.front().unwrap().replay);
        assert!((q.backlog() - 0.01).abs() < 1e-9);
        q.drop_new();
        assert!(q.only_replay());
        assert_eq!(q.backlog(), 0.0);
        assert!(q.pop().unwrap().replay);
        assert!(q.is_empty());
    }
}
