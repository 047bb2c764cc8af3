//! Runs a source and the conditioner on their own thread, handing frames to the session over
//! a bounded channel: reading and resampling never stall the network loop, and the channel
//! bound keeps memory flat however long the input is.

use crate::audio::condition::{Conditioner, Frame};
use crate::audio::{AudioError, Source};
use std::io;
use std::path::Path;
use tokio::sync::mpsc;

/// Frames buffered between the audio thread and the session (~2.5 s at 80 ms).
pub const FEED_CAPACITY: usize = 32;

#[derive(Debug)]
pub enum Feed {
    Frame(Frame),
    /// The source is done. `error` is set when it stopped on bad input; every good frame
    /// before the error has already been delivered. `note` is a warning for people.
    End {
        error: Option<AudioError>,
        note: Option<String>,
    },
}

/// Starts the audio thread. `end_note` is asked for a warning once the source is exhausted
/// (e.g. stray bytes at the end of raw PCM).
pub fn spawn<S, N>(source: S, conditioner: Conditioner, end_note: N) -> mpsc::Receiver<Feed>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    spawn_tapped(source, conditioner, end_note, None)
}

/// A copy of every frame the session accepted (`--save-audio`). It runs on the audio thread,
/// so blocking file I/O there never stalls the network loop.
pub trait Tap: Send {
    fn frame(&mut self, frame: &Frame) -> io::Result<()>;
    /// End of stream: complete the copy.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Writes frames to a mono 16-bit WAV file. The header is brought up to date after every
/// frame, so the file is valid even if flux is killed (Ctrl-C twice).
pub struct WavTap {
    path: String,
    writer: hound::WavWriter<io::BufWriter<std::fs::File>>,
}

impl WavTap {
    /// Creates (or truncates) the file before anything is streamed, so a bad path fails early.
    pub fn create(path: &Path, sample_rate: u32) -> Result<WavTap, hound::Error> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavTap {
            path: path.display().to_string(),
            writer: hound::WavWriter::create(path, spec)?,
        })
    }
}

impl Tap for WavTap {
    fn frame(&mut self, frame: &Frame) -> io::Result<()> {
        let mut samples = self.writer.get_i16_writer((frame.data.len() / 2) as u32);
        for b in frame.data.chunks_exact(2) {
            samples.write_sample(i16::from_le_bytes([b[0], b[1]]));
        }
        samples.flush().map_err(hound_io)?;
        self.writer.flush().map_err(hound_io)
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        let path = self.path;
        self.writer
            .finalize()
            .map_err(|e| io::Error::other(format!("{path}: {e}")))
    }
}

fn hound_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// [`spawn`], with every frame the session accepts also given to `tap`. A failing tap is
/// dropped with a warning; the stream itself goes on.
pub fn spawn_tapped<S, N>(
    mut source: S,
    mut conditioner: Conditioner,
    end_note: N,
    tap: Option<Box<dyn Tap>>,
) -> mpsc::Receiver<Feed>
where
    S: Source + 'static,
    N: FnOnce(&S) -> Option<String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(FEED_CAPACITY);
    let spawned = std::thread::Builder::new()
        .name("flux-audio".into())
        .spawn(move || {
            // Set when the session hung up (finished early): stop reading input.
            let receiver_gone = std::cell::Cell::new(false);
            let mut tap = tap;
            let mut tap_error: Option<io::Error> = None;
            let mut deliver = |frame: Frame| {
                if receiver_gone.get() {
                    return;
                }
                // A clone of a frame shares its bytes; the copy is written only once the
                // session has taken the frame.
                let copy = tap.is_some().then(|| frame.clone());
                if tx.blocking_send(Feed::Frame(frame)).is_err() {
                    receiver_gone.set(true);
                } else if let (Some(t), Some(f)) = (tap.as_mut(), copy)
                    && let Err(e) = t.frame(&f)
                {
                    tap_error = Some(e);
                    tap = None;
                }
            };
            let error = loop {
                match source.next_block() {
                    Ok(Some(block)) => {
                        if let Err(e) = conditioner.push(&block, &mut deliver) {
                            break Some(e);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
                if receiver_gone.get() {
                    return;
                }
            };
            // Flush what was read, even after an error: nothing received is lost.
            let flush_error = conditioner.finish(&mut deliver).err();
            if let Some(t) = tap.take()
                && let Err(e) = t.finish()
            {
                tap_error = Some(e);
            }
            let tap_note = tap_error.map(|e| {
                format!(
                    "could not write the --save-audio file ({e}); the saved audio is incomplete"
                )
            });
            let note = match (end_note(&source), tap_note) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
            let _ = tx.blocking_send(Feed::End {
                error: error.or(flush_error),
                note,
            });
        });
    if let Err(e) = spawned {
        // Without a thread there is no audio; the session sees an immediately finished feed.
        eprintln!("flux: error: cannot start the audio thread: {e}");
    }
    rx
}
