//! Zero-copy packet views and representations (layer L0, smoltcp style).
//!
//! `wire` owns the byte layout of every protocol the router touches: Ethernet II, ARP
//! (Ethernet/IPv4), IPv4, ICMPv4, UDP and TCP headers, plus the Internet checksum. It depends on
//! `core` only: no other module of the crate, no allocation, no `std` I/O and no `unsafe`.
//!
//! # Views and representations
//!
//! Each protocol has a view type (`ethernet::Frame<T>`, `ipv4::Packet<T>`, …) that wraps any
//! `T: AsRef<[u8]>` (add `AsMut<[u8]>` for the setters) and reads or writes fields in place with
//! `from_be_bytes`/`to_be_bytes`. The same type parses a received frame (`T = &[u8]`) and writes
//! into a UMEM frame (`T = &mut [u8]`) without copying. Some protocols also have a `Repr`, an
//! owned high-level description with `parse` (view → `Repr`), `buffer_len` and `emit`
//! (`Repr` → view), used by the control plane and by tests to build packets.
//!
//! # The `check_len` contract
//!
//! * `Packet::new_unchecked(buffer)` never fails and never reads the buffer. Accessors on an
//!   unchecked view **may panic** (out-of-bounds indexing) if the buffer is too short.
//! * `Packet::check_len()` inspects the buffer length and the length fields of the header. **After
//!   `check_len` returns `Ok(())`, no accessor, setter or `payload`/`payload_mut` call panics**, as
//!   long as the setters do not change a length field (`set_header_len`, `set_total_len`,
//!   `udp::Packet::set_len`); call `check_len` again after doing so.
//! * `Packet::new_checked(buffer)` is `new_unchecked` followed by `check_len`.
//! * `check_len` accepts **trailing bytes**: a buffer longer than the packet is fine. This is
//!   required because Ethernet pads short frames to 60 bytes, so an IPv4 packet of 28 bytes
//!   arrives in a 46-byte Ethernet payload. Length-bounded accessors stop at the length field:
//!   `ipv4::Packet::payload()` ends at `total_len`, `udp::Packet::payload()` ends at `len`.
//!   Protocols without a length field (Ethernet, ICMPv4, TCP) treat the whole buffer as the
//!   packet; the caller slices the buffer first (e.g. to the IPv4 payload).
//! * `check_len` does not check versions or checksums. `ipv4::Packet::validate` is the full
//!   RFC 1812 §5.2.2 input check, and `verify_checksum` exists wherever there is a checksum.
//! * `Repr::emit` panics if the buffer is shorter than `Repr::buffer_len()` (documented per type).
//!
//! # Layout conventions
//!
//! Field offsets live in a private `mod field` per protocol file, as `Range<usize>` (`Field`)
//! or `RangeFrom<usize>` (`Rest`) constants, so that every accessor is a single slice index.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod pretty;
pub mod tcp;
pub mod udp;

use core::fmt;

/// Field offset types shared by the per-protocol `mod field` tables.
pub(crate) mod field {
    /// A fixed byte range of a header field.
    pub(crate) type Field = core::ops::Range<usize>;
    /// Everything from an offset to the end of the buffer.
    pub(crate) type Rest = core::ops::RangeFrom<usize>;
}

/// Declares a `Copy` enum of named protocol numbers with an `Unknown(raw)` catch-all variant and
/// lossless conversions to and from the raw number (smoltcp's `enum_with_unknown!`).
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident = $value:expr
            ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $( #[$variant_attr] )*
                $variant,
            )+
            /// A value without a named variant (carries the raw number).
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

/// Why a buffer could not be viewed, parsed or validated as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the fixed header.
    Truncated,
    /// The IP version field is not 4.
    BadVersion,
    /// The header length field is below the minimum or beyond the buffer.
    BadHeaderLen,
    /// The total length field is below the header length or beyond the buffer.
    BadTotalLen,
    /// The checksum does not verify.
    BadChecksum,
    /// A field holds a value that the protocol does not allow.
    Malformed,
    /// A well-formed packet of a kind this module does not handle.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLen => "bad header length",
            Error::BadTotalLen => "bad total length",
            Error::BadChecksum => "bad checksum",
            Error::Malformed => "malformed packet",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl core::error::Error for Error {}

/// The result type of every fallible `wire` function.
pub type Result<T> = core::result::Result<T, Error>;

