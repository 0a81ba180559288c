//! The `[nat]` section: NAPT (NAT44) on traffic leaving through one outside interface.
//!
//! ```toml
//! [nat]
//! outside = "r1"                   # translate traffic leaving through this interface
//! addresses = ["198.19.0.1"]       # external pool; default: the outside interface's addresses
//! inside = ["198.18.0.0/16"]       # sources eligible for translation; default: all
//! ports = "1024-65535"
//! filtering = "address-dependent"  # | "endpoint-independent" | "address-and-port-dependent"
//! max_sessions = 1000000
//! max_sessions_per_host = 16384    # sessions per inside host (RFC 6888 REQ-4/5), at most max_sessions
//! reassembly_bytes = 4194304       # virtual reassembly's memory budget (fragments held, datagrams tracked)
//! sessions_in_workers = true       # workers create outbound sessions themselves
//! xdp_prefilter = true             # XDP drops inbound TCP/UDP to ports without a mapping
//! inbound = "drop"                 # | "route": untranslated traffic from outside to inside destinations
//! [nat.timeouts]                   # RFC-safe defaults; lower values are rejected
//! udp = "300s"                     # RFC 4787 REQ-5: >= 120 s
//! tcp_established = "7440s"        # RFC 5382 REQ-5: >= 2 h 4 min
//! tcp_transitory = "240s"          # RFC 5382 REQ-5: >= 4 min
//! tcp_inbound_open = "30s"         # an inbound SYN the inside has not answered (RFC 7857 §2.1 MAY be < 4 min), >= 6 s
//! icmp = "60s"                     # RFC 5508 REQ-2: >= 60 s
//! [nat.log]                        # the event log, see config::natlog
//! target = "unix:/dev/log"
//! [[nat.forward]]                  # static port forward (DNAT)
//! protocol = "tcp"                 # tcp | udp
//! port = 8080                      # on the external address (the first pool address unless `address` is given)
//! to = "198.18.0.2:80"
//! ```

use std::{net::Ipv4Addr, ops::RangeInclusive, time::Duration};

use serde::Deserialize;

use super::{parse_duration, ConfigError, Interface};
use crate::wire::ipv4::{is_martian_source, Cidr};

/// Bounds of `nat.max_sessions`.
const MAX_SESSIONS: RangeInclusive<i64> = 1..=16_777_216;
/// Default `nat.max_sessions_per_host` (capped at `max_sessions`).
const DEFAULT_SESSIONS_PER_HOST: u32 = 16_384;
/// Bounds of `nat.reassembly_bytes` (64 KiB to 1 GiB).
const REASSEMBLY_BYTES: RangeInclusive<i64> = 65_536..=1 << 30;

/// `[nat]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// Name of the outside interface.
    pub outside: String,
    /// External address pool.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    /// Inside prefixes eligible for translation.
    #[serde(default)]
    pub inside: Option<Vec<String>>,
    /// External port range, `"lo-hi"`.
    #[serde(default = "default_ports")]
    pub ports: String,
    /// Inbound filtering behaviour.
    #[serde(default)]
    pub filtering: Filtering,
    /// Session table capacity.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: i64,
    /// Sessions per inside host (default: 16384, or `max_sessions` if smaller).
    #[serde(default)]
    pub max_sessions_per_host: Option<i64>,
    /// Virtual reassembly's byte budget.
    #[serde(default = "default_reassembly_bytes")]
    pub reassembly_bytes: i64,
    /// Workers create the sessions of new outbound UDP flows, ICMP queries and TCP SYNs themselves
    /// (default); false sends every first packet to the control thread.
    #[serde(default = "default_true")]
    pub sessions_in_workers: bool,
    /// The XDP program drops inbound TCP/UDP to external ports without a mapping (default)
    /// before they reach a worker; false leaves it to the workers.
    #[serde(default = "default_true")]
    pub xdp_prefilter: bool,
    /// What to do with packets arriving on the outside interface for inside destinations
    /// (not to an external address, so not translated).
    #[serde(default)]
    pub inbound: Inbound,
    /// `[nat.timeouts]`.
    #[serde(default)]
    pub timeouts: NatTimeoutsConfig,
    /// `[[nat.forward]]` static port forwards.
    #[serde(default)]
    pub forward: Vec<ForwardConfig>,
    /// `[nat.log]`: the event log (off when absent).
    #[serde(default)]
    pub log: Option<super::natlog::NatLogConfig>,
}

