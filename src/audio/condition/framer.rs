//! The framer: quantizes samples into fixed-size frames of `chunk_ms` and numbers them, each
//! with its position in the stream; only the very last frame may be short.

use bytes::BytesMut;

use super::Frame;
use super::quantize::quantize_into;

/// Bytes of frames that share one allocation (at least one frame's worth). Frames are split
/// off a slab this size, so the thread that frees them (the session's, after sending) frees
/// one buffer per slab instead of one per frame; a frame keeps its slab alive until its
/// neighbours are sent too, so slabs stay small: twelve 80 ms frames at 16 kHz, about 1 s.
const SLAB_BYTES: usize = 32 * 1024;

/// Samples converted at a time on their way into the slab.
const STAGE: usize = 256;

/// Quantizes samples and collects them into fixed-size frames.
pub(super) struct Framer {
    /// The frame being filled (its length is the bytes filled so far), at the front of what
    /// is left of the current slab.
    buf: BytesMut,
    frame_bytes: usize,
    next_index: u64,
    next_start: u64,
    rate: u32,
}

impl Framer {
    pub(super) fn new(frame_samples: usize, rate: u32) -> Self {
        Framer {
            buf: BytesMut::new(),
            frame_bytes: frame_samples.max(1) * 2,
            next_index: 0,
            next_start: 0,
            rate,
        }
    }

    pub(super) fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// Samples accepted so far, emitted or pending.
    pub(super) fn total_samples(&self) -> u64 {
        self.next_start + (self.buf.len() / 2) as u64
    }

    /// Quantize `samples` into the pending frame, emitting each frame as it fills.
    pub(super) fn push(&mut self, samples: &[f32], out: &mut dyn FnMut(Frame)) {
        self.fill(samples, out, quantize_into);
    }

    /// Samples already quantized (the integer resampler's output) into the pending frame,
    /// emitting each frame as it fills.
    pub(super) fn push_pcm(&mut self, samples: &[i16], out: &mut dyn FnMut(Frame)) {
        self.fill(samples, out, |now, bytes| {
            for (b, &v) in bytes.chunks_exact_mut(2).zip(now) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        });
    }

    /// Write `samples` through `write` (which fills exactly two bytes per sample) into the
    /// pending frame, emitting each frame as it fills.
    fn fill<T>(
        &mut self,
        mut samples: &[T],
        out: &mut dyn FnMut(Frame),
        write: impl Fn(&[T], &mut [u8]),
    ) {
        while !samples.is_empty() {
            if self.buf.capacity() < self.frame_bytes {
                // A new slab: what is left of the old one cannot hold a whole frame. Only
                // when nothing is pending (the capacity left is always a whole number of
                // frames), so no bytes are carried over.
                let frames = (SLAB_BYTES / self.frame_bytes).max(1);
                self.buf = BytesMut::with_capacity(frames * self.frame_bytes);
            }
            let room = (self.frame_bytes - self.buf.len()) / 2;
            let (now, later) = samples.split_at(room.min(samples.len()));
            // Through a small buffer on the stack rather than `resize` and write in place:
            // zero-filling the slab first cost a pass over it (glibc's `rep stosb`).
            let mut bytes = [0u8; 2 * STAGE];
            for piece in now.chunks(STAGE) {
                let bytes = &mut bytes[..2 * piece.len()];
                write(piece, bytes);
                self.buf.extend_from_slice(bytes);
            }
            if self.buf.len() == self.frame_bytes {
                self.emit(out);
            }
            samples = later;
        }
    }

    /// Emit whatever is pending as a (short) final frame; never an empty one.
    pub(super) fn flush(&mut self, out: &mut dyn FnMut(Frame)) {
        if !self.buf.is_empty() {
            self.emit(out);
        }
    }

    fn emit(&mut self, out: &mut dyn FnMut(Frame)) {
        let filled = self.buf.len();
        let frame = Frame {
            data: self.buf.split_to(filled).freeze(),
            index: self.next_index,
            start_sample: self.next_start,
            sample_rate: self.rate,
        };
        self.next_index += 1;
        self.next_start += (filled / 2) as u64;
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
