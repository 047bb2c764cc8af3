//! The recordings of a load test, conditioned once and shared by every stream, and the feed
//! task that hands one stream its frames, looping.
//!
//! A thousand streams reading and resampling their own copy of a file would cost a thousand
//! audio threads and a thousand conditioners; here each recording is read and conditioned
//! once, kept as one buffer of 16-bit frames, and each stream's frames are reference-counted
//! slices of it. A stream's feed is a small task on the session's runtime: it hands frames
//! over about a second at a time, as `flux file`'s audio thread does, and waits (without a
//! thread) while the session has enough.

use crate::audio::Source;
use crate::audio::condition::{Conditioner, Frame};
use crate::audio::wav::WavSource;
use crate::session::Feed;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// Frames handed to the session in one message: about a second at 80 ms frames. Fewer
/// messages mean fewer wake-ups of the session; the session takes a batch only when it has
/// sent the previous one.
const BATCH_FRAMES: usize = 12;

/// Speech is looked for in steps of this many seconds.
const HOP_SECS: f64 = 0.02;
/// A hop is speech when its level is within this many dB of the recording's loudest hop...
const SPEECH_BELOW_PEAK_DB: f64 = 30.0;
/// ...and above this absolute level (dBFS), so a recording of silence has no speech.
const SPEECH_FLOOR_DBFS: f64 = -50.0;

/// One recording, conditioned to mono i16 at the stream's rate and cut into whole frames (the
/// last one filled up with silence, so that loops stay frame-aligned).
pub(super) struct Recording {
    pub label: String,
    data: Bytes,
    frame_bytes: usize,
    /// Which 20 ms hops hold speech (by level): when a turn's speech began, since a
    /// provider's `audio_window_start` is where the previous turn ended, silence included.
    speech: Vec<bool>,
}

impl Recording {
    /// Reads and conditions `path` in full.
    pub fn load(path: &Path, sample_rate: u32, chunk_ms: u32) -> anyhow::Result<Recording> {
        let mut source = WavSource::open(path)?;
        let info = source.info().clone();
        let mut conditioner =
            Conditioner::new(info.sample_rate, info.channels, sample_rate, chunk_ms)?;
        let frame_bytes = conditioner.frame_bytes();
        let mut data: Vec<u8> = Vec::new();
        {
            let mut put = |f: Frame| data.extend_from_slice(&f.data);
            while let Some(block) = source.next_block()? {
                conditioner.push(&block, &mut put)?;
            }
            conditioner.finish(&mut put)?;
        }
        if data.is_empty() {
            anyhow::bail!(
                "{} holds no audio; a load test needs speech to send (give a recording with \
                 at least one frame)",
                path.display()
            );
        }
        let whole = data.len().div_ceil(frame_bytes) * frame_bytes;
        data.resize(whole, 0);
        data.shrink_to_fit();
        let speech = speech_hops(&data, sample_rate);
        Ok(Recording {
            label: path.display().to_string(),
            data: Bytes::from(data),
            frame_bytes,
            speech,
        })
    }

    /// A recording that is speech throughout (for tests elsewhere in `load`).
    #[cfg(test)]
    pub fn all_speech(seconds: f64, sample_rate: u32) -> Recording {
        let samples = (seconds * f64::from(sample_rate)) as usize;
        let hops = (seconds / HOP_SECS).ceil() as usize;
        Recording {
            label: "speech.wav".into(),
            data: Bytes::from(vec![0x40; samples * 2]),
            frame_bytes: 2,
            speech: vec![true; hops],
        }
    }

    pub fn frames(&self) -> usize {
        self.data.len() / self.frame_bytes
    }

    /// Frame `k` (zero-copy: a slice of the shared buffer).
    fn frame(&self, k: usize) -> Bytes {
        self.data
            .slice(k * self.frame_bytes..(k + 1) * self.frame_bytes)
    }

    /// Seconds of audio.
    pub fn seconds(&self, sample_rate: u32) -> f64 {
        self.data.len() as f64 / 2.0 / f64::from(sample_rate.max(1))
    }
}