fn default_ports() -> String {
    "1024-65535".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_max_sessions() -> i64 {
    1_000_000
}

fn default_reassembly_bytes() -> i64 {
    4 << 20
}

/// RFC 4787 §5 filtering behaviour for inbound packets to an existing mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// Any external endpoint may send to a mapping (EIF).
    EndpointIndependent,
    /// Only addresses the inside endpoint has sent to (ADF, RFC 4787 REQ-8 default).
    #[default]
    AddressDependent,
    /// Only address:port pairs the inside endpoint has sent to (APDF).
    AddressAndPortDependent,
}

/// `[nat] inbound`: untranslated traffic from the outside interface to inside destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inbound {
    /// Dropped and counted (`nat44.inbound_refused`): the inside is reachable from outside
    /// only through mappings and forwards.
    #[default]
    Drop,
    /// Routed in like any transit packet (inside hosts with routable addresses).
    Route,
}

/// `[nat.timeouts]` as written (duration strings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatTimeoutsConfig {
    /// UDP mapping idle timeout.
    pub udp: String,
    /// TCP established idle timeout.
    pub tcp_established: String,
    /// TCP transitory (opening/closing) timeout.
    pub tcp_transitory: String,
    /// TCP opened from outside and not answered from inside.
    pub tcp_inbound_open: String,
    /// ICMP query idle timeout.
    pub icmp: String,
}

impl Default for NatTimeoutsConfig {
    fn default() -> Self {
        NatTimeoutsConfig {
            udp: "300s".into(),
            tcp_established: "7440s".into(),
            tcp_transitory: "240s".into(),
            tcp_inbound_open: "30s".into(),
            icmp: "60s".into(),
        }
    }
}

/// One `[[nat.forward]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `"tcp"` or `"udp"`.
    pub protocol: String,
    /// External port.
    pub port: i64,
    /// External address (default: the first pool address).
    #[serde(default)]
    pub address: Option<String>,
    /// Inside destination, `"a.b.c.d:port"`.
    pub to: String,
}

/// Validated NAT settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSettings {
    /// Port id of the outside interface.
    pub outside: usize,
    /// External address pool (non-empty).
    pub addresses: Vec<Ipv4Addr>,
    /// Inside prefixes eligible for translation (empty: every source).
    pub inside: Vec<Cidr>,
    /// Lowest external port.
    pub min_port: u16,
    /// Highest external port.
    pub max_port: u16,
    /// Inbound filtering.
    pub filtering: Filtering,
    /// Session table capacity.
    pub max_sessions: u32,
    /// Sessions per inside host.
    pub max_sessions_per_host: u32,
    /// Virtual reassembly's byte budget.
    pub reassembly_bytes: usize,
    /// Whether workers create outbound sessions themselves.
    pub sessions_in_workers: bool,
    /// Whether the XDP program drops inbound traffic to unmapped ports.
    pub xdp_prefilter: bool,
    /// Untranslated traffic from outside to inside destinations.
    pub inbound: Inbound,
    /// Idle timeouts.
    pub timeouts: NatTimeouts,
    /// Static port forwards.
    pub forwards: Vec<PortForward>,
    /// The event log.
    pub log: Option<super::natlog::NatLogSettings>,
}

/// Validated idle timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatTimeouts {
    /// UDP (>= 120 s).
    pub udp: Duration,
    /// TCP established (>= 7440 s).
    pub tcp_established: Duration,
    /// TCP transitory (>= 240 s).
    pub tcp_transitory: Duration,
    /// TCP opened from outside, unanswered (>= 6 s).
    pub tcp_inbound_open: Duration,
    /// ICMP query (>= 60 s).
    pub icmp: Duration,
}

/// A validated static port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// External address.
    pub external: Ipv4Addr,
    /// External port.
    pub port: u16,
    /// Inside address.
    pub to: Ipv4Addr,
    /// Inside port.
    pub to_port: u16,
}

