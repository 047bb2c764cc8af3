//! The WAV header: the RIFF chunks up to the data chunk, read and checked before any sample.
//!
//! flux walks the chunks itself (fmt, fact, anything else) and keeps the bytes it read, then
//! hands them to hound, which parses them again for PCM and float files: the walk gives flux
//! what hound does not expose or refuses. It finds G.711 (µ-law, A-law), which hound does not
//! decode; it turns the sizes of a streamed WAV (`ffmpeg … -f wav -` writes 0xFFFFFFFF, some
//! writers 0) into "until the end of the input"; it drops a stray byte that makes the data
//! size a partial frame (sox reads such files); and it explains, from the fields themselves,
//! headers that are damaged or in a container flux does not read (RF64, Wave64).

use std::io::Read;

use crate::audio::pcm::Encoding;
use crate::audio::{AudioError, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// Data-chunk sizes at or above this are placeholders written by tools that stream WAV to a
/// pipe and cannot seek back to fix the header (sox writes 0x7ffff000, ffmpeg 0xFFFFFFFF).
/// Such a stream simply ends at EOF; only a real (smaller) size makes an early EOF a
/// truncation. The cost: a genuine WAV with over 2 GiB of data that is cut short ends quietly
/// instead of with an error.
pub(super) const STREAMED_DATA_LEN: u32 = 0x7fff_f000;

/// Most header bytes (all chunks before the data) kept to hand over to hound. Past this the
/// walk stops and hound skips the rest on its own, as it always did: memory stays bounded
/// whatever a hostile chunk size says.
const MAX_HEADER: usize = 1 << 20;

/// WAVE_FORMAT_EXTENSIBLE: the real format tag is the first two bytes of the subformat GUID.
const EXTENSIBLE: u16 = 0xfffe;
const ALAW: u16 = 6;
const MULAW: u16 = 7;

/// The fields of the fmt chunk that decide how the data is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fmt {
    /// The format tag, or for WAVE_FORMAT_EXTENSIBLE the subformat's.
    pub tag: u16,
    pub channels: u16,
    pub rate: u32,
    pub byte_rate: u32,
    pub block_align: u16,
    pub bits: u16,
}

