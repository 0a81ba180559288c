//! The router's configuration: TOML text in, a validated [`ValidConfig`] out.
//!
//! Owns the user interface of the router: the file format ([`Config`] and its sections, parsed
//! with serde, unknown fields rejected everywhere), the semantic checks ([`Config::validate`])
//! and the error messages ([`ConfigError`]). Depends only on `wire` (for [`Cidr`]); it must not
//! use any runtime module. Pure: [`load`] is the only function that does I/O.
//!
//! Contract:
//! - [`parse`] and [`load`] return either a [`ValidConfig`] the runtime can use without further
//!   checks, or exactly one error naming the file, the position when known, and the field path
//!   (`interface[1].address`, `route[2].via`, `icmp.burst`).
//! - Syntax errors display as `FILE:LINE:COL: message`; semantic errors as
//!   `FILE:LINE:COL: field: message`, or `FILE: field: message` when there is no position.
//! - In a [`ValidConfig`], an interface's index in `interfaces` is its port id, and route
//!   targets refer to interfaces by that index.
//!
//! ```toml
//! [[interface]]
//! name = "r0"
//! address = "198.18.0.1/24"
//! [[route]]
//! prefix = "0.0.0.0/0"
//! via = "198.18.0.254"
//! ```

mod control;
mod duration;
mod kernel;
mod nat;
mod natlog;
mod punt;
mod route;
mod span;
mod validate;

pub use control::{
    ControlConfig, ControlSettings, MetricsConfig, MetricsSettings, DEFAULT_METRICS, DEFAULT_SOCKET,
};
pub use duration::parse_duration;
pub use kernel::{KernelAddresses, KernelConfig, KernelSettings, TableRef};
pub use nat::{
    Filtering, ForwardConfig, Inbound, NatConfig, NatSettings, NatTimeouts, NatTimeoutsConfig,
    PortForward,
};
pub use natlog::{LogFormat, LogTarget, NatLogConfig, NatLogSettings};
pub use punt::{PuntClassConfig, PuntClassSettings, PuntConfig, PuntSettings, PUNT_CLASSES};

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::wire::ipv4::Cidr;

/// Largest interface MTU: a 4 KiB UMEM frame minus the XDP headroom (256), the tailroom the
/// kernel reserves for `skb_shared_info` (320) and an Ethernet header with VLAN tag and FCS
/// (22): 4096 - 256 - 320 - 22 = 3498.
pub const MAX_MTU: u16 = 3498;

/// Smallest interface MTU (RFC 791: every host must accept 68-byte datagrams).
pub const MIN_MTU: u16 = 68;

/// Most AF_XDP queues (and so workers) one interface may use.
pub const MAX_QUEUES: u32 = 64;

/// Longest interface name (Linux `IFNAMSIZ` minus the terminating NUL).
pub const MAX_IFNAME_LEN: usize = 15;

/// The configuration file as written (serde raw form); see [`Config::validate`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[[interface]]` sections, in port-id order.
    #[serde(default)]
    pub interface: Vec<InterfaceConfig>,
    /// `[[route]]` sections.
    #[serde(default)]
    pub route: Vec<RouteConfig>,
    /// `[icmp]` section.
    #[serde(default)]
    pub icmp: IcmpConfig,
    /// `[neighbor]` section.
    #[serde(default)]
    pub neighbor: NeighborConfig,
    /// `[nat]` section (NAT44 on one outside interface).
    #[serde(default)]
    pub nat: Option<NatConfig>,
    /// `[dataplane]` section (worker behaviour).
    #[serde(default)]
    pub dataplane: DataplaneConfig,
    /// `[punt]`: exception-path policers and queues.
    #[serde(default)]
    pub punt: PuntConfig,
    /// `[control]`: the operator's socket.
    #[serde(default)]
    pub control: ControlConfig,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[kernel]`: kernel mirror mode.
    #[serde(default)]
    pub kernel: KernelConfig,
}

/// `[dataplane]` as written; see [`DataplaneSettings`] for meanings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// Duration text, e.g. `"20ms"`.
    #[serde(deserialize_with = "duration_text")]
    pub idle_poll: String,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            idle_poll: "20ms".to_owned(),
        }
    }
}

/// Validated `[dataplane]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataplaneSettings {
    /// How long a worker keeps polling its rings after the last frame before it sleeps in
    /// `poll(2)` until traffic (or the control plane) wakes it. Polling costs a core while
    /// traffic flows; waking a sleeping worker costs latency (one wakeup per packet, tens of
    /// microseconds on a VM whose idle vCPUs halt). With no traffic the worker sleeps.
    pub idle_poll: Duration,
}

