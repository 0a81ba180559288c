//! `xgw` command line: `run`, `check`, `route get`. CLI → config → runtime, nothing else.

use std::{net::Ipv4Addr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use xgw::{config, control::routes::Routes, dataplane::NextHop};

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
