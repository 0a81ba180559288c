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

use crossbeam::channel::{Receiver, Sender};

use crate::{
    control::publish::SnapshotCell,
    dataplane::{Event, Pipeline, PortCounter, SharedCounters, Snapshot},
    io::{waker::Waker, PacketIo, BATCH},
};

/// Longest sleep while idle. Traffic wakes a sleeping worker through its sockets and the
/// control plane through its [`Waker`], so this only bounds housekeeping (ring refills, the
/// transmit-path re-check) and how long a stop request waits; each wakeup costs CPU.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// What the control thread asks of a worker besides forwarding.
#[derive(Debug)]
pub enum WorkerCommand {
    /// Move port `port` to the re-created device `ifname` ([`PacketIo::reattach`]); the
    /// result (the new socket's descriptor, if any) goes to `reply`.
    Reattach {
        /// The port.
        port: usize,
        /// Its device's name.
        ifname: String,
        /// Where the result goes.
        reply: Sender<std::io::Result<Option<i32>>>,
    },
}

/// One worker: its I/O, pipeline, snapshot and counters.
#[derive(Debug)]
pub struct Worker<I: PacketIo> {
    /// The worker's packet I/O.
    pub io: I,
    pipeline: Pipeline,
    cell: Arc<SnapshotCell>,
    snap: Arc<Snapshot>,
    inject: Receiver<(u16, Vec<u8>)>,
    commands: Option<Receiver<WorkerCommand>>,
    waker: Arc<Waker>,
    counters: Arc<SharedCounters>,
    /// How long to keep polling after the last frame before sleeping.
    idle_poll: Duration,
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
        let idle_poll = snap.idle_poll;
        Worker {
            io,
            pipeline,
            cell,
            snap,
            inject,
            commands: None,
            waker,
            counters,
            idle_poll,
            epoch,
        }
    }

    /// Take commands from `rx` (checked once per loop; wake the worker after sending).
    pub fn set_commands(&mut self, rx: Receiver<WorkerCommand>) {
        self.commands = Some(rx);
    }

    fn command(&mut self, c: WorkerCommand) {
        match c {
            WorkerCommand::Reattach {
                port,
                ifname,
                reply,
            } => {
                let r = if port < self.io.port_count() {
                    self.io.reattach(port, &ifname)
                } else {
                    Err(std::io::Error::other(format!("no port {port}")))
                };
                // The control thread may have given up waiting: nothing to do then.
                let _ = reply.send(r);
            }
        }
    }

    /// The exception queues this worker punts into.
    pub fn punt_queues(&self) -> &Arc<crate::dataplane::punt::PuntQueues> {
        self.pipeline.punt_queues()
    }

    /// One loop iteration at time `now`; returns the number of frames received and injected.
    pub fn poll_once(&mut self, now: Instant) -> usize {
        self.pipeline.set_clock(now, self.epoch);
        if self.cell.refresh(&mut self.snap) {
            self.pipeline.counters.event(Event::SnapshotSwaps, 1);
            self.idle_poll = self.snap.idle_poll;
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
                let len = frame.len() as u64;
                self.pipeline
                    .counters
                    .port(port, PortCounter::TxPackets, 1, len);
            } else {
                self.pipeline.counters.event(Event::InjectFailed, 1);
            }
        }
        while let Some(c) = self.commands.as_ref().and_then(|rx| rx.try_recv().ok()) {
            work += 1;
            self.command(c);
        }
        self.io.flush();
        let c = &mut self.pipeline.counters;
        c.event(Event::Loops, 1);
        c.event(Event::BusyLoops, u64::from(work > 0));
        self.counters.publish(c);
        work
    }

    /// Run until `stop` is set. Adaptive polling: the worker polls while frames keep coming
    /// and for `idle_poll` after the last one, then sleeps in the I/O's `wait` until traffic
    /// or the control plane wakes it (so an idle router uses no CPU).
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut last_work = Instant::now();
        // The previous iteration: when it began and whether it did work (its time is
        // counted as busy or idle when the next one begins, published with that one).
        let (mut began, mut busy) = (last_work, false);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let spent = u64::try_from(now.saturating_duration_since(began).as_nanos());
            let kind = if busy { Event::BusyNs } else { Event::IdleNs };
            self.pipeline.counters.event(kind, spent.unwrap_or(0));
            began = now;
            busy = self.poll_once(now) > 0;
            if busy {
                last_work = now;
            } else if now.saturating_duration_since(last_work) >= self.idle_poll {
                // Clear after waking, before the next poll_once drains the inject
                // queue: a frame queued after the drain re-signals, so none waits.
                self.io.wait(IDLE_WAIT, self.waker.fd());
                self.waker.clear();
            } else {
                // Polling with nothing to do: let another thread that shares this core (the
                // control plane, when xgw is pinned to one core) run now rather than at the
                // end of our time slice; it may be handling what we just punted (a NAT
                // session, an ARP reply). Returns at once when nothing else is runnable.
                std::thread::yield_now();
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
