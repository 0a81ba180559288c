//! The metrics endpoint: `GET /metrics` over HTTP (tiny_http), one scrape at a time on its
//! own thread, off the fast path and off the control thread (which only runs the scrape's
//! one small job).

use std::{
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use super::service::Service;

/// The OpenMetrics text format's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint; [`MetricsServer::stop`] (or drop) ends it.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
}

/// Listen on `addr` and serve `svc`'s metrics.
///
/// # Errors
/// The address cannot be bound.
pub fn start(addr: SocketAddr, svc: Arc<Service>) -> io::Result<MetricsServer> {
    let server = Arc::new(
        tiny_http::Server::http(addr).map_err(|e| io::Error::other(format!("{addr}: {e}")))?,
    );
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (server.clone(), stop.clone());
    let thread = thread::Builder::new()
        .name("xgw-metrics".into())
        .spawn(move || {
            let _ = crate::io::sched::set_current_thread_idle();
            while !st.load(Ordering::Relaxed) {
                match s.recv_timeout(Duration::from_millis(200)) {
                    Ok(Some(req)) => respond(req, &svc),
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        })?;
    Ok(MetricsServer {
        stop,
        server,
        thread: Some(thread),
        addr: bound,
    })
}

fn respond(req: tiny_http::Request, svc: &Service) {
    use tiny_http::{Header, Method, Response};
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    let (status, ctype, body) = match (req.method(), path.as_str()) {
        (Method::Get, "/metrics") => match svc.metrics() {
            Ok(text) => (200, CONTENT_TYPE, text),
            Err(e) => (503, TEXT, format!("{e}\n")),
        },
        (Method::Get, "/") => (200, TEXT, "xgw: metrics at /metrics\n".to_owned()),
        (Method::Get, _) => (404, TEXT, "not found\n".to_owned()),
        _ => (405, TEXT, "only GET\n".to_owned()),
    };
    let mut resp = Response::from_string(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()) {
        resp = resp.with_header(h);
    }
    let _ = req.respond(resp);
}

/// Plain text, for everything but the metrics.
const TEXT: &str = "text/plain; charset=utf-8";

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// The bound address (a port of 0 in the configuration is resolved here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            self.server.unblock();
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
