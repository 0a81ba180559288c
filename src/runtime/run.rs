//! `xgw run`: threads, sockets, XDP attach, signals.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use crossbeam::channel::{bounded, Receiver, Sender};
use tracing::{info, warn};

use super::{
    notify::Notify,
    punt_policy,
    worker::{Worker, WorkerCommand},
};
use crate::{
    api::{
        self,
        service::{
            job_queue, reload, run_jobs, ConfigState, ControlCtx, Inventory, Job, PortFacts,
            Service,
        },
    },
    config::{self, ValidConfig},
    control::{
        alarms::{Alarms, Transition},
        event_loop::{ControlLoop, WorkerLink},
        mirror::Mirror,
        nat::NatEvent,
        publish::SnapshotCell,
        ControlEvent, ControlPlane,
    },
    dataplane::{
        punt::{Doorbell, PuntQueues, PuntTx},
        DropReason, Pipeline, PortInfo, SharedCounters,
    },
    io::{
        natlog::NatLogWriter,
        netdev::NetDev,
        netlink::{self, Follow, NetlinkFeed, NetlinkRequests},
        waker::Waker,
        xdp::{HostPath, NatPrefilter, XdpMode, XdpProgram, XdpStats, MAX_QUEUES},
        xsk::{XskIo, XskOptions},
        xsk_stats::XskStatsReader,
    },
    stats,
};

/// Host addresses the XDP program's map holds at most (mirror mode).
const HOST_ADDRESSES: usize = 4096;

/// Depth of each control → worker injection queue.
const INJECT_QUEUE: usize = 4096;