impl Fmt {
    fn parse(body: &[u8]) -> Option<Fmt> {
        let u16_at = |i: usize| Some(u16::from_le_bytes(body.get(i..i + 2)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_le_bytes(body.get(i..i + 4)?.try_into().ok()?));
        let tag = match u16_at(0)? {
            EXTENSIBLE => u16_at(24).unwrap_or(EXTENSIBLE),
            tag => tag,
        };
        Some(Fmt {
            tag,
            channels: u16_at(2)?,
            rate: u32_at(4)?,
            byte_rate: u32_at(8)?,
            block_align: u16_at(12)?,
            bits: u16_at(14)?,
        })
    }

    /// The G.711 encoding, if the data is µ-law or A-law.
    pub fn g711(&self) -> Option<Encoding> {
        match self.tag {
            MULAW => Some(Encoding::MuLaw),
            ALAW => Some(Encoding::ALaw),
            _ => None,
        }
    }

    /// The bytes of one frame as hound counts them (`block_align / channels` per sample).
    fn hound_frame(&self) -> u32 {
        match self.channels {
            0 => 0,
            ch => u32::from(self.block_align / ch) * u32::from(ch),
        }
    }
}

/// What the walk found.
#[derive(Debug)]
pub(super) struct Header {
    /// The header's bytes as read, up to the data chunk's size field included; that field is
    /// rewritten where flux reads the data differently from what it says (see [`read`]).
    pub bytes: Vec<u8>,
    /// The fmt chunk, when the walk got that far.
    pub fmt: Option<Fmt>,
    /// The data chunk's size, as declared, when the walk reached the data chunk.
    pub data_len: Option<u32>,
    /// The data runs until the end of the input, whatever its declared size says.
    pub streamed: bool,
}

impl Header {
    /// Bytes of audio data to read, if the data chunk's size is meant: whole frames only.
    pub fn data_bytes(&self) -> Option<u64> {
        let frame = self.fmt.map_or(0, |f| u32::from(f.block_align));
        let len = self.data_len?;
        Some(u64::from(if frame == 0 { len } else { len - len % frame }))
    }
}

/// Read the header from `reader` (whose first 12 bytes, already read, are `head`): check the
/// RIFF/WAVE signature, then walk the chunks to the data chunk, keeping every byte.
///
/// `seekable` says whether the input is a regular file. A data size of 0xFFFFFFFF is a stream
/// written without seeking back anywhere; a size of 0 is one only on a pipe or stdin (in a
/// file it means no audio). Either becomes a placeholder hound reads as "very long", and the
/// data is read until the input ends.
pub(super) fn read(
    name: &str,
    head: Vec<u8>,
    reader: &mut impl Read,
    seekable: bool,
) -> Result<Header, AudioError> {
    check_riff_wave(name, &head)?;
    let mut header = Header {
        bytes: head,
        fmt: None,
        data_len: None,
        streamed: false,
    };
    let io_error = |reason| AudioError::Read {
        input: name.into(),
        reason,
    };
    // Each step reads what hound reads, in the same order, so that hound finds the same data
    // chunk; at an early end it stops, and hound reports the incomplete header as before.
    loop {
        let start = header.bytes.len();
        if !take(reader, 8, &mut header.bytes).map_err(io_error)? {
            return Ok(header);
        }
        let id: [u8; 4] = header.bytes[start..start + 4]
            .try_into()
            .unwrap_or_default();
        let len_bytes: [u8; 4] = header.bytes[start + 4..start + 8]
            .try_into()
            .unwrap_or_default();
        let len = u32::from_le_bytes(len_bytes);
        let want = match &id {
            b"data" => {
                header.data_len = Some(len);
                resize_data(&mut header, start + 4, seekable);
                return Ok(header);
            }
            // hound reads one 32-bit field of a fact chunk, whatever its size says.
            b"fact" => 4,
            b"fmt " if len <= 1024 => len as usize,
            _ if &id != b"fmt " && start + 8 + len as usize <= MAX_HEADER => len as usize,
            // Too large to keep: hound reads on from here, as it always did.
            _ => return Ok(header),
        };
        let body = header.bytes.len();
        if !take(reader, want, &mut header.bytes).map_err(io_error)? {
            return Ok(header);
        }
        if &id == b"fmt " {
            header.fmt = Fmt::parse(&header.bytes[body..]);
        }
    }
}

/// Rewrite the data size (at `at` in the header bytes) where flux reads the data differently:
/// a streamed size becomes the largest whole number of frames hound accepts, and a size that
/// ends in a partial frame (a stray byte) is cut to whole frames.
fn resize_data(header: &mut Header, at: usize, seekable: bool) {
    let (Some(fmt), Some(len)) = (header.fmt, header.data_len) else {
        return;
    };
    header.streamed = len >= STREAMED_DATA_LEN || (len == 0 && !seekable);
    let frame = fmt.hound_frame();
    if frame == 0 || fmt.g711().is_some() {
        return;
    }
    let size = if header.streamed && (len == u32::MAX || len == 0 || len % frame != 0) {
        u32::MAX / frame * frame
    } else {
        len - len % frame
    };
    header.bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
}

/// Append up to `n` bytes of `reader` to `out`; false when the input ended first.
fn take(reader: &mut impl Read, n: usize, out: &mut Vec<u8>) -> std::io::Result<bool> {
    let got = reader.take(n as u64).read_to_end(out)?;
    Ok(got == n)
}

/// Read the first 12 bytes (RIFF header) or as many as exist.
pub(super) fn read_head(name: &str, reader: &mut impl Read) -> Result<Vec<u8>, AudioError> {
    let mut head = Vec::with_capacity(12);
    reader
        .take(12)
        .read_to_end(&mut head)
        .map_err(|reason| AudioError::Read {
            input: name.into(),
            reason,
        })?;
    if head.is_empty() {
        return Err(AudioError::Empty { input: name.into() });
    }
    Ok(head)
}

/// The first bytes of a Sony Wave64 file: the GUID of its "riff" chunk.
const W64_RIFF: [u8; 16] = [
    b'r', b'i', b'f', b'f', 0x2e, 0x91, 0xcf, 0x11, 0xa5, 0xd6, 0x28, 0xdb, 0x04, 0xc1, 0x00, 0x00,
];

fn check_riff_wave(name: &str, head: &[u8]) -> Result<(), AudioError> {
    if head.len() == 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Ok(());
    }
    let container = if head.starts_with(b"RF64") || head.starts_with(b"BW64") {
        Some("RF64/BW64 (the 64-bit WAV for recordings over 4 GiB)")
    } else if head.len() == 12 && head[..] == W64_RIFF[..12] {
        Some("Sony Wave64 (W64)")
    } else {
        None
    };
    if let Some(container) = container {
        let path = path_in_fix(name);
        return Err(AudioError::Unsupported {
            input: name.into(),
            what: format!("{container}, a container flux does not read"),
            fix: format!(
                "stream it as a plain WAV instead: `ffmpeg -i {path} -f wav - | flux file -`"
            ),
        });
    }
    Err(AudioError::NotWav {
        input: name.into(),
        reason: sniff(head),
    })
}

