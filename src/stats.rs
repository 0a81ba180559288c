//! Aggregation and text export of counters (workers' blocks summed, control plane's own).

use std::fmt::Write;

use crate::dataplane::{LocalCounters, SharedCounters};

/// Sum every worker's published counters.
pub fn sum_workers<'a>(blocks: impl IntoIterator<Item = &'a SharedCounters>) -> LocalCounters {
    let mut total = LocalCounters::default();
    for b in blocks {
        total.add(&b.read());
    }
    total
}

/// `show errors`-style text: one `name value  description` line per non-zero counter.
pub fn render(workers: &LocalCounters, control: &[(&'static str, u64, &'static str)]) -> String {
    let mut s = String::new();
    for (name, v, desc) in workers.nonzero().into_iter().chain(control.iter().copied()) {
        let _ = writeln!(s, "{name:<34} {v:>14}  {desc}");
    }
    if s.is_empty() {
        s.push_str("(all counters zero)\n");
    }
    s
}
