//! ICMPv4 messages (RFC 792): echo, and the errors a router sends (RFC 1812 §4.3).
//!
//! The view treats the whole buffer as the message: slice it to the IPv4 payload first.

use core::fmt;

use super::{checksum, enum_with_unknown, Error, Result};

/// Length of the ICMP header: type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = 8;

mod field {
    use super::super::field::{Field, Rest};

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Field = 2..4;
    pub(super) const REST_OF_HEADER: Field = 4..8;
    pub(super) const ECHO_IDENT: Field = 4..6;
    pub(super) const ECHO_SEQNO: Field = 6..8;
    pub(super) const POINTER: usize = 4;
    pub(super) const MTU: Field = 6..8;
    pub(super) const DATA: Rest = 8..;
}

enum_with_unknown! {
    /// The ICMP message type.
    pub enum Message(u8) {
        /// Echo reply (0).
        EchoReply = 0,
        /// Destination unreachable (3).
        DstUnreachable = 3,
        /// Redirect (5).
        Redirect = 5,
        /// Echo request (8).
        EchoRequest = 8,
        /// Time exceeded (11).
        TimeExceeded = 11,
        /// Parameter problem (12).
        ParamProblem = 12,
        /// Timestamp (13).
        Timestamp = 13,
        /// Timestamp reply (14).
        TimestampReply = 14,
    }
}

impl Message {
    /// Whether this is an error message (3, 4 source quench, 5, 11, 12), which must never be
    /// answered with another ICMP error (RFC 1812 §4.3.2.7).
    pub const fn is_error(&self) -> bool {
        matches!(
            self,
            Message::DstUnreachable
                | Message::Redirect
                | Message::TimeExceeded
                | Message::ParamProblem
                | Message::Unknown(4)
        )
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::EchoReply => f.write_str("echo reply"),
            Message::DstUnreachable => f.write_str("dst unreachable"),
            Message::Redirect => f.write_str("redirect"),
            Message::EchoRequest => f.write_str("echo request"),
            Message::TimeExceeded => f.write_str("time exceeded"),
            Message::ParamProblem => f.write_str("param problem"),
            Message::Timestamp => f.write_str("timestamp"),
            Message::TimestampReply => f.write_str("timestamp reply"),
            Message::Unknown(t) => write!(f, "type {t}"),
        }
    }
}

/// Codes of [`Message::DstUnreachable`] (RFC 792, RFC 1812 §5.2.7.1).
pub mod dst_unreachable_code {
    /// Net unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 §4).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812 §5.2.7.1).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of [`Message::TimeExceeded`] (RFC 792).
pub mod time_exceeded_code {
    /// Time to live exceeded in transit.
    pub const TTL_EXPIRED: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const FRAG_REASSEMBLY: u8 = 1;
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length (accessors may panic; see `check_len`).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds the 8-byte header.
    ///
    /// # Errors
    /// See [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 8-byte header; afterwards no accessor panics.
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

    fn read_u16(&self, f: super::field::Field) -> u16 {
        let d = &self.buffer.as_ref()[f];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The message type.
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// The identifier of an echo request or reply (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT)
    }

    /// The sequence number of an echo request or reply (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a fragmentation-needed message (bytes 6..8, RFC 1191 §4).
    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::MTU)
    }

    /// The pointer of a parameter-problem message (byte 4).
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// Everything after the 8-byte header (echo data, or the quoted datagram of an error).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Whether the checksum over the whole buffer verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn write_u16(&mut self, f: super::field::Field, value: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = u8::from(value);
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.write_u16(field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.write_u16(field::ECHO_SEQNO, value);
    }

    /// Sets the next-hop MTU (bytes 6..8).
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.write_u16(field::MTU, value);
    }

    /// Sets the parameter-problem pointer (byte 4).
    pub fn set_pointer(&mut self, value: u8) {
        self.buffer.as_mut()[field::POINTER] = value;
    }

    /// Zeroes bytes 4..8 (the "unused" field of error messages).
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[field::REST_OF_HEADER].fill(0);
    }

    /// Mutable access to everything after the 8-byte header.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the checksum over the whole buffer (RFC 792).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(!sum);
    }
}

