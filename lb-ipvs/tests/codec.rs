//! Byte-exact encode/decode tests of IPVS generic-netlink messages, with
//! the bytes derived by hand from `include/uapi/linux/ip_vs.h` and
//! `ip_vs_ctl.c` (little-endian host).
#![cfg(target_endian = "little")]

use lb_ipvs::{
    Dest, DestEntry, ForwardMethod, Op, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats,
    TunnelFlags, TunnelType,
    client::{Decoded, decode_datagram, encode_request},
    nl::{DestAttr, IpvsAttr, IpvsCmd, IpvsMessage, ServiceAttr, StatsAttr, stats::Counter},
};
use netlink_packet_core::{DefaultNla, Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

const FAMILY: u16 = 0x1c;

#[test]
fn new_service_request_bytes() {
    let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
    let mut buf = Vec::new();
    encode_request(
        &mut buf,
        FAMILY,
        Op::AddService(Service::new(key)).to_message(true),
        5,
        1,
    );
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        104, 0, 0, 0,        // nlmsg_len
        0x1c, 0,             // nlmsg_type: the resolved IPVS family
        5, 0,                // NLM_F_REQUEST | NLM_F_ACK
        1, 0, 0, 0,          // seq
        0, 0, 0, 0,          // pid
        1, 1, 0, 0,          // genl: IPVS_CMD_NEW_SERVICE, version 1
        84, 0, 1, 0,         // IPVS_CMD_ATTR_SERVICE (nest)
        6, 0, 1, 0, 2, 0, 0, 0,      // AF = AF_INET
        6, 0, 2, 0, 6, 0, 0, 0,      // PROTOCOL = TCP
        20, 0, 3, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
        6, 0, 4, 0, 0, 80, 0, 0,     // PORT, big-endian
        8, 0, 6, 0, b'w', b'l', b'c', 0, // SCHED_NAME
        12, 0, 7, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // FLAGS {0, mask ~0}
        8, 0, 8, 0, 0, 0, 0, 0,      // TIMEOUT
        8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff, // NETMASK 255.255.255.255
    ];
    assert_eq!(buf, expected);
}

#[test]
fn ipv6_netmask_is_host_order_prefix_and_v4_mask_is_big_endian() {
    let mut s6 = Service::new(ServiceKey::Fwmark {
        family: lb_ipvs::Family::Inet6,
        mark: 7,
    });
    s6.netmask = 64;
    let attrs = s6.to_attrs();
    assert!(attrs.contains(&ServiceAttr::Netmask([64, 0, 0, 0])));
    assert!(attrs.contains(&ServiceAttr::Af(10)));
    assert!(attrs.contains(&ServiceAttr::Fwmark(7)));
    let mut s4 = Service::new(ServiceKey::fwmark(7));
    s4.netmask = 0xffff_ff00;
    assert!(
        s4.to_attrs()
            .contains(&ServiceAttr::Netmask([255, 255, 255, 0]))
    );
}

#[test]
fn new_dest_request_bytes_with_tunnel_attrs() {
    let key = ServiceKey::fwmark(3);
    let mut d = Dest::new("10.0.1.1".parse().unwrap(), 8080);
    d.fwd = ForwardMethod::Tunnel;
    d.weight = 7;
    d.tun_type = TunnelType::Gue;
    d.tun_port = 6080;
    d.tun_flags = TunnelFlags(TunnelFlags::CSUM);
    d.u_threshold = 100;
    d.l_threshold = 10;
    let msg = Op::AddDest(key, d).to_message(true);
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        20, 0, 1, 0,                     // IPVS_CMD_ATTR_SERVICE
        6, 0, 1, 0, 2, 0, 0, 0,          //   AF_INET
        8, 0, 5, 0, 3, 0, 0, 0,          //   FWMARK 3
        96, 0, 2, 0,                     // IPVS_CMD_ATTR_DEST
        6, 0, 11, 0, 2, 0, 0, 0,         //   ADDR_FAMILY
        20, 0, 1, 0, 10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
        6, 0, 2, 0, 0x1f, 0x90, 0, 0,    //   PORT 8080 (be)
        8, 0, 3, 0, 2, 0, 0, 0,          //   FWD_METHOD tunnel
        8, 0, 4, 0, 7, 0, 0, 0,          //   WEIGHT
        5, 0, 13, 0, 1, 0, 0, 0,         //   TUN_TYPE gue (u8 + pad)
        6, 0, 14, 0, 0x17, 0xc0, 0, 0,   //   TUN_PORT 6080 (be)
        6, 0, 15, 0, 1, 0, 0, 0,         //   TUN_FLAGS csum
        8, 0, 5, 0, 100, 0, 0, 0,        //   U_THRESH
        8, 0, 6, 0, 10, 0, 0, 0,         //   L_THRESH
    ];
    assert_eq!(buf, expected);
    // Without tunnel attributes (old kernels) the three TUN_* go away.
    let old = Op::AddDest(key, Dest::new("10.0.1.1".parse().unwrap(), 80)).to_message(false);
    let IpvsAttr::Dest(attrs) = &old.attrs[1] else {
        panic!("dest nest")
    };
    assert!(
        !attrs
            .iter()
            .any(|a| matches!(a, DestAttr::TunType(_) | DestAttr::TunPort(_)))
    );
}

