//! The IPVS netlink reply decoder: arbitrary datagrams must decode or fail
//! cleanly, and whatever decodes must re-encode to bytes that are a fixed
//! point of decode+encode. (Not equality with the first decode: the
//! blanket `Nla` emitter of netlink-packet-core 0.9 drops
//! `NLA_F_NET_BYTEORDER` when `NLA_F_NESTED` is also set on an unknown
//! attribute.)
#![no_main]

use lb_ipvs::{
    DestEntry, Family, ServiceEntry,
    client::{Decoded, decode_datagram},
    nl::{IpvsAttr, IpvsMessage},
    Daemon,
};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(msgs) = decode_datagram(data) else { return };
    for m in msgs {
        let Decoded::Message { msg, .. } = m else { continue };
        for a in &msg.attrs {
            match a {
                IpvsAttr::Service(s) => drop(ServiceEntry::from_attrs(s)),
                IpvsAttr::Dest(d) => drop(DestEntry::from_attrs(d, Family::Inet)),
                IpvsAttr::Daemon(d) => drop(Daemon::from_attrs(d)),
                _ => {}
            }
        }
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        let header = GenlHeader { cmd: msg.cmd.into(), version: 1 };
        let again = IpvsMessage::parse_with_param(&buf[..], header).expect("re-encoded message decodes");
        let mut buf2 = vec![0; again.buffer_len()];
        again.emit(&mut buf2);
        assert_eq!(buf2, buf);
    }
});