/// A short guess at what a non-WAV input is, so the user knows which conversion to run.
fn sniff(head: &[u8]) -> String {
    let what = if head.len() < 12 && head.starts_with(b"RIFF") {
        "too short to be a WAV file"
    } else if head.starts_with(b"RIFF") {
        "a RIFF file but not WAVE, perhaps AVI or WebP"
    } else if head.starts_with(b"RIFX") {
        "big-endian RIFX WAV"
    } else if head.starts_with(b"ID3")
        || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0)
    {
        "looks like MP3"
    } else if head.starts_with(b"fLaC") {
        "looks like FLAC"
    } else if head.starts_with(b"OggS") {
        "looks like Ogg (Vorbis/Opus)"
    } else if head.starts_with(b"FORM") {
        "looks like AIFF"
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        "looks like MP4/M4A"
    } else if head.starts_with(b"\x1a\x45\xdf\xa3") {
        "looks like WebM/Matroska"
    } else {
        "no RIFF/WAVE header; perhaps raw PCM"
    };
    format!("not a RIFF/WAVE file: {what}")
}

/// The input as a command line in a fix names it: a path as given; stdin, which the command
/// cannot read again, as the file it came from.
fn path_in_fix(name: &str) -> &str {
    if name == "stdin" { "in.wav" } else { name }
}

/// The fix for a header whose fields contradict each other: sox derives them again.
pub(super) fn rewrite_fix(name: &str) -> String {
    let name = path_in_fix(name);
    format!(
        "the header is damaged; sox reads such files and writes a correct one: \
         `sox {name} fixed.wav`"
    )
}

/// The fix for a header that lacks what is needed to read the samples at all.
const RAW_FIX: &str = "the header is damaged; if you know the recording's real format, send \
    it as raw PCM: `flux listen --stdin --rate R --channels C`";

fn bad_header(name: &str, problem: String, fix: String) -> AudioError {
    AudioError::BadHeader {
        input: name.into(),
        problem,
        fix,
    }
}

/// Check the fmt fields hound trusts without saying which is wrong: zero channels, a block
/// align that does not hold the samples, a byte rate that contradicts the rest. Called before
/// hound, so the message names the field.
pub(super) fn check_fields(name: &str, fmt: &Fmt) -> Result<(), AudioError> {
    if fmt.channels == 0 {
        return Err(bad_header(
            name,
            "the WAV header declares zero channels".into(),
            RAW_FIX.into(),
        ));
    }
    if fmt.rate == 0 {
        return Err(bad_header(
            name,
            "the WAV header gives a sample rate of 0 Hz".into(),
            RAW_FIX.into(),
        ));
    }
    check_range(name, fmt.rate, fmt.channels)?;
    // A block align too small for the samples (a writer that forgot the channels, or 0).
    // Larger ones are legal (24 bits in 4-byte containers) and left to hound, as are sizes
    // that are not whole bytes (hound names those).
    let need = u32::from(fmt.channels) * u32::from(fmt.bits.div_ceil(8));
    let hound_sample = fmt.block_align / fmt.channels;
    if fmt.bits.is_multiple_of(8)
        && fmt.bits > 0
        && u32::from(hound_sample) * 8 < u32::from(fmt.bits)
    {
        return Err(bad_header(
            name,
            format!(
                "the WAV header's block align is {} bytes, but {} channel(s) of {}-bit samples \
                 take {need}",
                fmt.block_align, fmt.channels, fmt.bits
            ),
            rewrite_fix(name),
        ));
    }
    if Some(fmt.byte_rate) != u32::from(fmt.block_align).checked_mul(fmt.rate)
        && (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&fmt.rate)
    {
        return Err(bad_header(
            name,
            format!(
                "the WAV header's byte rate is {}, but {} Hz of {}-byte frames is {}",
                fmt.byte_rate,
                fmt.rate,
                fmt.block_align,
                u64::from(fmt.rate) * u64::from(fmt.block_align)
            ),
            rewrite_fix(name),
        ));
    }
    Ok(())
}

