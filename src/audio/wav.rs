//! WAV input (a file, or a WAV stream on stdin), read in bounded blocks so that memory does
//! not grow with the length of the recording.
//!
//! hound parses the header; the data chunk is then read in bulk and decoded a block at a time.
//! hound's per-sample iterator costs about 1 CPU-second per hour of 48 kHz stereo (one
//! `read_exact` and one `Result` per sample), more than the rest of the audio path together;
//! a bulk read and a tight decode loop cost a few hundredths of that. Sample layouts other than
//! the standard ones still go through hound's iterator, which is exact for everything hound
//! supports.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{
    AudioError, Block, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, RetryInterrupted, Source,
    SourceInfo,
};

/// Bytes of the data chunk read at a time (rounded down to whole frames): about 0.7 s of 48 kHz
/// stereo 16-bit, so a file arrives in few, large blocks (the conditioner then hands the
/// session several frames at once) and per-block costs vanish. At most 128 KiB whatever the
/// format, and always at least 512 frames (the widest frame is 64 channels of 4 bytes). A
/// read that returns less (a pipe) is passed on as soon as it completes a frame, so this sets
/// no latency.
pub const READ_BYTES: usize = 128 * 1024;

/// Frames per block on the per-sample path (uncommon layouts, decoded by hound).
pub const BLOCK_FRAMES: usize = 4096;

/// Data-chunk sizes at or above this are placeholders written by tools that stream WAV to a
/// pipe and cannot seek back to fix the header (sox writes 0x7ffff000). Such a stream simply
/// ends at EOF; only a real (smaller) size makes an early EOF a truncation. The cost: a
/// genuine WAV with over 2 GiB of data that is cut short ends quietly instead of with an error.
const STREAMED_DATA_LEN: u32 = 0x7fff_f000;

/// Shared between the reader we hand to hound and the source, so that after hound reports a
/// bare I/O error we can still tell "the data ran out" from "the device failed", and after the
/// header we know the raw data-chunk size that hound does not expose.
#[derive(Default)]
struct Probe {
    /// The underlying reader returned 0 bytes for a non-empty buffer.
    eof: AtomicBool,
    /// The last 8 bytes consumed, little-endian packed (newest byte in the top 8 bits). Right
    /// after the header this is the data chunk's "data" tag and its length.
    last8: AtomicU64,
}

impl Probe {
    /// The data chunk's declared length, if the last header bytes read were a data chunk header.
    fn data_len(&self) -> Option<u32> {
        let bytes = self.last8.load(Ordering::Relaxed).to_le_bytes();
        (&bytes[..4] == b"data")
            .then(|| u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
    }
}

type Inner = io::Chain<Cursor<Vec<u8>>, BufReader<RetryInterrupted<Box<dyn Read + Send>>>>;

/// The reader hound consumes: records EOF and the trailing header bytes in the [`Probe`].
struct Tracked {
    inner: Inner,
    probe: Arc<Probe>,
    /// Bytes read so far: the offset in the input of the next byte.
    position: u64,
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        if n == 0 && !buf.is_empty() {
            self.probe.eof.store(true, Ordering::Relaxed);
        }
        let mut last8 = self.probe.last8.load(Ordering::Relaxed);
        for &b in &buf[n.saturating_sub(8)..n] {
            last8 = (last8 >> 8) | (u64::from(b) << 56);
        }
        self.probe.last8.store(last8, Ordering::Relaxed);
        Ok(n)
    }
}

/// The standard sample layouts, decoded in bulk: the container is the smallest whole number of
/// bytes that holds the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 8-bit unsigned (WAV's 8-bit PCM is offset binary).
    U8,
    I16,
    I24,
    I32,
    F32,
}

