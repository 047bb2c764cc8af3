//! Helpers shared by the WAV reader's unit tests: files written by hound, hand-made headers,
//! and a drain that checks the source's contract.

use std::path::{Path, PathBuf};

use crate::audio::{AudioError, Source};

pub(super) fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
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

pub(super) fn write_int(dir: &Path, name: &str, spec: hound::WavSpec, values: &[i32]) -> PathBuf {
    let path = dir.join(name);
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &v in values {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    path
}

pub(super) fn write_float(dir: &Path, name: &str, spec: hound::WavSpec, values: &[f32]) -> PathBuf {
    let path = dir.join(name);
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &v in values {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    path
}

/// Drain a source, giving each block back once read, returning all samples and the error it
/// ended with (if any).
pub(super) fn drain(src: &mut dyn Source) -> (Vec<f32>, Option<AudioError>) {
    let mut all = Vec::new();
    loop {
        match src.next_block() {
            Ok(Some(b)) => {
                assert!(!b.is_empty(), "never an empty block");
                assert!(
                    b.samples.is_empty() || b.pcm16.is_empty(),
                    "one form per block"
                );
                assert_eq!(b.len() % usize::from(b.channels), 0);
                all.extend(b.clone().into_f32().samples);
                // As the session's audio thread does: the next block may be read into it.
                src.recycle(b);
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
pub(super) fn header16(channels: u16, rate: u32, data_len: u32) -> Vec<u8> {
    fmt_header(1, channels, rate, 16, 16, &[], data_len)
}

/// RIFF + fmt chunk (of `fmt_len` bytes, `extra` after the first 16) + data chunk header.
pub(super) fn fmt_header(
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
