//! Semantic checks: [`Config`] → [`ValidConfig`].
//!
//! Every check reports the field path of the offending value; [`super::parse`] adds its position.
//! The first error found is returned.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::route::route;
use super::{
    parse_duration, AddressList, Config, ConfigError, DataplaneConfig, DataplaneSettings,
    IcmpConfig, Interface, NeighborConfig, NeighborSettings, Route, RouteConfig, ValidConfig,
    MAX_IFNAME_LEN, MAX_MTU, MAX_QUEUES, MIN_MTU,
};
use crate::wire::ipv4::{is_martian_source, Cidr};

/// Sane bounds of `[neighbor]` values.
const MAX_ENTRIES: RangeInclusive<i64> = 1..=1_048_576;
const QUEUE_LEN: RangeInclusive<i64> = 1..=65_536;
/// Bounds of `neighbor.queue_bytes`.
const QUEUE_BYTES: RangeInclusive<i64> = 1..=16 << 20;
/// Bounds of `neighbor.total_queue_bytes`.
const TOTAL_QUEUE_BYTES: RangeInclusive<i64> = 1..=1 << 30;
const MAX_REQUESTS: RangeInclusive<i64> = 1..=32;
const REACHABLE_TIME: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(3600);
const RETRANS_TIME: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(60);
/// Upper bound of `icmp.rate` and `icmp.burst`.
const MAX_ICMP: u32 = 1_000_000;

/// Builds [`ConfigError::Invalid`] without a position.
pub(super) struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    pub(super) fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: None,
            col: None,
            field: field.into(),
            message: message.into(),
        }
    }

    fn int_in<T: TryFrom<i64>>(
        &self,
        field: String,
        v: i64,
        range: RangeInclusive<i64>,
    ) -> Result<T, ConfigError> {
        if !range.contains(&v) {
            let (lo, hi) = range.into_inner();
            return Err(self.err(field, format!("{v} out of range {lo}..={hi}")));
        }
        T::try_from(v).map_err(|_| self.err(field, format!("{v} out of range")))
    }
}

impl Config {
    /// Checks everything the runtime relies on and resolves names to port ids.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending field (without a position; use
    /// [`super::parse`] to get positions).
    pub fn validate(self, file_name: &str) -> Result<ValidConfig, ConfigError> {
        let cx = Ctx { file: file_name };
        if self.interface.is_empty() {
            return Err(cx.err("interface", "at least one [[interface]] is required"));
        }
        let interfaces = interfaces(&cx, &self)?;
        let mut routes: Vec<Route> = Vec::with_capacity(self.route.len());
        // Which [[route]] each validated route came from (a multipath one gives several).
        let mut from: Vec<usize> = Vec::with_capacity(self.route.len());
        for (k, r) in self.route.iter().enumerate() {
            let paths = route(&cx, &format!("route[{k}]"), r, &interfaces)?;
            if let Some(j) = routes.iter().position(|x| x.prefix == paths[0].prefix) {
                return Err(cx.err(
                    format!("route[{k}].prefix"),
                    format!("{} duplicates route[{}]", paths[0].prefix, from[j]),
                ));
            }
            from.extend(std::iter::repeat_n(k, paths.len()));
            routes.extend(paths);
        }
        let icmp = icmp(&cx, self.icmp)?;
        let neighbor = neighbor(&cx, &self.neighbor)?;
        let nat = match &self.nat {
            Some(n) => Some(super::nat::validate_nat(cx.file, n, &interfaces)?),
            None => None,
        };
        let dataplane = dataplane(&cx, &self.dataplane)?;
        let punt = super::punt::validate_punt(cx.file, &self.punt)?;
        let control = super::control::validate_control(cx.file, &self.control)?;
        let metrics = super::control::validate_metrics(cx.file, &self.metrics)?;
        let kernel = super::kernel::validate_kernel(cx.file, &self.kernel)?;
        Ok(ValidConfig {
            interfaces,
            routes,
            icmp,
            neighbor,
            nat,
            dataplane,
            punt,
            control,
            metrics,
            kernel,
        })
    }
}

