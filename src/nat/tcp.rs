//! TCP session state for NAT44: RFC 7857 §2 / RFC 6146 §3.5.2 as a pure transition function.
//!
//! Owns the state machine only: [`next`] maps (state, direction, TCP flags) to the next state and
//! [`timeout`] says which idle timer applies. It reads no clock and holds no session; the session
//! table stores the state (as `u8`, see [`TcpState::from_u8`]) and the expiry time, and calls
//! [`next`] for every translated segment (never for ICMP errors, RFC 5508 REQ-6). Depends only on
//! `wire::tcp::flags` and `nat::flow::Direction`.
//!
//! # The machine
//!
//! RFC 6146 §3.5.2.2 with the NAT44 inside playing the "V6" side:
//!
//! ```text
//!  Closed      + SYN in2out  → InInit        Closed      + SYN out2in → OutInit
//!  InInit      + SYN out2in  → Established   OutInit     + SYN in2out → Established
//!  Established + FIN in2out  → InFinRcv      Established + FIN out2in → OutFinRcv
//!  InFinRcv    + FIN out2in  → BothFinRcv    OutFinRcv   + FIN in2out → BothFinRcv
//!  any open state but BothFinRcv + RST → Trans
//!  Trans       + neither RST nor SYN → Established
//!  Trans or BothFinRcv + SYN (no RST) → InInit (in2out) / OutInit (out2in)      (reopen)
//! ```
//!
//! Everything else keeps the state; SYN-ACK counts as SYN, so `InInit + SYN out2in` covers both
//! the normal answer and simultaneous open (RFC 5382 REQ-2). Differences from RFC 6146, all
//! deliberate:
//! * RST moves `InInit`, `OutInit`, `InFinRcv` and `OutFinRcv` to `Trans`, not only
//!   `Established`. RFC 7857 §2.2 requires translating RSTs and keeping the session 4 minutes
//!   after one, so retransmitted RSTs are still translated; `Trans` carries the transitory timer.
//!   `BothFinRcv` keeps its state on RST: it already has the transitory timer, and in `Trans` a
//!   late ACK of the closed connection would re-establish it with the 2-hour timer.
//! * A SYN in `Trans` or `BothFinRcv` reopens the connection as half-open (`InInit`/`OutInit`,
//!   transitory timer) instead of going straight to `Established`, so a new connection on the
//!   same 5-tuple gets the long timer only once the other side answers (VPP's half-reopen
//!   states). Non-SYN packets in `Trans` re-establish as in RFC 6146 (the RST was not acted on).

use crate::nat::flow::Direction;
use crate::wire::tcp::flags;

/// The state of a NAT44 TCP session (RFC 6146 §3.5.2.2 with inside = "V6" side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// No connection (RFC 6146 CLOSED): only a SYN opens one.
    Closed = 0,
    /// SYN seen from inside, none from outside yet (RFC 6146 V6 INIT).
    InInit = 1,
    /// SYN seen from outside, none from inside yet (RFC 6146 V4 INIT).
    OutInit = 2,
    /// SYNs seen both ways (RFC 6146 ESTABLISHED).
    Established = 3,
    /// FIN seen from inside (RFC 6146 V6 FIN RCV).
    InFinRcv = 4,
    /// FIN seen from outside (RFC 6146 V4 FIN RCV).
    OutFinRcv = 5,
    /// FINs seen both ways (RFC 6146 V4 FIN + V6 FIN RCV).
    BothFinRcv = 6,
    /// Transitory: an RST was seen (RFC 6146 TRANS, RFC 7857 §2.2).
    Trans = 7,
}

