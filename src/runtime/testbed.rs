//! A whole router in one thread over [`MemIo`]: one worker and the control plane, stepped
//! synchronously with a virtual clock. Used by the pipeline tests and benches; no root, no
//! kernel, no threads.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam::channel::{bounded, Receiver, Sender};

use super::worker::Worker;
use crate::{
    config::{self, ValidConfig},
    control::{publish::SnapshotCell, ControlPlane},
    dataplane::{LocalCounters, Pipeline, PortInfo, Punt, SharedCounters},
    io::{mem::MemIo, waker::Waker, PacketIo},
    wire::ethernet::MacAddr,
};

/// Capacity of the punt queue in the testbed (same as the runtime's).
pub const PUNT_QUEUE: usize = 4096;

/// A router over memory I/O.
#[derive(Debug)]
pub struct Testbed {
    /// The single worker.
    pub worker: Worker<MemIo>,
    /// The control plane.
    pub control: ControlPlane,
    punts: Receiver<Punt>,
    inject_tx: Sender<(u16, Vec<u8>)>,
    cell: Arc<SnapshotCell>,
    counters: Arc<SharedCounters>,
    /// The virtual clock.
    pub now: Instant,
}

/// The MAC address the testbed gives port `i`: `02:00:00:00:01:<i>`.
pub fn port_mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0x01, u8::try_from(i).unwrap_or(0xff)])
}

impl Testbed {
    /// Build from config text; ports get [`port_mac`] and the configured MTU (default 1500).
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn new(cfg_text: &str) -> Testbed {
        let cfg = config::parse(cfg_text, "testbed.toml").unwrap_or_else(|e| panic!("{e}"));
        Self::from_config(&cfg)
    }

    /// Build from a validated config.
    pub fn from_config(cfg: &ValidConfig) -> Testbed {
        let ports: Vec<PortInfo> = cfg
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, iface)| PortInfo {
                name: iface.name.clone(),
                mac: port_mac(i),
                mtu: iface.mtu.unwrap_or(1500),
                addresses: iface.addresses.clone(),
            })
            .collect();
        let n = ports.len();
        let mut control = ControlPlane::new(cfg, ports);
        let cell = Arc::new(SnapshotCell::new(control.snapshot()));
        let (punt_tx, punts) = bounded(PUNT_QUEUE);
        let (inject_tx, inject_rx) = bounded(PUNT_QUEUE);
        let counters = Arc::new(SharedCounters::default());
        let control_epoch = control.epoch();
        let worker = Worker::new(
            MemIo::new(n),
            Pipeline::new(punt_tx),
            cell.clone(),
            inject_rx,
            Arc::new(Waker::new().expect("eventfd")),
            counters.clone(),
            control_epoch,
        );
        Testbed {
            worker,
            control,
            punts,
            inject_tx,
            cell,
            counters,
            now: control_epoch,
        }
    }

    /// Deliver a frame to `port`.
    pub fn push(&mut self, port: usize, frame: &[u8]) {
        self.worker.io.push_rx(port, frame);
    }

    /// Run the worker, hand punts to the control plane, run its timers, publish, and send
    /// what it produced, until nothing is left to do.
    pub fn step(&mut self) {
        for _ in 0..64 {
            let mut work = self.worker.poll_once(self.now);
            while let Ok(p) = self.punts.try_recv() {
                work += 1;
                self.control.handle(self.now, p);
            }
            self.control.tick(self.now);
            if self.control.needs_publish() {
                self.cell.publish(self.control.snapshot());
            }
            for (port, f) in self.control.take_output() {
                work += 1;
                self.inject_tx.send((port, f)).expect("worker alive");
            }
            if work == 0
                && (0..self.worker.io.port_count()).all(|p| self.worker.io.rx_pending(p) == 0)
            {
                return;
            }
        }
        panic!("testbed did not settle in 64 rounds");
    }

    /// Advance the virtual clock and step.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.step();
    }

    /// Frames transmitted on `port` since the last call.
    pub fn take_tx(&mut self, port: usize) -> Vec<Vec<u8>> {
        self.worker.io.take_tx(port)
    }

    /// The worker's published counters.
    pub fn counters(&self) -> LocalCounters {
        self.counters.read()
    }
}
