//! `ethernet-input`: classify frames by destination MAC and EtherType.
//!
//! Uses: the frame bytes, `meta.rx_port`, our MAC from `snap.ports`.
//! Sets: nothing in the frame.
//! Next: `Punt(Arp)`; `Drop(Runt | NotForUs | L2Multicast | UnknownEtherType)`; IPv4 continues.

use super::{DropReason, LocalCounters, Meta, Next, PuntReason, Snapshot};
use crate::wire::ethernet::{self, EtherType, Frame};

pub(super) fn run(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    snap: &Snapshot,
    c: &mut LocalCounters,
) {
    let our_mac = snap.ports[usize::from(meta.rx_port)].mac;
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        let next = classify(f, our_mac);
        match next {
            Next::Continue => {}
            Next::Drop(r) => c.drop(r),
            Next::Punt(r) => c.punt(r),
            Next::Tx(_) => unreachable!("ethernet-input never transmits"),
        }
        meta.next[i] = next;
    }
}

#[inline]
fn classify(f: &[u8], our_mac: ethernet::MacAddr) -> Next {
    let Ok(frame) = Frame::new_checked(f) else {
        return Next::Drop(DropReason::Runt);
    };
    let dst = frame.dst_addr();
    match frame.ethertype() {
        EtherType::Ipv4 => {
            if dst == our_mac {
                Next::Continue
            } else if dst.is_multicast() {
                // RFC 1812 §5.3.4: a router must not forward a link-layer broadcast.
                Next::Drop(DropReason::L2Multicast)
            } else {
                Next::Drop(DropReason::NotForUs)
            }
        }
        EtherType::Arp => {
            if dst == our_mac || dst.is_broadcast() {
                Next::Punt(PuntReason::Arp)
            } else {
                Next::Drop(DropReason::NotForUs)
            }
        }
        _ => Next::Drop(DropReason::UnknownEtherType),
    }
}
