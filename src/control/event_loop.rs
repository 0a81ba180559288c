//! The one control loop (DESIGN R19): `step(now)` is everything the control thread does in
//! one round, and both the runtime thread (`runtime::run`) and the in-memory testbed
//! (`runtime::testbed`) drive this same function; neither has a copy of it.
//!
//! One step:
//! 1. ARP first: every queued ARP frame of every worker (bounded by the queues' depth), then
//!    a new snapshot if a neighbour was resolved, so that the workers forward to it before
//!    the control thread spends time on anything else.
//! 2. The other classes in [`PuntClass`] order, each up to its budget per step, round-robin
//!    over the workers, so no class (and no worker) can take the whole step.
//! 3. Timers (ARP retransmission, neighbour and session ageing) every [`TICK`].
//! 4. A new snapshot if routes or neighbours changed.
//! 5. The frames the control plane produced, spread over the workers' inject queues.
//!
//! Handled punt buffers go back to their worker's pool (`PuntQueues::recycle`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam::channel::Sender;

use super::{publish::SnapshotCell, ControlPlane};
use crate::dataplane::punt::{PuntClass, PuntQueues, CLASSES};

/// Control-plane timer period (ARP retransmission and ageing resolution).
pub const TICK: Duration = Duration::from_millis(50);

/// Punts handled per class per step (ARP: all of them). A step stays well under a
/// millisecond, so ARP and timers are never more than that behind.
const BUDGET: [usize; CLASSES] = [usize::MAX, 256, 512, 128, 128, 64, 128, 64];

/// The worker that sends `frame`: by a hash of its IPv4 (source, destination, protocol),
/// which every fragment of a datagram and every packet of a flow share; other frames (ARP)
/// by their destination MAC.
fn flow_worker(frame: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let key = match frame.get(12..14) {
        Some([0x08, 0x00]) if frame.len() >= 34 => {
            let mut k = [0u8; 9];
            k[..8].copy_from_slice(&frame[26..34]);
            k[8] = frame[23];
            k
        }
        _ => {
            let mut k = [0u8; 9];
            k[..6].copy_from_slice(frame.get(..6).unwrap_or(&[0; 6]));
            k
        }
    };
    // FNV-1a: cheap, and the spread only has to be even, not secret.
    let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % workers as u64) as usize
}

/// The control loop's end of one worker: its punt queues, its inject queue and how to wake
/// it after queueing frames.
pub struct WorkerLink {
    /// The worker's exception queues.
    pub punts: Arc<PuntQueues>,
    /// Frames for the worker to transmit, as `(port, frame)`.
    pub inject: Sender<(u16, Vec<u8>)>,
    /// Wakes the worker if it sleeps (the runtime's eventfd; nothing in the testbed).
    pub wake: Box<dyn Fn() + Send>,
}

impl std::fmt::Debug for WorkerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLink")
            .field("punts", &self.punts)
            .finish_non_exhaustive()
    }
}

/// The control thread's state: the control plane and its links to the workers.
#[derive(Debug)]
pub struct ControlLoop {
    /// The slow path's state machine.
    pub plane: ControlPlane,
    links: Vec<WorkerLink>,
    cell: Arc<SnapshotCell>,
    next_tick: Option<Instant>,
    /// Control-plane frames dropped because a worker's inject queue was full.
    pub inject_dropped: u64,
    /// Punts handled, by class.
    pub handled: [u64; CLASSES],
}

impl ControlLoop {
    /// A loop over `plane`, publishing into `cell`, serving `links`.
    pub fn new(plane: ControlPlane, cell: Arc<SnapshotCell>, links: Vec<WorkerLink>) -> Self {
        ControlLoop {
            plane,
            links,
            cell,
            next_tick: None,
            inject_dropped: 0,
            handled: [0; CLASSES],
        }
    }

    /// One round at time `now` (see the module docs). Returns how much it did: punts
    /// handled plus frames queued; 0 means idle.
    pub fn step(&mut self, now: Instant) -> usize {
        let mut work = self.drain(now, PuntClass::Arp, BUDGET[0]);
        if work > 0 {
            self.publish();
        }
        for class in &PuntClass::ALL[1..] {
            work += self.drain(now, *class, BUDGET[*class as usize]);
        }
        if self.next_tick.is_none_or(|t| now >= t) {
            self.plane.tick(now);
            self.next_tick = Some(now + TICK);
        }
        // Mirror mode: the kernel's routes, once a burst of changes has settled.
        work += usize::from(self.plane.publish_kernel_routes(now));
        self.publish();
        work + self.flush_output()
    }