impl Layout {
    fn of(spec: &hound::WavSpec) -> Option<Layout> {
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 8) => Some(Layout::U8),
            (hound::SampleFormat::Int, 16) => Some(Layout::I16),
            (hound::SampleFormat::Int, 24) => Some(Layout::I24),
            (hound::SampleFormat::Int, 32) => Some(Layout::I32),
            (hound::SampleFormat::Float, 32) => Some(Layout::F32),
            _ => None,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Layout::U8 => 1,
            Layout::I16 => 2,
            Layout::I24 => 3,
            Layout::I32 | Layout::F32 => 4,
        }
    }

    /// Decode whole samples from `bytes` (a multiple of [`Layout::bytes`]) onto `out`. The
    /// scaling is the same as for hound's samples (`v as f32 * 2^-(bits-1)`), so both paths
    /// give identical values. Compiled for AVX2 too, chosen at run time: 16-bit decoding then
    /// takes half the time (in the profile of 48 kHz stereo it was a tenth of the audio thread).
    fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `decode_avx2` is only compiled for AVX2, and this CPU has AVX2 (checked
            // just above); that is the whole contract of calling a `target_feature` function.
            unsafe { decode_avx2(self, bytes, out) };
            return;
        }
        self.decode_samples(bytes, out);
    }

    /// The loops behind [`Layout::decode`], one per layout. `extend` from an exact-size
    /// iterator writes each value once (no zeroing first) and vectorizes.
    #[inline(always)]
    fn decode_samples(self, bytes: &[u8], out: &mut Vec<f32>) {
        out.reserve(bytes.len() / self.bytes());
        match self {
            Layout::U8 => {
                out.extend(
                    bytes
                        .iter()
                        .map(|&b| (i32::from(b) - 128) as f32 * (1.0 / 128.0)),
                );
            }
            Layout::I16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32768.0)),
            ),
            Layout::I24 => out.extend(bytes.chunks_exact(3).map(|b| {
                // The bytes into the top of an i32; the arithmetic shift extends the sign.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                v as f32 * (1.0 / 8_388_608.0)
            })),
            Layout::I32 => out.extend(bytes.chunks_exact(4).map(|b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            })),
            Layout::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| super::sanitize(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            ),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_avx2(layout: Layout, bytes: &[u8], out: &mut Vec<f32>) {
    layout.decode_samples(bytes, out);
}

/// Where the samples come from.
enum Samples {
    /// The data chunk read directly, `remaining` bytes still to come (the chunk's declared
    /// size, or hound's sample count for a placeholder-length stream, exactly where hound's
    /// iterator would stop: chunks after the data are never read).
    Bulk {
        reader: Tracked,
        layout: Layout,
        remaining: u64,
        /// Read buffer: [`READ_BYTES`] rounded down to whole frames, plus [`READ_ALIGN`] bytes
        /// of play to place the data (see [`read_start`]); allocated once.
        /// `buf[start..start + filled]` is read but not yet handed out: less than one frame
        /// between calls, the start of a frame a short read cut in two.
        buf: Vec<u8>,
        start: usize,
        filled: usize,
    },
    /// hound's iterator, for layouts the bulk path does not decode.
    PerSample(PerSample),
}

/// hound's sample iterator, typed by the file's sample format, yielding f32 in [-1, 1].
enum PerSample {
    Int {
        iter: hound::WavIntoSamples<Tracked, i32>,
        scale: f32,
    },
    Float(hound::WavIntoSamples<Tracked, f32>),
}

impl PerSample {
    fn next_f32(&mut self) -> Option<Result<f32, hound::Error>> {
        match self {
            PerSample::Int { iter, scale } => iter.next().map(|r| r.map(|v| v as f32 * *scale)),
            PerSample::Float(iter) => iter.next().map(|r| r.map(super::sanitize)),
        }
    }
}

/// A WAV file or stream: integer PCM of 8, 16, 24 or 32 bits, or 32-bit float, at any rate and
/// channel count within [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and [`MAX_CHANNELS`].
pub struct WavSource {
    name: String,
    info: SourceInfo,
    samples: Samples,
    probe: Arc<Probe>,
    /// Bits per sample as declared, for messages.
    bits: u16,
    frames_read: u64,
    /// An error found after the last good frames; handed out on the call after them.
    pending: Option<AudioError>,
    done: bool,
}

