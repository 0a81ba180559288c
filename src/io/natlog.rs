//! The NAT event log's writer thread: takes the batches the control thread hands over
//! (`control::natlog`), formats each event (`nat::log`) and writes it to the target — a
//! file (one line each, appended, re-opened when it is moved away as logrotate does), a Unix
//! datagram socket (one datagram each, as to /dev/log) or UDP (RFC 5426). Sockets are
//! non-blocking: a receiver that is absent or full costs the event (`nat.log_failed`),
//! never a wait. The thread ends, after writing what it holds, when the link is dropped.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write},
    net::UdpSocket,
    os::unix::{fs::MetadataExt, net::UnixDatagram},
    path::{Path, PathBuf},
    sync::{atomic::Ordering, Arc},
    thread,
    time::{Duration, Instant, SystemTime},
};

use crossbeam::channel::{Receiver, RecvTimeoutError};
use tracing::warn;

use crate::{
    config::{LogTarget, NatLogSettings},
    control::natlog::{LogStats, NatLogLink},
    nat::log::{format, LogEvent, LogFormat, Origin},
};

/// Batches queued at most (the events in them are bounded by `[nat.log] buffer`).
const BATCHES: usize = 4096;
/// How often an idle writer checks whether its file was moved.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// At most one warning per this long about a failing target.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The running writer; dropping the link it gave out and then this ends it.
#[derive(Debug)]
pub struct NatLogWriter {
    thread: Option<thread::JoinHandle<()>>,
}

enum Out {
    File {
        path: PathBuf,
        w: BufWriter<File>,
        ino: (u64, u64),
    },
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket, std::net::SocketAddr),
}

fn open_file(path: &Path) -> io::Result<(BufWriter<File>, (u64, u64))> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let m = f.metadata()?;
    Ok((BufWriter::with_capacity(64 << 10, f), (m.dev(), m.ino())))
}

impl Out {
    fn open(t: &LogTarget) -> io::Result<Out> {
        Ok(match t {
            LogTarget::File(p) => {
                let (w, ino) = open_file(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                Out::File {
                    path: p.clone(),
                    w,
                    ino,
                }
            }
            LogTarget::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.set_nonblocking(true)?;
                Out::Unix(s, p.clone())
            }
            LogTarget::Udp(a) => {
                let s = UdpSocket::bind("0.0.0.0:0")?;
                s.set_nonblocking(true)?;
                Out::Udp(s, *a)
            }
        })
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        match self {
            Out::File { w, .. } => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")
            }
            Out::Unix(s, p) => s.send_to(line.as_bytes(), &*p).map(drop),
            Out::Udp(s, a) => s.send_to(line.as_bytes(), *a).map(drop),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::File { w, .. } => w.flush(),
            _ => Ok(()),
        }
    }

    /// A file moved away or deleted (logrotate) is re-opened at its path.
    fn reopen_if_moved(&mut self) -> io::Result<()> {
        let Out::File { path, w, ino } = self else {
            return Ok(());
        };
        let now = std::fs::metadata(&*path).map(|m| (m.dev(), m.ino())).ok();
        if now != Some(*ino) {
            w.flush()?;
            let (nw, ni) = open_file(path)?;
            *w = nw;
            *ino = ni;
        }
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()
}

/// Wall time of `at`, from one anchor pair taken at start.
fn wall(anchor: (Instant, SystemTime), at: Instant) -> SystemTime {
    if at >= anchor.0 {
        anchor.1 + (at - anchor.0)
    } else {
        anchor.1 - (anchor.0 - at)
    }
}

impl NatLogWriter {
    /// Open the target of `s` (a file that cannot be opened is an error now, not later) and
    /// start the thread. Returns it and the link for the control plane.
    ///
    /// # Errors
    /// The file or socket cannot be opened, or no thread.
    pub fn start(s: &NatLogSettings) -> io::Result<(NatLogWriter, NatLogLink)> {
        let out = Out::open(&s.target)?;
        let (tx, rx) = crossbeam::channel::bounded(BATCHES);
        let stats = Arc::new(LogStats::default());
        let link = NatLogLink {
            tx,
            stats: stats.clone(),
            buffer: s.buffer,
            destinations: s.destinations,
        };
        let origin = Origin::new(&hostname(), std::process::id());
        let fmt = s.format;
        let target = s.target.clone();
        let thread = thread::Builder::new()
            .name("xgw-natlog".into())
            .spawn(move || {
                // Never a fair share of a worker's core (see io::sched).
                let _ = crate::io::sched::set_current_thread_idle();
                run(out, &rx, &stats, fmt, &origin, &target);
            })?;
        Ok((
            NatLogWriter {
                thread: Some(thread),
            },
            link,
        ))
    }

