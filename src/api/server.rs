//! The control socket's listener: one accept thread, one thread per connection (at most
//! [`MAX_CLIENTS`]), each with read and write deadlines, so a client that connects and
//! says nothing, or stops reading, costs one idle thread until its deadline and never
//! holds the control thread (which only ever runs the short jobs of
//! [`super::service`]).

use std::{
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::{
        fs::{FileTypeExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use tracing::{debug, warn};

use super::{
    proto::{parse_request, Header, MAX_REQUEST},
    service::Service,
};

/// Connections served at once; more are answered "busy" and closed.
pub const MAX_CLIENTS: usize = 16;

/// A connection idle (no complete request) this long is closed; a client that does not
/// read its answer for this long is dropped.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The running listener; [`Server::stop`] (or drop) closes it and removes the socket.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    accept: Option<thread::JoinHandle<()>>,
}

/// Bind `path` (creating its directory; mode 0660) and serve `svc` on it.
///
/// # Errors
/// The directory or socket cannot be created, or another xgw answers on `path`.
pub fn start(path: &Path, svc: Arc<Service>) -> io::Result<Server> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another xgw is serving this socket", path.display()),
                ));
            }
            fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    let stop = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicUsize::new(0));
    let st = stop.clone();
    let act = active.clone();
    let accept = thread::Builder::new()
        .name("xgw-api".into())
        .spawn(move || accept_loop(&listener, &svc, &st, &act))?;
    Ok(Server {
        path: path.to_owned(),
        stop,
        active,
        accept: Some(accept),
    })
}

impl Server {
    /// Connections being served now (at most [`MAX_CLIENTS`]).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Stop accepting, remove the socket file. Connections in progress end with their
    /// deadlines.
    pub fn stop(&mut self) {
        if let Some(h) = self.accept.take() {
            self.stop.store(true, Ordering::Relaxed);
            // Wake the blocking accept.
            let _ = UnixStream::connect(&self.path);
            let _ = h.join();
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Releases a connection's slot when its thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(l: &UnixListener, svc: &Arc<Service>, stop: &AtomicBool, active: &Arc<AtomicUsize>) {
    for conn in l.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut s) = conn else { continue };
        let _ = s.set_write_timeout(Some(DEADLINE));
        if active.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::Relaxed);
            let _ = write_header(&mut s, &Header::error("busy: too many control connections"));
            continue;
        }
        let slot = Slot(active.clone());
        let svc = svc.clone();
        let spawned = thread::Builder::new()
            .name("xgw-api-conn".into())
            .spawn(move || {
                let _slot = slot;
                // Never a fair share of a worker's core (see io::sched).
                let _ = crate::io::sched::set_current_thread_idle();
                if let Err(e) = serve(s, &svc) {
                    debug!(error = %e, "control connection ended");
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "control connection refused: no thread");
        }
    }
}

fn write_header(s: &mut impl Write, h: &Header) -> io::Result<()> {
    let mut line = serde_json::to_string(h).map_err(io::Error::other)?;
    line.push('\n');
    s.write_all(line.as_bytes())
}

/// Serve one connection: requests in order until EOF, an idle deadline, or a line over
/// [`MAX_REQUEST`] bytes (answered, then closed).
pub fn serve(s: UnixStream, svc: &Service) -> io::Result<()> {
    s.set_read_timeout(Some(DEADLINE))?;
    s.set_write_timeout(Some(DEADLINE))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    loop {
        let mut line = Vec::new();
        let n = (&mut r)
            .take(MAX_REQUEST as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            let msg = if n >= MAX_REQUEST {
                format!("request longer than {MAX_REQUEST} bytes")
            } else {
                "request not terminated by a newline".to_owned()
            };
            return write_header(&mut w, &Header::error(msg));
        }
        let text = String::from_utf8_lossy(&line);
        match parse_request(text.trim_end()) {
            Ok(req) => svc.handle(&req.verb, &mut w)?,
            Err(e) => write_header(&mut w, &Header::error(e))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Write},
        os::unix::{fs::PermissionsExt, net::UnixStream},
        sync::Arc,
        time::{Duration, Instant, SystemTime},
    };

    use super::{start, MAX_CLIENTS};
    use crate::{
        api::service::{job_queue, Inventory, Service},
        io::xsk_stats::XskStatsReader,
    };

    fn svc() -> (
        Arc<Service>,
        crossbeam::channel::Receiver<crate::api::service::Job>,
    ) {
        let (jobs, rx) = job_queue(Arc::new(|| {}));
        let inv = Inventory {
            ports: Vec::new(),
            workers: Vec::new(),
            xsk: XskStatsReader::default(),
            nat: Arc::default(),
            epoch: Instant::now(),
            started: SystemTime::now(),
            trace: Arc::default(),
        };
        (Arc::new(Service::new(inv, jobs)), rx)
    }

    fn ask(path: &std::path::Path, line: &str) -> String {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // A server that is busy answers and closes at once: the write may fail then.
        let _ = s.write_all(line.as_bytes());
        let mut r = BufReader::new(s);
        let mut out = String::new();
        r.read_line(&mut out).unwrap();
        out
    }

    /// Mode 0660, one server per path, a flood of idle connections bounded at
    /// MAX_CLIENTS (the rest told "busy"), service again once they go, the file removed on
    /// stop.
    #[test]
    fn socket_mode_single_owner_and_connection_flood() {
        let dir = std::env::temp_dir().join(format!("xgw-api-test-{}", std::process::id()));
        let path = dir.join("sub").join("xgw.sock");
        let (s, _rx) = svc();
        let mut server = start(&path, s.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let e = start(&path, s).unwrap_err();
        assert!(e.to_string().contains("another xgw"), "{e}");
        let req = "{\"version\":1,\"verb\":\"show_runtime\"}\n";
        assert!(
            ask(&path, req).starts_with("{\"version\":1,\"ok\":true"),
            "served"
        );
        // Connection threads run SCHED_IDLE: on a loaded machine the one just served
        // may hold its slot a while after the answer. Wait for the slots, not a time.
        let settle = |n: usize| {
            let t0 = Instant::now();
            while server.connections() != n {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "{} slots held, want {n}",
                    server.connections()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        settle(0);
        let idle: Vec<UnixStream> = (0..MAX_CLIENTS)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        settle(MAX_CLIENTS);
        let busy = ask(&path, req);
        assert!(
            busy.contains("busy: too many control connections"),
            "{busy}"
        );
        drop(idle);
        let t0 = Instant::now();
        loop {
            let a = ask(&path, req);
            if a.contains("\"ok\":true") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "slots not released: {a}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Garbage and a line without a newline before EOF.
        assert!(ask(&path, "hello\n").contains("not a JSON request"));
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"{\"version\":1").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        BufReader::new(c).read_line(&mut out).unwrap();
        assert!(out.contains("not terminated by a newline"), "{out}");
        server.stop();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