impl WavSource {
    /// Open a WAV file by path. The display name in errors is the path as given.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|reason| AudioError::Open {
            input: name.clone(),
            reason,
        })?;
        Self::from_reader(&name, Box::new(file))
    }

    /// Read a WAV stream from any reader (e.g. stdin for `-`). Needs no `Seek`.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<Self, AudioError> {
        let mut reader = BufReader::new(RetryInterrupted(reader));
        let head = read_head(name, &mut reader)?;
        check_riff_wave(name, &head)?;

        let probe = Arc::new(Probe::default());
        let tracked = Tracked {
            inner: Cursor::new(head).chain(reader),
            probe: Arc::clone(&probe),
            position: 0,
        };
        let wav = hound::WavReader::new(tracked).map_err(|e| header_error(name, &probe, e))?;
        let spec = wav.spec();
        check_spec(name, &spec)?;

        let streamed = probe.data_len().is_some_and(|len| len >= STREAMED_DATA_LEN);
        let total_frames = (!streamed).then(|| u64::from(wav.duration()));
        if total_frames == Some(0) {
            return Err(AudioError::Empty { input: name.into() });
        }
        let info = SourceInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            total_frames,
            description: describe(&spec),
        };
        let samples = match bulk_layout(&spec, u64::from(wav.len()), probe.data_len()) {
            Some(layout) => Samples::Bulk {
                remaining: u64::from(wav.len()) * layout.bytes() as u64,
                reader: wav.into_inner(),
                layout,
                buf: vec![
                    0;
                    read_buffer_len(usize::from(spec.channels) * layout.bytes()) + READ_ALIGN
                ],
                start: 0,
                filled: 0,
            },
            None => Samples::PerSample(match spec.sample_format {
                hound::SampleFormat::Int => PerSample::Int {
                    iter: wav.into_samples(),
                    // Exact power of two, so 16-bit input maps to f32 and back bit for bit.
                    scale: 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32,
                },
                hound::SampleFormat::Float => PerSample::Float(wav.into_samples()),
            }),
        };
        Ok(WavSource {
            name: name.into(),
            info,
            samples,
            probe,
            bits: spec.bits_per_sample,
            frames_read: 0,
            pending: None,
            done: false,
        })
    }

    /// Turn an error from hound's sample iterator into ours. `mid_frame` tells whether some
    /// samples of the current frame had already been read (only then is a placeholder-length
    /// stream's EOF a truncation).
    fn sample_error(&self, e: hound::Error, mid_frame: bool) -> Option<AudioError> {
        let input = self.name.clone();
        match e {
            hound::Error::IoError(_) if self.probe.eof.load(Ordering::Relaxed) => {
                if self.info.total_frames.is_none() && !mid_frame {
                    // A streamed WAV of unknown length ended cleanly on a frame boundary.
                    return None;
                }
                Some(AudioError::Truncated {
                    input,
                    frames_read: self.frames_read,
                    expected_frames: self.info.total_frames,
                })
            }
            hound::Error::IoError(reason) => Some(AudioError::Read { input, reason }),
            other => Some(AudioError::Unsupported {
                input,
                what: format!(
                    "{}-bit samples in an unusual container ({other})",
                    self.bits
                ),
            }),
        }
    }

    /// Read the next block. On an error, keep the complete frames read so far (a partial
    /// frame is dropped) and remember the error for the next call.
    fn read_block(&mut self) -> Vec<f32> {
        match &mut self.samples {
            Samples::Bulk { .. } => self.read_block_bulk(),
            Samples::PerSample(_) => self.read_block_per_sample(),
        }
    }

    /// The bulk path: read until a read completes at least one frame, and decode the whole
    /// frames in the buffer; the bytes of a frame cut by a short read wait for the next call.
    /// A regular file fills the buffer in one read; a pipe gives what has arrived, which is
    /// passed on at once rather than after a full buffer (4 s of 16 kHz mono 16-bit).
    ///
    /// The end-of-data rules are those of the per-sample path: EOF before the declared end is
    /// a truncation, except for a placeholder-length stream that ends on a frame boundary (or
    /// inside the frame's first sample, where hound too would have read no sample of the
    /// frame). Bytes left over when the declared data ends are not a whole frame and are
    /// dropped, as hound's iterator drops them.
    fn read_block_bulk(&mut self) -> Vec<f32> {
        let channels = usize::from(self.info.channels);
        let Samples::Bulk {
            reader,
            layout,
            remaining,
            buf,
            start,
            filled,
        } = &mut self.samples
        else {
            return Vec::new();
        };
        let frame_bytes = channels * layout.bytes();
        let capacity = buf.len() - READ_ALIGN;
        let mut ended = false;
        let mut failure = None;
        while *filled < frame_bytes && *remaining > 0 {
            let to = read_start(buf.as_ptr().addr(), reader.position, *filled);
            buf.copy_within(*start..*start + *filled, to);
            *start = to;
            let want = ((capacity - *filled) as u64).min(*remaining) as usize;
            let end = *start + *filled;
            match reader.read(&mut buf[end..end + want]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => {
                    *filled += n;
                    *remaining -= n as u64;
                }
                // `RetryInterrupted` below has already retried interrupted reads.
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let whole = *filled / frame_bytes * frame_bytes;
        let mut samples = Vec::new();
        layout.decode(&buf[*start..*start + whole], &mut samples);
        *start += whole;
        *filled -= whole;
        self.frames_read += (whole / frame_bytes) as u64;
        if *remaining == 0 {
            self.done = true;
        } else if ended || failure.is_some() {
            self.done = true;
            let input = self.name.clone();
            let mid_frame = *filled >= layout.bytes();
            self.pending = match failure {
                Some(reason) => Some(AudioError::Read { input, reason }),
                None if self.info.total_frames.is_none() && !mid_frame => None,
                None => Some(AudioError::Truncated {
                    input,
                    frames_read: self.frames_read,
                    expected_frames: self.info.total_frames,
                }),
            };
        }
        samples
    }

    fn read_block_per_sample(&mut self) -> Vec<f32> {
        let channels = usize::from(self.info.channels);
        let Samples::PerSample(iter) = &mut self.samples else {
            return Vec::new();
        };
        let mut samples = Vec::with_capacity(BLOCK_FRAMES * channels);
        let mut failure = None;
        while samples.len() < BLOCK_FRAMES * channels {
            match iter.next_f32() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Ok(x)) => samples.push(x),
                Some(Err(e)) => {
                    self.done = true;
                    failure = Some(e);
                    break;
                }
            }
        }
        let partial = samples.len() % channels;
        samples.truncate(samples.len() - partial);
        self.frames_read += (samples.len() / channels) as u64;
        if let Some(e) = failure {
            self.pending = self.sample_error(e, partial != 0);
        }
        samples
    }
}

