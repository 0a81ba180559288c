//! ICMP built on the slow path: errors (RFC 1812 §4.3.2), echo replies, and the token
//! bucket that rate-limits errors (§4.3.2.8).

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use crate::wire::{
    icmpv4::{self, Message},
    ipv4::{self, Packet, Protocol},
};

/// RFC 1812 §4.3.2.3: an ICMP error datagram should not exceed 576 bytes.
pub const MAX_ERROR_LEN: usize = 576;

/// Token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u32,
    burst: u32,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: f64::from(burst),
            last: None,
        }
    }

    /// Take a token if one is available at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * f64::from(self.rate)).min(f64::from(self.burst));
        }
        self.last = Some(now);
        if self.rate > 0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Time until the next token, for tests and logs.
    pub fn interval(&self) -> Duration {
        if self.rate == 0 {
            Duration::MAX
        } else {
            Duration::from_secs_f64(1.0 / f64::from(self.rate))
        }
    }
}

/// Per-destination slots of [`IcmpLimiter`] (direct-mapped: a destination that lands on a
/// slot taken by another starts with a full bucket, so the table's size bounds memory, never
/// what one destination gets).
const DEST_SLOTS: usize = 4096;

/// The ICMP error limits (RFC 1812 §4.3.2.8), checked in order:
/// - per destination (the original packet's source): `per_destination_rate` / `_burst`, so a
///   host flooding TTL=1 or unroutable packets, or a spoofed victim, gets a share and not the
///   whole global budget. Fragmentation needed is exempt here, as in Linux, because PMTUD
///   needs one per path and a flow that keeps sending too-big packets needs it repeated;
/// - a global bucket for fragmentation needed (code 4) of its own (`frag_needed_rate` /
///   `_burst`), so no flood of other errors can starve PMTUD;
/// - a global bucket (`rate` / `burst`) for every other error.
#[derive(Debug)]
pub struct IcmpLimiter {
    global: TokenBucket,
    frag_needed: TokenBucket,
    dest_rate: u32,
    dest_burst: u32,
    dests: Box<[(Ipv4Addr, TokenBucket)]>,
    key: u64,
}

/// Which limit refused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The destination's own share.
    Destination,
    /// The global bucket (of its kind).
    Global,
}

impl IcmpLimiter {
    /// Limits from `[icmp]`; `key` spreads destinations over the slots (random in production).
    pub fn new(cfg: &crate::config::IcmpConfig, key: u64) -> IcmpLimiter {
        let empty = (
            Ipv4Addr::UNSPECIFIED,
            TokenBucket::new(cfg.per_destination_rate, cfg.per_destination_burst),
        );
        IcmpLimiter {
            global: TokenBucket::new(cfg.rate, cfg.burst),
            frag_needed: TokenBucket::new(cfg.frag_needed_rate, cfg.frag_needed_burst),
            dest_rate: cfg.per_destination_rate,
            dest_burst: cfg.per_destination_burst,
            dests: vec![empty; DEST_SLOTS].into_boxed_slice(),
            key: key | 1,
        }
    }

    /// May an error of `kind` be sent to `dst` at `now`?
    pub fn allow(&mut self, now: Instant, kind: IcmpError, dst: Ipv4Addr) -> Result<(), Limited> {
        let pmtu = matches!(
            kind,
            IcmpError::Unreachable {
                code: icmpv4::dst_unreachable_code::FRAG_NEEDED,
                ..
            }
        );
        if pmtu {
            return if self.frag_needed.take(now) {
                Ok(())
            } else {
                Err(Limited::Global)
            };
        }
        let h = (u64::from(dst.to_bits()).wrapping_mul(self.key) >> 32) as usize % DEST_SLOTS;
        let slot = &mut self.dests[h];
        if slot.0 != dst {
            *slot = (dst, TokenBucket::new(self.dest_rate, self.dest_burst));
        }
        if !slot.1.take(now) {
            return Err(Limited::Destination);
        }
        if self.global.take(now) {
            Ok(())
        } else {
            Err(Limited::Global)
        }
    }
}

