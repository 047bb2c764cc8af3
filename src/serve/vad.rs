//! A deterministic voice-activity detector that works on audio time.
//!
//! Samples go in one at a time; every 10 ms of audio (a *hop*) it says whether that hop is
//! speech. Only the samples decide: the same audio gives the same answers however it was cut
//! into WebSocket frames or however fast it arrived.
//!
//! Per hop:
//! 1. The signal is band-limited to the telephone band (150 Hz high-pass, two 3400 Hz
//!    low-passes). Without this, a 48 kHz stream keeps fricatives and breaths that the same
//!    speech at 8 kHz does not have, and the turns found would depend on the sample rate.
//! 2. Energy in dBFS (mean square over the hop).
//! 3. An adaptive noise floor follows the quiet parts: it falls quickly towards quieter hops
//!    and rises slowly (3 dB/s), so it stays near the background during speech. Digital
//!    silence (below −80 dBFS, e.g. zeros sent while a client's source stalls) tells nothing
//!    about the room and leaves the floor alone.
//! 4. Hysteresis: a hop starts speech at `floor + 12 dB`, and speech continues while hops stay
//!    above `floor + 8 dB`. Neither threshold goes below −70/−74 dBFS, so faint hiss over a
//!    near-silent floor is not speech.

/// Hops per second of audio (10 ms hops).
pub const HOPS_PER_SECOND: u32 = 100;

const HIGH_PASS_HZ: f64 = 150.0;
const LOW_PASS_HZ: f64 = 3400.0;
/// Hops quieter than this are digital silence and do not move the noise floor.
const DIGITAL_SILENCE_DB: f64 = -80.0;
/// Fraction of the distance to a quieter hop that the floor moves per hop.
const FLOOR_FALL: f64 = 0.25;
/// The most the floor rises per hop (dB), i.e. 3 dB per second.
const FLOOR_RISE_DB: f64 = 0.03;
/// Speech starts this far above the floor...
const ON_MARGIN_DB: f64 = 12.0;
/// ...and continues while hops stay this far above it.
const OFF_MARGIN_DB: f64 = 8.0;
/// The start threshold never goes below this (dBFS).
const MIN_ON_DB: f64 = -70.0;

/// One second-order IIR section (RBJ cookbook, Butterworth Q), run in f64.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    x1: f64,
    x2: f64,
    y1: f64,
    y2: f64,
}

