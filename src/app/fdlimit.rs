//! The limit on open files. A thousand streams need a thousand sockets on each side plus the
//! process's own files, and the usual soft limit is 1,024, so `flux load` and `flux serve`
//! raise their soft limit to the hard limit at start (what `ulimit -n` would do by hand).
//! Raising it needs no privilege; beyond the hard limit only `ulimit -Hn` as root helps.

/// Descriptors per stream (its socket; the peer's end is another process's) plus what the
/// process keeps open besides (runtime, standard streams, recordings, the log).
pub const BASE: u64 = 64;

/// The soft limit on open files after raising it to the hard limit where it was lower;
/// `None` where the system does not say.
pub fn raise_open_files() -> Option<u64> {
    imp::raise()
}

#[cfg(unix)]
mod imp {
    fn get() -> Option<libc::rlimit> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
    }

    pub fn raise() -> Option<u64> {
        let lim = get()?;
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given. A refusal (macOS refuses more
            // than its per-process maximum) leaves the limit as it was, which is read back.
            let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
        }
        get().map(|l| widen(l.rlim_cur))
    }

    /// `rlim_t` as u64 (it is narrower on some 32-bit systems; "unlimited" stays the largest).
    pub fn widen<T: TryInto<u64>>(n: T) -> u64 {
        n.try_into().unwrap_or(u64::MAX)
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn raise() -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lowered_soft_limit_is_raised_to_the_hard_limit() {
        let read = || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: as in `imp::get`.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
            lim
        };
        let hard = read().rlim_max;
        // One below the hard limit (never low enough to starve the other tests).
        let lowered = libc::rlimit {
            rlim_cur: hard - 1,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct it is given.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        assert_eq!(read().rlim_cur, hard - 1);
        let after = super::raise_open_files().expect("Linux reports its limits");
        assert_eq!(read().rlim_cur, hard);
        assert_eq!(after, super::imp::widen(hard));
    }
}