/// A high-level description of the ICMPv4 messages the router parses or builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// Echo request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (type 0, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// See [`dst_unreachable_code`].
        code: u8,
        /// Next-hop MTU for [`dst_unreachable_code::FRAG_NEEDED`], otherwise 0.
        next_hop_mtu: u16,
        /// The quoted IP header and leading payload of the offending datagram.
        quote: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// See [`time_exceeded_code`].
        code: u8,
        /// The quoted IP header and leading payload of the offending datagram.
        quote: &'a [u8],
    },
    /// Parameter problem (type 12, code 0).
    ParamProblem {
        /// Offset of the offending byte in the quoted header.
        pointer: u8,
        /// The quoted IP header and leading payload of the offending datagram.
        quote: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a message whose buffer is exactly the ICMP message (e.g. the IPv4 payload).
    ///
    /// # Errors
    /// `Truncated` if shorter than 8 bytes, `BadChecksum` if the checksum fails, `Malformed` for
    /// an echo with a non-zero code, `Unsupported` for any other message type.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let buffer: &'a T = packet.buffer;
        let data: &'a [u8] = &buffer.as_ref()[field::DATA];
        match (packet.msg_type(), packet.msg_code()) {
            (Message::EchoRequest, 0) => Ok(Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Message::EchoReply, 0) => Ok(Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Message::EchoRequest | Message::EchoReply, _) => Err(Error::Malformed),
            (Message::DstUnreachable, code) => Ok(Repr::DstUnreachable {
                code,
                next_hop_mtu: packet.next_hop_mtu(),
                quote: data,
            }),
            (Message::TimeExceeded, code) => Ok(Repr::TimeExceeded { code, quote: data }),
            (Message::ParamProblem, _) => Ok(Repr::ParamProblem {
                pointer: packet.pointer(),
                quote: data,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// The data or quote carried after the header.
    const fn body(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data,
            Repr::DstUnreachable { quote, .. }
            | Repr::TimeExceeded { quote, .. }
            | Repr::ParamProblem { quote, .. } => quote,
        }
    }

    /// Length of the emitted message: 8 bytes of header plus data or quote.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body().len()
    }

    /// Writes the message into the first `buffer_len()` bytes and fills the checksum over them.
    ///
    /// Bytes beyond `buffer_len()` are neither written nor covered by the checksum; slice the
    /// buffer to `buffer_len()` before sending or verifying.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len();
        let mut packet = Packet::new_unchecked(&mut packet.buffer.as_mut()[..len]);
        packet.clear_rest_of_header();
        match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                let msg = if matches!(self, Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                packet.set_msg_type(msg);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => {
                packet.set_msg_type(Message::DstUnreachable);
                packet.set_msg_code(code);
                packet.set_next_hop_mtu(next_hop_mtu);
            }
            Repr::TimeExceeded { code, .. } => {
                packet.set_msg_type(Message::TimeExceeded);
                packet.set_msg_code(code);
            }
            Repr::ParamProblem { pointer, .. } => {
                packet.set_msg_type(Message::ParamProblem);
                packet.set_msg_code(0);
                packet.set_pointer(pointer);
            }
        }
        packet.data_mut().copy_from_slice(self.body());
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ECHO_BYTES: [u8; 16] = [
        0x08, // type: echo request
        0x00, // code 0
        0x66, 0x68, // checksum
        0x00, 0x01, // identifier 1
        0x00, 0x01, // sequence number 1
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // data "abcdefgh"
    ];

    /// The IPv4 header of `ipv4::tests::PACKET_BYTES` plus the first 8 payload bytes.
    static QUOTE: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x9c, 0x81, 198, 18, 0, 2, 198,
        19, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
    ];

    static FRAG_NEEDED_BYTES: [u8; 36] = [
        0x03, // type: destination unreachable
        0x04, // code: fragmentation needed
        0x90, 0xd9, // checksum
        0x00, 0x00, // unused
        0x05, 0x78, // next-hop MTU 1400
        // quote (28 bytes)
        0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x9c, 0x81, 198, 18, 0, 2, 198,
        19, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
    ];

    const ECHO_DATA: &[u8] = b"abcdefgh";

    #[test]
    fn deconstruct_echo() {
        let p = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x6668);
        assert_eq!(p.echo_ident(), 1);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), ECHO_DATA);
        assert!(p.verify_checksum());
        assert_eq!(
            Repr::parse(&p),
            Ok(Repr::EchoRequest {
                ident: 1,
                seq_no: 1,
                data: ECHO_DATA
            })
        );
    }

    #[test]
    fn construct_echo() {
        let mut bytes = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_type(Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(1);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(ECHO_DATA);
        p.fill_checksum();
        assert_eq!(bytes, ECHO_BYTES);

        let repr = Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: ECHO_DATA,
        };
        assert_eq!(repr.buffer_len(), 16);
        let mut bytes = [0xa5u8; 20];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..16], &ECHO_BYTES);
        assert_eq!(&bytes[16..], &[0xa5; 4], "emit stays within buffer_len()");
    }

    #[test]
    fn echo_reply_round_trip() {
        let repr = Repr::EchoReply {
            ident: 0xbeef,
            seq_no: 7,
            data: &[1, 2, 3],
        };
        let mut bytes = [0u8; 11];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoReply);
        assert_eq!(Repr::parse(&p), Ok(repr));
    }

    #[test]
    fn deconstruct_frag_needed() {
        let p = Packet::new_checked(&FRAG_NEEDED_BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), Message::DstUnreachable);
        assert_eq!(p.msg_code(), dst_unreachable_code::FRAG_NEEDED);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.data(), &QUOTE);
        assert_eq!(
            Repr::parse(&p),
            Ok(Repr::DstUnreachable {
                code: dst_unreachable_code::FRAG_NEEDED,
                next_hop_mtu: 1400,
                quote: &QUOTE
            })
        );
    }

    #[test]
    fn construct_frag_needed() {
        let mut bytes = [0xa5u8; 36];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_type(Message::DstUnreachable);
        p.set_msg_code(dst_unreachable_code::FRAG_NEEDED);
        p.clear_rest_of_header();
        p.set_next_hop_mtu(1400);
        p.data_mut().copy_from_slice(&QUOTE);
        p.fill_checksum();
        assert_eq!(bytes, FRAG_NEEDED_BYTES);

        let mut bytes = [0xa5u8; 36];
        let repr = Repr::DstUnreachable {
            code: 4,
            next_hop_mtu: 1400,
            quote: &FRAG_NEEDED_BYTES[8..],
        };
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, FRAG_NEEDED_BYTES);
    }

    #[test]
    fn time_exceeded_and_param_problem() {
        // Golden prefixes: type, code, checksum, rest of header.
        let cases: [(Repr<'_>, [u8; 8]); 2] = [
            (
                Repr::TimeExceeded {
                    code: time_exceeded_code::TTL_EXPIRED,
                    quote: &QUOTE,
                },
                [0x0b, 0x00, 0x8e, 0x55, 0, 0, 0, 0],
            ),
            (
                Repr::ParamProblem {
                    pointer: 9,
                    quote: &QUOTE,
                },
                [0x0c, 0x00, 0x84, 0x55, 9, 0, 0, 0],
            ),
        ];
        for (repr, header) in cases {
            let mut bytes = [0xa5u8; 36];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            assert_eq!(&bytes[..8], &header);
            assert_eq!(&bytes[8..], &QUOTE);
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert!(p.msg_type().is_error());
            assert_eq!(Repr::parse(&p), Ok(repr));
        }
    }

    #[test]
    fn truncated_bad_checksum_unsupported() {
        assert_eq!(
            Packet::new_checked(&ECHO_BYTES[..7]).unwrap_err(),
            Error::Truncated
        );
        let header_only = Packet::new_checked(&ECHO_BYTES[..8]).unwrap();
        assert!(header_only.data().is_empty());
        assert_eq!(Repr::parse(&header_only), Err(Error::BadChecksum));

        let mut bytes = ECHO_BYTES;
        bytes[15] ^= 0x01;
        let p = Packet::new_unchecked(&bytes[..]);
        assert!(!p.verify_checksum());
        assert_eq!(Repr::parse(&p), Err(Error::BadChecksum));

        // Echo with a non-zero code.
        let mut bytes = ECHO_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_code(1);
        p.fill_checksum();
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Malformed)
        );

        // Timestamp: well-formed but unsupported.
        let mut bytes = ECHO_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_type(Message::Timestamp);
        p.fill_checksum();
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Unsupported)
        );
    }

    #[test]
    fn messages() {
        assert_eq!(Message::from(8), Message::EchoRequest);
        assert_eq!(Message::from(4), Message::Unknown(4));
        assert_eq!(u8::from(Message::TimeExceeded), 11);
        for t in 0..=255u8 {
            let expect = matches!(t, 3 | 4 | 5 | 11 | 12);
            assert_eq!(Message::from(t).is_error(), expect, "type {t}");
        }
        assert_eq!(Message::Unknown(42).to_string(), "type 42");
    }
}
