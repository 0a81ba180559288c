//! `xgw` command line: `run`, `check`, `route get`, and the benchmark's `loadgen` tools. CLI → config → runtime, nothing else.

use std::{net::Ipv4Addr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use xgw::{config, control::routes::Routes, dataplane::NextHop};

/// Large tables (FIB arrays, the NAT session table) on transparent huge pages.
#[global_allocator]
static ALLOC: xgw::io::hugealloc::HugeAlloc = xgw::io::hugealloc::HugeAlloc;

#[derive(Parser, Debug)]
#[command(name = "xgw", version, about = "IPv4 router with an AF_XDP fast path")]
struct Cli {
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
    /// Print the route the running router would choose for ADDR.
    Get {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Destination address.
        addr: Ipv4Addr,
        /// Print JSON (keys: dst, prefix, via, dev, type).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            cmd: RouteCmd::Get { config, addr, json },
        } => route_get(&config, addr, json),
        Cmd::Run {
            config,
            generic,
            queues,
        } => run(&config, generic, queues),
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
    let name = |p: u16| cfg.interfaces[usize::from(p)].name.clone();
    let owner = || {
        cfg.interfaces
            .iter()
            .find(|i| i.addresses.iter().any(|a| a.address() == addr))
            .map(|i| i.name.clone())
    };
    let (kind, via, dev) = match r.nexthop {
        NextHop::Via { gateway, port } => ("unicast", Some(gateway), Some(name(port))),
        NextHop::Connected { port } => ("unicast", None, Some(name(port))),
        NextHop::Local => ("local", None, owner()),
        NextHop::Broadcast { port } => ("broadcast", None, Some(name(port))),
        NextHop::Blackhole => ("blackhole", None, None),
        NextHop::Unreachable => ("unreachable", None, None),
    };
    if json {
        let v = serde_json::json!({
            "dst": addr.to_string(),
            "prefix": r.prefix.to_string(),
            "via": via.map(|v| v.to_string()),
            "dev": dev,
            "type": kind,
        });
        println!("{v}");
    } else {
        let mut s = format!("{addr}");
        if kind != "unicast" {
            s.push_str(&format!(" {kind}"));
        }
        if let Some(v) = via {
            s.push_str(&format!(" via {v}"));
        }
        if let Some(d) = dev {
            s.push_str(&format!(" dev {d}"));
        }
        s.push_str(&format!(" prefix {}", r.prefix));
        println!("{s}");
    }
    ExitCode::SUCCESS
}

#[cfg(feature = "xdp")]
fn run(path: &std::path::Path, generic: bool, queues: Option<u32>) -> ExitCode {
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
    match xgw::runtime::run(
        cfg,
        xgw::runtime::RunOptions {
            generic,
            queues,
            config_path: Some(path.to_path_buf()),
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "xdp"))]
fn run(_: &std::path::Path, _: bool, _: Option<u32>) -> ExitCode {
    eprintln!("xgw was built without the `xdp` feature: `run` is unavailable");
    ExitCode::FAILURE
}
