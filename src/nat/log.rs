//! The NAT event log (RFC 6888 §3 REQ-12..14: an external address and port at a time traced
//! back to a subscriber): what the policy records when a mapping or a session is made or
//! removed, and the two line formats. Sans-I/O: the policy keeps a bounded buffer of
//! [`LogEvent`]s (full: dropped and counted), the control thread hands it on as one batch
//! per step without waiting, and a writer thread (`io::natlog`) formats and sends them.
//!
//! Syslog lines are RFC 5424 with the structured data VPP's NAT plugin writes (`APMADD`,
//! `APMDEL` for address-and-port mappings, `SADD`, `SDEL` for sessions), e.g.
//!
//! ```text
//! <134>1 2026-12-02T18:00:00.000Z rtr xgw 4242 APMADD [APMADD SSUBIX="0" SVLAN="0" IATYP="IPv4" ISADDR="198.18.0.2" ISPORT="40000" XATYP="IPv4" XSADDR="198.19.0.1" XSPORT="40000" PROTO="17"]
//! ```
//!
//! JSON lines carry the same facts:
//! `{"time":"…","event":"APMADD","proto":"udp","inside":"198.18.0.2:40000","external":"198.19.0.1:40000"}`
//! (`remote` as well for session events).

use std::{fmt::Write as _, net::Ipv4Addr, time::Instant, time::SystemTime};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// An endpoint-independent mapping was created (an external port taken).
    MappingAdd,
    /// A mapping was released (its port quarantined).
    MappingDel,
    /// A session was created (only with `destinations = true`).
    SessionAdd,
    /// A session was removed: expired, deleted by the operator.
    SessionDel,
}

impl LogKind {
    /// The RFC 5424 MSGID and structured-data ID (VPP's names).
    pub fn msgid(self) -> &'static str {
        match self {
            LogKind::MappingAdd => "APMADD",
            LogKind::MappingDel => "APMDEL",
            LogKind::SessionAdd => "SADD",
            LogKind::SessionDel => "SDEL",
        }
    }
}

/// One NAT event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEvent {
    /// What happened.
    pub kind: LogKind,
    /// When (the policy's clock; the writer turns it into wall time).
    pub at: Instant,
    /// IP protocol number.
    pub proto: u8,
    /// Inside endpoint (ICMP: address and query identifier).
    pub inside: (Ipv4Addr, u16),
    /// External endpoint.
    pub external: (Ipv4Addr, u16),
    /// The remote endpoint as seen outside (session events only).
    pub remote: Option<(Ipv4Addr, u16)>,
}

/// Line format (`[nat.log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// RFC 5424, VPP's structured data.
    Syslog,
    /// One JSON object per line.
    Json,
}

/// The fixed parts of a syslog line: the HOSTNAME and PROCID fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// HOSTNAME (printable US-ASCII, at most 255; `-` if unknown).
    pub host: String,
    /// PROCID.
    pub pid: u32,
}

impl Origin {
    /// `host` made a valid RFC 5424 HOSTNAME (PRINTUSASCII, 1..=255 chars; else `-`).
    pub fn new(host: &str, pid: u32) -> Origin {
        let h: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        Origin {
            host: if h.is_empty() { "-".to_owned() } else { h },
            pid,
        }
    }
}

/// Facility local0 (16), severity informational (6), as VPP's NAT logs.
const PRI: u8 = 16 * 8 + 6;

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "other",
    }
}

