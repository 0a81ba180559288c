//! `xgw` command line: `run`, `check`, the control-socket client verbs (`show ...`,
//! `route get`, `reload`, `clear counters`), and the benchmark's `loadgen` tools.
//! CLI → config → runtime / api client, nothing else.

use std::{net::Ipv4Addr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use xgw::{
    api::{
        client,
        proto::{SessionFilter, Verb},
        render,
        service::route_json,
    },
    config,
    control::routes::Routes,
};

/// Large tables (FIB arrays, the NAT session table) on transparent huge pages.
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;

#[derive(Parser, Debug)]
#[command(name = "xgw", version, about = "IPv4 router with an AF_XDP fast path")]
struct Cli {
    /// The control socket: where client verbs ask (default /run/xgw/xgw.sock); for `run`,
    /// where to serve it instead of `[control] socket`.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the answer as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the router in the foreground until SIGINT/SIGTERM (SIGUSR1 dumps counters,
    /// SIGHUP re-reads routes and ICMP limits).
    Run {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Attach in generic (skb) XDP mode instead of native.
        #[arg(long)]
        generic: bool,
        /// Number of queues/workers (default: per config, else all the devices have).
        #[arg(long)]
        queues: Option<u32>,
    },
    /// Validate a configuration file: exit 0, or 1 with FILE:LINE:COL: message.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Route queries.
    Route {
        #[command(subcommand)]
        cmd: RouteCmd,
    },
    /// Ask the running router (over the control socket).
    Show {
        #[command(subcommand)]
        what: ShowCmd,
    },
    /// The running router's ARP cache.
    Neighbor {
        #[command(subcommand)]
        cmd: NeighborCmd,
    },
    /// The running router's NAT.
    Nat {
        #[command(subcommand)]
        cmd: NatCmd,
    },
    /// Packet trace: record the next packets' path through the stages (`show trace`).
    Trace {
        #[command(subcommand)]
        cmd: TraceCmd,
    },
    /// Re-read the configuration file, as SIGHUP does, and say how it ended (exit 1 with
    /// the reasons if it was refused; nothing changed then).
    Reload,
    /// Clear counters.
    Clear {
        #[command(subcommand)]
        what: ClearCmd,
    },
    /// Benchmark tools (used by scripts/bench.sh): XDP traffic generator, sink counter,
    /// reference XDP forwarder. Run them inside the namespace that owns DEV.
    Loadgen {
        #[command(subcommand)]
        cmd: LoadgenCmd,
    },
}

#[derive(Subcommand, Debug)]
enum LoadgenCmd {
    /// Send 64-byte UDP frames out of DEV (BPF_PROG_RUN live frames) and print
    /// {"frames":N,"secs":S} as JSON.
    Gen {
        /// Interface to transmit on.
        #[arg(long)]
        dev: String,
        /// Destination MAC (the router's interface on the other end).
        #[arg(long)]
        dst_mac: String,
        /// Source address.
        #[arg(long)]
        src: Ipv4Addr,
        /// Destination address.
        #[arg(long)]
        dst: Ipv4Addr,
        /// Number of flows (UDP source ports from --sport).
        #[arg(long, default_value_t = 1024)]
        flows: u16,
        /// First UDP source port.
        #[arg(long, default_value_t = 1024)]
        sport: u16,
        /// Send each flow to its own destination port (= its source port) instead of the
        /// benchmark port: a port scan / unmapped-traffic flood of DST.
        #[arg(long)]
        vary_dport: bool,
        /// Source addresses SRC, SRC+1, ... (this many), one per frame in turn: with more
        /// than one, each of the first SRC_HOSTS * FLOWS frames is a new flow.
        #[arg(long, default_value_t = 1)]
        src_hosts: u32,
        /// Attach the generator to this interface instead of DEV while it runs (when DEV
        /// carries another XDP program: a test run of an unattached program stalls every
        /// XDP test run on the host, xgw's transmit path included).
        #[arg(long)]
        attach_dev: Option<String>,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Stop after this many frames.
        #[arg(long, default_value_t = u64::MAX)]
        max_frames: u64,
        /// Send at most this many frames per second (paced every 0.5 ms); default: as fast
        /// as the core allows.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Attach a program to DEV with a bpf_link pinned in PIN (a bpffs directory); remove
    /// PIN/link to detach.
    Attach {
        /// Interface.
        #[arg(long)]
        dev: String,
        /// sink (count and drop benchmark frames), pass (XDP_PASS), fwd (bpf_fib_lookup
        /// forwarder).
        #[arg(long)]
        role: String,
        /// bpffs directory for the pins.
        #[arg(long)]
        pin: PathBuf,
    },
    /// Print the number of frames the sink pinned in PIN has counted.
    Count {
        /// bpffs directory of the sink's pins.
        #[arg(long)]
        pin: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum RouteCmd {
    /// Print the route the running router uses for ADDR (JSON keys: dst, prefix, via, dev,
    /// type); with --config, the route the configuration FILE gives, without a router.
    Get {
        /// Configuration file (TOML): answer from it instead of the running router.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Destination address.
        addr: Ipv4Addr,
        /// For a multipath route, the flow's source address (shows the gateway it takes).
        #[arg(long)]
        from: Option<Ipv4Addr>,
        /// The flow's protocol: tcp, udp, icmp or a number.
        #[arg(long)]
        ipproto: Option<String>,
        /// The flow's source port.
        #[arg(long)]
        sport: Option<u16>,
        /// The flow's destination port.
        #[arg(long)]
        dport: Option<u16>,
    },
    /// Add a route to the running router at once: `route add PREFIX via ADDR [dev PORT]`,
    /// `route add PREFIX dev PORT`, `route add PREFIX blackhole|unreachable|prohibit`.
    Add {
        /// `A.B.C.D/N`, host bits clear.
        prefix: String,
        /// `via ADDR`, `dev PORT`, `blackhole`, `unreachable` or `prohibit`.
        #[arg(num_args = 1.., required = true)]
        target: Vec<String>,
    },
    /// Remove a route added with `route add`.
    Del {
        /// The route's prefix.
        prefix: String,
    },
}

#[derive(Subcommand, Debug)]
enum NeighborCmd {
    /// Forget the neighbours of every port, or `dev PORT`'s; they are resolved again on
    /// the next packet.
    Flush {
        /// `dev PORT`.
        #[arg(num_args = 0..=2)]
        dev: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NatCmd {
    /// Delete sessions.
    Del {
        #[command(subcommand)]
        what: NatDelCmd,
    },
}

#[derive(Subcommand, Debug)]
enum NatDelCmd {
    /// Delete every session of an inside endpoint (and its mapping with the last one).
    Session {
        /// Inside ADDR:PORT.
        #[arg(long)]
        inside: String,
        /// tcp, udp or icmp (default: all).
        #[arg(long)]
        proto: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ShowCmd {
    /// Ports: facts, traffic, AF_XDP statistics per queue.
    Interfaces,
    /// Every non-zero drop and punt reason, and the control plane's counters.
    Errors {
        /// One column per worker.
        #[arg(long)]
        per_worker: bool,
    },
    /// Per worker: loops, packets, mean burst, busy share.
    Runtime,
    /// Routes: all, those inside PREFIX, or `summary`.
    Route {
        /// `A.B.C.D/N`, or `summary`.
        prefix: Option<String>,
    },
    /// The ARP cache.
    Neighbors,
    /// NAT state.
    Nat {
        #[command(subcommand)]
        what: ShowNatCmd,
    },
    /// The running configuration, its generation and the last reload.
    Config,
    /// The packets `xgw trace add` traced: input, verdict per stage, rewrite, output.
    Trace,
}

#[derive(Subcommand, Debug)]
enum ShowNatCmd {
    /// Sessions (streamed).
    Sessions {
        /// tcp, udp or icmp.
        #[arg(long)]
        proto: Option<String>,
        /// Inside ADDR or ADDR:PORT.
        #[arg(long)]
        inside: Option<String>,
        /// External ADDR or ADDR:PORT.
        #[arg(long)]
        external: Option<String>,
        /// At most N sessions.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Sessions by protocol and state, table fill, ports in use, ...
    Summary,
    /// Endpoint-independent mappings and port forwards.
    Mappings,
}

#[derive(Subcommand, Debug)]
enum ClearCmd {
    /// Count `show errors|interfaces|runtime` from zero again (metrics are not reset).
    Counters,
    /// Stop tracing and forget the traced packets.
    Trace,
}

#[derive(Subcommand, Debug)]
enum TraceCmd {
    /// Trace the next COUNT packets received (1..=1024), on one port or any; read them with
    /// `xgw show trace`. Replaces an earlier trace.
    Add {
        /// Packets to trace.
        count: u32,
        /// Only packets received on this port.
        #[arg(long)]
        port: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_SOCKET));
    match cli.cmd {
        Cmd::Check { config } => match config::load(&config) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} interfaces, {} routes)",
                    config.display(),
                    cfg.interfaces.len(),
                    cfg.routes.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Route {
            cmd:
                RouteCmd::Get {
                    config,
                    addr,
                    from,
                    ipproto,
                    sport,
                    dport,
                },
        } => match config {
            Some(config) => route_get(&config, addr, cli.json),
            None => ask(
                &socket,
                cli.json,
                Verb::RouteGet {
                    addr: addr.to_string(),
                    flow: xgw::api::proto::FlowSpec {
                        from: from.map(|a| a.to_string()),
                        ipproto,
                        sport,
                        dport,
                    },
                },
            ),
        },
        Cmd::Route {
            cmd: RouteCmd::Add { prefix, target },
        } => match route_add_verb(prefix, &target) {
            Ok(v) => ask(&socket, cli.json, v),
            Err(e) => {
                eprintln!("xgw: route add: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Route {
            cmd: RouteCmd::Del { prefix },
        } => ask(&socket, cli.json, Verb::RouteDel { prefix }),
        Cmd::Neighbor {
            cmd: NeighborCmd::Flush { dev },
        } => match dev.as_slice() {
            [] => ask(&socket, cli.json, Verb::NeighborFlush { dev: None }),
            [k, d] if k == "dev" => ask(
                &socket,
                cli.json,
                Verb::NeighborFlush {
                    dev: Some(d.clone()),
                },
            ),
            _ => {
                eprintln!("xgw: neighbor flush: expected nothing or `dev PORT`");
                ExitCode::FAILURE
            }
        },
        Cmd::Nat {
            cmd:
                NatCmd::Del {
                    what: NatDelCmd::Session { inside, proto },
                },
        } => ask(&socket, cli.json, Verb::NatDelSession { inside, proto }),
        Cmd::Show { what } => ask(&socket, cli.json, show_verb(what)),
        Cmd::Reload => ask(&socket, cli.json, Verb::Reload),
        Cmd::Clear {
            what: ClearCmd::Counters,
        } => ask(&socket, cli.json, Verb::ClearCounters),
        Cmd::Clear {
            what: ClearCmd::Trace,
        } => ask(&socket, cli.json, Verb::ClearTrace),
        Cmd::Trace {
            cmd: TraceCmd::Add { count, port },
        } => ask(&socket, cli.json, Verb::TraceAdd { count, port }),
        Cmd::Run {
            config,
            generic,
            queues,
        } => run(&config, generic, queues, cli.socket),
        Cmd::Loadgen { cmd } => loadgen(cmd),
    }
}

#[cfg(feature = "xdp")]
fn loadgen(cmd: LoadgenCmd) -> ExitCode {
    use xgw::io::loadgen;
    let result = match cmd {
        LoadgenCmd::Gen {
            dev,
            dst_mac,
            src,
            dst,
            flows,
            sport,
            vary_dport,
            src_hosts,
            attach_dev,
            secs,
            max_frames,
            rate,
        } => dst_mac
            .parse()
            .map_err(|_| anyhow::anyhow!("bad MAC address {dst_mac:?}"))
            .and_then(|dst_mac| {
                let spec = loadgen::GenSpec {
                    dst_mac,
                    src,
                    dst,
                    flows,
                    sport_base: sport,
                    vary_dport,
                    src_hosts,
                    attach: attach_dev,
                };
                let d = std::time::Duration::from_secs_f64(secs.max(0.0));
                Ok(loadgen::generate(&dev, &spec, d, max_frames, rate)?)
            })
            .map(|r| {
                let v = serde_json::json!({
                    "frames": r.frames,
                    "secs": r.elapsed.as_secs_f64(),
                });
                println!("{v}");
            }),
        LoadgenCmd::Attach { dev, role, pin } => role
            .parse()
            .map_err(anyhow::Error::msg)
            .and_then(|role| Ok(loadgen::attach(&dev, role, &pin)?)),
        LoadgenCmd::Count { pin } => loadgen::sink_count(&pin)
            .map(|n| println!("{n}"))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgw loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "xdp"))]
fn loadgen(_: LoadgenCmd) -> ExitCode {
    eprintln!("xgw was built without the `xdp` feature: `loadgen` is unavailable");
    ExitCode::FAILURE
}

/// `route add PREFIX` and its iproute2-style words: `via ADDR`, `dev PORT`, `blackhole`,
/// `unreachable`, `prohibit`.
fn route_add_verb(prefix: String, words: &[String]) -> Result<Verb, String> {
    let (mut via, mut dev, mut kind) = (None, None, None);
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let slot = match w.as_str() {
            "via" => &mut via,
            "dev" => &mut dev,
            "blackhole" | "unreachable" | "prohibit" => {
                if kind.replace(w.clone()).is_some() {
                    return Err("more than one route type".into());
                }
                continue;
            }
            other => {
                return Err(format!(
                    "unexpected `{other}` (expected via ADDR, dev PORT, blackhole, unreachable or prohibit)"
                ))
            }
        };
        let v = it.next().ok_or_else(|| format!("`{w}` needs a value"))?;
        if slot.replace(v.clone()).is_some() {
            return Err(format!("`{w}` given twice"));
        }
    }
    Ok(Verb::RouteAdd {
        prefix,
        via,
        dev,
        kind,
    })
}

fn show_verb(what: ShowCmd) -> Verb {
    match what {
        ShowCmd::Interfaces => Verb::ShowInterfaces,
        ShowCmd::Errors { per_worker } => Verb::ShowErrors { per_worker },
        ShowCmd::Runtime => Verb::ShowRuntime,
        ShowCmd::Route { prefix } if prefix.as_deref() == Some("summary") => Verb::ShowRouteSummary,
        ShowCmd::Route { prefix } => Verb::ShowRoute { prefix },
        ShowCmd::Neighbors => Verb::ShowNeighbors,
        ShowCmd::Nat {
            what:
                ShowNatCmd::Sessions {
                    proto,
                    inside,
                    external,
                    limit,
                },
        } => Verb::ShowNatSessions(SessionFilter {
            proto,
            inside,
            external,
            limit,
        }),
        ShowCmd::Nat {
            what: ShowNatCmd::Summary,
        } => Verb::ShowNatSummary,
        ShowCmd::Nat {
            what: ShowNatCmd::Mappings,
        } => Verb::ShowNatMappings,
        ShowCmd::Config => Verb::ShowConfig,
        ShowCmd::Trace => Verb::ShowTrace,
    }
}

/// Send `verb` to the running router and print its answer (exit 1 with the server's
/// message if refused).
fn ask(socket: &std::path::Path, json: bool, verb: Verb) -> ExitCode {
    match client::call(socket, verb.clone()) {
        Ok(a) => {
            if json {
                let v = match a {
                    client::Answer::Result(v) => v,
                    client::Answer::Items { items, .. } => serde_json::Value::Array(items),
                };
                println!("{v}");
            } else {
                print!("{}", render::render(&verb, &a));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xgw: {e}");
            ExitCode::FAILURE
        }
    }
}

fn route_get(path: &std::path::Path, addr: Ipv4Addr, json: bool) -> ExitCode {
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let routes = Routes::from_config(&cfg);
    let Some(r) = routes.get(addr) else {
        eprintln!("{addr}: no route (network unreachable)");
        return ExitCode::FAILURE;
    };
    let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
    let owner = cfg
        .interfaces
        .iter()
        .find(|i| i.addresses.iter().any(|a| a.address() == addr))
        .map(|i| i.name.clone());
    let v = route_json(addr, &r, &names, owner);
    if json {
        println!("{v}");
    } else {
        let verb = Verb::RouteGet {
            addr: addr.to_string(),
            flow: Default::default(),
        };
        print!("{}", render::render(&verb, &client::Answer::Result(v)));
    }
    ExitCode::SUCCESS
}

#[cfg(feature = "xdp")]
fn run(
    path: &std::path::Path,
    generic: bool,
    queues: Option<u32>,
    socket: Option<PathBuf>,
) -> ExitCode {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("XGW_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Mirror mode: the interfaces' addresses are the kernel's (read again on reload).
    let (cfg, kernel_addresses, kernel_addrs) = if cfg.kernel.mirror {
        let (all, addrs) = match xgw::io::netlink::kernel_addresses() {
            Ok((all, links)) => {
                let by = by_name(&all, &links);
                (all, by)
            }
            Err(e) => {
                eprintln!("xgw: reading the kernel's addresses: {e}");
                return ExitCode::FAILURE;
            }
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        match config::parse_with(&text, &path.display().to_string(), Some(&addrs)) {
            Ok(c) => (c, Some(addrs), all),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        (cfg, None, Vec::new())
    };
    match xgw::runtime::run(
        cfg,
        xgw::runtime::RunOptions {
            generic,
            queues,
            config_path: Some(path.to_path_buf()),
            socket,
            kernel_addresses,
            kernel_addrs,
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The kernel's addresses by interface name.
#[cfg(feature = "xdp")]
fn by_name(addrs: &[xgw::kernel::AddrMsg], links: &[(u32, String)]) -> config::KernelAddresses {
    let mut m = config::KernelAddresses::new();
    for a in addrs {
        if let Some((_, name)) = links.iter().find(|(i, _)| *i == a.ifindex) {
            m.entry(name.clone())
                .or_default()
                .push(xgw::wire::ipv4::Cidr::new(a.addr, a.len));
        }
    }
    m
}

#[cfg(not(feature = "xdp"))]
fn run(_: &std::path::Path, _: bool, _: Option<u32>, _: Option<PathBuf>) -> ExitCode {
    eprintln!("xgw was built without the `xdp` feature: `run` is unavailable");
    ExitCode::FAILURE
}
