//! A whole router in one thread over [`MemIo`]: one or more workers and the production
//! control loop ([`ControlLoop::step`], the same function the runtime's control thread
//! runs), stepped synchronously with a virtual clock. Used by the pipeline tests and
//! benches; no root, no kernel, no threads.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam::channel::bounded;

use super::{punt_policy, worker::Worker};
use crate::{
    config::{self, ValidConfig},
    control::{
        event_loop::{ControlLoop, WorkerLink},
        mirror::Mirror,
        publish::SnapshotCell,
        ControlPlane,
    },
    dataplane::{
        punt::{Doorbell, PuntQueues, PuntTx},
        LocalCounters, Pipeline, PortInfo, SharedCounters,
    },
    io::{mem::MemIo, waker::Waker, PacketIo},
    kernel::{AddrMsg, KernelMsg},
    wire::ethernet::MacAddr,
};

/// Depth of each worker's inject queue in the testbed (same as the runtime's).
pub const INJECT_QUEUE: usize = 4096;

/// A router over memory I/O.
#[derive(Debug)]
pub struct Testbed {
    /// The workers (queue ids 0..n); [`Testbed::push`] delivers to worker 0.
    pub workers: Vec<Worker<MemIo>>,
    /// The control loop (and in it the control plane).
    pub ctl: ControlLoop,
    counters: Vec<Arc<SharedCounters>>,
    /// The virtual clock.
    pub now: Instant,
    trace: Arc<crate::dataplane::trace::Trace>,
}

/// The MAC address the testbed gives port `i`: `02:00:00:00:01:<i>`.
pub fn port_mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0x01, u8::try_from(i).unwrap_or(0xff)])
}

/// The ifindex the testbed gives port `i`'s device (link messages name it): `100 + i`.
pub fn port_ifindex(i: usize) -> u32 {
    100 + u32::try_from(i).unwrap_or(0)
}

impl Testbed {
    /// Build from config text with one worker; ports get [`port_mac`] and the configured
    /// MTU (default 1500).
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn new(cfg_text: &str) -> Testbed {
        Self::with_workers(cfg_text, 1)
    }

    /// Build from config text with `workers` workers sharing the control plane (and the
    /// NAT's state), as `queues = workers` would in the runtime.
    ///
    /// # Panics
    /// If the config is invalid.
    pub fn with_workers(cfg_text: &str, workers: usize) -> Testbed {
        let cfg = config::parse(cfg_text, "testbed.toml").unwrap_or_else(|e| panic!("{e}"));
        Self::build(&cfg, workers)
    }

    /// Build from a validated config with one worker.
    pub fn from_config(cfg: &ValidConfig) -> Testbed {
        Self::build(cfg, 1)
    }