/// Which hops of i16 LE `data` are speech, by level (see the constants above).
fn speech_hops(data: &[u8], sample_rate: u32) -> Vec<bool> {
    let hop = ((f64::from(sample_rate) * HOP_SECS) as usize).max(1) * 2;
    let levels: Vec<f64> = data
        .chunks(hop)
        .map(|c| {
            let (sum, n) = c.chunks_exact(2).fold((0f64, 0usize), |(s, n), b| {
                let x = f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0;
                (s + x * x, n + 1)
            });
            10.0 * (sum / n.max(1) as f64).max(1e-12).log10()
        })
        .collect();
    let peak = levels.iter().copied().fold(f64::MIN, f64::max);
    let threshold = (peak - SPEECH_BELOW_PEAK_DB).max(SPEECH_FLOOR_DBFS);
    levels.iter().map(|&l| l > threshold).collect()
}

/// The stream time at which speech next begins at or after stream time `t`, for a stream
/// that plays `recs` in order from `first`, looping; `None` when there is no speech at all.
pub(super) fn speech_from(
    recs: &[Recording],
    first: usize,
    t: f64,
    sample_rate: u32,
) -> Option<f64> {
    let len: Vec<f64> = (0..recs.len())
        .map(|i| recs[(first + i) % recs.len()].seconds(sample_rate))
        .collect();
    let loop_secs: f64 = len.iter().sum();
    if loop_secs <= 0.0 || t < 0.0 {
        return None;
    }
    let mut base = (t / loop_secs).floor() * loop_secs;
    let mut offset = t - base;
    // Through the rest of this loop and one more (the speech may be in the next one).
    for _ in 0..2 {
        let mut start = 0.0;
        for (i, secs) in len.iter().enumerate() {
            let rec = &recs[(first + i) % recs.len()];
            if offset < start + secs {
                let from = ((offset - start).max(0.0) / HOP_SECS) as usize;
                if let Some(k) = rec.speech.iter().skip(from).position(|&v| v) {
                    return Some(base + start + ((from + k) as f64 * HOP_SECS).max(offset - start));
                }
            }
            start += secs;
        }
        base += loop_secs;
        offset = 0.0;
    }
    None
}

/// Every recording, in the order given.
pub(super) fn load_all(
    paths: &[PathBuf],
    sample_rate: u32,
    chunk_ms: u32,
) -> anyhow::Result<Arc<Vec<Recording>>> {
    let mut all = Vec::with_capacity(paths.len());
    for path in paths {
        all.push(Recording::load(path, sample_rate, chunk_ms)?);
    }
    Ok(Arc::new(all))
}

/// How much one stream sends before it ends its input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Limit {
    /// This many passes over its recordings.
    Loops(u32),
    /// This many seconds of audio.
    Seconds(f64),
}

/// What one stream's feed needs.
pub(super) struct FeedPlan {
    pub recordings: Arc<Vec<Recording>>,
    /// Which recording this stream begins with; it goes on with the next ones, in order.
    pub first: usize,
    pub limit: Limit,
    pub sample_rate: u32,
    /// Set on Ctrl-C: hand over nothing more.
    pub stopped: Arc<AtomicBool>,
    /// Frames handed to sessions, over all streams (the live frames/s).
    pub frames_fed: Arc<AtomicU64>,
}

/// Starts the feed of one stream on the current runtime; the session takes its receiver.
pub(super) fn spawn_feed(plan: FeedPlan) -> mpsc::Receiver<Feed> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(feed(plan, tx));
    rx
}