impl TcpState {
    /// Lower-case name for `xgw show nat sessions` (`established`, `in_init`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "closed",
            TcpState::InInit => "in_init",
            TcpState::OutInit => "out_init",
            TcpState::Established => "established",
            TcpState::InFinRcv => "in_fin_rcv",
            TcpState::OutFinRcv => "out_fin_rcv",
            TcpState::BothFinRcv => "both_fin_rcv",
            TcpState::Trans => "trans",
        }
    }

    /// The state stored as `v` (`self as u8`); unknown values decode as [`TcpState::Closed`].
    pub fn from_u8(v: u8) -> TcpState {
        match v {
            1 => TcpState::InInit,
            2 => TcpState::OutInit,
            3 => TcpState::Established,
            4 => TcpState::InFinRcv,
            5 => TcpState::OutFinRcv,
            6 => TcpState::BothFinRcv,
            7 => TcpState::Trans,
            _ => TcpState::Closed,
        }
    }
}

/// Which idle timer a session in a given state uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// The transitory timer, at least 4 minutes (RFC 5382 REQ-5, RFC 7857 §2.1).
    Transitory,
    /// The established timer, at least 2 hours 4 minutes (RFC 5382 REQ-5).
    Established,
    /// An inbound SYN the inside has not answered (`OutInit`): its own, shorter timer, which
    /// RFC 7857 §2.1 allows below 4 minutes for partially open connections ("to accommodate
    /// deployments that consider a partially open timeout of 4 minutes as being excessive
    /// from a security standpoint"); a SYN flood at a port forward holds its slots that long.
    InboundOpen,
}

/// The half-open state a SYN travelling in `dir` creates.
const fn init(dir: Direction) -> TcpState {
    match dir {
        Direction::In2Out => TcpState::InInit,
        Direction::Out2In => TcpState::OutInit,
    }
}

/// Next state after a segment with `flags` (`wire::tcp::flags` bits) travelling in `dir`.
///
/// RFC 6146 §3.5.2.2 adapted to NAT44 (see the module docs): simultaneous open (`InInit` + SYN
/// from outside → `Established`), RST in any open state but `BothFinRcv` → `Trans` (RFC 7857
/// §2.2), reopening a `Trans`/`BothFinRcv` connection with a SYN. Flags other than SYN, FIN and
/// RST are ignored; RST wins over SYN and FIN in the same segment.
pub fn next(state: TcpState, dir: Direction, flags: u8) -> TcpState {
    use Direction::{In2Out, Out2In};
    use TcpState::*;
    let syn = flags & flags::SYN != 0;
    let fin = flags & flags::FIN != 0;
    let rst = flags & flags::RST != 0;
    match state {
        // RFC 6146 §3.5.2.2 CLOSED: only a SYN creates state; an RST never does.
        Closed if syn && !rst => init(dir),
        Closed => Closed,
        // RFC 6146: V4 FIN + V6 FIN RCV only leaves by its timer (or a reopening SYN, below);
        // an RST after both FINs must not lead to Trans, where a late ACK re-establishes.
        BothFinRcv if rst => BothFinRcv,
        // RFC 7857 §2.2: an RST is translated and the session kept for the transitory time.
        _ if rst => Trans,
        // V6 INIT + V4 SYN (SYN-ACK, or the peer's SYN in a simultaneous open, RFC 5382 REQ-2).
        InInit if syn && dir == Out2In => Established,
        // V4 INIT + V6 SYN.
        OutInit if syn && dir == In2Out => Established,
        // Retransmitted SYNs and anything before the answer keep the half-open state.
        InInit | OutInit => state,
        Established if fin => match dir {
            In2Out => InFinRcv,
            Out2In => OutFinRcv,
        },
        Established => Established,
        InFinRcv if fin && dir == Out2In => BothFinRcv,
        OutFinRcv if fin && dir == In2Out => BothFinRcv,
        InFinRcv | OutFinRcv => state,
        // Reopen (TIME_WAIT reuse or a new connection after an RST): half-open again.
        BothFinRcv | Trans if syn => init(dir),
        BothFinRcv => BothFinRcv,
        // RFC 6146 TRANS: any non-RST packet means the connection lives on.
        Trans => Established,
    }
}

