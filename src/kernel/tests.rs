//! Decoding captured rtnetlink bytes. The fixtures in `testdata/` were recorded from this
//! kernel (6.18) with a `RTMGRP_LINK` socket in a scratch namespace while a veth pair (p0,
//! ifindex 3; p1, ifindex 2) was brought up, given MTU 1400, brought down and deleted.

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/src/kernel/testdata/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    hex(&std::fs::read_to_string(p).unwrap())
}

fn one(buf: &[u8]) -> KernelMsg {
    let mut out = Vec::new();
    let st = decode(buf, &mut out);
    assert_eq!(
        st,
        DecodeStats {
            decoded: 1,
            ..Default::default()
        }
    );
    out.pop().unwrap()
}

fn link(ifindex: u32, name: &str, admin_up: bool, oper_up: bool, mtu: u32) -> KernelMsg {
    KernelMsg::Link(LinkMsg {
        ifindex,
        name: name.into(),
        admin_up,
        oper_up,
        mtu,
    })
}

#[test]
fn link_states_from_captured_messages() {
    // `ip link set p1 up` while p0 is down: IFF_UP, no carrier (IFF_LOWER_UP clear).
    assert_eq!(
        one(&fixture("link_p1_up_lowerdown")),
        link(2, "p1", true, false, 1500)
    );
    // Both ends up: the carrier on.
    let up = one(&fixture("link_p1_oper_up"));
    assert_eq!(up, link(2, "p1", true, true, 1500));
    assert!(matches!(up, KernelMsg::Link(ref l) if l.is_up()));
    // `ip link set p0 mtu 1400`.
    assert_eq!(
        one(&fixture("link_p0_mtu1400")),
        link(3, "p0", true, true, 1400)
    );
    // `ip link set p1 down`.
    let down = one(&fixture("link_p1_admin_down"));
    assert_eq!(down, link(2, "p1", false, false, 1500));
    // `ip link del p0`.
    assert_eq!(
        one(&fixture("dellink_p0")),
        KernelMsg::LinkDeleted {
            ifindex: 3,
            name: "p0".into()
        }
    );
}

#[test]
fn the_carrier_counts_not_the_late_operstate() {
    // Captured right after `ip link set p0 up` with p1 up: IFF_LOWER_UP is set while
    // IFLA_OPERSTATE still says LOWERLAYERDOWN (linkwatch has not run yet). Up.
    let buf = hex(&std::fs::read_to_string(format!(
        "{}/src/kernel/testdata/link_p0_carrier_before_operstate.hex",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap());
    assert_eq!(one(&buf), link(3, "p0", true, true, 1500));
}

#[test]
fn several_messages_in_one_buffer() {
    let mut buf = fixture("link_p1_up_lowerdown");
    buf.extend(fixture("link_p0_mtu1400"));
    buf.extend(fixture("dellink_p0"));
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!(st.decoded, 3);
    assert_eq!(st.malformed, 0);
    assert_eq!(out[1], link(3, "p0", true, true, 1400));
}

#[test]
fn done_error_and_other_types() {
    // NLMSG_DONE (type 3) with its 4-byte status.
    let done = [20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(one(&done), KernelMsg::DumpDone { seq: 1 });
    // NLMSG_ERROR (type 2), error -EBUSY (16) and the offending header.
    let mut err = vec![36, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    err.extend((-16i32).to_ne_bytes());
    err.extend([16, 0, 0, 0, 18, 0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(one(&err), KernelMsg::Error { errno: 16, seq: 1 });
    // An ACK (error 0) and RTM_NEWADDR are ignored, not errors.
    let mut ack = err.clone();
    ack[16..20].copy_from_slice(&0i32.to_ne_bytes());
    let mut out = Vec::new();
    assert_eq!(decode(&ack, &mut out).ignored, 1);
    let mut addr = fixture("link_p0_mtu1400");
    addr[4] = 20; // RTM_NEWADDR: the body no longer parses as an address message
    let st = decode(&addr, &mut out);
    assert_eq!(st.decoded, 0);
    assert!(out.is_empty());
}

#[test]
fn malformed_input_is_counted_never_decoded() {
    let good = fixture("link_p0_mtu1400");
    let mut out = Vec::new();
    // Truncated: the header's length runs past the buffer.
    let st = decode(&good[..good.len() - 10], &mut out);
    assert_eq!((st.decoded, st.malformed), (0, 1));
    // A length below the header size.
    let mut bad = good.clone();
    bad[..4].copy_from_slice(&8u32.to_ne_bytes());
    assert_eq!(decode(&bad, &mut out).malformed, 1);
    // An attribute whose length runs past the message: the message is skipped, the next
    // one still decodes.
    let mut corrupt = good.clone();
    corrupt[32..34].copy_from_slice(&0xfff0u16.to_ne_bytes());
    corrupt.extend(fixture("dellink_p0"));
    let st = decode(&corrupt, &mut out);
    assert_eq!((st.decoded, st.malformed), (1, 1), "{out:?}");
    // Trailing bytes too short for a header.
    let mut tail = fixture("dellink_p0");
    tail.extend([1, 2, 3]);
    out.clear();
    let st = decode(&tail, &mut out);
    assert_eq!((st.decoded, st.malformed), (1, 1));
    assert!(decode(&[], &mut out) == DecodeStats::default());
}

#[test]
fn a_flood_of_messages_decodes_in_bounded_steps() {
    // 4000 link messages in one buffer (the largest a 64 KiB read could hold is ~40; a
    // reader hands over one read at a time): all decoded, in order.
    let one = fixture("link_p1_admin_down");
    let buf: Vec<u8> = std::iter::repeat_n(&one, 4000).flatten().copied().collect();
    let mut out = Vec::new();
    let st = decode(&buf, &mut out);
    assert_eq!(st.decoded, 4000);
    assert!(out.iter().all(|m| *m == link(2, "p1", false, false, 1500)));
}

#[test]
fn dump_request_is_a_getlink_dump() {
    let r = link_dump_request(7);
    assert_eq!(
        u32::from_ne_bytes(r[..4].try_into().unwrap()) as usize,
        r.len()
    );
    assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 18); // RTM_GETLINK
    assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301); // NLM_F_REQUEST | NLM_F_DUMP
    assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        prop_assert_eq!(st.decoded, out.len());
    }

    #[test]
    fn mutated_captures_never_panic(i in 0usize..1490, v in any::<u8>()) {
        let mut buf = fixture("link_p0_mtu1400");
        let i = i % buf.len();
        buf[i] = v;
        let mut out = Vec::new();
        let st = decode(&buf, &mut out);
        prop_assert!(st.decoded + st.malformed + st.ignored >= 1);
    }
}
