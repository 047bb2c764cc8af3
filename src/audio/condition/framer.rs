//! The framer: quantizes samples into fixed-size frames of `chunk_ms` and numbers them, each
//! with its position in the stream; only the very last frame may be short.

use bytes::Bytes;

use super::Frame;
use super::quantize::quantize_into;

/// Quantizes samples and collects them into fixed-size frames.
pub(super) struct Framer {
    /// The frame being filled: its first `filled` bytes are quantized samples.
    buf: Vec<u8>,
    filled: usize,
    next_index: u64,
    next_start: u64,
    rate: u32,
}

impl Framer {
    pub(super) fn new(frame_samples: usize, rate: u32) -> Self {
        Framer {
            buf: vec![0; frame_samples.max(1) * 2],
            filled: 0,
            next_index: 0,
            next_start: 0,
            rate,
        }
    }

    pub(super) fn frame_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Samples accepted so far, emitted or pending.
    pub(super) fn total_samples(&self) -> u64 {
        self.next_start + (self.filled / 2) as u64
    }

    /// Quantize `samples` into the pending frame, emitting each frame as it fills.
    pub(super) fn push(&mut self, mut samples: &[f32], out: &mut dyn FnMut(Frame)) {
        while !samples.is_empty() {
            let room = (self.buf.len() - self.filled) / 2;
            let (now, later) = samples.split_at(room.min(samples.len()));
            let end = self.filled + now.len() * 2;
            quantize_into(now, &mut self.buf[self.filled..end]);
            self.filled = end;
            if self.filled == self.buf.len() {
                self.emit(out);
            }
            samples = later;
        }
    }

    /// Emit whatever is pending as a (short) final frame; never an empty one.
    pub(super) fn flush(&mut self, out: &mut dyn FnMut(Frame)) {
        if self.filled > 0 {
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut dyn FnMut(Frame)) {
        let frame = Frame {
            data: Bytes::copy_from_slice(&self.buf[..self.filled]),
            index: self.next_index,
            start_sample: self.next_start,
            sample_rate: self.rate,
        };
        self.next_index += 1;
        self.next_start += (self.filled / 2) as u64;
        self.filled = 0;
        out(frame);
    }
}

#[cfg(test)]
mod tests {
    use crate::audio::condition::Conditioner;
    use crate::audio::condition::test_support::*;

    #[test]
    fn frame_sizes_and_times() {
        let frames = run(&noise(16000 + 100, 5), 1, 16000, 16000, &[4096]);
        assert_eq!(frames.len(), 13);
        assert_eq!(frames[0].samples(), 1280);
        assert_eq!(frames[12].samples(), 16100 - 12 * 1280);
        assert_eq!(frames[1].start_secs(), 0.08);
        assert_eq!(frames[12].end_secs(), 16100.0 / 16000.0);
        for (rate, bytes) in [(8000, 1280), (24000, 3840), (44100, 7056), (48000, 7680)] {
            assert_eq!(
                Conditioner::new(48000, 2, rate, 80).unwrap().frame_bytes(),
                bytes
            );
        }
        assert!(
            run(&[], 1, 48000, 16000, &[1]).is_empty(),
            "no input, no frames"
        );
    }
}
