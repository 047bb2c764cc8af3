//! WAV input (a file, or a WAV stream on stdin), read in bounded blocks so that memory does
//! not grow with the length of the recording.
//!
//! `header.rs` walks and checks the header, and hound parses it again for PCM and float (G.711
//! needs no hound: its header is all `header.rs` reads); the data chunk is then read in bulk
//! (`bulk.rs`: 16-bit samples straight into the block's vector, other encodings decoded a
//! block at a time by `audio::pcm`).
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

mod bulk;
mod header;

use super::pcm::{Decoded, Encoding};
use super::{AudioError, Block, RetryInterrupted, Source, SourceInfo};
use bulk::Bulk;
pub use bulk::{READ_BYTES, READ_BYTES_MAX};
use header::Header;

/// Frames per block on the per-sample path (uncommon layouts, decoded by hound).
pub const BLOCK_FRAMES: usize = 4096;

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

/// The input after the bytes the header walk read.
type Inner2 = BufReader<RetryInterrupted<Box<dyn Read + Send>>>;

type Inner = io::Chain<Cursor<Vec<u8>>, Inner2>;

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

/// The encoding of the standard sample layouts, decoded in bulk: the container is the
/// smallest whole number of bytes that holds the sample.
fn encoding_of(spec: &hound::WavSpec) -> Option<Encoding> {
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8) => Some(Encoding::U8),
        (hound::SampleFormat::Int, 16) => Some(Encoding::S16Le),
        (hound::SampleFormat::Int, 24) => Some(Encoding::S24Le),
        (hound::SampleFormat::Int, 32) => Some(Encoding::S32Le),
        (hound::SampleFormat::Float, 32) => Some(Encoding::F32Le),
        _ => None,
    }
}