fn interfaces(cx: &Ctx<'_>, cfg: &Config) -> Result<Vec<Interface>, ConfigError> {
    let mut out: Vec<Interface> = Vec::with_capacity(cfg.interface.len());
    for (i, ic) in cfg.interface.iter().enumerate() {
        let name = ic.name.as_str();
        let field = |k: &str| format!("interface[{i}].{k}");
        if name.is_empty() {
            return Err(cx.err(field("name"), "must not be empty"));
        }
        if name.len() > MAX_IFNAME_LEN {
            return Err(cx.err(
                field("name"),
                format!("`{name}` is longer than {MAX_IFNAME_LEN} bytes (IFNAMSIZ)"),
            ));
        }
        // Linux `dev_valid_name`.
        if name == "."
            || name == ".."
            || name.contains(['/', ':'])
            || name.contains(char::is_whitespace)
        {
            return Err(cx.err(
                field("name"),
                format!("`{name}` is not a valid interface name (no '/', ':' or whitespace)"),
            ));
        }
        if let Some(j) = out.iter().position(|x| x.name == name) {
            return Err(cx.err(field("name"), format!("`{name}` duplicates interface[{j}]")));
        }

        // In mirror mode an interface may have no address (the kernel's, adopted before
        // validation, may be none: an unnumbered port).
        let entries = ic
            .address
            .as_ref()
            .map(AddressList::entries)
            .unwrap_or_default();
        if entries.is_empty() && !cfg.kernel.mirror {
            return Err(cx.err(field("address"), "at least one address is required"));
        }
        let mut addresses: Vec<Cidr> = Vec::with_capacity(entries.len());
        for (suffix, text) in entries {
            let f = format!("interface[{i}].address{suffix}");
            let cidr = interface_address(cx, &f, text)?;
            let clash = out
                .iter()
                .enumerate()
                .flat_map(|(j, x)| x.addresses.iter().map(move |a| (j, x.name.as_str(), a)))
                .chain(addresses.iter().map(|a| (i, name, a)))
                .find(|(_, _, a)| a.overlaps(&cidr));
            // In mirror mode the kernel owns the addresses and allows overlaps (a /32
            // inside a port's subnet): they are taken as they are.
            if let Some((j, other_name, other)) = clash.filter(|_| !cfg.kernel.mirror) {
                return Err(cx.err(
                    f,
                    format!("{cidr} overlaps {other} of interface[{j}] ({other_name})"),
                ));
            }
            addresses.push(cidr);
        }

        let queues = match ic.queues {
            Some(q) => Some(cx.int_in(field("queues"), q, 1..=i64::from(MAX_QUEUES))?),
            None => None,
        };
        let mtu = match ic.mtu {
            Some(m) if !(i64::from(MIN_MTU)..=i64::from(MAX_MTU)).contains(&m) => {
                return Err(cx.err(
                    field("mtu"),
                    format!(
                        "{m} out of range {MIN_MTU}..={MAX_MTU} (the largest frame that fits \
                         one 4 KiB UMEM frame)"
                    ),
                ));
            }
            Some(m) => Some(cx.int_in(field("mtu"), m, 0..=i64::from(u16::MAX))?),
            None => None,
        };
        out.push(Interface {
            name: name.to_owned(),
            addresses,
            queues,
            mtu,
            xdp_mode: ic.xdp_mode,
            tx_path: ic.tx_path,
        });
    }
    Ok(out)
}

/// One interface address: explicit prefix length, a usable unicast host address.
fn interface_address(cx: &Ctx<'_>, field: &str, text: &str) -> Result<Cidr, ConfigError> {
    let cidr: Cidr = text.parse().map_err(|_| {
        cx.err(
            field,
            format!("`{text}` is not an IPv4 address with prefix length (a.b.c.d/n)"),
        )
    })?;
    if !text.contains('/') {
        return Err(cx.err(
            field,
            format!("`{text}` needs a prefix length, e.g. {text}/24 (or /32 for a lone address)"),
        ));
    }
    let addr = cidr.address();
    if is_martian_source(addr) {
        return Err(cx.err(
            field,
            format!("{cidr}: {addr} is a martian address (RFC 1812 §5.3.7)"),
        ));
    }
    let net = cidr.network();
    if cidr.prefix_len() < 31 {
        if addr == net.address() {
            return Err(cx.err(field, format!("{cidr} is the network address of {net}")));
        }
        if Some(addr) == cidr.broadcast() {
            return Err(cx.err(field, format!("{cidr} is the broadcast address of {net}")));
        }
    }
    Ok(cidr)
}

