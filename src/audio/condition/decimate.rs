//! Integer-ratio decimation (48 kHz → 16 kHz and the like): a polyphase FIR that computes only
//! the kept outputs, with exact timing (group delay dropped, tail flushed). The filter comes
//! from `design.rs`, the kernels that run it from `fir.rs`.

use std::sync::{Arc, Mutex, PoisonError};

use super::design::decimation_filter;
use super::fir::{FIR_SLAB, FIR_VECTOR, fir};
use super::framer::Framer;
use super::{Frame, expected_output};

/// Integer-ratio decimation (`in_rate = M × out_rate`) with a polyphase FIR.
///
/// The filter `h` (N taps, centre `c`) is an equiripple lowpass ([`decimation_filter`]).
/// Output `m` is `Σ_k h[k]·x[m·M + k − c]`: centred on input sample `m·M`, so there is no delay
/// to compensate beyond the `c` samples of lookahead. Only the kept outputs are computed. The
/// input is dealt into M phase buffers (`phase p` holds every M-th sample, starting at `p`),
/// which turns each output into M short dot products over contiguous memory, and lets the
/// kernel compute a run of consecutive outputs at once with plain vector loads.
///
/// Each output is one chain of multiply-adds in an order fixed by the kernel, whatever the
/// block boundaries (vectors hold consecutive outputs, never parts of one sum), so the output
/// is bit-identical for any blocking. CPUs with AVX2 and FMA use a kernel with fused
/// multiply-adds (one rounding instead of two), others a portable one: the two kinds of machine
/// agree to within float rounding, not bit for bit (on an hour of 48k → 16k speech, 486 of 57.6
/// million i16 samples differ, by one).
pub(super) struct Decimator {
    factor: usize,
    /// Taps per phase (`L`, a multiple of [`FIR_SLAB`]); the filter is zero-padded to `L × M`.
    taps: usize,
    /// Phase-major coefficients: `coeffs[p * L + q] = h[q * M + p]`.
    coeffs: Arc<[f32]>,
    /// `phases[p][j]` is sample `(j0 + j)·M + p` of the stream preceded by `c` zeros, where `j0`
    /// advances as outputs are produced; all phases start at the same `j0`.
    phases: Vec<Vec<f32>>,
    /// Phase the next input sample goes to.
    next_phase: usize,
    output: Vec<f32>,
    frames_in: u64,
    in_rate: u64,
    out_rate: u64,
}

/// Output samples computed per run of the kernel, and input samples dealt at a time (bounds
/// the phase buffers).
const DECIMATOR_CHUNK: usize = 8192;

impl Decimator {
    pub(super) fn new(in_rate: u32, out_rate: u32) -> Self {
        let factor = (in_rate / out_rate) as usize;
        let (len, coeffs) = polyphase_filter(factor);
        let taps = coeffs.len() / factor;
        // Room for one chunk, the filter's history and the zeros that complete the last block.
        let capacity = taps + DECIMATOR_CHUNK / factor + FIR_VECTOR + 2;
        let mut d = Decimator {
            factor,
            taps,
            coeffs,
            phases: (0..factor).map(|_| Vec::with_capacity(capacity)).collect(),
            next_phase: 0,
            output: Vec::with_capacity(DECIMATOR_CHUNK / factor + FIR_VECTOR),
            frames_in: 0,
            in_rate: u64::from(in_rate),
            out_rate: u64::from(out_rate),
        };
        // The lead-in that centres output 0 on input 0 (the filter's group delay).
        d.deal(&vec![0.0; len / 2]);
        d
    }

    pub(super) fn push(&mut self, mono: &[f32], framer: &mut Framer, out: &mut dyn FnMut(Frame)) {
        self.frames_in += mono.len() as u64;
        for piece in mono.chunks(DECIMATOR_CHUNK) {
            self.deal(piece);
            self.run(u64::MAX, framer, out);
        }
    }

