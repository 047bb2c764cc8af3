//! WAV inputs as other tools write them, through the built binary against `flux serve`: the
//! streamed WAV that `ffmpeg -i call.wav -f wav -` pipes (sizes 0xFFFFFFFF, or 0), and the
//! G.711 WAVs of call recordings (`sox call.wav -e u-law u.wav`, `-e a-law`). Every input is
//! made in the test from a PCM fixture, so neither ffmpeg nor sox is needed, and each must
//! give the same turns as the PCM original.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// The turns a run produced: (transcript, end of the turn's audio in seconds), from the
/// `EndOfTurn` messages of `--jsonl`, and the audio seconds flux says it sent.
fn turns(out: &std::process::Output) -> (Vec<(String, f64)>, f64) {
    assert_eq!(code(out), 0, "{}", stderr(out));
    let events = jsonl(out);
    let turns = events
        .iter()
        .filter(|e| e["event"] == "EndOfTurn")
        .map(|e| {
            (
                e["transcript"].as_str().unwrap_or_default().to_string(),
                e["audio_window_end"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    let summary: &Value = events.last().expect("a summary");
    (turns, summary["input_seconds"].as_f64().unwrap())
}

fn script(dir: &Path) -> String {
    let path = dir.join("turns.txt");
    std::fs::write(
        &path,
        "one two three\nfour five\nsix\nseven eight\nnine\nten\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// The fmt chunk's body and the data of a canonical 44-byte PCM WAV (without the chunks that
/// follow the data).
fn split_wav(bytes: &[u8]) -> (&[u8], &[u8]) {
    assert_eq!(&bytes[36..40], b"data", "a canonical header");
    let len = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    (&bytes[20..36], &bytes[44..44 + len])
}

/// A WAV as `ffmpeg -i in.wav -f wav -` writes it to a pipe: RIFF and data sizes that it
/// could not fill in (`size`), and a LIST chunk naming the muxer before the data.
fn streamed(fmt: &[u8], data: &[u8], size: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(b"RIFF");
    v.extend(size.to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend((fmt.len() as u32).to_le_bytes());
    v.extend(fmt);
    v.extend(b"LIST");
    v.extend(26u32.to_le_bytes());
    v.extend(b"INFOISFT\x0e\0\0\0Lavf60.16.100\0");
    v.extend(b"data");
    v.extend(size.to_le_bytes());
    v.extend(data);
    v
}

/// G.711 µ-law encoding of a 16-bit sample (ITU-T G.711, as in the reference `g711.c`).
fn mulaw(x: i16) -> u8 {
    let mut s = i32::from(x);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(32635) + 0x84;
    let exponent = 31 - (s >> 7).leading_zeros() as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 A-law encoding of a 16-bit sample.
fn alaw(x: i16) -> u8 {
    let mut s = i32::from(x) >> 3;
    let sign = if s >= 0 {
        0x80
    } else {
        s = -s - 1;
        0
    };
    let s = s.min(4095);
    let (exponent, mantissa) = if s < 32 {
        (0, s >> 1)
    } else {
        let e = 31 - s.leading_zeros() as i32 - 4;
        (e, (s >> e) & 0x0f)
    };
    ((sign | (exponent << 4) | mantissa) ^ 0x55) as u8
}

/// A G.711 WAV as sox writes it: an 18-byte fmt chunk (format 7 or 6, 8 bits), a fact chunk
/// with the frame count, then the codes.
fn g711_wav(tag: u16, rate: u32, codes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(b"RIFF");
    v.extend((50 + codes.len() as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(18u32.to_le_bytes());
    v.extend(tag.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(8u16.to_le_bytes());
    v.extend(0u16.to_le_bytes());
    v.extend(b"fact");
    v.extend(4u32.to_le_bytes());
    v.extend((codes.len() as u32).to_le_bytes());
    v.extend(b"data");
    v.extend((codes.len() as u32).to_le_bytes());
    v.extend(codes);
    v
}

/// `ffmpeg -i call.wav -f wav - | flux file -`: the streamed WAV is read until the input ends
/// and gives the turns, and the audio, of the file itself; both placeholder sizes.
#[test]
fn a_wav_streamed_by_ffmpeg_on_stdin_gives_the_turns_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--script", &script(dir.path())]);
    let original = fixture("beckett.wav");
    let bytes = std::fs::read(&original).unwrap();
    let (fmt, data) = split_wav(&bytes);
    let (want, seconds) = turns(&run(file_cmd(&serve, &original, &["--jsonl"]), None));
    assert!(want.len() >= 2, "the fixture has turns: {want:?}");
    let sent = serve.audio_bytes();
    for size in [u32::MAX, 0] {
        let pipe = streamed(fmt, data, size);
        let out = run(file_cmd(&serve, Path::new("-"), &["--jsonl"]), Some(&pipe));
        let err = stderr(&out);
        assert!(!err.contains("0xFFFFFFFF") && !err.contains("sox"), "{err}");
        let (got, got_seconds) = turns(&out);
        assert_eq!(got, want, "sizes {size:#x}");
        assert_eq!(got_seconds, seconds, "sizes {size:#x}");
    }
    // Every run sent the same audio.
    assert_eq!(serve.audio_bytes(), 3 * sent);
}

/// µ-law and A-law WAVs (call recordings) are decoded and give the turns of the PCM original.
#[test]
fn mulaw_and_alaw_wavs_give_the_turns_of_the_pcm_original() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&["--script", &script(dir.path())]);
    let original = fixture("beckett.wav");
    let bytes = std::fs::read(&original).unwrap();
    let (_, data) = split_wav(&bytes);
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let (want, seconds) = turns(&run(file_cmd(&serve, &original, &["--jsonl"]), None));
    assert!(want.len() >= 2, "the fixture has turns: {want:?}");
    for (tag, encode, law) in [(7u16, mulaw as fn(i16) -> u8, "µ-law"), (6, alaw, "A-law")] {
        let codes: Vec<u8> = samples.iter().map(|&s| encode(s)).collect();
        let path = dir.path().join(format!("{tag}.wav"));
        std::fs::write(&path, g711_wav(tag, 16000, &codes)).unwrap();
        let (got, got_seconds) = turns(&run(file_cmd(&serve, &path, &["--jsonl"]), None));
        assert_eq!(got_seconds, seconds, "{law}");
        assert_eq!(got.len(), want.len(), "{law}: {got:?} vs {want:?}");
        for ((text, end), (want_text, want_end)) in got.iter().zip(&want) {
            assert_eq!(text, want_text, "{law}");
            // G.711 is lossy (about 38 dB SNR): the voice detector may move by a frame.
            assert!(
                (end - want_end).abs() <= 0.2,
                "{law}: turn end {end} vs {want_end}"
            );
        }
    }
}
