//! Runs a source and the conditioner on their own thread, handing frames to the session over
//! a bounded channel: reading and resampling never stall the network loop, and the channel
//! bound keeps memory flat however long the input is.
//!
//! Frames go over in batches: every frame one source block yields, in one message. A live
//! source's block is what has arrived (a frame or less), so nothing waits for company; a
//! file's block is up to about 3 s of audio (512 KiB), and handing its frames over one by one
//! cost a wake-up of the session per 80 ms frame, more CPU than sending the frame.

use crate::audio::condition::{Conditioner, Frame};
use crate::audio::{AudioError, Source};
use std::time::Instant;
use tokio::sync::mpsc;

/// Batches buffered between the audio thread and the session: a few seconds of a file (its
/// blocks are under a second), a few frames of a live source (which the session takes as
/// they come).
pub const FEED_CAPACITY: usize = 8;

#[derive(Debug)]
pub enum Feed {
    /// Consecutive frames, never an empty batch, and when they were ready (the batch's last
    /// frame was made then; the others a few microseconds earlier, from the same block).
    Frames { frames: Vec<Frame>, ready: Instant },
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
    spawn_inner(source, conditioner, end_note)
}

fn spawn_inner<S, N>(
    mut source: S,
    mut conditioner: Conditioner,
    end_note: N,
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
            let mut receiver_gone = false;
            let mut batch = Vec::new();
            let mut deliver = |batch: &mut Vec<Frame>| {
                if !batch.is_empty() && !receiver_gone {
                    let frames = std::mem::take(batch);
                    let ready = Instant::now();
                    receiver_gone = tx.blocking_send(Feed::Frames { frames, ready }).is_err();
                }
                receiver_gone
            };
            let error = loop {
                match source.next_block() {
                    Ok(Some(block)) => {
                        let pushed = conditioner.push(&block, &mut |f| batch.push(f));
                        source.recycle(block);
                        // Frames made before an error are good: deliver them either way.
                        if deliver(&mut batch) {
                            return;
                        }
                        if let Err(e) = pushed {
                            break Some(e);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            // Flush what was read, even after an error: nothing received is lost.
            let flush_error = conditioner.finish(&mut |f| batch.push(f)).err();
            deliver(&mut batch);
            let note = end_note(&source);
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
