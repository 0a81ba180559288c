//! The Internet checksum: RFC 1071 one's-complement sum and RFC 1624 incremental update.
//!
//! Conventions (as in smoltcp): [`sum`], [`fold`], [`data`], [`combine`] and [`pseudo_header`]
//! return the one's-complement **sum**, not complemented. A header's checksum field holds the
//! complement of the sum taken with the field zeroed (`!data(header)`), and a header verifies when
//! `data(header) == 0xFFFF` (RFC 1071 §1, step (3)).
//!
//! Zero has two one's-complement representations, `0x0000` (+0) and `0xFFFF` (−0). The sums here
//! use end-around carry, so a sum over data that contains any non-zero byte is never `0x0000`:
//! it is `0xFFFF` when it is congruent to zero. Hence a full recompute of a real header's
//! checksum is never `0xFFFF`; [`update_u16`], [`update_u32`] and [`ttl_decrement`] keep that
//! property (RFC 1624 §3).

use core::net::Ipv4Addr;

/// Partial one's-complement sum of `data` as big-endian 16-bit words (RFC 1071 §4.1).
///
/// An odd trailing byte is padded with a zero byte. The result is congruent (mod `0xFFFF`) to the
/// plain sum of the words and already folded to at most `0xFFFF`, so up to 65,537 partial sums can
/// be added in a `u32` before calling [`fold`]. It is zero only if every byte is zero. Partial
/// sums of pieces combine correctly only if every piece but the last has an even length.
pub fn sum(data: &[u8]) -> u32 {
    // 8 bytes per step as two big-endian u32s into one u64: 2^16 ≡ 1 (mod 0xFFFF), so a 32-bit
    // word is congruent to the sum of its two 16-bit halves (RFC 1071 §2 (C), parallel
    // summation). Each step adds < 2^33, so the u64 cannot overflow below 2^31
    // steps (16 GiB), and no carry handling is needed in the loop.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let hi = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let lo = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        acc += u64::from(hi) + u64::from(lo);
    }
    // 0..=7 trailing bytes, zero-padded on the right: also the RFC 1071 odd-byte rule.
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]));
    acc += u64::from(u32::from_be_bytes([tail[4], tail[5], tail[6], tail[7]]));
    u32::from(fold64(acc))
}

/// Folds the carries of a 32-bit partial sum into 16 bits (end-around carry), not complemented.
pub fn fold(sum: u32) -> u16 {
    // Two rounds suffice: after the first the value is at most 0x1_FFFE.
    let s = (sum & 0xFFFF) + (sum >> 16);
    let s = (s & 0xFFFF) + (s >> 16);
    (s & 0xFFFF) as u16
}

/// Folds the carries of a 64-bit partial sum into 16 bits (end-around carry), not complemented.
pub fn fold64(sum: u64) -> u16 {
    let s = (sum & 0xFFFF_FFFF) + (sum >> 32);
    let s = (s & 0xFFFF_FFFF) + (s >> 32);
    let s = (s & 0xFFFF) + (s >> 16);
    let s = (s & 0xFFFF) + (s >> 16);
    (s & 0xFFFF) as u16
}

/// One's-complement sum of `data`, folded to 16 bits and not complemented (smoltcp's `data`).
pub fn data(data: &[u8]) -> u16 {
    fold(sum(data))
}

/// One's-complement addition of already folded sums.
pub fn combine(checksums: &[u16]) -> u16 {
    let mut acc: u64 = 0;
    for &c in checksums {
        acc += u64::from(c);
    }
    fold64(acc)
}

/// Folded, not complemented, sum of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1).
///
/// `length` is the transport length (UDP length or TCP segment length); it is summed as a 32-bit
/// value, which equals the 16-bit field for every valid IPv4 length.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let s = src.to_bits();
    let d = dst.to_bits();
    let acc = u64::from(s >> 16)
        + u64::from(s & 0xFFFF)
        + u64::from(d >> 16)
        + u64::from(d & 0xFFFF)
        + u64::from(protocol)
        + u64::from(length >> 16)
        + u64::from(length & 0xFFFF);
    fold64(acc)
}

