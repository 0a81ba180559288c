//! `xgw run`: threads, sockets, XDP attach, signals.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender};
use tracing::{info, warn};

use super::worker::Worker;
use crate::{
    config::{self, ValidConfig},
    control::{publish::SnapshotCell, ControlPlane},
    dataplane::{Pipeline, PortInfo, Punt, SharedCounters},
    io::{
        netdev::NetDev,
        waker::Waker,
        xdp::{XdpMode, XdpProgram, MAX_QUEUES},
        xsk::{XskIo, XskOptions},
    },
    stats,
};

/// A worker's inject queue and the waker to signal after queueing.
type InjectHandle = (Sender<(u16, Vec<u8>)>, Arc<Waker>);

/// Depth of the worker → control punt queue.
const PUNT_QUEUE: usize = 4096;
/// Depth of each control → worker injection queue.
const INJECT_QUEUE: usize = 4096;
/// Control-plane timer period (ARP retransmission and ageing resolution).
const TICK: Duration = Duration::from_millis(50);

/// Command-line overrides for `xgw run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Force generic (skb) XDP on every interface.
    pub generic: bool,
    /// Override the number of queues (workers).
    pub queues: Option<u32>,
    /// Where the configuration came from (re-read on SIGHUP).
    pub config_path: Option<std::path::PathBuf>,
}

/// Run the router until SIGINT/SIGTERM; SIGHUP re-reads `opts.config_path` (routes, ICMP).
pub fn run(cfg: ValidConfig, opts: RunOptions) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("signal handler")?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, dump.clone())
        .context("signal handler")?;

    let devs: Vec<NetDev> = cfg
        .interfaces
        .iter()
        .map(|i| NetDev::open(&i.name).with_context(|| format!("interface {}", i.name)))
        .collect::<Result<_>>()?;
    let queues = worker_count(&cfg, &devs, opts.queues)?;
    let ports: Vec<PortInfo> = cfg
        .interfaces
        .iter()
        .zip(&devs)
        .map(|(i, d)| PortInfo {
            name: i.name.clone(),
            mac: d.mac,
            mtu: i.mtu.unwrap_or(d.mtu).min(config::MAX_MTU),
            addresses: i.addresses.clone(),
        })
        .collect();
    for p in &ports {
        let addrs: Vec<String> = p.addresses.iter().map(|a| a.to_string()).collect();
        info!(port = %p.name, mac = %p.mac, mtu = p.mtu, addresses = %addrs.join(","), "port");
    }

    let ifindexes: Vec<u32> = devs.iter().map(|d| d.ifindex).collect();
    let mut prog = XdpProgram::load(&ifindexes, queues)?;
    let mut control = ControlPlane::new(&cfg, ports);
    let cell = Arc::new(SnapshotCell::new(control.snapshot()));
    let (punt_tx, punt_rx) = bounded::<Punt>(PUNT_QUEUE);
    let names: Vec<String> = devs.iter().map(|d| d.name.clone()).collect();

    // Sockets first (so the XSKMAP is populated), then attach: frames that arrive before a
    // slot has a socket are passed to the kernel, never dropped.
    let mut ios = Vec::new();
    for q in 0..queues {
        let force_copy = opts.generic
            || cfg
                .interfaces
                .iter()
                .any(|i| i.xdp_mode == config::XdpMode::Generic);
        let mut io = XskIo::new(
            &names,
            q,
            XskOptions {
                force_copy,
                ..Default::default()
            },
        )
        .with_context(|| format!("AF_XDP sockets for queue {q}"))?;
        for (slot, fd) in io.fds().into_iter().enumerate() {
            prog.register_socket(u32::try_from(slot)?, q, fd)?;
        }
        let tx_ports: Vec<(u32, bool)> = devs
            .iter()
            .zip(&cfg.interfaces)
            .map(|(d, i)| (d.ifindex, i.tx_path == config::TxPath::Auto))
            .collect();
        if tx_ports.iter().any(|&(_, allowed)| allowed) {
            let tx = prog.tx_queue(q).context("XDP-redirect transmit queue")?;
            io.use_xdp_tx(tx, &tx_ports);
        }
        ios.push(io);
    }
    for (dev, iface) in devs.iter().zip(&cfg.interfaces) {
        let mode = if opts.generic || iface.xdp_mode == config::XdpMode::Generic {
            XdpMode::Generic
        } else {
            XdpMode::Native
        };
        prog.attach(dev.ifindex, mode)?;
        info!(port = %dev.name, ifindex = dev.ifindex, ?mode, queues, "XDP attached (bpf_link)");
    }

    let mut injects = Vec::new();
    let mut counters = Vec::new();
    let mut handles = Vec::new();
    for (q, io) in ios.into_iter().enumerate() {
        let (itx, irx) = bounded(INJECT_QUEUE);
        let c = Arc::new(SharedCounters::default());
        let waker = Arc::new(Waker::new().context("eventfd")?);
        injects.push((itx, waker.clone()));
        counters.push(c.clone());
        let mut w = Worker::new(
            io,
            Pipeline::new(punt_tx.clone()),
            cell.clone(),
            irx,
            waker,
            c,
            control.epoch(),
        );
        w.set_idle_poll(cfg.dataplane.idle_poll);
        let stop = stop.clone();
        handles.push(
            thread::Builder::new()
                .name(format!("xgw-worker-{q}"))
                .spawn(move || w.run(&stop))
                .context("spawn worker")?,
        );
    }
    drop(punt_tx);
    info!(
        workers = queues,
        "xgw running; SIGUSR1 dumps counters, SIGINT/SIGTERM stops"
    );

    let signals = Signals {
        stop: &stop,
        dump: &dump,
        reload: &reload,
    };
    control_loop(
        &mut control,
        &punt_rx,
        &injects,
        &cell,
        &signals,
        opts.config_path.as_deref(),
        &counters,
    );

    info!("stopping");
    for h in handles {
        let _ = h.join();
    }
    let (not_ip, not_port) = prog.stats();
    info!(
        not_ipv4_or_arp = not_ip,
        not_from_a_port = not_port,
        "XDP steering: frames passed to the kernel"
    );
    prog.detach_all();
    let totals = stats::sum_workers(counters.iter().map(|c| &**c));
    info!(
        "final counters:\n{}",
        stats::render(&totals, &control.counter_lines())
    );
    Ok(())
}