impl ValidConfig {
    /// Validate `r` as a `[[route]]` of this configuration would be (`xgw route add`): the
    /// same checks and messages, with fields named `route.<field>` and `file` as the
    /// error's origin. Whether the prefix already has a route is the caller's check.
    ///
    /// # Errors
    /// The first offending field.
    pub fn check_route(&self, file: &str, r: &RouteConfig) -> Result<Vec<Route>, ConfigError> {
        route(&Ctx { file }, "route", r, &self.interfaces)
    }
}

fn icmp(cx: &Ctx<'_>, icmp: IcmpConfig) -> Result<IcmpConfig, ConfigError> {
    let pairs = [
        ("rate", icmp.rate, "burst", icmp.burst),
        (
            "per_destination_rate",
            icmp.per_destination_rate,
            "per_destination_burst",
            icmp.per_destination_burst,
        ),
        (
            "frag_needed_rate",
            icmp.frag_needed_rate,
            "frag_needed_burst",
            icmp.frag_needed_burst,
        ),
    ];
    for (rate_name, rate, burst_name, burst) in pairs {
        for (name, v) in [(rate_name, rate), (burst_name, burst)] {
            if v > MAX_ICMP {
                return Err(cx.err(
                    format!("icmp.{name}"),
                    format!("{v} out of range 0..={MAX_ICMP}"),
                ));
            }
        }
        if rate > 0 && burst == 0 {
            return Err(cx.err(
                format!("icmp.{burst_name}"),
                format!(
                    "0 with {rate_name} > 0 would never send an ICMP error; use {burst_name} >= 1, or {rate_name} = 0"
                ),
            ));
        }
    }
    Ok(icmp)
}

fn neighbor(cx: &Ctx<'_>, n: &NeighborConfig) -> Result<NeighborSettings, ConfigError> {
    let duration = |name: &str, text: &str, range: RangeInclusive<Duration>| {
        let field = format!("neighbor.{name}");
        let d = parse_duration(text).map_err(|m| cx.err(field.clone(), m))?;
        if !range.contains(&d) {
            let (lo, hi) = range.into_inner();
            return Err(cx.err(field, format!("`{text}` out of range {lo:?}..={hi:?}")));
        }
        Ok(d)
    };
    let max_entries: usize =
        cx.int_in("neighbor.max_entries".into(), n.max_entries, MAX_ENTRIES)?;
    let max_entries_per_port = match n.max_entries_per_port {
        None => (max_entries - max_entries / 4).max(1),
        Some(v) => cx.int_in(
            "neighbor.max_entries_per_port".into(),
            v,
            1..=i64::try_from(max_entries).unwrap_or(i64::MAX),
        )?,
    };
    Ok(NeighborSettings {
        max_entries,
        max_entries_per_port,
        queue_len: cx.int_in("neighbor.queue_len".into(), n.queue_len, QUEUE_LEN)?,
        queue_bytes: cx.int_in("neighbor.queue_bytes".into(), n.queue_bytes, QUEUE_BYTES)?,
        total_queue_bytes: cx.int_in(
            "neighbor.total_queue_bytes".into(),
            n.total_queue_bytes,
            TOTAL_QUEUE_BYTES,
        )?,
        reachable_time: duration("reachable_time", &n.reachable_time, REACHABLE_TIME)?,
        retrans_time: duration("retrans_time", &n.retrans_time, RETRANS_TIME)?,
        max_requests: cx.int_in("neighbor.max_requests".into(), n.max_requests, MAX_REQUESTS)?,
    })
}

/// Range of `dataplane.idle_poll`.
const IDLE_POLL: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(1);