/// Format `e` that happened at wall time `at` as one line (no newline) in `format`.
pub fn format(format: LogFormat, e: &LogEvent, at: SystemTime, origin: &Origin) -> String {
    let time = humantime::format_rfc3339_millis(at).to_string();
    let mut s = String::with_capacity(256);
    match format {
        LogFormat::Syslog => {
            let id = e.kind.msgid();
            let _ = write!(
                s,
                "<{PRI}>1 {time} {} xgw {} {id} [{id} SSUBIX=\"0\" SVLAN=\"0\" IATYP=\"IPv4\" ISADDR=\"{}\" ISPORT=\"{}\" XATYP=\"IPv4\" XSADDR=\"{}\" XSPORT=\"{}\" PROTO=\"{}\"",
                origin.host, origin.pid, e.inside.0, e.inside.1, e.external.0, e.external.1, e.proto
            );
            if let Some((a, p)) = e.remote {
                let _ = write!(s, " XDADDR=\"{a}\" XDPORT=\"{p}\"");
            }
            s.push(']');
        }
        LogFormat::Json => {
            let _ = write!(
                s,
                "{{\"time\":\"{time}\",\"event\":\"{}\",\"proto\":\"{}\",\"inside\":\"{}:{}\",\"external\":\"{}:{}\"",
                e.kind.msgid(),
                proto_name(e.proto),
                e.inside.0,
                e.inside.1,
                e.external.0,
                e.external.1
            );
            if let Some((a, p)) = e.remote {
                let _ = write!(s, ",\"remote\":\"{a}:{p}\"");
            }
            s.push('}');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, UNIX_EPOCH};

    use super::*;

    fn ev(kind: LogKind, remote: Option<(Ipv4Addr, u16)>) -> LogEvent {
        LogEvent {
            kind,
            at: Instant::now(),
            proto: 17,
            inside: (Ipv4Addr::new(198, 18, 0, 2), 40000),
            external: (Ipv4Addr::new(198, 19, 0, 1), 1025),
            remote,
        }
    }

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_764_698_400_123)
    }

    #[test]
    fn syslog_golden() {
        let o = Origin::new("rtr", 4242);
        assert_eq!(
            format(LogFormat::Syslog, &ev(LogKind::MappingAdd, None), at(), &o),
            "<134>1 2025-12-02T18:00:00.123Z rtr xgw 4242 APMADD [APMADD SSUBIX=\"0\" SVLAN=\"0\" IATYP=\"IPv4\" ISADDR=\"198.18.0.2\" ISPORT=\"40000\" XATYP=\"IPv4\" XSADDR=\"198.19.0.1\" XSPORT=\"1025\" PROTO=\"17\"]"
        );
        let d = format(
            LogFormat::Syslog,
            &ev(
                LogKind::SessionDel,
                Some((Ipv4Addr::new(203, 0, 113, 9), 53)),
            ),
            at(),
            &o,
        );
        assert!(
            d.starts_with("<134>1 2025-12-02T18:00:00.123Z rtr xgw 4242 SDEL [SDEL "),
            "{d}"
        );
        assert!(
            d.ends_with(" PROTO=\"17\" XDADDR=\"203.0.113.9\" XDPORT=\"53\"]"),
            "{d}"
        );
    }

    #[test]
    fn json_golden_and_parses() {
        let o = Origin::new("rtr", 1);
        let line = format(
            LogFormat::Json,
            &ev(
                LogKind::SessionAdd,
                Some((Ipv4Addr::new(203, 0, 113, 9), 53)),
            ),
            at(),
            &o,
        );
        assert_eq!(
            line,
            "{\"time\":\"2025-12-02T18:00:00.123Z\",\"event\":\"SADD\",\"proto\":\"udp\",\"inside\":\"198.18.0.2:40000\",\"external\":\"198.19.0.1:1025\",\"remote\":\"203.0.113.9:53\"}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "SADD");
        let m = format(LogFormat::Json, &ev(LogKind::MappingDel, None), at(), &o);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert!(v.get("remote").is_none());
    }

    /// A hostile or empty hostname cannot break the line's fields.
    #[test]
    fn hostname_sanitised() {
        assert_eq!(Origin::new("a b\n\"c", 1).host, "ab\"c");
        assert_eq!(Origin::new(" \n", 1).host, "-");
        assert_eq!(Origin::new(&"h".repeat(400), 1).host.len(), 255);
    }
}