impl Default for DataplaneSettings {
    fn default() -> Self {
        DataplaneSettings {
            idle_poll: Duration::from_millis(20),
        }
    }
}

/// One `[[interface]]` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Netdev to attach to.
    pub name: String,
    /// Router address(es) on this link, each also a connected route. Optional in kernel
    /// mirror mode (the kernel's are used; see [`Config::adopt_kernel_addresses`]).
    #[serde(default)]
    pub address: Option<AddressList>,
    /// AF_XDP queues (= workers) to use; `None`: all the device has.
    #[serde(default)]
    pub queues: Option<i64>,
    /// IP MTU; `None`: the device MTU.
    #[serde(default)]
    pub mtu: Option<i64>,
    /// How the XDP program is attached.
    #[serde(default)]
    pub xdp_mode: XdpMode,
    /// How frames are transmitted.
    #[serde(default)]
    pub tx_path: TxPath,
}

/// `address = "a.b.c.d/n"` or `address = ["a.b.c.d/n", ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressList {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl AddressList {
    /// Each address with its field-path suffix (`""` for the single form, `"[i]"` in a list).
    pub fn entries(&self) -> Vec<(String, &str)> {
        match self {
            AddressList::One(s) => vec![(String::new(), s.as_str())],
            AddressList::Many(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("[{i}]"), s.as_str()))
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for AddressList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AddressList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address string like \"198.18.0.1/24\" or a list of them")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<AddressList, E> {
                Ok(AddressList::One(s.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AddressList, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(AddressList::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Driver mode (`XDP_FLAGS_DRV_MODE`): fast, needs driver support.
    #[default]
    Native,
    /// SKB mode (`XDP_FLAGS_SKB_MODE`): works everywhere, slow.
    Generic,
}

/// How a port transmits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxPath {
    /// XDP redirect from a live-frames `BPF_PROG_RUN` while the device accepts redirected
    /// frames and its AF_XDP socket runs in copy mode (veth, NICs without zero-copy);
    /// AF_XDP otherwise. Re-checked every second.
    #[default]
    Auto,
    /// Always the AF_XDP socket's TX ring.
    AfXdp,
}

/// Gateways of one multipath route at most.
pub const MAX_PATHS: usize = 16;

/// `via` as written: one gateway, or a list of them (equal-cost multipath).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ViaConfig {
    /// `via = "198.19.0.2"`.
    One(String),
    /// `via = ["198.19.0.2", "198.19.1.2"]`.
    Many(Vec<String>),
}

/// One `[[route]]` section as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination prefix, host bits clear.
    pub prefix: String,
    /// Next-hop address on a connected subnet, or several (ECMP).
    #[serde(default)]
    pub via: Option<ViaConfig>,
    /// With several `via`s: their weights (1..=255 each; default all 1).
    #[serde(default)]
    pub weights: Option<Vec<u16>>,
    /// Interface name, for on-link routes (or to pin `via` to one interface).
    #[serde(default)]
    pub dev: Option<String>,
    /// `"blackhole"` or `"unreachable"`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `[icmp]`: rate limit of ICMP errors (token bucket); also the validated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcmpConfig {
    /// ICMP errors per second; 0 disables them (fragmentation needed has its own bucket).
    pub rate: u32,
    /// Bucket depth.
    pub burst: u32,
    /// Errors per second to one destination (fragmentation needed exempt).
    pub per_destination_rate: u32,
    /// Its bucket depth.
    pub per_destination_burst: u32,
    /// Fragmentation-needed errors per second (PMTUD), a bucket of their own.
    pub frag_needed_rate: u32,
    /// Its bucket depth.
    pub frag_needed_burst: u32,
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            rate: 1000,
            burst: 50,
            per_destination_rate: 20,
            per_destination_burst: 20,
            frag_needed_rate: 1000,
            frag_needed_burst: 50,
        }
    }
}