/// Where the samples come from.
enum Samples {
    /// The data chunk read in bulk (`bulk.rs`).
    Bulk(Bulk),
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

/// A WAV file or stream: integer PCM of 8, 16, 24 or 32 bits, 32-bit float, or 8-bit G.711
/// (µ-law, A-law), at any rate and channel count within
/// [`MIN_SAMPLE_RATE`](super::MIN_SAMPLE_RATE)..=[`MAX_SAMPLE_RATE`](super::MAX_SAMPLE_RATE)
/// and [`MAX_CHANNELS`](super::MAX_CHANNELS).
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
        let meta = file.metadata().map_err(|reason| AudioError::Open {
            input: name.clone(),
            reason,
        })?;
        if meta.is_dir() {
            return Err(AudioError::NotAFile { input: name });
        }
        // A FIFO or a device named by path (`/dev/stdin`) is a stream like stdin.
        Self::read(&name, Box::new(file), meta.is_file())
    }

    /// Read a WAV stream from any reader (e.g. stdin for `-`). Needs no `Seek`; the input is
    /// taken for a stream (see `header::read` for what that changes).
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<Self, AudioError> {
        Self::read(name, reader, false)
    }

    fn read(name: &str, reader: Box<dyn Read + Send>, seekable: bool) -> Result<Self, AudioError> {
        let mut reader = BufReader::new(RetryInterrupted(reader));
        let head = header::read_head(name, &mut reader)?;
        let header = header::read(name, head, &mut reader, seekable)?;
        if let Some(fmt) = &header.fmt {
            header::check_fields(name, fmt)?;
        }
        match header.fmt.and_then(|f| f.g711()) {
            Some(encoding) => Self::g711(name, header, reader, encoding),
            None => Self::pcm(name, header, reader),
        }
    }

    /// PCM and float: hound parses the header again (from the bytes `header` kept) and gives
    /// the format; the data is read in bulk where the layout is standard.
    fn pcm(name: &str, header: Header, reader: Inner2) -> Result<Self, AudioError> {
        let probe = Arc::new(Probe::default());
        let tracked = Tracked {
            inner: Cursor::new(header.bytes).chain(reader),
            probe: Arc::clone(&probe),
            position: 0,
        };
        let wav = hound::WavReader::new(tracked).map_err(|e| {
            let eof = probe.eof.load(Ordering::Relaxed);
            header::header_error(name, eof, e)
        })?;
        let spec = wav.spec();
        header::check_spec(name, &spec)?;

        // When the walk stopped short of the data chunk (a chunk too large to keep before it),
        // the size hound read says whether the WAV is streamed.
        let streamed = header.streamed
            || header.data_len.is_none()
                && probe
                    .data_len()
                    .is_some_and(|len| len >= header::STREAMED_DATA_LEN);
        let total_frames = (!streamed).then(|| u64::from(wav.duration()));
        if total_frames == Some(0) {
            return Err(AudioError::Empty { input: name.into() });
        }
        let info = SourceInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            total_frames,
            description: header::describe(&spec),
        };
        let samples = match bulk_encoding(&spec, u64::from(wav.len()), probe.data_len()) {
            Some(encoding) => {
                let remaining = match streamed {
                    true => u64::MAX,
                    false => u64::from(wav.len()) * encoding.bytes() as u64,
                };
                let reader = wav.into_inner();
                Samples::Bulk(Bulk::new(
                    reader,
                    encoding,
                    spec.channels,
                    spec.sample_rate,
                    remaining,
                ))
            }
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

    /// G.711 (µ-law, A-law): hound does not decode it, and its header is all `header` read.
    /// One byte per sample, so the block align must be the channel count.
    fn g711(
        name: &str,
        header: Header,
        reader: Inner2,
        encoding: Encoding,
    ) -> Result<Self, AudioError> {
        let (Some(fmt), Some(data_bytes)) = (header.fmt, header.data_bytes()) else {
            return Err(AudioError::NotWav {
                input: name.into(),
                reason: "the header is incomplete: the input ends before any audio data".into(),
            });
        };
        let law = if encoding == Encoding::MuLaw {
            "µ-law"
        } else {
            "A-law"
        };
        if fmt.bits != 8 {
            return Err(AudioError::Unsupported {
                input: name.into(),
                what: format!("{}-bit G.711 {law} (G.711 samples are 8-bit)", fmt.bits),
                fix: header::convert_fix(name),
            });
        }
        if fmt.block_align != fmt.channels {
            return Err(AudioError::BadHeader {
                input: name.into(),
                problem: format!(
                    "the WAV header's block align is {} bytes, but {} channel(s) of 8-bit {law} \
                     take {}",
                    fmt.block_align, fmt.channels, fmt.channels
                ),
                fix: header::rewrite_fix(name),
            });
        }
        let frames = data_bytes / u64::from(fmt.channels);
        let total_frames = (!header.streamed).then_some(frames);
        if total_frames == Some(0) {
            return Err(AudioError::Empty { input: name.into() });
        }
        let probe = Arc::new(Probe::default());
        let position = header.bytes.len() as u64;
        Ok(WavSource {
            name: name.into(),
            info: SourceInfo {
                sample_rate: fmt.rate,
                channels: fmt.channels,
                total_frames,
                description: format!("{} Hz, {} ch, 8-bit G.711 {law}", fmt.rate, fmt.channels),
            },
            samples: Samples::Bulk(Bulk::new(
                Tracked {
                    inner: Cursor::new(Vec::new()).chain(reader),
                    probe: Arc::clone(&probe),
                    position,
                },
                encoding,
                fmt.channels,
                fmt.rate,
                if header.streamed {
                    u64::MAX
                } else {
                    data_bytes
                },
            )),
            probe,
            bits: 8,
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
                fix: header::convert_fix(&input),
                input,
                what: format!("{}-bit samples in an unusual container: {other}", self.bits),
            }),
        }
    }

    /// Read the next block. On an error, keep the complete frames read so far (a partial
    /// frame is dropped) and remember the error for the next call.
    fn read_block(&mut self) -> Decoded {
        match &mut self.samples {
            Samples::Bulk(bulk) => {
                let mut block = bulk.read_block();
                self.end_of_bulk_block(&mut block);
                block.samples
            }
            Samples::PerSample(_) => Decoded::F32(self.read_block_per_sample()),
        }
    }

    /// After a bulk block: count its frames, and apply the end-of-data rules of the
    /// per-sample path: EOF before the declared end is a truncation, except for a
    /// placeholder-length stream that ends on a frame boundary (or inside the frame's first
    /// sample, where hound too would have read no sample of the frame). Bytes left over when
    /// the declared data ends are not a whole frame and are dropped, as hound's iterator drops
    /// them.
    fn end_of_bulk_block(&mut self, block: &mut bulk::Block) {
        self.frames_read += block.frames;
        if block.exhausted {
            self.done = true;
        } else if block.ended || block.failure.is_some() {
            self.done = true;
            let input = self.name.clone();
            self.pending = match block.failure.take() {
                Some(reason) => Some(AudioError::Read { input, reason }),
                None if self.info.total_frames.is_none() && !block.mid_frame => None,
                None => Some(AudioError::Truncated {
                    input,
                    frames_read: self.frames_read,
                    expected_frames: self.info.total_frames,
                }),
            };
        }
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

    fn recycle(&mut self, block: Block) {
        if let Samples::Bulk(bulk) = &mut self.samples {
            bulk.recycle(block.pcm16);
        }
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let decoded = self.read_block();
        if decoded.is_empty() {
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
        Ok(Some(
            decoded.into_block(self.info.channels, self.info.sample_rate),
        ))
    }
}

/// The encoding to decode in bulk, if the data is in a standard layout. hound does not expose
/// the container size (bytes per sample), but it derives its sample count from it:
/// `samples = data_len / bytes`. The standard container (`bits / 8`) is certain when it gives
/// hound's count and the next size up does not (sizes below it cannot hold the bits); only in
/// tiny files can both agree, and those take hound's own iterator.
fn bulk_encoding(spec: &hound::WavSpec, samples: u64, data_len: Option<u32>) -> Option<Encoding> {
    let encoding = encoding_of(spec)?;
    let data_len = u64::from(data_len?);
    let bytes = encoding.bytes() as u64;
    (data_len / bytes == samples && data_len / (bytes + 1) != samples).then_some(encoding)
}
#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::header::STREAMED_DATA_LEN;
    use super::test_support::*;
    use super::*;

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
    /// buffered), whole frames each, and the samples are exactly the file's. 16-bit blocks
    /// given back (as the session's audio thread does) are read into again: the same vector
    /// each time, the second block cut by up to a cache line's worth of frames so that every
    /// later read starts where the input lines up with it, and the samples unchanged.
    #[test]
    fn long_file_comes_in_bounded_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let block = bulk::read_buffer_len(4, 16_000) / 4;
        let frames = block * 4 + 1234;
        let values: Vec<i32> = (0..frames * 2).map(|i| (i % 30000) as i32).collect();
        let want: Vec<f32> = values.iter().map(|&v| v as f32 / 32768.0).collect();
        let path = write_int(dir.path(), "long.wav", spec(2, 16, false), &values);
        for recycled in [false, true] {
            let mut src = WavSource::open(&path).unwrap();
            let (mut sizes, mut got, mut vectors) = (Vec::new(), Vec::new(), Vec::new());
            while let Some(b) = src.next_block().unwrap() {
                sizes.push(b.frames());
                vectors.push(b.pcm16.as_ptr().addr());
                got.extend(b.clone().into_f32().samples);
                if recycled {
                    src.recycle(b);
                }
            }
            let label = if recycled { "recycled" } else { "dropped" };
            assert_eq!(sizes.iter().sum::<usize>(), frames, "{label}");
            assert_eq!(got, want, "{label}");
            assert!(sizes.iter().all(|&n| n <= block), "{label}: {sizes:?}");
            // The second block may be cut to line the next read up; 16 frames are 64 bytes.
            assert!(sizes[1] + 16 > block, "{label}: {sizes:?}");
            if recycled {
                assert!(
                    sizes[2..sizes.len() - 1].iter().all(|&n| n == block),
                    "{sizes:?}"
                );
                assert!(vectors[1..].iter().all(|&v| v == vectors[1]), "one vector");
            }
        }
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
            let mut blocks = 0;
            while let Some(b) = src.next_block().unwrap() {
                got.extend(b.clone().into_f32().samples);
                // Every other block's vector is given back: the cut frames are carried into
                // a recycled vector and into a fresh one alike.
                blocks += 1;
                if blocks % 2 == 0 {
                    src.recycle(b);
                }
                // Not a byte more than the block's last read, beyond the header and the
                // frames handed out: a frame is 6 bytes, so less than a frame is held back.
                let held = consumed.load(Ordering::Relaxed) - header - 2 * got.len() as u64;
                let last_read = *sizes.iter().max().unwrap() as u64;
                assert!(held < 6 + last_read, "{sizes:?}: {held} bytes held back");
            }
            assert_eq!(got, whole.0, "{sizes:?}");
        }
    }

    /// A pipe's reads come back short (at most its buffer): the 16-bit reads then ask for
    /// about that much, so a block's vector is zeroed only as far as a read can fill it, not
    /// a whole 512 KiB block per 64 KiB read; a file's full reads keep asking for whole blocks.
    #[test]
    fn short_reads_shrink_the_request_and_full_ones_keep_it() {
        struct Pipe(Cursor<Vec<u8>>);
        impl Read for Pipe {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(5000);
                self.0.read(&mut buf[..n])
            }
        }
        let frames = 400_000;
        let values: Vec<i16> = (0..frames * 2).map(|i| (i % 20_000) as i16).collect();
        let mut bytes = header16(2, 44_100, (frames * 4) as u32);
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let block = bulk::read_buffer_len(4, 44_100);
        for piped in [true, false] {
            let reader: Box<dyn Read + Send> = if piped {
                Box::new(Pipe(Cursor::new(bytes.clone())))
            } else {
                Box::new(Cursor::new(bytes.clone()))
            };
            let mut src = WavSource::from_reader("in", reader).unwrap();
            let mut got = Vec::new();
            let mut asks = Vec::new();
            while let Some(b) = src.next_block().unwrap() {
                got.extend_from_slice(&b.pcm16);
                src.recycle(b);
                let Samples::Bulk(bulk) = &src.samples else {
                    panic!("16-bit data is read in bulk")
                };
                asks.push(bulk.ask());
            }
            assert_eq!(got, values, "piped {piped}");
            let settled = &asks[2..asks.len() - 1];
            if piped {
                assert!(settled.iter().all(|&a| a <= 2 * 64 * 1024), "{asks:?}");
            } else {
                assert!(settled.iter().all(|&a| a == block), "{asks:?}");
            }
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
            let first = src.next_block().map(|b| b.map(|b| b.into_f32().samples));
            tx.send(first).unwrap();
            let second = src.next_block().map(|b| b.map(|b| b.into_f32().samples));
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

    /// `ffmpeg -i in.wav -f wav -` writes 0xFFFFFFFF as the RIFF and data sizes, some writers
    /// 0: on a stream both mean "until the end of the input", for every layout.
    #[test]
    fn streamed_sizes_read_until_the_end_of_the_input() {
        let values: Vec<i16> = (0..6000).map(|i| (i * 13 - 30_000) as i16).collect();
        let pcm: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let want: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
        for size in [u32::MAX, 0] {
            for channels in [1u16, 2, 3] {
                let mut bytes = header16(channels, 48000, size);
                bytes[4..8].copy_from_slice(&size.to_le_bytes());
                bytes.extend(&pcm);
                let mut src =
                    WavSource::from_reader("stdin", Box::new(Cursor::new(bytes))).unwrap();
                assert_eq!(src.info().total_frames, None, "{size:#x} {channels} ch");
                let (got, err) = drain(&mut src);
                assert!(err.is_none(), "{size:#x} {channels} ch: {err:?}");
                assert_eq!(got, want, "{size:#x} {channels} ch");
            }
        }
        // 24-bit stereo (6-byte frames, which no power-of-two placeholder divides).
        let mut bytes = fmt_header(1, 2, 16000, 24, 16, &[], u32::MAX);
        bytes.extend([0u8, 0, 0x40, 0, 0, 0xc0]);
        let mut src = WavSource::from_reader("stdin", Box::new(Cursor::new(bytes))).unwrap();
        assert_eq!(drain(&mut src).0, vec![0.5, -0.5]);

        // A regular file: 0xFFFFFFFF is read to its end too, but a data size of 0 means what
        // it says (nothing was recorded).
        let dir = tempfile::tempdir().unwrap();
        for (size, ok) in [(u32::MAX, true), (0, false)] {
            let mut bytes = header16(1, 16000, size);
            bytes.extend(&pcm);
            let path = dir.path().join(format!("{size}.wav"));
            std::fs::write(&path, bytes).unwrap();
            match WavSource::open(&path) {
                Ok(mut src) if ok => assert_eq!(drain(&mut src).0, want),
                Err(AudioError::Empty { .. }) if !ok => {}
                other => panic!("{size:#x}: {:?}", other.err()),
            }
        }
    }

    /// µ-law and A-law WAVs as sox writes them (an 18-byte fmt chunk and a fact chunk), and
    /// as WAVE_FORMAT_EXTENSIBLE, decode through the G.711 tables; streamed ones too.
    #[test]
    fn g711_wavs_decode_through_the_tables() {
        let codes: Vec<u8> = (0..=255u8).chain(0..=255).collect();
        let guid = |tag: u8| {
            let mut extra = Vec::new();
            extra.extend(22u16.to_le_bytes());
            extra.extend(8u16.to_le_bytes());
            extra.extend(3u32.to_le_bytes());
            extra.extend([
                tag, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
            ]);
            extra
        };
        for (tag, decode, law) in [
            (
                7u16,
                crate::audio::pcm::mulaw_to_i16 as fn(u8) -> i16,
                "µ-law",
            ),
            (6, crate::audio::pcm::alaw_to_i16, "A-law"),
        ] {
            let want: Vec<f32> = codes
                .iter()
                .map(|&c| f32::from(decode(c)) / 32768.0)
                .collect();
            let len = codes.len() as u32;
            let fact = {
                let mut v = vec![0u8, 0];
                v.extend(b"fact");
                v.extend(4u32.to_le_bytes());
                v.extend((len / 2).to_le_bytes());
                v
            };
            for (label, mut bytes) in [
                ("sox", fmt_header(tag, 2, 8000, 8, 18, &fact, len)),
                (
                    "extensible",
                    fmt_header(0xfffe, 2, 8000, 8, 40, &guid(tag as u8), len),
                ),
                ("streamed", fmt_header(tag, 2, 8000, 8, 16, &[], u32::MAX)),
            ] {
                bytes.extend(&codes);
                let mut src =
                    WavSource::from_reader("u.wav", Box::new(Cursor::new(bytes))).unwrap();
                let frames = (label != "streamed").then_some(256);
                assert_eq!(src.info().total_frames, frames, "{law} {label}");
                assert_eq!(
                    src.info().description,
                    format!("8000 Hz, 2 ch, 8-bit G.711 {law}")
                );
                let (got, err) = drain(&mut src);
                assert!(err.is_none(), "{law} {label}: {err:?}");
                assert_eq!(got, want, "{law} {label}");
            }
            // Cut short: the whole frames, then the truncation, as for PCM.
            let mut bytes = fmt_header(tag, 2, 8000, 8, 16, &[], 100);
            bytes.extend(&codes[..51]);
            let mut src = WavSource::from_reader("u.wav", Box::new(Cursor::new(bytes))).unwrap();
            let (got, err) = drain(&mut src);
            assert_eq!(got.len(), 50);
            assert!(err.is_some_and(|e| e.is_truncation()), "{law}");
        }
    }

    /// A data size one byte past whole frames (a writer that counted a pad byte as data): the
    /// whole frames are read and the stray byte dropped, as sox does, not refused.
    #[test]
    fn a_stray_byte_in_the_data_size_is_dropped() {
        for (channels, extra) in [(1u16, 1usize), (2, 1), (2, 2), (2, 3)] {
            let values: Vec<i16> = (0..200).map(|i| i * 100).collect();
            let mut bytes = header16(channels, 16000, 400 + extra as u32);
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            bytes.extend(vec![0x7f; extra]);
            let mut src = WavSource::from_reader("x.wav", Box::new(Cursor::new(bytes))).unwrap();
            assert_eq!(src.info().total_frames, Some(200 / u64::from(channels)));
            let (got, err) = drain(&mut src);
            assert!(err.is_none(), "{channels} ch +{extra}: {err:?}");
            let want: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32768.0).collect();
            assert_eq!(got, want, "{channels} ch +{extra}");
        }
    }

    #[test]
    fn a_directory_is_not_taken_for_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = WavSource::open(dir.path()).err().unwrap();
        assert!(matches!(e, AudioError::NotAFile { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("is a directory") && msg.contains("*.wav"),
            "{msg}"
        );
    }

    /// A chunk too large for the header walk to keep (2 MiB of JUNK before the data): hound
    /// reads on past it, and a streamed size is still read until the input ends.
    #[test]
    fn a_large_chunk_before_the_data_is_skipped() {
        let mut bytes = header16(1, 16000, STREAMED_DATA_LEN);
        let data = bytes.split_off(36);
        bytes.extend(b"JUNK");
        bytes.extend((2u32 << 20).to_le_bytes());
        bytes.extend(vec![0u8; 2 << 20]);
        bytes.extend(data);
        bytes.extend([1u8, 0, 2, 0]);
        let mut src = WavSource::from_reader("stdin", Box::new(Cursor::new(bytes))).unwrap();
        assert_eq!(src.info().total_frames, None);
        let (got, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, vec![1.0 / 32768.0, 2.0 / 32768.0]);
    }
}
