//! IPv4 headers (RFC 791), the RFC 1812 input checks, CIDR prefixes and martian addresses.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use super::{checksum, enum_with_unknown, Error, Result};

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// Minimum MTU every IPv4 link must support (RFC 791 §3.2, "every internet module must be able
/// to forward a datagram of 68 octets without further fragmentation").
pub const MIN_MTU: usize = 68;

mod field {
    use super::super::field::Field;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const IDENT: Field = 4..6;
    pub(super) const FLG_OFF: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Field = 10..12;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;
}

/// Don't Fragment bit of the flags/fragment-offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
/// More Fragments bit of the flags/fragment-offset word.
const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (in units of 8 bytes).
const OFFSET_MASK: u16 = 0x1FFF;

enum_with_unknown! {
    /// The IPv4 protocol field (IANA "Assigned Internet Protocol Numbers").
    pub enum Protocol(u8) {
        /// ICMP (1).
        Icmp = 1,
        /// TCP (6).
        Tcp = 6,
        /// UDP (17).
        Udp = 17,
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Unknown(p) => write!(f, "proto {p}"),
        }
    }
}

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it (accessors may panic; see `check_len`).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and runs [`Packet::check_len`]; version and checksum are not checked.
    ///
    /// # Errors
    /// See [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer against the length fields; afterwards no accessor panics.
    ///
    /// Trailing bytes after `total_len` (Ethernet padding) are accepted.
    ///
    /// # Errors
    /// `Error::Truncated` if the buffer is shorter than 20 bytes, `Error::BadHeaderLen` if
    /// IHL × 4 < 20 or beyond the buffer, `Error::BadTotalLen` if `total_len` is below the
    /// header length or beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadHeaderLen);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// The full RFC 1812 §5.2.2 input validation; implies [`Packet::check_len`].
    ///
    /// RFC 1812 lists the checksum as step 2; it is checked last here because it needs a valid
    /// IHL to be computed. The set of accepted packets is the same, only the reported reason of a
    /// packet with several faults differs.
    ///
    /// # Errors
    /// The first failed step, in this order: `Truncated`, `BadVersion`, `BadHeaderLen`,
    /// `BadTotalLen`, `BadChecksum`.
    pub fn validate(&self) -> Result<()> {
        self.validate_lengths()?;
        // (2): the header checksum is correct.
        if !self.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(())
    }

    /// [`Packet::validate`] without the checksum step (2), for frames whose checksum the NIC
    /// has verified.
    ///
    /// # Errors
    /// `Truncated`, `BadVersion`, `BadHeaderLen` or `BadTotalLen`, as [`Packet::validate`].
    pub fn validate_lengths(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        // RFC 1812 §5.2.2 (1): the link-layer length is large enough to hold a minimal header.
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        // (3): the version number is 4.
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        // (4): the IHL is at least 5 (20 bytes).
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        // (5): the total length is large enough to hold the header.
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadTotalLen);
        }
        // §5.2.2 also requires the link layer to have delivered at least total_len bytes. With
        // header_len <= total_len <= len this also keeps the header within the buffer.
        if total_len > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, f: super::field::Field) -> u16 {
        let d = &self.buffer.as_ref()[f];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// The whole former TOS byte: DSCP (high 6 bits) and ECN (low 2 bits), RFC 2474 / RFC 3168.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length of header and payload in bytes.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENT)
    }

    /// The Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_DF != 0
    }

    /// The More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field is in units of 8 bytes).
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLG_OFF) & OFFSET_MASK) * 8
    }

    /// Whether this is a fragment: MF set or a non-zero offset (RFC 791 §3.2).
    pub fn is_fragment(&self) -> bool {
        self.read_u16(field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Whether the offset is zero: the first fragment, or not a fragment at all.
    pub fn is_first_fragment(&self) -> bool {
        self.read_u16(field::FLG_OFF) & OFFSET_MASK == 0
    }

    /// The time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload protocol.
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// The options: bytes 20 to `header_len`.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The header including options: the first `header_len` bytes.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.header_len())]
    }

    /// The payload, from `header_len` to `total_len` (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..usize::from(self.total_len())]
    }

    /// Whether the header checksum verifies (RFC 1071: the sum over the header is `0xFFFF`).
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.header()) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, f: super::field::Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the version (high nibble of byte 0), keeping the IHL.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0F) | (value << 4);
    }

    /// Sets the header length in bytes (stored as `value / 4`), keeping the version.
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xF0) | ((value / 4) & 0x0F);
    }

    /// Sets the whole DSCP/ECN byte.
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, value: u16) {
        self.write_u16(field::IDENT, value);
    }

    /// Sets or clears the Don't Fragment flag.
    pub fn set_dont_frag(&mut self, value: bool) {
        let raw = self.read_u16(field::FLG_OFF);
        let raw = if value { raw | FLAG_DF } else { raw & !FLAG_DF };
        self.write_u16(field::FLG_OFF, raw);
    }

    /// Sets or clears the More Fragments flag.
    pub fn set_more_frags(&mut self, value: bool) {
        let raw = self.read_u16(field::FLG_OFF);
        let raw = if value { raw | FLAG_MF } else { raw & !FLAG_MF };
        self.write_u16(field::FLG_OFF, raw);
    }

    /// Sets the fragment offset in bytes; it must be a multiple of 8 (lower bits are dropped).
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = self.read_u16(field::FLG_OFF);
        self.write_u16(field::FLG_OFF, (raw & !OFFSET_MASK) | (value / 8));
    }

    /// Clears the three flag bits (reserved, DF, MF), keeping the fragment offset.
    pub fn clear_flags(&mut self) {
        let raw = self.read_u16(field::FLG_OFF);
        self.write_u16(field::FLG_OFF, raw & OFFSET_MASK);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the payload protocol.
    pub fn set_protocol(&mut self, value: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(value);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes and stores the header checksum over `header_len` bytes (RFC 791 §3.1).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.header());
        self.set_checksum(!sum);
    }

    /// Mutable access to the header including options.
    pub fn header_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[..header_len]
    }

    /// Mutable access to the payload, from `header_len` to `total_len`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// A high-level description of an IPv4 header without options or fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: Protocol,
    /// Payload length in bytes (`total_len - header_len`).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification field.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_frag: bool,
    /// The whole DSCP/ECN byte.
    pub dscp_ecn: u8,
}