/// `[neighbor]` as written; see [`NeighborSettings`] for meanings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeighborConfig {
    /// Upper bound on ARP cache entries.
    pub max_entries: i64,
    /// Upper bound on one port's entries (default: 3/4 of `max_entries`).
    pub max_entries_per_port: Option<i64>,
    /// Packets held per unresolved neighbour.
    pub queue_len: i64,
    /// Bytes held per unresolved neighbour.
    pub queue_bytes: i64,
    /// Bytes held for all unresolved neighbours together.
    pub total_queue_bytes: i64,
    /// Duration text, e.g. `"30s"`.
    #[serde(deserialize_with = "duration_text")]
    pub reachable_time: String,
    /// Duration text, e.g. `"1s"`.
    #[serde(deserialize_with = "duration_text")]
    pub retrans_time: String,
    /// ARP requests before the neighbour is declared unreachable.
    pub max_requests: i64,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            max_entries: 4096,
            max_entries_per_port: None,
            queue_len: 4096,
            queue_bytes: 212_992,
            total_queue_bytes: 4 << 20,
            reachable_time: "30s".to_owned(),
            retrans_time: "1s".to_owned(),
            max_requests: 3,
        }
    }
}

/// Accepts a duration string; a bare number gets a message saying why it is rejected.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string like \"30s\", \"500ms\", \"2m\" or \"1h\"")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_owned())
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
            Err(E::custom(format!(
                "a plain number is ambiguous: write a unit, e.g. \"{n}s\" or \"{n}ms\""
            )))
        }
    }
    d.deserialize_any(V)
}

/// The validated configuration the runtime uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidConfig {
    /// Interfaces; the index is the port id.
    pub interfaces: Vec<Interface>,
    /// Static routes (connected routes are implied by interface addresses).
    pub routes: Vec<Route>,
    /// ICMP error rate limit.
    pub icmp: IcmpConfig,
    /// ARP cache tunables.
    pub neighbor: NeighborSettings,
    /// NAT44, if configured.
    pub nat: Option<NatSettings>,
    /// Worker behaviour.
    pub dataplane: DataplaneSettings,
    /// Exception-path policers and queues.
    pub punt: PuntSettings,
    /// The control socket.
    pub control: ControlSettings,
    /// The metrics endpoint.
    pub metrics: MetricsSettings,
    /// Kernel mirror mode.
    pub kernel: KernelSettings,
}

impl ValidConfig {
    /// Port id of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }
}

/// A validated interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Netdev name (1..=15 bytes, unique).
    pub name: String,
    /// Router addresses on this link, at least one; also the connected routes.
    pub addresses: Vec<Cidr>,
    /// AF_XDP queues to use (1..=64); `None`: all the device has.
    pub queues: Option<u32>,
    /// IP MTU (68..=[`MAX_MTU`]); `None`: the device MTU.
    pub mtu: Option<u16>,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// Transmit path.
    pub tx_path: TxPath,
}

/// A validated static route. A route with several gateways is several `Route`s with the
/// same prefix, one `Via` each, in the order written (see `control::routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination, in network form (host bits clear).
    pub prefix: Cidr,
    /// What to do with matching packets.
    pub target: RouteTarget,
    /// The share of flows this gateway takes among the prefix's (1 for a single path).
    pub weight: u8,
}

/// Where a route sends packets; `interface` is an index into [`ValidConfig::interfaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Forward to `gateway`, a neighbour on a connected subnet of `interface`.
    Via {
        /// Next-hop address.
        gateway: Ipv4Addr,
        /// Port id of the interface whose subnet holds the gateway.
        interface: usize,
    },
    /// On-link: the destination itself is resolved with ARP on `interface`.
    Dev {
        /// Port id.
        interface: usize,
    },
    /// Drop silently.
    Blackhole,
    /// Drop and send ICMP destination unreachable (net unreachable).
    Unreachable,
    /// Drop and send ICMP destination unreachable, communication administratively
    /// prohibited (code 13, RFC 1812 §5.2.7.1).
    Prohibit,
}

