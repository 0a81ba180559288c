//! Packet trace (VPP's `trace add`): the next N packets a worker receives (on one port, or
//! any) are recorded as they cross the stages — the frame as received, which stage decided
//! its fate and how, and the frame as it leaves (the rewrite). Free when off: a worker reads
//! one atomic per burst, and nothing else changes; when on, the traced packets of a burst are
//! copied (their first [`SNAP`] bytes, twice) and queued in a bounded lock-free queue for
//! the operator (`xgw show trace`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;

use super::Next;

/// Bytes of each frame kept (Ethernet, IPv4 with options, the transport header).
pub const SNAP: usize = 96;
/// Packets one `trace add` may ask for, and records held at most.
pub const MAX_TRACE: u32 = 1024;
/// "Any port".
const ANY: u32 = u32::MAX;

/// The stages, in pipeline order (the names the trace shows).
pub const STAGES: [&str; 6] = [
    "ethernet-input",
    "ip4-input",
    "ip4-lookup",
    "nat44",
    "ip4-rewrite",
    "punt",
];

/// One traced packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    /// Order of tracing (over all workers).
    pub seq: u64,
    /// The worker that processed it.
    pub worker: u16,
    /// Nanoseconds since the control plane's epoch.
    pub at_ns: u64,
    /// Port it arrived on.
    pub rx_port: u16,
    /// Its length.
    pub len: u32,
    /// Its first bytes as received.
    pub input: Vec<u8>,
    /// The stage (index into [`STAGES`]) that decided its fate, if one did.
    pub decided_by: Option<u8>,
    /// Its fate.
    pub next: Next,
    /// Its first bytes as it left (`Next::Tx`; the rewrite), else empty.
    pub output: Vec<u8>,
}

/// The shared trace state: what is still to be traced, and the records.
#[derive(Debug)]
pub struct Trace {
    budget: AtomicU32,
    port: AtomicU32,
    seq: AtomicU64,
    records: ArrayQueue<TraceRecord>,
    /// Records lost because the queue was full (the operator did not read them).
    lost: AtomicU64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            budget: AtomicU32::new(0),
            port: AtomicU32::new(ANY),
            seq: AtomicU64::new(0),
            records: ArrayQueue::new(MAX_TRACE as usize),
            lost: AtomicU64::new(0),
        }
    }
}

impl Trace {
    /// Trace the next `n` packets (at most [`MAX_TRACE`]) received on `port` (or any).
    /// Replaces what was armed; records already taken stay.
    pub fn arm(&self, n: u32, port: Option<u16>) {
        self.port
            .store(port.map_or(ANY, u32::from), Ordering::Relaxed);
        self.budget.store(n.min(MAX_TRACE), Ordering::Release);
    }

    /// Stop tracing.
    pub fn disarm(&self) {
        self.budget.store(0, Ordering::Release);
    }

    /// Packets still to be traced.
    pub fn pending(&self) -> u32 {
        self.budget.load(Ordering::Relaxed)
    }

    /// Records lost to a full queue.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The records made since the last call, oldest first.
    pub fn take(&self) -> Vec<TraceRecord> {
        let mut v = Vec::with_capacity(self.records.len());
        while let Some(r) = self.records.pop() {
            v.push(r);
        }
        v
    }

