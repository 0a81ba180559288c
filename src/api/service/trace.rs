//! `xgw trace add N [--port P]`, `xgw show trace`, `xgw clear trace`: the packet trace
//! (`dataplane::trace`) read out for the operator. The workers' records are moved into the
//! service's list on every `show trace` (kept, at most [`MAX_TRACE`], until the next
//! `trace add` or `clear trace`); nothing here runs on the control thread.

use serde_json::{json, Value};

use super::Service;
use crate::dataplane::{
    trace::{describe, TraceRecord, MAX_TRACE, STAGES},
    Next,
};

impl Service {
    fn port_name(&self, p: u16) -> String {
        self.inv
            .ports
            .get(usize::from(p))
            .map_or_else(|| format!("port{p}"), |f| f.info.name.clone())
    }

    fn outcome(&self, n: Next) -> String {
        match n {
            Next::Tx(p) => format!("tx {}", self.port_name(p)),
            Next::Drop(r) => format!("drop {}", r.name()),
            Next::Punt(r) => format!("punt {} (to the control thread)", r.name()),
            Next::Continue => "no verdict".to_owned(),
        }
    }

    fn record_json(&self, r: &TraceRecord) -> Value {
        let decided = r.decided_by.map_or(STAGES.len(), usize::from);
        let stages: Vec<Value> = STAGES
            .iter()
            .enumerate()
            .take(decided + 1)
            .map(|(i, s)| {
                let verdict = if i == decided {
                    self.outcome(r.next)
                } else {
                    "pass".to_owned()
                };
                json!({"stage": s, "verdict": verdict})
            })
            .collect();
        let output_len = u32::try_from(r.output.len()).unwrap_or(0);
        json!({
            "seq": r.seq,
            "worker": r.worker,
            "time": r.at_ns as f64 / 1e9,
            "rx": self.port_name(r.rx_port),
            "len": r.len,
            "input": describe(&r.input, r.len),
            "stages": stages,
            "result": self.outcome(r.next),
            "output": (output_len > 0).then(|| describe(&r.output, r.len)),
        })
    }

    /// Arm the trace for the next `count` packets (of port `port`).
    pub(super) fn trace_add(&self, count: u32, port: Option<&str>) -> Result<Value, String> {
        if !(1..=MAX_TRACE).contains(&count) {
            return Err(format!("trace add: {count}: need 1..={MAX_TRACE} packets"));
        }
        let port_id = match port {
            None => None,
            Some(name) => Some(
                self.inv
                    .ports
                    .iter()
                    .position(|f| f.info.name == name)
                    .and_then(|i| u16::try_from(i).ok())
                    .ok_or_else(|| format!("trace add: no port `{name}`"))?,
            ),
        };
        let mut held = self.traces.lock();
        held.clear();
        let _ = self.inv.trace.take();
        self.inv.trace.arm(count, port_id);
        Ok(json!({"armed": count, "port": port}))
    }

    /// The packets traced so far, oldest first, and what is still to come.
    pub(super) fn show_trace(&self) -> Value {
        let mut held = self.traces.lock();
        held.extend(self.inv.trace.take());
        let over = held.len().saturating_sub(MAX_TRACE as usize);
        held.drain(..over);
        let packets: Vec<Value> = held.iter().map(|r| self.record_json(r)).collect();
        json!({
            "pending": self.inv.trace.pending(),
            "lost": self.inv.trace.lost(),
            "packets": packets,
        })
    }

    /// Stop tracing and forget the records.
    pub(super) fn clear_trace(&self) -> Value {
        self.inv.trace.disarm();
        let _ = self.inv.trace.take();
        self.traces.lock().clear();
        json!({})
    }
}