/// Command-line overrides for `xgw run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Force generic (skb) XDP on every interface.
    pub generic: bool,
    /// Override the number of queues (workers).
    pub queues: Option<u32>,
    /// Where the configuration came from (re-read on SIGHUP).
    pub config_path: Option<std::path::PathBuf>,
    /// Serve the control socket here instead of `[control] socket`.
    pub socket: Option<std::path::PathBuf>,
    /// Mirror mode: the kernel's addresses the configuration was read with (a reload
    /// checks the file against them).
    pub kernel_addresses: Option<config::KernelAddresses>,
    /// Mirror mode: every address of the namespace as read then (the host path's), so
    /// that start-up reads them once.
    pub kernel_addrs: Vec<crate::kernel::AddrMsg>,
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
    for (i, d) in cfg.interfaces.iter().zip(&devs) {
        if let Some(m) = i.mtu.filter(|&m| m > d.mtu) {
            bail!("{}", mtu_above_device(&d.name, m, d.mtu));
        }
    }
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
    // The NAT prefilter: the XDP program drops inbound TCP/UDP to unmapped external ports,
    // reading the NAT's own mapped-port bitmap, which lives in the program's map.
    let prefilter = cfg
        .nat
        .as_ref()
        .filter(|n| n.xdp_prefilter)
        .map(|n| NatPrefilter {
            outside_ifindex: ifindexes[n.outside],
            pool: n.addresses.clone(),
            capacity: crate::nat::portmap::capacity_for(n.addresses.len()),
        });
    // Kernel mirror mode: the namespace's addresses are the host's; frames to them (and ARP
    // and multicast) go to the kernel, and the control plane mirrors its tables.
    let mirror = if cfg.kernel.mirror {
        let addrs = match opts.kernel_addresses {
            Some(_) => opts.kernel_addrs.clone(),
            None => {
                netlink::kernel_addresses()
                    .context("reading the kernel's addresses")?
                    .0
            }
        };
        let pool: Vec<std::net::Ipv4Addr> = cfg
            .nat
            .iter()
            .flat_map(|n| n.addresses.iter().copied())
            .collect();
        Some(Mirror::new(&cfg.kernel, &addrs, &pool, Instant::now()))
    } else {
        None
    };
    let host = mirror.as_ref().map(|m| HostPath {
        addresses: m.host_addresses(),
        capacity: HOST_ADDRESSES,
    });
    let mut prog = XdpProgram::load(&ifindexes, queues, prefilter.as_ref(), host.as_ref())?;
    if let Some(h) = &host {
        let shown: Vec<String> = h.addresses.iter().map(ToString::to_string).collect();
        info!(table = cfg.kernel.table, host_addresses = %shown.join(","), "kernel mirror mode: routes, neighbours and addresses from the kernel; host traffic to the kernel");
    }
    let policy = punt_policy(&cfg, &ports);
    let port_words = prog
        .take_nat_ports()
        .map(|w| Box::new(w) as crate::nat::portmap::Words);
    if prefilter.is_some() {
        info!("NAT prefilter in XDP: inbound TCP/UDP to unmapped external ports dropped there");
    }
    let mut control = ControlPlane::with_port_words(&cfg, ports, port_words);
    let devices: Vec<(u32, u32)> = devs.iter().map(|d| (d.ifindex, u32::from(d.mtu))).collect();
    control.watch_links(&devices);
    let requests = match mirror {
        Some(m) => {
            control.set_mirror(m);
            Some(NetlinkRequests::open().context("netlink socket (neighbour resolution)")?)
        }
        None => None,
    };
    let nat_log = match cfg.nat.as_ref().and_then(|n| n.log.as_ref()) {
        Some(s) => {
            let (w, link) = NatLogWriter::start(s).context("[nat.log] target")?;
            info!(target = ?s.target, format = ?s.format, destinations = s.destinations, "NAT event log on");
            let stats = link.stats.clone();
            control.set_nat_log(Some(link));
            Some((w, stats))
        }
        None => None,
    };
    let cell = Arc::new(SnapshotCell::new(control.snapshot()));
    // The control loop runs on this thread; workers ring it when they queue punts.
    let doorbell = Doorbell::new(thread::current());
    // Link monitoring: the kernel reports ports going down, MTU changes, deletions.
    let bell = doorbell.clone();
    let follow = if cfg.kernel.mirror {
        Follow::Mirror
    } else {
        Follow::Links
    };
    let netlink = NetlinkFeed::start(follow, Box::new(move || bell.ring()))
        .context("netlink socket (link monitoring)")?;
    let names: Vec<String> = devs.iter().map(|d| d.name.clone()).collect();

    // Sockets first (so the XSKMAP is populated), then attach: frames that arrive before a
    // slot has a socket are passed to the kernel, never dropped.
    let mut ios = Vec::new();
    let mut xsk_stats = XskStatsReader::default();
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
        xsk_stats
            .add_queue(&io.fds())
            .context("duplicating AF_XDP sockets for statistics")?;
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
    let modes: Vec<XdpMode> = cfg
        .interfaces
        .iter()
        .map(|iface| {
            if opts.generic || iface.xdp_mode == config::XdpMode::Generic {
                XdpMode::Generic
            } else {
                XdpMode::Native
            }
        })
        .collect();
    for (dev, &mode) in devs.iter().zip(&modes) {
        prog.attach(dev.ifindex, mode)?;
        info!(port = %dev.name, ifindex = dev.ifindex, ?mode, queues, "XDP attached (bpf_link)");
    }

    let mut links = Vec::new();
    let mut counters = Vec::new();
    let mut handles = Vec::new();
    let mut commands = Vec::new();
    let epoch = control.epoch();
    let trace = Arc::new(crate::dataplane::trace::Trace::default());
    for (q, io) in ios.into_iter().enumerate() {
        let (itx, irx) = bounded(INJECT_QUEUE);
        let c = Arc::new(SharedCounters::default());
        let waker = Arc::new(Waker::new().context("eventfd")?);
        let queues = PuntQueues::new(&policy, doorbell.clone());
        let wake = waker.clone();
        links.push(WorkerLink {
            punts: queues.clone(),
            inject: itx,
            wake: Box::new(move || wake.wake()),
        });
        counters.push(c.clone());
        let mut pipeline = Pipeline::new(PuntTx::new(queues, &policy));
        pipeline.set_trace(trace.clone(), u16::try_from(q).unwrap_or(u16::MAX));
        let (ctx, crx) = bounded(4);
        commands.push((ctx, waker.clone()));
        let mut w = Worker::new(io, pipeline, cell.clone(), irx, waker, c, epoch);
        w.set_commands(crx);
        let stop = stop.clone();
        handles.push(
            thread::Builder::new()
                .name(format!("xgw-worker-{q}"))
                .spawn(move || w.run(&stop))
                .context("spawn worker")?,
        );
    }

    let signals = Signals {
        stop: &stop,
        dump: &dump,
        reload: &reload,
    };
    let text = opts
        .config_path
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut config_state = ConfigState::new(opts.config_path.clone(), text);
    config_state.kernel_addresses = opts.kernel_addresses.clone();
    let bell = doorbell.clone();
    let (jobs, job_rx) = job_queue(Arc::new(move || bell.ring()));
    let inventory = Inventory {
        ports: ports_facts(&cfg, &devs, &control, opts.generic),
        workers: counters.clone(),
        xsk: xsk_stats.clone(),
        nat: control.nat_view().clone(),
        epoch,
        started: std::time::SystemTime::now(),
        trace,
    };
    let service = Arc::new(Service::new(inventory, jobs));
    let mut server = match opts.socket.as_ref().or(cfg.control.socket.as_ref()) {
        Some(path) => {
            let s = api::server::start(path, service.clone())
                .with_context(|| format!("control socket {}", path.display()))?;
            info!(socket = %path.display(), "control socket");
            Some(s)
        }
        None => None,
    };
    let mut metrics = match cfg.metrics.listen {
        Some(addr) => {
            let m = api::metrics_http::start(addr, service.clone())
                .with_context(|| format!("metrics endpoint {addr}"))?;
            info!(listen = %m.addr(), "metrics at http://{}/metrics", m.addr());
            Some(m)
        }
        None => None,
    };
    drop(service);
    info!(
        workers = queues,
        "xgw running; SIGUSR1 dumps counters, SIGINT/SIGTERM stops"
    );
    let mut ops = Ops {
        config: config_state,
        jobs: job_rx,
        notify: Notify::from_env(),
        alarms: Alarms::default(),
        next_alarm_check: Instant::now(),
        xdp_pool: prefilter.as_ref().map_or(0, |p| p.pool.len()),
        netlink,
        requests,
        attach: Attach {
            commands,
            xsk_stats,
            modes,
        },
    };
    ops.notify.ready();
    let mut ctl = ControlLoop::new(control, cell, links);
    control_loop(
        &mut ctl, &doorbell, &signals, &mut ops, &counters, &mut prog,
    );

    info!("stopping");
    ops.notify.stopping();
    if let Some(s) = server.as_mut() {
        s.stop();
    }
    if let Some(m) = metrics.as_mut() {
        m.stop();
    }
    for h in handles {
        let _ = h.join();
    }
    let xs = prog.stats();
    info!(
        not_ipv4_or_arp = xs.not_ipv4_or_arp,
        not_from_a_port = xs.not_from_a_port,
        no_socket = xs.no_socket,
        "XDP steering: frames passed to the kernel"
    );
    prog.detach_all();
    let totals = stats::sum_workers(counters.iter().map(|c| &**c));
    let mut lines = ctl.plane.counter_lines();
    lines.extend(xdp_lines(xs));
    info!("final counters:\n{}", stats::render(&totals, &lines));
    if let Some((w, s)) = nat_log {
        // The events still buffered go to the writer, which writes them and ends.
        ctl.plane.set_nat_log(None);
        w.join();
        info!(
            written = s.written.load(std::sync::atomic::Ordering::Relaxed),
            failed = s.failed.load(std::sync::atomic::Ordering::Relaxed),
            "NAT event log closed"
        );
    }
    Ok(())
}