type Err = (String, String);

fn e(field: impl Into<String>, msg: impl Into<String>) -> Err {
    (field.into(), msg.into())
}

/// Validate `[nat]` against the validated interfaces; errors are `(field, message)`.
pub(super) fn validate_nat(
    file: &str,
    n: &NatConfig,
    interfaces: &[Interface],
) -> Result<NatSettings, ConfigError> {
    nat(n, interfaces).map_err(|(field, message)| ConfigError::Invalid {
        file: file.to_owned(),
        line: None,
        col: None,
        field,
        message,
    })
}

fn nat(n: &NatConfig, interfaces: &[Interface]) -> Result<NatSettings, Err> {
    let outside = interfaces
        .iter()
        .position(|i| i.name == n.outside)
        .ok_or_else(|| e("nat.outside", format!("unknown interface `{}`", n.outside)))?;
    let addresses: Vec<Ipv4Addr> = match &n.addresses {
        None => interfaces[outside]
            .addresses
            .iter()
            .map(|c| c.address())
            .collect(),
        Some(list) => {
            if list.is_empty() {
                return Err(e(
                    "nat.addresses",
                    "must not be empty (omit it to use r1's addresses)",
                ));
            }
            let mut out = Vec::new();
            for (k, s) in list.iter().enumerate() {
                let f = format!("nat.addresses[{k}]");
                let a: Ipv4Addr = s
                    .parse()
                    .map_err(|_| e(&f, format!("`{s}` is not an IPv4 address")))?;
                if is_martian_source(a) || a.is_broadcast() {
                    return Err(e(f, format!("{a} is not a usable unicast address")));
                }
                if out.contains(&a) {
                    return Err(e(f, format!("{a} is listed twice")));
                }
                out.push(a);
            }
            out
        }
    };
    let mut inside = Vec::new();
    for (k, s) in n.inside.iter().flatten().enumerate() {
        let f = format!("nat.inside[{k}]");
        let c: Cidr = s
            .parse()
            .map_err(|_| e(&f, format!("`{s}` is not a prefix like 198.18.0.0/16")))?;
        if c.network() != c {
            return Err(e(
                f,
                format!("{s}: host bits set, did you mean {}?", c.network()),
            ));
        }
        // RFC 4787 REQ-7: internal and external addresses must not overlap.
        if let Some(a) = addresses.iter().find(|a| c.contains_addr(a)) {
            return Err(e(
                f,
                format!("{c} contains the external address {a} (RFC 4787 REQ-7)"),
            ));
        }
        inside.push(c);
    }
    let (min_port, max_port) = ports(&n.ports)?;
    if !MAX_SESSIONS.contains(&n.max_sessions) {
        let (lo, hi) = MAX_SESSIONS.into_inner();
        return Err(e(
            "nat.max_sessions",
            format!("{} out of range {lo}..={hi}", n.max_sessions),
        ));
    }
    let max_sessions =
        u32::try_from(n.max_sessions).map_err(|_| e("nat.max_sessions", "too large"))?;
    let max_sessions_per_host = match n.max_sessions_per_host {
        None => DEFAULT_SESSIONS_PER_HOST.min(max_sessions),
        Some(v) if v >= 1 && v <= i64::from(max_sessions) => {
            u32::try_from(v).map_err(|_| e("nat.max_sessions_per_host", "too large"))?
        }
        Some(v) => {
            return Err(e(
                "nat.max_sessions_per_host",
                format!("{v} out of range 1..={max_sessions} (nat.max_sessions)"),
            ))
        }
    };
    if !REASSEMBLY_BYTES.contains(&n.reassembly_bytes) {
        let (lo, hi) = REASSEMBLY_BYTES.into_inner();
        return Err(e(
            "nat.reassembly_bytes",
            format!("{} out of range {lo}..={hi}", n.reassembly_bytes),
        ));
    }
    let reassembly_bytes =
        usize::try_from(n.reassembly_bytes).map_err(|_| e("nat.reassembly_bytes", "too large"))?;
    let t = &n.timeouts;
    let d = |name: &str, text: &str, min: u64, why: &str| -> Result<Duration, Err> {
        let f = format!("nat.timeouts.{name}");
        let v = parse_duration(text).map_err(|m| e(&f, m))?;
        if v < Duration::from_secs(min) {
            return Err(e(
                f,
                format!("`{text}` is below the {min} s minimum ({why})"),
            ));
        }
        Ok(v)
    };
    let timeouts = NatTimeouts {
        udp: d("udp", &t.udp, 120, "RFC 4787 REQ-5")?,
        tcp_established: d(
            "tcp_established",
            &t.tcp_established,
            7440,
            "RFC 5382 REQ-5",
        )?,
        tcp_transitory: d("tcp_transitory", &t.tcp_transitory, 240, "RFC 5382 REQ-5")?,
        tcp_inbound_open: d(
            "tcp_inbound_open",
            &t.tcp_inbound_open,
            6,
            "an inbound SYN's retransmissions must find it",
        )?,
        icmp: d("icmp", &t.icmp, 60, "RFC 5508 REQ-2")?,
    };
    let mut forwards: Vec<PortForward> = Vec::new();
    for (k, fw) in n.forward.iter().enumerate() {
        let f = |x: &str| format!("nat.forward[{k}].{x}");
        let proto = match fw.protocol.as_str() {
            "tcp" => 6,
            "udp" => 17,
            other => {
                return Err(e(
                    f("protocol"),
                    format!("`{other}`: expected \"tcp\" or \"udp\""),
                ))
            }
        };
        let port = u16::try_from(fw.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| e(f("port"), format!("{} out of range 1..=65535", fw.port)))?;
        let external = match &fw.address {
            None => addresses[0],
            Some(s) => {
                let a: Ipv4Addr = s
                    .parse()
                    .map_err(|_| e(f("address"), format!("`{s}` is not an IPv4 address")))?;
                if !addresses.contains(&a) {
                    return Err(e(f("address"), format!("{a} is not in the external pool")));
                }
                a
            }
        };
        let (to, to_port) = socket(&fw.to).ok_or_else(|| {
            e(
                f("to"),
                format!("`{}` is not an address:port like 198.18.0.2:80", fw.to),
            )
        })?;
        if addresses.contains(&to) || is_martian_source(to) {
            return Err(e(f("to"), format!("{to} is not an inside host address")));
        }
        if !inside.is_empty() && !inside.iter().any(|c| c.contains_addr(&to)) {
            return Err(e(f("to"), format!("{to} is outside nat.inside")));
        }
        let on_inside_link = interfaces
            .iter()
            .enumerate()
            .any(|(i, iface)| i != outside && iface.addresses.iter().any(|c| c.contains_addr(&to)));
        if !on_inside_link {
            return Err(e(
                f("to"),
                format!("{to} is not on a connected inside subnet"),
            ));
        }
        if let Some(j) = forwards
            .iter()
            .position(|x| x.proto == proto && x.port == port && x.external == external)
        {
            return Err(e(
                f("port"),
                format!(
                    "{} {external}:{port} duplicates nat.forward[{j}]",
                    fw.protocol
                ),
            ));
        }
        // One inside endpoint, one forward: the NAT maps an inside (address, port) to one
        // external endpoint (endpoint-independent mapping), so a second forward to the same
        // target could only answer from the wrong external port.
        if let Some(j) = forwards
            .iter()
            .position(|x| x.proto == proto && x.to == to && x.to_port == to_port)
        {
            return Err(e(
                f("to"),
                format!(
                    "{} {to}:{to_port} is already the target of nat.forward[{j}]",
                    fw.protocol
                ),
            ));
        }
        forwards.push(PortForward {
            proto,
            external,
            port,
            to,
            to_port,
        });
    }
    Ok(NatSettings {
        outside,
        addresses,
        inside,
        min_port,
        max_port,
        filtering: n.filtering,
        max_sessions,
        max_sessions_per_host,
        reassembly_bytes,
        sessions_in_workers: n.sessions_in_workers,
        xdp_prefilter: n.xdp_prefilter,
        inbound: n.inbound,
        timeouts,
        forwards,
        log: n.log.as_ref().map(super::natlog::validate).transpose()?,
    })
}