/// Which timer applies in `state`: `Established` for `Established`, `InFinRcv` and `OutFinRcv`
/// (RFC 6146 §3.5.2.2 keeps the established lifetime while one side is still sending);
/// `InboundOpen` for `OutInit`; `Transitory` for every other state.
pub fn timeout(state: TcpState) -> Timeout {
    match state {
        TcpState::Established | TcpState::InFinRcv | TcpState::OutFinRcv => Timeout::Established,
        TcpState::OutInit => Timeout::InboundOpen,
        TcpState::Closed | TcpState::InInit | TcpState::BothFinRcv | TcpState::Trans => {
            Timeout::Transitory
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{In2Out, Out2In};
    use TcpState::*;

    const SYN: u8 = flags::SYN;
    const SYN_ACK: u8 = flags::SYN | flags::ACK;
    const ACK: u8 = flags::ACK;
    const FIN_ACK: u8 = flags::FIN | flags::ACK;
    const RST: u8 = flags::RST;
    const RST_ACK: u8 = flags::RST | flags::ACK;
    const PSH_ACK: u8 = flags::PSH | flags::ACK;

    const ALL: [TcpState; 8] = [
        Closed,
        InInit,
        OutInit,
        Established,
        InFinRcv,
        OutFinRcv,
        BothFinRcv,
        Trans,
    ];

    /// Runs a sequence of segments from `start` and checks the state after each one.
    fn run(start: TcpState, steps: &[(Direction, u8, TcpState)]) {
        let mut s = start;
        for (i, &(dir, fl, want)) in steps.iter().enumerate() {
            let got = next(s, dir, fl);
            assert_eq!(got, want, "step {i}: {s:?} + {dir:?} {fl:#04x}");
            s = got;
        }
    }

    /// Every transition of RFC 6146 §3.5.2.2 (as adapted in the module docs), one row each.
    #[test]
    fn every_transition() {
        let rows: &[(TcpState, Direction, u8, TcpState)] = &[
            // CLOSED
            (Closed, In2Out, SYN, InInit),
            (Closed, Out2In, SYN, OutInit),
            (Closed, In2Out, ACK, Closed),
            (Closed, Out2In, FIN_ACK, Closed),
            (Closed, In2Out, RST, Closed),
            (Closed, Out2In, SYN | RST, Closed),
            // V6 INIT
            (InInit, Out2In, SYN_ACK, Established),
            (InInit, Out2In, SYN, Established),
            (InInit, In2Out, SYN, InInit),
            (InInit, Out2In, ACK, InInit),
            (InInit, In2Out, ACK, InInit),
            (InInit, Out2In, RST_ACK, Trans),
            // V4 INIT
            (OutInit, In2Out, SYN_ACK, Established),
            (OutInit, In2Out, SYN, Established),
            (OutInit, Out2In, SYN, OutInit),
            (OutInit, In2Out, ACK, OutInit),
            (OutInit, In2Out, RST, Trans),
            // ESTABLISHED
            (Established, In2Out, FIN_ACK, InFinRcv),
            (Established, Out2In, FIN_ACK, OutFinRcv),
            (Established, In2Out, RST, Trans),
            (Established, Out2In, RST_ACK, Trans),
            (Established, Out2In, FIN_ACK | RST, Trans),
            (Established, In2Out, PSH_ACK, Established),
            (Established, Out2In, SYN_ACK, Established),
            // V6 FIN RCV
            (InFinRcv, Out2In, FIN_ACK, BothFinRcv),
            (InFinRcv, In2Out, FIN_ACK, InFinRcv),
            (InFinRcv, Out2In, ACK, InFinRcv),
            (InFinRcv, Out2In, RST, Trans),
            // V4 FIN RCV
            (OutFinRcv, In2Out, FIN_ACK, BothFinRcv),
            (OutFinRcv, Out2In, FIN_ACK, OutFinRcv),
            (OutFinRcv, In2Out, ACK, OutFinRcv),
            (OutFinRcv, In2Out, RST, Trans),
            // V4 FIN + V6 FIN RCV
            (BothFinRcv, In2Out, ACK, BothFinRcv),
            (BothFinRcv, Out2In, FIN_ACK, BothFinRcv),
            (BothFinRcv, In2Out, SYN, InInit),
            (BothFinRcv, Out2In, SYN, OutInit),
            (BothFinRcv, Out2In, RST, BothFinRcv),
            (BothFinRcv, In2Out, SYN | RST, BothFinRcv),
            // TRANS
            (Trans, In2Out, RST, Trans),
            (Trans, Out2In, RST_ACK, Trans),
            (Trans, In2Out, ACK, Established),
            (Trans, Out2In, FIN_ACK, Established),
            (Trans, In2Out, SYN, InInit),
            (Trans, Out2In, SYN, OutInit),
        ];
        for &(s, d, f, want) in rows {
            assert_eq!(next(s, d, f), want, "{s:?} + {d:?} {f:#04x}");
        }
    }

    /// Invariants over all 8 states × 2 directions × 256 flag bytes.
    #[test]
    fn exhaustive_invariants() {
        for s in ALL {
            for dir in [In2Out, Out2In] {
                for f in 0..=255u8 {
                    let n = next(s, dir, f);
                    let core = f & (flags::SYN | flags::FIN | flags::RST);
                    // Only SYN, FIN and RST matter.
                    assert_eq!(n, next(s, dir, core), "{s:?} {dir:?} {f:#04x}");
                    if f & flags::RST != 0 && s != Closed {
                        let want = if s == BothFinRcv { BothFinRcv } else { Trans };
                        assert_eq!(n, want, "RFC 7857 §2.2: RST in {s:?}");
                        assert_eq!(timeout(n), Timeout::Transitory);
                    }
                    if s == Closed && n != Closed {
                        assert!(f & flags::SYN != 0, "only a SYN opens a session");
                    }
                    if core == 0 && s != Trans {
                        assert_eq!(n, s, "a plain ACK never moves {s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn from_u8_round_trip() {
        for s in ALL {
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
        for v in 8..=255u8 {
            assert_eq!(TcpState::from_u8(v), Closed);
        }
    }

    #[test]
    fn timeouts() {
        for s in ALL {
            let want = match s {
                Established | InFinRcv | OutFinRcv => Timeout::Established,
                OutInit => Timeout::InboundOpen,
                _ => Timeout::Transitory,
            };
            assert_eq!(timeout(s), want, "{s:?}");
        }
    }

    /// Three-way handshake from inside, then FIN, ACK, FIN, ACK from the inside closer.
    #[test]
    fn fin_fin_ack_close_inside_first() {
        run(
            Closed,
            &[
                (In2Out, SYN, InInit),
                (Out2In, SYN_ACK, Established),
                (In2Out, ACK, Established),
                (In2Out, PSH_ACK, Established),
                (In2Out, FIN_ACK, InFinRcv),
                (Out2In, ACK, InFinRcv),
                (Out2In, PSH_ACK, InFinRcv),
                (Out2In, FIN_ACK, BothFinRcv),
                (In2Out, ACK, BothFinRcv),
            ],
        );
        assert_eq!(timeout(InFinRcv), Timeout::Established);
        assert_eq!(timeout(BothFinRcv), Timeout::Transitory);
    }

    #[test]
    fn fin_fin_ack_close_outside_first() {
        run(
            Established,
            &[
                (Out2In, FIN_ACK, OutFinRcv),
                (In2Out, ACK, OutFinRcv),
                (In2Out, FIN_ACK, BothFinRcv),
                (Out2In, ACK, BothFinRcv),
            ],
        );
    }

    /// VPP `test_tcp_session_close_simultaneous`: both FINs cross, then both ACKs.
    #[test]
    fn session_close_simultaneous() {
        run(
            Established,
            &[
                (In2Out, FIN_ACK, InFinRcv),
                (Out2In, FIN_ACK, BothFinRcv),
                (In2Out, ACK, BothFinRcv),
                (Out2In, ACK, BothFinRcv),
            ],
        );
        // The other order of arrival gives the same result.
        run(
            Established,
            &[(Out2In, FIN_ACK, OutFinRcv), (In2Out, FIN_ACK, BothFinRcv)],
        );
    }

    /// RFC 5382 REQ-2 (TCP hole punching): both sides send a bare SYN.
    #[test]
    fn simultaneous_open() {
        run(
            Closed,
            &[
                (In2Out, SYN, InInit),
                (Out2In, SYN, Established),
                (In2Out, SYN_ACK, Established),
                (Out2In, SYN_ACK, Established),
            ],
        );
        run(
            Closed,
            &[(Out2In, SYN, OutInit), (In2Out, SYN, Established)],
        );
    }

    /// RFC 7857 §2.2: RST → Trans, a retransmitted RST is still handled in Trans, and the
    /// session keeps the transitory (4 min) timer.
    #[test]
    fn rst_then_retransmitted_rst() {
        run(
            Established,
            &[
                (Out2In, RST, Trans),
                (Out2In, RST, Trans),
                (In2Out, RST_ACK, Trans),
            ],
        );
        assert_eq!(timeout(Trans), Timeout::Transitory);
        // Connection refused: SYN answered by RST.
        run(Closed, &[(In2Out, SYN, InInit), (Out2In, RST_ACK, Trans)]);
        // A spurious RST that the endpoints ignored: data re-establishes (RFC 6146 TRANS).
        run(Trans, &[(In2Out, PSH_ACK, Established)]);
        // After both FINs an RST and a late ACK leave the session closing, not established.
        run(
            BothFinRcv,
            &[(In2Out, RST, BothFinRcv), (Out2In, ACK, BothFinRcv)],
        );
    }

    /// VPP `test_tcp_session_half_reopen_inside`: after both FINs the inside sends a new SYN;
    /// the session is half-open (transitory) until the outside answers.
    #[test]
    fn half_reopen_inside() {
        run(
            Established,
            &[
                (In2Out, FIN_ACK, InFinRcv),
                (Out2In, FIN_ACK, BothFinRcv),
                (In2Out, SYN, InInit),
            ],
        );
        assert_eq!(timeout(InInit), Timeout::Transitory);
        run(
            InInit,
            &[(In2Out, SYN, InInit), (Out2In, SYN_ACK, Established)],
        );
    }

    #[test]
    fn half_reopen_outside() {
        run(
            BothFinRcv,
            &[(Out2In, SYN, OutInit), (In2Out, SYN_ACK, Established)],
        );
    }

    /// VPP `test_tcp_session_reopen`: a full close, then a new handshake on the same 5-tuple,
    /// and a reopen after an RST.
    #[test]
    fn reopen() {
        run(
            Closed,
            &[
                (In2Out, SYN, InInit),
                (Out2In, SYN_ACK, Established),
                (In2Out, ACK, Established),
                (In2Out, FIN_ACK, InFinRcv),
                (Out2In, FIN_ACK, BothFinRcv),
                (In2Out, ACK, BothFinRcv),
                (In2Out, SYN, InInit),
                (Out2In, SYN_ACK, Established),
                (In2Out, ACK, Established),
            ],
        );
        run(
            Established,
            &[
                (In2Out, RST, Trans),
                (In2Out, SYN, InInit),
                (Out2In, SYN_ACK, Established),
            ],
        );
    }

    /// VPP `test_tcp_session_open_retransmit1/2`: retransmitted SYN and SYN-ACK.
    #[test]
    fn open_retransmit() {
        run(
            Closed,
            &[
                (In2Out, SYN, InInit),
                (In2Out, SYN, InInit),
                (In2Out, SYN, InInit),
                (Out2In, SYN_ACK, Established),
                (Out2In, SYN_ACK, Established),
                (In2Out, ACK, Established),
            ],
        );
        run(
            Closed,
            &[
                (Out2In, SYN, OutInit),
                (Out2In, SYN, OutInit),
                (In2Out, SYN_ACK, Established),
                (In2Out, SYN_ACK, Established),
            ],
        );
    }
}