/// The kinds of ICMP error the router originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Time exceeded in transit (type 11 code 0).
    TtlExceeded,
    /// Destination unreachable with a code; `mtu` is used for code 4.
    Unreachable {
        /// ICMP code (`icmpv4::dst_unreachable_code`).
        code: u8,
        /// Next-hop MTU for fragmentation needed.
        mtu: u16,
    },
}

/// Why an error was not sent (RFC 1812 §4.3.2.7), for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// The original is malformed.
    Malformed,
    /// The original is itself an ICMP error.
    IcmpError,
    /// Non-initial fragment.
    Fragment,
    /// Link-layer or IP broadcast/multicast.
    Broadcast,
    /// Invalid source (martian, ours, or a subnet broadcast).
    BadSource,
}

/// Checks of RFC 1812 §4.3.2.7 that need only the packet; `is_bcast(a)` answers whether `a`
/// is a broadcast address of a connected subnet and `is_local(a)` whether it is ours.
pub fn may_send_error(
    l2_multicast: bool,
    ip: &[u8],
    is_bcast: impl Fn(Ipv4Addr) -> bool,
    is_local: impl Fn(Ipv4Addr) -> bool,
) -> Result<(), Suppressed> {
    let pkt = Packet::new_checked(ip).map_err(|_| Suppressed::Malformed)?;
    if l2_multicast {
        return Err(Suppressed::Broadcast);
    }
    let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
    if dst.is_broadcast() || dst.is_multicast() || is_bcast(dst) {
        return Err(Suppressed::Broadcast);
    }
    if src.is_unspecified() || ipv4::is_martian_source(src) || is_bcast(src) || is_local(src) {
        return Err(Suppressed::BadSource);
    }
    if pkt.frag_offset() != 0 {
        return Err(Suppressed::Fragment);
    }
    if pkt.protocol() == Protocol::Icmp {
        let payload = pkt.payload();
        // An ICMP message whose type we cannot read is not known to be an error: answer.
        if let Some(&t) = payload.first() {
            if Message::from(t).is_error() {
                return Err(Suppressed::IcmpError);
            }
        }
    }
    Ok(())
}

/// Build an IPv4 ICMP error about `orig` (the received IPv4 packet, header first),
/// from `src`. The quote is the original header plus as much payload as fits in
/// [`MAX_ERROR_LEN`] (RFC 1812 §4.3.2.3), cut at the original's total length.
pub fn build_error(kind: IcmpError, orig: &[u8], src: Ipv4Addr, ident: u16) -> Option<Vec<u8>> {
    let pkt = Packet::new_checked(orig).ok()?;
    let orig_len = usize::from(pkt.total_len());
    let quote_len = orig_len.min(MAX_ERROR_LEN - ipv4::HEADER_LEN - icmpv4::HEADER_LEN);
    let quote = &orig[..quote_len];
    let repr = match kind {
        IcmpError::TtlExceeded => icmpv4::Repr::TimeExceeded { code: 0, quote },
        IcmpError::Unreachable { code, mtu } => {
            let next_hop_mtu = if code == icmpv4::dst_unreachable_code::FRAG_NEEDED {
                mtu
            } else {
                0
            };
            icmpv4::Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quote,
            }
        }
    };
    Some(build_ip_icmp(&repr, src, pkt.src_addr(), ident))
}

/// Answer an echo request addressed to us: same ident, sequence and data, from the
/// address that was pinged. None if `ip` is not a valid echo request.
pub fn build_echo_reply(ip: &[u8], ident: u16) -> Option<Vec<u8>> {
    let pkt = Packet::new_checked(ip).ok()?;
    if pkt.protocol() != Protocol::Icmp || pkt.is_fragment() {
        return None;
    }
    let icmp = icmpv4::Packet::new_checked(pkt.payload()).ok()?;
    match icmpv4::Repr::parse(&icmp).ok()? {
        icmpv4::Repr::EchoRequest {
            ident: id,
            seq_no,
            data,
        } => {
            let reply = icmpv4::Repr::EchoReply {
                ident: id,
                seq_no,
                data,
            };
            Some(build_ip_icmp(&reply, pkt.dst_addr(), pkt.src_addr(), ident))
        }
        _ => None,
    }
}

