//! The worker loop (DESIGN 6.4, l3fwd's shape): pick up a new snapshot if one was published,
//! receive a burst per port, run the pipeline, transmit by verdict, send what the control
//! plane injected, then refill/complete rings and publish counters once.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crossbeam::channel::Receiver;

use crate::{
    control::publish::SnapshotCell,
    dataplane::{Event, Pipeline, SharedCounters, Snapshot},
    io::{waker::Waker, PacketIo, BATCH},
};

/// Empty loops before the worker starts sleeping in `poll` (adaptive polling).
const IDLE_SPINS: u32 = 256;
/// Longest sleep while idle. The control plane wakes a sleeping worker through its
/// [`Waker`] when it queues frames, so this only bounds housekeeping (ring refills).
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// One worker: its I/O, pipeline, snapshot and counters.
#[derive(Debug)]
pub struct Worker<I: PacketIo> {
    /// The worker's packet I/O.
    pub io: I,
    pipeline: Pipeline,
    cell: Arc<SnapshotCell>,
    snap: Arc<Snapshot>,
    inject: Receiver<(u16, Vec<u8>)>,
    waker: Arc<Waker>,
    counters: Arc<SharedCounters>,
    idle: u32,
    epoch: Instant,
}

impl<I: PacketIo> Worker<I> {
    /// A worker over `io`.
    pub fn new(
        io: I,
        pipeline: Pipeline,
        cell: Arc<SnapshotCell>,
        inject: Receiver<(u16, Vec<u8>)>,
        waker: Arc<Waker>,
        counters: Arc<SharedCounters>,
        epoch: Instant,
    ) -> Self {
        let snap = cell.load();
        Worker {
            io,
            pipeline,
            cell,
            snap,
            inject,
            waker,
            counters,
            idle: 0,
            epoch,
        }
    }

    /// One loop iteration at time `now`; returns the number of frames received and injected.
    pub fn poll_once(&mut self, now: Instant) -> usize {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        self.pipeline
            .set_now(u32::try_from(secs).unwrap_or(u32::MAX));
        if self.cell.refresh(&mut self.snap) {
            self.pipeline.counters.event(Event::SnapshotSwaps, 1);
        }
        let mut work = 0;
        for port in 0..self.io.port_count() {
            let (snap, pl) = (&self.snap, &mut self.pipeline);
            let rx_port = u16::try_from(port).expect("ports fit in u16");
            work += self.io.rx_burst(port, |frames, verdicts| {
                pl.process(snap, rx_port, frames, verdicts)
            });
        }
        for _ in 0..BATCH {
            let Ok((port, frame)) = self.inject.try_recv() else {
                break;
            };
            work += 1;
            if self.io.inject(usize::from(port), &frame) {
                self.pipeline.counters.event(Event::Injected, 1);
            } else {
                self.pipeline.counters.event(Event::InjectFailed, 1);
            }
        }
        self.io.flush();
        self.counters.publish(&mut self.pipeline.counters);
        work
    }

    /// Run until `stop` is set, sleeping in the I/O's `wait` after a run of idle loops.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if self.poll_once(Instant::now()) > 0 {
                self.idle = 0;
            } else {
                self.idle = self.idle.saturating_add(1);
                if self.idle > IDLE_SPINS {
                    // Clear after waking, before the next poll_once drains the inject
                    // queue: a frame queued after the drain re-signals, so none waits.
                    self.io.wait(IDLE_WAIT, self.waker.fd());
                    self.waker.clear();
                }
            }
        }
        let stats: Vec<String> = self
            .io
            .stats()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !stats.is_empty() {
            tracing::info!(
                worker = std::thread::current().name().unwrap_or("?"),
                "{}",
                stats.join(" ")
            );
        }
    }
}