/// Validated `[neighbor]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborSettings {
    /// Upper bound on ARP cache entries (the routes' next hops apart).
    pub max_entries: usize,
    /// Upper bound on one port's entries.
    pub max_entries_per_port: usize,
    /// Packets held per unresolved neighbour.
    pub queue_len: usize,
    /// Bytes held per unresolved neighbour (Linux's `unres_qlen_bytes`).
    pub queue_bytes: usize,
    /// Bytes held for all unresolved neighbours together.
    pub total_queue_bytes: usize,
    /// How long a confirmed neighbour stays Reachable.
    pub reachable_time: Duration,
    /// Interval between ARP requests for one neighbour.
    pub retrans_time: Duration,
    /// ARP requests before the neighbour is declared unreachable.
    pub max_requests: u32,
}

impl Default for NeighborSettings {
    fn default() -> Self {
        NeighborSettings {
            max_entries: 4096,
            max_entries_per_port: 3072,
            queue_len: 4096,
            queue_bytes: 212_992,
            total_queue_bytes: 4 << 20,
            reachable_time: Duration::from_secs(30),
            retrans_time: Duration::from_secs(1),
            max_requests: 3,
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// Path as given.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or not the expected shape (unknown field, wrong type).
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// 1-based line (1 if the parser gave no position).
        line: usize,
        /// 1-based column in characters (1 if the parser gave no position).
        col: usize,
        /// One-line description.
        message: String,
    },
    /// Well-formed but semantically wrong.
    #[error("{file}{}: {field}: {message}", position(.line, .col))]
    Invalid {
        /// File name.
        file: String,
        /// 1-based line of the offending value, if known.
        line: Option<usize>,
        /// 1-based column of the offending value, if known.
        col: Option<usize>,
        /// Field path, e.g. `interface[1].address`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The field path of a semantic error.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn position(line: &Option<usize>, col: &Option<usize>) -> String {
    match (line, col) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        _ => String::new(),
    }
}

/// Parses and validates configuration text; `file_name` is used in error messages.
///
/// # Errors
/// [`ConfigError::Syntax`] for TOML or shape errors, [`ConfigError::Invalid`] for semantic
/// errors, both with positions in `text`.
pub fn parse(text: &str, file_name: &str) -> Result<ValidConfig, ConfigError> {
    parse_with(text, file_name, None)
}

/// As [`parse`]; in kernel mirror mode, with the interfaces' addresses taken from (and
/// checked against) `kernel` (see [`Config::adopt_kernel_addresses`]).
///
/// # Errors
/// As [`parse`], and [`ConfigError::Invalid`] for an `address` the kernel disagrees with.
pub fn parse_with(
    text: &str,
    file_name: &str,
    kernel: Option<&KernelAddresses>,
) -> Result<ValidConfig, ConfigError> {
    let mut raw: Config = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| span::line_col(text, s.start));
        // toml's Display adds a multi-line snippet; the bare message is one line already,
        // but fold any newline so the error always fits one line.
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        ConfigError::Syntax {
            file: file_name.to_owned(),
            line,
            col,
            message,
        }
    })?;
    let adopted = match kernel {
        Some(k) => raw
            .adopt_kernel_addresses(k)
            .map_err(|(field, message)| ConfigError::Invalid {
                file: file_name.to_owned(),
                line: None,
                col: None,
                field,
                message,
            }),
        None => Ok(()),
    };
    adopted
        .and_then(|()| raw.validate(file_name))
        .map_err(|mut e| {
            if let ConfigError::Invalid {
                line, col, field, ..
            } = &mut e
            {
                if let Some((l, c)) = span::locate(text, field) {
                    *line = Some(l);
                    *col = Some(c);
                }
            }
            e
        })
}

/// Reads and validates the configuration file at `path`.
///
/// # Errors
/// [`ConfigError::Io`] if the file cannot be read; otherwise as [`parse`].
pub fn load(path: &Path) -> Result<ValidConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `configs/router.example.toml`, kept in sync by hand.
    const EXAMPLE: &str = r#"# xgw example configuration: a two-port lab router.
