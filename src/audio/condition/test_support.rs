//! Helpers shared by the conditioner's unit tests: signals, a driver that pushes a signal in
//! blocks of given sizes, and measurements of level and filter response.

use super::{Conditioner, DEFAULT_CHUNK_MS, Frame};
use crate::audio::Block;

/// Deterministic pseudo-random generator (xorshift), so failures reproduce.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

pub(super) fn block(samples: Vec<f32>, channels: u16, rate: u32) -> Block {
    Block::from_f32(samples, channels, rate)
}

/// Run `signal` through a conditioner in blocks of the given frame counts (cycled).
pub(super) fn run(
    signal: &[f32],
    channels: u16,
    in_rate: u32,
    out_rate: u32,
    sizes: &[usize],
) -> Vec<Frame> {
    let mut c = Conditioner::new(in_rate, channels, out_rate, DEFAULT_CHUNK_MS).unwrap();
    let mut frames = Vec::new();
    let ch = usize::from(channels);
    let mut pos = 0;
    for &n in sizes.iter().cycle() {
        if pos >= signal.len() {
            break;
        }
        let end = (pos + n * ch).min(signal.len());
        c.push(
            &block(signal[pos..end].to_vec(), channels, in_rate),
            &mut |f| frames.push(f),
        )
        .unwrap();
        pos = end;
    }
    c.finish(&mut |f| frames.push(f)).unwrap();
    check_frames(&frames, c.frame_bytes(), out_rate);
    frames
}

/// The framing invariants: no empty frames, all full but the last, continuous numbering.
pub(super) fn check_frames(frames: &[Frame], frame_bytes: usize, rate: u32) {
    let mut start = 0;
    for (i, f) in frames.iter().enumerate() {
        assert!(!f.data.is_empty(), "frame {i} is empty");
        if i + 1 < frames.len() {
            assert_eq!(f.data.len(), frame_bytes, "frame {i} is short");
        } else {
            assert!(f.data.len() <= frame_bytes);
        }
        assert_eq!(f.index, i as u64);
        assert_eq!(f.start_sample, start);
        assert_eq!(f.sample_rate, rate);
        start += f.samples() as u64;
    }
    for pair in frames.windows(2) {
        assert_eq!(pair[0].end_secs(), pair[1].start_secs());
    }
}

pub(super) fn pcm(frames: &[Frame]) -> Vec<i16> {
    frames
        .iter()
        .flat_map(|f| {
            f.data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
        })
        .collect()
}

pub(super) fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.uniform() * 0.8).collect()
}

pub(super) fn tone(freq: f64, rate: u32, frames: usize, amp: f64) -> Vec<f32> {
    (0..frames)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as f32
        })
        .collect()
}

/// Amplitude of the `freq` component (least squares against sin and cos), in dB re `amp`.
pub(super) fn level_db(samples: &[i16], freq: f64, rate: u32, amp: f64) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &x) in samples.iter().enumerate() {
        let ph = 2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate);
        s += f64::from(x) / 32768.0 * ph.sin();
        c += f64::from(x) / 32768.0 * ph.cos();
    }
    let n = samples.len() as f64;
    let measured = 2.0 * (s * s + c * c).sqrt() / n;
    20.0 * (measured / amp).log10()
}

/// RMS of everything, in dB re a sine of amplitude `amp`.
pub(super) fn rms_db(samples: &[i16], amp: f64) -> f64 {
    let sum: f64 = samples
        .iter()
        .map(|&x| (f64::from(x) / 32768.0).powi(2))
        .sum();
    let rms = (sum / samples.len() as f64).sqrt();
    20.0 * (rms / (amp / 2f64.sqrt())).log10()
}

pub(super) const RATE_PAIRS: [(u32, u32); 7] = [
    (48000, 16000),
    (44100, 16000),
    (22050, 24000),
    (8000, 16000),
    (96000, 48000),
    (11025, 44100),
    (16000, 8000),
];

/// Checks a decimation filter's own frequency response, from its taps: flat within 0.1 dB
/// up to 0.45 × the output rate, at least 70 dB down from 0.55 × the output rate to the
/// input Nyquist frequency (48k→16k: passband 0–7.2 kHz, stopband 8.8–24 kHz). Returns the
/// passband deviation and the stopband level, in dB.
pub(super) fn filter_spec(h: &[f64], factor: usize, label: &str) -> (f64, f64) {
    let gain_db = |f: f64| {
        // `f` as a fraction of the input rate.
        let w = 2.0 * std::f64::consts::PI * f;
        let (re, im) = h.iter().enumerate().fold((0.0, 0.0), |(re, im), (k, &v)| {
            (re + v * (w * k as f64).cos(), im - v * (w * k as f64).sin())
        });
        10.0 * (re * re + im * im).log10()
    };
    let fo = 1.0 / factor as f64;
    let pass = (0..=180)
        .map(|i| gain_db(0.45 * fo * f64::from(i) / 180.0).abs())
        .fold(0.0, f64::max);
    let (lo, hi) = (0.55 * fo, 0.5);
    let stop = (0..=800)
        .map(|i| gain_db(lo + (hi - lo) * f64::from(i) / 800.0))
        .fold(f64::MIN, f64::max);
    assert!(pass <= 0.1, "{label}: passband deviates {pass:.3} dB");
    assert!(stop <= -70.0, "{label}: stopband only {stop:.1} dB");
    (pass, stop)
}
