//! `punt`: copy punted frames to the control plane over a bounded queue.
//!
//! Uses: `meta.next[i] == Punt(_)`, `meta.tx_port`, `meta.nh_addr`.
//! Sets: nothing in the frame (it is recycled after the copy).
//! Next: unchanged; a full queue turns the punt into `Drop(PuntQueueFull)` (counted,
//! never blocks — VPP's congestion drop).

use std::net::Ipv4Addr;

use crossbeam::channel::{Sender, TrySendError};

use super::{DropReason, LocalCounters, Meta, Next, Punt};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    tx: &Sender<Punt>,
    c: &mut LocalCounters,
) {
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        if let Next::Punt(reason) = meta.next[i] {
            send(f, i, reason, meta, tx, c);
        }
    }
}

#[cold]
#[inline(never)]
fn send(
    f: &[u8],
    i: usize,
    reason: super::PuntReason,
    meta: &mut Meta,
    tx: &Sender<Punt>,
    c: &mut LocalCounters,
) {
    let punt = Punt {
        reason,
        rx_port: meta.rx_port,
        tx_port: meta.tx_port[i],
        next_hop: Ipv4Addr::from(meta.nh_addr[i]),
        frame: f.to_vec(),
    };
    match tx.try_send(punt) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            c.drop(DropReason::PuntQueueFull);
            meta.next[i] = Next::Drop(DropReason::PuntQueueFull);
        }
    }
}
