//! The open turn's audio, kept for sending again after a lost connection.
//!
//! Every frame sent since the last finished turn stays here, up to [`REPLAY_CAP_SECS`] (a turn
//! longer than that loses its oldest audio on reconnect, with a warning elsewhere); between
//! turns only a short pre-roll before what the server has reported on is kept, since a turn
//! may be starting that the server has not announced yet.

use super::frames::Frame;
use std::collections::VecDeque;

/// Most audio kept for replay; the cap keeps memory flat (1.9 MB at 16 kHz).
pub const REPLAY_CAP_SECS: f64 = 60.0;
/// Audio kept before the server's last report when no turn is open.
pub const REPLAY_PRE_ROLL_SECS: f64 = 1.0;

#[derive(Debug, Default)]
pub struct Replay {
    frames: VecDeque<Frame>,
    /// Seconds of audio held, kept as frames come and go (summing per frame would cost time
    /// in proportion to the buffer on the hot path).
    secs: f64,
}

impl Replay {
    /// Keeps a sent frame, within the cap (oldest audio goes first).
    pub fn remember(&mut self, frame: Frame) {
        self.secs += frame.secs();
        self.frames.push_back(frame);
        while self.secs > REPLAY_CAP_SECS {
            match self.frames.pop_front() {
                Some(f) => self.secs -= f.secs(),
                None => break,
            }
        }
    }

    /// Drops what the server has finished with: everything up to the last finished turn
    /// (`last_end`) or, with no turn open, all but a pre-roll before `heard_until`.
    pub fn trim(&mut self, turn_open: bool, last_end: f64, heard_until: f64) {
        let keep_from = if turn_open {
            last_end
        } else {
            last_end.max(heard_until - REPLAY_PRE_ROLL_SECS)
        };
        while self.frames.front().is_some_and(|f| f.end <= keep_from) {
            if let Some(f) = self.frames.pop_front() {
                self.secs -= f.secs();
            }
        }
    }

    /// Where the held audio starts, if any is held.
    pub fn start(&self) -> Option<f64> {
        self.frames.front().map(|f| f.start)
    }

    pub fn secs(&self) -> f64 {
        self.secs.max(0.0)
    }

    /// The held frames, oldest first (cheap clones: the audio is shared).
    pub fn frames(&self) -> impl DoubleEndedIterator<Item = Frame> + '_ {
        self.frames.iter().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(start: f64, secs: f64) -> Frame {
        Frame {
            data: Bytes::new(),
            start,
            end: start + secs,
            replay: false,
            ready: None,
        }
    }

    #[test]
    fn keeps_the_open_turn_and_a_pre_roll_between_turns() {
        let mut r = Replay::default();
        // Frames of 1/8 s: exact in binary, so the edges compare exactly.
        for k in 0..50 {
            r.remember(frame(k as f64 * 0.125, 0.125));
        }
        // A turn is open since the last one ended at 2.0: everything after stays.
        r.trim(true, 2.0, 4.0);
        assert!((r.start().unwrap() - 2.0).abs() < 1e-9);
        // No turn open, heard until 4.5: one second of pre-roll stays.
        r.trim(false, 2.0, 4.5);
        assert!((r.start().unwrap() - 3.5).abs() < 1e-9);
        assert!((r.secs() - 2.75).abs() < 1e-9);
        assert_eq!(r.frames().count(), 22);
    }

    #[test]
    fn the_cap_drops_the_oldest_audio() {
        let mut r = Replay::default();
        for k in 0..70 {
            r.remember(frame(k as f64, 1.0));
        }
        assert!(r.secs() <= REPLAY_CAP_SECS);
        assert_eq!(r.start(), Some(10.0));
    }
}