// The XDP prefilter reads the NAT's mapped-port bitmap in place: io and nat must agree on
// its layout (io may not depend on nat, so each names the size; they meet here).
const _: () = assert!(crate::io::xdp::PORT_WORDS == crate::nat::portmap::WORDS);
// Workers count traffic per port for every port the XDP program can steer.
const _: () = assert!(crate::io::xdp::MAX_PORTS as usize == crate::dataplane::counters::MAX_PORTS);

/// The steering program's counters that are not "passed to the kernel" (logged apart), as
/// counter lines (zeros left out, as everywhere).
fn xdp_lines(s: XdpStats) -> Vec<(&'static str, u64, &'static str)> {
    [
        (
            "xdp.nat_no_mapping",
            s.nat_unmapped,
            "NAT prefilter: inbound to an external port without a mapping, dropped in XDP",
        ),
        (
            "xdp.host",
            s.host,
            "mirror mode: frames for the host passed to the kernel (ARP, multicast, its addresses)",
        ),
        (
            "xdp.no_socket",
            s.no_socket,
            "IPv4/ARP passed to the kernel: no worker socket on its RX queue (start, stop)",
        ),
    ]
    .into_iter()
    .filter(|l| l.1 != 0)
    .collect()
}

fn worker_count(cfg: &ValidConfig, devs: &[NetDev], cli: Option<u32>) -> Result<u32> {
    // Every worker has a socket on every port at its queue id, so all ports use the same
    // number of queues, and that must be every queue of every port.
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
    // A frame on a queue no worker serves would be passed to the kernel, past the router
    // and the NAT: refuse rather than leak.
    if let Some(d) = devs.iter().find(|d| d.rx_queues > q) {
        bail!("{}", unserved_queues(&d.name, d.rx_queues, q));
    }
    Ok(q)
}

