//! `[control]`: the operator's Unix socket (`xgw show ...`, `xgw reload`, ...), and
//! `[metrics]`: the Prometheus endpoint.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Where the control socket lives unless `[control] socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/xgw/xgw.sock";

/// Longest socket path (`sun_path` is 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// `[control]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Absolute path of the Unix socket; `""` turns it off.
    pub socket: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: DEFAULT_SOCKET.to_owned(),
        }
    }
}

/// Validated `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSettings {
    /// The socket's path (its directory is created, mode 0660); `None`: no socket.
    pub socket: Option<PathBuf>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            socket: Some(PathBuf::from(DEFAULT_SOCKET)),
        }
    }
}

/// Where metrics are served unless `[metrics] listen` says otherwise (the port registered
/// for VPP's exporter).
pub const DEFAULT_METRICS: &str = "127.0.0.1:9482";

/// `[metrics]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `ADDR:PORT` to serve `GET /metrics` on; `""` turns it off.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: DEFAULT_METRICS.to_owned(),
        }
    }
}

/// Validated `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The HTTP listener's address; `None`: no metrics endpoint.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: DEFAULT_METRICS.parse().ok(),
        }
    }
}

pub(super) fn validate_metrics(
    file: &str,
    c: &MetricsConfig,
) -> Result<MetricsSettings, ConfigError> {
    if c.listen.is_empty() {
        return Ok(MetricsSettings { listen: None });
    }
    let a: SocketAddr = c.listen.parse().map_err(|_| ConfigError::Invalid {
        file: file.to_owned(),
        line: None,
        col: None,
        field: "metrics.listen".into(),
        message: format!("`{}` is not ADDR:PORT (e.g. \"127.0.0.1:9482\")", c.listen),
    })?;
    Ok(MetricsSettings { listen: Some(a) })
}

pub(super) fn validate_control(
    file: &str,
    c: &ControlConfig,
) -> Result<ControlSettings, ConfigError> {
    let err = |message: String| ConfigError::Invalid {
        file: file.to_owned(),
        line: None,
        col: None,
        field: "control.socket".into(),
        message,
    };
    if c.socket.is_empty() {
        return Ok(ControlSettings { socket: None });
    }
    if !c.socket.starts_with('/') {
        return Err(err(format!("`{}` is not an absolute path", c.socket)));
    }
    if c.socket.len() > MAX_SOCKET_PATH {
        return Err(err(format!(
            "{} bytes long; a Unix socket path has at most {MAX_SOCKET_PATH}",
            c.socket.len()
        )));
    }
    if c.socket.ends_with('/') || c.socket.contains('\0') {
        return Err(err(format!(
            "`{}` is not a file path",
            c.socket.escape_debug()
        )));
    }
    Ok(ControlSettings {
        socket: Some(PathBuf::from(&c.socket)),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const R0: &str = "[[interface]]\nname = \"r0\"\naddress = \"198.18.0.1/24\"\n";

    #[test]
    fn socket_default_off_and_errors() {
        let c = parse(R0, "t.toml").unwrap();
        assert_eq!(
            c.control.socket.as_deref(),
            Some(std::path::Path::new(super::DEFAULT_SOCKET))
        );
        let c = parse(&format!("{R0}[control]\nsocket = \"\"\n"), "t.toml").unwrap();
        assert_eq!(c.control.socket, None);
        let c = parse(
            &format!("{R0}[control]\nsocket = \"/tmp/x/y.sock\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.control.socket.as_deref(),
            Some(std::path::Path::new("/tmp/x/y.sock"))
        );
        for (v, msg) in [
            ("run/x.sock", "not an absolute path"),
            ("/run/", "not a file path"),
            (&*format!("/{}", "a".repeat(120)), "at most 107"),
        ] {
            let e = parse(&format!("{R0}[control]\nsocket = \"{v}\"\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("control.socket") && e.contains(msg), "{v}: {e}");
        }
        let e = parse(&format!("{R0}[control]\nsockets = \"/a\"\n"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn metrics_listen() {
        let c = parse(R0, "t.toml").unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9482".parse().unwrap()));
        let c = parse(&format!("{R0}[metrics]\nlisten = \"\"\n"), "t.toml").unwrap();
        assert_eq!(c.metrics.listen, None);
        let c = parse(
            &format!("{R0}[metrics]\nlisten = \"[::1]:9100\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("[::1]:9100".parse().unwrap()));
        for bad in ["9482", "localhost:9482", "127.0.0.1", "127.0.0.1:99999"] {
            let e = parse(&format!("{R0}[metrics]\nlisten = \"{bad}\"\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("metrics.listen") && e.contains("is not ADDR:PORT"),
                "{bad}: {e}"
            );
        }
    }
}
