//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894), without the FCS.
//!
//! No VLAN support: a tagged frame shows up as `EtherType::Unknown(0x8100)`.

use core::fmt;
use core::str::FromStr;

use super::{enum_with_unknown, Error, Result};

/// Length of the Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;

mod field {
    use super::super::field::{Field, Rest};

    pub(super) const DESTINATION: Field = 0..6;
    pub(super) const SOURCE: Field = 6..12;
    pub(super) const ETHERTYPE: Field = 12..14;
    pub(super) const PAYLOAD: Rest = 14..;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xFF; 6]);
    /// The all-zero address `00:00:00:00:00:00` (ARP requests use it as the unknown target).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address held in a 6-byte slice.
    ///
    /// # Panics
    /// Panics if `data.len() != 6`.
    pub fn from_bytes(data: &[u8]) -> MacAddr {
        let mut bytes = [0; 6];
        bytes.copy_from_slice(data);
        MacAddr(bytes)
    }

    /// The six address bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the I/G bit (least significant bit of the first byte) is set; broadcast included.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address, i.e. the I/G bit is clear.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = Error;

    /// Parses six colon-separated groups of one or two hex digits (`02:00:00:00:00:0a`).
    ///
    /// # Errors
    /// `Error::Malformed` for anything else.
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut bytes = [0u8; 6];
        let mut groups = s.split(':');
        for byte in &mut bytes {
            let group = groups.next().ok_or(Error::Malformed)?;
            if group.is_empty() || group.len() > 2 || !group.bytes().all(|c| c.is_ascii_hexdigit())
            {
                return Err(Error::Malformed);
            }
            *byte = u8::from_str_radix(group, 16).map_err(|_| Error::Malformed)?;
        }
        if groups.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(MacAddr(bytes))
    }
}

enum_with_unknown! {
    /// The EtherType field: the protocol carried by the frame.
    pub enum EtherType(u16) {
        /// IPv4 (0x0800).
        Ipv4 = 0x0800,
        /// ARP (0x0806).
        Arp = 0x0806,
        /// IPv6 (0x86DD).
        Ipv6 = 0x86DD,
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Unknown(t) => write!(f, "ethertype {t:#06x}"),
        }
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length (accessors may panic; see `check_len`).
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer and checks that it holds a whole header.
    ///
    /// # Errors
    /// See [`Frame::check_len`].
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the 14-byte header; afterwards no accessor panics.
    ///
    /// # Errors
    /// `Error::Truncated` if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination MAC address.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source MAC address.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType.
    pub fn ethertype(&self) -> EtherType {
        let d = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([d[0], d[1]]))
    }

    /// Everything after the header, including any padding and trailing bytes.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Mutable access to everything after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }

    /// Mutable access to the 14 header bytes (for copying a precomputed rewrite).
    pub fn header_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[..HEADER_LEN]
    }
}

/// A high-level description of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source MAC address.
    pub src_addr: MacAddr,
    /// Destination MAC address.
    pub dst_addr: MacAddr,
    /// Protocol of the payload.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parses the header of a frame.
    ///
    /// # Errors
    /// `Error::Truncated` if the buffer is shorter than the header.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Length of the emitted header.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a frame (the payload is left untouched).
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME_BYTES: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination 02:00:00:00:00:02
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source 02:00:00:00:00:01
        0x08, 0x00, // EtherType IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    const DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(frame.dst_addr(), DST);
        assert_eq!(frame.src_addr(), SRC);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: SRC,
                dst_addr: DST,
                ethertype: EtherType::Ipv4
            }
        );
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 18];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr(DST);
        frame.set_src_addr(SRC);
        frame.set_ethertype(EtherType::Ipv4);
        frame
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, FRAME_BYTES);

        let mut bytes = [0u8; 18];
        bytes[14..].copy_from_slice(&FRAME_BYTES[14..]);
        let repr = Repr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: EtherType::Ipv4,
        };
        assert_eq!(repr.buffer_len(), HEADER_LEN);
        repr.emit(&mut Frame::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, FRAME_BYTES);

        let mut bytes = [0u8; 18];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame
            .header_mut()
            .copy_from_slice(&FRAME_BYTES[..HEADER_LEN]);
        assert_eq!(frame.header_mut().len(), HEADER_LEN);
        assert_eq!(&bytes[..HEADER_LEN], &FRAME_BYTES[..HEADER_LEN]);
    }

    #[test]
    fn truncated_and_header_only() {
        assert_eq!(
            Frame::new_checked(&FRAME_BYTES[..13]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Frame::new_checked(&[][..]).unwrap_err(), Error::Truncated);
        let frame = Frame::new_checked(&FRAME_BYTES[..14]).unwrap();
        assert!(frame.payload().is_empty());
    }

    #[test]
    fn ethertype_conversions() {
        assert_eq!(EtherType::from(0x0806), EtherType::Arp);
        assert_eq!(EtherType::from(0x86DD), EtherType::Ipv6);
        assert_eq!(EtherType::from(0x8100), EtherType::Unknown(0x8100));
        assert_eq!(u16::from(EtherType::Ipv4), 0x0800);
        assert_eq!(u16::from(EtherType::Unknown(0x88cc)), 0x88cc);
    }

    #[test]
    fn mac_addr() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        let mcast = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(mcast.is_multicast() && !mcast.is_broadcast() && !mcast.is_unicast());
        assert!(SRC.is_unicast() && !SRC.is_multicast());
        assert_eq!(MacAddr::default(), MacAddr::ZERO);
        assert_eq!(MacAddr::from_bytes(&FRAME_BYTES[..6]), DST);
        assert_eq!(DST.as_bytes(), &[2, 0, 0, 0, 0, 2]);
        assert_eq!(DST.to_string(), "02:00:00:00:00:02");
        assert_eq!(format!("{DST:?}"), "02:00:00:00:00:02");
        assert_eq!("02:00:00:00:00:02".parse::<MacAddr>(), Ok(DST));
        assert_eq!(
            "FF:ff:Ff:fF:ff:ff".parse::<MacAddr>(),
            Ok(MacAddr::BROADCAST)
        );
        assert_eq!("2:0:0:0:0:1".parse::<MacAddr>(), Ok(SRC));
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:02:03",
            "02:00:00:00:00:002",
            "02:00:00:00::02",
            "02-00-00-00-00-02",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:+2",
            "02:00:00:00:00:02:",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    #[should_panic]
    fn mac_from_bytes_wrong_len() {
        let _ = MacAddr::from_bytes(&[1, 2, 3]);
    }
}
