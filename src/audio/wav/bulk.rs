//! The WAV data chunk read in bulk: large reads of whole frames, decoded a block at a time.
//!
//! 16-bit PCM, nearly every recording, is read straight into the block's `Vec<i16>` (its bytes
//! are the samples on a little-endian machine): no decoding copy. When the caller gives the
//! vector back ([`Source::recycle`](super::super::Source::recycle), as the session's audio
//! thread does) it takes the next read, so there is no allocation or zeroing per block either;
//! otherwise each block gets a fresh, zeroed vector, which costs about what the copy did.
//! Other encodings go through a byte buffer and `audio::pcm`.
//!
//! Both keep the page-cache copy aligned: on the AMD EPYC machine the benchmarks first ran on,
//! the kernel's copy is 3.5 times as slow when the destination sits 1 to 31 bytes further into
//! its cache line than the source (0.30 s instead of 0.08 s of CPU for 659 MB). The byte buffer
//! places the data where it lines up ([`read_start`]); the 16-bit path, whose data must start
//! at the vector's start, chooses how much to read instead ([`aligned_len`]), so that the next
//! read into the same (recycled) vector lines up.

use std::io::{self, Read};

use super::Tracked;
use crate::audio::pcm::{Decoded, Encoding};

/// Bytes of the data chunk read at a time (rounded down to whole frames): [`READ_SECONDS`] of
/// audio, at least [`READ_BYTES`] and at most [`READ_BYTES_MAX`], so a file arrives in few,
/// large blocks (the conditioner then hands the session a block's frames at once, one wake-up
/// of the session per block) and per-block costs vanish: 16 kHz mono 16-bit reads 128 KiB
/// (4 s), 44.1 and 48 kHz stereo 512 KiB (about 3 s; at 128 KiB the session's wake-ups per
/// block were a third of the process's context switches). Always at least 512 frames (the
/// widest frame is 64 channels of 4 bytes). A read that returns less (a pipe) is passed on as
/// soon as it completes a frame, so this sets no latency.
pub const READ_BYTES: usize = 128 * 1024;
/// See [`READ_BYTES`].
pub const READ_BYTES_MAX: usize = 512 * 1024;
/// See [`READ_BYTES`].
const READ_SECONDS: usize = 3;

/// A cache line: the alignment the page-cache copy wants (see the module's comment).
const READ_ALIGN: usize = 64;

/// The least a 16-bit read asks for after short reads: a pipe's whole buffer on Linux.
const ASK_MIN: usize = 64 * 1024;

/// The data chunk read directly, `remaining` bytes still to come: the chunk's declared size in
/// whole frames, exactly where hound's iterator would stop (chunks after the data are never
/// read), or for a streamed WAV everything until the input ends.
pub(super) struct Bulk {
    reader: Tracked,
    encoding: Encoding,
    frame_bytes: usize,
    remaining: u64,
    /// Bytes per block: [`read_buffer_len`].
    block_bytes: usize,
    /// Other encodings: the read buffer, [`READ_ALIGN`] bytes longer than a block to place the
    /// data (see [`read_start`]); allocated once.
    buf: Vec<u8>,
    /// `buf[start..start + filled]` is read but not yet handed out: less than one frame
    /// between calls, the start of a frame a short read cut in two.
    start: usize,
    filled: usize,
    /// 16-bit: the vector the next block is read into (a recycled block's), and the bytes of
    /// a frame a short read cut in two (less than one frame).
    spare: Vec<i16>,
    carry: Vec<u8>,
    /// 16-bit: bytes the next read asks for, whole frames up to a block (see
    /// [`Bulk::next_ask`]); whether no block has been read yet.
    ask: usize,
    first: bool,
}

/// What one block's reading gave: the samples of its whole frames, and how the reading ended.
pub(super) struct Block {
    pub(super) samples: Decoded,
    pub(super) frames: u64,
    /// The declared data has all been read.
    pub(super) exhausted: bool,
    /// The input ended (a read returned 0) before that.
    pub(super) ended: bool,
    pub(super) failure: Option<io::Error>,
    /// At least one whole sample of an incomplete frame was read before the end.
    pub(super) mid_frame: bool,
}

