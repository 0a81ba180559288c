//! IPv4 fragmentation on the slow path (RFC 791 §3.2, RFC 1812 §4.2.2.7 / §5.2.6).

use crate::wire::ipv4::{Packet, HEADER_LEN};

/// Split `ip` (a valid IPv4 packet without DF) into fragments whose total length is at most
/// `mtu`. Fragment data is a multiple of 8 bytes except in the last one. Options are copied
/// into later fragments only when their copy flag is set (RFC 791). Preserves the offset and
/// MF of a packet that is already a fragment. Returns None if `mtu` cannot carry 8 bytes of
/// data.
pub fn fragment(ip: &[u8], mtu: usize) -> Option<Vec<Vec<u8>>> {
    let pkt = Packet::new_checked(ip).ok()?;
    let hlen = usize::from(pkt.header_len());
    let header = &ip[..hlen];
    let data = pkt.payload();
    let later_header = copied_options_header(header);
    let base_off = usize::from(pkt.frag_offset());
    let orig_mf = pkt.more_frags();
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let h = if off == 0 {
            header
        } else {
            later_header.as_slice()
        };
        let room = mtu.checked_sub(h.len())? & !7;
        if room == 0 {
            return None;
        }
        let end = (off + room).min(data.len());
        let last = end == data.len();
        let mut f = Vec::with_capacity(h.len() + end - off);
        f.extend_from_slice(h);
        f.extend_from_slice(&data[off..end]);
        let total = u16::try_from(f.len()).ok()?;
        let mut p = Packet::new_unchecked(&mut f[..]);
        p.set_total_len(total);
        p.set_frag_offset(u16::try_from(base_off + off).ok()?);
        p.set_more_frags(!last || orig_mf);
        p.fill_checksum();
        out.push(f);
        off = end;
    }
    Some(out)
}

/// The header for non-first fragments: options with the copied flag kept, padded to 4 bytes.
fn copied_options_header(header: &[u8]) -> Vec<u8> {
    let mut h = header[..HEADER_LEN].to_vec();
    let opts = &header[HEADER_LEN..];
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        match t {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else { break };
        let len = usize::from(len);
        if len < 2 || i + len > opts.len() {
            break;
        }
        if t & 0x80 != 0 {
            h.extend_from_slice(&opts[i..i + len]);
        }
        i += len;
    }
    while h.len() % 4 != 0 {
        h.push(0);
    }
    let hl = u8::try_from(h.len()).expect("options are at most 40 bytes");
    Packet::new_unchecked(&mut h[..]).set_header_len(hl);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{Protocol, Repr};
    use std::net::Ipv4Addr;

    fn packet(payload: usize, options: &[u8]) -> Vec<u8> {
        let repr = Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 2),
            dst_addr: Ipv4Addr::new(198, 19, 0, 2),
            protocol: Protocol::Udp,
            payload_len: payload,
            ttl: 63,
            ident: 0x4242,
            dont_frag: false,
            dscp_ecn: 0,
        };
        let hlen = HEADER_LEN + options.len();
        let mut buf = vec![0u8; hlen + payload];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        let data: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
        buf[hlen..].copy_from_slice(&data);
        buf[HEADER_LEN..hlen].copy_from_slice(options);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_header_len(u8::try_from(hlen).unwrap());
        p.set_total_len(u16::try_from(hlen + payload).unwrap());
        p.fill_checksum();
        buf
    }

    fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
        let mut data = Vec::new();
        for f in frags {
            let p = Packet::new_checked(&f[..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(usize::from(p.frag_offset()), data.len());
            data.extend_from_slice(p.payload());
        }
        data
    }

    #[test]
    fn fragments_fit_and_reassemble() {
        let pkt = packet(3000, &[]);
        let frags = fragment(&pkt, 1400).unwrap();
        assert_eq!(frags.len(), 3);
        for (i, f) in frags.iter().enumerate() {
            let p = Packet::new_checked(&f[..]).unwrap();
            assert!(f.len() <= 1400);
            assert_eq!(p.more_frags(), i < 2);
            assert_eq!(p.ident(), 0x4242);
            if i < 2 {
                assert_eq!(p.payload().len() % 8, 0);
            }
        }
        assert_eq!(reassemble(&frags), &pkt[20..]);
    }

    #[test]
    fn only_copied_options_repeat() {
        // Record route (0x07, not copied) then a 4-byte security-ish option with the copy bit.
        let opts = [0x07, 0x03, 0x04, 0x82, 0x04, 0xaa, 0xbb, 0x00];
        let pkt = packet(200, &opts);
        let frags = fragment(&pkt, 100).unwrap();
        assert_eq!(Packet::new_checked(&frags[0][..]).unwrap().header_len(), 28);
        let second = Packet::new_checked(&frags[1][..]).unwrap();
        assert_eq!(second.header_len(), 24);
        assert_eq!(second.options(), &[0x82, 0x04, 0xaa, 0xbb]);
        assert_eq!(reassemble(&frags), &pkt[28..]);
    }

    #[test]
    fn refragmenting_a_fragment_keeps_offset_and_mf() {
        let mut pkt = packet(1000, &[]);
        let mut p = Packet::new_unchecked(&mut pkt[..]);
        p.set_frag_offset(1480);
        p.set_more_frags(true);
        p.fill_checksum();
        let frags = fragment(&pkt, 500).unwrap();
        let last = Packet::new_checked(&frags[frags.len() - 1][..]).unwrap();
        assert!(last.more_frags());
        assert_eq!(
            Packet::new_checked(&frags[0][..]).unwrap().frag_offset(),
            1480
        );
        assert!(fragment(&pkt, 24).is_none());
    }
}
