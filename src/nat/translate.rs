//! Stateless NAT44 packet rewriting: addresses, ports, ICMP identifiers and every checksum.
//!
//! Owns the byte-level translation that both the fast path (`nat-in2out`/`nat-out2in`) and the
//! slow path call; it holds no state and knows nothing about sessions, which the caller looks up
//! with [`flow_key`] or [`icmp_error_inner_key`]. Depends only on `wire` and `nat::flow`.
//!
//! # Contract
//!
//! * Every function takes an IPv4 packet **starting at the IPv4 header** (no Ethernet header).
//!   Bytes after `total_len` (Ethernet padding) are allowed and never read or written.
//! * No function panics on any input, allocates, or touches the TTL. On `Err` the packet is left
//!   unmodified: every length and type check runs before the first store.
//! * Checksums are updated incrementally (RFC 1624 eqn. 3) and the result equals a full
//!   recompute whenever the incoming checksum was valid; this is what the property tests check.
//! * The IPv4 header checksum is not verified here (`ip4-input` did that); the transport
//!   checksums are never verified either (a NAT must not drop on them, RFC 5508 REQ-3d). The ICMP
//!   error path verifies the outer ICMP and the embedded IP header checksums (REQ-3a/3b).
//! * ICMP echo: the identifier plays the port role, `FlowKey::sport == FlowKey::dport == id`,
//!   and translation writes `Rewrite::sport` as the new identifier (`Rewrite::dport` is ignored).
//!
//! # Fast path
//!
//! [`Compiled`] is VPP's `nat_6t_flow`: the one's-complement deltas of the L3 and L4 checksums are
//! computed once per session from (key → rewrite), so [`apply`] is field stores plus one
//! one's-complement addition per checksum (DESIGN R7). [`rewrite`] computes the same result from
//! the packet's current fields (slow path, and the test oracle for [`apply`]).

use core::net::Ipv4Addr;

use crate::nat::flow::{proto, FlowKey, Rewrite};
use crate::wire::{checksum, icmpv4, ipv4, tcp, udp};

/// Why a packet could not be keyed or translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatError {
    /// A header (IP, transport, or the quote of an ICMP error) is not all there.
    Truncated,
    /// A protocol, ICMP type or IP version the NAT does not translate.
    Unsupported,
    /// A fragment whose transport header is not in this packet (or, for ICMP errors, any fragment).
    Fragment,
    /// An ICMP error whose ICMP checksum or embedded IP header checksum is wrong (RFC 5508 REQ-3).
    BadChecksum,
    /// A UDP length below 8 or, in an unfragmented datagram, beyond the IP payload (RFC 768).
    BadUdpLength,
    /// A TCP data offset below 5 words or beyond the segment (RFC 9293 §3.1).
    BadTcpOffset,
}

/// Offset of the TCP checksum in the TCP header (RFC 9293 §3.1).
const TCP_CHECKSUM: usize = 16;
/// Offset of the UDP checksum in the UDP header (RFC 768).
const UDP_CHECKSUM: usize = 6;
/// Offset of the checksum in an ICMP header (RFC 792).
const ICMP_CHECKSUM: usize = 2;
/// Offset of the echo identifier in an ICMP echo header (RFC 792).
const ICMP_ECHO_IDENT: usize = 4;
/// Offset of the source address in an IPv4 header (RFC 791 §3.1).
const IP_SRC: usize = 12;
/// Offset of the destination address in an IPv4 header.
const IP_DST: usize = 16;
/// Offset of the header checksum in an IPv4 header.
const IP_CHECKSUM: usize = 10;
/// Smallest original-datagram field of an ICMP message carrying RFC 4884 extensions (§4.1).
const RFC4884_MIN_QUOTE: usize = 128;

/// ICMP echo reply type (RFC 792).
const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP echo request type (RFC 792).
const ICMP_ECHO_REQUEST: u8 = 8;

/// Big-endian u16 at `at`; callers have bounds-checked the packet.
fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Stores a big-endian u16 at `at`; callers have bounds-checked the packet.
fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The IPv4 address at `at`.
fn rd_addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Stores an IPv4 address at `at`.
fn wr_addr(b: &mut [u8], at: usize, a: Ipv4Addr) {
    b[at..at + 4].copy_from_slice(&a.octets());
}

/// Whether an ICMP type is an echo query, the only ICMP query the NAT maps (RFC 5508 §3).
const fn is_echo(msg_type: u8) -> bool {
    matches!(msg_type, ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY)
}

/// Whether an ICMP type is an error that quotes a datagram: 3, 4, 5, 11, 12 (RFC 5508 §4).
const fn is_error(msg_type: u8) -> bool {
    matches!(msg_type, 3 | 4 | 5 | 11 | 12)
}

/// Unfolded RFC 1624 eqn. 3 terms `~m + m'` for a 32-bit field changing from `old` to `new`.
fn delta32(old: Ipv4Addr, new: Ipv4Addr) -> u64 {
    let (o, n) = (!old.to_bits(), new.to_bits());
    u64::from(o >> 16) + u64::from(o & 0xFFFF) + u64::from(n >> 16) + u64::from(n & 0xFFFF)
}

/// Unfolded RFC 1624 eqn. 3 terms `~m + m'` for a 16-bit field.
fn delta16(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// `HC' = ~(~HC + Δ)` (RFC 1624 eqn. 3) with a delta precomputed by [`Compiled::new`].
///
/// `delta` is the folded sum of the `~m + m'` terms; it is 0 only when that sum was exactly 0.
/// A zero total maps to `0x0000` exactly as in `checksum::update_u16`, so applying one combined
/// delta gives the same bits as updating the fields one at a time.
fn add_delta(hc: u16, delta: u16) -> u16 {
    let s = u32::from(!hc) + u32::from(delta);
    if s == 0 {
        0
    } else {
        !checksum::fold(s)
    }
}

/// RFC 768: a UDP checksum that computes to 0 is sent as all ones (0 means "no checksum").
const fn udp_nonzero(c: u16) -> u16 {
    if c == 0 {
        0xFFFF
    } else {
        c
    }
}

/// The one input where RFC 1624 eqn. 3 and a full recompute differ for ICMP: a message whose
/// bytes are all zero but the checksum (an echo reply with id 0, seq 0 and no data) sums to +0,
/// and its only valid checksum is `0xFFFF`, while the incremental result is `0x0000`. TCP, UDP
/// and IPv4 cannot hit this (the protocol number or version is always in the sum). Only called
/// with the whole ICMP message; the scan stops at the first non-zero byte, and runs only when the
/// new checksum is 0.
fn icmp_zero_fixup(c: u16, msg: &[u8]) -> u16 {
    let all_zero = msg
        .iter()
        .enumerate()
        .all(|(i, &b)| b == 0 || (ICMP_CHECKSUM..ICMP_CHECKSUM + 2).contains(&i));
    if c == 0 && all_zero {
        0xFFFF
    } else {
        c
    }
}

/// Where the transport header of a translatable packet lies (absolute offsets into the packet).
#[derive(Debug, Clone, Copy)]
struct L4 {
    /// Start of the transport header (`header_len`).
    start: usize,
    /// End of the IP payload in this packet (`total_len`).
    end: usize,
    /// IP protocol.
    proto: u8,
    /// Whether this is the first fragment of a larger datagram (MF set).
    more_frags: bool,
}

/// Checks a packet for [`flow_key`], [`apply`] and [`rewrite`]: IPv4, offset 0, TCP/UDP/ICMP
/// echo with the whole transport header (TCP 20, UDP 8, ICMP 8 bytes) inside `total_len`.
fn locate_l4(ip: &[u8]) -> Result<L4, NatError> {
    let p = ipv4::Packet::new_checked(ip).map_err(|_| NatError::Truncated)?;
    if p.version() != 4 {
        return Err(NatError::Unsupported);
    }
    // RFC 791 §3.2: only the fragment at offset 0 carries the transport header.
    if !p.is_first_fragment() {
        return Err(NatError::Fragment);
    }
    let start = usize::from(p.header_len());
    let end = usize::from(p.total_len());
    let proto = u8::from(p.protocol());
    let need = match proto {
        proto::TCP => tcp::HEADER_LEN,
        proto::UDP => udp::HEADER_LEN,
        proto::ICMP => icmpv4::HEADER_LEN,
        _ => return Err(NatError::Unsupported),
    };
    if end - start < need {
        return Err(NatError::Truncated);
    }
    if proto == proto::ICMP && !is_echo(ip[start]) {
        return Err(NatError::Unsupported);
    }
    // The transport header must describe the packet it is in: a receiver would drop what
    // fails here, so the NAT must not translate and deliver it (or let it make state).
    match proto {
        proto::UDP => {
            // RFC 768: the length counts the header. A first fragment's length is the whole
            // datagram's, beyond this fragment; it can still not be below 8.
            let len = usize::from(rd16(ip, start + 4));
            if len < udp::HEADER_LEN || (!p.more_frags() && len > end - start) {
                return Err(NatError::BadUdpLength);
            }
        }
        proto::TCP => {
            // RFC 9293 §3.1: data offset in 32-bit words, at least 5; the header (options
            // included) must be in this packet (RFC 1858: also in a first fragment).
            let off = usize::from(ip[start + 12] >> 4) * 4;
            if off < tcp::HEADER_LEN || off > end - start {
                return Err(NatError::BadTcpOffset);
            }
        }
        _ => {}
    }
    Ok(L4 {
        start,
        end,
        proto,
        more_frags: p.more_frags(),
    })
}

/// The flow key of a TCP/UDP packet or ICMP echo request/reply (sport = dport = identifier).
///
/// # Errors
/// `Fragment` for non-first fragments; `Unsupported` for other protocols, ICMP types or IP
/// versions; `Truncated` if the IP header or the transport header is not all there;
/// `BadUdpLength` / `BadTcpOffset` if the transport header contradicts the packet.
pub fn flow_key(ip: &[u8]) -> Result<FlowKey, NatError> {
    let l4 = locate_l4(ip)?;
    let seg = &ip[l4.start..l4.end];
    let (sport, dport) = if l4.proto == proto::ICMP {
        let id = rd16(seg, ICMP_ECHO_IDENT);
        (id, id)
    } else {
        // TCP and UDP both start with source port, destination port (RFC 9293, RFC 768).
        (rd16(seg, 0), rd16(seg, 2))
    };
    Ok(FlowKey {
        src: rd_addr(ip, IP_SRC),
        dst: rd_addr(ip, IP_DST),
        sport,
        dport,
        proto: l4.proto,
    })
}

/// Precomputed per-session rewrite (DESIGN R7, VPP `nat_6t_flow`): new fields plus checksum
/// deltas computed once from (key → rewrite), so per packet only stores and two additions remain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// The full new addresses and ports (ICMP echo: `sport` is the new identifier).
    pub rewrite: Rewrite,
    /// The protocol of the flow; [`apply`] refuses packets of another protocol.
    pub proto: u8,
    /// Folded `Σ(~m + m')` over the changed address words, for the IPv4 header checksum.
    pub l3_delta: u16,
    /// Folded `Σ(~m + m')` for the transport checksum: pseudo-header addresses and ports for
    /// TCP/UDP (RFC 768, RFC 9293 §3.1), the identifier only for ICMP (no pseudo-header).
    pub l4_delta: u16,
    /// Whether any address changes, i.e. whether the IPv4 header checksum must be updated.
    pub l3_update: bool,
    /// Whether any field covered by the transport checksum changes.
    pub l4_update: bool,
}

