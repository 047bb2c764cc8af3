//! One source, one mono source per channel (`--split-channels`): a thread reads the input
//! once and hands each channel's samples, picked (never mixed), to that channel's stream.
//!
//! A channel whose stream has ended (its session failed, or the reader left) is skipped; the
//! others go on. The queues are bounded, so memory stays flat; a paced stream that is slower
//! than the others holds the reading back, which is the pace they all share anyway.
//!
//! While reading the first seconds it compares every channel with the first: a file whose
//! channels are (nearly) the same (dual mono) gets a warning suggesting to drop the split.

use crate::audio::{AudioError, Block, Source, SourceInfo};
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Blocks queued per channel between the reading thread and the channel's audio thread.
const QUEUE_BLOCKS: usize = 16;
/// Seconds of audio compared to tell dual mono.
const COMPARE_SECS: f64 = 10.0;
/// The channels count as the same when their difference is this far below their level
/// (energy ratio, -30 dB).
const SAME_RATIO: f64 = 1e-3;

/// One channel of the input, as a mono source of its own.
pub struct ChannelSource {
    info: SourceInfo,
    blocks: Receiver<Result<Block, AudioError>>,
}

impl Source for ChannelSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        match self.blocks.recv() {
            Ok(Ok(block)) => Ok(Some(block)),
            Ok(Err(e)) => Err(e),
            // The reading thread is done: the input ended.
            Err(_) => Ok(None),
        }
    }
}

/// What the reading thread says to people, on stderr.
pub struct Notes {
    /// The input's name for messages.
    pub input: String,
    /// The labels, to name channels in the dual-mono warning.
    pub labels: Vec<String>,
    pub quiet: bool,
}

/// Splits `source` into one mono source per channel; `end_note` is asked when the input ends
/// (e.g. stray bytes at the end of raw PCM) and said on stderr.
pub fn split<S, N>(source: S, notes: Notes, end_note: N) -> io::Result<Vec<ChannelSource>>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let info = source.info().clone();
    let channels = usize::from(info.channels.max(1));
    let (senders, sources): (Vec<_>, Vec<_>) = (0..channels)
        .map(|c| {
            let (tx, rx) = sync_channel(QUEUE_BLOCKS);
            let source = ChannelSource {
                info: SourceInfo {
                    channels: 1,
                    description: format!("channel {c} of {}", info.description),
                    ..info.clone()
                },
                blocks: rx,
            };
            (tx, source)
        })
        .unzip();
    std::thread::Builder::new()
        .name("flux-split".into())
        .spawn(move || {
            read(
                source,
                senders.into_iter().map(Some).collect(),
                notes,
                end_note,
            )
        })?;
    Ok(sources)
}

fn read<S, N>(
    mut source: S,
    mut senders: Vec<Option<SyncSender<Result<Block, AudioError>>>>,
    notes: Notes,
    end_note: N,
) where
    S: Source,
    N: FnOnce(&S) -> Option<String>,
{
    let rate = source.info().sample_rate;
    let mut twins = Twins::new(senders.len(), rate);
    loop {
        let block = match source.next_block() {
            // Picking channels and comparing them works on floats.
            Ok(Some(block)) => block.into_f32(),
            Ok(None) => break,
            Err(e) => {
                // Every channel stops on the same bad input; each reports it.
                for tx in senders.iter().flatten() {
                    let _ = tx.send(Err(copy(&e)));
                }
                break;
            }
        };
        let channels = usize::from(block.channels.max(1));
        twins.see(&block.samples, channels);
        for (c, slot) in senders.iter_mut().enumerate() {
            let Some(tx) = slot else { continue };
            let picked = Block::from_f32(
                block
                    .samples
                    .iter()
                    .skip(c)
                    .step_by(channels)
                    .copied()
                    .collect(),
                1,
                block.sample_rate,
            );
            // That channel's stream is over: the others go on without it.
            if tx.send(Ok(picked)).is_err() {
                *slot = None;
            }
        }
        if senders.iter().all(Option::is_none) {
            break;
        }
        if !notes.quiet
            && let Some((a, b)) = twins.verdict()
        {
            eprintln!(
                "flux: warning: {}: channels {} and {} are (nearly) identical (dual mono); \
                 both sides will show the same turns. Drop --split-channels to stream it once",
                notes.input,
                label(&notes.labels, a),
                label(&notes.labels, b),
            );
        }
    }
    drop(senders);
    if let Some(note) = end_note(&source) {
        eprintln!("flux: {note}");
    }
}

fn label(labels: &[String], c: usize) -> String {
    labels.get(c).cloned().unwrap_or_else(|| format!("ch{c}"))
}

/// A copy of an input error for every channel (the error itself is not `Clone`). Truncation
/// is copied exactly, because it lets each stream finish what it has before reporting.
fn copy(e: &AudioError) -> AudioError {
    match e {
        AudioError::Truncated {
            input,
            frames_read,
            expected_frames,
        } => AudioError::Truncated {
            input: input.clone(),
            frames_read: *frames_read,
            expected_frames: *expected_frames,
        },
        AudioError::Device { device, problem } => AudioError::Device {
            device: device.clone(),
            problem: problem.clone(),
        },
        AudioError::Read { input, reason } => AudioError::Read {
            input: input.clone(),
            reason: io::Error::new(reason.kind(), reason.to_string()),
        },
        other => AudioError::Conversion {
            problem: other.to_string(),
        },
    }
}

