//! Listening and accepting for `flux serve`: a listen queue as deep as the system allows, and
//! an accept loop that takes every queued connection per wake-up, so a load test's burst of
//! connections is neither refused by the kernel nor held behind the sessions already running.

use super::{Shared, connection};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Connections the kernel may hold for `flux serve` before it accepts them: as many as the
/// system allows (`/proc/sys/net/core/somaxconn`, 4096 on current Linux), at least 1024
/// (what tokio's `TcpListener::bind` asks for). A load test that opens a thousand connections
/// in a few seconds must not find the queue full: the kernel then drops the client's SYN,
/// and the client waits 1, 3, 7 s for its retransmissions.
pub(super) fn backlog() -> u32 {
    const FLOOR: u32 = 1024;
    const CEILING: u32 = 65_535;
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(FLOOR, |n| n.clamp(FLOOR, CEILING))
}

/// Binds `listen` (HOST:PORT; the first of a host's addresses that binds) with [`backlog`].
pub(super) async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(listen).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let bound = socket.and_then(|s| {
            // As std's and tokio's `bind` do on Unix: a restarted server gets its port back
            // while old connections linger in TIME_WAIT.
            #[cfg(unix)]
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(backlog())
        });
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the host resolves to no address",
        )
    }))
}

/// Most connections taken from the kernel's queue in one go before finished sessions are
/// reaped and the stop signal is looked at again (tokio's cooperative budget also makes a
/// task yield after 128 operations).
const ACCEPT_BATCH: usize = 128;

/// Accepts connections and runs each as a task of its own. Every wake-up takes everything the
/// kernel has queued (up to [`ACCEPT_BATCH`]), so a burst of connections costs one wake-up of
/// this task rather than one each, and finished sessions are reaped between batches instead
/// of waking this task as each one ends.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut sessions = JoinSet::new();
    loop {
        let batch = tokio::select! {
            biased;
            _ = &mut stopped => break,
            batch = accept_batch(&listener) => batch,
        };
        let mut failed = false;
        for accepted in batch {
            match accepted {
                Ok(tcp) => {
                    let conn = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                    sessions.spawn(connection(tcp, conn, shared.clone()));
                }
                Err(_) => failed = true,
            }
        }
        while sessions.try_join_next().is_some() {}
        if failed {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
    sessions.shutdown().await;
}

/// Waits for a connection, then takes every other one already queued (up to
/// [`ACCEPT_BATCH`]); an error ends the batch.
async fn accept_batch(listener: &TcpListener) -> Vec<std::io::Result<TcpStream>> {
    std::future::poll_fn(|cx| {
        let mut batch = Vec::new();
        while batch.len() < ACCEPT_BATCH {
            match listener.poll_accept(cx) {
                Poll::Ready(Ok((tcp, _peer))) => batch.push(Ok(tcp)),
                Poll::Ready(Err(e)) => {
                    batch.push(Err(e));
                    break;
                }
                Poll::Pending => break,
            }
        }
        if batch.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(batch)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raises this test process's soft limit on open files to its hard limit.
    #[cfg(unix)]
    fn raise_open_files() -> u64 {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct on this stack.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        widen(lim.rlim_cur)
    }

    /// `rlim_t` as u64 (narrower on some 32-bit systems).
    #[cfg(unix)]
    fn widen<T: TryInto<u64>>(n: T) -> u64 {
        n.try_into().unwrap_or(u64::MAX)
    }

    #[test]
    fn the_listen_queue_holds_a_burst_of_connections_past_tokios_default() {
        // tokio's `TcpListener::bind` asks for 1024; a burst of 1,200 connections nobody has
        // accepted yet must all complete their handshake (in the kernel's queue) rather than
        // have their SYNs dropped. Needs somaxconn ≥ 1,200 (4096 on Linux since 5.4).
        let want = 1200;
        assert!(backlog() >= 1024);
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .expect("Linux says its somaxconn")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(backlog(), somaxconn.clamp(1024, 65_535));
        assert!(
            somaxconn >= want,
            "this test needs net.core.somaxconn ≥ {want} (it is {somaxconn})"
        );
        #[cfg(unix)]
        assert!(raise_open_files() > u64::from(want) + 100);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        // Connects complete in the kernel; nothing accepts until the end.
        let clients: Vec<std::net::TcpStream> = (0..want)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(900))
                    .unwrap_or_else(|e| panic!("connection {i} was not queued: {e}"))
            })
            .collect();
        // And one wake-up of the accept loop's batch takes them (up to its batch size).
        let first = rt.block_on(accept_batch(&listener));
        assert_eq!(first.len(), ACCEPT_BATCH);
        assert!(first.iter().all(Result::is_ok));
        let mut accepted = first.len();
        while accepted < clients.len() {
            let batch = rt.block_on(accept_batch(&listener));
            assert!(batch.iter().all(Result::is_ok));
            accepted += batch.len();
        }
        assert_eq!(accepted, want as usize);
        drop(clients);
    }
}