impl Repr {
    /// Parses a header after [`Packet::validate`]; options, MF and fragment offset are ignored.
    ///
    /// # Errors
    /// Whatever [`Packet::validate`] reports.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.validate()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - usize::from(packet.header_len()),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            dscp_ecn: packet.dscp_ecn(),
        })
    }

    /// Length of the emitted header ([`HEADER_LEN`]; options are never emitted).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (MF = 0, offset 0) with a correct checksum; the payload is untouched.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`] or if `HEADER_LEN + payload_len`
    /// exceeds 65,535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let total_len = u16::try_from(HEADER_LEN + self.payload_len)
            .expect("ipv4::Repr::emit: payload_len exceeds the IPv4 total length field");
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.write_u16(field::FLG_OFF, if self.dont_frag { FLAG_DF } else { 0 });
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

/// An IPv4 prefix: an address and a prefix length (host bits are kept; see [`Cidr::network`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Cidr {
    /// A prefix of `prefix_len` bits at `address`.
    ///
    /// # Panics
    /// Panics if `prefix_len > 32`.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Cidr {
        assert!(prefix_len <= 32, "IPv4 prefix length above 32");
        Cidr {
            address,
            prefix_len,
        }
    }

    /// A prefix of `prefix_len` bits at `address`, if `prefix_len <= 32`.
    ///
    /// # Errors
    /// `Error::Malformed` if `prefix_len > 32`.
    pub const fn try_new(address: Ipv4Addr, prefix_len: u8) -> Result<Cidr> {
        if prefix_len > 32 {
            Err(Error::Malformed)
        } else {
            Ok(Cidr {
                address,
                prefix_len,
            })
        }
    }

    /// The address as given (host bits included).
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length in bits (0..=32).
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The mask as a `u32`: `prefix_len` leading one bits.
    const fn mask_bits(&self) -> u32 {
        // `checked_shl` avoids the overflowing shift by 32 for /0.
        match u32::MAX.checked_shl(32 - self.prefix_len as u32) {
            Some(mask) => mask,
            None => 0,
        }
    }

    /// The netmask, e.g. 255.255.255.0 for /24 and 0.0.0.0 for /0.
    pub const fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.mask_bits())
    }

    /// The same prefix with the host bits cleared.
    pub const fn network(&self) -> Cidr {
        Cidr {
            address: Ipv4Addr::from_bits(self.address.to_bits() & self.mask_bits()),
            prefix_len: self.prefix_len,
        }
    }

    /// The directed broadcast address (all host bits set); `None` for /31 (RFC 3021) and /32.
    pub const fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            None
        } else {
            Some(Ipv4Addr::from_bits(
                self.address.to_bits() | !self.mask_bits(),
            ))
        }
    }

    /// Whether `addr` lies in this prefix.
    pub const fn contains_addr(&self, addr: &Ipv4Addr) -> bool {
        let mask = self.mask_bits();
        addr.to_bits() & mask == self.address.to_bits() & mask
    }

    /// Whether `other` lies entirely within this prefix (a prefix contains itself).
    pub const fn contains_subnet(&self, other: &Cidr) -> bool {
        self.prefix_len <= other.prefix_len && self.contains_addr(&other.address)
    }

    /// Whether the two prefixes share any address (for prefixes: one contains the other).
    pub const fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_subnet(other) || other.contains_subnet(self)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = Error;

    /// Parses `a.b.c.d/n` (n in 0..=32, decimal digits only); a bare address is a /32.
    ///
    /// # Errors
    /// `Error::Malformed` for anything else.
    fn from_str(s: &str) -> Result<Cidr> {
        let (addr, prefix_len) = match s.split_once('/') {
            Some((addr, len)) => {
                if len.is_empty() || len.len() > 2 || !len.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(Error::Malformed);
                }
                (addr, len.parse::<u8>().map_err(|_| Error::Malformed)?)
            }
            None => (s, 32),
        };
        let addr = addr.parse::<Ipv4Addr>().map_err(|_| Error::Malformed)?;
        Cidr::try_new(addr, prefix_len)
    }
}

