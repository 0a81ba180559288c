//! The control thread's end of the NAT event log: once per timer tick the policy's buffered
//! events go to the writer thread as one batch, without waiting. The writer (`io::natlog`)
//! gives back what it has finished, so at most `buffer` events are ever in flight; a batch
//! that would pass that (a writer stuck on a slow disk or a full socket) is dropped and
//! counted (`nat.log_dropped`), and the NAT never notices.

use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc,
};

use crossbeam::channel::{Sender, TrySendError};

use crate::nat::log::LogEvent;

/// What the writer did, read by `show errors` and the metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Events written (a line or a datagram each).
    pub written: AtomicU64,
    /// Events the target refused (write or send failed).
    pub failed: AtomicU64,
    /// Events handed over and not finished yet.
    pub in_flight: AtomicUsize,
}

/// The hand-off to the writer.
#[derive(Debug, Clone)]
pub struct NatLogLink {
    /// Batches to the writer.
    pub tx: Sender<Vec<LogEvent>>,
    /// Shared with the writer.
    pub stats: Arc<LogStats>,
    /// Events in flight at most (`[nat.log] buffer`), and the policy's buffer between ticks.
    pub buffer: usize,
    /// Session events too.
    pub destinations: bool,
}

impl NatLogLink {
    /// Hand `batch` over. Returns how many events were dropped (all of them or none).
    pub fn offer(&self, batch: Vec<LogEvent>) -> usize {
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        let before = self.stats.in_flight.fetch_add(n, Ordering::AcqRel);
        if before + n > self.buffer {
            self.stats.in_flight.fetch_sub(n, Ordering::AcqRel);
            return n;
        }
        match self.tx.try_send(batch) {
            Ok(()) => 0,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.in_flight.fetch_sub(n, Ordering::AcqRel);
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Instant};

    use super::*;
    use crate::nat::log::LogKind;

    fn batch(n: usize) -> Vec<LogEvent> {
        vec![
            LogEvent {
                kind: LogKind::MappingAdd,
                at: Instant::now(),
                proto: 17,
                inside: (Ipv4Addr::new(198, 18, 0, 2), 1),
                external: (Ipv4Addr::new(198, 19, 0, 1), 1),
                remote: None,
            };
            n
        ]
    }

    /// A writer that never finishes: batches up to the buffer are taken, the rest dropped
    /// whole and counted, nothing blocks; a gone writer drops everything.
    #[test]
    fn bounded_by_events_in_flight_never_blocks() {
        let (tx, rx) = crossbeam::channel::bounded(1024);
        let link = NatLogLink {
            tx,
            stats: Arc::default(),
            buffer: 100,
            destinations: false,
        };
        assert_eq!(link.offer(batch(0)), 0);
        assert_eq!(link.offer(batch(60)), 0);
        assert_eq!(link.offer(batch(60)), 60, "would pass the buffer");
        assert_eq!(link.offer(batch(40)), 0);
        let dropped: usize = (0..10_000).map(|_| link.offer(batch(1))).sum();
        assert_eq!(dropped, 10_000);
        assert_eq!(link.stats.in_flight.load(Ordering::Relaxed), 100);
        // The writer finishes one batch: room again.
        let b = rx.recv().unwrap();
        link.stats.in_flight.fetch_sub(b.len(), Ordering::AcqRel);
        assert_eq!(link.offer(batch(60)), 0);
        drop(rx);
        assert_eq!(link.offer(batch(1)), 1, "writer gone");
    }
}
