//! Rate-limited warnings for conditions an operator must hear about (DESIGN R16: counted
//! everywhere, logged once): a counter that starts rising raises an alarm (one warning),
//! and the alarm ends (one notice, with how many it counted) once the counter has been
//! still for [`QUIET`]. Sans-I/O: [`Alarms::observe`] takes the counters' values and the
//! time and returns what to log; the runtime logs it.

use std::time::{Duration, Instant};

/// An alarm ends after its counter has not moved for this long.
pub const QUIET: Duration = Duration::from_secs(10);

/// What an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Exceptions dropped because a punt queue (or its buffers) was full.
    PuntQueueFull,
    /// Packets dropped because the neighbour table was full.
    NeighborTableFull,
    /// New NAT sessions refused because the session table was full.
    SessionTableFull,
    /// New NAT mappings refused for want of an external port.
    PortsExhausted,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 4] = [
        Condition::PuntQueueFull,
        Condition::NeighborTableFull,
        Condition::SessionTableFull,
        Condition::PortsExhausted,
    ];

    /// What the warning says.
    pub fn describe(self) -> &'static str {
        match self {
            Condition::PuntQueueFull => {
                "punt queues full: exceptions dropped (punt.*.queue_full; see [punt])"
            }
            Condition::NeighborTableFull => {
                "neighbour table full: packets to new next hops dropped (neigh.table_full; [neighbor] max_entries)"
            }
            Condition::SessionTableFull => {
                "NAT session table full: new flows refused (nat.table_full; [nat] max_sessions)"
            }
            Condition::PortsExhausted => {
                "NAT external ports exhausted: new mappings refused (nat.ports_exhausted; [nat] addresses, ports)"
            }
        }
    }
}

/// A transition to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The counter started rising (`by` since the last observation).
    Raised {
        /// Which.
        what: Condition,
        /// The increase that raised it.
        by: u64,
    },
    /// The counter has been still for [`QUIET`]; `total` is what it counted while raised.
    Ended {
        /// Which.
        what: Condition,
        /// Counted while the alarm was up.
        total: u64,
        /// How long it was up.
        lasted: Duration,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    last: Option<u64>,
    raised: Option<(Instant, u64)>,
    moved: Option<Instant>,
}

/// The alarms' state.
#[derive(Debug, Default)]
pub struct Alarms {
    states: [State; 4],
}

impl Alarms {
    /// Observe the current value of each condition's counter (in [`Condition::ALL`] order)
    /// at `now`; returns the transitions.
    pub fn observe(&mut self, now: Instant, values: [u64; 4]) -> Vec<Transition> {
        let mut out = Vec::new();
        for ((st, what), v) in self.states.iter_mut().zip(Condition::ALL).zip(values) {
            let last = st.last.replace(v);
            let by = last.map_or(0, |l| v.saturating_sub(l));
            if by > 0 {
                st.moved = Some(now);
                match &mut st.raised {
                    Some((_, total)) => *total += by,
                    None => {
                        st.raised = Some((now, by));
                        out.push(Transition::Raised { what, by });
                    }
                }
            } else if let Some((since, total)) = st.raised {
                if st
                    .moved
                    .is_some_and(|m| now.saturating_duration_since(m) >= QUIET)
                {
                    st.raised = None;
                    out.push(Transition::Ended {
                        what,
                        total,
                        lasted: now.saturating_duration_since(since),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One warning when a counter starts rising however long it rises (a flood), one
    /// notice when it has been still for QUIET, again for the next episode; the first
    /// observation only sets the baseline.
    #[test]
    fn one_warning_per_episode() {
        let t0 = Instant::now();
        let mut a = Alarms::default();
        assert!(a.observe(t0, [5, 0, 0, 0]).is_empty(), "baseline only");
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            a.observe(ms(50), [9, 0, 0, 0]),
            vec![Transition::Raised {
                what: Condition::PuntQueueFull,
                by: 4
            }]
        );
        // A flood: rising every tick for 20 s, no more warnings.
        let mut v = 9;
        for i in 2..400 {
            v += 1000;
            assert!(a.observe(ms(50 * i), [v, 0, 0, 0]).is_empty());
        }
        let last = ms(50 * 399);
        assert!(
            a.observe(last + Duration::from_secs(9), [v, 0, 0, 0])
                .is_empty(),
            "not quiet yet"
        );
        let end = a.observe(last + QUIET, [v, 0, 0, 0]);
        assert_eq!(end.len(), 1);
        let Transition::Ended { what, total, .. } = end[0] else {
            panic!("{end:?}")
        };
        assert_eq!((what, total), (Condition::PuntQueueFull, v - 5));
        // Another condition and a second episode.
        let later = last + QUIET + Duration::from_secs(1);
        let t = a.observe(later, [v + 1, 0, 3, 0]);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(a
            .observe(later + Duration::from_millis(50), [v + 1, 0, 3, 0])
            .is_empty());
    }
}
