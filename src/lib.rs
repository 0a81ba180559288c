//! xgw: a software IPv4 router (and, later, NAT gateway) with an AF_XDP fast path.
//!
//! Layers (DESIGN.md 6.2); an arrow means "may use":
//! ```text
//!   main ─► runtime ─► api ─► control ─► dataplane ─► {fib, neigh} ─► wire
//!              ├─► io (xsk, xdp, mem) ◄── dataplane (Verdict, BATCH only)
//!              └─► config ─► wire
//! ```
//! - [`wire`]: pure zero-copy packet views; `core` only.
//! - [`fib`]: LPM (poptrie); [`neigh`]: adjacencies and the ARP cache state machine.
//! - [`nat`]: NAT44 state, translation and policy (sans-I/O; `wire` and [`counter`] only).
//! - [`counter`]: counter declarations shared by every layer (depends on nothing).
//! - [`dataplane`]: the batched pipeline, sans-I/O, no locks/allocation/logging per packet.
//! - [`io`]: AF_XDP and XDP (the only `unsafe`), plus memory I/O for tests.
//! - [`control`]: the slow path (ARP, ICMP, fragmentation, snapshot publication).
//! - [`runtime`]: threads and the worker loop; [`config`]: TOML and validation.
//! - [`api`]: the control socket (protocol, the verbs' service, table renderers, server,
//!   client); reads counters and the NAT table lock-free, the rest through control jobs.

pub mod api;
pub mod config;
pub mod control;
pub mod counter;
pub mod dataplane;
pub mod fib;
pub mod io;
pub mod kernel;
pub mod nat;
pub mod neigh;
pub mod runtime;
pub mod stats;
pub mod wire;