    /// How many of a burst of `n` on `rx_port` to trace (claimed from the budget): the
    /// worker's one check per burst. 0 when off.
    #[inline]
    pub(crate) fn claim(&self, rx_port: u16, n: usize) -> usize {
        if self.budget.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let p = self.port.load(Ordering::Relaxed);
        if p != ANY && p != u32::from(rx_port) {
            return 0;
        }
        let want = u32::try_from(n).unwrap_or(u32::MAX);
        match self
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |b| {
                (b > 0).then(|| b - b.min(want))
            }) {
            Ok(b) => b.min(want) as usize,
            Err(_) => 0,
        }
    }

    pub(crate) fn push(&self, mut r: TraceRecord) {
        r.seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if self.records.push(r).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A worker's traced packets of the burst in flight: which stage decided each.
#[derive(Debug)]
pub(crate) struct BurstTrace {
    pub(crate) count: usize,
    pub(crate) lens: Vec<u32>,
    pub(crate) input: Vec<Vec<u8>>,
    pub(crate) decided_by: [Option<u8>; super::BATCH],
}

impl BurstTrace {
    pub(crate) fn new(frames: &[&mut [u8]], count: usize) -> Self {
        BurstTrace {
            count,
            lens: frames[..count]
                .iter()
                .map(|f| u32::try_from(f.len()).unwrap_or(u32::MAX))
                .collect(),
            input: frames[..count]
                .iter()
                .map(|f| f[..f.len().min(SNAP)].to_vec())
                .collect(),
            decided_by: [None; super::BATCH],
        }
    }

    /// After stage `stage` ran: note the packets it finished.
    pub(crate) fn after(&mut self, stage: u8, next: &[Next]) {
        for (d, n) in self.decided_by[..self.count].iter_mut().zip(next) {
            if d.is_none() && *n != Next::Continue {
                *d = Some(stage);
            }
        }
    }
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn addr(b: &[u8]) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A one-line reading of a frame's first bytes (`snap`, of a frame `len` long): Ethernet,
/// then ARP, or IPv4 with TCP ports and flags, UDP ports, ICMP type/code (and echo
/// identifier and sequence). Whatever is cut off or malformed is said, never guessed.
pub fn describe(snap: &[u8], len: u32) -> String {
    let Some(eth) = snap.get(..14) else {
        return format!("{len} bytes: runt frame");
    };
    let mut s = format!("{len} bytes {} > {}", mac(&eth[6..12]), mac(&eth[..6]));
    let et = u16::from_be_bytes([eth[12], eth[13]]);
    let p = &snap[14..];
    match et {
        0x0806 => match p.get(..28) {
            Some(a) => {
                let op = u16::from_be_bytes([a[6], a[7]]);
                let what = match op {
                    1 => "request",
                    2 => "reply",
                    _ => "op?",
                };
                s += &format!(" ARP {what} {} > {}", addr(&a[14..18]), addr(&a[24..28]));
            }
            None => s += " ARP (truncated)",
        },
        0x0800 => {
            let Some(h) = p.get(..20) else {
                return s + " IPv4 (truncated)";
            };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let ver = h[0] >> 4;
            let frag = u16::from_be_bytes([h[6], h[7]]);
            s += &format!(
                " IPv4 {} > {} ttl {} id {} len {}",
                addr(&h[12..16]),
                addr(&h[16..20]),
                h[8],
                u16::from_be_bytes([h[4], h[5]]),
                u16::from_be_bytes([h[2], h[3]])
            );
            if ver != 4 || ihl < 20 {
                return s + " (bad version/header length)";
            }
            if frag & 0x4000 != 0 {
                s += " DF";
            }
            if frag & 0x3fff != 0 {
                return s + &format!(
                    " fragment offset {}{}",
                    (frag & 0x1fff) * 8,
                    if frag & 0x2000 != 0 { " MF" } else { "" }
                );
            }
            let l4 = p.get(ihl..).unwrap_or(&[]);
            match h[9] {
                6 => match l4.get(..14) {
                    Some(t) => {
                        let f = t[13];
                        let names: String = [
                            (0x02, 'S'),
                            (0x10, '.'),
                            (0x01, 'F'),
                            (0x04, 'R'),
                            (0x08, 'P'),
                        ]
                        .iter()
                        .filter(|(b, _)| f & b != 0)
                        .map(|(_, c)| *c)
                        .collect();
                        s += &format!(
                            " TCP {} > {} [{names}]",
                            u16::from_be_bytes([t[0], t[1]]),
                            u16::from_be_bytes([t[2], t[3]])
                        );
                    }
                    None => s += " TCP (truncated)",
                },
                17 => match l4.get(..8) {
                    Some(u) => {
                        s += &format!(
                            " UDP {} > {}",
                            u16::from_be_bytes([u[0], u[1]]),
                            u16::from_be_bytes([u[2], u[3]])
                        );
                    }
                    None => s += " UDP (truncated)",
                },
                1 => match l4.get(..8) {
                    Some(i) => {
                        let (t, c) = (i[0], i[1]);
                        s += &match t {
                            0 | 8 => format!(
                                " ICMP echo {} id {} seq {}",
                                if t == 8 { "request" } else { "reply" },
                                u16::from_be_bytes([i[4], i[5]]),
                                u16::from_be_bytes([i[6], i[7]])
                            ),
                            _ => format!(" ICMP type {t} code {c}"),
                        };
                    }
                    None => s += " ICMP (truncated)",
                },
                p => s += &format!(" proto {p}"),
            }
        }
        other => s += &format!(" ethertype 0x{other:04x}"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden readings of an ICMP echo, a TCP SYN, an ARP request, and of truncated,
    /// malformed and foreign frames (said as such, no panic).
    #[test]
    fn describe_frames() {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[8, 0]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[18..20].copy_from_slice(&7u16.to_be_bytes());
        f[20] = 0x40;
        f[22] = 64;
        f[23] = 1;
        f[26..30].copy_from_slice(&[198, 18, 0, 2]);
        f[30..34].copy_from_slice(&[198, 19, 0, 2]);
        f[34] = 8;
        f[38..40].copy_from_slice(&77u16.to_be_bytes());
        f[40..42].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(
            describe(&f, 42),
            "42 bytes 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 198.18.0.2 > 198.19.0.2 ttl 64 id 7 len 28 DF ICMP echo request id 77 seq 3"
        );
        let mut t = f.clone();
        t[23] = 6;
        t.resize(14 + 20 + 20, 0);
        t[34..36].copy_from_slice(&40000u16.to_be_bytes());
        t[36..38].copy_from_slice(&80u16.to_be_bytes());
        t[47] = 0x02;
        assert!(
            describe(&t, 54).ends_with(" TCP 40000 > 80 [S]"),
            "{}",
            describe(&t, 54)
        );
        let mut a = vec![0u8; 42];
        a[12..14].copy_from_slice(&[8, 6]);
        a[21] = 1;
        a[28..32].copy_from_slice(&[198, 18, 0, 2]);
        a[38..42].copy_from_slice(&[198, 18, 0, 1]);
        assert!(describe(&a, 42).ends_with(" ARP request 198.18.0.2 > 198.18.0.1"));
        assert_eq!(describe(&[1, 2, 3], 3), "3 bytes: runt frame");
        assert!(describe(&f[..20], 42).ends_with("IPv4 (truncated)"));
        assert!(describe(&f[..36], 42).ends_with("ICMP (truncated)"));
        let mut bad = f.clone();
        bad[14] = 0x41;
        assert!(describe(&bad, 42).ends_with("(bad version/header length)"));
        let mut fr = f.clone();
        fr[20..22].copy_from_slice(&0x2001u16.to_be_bytes());
        assert!(describe(&fr, 42).ends_with(" fragment offset 8 MF"));
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(describe(&v6, 42).ends_with(" ethertype 0x86dd"));
        // Any bytes at all: no panic.
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = describe(&junk, n as u32);
            let mut ip = f.clone();
            ip.truncate(14 + n.min(28));
            let _ = describe(&ip, 42);
        }
    }

    fn rec() -> TraceRecord {
        TraceRecord {
            seq: 0,
            worker: 0,
            at_ns: 0,
            rx_port: 0,
            len: 60,
            input: vec![0; 60],
            decided_by: None,
            next: Next::Continue,
            output: Vec::new(),
        }
    }

    /// Off: nothing claimed. Armed for 5: bursts take what is left, then nothing; a port
    /// filter skips other ports' bursts without spending the budget.
    #[test]
    fn claims_exactly_the_budget() {
        let t = Trace::default();
        assert_eq!(t.claim(0, 64), 0);
        t.arm(5, None);
        assert_eq!(t.claim(0, 3), 3);
        assert_eq!(t.claim(1, 64), 2);
        assert_eq!(t.claim(0, 64), 0);
        t.arm(4, Some(1));
        assert_eq!(t.claim(0, 64), 0, "other port");
        assert_eq!(t.pending(), 4);
        assert_eq!(t.claim(1, 64), 4);
        t.arm(u32::MAX, None);
        assert_eq!(t.pending(), MAX_TRACE, "capped");
        t.disarm();
        assert_eq!(t.claim(0, 64), 0);
    }

    /// Records beyond the queue are lost and counted, never grown; take empties it.
    #[test]
    fn records_are_bounded() {
        let t = Trace::default();
        for _ in 0..(MAX_TRACE + 10) {
            t.push(rec());
        }
        assert_eq!(t.lost(), 10);
        let v = t.take();
        assert_eq!(v.len(), MAX_TRACE as usize);
        assert!(v.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(t.take().is_empty());
    }

    /// Workers racing for the budget trace exactly N in all.
    #[test]
    fn concurrent_claims_sum_to_the_budget() {
        let t = std::sync::Arc::new(Trace::default());
        t.arm(1000, None);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..1000).map(|_| t.claim(0, 7)).sum::<usize>())
            })
            .collect();
        let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
