//! `io::netlink`: the rtnetlink reader. One thread owns a `NETLINK_ROUTE` socket subscribed
//! to link changes (and in kernel mirror mode to addresses, routes, nexthop objects and
//! neighbours), dumps each at start and after lost events, one dump at a time, decodes what it reads
//! ([`crate::kernel::decode`]) and hands the messages to the control thread through a
//! bounded queue, ringing its doorbell. It never blocks the control thread: when the queue
//! is full the reader waits for room and stops reading the socket meanwhile. A dump is
//! paced by its reader (the kernel writes the next part when the last was read), so a dump
//! of a full table (886k routes) streams through the queue at the control thread's pace;
//! events that arrive meanwhile wait in the socket's buffer, and if it overruns
//! (`ENOBUFS`) the reader queues [`KernelMsg::Resync`] and dumps everything again.

use std::{
    collections::VecDeque,
    io,
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use crossbeam::channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tracing::warn;

use crate::kernel::{self, DumpKind, KernelMsg};

/// Messages queued for the control thread at most.
pub const QUEUE: usize = 4096;
/// Socket receive buffer: a burst of link changes (a few hundred bytes to 1.5 KiB each) fits.
const RCVBUF: usize = 4 << 20;
/// The receive buffer in mirror mode (see [`force_rcvbuf`]).
const MIRROR_RCVBUF: usize = 64 << 20;
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

/// What the reader follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Links only (standalone mode).
    Links,
    /// Links, IPv4 addresses, nexthop objects, IPv4 routes and neighbours (kernel mirror
    /// mode).
    Mirror,
}

impl Follow {
    fn dumps(self) -> &'static [DumpKind] {
        match self {
            Follow::Links => &[DumpKind::Links],
            Follow::Mirror => &[
                DumpKind::Links,
                DumpKind::Addresses,
                DumpKind::Routes,
                DumpKind::Neighbours,
            ],
        }
    }

    fn groups(self) -> u32 {
        match self {
            Follow::Links => kernel::RTMGRP_LINK,
            Follow::Mirror => {
                kernel::RTMGRP_LINK
                    | kernel::RTMGRP_IPV4_IFADDR
                    | kernel::RTMGRP_IPV4_ROUTE
                    | kernel::RTMGRP_NEIGH
            }
        }
    }
}

impl NetlinkFeed {
    /// Open the socket (in the current network namespace), request the first dumps and
    /// start the reader; `bell` wakes the control thread after messages are queued.
    ///
    /// # Errors
    /// The socket could not be opened or bound.
    pub fn start(follow: Follow, bell: Box<dyn Fn() + Send>) -> io::Result<NetlinkFeed> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, follow.groups()))?;
        if follow == Follow::Mirror {
            // Nexthop objects have no legacy group bit below 32: join by number.
            sock.add_membership(kernel::RTNLGRP_NEXTHOP)?;
        }
        if let Err(e) = sock.set_rx_buf_sz(RCVBUF) {
            warn!(error = %e, "netlink: receive buffer not enlarged");
        }
        if follow == Follow::Mirror {
            // A routing daemon installing a full table writes faster than a dump is read:
            // room for about 300k route events (as FRR's zebra asks for), past
            // net.core.rmem_max, which root may exceed.
            if let Err(e) = force_rcvbuf(&sock, MIRROR_RCVBUF) {
                warn!(error = %e, "netlink: receive buffer not enlarged to 64 MiB (events may overrun and cost full dumps)");
            }
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
            follow,
            plan: follow.dumps().iter().copied().collect(),
            in_flight: None,
            restart: false,
            stop: stop.clone(),
        };
        r.next_dump()?;
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

/// The dump being read: its kind, whether this is the nexthop half of a route dump, and
/// the sequence number whose end (NLMSG_DONE or an error) completes this request.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    kind: DumpKind,
    nexthops: bool,
    seq: u32,
}

