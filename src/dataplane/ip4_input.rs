//! `ip4-input`: RFC 1812 §5.2.2 header validation and §5.3.7 martian filtering.
//!
//! Uses: the IPv4 header at offset 14.
//! Sets: nothing.
//! Next: `Drop(Truncated | BadVersion | BadHeaderLen | BadTotalLen | BadChecksum |
//! MartianSource | MartianDestination | NotForwardable)`; valid packets continue.
//! `VERIFY_CSUM = false` skips the checksum for NICs that verified it (R4).

use super::{DropReason, LocalCounters, Meta, Next};
use crate::wire::{
    ethernet::HEADER_LEN as ETH_LEN,
    ipv4::{self, Packet},
    Error,
};

pub(super) fn run<const VERIFY_CSUM: bool>(
    frames: &mut [&mut [u8]],
    meta: &mut Meta,
    c: &mut LocalCounters,
) {
    for (i, f) in frames.iter().enumerate().take(meta.len) {
        if meta.next[i] != Next::Continue {
            continue;
        }
        if let Some(r) = check::<VERIFY_CSUM>(&f[ETH_LEN..]) {
            c.drop(r);
            meta.next[i] = Next::Drop(r);
        }
    }
}

#[inline]
fn check<const VERIFY_CSUM: bool>(l3: &[u8]) -> Option<DropReason> {
    let pkt = Packet::new_unchecked(l3);
    let valid = if VERIFY_CSUM {
        pkt.validate()
    } else {
        pkt.validate_lengths()
    };
    if let Err(e) = valid {
        return Some(cold_invalid(e));
    }
    let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
    if ipv4::is_martian_source(src) {
        return Some(DropReason::MartianSource);
    }
    if ipv4::is_martian_destination(dst) {
        return Some(DropReason::MartianDestination);
    }
    if dst.is_multicast() || dst.is_broadcast() {
        return Some(DropReason::NotForwardable);
    }
    None
}

#[cold]
#[inline(never)]
fn cold_invalid(e: Error) -> DropReason {
    match e {
        Error::BadVersion => DropReason::BadVersion,
        Error::BadHeaderLen => DropReason::BadHeaderLen,
        Error::BadTotalLen => DropReason::BadTotalLen,
        Error::BadChecksum => DropReason::BadChecksum,
        _ => DropReason::Truncated,
    }
}