/// Complement of a non-empty one's-complement sum given unfolded in `s`.
///
/// `s == 0` can only come from `~HC + ~m + m'` with all three terms zero, i.e. a sum congruent to
/// zero; a full recompute represents that as `0xFFFF` (−0), whose complement is `0x0000`.
fn complement_nonzero(s: u64) -> u16 {
    if s == 0 {
        0x0000
    } else {
        !fold64(s)
    }
}

/// New checksum after a 16-bit word of the covered data changes from `old` to `new`.
///
/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`. Returns `hc` unchanged when `old == new`
/// (RFC 1624 erratum 4782). For a checksum field computed as `!data(..)` over data with a non-zero
/// word, the result equals a full recompute and is never `0xFFFF`. For UDP the caller must skip a
/// zero (absent) checksum and send a resulting `0x0000` as `0xFFFF` (RFC 768).
pub fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    if old == new {
        return hc;
    }
    // RFC 1624 eqn. 3, in 64-bit arithmetic with the carries folded at the end (erratum 5865).
    complement_nonzero(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

/// New checksum after a 32-bit field (e.g. an IPv4 address) changes from `old` to `new`.
///
/// RFC 1624 eqn. 3 applied to both 16-bit halves at once; same guarantees as [`update_u16`].
pub fn update_u32(hc: u16, old: u32, new: u32) -> u16 {
    if old == new {
        return hc;
    }
    let not_old = !old;
    complement_nonzero(
        u64::from(!hc)
            + u64::from(not_old >> 16)
            + u64::from(not_old & 0xFFFF)
            + u64::from(new >> 16)
            + u64::from(new & 0xFFFF),
    )
}

/// IPv4 header checksum after decrementing the TTL by one (RFC 1624 eqn. 3, RFC 1812 §5.3.1).
///
/// TTL is the high byte of the TTL/protocol word, so the word `m` becomes `m' = m - 0x0100` and
/// `~m + m' = 0xFEFF` whatever the protocol, provided TTL ≥ 1. The result equals a full recompute
/// for every header whose checksum verifies (including the non-canonical `0xFFFF` encoding of a
/// zero checksum) and is never `0xFFFF`. This is VPP's `csum += 0x0100; csum += csum >= 0xffff`.
pub fn ttl_decrement(hc: u16) -> u16 {
    // `!hc + 0xFEFF` is never zero, so the `complement_nonzero` corner case cannot arise.
    !fold(u32::from(!hc) + 0xFEFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4;
    use crate::wire::test_rng::Rng;

    /// Reference RFC 1071 sum: one 16-bit word at a time into a wide accumulator.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u64::from);
            acc += hi | lo;
        }
        while acc > 0xFFFF {
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        u16::try_from(acc).unwrap()
    }

    /// RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
    #[test]
    fn rfc1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(data(&bytes[..7]), naive(&bytes[..7]));
    }

    #[test]
    fn sum_matches_naive_random() {
        let mut rng = Rng::new(1);
        let mut buf = [0u8; 300];
        for _ in 0..20_000 {
            rng.fill(&mut buf);
            // Random start (unaligned slices) and random length, odd lengths included.
            let start = rng.below(16);
            let len = rng.below(buf.len() - start + 1);
            let slice = &buf[start..start + len];
            let s = sum(slice);
            assert!(s <= 0xFFFF);
            assert_eq!(fold(s), naive(slice), "len {len}");
            assert_eq!(data(slice), naive(slice));
        }
    }

    #[test]
    fn sum_edges() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0; 13]), 0);
        assert_eq!(data(&[0xFF]), 0xFF00);
        // A sum congruent to zero over non-zero data is −0 (0xFFFF), never +0.
        assert_eq!(data(&[0xFF, 0xFF]), 0xFFFF);
        assert_eq!(data(&[0x12, 0x34, 0xED, 0xCB]), 0xFFFF);
        let big = [0xFFu8; 65_535];
        assert_eq!(data(&big), naive(&big));
        assert_eq!(fold(0xFFFF_FFFF), 0xFFFF);
        assert_eq!(fold(0x0001_FFFF), 0x0001);
        assert_eq!(fold64(u64::MAX), 0xFFFF);
        assert_eq!(fold64(0x0001_0000_0000), 0x0001);
        assert_eq!(combine(&[0xFFFF, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x1234, 0x4321]), 0x5555);
        assert_eq!(combine(&[]), 0);
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(198, 18, 0, 2);
        let dst = Ipv4Addr::new(203, 0, 113, 9);
        let bytes = [198, 18, 0, 2, 203, 0, 113, 9, 0, 17, 0x01, 0x2c];
        assert_eq!(pseudo_header(src, dst, 17, 300), data(&bytes));
    }

    #[test]
    fn update_edge_cases() {
        // Erratum 4782's example: unchanged field keeps the checksum.
        assert_eq!(update_u16(0x0000, 0x5555, 0x5555), 0x0000);
        assert_eq!(update_u16(0xFFFF, 0x5555, 0x5555), 0xFFFF);
        assert_eq!(update_u32(0x1234, 7, 7), 0x1234);
        // ~HC + ~m + m' == 0: the sum is congruent to zero, recompute gives +0.
        assert_eq!(update_u16(0xFFFF, 0xFFFF, 0x0000), 0x0000);
        assert_eq!(update_u32(0xFFFF, 0xFFFF_FFFF, 0), 0x0000);
        // Never −0 out of an update whose input came from a recompute.
        for hc in 0..=0xFFFEu16 {
            assert_ne!(update_u16(hc, 0x1234, 0x4321), 0xFFFF);
            assert_ne!(ttl_decrement(hc), 0xFFFF);
        }
    }

    /// Header bytes 198.18.0.2 > 198.19.0.2, ICMP, with the given TTL and ident.
    fn header(ttl: u8, ident: u16) -> [u8; 20] {
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0x00, 0x00, 0x40, 0x00, 0x00, 0x01, 0x00, 0x00, 198, 18, 0, 2,
            198, 19, 0, 2,
        ];
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        h[8] = ttl;
        h
    }

    /// Exhaustive over every checksum value and every TTL: `ttl_decrement` and `update_u16`
    /// equal the arithmetic full recompute. The arithmetic mirrors `fill_checksum` (sum of all
    /// words with the checksum zeroed, complemented), which `ttl_decrement_matches_fill_checksum`
    /// checks with real headers.
    #[test]
    fn ttl_decrement_exhaustive() {
        let proto = 1u32;
        // Sum of all words except ident, TTL/protocol and checksum.
        let mut rest = header(0, 0);
        rest[8] = 0;
        rest[9] = 0;
        let other = u32::from(data(&rest));
        for ttl in 1..=255u32 {
            let old_word = (ttl << 8) | proto;
            let new_word = ((ttl - 1) << 8) | proto;
            let mut seen = [false; 0x1_0000];
            for ident in 0..=0xFFFFu32 {
                let hc = !fold(other + ident + old_word);
                let expect = !fold(other + ident + new_word);
                let m = u16::try_from(old_word).unwrap();
                let m2 = u16::try_from(new_word).unwrap();
                assert_eq!(ttl_decrement(hc), expect, "ttl {ttl} hc {hc:#06x}");
                assert_eq!(update_u16(hc, m, m2), expect, "ttl {ttl} hc {hc:#06x}");
                seen[usize::from(hc)] = true;
                if hc == 0 {
                    // The non-canonical −0 encoding also verifies; it must decrement correctly.
                    assert_eq!(ttl_decrement(0xFFFF), expect);
                    assert_eq!(update_u16(0xFFFF, m, m2), expect);
                    seen[0xFFFF] = true;
                }
            }
            assert!(
                seen.iter().all(|&s| s),
                "every checksum value covered for ttl {ttl}"
            );
        }
    }

    /// The same property with real headers and `ipv4::Packet::fill_checksum`: every ident (hence
    /// every checksum value) for several TTLs, then random headers.
    #[test]
    fn ttl_decrement_matches_fill_checksum() {
        fn check(buf: &mut [u8; 20]) {
            let mut p = ipv4::Packet::new_unchecked(&mut buf[..]);
            p.fill_checksum();
            let ttl = p.ttl();
            let word = u16::from_be_bytes([ttl, u8::from(p.protocol())]);
            let mut hcs = [p.checksum(), 0];
            let mut n = 1;
            if hcs[0] == 0 {
                // −0 is a valid encoding too.
                p.set_checksum(0xFFFF);
                assert!(p.verify_checksum());
                hcs[1] = 0xFFFF;
                n = 2;
            }
            p.set_ttl(ttl - 1);
            p.fill_checksum();
            let expect = p.checksum();
            for &hc in &hcs[..n] {
                assert_eq!(ttl_decrement(hc), expect, "hc {hc:#06x} ttl {ttl}");
                assert_eq!(update_u16(hc, word, word - 0x0100), expect);
            }
            assert!(p.verify_checksum());
        }
        for ttl in [2u8, 3, 64, 128, 255] {
            for ident in 0..=0xFFFF {
                check(&mut header(ttl, ident));
            }
        }
        let mut rng = Rng::new(2);
        for _ in 0..200_000 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h[0] = 0x45;
            h[8] = h[8].max(1);
            check(&mut h);
        }
    }

    #[test]
    fn update_matches_recompute_random() {
        let mut rng = Rng::new(3);
        let mut buf = [0u8; 64];
        for _ in 0..100_000 {
            rng.fill(&mut buf);
            // Even lengths: a 16-bit field sits at an even offset of a real header.
            let len = 2 * (2 + rng.below(31));
            let b = &mut buf[..len];
            // Checksum field at 0..2.
            b[0] = 0;
            b[1] = 0;
            let hc = !data(b);
            b[..2].copy_from_slice(&hc.to_be_bytes());
            if rng.below(2) == 0 {
                let at = 2 * (1 + rng.below(len / 2 - 1));
                let old = u16::from_be_bytes([b[at], b[at + 1]]);
                let new = match rng.below(4) {
                    0 => 0,
                    1 => 0xFFFF,
                    _ => u16::try_from(rng.next_u64() & 0xFFFF).unwrap(),
                };
                b[at..at + 2].copy_from_slice(&new.to_be_bytes());
                b[..2].fill(0);
                let expect = !data(b);
                // All-zero data is the one case where a recompute yields −0; not a real header.
                if b.iter().any(|&x| x != 0) {
                    assert_eq!(update_u16(hc, old, new), expect);
                }
            } else if len >= 6 {
                let at = 2 * (1 + rng.below(len / 2 - 2));
                let old = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                let new = u32::try_from(rng.next_u64() >> 32).unwrap();
                b[at..at + 4].copy_from_slice(&new.to_be_bytes());
                b[..2].fill(0);
                let expect = !data(b);
                if b.iter().any(|&x| x != 0) {
                    assert_eq!(update_u32(hc, old, new), expect);
                }
            }
        }
    }

    /// NAT-style rewrite: change the source address of an IPv4 header and compare with
    /// `fill_checksum`.
    #[test]
    fn update_u32_address_matches_fill_checksum() {
        let mut rng = Rng::new(4);
        for _ in 0..50_000 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h[0] = 0x45;
            let mut p = ipv4::Packet::new_unchecked(&mut h[..]);
            p.fill_checksum();
            let hc = p.checksum();
            let old = p.src_addr();
            let new = Ipv4Addr::from(u32::try_from(rng.next_u64() >> 32).unwrap());
            p.set_src_addr(new);
            p.fill_checksum();
            assert_eq!(update_u32(hc, old.to_bits(), new.to_bits()), p.checksum());
        }
    }
}
