//! TCP header view (RFC 9293 §3.1): ports, sequence numbers, flags, window and checksum.
//!
//! No state machine. The view treats the whole buffer as the segment: slice it to the IPv4
//! payload first, since the checksum covers every byte of the buffer.

use core::net::Ipv4Addr;

use super::{checksum, Error, Result};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

/// IPv4 protocol number of TCP, used in the pseudo-header.
const PROTOCOL_TCP: u8 = 6;

/// Bits of the flags byte (byte 13).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo (RFC 3168).
    pub const ECE: u8 = 0x40;
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: u8 = 0x80;
}

mod field {
    use super::super::field::Field;

    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const SEQ_NUM: Field = 4..8;
    pub(super) const ACK_NUM: Field = 8..12;
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WIN_SIZE: Field = 14..16;
    pub(super) const CHECKSUM: Field = 16..18;
    pub(super) const URGENT: Field = 18..20;
}

/// A read/write view of a TCP segment.
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

    /// Checks the buffer against the data offset; afterwards no accessor panics.
    ///
    /// # Errors
    /// `Error::Truncated` if the buffer is shorter than 20 bytes, `Error::BadHeaderLen` if the
    /// data offset is below 5 words or beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadHeaderLen);
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

    fn read_u32(&self, f: super::field::Field) -> u32 {
        let d = &self.buffer.as_ref()[f];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        self.read_u32(field::SEQ_NUM)
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        self.read_u32(field::ACK_NUM)
    }

    /// The header length in bytes (data offset × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags byte: CWR ECE URG ACK PSH RST SYN FIN (see [`flags`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The FIN flag.
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// The SYN flag.
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// The RST flag.
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// The PSH flag.
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// The ACK flag.
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// The URG flag.
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// The window size.
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WIN_SIZE)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The payload: everything after `header_len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// The pseudo-header plus segment sum over the whole buffer.
    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let segment = self.buffer.as_ref();
        // A segment inside an IPv4 packet is < 64 KiB; saturating keeps a bogus buffer harmless.
        let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
        checksum::combine(&[
            checksum::pseudo_header(src, dst, PROTOCOL_TCP, len),
            checksum::data(segment),
        ])
    }

    /// Whether the checksum over pseudo-header and whole buffer verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.sum(src, dst) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, f: super::field::Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    fn write_u32(&mut self, f: super::field::Field, value: u32) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    fn set_flag(&mut self, flag: u8, value: bool) {
        let b = &mut self.buffer.as_mut()[field::FLAGS];
        *b = if value { *b | flag } else { *b & !flag };
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        self.write_u16(field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        self.write_u16(field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        self.write_u32(field::SEQ_NUM, value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        self.write_u32(field::ACK_NUM, value);
    }

    /// Sets the header length in bytes (stored as `value / 4` words), keeping the low nibble.
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0F) | ((value / 4) << 4);
    }

    /// Sets the whole flags byte.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets or clears FIN.
    pub fn set_fin(&mut self, value: bool) {
        self.set_flag(flags::FIN, value);
    }

    /// Sets or clears SYN.
    pub fn set_syn(&mut self, value: bool) {
        self.set_flag(flags::SYN, value);
    }

    /// Sets or clears RST.
    pub fn set_rst(&mut self, value: bool) {
        self.set_flag(flags::RST, value);
    }

    /// Sets or clears PSH.
    pub fn set_psh(&mut self, value: bool) {
        self.set_flag(flags::PSH, value);
    }

    /// Sets or clears ACK.
    pub fn set_ack(&mut self, value: bool) {
        self.set_flag(flags::ACK, value);
    }

    /// Sets or clears URG.
    pub fn set_urg(&mut self, value: bool) {
        self.set_flag(flags::URG, value);
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, value: u16) {
        self.write_u16(field::WIN_SIZE, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        self.write_u16(field::URGENT, value);
    }

    /// Mutable access to everything after `header_len`.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = usize::from(self.header_len());
        &mut self.buffer.as_mut()[header_len..]
    }

    /// Computes and stores the checksum over pseudo-header and whole buffer (RFC 9293 §3.1).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let csum = !self.sum(src, dst);
        self.set_checksum(csum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

    static SYN_BYTES: [u8; 24] = [
        0x9c, 0x40, // source port 40000
        0x00, 0x50, // destination port 80
        0x01, 0x02, 0x03, 0x04, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x60, // data offset 6 words (24 bytes)
        0x02, // flags: SYN
        0xfa, 0xf0, // window 64240
        0xfa, 0x80, // checksum (pseudo-header 198.18.0.2 > 203.0.113.9)
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option: MSS 1460
    ];

    static DATA_BYTES: [u8; 22] = [
        0x00, 0x50, // source port 80
        0x9c, 0x40, // destination port 40000
        0xa0, 0xb0, 0xc0, 0xd0, // sequence number
        0x01, 0x02, 0x03, 0x05, // acknowledgment number
        0x50, // data offset 5 words
        0x18, // flags: PSH ACK
        0x01, 0x00, // window 256
        0x42, 0x2a, // checksum (pseudo-header 203.0.113.9 > 198.18.0.2)
        0x00, 0x00, // urgent pointer
        b'h', b'i', // payload
    ];

    #[test]
    fn deconstruct_syn() {
        let p = Packet::new_checked(&SYN_BYTES[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh() && !p.urg());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xfa80);
        assert_eq!(p.urgent_at(), 0);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(CLIENT, SERVER));
        assert!(!p.verify_checksum(SERVER, Ipv4Addr::new(203, 0, 113, 10)));
    }

    #[test]
    fn deconstruct_data() {
        let p = Packet::new_checked(&DATA_BYTES[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), flags::PSH | flags::ACK);
        assert!(p.psh() && p.ack() && !p.syn());
        assert_eq!(p.seq_number(), 0xa0b0_c0d0);
        assert_eq!(p.ack_number(), 0x0102_0305);
        assert_eq!(p.payload(), b"hi");
        assert!(p.verify_checksum(SERVER, CLIENT));
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 24];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_src_port(40000);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_ack_number(0);
        p.buffer[12] = 0;
        p.set_header_len(24);
        p.set_flags(0);
        p.set_syn(true);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        assert!(p.payload_mut().is_empty());
        p.buffer[20..].copy_from_slice(&[0x02, 0x04, 0x05, 0xb4]);
        p.fill_checksum(CLIENT, SERVER);
        assert_eq!(bytes, SYN_BYTES);

        let mut bytes = [0u8; 22];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_src_port(80);
        p.set_dst_port(40000);
        p.set_seq_number(0xa0b0_c0d0);
        p.set_ack_number(0x0102_0305);
        p.set_header_len(20);
        p.set_psh(true);
        p.set_ack(true);
        p.set_window_len(256);
        p.payload_mut().copy_from_slice(b"hi");
        p.fill_checksum(SERVER, CLIENT);
        assert_eq!(bytes, DATA_BYTES);
    }

    #[test]
    fn flag_setters() {
        let mut bytes = DATA_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_flags(0);
        fn set(p: &mut Packet<&mut [u8]>, flag: u8, value: bool) {
            match flag {
                flags::FIN => p.set_fin(value),
                flags::SYN => p.set_syn(value),
                flags::RST => p.set_rst(value),
                flags::PSH => p.set_psh(value),
                flags::ACK => p.set_ack(value),
                _ => p.set_urg(value),
            }
        }
        for flag in [
            flags::FIN,
            flags::SYN,
            flags::RST,
            flags::PSH,
            flags::ACK,
            flags::URG,
        ] {
            set(&mut p, flag, true);
            assert_eq!(p.flags(), flag);
            set(&mut p, flag, false);
            assert_eq!(p.flags(), 0);
        }
        p.set_flags(0xFF);
        assert!(p.fin() && p.syn() && p.rst() && p.psh() && p.ack() && p.urg());
        // set_header_len keeps the reserved/AE low nibble.
        p.buffer[12] = 0x5F;
        p.set_header_len(60);
        assert_eq!(p.buffer[12], 0xFF);
        assert_eq!(p.header_len(), 60);
    }

    #[test]
    fn truncated_and_bad_header_len() {
        assert_eq!(
            Packet::new_checked(&SYN_BYTES[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&SYN_BYTES[..23]).unwrap_err(),
            Error::BadHeaderLen
        );
        for offset in [0u8, 0x40, 0xF0] {
            let mut bytes = SYN_BYTES;
            bytes[12] = offset;
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                Error::BadHeaderLen
            );
        }
        // Trailing bytes are payload for TCP: the caller slices to the segment.
        let mut longer = [0u8; 30];
        longer[..24].copy_from_slice(&SYN_BYTES);
        let p = Packet::new_checked(&longer[..]).unwrap();
        assert_eq!(p.payload().len(), 6);
        assert!(!p.verify_checksum(CLIENT, SERVER));
    }
}
