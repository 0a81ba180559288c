//! Link monitoring through the whole router over memory I/O: a port going down withdraws
//! its routes and neighbours (and traffic follows what is left), coming up restores them,
//! an MTU change is what the next fragmentation-needed reports.
#![allow(clippy::tests_outside_test_module)]

mod common;

use common::*;

use xgw::{
    control::ControlEvent,
    dataplane::PuntReason,
    wire::{
        arp,
        icmpv4::{self, Message},
    },
};

/// Two ways to 203.0.113.0/24: the /24 through r1, and the default route through r2.
const CFG: &str = r#"
[[interface]]
name = "r0"
address = "198.18.0.1/24"
[[interface]]
name = "r1"
address = "198.19.0.1/24"
[[interface]]
name = "r2"
address = "192.0.2.1/24"
[[route]]
prefix = "203.0.113.0/24"
via = "198.19.0.2"
[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.2"
"#;

fn unreachable_code(t: &mut xgw::runtime::testbed::Testbed) -> Option<(Message, u8)> {
    let tx = t.take_tx(0);
    tx.first().map(|f| {
        let p = l3(f);
        let i = icmp_of(&p);
        (i.msg_type(), i.msg_code())
    })
}

#[test]
fn down_withdraws_routes_and_neighbours_up_restores_them() {
    let mut t = bed_with_server(CFG);
    let to_remote = Ip::udp(client(), ip("203.0.113.7"), 10).client_frame();
    t.push(0, &to_remote);
    t.step();
    assert_eq!(t.take_tx(1).len(), 1, "forwarded through r1");
    let neighbours = t.control().neighbors().len();

    // r1 goes down: its neighbour is flushed, the /24 through it is gone, so the packet
    // takes the default route: r2 must resolve its gateway first.
    t.link(1, false, 1500);
    assert_eq!(t.control().counters.get(ControlEvent::LinkDown), 1);
    assert_eq!(t.control().neighbors().len(), neighbours - 1);
    t.push(0, &to_remote);
    t.step();
    assert!(t.take_tx(1).is_empty(), "nothing to the dead port");
    let req = t.take_tx(2);
    assert_eq!(req.len(), 1, "ARP for the default gateway on r2");
    assert_eq!(parse_arp(&req[0]).target_protocol_addr, ip("192.0.2.2"));
    // The server's subnet is no longer connected either: it follows the default too.
    t.push(0, &Ip::udp(client(), server(), 10).client_frame());
    t.step();
    assert!(t.take_tx(1).is_empty());
    assert_eq!(unreachable_code(&mut t), None);
    // The router's address on the dead port still answers (it is the router's).
    t.push(0, &Ip::echo(client(), ip("198.19.0.1"), 1).client_frame());
    t.step();
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    assert_eq!(icmp_of(&l3(&tx[0])).msg_type(), Message::EchoReply);

    // Up again: the /24 is back and r1 resolves the server again.
    t.link(1, true, 1500);
    assert_eq!(t.control().counters.get(ControlEvent::LinkUp), 1);
    t.push(0, &to_remote);
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "ARP on r1 again");
    let r = parse_arp(&req[0]);
    assert_eq!(r.operation, arp::Operation::Request);
    assert_eq!(r.target_protocol_addr, server());
}

#[test]
fn all_routes_down_gives_net_unreachable() {
    let mut t = bed_with_server(CFG);
    t.link(1, false, 1500);
    t.link(2, false, 1500);
    t.push(0, &Ip::udp(client(), ip("203.0.113.7"), 10).client_frame());
    t.step();
    assert_eq!(
        unreachable_code(&mut t),
        Some((Message::DstUnreachable, icmpv4::dst_unreachable_code::NET))
    );
    assert!(t.counters().punted(PuntReason::NoRoute) >= 1);
    // The control plane sends nothing to a dead port (ARP retries for pinned gateways
    // included): counted, not queued.
    t.advance(std::time::Duration::from_secs(5));
    assert!(t.take_tx(1).is_empty() && t.take_tx(2).is_empty());
}