#
#   client 198.18.0.2 --- r0 [198.18.0.1/24]  xgw  [198.19.0.1/24] r1 --- server 198.19.0.2
#                                                                          (203.0.113.0/24 behind it)
#
# Each [[interface]] is a port; its position (0, 1, ...) is its port id in logs and counters.
# Unknown keys are errors, so a typo cannot silently fall back to a default.

[[interface]]
name = "r0"                   # netdev to attach to (client side)
address = "198.18.0.1/24"     # router address; also the connected route 198.18.0.0/24
                              # (a list works too: ["198.18.0.1/24", "198.51.100.1/24"])
# queues = 1                  # AF_XDP queues = workers; default: all the device has (1..=64)
# mtu = 1500                  # default: the device MTU (68..=3498)
# xdp_mode = "native"         # "native" (driver mode, default) or "generic" (skb mode, slow)
# tx_path = "auto"            # "auto": XDP redirect in batches where AF_XDP would copy (veth,
                              # NICs without zero-copy) and the device accepts redirected
                              # frames; "af_xdp": always the AF_XDP TX ring

[[interface]]
name = "r1"                   # server side
address = "198.19.0.1/24"
queues = 1
xdp_mode = "native"

# Connected subnets need no route. Static routes:
[[route]]
prefix = "203.0.113.0/24"     # network form: host bits must be clear
via = "198.19.0.2"            # next hop; must be on a connected subnet (add dev = "r1" to pin it)

# Other forms:
# [[route]]
# prefix = "0.0.0.0/0"
# dev = "r1"                  # on-link: ARP for each destination directly on r1
# [[route]]
# prefix = "192.0.2.0/24"
# type = "unreachable"        # drop + ICMP net unreachable; "blackhole" drops silently

[icmp]
rate = 1000                   # ICMP errors per second, token bucket (0 = never send any)
burst = 50                    # bucket depth

[neighbor]                    # ARP cache; these are the defaults
max_entries = 4096            # never more entries than this, whatever arrives
queue_len = 4096              # packets held per unresolved neighbour (oldest dropped first)
queue_bytes = 212992          # ... and bytes
total_queue_bytes = 4194304   # bytes held for all unresolved neighbours together
reachable_time = "30s"        # then re-validated with unicast ARP requests
retrans_time = "1s"           # at most one ARP request per neighbour per retrans_time
max_requests = 3              # unanswered requests before ICMP host unreachable

[dataplane]                   # worker behaviour; this is the default
idle_poll = "20ms"            # keep polling this long after the last frame, then sleep until
                              # traffic wakes the worker (polling costs a core while traffic
                              # flows; each wakeup costs tens of microseconds on a VM)