impl Source for WavSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let samples = self.read_block();
        if samples.is_empty() {
            if let Some(e) = self.pending.take() {
                return Err(e);
            }
            if self.frames_read == 0 {
                // Only reachable for streamed WAVs: a declared length of 0 fails in `open`.
                return Err(AudioError::Empty {
                    input: self.name.clone(),
                });
            }
            return Ok(None);
        }
        Ok(Some(Block {
            samples,
            channels: self.info.channels,
            sample_rate: self.info.sample_rate,
        }))
    }
}

/// Read the first 12 bytes (RIFF header) or as many as exist.
fn read_head(name: &str, reader: &mut impl Read) -> Result<Vec<u8>, AudioError> {
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

/// Where in the read buffer (at `buf_addr`) to put the `filled` bytes already read, so that
/// the next read, into the bytes after them, lands at the same offset within a 64-byte line as
/// the data has in the input (`position`, the offset of the next byte).
///
/// Reading a file is the kernel copying from its page cache, and on the AMD EPYC machine the
/// benchmarks run on that copy is 3.5 times as slow when the destination sits 1 to 31 bytes
/// further into its cache line than the source (0.30 s instead of 0.08 s of CPU for 659 MB):
/// the audio path of an hour of 48 kHz stereo cost half as much again or not, depending on
/// where the allocator put the buffer and on the length of the WAV header.
fn read_start(buf_addr: usize, position: u64, filled: usize) -> usize {
    (position as usize)
        .wrapping_sub(buf_addr)
        .wrapping_sub(filled)
        % READ_ALIGN
}

/// See [`read_start`]: a cache line.
const READ_ALIGN: usize = 64;

/// The bulk read buffer for frames of `frame_bytes`: [`READ_BYTES`] rounded down to whole
/// frames, and never less than one frame.
fn read_buffer_len(frame_bytes: usize) -> usize {
    (READ_BYTES / frame_bytes).max(1) * frame_bytes
}

/// The layout to decode in bulk, if the data is in a standard layout. hound does not expose
/// the container size (bytes per sample), but it derives its sample count from it:
/// `samples = data_len / bytes`. The standard container (`bits / 8`) is certain when it gives
/// hound's count and the next size up does not (sizes below it cannot hold the bits); only in
/// tiny files can both agree, and those take hound's own iterator.
fn bulk_layout(spec: &hound::WavSpec, samples: u64, data_len: Option<u32>) -> Option<Layout> {
    let layout = Layout::of(spec)?;
    let data_len = u64::from(data_len?);
    let bytes = layout.bytes() as u64;
    (data_len / bytes == samples && data_len / (bytes + 1) != samples).then_some(layout)
}

fn check_riff_wave(name: &str, head: &[u8]) -> Result<(), AudioError> {
    if head.len() == 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE" {
        return Ok(());
    }
    if head.starts_with(b"RF64") || head.starts_with(b"BW64") {
        return Err(AudioError::Unsupported {
            input: name.into(),
            what: "RF64/BW64 (64-bit WAV)".into(),
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

/// Map a hound header error to one of ours with a message a user can act on.
fn header_error(name: &str, probe: &Probe, e: hound::Error) -> AudioError {
    let input = name.to_string();
    let unsupported = |what: &str| AudioError::Unsupported {
        input: input.clone(),
        what: what.into(),
    };
    match e {
        hound::Error::IoError(_) if probe.eof.load(Ordering::Relaxed) => AudioError::NotWav {
            input,
            reason: "the header is incomplete: the input ends before any audio data".into(),
        },
        hound::Error::IoError(reason) => AudioError::Read { input, reason },
        hound::Error::Unsupported => unsupported(
            "compressed or unknown encoding (ADPCM, µ-law, A-law, MP3-in-WAV...) \
             or an extensible WAV with an unknown subformat",
        ),
        hound::Error::FormatError(reason) => match reason {
            "file contains zero channels" => unsupported("zero channels"),
            "bits per sample is not 32" => {
                unsupported("float samples that are not 32-bit, e.g. 64-bit float")
            }
            "bits per sample is not a multiple of 8" => {
                unsupported("a sample size that is not a whole number of bytes, e.g. 12-bit")
            }
            "bits per sample is not 8 or 16" => unsupported("an unusual integer sample size"),
            _ if probe.data_len() == Some(u32::MAX) => {
                unsupported("streamed WAV whose header gives no length (0xFFFFFFFF)")
            }
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

fn check_spec(name: &str, spec: &hound::WavSpec) -> Result<(), AudioError> {
    let what = match spec.sample_format {
        _ if spec.channels == 0 => Some("zero channels".to_string()),
        _ if spec.channels > MAX_CHANNELS => Some(format!(
            "{} channels (at most {MAX_CHANNELS} are accepted)",
            spec.channels
        )),
        _ if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) => Some(format!(
            "sample rate {} Hz ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz are accepted)",
            spec.sample_rate
        )),
        hound::SampleFormat::Int if ![8, 16, 24, 32].contains(&spec.bits_per_sample) => {
            Some(format!("{}-bit integer samples", spec.bits_per_sample))
        }
        hound::SampleFormat::Float if spec.bits_per_sample != 32 => {
            Some(format!("{}-bit float samples", spec.bits_per_sample))
        }
        _ => None,
    };
    match what {
        Some(what) => Err(AudioError::Unsupported {
            input: name.into(),
            what,
        }),
        None => Ok(()),
    }
}

fn describe(spec: &hound::WavSpec) -> String {
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
    use super::*;
    use std::path::PathBuf;

    fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 16000,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    fn write_int(dir: &Path, name: &str, spec: hound::WavSpec, values: &[i32]) -> PathBuf {
        let path = dir.join(name);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for &v in values {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        path
    }

    fn write_float(dir: &Path, name: &str, spec: hound::WavSpec, values: &[f32]) -> PathBuf {
        let path = dir.join(name);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for &v in values {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        path
    }

    /// Drain a source, returning all samples and the error it ended with (if any).
    fn drain(src: &mut dyn Source) -> (Vec<f32>, Option<AudioError>) {
        let mut all = Vec::new();
        loop {
            match src.next_block() {
                Ok(Some(b)) => {
                    assert!(!b.samples.is_empty(), "never an empty block");
                    assert_eq!(b.samples.len() % usize::from(b.channels), 0);
                    all.extend(b.samples);
                }
                Ok(None) => return (all, None),
                Err(e) => {
                    // After an error the source is finished.
                    assert!(matches!(src.next_block(), Ok(None)));
                    return (all, Some(e));
                }
            }
        }
    }

    /// A 16-bit PCM header with a given data length, for hand-made streams.
    fn header16(channels: u16, rate: u32, data_len: u32) -> Vec<u8> {
        fmt_header(1, channels, rate, 16, 16, &[], data_len)
    }

    /// RIFF + fmt chunk (of `fmt_len` bytes, `extra` after the first 16) + data chunk header.
    fn fmt_header(
        tag: u16,
        ch: u16,
        rate: u32,
        bits: u16,
        fmt_len: u32,
        extra: &[u8],
        data_len: u32,
    ) -> Vec<u8> {
        let block_align = ch * bits.div_ceil(8);
        let mut v = Vec::new();
        v.extend(b"RIFF");
        v.extend(data_len.wrapping_add(36).to_le_bytes());
        v.extend(b"WAVEfmt ");
        v.extend(fmt_len.to_le_bytes());
        v.extend(tag.to_le_bytes());
        v.extend(ch.to_le_bytes());
        v.extend(rate.to_le_bytes());
        v.extend((rate * u32::from(block_align)).to_le_bytes());
        v.extend(block_align.to_le_bytes());
        v.extend(bits.to_le_bytes());
        v.extend(extra);
        v.extend(b"data");
        v.extend(data_len.to_le_bytes());
        v
    }

    #[test]
    fn reads_all_integer_depths_mono_and_stereo() {
        let dir = tempfile::tempdir().unwrap();
        for bits in [8u16, 16, 24, 32] {
            for channels in [1u16, 2] {
                let max = (1i64 << (bits - 1)) - 1;
                let min = -(1i64 << (bits - 1));
                let values: Vec<i32> = [min, -1, 0, 1, max, max / 2, min / 3, 7]
                    .iter()
                    .map(|&v| v as i32)
                    .collect();
                let path = write_int(
                    dir.path(),
                    &format!("i{bits}_{channels}.wav"),
                    spec(channels, bits, false),
                    &values,
                );
                let mut src = WavSource::open(&path).unwrap();
                assert_eq!(src.info().channels, channels);
                assert_eq!(src.info().sample_rate, 16000);
                assert_eq!(src.info().total_frames, Some(8 / u64::from(channels)));
                assert_eq!(
                    src.info().description,
                    format!("16000 Hz, {channels} ch, {bits}-bit integer PCM")
                );
                let (got, err) = drain(&mut src);
                assert!(err.is_none(), "{err:?}");
                let scale = (1i64 << (bits - 1)) as f64;
                let want: Vec<f32> = values.iter().map(|&v| (v as f64 / scale) as f32).collect();
                assert_eq!(got, want, "{bits}-bit {channels} ch");
                assert_eq!(got[0], -1.0);
            }
        }
    }

    #[test]
    fn reads_float_and_sanitizes_non_finite() {
        let dir = tempfile::tempdir().unwrap();
        let values = [
            0.5f32,
            -0.25,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.0,
        ];
        for channels in [1u16, 2] {
            let path = write_float(
                dir.path(),
                &format!("f{channels}.wav"),
                spec(channels, 32, true),
                &values,
            );
            let mut src = WavSource::open(&path).unwrap();
            assert_eq!(
                src.info().description,
                format!("16000 Hz, {channels} ch, 32-bit float PCM")
            );
            let (got, err) = drain(&mut src);
            assert!(err.is_none());
            assert_eq!(got, vec![0.5, -0.25, 0.0, 1.0, -1.0, 1.0]);
        }
    }

    /// A file comes in blocks of the read buffer (the first is what the header read left
    /// buffered), whole frames each, and the samples are exactly the file's.
    #[test]
    fn long_file_comes_in_bounded_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let block = READ_BYTES / 4;
        let frames = block * 3 + 1234;
        let values: Vec<i32> = (0..frames * 2).map(|i| (i % 30000) as i32).collect();
        let path = write_int(dir.path(), "long.wav", spec(2, 16, false), &values);
        let mut src = WavSource::open(&path).unwrap();
        let mut sizes = Vec::new();
        let mut got = Vec::new();
        while let Some(b) = src.next_block().unwrap() {
            sizes.push(b.frames());
            got.extend(b.samples);
        }
        assert!(sizes.iter().all(|&n| n <= block), "{sizes:?}");
        assert!(
            sizes[1..sizes.len() - 1].iter().all(|&n| n == block),
            "{sizes:?}"
        );
        assert_eq!(sizes.iter().sum::<usize>(), frames);
        let want: Vec<f32> = values.iter().map(|&v| v as f32 / 32768.0).collect();
        assert_eq!(got, want);
        // The widest frames still make a buffer of whole frames, at most READ_BYTES.
        assert_eq!(read_buffer_len(64 * 4), READ_BYTES);
        assert_eq!(read_buffer_len(3 * 3), READ_BYTES / 9 * 9);
    }

    /// A reader that gives a few bytes per call (a slow pipe): every block is handed out as
    /// soon as a read completes a frame, with no read ahead, and the samples are the same as
    /// from one big read. Frames cut across reads are reassembled.
    #[test]
    fn short_reads_give_prompt_blocks_and_the_same_samples() {
        struct Trickle {
            data: Cursor<Vec<u8>>,
            sizes: std::iter::Cycle<std::vec::IntoIter<usize>>,
            consumed: Arc<AtomicU64>,
        }
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.sizes.next().unwrap_or(1));
                let n = self.data.read(&mut buf[..n])?;
                self.consumed.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
        }
        let values: Vec<i16> = (0..3000).map(|i| (i * 37 - 50_000) as i16).collect();
        let mut bytes = header16(3, 16000, 6000);
        let header = bytes.len() as u64;
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let whole = WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes.clone())))
            .map(|mut src| drain(&mut src))
            .unwrap();
        assert!(whole.1.is_none());
        for sizes in [vec![1], vec![5], vec![3, 7, 2, 11], vec![4096]] {
            let consumed = Arc::new(AtomicU64::new(0));
            let trickle = Trickle {
                data: Cursor::new(bytes.clone()),
                sizes: sizes.clone().into_iter().cycle(),
                consumed: Arc::clone(&consumed),
            };
            let mut src = WavSource::from_reader("stdin", Box::new(trickle)).unwrap();
            let mut got = Vec::new();
            while let Some(b) = src.next_block().unwrap() {
                got.extend(b.samples);
                // Not a byte more than the block's last read, beyond the header and the
                // frames handed out: a frame is 6 bytes, so less than a frame is held back.
                let held = consumed.load(Ordering::Relaxed) - header - 2 * got.len() as u64;
                let last_read = *sizes.iter().max().unwrap() as u64;
                assert!(held < 6 + last_read, "{sizes:?}: {held} bytes held back");
            }
            assert_eq!(got, whole.0, "{sizes:?}");
        }
    }

    /// WAV on a pipe whose writer has sent only part of the stream: the frames that have
    /// arrived come out at once, rather than after a full buffer.
    #[test]
    fn a_pipe_gives_what_has_arrived() {
        let (reader, mut writer) = io::pipe().unwrap();
        let mut head = header16(1, 16000, STREAMED_DATA_LEN);
        head.extend([1u8, 0, 2, 0, 3]); // two samples and half of the third
        io::Write::write_all(&mut writer, &head).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut src = WavSource::from_reader("stdin", Box::new(reader)).unwrap();
            let first = src.next_block().map(|b| b.map(|b| b.samples));
            tx.send(first).unwrap();
            let second = src.next_block().map(|b| b.map(|b| b.samples));
            tx.send(second).unwrap();
        });
        let wait = std::time::Duration::from_secs(20);
        let first = rx
            .recv_timeout(wait)
            .expect("the arrived frames come out at once");
        assert_eq!(first.unwrap().unwrap(), vec![1.0 / 32768.0, 2.0 / 32768.0]);
        // The rest of the third sample, then EOF.
        io::Write::write_all(&mut writer, &[0]).unwrap();
        drop(writer);
        let second = rx.recv_timeout(wait).unwrap();
        assert_eq!(second.unwrap().unwrap(), vec![3.0 / 32768.0]);
    }

    #[test]
    fn truncated_file_yields_complete_frames_then_error() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<i32> = (0..2000).map(|i| i - 1000).collect();
        let path = write_int(dir.path(), "t.wav", spec(2, 16, false), &values);
        let bytes = std::fs::read(&path).unwrap();
        // 1000 stereo frames of 4 bytes; cut 5 bytes: 998 whole frames plus 3 stray bytes.
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let mut src = WavSource::open(&path).unwrap();
        let (got, err) = drain(&mut src);
        assert_eq!(got.len(), 998 * 2);
        let want: Vec<f32> = values[..998 * 2]
            .iter()
            .map(|&v| v as f32 / 32768.0)
            .collect();
        assert_eq!(got, want);
        match err {
            Some(e @ AudioError::Truncated { .. }) => {
                assert!(e.is_truncation());
                let AudioError::Truncated {
                    frames_read,
                    expected_frames,
                    ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!((*frames_read, *expected_frames), (998, Some(1000)));
                assert!(e.to_string().contains("t.wav"));
            }
            other => panic!("expected truncation, got {other:?}"),
        }
    }

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
    fn empty_inputs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_int(dir.path(), "empty.wav", spec(1, 16, false), &[]);
        assert!(matches!(
            WavSource::open(&path),
            Err(AudioError::Empty { .. })
        ));
        let zero = WavSource::from_reader("stdin", Box::new(Cursor::new(Vec::new())));
        assert!(matches!(zero, Err(AudioError::Empty { .. })));
    }

    #[test]
    fn streamed_wav_without_seek_reads_to_eof() {
        // What `sox ... -t wav -` writes to a pipe: a placeholder length, data until EOF.
        let mut bytes = header16(1, 8000, STREAMED_DATA_LEN);
        for v in [100i16, -200, 300] {
            bytes.extend(v.to_le_bytes());
        }
        let mut src =
            WavSource::from_reader("stdin", Box::new(Cursor::new(bytes.clone()))).unwrap();
        assert_eq!(src.info().total_frames, None);
        let (got, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            got,
            vec![100.0 / 32768.0, -200.0 / 32768.0, 300.0 / 32768.0]
        );

        // Header and nothing else: empty.
        let head = header16(1, 8000, STREAMED_DATA_LEN);
        let mut src = WavSource::from_reader("stdin", Box::new(Cursor::new(head))).unwrap();
        assert!(matches!(src.next_block(), Err(AudioError::Empty { .. })));

        // Stereo stream ending in the middle of a frame: the whole frames, then truncation.
        let mut bytes = header16(2, 8000, STREAMED_DATA_LEN);
        for v in [1i16, 2, 3] {
            bytes.extend(v.to_le_bytes());
        }
        let mut src = WavSource::from_reader("stdin", Box::new(Cursor::new(bytes))).unwrap();
        let (got, err) = drain(&mut src);
        assert_eq!(got.len(), 2);
        assert!(err.is_some_and(|e| e.is_truncation()));
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
            ("mu-law", fmt_header(7, 1, 8000, 8, 16, &[], 4), "encoding"),
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
                Err(e @ AudioError::Unsupported { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(needle) && msg.contains("x.wav"),
                        "{label}: {msg}"
                    );
                }
                other => panic!("{label}: expected Unsupported, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        struct Flaky {
            data: Cursor<Vec<u8>>,
            tick: bool,
        }
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.tick = !self.tick;
                if self.tick {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                let n = buf.len().min(3);
                self.data.read(&mut buf[..n])
            }
        }
        let mut bytes = header16(1, 16000, 20);
        bytes.extend((0..10i16).flat_map(|v| v.to_le_bytes()));
        let flaky = Flaky {
            data: Cursor::new(bytes),
            tick: false,
        };
        let mut src = WavSource::from_reader("stdin", Box::new(flaky)).unwrap();
        let (got, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got.len(), 10);
    }

    /// Chunks after the data (LIST, id3...) are not audio; the bulk reader stops where the
    /// data chunk ends, as hound's iterator does.
    #[test]
    fn chunks_after_the_data_are_not_read_as_audio() {
        let values: Vec<i16> = (0..1000).map(|i| (i * 31 - 15000) as i16).collect();
        let mut bytes = header16(2, 48000, 2000);
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend(b"LIST");
        bytes.extend(26u32.to_le_bytes());
        bytes.extend(b"INFOISFT\x0e\0\0\0Lavf58.76.100\0\0");
        let mut src = WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes))).unwrap();
        let (got, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        let want: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
        assert_eq!(got, want);
    }

    /// 24-bit samples in 4-byte containers (WAVE_FORMAT_EXTENSIBLE) are not a bulk layout;
    /// they still decode, through hound's iterator. So do files too small to tell the
    /// container size from the data length.
    #[test]
    fn uncommon_containers_still_decode() {
        let pcm_guid = [
            1u8, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ];
        let mut extra = Vec::new();
        extra.extend(22u16.to_le_bytes());
        extra.extend(24u16.to_le_bytes());
        extra.extend(4u32.to_le_bytes());
        extra.extend(pcm_guid);
        for n in [1usize, 2, 3, 1000] {
            let values: Vec<i32> = (0..n as i32)
                .map(|i| (i * 7919 - 4_000_000) % 8_388_607)
                .collect();
            let mut bytes = fmt_header(0xfffe, 1, 16000, 32, 40, &extra, 4 * n as u32);
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            let mut src = WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes))).unwrap();
            let (got, err) = drain(&mut src);
            assert!(err.is_none(), "{n}: {err:?}");
            let want: Vec<f32> = values.iter().map(|&v| v as f32 / 8_388_608.0).collect();
            assert_eq!(got, want, "{n} samples");
        }
    }
}
