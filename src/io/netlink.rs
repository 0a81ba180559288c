//! `io::netlink`: the rtnetlink reader. One thread owns a `NETLINK_ROUTE` socket subscribed
//! to link changes, dumps every link at start and after lost events, decodes what it reads
//! ([`crate::kernel::decode`]) and hands the messages to the control thread through a
//! bounded queue, ringing its doorbell. It never blocks the control thread: when the queue
//! is full it stops queueing, and once there is room again it queues
//! [`KernelMsg::Resync`] and a fresh dump, as it does when the socket itself overruns
//! (`ENOBUFS`).

use std::{
    io,
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tracing::warn;

use crate::kernel::{self, KernelMsg};

/// Messages queued for the control thread at most.
pub const QUEUE: usize = 4096;
/// Socket receive buffer: a burst of link changes (a few hundred bytes to 1.5 KiB each) fits.
const RCVBUF: usize = 4 << 20;
/// How often the reader looks at its stop flag while the socket is quiet.
const POLL: Duration = Duration::from_millis(200);

/// What the reader counted.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Messages that did not parse (skipped), not yet taken by [`NetlinkFeed::take_malformed`].
    malformed: AtomicU64,
    /// Messages decoded.
    pub decoded: AtomicU64,
}

/// The control thread's end of the reader.
#[derive(Debug)]
pub struct NetlinkFeed {
    rx: Receiver<KernelMsg>,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl NetlinkFeed {
    /// Open the socket (in the current network namespace), request the first dump and start
    /// the reader; `bell` wakes the control thread after messages are queued.
    ///
    /// # Errors
    /// The socket could not be opened or bound.
    pub fn start(bell: Box<dyn Fn() + Send>) -> io::Result<NetlinkFeed> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, kernel::RTMGRP_LINK))?;
        if let Err(e) = sock.set_rx_buf_sz(RCVBUF) {
            warn!(error = %e, "netlink: receive buffer not enlarged");
        }
        let (tx, rx) = bounded(QUEUE);
        let stats = Arc::new(FeedStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut r = Reader {
            sock,
            tx,
            bell,
            stats: stats.clone(),
            seq: 0,
            lost: false,
            redump: false,
        };
        r.dump()?;
        let st = stop.clone();
        let handle = thread::Builder::new()
            .name("xgw-netlink".into())
            .spawn(move || r.run(&st))?;
        Ok(NetlinkFeed {
            rx,
            stats,
            stop,
            handle: Some(handle),
        })
    }

    /// The messages queued so far, at most `max`.
    pub fn drain(&self, max: usize) -> impl Iterator<Item = KernelMsg> + '_ {
        self.rx.try_iter().take(max)
    }

    /// Malformed messages counted since the last call.
    pub fn take_malformed(&self) -> u64 {
        self.stats.malformed.swap(0, Ordering::Relaxed)
    }
}

impl Drop for NetlinkFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Reader {
    sock: Socket,
    tx: Sender<KernelMsg>,
    bell: Box<dyn Fn() + Send>,
    stats: Arc<FeedStats>,
    seq: u32,
    /// Messages were dropped at the full queue: resync once there is room.
    lost: bool,
    /// The last dump was refused (EBUSY): ask again.
    redump: bool,
}

impl Reader {
    /// Queue [`KernelMsg::DumpStart`] and ask for every link.
    fn dump(&mut self) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let _ = self.tx.try_send(KernelMsg::DumpStart { seq: self.seq });
        self.sock.send(&kernel::link_dump_request(self.seq), 0)?;
        Ok(())
    }

    fn resync(&mut self) {
        let _ = self.tx.try_send(KernelMsg::Resync);
        if let Err(e) = self.dump() {
            warn!(error = %e, "netlink: dump request failed; retrying with the next event");
            self.lost = true;
        }
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 64 << 10];
        let mut msgs = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if self.lost && self.tx.len() < QUEUE / 2 {
                self.lost = false;
                self.resync();
                (self.bell)();
            } else if self.redump && !self.lost {
                self.redump = false;
                if let Err(e) = self.dump() {
                    warn!(error = %e, "netlink: dump request failed");
                    self.lost = true;
                }
            }
            if !readable(self.sock.as_raw_fd(), POLL) {
                continue;
            }
            let n = match self.sock.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.resync();
                    (self.bell)();
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    warn!(error = %e, "netlink: receive failed");
                    thread::sleep(POLL);
                    continue;
                }
            };
            msgs.clear();
            let st = kernel::decode(&buf[..n], &mut msgs);
            self.stats
                .malformed
                .fetch_add(st.malformed as u64, Ordering::Relaxed);
            self.stats
                .decoded
                .fetch_add(st.decoded as u64, Ordering::Relaxed);
            for m in msgs.drain(..) {
                if self.lost {
                    break;
                }
                if m == KernelMsg::Resync {
                    // An interrupted dump (NLM_F_DUMP_INTR): read it to its end, then dump
                    // again (a request now would meet EBUSY).
                    self.redump = true;
                    continue;
                }
                if matches!(m, KernelMsg::Error { errno: libc::EBUSY, seq } if seq == self.seq) {
                    // Another dump was running: ask again once this one is read.
                    self.redump = true;
                }
                match self.tx.try_send(m) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => self.lost = true,
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            (self.bell)();
        }
    }
}

/// Wait up to `timeout` for `fd` to become readable.
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `p` is one live, initialised pollfd borrowed exclusively for the call (nfds
    // = 1); poll only writes its `revents`.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    r > 0 && p.revents & libc::POLLIN != 0
}