/// Checks on the format that apply whichever decoder reads it: rate and channel count in the
/// ranges the conditioner takes.
pub(super) fn check_range(name: &str, rate: u32, channels: u16) -> Result<(), AudioError> {
    let path = path_in_fix(name);
    if channels > MAX_CHANNELS {
        return Err(AudioError::Unsupported {
            input: name.into(),
            what: format!("{channels} channels, more than the {MAX_CHANNELS} flux accepts"),
            fix: format!("keep the channels you need, e.g. `sox {path} out.wav remix 1 2`"),
        });
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(AudioError::Unsupported {
            input: name.into(),
            what: format!(
                "a sample rate of {rate} Hz, outside the {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} \
                 Hz flux accepts"
            ),
            fix: format!(
                "resample it, e.g. `sox {path} -r 16000 out.wav`; if the header is wrong, send \
                 the samples as raw PCM: `flux listen --stdin --rate R --channels C`"
            ),
        });
    }
    Ok(())
}

/// The usual fix for a sample format flux does not decode.
pub(super) fn convert_fix(name: &str) -> String {
    let name = path_in_fix(name);
    format!("convert it to 16-bit PCM first, e.g. `sox {name} -b 16 -e signed-integer out.wav`")
}

/// Map a hound header error to one of ours with a message a user can act on. `eof` says
/// whether the input had ended when hound gave up.
pub(super) fn header_error(name: &str, eof: bool, e: hound::Error) -> AudioError {
    let input = name.to_string();
    let unsupported = |what: &str| AudioError::Unsupported {
        input: input.clone(),
        what: what.into(),
        fix: convert_fix(name),
    };
    match e {
        hound::Error::IoError(_) if eof => AudioError::NotWav {
            input,
            reason: "the header is incomplete: the input ends before any audio data".into(),
        },
        hound::Error::IoError(reason) => AudioError::Read { input, reason },
        hound::Error::Unsupported => unsupported(
            "a compressed or unknown encoding (ADPCM, MP3-in-WAV...) or an extensible WAV \
             with an unknown subformat",
        ),
        hound::Error::FormatError(reason) => match reason {
            "bits per sample is not 32" => {
                unsupported("float samples that are not 32-bit, e.g. 64-bit float")
            }
            "bits per sample is not a multiple of 8" => {
                unsupported("a sample size that is not a whole number of bytes, e.g. 12-bit")
            }
            "bits per sample is not 8 or 16" => unsupported("an unusual integer sample size"),
            _ => AudioError::NotWav {
                input,
                reason: format!("malformed WAV header: {reason}"),
            },
        },
        other => AudioError::NotWav {
            input,
            reason: format!("malformed WAV header: {other}"),
        },
    }
}

/// The sample sizes flux decodes, as hound reports the format.
pub(super) fn check_spec(name: &str, spec: &hound::WavSpec) -> Result<(), AudioError> {
    check_range(name, spec.sample_rate, spec.channels)?;
    let what = match spec.sample_format {
        hound::SampleFormat::Int if ![8, 16, 24, 32].contains(&spec.bits_per_sample) => {
            format!("{}-bit integer samples", spec.bits_per_sample)
        }
        hound::SampleFormat::Float if spec.bits_per_sample != 32 => {
            format!("{}-bit float samples", spec.bits_per_sample)
        }
        _ => return Ok(()),
    };
    Err(AudioError::Unsupported {
        input: name.into(),
        what,
        fix: convert_fix(name),
    })
}

/// The format in words, for the status line.
pub(super) fn describe(spec: &hound::WavSpec) -> String {
    let kind = match spec.sample_format {
        hound::SampleFormat::Int => "integer",
        hound::SampleFormat::Float => "float",
    };
    format!(
        "{} Hz, {} ch, {}-bit {kind} PCM",
        spec.sample_rate, spec.channels, spec.bits_per_sample
    )
}

#[cfg(test)]
mod tests {
    use super::super::WavSource;
    use super::super::test_support::*;
    use super::*;
    use std::io::Cursor;
    use std::path::Path;