/// Deterministic pseudo-random numbers for the randomized tests (no external crates).
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64* generator; good enough to drive property tests reproducibly.
    #[derive(Debug, Clone)]
    pub(crate) struct Rng(u64);

    impl Rng {
        /// A generator seeded with `seed` (zero is remapped, xorshift must not start at 0).
        pub(crate) fn new(seed: u64) -> Rng {
            Rng((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
        }

        /// The next 64 random bits.
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// A value uniformly-ish in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next_u64() % n as u64).unwrap()
        }

        /// A random byte.
        pub(crate) fn byte(&mut self) -> u8 {
            self.next_u64().to_be_bytes()[0]
        }

        /// Fills `buf` with random bytes.
        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.byte();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        assert_eq!(Error::BadChecksum.to_string(), "bad checksum");
        let e: &dyn core::error::Error = &Error::Truncated;
        assert_eq!(e.to_string(), "truncated packet");
    }

    /// The `check_len` contract: after it succeeds, every accessor runs without panicking.
    #[test]
    fn check_len_contract_on_random_buffers() {
        let mut rng = test_rng::Rng::new(6);
        let addr = core::net::Ipv4Addr::new(192, 0, 2, 1);
        let mut buf = [0u8; 80];
        let mut ok = [0usize; 4];
        for _ in 0..100_000 {
            rng.fill(&mut buf);
            // Bias towards plausible length fields so that the checked paths are reached.
            buf[0] = 0x40 | (buf[0] & 0x0F);
            buf[2] = 0;
            buf[4] = 0;
            let b = &mut buf[..rng.below(81)];
            if let Ok(mut p) = ipv4::Packet::new_checked(&mut *b) {
                ok[0] += 1;
                let _ = (
                    p.version(),
                    p.dscp_ecn(),
                    p.ident(),
                    p.dont_frag(),
                    p.more_frags(),
                );
                let _ = (
                    p.frag_offset(),
                    p.is_fragment(),
                    p.is_first_fragment(),
                    p.ttl(),
                );
                let _ = (
                    p.protocol(),
                    p.checksum(),
                    p.src_addr(),
                    p.dst_addr(),
                    p.options(),
                );
                let _ = (p.header(), p.payload(), p.verify_checksum(), p.validate());
                let _ = ipv4::Repr::parse(&p);
                p.payload_mut().fill(0);
                p.header_mut()[1] = 0;
                p.fill_checksum();
                assert!(p.verify_checksum());
            }
            if let Ok(mut p) = udp::Packet::new_checked(&mut *b) {
                ok[1] += 1;
                let _ = (p.src_port(), p.dst_port(), p.checksum(), p.payload());
                let _ = p.verify_checksum(addr, addr);
                p.payload_mut().fill(1);
                p.fill_checksum(addr, addr);
                assert!(p.verify_checksum(addr, addr));
            }
            if let Ok(mut p) = tcp::Packet::new_checked(&mut *b) {
                ok[2] += 1;
                let _ = (
                    p.src_port(),
                    p.seq_number(),
                    p.ack_number(),
                    p.flags(),
                    p.urgent_at(),
                );
                let _ = (p.window_len(), p.payload(), p.verify_checksum(addr, addr));
                p.payload_mut().fill(2);
                p.fill_checksum(addr, addr);
                assert!(p.verify_checksum(addr, addr));
            }
            // Repr::parse runs check_len itself, so unchecked views are fine here.
            let _ = icmpv4::Repr::parse(&icmpv4::Packet::new_unchecked(&*b));
            if let Ok(mut p) = icmpv4::Packet::new_checked(&mut *b) {
                ok[3] += 1;
                let _ = (p.msg_type(), p.msg_code(), p.echo_ident(), p.echo_seq_no());
                let _ = (p.next_hop_mtu(), p.pointer(), p.data());
                p.data_mut().fill(3);
                p.fill_checksum();
                assert!(p.verify_checksum());
            }
            if let Ok(p) = arp::Packet::new_checked(&*b) {
                let _ = (
                    arp::Repr::parse(&p),
                    p.operation(),
                    p.target_hardware_addr(),
                );
            }
            if let Ok(mut f) = ethernet::Frame::new_checked(&mut *b) {
                let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload());
                f.payload_mut().fill(4);
                f.header_mut().fill(5);
            }
        }
        assert!(
            ok.iter().all(|&n| n > 1_000),
            "every view was exercised: {ok:?}"
        );
    }

    enum_with_unknown! {
        /// Test enum.
        pub enum Demo(u8) {
            /// One.
            One = 1,
            /// Two.
            Two = 2,
        }
    }

    #[test]
    fn enum_with_unknown_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Demo::from(v)), v);
        }
        assert_eq!(Demo::from(2), Demo::Two);
        assert_eq!(Demo::from(7), Demo::Unknown(7));
    }
}