fn dataplane(cx: &Ctx<'_>, d: &DataplaneConfig) -> Result<DataplaneSettings, ConfigError> {
    let field = "dataplane.idle_poll";
    let idle_poll = parse_duration(&d.idle_poll).map_err(|m| cx.err(field, m))?;
    if !IDLE_POLL.contains(&idle_poll) {
        return Err(cx.err(field, format!("`{}` out of range 0ms..=1s", d.idle_poll)));
    }
    Ok(DataplaneSettings { idle_poll })
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    const R0: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n";
    const R1: &str = "[[interface]]\nname = \"r1\"\naddress = \"198.19.0.1/24\"\n";

    /// Parses `text`, expects a semantic error on `field` whose message contains `needle`;
    /// returns the displayed error.
    fn invalid(text: &str, field: &str, needle: &str) -> String {
        let e = parse(text, "f.toml").expect_err("config should be rejected");
        let shown = e.to_string();
        assert_eq!(e.field(), Some(field), "{shown}");
        assert!(shown.starts_with("f.toml"), "{shown}");
        assert!(shown.contains(&format!(" {field}: ")), "{shown}");
        assert!(shown.contains(needle), "{shown:?} lacks {needle:?}");
        assert_eq!(shown.lines().count(), 1, "{shown}");
        shown
    }

    fn with_r0(more: &str) -> String {
        format!("{R0}{R1}{more}")
    }

    #[test]
    fn no_interfaces() {
        invalid("[icmp]\nrate = 1\n", "interface", "at least one");
        invalid("interface = []\n", "interface", "at least one");
    }

    #[test]
    fn interface_names() {
        let s = invalid(
            "[[interface]]\nname = \"\"\naddress = \"198.18.0.1/24\"\n",
            "interface[0].name",
            "must not be empty",
        );
        assert!(s.starts_with("f.toml:2:8: "), "{s}");
        invalid(
            "[[interface]]\nname = \"a23456789012345x\"\naddress = \"198.18.0.1/24\"\n",
            "interface[0].name",
            "longer than 15",
        );
        invalid(
            "[[interface]]\nname = \"r 0\"\naddress = \"198.18.0.1/24\"\n",
            "interface[0].name",
            "not a valid interface name",
        );
        let s = invalid(
            &format!("{R0}[[interface]]\nname = \"r0\"\naddress = \"198.19.0.1/24\"\n"),
            "interface[1].name",
            "`r0` duplicates interface[0]",
        );
        assert!(s.starts_with("f.toml:5:8: "), "{s}");
        // 15 bytes is fine.
        parse(
            "[[interface]]\nname = \"a23456789012345\"\naddress = \"198.18.0.1/24\"\n",
            "f",
        )
        .unwrap();
    }

    #[test]
    fn bad_cidr() {
        for bad in [
            "198.18.0.1/33",
            "198.18.0/24",
            "banana",
            "198.18.0.1/",
            "198.18.0.256/24",
        ] {
            let text = format!("[[interface]]\nname = \"r0\"\naddress = \"{bad}\"\n");
            invalid(
                &text,
                "interface[0].address",
                "is not an IPv4 address with prefix length",
            );
        }
        invalid(
            "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1\"\n",
            "interface[0].address",
            "needs a prefix length",
        );
        invalid(
            "[[interface]]\nname = \"r0\"\naddress = [\"198.18.0.1/24\", \"x/1\"]\n",
            "interface[0].address[1]",
            "`x/1`",
        );
        invalid(
            "[[interface]]\nname = \"r0\"\naddress = []\n",
            "interface[0].address",
            "at least",
        );
    }

    #[test]
    fn network_and_broadcast_addresses() {
        let t = |a: &str| format!("[[interface]]\nname = \"r0\"\naddress = \"{a}\"\n");
        invalid(
            &t("198.18.0.0/24"),
            "interface[0].address",
            "network address of 198.18.0.0/24",
        );
        invalid(
            &t("198.18.0.255/24"),
            "interface[0].address",
            "broadcast address of",
        );
        invalid(
            &t("198.18.0.3/30"),
            "interface[0].address",
            "broadcast address of",
        );
        // /31 (RFC 3021) and /32 have neither.
        parse(&t("198.18.0.0/31"), "f").unwrap();
        parse(&t("198.18.0.1/31"), "f").unwrap();
        parse(&t("198.18.0.0/32"), "f").unwrap();
    }

    #[test]
    fn martian_interface_address() {
        for a in ["127.0.0.1/8", "0.1.2.3/24", "224.0.0.1/24", "240.0.0.1/24"] {
            let text = format!("[[interface]]\nname = \"r0\"\naddress = \"{a}\"\n");
            invalid(&text, "interface[0].address", "martian");
        }
    }

    #[test]
    fn overlapping_addresses() {
        let text = format!("{R0}[[interface]]\nname = \"r1\"\naddress = \"198.18.0.9/24\"\n");
        let s = invalid(&text, "interface[1].address", "");
        assert_eq!(
            s,
            "f.toml:6:11: interface[1].address: 198.18.0.9/24 overlaps 198.18.0.1/24 of \
             interface[0] (r0)"
        );
        let text = format!("{R0}[[interface]]\nname = \"r1\"\naddress = \"198.18.0.129/25\"\n");
        invalid(&text, "interface[1].address", "overlaps 198.18.0.1/24");
        // Within one interface.
        let text =
            "[[interface]]\nname = \"r0\"\naddress = [\"198.18.0.1/24\", \"198.18.0.7/32\"]\n";
        invalid(
            text,
            "interface[0].address[1]",
            "overlaps 198.18.0.1/24 of interface[0] (r0)",
        );
        // Adjacent prefixes do not overlap.
        let text = format!("{R0}[[interface]]\nname = \"r1\"\naddress = \"198.18.1.1/24\"\n");
        parse(&text, "f").unwrap();
    }

    #[test]
    fn queues_and_mtu_ranges() {
        for q in ["0", "65", "-1"] {
            invalid(
                &format!("{R0}queues = {q}\n"),
                "interface[0].queues",
                "out of range 1..=64",
            );
        }
        parse(&format!("{R0}queues = 64\n"), "f").unwrap();
        for m in ["67", "3499", "9000", "-5", "70000"] {
            let s = invalid(
                &format!("{R0}mtu = {m}\n"),
                "interface[0].mtu",
                "out of range 68..=3498",
            );
            assert!(s.starts_with("f.toml:4:7: "), "{s}");
        }
    }

    #[test]
    fn route_prefix() {
        let s = invalid(
            &with_r0("[[route]]\nprefix = \"198.51.100.1/24\"\ndev = \"r0\"\n"),
            "route[0].prefix",
            "198.51.100.1/24: host bits set, did you mean 198.51.100.0/24?",
        );
        assert!(s.starts_with("f.toml:8:10: "), "{s}");
        invalid(
            &with_r0("[[route]]\nprefix = \"198.51.100.0/40\"\ndev = \"r0\"\n"),
            "route[0].prefix",
            "is not an IPv4 prefix",
        );
        invalid(
            &with_r0(
                "[[route]]\nprefix = \"0.0.0.0/0\"\ndev = \"r0\"\n\
                 [[route]]\nprefix = \"192.0.2.0/24\"\ndev = \"r0\"\n\
                 [[route]]\nprefix = \"0.0.0.0/0\"\ntype = \"blackhole\"\n",
            ),
            "route[2].prefix",
            "0.0.0.0/0 duplicates route[0]",
        );
    }

    #[test]
    fn route_target_combinations() {
        let s = invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\n"),
            "route[0]",
            "needs one of",
        );
        assert!(s.starts_with("f.toml:7:1: "), "{s}");
        invalid(
            &with_r0(
                "[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.2\"\ntype = \"blackhole\"\n",
            ),
            "route[0].type",
            "cannot be combined",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\ndev = \"r1\"\ntype = \"unreachable\"\n"),
            "route[0].type",
            "cannot be combined",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\ntype = \"throw\"\n"),
            "route[0].type",
            "unknown route type `throw` (expected \"blackhole\", \"unreachable\" or \"prohibit\")",
        );
        let c = parse(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\ntype = \"prohibit\"\n"),
            "f.toml",
        )
        .expect("prohibit routes are valid");
        assert_eq!(c.routes[0].target, crate::config::RouteTarget::Prohibit);
    }

    #[test]
    fn route_dev_and_via() {
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\ndev = \"eth9\"\n"),
            "route[0].dev",
            "no interface named `eth9`",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.2/32\"\n"),
            "route[0].via",
            "is not an IPv4 address",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"192.0.2.1\"\n"),
            "route[0].via",
            "192.0.2.1 is not on any connected subnet",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.2\"\ndev = \"r0\"\n"),
            "route[0].via",
            "198.19.0.2 is not on a connected subnet of interface[0] (r0)",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.1\"\n"),
            "route[0].via",
            "own address (interface[1] (r1))",
        );
        invalid(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.255\"\n"),
            "route[0].via",
            "broadcast address",
        );
        let c = parse(
            &with_r0("[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"198.19.0.2\"\ndev = \"r1\"\n"),
            "f",
        )
        .unwrap();
        assert_eq!(
            c.routes[0].target,
            crate::config::RouteTarget::Via {
                gateway: "198.19.0.2".parse().unwrap(),
                interface: 1
            }
        );
    }

    #[test]
    fn icmp_values() {
        let s = invalid(
            &format!("{R0}[icmp]\nrate = 100\nburst = 0\n"),
            "icmp.burst",
            "burst >= 1",
        );
        assert!(s.starts_with("f.toml:6:9: "), "{s}");
        invalid(
            &format!("{R0}[icmp]\nrate = 2000000\n"),
            "icmp.rate",
            "out of range",
        );
        invalid(
            &format!("{R0}[icmp]\nburst = 2000000\n"),
            "icmp.burst",
            "out of range",
        );
        parse(&format!("{R0}[icmp]\nrate = 0\nburst = 0\n"), "f").unwrap();
    }

    #[test]
    fn dataplane_values() {
        let d = |kv: &str| format!("{R0}[dataplane]\n{kv}\n");
        invalid(
            &d("idle_poll = \"2s\""),
            "dataplane.idle_poll",
            "out of range",
        );
        invalid(&d("idle_poll = \"5\""), "dataplane.idle_poll", "no unit");
        let c = super::super::parse(&d("idle_poll = \"0ms\""), "f.toml").unwrap();
        assert_eq!(c.dataplane.idle_poll, std::time::Duration::ZERO);
        let c = super::super::parse(R0, "f.toml").unwrap();
        assert_eq!(c.dataplane.idle_poll, std::time::Duration::from_millis(20));
    }

    #[test]
    fn neighbor_values() {
        let n = |kv: &str| format!("{R0}[neighbor]\n{kv}\n");
        invalid(
            &n("max_entries = 0"),
            "neighbor.max_entries",
            "out of range",
        );
        invalid(
            &n("max_entries = 100000000"),
            "neighbor.max_entries",
            "out of range",
        );
        invalid(
            &n("queue_len = 0"),
            "neighbor.queue_len",
            "out of range 1..=65536",
        );
        invalid(
            &n("queue_bytes = 0"),
            "neighbor.queue_bytes",
            "out of range 1..=16777216",
        );
        invalid(
            &n("total_queue_bytes = 2000000000"),
            "neighbor.total_queue_bytes",
            "out of range 1..=1073741824",
        );
        invalid(
            &n("max_requests = 0"),
            "neighbor.max_requests",
            "out of range",
        );
        invalid(
            &n("max_requests = 33"),
            "neighbor.max_requests",
            "out of range",
        );
        let s = invalid(
            &n("reachable_time = \"30\""),
            "neighbor.reachable_time",
            "no unit",
        );
        assert!(s.starts_with("f.toml:5:18: "), "{s}");
        invalid(
            &n("reachable_time = \"500ms\""),
            "neighbor.reachable_time",
            "out of range",
        );
        invalid(
            &n("reachable_time = \"2h\""),
            "neighbor.reachable_time",
            "out of range",
        );
        invalid(
            &n("retrans_time = \"10ms\""),
            "neighbor.retrans_time",
            "out of range",
        );
        invalid(&n("retrans_time = \"1 s\""), "neighbor.retrans_time", "");
    }
}