    #[test]
    fn truncated_inside_header_is_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_int(dir.path(), "h.wav", spec(1, 16, false), &[1, 2, 3]);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [4, 12, 20, 30, 40] {
            let r = WavSource::from_reader("cut", Box::new(Cursor::new(bytes[..cut].to_vec())));
            assert!(
                matches!(r, Err(AudioError::NotWav { .. })),
                "cut {cut}: {:?}",
                r.err()
            );
        }
    }

    #[test]
    fn non_wav_inputs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mp3 = dir.path().join("song.mp3");
        std::fs::write(&mp3, b"ID3\x04\x00\x00\x00\x00\x00\x00 lots of mp3 data").unwrap();
        let e = WavSource::open(&mp3).err().unwrap();
        let msg = e.to_string();
        assert!(matches!(e, AudioError::NotWav { .. }));
        assert!(
            msg.contains("song.mp3") && msg.contains("MP3") && msg.contains("sox"),
            "{msg}"
        );

        let raw = WavSource::from_reader("stdin", Box::new(Cursor::new(vec![1u8; 100])));
        let msg = raw.err().unwrap().to_string();
        assert!(
            msg.contains("stdin") && msg.contains("raw PCM") && msg.contains("--stdin"),
            "{msg}"
        );

        let missing = WavSource::open(Path::new("/nonexistent/x.wav"))
            .err()
            .unwrap();
        assert!(matches!(missing, AudioError::Open { .. }));
        assert!(missing.to_string().contains("/nonexistent/x.wav"));
    }

    #[test]
    fn unsupported_formats_are_explained() {
        let pcm_guid = [
            1u8, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ];
        let odd_guid = [
            9u8, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ];
        let ext = |valid_bits: u16, guid: [u8; 16]| {
            let mut extra = Vec::new();
            extra.extend(22u16.to_le_bytes());
            extra.extend(valid_bits.to_le_bytes());
            extra.extend(4u32.to_le_bytes());
            extra.extend(guid);
            extra
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "12-bit",
                fmt_header(0xfffe, 1, 16000, 16, 40, &ext(12, pcm_guid), 4),
                "12-bit",
            ),
            (
                "unknown subformat",
                fmt_header(0xfffe, 1, 16000, 16, 40, &ext(16, odd_guid), 4),
                "subformat",
            ),
            (
                "64-bit float",
                fmt_header(3, 1, 16000, 64, 16, &[], 16),
                "64-bit",
            ),
            ("ADPCM", fmt_header(2, 1, 8000, 8, 16, &[], 4), "encoding"),
            (
                "zero channels",
                fmt_header(1, 0, 16000, 16, 16, &[], 4),
                "zero channels",
            ),
            ("absurd rate", header16(1, 500_000, 4), "500000"),
            ("absurdly low rate", header16(1, 1, 4), "1 Hz"),
            (
                "too many channels",
                header16(65, 16000, 130 * 2),
                "65 channels",
            ),
        ];
        for (label, mut bytes, needle) in cases {
            bytes.extend([0u8; 260]);
            match WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes))) {
                Err(e @ (AudioError::Unsupported { .. } | AudioError::BadHeader { .. })) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(needle) && msg.contains("x.wav"),
                        "{label}: {msg}"
                    );
                }
                other => panic!(
                    "{label}: expected Unsupported or BadHeader, got {:?}",
                    other.err()
                ),
            }
        }
    }

    /// Each damaged or foreign header gets a message that names its actual problem and a fix
    /// that works for it (no nested parentheses, no MP3 advice for a WAV).
    #[test]
    fn hints_name_the_actual_problem() {
        let mut rf64 = b"RF64\xff\xff\xff\xffWAVEds64".to_vec();
        rf64.extend([0u8; 40]);
        let mut w64 = W64_RIFF.to_vec();
        w64.extend([0u8; 40]);
        let mut bad_align = header16(2, 16000, 400);
        bad_align[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align: 2, not 4
        bad_align[28..32].copy_from_slice(&32000u32.to_le_bytes());
        let mut bad_rate = header16(1, 16000, 400);
        bad_rate[28..32].copy_from_slice(&1234u32.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
            (
                "zero channels",
                fmt_header(1, 0, 16000, 16, 16, &[], 400),
                &["declares zero channels", "--channels"],
            ),
            (
                "0 Hz",
                header16(1, 0, 400),
                &["sample rate of 0 Hz", "--rate"],
            ),
            (
                "RF64",
                rf64,
                &["RF64", "ffmpeg -i x.wav -f wav - | flux file -"],
            ),
            ("W64", w64, &["Wave64", "ffmpeg -i x.wav -f wav -"]),
            (
                "block align",
                bad_align,
                &["block align is 2 bytes", "take 4", "sox x.wav fixed.wav"],
            ),
            (
                "byte rate",
                bad_rate,
                &["byte rate is 1234", "sox x.wav fixed.wav"],
            ),
            (
                "500 kHz",
                header16(1, 500_000, 400),
                &["500000 Hz", "sox x.wav -r 16000"],
            ),
        ];
        for (label, mut bytes, needles) in cases {
            bytes.extend([0u8; 400]);
            let e = WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes)))
                .err()
                .unwrap_or_else(|| panic!("{label}: accepted"));
            let msg = e.to_string();
            for needle in needles {
                assert!(msg.contains(needle), "{label}: {msg}");
            }
            assert!(
                !msg.contains("mp3") && !msg.contains("(("),
                "{label}: {msg}"
            );
            assert!(!msg.contains("-b 16 -e signed-integer"), "{label}: {msg}");
        }
    }
}