#[test]
fn mtu_change_is_what_frag_needed_reports() {
    let mut t = bed_with_server(CFG);
    let big = Ip::udp(client(), server(), 1400).df(true).client_frame(); // 1428 bytes of IP
    t.push(0, &big);
    t.step();
    assert_eq!(t.take_tx(1).len(), 1, "fits 1500");
    t.link(1, true, 1400);
    assert_eq!(t.control().counters.get(ControlEvent::LinkMtu), 1);
    assert_eq!(t.control().ports()[1].mtu, 1400);
    t.push(0, &big);
    t.step();
    assert!(t.take_tx(1).is_empty());
    let tx = t.take_tx(0);
    assert_eq!(tx.len(), 1);
    let p = l3(&tx[0]);
    let i = icmp_of(&p);
    assert_eq!(
        (i.msg_type(), i.msg_code()),
        (
            Message::DstUnreachable,
            icmpv4::dst_unreachable_code::FRAG_NEEDED
        )
    );
    assert_eq!(i.next_hop_mtu(), 1400);
    // Raised again: forwarded again.
    t.link(1, true, 1500);
    t.push(0, &big);
    t.step();
    assert_eq!(t.take_tx(1).len(), 1);
}

#[test]
fn a_flapping_link_settles_in_its_last_state() {
    let mut t = bed_with_server(CFG);
    for i in 0..2000 {
        t.link(1, i % 2 == 1, 1500);
    }
    // The last report (i = 1999) was up.
    assert_eq!(t.control().counters.get(ControlEvent::LinkDown), 1000);
    assert_eq!(t.control().counters.get(ControlEvent::LinkUp), 1000);
    t.push(0, &Ip::udp(client(), ip("203.0.113.7"), 10).client_frame());
    t.step();
    assert_eq!(t.take_tx(1).len(), 1, "ARP on r1: the route is back");
}

#[test]
fn a_recreated_interface_is_attached_and_forwards_again() {
    use xgw::kernel::{KernelMsg, LinkMsg};
    let mut t = bed_with_server(CFG);
    let to_remote = Ip::udp(client(), ip("203.0.113.7"), 10).client_frame();
    let link = |ifindex, up, mtu| {
        KernelMsg::Link(LinkMsg {
            ifindex,
            name: "r1".into(),
            admin_up: up,
            oper_up: up,
            mtu,
        })
    };
    let old = xgw::runtime::testbed::port_ifindex(1);
    t.kernel(&KernelMsg::LinkDeleted {
        ifindex: old,
        name: "r1".into(),
    });
    assert_eq!(t.control().counters.get(ControlEvent::LinkGone), 1);
    assert!(!t.control().links().is_up(1));
    // A new r1, first down with a smaller MTU: attached at once, but down.
    t.kernel(&link(77, false, 1400));
    assert_eq!(t.control().counters.get(ControlEvent::LinkBack), 1);
    assert_eq!(t.control().counters.get(ControlEvent::LinkReattached), 1);
    let l = &t.control().links().ports()[1];
    assert_eq!(
        (l.ifindex, l.gone, l.up, l.dev_mtu),
        (77, false, false, 1400)
    );
    assert_eq!(t.control().ports()[1].mtu, 1400);
    t.push(0, &to_remote);
    t.step();
    assert!(t.take_tx(1).is_empty(), "down: nothing to it yet");
    // It comes up: routes through it are back, its neighbours are resolved again.
    t.kernel(&link(77, true, 1400));
    assert!(t.control().links().is_up(1));
    t.take_tx(2);
    t.push(0, &to_remote);
    t.step();
    let req = t.take_tx(1);
    assert_eq!(req.len(), 1, "ARP for the server on the new r1");
    assert_eq!(parse_arp(&req[0]).target_protocol_addr, server());
    // Messages about the old device change nothing now.
    t.kernel(&KernelMsg::LinkDeleted {
        ifindex: old,
        name: "r1".into(),
    });
    assert!(t.control().links().is_up(1));
    assert_eq!(t.control().counters.get(ControlEvent::LinkGone), 1);
}

#[test]
fn a_failed_reattach_leaves_the_port_down_until_the_next_device() {
    let mut t = bed_with_server(CFG);
    let old = xgw::runtime::testbed::port_ifindex(1);
    t.kernel(&xgw::kernel::KernelMsg::LinkDeleted {
        ifindex: old,
        name: "r1".into(),
    });
    // The runtime could not attach (say, the socket was refused).
    t.control_mut()
        .reattached(1, 99, None, Err("refused".into()));
    assert_eq!(
        t.control().counters.get(ControlEvent::LinkReattachFailed),
        1
    );
    assert!(!t.control().links().is_up(1));
    assert!(t.control().links().ports()[1].gone);
    // A report for a device that is not the one pending attaches nothing either.
    t.control_mut().reattached(1, 99, None, Ok(()));
    assert!(t.control().links().ports()[1].gone);
}