/// A `GET_DEST` dump reply as a 5.x kernel sends it: legacy stats with a
/// PAD before each u64, 64-bit stats, tunnel attributes, plus an attribute
/// from the future (type 99) that must be kept.
#[rustfmt::skip]
fn dest_reply() -> Vec<u8> {
    let mut v = vec![
        0, 0, 0, 0, 0x1c, 0, 2, 0, 42, 0, 0, 0, 0x39, 0x30, 0, 0, // nlmsghdr (len patched), NLM_F_MULTI, seq 42
        5, 1, 0, 0,                      // IPVS_CMD_NEW_DEST, version 1
        0, 0, 2, 0,                      // IPVS_CMD_ATTR_DEST (len patched)
        20, 0, 1, 0, 10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
        6, 0, 2, 0, 0, 80, 0, 0,         // PORT 80
        8, 0, 3, 0, 0, 0, 0, 0,          // FWD_METHOD masq
        8, 0, 4, 0, 3, 0, 0, 0,          // WEIGHT 3
        5, 0, 13, 0, 0, 0, 0, 0,         // TUN_TYPE ipip
        6, 0, 14, 0, 0, 0, 0, 0,         // TUN_PORT 0
        6, 0, 15, 0, 0, 0, 0, 0,         // TUN_FLAGS 0
        8, 0, 5, 0, 0, 0, 0, 0,          // U_THRESH
        8, 0, 6, 0, 0, 0, 0, 0,          // L_THRESH
        8, 0, 7, 0, 5, 0, 0, 0,          // ACTIVE_CONNS 5
        8, 0, 8, 0, 7, 0, 0, 0,          // INACT_CONNS 7
        8, 0, 9, 0, 1, 0, 0, 0,          // PERSIST_CONNS 1
        6, 0, 11, 0, 2, 0, 0, 0,         // ADDR_FAMILY
        36, 0, 10, 0,                    // STATS (legacy)
        8, 0, 1, 0, 9, 0, 0, 0,          //   CONNS u32 9
        4, 0, 11, 0,                     //   PAD
        12, 0, 4, 0, 0, 1, 0, 0, 0, 0, 0, 0, //   INBYTES u64 256
        8, 0, 6, 0, 2, 0, 0, 0,          //   CPS u32 2
        28, 0, 12, 0,                    // STATS64
        12, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0,   // CONNS u64 9
        12, 0, 4, 0, 0, 1, 0, 0, 1, 0, 0, 0,   // INBYTES u64 2^32+256
        8, 0, 99, 0, 1, 2, 3, 4,         // unknown attribute
    ];
    let total = v.len() as u32;
    v[..4].copy_from_slice(&total.to_le_bytes());
    let nest = (total - 20) as u16;
    v[20..22].copy_from_slice(&nest.to_le_bytes());
    v
}

