//! The hand-over between the audio callback and the audio thread: a preallocated lock-free
//! single-producer single-consumer ring (rtrb) of interleaved f32 samples, plus a few atomics.
//!
//! The callback side ([`Writer::push`]) runs on the driver's real-time thread, so it takes no
//! locks, allocates nothing, never blocks and never indexes: it copies what fits and counts
//! what does not. Only whole frames are written or dropped, so channels never shift.
//! The reader side ([`Reader`]) runs on flux's audio thread and may block, allocate and wait.

use cpal::{FromSample, Sample};
use rtrb::{Consumer, Producer, RingBuffer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

/// State both sides see. Everything the callback touches is an atomic or set-once.
#[derive(Debug)]
pub struct Shared {
    /// Interleaved channels per frame.
    pub channels: usize,
    /// Capture stops after this many frames of captured audio (`--duration`); `u64::MAX` means
    /// no limit. Counted in device frames, so an unpaced device stops exactly on time.
    pub limit: u64,
    /// Frames the device delivered before the limit (the position in captured audio,
    /// including frames that were dropped).
    pub captured: AtomicU64,
    /// Frames lost because the ring was full (the reader fell behind). Only frames before the
    /// limit count: audio nobody asked for is not "lost".
    pub dropped: AtomicU64,
    /// Callbacks that lost audio: how many gaps the stream has.
    pub gaps: AtomicU64,
    /// Set by the callback once `captured` reached `limit`; everything before it is in the
    /// ring (Release/Acquire orders it after the ring writes).
    pub reached_limit: AtomicBool,
    /// The reader's thread, unparked after every write so it wakes as soon as audio arrives
    /// (unpark is a non-blocking atomic + futex wake; it never waits).
    pub reader: OnceLock<Thread>,
}

impl Shared {
    pub fn new(channels: usize, limit: u64) -> Arc<Shared> {
        Arc::new(Shared {
            channels: channels.max(1),
            limit,
            captured: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            reached_limit: AtomicBool::new(limit == 0),
            reader: OnceLock::new(),
        })
    }
}

/// A ring holding `frames` frames, split into the callback's writer and the thread's reader.
pub fn ring(shared: Arc<Shared>, frames: usize) -> (Writer, Reader) {
    let (producer, consumer) = RingBuffer::new(frames.max(1) * shared.channels);
    (
        Writer {
            producer,
            shared: shared.clone(),
        },
        Reader { consumer, shared },
    )
}

/// The callback's end.
pub struct Writer {
    producer: Producer<f32>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Called from the audio callback with the device's samples in its own type.
    pub fn push<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let shared = &*self.shared;
        let ch = shared.channels;
        // Only this callback writes `captured`, so a plain load/store pair is race-free.
        let pos = shared.captured.load(Ordering::Relaxed);
        if pos >= shared.limit {
            return;
        }
        let frames = (data.len() / ch) as u64;
        let wanted = frames.min(shared.limit - pos);
        let room = (self.producer.slots() / ch) as u64;
        let written = wanted.min(room);
        if written > 0 {
            let n = written as usize * ch;
            if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
                chunk.fill_from_iter(data.iter().take(n).map(|&s| s.to_sample::<f32>()));
            }
        }
        if written < wanted {
            shared
                .dropped
                .fetch_add(wanted - written, Ordering::Relaxed);
            shared.gaps.fetch_add(1, Ordering::Relaxed);
        }
        shared.captured.store(pos + wanted, Ordering::Relaxed);
        if pos + wanted >= shared.limit {
            shared.reached_limit.store(true, Ordering::Release);
        }
        if let Some(t) = shared.reader.get() {
            t.unpark();
        }
    }
}

/// The audio thread's end.
pub struct Reader {
    consumer: Consumer<f32>,
    pub shared: Arc<Shared>,
}

impl Reader {
    /// Whole frames waiting in the ring.
    pub fn frames_ready(&self) -> usize {
        self.consumer.slots() / self.shared.channels
    }

    /// Move up to `max_frames` whole frames into `out` (appended); returns frames moved.
    pub fn pop_into(&mut self, out: &mut Vec<f32>, max_frames: usize) -> usize {
        let frames = self.frames_ready().min(max_frames);
        let n = frames * self.shared.channels;
        if n == 0 {
            return 0;
        }
        match self.consumer.read_chunk(n) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                out.extend(a.iter().chain(b).map(|&x| crate::audio::sanitize(x)));
                chunk.commit_all();
                frames
            }
            Err(_) => 0,
        }
    }

    /// True once the callback has delivered everything up to the limit.
    pub fn reached_limit(&self) -> bool {
        self.shared.reached_limit.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Reader) -> Vec<f32> {
        let mut v = Vec::new();
        r.pop_into(&mut v, usize::MAX);
        v
    }

    #[test]
    fn converts_sample_types_exactly() {
        let (mut w, mut r) = ring(Shared::new(1, u64::MAX), 16);
        w.push(&[i16::MIN, 0, 16384, i16::MAX]);
        assert_eq!(drain(&mut r), [-1.0, 0.0, 0.5, 32767.0 / 32768.0]);
        w.push(&[0u8, 128, 255]);
        let v = drain(&mut r);
        assert_eq!(&v[..2], [-1.0, 0.0]);
        w.push(&[0.25f32, f32::NAN]);
        assert_eq!(drain(&mut r), [0.25, 0.0], "NaN never leaves the ring");
        w.push(&[i32::MIN]);
        assert_eq!(drain(&mut r), [-1.0]);
    }

    #[test]
    fn full_ring_drops_whole_frames_and_counts_them() {
        let shared = Shared::new(2, u64::MAX);
        let (mut w, mut r) = ring(shared.clone(), 3);
        // 5 stereo frames into room for 3: frames 0..3 kept, 2 dropped, channels aligned.
        w.push(&[1.0f32, -1.0, 2.0, -2.0, 3.0, -3.0, 4.0, -4.0, 5.0, -5.0]);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(shared.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(shared.captured.load(Ordering::Relaxed), 5);
        assert_eq!(drain(&mut r), [1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
        // A partial frame at the end of a callback is ignored, not split.
        w.push(&[6.0f32, -6.0, 7.0]);
        assert_eq!(drain(&mut r), [6.0, -6.0]);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn limit_stops_capture_exactly_and_later_audio_is_not_counted_as_lost() {
        let shared = Shared::new(1, 5);
        let (mut w, mut r) = ring(shared.clone(), 4);
        w.push(&[0.1f32, 0.2, 0.3]);
        assert!(!r.reached_limit());
        // 3 more frames: 2 are wanted (limit 5) but only 1 fits; 1 dropped, the 3rd is
        // beyond the limit and not counted.
        w.push(&[0.4f32, 0.5, 0.6]);
        assert!(r.reached_limit());
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(shared.captured.load(Ordering::Relaxed), 5);
        w.push(&[0.7f32; 8]);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(drain(&mut r), [0.1, 0.2, 0.3, 0.4]);
    }

    #[test]
    fn pop_respects_max_frames() {
        let (mut w, mut r) = ring(Shared::new(2, u64::MAX), 8);
        w.push(&[0.0f32; 12]);
        let mut v = Vec::new();
        assert_eq!(r.pop_into(&mut v, 4), 4);
        assert_eq!(v.len(), 8);
        assert_eq!(r.frames_ready(), 2);
    }

    #[test]
    fn zero_limit_is_reached_at_once() {
        let (mut w, r) = ring(Shared::new(1, 0), 4);
        assert!(r.reached_limit());
        w.push(&[0.5f32]);
        assert_eq!(r.frames_ready(), 0);
    }
}