/// Why xgw refuses to start when `dev` has more RX queues than the workers serve.
fn unserved_queues(dev: &str, rx_queues: u32, queues: u32) -> String {
    format!(
        "{dev} has {rx_queues} RX queues, queues = {queues}: frames on queues {queues}..{} would \
         bypass xgw (into the kernel, untranslated); set queues = {rx_queues} on every port \
         (--queues {rx_queues}), or give {dev} fewer channels (ethtool -L {dev} combined \
         {queues}, or rx {queues} on veth)",
        rx_queues - 1
    )
}

/// Why xgw refuses a configured `mtu` above the device's.
fn mtu_above_device(dev: &str, mtu: u16, device: u16) -> String {
    format!(
        "interface {dev}: mtu = {mtu} is above the device's MTU {device} (frames that long \
         would be dropped by the device); lower mtu, or raise the device's first: ip link \
         set {dev} mtu {mtu}"
    )
}

/// Flags set by the signal handlers.
struct Signals<'a> {
    stop: &'a AtomicBool,
    dump: &'a AtomicBool,
    reload: &'a AtomicBool,
}

/// The interfaces as `show interfaces` describes them.
fn ports_facts(
    cfg: &ValidConfig,
    devs: &[NetDev],
    control: &ControlPlane,
    generic: bool,
) -> Vec<PortFacts> {
    cfg.interfaces
        .iter()
        .zip(devs)
        .zip(control.ports().iter())
        .map(|((i, d), p)| PortFacts {
            info: p.clone(),
            ifindex: d.ifindex,
            xdp_mode: if generic || i.xdp_mode == config::XdpMode::Generic {
                "generic"
            } else {
                "native"
            }
            .into(),
            tx_path: match i.tx_path {
                config::TxPath::Auto => "auto",
                config::TxPath::AfXdp => "af_xdp",
            }
            .into(),
        })
        .collect()
}

/// The control thread's operator-facing state: configuration, control-socket jobs,
/// systemd notification and the alarms.
struct Ops {
    config: ConfigState,
    jobs: Receiver<Job>,
    notify: Notify,
    alarms: Alarms,
    next_alarm_check: Instant,
    /// Pool addresses the XDP prefilter knows (0: no prefilter).
    xdp_pool: usize,
    /// The kernel's link reports (and in mirror mode its routes, neighbours, addresses).
    netlink: NetlinkFeed,
    /// Mirror mode: requests to the kernel (neighbour resolution).
    requests: Option<NetlinkRequests>,
    /// What moving a port to its re-created device takes.
    attach: Attach,
}

/// The means to move a port to its re-created device.
struct Attach {
    /// Each worker's command queue and its waker.
    commands: Vec<(Sender<WorkerCommand>, Arc<Waker>)>,
    xsk_stats: XskStatsReader,
    /// Each port's XDP attach mode.
    modes: Vec<XdpMode>,
}

/// How long a worker may take to move its socket (it is woken first; one loop suffices).
const REATTACH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Move the ports whose device was created anew to it, as the control plane asks: the XDP
/// program steers the new ifindex as the port's, every worker binds a socket there (and
/// takes back the frames of its dead one), the sockets go into the XSKMAP, the program is
/// attached to the device, and the control plane takes the port back. On a failure the
/// port stays down (logged and counted by the control plane).
fn reattach_ports(ctl: &mut ControlLoop, at: &Attach, prog: &mut XdpProgram) -> usize {
    let todo = ctl.plane.take_reattach();
    let n = todo.len();
    for (port, ifindex) in todo {
        let p = usize::from(port);
        let name = ctl.plane.ports()[p].name.clone();
        let r = reattach_port(at, prog, p, &name, ifindex);
        let (mac, r) = match r {
            Ok(mac) => (Some(mac), Ok(())),
            Err(e) => (None, Err(format!("{e:#}"))),
        };
        ctl.plane.reattached(port, ifindex, mac, r);
    }
    n
}