async fn feed(plan: FeedPlan, tx: mpsc::Sender<Feed>) {
    let recs = &plan.recordings;
    let per_loop: usize = recs.iter().map(Recording::frames).sum();
    let frame_samples = recs[0].frame_bytes as u64 / 2;
    let total = match plan.limit {
        Limit::Loops(k) => per_loop as u64 * u64::from(k),
        Limit::Seconds(s) => (s * f64::from(plan.sample_rate) / frame_samples as f64).ceil() as u64,
    };
    let (mut rec, mut k) = (plan.first % recs.len(), 0usize);
    let mut index = 0u64;
    while index < total && !plan.stopped.load(Ordering::Relaxed) {
        let n = (total - index).min(BATCH_FRAMES as u64) as usize;
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            while k >= recs[rec].frames() {
                (rec, k) = ((rec + 1) % recs.len(), 0);
            }
            frames.push(Frame {
                data: recs[rec].frame(k),
                index,
                start_sample: index * frame_samples,
                sample_rate: plan.sample_rate,
            });
            k += 1;
            index += 1;
        }
        plan.frames_fed.fetch_add(n as u64, Ordering::Relaxed);
        let ready = Instant::now();
        if tx.send(Feed::Frames { frames, ready }).await.is_err() {
            // The session ended (it failed, or was told to finish).
            return;
        }
    }
    let _ = tx
        .send(Feed::End {
            error: None,
            note: None,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(frames: usize, fill: u8) -> Recording {
        Recording {
            label: format!("r{fill}"),
            data: Bytes::from(vec![fill; frames * 4]),
            frame_bytes: 4,
            speech: Vec::new(),
        }
    }

    #[test]
    fn speech_is_found_where_it_begins_across_recordings_and_loops() {
        // 1 s recordings at 1000 Hz (so a hop is 20 samples): silence with a burst at 0.5 s,
        // and silence only.
        let mut a = vec![0i16; 1000];
        a[500..600].fill(8000);
        let bytes =
            |v: &[i16]| Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        let rec = |v: &[i16]| Recording {
            label: String::new(),
            data: bytes(v),
            frame_bytes: 2,
            speech: speech_hops(&bytes(v), 1000),
        };
        let recs = [rec(&a), rec(&[0i16; 1000])];
        let at = |first, t| speech_from(&recs, first, t, 1000).map(|x| (x * 1000.0).round());
        assert_eq!(at(0, 0.0), Some(500.0));
        // Already speaking: now.
        assert_eq!(at(0, 0.55), Some(550.0));
        // Past it: the next loop's (2 s later).
        assert_eq!(at(0, 0.7), Some(2500.0));
        // Beginning with the silent one, the burst is a second later.
        assert_eq!(at(1, 0.0), Some(1500.0));
        assert_eq!(speech_from(&recs[1..], 0, 0.0, 1000), None);
    }

    async fn collect(plan: FeedPlan) -> Vec<Frame> {
        let mut rx = spawn_feed(plan);
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            match item {
                Feed::Frames { frames, .. } => out.extend(frames),
                Feed::End { .. } => break,
            }
        }
        out
    }

    fn plan(limit: Limit, first: usize) -> FeedPlan {
        FeedPlan {
            recordings: Arc::new(vec![recording(3, 1), recording(2, 2)]),
            first,
            limit,
            sample_rate: 16000,
            stopped: Arc::default(),
            frames_fed: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_stream_loops_its_recordings_from_its_own_first_one() {
        let frames = collect(plan(Limit::Loops(2), 1)).await;
        let fills: Vec<u8> = frames.iter().map(|f| f.data[0]).collect();
        assert_eq!(fills, [2, 2, 1, 1, 1, 2, 2, 1, 1, 1]);
        // Continuous positions across loops: the session's clock never jumps back.
        let idx: Vec<u64> = frames.iter().map(|f| f.index).collect();
        assert_eq!(idx, (0..10).collect::<Vec<_>>());
        assert_eq!(frames[9].start_sample, 18);
    }

    #[tokio::test]
    async fn a_duration_is_rounded_up_to_whole_frames_and_counted() {
        let p = plan(Limit::Seconds(0.001), 0);
        let fed = p.frames_fed.clone();
        // 0.001 s at 16 kHz = 16 samples = 8 frames of 2 samples.
        assert_eq!(collect(p).await.len(), 8);
        assert_eq!(fed.load(Ordering::Relaxed), 8);
    }

    #[tokio::test]
    async fn a_stopped_feed_hands_over_nothing_more() {
        let p = plan(Limit::Loops(100), 0);
        p.stopped.store(true, Ordering::Relaxed);
        assert!(collect(p).await.is_empty());
    }

    #[test]
    fn a_recording_is_cut_into_whole_frames_with_silence_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..2000 {
            w.write_sample(1000i16).unwrap();
        }
        w.finalize().unwrap();
        let r = Recording::load(&path, 16000, 80).unwrap();
        // 2000 samples = 1.56 frames of 1280: two frames, the second padded.
        assert_eq!(r.frames(), 2);
        assert!((r.seconds(16000) - 0.16).abs() < 1e-9);
        let last = r.frame(1);
        assert_eq!(
            &last[(2000 - 1280) * 2..],
            &vec![0u8; (2560 - 2000) * 2][..]
        );
    }
}
