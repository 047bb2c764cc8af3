//! `--save-audio`: a copy of exactly the audio sent to the server (after conditioning, and
//! including any silence flux added to end a turn), so a session can be replayed with
//! `flux file`.
//!
//! The file is written on its own thread: the session hands over each sent frame (a cheap
//! reference-counted clone) and never waits for the disk.

use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Where sent frames go.
pub trait Tap: Send {
    /// One frame of mono i16 little-endian samples, as sent.
    fn frame(&mut self, data: &[u8]) -> io::Result<()>;
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
    fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        let mut samples = self.writer.get_i16_writer((data.len() / 2) as u32);
        for b in data.chunks_exact(2) {
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

/// A tap running on its own thread.
pub struct TapThread {
    tx: Option<mpsc::Sender<Bytes>>,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl TapThread {
    pub fn start(mut tap: Box<dyn Tap>) -> io::Result<TapThread> {
        // Unbounded, but the data rate is the audio's own (32 KB/s at 16 kHz): a slow disk
        // costs memory in proportion to how far behind it is, never the stream.
        let (tx, rx) = mpsc::channel::<Bytes>();
        let handle = std::thread::Builder::new()
            .name("flux-save-audio".into())
            .spawn(move || {
                let mut failed = None;
                for data in rx {
                    if failed.is_none() {
                        failed = tap.frame(&data).err();
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => tap.finish(),
                }
            })?;
        Ok(TapThread {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    pub fn frame(&self, data: &Bytes) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(data.clone());
        }
    }

    /// Waits for every frame to be written and the file completed.
    pub fn finish(mut self) -> io::Result<()> {
        drop(self.tx.take());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the --save-audio writer failed")),
            None => Ok(()),
        }
    }
}