    /// Wait for the thread to write what it holds and end (the link must be gone).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut out: Out,
    rx: &Receiver<Vec<LogEvent>>,
    stats: &LogStats,
    fmt: LogFormat,
    origin: &Origin,
    target: &LogTarget,
) {
    let anchor = (Instant::now(), SystemTime::now());
    let mut last_warn: Option<Instant> = None;
    let mut failed_since_warn = 0u64;
    let mut last_check = Instant::now();
    loop {
        let batch = match rx.recv_timeout(CHECK_EVERY) {
            Ok(b) => Some(b),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut err: Option<io::Error> = None;
        if last_check.elapsed() >= CHECK_EVERY {
            last_check = Instant::now();
            if let Err(e) = out.reopen_if_moved() {
                err = Some(e);
            }
        }
        if let Some(b) = batch {
            let (mut ok, mut bad) = (0u64, 0u64);
            for e in &b {
                match out.send(&format(fmt, e, wall(anchor, e.at), origin)) {
                    Ok(()) => ok += 1,
                    Err(x) => {
                        bad += 1;
                        err.get_or_insert(x);
                    }
                }
            }
            if let Err(x) = out.flush() {
                // Lines buffered in this batch are lost with the failed write.
                bad += ok;
                ok = 0;
                err.get_or_insert(x);
            }
            stats.written.fetch_add(ok, Ordering::Relaxed);
            stats.failed.fetch_add(bad, Ordering::Relaxed);
            stats.in_flight.fetch_sub(b.len(), Ordering::AcqRel);
            failed_since_warn += bad;
        }
        if let Some(e) = err {
            if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                warn!(target = ?target, error = %e, failed = failed_since_warn, "NAT log: the target refuses events (warned at most once a minute)");
                last_warn = Some(Instant::now());
                failed_since_warn = 0;
            }
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Instant};

    use super::*;
    use crate::nat::log::LogKind;

    fn ev(port: u16) -> LogEvent {
        LogEvent {
            kind: LogKind::MappingAdd,
            at: Instant::now(),
            proto: 17,
            inside: (Ipv4Addr::new(198, 18, 0, 2), port),
            external: (Ipv4Addr::new(198, 19, 0, 1), port),
            remote: None,
        }
    }

    fn settings(target: LogTarget, format: LogFormat) -> NatLogSettings {
        NatLogSettings {
            target,
            format,
            destinations: false,
            buffer: 1000,
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xgw-natlog-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Lines in a file, every event once, JSON that parses; a moved file is re-opened at its
    /// path (logrotate).
    #[test]
    fn file_lines_and_rotation() {
        let d = dir("file");
        let path = d.join("nat.log");
        let (w, link) =
            NatLogWriter::start(&settings(LogTarget::File(path.clone()), LogFormat::Json)).unwrap();
        assert_eq!(link.offer((0..10).map(ev).collect()), 0);
        let t0 = Instant::now();
        while link.stats.written.load(Ordering::Relaxed) < 10 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            thread::sleep(Duration::from_millis(10));
        }
        std::fs::rename(&path, d.join("nat.log.1")).unwrap();
        thread::sleep(CHECK_EVERY + Duration::from_millis(300));
        assert_eq!(link.offer(vec![ev(99)]), 0);
        drop(link);
        w.join();
        let old = std::fs::read_to_string(d.join("nat.log.1")).unwrap();
        assert_eq!(old.lines().count(), 10, "{old}");
        for l in old.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["event"], "APMADD");
        }
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.contains("\"inside\":\"198.18.0.2:99\""), "{new}");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// One datagram per event at a Unix socket; with nobody listening the events fail,
    /// counted, and the writer goes on (no block, no exit).
    #[test]
    fn unix_datagrams_and_an_absent_receiver() {
        let d = dir("unix");
        let sock = d.join("log.sock");
        let (w, link) =
            NatLogWriter::start(&settings(LogTarget::Unix(sock.clone()), LogFormat::Syslog))
                .unwrap();
        assert_eq!(link.offer((0..5).map(ev).collect()), 0);
        let t0 = Instant::now();
        while link.stats.failed.load(Ordering::Relaxed) < 5 {
            assert!(t0.elapsed() < Duration::from_secs(10));
            thread::sleep(Duration::from_millis(10));
        }
        let r = UnixDatagram::bind(&sock).unwrap();
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(link.offer((0..3).map(ev).collect()), 0);
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let n = r.recv(&mut buf).unwrap();
            let line = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(
                line.starts_with("<134>1 ") && line.contains(" APMADD [APMADD "),
                "{line}"
            );
            assert!(!line.ends_with('\n'));
        }
        drop(link);
        w.join();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A file that cannot be opened fails at start, naming it.
    #[test]
    fn unopenable_file_is_a_start_error() {
        let e = NatLogWriter::start(&settings(
            LogTarget::File("/nonexistent-dir/x.log".into()),
            LogFormat::Syslog,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/x.log"), "{e}");
    }
}