"#;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn example_config_parses() {
        let c = parse(EXAMPLE, "router.example.toml").unwrap();
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.interfaces[0].name, "r0");
        assert_eq!(c.interfaces[0].addresses, vec![cidr("198.18.0.1/24")]);
        assert_eq!(c.interfaces[1].addresses, vec![cidr("198.19.0.1/24")]);
        assert_eq!(c.interfaces[1].queues, Some(1));
        assert_eq!(
            c.routes,
            vec![Route {
                prefix: cidr("203.0.113.0/24"),
                target: RouteTarget::Via {
                    gateway: Ipv4Addr::new(198, 19, 0, 2),
                    interface: 1
                },
                weight: 1,
            }]
        );
        assert_eq!(c.icmp, IcmpConfig::default());
        assert_eq!(c.neighbor, NeighborSettings::default());
        assert_eq!(c.interface_index("r1"), Some(1));
    }

    #[test]
    fn full_config_round_trip() {
        let text = r#"
[[interface]]
name = "r0"
address = ["198.18.0.1/24", "198.51.100.1/25"]
queues = 4
mtu = 3498
xdp_mode = "generic"
tx_path = "af_xdp"

[[interface]]
name = "r1"
address = "198.19.0.1/31"
mtu = 68

[[route]]
prefix = "0.0.0.0/0"
via = "198.19.0.0"

[[route]]
prefix = "203.0.113.0/24"
via = "198.51.100.126"
dev = "r0"

[[route]]
prefix = "192.0.2.0/24"
dev = "r1"

[[route]]
prefix = "198.18.128.0/17"
type = "blackhole"

[[route]]
prefix = "203.0.113.128/32"
type = "unreachable"

[icmp]
rate = 0
burst = 0

[neighbor]
max_entries = 128
queue_len = 16
reachable_time = "2m"
retrans_time = "500ms"
max_requests = 5

[dataplane]
idle_poll = "1ms"
"#;
        let c = parse(text, "full.toml").unwrap();
        let want = ValidConfig {
            interfaces: vec![
                Interface {
                    name: "r0".into(),
                    addresses: vec![cidr("198.18.0.1/24"), cidr("198.51.100.1/25")],
                    queues: Some(4),
                    mtu: Some(MAX_MTU),
                    xdp_mode: XdpMode::Generic,
                    tx_path: TxPath::AfXdp,
                },
                Interface {
                    name: "r1".into(),
                    addresses: vec![cidr("198.19.0.1/31")],
                    queues: None,
                    mtu: Some(68),
                    xdp_mode: XdpMode::Native,
                    tx_path: TxPath::Auto,
                },
            ],
            routes: vec![
                Route {
                    prefix: cidr("0.0.0.0/0"),
                    target: RouteTarget::Via {
                        gateway: Ipv4Addr::new(198, 19, 0, 0),
                        interface: 1,
                    },
                    weight: 1,
                },
                Route {
                    prefix: cidr("203.0.113.0/24"),
                    target: RouteTarget::Via {
                        gateway: Ipv4Addr::new(198, 51, 100, 126),
                        interface: 0,
                    },
                    weight: 1,
                },
                Route {
                    prefix: cidr("192.0.2.0/24"),
                    target: RouteTarget::Dev { interface: 1 },
                    weight: 1,
                },
                Route {
                    prefix: cidr("198.18.128.0/17"),
                    target: RouteTarget::Blackhole,
                    weight: 1,
                },
                Route {
                    prefix: cidr("203.0.113.128/32"),
                    target: RouteTarget::Unreachable,
                    weight: 1,
                },
            ],
            icmp: IcmpConfig {
                rate: 0,
                burst: 0,
                ..IcmpConfig::default()
            },
            neighbor: NeighborSettings {
                max_entries: 128,
                max_entries_per_port: 96,
                queue_len: 16,
                queue_bytes: 212_992,
                total_queue_bytes: 4 << 20,
                reachable_time: Duration::from_secs(120),
                retrans_time: Duration::from_millis(500),
                max_requests: 5,
            },
            nat: None,
            dataplane: DataplaneSettings {
                idle_poll: Duration::from_millis(1),
            },
            punt: PuntSettings::default(),
            control: crate::config::ControlSettings::default(),
            metrics: crate::config::MetricsSettings::default(),
            kernel: crate::config::KernelSettings::default(),
        };
        assert_eq!(c, want);
    }

    #[test]
    fn defaults() {
        let c = parse(
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n",
            "d.toml",
        )
        .unwrap();
        let i = &c.interfaces[0];
        assert_eq!((i.queues, i.mtu, i.xdp_mode), (None, None, XdpMode::Native));
        assert!(c.routes.is_empty());
        assert_eq!(c.icmp, IcmpConfig::default());
        let n = c.neighbor;
        assert_eq!(
            (n.max_entries, n.queue_len, n.max_requests),
            (4096, 4096, 3)
        );
        assert_eq!((n.queue_bytes, n.total_queue_bytes), (212_992, 4 << 20));
        assert_eq!(n.reachable_time, Duration::from_secs(30));
        assert_eq!(n.retrans_time, Duration::from_secs(1));
        // A partly written section keeps the other defaults.
        let c = parse(
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[neighbor]\nqueue_len = 8\n\
             [icmp]\nrate = 10\n",
            "d.toml",
        )
        .unwrap();
        assert_eq!(
            c.neighbor,
            NeighborSettings {
                queue_len: 8,
                ..NeighborSettings::default()
            }
        );
        assert_eq!(
            c.icmp,
            IcmpConfig {
                rate: 10,
                ..IcmpConfig::default()
            }
        );
    }

    #[test]
    fn address_list_form() {
        let text = "[[interface]]\nname = \"r0\"\n\
                    address = [\"198.18.0.1/24\", \"198.51.100.1/24\", \"192.0.2.1/32\"]\n";
        let c = parse(text, "l.toml").unwrap();
        assert_eq!(
            c.interfaces[0].addresses,
            vec![
                cidr("198.18.0.1/24"),
                cidr("198.51.100.1/24"),
                cidr("192.0.2.1/32")
            ]
        );
        let e = parse("[[interface]]\nname = \"r0\"\naddress = [1]\n", "l.toml").unwrap_err();
        assert!(e.to_string().starts_with("l.toml:3:"), "{e}");
        let e = parse("[[interface]]\nname = \"r0\"\naddress = 7\n", "l.toml").unwrap_err();
        assert!(e.to_string().starts_with("l.toml:3:11: "), "{e}");
        assert!(e.to_string().contains("a list of them"), "{e}");
    }

    fn syntax(text: &str) -> (usize, usize, String) {
        match parse(text, "f.toml").unwrap_err() {
            ConfigError::Syntax {
                file,
                line,
                col,
                message,
            } => {
                assert_eq!(file, "f.toml");
                assert!(!message.contains('\n'), "one line: {message:?}");
                (line, col, message)
            }
            e => panic!("expected a syntax error, got {e}"),
        }
    }

    #[test]
    fn syntax_error_position() {
        let text = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\n";
        let (line, col, _) = syntax(text);
        assert_eq!(line, 3);
        let e = parse(text, "f.toml").unwrap_err().to_string();
        assert!(e.starts_with(&format!("f.toml:3:{col}: ")), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        let (line, _, _) = syntax("[[interface]]\nname = \"r0\"\n\n[icmp\n");
        assert_eq!(line, 4);
    }

    #[test]
    fn unknown_field_is_a_positioned_error() {
        let text = "[[interface]]\nname = \"r0\"\nadress = \"198.18.0.1/24\"\n";
        let (line, col, msg) = syntax(text);
        assert_eq!((line, col), (3, 1));
        assert!(msg.contains("unknown field `adress`"), "{msg}");
        let text = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[icmp]\nrat = 1\n";
        let (line, _, msg) = syntax(text);
        assert_eq!(line, 5);
        assert!(msg.contains("`rat`"), "{msg}");
        let (line, _, msg) =
            syntax("[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[bgp]\n");
        assert_eq!(line, 4);
        assert!(msg.contains("`bgp`"), "{msg}");
        let (line, _, msg) = syntax(
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[route]]\nprefix = \"0.0.0.0/0\"\ngw = \"x\"\n",
        );
        assert_eq!(line, 6);
        assert!(msg.contains("`gw`"), "{msg}");
    }

    #[test]
    fn shape_errors_are_positioned() {
        let base = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n";
        let (line, _, msg) = syntax(&format!("{base}xdp_mode = \"turbo\"\n"));
        assert_eq!(line, 4);
        assert!(msg.contains("native"), "{msg}");
        let (line, _, msg) = syntax(&format!("{base}[neighbor]\nreachable_time = 30\n"));
        assert_eq!(line, 5);
        assert!(msg.contains("ambiguous"), "{msg}");
        let (line, _, _) = syntax(&format!("{base}[icmp]\nrate = -1\n"));
        assert_eq!(line, 5);
        let (line, _, msg) = syntax("[[interface]]\naddress = \"198.18.0.1/24\"\n");
        assert_eq!(line, 1);
        assert!(msg.contains("name"), "{msg}");
    }

    #[test]
    fn validate_without_text_has_no_position() {
        let e = Config::default().validate("f.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: interface: at least one [[interface]] is required"
        );
        let e = parse("", "f.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: interface: at least one [[interface]] is required"
        );
    }

    #[test]
    fn load_reads_file_or_reports_io_error() {
        let dir = std::env::temp_dir().join(format!("xgw-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("router.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        assert_eq!(load(&path).unwrap().interfaces.len(), 2);
        std::fs::write(&path, "[[interface]]\nname = 1\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2:", path.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = load(&dir.join("missing.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }), "{e}");
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }
}