impl Compiled {
    /// Compiles the rewrite of the flow `key` into `rewrite` (VPP `nat_6t_l3_l4_csum_calc`).
    ///
    /// Unchanged fields contribute nothing (RFC 1624 erratum 4782), which keeps [`apply`]
    /// bit-identical to [`rewrite`] even for the non-canonical `0xFFFF` checksum encoding.
    pub fn new(key: &FlowKey, rewrite: &Rewrite) -> Compiled {
        let mut l3: u64 = 0;
        let mut l3_update = false;
        for (old, new) in [(key.src, rewrite.src), (key.dst, rewrite.dst)] {
            if old != new {
                l3 += delta32(old, new);
                l3_update = true;
            }
        }
        let (mut l4, mut l4_update, ports) = match key.proto {
            // RFC 768 / RFC 9293 §3.1: the pseudo-header carries both addresses.
            proto::TCP | proto::UDP => (
                l3,
                l3_update,
                [(key.sport, rewrite.sport), (key.dport, rewrite.dport)],
            ),
            // RFC 792: the ICMP checksum covers the message only, so only the id matters.
            proto::ICMP => (0, false, [(key.sport, rewrite.sport), (0, 0)]),
            _ => (0, false, [(0, 0), (0, 0)]),
        };
        for (old, new) in ports {
            if old != new {
                l4 += delta16(old, new);
                l4_update = true;
            }
        }
        Compiled {
            rewrite: *rewrite,
            proto: key.proto,
            l3_delta: checksum::fold64(l3),
            l4_delta: checksum::fold64(l4),
            l3_update,
            l4_update,
        }
    }
}

/// Applies a [`Compiled`] rewrite to a packet whose [`flow_key`] is the key it was made from.
///
/// Updates IP src/dst and header checksum; TCP/UDP ports and checksum (pseudo-header included,
/// RFC 768); or the ICMP echo identifier and ICMP checksum. A UDP checksum of 0 stays 0 and a
/// computed 0 is written as `0xFFFF` (RFC 768). First fragments are translated too: the transport
/// checksum covers the whole datagram but the incremental update is still exact. TTL untouched.
///
/// # Errors
/// As [`flow_key`], plus `Unsupported` if the packet's protocol is not `c.proto`. A packet whose
/// fields differ from the compiled key gets wrong checksums; that is the caller's contract.
pub fn apply(ip: &mut [u8], c: &Compiled) -> Result<(), NatError> {
    let l4 = locate_l4(ip)?;
    if l4.proto != c.proto {
        return Err(NatError::Unsupported);
    }
    let r = &c.rewrite;
    wr_addr(ip, IP_SRC, r.src);
    wr_addr(ip, IP_DST, r.dst);
    if c.l3_update {
        let hc = add_delta(rd16(ip, IP_CHECKSUM), c.l3_delta);
        wr16(ip, IP_CHECKSUM, hc);
    }
    let seg = &mut ip[l4.start..l4.end];
    match l4.proto {
        proto::ICMP => {
            wr16(seg, ICMP_ECHO_IDENT, r.sport);
            if c.l4_update {
                let mut cs = add_delta(rd16(seg, ICMP_CHECKSUM), c.l4_delta);
                if cs == 0 && !l4.more_frags {
                    cs = icmp_zero_fixup(cs, seg);
                }
                wr16(seg, ICMP_CHECKSUM, cs);
            }
        }
        proto::UDP => {
            wr16(seg, 0, r.sport);
            wr16(seg, 2, r.dport);
            let old = rd16(seg, UDP_CHECKSUM);
            // RFC 768: 0 means "no checksum" and must stay 0.
            if c.l4_update && old != 0 {
                wr16(seg, UDP_CHECKSUM, udp_nonzero(add_delta(old, c.l4_delta)));
            }
        }
        _ => {
            wr16(seg, 0, r.sport);
            wr16(seg, 2, r.dport);
            if c.l4_update {
                let cs = add_delta(rd16(seg, TCP_CHECKSUM), c.l4_delta);
                wr16(seg, TCP_CHECKSUM, cs);
            }
        }
    }
    Ok(())
}

/// Same result as [`apply`], with the checksum updates computed from the packet's current fields.
///
/// The slow path uses it for a packet that has no [`Compiled`] yet; the tests use it as the
/// oracle for [`apply`]. Each changed field goes through `checksum::update_u32`/`update_u16`.
///
/// # Errors
/// As [`flow_key`].
pub fn rewrite(ip: &mut [u8], r: &Rewrite) -> Result<(), NatError> {
    let l4 = locate_l4(ip)?;
    let (os, od) = (rd_addr(ip, IP_SRC), rd_addr(ip, IP_DST));
    let hc = rd16(ip, IP_CHECKSUM);
    let hc = checksum::update_u32(hc, os.to_bits(), r.src.to_bits());
    let hc = checksum::update_u32(hc, od.to_bits(), r.dst.to_bits());
    wr_addr(ip, IP_SRC, r.src);
    wr_addr(ip, IP_DST, r.dst);
    wr16(ip, IP_CHECKSUM, hc);
    let seg = &mut ip[l4.start..l4.end];
    if l4.proto == proto::ICMP {
        let old_id = rd16(seg, ICMP_ECHO_IDENT);
        wr16(seg, ICMP_ECHO_IDENT, r.sport);
        if old_id != r.sport {
            let cs = checksum::update_u16(rd16(seg, ICMP_CHECKSUM), old_id, r.sport);
            let cs = if cs == 0 && !l4.more_frags {
                icmp_zero_fixup(cs, seg)
            } else {
                cs
            };
            wr16(seg, ICMP_CHECKSUM, cs);
        }
        return Ok(());
    }
    let (osp, odp) = (rd16(seg, 0), rd16(seg, 2));
    wr16(seg, 0, r.sport);
    wr16(seg, 2, r.dport);
    let at = if l4.proto == proto::UDP {
        UDP_CHECKSUM
    } else {
        TCP_CHECKSUM
    };
    let old = rd16(seg, at);
    if l4.proto == proto::UDP && old == 0 {
        return Ok(());
    }
    let cs = checksum::update_u32(old, os.to_bits(), r.src.to_bits());
    let cs = checksum::update_u32(cs, od.to_bits(), r.dst.to_bits());
    let cs = checksum::update_u16(cs, osp, r.sport);
    let cs = checksum::update_u16(cs, odp, r.dport);
    let cs = if l4.proto == proto::UDP {
        udp_nonzero(cs)
    } else {
        cs
    };
    wr16(seg, at, cs);
    Ok(())
}

/// Rewrites only the addresses of a non-first fragment (ports are not in it): IP src/dst and the
/// header checksum. The transport checksum, in the first fragment, is fixed by [`apply`] there.
///
/// # Errors
/// `Truncated` if the IP header is not all there, `Unsupported` for a non-IPv4 packet or one at
/// offset 0 (it carries the transport header: use [`apply`] or [`rewrite`]).
pub fn rewrite_fragment(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), NatError> {
    let mut p = ipv4::Packet::new_checked(ip).map_err(|_| NatError::Truncated)?;
    if p.version() != 4 || p.is_first_fragment() {
        return Err(NatError::Unsupported);
    }
    let hc = checksum::update_u32(p.checksum(), p.src_addr().to_bits(), src.to_bits());
    let hc = checksum::update_u32(hc, p.dst_addr().to_bits(), dst.to_bits());
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    p.set_checksum(hc);
    Ok(())
}

/// The layout of a checked ICMP error (absolute offsets into the outer packet).
#[derive(Debug, Clone, Copy)]
struct IcmpError {
    /// Start of the outer ICMP header.
    icmp: usize,
    /// Start of the embedded IP header (`icmp + 8`).
    inner: usize,
    /// Start of the embedded transport header.
    inner_l4: usize,
    /// End of the usable quote: the smallest of the ICMP payload end, the embedded `total_len`
    /// and the RFC 4884 original-datagram length, so padding and extensions are never touched.
    quote_end: usize,
    /// The embedded protocol (TCP, UDP, or ICMP echo).
    proto: u8,
    /// Whether the whole embedded datagram is in the quote (not a fragment, not truncated).
    complete: bool,
}