    fn build(cfg: &ValidConfig, workers: usize) -> Testbed {
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
        let policy = punt_policy(cfg, &ports);
        let n = ports.len();
        let devices: Vec<(u32, u32)> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (port_ifindex(i), u32::from(p.mtu)))
            .collect();
        let mut control = ControlPlane::new(cfg, ports);
        control.watch_links(&devices);
        if cfg.kernel.mirror {
            // The kernel has the configured addresses (as the runtime would have adopted).
            let addrs: Vec<AddrMsg> = cfg
                .interfaces
                .iter()
                .enumerate()
                .flat_map(|(i, iface)| {
                    iface.addresses.iter().map(move |a| AddrMsg {
                        ifindex: port_ifindex(i),
                        addr: a.address(),
                        len: a.prefix_len(),
                    })
                })
                .collect();
            let pool: Vec<std::net::Ipv4Addr> =
                cfg.nat.iter().flat_map(|n| n.addresses.clone()).collect();
            control.set_mirror(Mirror::new(&cfg.kernel, &addrs, &pool, control.epoch()));
        }
        let cell = Arc::new(SnapshotCell::new(control.snapshot()));
        let epoch = control.epoch();
        let doorbell = Doorbell::new(std::thread::current());
        let mut links = Vec::new();
        let mut ws = Vec::new();
        let mut counters = Vec::new();
        let trace = Arc::new(crate::dataplane::trace::Trace::default());
        for w in 0..workers.max(1) {
            let queues = PuntQueues::new(&policy, doorbell.clone());
            let (inject_tx, inject_rx) = bounded(INJECT_QUEUE);
            let c = Arc::new(SharedCounters::default());
            links.push(WorkerLink {
                punts: queues.clone(),
                inject: inject_tx,
                wake: Box::new(|| {}),
            });
            let mut pipeline = Pipeline::new(PuntTx::new(queues, &policy));
            pipeline.set_trace(trace.clone(), u16::try_from(w).unwrap_or(u16::MAX));
            ws.push(Worker::new(
                MemIo::new(n),
                pipeline,
                cell.clone(),
                inject_rx,
                Arc::new(Waker::new().expect("eventfd")),
                c.clone(),
                epoch,
            ));
            counters.push(c);
        }
        Testbed {
            workers: ws,
            ctl: ControlLoop::new(control, cell, links),
            counters,
            now: epoch,
            trace,
        }
    }

    /// The workers' packet trace (`xgw trace add`).
    pub fn trace(&self) -> &Arc<crate::dataplane::trace::Trace> {
        &self.trace
    }

    /// The control plane.
    pub fn control(&self) -> &ControlPlane {
        &self.ctl.plane
    }

    /// The control plane, to change it (reload).
    pub fn control_mut(&mut self) -> &mut ControlPlane {
        &mut self.ctl.plane
    }

    /// Deliver a frame to `port` of worker 0.
    pub fn push(&mut self, port: usize, frame: &[u8]) {
        self.workers[0].io.push_rx(port, frame);
    }

    /// Deliver a frame to `port` of worker `w` (as if it arrived on RX queue `w`).
    pub fn push_to(&mut self, w: usize, port: usize, frame: &[u8]) {
        self.workers[w].io.push_rx(port, frame);
    }

    /// Run every worker once and the control loop once; returns the work done.
    pub fn round(&mut self) -> usize {
        let mut work = 0;
        for w in &mut self.workers {
            work += w.poll_once(self.now);
        }
        work + self.ctl.step(self.now)
    }

    /// Deliver many frames, running rounds as the receive queues fill, then settle (the
    /// flood arrives in bursts of the worker's batch size, all at the current instant).
    pub fn flood(&mut self, port: usize, frames: impl IntoIterator<Item = Vec<u8>>) {
        for (k, f) in frames.into_iter().enumerate() {
            self.workers[0].io.push_rx(port, &f);
            if k % 1024 == 1023 {
                while self.workers[0].io.rx_pending(port) > 0 {
                    self.round();
                }
            }
        }
        while self.workers[0].io.rx_pending(port) > 0 {
            self.round();
        }
        self.step();
    }

    /// Run rounds until nothing is left to do.
    ///
    /// # Panics
    /// If it does not settle in 64 rounds.
    pub fn step(&mut self) {
        self.attach_recreated();
        for _ in 0..64 {
            let work = self.round();
            let rx_idle = self
                .workers
                .iter()
                .all(|w| (0..w.io.port_count()).all(|p| w.io.rx_pending(p) == 0));
            if work == 0 && rx_idle && !self.ctl.pending() {
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

    /// Frames transmitted on `port` (by any worker) since the last call.
    pub fn take_tx(&mut self, port: usize) -> Vec<Vec<u8>> {
        self.workers
            .iter_mut()
            .flat_map(|w| w.io.take_tx(port))
            .collect()
    }

    /// The workers' counter blocks (what the control socket's service reads).
    pub fn shared_counters(&self) -> &[Arc<SharedCounters>] {
        &self.counters
    }

    /// The workers' published counters, summed.
    pub fn counters(&self) -> LocalCounters {
        let mut sum = LocalCounters::default();
        for c in &self.counters {
            sum.add(&c.read());
        }
        sum
    }

    /// Tell the control plane what the kernel would about port `port`'s device (up or
    /// down, its MTU), as the netlink feed does, and step.
    pub fn link(&mut self, port: usize, up: bool, mtu: u32) {
        let m = crate::kernel::KernelMsg::Link(crate::kernel::LinkMsg {
            ifindex: port_ifindex(port),
            name: self.ctl.plane.ports()[port].name.clone(),
            admin_up: true,
            oper_up: up,
            mtu,
        });
        self.ctl.plane.link_message(&m);
        self.step();
    }

    /// As the runtime's control thread does: move the ports whose device was created anew
    /// to it (every worker's I/O, then the control plane).
    fn attach_recreated(&mut self) {
        for (port, ifindex) in self.ctl.plane.take_reattach() {
            let name = self.ctl.plane.ports()[usize::from(port)].name.clone();
            let r = self
                .workers
                .iter_mut()
                .try_for_each(|w| w.io.reattach(usize::from(port), &name).map(drop))
                .map_err(|e| e.to_string());
            self.ctl.plane.reattached(port, ifindex, None, r);
        }
    }

    /// Mirror mode: the kernel reported `m` (applied as the runtime's control thread does),
    /// then step.
    pub fn kernel(&mut self, m: &KernelMsg) {
        self.ctl.plane.link_message(m);
        self.ctl.plane.kernel_message(self.now, m);
        self.step();
    }

    /// Worker `w`'s published counters.
    pub fn worker_counters(&self, w: usize) -> LocalCounters {
        self.counters[w].read()
    }
}
