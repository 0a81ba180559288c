//! `[kernel]`: kernel mirror mode (issue 12). With `mirror = true` the kernel of xgw's
//! network namespace owns the interface addresses, ARP and the routing table (a routing
//! daemon such as BIRD or FRR writes it), and xgw forwards by what it mirrors.

use std::{collections::HashMap, time::Duration};

use serde::Deserialize;

use super::{parse_duration, AddressList, Config, ConfigError};
use crate::wire::ipv4::Cidr;

/// `[kernel]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Mirror the kernel's addresses, routes and neighbours.
    pub mirror: bool,
    /// The routing table imported: `"main"`, `"default"`, a name from
    /// `/etc/iproute2/rt_tables`, or a number.
    pub table: TableRef,
    /// Kernel routes (prefixes) imported at most.
    pub max_routes: i64,
    /// How long route changes are gathered into one published FIB (duration text).
    pub coalesce: String,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            mirror: false,
            table: TableRef::Name("main".into()),
            max_routes: 2_000_000,
            coalesce: "20ms".into(),
        }
    }
}

/// `table = "main"` or `table = 100`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TableRef {
    /// A number.
    Id(i64),
    /// A name.
    Name(String),
}

/// Validated `[kernel]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSettings {
    /// Mirror mode on.
    pub mirror: bool,
    /// The table's number (254 is `main`).
    pub table: u32,
    /// Prefixes imported at most.
    pub max_routes: usize,
    /// Coalescing delay of route changes.
    pub coalesce: Duration,
}

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            mirror: false,
            table: 254,
            max_routes: 2_000_000,
            coalesce: Duration::from_millis(20),
        }
    }
}

/// The addresses the kernel has on each interface, by name (mirror mode's source of
/// `[[interface]] address`).
pub type KernelAddresses = HashMap<String, Vec<Cidr>>;

const MAX_ROUTES: i64 = 16_000_000;
const COALESCE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(10);

/// Where iproute2 keeps table names.
const RT_TABLES: [&str; 2] = ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"];

/// A table name as iproute2 resolves it (`rt_tables`: `NUMBER NAME` lines, `#` comments).
fn table_by_name(name: &str, files: &[String]) -> Option<u32> {
    files.iter().find_map(|text| {
        text.lines().find_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut w = l.split_whitespace();
            let id = w.next()?.parse::<u32>().ok()?;
            (w.next()? == name).then_some(id)
        })
    })
}

pub(super) fn validate_kernel(file: &str, k: &KernelConfig) -> Result<KernelSettings, ConfigError> {
    let err = |field: &str, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        line: None,
        col: None,
        field: format!("kernel.{field}"),
        message,
    };
    let table = match &k.table {
        TableRef::Id(n) => u32::try_from(*n)
            .ok()
            .filter(|&t| t != 0)
            .ok_or_else(|| err("table", format!("{n} out of range 1..={}", u32::MAX)))?,
        TableRef::Name(n) => match n.as_str() {
            "main" => 254,
            "default" => 253,
            "local" => 255,
            other => {
                let files: Vec<String> = RT_TABLES
                    .iter()
                    .filter_map(|p| std::fs::read_to_string(p).ok())
                    .collect();
                match other
                    .parse::<u32>()
                    .ok()
                    .or_else(|| table_by_name(other, &files))
                {
                    Some(t) if t != 0 => t,
                    _ => {
                        return Err(err(
                            "table",
                            format!(
                                "`{other}` is not a table number or a name in {}",
                                RT_TABLES[0]
                            ),
                        ))
                    }
                }
            }
        },
    };
    if table == 255 {
        return Err(err(
            "table",
            "table local holds the kernel's own addresses, not forwarding routes".into(),
        ));
    }
    if !(1..=MAX_ROUTES).contains(&k.max_routes) {
        return Err(err(
            "max_routes",
            format!("{} out of range 1..={MAX_ROUTES}", k.max_routes),
        ));
    }
    let coalesce = parse_duration(&k.coalesce).map_err(|m| err("coalesce", m))?;
    if !COALESCE.contains(&coalesce) {
        return Err(err(
            "coalesce",
            format!("{} out of range 1ms..=10s", k.coalesce),
        ));
    }
    Ok(KernelSettings {
        mirror: k.mirror,
        table,
        max_routes: usize::try_from(k.max_routes).unwrap_or(usize::MAX),
        coalesce,
    })
}

