//! `punt`: the exception path as a budget, not a queue (DESIGN R17; VPP's punt policer).
//!
//! Every punt reason belongs to one [`PuntClass`]. Per worker and per class there is a
//! token-bucket policer and a bounded queue to the control loop; the control loop serves ARP
//! first, then the other classes in turn with a budget each (`control::event_loop`). So a
//! flood of one class (unmapped NAT traffic, TTL=1 probes, fragments, pings to the router)
//! costs one counter increment per packet once its policer or queue is exhausted, and it can
//! neither take the queue slots nor the control thread's time that ARP replies and the first
//! packets of new flows need.
//!
//! Frames are copied into buffers preallocated per worker ([`PuntQueues::new`]); the control
//! loop hands every buffer back ([`PuntQueues::recycle`]) after handling it. No heap
//! allocation happens per punt: when every buffer is out, the punt is dropped as
//! `punt.queue_full`. (A buffer grows once, and keeps its size, for a frame longer than the
//! largest port MTU it was sized for.)
//!
//! Uses: `meta.next[i] == Punt(_)`, `meta.tx_port`, `meta.nh_addr`.
//! Sets: nothing in the frame (it is recycled after the copy).
//! Next: unchanged; a policed punt becomes `Drop(PuntPoliced)`, one that finds its queue
//! (or the buffer pool) full `Drop(PuntQueueFull)` (counted per class, never blocks).

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::Thread,
    time::Duration,
};

use crossbeam::queue::ArrayQueue;

use super::{
    counters::ClassCounter, DropReason, LocalCounters, Meta, Next, Punt, PuntReason, Snapshot,
};

/// Exception classes, in the order the control loop serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PuntClass {
    /// ARP requests and replies: what keeps next hops resolved. Served first.
    Arp,
    /// Packets waiting for a next hop to be resolved (`punt.arp_miss`).
    Resolve,
    /// NAT exceptions: session creation (`nat_miss`) and TCP control packets.
    Nat,
    /// ICMP errors about NAT sessions, to translate (RFC 5508).
    IcmpError,
    /// Fragments through the NAT (virtual reassembly).
    Fragment,
    /// DF packets over the egress MTU (fragmentation needed): PMTUD's own class, served
    /// before and policed apart from `Transit`, so no TTL or no-route flood starves it.
    Pmtu,
    /// Transit exceptions: TTL expiry, no or unreachable route, fragmenting for a smaller MTU.
    Transit,
    /// Packets addressed to the router itself (ping, traceroute to the router).
    Local,
}

/// Number of exception classes.
pub const CLASSES: usize = 8;

impl PuntClass {
    /// Every class, in service order (= index order).
    pub const ALL: [PuntClass; CLASSES] = [
        PuntClass::Arp,
        PuntClass::Resolve,
        PuntClass::Nat,
        PuntClass::IcmpError,
        PuntClass::Fragment,
        PuntClass::Pmtu,
        PuntClass::Transit,
        PuntClass::Local,
    ];

    /// The class's name in the configuration (`[punt.<name>]`) and in counters.
    pub const fn name(self) -> &'static str {
        match self {
            PuntClass::Arp => "arp",
            PuntClass::Resolve => "resolve",
            PuntClass::Nat => "nat",
            PuntClass::IcmpError => "icmp_error",
            PuntClass::Fragment => "fragment",
            PuntClass::Pmtu => "pmtu",
            PuntClass::Transit => "transit",
            PuntClass::Local => "local",
        }
    }
}

impl PuntReason {
    /// The exception class this reason is queued and policed in.
    pub const fn class(self) -> PuntClass {
        match self {
            PuntReason::Arp => PuntClass::Arp,
            PuntReason::ArpMiss => PuntClass::Resolve,
            PuntReason::NatMiss | PuntReason::NatTooBig | PuntReason::NatTcpControl => {
                PuntClass::Nat
            }
            PuntReason::NatIcmpError => PuntClass::IcmpError,
            PuntReason::NatFragment => PuntClass::Fragment,
            PuntReason::NeedFrag => PuntClass::Pmtu,
            PuntReason::TtlExpired
            | PuntReason::NoRoute
            | PuntReason::Unreachable
            | PuntReason::Prohibit
            | PuntReason::Fragment => PuntClass::Transit,
            PuntReason::ToUs => PuntClass::Local,
        }
    }
}

/// Policer and queue of one class, per worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPolicy {
    /// Sustained punts per second.
    pub rate: u32,
    /// Punts accepted back to back above the rate.
    pub burst: u32,
    /// Depth of the class's queue to the control loop.
    pub queue: u32,
}

