//! Whether a write to a descriptor can block now. A session's output is written on the
//! session's own thread only when it cannot (src/app/writer.rs): a reader that stops reading
//! (a paused `| less`, a full pipe) must never stall the network loop.

use std::os::fd::{AsRawFd, BorrowedFd};

/// What a descriptor is, as far as blocking goes; found once, when a session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file or /dev/null: a write returns without waiting for any reader.
    Never,
    /// A pipe or FIFO: a write waits while the pipe is full, so each batch asks first
    /// ([`pipe_takes`]).
    Pipe,
    /// A terminal (Ctrl-S pauses it), a socket, anything else: a write may wait.
    May,
}

/// What `fd` is; anything that cannot be told is [`Kind::May`].
#[cfg(target_os = "linux")]
pub fn kind(fd: BorrowedFd<'_>) -> Kind {
    // SAFETY: a plain-data struct that fstat fills; `fd` is open for the borrow.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Kind::May;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::Never,
        libc::S_IFCHR if st.st_rdev == libc::makedev(1, 3) => Kind::Never, // /dev/null
        libc::S_IFIFO => Kind::Pipe,
        _ => Kind::May,
    }
}

#[cfg(not(target_os = "linux"))]
pub fn kind(_fd: BorrowedFd<'_>) -> Kind {
    Kind::May
}

/// Whether the pipe `fd` takes a write of about `bytes` now, without waiting: only when it is
/// empty (its reader has taken everything) and `bytes` fills at most a quarter of it. Not
/// "free space": a pipe is a ring of page-sized slots and small writes leave slots part
/// full, so bytes free do not say whether a write fits; an empty pipe holds its whole
/// capacity. `bytes` is an estimate, hence the quarter. Another process writing to the same
/// pipe between this check and the write is not knowable; it could make the write wait, but
/// only if it filled the pipe in that instant while the reader stood still.
#[cfg(target_os = "linux")]
pub fn pipe_takes(fd: BorrowedFd<'_>, bytes: usize) -> bool {
    let raw = fd.as_raw_fd();
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int; F_GETPIPE_SZ takes no argument. `fd` is open.
    if unsafe { libc::ioctl(raw, libc::FIONREAD, &mut queued) } != 0 || queued != 0 {
        return false;
    }
    let capacity = unsafe { libc::fcntl(raw, libc::F_GETPIPE_SZ) };
    usize::try_from(capacity).is_ok_and(|c| bytes <= c / 4)
}

#[cfg(not(target_os = "linux"))]
pub fn pipe_takes(_fd: BorrowedFd<'_>, _bytes: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn files_and_dev_null_never_block_pipes_are_asked_sockets_may() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(kind(file.as_fd()), Kind::Never);
        let null = std::fs::File::options()
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert_eq!(kind(null.as_fd()), Kind::Never);
        let zero = std::fs::File::open("/dev/zero").unwrap();
        assert_eq!(kind(zero.as_fd()), Kind::May);
        let (_r, w) = std::io::pipe().unwrap();
        assert_eq!(kind(w.as_fd()), Kind::Pipe);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(kind(a.as_fd()), Kind::May);
    }

    #[test]
    fn a_pipe_takes_a_write_only_when_empty_and_large_enough() {
        let (mut r, mut w) = std::io::pipe().unwrap();
        assert!(pipe_takes(w.as_fd(), 1000));
        assert!(
            !pipe_takes(w.as_fd(), 1 << 20),
            "more than a quarter of the pipe"
        );
        w.write_all(b"x").unwrap();
        assert!(!pipe_takes(w.as_fd(), 10), "one byte waiting: not empty");
        let mut one = [0u8; 1];
        std::io::Read::read_exact(&mut r, &mut one).unwrap();
        assert!(pipe_takes(w.as_fd(), 10), "read again: empty");
    }
}
