//! The blocking netlink client: resolves the "IPVS" family, sends requests
//! (many per datagram when batching), and decodes replies.
//!
//! Batching: [`Client::apply`] packs up to [`Client::set_batch_limit`]
//! requests into one `sendmsg`. Only the last request of a datagram asks for
//! an ACK (`NLM_F_ACK`); the kernel answers every failing request with an
//! `NLMSG_ERROR` anyway and keeps processing the rest of the datagram, so one
//! receive round per datagram collects every error, matched to its request by
//! sequence number.

use std::num::NonZeroI32;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_generic::{
    GenlFamily, GenlMessage,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use crate::{
    error::Error,
    nl::{IpvsAttr, IpvsCmd, IpvsMessage},
    ops::Op,
    types::{Daemon, DestEntry, Info, ServiceEntry, ServiceKey, Snapshot, Table, Timeouts},
};

/// Default requests per datagram.
const DEFAULT_BATCH: usize = 256;
/// Upper bound on a datagram's size (the default netlink `sk_sndbuf` is
/// 212992 bytes).
const MAX_DATAGRAM: usize = 128 * 1024;
/// Receive buffer for one `recv` (dump datagrams are at most 32 KiB).
const RECV_BUF: usize = 256 * 1024;

/// A connection to the kernel's IPVS generic-netlink family.
///
/// ```no_run
/// use lb_ipvs::{Client, Dest, Op, Service, ServiceKey};
///
/// let mut ipvs = Client::new()?;
/// let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
/// ipvs.apply(&[
///     Op::AddService(Service::new(key)),
///     Op::AddDest(key, Dest::new("10.0.1.1".parse().unwrap(), 80)),
/// ])?;
/// for (svc, dests) in ipvs.snapshot()?.services {
///     println!("{} has {} destinations", svc.service.key, dests.len());
/// }
/// # Ok::<(), lb_ipvs::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    socket: Socket,
    family_id: u16,
    seq: u32,
    batch: usize,
    tunnel_attrs: bool,
    recv_buf: Vec<u8>,
}

/// What a query is about, for its error.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Op(&'a Op),
    Query(&'static str),
}

impl Ctx<'_> {
    fn error(self, errno: i32) -> Error {
        match self {
            Self::Op(op) => Error::from_errno(op, errno),
            Self::Query(what) => Error::from_query_errno(what, errno),
        }
    }
}

/// One received netlink message, already classified.
enum Reply {
    Msg(u32, IpvsMessage),
    Ack(u32, Option<NonZeroI32>),
    Done(u32, i32),
}