/// Checks an ICMP error per RFC 5508 §4 and locates the embedded packet (REQ-3a..3d).
fn parse_icmp_error(ip: &[u8]) -> Result<IcmpError, NatError> {
    let p = ipv4::Packet::new_checked(ip).map_err(|_| NatError::Truncated)?;
    if p.version() != 4 || u8::from(p.protocol()) != proto::ICMP {
        return Err(NatError::Unsupported);
    }
    // The ICMP checksum covers the whole reassembled message, so it cannot be verified (REQ-3a)
    // on a fragment; errors are at most 576 bytes (RFC 1812 §4.3.2.3) and rarely fragmented.
    if p.is_fragment() {
        return Err(NatError::Fragment);
    }
    let icmp = usize::from(p.header_len());
    let msg = &ip[icmp..usize::from(p.total_len())];
    if msg.len() < icmpv4::HEADER_LEN {
        return Err(NatError::Truncated);
    }
    if !is_error(msg[0]) {
        return Err(NatError::Unsupported);
    }
    // RFC 5508 REQ-3a: drop an ICMP error whose ICMP checksum is wrong. The checksum covers the
    // whole message including any RFC 4884 extension.
    if checksum::data(msg) != 0xFFFF {
        return Err(NatError::BadChecksum);
    }
    let quote = &msg[icmpv4::HEADER_LEN..];
    let mut avail = quote.len();
    // RFC 4884 §4.1: for types 3, 11 and 12 octet 5 is the original-datagram length in 32-bit
    // words when extensions follow (then at least 128 octets); REQ-3d: exclude the extension.
    // A smaller value is not a compliant extension and is ignored (RFC 792 calls it unused).
    if matches!(msg[0], 3 | 11 | 12) {
        let len = usize::from(msg[5]) * 4;
        if len >= RFC4884_MIN_QUOTE {
            avail = avail.min(len);
        }
    }
    if avail < ipv4::HEADER_LEN {
        return Err(NatError::Truncated);
    }
    let inner = ipv4::Packet::new_unchecked(&quote[..avail]);
    if inner.version() != 4 {
        return Err(NatError::Unsupported);
    }
    // RFC 5508 REQ-3c: walk past embedded IP options using the embedded IHL.
    let ihl = usize::from(inner.header_len());
    if ihl < ipv4::HEADER_LEN || ihl > avail {
        return Err(NatError::Truncated);
    }
    // RFC 5508 REQ-3b: the embedded IP header checksum must verify.
    if !inner.verify_checksum() {
        return Err(NatError::BadChecksum);
    }
    let inner_total = usize::from(inner.total_len());
    if inner_total < ihl {
        return Err(NatError::Truncated);
    }
    // RFC 1812 §4.3.2.7: no error is sent about a non-initial fragment; it has no ports anyway.
    if !inner.is_first_fragment() {
        return Err(NatError::Fragment);
    }
    let complete = inner_total <= avail && !inner.more_frags();
    let quote_len = avail.min(inner_total);
    let inner_proto = u8::from(inner.protocol());
    // RFC 792: the quote holds at least the first 8 transport bytes, enough for ports or the
    // echo identifier; REQ-3d: the embedded transport checksum is not validated.
    if !matches!(inner_proto, proto::TCP | proto::UDP | proto::ICMP) {
        return Err(NatError::Unsupported);
    }
    if quote_len - ihl < 8 {
        return Err(NatError::Truncated);
    }
    if inner_proto == proto::ICMP && !is_echo(quote[ihl]) {
        return Err(NatError::Unsupported);
    }
    let inner_start = icmp + icmpv4::HEADER_LEN;
    Ok(IcmpError {
        icmp,
        inner: inner_start,
        inner_l4: inner_start + ihl,
        quote_end: inner_start + quote_len,
        proto: inner_proto,
        complete,
    })
}

/// RFC 5508 §4: the flow key of the packet embedded in an ICMP error (types 3, 4, 5, 11, 12), as
/// that packet was sent; it belongs to the session travelling the other way.
///
/// Walks past embedded IP options (REQ-3c) and ignores RFC 4884 extensions; embedded TCP/UDP need
/// their first 8 bytes, an embedded ICMP echo its 8-byte header. The embedded transport checksum
/// is not validated (REQ-3d; Jool#126).
///
/// # Errors
/// `BadChecksum` if the ICMP checksum (REQ-3a) or the embedded IP header checksum (REQ-3b) is
/// wrong; `Truncated` if the outer header, ICMP header, embedded header or the 8 embedded
/// transport bytes are missing; `Fragment` if the error or the embedded packet is a fragment
/// (non-first for the embedded one); `Unsupported` for other ICMP types or embedded protocols.
pub fn icmp_error_inner_key(ip: &[u8]) -> Result<FlowKey, NatError> {
    let e = parse_icmp_error(ip)?;
    let (sport, dport) = if e.proto == proto::ICMP {
        let id = rd16(ip, e.inner_l4 + ICMP_ECHO_IDENT);
        (id, id)
    } else {
        (rd16(ip, e.inner_l4), rd16(ip, e.inner_l4 + 2))
    };
    Ok(FlowKey {
        src: rd_addr(ip, e.inner + IP_SRC),
        dst: rd_addr(ip, e.inner + IP_DST),
        sport,
        dport,
        proto: e.proto,
    })
}

/// Tracks the outer ICMP checksum while bytes of the ICMP payload change (RFC 1624 eqn. 3).
///
/// Every changed 16-bit word of the quote goes through exactly one of these calls, including
/// embedded checksum fields, so nothing is corrected twice (cilium#48819) or forgotten after an
/// embedded echo id change (FDio/vpp#3587). All such words sit at even offsets of the message.
#[derive(Debug, Clone, Copy)]
struct OuterSum(u16);

impl OuterSum {
    /// Accounts for a 16-bit word of the ICMP payload changing.
    fn u16(&mut self, old: u16, new: u16) {
        self.0 = checksum::update_u16(self.0, old, new);
    }

    /// Accounts for an address in the ICMP payload changing.
    fn addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.0 = checksum::update_u32(self.0, old.to_bits(), new.to_bits());
    }
}

