//! `runtime`: the composition root. Opens the devices, loads the XDP program, creates one
//! worker per queue id (each with one UMEM shared by its sockets on every port), starts the
//! control thread and handles signals.

#[cfg(feature = "xdp")]
mod notify;
pub mod testbed;
pub mod worker;

#[cfg(feature = "xdp")]
mod run;
#[cfg(feature = "xdp")]
pub use run::{run, RunOptions};

use crate::{
    config::ValidConfig,
    dataplane::{
        punt::{ClassPolicy, PuntPolicy},
        PortInfo,
    },
    wire::ethernet,
};

/// The workers' exception-path policy from `[punt]`, with buffers for the largest frame
/// the ports carry (Ethernet header, an 802.1Q tag and the largest MTU).
pub(crate) fn punt_policy(cfg: &ValidConfig, ports: &[PortInfo]) -> PuntPolicy {
    let mtu = ports
        .iter()
        .map(|p| usize::from(p.mtu))
        .max()
        .unwrap_or(1500);
    PuntPolicy {
        classes: cfg.punt.classes.map(|c| ClassPolicy {
            rate: c.rate,
            burst: c.burst,
            queue: c.queue,
        }),
        buffer_len: ethernet::HEADER_LEN + 4 + mtu,
    }
}
