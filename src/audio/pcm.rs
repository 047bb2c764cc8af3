//! PCM decoding, the one place where sample bytes become `f32` in [-1, 1]: WAV files
//! (`wav/`), raw PCM on stdin (`raw.rs`) and, for G.711, `flux serve`'s audio decoder all
//! use it, so a given sample has the same value whichever way it arrived.
//!
//! Integer samples are scaled by `2^-(bits-1)` (an exact power of two, so 16-bit input maps to
//! f32 and back bit for bit), 8-bit PCM is offset binary as WAV defines it, floats pass through
//! with NaN and infinities sanitized, and G.711 (µ-law, A-law) goes through the ITU-T tables
//! to 16-bit linear first. The loops are compiled for baseline x86-64 and for AVX2, chosen at
//! run time: 16-bit decoding then takes half the time (in the profile of 48 kHz stereo it was
//! a tenth of the audio thread).

/// A sample encoding: how many bytes a sample takes and what they mean. All little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 8-bit unsigned (offset binary: 128 is silence), as in 8-bit WAV.
    U8,
    /// Signed 16-bit integers.
    S16Le,
    /// Signed 24-bit integers, packed in three bytes.
    S24Le,
    /// Signed 32-bit integers.
    S32Le,
    /// IEEE 754 32-bit floats, nominally in [-1, 1].
    F32Le,
    /// G.711 µ-law, one byte per sample.
    MuLaw,
    /// G.711 A-law, one byte per sample.
    ALaw,
}

impl Encoding {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            Encoding::U8 | Encoding::MuLaw | Encoding::ALaw => 1,
            Encoding::S16Le => 2,
            Encoding::S24Le => 3,
            Encoding::S32Le | Encoding::F32Le => 4,
        }
    }

    /// Decode whole samples from `bytes` (a multiple of [`Encoding::bytes`]; a partial sample
    /// at the end is ignored) onto the end of `out`.
    pub fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `decode_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
            // just above); that is the whole contract of calling a `target_feature` function.
            unsafe { decode_avx2(self, bytes, out) };
            return;
        }
        self.decode_samples(bytes, out);
    }

    /// The loops behind [`Encoding::decode`], one per encoding. `extend` from an exact-size
    /// iterator writes each value once (no zeroing first) and vectorizes.
    #[inline(always)]
    fn decode_samples(self, bytes: &[u8], out: &mut Vec<f32>) {
        out.reserve(bytes.len() / self.bytes());
        match self {
            Encoding::U8 => out.extend(
                bytes
                    .iter()
                    .map(|&b| (i32::from(b) - 128) as f32 * (1.0 / 128.0)),
            ),
            Encoding::S16Le => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32768.0)),
            ),
            Encoding::S24Le => out.extend(bytes.chunks_exact(3).map(|b| {
                // The bytes into the top of an i32; the arithmetic shift extends the sign.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                v as f32 * (1.0 / 8_388_608.0)
            })),
            Encoding::S32Le => out.extend(bytes.chunks_exact(4).map(|b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            })),
            Encoding::F32Le => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| super::sanitize(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
            Encoding::MuLaw => out.extend(
                bytes
                    .iter()
                    .map(|&b| f32::from(MULAW[usize::from(b)]) * (1.0 / 32768.0)),
            ),
            Encoding::ALaw => out.extend(
                bytes
                    .iter()
                    .map(|&b| f32::from(ALAW[usize::from(b)]) * (1.0 / 32768.0)),
            ),
        }
    }
}

/// Samples decoded by a source: 16-bit PCM stays integer (see [`super::Block`]), the rest is f32.
#[derive(Debug)]
pub enum Decoded {
    F32(Vec<f32>),
    S16(Vec<i16>),
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded::F32(Vec::new())
    }
}

impl Decoded {
    /// Decode `bytes` of `encoding` (into a fresh block: any samples held are replaced).
    pub fn decode(&mut self, encoding: Encoding, bytes: &[u8]) {
        *self = if encoding == Encoding::S16Le {
            let mut pcm16 = Vec::new();
            decode_s16(bytes, &mut pcm16);
            Decoded::S16(pcm16)
        } else {
            let mut samples = Vec::new();
            encoding.decode(bytes, &mut samples);
            Decoded::F32(samples)
        };
    }

    /// Whether no sample was decoded.
    pub fn is_empty(&self) -> bool {
        match self {
            Decoded::F32(v) => v.is_empty(),
            Decoded::S16(v) => v.is_empty(),
        }
    }

    /// As a [`super::Block`] of `channels` at `sample_rate`.
    pub fn into_block(self, channels: u16, sample_rate: u32) -> super::Block {
        match self {
            Decoded::F32(samples) => super::Block::from_f32(samples, channels, sample_rate),
            Decoded::S16(pcm16) => super::Block {
                samples: Vec::new(),
                pcm16,
                channels,
                sample_rate,
            },
        }
    }
}

/// 16-bit little-endian samples from `bytes` (a partial sample at the end is ignored) onto
/// the end of `out`, as they are: the integer form of [`Encoding::S16Le`]'s decoding
/// (`x / 32768` is what `decode` gives for each). A copy on little-endian machines.
pub fn decode_s16(bytes: &[u8], out: &mut Vec<i16>) {
    out.reserve(bytes.len() / 2);
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]])),
    );
}

/// 16-bit samples widened to f32 onto the end of `out`: exactly what [`Encoding::S16Le`]'s
/// `decode` gives for their bytes.
pub fn widen_s16(samples: &[i16], out: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `widen_s16_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
        // just above); that is the whole contract of calling a `target_feature` function.
        unsafe { widen_s16_avx2(samples, out) };
        return;
    }
    widen_s16_loop(samples, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn widen_s16_avx2(samples: &[i16], out: &mut Vec<f32>) {
    widen_s16_loop(samples, out);
}

#[inline(always)]
fn widen_s16_loop(samples: &[i16], out: &mut Vec<f32>) {
    out.reserve(samples.len());
    out.extend(samples.iter().map(|&x| f32::from(x) * (1.0 / 32768.0)));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_avx2(encoding: Encoding, bytes: &[u8], out: &mut Vec<f32>) {
    encoding.decode_samples(bytes, out);
}

/// G.711 µ-law to 16-bit linear (the ITU-T table: ±32124 at full scale, 0 for 0x7F and 0xFF).
pub fn mulaw_to_i16(byte: u8) -> i16 {
    MULAW[usize::from(byte)]
}

/// G.711 A-law to 16-bit linear (the ITU-T table: ±32256 at full scale, ±8 nearest zero).
pub fn alaw_to_i16(byte: u8) -> i16 {
    ALAW[usize::from(byte)]
}

/// Every µ-law code decoded, computed at compile time.
static MULAW: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = mulaw(i as u8);
        i += 1;
    }
    t
};

