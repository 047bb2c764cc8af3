//! Headerless PCM (e.g. `sox ... -t raw - | flux listen --stdin --rate 48000 --channels 2`).
//! The caller supplies the format; we only cut the byte stream into whole frames.

use std::io::{self, Read};

use super::pcm::{Decoded, Encoding};
use super::{
    AudioError, Block, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Source, SourceInfo,
};

/// Most frames handed out per block; a read that returns less is passed on at once, so live
/// input is not held back waiting to fill a block.
pub const BLOCK_FRAMES: usize = 4096;

/// Sample encodings accepted on raw input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Signed 16-bit little-endian integers.
    S16Le,
    /// IEEE 754 32-bit little-endian floats, nominally in [-1, 1].
    F32Le,
}

impl RawFormat {
    pub fn bytes_per_sample(self) -> usize {
        self.encoding().bytes()
    }

    /// The encoding that `pcm` decodes.
    pub fn encoding(self) -> Encoding {
        match self {
            RawFormat::S16Le => Encoding::S16Le,
            RawFormat::F32Le => Encoding::F32Le,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            RawFormat::S16Le => "raw 16-bit signed little-endian PCM",
            RawFormat::F32Le => "raw 32-bit float little-endian PCM",
        }
    }
}

/// Raw PCM from any reader, until EOF.
pub struct RawPcmSource {
    name: String,
    info: SourceInfo,
    reader: Box<dyn Read + Send>,
    format: RawFormat,
    frame_bytes: usize,
    /// Read buffer; its first `filled` bytes are data not yet handed out (at most one partial
    /// frame between calls). Allocated once: memory does not depend on stream length.
    buf: Vec<u8>,
    filled: usize,
    frames_read: u64,
    trailing: usize,
    done: bool,
}

