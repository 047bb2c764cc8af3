//! Turns the bytes of binary frames into samples for the VAD.
//!
//! Frames may split a sample (or a WAV header) anywhere, so each decoder keeps the bytes it
//! could not use yet and prepends them to the next frame. What is kept is always shorter
//! than one sample (or than the WAV header being parsed, which is capped), so memory does not
//! grow with the stream.
//!
//! Encodings (Deepgram's names):
//! - `linear16`: signed 16-bit little-endian PCM.
//! - `linear32`: signed 32-bit little-endian *integer* PCM. Deepgram's docs disagree (the
//!   2025-10-16 changelog says "32-bit signed little-endian PCM", the encoding page says
//!   floating point); we follow the changelog.
//! - `mulaw`, `alaw`: G.711, 8 bits per sample, through the client's table (`audio::pcm`).
//! - no `encoding`: containerized audio. Only WAV (RIFF, 16-bit PCM) is decoded; the header
//!   is parsed incrementally from the first bytes of the stream.
//! - `opus`, `ogg-opus`: refused at the handshake (see `handshake.rs`); never reach here.

use crate::audio::pcm::{alaw_to_i16, mulaw_to_i16};
use crate::protocol::Encoding;

/// How the samples of a stream are laid out, known at the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw {
        encoding: Encoding,
        rate: u32,
    },
    /// No `encoding`: a container whose header tells the format.
    Container,
}

/// Audio the server cannot decode; the session answers with a fatal `Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Undecodable(pub String);

/// Largest WAV header (all chunks before `data`) we are willing to buffer.
const MAX_WAV_HEADER: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    Pcm(Pcm),
    /// Still reading the RIFF header; holds the bytes so far.
    WavHeader(Vec<u8>),
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Pcm {
    kind: SampleKind,
    channels: u16,
    rate: u32,
    /// Bytes of audio left in the WAV `data` chunk, when its size is known.
    remaining: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleKind {
    I16,
    I32,
    Mulaw,
    Alaw,
}

impl SampleKind {
    fn width(self) -> usize {
        match self {
            SampleKind::I16 => 2,
            SampleKind::I32 => 4,
            SampleKind::Mulaw | SampleKind::Alaw => 1,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            SampleKind::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0,
            SampleKind::I32 => {
                (f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) / 2_147_483_648.0) as f32
            }
            SampleKind::Mulaw => f32::from(mulaw_to_i16(b[0])) / 32768.0,
            SampleKind::Alaw => f32::from(alaw_to_i16(b[0])) / 32768.0,
        }
    }
}

/// Decodes one stream.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Bytes of an incomplete sample frame carried over to the next binary frame.
    carry: Vec<u8>,
}

impl Decoder {
    pub fn new(format: Format) -> Decoder {
        let state = match format {
            Format::Raw { encoding, rate } => {
                let kind = match encoding {
                    Encoding::Linear16 => Some(SampleKind::I16),
                    Encoding::Linear32 => Some(SampleKind::I32),
                    Encoding::Mulaw => Some(SampleKind::Mulaw),
                    Encoding::Alaw => Some(SampleKind::Alaw),
                    Encoding::Opus | Encoding::OggOpus => None,
                };
                match kind {
                    Some(kind) => State::Pcm(Pcm {
                        kind,
                        channels: 1,
                        rate,
                        remaining: None,
                    }),
                    None => State::Failed,
                }
            }
            Format::Container => State::WavHeader(Vec::new()),
        };
        Decoder {
            state,
            carry: Vec::new(),
        }
    }

    /// The sample rate, once known (a WAV stream knows it after its header).
    pub fn rate(&self) -> Option<u32> {
        match &self.state {
            State::Pcm(p) => Some(p.rate),
            _ => None,
        }
    }

    /// Decodes `bytes`, appending mono samples to `out` (multi-channel WAV is averaged).
    pub fn decode(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), Undecodable> {
        if let State::WavHeader(header) = &mut self.state {
            header.extend_from_slice(bytes);
            match parse_wav_header(header)? {
                None => {
                    if header.len() > MAX_WAV_HEADER {
                        self.state = State::Failed;
                        return Err(Undecodable(format!(
                            "no WAV data chunk in the first {MAX_WAV_HEADER} bytes"
                        )));
                    }
                    return Ok(());
                }
                Some((pcm, data_start)) => {
                    let rest = header.split_off(data_start);
                    self.state = State::Pcm(pcm);
                    return self.decode_pcm(&rest, out);
                }
            }
        }
        self.decode_pcm(bytes, out)
    }