impl Config {
    /// Mirror mode: take each interface's addresses from the kernel (but the NAT pool's).
    /// An interface without
    /// `address` gets the kernel's; one with `address` must list exactly the kernel's
    /// (in any order), or it is an error naming the field. Without mirror mode, nothing
    /// changes.
    ///
    /// # Errors
    /// `(field, message)` of the first interface whose addresses disagree.
    pub fn adopt_kernel_addresses(
        &mut self,
        kernel: &KernelAddresses,
    ) -> Result<(), (String, String)> {
        if !self.kernel.mirror {
            return Ok(());
        }
        // The NAT's external addresses are xgw's: a kernel address that is one (put there
        // so the kernel answers ARP for it) is not the port's.
        let pool: Vec<std::net::Ipv4Addr> = self
            .nat
            .iter()
            .flat_map(|n| n.addresses.iter().flatten())
            .filter_map(|a| a.parse().ok())
            .collect();
        for (i, ic) in self.interface.iter_mut().enumerate() {
            let mut have: Vec<Cidr> = kernel.get(&ic.name).cloned().unwrap_or_default();
            have.retain(|c| !pool.contains(&c.address()));
            have.sort_unstable();
            let shown = || {
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            match &ic.address {
                None => {
                    ic.address = Some(AddressList::Many(
                        have.iter().map(ToString::to_string).collect(),
                    ));
                }
                Some(list) => {
                    let mut want: Vec<Cidr> = Vec::new();
                    for (_, text) in list.entries() {
                        // A malformed address is validation's to report.
                        match text.parse::<Cidr>() {
                            Ok(c) => want.push(c),
                            Err(_) => return Ok(()),
                        }
                    }
                    want.sort_unstable();
                    if want != have {
                        return Err((
                            format!("interface[{i}].address"),
                            format!(
                                "disagrees with the kernel: {} has {} (in mirror mode the \
                                 kernel owns the addresses; set them with `ip addr` or leave \
                                 `address` out)",
                                ic.name,
                                shown()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, parse_with};

    const MIRROR: &str =
        "[[interface]]\nname = \"r0\"\n[[interface]]\nname = \"r1\"\n[kernel]\nmirror = true\n";

    fn kernel() -> KernelAddresses {
        let mut k = KernelAddresses::new();
        k.insert("r0".into(), vec!["198.18.0.1/24".parse().unwrap()]);
        k.insert(
            "r1".into(),
            vec![
                "198.19.0.1/24".parse().unwrap(),
                "198.19.0.10/32".parse().unwrap(),
            ],
        );
        k
    }

    #[test]
    fn mirror_mode_takes_the_kernels_addresses() {
        let text = format!("{MIRROR}[nat]\noutside = \"r1\"\naddresses = [\"198.19.0.10\"]\n");
        let c = parse_with(&text, "k.toml", Some(&kernel())).unwrap();
        assert_eq!(
            c.interfaces[0].addresses,
            vec!["198.18.0.1/24".parse().unwrap()]
        );
        // The NAT pool's address on r1 is xgw's, not the port's.
        assert_eq!(
            c.interfaces[1].addresses,
            vec!["198.19.0.1/24".parse().unwrap()]
        );
        assert_eq!(c.kernel.table, 254);
        assert!(c.kernel.mirror);
        // Without the kernel's view (`xgw check`), the ports simply have none yet.
        let c = parse(MIRROR, "k.toml").unwrap();
        assert!(c.interfaces[0].addresses.is_empty());
        // Standalone, an address is still required.
        let e = parse("[[interface]]\nname = \"r0\"\n", "k.toml").unwrap_err();
        assert!(
            e.to_string()
                .contains("interface[0].address: at least one address is required"),
            "{e}"
        );
    }

    #[test]
    fn an_address_the_kernel_disagrees_with_is_refused() {
        let text = MIRROR.replace(
            "name = \"r1\"\n",
            "name = \"r1\"\naddress = \"198.19.9.1/24\"\n",
        );
        let e = parse_with(&text, "k.toml", Some(&kernel()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("k.toml:5:11: ")
                && e.contains("interface[1].address: disagrees with the kernel: r1 has 198.19.0.1/24, 198.19.0.10/32"),
            "{e}"
        );
        // Listing the kernel's own (in another order) is fine.
        let text = MIRROR.replace(
            "name = \"r1\"\n",
            "name = \"r1\"\naddress = [\"198.19.0.10/32\", \"198.19.0.1/24\"]\n",
        );
        assert!(parse_with(&text, "k.toml", Some(&kernel())).is_ok());
    }

    #[test]
    fn kernel_section_values_are_checked() {
        for (more, field, needle) in [
            ("table = 0\n", "kernel.table", "out of range"),
            ("table = -3\n", "kernel.table", "out of range"),
            ("table = \"local\"\n", "kernel.table", "table local"),
            (
                "table = \"no-such-table-xgw\"\n",
                "kernel.table",
                "not a table number",
            ),
            ("max_routes = 0\n", "kernel.max_routes", "out of range"),
            ("coalesce = \"0ms\"\n", "kernel.coalesce", "out of range"),
            ("coalesce = \"1h\"\n", "kernel.coalesce", "out of range"),
            ("coalesce = \"soon\"\n", "kernel.coalesce", ""),
        ] {
            let e = parse(&format!("{MIRROR}{more}"), "k.toml").unwrap_err();
            assert_eq!(e.field(), Some(field), "{more}: {e}");
            assert!(e.to_string().contains(needle), "{more}: {e}");
        }
        let ok = |more: &str| parse(&format!("{MIRROR}{more}"), "k.toml").unwrap().kernel;
        assert_eq!(ok("table = 100\n").table, 100);
        assert_eq!(ok("table = \"default\"\n").table, 253);
        assert_eq!(ok("table = \"300\"\n").table, 300);
        assert_eq!(
            ok("coalesce = \"50ms\"\n").coalesce,
            Duration::from_millis(50)
        );
        let e = parse(&format!("{MIRROR}bogus = 1\n"), "k.toml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn table_names_resolve_as_iproute2_does() {
        let files = vec!["# comment\n255\tlocal\n254\tmain\n100 bgp # ours\n".to_owned()];
        assert_eq!(table_by_name("bgp", &files), Some(100));
        assert_eq!(table_by_name("main", &files), Some(254));
        assert_eq!(table_by_name("ours", &files), None);
        assert_eq!(table_by_name("nope", &files), None);
        // Malformed lines are skipped, never a panic.
        let junk = vec!["x y\n\n 7\n-1 neg\n4294967296 big\n".to_owned()];
        assert_eq!(table_by_name("neg", &junk), None);
        assert_eq!(table_by_name("big", &junk), None);
    }
}