#[test]
fn dest_dump_reply_decodes_and_reencodes() {
    let raw = dest_reply();
    let decoded = decode_datagram(&raw).unwrap();
    let [Decoded::Message { seq: 42, msg }] = decoded.as_slice() else {
        panic!("{decoded:?}")
    };
    assert_eq!(msg.cmd, IpvsCmd::NewDest);
    let IpvsAttr::Dest(attrs) = &msg.attrs[0] else {
        panic!("dest nest")
    };
    assert!(attrs.contains(&DestAttr::Other(DefaultNla::new(99, vec![1, 2, 3, 4]))));
    assert!(attrs.contains(&DestAttr::Stats(vec![
        StatsAttr::Conns(Counter::U32(9)),
        StatsAttr::Pad,
        StatsAttr::InBytes(Counter::U64(256)),
        StatsAttr::Cps(Counter::U32(2)),
    ])));
    let entry = DestEntry::from_attrs(attrs, lb_ipvs::Family::Inet).unwrap();
    let mut want = Dest::new("10.0.1.1".parse().unwrap(), 80);
    want.fwd = ForwardMethod::Masq;
    want.weight = 3;
    assert_eq!(
        entry,
        DestEntry {
            dest: want,
            active_conns: 5,
            inact_conns: 7,
            persist_conns: 1,
            // STATS64 wins over the legacy nest.
            stats: Stats {
                conns: 9,
                inbytes: (1 << 32) + 256,
                ..Stats::default()
            },
        }
    );
    // Re-encoding the payload gives the same bytes.
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    assert_eq!(buf, raw[20..]);
    // And parsing the payload alone gives the same message.
    let again =
        IpvsMessage::parse_with_param(&raw[20..], GenlHeader { cmd: 5, version: 1 }).unwrap();
    assert_eq!(&again, msg);
}