impl Bulk {
    /// Read `remaining` bytes (`u64::MAX`: to the end) of `encoding`, `channels` per frame, at
    /// `rate` from `reader`.
    pub(super) fn new(
        reader: Tracked,
        encoding: Encoding,
        channels: u16,
        rate: u32,
        remaining: u64,
    ) -> Self {
        let frame_bytes = usize::from(channels) * encoding.bytes();
        let block_bytes = read_buffer_len(frame_bytes, rate);
        let sixteen = encoding == Encoding::S16Le;
        Bulk {
            reader,
            encoding,
            frame_bytes,
            remaining,
            block_bytes,
            buf: if sixteen {
                Vec::new()
            } else {
                vec![0; block_bytes + READ_ALIGN]
            },
            start: 0,
            filled: 0,
            spare: Vec::new(),
            carry: Vec::new(),
            ask: block_bytes,
            first: true,
        }
    }

    /// What the next 16-bit read asks for, in bytes.
    #[cfg(test)]
    pub(super) fn ask(&self) -> usize {
        self.ask
    }

    /// Take back a block's 16-bit samples for the next read, if it is one of ours.
    pub(super) fn recycle(&mut self, pcm16: Vec<i16>) {
        if self.encoding == Encoding::S16Le && pcm16.capacity() >= self.block_bytes / 2 {
            self.spare = pcm16;
        }
    }

    /// Read until a read completes at least one frame, and decode the whole frames read; the
    /// bytes of a frame cut by a short read wait for the next call. A regular file fills a
    /// block in one read; a pipe gives what has arrived, which is passed on at once rather
    /// than after a full block.
    pub(super) fn read_block(&mut self) -> Block {
        if self.encoding == Encoding::S16Le {
            self.read_block_s16()
        } else {
            self.read_block_bytes()
        }
    }

    fn read_block_bytes(&mut self) -> Block {
        if self.filled < self.frame_bytes {
            let to = read_start(self.buf.as_ptr().addr(), self.reader.position, self.filled);
            self.buf
                .copy_within(self.start..self.start + self.filled, to);
            self.start = to;
        }
        let room = (self.block_bytes - self.filled) as u64;
        let end = self.filled + room.min(self.remaining) as usize;
        let buf = &mut self.buf[self.start..self.start + end];
        let (ended, failure) = fill(
            &mut self.reader,
            &mut self.remaining,
            buf,
            &mut self.filled,
            self.frame_bytes,
        );
        let whole = self.filled / self.frame_bytes * self.frame_bytes;
        let mut samples = Decoded::default();
        samples.decode(self.encoding, &self.buf[self.start..self.start + whole]);
        self.start += whole;
        self.filled -= whole;
        let leftover = self.filled;
        self.block(samples, whole, ended, failure, leftover)
    }