/// The exception path's settings for one worker (from `[punt]`, whose defaults are in
/// `config::punt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PuntPolicy {
    /// By [`PuntClass`] index.
    pub classes: [ClassPolicy; CLASSES],
    /// Bytes preallocated per punt buffer (the longest frame expected without growing).
    pub buffer_len: usize,
}

/// Wakes the control loop when a worker queued punts (`std::thread` park/unpark: free when
/// the control thread is awake, one futex wake when it sleeps).
#[derive(Debug)]
pub struct Doorbell {
    pending: AtomicBool,
    thread: Thread,
}

impl Doorbell {
    /// A doorbell that wakes `thread` (the control loop's).
    pub fn new(thread: Thread) -> Arc<Doorbell> {
        Arc::new(Doorbell {
            pending: AtomicBool::new(false),
            thread,
        })
    }

    /// Called by a worker after queueing punts: wakes the control thread unless a ring is
    /// already pending.
    pub fn ring(&self) {
        // Load first so a flood does not write the shared line on every batch.
        if !self.pending.load(Ordering::Relaxed) && !self.pending.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }

    /// Called by the control thread before it looks at the queues: later rings wake it.
    pub fn clear(&self) {
        // SeqCst: the clear must be ordered before the queue reads that follow, so a punt
        // queued after those reads finds `pending` false and unparks.
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Sleep up to `timeout` unless rung since [`Doorbell::clear`] (spurious wakeups are
    /// harmless: the loop just looks at the queues again).
    pub fn wait(&self, timeout: Duration) {
        if !self.pending.load(Ordering::SeqCst) {
            std::thread::park_timeout(timeout);
        }
    }
}

/// The queues from one worker to the control loop, and their buffers.
#[derive(Debug)]
pub struct PuntQueues {
    classes: [ArrayQueue<Punt>; CLASSES],
    free: ArrayQueue<Vec<u8>>,
    doorbell: Arc<Doorbell>,
}

impl PuntQueues {
    /// Queues sized by `policy`, with one preallocated buffer per queue slot.
    pub fn new(policy: &PuntPolicy, doorbell: Arc<Doorbell>) -> Arc<PuntQueues> {
        let classes = std::array::from_fn(|i| {
            ArrayQueue::new(usize::try_from(policy.classes[i].queue.max(1)).unwrap_or(1))
        });
        let total: usize = classes.iter().map(ArrayQueue::capacity).sum();
        let free = ArrayQueue::new(total);
        for _ in 0..total {
            let _ = free.push(Vec::with_capacity(policy.buffer_len));
        }
        Arc::new(PuntQueues {
            classes,
            free,
            doorbell,
        })
    }

    /// The next punt of `class`, if any (control loop).
    pub fn pop(&self, class: PuntClass) -> Option<Punt> {
        self.classes[class as usize].pop()
    }

    /// Return a handled punt's buffer to the worker's pool (control loop).
    pub fn recycle(&self, frame: Vec<u8>) {
        let _ = self.free.push(frame);
    }

    /// Punts waiting in `class`.
    pub fn len(&self, class: PuntClass) -> usize {
        self.classes[class as usize].len()
    }

    /// Whether no punt of any class waits.
    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(ArrayQueue::is_empty)
    }

    /// Buffers currently in the pool (the rest are queued or being handled).
    pub fn free_buffers(&self) -> usize {
        self.free.len()
    }
}

/// A token bucket in the GCRA form: one timestamp, no division per packet.
#[derive(Debug, Clone, Copy)]
struct Policer {
    /// Theoretical arrival time of the next conforming punt (ns).
    tat: u64,
    /// Nanoseconds per token.
    interval: u64,
    /// How far `tat` may run ahead of now: `burst - 1` intervals (GCRA's tau).
    tolerance: u64,
}

impl Policer {
    fn new(p: &ClassPolicy) -> Policer {
        let interval = 1_000_000_000 / u64::from(p.rate.max(1));
        Policer {
            tat: 0,
            interval,
            tolerance: interval * u64::from(p.burst.max(1) - 1),
        }
    }

    #[inline]
    fn take(&mut self, now_ns: u64) -> bool {
        let tat = self.tat.max(now_ns);
        if tat - now_ns > self.tolerance {
            return false;
        }
        self.tat = tat + self.interval;
        true
    }
}

/// A worker's end of the exception path: policers and the queues.
#[derive(Debug)]
pub struct PuntTx {
    queues: Arc<PuntQueues>,
    policers: [Policer; CLASSES],
    failed: FailedThrottle,
}

impl PuntTx {
    /// The worker side of `queues`, policed by `policy`.
    pub fn new(queues: Arc<PuntQueues>, policy: &PuntPolicy) -> PuntTx {
        PuntTx {
            queues,
            policers: std::array::from_fn(|i| Policer::new(&policy.classes[i])),
            failed: FailedThrottle::new(),
        }
    }