fn reattach_port(
    at: &Attach,
    prog: &mut XdpProgram,
    p: usize,
    name: &str,
    ifindex: u32,
) -> Result<crate::wire::ethernet::MacAddr> {
    let dev = NetDev::open(name).with_context(|| format!("interface {name}"))?;
    if dev.ifindex != ifindex {
        bail!(
            "{name} is ifindex {} now, not {ifindex} (re-created again: that attaches next)",
            dev.ifindex
        );
    }
    let slot = u32::try_from(p)?;
    for (q, (tx, waker)) in at.commands.iter().enumerate() {
        let (rtx, rrx) = bounded(1);
        tx.try_send(WorkerCommand::Reattach {
            port: p,
            ifname: name.to_owned(),
            reply: rtx,
        })
        .map_err(|_| anyhow::anyhow!("worker {q} is not taking commands"))?;
        waker.wake();
        let fd = rrx
            .recv_timeout(REATTACH_WAIT)
            .map_err(|_| anyhow::anyhow!("worker {q} did not answer"))?
            .with_context(|| format!("worker {q}: AF_XDP socket on {name}"))?;
        if let Some(fd) = fd {
            let q32 = u32::try_from(q)?;
            prog.register_socket(slot, q32, fd)?;
            if let Err(e) = at.xsk_stats.replace(q, p, fd) {
                warn!(port = name, queue = q, error = %e, "socket statistics not followed");
            }
        }
    }
    // Only now (every worker has its socket there) is the new ifindex steered as the port.
    prog.set_port_ifindex(p, ifindex)?;
    let mode = at.modes.get(p).copied().unwrap_or(XdpMode::Native);
    prog.attach(ifindex, mode)?;
    info!(
        port = name,
        ifindex,
        ?mode,
        "XDP attached to the re-created interface (bpf_link)"
    );
    Ok(dev.mac)
}

/// Netlink messages applied per control-loop round at most (the rest wait for the next).
const NETLINK_BUDGET: usize = 1024;

/// Apply what netlink reported; the number of messages (work done).
fn apply_netlink(ctl: &mut ControlLoop, feed: &NetlinkFeed) -> usize {
    let malformed = feed.take_malformed();
    if malformed > 0 {
        ctl.plane
            .counters
            .add(ControlEvent::NetlinkMalformed, malformed);
    }
    let mut n = 0;
    let now = Instant::now();
    for m in feed.drain(NETLINK_BUDGET) {
        ctl.plane.link_message(&m);
        ctl.plane.kernel_message(now, &m);
        n += 1;
    }
    n
}

/// Mirror mode: send the neighbour resolutions the control plane asked for, and tell the
/// XDP program about host address changes.
fn mirror_io(ctl: &mut ControlLoop, ops: &mut Ops, prog: &XdpProgram) -> usize {
    let Some(req) = ops.requests.as_mut() else {
        return 0;
    };
    let solicits = ctl.plane.take_solicits();
    let mut work = solicits.len();
    let mut unsent = 0u64;
    for (ifindex, ip) in solicits {
        if !req.solicit(ifindex, ip) {
            unsent += 1;
        }
    }
    if unsent > 0 {
        ctl.plane
            .counters
            .add(ControlEvent::NeighSolicitDropped, unsent);
    }
    if work > 0 {
        // The kernel's refusals of earlier requests (no ack is asked for: only errors).
        let before = req.refused;
        req.drain();
        if req.refused > before {
            ctl.plane
                .counters
                .add(ControlEvent::NeighSolicitRefused, req.refused - before);
        }
    }
    for (a, add) in ctl.plane.take_host_changes() {
        work += 1;
        match prog.set_host_address(a, add) {
            Ok(()) if add => info!(address = %a, "host address: frames to it go to the kernel"),
            Ok(()) => info!(address = %a, "host address removed: frames to it are forwarded"),
            Err(e) => warn!(address = %a, error = %e, "host address not passed to the kernel"),
        }
    }
    work
}

/// Tell the XDP prefilter about pool addresses a reload added (they reach the workers
/// unfiltered until then).
fn sync_xdp_pool(ctl: &ControlLoop, prog: &XdpProgram, known: &mut usize) {
    let Some(f) = ctl.plane.nat_fast() else {
        return;
    };
    if f.pool.len() <= *known {
        return;
    }
    for (i, a) in f.pool.iter().enumerate().skip(*known) {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        match prog.add_pool_address(*a, index) {
            Ok(()) => info!(address = %a, "NAT prefilter: pool address added"),
            Err(e) => {
                warn!(address = %a, error = %e, "NAT prefilter: pool address not added; its traffic is filtered by the workers")
            }
        }
    }
    *known = f.pool.len();
}

