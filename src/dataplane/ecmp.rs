//! Equal-cost multipath: which member of a next-hop group a packet takes.
//!
//! A group's members are spread over a fixed table of [`BUCKETS`] buckets in proportion to
//! their weights; a packet takes the bucket its flow hash picks. The hash covers source,
//! destination and protocol, plus the ports of an unfragmented TCP, UDP or SCTP packet, so
//! every packet of a flow takes one member, and every fragment of a datagram too (a
//! fragmented packet is hashed without ports, the first fragment included). The seed is
//! per router and shared by its workers, so a flow takes the same member on any queue and
//! an outsider cannot aim flows at one member.
//!
//! When a member leaves (its port down, its neighbour failed), only its buckets are handed
//! to the members left, round-robin: the other flows keep their member (resilient hashing,
//! as the kernel's resilient nexthop groups).

use crate::wire::ipv4::Packet;

/// Buckets per group.
pub const BUCKETS: usize = 256;
/// Members per group at most.
pub const MAX_MEMBERS: usize = crate::config::MAX_PATHS;

/// The flow hash of the IPv4 packet `l3` (at least a 20-byte header; ports only when the
/// header says they are there).
#[inline]
pub fn flow_hash(l3: &[u8], seed: u64) -> u64 {
    let p = Packet::new_unchecked(l3);
    let src = u64::from(u32::from(p.src_addr()));
    let dst = u64::from(u32::from(p.dst_addr()));
    let proto = u64::from(l3[9]);
    let hl = usize::from(l3[0] & 0x0f) * 4;
    let ports = if !p.is_fragment() && matches!(proto, 6 | 17 | 132) && l3.len() >= hl + 4 {
        u64::from(u32::from_be_bytes([
            l3[hl],
            l3[hl + 1],
            l3[hl + 2],
            l3[hl + 3],
        ]))
    } else {
        0
    };
    mix(mix(seed ^ (src << 32 | dst)) ^ (proto << 32 | ports))
}

/// The splitmix64 finaliser: every input bit affects every output bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The bucket `hash` picks.
#[inline]
pub fn bucket(hash: u64) -> usize {
    // The high bits: the finaliser mixes them best.
    (hash >> 56) as usize % BUCKETS
}

/// The bucket table of a group with these member `weights` (1..=255 each, at most
/// [`MAX_MEMBERS`]): each bucket holds a member's position. Members with `live[k]` false
/// hold no bucket; their buckets go round-robin to the live ones, and every live member
/// keeps the buckets it has with everyone live. With no member live, the table is the
/// all-live one (the packets then meet the members' own failure handling).
pub fn buckets(weights: &[u8], live: &[bool]) -> Box<[u8]> {
    debug_assert!(!weights.is_empty() && weights.len() <= MAX_MEMBERS);
    let total: usize = weights.iter().map(|&w| usize::from(w.max(1))).sum();
    // Proportional shares with the remainders handed out in order (largest-remainder
    // would be fairer by a bucket; order keeps it simple and deterministic).
    let mut table = Vec::with_capacity(BUCKETS);
    let mut acc = 0usize;
    for (k, &w) in weights.iter().enumerate() {
        acc += usize::from(w.max(1));
        let end = acc * BUCKETS / total;
        while table.len() < end {
            table.push(k as u8);
        }
    }
    debug_assert_eq!(table.len(), BUCKETS);
    let alive: Vec<u8> = (0..weights.len())
        .filter(|&k| live.get(k).copied().unwrap_or(true))
        .map(|k| k as u8)
        .collect();
    if !alive.is_empty() && alive.len() < weights.len() {
        let mut next = 0;
        for b in &mut table {
            if !live.get(usize::from(*b)).copied().unwrap_or(true) {
                *b = alive[next % alive.len()];
                next += 1;
            }
        }
    }
    table.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn weights_are_honoured_in_the_table() {
        let t = buckets(&[1, 1], &[true, true]);
        assert_eq!(t.iter().filter(|&&m| m == 0).count(), 128);
        let t = buckets(&[3, 1], &[true, true]);
        assert_eq!(t.iter().filter(|&&m| m == 0).count(), 192);
        let t = buckets(&[1, 1, 1], &[true; 3]);
        let n: Vec<usize> = (0..3)
            .map(|k| t.iter().filter(|&&m| m == k).count())
            .collect();
        assert!(n.iter().all(|&c| (85..=86).contains(&c)), "{n:?}");
    }

    #[test]
    fn a_failed_member_moves_only_its_own_buckets() {
        let all = buckets(&[1, 1, 1, 1], &[true; 4]);
        let three = buckets(&[1, 1, 1, 1], &[true, false, true, true]);
        for (a, b) in all.iter().zip(three.iter()) {
            assert_ne!(*b, 1, "the failed member holds no bucket");
            if *a != 1 {
                assert_eq!(a, b, "a live member's flows stay");
            }
        }
        // Its 64 buckets spread evenly over the three left.
        let n: Vec<usize> = [0u8, 2, 3]
            .iter()
            .map(|k| three.iter().filter(|&m| m == k).count())
            .collect();
        assert!(n.iter().all(|&c| (85..=86).contains(&c)), "{n:?}");
        // None live: the all-live table.
        assert_eq!(
            buckets(&[1, 1], &[false, false]),
            buckets(&[1, 1], &[true, true])
        );
    }

    #[test]
    fn flows_spread_and_each_stays_put() {
        let t = buckets(&[1, 1], &[true, true]);
        let mut per = [0usize; 2];
        for i in 0..10_000u32 {
            let p = udp(
                [198, 18, 0, 2],
                10_000 + (i % 50_000) as u16,
                [203, 0, 113, (i / 256) as u8],
                80,
                0,
            );
            let h = flow_hash(&p, 0x1234);
            assert_eq!(h, flow_hash(&p, 0x1234), "stable");
            per[usize::from(t[bucket(h)])] += 1;
        }
        // 10 000 flows over two equal members: each within 5% of half.
        assert!(per.iter().all(|&n| (4750..=5250).contains(&n)), "{per:?}");
    }

    #[test]
    fn fragments_of_a_datagram_hash_alike() {
        let first = udp([198, 18, 0, 2], 5000, [203, 0, 113, 1], 53, 0x2000); // MF
        let mut later = udp([198, 18, 0, 2], 0, [203, 0, 113, 1], 0, 0x00b9); // offset 185*8
        later[20..28].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]); // payload bytes
        assert_eq!(flow_hash(&first, 7), flow_hash(&later, 7));
        // Unfragmented, the ports count.
        let a = udp([198, 18, 0, 2], 5000, [203, 0, 113, 1], 53, 0x4000);
        let b = udp([198, 18, 0, 2], 5001, [203, 0, 113, 1], 53, 0x4000);
        assert_ne!(flow_hash(&a, 7), flow_hash(&b, 7));
        // Another seed, another hash.
        assert_ne!(flow_hash(&a, 7), flow_hash(&a, 8));
    }

    #[test]
    fn short_or_odd_headers_never_read_past_the_packet() {
        // Header length says 60 bytes, the packet has 28: no ports, no panic.
        let mut p = udp([198, 18, 0, 2], 1, [203, 0, 113, 1], 2, 0);
        p[0] = 0x4f;
        let _ = flow_hash(&p, 1);
        p.truncate(20);
        p[0] = 0x45;
        let _ = flow_hash(&p, 1);
    }
}