    fn decode_pcm(&mut self, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), Undecodable> {
        let State::Pcm(pcm) = &mut self.state else {
            return Ok(());
        };
        let mut bytes = bytes;
        if let Some(left) = &mut pcm.remaining {
            // Whatever follows the `data` chunk (LIST chunks and the like) is not audio.
            let take = bytes
                .len()
                .min(usize::try_from(*left).unwrap_or(usize::MAX));
            bytes = &bytes[..take];
            *left -= take as u64;
        }
        let frame = pcm.kind.width() * usize::from(pcm.channels);
        let channels = usize::from(pcm.channels);
        let width = pcm.kind.width();
        let kind = pcm.kind;
        let mut emit = |chunk: &[u8]| {
            let sum: f32 = chunk.chunks_exact(width).map(|s| kind.decode(s)).sum();
            out.push(sum / channels as f32);
        };
        if !self.carry.is_empty() {
            let need = frame - self.carry.len();
            let take = need.min(bytes.len());
            self.carry.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.carry.len() < frame {
                return Ok(());
            }
            emit(&self.carry);
            self.carry.clear();
        }
        let whole = bytes.len() - bytes.len() % frame;
        match (kind, channels) {
            // The common case, 16-bit mono, in a loop the compiler vectorizes: the same
            // values as `emit` (a sum of one sample, divided by one), several times faster.
            (SampleKind::I16, 1) => out.extend(
                bytes[..whole]
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
            ),
            _ => {
                for chunk in bytes[..whole].chunks_exact(frame) {
                    emit(chunk);
                }
            }
        }
        self.carry.extend_from_slice(&bytes[whole..]);
        Ok(())
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Parses a RIFF/WAVE header. `Ok(None)`: need more bytes. `Ok(Some((format, offset)))`:
/// audio starts at `offset`.
fn parse_wav_header(b: &[u8]) -> Result<Option<(Pcm, usize)>, Undecodable> {
    if b.len() >= 4 {
        let magic = &b[..4];
        if magic == b"OggS" {
            return Err(Undecodable(
                "the stream is Ogg; flux serve does not decode Opus or other Ogg audio \
                 (send WAV or raw linear16)"
                    .into(),
            ));
        }
        if magic == [0x1A, 0x45, 0xDF, 0xA3] {
            return Err(Undecodable(
                "the stream is WebM; flux serve does not decode WebM/Opus audio (send WAV or \
                 raw linear16)"
                    .into(),
            ));
        }
        if magic != b"RIFF" && magic != b"RF64" {
            return Err(Undecodable(
                "no encoding was given, so a container was expected, but the stream does not \
                 start with a WAV (RIFF) header; for raw audio set encoding and sample_rate"
                    .into(),
            ));
        }
    }
    if b.len() < 12 {
        return Ok(None);
    }
    if &b[8..12] != b"WAVE" {
        return Err(Undecodable("RIFF stream is not WAVE audio".into()));
    }
    let mut fmt: Option<(SampleKind, u16, u32)> = None;
    let mut at = 12;
    loop {
        if b.len() < at + 8 {
            return Ok(None);
        }
        let id = &b[at..at + 4];
        let len = u32_at(b, at + 4);
        let body = at + 8;
        if id == b"data" {
            let Some((kind, channels, rate)) = fmt else {
                return Err(Undecodable(
                    "WAV data chunk comes before its fmt chunk".into(),
                ));
            };
            // Streaming writers leave the size at 0 or 0xFFFFFFFF: read to the end then.
            let remaining = (len != 0 && len != u32::MAX).then_some(u64::from(len));
            let pcm = Pcm {
                kind,
                channels,
                rate,
                remaining,
            };
            return Ok(Some((pcm, body)));
        }
        let len = len as usize;
        if id == b"fmt " {
            if b.len() < body + 16 {
                return Ok(None);
            }
            if len < 16 {
                return Err(Undecodable("WAV fmt chunk is too short".into()));
            }
            fmt = Some(wav_format(b, body, len)?);
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
        if at > MAX_WAV_HEADER {
            return Err(Undecodable(format!(
                "no WAV data chunk in the first {MAX_WAV_HEADER} bytes"
            )));
        }
    }
}

fn wav_format(b: &[u8], at: usize, len: usize) -> Result<(SampleKind, u16, u32), Undecodable> {
    let mut tag = u16_at(b, at);
    let channels = u16_at(b, at + 2);
    let rate = u32_at(b, at + 4);
    let bits = u16_at(b, at + 14);
    // WAVE_FORMAT_EXTENSIBLE carries the real format in its sub-format GUID.
    if tag == 0xFFFE && len >= 26 && b.len() >= at + 26 {
        tag = u16_at(b, at + 24);
    }
    if channels == 0 || !(1000..=384_000).contains(&rate) {
        return Err(Undecodable(format!(
            "WAV header declares {channels} channels at {rate} Hz"
        )));
    }
    let kind = match (tag, bits) {
        (1, 16) => SampleKind::I16,
        (1, 32) => SampleKind::I32,
        (7, 8) => SampleKind::Mulaw,
        (6, 8) => SampleKind::Alaw,
        _ => {
            return Err(Undecodable(format!(
                "WAV format {tag} with {bits}-bit samples is not supported; flux serve decodes \
                 16-bit PCM WAV (also 32-bit PCM, mu-law and A-law)"
            )));
        }
    };
    Ok((kind, channels, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_header(rate: u32, channels: u16, data_len: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(36 + data_len).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
        h.extend_from_slice(&(2 * channels).to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"LIST\x04\x00\x00\x00abcd");
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_len.to_le_bytes());
        h
    }

    #[test]
    fn g711_reference_values() {
        assert_eq!(mulaw_to_i16(0xFF), 0);
        assert_eq!(mulaw_to_i16(0x7F), 0);
        assert_eq!(mulaw_to_i16(0x00), -32124);
        assert_eq!(mulaw_to_i16(0x80), 32124);
        assert_eq!(alaw_to_i16(0xD5), 8);
        assert_eq!(alaw_to_i16(0x55), -8);
        assert_eq!(alaw_to_i16(0xAA), 32256);
        assert_eq!(alaw_to_i16(0x2A), -32256);
    }

    #[test]
    fn split_samples_are_reassembled() {
        let samples: Vec<i16> = vec![1000, -2000, 32767, -32768, 5];
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut d = Decoder::new(Format::Raw {
            encoding: Encoding::Linear16,
            rate: 16000,
        });
        let mut out = Vec::new();
        for chunk in bytes.chunks(3) {
            d.decode(chunk, &mut out).unwrap();
        }
        let back: Vec<i16> = out.iter().map(|s| (s * 32768.0) as i16).collect();
        assert_eq!(back, samples);
        // Whole frames (the vectorized 16-bit mono path) give exactly the per-sample values.
        let mut whole = Vec::new();
        d.decode(&bytes, &mut whole).unwrap();
        let exact: Vec<u32> = samples
            .iter()
            .map(|&s| (f32::from(s) / 32768.0).to_bits())
            .collect();
        assert_eq!(whole.iter().map(|s| s.to_bits()).collect::<Vec<_>>(), exact);
    }

    #[test]
    fn linear32_is_signed_integer() {
        let mut d = Decoder::new(Format::Raw {
            encoding: Encoding::Linear32,
            rate: 16000,
        });
        let mut out = Vec::new();
        d.decode(&(i32::MIN / 2).to_le_bytes(), &mut out).unwrap();
        assert_eq!(out, vec![-0.5]);
    }

    #[test]
    fn wav_header_split_anywhere_and_stereo_averaged() {
        let mut stream = wav_header(24000, 2, 8);
        for s in [1000i16, 3000, -500, -1500] {
            stream.extend_from_slice(&s.to_le_bytes());
        }
        stream.extend_from_slice(b"trailing chunk, not audio");
        for split in 1..stream.len() {
            let mut d = Decoder::new(Format::Container);
            let mut out = Vec::new();
            d.decode(&stream[..split], &mut out).unwrap();
            d.decode(&stream[split..], &mut out).unwrap();
            assert_eq!(d.rate(), Some(24000));
            let back: Vec<i16> = out.iter().map(|s| (s * 32768.0) as i16).collect();
            assert_eq!(back, vec![2000, -1000], "split at {split}");
        }
    }

    #[test]
    fn containers_we_cannot_decode_are_named() {
        for (bytes, word) in [
            (&b"OggS\0\x02"[..], "Ogg"),
            (&[0x1A, 0x45, 0xDF, 0xA3, 1][..], "WebM"),
            (&b"\x01\x02\x03\x04\x05"[..], "RIFF"),
        ] {
            let err = Decoder::new(Format::Container)
                .decode(bytes, &mut Vec::new())
                .unwrap_err();
            assert!(err.0.contains(word), "{err}");
        }
        let mut float_wav = wav_header(16000, 1, 0);
        float_wav[20] = 3;
        let err = Decoder::new(Format::Container)
            .decode(&float_wav, &mut Vec::new())
            .unwrap_err();
        assert!(err.0.contains("not supported"), "{err}");
    }
}