fn ports(s: &str) -> Result<(u16, u16), Err> {
    let bad = || {
        e(
            "nat.ports",
            format!("`{s}`: expected a range like \"1024-65535\""),
        )
    };
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(e(
            "nat.ports",
            format!("`{s}`: need 1 <= low <= high <= 65535"),
        ));
    }
    Ok((lo, hi))
}

fn socket(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    let p: u16 = p.parse().ok().filter(|p| *p != 0)?;
    Some((a.parse().ok()?, p))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const BASE: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[interface]]\nname = \"r1\"\naddress = \"198.19.0.1/24\"\n";

    fn nat(extra: &str) -> Result<NatSettings, String> {
        parse(&format!("{BASE}{extra}"), "n.toml")
            .map(|c| c.nat.expect("nat section"))
            .map_err(|e| e.to_string())
    }

    fn err(extra: &str, field: &str, needle: &str) {
        let m = nat(extra).expect_err("should be rejected");
        assert!(m.contains(field) && m.contains(needle), "{m}");
    }

    #[test]
    fn defaults() {
        let n = nat("[nat]\noutside = \"r1\"\n").unwrap();
        assert_eq!(n.outside, 1);
        assert_eq!(n.addresses, vec![Ipv4Addr::new(198, 19, 0, 1)]);
        assert!(n.inside.is_empty());
        assert_eq!((n.min_port, n.max_port), (1024, 65535));
        assert_eq!(n.filtering, Filtering::AddressDependent);
        assert_eq!(n.max_sessions, 1_000_000);
        assert_eq!(n.timeouts.udp, Duration::from_secs(300));
        assert_eq!(n.timeouts.tcp_established, Duration::from_secs(7440));
        assert_eq!(n.timeouts.tcp_transitory, Duration::from_secs(240));
        assert_eq!(n.timeouts.tcp_inbound_open, Duration::from_secs(30));
        assert_eq!(n.max_sessions_per_host, 16_384);
        assert_eq!(n.reassembly_bytes, 4 << 20);
        assert_eq!(n.timeouts.icmp, Duration::from_secs(60));
        assert!(parse(BASE, "n.toml").unwrap().nat.is_none());
    }

    #[test]
    fn full_section() {
        let n = nat(r#"[nat]
outside = "r1"
addresses = ["198.19.0.1", "198.19.0.3"]
inside = ["198.18.0.0/16"]
ports = "2000-3000"
filtering = "endpoint-independent"
max_sessions = 1000
[nat.timeouts]
udp = "10m"
[[nat.forward]]
protocol = "tcp"
port = 8080
to = "198.18.0.2:80"
[[nat.forward]]
protocol = "udp"
port = 5353
address = "198.19.0.3"
to = "198.18.0.3:53"
"#)
        .unwrap();
        assert_eq!(n.addresses.len(), 2);
        assert_eq!((n.min_port, n.max_port), (2000, 3000));
        assert_eq!(n.filtering, Filtering::EndpointIndependent);
        assert_eq!(n.timeouts.udp, Duration::from_secs(600));
        assert_eq!(
            n.forwards[0],
            PortForward {
                proto: 6,
                external: Ipv4Addr::new(198, 19, 0, 1),
                port: 8080,
                to: Ipv4Addr::new(198, 18, 0, 2),
                to_port: 80
            }
        );
        assert_eq!(n.forwards[1].external, Ipv4Addr::new(198, 19, 0, 3));
    }

    #[test]
    fn errors_name_the_field() {
        err(
            "[nat]\noutside = \"r9\"\n",
            "nat.outside",
            "unknown interface",
        );
        err(
            "[nat]\noutside = \"r1\"\naddresses = []\n",
            "nat.addresses",
            "empty",
        );
        err(
            "[nat]\noutside = \"r1\"\naddresses = [\"x\"]\n",
            "nat.addresses[0]",
            "not an IPv4",
        );
        err(
            "[nat]\noutside = \"r1\"\ninside = [\"198.19.0.0/16\"]\n",
            "nat.inside[0]",
            "REQ-7",
        );
        err(
            "[nat]\noutside = \"r1\"\ninside = [\"198.18.0.1/16\"]\n",
            "nat.inside[0]",
            "host bits",
        );
        err(
            "[nat]\noutside = \"r1\"\nports = \"5000-4000\"\n",
            "nat.ports",
            "low <= high",
        );
        err(
            "[nat]\noutside = \"r1\"\nports = \"abc\"\n",
            "nat.ports",
            "range",
        );
        err(
            "[nat]\noutside = \"r1\"\nmax_sessions = 100\nmax_sessions_per_host = 101\n",
            "nat.max_sessions_per_host",
            "out of range 1..=100",
        );
        err(
            "[nat]\noutside = \"r1\"\nmax_sessions_per_host = 0\n",
            "nat.max_sessions_per_host",
            "out of range",
        );
        err(
            "[nat]\noutside = \"r1\"\n[nat.timeouts]\ntcp_inbound_open = \"5s\"\n",
            "nat.timeouts.tcp_inbound_open",
            "below the 6 s minimum",
        );
        err(
            "[nat]\noutside = \"r1\"\nreassembly_bytes = 1000\n",
            "nat.reassembly_bytes",
            "out of range 65536",
        );
        err(
            "[nat]\noutside = \"r1\"\nmax_sessions = 0\n",
            "nat.max_sessions",
            "out of range",
        );
        err(
            "[nat]\noutside = \"r1\"\n[nat.timeouts]\nudp = \"60s\"\n",
            "nat.timeouts.udp",
            "120 s",
        );
        err(
            "[nat]\noutside = \"r1\"\n[nat.timeouts]\ntcp_established = \"7200s\"\n",
            "nat.timeouts.tcp_established",
            "7440",
        );
        err(
            "[nat]\noutside = \"r1\"\n[nat.timeouts]\nicmp = \"30s\"\n",
            "nat.timeouts.icmp",
            "60 s",
        );
        let fw = |p: &str, port: &str, to: &str| {
            format!("[nat]\noutside = \"r1\"\n[[nat.forward]]\nprotocol = \"{p}\"\nport = {port}\nto = \"{to}\"\n")
        };
        err(
            &fw("sctp", "80", "198.18.0.2:80"),
            "nat.forward[0].protocol",
            "tcp",
        );
        err(
            &fw("tcp", "0", "198.18.0.2:80"),
            "nat.forward[0].port",
            "out of range",
        );
        err(
            &fw("tcp", "80", "198.18.0.2"),
            "nat.forward[0].to",
            "address:port",
        );
        err(
            &fw("tcp", "80", "192.0.2.9:80"),
            "nat.forward[0].to",
            "connected inside",
        );
        let dup = format!(
            "{}{}",
            fw("tcp", "80", "198.18.0.2:80"),
            "[[nat.forward]]\nprotocol = \"tcp\"\nport = 80\nto = \"198.18.0.3:80\"\n"
        );
        err(&dup, "nat.forward[1].port", "duplicates");
        // Two external ports to one inside endpoint (same protocol): refused; the same
        // target under the other protocol is a different endpoint.
        let same_target = format!(
            "{}{}",
            fw("tcp", "80", "198.18.0.2:80"),
            "[[nat.forward]]\nprotocol = \"tcp\"\nport = 8080\nto = \"198.18.0.2:80\"\n"
        );
        err(
            &same_target,
            "nat.forward[1].to",
            "198.18.0.2:80 is already the target of nat.forward[0]",
        );
        let other_proto = format!(
            "{}{}",
            fw("tcp", "80", "198.18.0.2:80"),
            "[[nat.forward]]\nprotocol = \"udp\"\nport = 8080\nto = \"198.18.0.2:80\"\n"
        );
        assert!(nat(&other_proto).is_ok(), "tcp and udp to one address:port");
        let m = nat("[nat]\noutside = \"r1\"\nfiltering = \"full-cone\"\n").unwrap_err();
        assert!(m.starts_with("n.toml:"), "{m}");
    }

    #[test]
    fn semantic_errors_carry_positions() {
        let m = nat("[nat]\noutside = \"r1\"\n[nat.timeouts]\nudp = \"60s\"\n").unwrap_err();
        assert!(m.starts_with("n.toml:10:"), "{m}");
    }
}