    /// Feed silence until every output up to `round(frames_in / M)` exists, and stop there.
    pub(super) fn flush(&mut self, framer: &mut Framer, out: &mut dyn FnMut(Frame)) {
        let expected = expected_output(self.frames_in, self.in_rate, self.out_rate);
        let zeros = [0.0f32; 256];
        // Each round completes at least one output, so this ends; the bound is a safeguard.
        for _ in 0..1_000_000 {
            if framer.total_samples() >= expected {
                return;
            }
            let need = self.factor * self.taps;
            for _ in 0..need.div_ceil(zeros.len()) {
                self.deal(&zeros);
            }
            self.run(expected, framer, out);
        }
    }

    /// Deal samples into the phase buffers, continuing where the last call stopped.
    fn deal(&mut self, mut samples: &[f32]) {
        let m = self.factor;
        // Finish a group of M begun by the previous call.
        while self.next_phase != 0 {
            let Some((&x, rest)) = samples.split_first() else {
                return;
            };
            self.phases[self.next_phase].push(x);
            self.next_phase = (self.next_phase + 1) % m;
            samples = rest;
        }
        let whole = samples.len() / m * m;
        match m {
            // The common factors get a loop with M known at compile time (a strided copy per
            // phase cost twice as much in the profile).
            2 => deal_groups::<2>(&samples[..whole], &mut self.phases),
            3 => deal_groups::<3>(&samples[..whole], &mut self.phases),
            _ => {
                for (p, phase) in self.phases.iter_mut().enumerate() {
                    phase.extend(samples[..whole].iter().skip(p).step_by(m));
                }
            }
        }
        for &x in &samples[whole..] {
            self.phases[self.next_phase].push(x);
            self.next_phase += 1;
        }
    }

    /// Compute every output whose inputs are all present, hand at most `limit` (in total over
    /// the stream) to the framer, and drop the inputs no later output needs.
    fn run(&mut self, limit: u64, framer: &mut Framer, out: &mut dyn FnMut(Frame)) {
        // The last phase has an entry only for complete groups of M.
        let complete = self.phases[self.factor - 1].len();
        let ready = (complete + 1).saturating_sub(self.taps);
        if ready == 0 {
            return;
        }
        // The kernels compute whole vectors of outputs: zeros after the data complete the last
        // one, and what it computes past `ready` is dropped. (Every output depends only on its
        // own inputs, so the padding never changes a kept one.)
        let blocks = ready.next_multiple_of(FIR_VECTOR);
        // The phases before `next_phase` hold a sample of the next group: they stay longer.
        let len = |p: usize| complete + usize::from(p < self.next_phase);
        for (p, phase) in self.phases.iter_mut().enumerate() {
            phase.resize(len(p).max(blocks + self.taps - 1), 0.0);
        }
        self.output.resize(blocks, 0.0);
        fir(&self.coeffs, self.taps, &self.phases, &mut self.output);
        for (p, phase) in self.phases.iter_mut().enumerate() {
            phase.truncate(len(p));
            phase.drain(..ready);
        }
        let room = limit.saturating_sub(framer.total_samples());
        let keep = ready.min(usize::try_from(room).unwrap_or(usize::MAX));
        framer.push(&self.output[..keep], out);
    }
}

/// Appends `samples[j·M + p]` to `phases[p]` for whole groups of `M`.
fn deal_groups<const M: usize>(samples: &[f32], phases: &mut [Vec<f32>]) {
    let groups = samples.len() / M;
    let mut phases = phases.iter_mut();
    let mut outs: [&mut [f32]; M] = std::array::from_fn(|_| match phases.next() {
        Some(v) => {
            let start = v.len();
            v.resize(start + groups, 0.0);
            &mut v[start..]
        }
        None => &mut [],
    });
    for (j, group) in samples.chunks_exact(M).enumerate() {
        for (out, &x) in outs.iter_mut().zip(group) {
            out[j] = x;
        }
    }
}

