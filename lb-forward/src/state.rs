//! The IPVS connection state machine and timeouts (`ip_vs_proto_tcp.c`,
//! `ip_vs_proto_udp.c`).
//!
//! TCP states follow the kernel's `tcp_states` table exactly: the next state
//! depends on the direction (input = client to server, output = server to
//! client, input-only = a conn whose replies bypass the director, i.e.
//! DR/TUN), on the packet's flags (RST before SYN before FIN before ACK)
//! and on the current state.

use std::time::Duration;

/// A connection state (TCP states, plus UDP's single `NORMAL` and ICMP's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// TCP `NONE`: just created.
    None = 0,
    /// TCP `ESTABLISHED`.
    Established = 1,
    /// TCP `SYN_SENT`.
    SynSent = 2,
    /// TCP `SYN_RECV`.
    SynRecv = 3,
    /// TCP `FIN_WAIT`.
    FinWait = 4,
    /// TCP `TIME_WAIT`.
    TimeWait = 5,
    /// TCP `CLOSE`.
    Close = 6,
    /// TCP `CLOSE_WAIT`.
    CloseWait = 7,
    /// TCP `LAST_ACK`.
    LastAck = 8,
    /// TCP `LISTEN`.
    Listen = 9,
    /// TCP `SYNACK`.
    SynAck = 10,
    /// UDP (`IP_VS_UDP_S_NORMAL`, shown as "UDP").
    Udp = 11,
    /// ICMP (`IP_VS_ICMP_S_NORMAL`).
    Icmp = 12,
}

const N_STATES: usize = 13;

impl State {
    /// From the stored byte (unknown values read as `Close`).
    #[must_use]
    pub fn from_u8(v: u8) -> Self {
        use State::*;
        [
            None,
            Established,
            SynSent,
            SynRecv,
            FinWait,
            TimeWait,
            Close,
            CloseWait,
            LastAck,
            Listen,
            SynAck,
            Udp,
            Icmp,
        ]
        .get(usize::from(v))
        .copied()
        .unwrap_or(Close)
    }

    /// The kernel's name for the state (`ipvsadm -Lc`).
    #[must_use]
    pub fn name(self) -> &'static str {
        [
            "NONE",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "SYNACK",
            "UDP",
            "ICMP",
        ][self as usize]
    }
}

/// Direction of a packet relative to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to real server.
    Input,
    /// Real server to client (seen only for NAT).
    Output,
    /// Client to real server on a conn whose replies do not pass here.
    InputOnly,
}

use State::{
    Close as sCL, CloseWait as sCW, Established as sES, FinWait as sFW, LastAck as sLA,
    Listen as sLI, SynRecv as sSR, SynSent as sSS, TimeWait as sTW,
};

