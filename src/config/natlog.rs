//! `[nat.log]`: the NAT event log (mappings created and released, and with `destinations`
//! the sessions), for tracing an external address and port at a time back to a subscriber.
//!
//! ```toml
//! [nat.log]
//! target = "unix:/dev/log"      # | "file:/var/log/xgw-nat.log" | "udp:192.0.2.10:514"
//! format = "syslog"             # RFC 5424 as VPP (APMADD/APMDEL, SADD/SDEL) | "json"
//! destinations = false          # session events with the remote endpoint too
//! buffer = 65536                # events waiting for the writer; more are dropped, counted
//! ```

use std::{net::SocketAddr, ops::RangeInclusive, path::PathBuf};

use serde::Deserialize;

pub use crate::nat::log::LogFormat;

/// Bounds of `nat.log.buffer`.
const BUFFER: RangeInclusive<i64> = 16..=16_777_216;

/// `[nat.log]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatLogConfig {
    /// `file:PATH`, `unix:PATH` (a datagram socket, as /dev/log) or `udp:ADDR:PORT`.
    pub target: String,
    /// `syslog` (default) or `json`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Session events (with the remote endpoint) as well as mapping events.
    #[serde(default)]
    pub destinations: bool,
    /// Events buffered for the writer.
    #[serde(default = "default_buffer")]
    pub buffer: i64,
}

fn default_format() -> String {
    "syslog".to_owned()
}

fn default_buffer() -> i64 {
    65_536
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Appended to a file (re-opened when it is moved away, as by logrotate).
    File(PathBuf),
    /// One datagram per line to a Unix datagram socket (a syslog daemon's /dev/log).
    Unix(PathBuf),
    /// One datagram per line over UDP (RFC 5426).
    Udp(SocketAddr),
}

/// Validated `[nat.log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatLogSettings {
    /// Where.
    pub target: LogTarget,
    /// How.
    pub format: LogFormat,
    /// Session events too.
    pub destinations: bool,
    /// Events buffered.
    pub buffer: usize,
}

/// Validate `[nat.log]`; errors are `(field, message)`.
pub(super) fn validate(l: &NatLogConfig) -> Result<NatLogSettings, (String, String)> {
    let e = |f: &str, m: String| (format!("nat.log.{f}"), m);
    let path = |p: &str| -> Result<PathBuf, (String, String)> {
        if p.starts_with('/') && p.len() > 1 {
            Ok(PathBuf::from(p))
        } else {
            Err(e("target", format!("`{p}`: need an absolute path")))
        }
    };
    let target = match l.target.split_once(':') {
        Some(("file", p)) => LogTarget::File(path(p)?),
        Some(("unix", p)) => {
            if p.len() > 107 {
                return Err(e("target", format!("`{p}`: longer than 107 bytes")));
            }
            LogTarget::Unix(path(p)?)
        }
        Some(("udp", a)) => match a.parse::<SocketAddr>() {
            Ok(sa @ SocketAddr::V4(v4)) if v4.port() != 0 && !v4.ip().is_unspecified() => {
                LogTarget::Udp(sa)
            }
            _ => {
                return Err(e(
                    "target",
                    format!("`{a}`: need an IPv4 ADDR:PORT (port not 0)"),
                ))
            }
        },
        _ => {
            return Err(e(
                "target",
                format!("`{}`: need file:PATH, unix:PATH or udp:ADDR:PORT", l.target),
            ))
        }
    };
    let format = match l.format.as_str() {
        "syslog" => LogFormat::Syslog,
        "json" => LogFormat::Json,
        f => return Err(e("format", format!("`{f}`: need syslog or json"))),
    };
    if !BUFFER.contains(&l.buffer) {
        return Err(e(
            "buffer",
            format!(
                "{}: need {}..={} events",
                l.buffer,
                BUFFER.start(),
                BUFFER.end()
            ),
        ));
    }
    Ok(NatLogSettings {
        target,
        format,
        destinations: l.destinations,
        buffer: usize::try_from(l.buffer).unwrap_or(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const BASE: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n[[interface]]\nname = \"r1\"\naddress = \"198.19.0.1/24\"\n[nat]\noutside = \"r1\"\n[nat.log]\n";

    fn log(extra: &str) -> Result<Option<NatLogSettings>, String> {
        parse(&format!("{BASE}{extra}"), "l.toml")
            .map(|c| c.nat.expect("nat").log)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn targets_formats_defaults() {
        let l = log("target = \"unix:/dev/log\"\n").unwrap().unwrap();
        assert_eq!(l.target, LogTarget::Unix("/dev/log".into()));
        assert_eq!(
            (l.format, l.destinations, l.buffer),
            (LogFormat::Syslog, false, 65536)
        );
        let l = log("target = \"udp:192.0.2.10:514\"\nformat = \"json\"\ndestinations = true\nbuffer = 100\n")
            .unwrap()
            .unwrap();
        assert_eq!(l.target, LogTarget::Udp("192.0.2.10:514".parse().unwrap()));
        assert_eq!(
            (l.format, l.destinations, l.buffer),
            (LogFormat::Json, true, 100)
        );
        let l = log("target = \"file:/var/log/xgw-nat.log\"\n")
            .unwrap()
            .unwrap();
        assert_eq!(l.target, LogTarget::File("/var/log/xgw-nat.log".into()));
        let none = parse(&BASE.replace("[nat.log]\n", ""), "l.toml").unwrap();
        assert!(none.nat.unwrap().log.is_none(), "off without the section");
    }

    #[test]
    fn malformed_is_refused_naming_the_field() {
        for (extra, field, needle) in [
            ("", "target", "missing"),
            ("target = \"syslog\"\n", "nat.log.target", "file:PATH"),
            (
                "target = \"tcp:192.0.2.1:514\"\n",
                "nat.log.target",
                "udp:ADDR:PORT",
            ),
            (
                "target = \"file:relative.log\"\n",
                "nat.log.target",
                "absolute",
            ),
            ("target = \"file:/\"\n", "nat.log.target", "absolute"),
            (
                &format!("target = \"unix:/{}\"\n", "x".repeat(200)),
                "nat.log.target",
                "107",
            ),
            (
                "target = \"udp:192.0.2.1\"\n",
                "nat.log.target",
                "ADDR:PORT",
            ),
            (
                "target = \"udp:192.0.2.1:0\"\n",
                "nat.log.target",
                "port not 0",
            ),
            ("target = \"udp:0.0.0.0:514\"\n", "nat.log.target", "IPv4"),
            (
                "target = \"udp:[2001:db8::1]:514\"\n",
                "nat.log.target",
                "IPv4",
            ),
            (
                "target = \"unix:/dev/log\"\nformat = \"cef\"\n",
                "nat.log.format",
                "syslog or json",
            ),
            (
                "target = \"unix:/dev/log\"\nbuffer = 0\n",
                "nat.log.buffer",
                "16..=",
            ),
            (
                "target = \"unix:/dev/log\"\nbuffer = -5\n",
                "nat.log.buffer",
                "16..=",
            ),
            (
                "target = \"unix:/dev/log\"\nrate = 5\n",
                "rate",
                "unknown field",
            ),
        ] {
            let m = log(extra).expect_err(extra);
            assert!(m.contains(field) && m.contains(needle), "{extra}: {m}");
        }
    }
}