    /// [`Bulk::read_block_bytes`] for 16-bit samples, read into the vector the block hands out.
    fn read_block_s16(&mut self) -> Block {
        let frame_bytes = self.frame_bytes;
        let mut pcm16 = std::mem::take(&mut self.spare);
        // Zeroed as far as this read may fill it: a recycled vector is already that long
        // when reads come back full (a file).
        pcm16.resize(self.ask / 2, 0);
        let bytes = as_bytes_mut(&mut pcm16);
        let carried = self.carry.len();
        let mut filled = carried;
        bytes[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        let room = self.ask - filled;
        // The data's end comes in this read: nothing after it to line up.
        let want = match usize::try_from(self.remaining) {
            Ok(rest) if rest <= room => rest,
            _ => aligned_len(
                room,
                filled,
                frame_bytes,
                self.reader.position,
                bytes.as_ptr().addr(),
            ),
        };
        let end = filled + want;
        let (ended, failure) = fill(
            &mut self.reader,
            &mut self.remaining,
            &mut bytes[..end],
            &mut filled,
            frame_bytes,
        );
        self.next_ask(filled - carried, want, ended || failure.is_some());
        let whole = filled / frame_bytes * frame_bytes;
        self.carry.extend_from_slice(&bytes[whole..filled]);
        pcm16.truncate(whole / 2);
        // The bytes are little-endian samples: nothing to do on little-endian machines.
        if cfg!(target_endian = "big") {
            pcm16.iter_mut().for_each(|x| *x = i16::from_le(*x));
        }
        let leftover = self.carry.len();
        self.block(Decoded::S16(pcm16), whole, ended, failure, leftover)
    }

    /// The next 16-bit read's request after one that asked for `want` bytes and got `got`:
    /// after a short read (a pipe gives what it holds, 64 KiB at most on Linux) about what
    /// came, at least [`ASK_MIN`], so that a vector is zeroed only as far as a read may fill
    /// it; after a full one twice as much, up to a block. The first read says nothing about
    /// the input (it returns what the header's reading left buffered), nor does the last.
    fn next_ask(&mut self, got: usize, want: usize, stopped: bool) {
        let first = std::mem::replace(&mut self.first, false);
        if first || stopped {
            return;
        }
        let ask = if got < want {
            got.max(ASK_MIN)
        } else {
            self.ask.saturating_mul(2)
        };
        self.ask =
            (ask / self.frame_bytes * self.frame_bytes).clamp(self.frame_bytes, self.block_bytes);
    }

    /// What a read gave: `whole` bytes of whole frames as `samples`, `leftover` bytes of a
    /// frame kept for the next call, and how the reading stopped.
    fn block(
        &self,
        samples: Decoded,
        whole: usize,
        ended: bool,
        failure: Option<io::Error>,
        leftover: usize,
    ) -> Block {
        Block {
            samples,
            frames: (whole / self.frame_bytes) as u64,
            exhausted: self.remaining == 0,
            ended,
            failure,
            mid_frame: leftover >= self.encoding.bytes(),
        }
    }
}

/// Read into `buf[*filled..]` until at least one frame (`frame_bytes`) is there, `buf` is
/// full, the data (`remaining`) has all come, the input ends (`true`) or a read fails.
fn fill(
    reader: &mut Tracked,
    remaining: &mut u64,
    buf: &mut [u8],
    filled: &mut usize,
    frame_bytes: usize,
) -> (bool, Option<io::Error>) {
    while *filled < frame_bytes && *remaining > 0 && *filled < buf.len() {
        match reader.read(&mut buf[*filled..]) {
            Ok(0) => return (true, None),
            Ok(n) => {
                *filled += n;
                *remaining -= n as u64;
            }
            // `RetryInterrupted` has already retried interrupted reads.
            Err(e) => return (false, Some(e)),
        }
    }
    (false, None)
}

/// The samples' bytes, to read into (any bytes are valid i16s).
fn as_bytes_mut(samples: &mut [i16]) -> &mut [u8] {
    let len = std::mem::size_of_val(samples);
    // SAFETY: the pointer and length cover exactly `samples`' memory, borrowed mutably for the
    // result's lifetime; u8 has no alignment requirement and every byte pattern is a valid i16.
    unsafe { std::slice::from_raw_parts_mut(samples.as_mut_ptr().cast::<u8>(), len) }
}

/// How many bytes to ask for, at most `max`, after `filled` bytes already in a buffer at
/// `buf_addr`, with the input at `position`: the largest length that ends on a whole frame
/// (`frame_bytes`) and leaves the input where a read into the buffer's start lines up with it
/// (see the module's comment), so that the next block, read into the same recycled vector, is
/// aligned; if no length within a cache line's worth of frames does (an odd position), the
/// largest that ends on a whole frame. A block shorter than that ends the data or the stream
/// anyway.
fn aligned_len(
    max: usize,
    filled: usize,
    frame_bytes: usize,
    position: u64,
    buf_addr: usize,
) -> usize {
    let whole = (filled + max) / frame_bytes * frame_bytes;
    let Some(longest) = whole.checked_sub(filled).filter(|&n| n > 0) else {
        return max;
    };
    (0..READ_ALIGN)
        .map(|k| k * frame_bytes)
        .take_while(|&cut| cut < longest)
        .map(|cut| longest - cut)
        .find(|&n| (position as usize).wrapping_add(n).wrapping_sub(buf_addr) % READ_ALIGN == 0)
        .unwrap_or(longest)
}

/// Where in the read buffer (at `buf_addr`) to put the `filled` bytes already read, so that
/// the next read, into the bytes after them, lands at the same offset within a 64-byte line as
/// the data has in the input (`position`, the offset of the next byte).
fn read_start(buf_addr: usize, position: u64, filled: usize) -> usize {
    (position as usize)
        .wrapping_sub(buf_addr)
        .wrapping_sub(filled)
        % READ_ALIGN
}

/// The bulk read buffer for frames of `frame_bytes` at `rate`: [`READ_SECONDS`] of audio
/// within [`READ_BYTES`]..=[`READ_BYTES_MAX`], rounded down to whole frames, and never less
/// than one frame.
pub(super) fn read_buffer_len(frame_bytes: usize, rate: u32) -> usize {
    let want = (rate as usize)
        .saturating_mul(READ_SECONDS)
        .saturating_mul(frame_bytes);
    let bytes = want.clamp(READ_BYTES, READ_BYTES_MAX);
    (bytes / frame_bytes).max(1) * frame_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_sizes_follow_the_rate_within_bounds() {
        assert_eq!(read_buffer_len(64 * 4, 48_000), READ_BYTES_MAX);
        assert_eq!(read_buffer_len(3 * 3, 4_000), READ_BYTES / 9 * 9);
        assert_eq!(read_buffer_len(3 * 3, 8_000), 8_000 * 3 * 9);
        assert_eq!(read_buffer_len(2, 16_000), READ_BYTES);
        assert_eq!(read_buffer_len(4, 44_100), READ_BYTES_MAX);
        assert_eq!(read_buffer_len(4, 22_050), 22_050 * 3 * 4);
        assert_eq!(read_buffer_len(2, u32::MAX), READ_BYTES_MAX);
    }

    /// The length leaves the input lined up with the buffer's start when frames allow it,
    /// ends on a whole frame, and never exceeds what was asked.
    #[test]
    fn read_lengths_line_the_next_read_up() {
        for frame_bytes in [2, 4, 6, 128] {
            for filled in [0, 1, 3] {
                if filled >= frame_bytes {
                    continue;
                }
                for position in [44u64, 46, 1_000_000, 45] {
                    for buf_addr in [0usize, 16, 48, 4096 + 32] {
                        let max = 4096 - filled;
                        let n = aligned_len(max, filled, frame_bytes, position, buf_addr);
                        let label = format!("{frame_bytes} {filled} {position} {buf_addr}");
                        assert!(n <= max && n > 0, "{label}: {n}");
                        assert_eq!((filled + n) % frame_bytes, 0, "{label}");
                        let lined_up = (position as i64 + n as i64 - buf_addr as i64)
                            .rem_euclid(READ_ALIGN as i64)
                            == 0;
                        // Reachable when the gap from the longest whole-frame read is a
                        // multiple of gcd(frame_bytes, 64).
                        let longest = (4096 / frame_bytes * frame_bytes - filled) as i64;
                        let gap = (position as i64 + longest - buf_addr as i64)
                            .rem_euclid(READ_ALIGN as i64);
                        let step = [2, 4, 8, 16, 32, 64]
                            .into_iter()
                            .rev()
                            .find(|g| frame_bytes % g == 0)
                            .unwrap_or(1) as i64;
                        assert_eq!(lined_up, gap % step == 0, "{label}: {n}");
                    }
                }
            }
        }
        // Less than a frame to go: asked as is (the data's end).
        assert_eq!(aligned_len(3, 0, 4, 44, 0), 3);
    }
}