struct Reader {
    sock: Socket,
    tx: Sender<KernelMsg>,
    bell: Box<dyn Fn() + Send>,
    stats: Arc<FeedStats>,
    seq: u32,
    /// Messages were dropped at the full queue: resync once there is room.
    lost: bool,
    follow: Follow,
    /// Dumps still to request, in order. The kernel runs one dump per socket at a time
    /// (a second request meets EBUSY), so they go one after the other.
    plan: VecDeque<DumpKind>,
    in_flight: Option<InFlight>,
    /// Everything must be dumped again once the dump in flight ends.
    restart: bool,
    /// xgw is stopping.
    stop: Arc<AtomicBool>,
}

impl Reader {
    /// Request the next planned dump, if none is being read.
    fn next_dump(&mut self) -> io::Result<()> {
        if self.in_flight.is_some() {
            return Ok(());
        }
        if self.restart {
            self.restart = false;
            self.plan = self.follow.dumps().iter().copied().collect();
        }
        let Some(kind) = self.plan.pop_front() else {
            return Ok(());
        };
        self.seq = self.seq.wrapping_add(2);
        let seq = self.seq;
        // Consumers stage what this dump lists from here on.
        self.queue(KernelMsg::DumpStart { seq, kind });
        let (req, nexthops, req_seq) = match kind {
            DumpKind::Links => (kernel::link_dump_request(seq), false, seq),
            DumpKind::Addresses => (kernel::addr_dump_request(seq), false, seq),
            DumpKind::Routes => (kernel::nexthop_dump_request(seq - 1), true, seq - 1),
            DumpKind::Neighbours => (kernel::neigh_dump_request(seq), false, seq),
        };
        self.in_flight = Some(InFlight {
            kind,
            nexthops,
            seq: req_seq,
        });
        if let Err(e) = self.sock.send(&req, 0) {
            self.in_flight = None;
            self.plan.push_front(kind);
            return Err(e);
        }
        Ok(())
    }

    /// The request in flight ended (`errno` 0: completed).
    fn dump_ended(&mut self, errno: i32) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        if errno == libc::EBUSY {
            // Another dump was running on this socket: ask again.
            self.plan.push_front(f.kind);
        } else if f.nexthops {
            // The nexthop half is done (or the kernel has no nexthop objects): now the
            // routes, under the sequence number their DumpStart announced.
            self.in_flight = Some(InFlight {
                kind: f.kind,
                nexthops: false,
                seq: f.seq + 1,
            });
            if let Err(e) = self.sock.send(&kernel::route_dump_request(f.seq + 1), 0) {
                warn!(error = %e, "netlink: route dump request failed; dumping everything again");
                self.in_flight = None;
                self.restart = true;
            }
            return;
        } else if errno != 0 {
            warn!(errno, kind = ?f.kind, "netlink: a dump was refused");
        }
        self.request_next();
    }

    fn request_next(&mut self) {
        if let Err(e) = self.next_dump() {
            warn!(error = %e, "netlink: dump request failed; retrying with the next event");
            self.lost = true;
        }
    }

    fn resync(&mut self) {
        self.queue(KernelMsg::Resync);
        self.restart = true;
        self.request_next();
    }

    /// Queue `m`, waiting while the queue is full (ringing the control thread, which
    /// drains it); false once the control thread is gone or xgw stops.
    fn queue(&mut self, m: KernelMsg) -> bool {
        let mut m = m;
        loop {
            match self.tx.try_send(m) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    (self.bell)();
                    match self.tx.send_timeout(back, POLL) {
                        Ok(()) => return true,
                        Err(SendTimeoutError::Disconnected(_)) => return false,
                        Err(SendTimeoutError::Timeout(back))
                            if !self.stop.load(Ordering::Relaxed) =>
                        {
                            m = back;
                        }
                        Err(SendTimeoutError::Timeout(_)) => return false,
                    }
                }
            }
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
            } else if self.in_flight.is_none()
                && !self.lost
                && (self.restart || !self.plan.is_empty())
            {
                self.request_next();
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
                    // everything again (a request now would meet EBUSY).
                    self.restart = true;
                    continue;
                }
                let ended = match m {
                    KernelMsg::DumpDone { seq } => Some((seq, 0)),
                    KernelMsg::Error { seq, errno } => Some((seq, errno)),
                    _ => None,
                };
                if !self.queue(m) {
                    return;
                }
                if let Some((seq, errno)) = ended {
                    if self.in_flight.is_some_and(|f| f.seq == seq) {
                        self.dump_ended(errno);
                    }
                }
            }
            (self.bell)();
        }
    }
}

