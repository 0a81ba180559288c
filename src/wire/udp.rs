//! UDP header view (RFC 768): ports, length and the pseudo-header checksum.

use core::net::Ipv4Addr;

use super::{checksum, Error, Result};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// IPv4 protocol number of UDP, used in the pseudo-header.
const PROTOCOL_UDP: u8 = 17;

mod field {
    use super::super::field::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it (accessors may panic; see `check_len`).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and runs [`Packet::check_len`].
    ///
    /// # Errors
    /// See [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer against the length field; afterwards no accessor panics.
    ///
    /// Trailing bytes after `len` are accepted and excluded from `payload()` and the checksum.
    ///
    /// # Errors
    /// `Error::Truncated` if the buffer is shorter than 8 bytes, `Error::Malformed` if the length
    /// field is below 8 or beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let buffer_len = self.buffer.as_ref().len();
        if buffer_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > buffer_len {
            return Err(Error::Malformed);
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

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The length field: header plus payload in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The checksum field (0 means no checksum was computed).
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The payload, from byte 8 to `len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The pseudo-header plus datagram sum (the datagram bounded by `len`).
    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let len = self.len();
        let datagram = &self.buffer.as_ref()[..usize::from(len)];
        checksum::combine(&[
            checksum::pseudo_header(src, dst, PROTOCOL_UDP, u32::from(len)),
            checksum::data(datagram),
        ])
    }

    /// Whether the checksum verifies; a zero checksum means "none" and verifies (RFC 768).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.sum(src, dst) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, f: super::field::Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        self.write_u16(field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        self.write_u16(field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Mutable access to the payload, from byte 8 to `len`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }

    /// Computes and stores the checksum over pseudo-header and datagram.
    ///
    /// A computed zero is sent as `0xFFFF`, since zero means "no checksum" (RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let csum = !self.sum(src, dst);
        self.set_checksum(if csum == 0 { 0xFFFF } else { csum });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    static PACKET_BYTES: [u8; 12] = [
        0x04, 0xd2, // source port 1234
        0x00, 0x35, // destination port 53
        0x00, 0x0c, // length 12
        0xd1, 0x07, // checksum (pseudo-header 198.18.0.2 > 198.19.0.2)
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.src_port(), 1234);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0xd107);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, SRC.to_bits().wrapping_add(1).into()));
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 12];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_src_port(1234);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum(SRC, DST);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn padding_excluded() {
        let mut padded = [0x77u8; 20];
        padded[..12].copy_from_slice(&PACKET_BYTES);
        let mut p = Packet::new_checked(&mut padded[..]).unwrap();
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum(SRC, DST));
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xd107);
        assert_eq!(p.payload_mut().len(), 4);
    }

    #[test]
    fn truncated_and_bad_len() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..11]).unwrap_err(),
            Error::Malformed
        );
        for len in [0u16, 7, 13, 0xFFFF] {
            let mut bytes = PACKET_BYTES;
            Packet::new_unchecked(&mut bytes[..]).set_len(len);
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                Error::Malformed,
                "{len}"
            );
        }
        let mut bytes = PACKET_BYTES;
        Packet::new_unchecked(&mut bytes[..]).set_len(8);
        assert!(Packet::new_checked(&bytes[..])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn zero_checksum() {
        // Zero on the wire means "no checksum": it verifies whatever the content.
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_checksum(0);
        assert!(p.verify_checksum(SRC, DST));
        p.payload_mut()[0] ^= 0xFF;
        assert!(p.verify_checksum(SRC, DST));

        // A computed zero is sent as 0xFFFF: choose the payload so that the sum is −0.
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.payload_mut()[..2].fill(0);
        p.fill_checksum(SRC, DST);
        let c = p.checksum();
        p.payload_mut()[..2].copy_from_slice(&c.to_be_bytes());
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xFFFF);
        assert!(p.verify_checksum(SRC, DST));
        p.payload_mut()[3] ^= 1;
        assert!(!p.verify_checksum(SRC, DST));
    }
}