/// How often the alarms look at their counters.
const ALARM_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The alarms' counters, in [`Condition::ALL`] order.
fn alarm_values(ctl: &ControlLoop, counters: &[Arc<SharedCounters>]) -> [u64; 4] {
    let totals = stats::sum_workers(counters.iter().map(|c| &**c));
    let (table_full, ports) = ctl.plane.nat().map_or((0, 0), |n| {
        (
            n.counters.get(NatEvent::TableFull),
            n.counters.get(NatEvent::PortsExhausted),
        )
    });
    [
        totals.dropped(DropReason::PuntQueueFull),
        ctl.plane.counters.get(ControlEvent::NeighTableFull),
        table_full,
        ports,
    ]
}

fn log_alarm(t: Transition) {
    match t {
        Transition::Raised { what, by } => warn!(count = by, "{}", what.describe()),
        Transition::Ended {
            what,
            total,
            lasted,
        } => info!(
            count = total,
            seconds = lasted.as_secs(),
            "ended: {}",
            what.describe()
        ),
    }
}

/// The control thread: the shared [`ControlLoop::step`] until stopped, sleeping on the
/// doorbell when idle; signals and the control socket's jobs are its other inputs.
fn control_loop(
    ctl: &mut ControlLoop,
    doorbell: &Doorbell,
    sig: &Signals<'_>,
    ops: &mut Ops,
    counters: &[Arc<SharedCounters>],
    prog: &mut XdpProgram,
) {
    while !sig.stop.load(Ordering::Relaxed) {
        doorbell.clear();
        let now = Instant::now();
        let mut work = apply_netlink(ctl, &ops.netlink);
        work += reattach_ports(ctl, &ops.attach, prog);
        let prog = &*prog;
        let xdp = || xdp_lines(prog.stats());
        work += mirror_io(ctl, ops, prog);
        work += ctl.step(now);
        let reload_due = sig.reload.swap(false, Ordering::Relaxed) && ops.config.path.is_some();
        {
            let notify = &mut ops.notify;
            let mut hook = |r: Option<&Result<String, String>>| match r {
                None => notify.reloading(),
                Some(Ok(m)) => {
                    info!("reload: {m}");
                    notify.reloaded("forwarding; reload applied");
                }
                Some(Err(e)) => {
                    warn!("reload: configuration not applied: {e}");
                    notify.reloaded("forwarding; reload refused");
                }
            };
            let mut cx = ControlCtx {
                ctl: &mut *ctl,
                config: &mut ops.config,
                xdp_lines: &xdp,
                reload_hook: &mut hook,
            };
            work += run_jobs(&ops.jobs, &mut cx);
            if reload_due {
                let _ = reload(&mut cx);
            }
        }
        if ops.xdp_pool > 0 {
            sync_xdp_pool(ctl, prog, &mut ops.xdp_pool);
        }
        ops.notify.tick(now);
        if now >= ops.next_alarm_check {
            ops.next_alarm_check = now + ALARM_PERIOD;
            for t in ops.alarms.observe(now, alarm_values(ctl, counters)) {
                log_alarm(t);
            }
        }
        if sig.dump.swap(false, Ordering::Relaxed) {
            let totals = stats::sum_workers(counters.iter().map(|c| &**c));
            let mut lines = ctl.plane.counter_lines();
            lines.extend(xdp_lines(prog.stats()));
            let mut text = stats::render(&totals, &lines);
            for (name, n, _) in ctl.handled_lines() {
                text.push_str(&format!("{name:<34} {n:>14}  punts handled\n"));
            }
            text.push_str(&format!(
                "{:<34} {:>14}  control->worker queue full\n",
                "control.inject_dropped", ctl.inject_dropped
            ));
            text.push_str(&format!("neighbours: {}\n", ctl.plane.neighbors().len()));
            info!("counters:\n{text}");
        }
        if work == 0 {
            doorbell.wait(ctl.idle_timeout(Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mtu_above_the_device_is_named() {
        let m = super::mtu_above_device("r1", 9000, 1500);
        assert!(
            m.starts_with("interface r1: mtu = 9000 is above the device's MTU 1500"),
            "{m}"
        );
    }

    #[test]
    fn unserved_queues_are_named() {
        let m = super::unserved_queues("r0", 4, 2);
        assert!(
            m.starts_with("r0 has 4 RX queues, queues = 2: frames on queues 2..3"),
            "{m}"
        );
        assert!(m.contains("ethtool -L r0"), "{m}");
    }
}