    /// The queues (shared with the control loop).
    pub fn queues(&self) -> &Arc<PuntQueues> {
        &self.queues
    }
}

/// Slots of [`FailedThrottle`] (a power of two): 16 KiB per worker.
const FAILED_SLOTS: usize = 1024;

/// When each worker last punted a packet towards a Failed neighbour: a direct-mapped table
/// (address hash → last address and time), so memory is fixed and a lookup is O(1). Two
/// addresses sharing a slot evict each other, which only lets an extra punt through (the
/// class policer still bounds them); an address is never throttled by another's entry.
#[derive(Debug)]
struct FailedThrottle {
    slots: Box<[(u32, u64)]>,
}

impl FailedThrottle {
    fn new() -> FailedThrottle {
        FailedThrottle {
            slots: vec![(0, 0); FAILED_SLOTS].into_boxed_slice(),
        }
    }

    /// Whether a packet to `addr` may be punted now (at most once per `interval_ns`).
    fn admit(&mut self, addr: u32, now_ns: u64, interval_ns: u64) -> bool {
        // The low bits folded with the higher ones: within any aligned block of 1024
        // addresses (a scan of a subnet) every address has its own slot.
        let i = (addr ^ (addr >> 10) ^ (addr >> 20)) as usize & (FAILED_SLOTS - 1);
        let (a, t) = self.slots[i];
        // `t` is 0 in an unused slot: now_ns > 0 except in the first nanosecond of the epoch.
        if a == addr && t != 0 && now_ns.saturating_sub(t) < interval_ns {
            return false;
        }
        self.slots[i] = (addr, now_ns.max(1));
        true
    }
}

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    tx: &mut PuntTx,
    now_ns: u64,
    c: &mut LocalCounters,
) {
    let mut queued = false;
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        if let Next::Punt(reason) = meta.next[i] {
            if reason == PuntReason::ArpMiss
                && !snap.neigh_failed.is_empty()
                && snap.neigh_failed.contains(&meta.nh_addr[i])
                && !tx
                    .failed
                    .admit(meta.nh_addr[i], now_ns, snap.neigh_retrans_ns)
            {
                c.drop(DropReason::NeighFailed);
                meta.next[i] = Next::Drop(DropReason::NeighFailed);
                continue;
            }
            queued |= send(f, i, reason, meta, tx, now_ns, c);
        }
    }
    if queued {
        tx.queues.doorbell.ring();
    }
}

#[cold]
#[inline(never)]
fn send(
    f: &[u8],
    i: usize,
    reason: PuntReason,
    meta: &mut Meta,
    tx: &mut PuntTx,
    now_ns: u64,
    c: &mut LocalCounters,
) -> bool {
    let class = reason.class();
    if !tx.policers[class as usize].take(now_ns) {
        c.class(class, ClassCounter::Policed);
        c.drop(DropReason::PuntPoliced);
        meta.next[i] = Next::Drop(DropReason::PuntPoliced);
        return false;
    }
    let Some(mut frame) = tx.queues.free.pop() else {
        return queue_full(i, class, meta, c);
    };
    frame.clear();
    frame.extend_from_slice(f);
    let punt = Punt {
        reason,
        rx_port: meta.rx_port,
        tx_port: meta.tx_port[i],
        next_hop: Ipv4Addr::from(meta.nh_addr[i]),
        frame,
    };
    match tx.queues.classes[class as usize].push(punt) {
        Ok(()) => {
            c.class(class, ClassCounter::Accepted);
            true
        }
        Err(p) => {
            tx.queues.recycle(p.frame);
            queue_full(i, class, meta, c)
        }
    }
}