/// Compares each channel with the first over the first [`COMPARE_SECS`] seconds.
struct Twins {
    /// Energy of channel 0, and per channel its energy and its difference's from channel 0.
    first: f64,
    energy: Vec<f64>,
    diff: Vec<f64>,
    frames: u64,
    limit: u64,
    said: bool,
}

impl Twins {
    fn new(channels: usize, rate: u32) -> Twins {
        Twins {
            first: 0.0,
            energy: vec![0.0; channels],
            diff: vec![0.0; channels],
            frames: 0,
            limit: (COMPARE_SECS * f64::from(rate)) as u64,
            said: channels < 2,
        }
    }

    fn see(&mut self, samples: &[f32], channels: usize) {
        if self.said || self.frames >= self.limit || channels != self.energy.len() {
            return;
        }
        for frame in samples.chunks_exact(channels) {
            let a = f64::from(frame[0]);
            self.first += a * a;
            for (c, &x) in frame.iter().enumerate().skip(1) {
                let x = f64::from(x);
                self.energy[c] += x * x;
                self.diff[c] += (x - a) * (x - a);
            }
            self.frames += 1;
        }
    }

    /// Once the compared stretch is read: the first pair of channels that are the same.
    fn verdict(&mut self) -> Option<(usize, usize)> {
        if self.said || self.frames < self.limit {
            return None;
        }
        self.said = true;
        (1..self.energy.len()).find_map(|c| {
            let level = self.first.max(self.energy[c]);
            // Silence on both is not "the same speech".
            (level > 1e-6 * self.frames as f64 && self.diff[c] <= SAME_RATIO * level)
                .then_some((0, c))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stereo source from (left, right) sample pairs, in blocks of `block` frames.
    struct Stereo {
        info: SourceInfo,
        frames: Vec<(f32, f32)>,
        block: usize,
        at: usize,
    }

    impl Source for Stereo {
        fn info(&self) -> &SourceInfo {
            &self.info
        }
        fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
            if self.at >= self.frames.len() {
                return Ok(None);
            }
            let end = (self.at + self.block).min(self.frames.len());
            let samples = self.frames[self.at..end]
                .iter()
                .flat_map(|&(l, r)| [l, r])
                .collect();
            self.at = end;
            Ok(Some(Block::from_f32(samples, 2, 1000)))
        }
    }

    fn stereo(frames: Vec<(f32, f32)>) -> Stereo {
        Stereo {
            info: SourceInfo {
                sample_rate: 1000,
                channels: 2,
                total_frames: Some(frames.len() as u64),
                description: "test".into(),
            },
            frames,
            block: 7,
            at: 0,
        }
    }

    fn all(mut s: ChannelSource) -> Vec<f32> {
        let mut out = Vec::new();
        while let Some(b) = s.next_block().unwrap() {
            assert_eq!(b.channels, 1);
            out.extend(b.samples);
        }
        out
    }

    fn notes() -> Notes {
        Notes {
            input: "t".into(),
            labels: vec!["a".into(), "b".into()],
            quiet: true,
        }
    }

    #[test]
    fn each_channel_gets_its_own_samples_picked_not_mixed() {
        let frames: Vec<(f32, f32)> = (0..50).map(|i| (i as f32, -(i as f32))).collect();
        let mut sides = split(stereo(frames), notes(), |_| None).unwrap();
        assert_eq!(sides.len(), 2);
        assert_eq!(sides[0].info().channels, 1);
        let right = sides.pop().unwrap();
        let left = sides.pop().unwrap();
        let r = std::thread::spawn(move || all(right));
        assert_eq!(all(left), (0..50).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(
            r.join().unwrap(),
            (0..50).map(|i| -(i as f32)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_channel_whose_stream_ended_does_not_stop_the_other() {
        let frames: Vec<(f32, f32)> = (0..5000).map(|i| (i as f32, 1.0)).collect();
        let mut sides = split(stereo(frames), notes(), |_| None).unwrap();
        drop(sides.pop());
        let left = sides.pop().unwrap();
        assert_eq!(all(left).len(), 5000);
    }

    #[test]
    fn dual_mono_is_told_apart_from_two_voices() {
        let mut same = Twins::new(2, 100);
        let tone: Vec<f32> = (0..2000)
            .flat_map(|i| {
                let x = (i as f32 * 0.1).sin() * 0.5;
                [x, x * 1.01]
            })
            .collect();
        same.see(&tone, 2);
        assert_eq!(same.verdict(), Some((0, 1)));
        assert_eq!(same.verdict(), None, "said once");

        let mut two = Twins::new(2, 100);
        let talk: Vec<f32> = (0..2000)
            .flat_map(|i| {
                let x = (i as f32 * 0.1).sin() * 0.5;
                if i < 1000 { [x, 0.0] } else { [0.0, x] }
            })
            .collect();
        two.see(&talk, 2);
        assert_eq!(two.verdict(), None);

        let mut silent = Twins::new(2, 100);
        silent.see(&vec![0.0; 4000], 2);
        assert_eq!(silent.verdict(), None);
    }
}
