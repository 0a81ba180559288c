//! The `[punt]` section: the exception path's policer and queue per class, per worker
//! (DESIGN R17). Every field is optional; the defaults are far above what legitimate
//! traffic of each class needs, so the policers only cut floods.
//!
//! ```toml
//! [punt.arp]          # ARP (served first)
//! rate = 20000        # punts per second, per worker
//! burst = 2048        # punts accepted back to back above the rate
//! queue = 512         # depth of the class's queue to the control thread
//! [punt.nat]          # NAT session creation and TCP control packets
//! rate = 1000000
//! ```
//! Classes: `arp`, `resolve` (packets waiting for ARP), `nat`, `icmp_error` (ICMP errors to
//! translate), `fragment` (fragments through the NAT), `pmtu` (DF packets over the MTU:
//! fragmentation needed, apart so that other floods never starve PMTUD), `transit` (TTL
//! expiry, no route, fragmenting) and `local` (packets to the router's own addresses).

use std::ops::RangeInclusive;

use serde::Deserialize;

use super::ConfigError;

/// Class names in the order the control loop serves them (= `dataplane::punt::PuntClass`).
pub const PUNT_CLASSES: [&str; 8] = [
    "arp",
    "resolve",
    "nat",
    "icmp_error",
    "fragment",
    "pmtu",
    "transit",
    "local",
];

/// Default `(rate, burst, queue)` per class, in [`PUNT_CLASSES`] order.
const DEFAULTS: [(u32, u32, u32); 8] = [
    // arp: a /16 of neighbours re-validating every 30 s is ~2 k/s.
    (20_000, 2_048, 512),
    // resolve
    (20_000, 2_048, 512),
    // nat: inbound to mappings, TCP state changes (new outbound flows are made in the workers);
    // above what one control thread creates, so only the queue bounds a flood.
    (1_000_000, 16_384, 4_096),
    // icmp_error
    (10_000, 1_024, 256),
    // fragment
    (20_000, 2_048, 512),
    // pmtu: its ICMP errors have their own [icmp] bucket as well.
    (10_000, 1_024, 256),
    // transit: the ICMP errors they cause are rate-limited again by [icmp].
    (10_000, 1_024, 256),
    // local
    (5_000, 512, 256),
];

/// Bounds of `rate`.
const RATE: RangeInclusive<i64> = 1..=100_000_000;
/// Bounds of `burst`.
const BURST: RangeInclusive<i64> = 1..=1_000_000;
/// Bounds of `queue`.
const QUEUE: RangeInclusive<i64> = 1..=65_536;

/// One `[punt.<class>]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PuntClassConfig {
    /// Punts per second per worker.
    pub rate: Option<i64>,
    /// Bucket depth.
    pub burst: Option<i64>,
    /// Queue depth.
    pub queue: Option<i64>,
}

/// `[punt]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PuntConfig {
    /// `[punt.arp]`.
    pub arp: PuntClassConfig,
    /// `[punt.resolve]`.
    pub resolve: PuntClassConfig,
    /// `[punt.nat]`.
    pub nat: PuntClassConfig,
    /// `[punt.icmp_error]`.
    pub icmp_error: PuntClassConfig,
    /// `[punt.fragment]`.
    pub fragment: PuntClassConfig,
    /// `[punt.pmtu]`.
    pub pmtu: PuntClassConfig,
    /// `[punt.transit]`.
    pub transit: PuntClassConfig,
    /// `[punt.local]`.
    pub local: PuntClassConfig,
}

/// Validated policer and queue of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PuntClassSettings {
    /// Punts per second per worker.
    pub rate: u32,
    /// Bucket depth.
    pub burst: u32,
    /// Queue depth.
    pub queue: u32,
}

/// Validated `[punt]`: one entry per class in [`PUNT_CLASSES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PuntSettings {
    /// By class.
    pub classes: [PuntClassSettings; 8],
}

impl Default for PuntSettings {
    fn default() -> Self {
        PuntSettings {
            classes: DEFAULTS.map(|(rate, burst, queue)| PuntClassSettings { rate, burst, queue }),
        }
    }
}

pub(super) fn validate_punt(file: &str, p: &PuntConfig) -> Result<PuntSettings, ConfigError> {
    let raw = [
        &p.arp,
        &p.resolve,
        &p.nat,
        &p.icmp_error,
        &p.fragment,
        &p.pmtu,
        &p.transit,
        &p.local,
    ];
    let mut out = PuntSettings::default();
    for ((name, c), s) in PUNT_CLASSES.iter().zip(raw).zip(out.classes.iter_mut()) {
        let field = |f: &str, v: Option<i64>, r: RangeInclusive<i64>, d: u32| {
            let Some(v) = v else { return Ok(d) };
            if !r.contains(&v) {
                let (lo, hi) = r.into_inner();
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    line: None,
                    col: None,
                    field: format!("punt.{name}.{f}"),
                    message: format!("{v} out of range {lo}..={hi}"),
                });
            }
            Ok(u32::try_from(v).unwrap_or(d))
        };
        *s = PuntClassSettings {
            rate: field("rate", c.rate, RATE, s.rate)?,
            burst: field("burst", c.burst, BURST, s.burst)?,
            queue: field("queue", c.queue, QUEUE, s.queue)?,
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const R0: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n";

    #[test]
    fn defaults_and_overrides() {
        let c = parse(R0, "f.toml").unwrap();
        assert_eq!(c.punt, PuntSettings::default());
        assert_eq!(c.punt.classes[0].rate, 20_000);
        let c = parse(
            &format!("{R0}[punt.nat]\nrate = 1000\n[punt.arp]\nqueue = 16\n"),
            "f.toml",
        )
        .unwrap();
        assert_eq!(c.punt.classes[2].rate, 1000);
        assert_eq!(c.punt.classes[2].burst, DEFAULTS[2].1);
        assert_eq!(c.punt.classes[0].queue, 16);
    }

    #[test]
    fn out_of_range_and_unknown_are_rejected() {
        let e = parse(&format!("{R0}[punt.arp]\nrate = 0\n"), "f.toml").unwrap_err();
        assert_eq!(e.field(), Some("punt.arp.rate"));
        assert!(
            e.to_string().contains("0 out of range 1..=100000000"),
            "{e}"
        );
        assert!(e.to_string().starts_with("f.toml:"), "{e}");
        let e = parse(&format!("{R0}[punt.local]\nqueue = 100000\n"), "f.toml").unwrap_err();
        assert_eq!(e.field(), Some("punt.local.queue"));
        let e = parse(&format!("{R0}[punt.bogus]\nrate = 1\n"), "f.toml").unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = parse(&format!("{R0}[punt.nat]\nrat = 1\n"), "f.toml").unwrap_err();
        assert!(e.to_string().contains("unknown field `rat`"), "{e}");
    }
}