/// `tcp_states[]` from ip_vs_proto_tcp.c: [direction*4 + flag][state].
/// Rows: syn, fin, ack, rst for INPUT, OUTPUT, INPUT-ONLY.
#[rustfmt::skip]
const TCP_STATES: [[State; 11]; 12] = [
    //        sNO  sES  sSS  sSR  sFW  sTW  sCL  sCW  sLA  sLI  sSA
    /*syn*/ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
    /*fin*/ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
    /*ack*/ [sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
    /*rst*/ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
    // OUTPUT
    /*syn*/ [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
    /*fin*/ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
    /*ack*/ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
    /*rst*/ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
    // INPUT-ONLY
    /*syn*/ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
    /*fin*/ [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
    /*ack*/ [sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
    /*rst*/ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

/// The next TCP state (`set_tcp_state`): flags are tested RST, SYN, FIN,
/// ACK in that order; a segment with none of them gives `CLOSE`.
///
/// # Examples
///
/// ```
/// use lb_forward::state::{tcp_next, Dir, State};
/// const SYN: u8 = 0x02;
/// assert_eq!(tcp_next(State::None, Dir::Input, SYN), State::SynRecv);
/// assert_eq!(tcp_next(State::SynRecv, Dir::InputOnly, 0x10), State::Established);
/// ```
#[must_use]
pub fn tcp_next(state: State, dir: Dir, flags: u8) -> State {
    use crate::wire::tcp_flags::{ACK, FIN, RST, SYN};
    let idx = if flags & RST != 0 {
        3
    } else if flags & SYN != 0 {
        0
    } else if flags & FIN != 0 {
        1
    } else if flags & ACK != 0 {
        2
    } else {
        return State::Close;
    };
    let off = match dir {
        Dir::Input => 0,
        Dir::Output => 4,
        Dir::InputOnly => 8,
    };
    let s = state as usize;
    if s >= 11 {
        return State::Close;
    }
    TCP_STATES[off + idx][s]
}

/// Per-state timeouts, defaulting to the kernel's `tcp_timeouts[]` and
/// `udp_timeouts[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Milliseconds (what the connection table counts in), capped at 2^31-1.
    table: [u32; N_STATES],
}

fn to_ms(d: Duration) -> u32 {
    d.as_millis().min(i32::MAX as u128) as u32
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = |secs: u32| secs * 1000;
        Self {
            table: [
                s(2),       // NONE
                s(15 * 60), // ESTABLISHED
                s(2 * 60),  // SYN_SENT
                s(60),      // SYN_RECV
                s(2 * 60),  // FIN_WAIT
                s(2 * 60),  // TIME_WAIT
                s(10),      // CLOSE
                s(60),      // CLOSE_WAIT
                s(30),      // LAST_ACK
                s(2 * 60),  // LISTEN
                s(120),     // SYNACK
                s(5 * 60),  // UDP
                s(60),      // ICMP
            ],
        }
    }
}

impl Timeouts {
    /// Timeout of `state`.
    #[must_use]
    pub fn get(&self, state: State) -> Duration {
        Duration::from_millis(u64::from(self.table[state as usize]))
    }

    /// Timeout of `state` in milliseconds (for the packet path).
    #[must_use]
    #[inline]
    pub fn get_ms(&self, state: State) -> u32 {
        self.table[state as usize]
    }

    /// Sets the timeout of one state (millisecond resolution, at most ~24 days).
    pub fn set(&mut self, state: State, d: Duration) -> &mut Self {
        self.table[state as usize] = to_ms(d);
        self
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP; a
    /// zero leaves that value unchanged, as in the kernel.
    pub fn set_ipvsadm(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) -> &mut Self {
        for (st, d) in [
            (State::Established, tcp),
            (State::FinWait, tcpfin),
            (State::Udp, udp),
        ] {
            if !d.is_zero() {
                self.table[st as usize] = to_ms(d);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const SYN: u8 = 0x02;
    const FIN: u8 = 0x01;
    const ACK: u8 = 0x10;
    const RST: u8 = 0x04;

    #[test]
    fn nat_handshake_and_close() {
        // Client SYN, server SYN-ACK, client ACK, then the server closes.
        let mut s = State::None;
        for (dir, f, want) in [
            (Dir::Input, SYN, State::SynRecv),
            (Dir::Output, SYN | ACK, State::SynRecv),
            (Dir::Input, ACK, State::Established),
            (Dir::Output, FIN | ACK, State::FinWait),
            (Dir::Input, ACK, State::FinWait),
            (Dir::Input, FIN | ACK, State::TimeWait),
        ] {
            s = tcp_next(s, dir, f);
            assert_eq!(s, want, "{dir:?} {f:#x}");
        }
    }

    #[test]
    fn dr_input_only() {
        let mut s = tcp_next(State::None, Dir::InputOnly, SYN);
        assert_eq!(s, State::SynRecv);
        s = tcp_next(s, Dir::InputOnly, ACK);
        assert_eq!(s, State::Established);
        s = tcp_next(s, Dir::InputOnly, FIN | ACK);
        assert_eq!(s, State::FinWait);
        assert_eq!(tcp_next(s, Dir::InputOnly, RST), State::Close);
        assert_eq!(tcp_next(s, Dir::InputOnly, 0), State::Close);
    }

    #[test]
    fn set_like_ipvsadm() {
        let mut t = Timeouts::default();
        assert_eq!(t.get(State::Established), Duration::from_secs(900));
        assert_eq!(t.get(State::FinWait), Duration::from_secs(120));
        assert_eq!(t.get(State::Udp), Duration::from_secs(300));
        t.set_ipvsadm(
            Duration::from_secs(100),
            Duration::ZERO,
            Duration::from_secs(7),
        );
        assert_eq!(t.get(State::Established), Duration::from_secs(100));
        assert_eq!(t.get(State::FinWait), Duration::from_secs(120));
        assert_eq!(t.get(State::Udp), Duration::from_secs(7));
    }
}