/// Rewrites an ICMP error in place (RFC 5508 REQ-4/REQ-5): outer IP src/dst := `outer_src` /
/// `outer_dst`; the embedded packet's src/dst/sport/dport := `inner` (embedded echo: identifier
/// := `inner.sport`).
///
/// Updates the embedded IP header checksum; the embedded transport checksum only if it lies in
/// the quote (UDP: only if non-zero; TCP: offset 16; echo: always, for the id); the outer ICMP
/// checksum for every changed byte of the ICMP payload; the outer IP header checksum. Every
/// checksum that is fully present then equals a full recompute. Type, code and TTLs are kept.
///
/// # Errors
/// As [`icmp_error_inner_key`]; nothing is written on error.
pub fn rewrite_icmp_error(
    ip: &mut [u8],
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    inner: &Rewrite,
) -> Result<(), NatError> {
    let e = parse_icmp_error(ip)?;
    let mut outer = OuterSum(rd16(ip, e.icmp + ICMP_CHECKSUM));

    // Embedded IP header: addresses and its checksum, all covered by the outer ICMP checksum.
    let (os, od) = (rd_addr(ip, e.inner + IP_SRC), rd_addr(ip, e.inner + IP_DST));
    let old_ihc = rd16(ip, e.inner + IP_CHECKSUM);
    let ihc = checksum::update_u32(old_ihc, os.to_bits(), inner.src.to_bits());
    let ihc = checksum::update_u32(ihc, od.to_bits(), inner.dst.to_bits());
    wr_addr(ip, e.inner + IP_SRC, inner.src);
    wr_addr(ip, e.inner + IP_DST, inner.dst);
    wr16(ip, e.inner + IP_CHECKSUM, ihc);
    outer.addr(os, inner.src);
    outer.addr(od, inner.dst);
    outer.u16(old_ihc, ihc);

    let l4 = e.inner_l4;
    if e.proto == proto::ICMP {
        // Embedded echo: no pseudo-header, so only the identifier enters its checksum (RFC 792).
        let old_id = rd16(ip, l4 + ICMP_ECHO_IDENT);
        wr16(ip, l4 + ICMP_ECHO_IDENT, inner.sport);
        outer.u16(old_id, inner.sport);
        let old_cs = rd16(ip, l4 + ICMP_CHECKSUM);
        let mut cs = checksum::update_u16(old_cs, old_id, inner.sport);
        if cs == 0 && old_id != inner.sport && e.complete {
            cs = icmp_zero_fixup(cs, &ip[l4..e.quote_end]);
        }
        wr16(ip, l4 + ICMP_CHECKSUM, cs);
        outer.u16(old_cs, cs);
    } else {
        let (osp, odp) = (rd16(ip, l4), rd16(ip, l4 + 2));
        wr16(ip, l4, inner.sport);
        wr16(ip, l4 + 2, inner.dport);
        outer.u16(osp, inner.sport);
        outer.u16(odp, inner.dport);
        let (at, is_udp) = if e.proto == proto::UDP {
            (l4 + UDP_CHECKSUM, true)
        } else {
            (l4 + TCP_CHECKSUM, false)
        };
        // The embedded transport checksum is updated only if the quote holds it; it covers the
        // whole original datagram, which the incremental update handles exactly.
        if at + 2 <= e.quote_end {
            let old_cs = rd16(ip, at);
            if !(is_udp && old_cs == 0) {
                let cs = checksum::update_u32(old_cs, os.to_bits(), inner.src.to_bits());
                let cs = checksum::update_u32(cs, od.to_bits(), inner.dst.to_bits());
                let cs = checksum::update_u16(cs, osp, inner.sport);
                let cs = checksum::update_u16(cs, odp, inner.dport);
                let cs = if is_udp { udp_nonzero(cs) } else { cs };
                wr16(ip, at, cs);
                outer.u16(old_cs, cs);
            }
        }
    }
    wr16(ip, e.icmp + ICMP_CHECKSUM, outer.0);

    // Outer IP header last; the ICMP checksum has no pseudo-header, so it is unaffected.
    let (oos, ood) = (rd_addr(ip, IP_SRC), rd_addr(ip, IP_DST));
    let hc = checksum::update_u32(rd16(ip, IP_CHECKSUM), oos.to_bits(), outer_src.to_bits());
    let hc = checksum::update_u32(hc, ood.to_bits(), outer_dst.to_bits());
    wr_addr(ip, IP_SRC, outer_src);
    wr_addr(ip, IP_DST, outer_dst);
    wr16(ip, IP_CHECKSUM, hc);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const IN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const NAT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const SRV: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const RTR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    // Golden packets generated by `tools/golden.py`, which computes every checksum from scratch
    // (independently of `wire::checksum`).
    /// TCP SYN 198.18.0.2:40000 > 203.0.113.9:80 as sent by the inside host.
    const TCP_SYN_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x26, 0x7e, 0xc6, 0x12, 0x00,
        0x02, 0xcb, 0x00, 0x71, 0x09, 0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x50, 0x02, 0xff, 0xff, 0x0d, 0x2e, 0x00, 0x00,
    ];
    /// TCP_SYN_IN after in2out to 192.0.2.1:1024.
    const TCP_SYN_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x2a, 0x91, 0xc0, 0x00, 0x02,
        0x01, 0xcb, 0x00, 0x71, 0x09, 0x04, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x50, 0x02, 0xff, 0xff, 0xa9, 0x81, 0x00, 0x00,
    ];
    /// UDP 198.18.0.2:5353 > 203.0.113.9:53, payload "abcd".
    const UDP_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x26, 0x7b, 0xc6, 0x12, 0x00,
        0x02, 0xcb, 0x00, 0x71, 0x09, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x23, 0xd3, 0x61, 0x62,
        0x63, 0x64,
    ];
    /// UDP_IN after in2out to 192.0.2.1:61000.
    const UDP_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x2a, 0x8e, 0xc0, 0x00, 0x02,
        0x01, 0xcb, 0x00, 0x71, 0x09, 0xee, 0x48, 0x00, 0x35, 0x00, 0x0c, 0x4e, 0x86, 0x61, 0x62,
        0x63, 0x64,
    ];
    /// UDP_IN without a checksum (field 0).
    const UDP0_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x26, 0x7b, 0xc6, 0x12, 0x00,
        0x02, 0xcb, 0x00, 0x71, 0x09, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0x61, 0x62,
        0x63, 0x64,
    ];
    /// UDP0_IN after in2out: the checksum stays 0.
    const UDP0_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x2a, 0x8e, 0xc0, 0x00, 0x02,
        0x01, 0xcb, 0x00, 0x71, 0x09, 0xee, 0x48, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0x61, 0x62,
        0x63, 0x64,
    ];
    /// ICMP echo request 198.18.0.2 > 203.0.113.9, id 0x1234, seq 7.
    const ECHO_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x26, 0x87, 0xc6, 0x12, 0x00,
        0x02, 0xcb, 0x00, 0x71, 0x09, 0x08, 0x00, 0x17, 0x5f, 0x12, 0x34, 0x00, 0x07, 0x78, 0x67,
        0x77, 0x2d, 0x70, 0x69, 0x6e, 0x67,
    ];
    /// ECHO_IN after in2out to 192.0.2.1, id 0x0400.
    const ECHO_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x2a, 0x9a, 0xc0, 0x00, 0x02,
        0x01, 0xcb, 0x00, 0x71, 0x09, 0x08, 0x00, 0x25, 0x93, 0x04, 0x00, 0x00, 0x07, 0x78, 0x67,
        0x77, 0x2d, 0x70, 0x69, 0x6e, 0x67,
    ];
    /// Time Exceeded from 198.51.100.1 to 192.0.2.1 quoting UDP_OUT (TTL 1, full quote).
    const TE_UDP_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x3c, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x88, 0x13, 0xc6, 0x33, 0x64,
        0x01, 0xc0, 0x00, 0x02, 0x01, 0x0b, 0x00, 0xf3, 0x28, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00,
        0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x01, 0x11, 0x69, 0x8e, 0xc0, 0x00, 0x02, 0x01, 0xcb,
        0x00, 0x71, 0x09, 0xee, 0x48, 0x00, 0x35, 0x00, 0x0c, 0x4e, 0x86, 0x61, 0x62, 0x63, 0x64,
    ];
    /// TE_UDP_OUT after out2in: to 198.18.0.2, quoting UDP_IN (TTL 1).
    const TE_UDP_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x3c, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x84, 0x00, 0xc6, 0x33, 0x64,
        0x01, 0xc6, 0x12, 0x00, 0x02, 0x0b, 0x00, 0xf7, 0x3b, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00,
        0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x01, 0x11, 0x65, 0x7b, 0xc6, 0x12, 0x00, 0x02, 0xcb,
        0x00, 0x71, 0x09, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x23, 0xd3, 0x61, 0x62, 0x63, 0x64,
    ];
    /// Port Unreachable from 203.0.113.9 quoting a TCP SYN with IP options, 8 L4 bytes.
    const DU_TCP_OPTS_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x3c, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x76, 0x3e, 0xcb, 0x00, 0x71,
        0x09, 0xc0, 0x00, 0x02, 0x01, 0x03, 0x03, 0xf8, 0xab, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00,
        0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x01, 0x06, 0xd4, 0x88, 0xc0, 0x00, 0x02, 0x01, 0xcb,
        0x00, 0x71, 0x09, 0x94, 0x04, 0x00, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
    ];
    /// DU_TCP_OPTS_OUT after out2in.
    const DU_TCP_OPTS_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x3c, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x72, 0x2b, 0xcb, 0x00, 0x71,
        0x09, 0xc6, 0x12, 0x00, 0x02, 0x03, 0x03, 0x60, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x46, 0x00,
        0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x01, 0x06, 0xd0, 0x75, 0xc6, 0x12, 0x00, 0x02, 0xcb,
        0x00, 0x71, 0x09, 0x94, 0x04, 0x00, 0x00, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
    ];
    /// Time Exceeded from 198.51.100.1 quoting ECHO_OUT (TTL 1, full quote).
    const TE_ECHO_OUT: &[u8] = &[
        0x45, 0x00, 0x00, 0x40, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x88, 0x0f, 0xc6, 0x33, 0x64,
        0x01, 0xc0, 0x00, 0x02, 0x01, 0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00,
        0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x01, 0x01, 0x69, 0x9a, 0xc0, 0x00, 0x02, 0x01, 0xcb,
        0x00, 0x71, 0x09, 0x08, 0x00, 0x25, 0x93, 0x04, 0x00, 0x00, 0x07, 0x78, 0x67, 0x77, 0x2d,
        0x70, 0x69, 0x6e, 0x67,
    ];
    /// TE_ECHO_OUT after out2in, quoting ECHO_IN (TTL 1).
    const TE_ECHO_IN: &[u8] = &[
        0x45, 0x00, 0x00, 0x40, 0x07, 0x77, 0x40, 0x00, 0xff, 0x01, 0x83, 0xfc, 0xc6, 0x33, 0x64,
        0x01, 0xc6, 0x12, 0x00, 0x02, 0x0b, 0x00, 0xf4, 0xff, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00,
        0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x01, 0x01, 0x65, 0x87, 0xc6, 0x12, 0x00, 0x02, 0xcb,
        0x00, 0x71, 0x09, 0x08, 0x00, 0x17, 0x5f, 0x12, 0x34, 0x00, 0x07, 0x78, 0x67, 0x77, 0x2d,
        0x70, 0x69, 0x6e, 0x67,
    ];

    fn key(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, proto: u8) -> FlowKey {
        FlowKey {
            src,
            dst,
            sport,
            dport,
            proto,
        }
    }

    fn rw(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Rewrite {
        Rewrite {
            src,
            dst,
            sport,
            dport,
        }
    }

    /// The rewrite that turns a packet with key `k` back into key `into` (same direction).
    fn to(k: &FlowKey) -> Rewrite {
        rw(k.src, k.sport, k.dst, k.dport)
    }

    /// Runs both `apply` and `rewrite` on `input` and checks both give `want`.
    fn check_golden(input: &[u8], want: &[u8], r: &Rewrite) {
        let k = flow_key(input).unwrap();
        let mut a = input.to_vec();
        apply(&mut a, &Compiled::new(&k, r)).unwrap();
        assert_eq!(a, want, "apply");
        let mut b = input.to_vec();
        rewrite(&mut b, r).unwrap();
        assert_eq!(b, want, "rewrite");
        // And back (out2in of the same packet restores the input).
        let k2 = flow_key(want).unwrap();
        let mut c = want.to_vec();
        apply(&mut c, &Compiled::new(&k2, &to(&k))).unwrap();
        assert_eq!(c, input, "reverse");
    }

    #[test]
    fn golden_tcp_syn() {
        assert_eq!(
            flow_key(TCP_SYN_IN),
            Ok(key(IN, 40000, SRV, 80, proto::TCP))
        );
        check_golden(TCP_SYN_IN, TCP_SYN_OUT, &rw(NAT, 1024, SRV, 80));
    }

    #[test]
    fn golden_udp() {
        assert_eq!(flow_key(UDP_IN), Ok(key(IN, 5353, SRV, 53, proto::UDP)));
        check_golden(UDP_IN, UDP_OUT, &rw(NAT, 61000, SRV, 53));
    }

    #[test]
    fn golden_udp_without_checksum() {
        check_golden(UDP0_IN, UDP0_OUT, &rw(NAT, 61000, SRV, 53));
        assert_eq!(&UDP0_OUT[26..28], &[0, 0]);
    }

    #[test]
    fn golden_icmp_echo() {
        assert_eq!(
            flow_key(ECHO_IN),
            Ok(key(IN, 0x1234, SRV, 0x1234, proto::ICMP))
        );
        check_golden(ECHO_IN, ECHO_OUT, &rw(NAT, 0x0400, SRV, 0x0400));
    }

    /// Ethernet padding after `total_len` is neither read nor written.
    #[test]
    fn golden_with_padding() {
        let mut input = UDP_IN.to_vec();
        input.extend_from_slice(&[0xAA; 14]);
        let mut want = UDP_OUT.to_vec();
        want.extend_from_slice(&[0xAA; 14]);
        check_golden(&input, &want, &rw(NAT, 61000, SRV, 53));
    }

    #[test]
    fn golden_time_exceeded_carrying_udp() {
        let inner = icmp_error_inner_key(TE_UDP_OUT).unwrap();
        assert_eq!(inner, key(NAT, 61000, SRV, 53, proto::UDP));
        let mut p = TE_UDP_OUT.to_vec();
        rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 5353, SRV, 53)).unwrap();
        assert_eq!(p, TE_UDP_IN);
    }

    #[test]
    fn golden_dest_unreachable_carrying_tcp_with_options() {
        let inner = icmp_error_inner_key(DU_TCP_OPTS_OUT).unwrap();
        assert_eq!(inner, key(NAT, 1024, SRV, 80, proto::TCP));
        let mut p = DU_TCP_OPTS_OUT.to_vec();
        rewrite_icmp_error(&mut p, SRV, IN, &rw(IN, 40000, SRV, 80)).unwrap();
        assert_eq!(p, DU_TCP_OPTS_IN);
    }

    #[test]
    fn golden_time_exceeded_carrying_echo() {
        let inner = icmp_error_inner_key(TE_ECHO_OUT).unwrap();
        assert_eq!(inner, key(NAT, 0x0400, SRV, 0x0400, proto::ICMP));
        let mut p = TE_ECHO_OUT.to_vec();
        rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 0x1234, SRV, 0x1234)).unwrap();
        assert_eq!(p, TE_ECHO_IN);
    }

    #[test]
    fn flow_key_errors() {
        // Non-first fragment: offset 8 bytes.
        let mut p = UDP_IN.to_vec();
        p[6] = 0x00;
        p[7] = 0x01;
        assert_eq!(flow_key(&p), Err(NatError::Fragment));
        assert_eq!(
            rewrite(&mut p.clone(), &rw(NAT, 1, SRV, 2)),
            Err(NatError::Fragment)
        );
        // First fragment (MF, offset 0) is keyed.
        p[6] = 0x20;
        p[7] = 0x00;
        assert!(flow_key(&p).is_ok());
        // Other protocol (GRE), ICMP error, other IP version.
        let mut p = UDP_IN.to_vec();
        p[9] = 47;
        assert_eq!(flow_key(&p), Err(NatError::Unsupported));
        assert_eq!(flow_key(TE_UDP_OUT), Err(NatError::Unsupported));
        let mut p = UDP_IN.to_vec();
        p[0] = 0x65;
        assert_eq!(flow_key(&p), Err(NatError::Unsupported));
        // Truncated transport headers: total_len cuts them (the bytes after it are padding).
        for (pkt, need) in [(TCP_SYN_IN, 20u16), (UDP_IN, 8), (ECHO_IN, 8)] {
            let mut p = pkt.to_vec();
            p[2..4].copy_from_slice(&(20 + need - 1).to_be_bytes());
            assert_eq!(flow_key(&p), Err(NatError::Truncated));
            let c = Compiled::new(&flow_key(pkt).unwrap(), &rw(NAT, 1, SRV, 1));
            let before = p.clone();
            assert_eq!(apply(&mut p, &c), Err(NatError::Truncated));
            assert_eq!(p, before, "nothing written on error");
        }
        assert_eq!(flow_key(&TCP_SYN_IN[..19]), Err(NatError::Truncated));
        assert_eq!(flow_key(&TCP_SYN_IN[..30]), Err(NatError::Truncated));
        assert_eq!(flow_key(&[]), Err(NatError::Truncated));
    }

    #[test]
    fn malformed_transport_headers_are_refused() {
        // UDP_IN: a 20-byte IP header, then UDP with length at bytes 24..26.
        let udp_len = |pkt: &[u8], len: u16| {
            let mut p = pkt.to_vec();
            p[24..26].copy_from_slice(&len.to_be_bytes());
            p
        };
        let payload = u16::from_be_bytes([UDP_IN[2], UDP_IN[3]]) - 20;
        assert!(flow_key(&udp_len(UDP_IN, payload)).is_ok(), "exact length");
        assert!(
            flow_key(&udp_len(UDP_IN, 8)).is_ok(),
            "shorter than the payload: trailing bytes are ignored (RFC 768)"
        );
        for bad in [0u16, 1, 7, payload + 1, 0xffff] {
            let mut p = udp_len(UDP_IN, bad);
            assert_eq!(flow_key(&p), Err(NatError::BadUdpLength), "length {bad}");
            let c = Compiled::new(&flow_key(UDP_IN).unwrap(), &rw(NAT, 1, SRV, 1));
            let before = p.clone();
            assert_eq!(apply(&mut p, &c), Err(NatError::BadUdpLength));
            assert_eq!(p, before, "nothing written on error");
            assert_eq!(
                rewrite(&mut p.clone(), &rw(NAT, 1, SRV, 2)),
                Err(NatError::BadUdpLength)
            );
        }
        // A first fragment's UDP length is the datagram's: beyond the fragment is fine,
        // below 8 is not.
        let mut frag = udp_len(UDP_IN, payload + 1000);
        frag[6] = 0x20; // MF, offset 0
        assert!(flow_key(&frag).is_ok());
        let mut frag = udp_len(UDP_IN, 4);
        frag[6] = 0x20;
        assert_eq!(flow_key(&frag), Err(NatError::BadUdpLength));

        // TCP_SYN_IN: data offset in the high nibble of byte 32.
        let tcp_off = |words: u8| {
            let mut p = TCP_SYN_IN.to_vec();
            p[32] = (words << 4) | (p[32] & 0x0f);
            p
        };
        let seg = usize::from(u16::from_be_bytes([TCP_SYN_IN[2], TCP_SYN_IN[3]])) - 20;
        assert!(flow_key(&tcp_off(5)).is_ok());
        let max_ok = u8::try_from(seg / 4).unwrap().min(15);
        assert!(flow_key(&tcp_off(max_ok)).is_ok(), "options up to the end");
        let mut bad_offsets = vec![0u8, 1, 4];
        if max_ok < 15 {
            bad_offsets.push(max_ok + 1);
            bad_offsets.push(15);
        }
        for words in bad_offsets {
            let mut p = tcp_off(words);
            assert_eq!(flow_key(&p), Err(NatError::BadTcpOffset), "offset {words}");
            let c = Compiled::new(&flow_key(TCP_SYN_IN).unwrap(), &rw(NAT, 1, SRV, 1));
            assert_eq!(apply(&mut p, &c), Err(NatError::BadTcpOffset));
        }
    }

    #[test]
    fn apply_refuses_other_protocol() {
        let c = Compiled::new(&flow_key(TCP_SYN_IN).unwrap(), &rw(NAT, 1, SRV, 80));
        let mut p = UDP_IN.to_vec();
        assert_eq!(apply(&mut p, &c), Err(NatError::Unsupported));
        assert_eq!(p, UDP_IN);
    }

    #[test]
    fn rewrite_fragment_addresses_only() {
        let mut p = UDP_IN.to_vec();
        p[6] = 0x00;
        p[7] = 0x03; // offset 24 bytes
        p[10..12].fill(0);
        let hc = !checksum::data(&p[..20]);
        p[10..12].copy_from_slice(&hc.to_be_bytes());
        let before = p.clone();
        rewrite_fragment(&mut p, NAT, SRV).unwrap();
        assert_eq!(&p[12..16], &NAT.octets());
        assert_eq!(checksum::data(&p[..20]), 0xFFFF);
        assert_eq!(p[20..], before[20..], "payload untouched");
        assert_eq!(ip_checksum_full(&p), rd16(&p, 10));
        assert_eq!(
            rewrite_fragment(&mut UDP_IN.to_vec(), NAT, SRV),
            Err(NatError::Unsupported)
        );
        assert_eq!(
            rewrite_fragment(&mut [0u8; 10], NAT, SRV),
            Err(NatError::Truncated)
        );
    }

    /// Recomputes an ICMP error's checksum after a test corrupted one of its bytes.
    fn refill_icmp(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0xF) * 4;
        let end = usize::from(rd16(p, 2));
        p[ihl + 2..ihl + 4].fill(0);
        let c = !checksum::data(&p[ihl..end]);
        p[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn icmp_error_checksums_rfc5508_req3() {
        // REQ-3a: bad outer ICMP checksum.
        let mut p = TE_UDP_OUT.to_vec();
        p[22] ^= 1;
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::BadChecksum));
        let before = p.clone();
        assert_eq!(
            rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 1, SRV, 1)),
            Err(NatError::BadChecksum)
        );
        assert_eq!(p, before);
        // REQ-3b: bad embedded IP header checksum (outer ICMP checksum made valid again).
        let mut p = TE_UDP_OUT.to_vec();
        p[28 + 10] ^= 1;
        refill_icmp(&mut p);
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::BadChecksum));
        // REQ-3d: a bogus embedded transport checksum is not a reason to drop (Jool#126).
        let mut p = TE_UDP_OUT.to_vec();
        p[48 + 6] ^= 0x55;
        refill_icmp(&mut p);
        assert_eq!(
            icmp_error_inner_key(&p),
            Ok(key(NAT, 61000, SRV, 53, proto::UDP))
        );
        rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 5353, SRV, 53)).unwrap();
        assert_eq!(checksum::data(&p[20..]), 0xFFFF);
    }

    #[test]
    fn icmp_error_truncated_and_unsupported() {
        let te = TE_UDP_OUT;
        let with_len = |n: usize| {
            // Keep the first `n` bytes of the message and fix the lengths and checksums.
            let mut p = te[..n].to_vec();
            p[2..4].copy_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            p[10..12].fill(0);
            let hc = !checksum::data(&p[..20]);
            p[10..12].copy_from_slice(&hc.to_be_bytes());
            refill_icmp(&mut p);
            p
        };
        // Outer header + ICMP header + embedded header + 8 bytes is the minimum.
        assert!(icmp_error_inner_key(&with_len(20 + 8 + 20 + 8)).is_ok());
        for n in [20 + 4, 20 + 8, 20 + 8 + 16, 20 + 8 + 20, 20 + 8 + 20 + 7] {
            assert_eq!(
                icmp_error_inner_key(&with_len(n)),
                Err(NatError::Truncated),
                "{n}"
            );
        }
        // Embedded IHL beyond the quote.
        let mut p = with_len(20 + 8 + 20 + 8);
        p[28] = 0x4F;
        p[38..40].fill(0);
        let c = !checksum::data(&p[28..48]);
        p[38..40].copy_from_slice(&c.to_be_bytes());
        refill_icmp(&mut p);
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::Truncated));
        // An echo is not an error.
        assert_eq!(icmp_error_inner_key(ECHO_IN), Err(NatError::Unsupported));
        assert_eq!(icmp_error_inner_key(UDP_IN), Err(NatError::Unsupported));
        // An error about an error.
        let mut p = TE_ECHO_OUT.to_vec();
        p[48] = 3;
        refill_icmp(&mut p);
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::Unsupported));
        // A fragmented error, and an error about a non-first fragment.
        let mut p = TE_UDP_OUT.to_vec();
        p[6] = 0x20;
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::Fragment));
        let mut p = TE_UDP_OUT.to_vec();
        p[28 + 6] = 0x00;
        p[28 + 7] = 0x10;
        p[38..40].fill(0);
        let c = !checksum::data(&p[28..48]);
        p[38..40].copy_from_slice(&c.to_be_bytes());
        refill_icmp(&mut p);
        assert_eq!(icmp_error_inner_key(&p), Err(NatError::Fragment));
    }

    /// A TCP quote that ends before the TCP checksum leaves it alone; one that holds it (18
    /// bytes) updates it.
    #[test]
    fn icmp_error_tcp_checksum_only_if_quoted() {
        let tcp_out = TCP_SYN_OUT;
        for l4_len in [8usize, 16, 17, 18, 20] {
            let quote = &tcp_out[..20 + l4_len];
            let mut p = build_error(11, 0, RTR, NAT, quote, &[]);
            let before = p.clone();
            rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 40000, SRV, 80)).unwrap();
            let q = 28 + 20;
            if l4_len >= 18 {
                assert_eq!(p[q + 16..q + 18], TCP_SYN_IN[36..38], "updated");
            } else {
                assert_eq!(
                    p[q + 4..q + l4_len],
                    before[q + 4..q + l4_len],
                    "not quoted"
                );
            }
            let restored = l4_len.min(16);
            assert_eq!(p[q..q + restored], TCP_SYN_IN[20..20 + restored]);
            assert_eq!(checksum::data(&p[20..]), 0xFFFF);
        }
    }

    /// Builds an ICMP error `msg_type`/`code` from `src` to `dst` quoting `quote`, followed by
    /// `ext` (an RFC 4884 extension: the quote is then padded to 128 bytes and octet 5 set).
    fn build_error(
        msg_type: u8,
        code: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        quote: &[u8],
        ext: &[u8],
    ) -> Vec<u8> {
        let mut msg = vec![msg_type, code, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(quote);
        if !ext.is_empty() {
            msg.resize(8 + 128, 0);
            msg[5] = 32;
            msg.extend_from_slice(ext);
        }
        let c = !checksum::data(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0u8; 20];
        let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
        ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: ipv4::Protocol::Icmp,
            payload_len: msg.len(),
            ttl: 255,
            ident: 0x0777,
            dont_frag: false,
            dscp_ecn: 0xC0,
        }
        .emit(&mut ip);
        p.extend_from_slice(&msg);
        p
    }

    /// RFC 4884: bytes after the 128-byte original-datagram field are an extension, not quote.
    #[test]
    fn icmp_error_rfc4884_extension_excluded() {
        // A long UDP datagram so that the embedded total length reaches past the 128 bytes.
        let mut long = [0u8; 200];
        long[..UDP_OUT.len()].copy_from_slice(UDP_OUT);
        long[2..4].copy_from_slice(&200u16.to_be_bytes());
        long[10..12].fill(0);
        let hc = !checksum::data(&long[..20]);
        long[10..12].copy_from_slice(&hc.to_be_bytes());
        let ext = [0x20, 0, 0xAB, 0xCD, 0, 8, 1, 1, 1, 2, 3, 4];
        let mut p = build_error(11, 0, RTR, NAT, &long[..128], &ext);
        assert_eq!(
            icmp_error_inner_key(&p),
            Ok(key(NAT, 61000, SRV, 53, proto::UDP))
        );
        let e = parse_icmp_error(&p).unwrap();
        assert_eq!(e.quote_end, 20 + 8 + 128);
        assert!(!e.complete);
        rewrite_icmp_error(&mut p, RTR, IN, &rw(IN, 5353, SRV, 53)).unwrap();
        assert_eq!(&p[p.len() - ext.len()..], &ext);
        assert_eq!(checksum::data(&p[20..]), 0xFFFF);
        // A short datagram padded with zeros to 128 bytes: the quote ends at its total length.
        let p = build_error(3, 3, RTR, NAT, UDP_OUT, &ext);
        let e = parse_icmp_error(&p).unwrap();
        assert_eq!(e.quote_end, 28 + UDP_OUT.len());
        assert!(e.complete);
    }

    fn ip_checksum_full(p: &[u8]) -> u16 {
        let ihl = usize::from(p[0] & 0xF) * 4;
        let mut h = p[..ihl].to_vec();
        h[10..12].fill(0);
        !checksum::data(&h)
    }

    /// Full recompute of a transport checksum over `seg` (the whole datagram), canonical form.
    fn l4_checksum_full(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
        let mut s = seg.to_vec();
        let at = match proto {
            proto::TCP => TCP_CHECKSUM,
            proto::UDP => UDP_CHECKSUM,
            _ => ICMP_CHECKSUM,
        };
        s[at..at + 2].fill(0);
        let sum = if proto == proto::ICMP {
            checksum::data(&s)
        } else {
            let len = u32::try_from(s.len()).unwrap();
            checksum::combine(&[
                checksum::pseudo_header(src, dst, proto, len),
                checksum::data(&s),
            ])
        };
        if proto == proto::UDP {
            udp_nonzero(!sum)
        } else {
            !sum
        }
    }

    /// One's-complement addition of two 16-bit words.
    fn ones_add(a: u16, b: u16) -> u16 {
        checksum::fold(u32::from(a) + u32::from(b))
    }

    /// A random generated packet: the bytes (with padding), its `total_len`, and the rest of the
    /// datagram when it is a first fragment (the transport checksum covers it too).
    #[derive(Debug, Clone)]
    struct Gen {
        pkt: Vec<u8>,
        total: usize,
        rest: Vec<u8>,
    }

    impl Gen {
        fn ihl(&self) -> usize {
            usize::from(self.pkt[0] & 0xF) * 4
        }

        fn proto(&self) -> u8 {
            self.pkt[9]
        }

        /// The whole transport datagram: this packet's part plus the rest.
        fn datagram(&self, pkt: &[u8]) -> Vec<u8> {
            let mut d = pkt[self.ihl()..self.total].to_vec();
            d.extend_from_slice(&self.rest);
            d
        }

        fn l4_checksum_at(&self) -> usize {
            self.ihl()
                + match self.proto() {
                    proto::TCP => TCP_CHECKSUM,
                    proto::UDP => UDP_CHECKSUM,
                    _ => ICMP_CHECKSUM,
                }
        }
    }

    fn rand_addr(rng: &mut StdRng) -> Ipv4Addr {
        let x: u8 = rng.gen();
        match rng.gen_range(0..4) {
            0 => Ipv4Addr::new(198, 18 + rng.gen_range(0..2), rng.gen(), x),
            1 => Ipv4Addr::new(192, 0, 2, x),
            2 => Ipv4Addr::new(198, 51, 100, x),
            _ => Ipv4Addr::new(203, 0, 113, x),
        }
    }

    fn rand_port(rng: &mut StdRng) -> u16 {
        match rng.gen_range(0..8) {
            0 => 0,
            1 => 0xFFFF,
            _ => rng.gen(),
        }
    }

    /// Generates a random TCP, UDP or ICMP echo packet with valid checksums.
    ///
    /// `canonical` = false also produces the other valid encodings: a TCP/ICMP/IPv4 checksum
    /// of `0xFFFF` where a recompute gives 0. `fragments` allows first fragments.
    fn gen_packet(rng: &mut StdRng, canonical: bool, fragments: bool) -> Gen {
        let proto = [proto::TCP, proto::UDP, proto::ICMP][rng.gen_range(0..3)];
        let (src, dst) = (rand_addr(rng), rand_addr(rng));
        let opts = if rng.gen_bool(0.5) {
            0
        } else {
            4 * rng.gen_range(1..=10)
        };
        let mut l4 = match proto {
            proto::TCP => {
                let hl = 20 + 4 * rng.gen_range(0..=3);
                let mut h = vec![0u8; hl];
                rng.fill(&mut h[..]);
                h[12] = u8::try_from(hl / 4).unwrap() << 4;
                h
            }
            proto::UDP => vec![0u8; 8],
            _ => {
                let mut h = vec![0u8; 8];
                rng.fill(&mut h[..]);
                h[0] = if rng.gen_bool(0.5) { 8 } else { 0 };
                h[1] = 0;
                h
            }
        };
        if proto != proto::ICMP {
            l4[0..2].copy_from_slice(&rand_port(rng).to_be_bytes());
            l4[2..4].copy_from_slice(&rand_port(rng).to_be_bytes());
        } else {
            l4[4..6].copy_from_slice(&rand_port(rng).to_be_bytes());
        }
        let hdr_len = l4.len();
        let payload = rng.gen_range(0..96);
        l4.extend((0..payload).map(|_| rng.gen::<u8>()));
        if proto == proto::UDP {
            let n = u16::try_from(l4.len()).unwrap();
            l4[4..6].copy_from_slice(&n.to_be_bytes());
        }
        let at = match proto {
            proto::TCP => TCP_CHECKSUM,
            proto::UDP => UDP_CHECKSUM,
            _ => ICMP_CHECKSUM,
        };
        // Sometimes force the full checksum to 0 by adjusting a free word (TCP sequence
        // number, UDP source port, ICMP sequence number).
        let free = match proto {
            proto::TCP => 4,
            proto::UDP => 0,
            _ => 6,
        };
        let c = l4_checksum_full(src, dst, proto, &l4);
        let force_zero = rng.gen_range(0..6) == 0;
        if force_zero {
            // UDP stores a computed 0 as 0xFFFF: undo that before solving.
            let c = if proto == proto::UDP && c == 0xFFFF {
                0
            } else {
                c
            };
            let w = ones_add(rd16(&l4, free), c);
            wr16(&mut l4, free, w);
        }
        let mut c = l4_checksum_full(src, dst, proto, &l4);
        if !canonical && c == 0 && rng.gen_bool(0.5) {
            c = 0xFFFF;
        }
        if proto == proto::UDP && rng.gen_range(0..5) == 0 {
            c = 0;
        }
        wr16(&mut l4, at, c);
        // First fragment: carry the header plus a multiple of 8 bytes, MF set.
        let mut rest = Vec::new();
        let mut mf = false;
        if fragments && rng.gen_range(0..5) == 0 {
            let carried = hdr_len.div_ceil(8) * 8 + 8 * rng.gen_range(0..4);
            if carried < l4.len() {
                rest = l4.split_off(carried);
                mf = true;
            }
        }
        let total = 20 + opts + l4.len();
        let mut p = vec![0u8; 20 + opts];
        rng.fill(&mut p[20..]);
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
            ipv4::Repr {
                src_addr: src,
                dst_addr: dst,
                protocol: ipv4::Protocol::from(proto),
                payload_len: l4.len(),
                ttl: rng.gen_range(1..=255),
                ident: rng.gen(),
                dont_frag: !mf && rng.gen_bool(0.5),
                dscp_ecn: rng.gen(),
            }
            .emit(&mut ip);
            ip.set_header_len(u8::try_from(20 + opts).unwrap());
            ip.set_total_len(u16::try_from(total).unwrap());
            ip.set_more_frags(mf);
            ip.fill_checksum();
            if rng.gen_range(0..6) == 0 {
                // Force the header checksum to 0 through the identification field.
                let id = ones_add(ip.ident(), ip.checksum());
                ip.set_ident(id);
                ip.fill_checksum();
                assert_eq!(ip.checksum(), 0);
            }
            if !canonical && ip.checksum() == 0 && rng.gen_bool(0.5) {
                ip.set_checksum(0xFFFF);
            }
        }
        p.extend_from_slice(&l4);
        let pad = rng.gen_range(0..8);
        p.extend((0..pad).map(|_| rng.gen::<u8>()));
        Gen {
            pkt: p,
            total,
            rest,
        }
    }

    /// A random rewrite of `k`: each field changes with probability 1/2; ICMP keeps sport = dport.
    fn rand_rewrite(rng: &mut StdRng, k: &FlowKey) -> Rewrite {
        let mut r = to(k);
        if rng.gen_bool(0.5) {
            r.src = rand_addr(rng);
        }
        if rng.gen_bool(0.5) {
            r.dst = rand_addr(rng);
        }
        if rng.gen_bool(0.5) {
            r.sport = rand_port(rng);
        }
        if rng.gen_bool(0.5) {
            r.dport = rand_port(rng);
        }
        if k.proto == proto::ICMP {
            r.dport = r.sport;
        }
        r
    }

    /// Every checksum of `pkt`, translated from `g`, equals a full recompute; a UDP checksum
    /// that was 0 is still 0. The one allowed difference: a non-canonical `0xFFFF` (the other
    /// encoding of a zero checksum) is kept as is when no covered field changed (RFC 1624
    /// erratum 4782), exactly what a receiver accepts.
    fn assert_checksums(g: &Gen, pkt: &[u8], udp_zero: bool) {
        let same_noncanonical = |at: usize, want: u16| {
            let got = rd16(pkt, at);
            got == want || (got == 0xFFFF && want == 0 && rd16(&g.pkt, at) == 0xFFFF)
        };
        assert!(
            same_noncanonical(10, ip_checksum_full(pkt)),
            "IPv4 header checksum"
        );
        let at = g.l4_checksum_at();
        if udp_zero {
            assert_eq!(rd16(pkt, at), 0, "UDP checksum 0 stays 0 (RFC 768)");
            return;
        }
        let src = Ipv4Addr::from(u32::from_be_bytes(pkt[12..16].try_into().unwrap()));
        let dst = Ipv4Addr::from(u32::from_be_bytes(pkt[16..20].try_into().unwrap()));
        let want = l4_checksum_full(src, dst, g.proto(), &g.datagram(pkt));
        assert!(
            same_noncanonical(at, want),
            "transport checksum {want:#06x}"
        );
    }

    /// Property (1) and (2): `apply` == `rewrite` byte for byte, and every checksum after it
    /// equals a full recompute (including non-canonical inputs, first fragments, UDP 0).
    #[test]
    fn prop_apply_equals_rewrite_and_recompute() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0001);
        for i in 0..200_000 {
            let g = gen_packet(&mut rng, false, true);
            let k = flow_key(&g.pkt).unwrap_or_else(|e| panic!("{i}: {e:?} {:02x?}", g.pkt));
            let r = rand_rewrite(&mut rng, &k);
            let c = Compiled::new(&k, &r);
            let mut a = g.pkt.clone();
            apply(&mut a, &c).unwrap();
            let mut b = g.pkt.clone();
            rewrite(&mut b, &r).unwrap();
            assert_eq!(a, b, "{i}: apply != rewrite for {k:?} -> {r:?}");
            let nk = flow_key(&a).unwrap();
            assert_eq!(
                (nk.src, nk.dst, nk.sport, nk.proto),
                (r.src, r.dst, r.sport, k.proto)
            );
            if k.proto != proto::ICMP {
                assert_eq!(nk.dport, r.dport);
            }
            let udp_zero = k.proto == proto::UDP && rd16(&g.pkt, g.l4_checksum_at()) == 0;
            assert_checksums(&g, &a, udp_zero);
            assert_eq!(a[g.total..], g.pkt[g.total..], "padding untouched");
            assert_eq!(a[8], g.pkt[8], "TTL untouched");
        }
    }

    /// Property (2), edges: a rewrite whose new transport checksum computes to 0 is written as
    /// 0xFFFF for UDP (RFC 768) and 0x0000 for TCP; same for the IPv4 header (never 0xFFFF).
    #[test]
    fn new_checksum_zero_edge() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0002);
        let mut hits = [0usize; 3];
        for _ in 0..20_000 {
            let mut g = gen_packet(&mut rng, true, false);
            let at = g.l4_checksum_at();
            if rd16(&g.pkt, at) == 0 && g.proto() == proto::UDP {
                continue;
            }
            let k = flow_key(&g.pkt).unwrap();
            let r = rand_rewrite(&mut rng, &k);
            let mut probe = g.pkt.clone();
            rewrite(&mut probe, &r).unwrap();
            // Choose a payload word so that the new checksum is 0: add the would-be checksum.
            let new_c = rd16(&probe, at);
            let new_c = if g.proto() == proto::UDP && new_c == 0xFFFF {
                0
            } else {
                new_c
            };
            let free = g.ihl() + if g.proto() == proto::TCP { 4 } else { 6 };
            if g.proto() == proto::UDP {
                // The UDP word must be outside the key: use the payload if there is one.
                if g.total - g.ihl() < 10 {
                    continue;
                }
            }
            let free = if g.proto() == proto::UDP {
                g.ihl() + 8
            } else {
                free
            };
            let w = ones_add(rd16(&g.pkt, free), new_c);
            wr16(&mut g.pkt, free, w);
            let src = Ipv4Addr::from(u32::from_be_bytes(g.pkt[12..16].try_into().unwrap()));
            let dst = Ipv4Addr::from(u32::from_be_bytes(g.pkt[16..20].try_into().unwrap()));
            let c0 = l4_checksum_full(src, dst, g.proto(), &g.datagram(&g.pkt));
            wr16(&mut g.pkt, at, c0);
            let mut a = g.pkt.clone();
            apply(&mut a, &Compiled::new(&k, &r)).unwrap();
            let mut b = g.pkt.clone();
            rewrite(&mut b, &r).unwrap();
            assert_eq!(a, b);
            assert_checksums(&g, &a, false);
            let got = rd16(&a, at);
            match g.proto() {
                proto::UDP => {
                    assert_eq!(got, 0xFFFF);
                    hits[0] += 1;
                }
                proto::TCP => {
                    assert_eq!(got, 0x0000);
                    hits[1] += 1;
                }
                _ => {
                    assert!(got == 0 || got == 0xFFFF);
                    hits[2] += 1;
                }
            }
        }
        assert!(hits.iter().all(|&n| n > 1000), "{hits:?}");
    }

    /// The one ICMP input where RFC 1624 would produce a checksum that does not verify: an echo
    /// reply rewritten to id 0 with seq 0 and no data is all zeros, so its checksum is 0xFFFF.
    #[test]
    fn icmp_all_zero_echo_reply() {
        let mut p = vec![0u8; 28];
        let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
        ipv4::Repr {
            src_addr: SRV,
            dst_addr: NAT,
            protocol: ipv4::Protocol::Icmp,
            payload_len: 8,
            ttl: 60,
            ident: 1,
            dont_frag: true,
            dscp_ecn: 0,
        }
        .emit(&mut ip);
        p[24..26].copy_from_slice(&0x0400u16.to_be_bytes());
        let c = !checksum::data(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        let k = flow_key(&p).unwrap();
        let r = rw(SRV, 0, IN, 0);
        let mut a = p.clone();
        apply(&mut a, &Compiled::new(&k, &r)).unwrap();
        let mut b = p.clone();
        rewrite(&mut b, &r).unwrap();
        assert_eq!(a, b);
        assert_eq!(rd16(&a, 22), 0xFFFF);
        assert_eq!(checksum::data(&a[20..]), 0xFFFF, "verifies");
    }

    /// A non-canonical 0xFFFF checksum with a rewrite whose delta sums to exactly 0 (port 0xFFFF
    /// → 0): `apply` must match `rewrite` (the `add_delta` zero case) and the recompute.
    #[test]
    fn noncanonical_zero_delta_edge() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0003);
        let mut seen = 0;
        for _ in 0..50_000 {
            let g = gen_packet(&mut rng, false, false);
            let at = g.l4_checksum_at();
            if g.proto() != proto::TCP || rd16(&g.pkt, at) != 0xFFFF {
                continue;
            }
            let mut g = g;
            let ihl = g.ihl();
            wr16(&mut g.pkt, ihl, 0xFFFF);
            // Keep the checksum valid (sum ≡ 0) after setting sport: re-solve on the seq word.
            let src = Ipv4Addr::from(u32::from_be_bytes(g.pkt[12..16].try_into().unwrap()));
            let dst = Ipv4Addr::from(u32::from_be_bytes(g.pkt[16..20].try_into().unwrap()));
            let c = l4_checksum_full(src, dst, proto::TCP, &g.datagram(&g.pkt));
            let w = ones_add(rd16(&g.pkt, ihl + 4), c);
            wr16(&mut g.pkt, ihl + 4, w);
            assert_eq!(
                l4_checksum_full(src, dst, proto::TCP, &g.datagram(&g.pkt)),
                0
            );
            wr16(&mut g.pkt, at, 0xFFFF);
            let k = flow_key(&g.pkt).unwrap();
            let r = rw(k.src, 0, k.dst, k.dport);
            let c = Compiled::new(&k, &r);
            assert!(c.l4_update && c.l4_delta == 0);
            let mut a = g.pkt.clone();
            apply(&mut a, &c).unwrap();
            let mut b = g.pkt.clone();
            rewrite(&mut b, &r).unwrap();
            assert_eq!(a, b);
            assert_eq!(rd16(&a, at), 0);
            assert_checksums(&g, &a, false);
            seen += 1;
        }
        assert!(seen > 50, "{seen}");
    }

    /// Swaps source and destination addresses and ports in place: the reply a peer would send.
    /// Checksums are unchanged because the sums are commutative.
    fn mirror(p: &mut [u8]) {
        let ihl = usize::from(p[0] & 0xF) * 4;
        for i in 0..4 {
            p.swap(12 + i, 16 + i);
        }
        if p[9] != proto::ICMP {
            p.swap(ihl, ihl + 2);
            p.swap(ihl + 1, ihl + 3);
        }
    }

    /// Property (3): in2out with Compiled(k → r), then the peer's reply out2in with
    /// Compiled(k' → r') restores the original bytes exactly (canonical checksums).
    #[test]
    fn prop_round_trip() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0004);
        for i in 0..200_000 {
            let g = gen_packet(&mut rng, true, true);
            let k = flow_key(&g.pkt).unwrap();
            let r = rand_rewrite(&mut rng, &k);
            let mut p = g.pkt.clone();
            apply(&mut p, &Compiled::new(&k, &r)).unwrap();
            mirror(&mut p);
            let k2 = key(r.dst, r.dport, r.src, r.sport, k.proto);
            assert_eq!(flow_key(&p), Ok(k2), "{i}");
            let r2 = rw(k.dst, k.dport, k.src, k.sport);
            apply(&mut p, &Compiled::new(&k2, &r2)).unwrap();
            mirror(&mut p);
            assert_eq!(p, g.pkt, "{i}: round trip {k:?} -> {r:?}");
        }
    }

    /// Property (4): an outside router's ICMP error about a translated packet, translated back,
    /// has valid inner and outer checksums and quotes the original inside packet (except TTL).
    #[test]
    fn prop_icmp_error_translation() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0005);
        let mut complete = 0;
        for i in 0..100_000 {
            let g = gen_packet(&mut rng, true, true);
            let orig = &g.pkt[..g.total];
            let k = flow_key(orig).unwrap();
            let r = rand_rewrite(&mut rng, &k);
            let mut sent = orig.to_vec();
            apply(&mut sent, &Compiled::new(&k, &r)).unwrap();
            let ihl = g.ihl();
            // The router's quote: 8 transport bytes, some more, or all of it; TTL as received
            // or decremented.
            let (ty, code) =
                [(3, 3), (3, 4), (11, 0), (11, 1), (12, 0), (4, 0), (5, 1)][rng.gen_range(0..7)];
            // With an RFC 4884 extension the quote is the first 128 bytes, zero padded.
            let ext: Vec<u8> = if matches!(ty, 3 | 11 | 12) && rng.gen_bool(0.25) {
                let n = 4 * rng.gen_range(1..=4);
                (0..n).map(|_| rng.gen::<u8>()).collect()
            } else {
                Vec::new()
            };
            let qlen = if ext.is_empty() {
                rng.gen_range(ihl + 8..=sent.len())
            } else {
                sent.len().min(128)
            };
            let mut quote = sent[..qlen].to_vec();
            let decremented = rng.gen_bool(0.25) && quote[8] > 0;
            if decremented {
                quote[8] -= 1;
                let c = checksum::ttl_decrement(rd16(&quote, 10));
                wr16(&mut quote, 10, c);
            }
            let mut err = build_error(ty, code, RTR, r.src, &quote, &ext);
            let pad = rng.gen_range(0..6);
            err.extend((0..pad).map(|_| 0xEE));
            let before = err.clone();
            assert_eq!(icmp_error_inner_key(&err), flow_key(&sent), "{i}");
            let e = parse_icmp_error(&err).unwrap();
            complete += usize::from(e.complete);
            rewrite_icmp_error(&mut err, RTR, k.src, &to(&k)).unwrap();
            // Outer header: addresses and checksum; the ICMP checksum over the whole message.
            assert_eq!(&err[12..16], &RTR.octets());
            assert_eq!(&err[16..20], &k.src.octets());
            assert_eq!(rd16(&err, 10), ip_checksum_full(&err));
            let end = usize::from(rd16(&err, 2));
            assert_eq!(
                checksum::data(&err[20..end]),
                0xFFFF,
                "{i}: outer ICMP checksum"
            );
            let mut m = err[20..end].to_vec();
            m[2..4].fill(0);
            assert_eq!(
                rd16(&err, 22),
                !checksum::data(&m),
                "{i}: equals a full recompute"
            );
            // Embedded header: the original's fields, TTL (and so the checksum) aside.
            let inner = &err[28..e.quote_end];
            assert_eq!(inner[..8], orig[..8], "{i}");
            assert_eq!(inner[9], orig[9]);
            assert_eq!(inner[12..ihl], orig[12..ihl], "{i}: addresses and options");
            assert_eq!(
                rd16(inner, 10),
                ip_checksum_full(inner),
                "{i}: embedded IP checksum"
            );
            if !decremented {
                assert_eq!(inner[..ihl], orig[..ihl]);
            }
            // Embedded transport bytes, checksum included when quoted, are the original's;
            // half a TCP checksum (a 17-byte quote) is left as the router quoted it.
            let n = if k.proto == proto::TCP && inner.len() - ihl == TCP_CHECKSUM + 1 {
                inner.len() - 1
            } else {
                inner.len()
            };
            assert_eq!(inner[ihl..n], orig[ihl..n], "{i}: embedded L4");
            // Bytes past the usable quote (RFC 4884 padding/extension, padding) are untouched.
            assert_eq!(err[e.quote_end..], before[e.quote_end..]);
            assert_eq!(icmp_error_inner_key(&err), Ok(k), "{i}");
        }
        assert!(complete > 10_000, "{complete}");
    }

    /// No function panics on arbitrary bytes, and none writes when it returns `Err`.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0006);
        let mut buf = [0u8; 160];
        let c = Compiled::new(&key(IN, 1, SRV, 2, proto::TCP), &rw(NAT, 3, SRV, 2));
        let r = rw(NAT, 3, SRV, 2);
        let mut ok = 0;
        for _ in 0..300_000 {
            rng.fill(&mut buf[..]);
            // Bias towards plausible headers so the deeper paths are reached.
            buf[0] = 0x40 | (buf[0] & 0x0F);
            buf[2] = 0;
            if rng.gen_bool(0.5) {
                buf[6] &= 0x20;
                buf[7] = 0;
            }
            buf[9] = [1, 6, 17, buf[9]][rng.gen_range(0..4)];
            if buf[9] == 1 && rng.gen_bool(0.5) {
                let ihl = usize::from(buf[0] & 0xF) * 4;
                if ihl + 28 < buf.len() {
                    buf[ihl] = [3, 11, 0, 8][rng.gen_range(0..4)];
                    buf[ihl + 8] = 0x40 | (buf[ihl + 8] & 0x0F);
                    buf[ihl + 10] = 0;
                }
            }
            let b = &mut buf[..rng.gen_range(0..=160)];
            let before = b.to_vec();
            let _ = flow_key(b);
            let _ = icmp_error_inner_key(b);
            if apply(b, &c).is_err() {
                assert_eq!(*b, before[..]);
            }
            if rewrite(b, &r).is_err() {
                assert_eq!(*b, before[..]);
            }
            if rewrite_fragment(b, NAT, SRV).is_ok() {
                ok += 1;
            }
            let before = b.to_vec();
            if rewrite_icmp_error(b, RTR, IN, &r).is_err() {
                assert_eq!(*b, before[..]);
            }
        }
        assert!(ok > 0);
    }

    /// A first fragment is translated exactly: the transport checksum, which covers the whole
    /// datagram, verifies once the untouched remaining fragments are appended.
    #[test]
    fn first_fragment_checksum_covers_whole_datagram() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0007);
        let mut n = 0;
        while n < 2_000 {
            let g = gen_packet(&mut rng, true, true);
            if g.rest.is_empty() {
                continue;
            }
            n += 1;
            let k = flow_key(&g.pkt).unwrap();
            let r = rand_rewrite(&mut rng, &k);
            let mut a = g.pkt.clone();
            apply(&mut a, &Compiled::new(&k, &r)).unwrap();
            let udp_zero = k.proto == proto::UDP && rd16(&g.pkt, g.l4_checksum_at()) == 0;
            assert_checksums(&g, &a, udp_zero);
        }
    }
}
