//! Runs a source and the conditioner on their own thread, handing frames to the session over
//! a bounded channel: reading and resampling never stall the network loop, and the channel
//! bound keeps memory flat however long the input is.

use crate::audio::condition::{Conditioner, Frame};
use crate::audio::{AudioError, Source};
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
            let receiver_gone = std::cell::Cell::new(false);
            let mut deliver = |frame: Frame| {
                if !receiver_gone.get() && tx.blocking_send(Feed::Frame(frame)).is_err() {
                    receiver_gone.set(true);
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