/// Whether `a` is an invalid source address (RFC 1812 §5.3.7, RFC 6890).
///
/// True for 0.0.0.0/8 ("this network"; RFC 1812 §5.3.7: not forwarded from network 0),
/// 127.0.0.0/8 (loopback), 169.254.0.0/16 (link-local: RFC 3927 §7, a router MUST NOT
/// forward it), 224.0.0.0/4 (multicast, RFC 1812 §5.3.7 "not a unicast address") and
/// 240.0.0.0/4 (reserved class E, which includes 255.255.255.255).
pub const fn is_martian_source(a: Ipv4Addr) -> bool {
    let first = a.octets()[0];
    first == 0 || first == 127 || first >= 224 || is_link_local(a)
}

/// 169.254.0.0/16 (RFC 3927): never forwarded, as source or destination (§7).
const fn is_link_local(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 169 && o[1] == 254
}

/// Whether `a` is an invalid destination address (RFC 1812 §5.3.7, RFC 6890).
///
/// True for 0.0.0.0/8 (RFC 1812 §5.3.7: network 0, see also §4.2.3.1), 127.0.0.0/8
/// (loopback), 169.254.0.0/16 (link-local, RFC 3927 §7) and 240.0.0.0/4 except
/// 255.255.255.255 (class E, RFC 1812 §5.3.7). The limited
/// broadcast 255.255.255.255 and multicast 224.0.0.0/4 are *not* martian destinations, yet a
/// unicast router forwards neither: limited broadcasts MUST NOT be forwarded (RFC 1812
/// §5.3.5.1), and multicast forwarding needs a multicast routing protocol this router does not
/// run. The caller handles them as local or drops them.
pub const fn is_martian_destination(a: Ipv4Addr) -> bool {
    let first = a.octets()[0];
    first == 0 || first == 127 || (first >= 240 && a.to_bits() != u32::MAX) || is_link_local(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    static PACKET_BYTES: [u8; 30] = [
        0x45, // version 4, IHL 5
        0x00, // DSCP/ECN
        0x00, 0x1e, // total length 30
        0x12, 0x34, // ident
        0x40, 0x00, // flags DF, offset 0
        0x40, // TTL 64
        0x01, // protocol ICMP
        0x9c, 0x81, // header checksum
        198, 18, 0, 2, // source 198.18.0.2
        198, 19, 0, 2, // destination 198.19.0.2
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, // payload (10 bytes)
    ];

    static OPTIONS_BYTES: [u8; 28] = [
        0x46, // version 4, IHL 6
        0x00, // DSCP/ECN
        0x00, 0x1c, // total length 28
        0x12, 0x34, // ident
        0x40, 0x00, // flags DF, offset 0
        0x40, // TTL 64
        0x01, // protocol ICMP
        0x99, 0x82, // header checksum
        198, 18, 0, 2, // source
        198, 19, 0, 2, // destination
        0x01, 0x01, 0x01, 0x00, // options: NOP NOP NOP EOL
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: SRC,
            dst_addr: DST,
            protocol: Protocol::Icmp,
            payload_len: 10,
            ttl: 64,
            ident: 0x1234,
            dont_frag: true,
            dscp_ecn: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 30);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert!(p.is_first_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Icmp);
        assert_eq!(p.checksum(), 0x9c81);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert!(p.options().is_empty());
        assert_eq!(p.header(), &PACKET_BYTES[..20]);
        assert_eq!(p.payload(), &PACKET_BYTES[20..]);
        assert!(p.verify_checksum());
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(Repr::parse(&p), Ok(repr()));
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 30];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp_ecn(0);
        p.set_total_len(30);
        p.set_ident(0x1234);
        p.clear_flags();
        p.set_frag_offset(0);
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_ttl(64);
        p.set_protocol(Protocol::Icmp);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        p.payload_mut().copy_from_slice(&PACKET_BYTES[20..]);
        p.fill_checksum();
        assert_eq!(p.checksum(), 0x9c81);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn repr_emit() {
        let mut bytes = [0xa5u8; 30];
        bytes[20..].copy_from_slice(&PACKET_BYTES[20..]);
        assert_eq!(repr().buffer_len(), HEADER_LEN);
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn options() {
        let p = Packet::new_checked(&OPTIONS_BYTES[..]).unwrap();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x01, 0x01, 0x01, 0x00]);
        assert_eq!(p.header(), &OPTIONS_BYTES[..24]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        // Options are accepted and ignored.
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 4);
        let mut bytes = OPTIONS_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.header_mut()[20] = 0x00;
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_ne!(p.checksum(), 0x9982);
    }

    #[test]
    fn padding_is_accepted_and_excluded() {
        // Ethernet padding after total_len.
        let mut padded = [0u8; 46];
        padded[..30].copy_from_slice(&PACKET_BYTES);
        let mut p = Packet::new_checked(&mut padded[..]).unwrap();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.payload(), &PACKET_BYTES[20..]);
        assert_eq!(p.payload_mut().len(), 10);
        assert_eq!(Repr::parse(&p), Ok(repr()));
    }

    #[test]
    fn truncated() {
        for len in 0..20 {
            let p = Packet::new_unchecked(&PACKET_BYTES[..len]);
            assert_eq!(p.check_len(), Err(Error::Truncated));
            assert_eq!(p.validate(), Err(Error::Truncated));
        }
        // Header present, payload cut: total_len beyond the buffer.
        let p = Packet::new_unchecked(&PACKET_BYTES[..29]);
        assert_eq!(p.check_len(), Err(Error::BadTotalLen));
        assert_eq!(p.validate(), Err(Error::BadTotalLen));
        // Options header cut inside the options.
        let p = Packet::new_unchecked(&OPTIONS_BYTES[..22]);
        assert_eq!(p.check_len(), Err(Error::BadHeaderLen));
        assert_eq!(p.validate(), Err(Error::BadTotalLen));
    }

    /// `bytes` with `edit` applied and the checksum refilled (so only `edit`'s field is wrong).
    fn edited(edit: impl FnOnce(&mut Packet<&mut [u8]>)) -> [u8; 30] {
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        edit(&mut p);
        if p.header_len() >= 20 {
            p.fill_checksum();
        }
        bytes
    }

    #[test]
    fn validate_errors() {
        let b = edited(|p| p.set_version(6));
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len(), Ok(()), "check_len ignores the version");
        assert_eq!(p.validate(), Err(Error::BadVersion));
        assert_eq!(p.validate_lengths(), Err(Error::BadVersion));
        assert_eq!(Repr::parse(&p), Err(Error::BadVersion));

        for ihl_bytes in [0, 4, 16] {
            let b = edited(|p| p.set_header_len(ihl_bytes));
            let p = Packet::new_unchecked(&b[..]);
            assert_eq!(p.check_len(), Err(Error::BadHeaderLen));
            assert_eq!(p.validate(), Err(Error::BadHeaderLen));
        }
        // A longer IHL (options) is fine while it fits in total_len.
        let b = edited(|p| p.set_header_len(28));
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.validate(), Ok(()));
        let b = edited(|p| p.set_total_len(24));
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.payload().len(), 4);
        let mut b = edited(|p| p.set_total_len(24));
        Packet::new_unchecked(&mut b[..]).set_header_len(28);
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len(), Err(Error::BadTotalLen));
        assert_eq!(p.validate(), Err(Error::BadTotalLen));

        for total in [0, 19] {
            let b = edited(|p| p.set_total_len(total));
            let p = Packet::new_unchecked(&b[..]);
            assert_eq!(p.check_len(), Err(Error::BadTotalLen));
            assert_eq!(p.validate(), Err(Error::BadTotalLen));
            assert_eq!(p.validate_lengths(), Err(Error::BadTotalLen));
        }
        let b = edited(|p| p.set_total_len(31));
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len(), Err(Error::BadTotalLen));
        assert_eq!(p.validate(), Err(Error::BadTotalLen));

        let mut b = PACKET_BYTES;
        b[11] ^= 1;
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len(), Ok(()), "check_len ignores the checksum");
        assert!(!p.verify_checksum());
        assert_eq!(p.validate(), Err(Error::BadChecksum));
        assert_eq!(
            p.validate_lengths(),
            Ok(()),
            "validate_lengths skips only the checksum"
        );
        assert_eq!(Repr::parse(&p), Err(Error::BadChecksum));
        // A bit flip in the payload does not affect the header checksum.
        let mut b = PACKET_BYTES;
        b[25] ^= 1;
        assert_eq!(Packet::new_unchecked(&b[..]).validate(), Ok(()));
    }

    #[test]
    fn fragments() {
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.is_first_fragment() && p.dont_frag());
        p.set_frag_offset(1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment() && !p.is_first_fragment());
        p.set_more_frags(false);
        assert!(p.is_fragment() && !p.more_frags());
        p.set_frag_offset(65528);
        assert_eq!(p.frag_offset(), 65528);
        assert!(p.dont_frag());
        p.set_dont_frag(false);
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 65528);
        p.set_dont_frag(true);
        p.set_more_frags(true);
        p.clear_flags();
        assert!(!p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 65528);
        p.set_frag_offset(0);
        assert!(!p.is_fragment());
        assert_eq!(&bytes[6..8], &[0, 0]);
    }

    #[test]
    fn emit_ignores_fragmentation() {
        let mut bytes = [0xFFu8; 20];
        let r = Repr {
            dont_frag: false,
            payload_len: 0,
            ..repr()
        };
        r.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.validate(), Ok(()));
        assert!(!p.is_fragment() && !p.dont_frag());
        assert_eq!(Repr::parse(&p), Ok(r));
    }

    #[test]
    fn protocol_conversions() {
        assert_eq!(Protocol::from(6), Protocol::Tcp);
        assert_eq!(Protocol::from(17), Protocol::Udp);
        assert_eq!(Protocol::from(47), Protocol::Unknown(47));
        assert_eq!(u8::from(Protocol::Icmp), 1);
        assert_eq!(Protocol::Unknown(47).to_string(), "proto 47");
    }

    #[test]
    fn cidr_basics() {
        let c = Cidr::new(Ipv4Addr::new(192, 0, 2, 77), 24);
        assert_eq!(c.address(), Ipv4Addr::new(192, 0, 2, 77));
        assert_eq!(c.prefix_len(), 24);
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Cidr::new(Ipv4Addr::new(192, 0, 2, 0), 24));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(c.contains_addr(&Ipv4Addr::new(192, 0, 2, 0)));
        assert!(c.contains_addr(&Ipv4Addr::new(192, 0, 2, 255)));
        assert!(!c.contains_addr(&Ipv4Addr::new(192, 0, 3, 0)));
        assert_eq!(c.to_string(), "192.0.2.77/24");
        let c = Cidr::new(Ipv4Addr::new(198, 18, 0, 0), 15);
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 254, 0, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(c.contains_addr(&Ipv4Addr::new(198, 19, 0, 2)));
        assert!(!c.contains_addr(&Ipv4Addr::new(198, 20, 0, 0)));
    }

    #[test]
    fn cidr_edges() {
        let all = Cidr::new(Ipv4Addr::new(203, 0, 113, 1), 0);
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(all.network(), Cidr::new(Ipv4Addr::UNSPECIFIED, 0));
        assert_eq!(all.broadcast(), Some(Ipv4Addr::BROADCAST));
        assert!(all.contains_addr(&Ipv4Addr::new(198, 51, 100, 1)));
        assert!(all.contains_addr(&Ipv4Addr::BROADCAST));

        let p2p = Cidr::new(Ipv4Addr::new(198, 51, 100, 1), 31);
        assert_eq!(p2p.netmask(), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(p2p.broadcast(), None);
        assert_eq!(p2p.network().address(), Ipv4Addr::new(198, 51, 100, 0));
        assert!(p2p.contains_addr(&Ipv4Addr::new(198, 51, 100, 0)));
        assert!(!p2p.contains_addr(&Ipv4Addr::new(198, 51, 100, 2)));

        let host = Cidr::new(Ipv4Addr::new(198, 51, 100, 1), 32);
        assert_eq!(host.netmask(), Ipv4Addr::BROADCAST);
        assert_eq!(host.broadcast(), None);
        assert_eq!(host.network(), host);
        assert!(host.contains_addr(&Ipv4Addr::new(198, 51, 100, 1)));
        assert!(!host.contains_addr(&Ipv4Addr::new(198, 51, 100, 0)));

        assert_eq!(
            Cidr::try_new(Ipv4Addr::UNSPECIFIED, 32),
            Ok(Cidr::new(Ipv4Addr::UNSPECIFIED, 32))
        );
        assert_eq!(
            Cidr::try_new(Ipv4Addr::UNSPECIFIED, 33),
            Err(Error::Malformed)
        );
    }

    #[test]
    #[should_panic]
    fn cidr_new_rejects_33() {
        let _ = Cidr::new(Ipv4Addr::UNSPECIFIED, 33);
    }

    #[test]
    fn cidr_containment() {
        let c = |s: &str| s.parse::<Cidr>().unwrap();
        assert!(c("198.18.0.0/15").contains_subnet(&c("198.19.0.0/16")));
        assert!(!c("198.19.0.0/16").contains_subnet(&c("198.18.0.0/15")));
        assert!(c("198.18.0.0/15").contains_subnet(&c("198.18.0.0/15")));
        assert!(c("0.0.0.0/0").contains_subnet(&c("203.0.113.7/32")));
        assert!(c("203.0.113.7/32").contains_subnet(&c("203.0.113.7")));
        assert!(!c("203.0.113.7/32").contains_subnet(&c("203.0.113.6/31")));
        assert!(c("203.0.113.6/31").contains_subnet(&c("203.0.113.7/32")));
        assert!(c("198.18.0.0/15").overlaps(&c("198.19.128.0/17")));
        assert!(c("198.19.128.0/17").overlaps(&c("198.18.0.0/15")));
        assert!(!c("198.51.100.0/24").overlaps(&c("203.0.113.0/24")));
        assert!(!c("192.0.2.0/25").overlaps(&c("192.0.2.128/25")));
        assert!(c("0.0.0.0/0").overlaps(&c("192.0.2.128/25")));
    }

    #[test]
    fn cidr_parse() {
        assert_eq!(
            "192.0.2.0/24".parse(),
            Ok(Cidr::new(Ipv4Addr::new(192, 0, 2, 0), 24))
        );
        assert_eq!(
            "192.0.2.1".parse(),
            Ok(Cidr::new(Ipv4Addr::new(192, 0, 2, 1), 32))
        );
        assert_eq!("0.0.0.0/0".parse(), Ok(Cidr::new(Ipv4Addr::UNSPECIFIED, 0)));
        assert_eq!(
            "192.0.2.1/08".parse(),
            Ok(Cidr::new(Ipv4Addr::new(192, 0, 2, 1), 8))
        );
        for bad in [
            "",
            "/24",
            "192.0.2.0/",
            "192.0.2.0/33",
            "192.0.2.0/+4",
            "192.0.2.0/-1",
            "192.0.2.0/100",
            "192.0.2.0/24/1",
            "192.0.2/24",
            "192.0.2.256/24",
            " 192.0.2.0/24",
            "192.0.2.0 /24",
        ] {
            assert_eq!(bad.parse::<Cidr>(), Err(Error::Malformed), "{bad:?}");
        }
        let c = Cidr::new(Ipv4Addr::new(198, 51, 100, 9), 31);
        assert_eq!(c.to_string().parse(), Ok(c));
    }

    #[test]
    fn martians() {
        let a = Ipv4Addr::new;
        for src in [
            a(0, 0, 0, 0),
            a(0, 1, 2, 3),
            a(127, 0, 0, 1),
            a(127, 255, 255, 255),
            a(224, 0, 0, 1),
            a(239, 255, 255, 255),
            a(240, 0, 0, 1),
            a(255, 255, 255, 255),
            a(169, 254, 0, 1),
            a(169, 254, 255, 255),
        ] {
            assert!(is_martian_source(src), "{src}");
        }
        for src in [
            a(1, 0, 0, 0),
            a(126, 255, 255, 255),
            a(128, 0, 0, 0),
            a(198, 18, 0, 2),
            a(169, 253, 255, 255),
            a(169, 255, 0, 0),
        ] {
            assert!(!is_martian_source(src), "{src}");
        }
        for src in [
            a(192, 0, 2, 1),
            a(198, 51, 100, 1),
            a(203, 0, 113, 255),
            a(223, 255, 255, 255),
        ] {
            assert!(!is_martian_source(src), "{src}");
        }
        for dst in [
            a(0, 0, 0, 0),
            a(0, 255, 0, 1),
            a(127, 0, 0, 1),
            a(240, 0, 0, 0),
            a(255, 255, 255, 254),
            a(169, 254, 1, 1),
        ] {
            assert!(is_martian_destination(dst), "{dst}");
        }
        for dst in [
            a(255, 255, 255, 255),
            a(224, 0, 0, 1),
            a(239, 255, 255, 255),
            a(198, 19, 0, 2),
            a(203, 0, 113, 1),
            a(1, 0, 0, 0),
            a(126, 0, 0, 1),
            a(128, 0, 0, 1),
            a(169, 253, 0, 1),
        ] {
            assert!(!is_martian_destination(dst), "{dst}");
        }
    }
}