fn worker_count(cfg: &ValidConfig, devs: &[NetDev], cli: Option<u32>) -> Result<u32> {
    // Every worker has a socket on every port at its queue id, so all ports use the same
    // number of queues: the smallest the configuration and the devices allow.
    let mut q = u32::MAX;
    for (i, d) in cfg.interfaces.iter().zip(devs) {
        let want = cli.or(i.queues).unwrap_or(d.rx_queues);
        if want > d.rx_queues {
            bail!(
                "{}: {} queues requested but the device has {}",
                d.name,
                want,
                d.rx_queues
            );
        }
        q = q.min(want);
    }
    if q == 0 || q > MAX_QUEUES {
        bail!("queue count must be 1..={MAX_QUEUES}");
    }
    let distinct: std::collections::BTreeSet<u32> = cfg
        .interfaces
        .iter()
        .zip(devs)
        .map(|(i, d)| cli.or(i.queues).unwrap_or(d.rx_queues))
        .collect();
    if distinct.len() > 1 {
        warn!(
            queues = q,
            "interfaces have different queue counts; using the smallest on all"
        );
    }
    Ok(q)
}

/// Flags set by the signal handlers.
struct Signals<'a> {
    stop: &'a AtomicBool,
    dump: &'a AtomicBool,
    reload: &'a AtomicBool,
}

fn reload_config(control: &mut ControlPlane, path: Option<&std::path::Path>) {
    let Some(path) = path else { return };
    match config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|c| control.reload(&c))
    {
        Ok(()) => info!(config = %path.display(), "SIGHUP: routes reloaded"),
        Err(e) => warn!("SIGHUP: configuration not applied: {e}"),
    }
}

fn control_loop(
    control: &mut ControlPlane,
    punts: &Receiver<Punt>,
    injects: &[InjectHandle],
    cell: &SnapshotCell,
    sig: &Signals<'_>,
    config_path: Option<&std::path::Path>,
    counters: &[Arc<SharedCounters>],
) {
    let (stop, dump) = (sig.stop, sig.dump);
    let mut next_tick = Instant::now();
    let mut rr = 0usize;
    let mut inject_dropped = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match punts.recv_timeout(TICK) {
            Ok(p) => {
                let now = Instant::now();
                control.handle(now, p);
                for p in punts.try_iter().take(1024) {
                    control.handle(now, p);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now >= next_tick {
            control.tick(now);
            next_tick = now + TICK;
        }
        if sig.reload.swap(false, Ordering::Relaxed) {
            reload_config(control, config_path);
        }
        if control.needs_publish() {
            cell.publish(control.snapshot());
        }
        let mut woken = vec![false; injects.len()];
        for (port, frame) in control.take_output() {
            // Any worker can send on any port; spread the load.
            rr = (rr + 1) % injects.len();
            if injects[rr].0.try_send((port, frame)).is_err() {
                inject_dropped += 1;
            }
            woken[rr] = true;
        }
        for ((_, waker), w) in injects.iter().zip(woken) {
            if w {
                waker.wake();
            }
        }
        if dump.swap(false, Ordering::Relaxed) {
            let totals = stats::sum_workers(counters.iter().map(|c| &**c));
            let mut text = stats::render(&totals, &control.counter_lines());
            text.push_str(&format!(
                "{:<34} {:>14}  control->worker queue full\n",
                "control.inject_dropped", inject_dropped
            ));
            text.push_str(&format!("neighbours: {}\n", control.neighbors().len()));
            info!("counters:\n{text}");
        }
    }
}