impl RawPcmSource {
    /// Validate the declared format up front, so a typo in `--rate` fails before any audio
    /// is read or any connection is made.
    pub fn new(
        name: &str,
        reader: Box<dyn Read + Send>,
        sample_rate: u32,
        channels: u16,
        format: RawFormat,
    ) -> Result<Self, AudioError> {
        let invalid = |problem: String| AudioError::InvalidRaw {
            input: name.into(),
            problem,
        };
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(invalid(format!(
                "sample rate {sample_rate} Hz is out of range"
            )));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(invalid(format!("{channels} channels is out of range")));
        }
        let frame_bytes = usize::from(channels) * format.bytes_per_sample();
        Ok(RawPcmSource {
            name: name.into(),
            info: SourceInfo {
                sample_rate,
                channels,
                total_frames: None,
                description: format!("{sample_rate} Hz, {channels} ch, {}", format.describe()),
            },
            reader,
            format,
            frame_bytes,
            buf: vec![0; BLOCK_FRAMES * frame_bytes],
            filled: 0,
            frames_read: 0,
            trailing: 0,
            done: false,
        })
    }

    /// Bytes left over at EOF that did not make a whole frame (they were dropped). Non-zero
    /// means the stream was cut mid-frame or the declared format is wrong; worth a warning.
    pub fn trailing_bytes(&self) -> usize {
        self.trailing
    }

    /// Read once into the free part of the buffer, retrying interrupted reads.
    fn fill(&mut self) -> io::Result<usize> {
        loop {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Decode the whole frames at the front of the buffer and keep the partial rest.
    fn take_frames(&mut self) -> Decoded {
        let whole = self.filled / self.frame_bytes * self.frame_bytes;
        let mut samples = Decoded::default();
        samples.decode(self.format.encoding(), &self.buf[..whole]);
        self.buf.copy_within(whole..self.filled, 0);
        self.filled -= whole;
        self.frames_read += (whole / self.frame_bytes) as u64;
        samples
    }
}

impl Source for RawPcmSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        while !self.done {
            match self.fill() {
                Ok(0) => {
                    self.done = true;
                    self.trailing = self.filled;
                    if self.frames_read == 0 {
                        return Err(AudioError::Empty {
                            input: self.name.clone(),
                        });
                    }
                }
                Ok(n) => {
                    self.filled += n;
                    if self.filled >= self.frame_bytes {
                        return Ok(Some(
                            self.take_frames()
                                .into_block(self.info.channels, self.info.sample_rate),
                        ));
                    }
                }
                Err(reason) => {
                    self.done = true;
                    return Err(AudioError::Read {
                        input: self.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Returns one byte per read call, the worst case a pipe can legally produce.
    struct OneByte(Cursor<Vec<u8>>);
    impl Read for OneByte {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn drain(src: &mut RawPcmSource) -> Result<Vec<f32>, AudioError> {
        let mut all = Vec::new();
        while let Some(b) = src.next_block()? {
            assert!(!b.is_empty());
            assert_eq!(b.len() % usize::from(b.channels), 0);
            all.extend(b.into_f32().samples);
        }
        Ok(all)
    }

    fn s16_bytes(values: &[i16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn one_byte_reads_reassemble_frames() {
        let values: Vec<i16> = (0..999).map(|i| (i * 37 - 15000) as i16).collect();
        let mut bytes = s16_bytes(&values);
        bytes.push(0xAB); // a stray byte
        let reader = OneByte(Cursor::new(bytes));
        // 1999 bytes in 4-byte stereo frames: 499 whole frames, then 3 bytes that are not one.
        let mut src =
            RawPcmSource::new("stdin", Box::new(reader), 48000, 2, RawFormat::S16Le).unwrap();
        let got = drain(&mut src).unwrap();
        let want: Vec<f32> = values[..998]
            .iter()
            .map(|&v| f32::from(v) / 32768.0)
            .collect();
        assert_eq!(got, want);
        assert_eq!(src.trailing_bytes(), 3);
        assert!(matches!(src.next_block(), Ok(None)));
    }

    #[test]
    fn large_reads_come_in_bounded_blocks() {
        let values = vec![1i16; (BLOCK_FRAMES * 2 + 10) * 3];
        let mut src = RawPcmSource::new(
            "stdin",
            Box::new(Cursor::new(s16_bytes(&values))),
            16000,
            3,
            RawFormat::S16Le,
        )
        .unwrap();
        let mut sizes = Vec::new();
        while let Some(b) = src.next_block().unwrap() {
            assert!(b.frames() <= BLOCK_FRAMES);
            sizes.push(b.frames());
        }
        assert_eq!(sizes.iter().sum::<usize>(), BLOCK_FRAMES * 2 + 10);
        assert_eq!(src.trailing_bytes(), 0);
    }

    #[test]
    fn float_input_is_sanitized() {
        let values = [0.5f32, f32::NAN, f32::INFINITY, -2.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let reader = OneByte(Cursor::new(bytes));
        let mut src =
            RawPcmSource::new("stdin", Box::new(reader), 16000, 1, RawFormat::F32Le).unwrap();
        // Finite out-of-range values are kept; the conditioner clamps at quantization.
        assert_eq!(drain(&mut src).unwrap(), vec![0.5, 0.0, 1.0, -2.0]);
    }

    #[test]
    fn parameters_are_validated_up_front() {
        let mk = |rate, ch| {
            RawPcmSource::new("stdin", Box::new(io::empty()), rate, ch, RawFormat::S16Le)
        };
        for (rate, ch) in [(0, 1), (999, 1), (384_001, 1), (16000, 0), (16000, 65)] {
            let e = mk(rate, ch).err().unwrap();
            assert!(matches!(e, AudioError::InvalidRaw { .. }), "{rate} {ch}");
            assert!(e.to_string().contains("stdin"));
        }
        assert!(mk(384_000, 64).is_ok());
        assert!(mk(1000, 1).is_ok());
    }

    #[test]
    fn empty_and_failing_inputs() {
        let mut src =
            RawPcmSource::new("stdin", Box::new(io::empty()), 16000, 1, RawFormat::S16Le).unwrap();
        assert!(matches!(src.next_block(), Err(AudioError::Empty { .. })));
        assert!(matches!(src.next_block(), Ok(None)));

        struct Failing(u8);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += 1;
                match self.0 {
                    1 => Err(io::Error::from(io::ErrorKind::Interrupted)),
                    2 => {
                        buf[..4].copy_from_slice(&[1, 0, 2, 0]);
                        Ok(4)
                    }
                    _ => Err(io::Error::other("device gone")),
                }
            }
        }
        let mut src =
            RawPcmSource::new("stdin", Box::new(Failing(0)), 16000, 1, RawFormat::S16Le).unwrap();
        let first = src.next_block().unwrap().unwrap();
        assert_eq!(first.pcm16, vec![1, 2], "16-bit input stays integer");
        assert_eq!(first.into_f32().samples, vec![1.0 / 32768.0, 2.0 / 32768.0]);
        let e = src.next_block().err().unwrap();
        assert!(matches!(e, AudioError::Read { .. }) && e.to_string().contains("device gone"));
        assert!(matches!(src.next_block(), Ok(None)));
    }
}