impl Client {
    /// Opens a generic-netlink socket and resolves the IPVS family.
    ///
    /// Fails with [`Error::FamilyNotFound`] when `ip_vs` is not loaded.
    pub fn new() -> Result<Self, Error> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(|e| Error::io("socket", e))?;
        socket.bind_auto().map_err(|e| Error::io("bind", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connect", e))?;
        // Best effort: a bigger receive buffer absorbs bursts of error
        // replies from large batches; short error replies (CAP_ACK).
        let _ = socket.set_rx_buf_sz(4 * 1024 * 1024);
        let _ = socket.set_cap_ack(true);
        let mut client = Self {
            socket,
            family_id: 0,
            seq: 0,
            batch: DEFAULT_BATCH,
            tunnel_attrs: true,
            recv_buf: Vec::with_capacity(RECV_BUF),
        };
        client.family_id = client.resolve_family()?;
        Ok(client)
    }

    /// The resolved family id.
    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    /// Requests per datagram in [`Client::apply`] (at least 1).
    pub fn set_batch_limit(&mut self, n: usize) -> &mut Self {
        self.batch = n.max(1);
        self
    }

    /// Whether destination requests carry `TUN_TYPE/PORT/FLAGS` (default
    /// true; kernels before 5.2 ignore them).
    pub fn set_tunnel_attrs(&mut self, on: bool) -> &mut Self {
        self.tunnel_attrs = on;
        self
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn resolve_family(&mut self) -> Result<u16, Error> {
        let mut genl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(
                <IpvsMessage as GenlFamily>::family_name().to_owned(),
            )],
        });
        genl.finalize();
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(genl));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| Error::io("send", e))?;
        let mut id = None;
        loop {
            let data = self.recv_raw()?;
            let mut off = 0;
            while off < data.len() {
                let len = frame_len(&data[off..])?;
                let frame = &data[off..off + len];
                off += len;
                let parsed = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(frame)
                    .map_err(|e| Error::malformed(e.to_string()))?;
                if parsed.header.sequence_number != seq {
                    continue;
                }
                match parsed.payload {
                    NetlinkPayload::InnerMessage(m) => {
                        for nla in m.payload.nlas {
                            if let GenlCtrlAttrs::FamilyId(v) = nla {
                                id = Some(v);
                            }
                        }
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => id.ok_or_else(|| Error::missing("CTRL_ATTR_FAMILY_ID")),
                            Some(c) if c.get() == -libc::ENOENT => Err(Error::FamilyNotFound),
                            Some(c) => Err(Error::io(
                                "CTRL_CMD_GETFAMILY",
                                std::io::Error::from_raw_os_error(c.get().saturating_neg()),
                            )),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    fn recv_raw(&mut self) -> Result<Vec<u8>, Error> {
        self.recv_buf.clear();
        self.recv_buf.reserve(RECV_BUF);
        let n = self
            .socket
            .recv(&mut self.recv_buf, 0)
            .map_err(|e| Error::io("recv", e))?;
        if n > self.recv_buf.len() {
            return Err(Error::malformed("datagram truncated"));
        }
        Ok(std::mem::take(&mut self.recv_buf))
    }

    fn encode(&self, buf: &mut Vec<u8>, msg: IpvsMessage, flags: u16, seq: u32) {
        encode_request(buf, self.family_id, msg, flags, seq);
    }

    /// Receives one datagram and decodes its messages.
    fn recv_replies(&mut self) -> Result<Vec<Reply>, Error> {
        let data = self.recv_raw()?;
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let len = frame_len(&data[off..])?;
            out.push(decode_frame(&data[off..off + len])?);
            off += len;
        }
        self.recv_buf = data;
        Ok(out)
    }

    /// Applies operations in order, batching many per datagram. Every
    /// operation is attempted; if some fail, [`Error::Batch`] lists them
    /// (a single failing operation is returned as its own error).
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), Error> {
        let mut failures = Vec::new();
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        let mut i = 0;
        while i < ops.len() {
            buf.clear();
            let first_seq = self.seq.wrapping_add(1);
            let start = i;
            // Every request is far smaller than 8 KiB, so stopping once the
            // datagram passes MAX_DATAGRAM - 8 KiB keeps it under the limit;
            // the loop always ends on a request that asks for the ACK.
            loop {
                let last = i + 1 == ops.len()
                    || i + 1 - start == self.batch
                    || buf.len() >= MAX_DATAGRAM - 8192;
                let flags = if last {
                    NLM_F_REQUEST | NLM_F_ACK
                } else {
                    NLM_F_REQUEST
                };
                let seq = self.next_seq();
                self.encode(&mut buf, ops[i].to_message(self.tunnel_attrs), flags, seq);
                i += 1;
                if last {
                    break;
                }
            }
            let last_seq = self.seq;
            self.socket
                .send(&buf, 0)
                .map_err(|e| Error::io("send", e))?;
            'recv: loop {
                for reply in self.recv_replies()? {
                    let Reply::Ack(seq, code) = reply else {
                        continue;
                    };
                    let idx = seq.wrapping_sub(first_seq) as usize;
                    if idx >= i - start {
                        continue;
                    }
                    if let Some(c) = code {
                        failures.push((
                            start + idx,
                            Error::from_errno(&ops[start + idx], c.get().saturating_neg()),
                        ));
                    }
                    if seq == last_seq {
                        break 'recv;
                    }
                }
            }
        }
        match failures.len() {
            0 => Ok(()),
            1 if ops.len() == 1 => Err(failures.pop().expect("one failure").1),
            _ => Err(Error::Batch {
                failures,
                total: ops.len(),
            }),
        }
    }

    /// Sends one request and collects its reply messages (a dump with
    /// `dump`; a doit reply is followed by its ACK), failing with the
    /// kernel's error attributed to `ctx`.
    fn query(
        &mut self,
        msg: IpvsMessage,
        dump: bool,
        ctx: Ctx<'_>,
    ) -> Result<Vec<IpvsMessage>, Error> {
        let seq = self.next_seq();
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let mut buf = Vec::new();
        self.encode(&mut buf, msg, flags, seq);
        self.socket
            .send(&buf, 0)
            .map_err(|e| Error::io("send", e))?;
        let mut out = Vec::new();
        loop {
            for reply in self.recv_replies()? {
                match reply {
                    Reply::Msg(s, m) if s == seq => out.push(m),
                    Reply::Ack(s, None) if s == seq => return Ok(out),
                    Reply::Ack(s, Some(c)) if s == seq => {
                        return Err(ctx.error(c.get().saturating_neg()));
                    }
                    Reply::Done(s, code) if s == seq => {
                        return if code < 0 {
                            Err(ctx.error(code.saturating_neg()))
                        } else {
                            Ok(out)
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// `GET_INFO`.
    pub fn info(&mut self) -> Result<Info, Error> {
        let replies = self.query(
            IpvsMessage::new(IpvsCmd::GetInfo),
            false,
            Ctx::Query("get IPVS info"),
        )?;
        let (mut version, mut size) = (None, None);
        for a in replies.iter().flat_map(|m| &m.attrs) {
            match a {
                IpvsAttr::InfoVersion(v) => version = Some(*v),
                IpvsAttr::InfoConnTabSize(v) => size = Some(*v),
                _ => {}
            }
        }
        Ok(Info {
            version: version.ok_or_else(|| Error::missing("IPVS_INFO_ATTR_VERSION"))?,
            conn_tab_size: size.ok_or_else(|| Error::missing("IPVS_INFO_ATTR_CONN_TAB_SIZE"))?,
        })
    }

    /// `GET_CONFIG`: the TCP, TCP-FIN and UDP timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts, Error> {
        let replies = self.query(
            IpvsMessage::new(IpvsCmd::GetConfig),
            false,
            Ctx::Query("get timeouts"),
        )?;
        let mut t = Timeouts::default();
        for a in replies.iter().flat_map(|m| &m.attrs) {
            match a {
                IpvsAttr::TimeoutTcp(v) => t.tcp = *v,
                IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = *v,
                IpvsAttr::TimeoutUdp(v) => t.udp = *v,
                _ => {}
            }
        }
        Ok(t)
    }

    /// `GET_SERVICE` dump: every service, in kernel order.
    pub fn services(&mut self) -> Result<Vec<ServiceEntry>, Error> {
        let replies = self.query(
            IpvsMessage::new(IpvsCmd::GetService),
            true,
            Ctx::Query("list services"),
        )?;
        services_from(&replies)
    }

    /// `GET_SERVICE` of one service.
    pub fn service(&mut self, key: &ServiceKey) -> Result<ServiceEntry, Error> {
        let op = Op::GetService(*key);
        let replies = self.query(op.to_message(self.tunnel_attrs), false, Ctx::Op(&op))?;
        services_from(&replies)?
            .pop()
            .ok_or_else(|| Error::missing("IPVS_CMD_ATTR_SERVICE"))
    }

    /// `GET_DEST` dump: the destinations of one service (empty when the
    /// service does not exist).
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<DestEntry>, Error> {
        let msg = IpvsMessage {
            cmd: IpvsCmd::GetDest,
            attrs: vec![IpvsAttr::Service(key.to_attrs())],
        };
        let replies = self.query(msg, true, Ctx::Op(&Op::GetService(*key)))?;
        let mut out = Vec::new();
        for a in replies.iter().flat_map(|m| &m.attrs) {
            if let IpvsAttr::Dest(d) = a {
                out.push(DestEntry::from_attrs(d, key.family())?);
            }
        }
        Ok(out)
    }

    /// `GET_DAEMON` dump: running sync daemons (master first).
    pub fn daemons(&mut self) -> Result<Vec<Daemon>, Error> {
        let replies = self.query(
            IpvsMessage::new(IpvsCmd::GetDaemon),
            true,
            Ctx::Query("list sync daemons"),
        )?;
        let mut out = Vec::new();
        for a in replies.iter().flat_map(|m| &m.attrs) {
            if let IpvsAttr::Daemon(d) = a {
                out.push(Daemon::from_attrs(d)?);
            }
        }
        Ok(out)
    }

    /// Info, every service and every destination.
    pub fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let info = self.info()?;
        let services = self.services()?;
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let d = self.dests(&s.service.key)?;
            out.push((s, d));
        }
        Ok(Snapshot {
            info,
            services: out,
        })
    }

    /// The current configuration.
    pub fn table(&mut self) -> Result<Table, Error> {
        Ok(self.snapshot()?.table())
    }

    /// Makes the kernel's table equal to `desired` with the minimal set of
    /// operations (see [`crate::reconcile::diff`]); returns what was sent.
    pub fn reconcile(&mut self, desired: &Table) -> Result<Vec<Op>, Error> {
        let current = self.table()?;
        let ops = crate::reconcile::diff(&current, desired);
        self.apply(&ops)?;
        Ok(ops)
    }
}

/// Appends one request (netlink header, genl header, attributes) to `buf`:
/// the encoder [`Client`] uses, exposed for tests.
///
/// ```
/// use lb_ipvs::{client::encode_request, nl::{IpvsCmd, IpvsMessage}};
/// let mut buf = Vec::new();
/// encode_request(&mut buf, 0x1c, IpvsMessage::new(IpvsCmd::Flush), 5, 9);
/// assert_eq!(buf, [20, 0, 0, 0, 0x1c, 0, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0, 17, 1, 0, 0]);
/// ```
pub fn encode_request(buf: &mut Vec<u8>, family_id: u16, msg: IpvsMessage, flags: u16, seq: u32) {
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(genl));
    nl.finalize();
    let start = buf.len();
    buf.resize(start + nl.buffer_len(), 0);
    nl.serialize(&mut buf[start..]);
}

fn services_from(replies: &[IpvsMessage]) -> Result<Vec<ServiceEntry>, Error> {
    let mut out = Vec::new();
    for a in replies.iter().flat_map(|m| &m.attrs) {
        if let IpvsAttr::Service(s) = a {
            out.push(ServiceEntry::from_attrs(s)?);
        }
    }
    Ok(out)
}

/// The aligned length of the netlink message at the start of `data`.
fn frame_len(data: &[u8]) -> Result<usize, Error> {
    let buf = NetlinkBuffer::new_checked(data).map_err(|e| Error::malformed(e.to_string()))?;
    let len = buf.length() as usize;
    Ok(((len + 3) & !3).min(data.len()))
}

fn decode_frame(frame: &[u8]) -> Result<Reply, Error> {
    let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(frame)
        .map_err(|e| Error::malformed(e.to_string()))?;
    let seq = msg.header.sequence_number;
    Ok(match msg.payload {
        NetlinkPayload::InnerMessage(m) => Reply::Msg(seq, m.payload),
        NetlinkPayload::Error(e) => Reply::Ack(seq, e.code),
        NetlinkPayload::Done(d) => Reply::Done(seq, d.code),
        _ => Reply::Done(u32::MAX, 0),
    })
}

/// Decodes every netlink message in a datagram received from the IPVS
/// family: the reply decoder [`Client`] uses, exposed for fuzzing and tests.
///
/// ```
/// // An ACK (NLMSG_ERROR with code 0) for sequence 7.
/// let mut ack = vec![36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// ack.extend_from_slice(&[16, 0, 0, 0, 30, 0, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
/// let msgs = lb_ipvs::client::decode_datagram(&ack).unwrap();
/// assert_eq!(msgs, vec![lb_ipvs::client::Decoded::Ack { seq: 7, errno: 0 }]);
/// ```
pub fn decode_datagram(data: &[u8]) -> Result<Vec<Decoded>, Error> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let len = frame_len(&data[off..])?;
        if len == 0 {
            return Err(Error::malformed("zero-length netlink message"));
        }
        out.push(match decode_frame(&data[off..off + len])? {
            Reply::Msg(seq, m) => Decoded::Message { seq, msg: m },
            Reply::Ack(seq, c) => Decoded::Ack {
                seq,
                errno: c.map_or(0, |c| c.get().saturating_neg()),
            },
            Reply::Done(seq, code) => Decoded::Done { seq, code },
        });
        off += len;
    }
    Ok(out)
}

/// One decoded message of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// An IPVS message.
    Message {
        /// Sequence number.
        seq: u32,
        /// The message.
        msg: IpvsMessage,
    },
    /// `NLMSG_ERROR`: errno 0 is an ACK.
    Ack {
        /// Sequence number.
        seq: u32,
        /// Positive errno, 0 for success.
        errno: i32,
    },
    /// `NLMSG_DONE` (or another control message).
    Done {
        /// Sequence number.
        seq: u32,
        /// Code.
        code: i32,
    },
}