/// The decimation filter for `factor` laid out for the kernels (phase-major, each phase
/// zero-padded to whole slabs), and its length. Designed once per process and shared: the
/// design takes about 1 ms for 48 → 16 kHz but a quarter of a second for 384 → 8 kHz, and
/// `flux file --jobs` starts a conditioner per file.
fn polyphase_filter(factor: usize) -> (usize, Arc<[f32]>) {
    type Designed = Vec<(usize, usize, Arc<[f32]>)>;
    static DESIGNED: Mutex<Designed> = Mutex::new(Vec::new());
    let mut designed = DESIGNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, len, coeffs)) = designed.iter().find(|d| d.0 == factor) {
        return (*len, Arc::clone(coeffs));
    }
    let h = decimation_filter(factor);
    let taps = h.len().div_ceil(factor).next_multiple_of(FIR_SLAB);
    let mut coeffs = vec![0.0f32; taps * factor];
    for (k, &v) in h.iter().enumerate() {
        coeffs[(k % factor) * taps + k / factor] = v as f32;
    }
    let coeffs: Arc<[f32]> = coeffs.into();
    designed.push((factor, h.len(), Arc::clone(&coeffs)));
    (h.len(), coeffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::condition::test_support::*;

    #[test]
    fn tone_quality_48k_to_16k() {
        let secs = 2;
        let amp = 0.5;
        let skip = 1600; // ignore the edges, where the tone starts and stops abruptly
        let pass = pcm(&run(
            &tone(1000.0, 48000, 48000 * secs, amp),
            1,
            48000,
            16000,
            &[4096],
        ));
        let pass_db = level_db(&pass[skip..pass.len() - skip], 1000.0, 16000, amp);
        assert!(pass_db.abs() < 0.5, "1 kHz: {pass_db:.3} dB");

        let edge = pcm(&run(
            &tone(7200.0, 48000, 48000 * secs, amp),
            1,
            48000,
            16000,
            &[4096],
        ));
        let edge_db = level_db(&edge[skip..edge.len() - skip], 7200.0, 16000, amp);
        assert!(edge_db.abs() < 0.5, "7.2 kHz (0.45 fs): {edge_db:.3} dB");

        let stop = pcm(&run(
            &tone(10_000.0, 48000, 48000 * secs, amp),
            1,
            48000,
            16000,
            &[4096],
        ));
        let stop_db = rms_db(&stop[skip..stop.len() - skip], amp);
        assert!(stop_db < -60.0, "10 kHz: {stop_db:.1} dB");

        // Just above the output Nyquist: the hardest alias to reject.
        let near = pcm(&run(
            &tone(8800.0, 48000, 48000 * secs, amp),
            1,
            48000,
            16000,
            &[4096],
        ));
        let near_db = rms_db(&near[skip..near.len() - skip], amp);
        assert!(near_db < -60.0, "8.8 kHz: {near_db:.1} dB");
        eprintln!(
            "48k->16k: 1 kHz {pass_db:.4} dB, 7.2 kHz {edge_db:.4} dB, 8.8 kHz {near_db:.1} dB, 10 kHz {stop_db:.1} dB"
        );
    }

    /// The decimation filter, as the decimator holds it, meets the specification for the
    /// common factors and for the largest one the conditioner accepts (384 kHz → 8 kHz).
    #[test]
    fn decimation_filter_meets_its_specification() {
        for (in_rate, out_rate) in [
            (16000, 8000),
            (48000, 16000),
            (32000, 8000),
            (48000, 8000),
            (384_000, 8000),
        ] {
            let d = Decimator::new(in_rate, out_rate);
            let (m, l) = (d.factor, d.taps);
            let h: Vec<f64> = (0..m * l)
                .map(|k| f64::from(d.coeffs[(k % m) * l + k / m]))
                .collect();
            let (pass, stop) = filter_spec(&h, m, &format!("{in_rate}->{out_rate}"));
            eprintln!(
                "{in_rate}->{out_rate}: {l} taps per phase, passband {pass:.4} dB, stopband {stop:.1} dB"
            );
        }
    }
}
