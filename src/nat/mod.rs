//! `nat`: NAT44 (NAPT) state and translation. Depends on `wire` (and `ahash`); no locks, no
//! I/O, no other crate module.
//!
//! - [`fast`]: the fast path's read-only view ([`fast::NatFast`]) and the one rule for
//!   "does the NAT handle this packet".
//! - [`policy`]: the NAT policy as a sans-I/O state machine — mappings, filtering, the SYN
//!   hold, virtual reassembly, ICMP errors, expiry — the only writer of the session table.
//! - [`log`]: the NAT event log's events and line formats (RFC 5424 as VPP, JSON).
//! - [`flow`]: flow keys and rewrites (what a session changes in a packet).
//! - [`table`]: the session table — written only by the control thread, read lock-free by
//!   every worker (seqlock per slot); the answer to DESIGN's "NAT and multiple queues": a
//!   shared table is correct whichever worker a reply arrives on.
//! - [`ports`]: external address/port allocation (preservation, parity, range, paired
//!   pooling, RFC 6056 randomisation, 120 s quarantine).
//! - [`portmap`]: which external TCP/UDP ports have a mapping (lets workers drop inbound
//!   traffic that no filtering mode could admit).
//! - [`translate`]: byte-level rewriting with incremental checksums, ICMP errors included.
//! - [`tcp`]: the RFC 7857 §2 / RFC 6146 TCP session state machine.

pub mod fast;
pub mod flow;
pub mod log;
pub mod policy;
pub mod portmap;
pub mod ports;
pub mod table;
pub mod tcp;
pub mod translate;