fn build_ip_icmp(repr: &icmpv4::Repr<'_>, src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> Vec<u8> {
    let icmp_len = repr.buffer_len();
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::Icmp,
        payload_len: icmp_len,
        ttl: 64,
        ident,
        dont_frag: false,
        dscp_ecn: 0xc0, // CS6, network control (RFC 4594)
    };
    let mut buf = vec![0u8; ip.buffer_len() + icmp_len];
    let (h, p) = buf.split_at_mut(ipv4::HEADER_LEN);
    ip.emit(&mut Packet::new_unchecked(&mut h[..]));
    repr.emit(&mut icmpv4::Packet::new_unchecked(p));
    // `ipv4::Repr::emit` wrote total_len from payload_len and filled the checksum.
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv4::dst_unreachable_code as code;

    fn udp_packet(len: usize, ttl: u8, frag_off: u16) -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 2),
            dst_addr: Ipv4Addr::new(198, 19, 0, 2),
            protocol: Protocol::Udp,
            payload_len: len - 20,
            ttl,
            ident: 7,
            dont_frag: true,
            dscp_ecn: 0,
        };
        let mut buf = vec![0xabu8; len];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        p.set_frag_offset(frag_off);
        p.fill_checksum();
        buf
    }

    #[test]
    fn error_quotes_as_much_as_fits_in_576() {
        let orig = udp_packet(1400, 1, 0);
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let e = build_error(IcmpError::TtlExceeded, &orig, src, 1).unwrap();
        assert_eq!(e.len(), MAX_ERROR_LEN);
        let ip = Packet::new_checked(&e[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), src);
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 18, 0, 2));
        let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.msg_type(), Message::TimeExceeded);
        assert_eq!(
            &icmp.data()[..20],
            &orig[..20],
            "quote starts with the original header"
        );
        assert_eq!(icmp.data(), &orig[..MAX_ERROR_LEN - 28]);
    }

    #[test]
    fn short_original_is_quoted_whole_and_mtu_is_set() {
        let orig = udp_packet(60, 9, 0);
        let e = build_error(
            IcmpError::Unreachable {
                code: code::FRAG_NEEDED,
                mtu: 1400,
            },
            &orig,
            Ipv4Addr::new(198, 19, 0, 1),
            2,
        )
        .unwrap();
        assert_eq!(e.len(), 20 + 8 + 60);
        let icmp = icmpv4::Packet::new_checked(&e[20..]).unwrap();
        assert_eq!(icmp.msg_code(), code::FRAG_NEEDED);
        assert_eq!(icmp.next_hop_mtu(), 1400);
        let net = build_error(
            IcmpError::Unreachable {
                code: code::NET,
                mtu: 1400,
            },
            &orig,
            Ipv4Addr::new(198, 19, 0, 1),
            2,
        )
        .unwrap();
        assert_eq!(
            icmpv4::Packet::new_checked(&net[20..])
                .unwrap()
                .next_hop_mtu(),
            0
        );
    }

    #[test]
    fn suppression_cases() {
        let none = |_: Ipv4Addr| false;
        let ok = udp_packet(100, 1, 0);
        assert_eq!(may_send_error(false, &ok, none, none), Ok(()));
        assert_eq!(
            may_send_error(true, &ok, none, none),
            Err(Suppressed::Broadcast)
        );
        let frag = udp_packet(100, 1, 8);
        assert_eq!(
            may_send_error(false, &frag, none, none),
            Err(Suppressed::Fragment)
        );
        let bcast = |a: Ipv4Addr| a == Ipv4Addr::new(198, 19, 0, 2);
        assert_eq!(
            may_send_error(false, &ok, bcast, none),
            Err(Suppressed::Broadcast)
        );
        let mut mart = ok.clone();
        Packet::new_unchecked(&mut mart[..]).set_src_addr(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(
            may_send_error(false, &mart, none, none),
            Err(Suppressed::BadSource)
        );
        // An ICMP error is never answered; an echo request is.
        let err =
            build_error(IcmpError::TtlExceeded, &ok, Ipv4Addr::new(198, 19, 0, 1), 1).unwrap();
        assert_eq!(
            may_send_error(false, &err, none, none),
            Err(Suppressed::IcmpError)
        );
        assert_eq!(
            may_send_error(false, &ok[..10], none, none),
            Err(Suppressed::Malformed)
        );
    }

    #[test]
    fn echo_reply_mirrors_request() {
        let req = icmpv4::Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 9,
            data: b"hello xgw",
        };
        let ping = build_ip_icmp(
            &req,
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 1),
            5,
        );
        let reply = build_echo_reply(&ping, 6).unwrap();
        let ip = Packet::new_checked(&reply[..]).unwrap();
        assert_eq!(ip.src_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(198, 18, 0, 2));
        let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            icmpv4::Repr::parse(&icmp).unwrap(),
            icmpv4::Repr::EchoReply {
                ident: 0x1234,
                seq_no: 9,
                data: b"hello xgw"
            }
        );
        assert!(
            build_echo_reply(&reply, 1).is_none(),
            "replies are not answered"
        );
    }

    fn limits(rate: u32, dest: u32, frag: u32) -> crate::config::IcmpConfig {
        crate::config::IcmpConfig {
            rate,
            burst: rate,
            per_destination_rate: dest,
            per_destination_burst: dest,
            frag_needed_rate: frag,
            frag_needed_burst: frag,
        }
    }

    const TTL: IcmpError = IcmpError::TtlExceeded;
    const PMTU: IcmpError = IcmpError::Unreachable {
        code: icmpv4::dst_unreachable_code::FRAG_NEEDED,
        mtu: 1400,
    };

    /// A TTL=1 flood from one host gets its share; another host still gets its errors, and
    /// fragmentation needed is never starved, not even by floods from many sources that
    /// empty the global bucket.
    #[test]
    fn per_destination_and_frag_needed_limits() {
        let t0 = Instant::now();
        let mut l = IcmpLimiter::new(&limits(100, 10, 50), 0x9e37_79b9);
        let flooder = Ipv4Addr::new(198, 18, 0, 66);
        let victim = Ipv4Addr::new(198, 18, 0, 2);
        let sent = (0..10_000)
            .filter(|_| l.allow(t0, TTL, flooder).is_ok())
            .count();
        assert_eq!(sent, 10, "the flooder's share");
        assert_eq!(l.allow(t0, TTL, flooder), Err(Limited::Destination));
        assert!(l.allow(t0, TTL, victim).is_ok(), "others are not starved");
        // Many sources empty the global bucket ...
        let mut refused_global = 0;
        for i in 0..10_000u32 {
            let src = Ipv4Addr::from(0xC612_0000 | (i & 0xFFFF));
            if l.allow(t0, TTL, src) == Err(Limited::Global) {
                refused_global += 1;
            }
        }
        assert!(refused_global > 9_000);
        // ... and PMTUD still gets its frag-needed, within its own bound.
        let pmtu = (0..1000)
            .filter(|_| l.allow(t0, PMTU, victim).is_ok())
            .count();
        assert_eq!(pmtu, 50);
        // One second later each limit refills at its rate.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.allow(t1, TTL, flooder).is_ok());
        assert!(l.allow(t1, PMTU, flooder).is_ok());
    }

    #[test]
    fn token_bucket_limits_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5);
        let sent = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(sent, 5, "burst");
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(150)));
        // One second later at most `rate` more (capped by burst).
        let later = (0..100)
            .filter(|i| b.take(t0 + Duration::from_millis(1150 + i)))
            .count();
        assert_eq!(later, 5);
        let mut off = TokenBucket::new(0, 5);
        assert!(!off.take(t0));
        assert_eq!(off.interval(), Duration::MAX);
    }
}