impl Biquad {
    fn new(rate: u32, cutoff_hz: f64, high_pass: bool) -> Biquad {
        // Keep the cutoff below Nyquist for any rate a WAV header may declare.
        let cutoff = cutoff_hz.min(rate as f64 * 0.45);
        let w0 = 2.0 * std::f64::consts::PI * cutoff / rate as f64;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let (b0, b1, b2) = if high_pass {
            ((1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0)
        } else {
            ((1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0)
        };
        Biquad {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn run(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// The detector for one stream at one sample rate.
#[derive(Debug, Clone)]
pub struct Vad {
    hop_len: usize,
    in_hop: usize,
    power: f64,
    filters: [Biquad; 3],
    floor_db: Option<f64>,
    speaking: bool,
}

impl Vad {
    pub fn new(rate: u32) -> Vad {
        let rate = rate.max(HOPS_PER_SECOND);
        Vad {
            hop_len: hop_len(rate),
            in_hop: 0,
            power: 0.0,
            filters: [
                Biquad::new(rate, HIGH_PASS_HZ, true),
                Biquad::new(rate, LOW_PASS_HZ, false),
                Biquad::new(rate, LOW_PASS_HZ, false),
            ],
            floor_db: None,
            speaking: false,
        }
    }

    /// Feeds one sample in [-1, 1]. At the end of each hop, returns whether it was speech.
    pub fn push(&mut self, sample: f32) -> Option<bool> {
        let mut y = f64::from(sample);
        for f in &mut self.filters {
            y = f.run(y);
        }
        self.power += y * y;
        self.in_hop += 1;
        if self.in_hop < self.hop_len {
            return None;
        }
        let energy_db = 10.0 * (self.power / self.in_hop as f64 + 1e-10).log10();
        self.power = 0.0;
        self.in_hop = 0;
        Some(self.classify(energy_db))
    }

    /// Feeds samples until a hop ends or they run out: how many it took, and whether the hop
    /// that ended (if one did) was speech. The same arithmetic, in the same order, as
    /// [`Vad::push`] sample by sample, so the same verdicts; but the filters' state stays in
    /// locals for the whole run instead of being stored and reloaded around every sample,
    /// which made the filters' recurrences wait on memory (a server of 1,000 streams runs this
    /// for 16,000 samples per stream-second).
    pub fn push_until_hop(&mut self, samples: &[f32]) -> (usize, Option<bool>) {
        let take = (self.hop_len - self.in_hop).min(samples.len());
        let mut filters = self.filters;
        let mut power = self.power;
        for &sample in &samples[..take] {
            let mut y = f64::from(sample);
            for f in &mut filters {
                y = f.run(y);
            }
            power += y * y;
        }
        self.filters = filters;
        self.power = power;
        self.in_hop += take;
        if self.in_hop < self.hop_len {
            return (take, None);
        }
        let energy_db = 10.0 * (self.power / self.in_hop as f64 + 1e-10).log10();
        self.power = 0.0;
        self.in_hop = 0;
        (take, Some(self.classify(energy_db)))
    }

    fn classify(&mut self, energy_db: f64) -> bool {
        if energy_db >= DIGITAL_SILENCE_DB {
            let floor = self.floor_db.get_or_insert(energy_db);
            if energy_db < *floor {
                *floor += FLOOR_FALL * (energy_db - *floor);
            } else {
                *floor += (energy_db - *floor).min(FLOOR_RISE_DB);
            }
        }
        let floor = self.floor_db.unwrap_or(DIGITAL_SILENCE_DB);
        let on = (floor + ON_MARGIN_DB).max(MIN_ON_DB);
        let off = (floor + OFF_MARGIN_DB).max(MIN_ON_DB - (ON_MARGIN_DB - OFF_MARGIN_DB));
        self.speaking = if self.speaking {
            energy_db >= off
        } else {
            energy_db >= on
        };
        self.speaking
    }
}

/// Samples per hop at `rate` (10 ms; 9.98 ms at 22050 Hz, where 10 ms is not whole samples).
pub fn hop_len(rate: u32) -> usize {
    (rate / HOPS_PER_SECOND).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(vad: &mut Vad, samples: impl Iterator<Item = f32>) -> Vec<bool> {
        samples.filter_map(|s| vad.push(s)).collect()
    }

    fn tone(rate: u32, seconds: f64, amplitude: f32) -> impl Iterator<Item = f32> {
        let n = (rate as f64 * seconds) as usize;
        (0..n).map(move |i| {
            amplitude * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin()
        })
    }

    fn hiss(seconds: f64, rate: u32, amplitude: f32) -> impl Iterator<Item = f32> {
        // A fixed pseudo-random sequence (xorshift) keeps the test deterministic.
        let mut state: u32 = 0x9E37_79B9;
        (0..(rate as f64 * seconds) as usize).map(move |_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            amplitude * ((state as f32 / u32::MAX as f32) * 2.0 - 1.0)
        })
    }

    #[test]
    fn tone_over_background_is_speech_and_background_is_not() {
        let mut vad = Vad::new(16000);
        let quiet = feed(&mut vad, hiss(1.0, 16000, 0.001));
        assert_eq!(quiet.len(), 100);
        assert!(quiet.iter().all(|v| !v));
        let loud = feed(&mut vad, tone(16000, 0.5, 0.3));
        assert!(loud[2..].iter().all(|v| *v), "{loud:?}");
        let after = feed(&mut vad, hiss(0.5, 16000, 0.001));
        assert!(after[5..].iter().all(|v| !v));
    }

    #[test]
    fn digital_silence_does_not_make_background_look_like_speech() {
        let mut vad = Vad::new(8000);
        let zeros = feed(&mut vad, std::iter::repeat_n(0.0, 8000 * 3));
        assert!(zeros.iter().all(|v| !v));
        let background = feed(&mut vad, hiss(2.0, 8000, 0.001));
        let voiced = background.iter().filter(|v| **v).count();
        assert!(voiced <= 3, "{voiced} hops of hiss counted as speech");
    }

    #[test]
    fn runs_of_samples_give_the_verdicts_of_one_sample_at_a_time() {
        let audio: Vec<f32> = hiss(0.7, 16000, 0.001)
            .chain(tone(16000, 0.4, 0.3))
            .chain(hiss(0.9, 16000, 0.002))
            .collect();
        let mut one = Vad::new(16000);
        let want = feed(&mut one, audio.iter().copied());
        assert!(want.iter().any(|v| *v) && want.iter().any(|v| !*v));
        // Runs of every length, crossing hop boundaries anywhere.
        for run in [1, 7, 160, 161, 1280, 5000] {
            let mut vad = Vad::new(16000);
            let mut got = Vec::new();
            for chunk in audio.chunks(run) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (taken, verdict) = vad.push_until_hop(rest);
                    assert!(taken > 0 && taken <= 160);
                    rest = &rest[taken..];
                    got.extend(verdict);
                }
            }
            assert_eq!(got, want, "runs of {run}");
            assert_eq!(vad.power.to_bits(), one.power.to_bits());
        }
    }

    #[test]
    fn hop_lengths() {
        assert_eq!(hop_len(8000), 80);
        assert_eq!(hop_len(44100), 441);
        assert_eq!(hop_len(22050), 220);
    }
}
