//! `io::netdev`: facts about a network device read from sysfs (no ioctls, no `unsafe`).

use std::{fs, io, path::PathBuf};

use crate::wire::ethernet::MacAddr;

/// What the router needs to know about one netdev.
#[derive(Debug, Clone)]
pub struct NetDev {
    /// Interface name.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Hardware address.
    pub mac: MacAddr,
    /// Device MTU.
    pub mtu: u16,
    /// Number of receive queues the device exposes.
    pub rx_queues: u32,
}

fn read(name: &str, leaf: &str) -> io::Result<String> {
    let p: PathBuf = ["/sys/class/net", name, leaf].iter().collect();
    fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn invalid(what: &str, name: &str, v: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{name}: bad {what} {v:?} in sysfs"),
    )
}

impl NetDev {
    /// Look a device up by name in the current network namespace.
    pub fn open(name: &str) -> io::Result<NetDev> {
        let ifindex = read(name, "ifindex")?;
        let ifindex = ifindex
            .parse()
            .map_err(|_| invalid("ifindex", name, &ifindex))?;
        let mac = read(name, "address")?;
        let mac = mac.parse().map_err(|_| invalid("address", name, &mac))?;
        let mtu = read(name, "mtu")?;
        let mtu = mtu.parse().map_err(|_| invalid("mtu", name, &mtu))?;
        let qdir: PathBuf = ["/sys/class/net", name, "queues"].iter().collect();
        let rx_queues = fs::read_dir(&qdir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count()
            })
            .unwrap_or(1)
            .max(1);
        Ok(NetDev {
            name: name.to_string(),
            ifindex,
            mac,
            mtu,
            rx_queues: u32::try_from(rx_queues).unwrap_or(1),
        })
    }
}