/// Every A-law code decoded, computed at compile time.
static ALAW: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw(i as u8);
        i += 1;
    }
    t
};

/// µ-law: the code is stored inverted; 3 bits of segment, 4 of step, biased by 0x84 (33 in
/// the standard's 14-bit scale) so that each segment doubles the step of the one below.
const fn mulaw(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// A-law: even bits inverted (XOR 0x55); segment 0 is linear, each one after doubles the step.
const fn alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoding: Encoding, bytes: &[u8]) -> Vec<f32> {
        let mut out = Vec::new();
        encoding.decode(bytes, &mut out);
        out
    }

    /// Values from the tables of ITU-T G.711 (its 14-bit µ-law and 13-bit A-law outputs,
    /// scaled to 16 bits: ×4 and ×8).
    #[test]
    fn g711_tables_match_the_reference_values() {
        let mulaw = [
            (0xFF, 0),
            (0x7F, 0),
            (0xFE, 8),
            (0x7E, -8),
            (0xF0, 120),
            (0xEF, 132),
            (0xDF, 396),
            (0x80, 32124),
            (0x00, -32124),
            (0x8F, 16764),
            (0x01, -31100),
            (0x02, -30076),
        ];
        for (code, want) in mulaw {
            assert_eq!(mulaw_to_i16(code), want, "µ-law {code:#04x}");
        }
        let alaw = [
            (0xD5, 8),
            (0x55, -8),
            (0xD4, 24),
            (0xC5, 264),
            (0xAA, 32256),
            (0x2A, -32256),
            (0xFA, 1008),
            (0x80, 5504),
            (0x00, -5504),
        ];
        for (code, want) in alaw {
            assert_eq!(alaw_to_i16(code), want, "A-law {code:#04x}");
        }
        // Each law is odd-symmetric in its sign bit, and monotone in the code within a sign.
        for code in 0..=255u8 {
            assert_eq!(
                mulaw_to_i16(code),
                -mulaw_to_i16(code ^ 0x80),
                "{code:#04x}"
            );
            assert_eq!(alaw_to_i16(code), -alaw_to_i16(code ^ 0x80), "{code:#04x}");
        }
        let positive_mulaw: Vec<i16> = (0x80..=0xFFu8).rev().map(mulaw_to_i16).collect();
        assert!(positive_mulaw.windows(2).all(|w| w[0] < w[1]));
        let mut positive_alaw: Vec<i16> = (0x80..=0xFFu8).map(alaw_to_i16).collect();
        positive_alaw.sort_unstable();
        positive_alaw.dedup();
        assert_eq!(
            positive_alaw.len(),
            128,
            "128 distinct positive A-law levels"
        );
    }

    #[test]
    fn every_encoding_decodes_to_the_same_scale() {
        assert_eq!(
            decode(Encoding::U8, &[0, 128, 255]),
            [-1.0, 0.0, 127.0 / 128.0]
        );
        assert_eq!(
            decode(Encoding::S16Le, &[0x00, 0x80, 0xff, 0x7f, 0, 0]),
            [-1.0, 32767.0 / 32768.0, 0.0]
        );
        assert_eq!(
            decode(Encoding::S24Le, &[0, 0, 0x80, 0xff, 0xff, 0x7f]),
            [-1.0, 8_388_607.0 / 8_388_608.0]
        );
        assert_eq!(decode(Encoding::S32Le, &[0, 0, 0, 0x80]), [-1.0]);
        let floats: Vec<u8> = [0.25f32, f32::NAN, f32::NEG_INFINITY]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(decode(Encoding::F32Le, &floats), [0.25, 0.0, -1.0]);
        assert_eq!(
            decode(Encoding::MuLaw, &[0x80, 0xFF]),
            [32124.0 / 32768.0, 0.0]
        );
        assert_eq!(decode(Encoding::ALaw, &[0x2A]), [-32256.0 / 32768.0]);
        // A partial sample at the end is not decoded; output is appended.
        let mut out = vec![9.0];
        Encoding::S16Le.decode(&[0, 0x40, 1], &mut out);
        assert_eq!(out, [9.0, 0.5]);
    }

    /// The integer form of 16-bit decoding, widened, is the f32 decoding bit for bit, for every
    /// value and at every length (odd byte counts drop the partial sample in both).
    #[test]
    fn s16_integer_decoding_widens_to_the_f32_decoding() {
        let every: Vec<u8> = (i16::MIN..=i16::MAX).flat_map(i16::to_le_bytes).collect();
        for len in [0, 1, 2, 3, 31, 64, 65, 1001, every.len()] {
            let bytes = &every[every.len() - len..];
            let mut ints = vec![7i16];
            decode_s16(bytes, &mut ints);
            assert_eq!(ints.len(), 1 + len / 2, "appended, whole samples only");
            let mut widened = vec![9.0f32];
            widen_s16(&ints[1..], &mut widened);
            let want = decode(Encoding::S16Le, bytes);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&widened[1..]), bits(&want), "{len} bytes");
            widened.truncate(1);
            widen_s16_loop(&ints[1..], &mut widened);
            assert_eq!(
                bits(&widened[1..]),
                bits(&want),
                "portable loop, {len} bytes"
            );
        }
    }

    /// The dispatched (AVX2 where present) loops and the baseline ones agree bit for bit.
    #[test]
    fn dispatched_and_baseline_decoding_agree() {
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for encoding in [
            Encoding::U8,
            Encoding::S16Le,
            Encoding::S24Le,
            Encoding::S32Le,
            Encoding::F32Le,
            Encoding::MuLaw,
            Encoding::ALaw,
        ] {
            let mut baseline = Vec::new();
            encoding.decode_samples(&bytes, &mut baseline);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&decode(encoding, &bytes)),
                bits(&baseline),
                "{encoding:?}"
            );
        }
    }
}