fn queue_full(i: usize, class: PuntClass, meta: &mut Meta, c: &mut LocalCounters) -> bool {
    c.class(class, ClassCounter::QueueFull);
    c.drop(DropReason::PuntQueueFull);
    meta.next[i] = Next::Drop(DropReason::PuntQueueFull);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::counters::ClassEvent;

    /// The counter of `class` for what happened to a punt.
    fn class_event(class: PuntClass, what: ClassCounter) -> ClassEvent {
        ClassEvent::ALL[class as usize * 3 + what as usize]
    }

    #[test]
    fn failed_throttle_one_punt_per_interval_per_address() {
        const S: u64 = 1_000_000_000;
        let mut t = FailedThrottle::new();
        let a = u32::from(Ipv4Addr::new(198, 19, 0, 77));
        assert!(t.admit(a, 5, S), "first packet punted");
        for k in 1..1000 {
            assert!(
                !t.admit(a, 5 + k * 1_000_000, S),
                "within the interval: dropped"
            );
        }
        assert!(t.admit(a, 5 + S, S), "next interval: one more");
        assert!(!t.admit(a, 6 + S, S));
        // Another address is not throttled by the first's entry, even in the same slot.
        let b = u32::from(Ipv4Addr::new(198, 19, 0, 78));
        assert!(t.admit(b, 7 + S, S));
        // A clock at 0 (the epoch itself) still counts as a punt made.
        let mut z = FailedThrottle::new();
        assert!(z.admit(a, 0, S));
        assert!(!z.admit(a, 1, S));
    }

    #[test]
    fn failed_throttle_under_a_scan_stays_bounded() {
        // A scan of 65536 failed addresses, each hit 4 times within one interval: memory is
        // the fixed table and each address is punted at least once. A scan wider than the
        // table evicts every entry before it comes round again, so here each packet may be
        // punted (at most 4 per address): beyond 1024 addresses the class policer, not this
        // table, is what bounds the punts.
        let mut t = FailedThrottle::new();
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        let mut admitted = 0u32;
        for round in 0..4u64 {
            for i in 0..65536u32 {
                admitted += u32::from(t.admit(base + i, 1 + round, 1_000_000_000));
            }
        }
        assert_eq!(t.slots.len(), FAILED_SLOTS);
        assert!(admitted >= 65536, "every address punted once: {admitted}");
        assert!(admitted <= 4 * 65536);
        // An aligned block of 1024 addresses fills distinct slots, so a rescan of it is
        // fully throttled.
        let mut t = FailedThrottle::new();
        for i in 0..1024u32 {
            assert!(t.admit(base + i, 1, 1_000_000_000));
        }
        let again = (0..1024u32)
            .filter(|&i| t.admit(base + i, 2, 1_000_000_000))
            .count();
        assert_eq!(again, 0, "{again} of 1024 re-punted");
    }

    #[test]
    fn every_reason_has_a_class_and_classes_are_in_order() {
        for (i, c) in PuntClass::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        for r in PuntReason::ALL {
            let c = r.class();
            assert!(PuntClass::ALL.contains(&c), "{r:?}");
        }
        assert_eq!(PuntReason::Arp.class(), PuntClass::Arp);
        assert_eq!(PuntReason::NatMiss.class(), PuntClass::Nat);
    }

    #[test]
    fn class_events_line_up_with_classes() {
        for c in PuntClass::ALL {
            for (w, suffix) in [
                (ClassCounter::Accepted, "accepted"),
                (ClassCounter::Policed, "policed"),
                (ClassCounter::QueueFull, "queue_full"),
            ] {
                let e = class_event(c, w);
                assert_eq!(e.name(), format!("punt.{}.{suffix}", c.name()));
            }
        }
    }

    #[test]
    fn policer_allows_burst_then_rate() {
        let mut p = Policer::new(&ClassPolicy {
            rate: 1000,
            burst: 10,
            queue: 1,
        });
        let t0 = 5_000_000_000;
        let ok = (0..100).filter(|_| p.take(t0)).count();
        assert_eq!(ok, 10, "a burst of 10 at one instant");
        // One token per millisecond afterwards.
        assert!(!p.take(t0 + 500_000));
        assert!(p.take(t0 + 1_000_000));
        assert!(!p.take(t0 + 1_000_000));
        // Idle for a second refills the bucket to its burst, not beyond.
        let t1 = t0 + 2_000_000_000;
        assert_eq!((0..100).filter(|_| p.take(t1)).count(), 10);
        // A flood over one virtual second passes rate + burst.
        let t2 = t1 + 5_000_000_000;
        let passed = (0..1_000_000u64).filter(|k| p.take(t2 + k * 1_000)).count();
        assert!((1000..=1011).contains(&passed), "{passed}");
    }

    #[test]
    fn doorbell_wait_returns_at_once_when_rung() {
        let d = Doorbell::new(std::thread::current());
        d.clear();
        d.ring();
        let t = std::time::Instant::now();
        d.wait(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn buffers_are_preallocated_and_bounded() {
        let c = ClassPolicy {
            rate: 10,
            burst: 1,
            queue: 3,
        };
        let policy = PuntPolicy {
            classes: [c; CLASSES],
            buffer_len: 64,
        };
        let q = PuntQueues::new(&policy, Doorbell::new(std::thread::current()));
        let total: u32 = policy.classes.iter().map(|c| c.queue).sum();
        assert_eq!(q.free_buffers(), total as usize);
        assert!(q.is_empty());
    }
}