#[test]
fn dest_without_tunnel_or_family_attrs_from_old_kernels() {
    let attrs = vec![
        DestAttr::Addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        DestAttr::Port(443),
        DestAttr::FwdMethod(3),
        DestAttr::Weight(1),
    ];
    let e = DestEntry::from_attrs(&attrs, lb_ipvs::Family::Inet6).unwrap();
    assert_eq!(
        e.dest.addr,
        "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(e.dest.tun_type, TunnelType::Ipip);
}

#[test]
fn service_reply_decodes_flags_netmask_pe_and_stats() {
    #[rustfmt::skip]
    let nest: Vec<u8> = vec![
        6, 0, 1, 0, 10, 0, 0, 0,          // AF_INET6
        6, 0, 2, 0, 17, 0, 0, 0,          // UDP
        20, 0, 3, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // 2001:db8::10
        6, 0, 4, 0, 0, 53, 0, 0,          // port 53
        7, 0, 6, 0, b's', b'h', 0, 0,     // "sh"
        8, 0, 11, 0, b's', b'i', b'p', 0, // PE "sip"
        12, 0, 7, 0, 0x1b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // persistent|hashed|sched1|sched2
        8, 0, 8, 0, 0x2c, 1, 0, 0,        // timeout 300
        8, 0, 9, 0, 64, 0, 0, 0,          // prefix 64 (host order)
    ];
    let mut raw = vec![(nest.len() + 4) as u8, 0, 1, 0];
    raw.extend_from_slice(&nest);
    let msg = IpvsMessage::parse_with_param(&raw[..], GenlHeader { cmd: 1, version: 1 }).unwrap();
    let IpvsAttr::Service(attrs) = &msg.attrs[0] else {
        panic!()
    };
    let e = ServiceEntry::from_attrs(attrs).unwrap();
    assert_eq!(
        e.service.key,
        ServiceKey::udp("2001:db8::10".parse().unwrap(), 53)
    );
    assert_eq!(e.service.scheduler, "sh");
    assert_eq!(e.service.pe_name.as_deref(), Some("sip"));
    assert_eq!(e.service.flags, ServiceFlags(0x1b));
    assert_eq!((e.service.timeout, e.service.netmask), (300, 64));
    assert_eq!(e.stats, Stats::default());
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    assert_eq!(buf, raw);
}

#[test]
fn info_and_config_replies_use_command_specific_attributes() {
    #[rustfmt::skip]
    let info: Vec<u8> = vec![
        8, 0, 1, 0, 0x01, 0x02, 0x01, 0, // IPVS_INFO_ATTR_VERSION 0x010201
        8, 0, 2, 0, 0, 0x10, 0, 0,       // IPVS_INFO_ATTR_CONN_TAB_SIZE 4096
    ];
    let m = IpvsMessage::parse_with_param(
        &info[..],
        GenlHeader {
            cmd: 14,
            version: 1,
        },
    )
    .unwrap();
    assert_eq!(
        m.attrs,
        vec![
            IpvsAttr::InfoVersion(0x010201),
            IpvsAttr::InfoConnTabSize(4096)
        ]
    );
    #[rustfmt::skip]
    let config: Vec<u8> = vec![
        8, 0, 4, 0, 0x84, 3, 0, 0,  // TIMEOUT_TCP 900
        8, 0, 5, 0, 120, 0, 0, 0,   // TIMEOUT_TCP_FIN 120
        8, 0, 6, 0, 44, 1, 0, 0,    // TIMEOUT_UDP 300
    ];
    let m = IpvsMessage::parse_with_param(
        &config[..],
        GenlHeader {
            cmd: 12,
            version: 1,
        },
    )
    .unwrap();
    assert_eq!(
        m.attrs,
        vec![
            IpvsAttr::TimeoutTcp(900),
            IpvsAttr::TimeoutTcpFin(120),
            IpvsAttr::TimeoutUdp(300)
        ]
    );
}

#[test]
fn datagram_with_errors_acks_and_done() {
    #[rustfmt::skip]
    let raw: Vec<u8> = vec![
        // NLMSG_ERROR -EEXIST for seq 3 (with CAP_ACK: only the header echoed)
        36, 0, 0, 0, 2, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0,
        0xef, 0xff, 0xff, 0xff,
        20, 0, 0, 0, 0x1c, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0,
        // ACK for seq 4
        36, 0, 0, 0, 2, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
        20, 0, 0, 0, 0x1c, 0, 5, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        // NLMSG_DONE for seq 5
        20, 0, 0, 0, 3, 0, 2, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(
        decode_datagram(&raw).unwrap(),
        vec![
            Decoded::Ack {
                seq: 3,
                errno: libc::EEXIST
            },
            Decoded::Ack { seq: 4, errno: 0 },
            Decoded::Done { seq: 5, code: 0 },
        ]
    );
}

#[test]
fn every_command_round_trips_through_u8() {
    for (i, cmd) in IpvsCmd::ALL.iter().enumerate() {
        let v: u8 = (*cmd).into();
        assert_eq!(usize::from(v), i + 1);
        assert_eq!(IpvsCmd::try_from(v).unwrap(), *cmd);
    }
    assert!(IpvsCmd::try_from(0).is_err());
    assert!(IpvsCmd::try_from(18).is_err());
}

#[test]
fn truncated_and_garbage_input_is_an_error_not_a_panic() {
    let raw = dest_reply();
    for n in 0..raw.len() {
        let _ = decode_datagram(&raw[..n]);
    }
    assert!(decode_datagram(&[1, 2, 3]).is_err());
}

#[test]
fn every_op_encodes_a_command() {
    use lb_ipvs::{Daemon, DaemonState, Timeouts};
    let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
    let d = Dest::new("10.0.1.1".parse().unwrap(), 80);
    let cases = [
        (Op::AddService(Service::new(key)), IpvsCmd::NewService),
        (Op::EditService(Service::new(key)), IpvsCmd::SetService),
        (Op::DelService(key), IpvsCmd::DelService),
        (Op::AddDest(key, d.clone()), IpvsCmd::NewDest),
        (Op::EditDest(key, d.clone()), IpvsCmd::SetDest),
        (Op::DelDest(key, d.addr, d.port), IpvsCmd::DelDest),
        (Op::Flush, IpvsCmd::Flush),
        (Op::Zero(None), IpvsCmd::Zero),
        (Op::Zero(Some(key)), IpvsCmd::Zero),
        (
            Op::SetTimeouts(Timeouts {
                tcp: 1,
                tcp_fin: 2,
                udp: 3,
            }),
            IpvsCmd::SetConfig,
        ),
        (
            Op::StartDaemon(Daemon::new(DaemonState::Backup, "eth0")),
            IpvsCmd::NewDaemon,
        ),
        (Op::StopDaemon(DaemonState::Master), IpvsCmd::DelDaemon),
        (Op::GetService(key), IpvsCmd::GetService),
    ];
    for (op, cmd) in cases {
        let msg = op.to_message(true);
        assert_eq!(msg.cmd, cmd, "{op}");
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        let back = IpvsMessage::parse_with_param(
            &buf[..],
            GenlHeader {
                cmd: cmd.into(),
                version: 1,
            },
        )
        .unwrap();
        assert_eq!(back, msg, "{op}");
    }
}