    /// How long the thread may sleep before the next step is due (no later than the next
    /// timer tick); punts and signals wake it earlier.
    pub fn idle_timeout(&self, now: Instant) -> Duration {
        let t = self
            .next_tick
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
            .min(TICK);
        self.plane.kernel_routes_due_in(now).map_or(t, |d| t.min(d))
    }

    /// Whether any worker has punts waiting.
    pub fn pending(&self) -> bool {
        self.links.iter().any(|l| !l.punts.is_empty())
    }

    fn publish(&mut self) {
        if self.plane.needs_publish() {
            self.cell.publish(self.plane.snapshot());
        }
    }

    /// Up to `budget` punts of `class`, one worker at a time in turn.
    fn drain(&mut self, now: Instant, class: PuntClass, budget: usize) -> usize {
        let mut done = 0;
        while done < budget {
            let mut any = false;
            for link in &self.links {
                if done >= budget {
                    break;
                }
                let Some(p) = link.punts.pop(class) else {
                    continue;
                };
                any = true;
                done += 1;
                self.plane.handle(now, &p);
                link.punts.recycle(p.frame);
            }
            if !any {
                break;
            }
        }
        self.handled[class as usize] += done as u64;
        done
    }

    /// Spread the control plane's frames over the workers (any worker can send on any
    /// port) by flow, so that one flow's frames (the fragments of one datagram, consecutive
    /// slow-path packets) leave in order from one worker (RFC 4787 REQ-13a), and wake those
    /// that got some.
    fn flush_output(&mut self) -> usize {
        let out = self.plane.take_output();
        if out.is_empty() || self.links.is_empty() {
            return 0;
        }
        let n = out.len();
        let mut woken = vec![false; self.links.len()];
        for (port, frame) in out {
            let w = flow_worker(&frame, self.links.len());
            if self.links[w].inject.try_send((port, frame)).is_err() {
                self.inject_dropped += 1;
            }
            woken[w] = true;
        }
        for (link, w) in self.links.iter().zip(woken) {
            if w {
                (link.wake)();
            }
        }
        n
    }

    /// Punts handled per class, as counter lines (zeros left out).
    pub fn handled_lines(&self) -> Vec<(&'static str, u64, &'static str)> {
        PuntClass::ALL
            .iter()
            .zip(self.handled)
            .filter(|(_, n)| *n != 0)
            .map(|(c, n)| {
                (
                    HANDLED[*c as usize],
                    n,
                    "punts handled by the control plane",
                )
            })
            .collect()
    }
}

/// `control.handled.<class>`, in [`PuntClass`] order.
const HANDLED: [&str; CLASSES] = [
    "control.handled.arp",
    "control.handled.resolve",
    "control.handled.nat",
    "control.handled.icmp_error",
    "control.handled.fragment",
    "control.handled.pmtu",
    "control.handled.transit",
    "control.handled.local",
];

#[cfg(test)]
mod tests {
    use super::flow_worker;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, id: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[18..20].copy_from_slice(&id.to_be_bytes());
        f[20..22].copy_from_slice(&frag.to_be_bytes());
        f[23] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f
    }

    /// Fragments of a datagram and packets of one flow go to one worker; many flows spread.
    #[test]
    fn one_flow_one_worker_and_flows_spread() {
        let first = flow_worker(&ipv4([198, 18, 0, 2], [203, 0, 113, 7], 17, 0x2000, 9), 4);
        for off in 1..100u16 {
            let f = ipv4([198, 18, 0, 2], [203, 0, 113, 7], 17, 0x2000 | off, 9);
            assert_eq!(flow_worker(&f, 4), first);
        }
        let mut seen = [0usize; 4];
        for h in 0..=255u8 {
            seen[flow_worker(&ipv4([198, 18, 0, h], [203, 0, 113, 7], 6, 0, 1), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 32), "{seen:?}");
        assert_eq!(
            flow_worker(&[0u8; 3], 4),
            flow_worker(&[0u8; 3], 4),
            "short frames"
        );
        assert_eq!(flow_worker(&ipv4([1; 4], [2; 4], 6, 0, 1), 1), 0);
    }

    #[test]
    fn handled_names_follow_the_classes() {
        for c in crate::dataplane::punt::PuntClass::ALL {
            assert_eq!(
                super::HANDLED[c as usize],
                format!("control.handled.{}", c.name())
            );
        }
    }
}
