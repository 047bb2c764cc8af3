//! The bodies of the fuzz targets, shared by `cargo fuzz` (fuzz/fuzz_targets/*.rs) and by the
//! corpus-free smoke run in tests/hostile.rs, so CI exercises exactly what the fuzzer does.
//!
//! Each function takes arbitrary bytes and drives one untrusted-input path of the library the
//! way the binary does. Besides "no panic", they check the guarantees that make hostile input
//! harmless: samples handed on are finite and in range, and the work done is bounded by the
//! bytes actually supplied, never by what a header declares.
// Included with `#[path]` into several crates; each uses what it needs.
#![allow(dead_code)]

use flux::audio::condition::Conditioner;
use flux::audio::raw::{RawFormat, RawPcmSource};
use flux::audio::wav::WavSource;
use flux::audio::{Block, Source};
use flux::output::Sink;
use flux::output::jsonl::JsonlSink;
use flux::output::text::TextSink;
use flux::protocol::{ClientMessage, ServerMessage};
use flux::session::turns::TurnTracker;
use flux::session::{ClientEvent, Event};
use std::io::{self, Read};

/// Rates Flux accepts; the conditioner always converts to one of them.
const TARGET_RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];

/// A WAV file or stream of arbitrary bytes, through the same steps as `flux file`.
pub fn wav(data: &[u8]) {
    // Chosen by length, not content: every WAV starts with the same bytes.
    let target = TARGET_RATES[data.len() % 5];
    let chunked = (data.len() / 5) % 2 == 1;
    let reader: Box<dyn Read + Send> = if chunked {
        // A pipe hands over a few bytes at a time: headers and samples split anywhere.
        Box::new(Dribble::new(data.to_vec()))
    } else {
        Box::new(io::Cursor::new(data.to_vec()))
    };
    let Ok(source) = WavSource::from_reader("fuzz.wav", reader) else {
        return;
    };
    drain(source, data.len(), target, 1);
}

/// Raw PCM: the first bytes choose the declared format (as `--rate`, `--channels` and
/// `--sample-format` would), the rest is the stream, read in odd-sized pieces.
pub fn raw_pcm(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (head, body) = data.split_at(8);
    let format = if head[0] & 1 == 0 {
        RawFormat::S16Le
    } else {
        RawFormat::F32Le
    };
    let target = TARGET_RATES[usize::from(head[0] >> 1) % 5];
    let raw_rate = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let raw_channels = u16::from_le_bytes([head[5], head[6]]);
    // Mostly plausible formats so the fuzzer spends its time in the data path; every eighth
    // input passes the raw values to exercise the validation.
    let (rate, channels) = if head[7] & 7 == 0 {
        (raw_rate, raw_channels)
    } else {
        (
            [8000, 11025, 16000, 22050, 44100, 48000, 96000, 7919][raw_rate as usize % 8],
            raw_channels % 8 + 1,
        )
    };
    let reader = Box::new(Dribble::new(body.to_vec()));
    let Ok(source) = RawPcmSource::new("stdin", reader, rate, channels, format) else {
        return;
    };
    drain(source, body.len(), target, 2);
}

/// Reads a source to its end through the conditioner, checking what comes out.
/// `min_bytes_per_sample` bounds the samples a source may produce from `bytes` of input.
fn drain(mut source: impl Source, bytes: usize, target: u32, min_bytes_per_sample: usize) {
    let info = source.info().clone();
    assert!(info.channels >= 1 && info.sample_rate >= 1, "{info:?}");
    let Ok(mut conditioner) = Conditioner::new(info.sample_rate, info.channels, target, 80) else {
        return;
    };
    let frame_bytes = conditioner.frame_bytes();
    let mut samples_in = 0usize;
    let mut out_bytes = 0u64;
    let mut check_frame = |f: flux::audio::condition::Frame| {
        assert!(f.data.len() <= frame_bytes && f.data.len().is_multiple_of(2));
        out_bytes += f.data.len() as u64;
    };
    // An error ends the source; after it, sources promise `Ok(None)`. The bound on calls
    // catches a source that would spin without making progress.
    for _ in 0..=bytes + 2 {
        match source.next_block() {
            Ok(Some(block)) => {
                check_block(&block, &info);
                samples_in += block.len();
                assert!(
                    samples_in * min_bytes_per_sample <= bytes,
                    "{samples_in} samples from {bytes} bytes"
                );
                if conditioner.push(&block, &mut check_frame).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => {
                assert!(matches!(source.next_block(), Ok(None)), "error repeated");
                break;
            }
        }
    }
    let _ = conditioner.finish(&mut check_frame);
    // Output is the input's duration at the target rate (rounded, plus at most one frame).
    let frames_in = (samples_in / usize::from(info.channels)) as u64;
    let expected = frames_in * u64::from(target) / u64::from(info.sample_rate) + 1;
    assert!(
        out_bytes / 2 <= expected,
        "{out_bytes} bytes out for {frames_in} frames in"
    );
}

fn check_block(block: &Block, info: &flux::audio::SourceInfo) {
    assert_eq!(block.channels, info.channels);
    assert_eq!(block.sample_rate, info.sample_rate);
    assert!(!block.is_empty());
    assert!(
        block.samples.is_empty() || block.pcm16.is_empty(),
        "one form of samples per block"
    );
    assert_eq!(block.len() % usize::from(block.channels), 0);
    // Integer PCM is in [-1, 1); float PCM may overshoot, but NaN and infinities never get
    // past the source.
    for &x in &block.samples {
        assert!(x.is_finite(), "sample {x}");
    }
}

/// One WebSocket text frame from a server (or, for `flux serve`, from a client), through
/// everything that reads it: parsing, turn tracking, and the JSONL and text sinks.
pub fn server_message(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = ClientMessage::parse(&text);
    // What the session prints when a message cannot be parsed.
    let shown = flux::session::connect::sanitize(&text, 200);
    assert!(shown.chars().count() <= 201 && !shown.chars().any(char::is_control));
    let Ok(received) = ServerMessage::parse(&text) else {
        return;
    };
    assert!(received.raw.is_object());
    let _ = received.message.type_name();
    let json = received.message.to_json();
    assert!(
        ServerMessage::parse(&json).is_ok(),
        "re-serialized message did not parse"
    );
    let mut turns = TurnTracker::default();
    if let ServerMessage::TurnInfo(t) = &received.message {
        turns.observe(t);
        let _ = turns.take_unconfirmed();
    }
    let event = Event::Server(received);
    let mut jsonl = Vec::new();
    let _ = JsonlSink::new(&mut jsonl).event(&event);
    // One event is one line, whatever the server put in its strings.
    assert_eq!(jsonl.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(jsonl.last(), Some(&b'\n'));
    let mut text_out = Vec::new();
    let _ = TextSink::new(&mut text_out).event(&event);
    assert!(text_out.iter().filter(|&&b| b == b'\n').count() <= 1);
    let warning = Event::Client(ClientEvent::Warning {
        code: "unparsable_server_message".into(),
        message: shown,
    });
    let mut line = Vec::new();
    let _ = JsonlSink::new(&mut line).event(&warning);
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
}

/// A reader that returns its data in small pieces of varying size (1 to 17 bytes), as a pipe
/// may: a parser must not assume a read fills its buffer.
pub struct Dribble {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Dribble {
    pub fn new(data: Vec<u8>) -> Self {
        Dribble {
            data,
            pos: 0,
            step: 0,
        }
    }
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step = (self.step * 7 + 3) % 17 + 1;
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