/// `SO_RCVBUFFORCE`: a receive buffer of `bytes`, beyond `net.core.rmem_max` (needs
/// CAP_NET_ADMIN).
fn force_rcvbuf(sock: &Socket, bytes: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is the live socket `sock` owns, borrowed for the call; `v` is a c_int
    // that outlives it, passed with its exact size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::addr_of!(v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

/// A link's `(ifindex, name)`.
pub type LinkName = (u32, String);

/// The namespace's IPv4 addresses and its links' names (`ifindex -> name`), read once with
/// two dumps on a socket of their own (mirror mode's start: the configuration takes the
/// ports' addresses from the kernel).
///
/// # Errors
/// The socket failed, the kernel refused a dump, or it did not finish within 5 s.
pub fn kernel_addresses() -> io::Result<(Vec<kernel::AddrMsg>, Vec<LinkName>)> {
    let sock = Socket::new(NETLINK_ROUTE)?;
    let mut addrs = Vec::new();
    let mut links = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut msgs = Vec::new();
    for (seq, req) in [
        (1, kernel::link_dump_request(1)),
        (2, kernel::addr_dump_request(2)),
    ] {
        sock.send(&req, 0)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        'dump: loop {
            if std::time::Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "netlink dump did not finish",
                ));
            }
            if !readable(sock.as_raw_fd(), POLL) {
                continue;
            }
            let n = match sock.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            msgs.clear();
            kernel::decode(&buf[..n], &mut msgs);
            for m in msgs.drain(..) {
                match m {
                    KernelMsg::Link(l) => links.push((l.ifindex, l.name)),
                    KernelMsg::Addr(a) => addrs.push(a),
                    KernelMsg::DumpDone { seq: s } if s == seq => break 'dump,
                    KernelMsg::Error { errno, seq: s } if s == seq => {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    KernelMsg::Resync => {
                        return Err(io::Error::new(
                            io::ErrorKind::Interrupted,
                            "the addresses changed while being read",
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok((addrs, links))
}

/// Requests to the kernel from the control thread (mirror mode: neighbour resolution), on
/// a socket of their own. Never blocks: a request the socket cannot take now is dropped
/// (and counted by the caller; xgw's retransmission timer asks again).
#[derive(Debug)]
pub struct NetlinkRequests {
    sock: Socket,
    seq: u32,
    /// Errors the kernel answered with (drained after each batch).
    pub refused: u64,
}

impl NetlinkRequests {
    /// Open the socket.
    ///
    /// # Errors
    /// It could not be opened.
    pub fn open() -> io::Result<NetlinkRequests> {
        let sock = Socket::new(NETLINK_ROUTE)?;
        sock.set_non_blocking(true)?;
        Ok(NetlinkRequests {
            sock,
            seq: 0,
            refused: 0,
        })
    }

    /// Ask the kernel to resolve `ip` on `ifindex` (RTM_NEWNEIGH, NTF_USE); false if the
    /// request could not be sent.
    pub fn solicit(&mut self, ifindex: u32, ip: std::net::Ipv4Addr) -> bool {
        self.seq = self.seq.wrapping_add(1);
        let req = kernel::neigh_solicit_request(self.seq, ifindex, ip);
        self.sock.send(&req, libc::MSG_DONTWAIT).is_ok()
    }

    /// Read (and count) what the kernel answered: errors only, as no ack is asked for.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        let mut msgs = Vec::new();
        while let Ok(n) = self.sock.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
            if n == 0 {
                break;
            }
            msgs.clear();
            kernel::decode(&buf[..n], &mut msgs);
            for m in &msgs {
                if let KernelMsg::Error { errno, .. } = m {
                    self.refused += 1;
                    if self.refused == 1 {
                        warn!(errno, "netlink: the kernel refused a neighbour resolution (further refusals only counted)");
                    }
                }
            }
        }
    }
}
