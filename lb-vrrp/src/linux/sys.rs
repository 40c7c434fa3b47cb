//! The system calls of the Linux driver: raw VRRP sockets, the packet socket
//! for gratuitous ARP, the raw ICMPv6 socket for Neighbor Advertisements, and
//! an rtnetlink socket for the virtual addresses.
//!
//! This is the only module of the crate with `unsafe` code: each block is a
//! libc call on a file descriptor this module owns, with pointers to local
//! buffers whose lengths are passed alongside.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::transmit::RxMeta;
use crate::wire::{self, AddressFamily};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; on success we own the returned descriptor.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets the receive buffer to `bytes`: `SO_RCVBUFFORCE` (beyond
/// `net.core.rmem_max`, needs `CAP_NET_ADMIN`), else `SO_RCVBUF`.
pub(crate) fn set_recv_buffer(fd: &OwnedFd, bytes: libc::c_int) -> io::Result<()> {
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes)
        .or_else(|_| setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes))
}

fn bind_to_device(fd: &OwnedFd, ifname: &str) -> io::Result<()> {
    let name = ifname.as_bytes();
    // SAFETY: `name` is a live byte slice of the length passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn sockaddr_in(a: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_addr = libc::in_addr {
        s_addr: u32::from_ne_bytes(a.octets()),
    };
    s
}

fn sockaddr_in6(a: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut s: libc::sockaddr_in6 = unsafe { zeroed() };
    s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    s.sin6_addr = libc::in6_addr {
        s6_addr: a.octets(),
    };
    s.sin6_scope_id = scope;
    s
}

/// A raw IP protocol 112 socket on one interface, joined to the VRRP
/// group, sending with TTL / Hop Limit 255 from `primary`.
pub(crate) fn vrrp_socket(primary: IpAddr, ifname: &str, ifindex: u32) -> io::Result<OwnedFd> {
    let one: libc::c_int = 1;
    let zero: libc::c_int = 0;
    let ttl: libc::c_int = 255;
    match primary {
        IpAddr::V4(_) => {
            let fd = socket(
                libc::AF_INET,
                libc::SOCK_RAW,
                libc::c_int::from(wire::PROTOCOL),
            )?;
            bind_to_device(&fd, ifname)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(wire::MULTICAST_V4.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as libc::c_int,
            };
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
            // No bind(): a raw socket bound to an address only receives packets
            // sent to that address, not to the group. The source address is
            // set per packet with IP_PKTINFO instead (see `send_vrrp`).
            Ok(fd)
        }
        IpAddr::V6(_) => {
            let fd = socket(
                libc::AF_INET6,
                libc::SOCK_RAW,
                libc::c_int::from(wire::PROTOCOL),
            )?;
            bind_to_device(&fd, ifname)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
            let idx = ifindex as libc::c_int;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: wire::MULTICAST_V6.octets(),
                },
                ipv6mr_interface: ifindex,
            };
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
            // Not bound, as for IPv4; the source goes in IPV6_PKTINFO.
            Ok(fd)
        }
    }
}

/// Receives one VRRP packet: its metadata and the range of the IP payload
/// in `buf`. `Ok(None)` for a packet too short to have an IP header.
pub(crate) fn recv_vrrp(
    fd: RawFd,
    family: AddressFamily,
    buf: &mut [u8],
) -> io::Result<Option<(RxMeta, core::ops::Range<usize>)>> {
    match family {
        AddressFamily::Ipv4 => {
            // SAFETY: `buf` is a live mutable buffer of the length passed.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            // A raw IPv4 socket delivers the IP header too.
            if n < 20 {
                return Ok(None);
            }
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if ihl < 20 || ihl > n {
                return Ok(None);
            }
            let end = if total >= ihl { total.min(n) } else { n };
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
            Ok(Some((
                RxMeta {
                    src: IpAddr::V4(src),
                    dst: IpAddr::V4(dst),
                    ttl: buf[8],
                },
                ihl..end,
            )))
        }
        AddressFamily::Ipv6 => {
            // SAFETY: all-zero is a valid sockaddr_in6 / msghdr / iovec.
            let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
            let mut control = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: as above.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control) as _;
            // SAFETY: every pointer in `msg` refers to a live local buffer of the length given.
            let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            let mut ttl = 0u8;
            let mut dst = Ipv6Addr::UNSPECIFIED;
            // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
            // bounded by msg_controllen; each data read is of the type the cmsg declares.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    let hdr = &*c;
                    if hdr.cmsg_level == libc::IPPROTO_IPV6 && hdr.cmsg_type == libc::IPV6_HOPLIMIT
                    {
                        let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                        ttl = u8::try_from(v).unwrap_or(0);
                    } else if hdr.cmsg_level == libc::IPPROTO_IPV6
                        && hdr.cmsg_type == libc::IPV6_PKTINFO
                    {
                        let info = std::ptr::read_unaligned(
                            libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(),
                        );
                        dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
            Ok(Some((
                RxMeta {
                    src: IpAddr::V6(src),
                    dst: IpAddr::V6(dst),
                    ttl,
                },
                0..n,
            )))
        }
    }
}

/// Sends `payload` to `dst` (scope `ifindex` for IPv6).
pub(crate) fn send_to(fd: RawFd, dst: IpAddr, ifindex: u32, payload: &[u8]) -> io::Result<()> {
    let n = match dst {
        IpAddr::V4(a) => {
            let s = sockaddr_in(a);
            // SAFETY: `payload` and `s` are live and of the lengths passed.
            unsafe {
                libc::sendto(
                    fd,
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    (&s as *const libc::sockaddr_in).cast(),
                    size_of_val(&s) as _,
                )
            }
        }
        IpAddr::V6(a) => {
            let s = sockaddr_in6(a, ifindex);
            // SAFETY: `payload` and `s` are live and of the lengths passed.
            unsafe {
                libc::sendto(
                    fd,
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    (&s as *const libc::sockaddr_in6).cast(),
                    size_of_val(&s) as _,
                )
            }
        }
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `payload` (a VRRP advertisement, or an ICMPv6 message on the ICMPv6
/// socket) from `src` to `dst` out of `ifindex`, the source
/// address given with `IP_PKTINFO` / `IPV6_PKTINFO` (the socket is not bound).
pub(crate) fn send_vrrp(
    fd: RawFd,
    src: IpAddr,
    dst: IpAddr,
    ifindex: u32,
    payload: &[u8],
) -> io::Result<()> {
    let mut slot = MsgSlot::new();
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    slot.fill(&mut msg, src, dst, ifindex, payload)?;
    // SAFETY: every pointer in `msg` refers to `slot` or `payload`, both live
    // and unmoved until the call returns, with the lengths given.
    let n = unsafe { libc::sendmsg(fd, &msg, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Advertisements sent per `sendmmsg` call by [`send_vrrp_batch`].
pub(crate) const SEND_BATCH: usize = 32;

/// One advertisement queued for [`send_vrrp_batch`]: its bytes are
/// `bytes[start..start + len]` of the batch's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outgoing {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub start: usize,
    pub len: usize,
}

/// Sends up to [`SEND_BATCH`] advertisements out of `ifindex` with one
/// `sendmmsg`: one system call for the advertisements of every router whose
/// timer fired in the same turn of the loop. A message the kernel refuses
/// is reported to `on_error` and skipped; the rest are still sent.
pub(crate) fn send_vrrp_batch(
    fd: RawFd,
    ifindex: u32,
    bytes: &[u8],
    out: &[Outgoing],
    mut on_error: impl FnMut(io::Error),
) {
    let mut slots = [const { MsgSlot::new() }; SEND_BATCH];
    // SAFETY: all-zero is a valid mmsghdr.
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { zeroed() };
    let mut n = 0;
    for (o, (slot, m)) in out.iter().zip(slots.iter_mut().zip(msgs.iter_mut())) {
        let Some(payload) = bytes.get(o.start..o.start + o.len) else {
            on_error(io::Error::from(io::ErrorKind::InvalidInput));
            continue;
        };
        match slot.fill(&mut m.msg_hdr, o.src, o.dst, ifindex, payload) {
            Ok(()) => n += 1,
            Err(e) => {
                on_error(e);
                m.msg_hdr.msg_iovlen = 0;
            }
        }
    }
    // Messages that failed to fill are left out: compact the filled ones.
    let mut filled = 0;
    for i in 0..out.len().min(SEND_BATCH) {
        if msgs[i].msg_hdr.msg_iovlen == 1 {
            msgs.swap(filled, i);
            filled += 1;
        }
    }
    debug_assert_eq!(filled, n);
    let mut sent = 0;
    while sent < filled {
        // SAFETY: `msgs[sent..filled]` are initialised headers whose pointers
        // refer to `slots` and `bytes`, which stay live and unmoved for the
        // call; the count passed is the number of headers from `sent`.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                msgs.as_mut_ptr().add(sent),
                (filled - sent) as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            // The first remaining message failed (sendmmsg reports an error
            // only when it sent nothing): report it and go on after it.
            on_error(io::Error::last_os_error());
            sent += 1;
        } else {
            sent += r as usize;
        }
    }
}

/// Storage a `msghdr` points into: the destination, the one iovec and the
/// `IP_PKTINFO` / `IPV6_PKTINFO` control message.
struct MsgSlot {
    name: libc::sockaddr_in6,
    iov: libc::iovec,
    control: [u64; 8],
}

impl MsgSlot {
    const fn new() -> Self {
        // SAFETY: all-zero is a valid sockaddr_in6; the iovec is set in `fill`.
        Self {
            name: unsafe { zeroed() },
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            control: [0; 8],
        }
    }

    /// Points `msg` at this slot for one advertisement: `msg` is only valid
    /// while `self` and `payload` stay where they are.
    fn fill(
        &mut self,
        msg: &mut libc::msghdr,
        src: IpAddr,
        dst: IpAddr,
        ifindex: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        self.iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        self.control = [0; 8];
        msg.msg_iov = &mut self.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.control.as_mut_ptr().cast();
        msg.msg_name = (&mut self.name as *mut libc::sockaddr_in6).cast();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let sin = sockaddr_in(d);
                // SAFETY: a sockaddr_in (16 bytes) fits in the sockaddr_in6
                // (28 bytes) storage, which is suitably aligned for it.
                unsafe {
                    std::ptr::write((&mut self.name as *mut libc::sockaddr_in6).cast(), sin);
                }
                msg.msg_namelen = size_of::<libc::sockaddr_in>() as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                // SAFETY: the control buffer is large enough for one in_pktinfo cmsg
                // (CMSG_SPACE of 12 bytes is 32 < 64); writes stay inside it.
                unsafe {
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as _;
                    let c = libc::CMSG_FIRSTHDR(msg);
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.name = sockaddr_in6(d, ifindex);
                msg.msg_namelen = size_of::<libc::sockaddr_in6>() as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                // SAFETY: as above, for one in6_pktinfo (20 bytes; CMSG_SPACE 40 < 64).
                unsafe {
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as _;
                    let c = libc::CMSG_FIRSTHDR(msg);
                    (*c).cmsg_level = libc::IPPROTO_IPV6;
                    (*c).cmsg_type = libc::IPV6_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>(), info);
                }
            }
            _ => {
                msg.msg_iovlen = 0;
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
        }
        Ok(())
    }
}

/// A packet socket bound to the interface, for whole ARP frames.
pub(crate) fn arp_socket(ifindex: u32) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ARP as u16).to_be();
    let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(proto))?;
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a live sockaddr_ll of the size passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of_val(&sll) as _,
        )
    })?;
    Ok(fd)
}

/// Sends a whole Ethernet frame on a bound packet socket.
pub(crate) fn send_frame(fd: RawFd, frame: &[u8]) -> io::Result<()> {
    // SAFETY: `frame` is live and of the length passed.
    let n = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A raw ICMPv6 socket for unsolicited NAs (the kernel fills the checksum).
pub(crate) fn icmp6_socket(ifname: &str, ifindex: u32) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)?;
    bind_to_device(&fd, ifname)?;
    let hops: libc::c_int = 255;
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)?;
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops)?;
    let idx = ifindex as libc::c_int;
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
    Ok(fd)
}

/// A raw ICMPv6 socket on the interface that receives only Router
/// Solicitations (ICMP6_FILTER), joined to all-routers (ff02::2, which the
/// kernel joins by itself only when forwarding), with the Hop Limit and
/// destination reported (`recv_vrrp` reads them).
pub(crate) fn rs_socket(ifname: &str, ifindex: u32) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)?;
    bind_to_device(&fd, ifname)?;
    // Linux ICMP6_FILTER: a set bit blocks that type.
    let rs = usize::from(wire::ra::ICMPV6_ROUTER_SOLICITATION);
    let mut filter = [u32::MAX; 8];
    filter[rs >> 5] &= !(1u32 << (rs & 31));
    setsockopt(&fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)?;
    let one: libc::c_int = 1;
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
    let mreq = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: ALL_ROUTERS.octets(),
        },
        ipv6mr_interface: ifindex,
    };
    setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
    Ok(fd)
}

/// `ICMP6_FILTER` (linux/icmpv6.h), option level `IPPROTO_ICMPV6`.
const ICMP6_FILTER: libc::c_int = 1;
/// All-routers link-local multicast, where hosts send Router Solicitations.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

// ----- rtnetlink -----

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_CACHEINFO: u16 = 6;
const IFA_F_NODAD: u8 = 0x02;

/// A NETLINK_ROUTE socket (blocking: an address change is acknowledged at once).
pub(crate) fn netlink_socket() -> io::Result<OwnedFd> {
    route_socket(0, 0)
}

/// A non-blocking NETLINK_ROUTE socket subscribed to link events
/// (`RTMGRP_LINK`: links added, removed, going up or down, carrier changes).
pub(crate) fn link_events_socket() -> io::Result<OwnedFd> {
    const RTMGRP_LINK: u32 = 1;
    route_socket(libc::SOCK_NONBLOCK, RTMGRP_LINK)
}

/// A NETLINK_ROUTE socket with extra socket `flags`, bound to the multicast
/// `groups` (the kernel assigns the port id).
fn route_socket(flags: libc::c_int, groups: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; on success we own the descriptor.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: `fd` is fresh.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid sockaddr_nl.
    let mut sa: libc::sockaddr_nl = unsafe { zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    // SAFETY: `sa` is a live sockaddr_nl of the size passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_nl).cast(),
            size_of_val(&sa) as _,
        )
    })?;
    Ok(fd)
}

/// Reads and discards every queued message of a non-blocking socket.
/// `Ok(true)` if there was anything (or the kernel dropped messages for
/// want of buffer: `ENOBUFS`), `Ok(false)` if it was empty.
pub(crate) fn discard_all(fd: RawFd) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    let mut any = false;
    loop {
        // SAFETY: `buf` is live and writable for its length.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r >= 0 {
            any = true;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOBUFS) => any = true,
            _ if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
            _ => return Err(e),
        }
    }
}

fn push_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    while !msg.len().is_multiple_of(4) {
        msg.push(0);
    }
}

/// The RTM_NEWADDR / RTM_DELADDR request for `addr/prefix` on `ifindex`.
pub(crate) fn addr_request(add: bool, addr: IpAddr, prefix: u8, ifindex: u32, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    let (ty, flags) = if add {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, filled below
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifaddrmsg
    let (family, ifa_flags) = match addr {
        IpAddr::V4(_) => (libc::AF_INET as u8, 0),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, IFA_F_NODAD),
    };
    m.extend_from_slice(&[family, prefix, ifa_flags, 0]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    match addr {
        IpAddr::V4(a) => {
            push_attr(&mut m, IFA_LOCAL, &a.octets());
            push_attr(&mut m, IFA_ADDRESS, &a.octets());
        }
        IpAddr::V6(a) => {
            push_attr(&mut m, IFA_ADDRESS, &a.octets());
            // As keepalived: a /128 VIP is added deprecated (preferred
            // lifetime 0, valid forever) so the kernel never picks it as a
            // source address (RFC 6724 rule 3). Otherwise the director's own
            // health checks to DR real servers, which hold the VIP too,
            // would leave from it and be answered locally by the server.
            if add && prefix == 128 {
                let mut info = [0u8; 16]; // struct ifa_cacheinfo
                info[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // ifa_valid
                push_attr(&mut m, IFA_CACHEINFO, &info);
            }
        }
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// Sends a request and waits for its acknowledgement; returns the errno (0 = success).
pub(crate) fn netlink_call(fd: &OwnedFd, req: &[u8], seq: u32) -> io::Result<i32> {
    // SAFETY: `req` is live and of the length passed.
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is a live mutable buffer of the length passed.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
            let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            let rseq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
            if len < 16 || off + len > n {
                break;
            }
            if ty == NLMSG_ERROR && rseq == seq && len >= 20 {
                let err = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                return Ok(-err);
            }
            off += (len + 3) & !3;
        }
    }
}

/// The interface index of `ifname`.
/// The interface's hardware address (`SIOCGIFHWADDR`), asked through a
/// socket of the calling thread's network namespace — unlike
/// `/sys/class/net`, which shows the namespace `/sys` was mounted in.
/// An `ifreq` naming `ifname` (the rest zero).
fn ifreq_for(ifname: &str) -> io::Result<libc::ifreq> {
    // SAFETY: all-zero is a valid ifreq.
    let mut req: libc::ifreq = unsafe { zeroed() };
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

pub(crate) fn hw_addr(ifname: &str) -> io::Result<[u8; 6]> {
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = ifreq_for(ifname)?;
    // SAFETY: `req` is a live ifreq with a NUL-terminated name; the kernel
    // writes at most its size.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the union holds `ifru_hwaddr`.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

/// Whether `ifname` is up and operational (`IFF_UP` and `IFF_RUNNING`, the
/// latter set while its operstate is up or unknown), in the calling
/// thread's network namespace: unlike `/sys/class/net`, which shows the
/// namespace sysfs was mounted in, an ioctl on a socket asks the namespace
/// the socket was made in. A missing interface is down.
pub(crate) fn link_up(ifname: &str) -> io::Result<bool> {
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = ifreq_for(ifname)?;
    // SAFETY: `req` is a live ifreq with a NUL-terminated name; the kernel
    // writes at most its size.
    match cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) }) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(false),
        Err(e) => return Err(e),
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds `ifru_flags`.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    let want = libc::IFF_UP | libc::IFF_RUNNING;
    Ok(flags & want == want)
}

pub(crate) fn ifindex(ifname: &str) -> io::Result<u32> {
    let c =
        std::ffi::CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a live NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// Registers a socket with tokio's reactor for readability.
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` keeps its descriptor open and returns the same one
    // from `as_raw_fd` until it is dropped, which happens with the `AsyncFd`.
    Ok(unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lo` is up; a name no interface has is down, not an error.
    #[test]
    fn link_up_reads_the_flags() {
        assert!(link_up("lo").unwrap());
        assert!(!link_up("nosuch0").unwrap());
        assert!(link_up("").is_err());
    }

    #[test]
    fn hardware_address_of_loopback_and_bad_names() {
        // Every namespace has `lo`, with an all-zero address.
        assert_eq!(hw_addr("lo").unwrap(), [0; 6]);
        assert!(hw_addr("no-such-if0").is_err());
        assert!(hw_addr("").is_err());
        assert!(hw_addr("a-name-longer-than-ifnamsiz").is_err());
        assert!(hw_addr("l\0o").is_err());
    }

    fn recv_all(fd: &OwnedFd) -> Vec<(RxMeta, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..200 {
            match recv_vrrp(fd.as_raw_fd(), AddressFamily::Ipv4, &mut buf) {
                Ok(Some((meta, r))) => out.push((meta, buf[r].to_vec())),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if out.len() >= 2 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        out
    }

    /// One `sendmmsg` batch in which one message cannot be built (address
    /// families mixed) and one is refused by the kernel (larger than an IP
    /// packet): both are reported, and the others still go out, in order,
    /// with TTL 255, multicast and unicast alike.
    #[test]
    fn netns_send_vrrp_batch_reports_and_skips_failures() {
        let Some(lab) = lb_testing_netns::lab_or_skip!("vbatch") else {
            return;
        };
        let a = lab.add_host("a").unwrap();
        let b = lab.add_host("b").unwrap();
        lab.link(&a, "eth0", &b, "eth0").unwrap();
        let (ip_a, ip_b) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2));
        a.add_addr("eth0", ip_a, 24).unwrap();
        b.add_addr("eth0", ip_b, 24).unwrap();
        let rx = b
            .run_in(move || vrrp_socket(IpAddr::V4(ip_b), "eth0", ifindex("eth0").unwrap()))
            .unwrap()
            .unwrap();
        let (tx, idx) = a
            .run_in(move || {
                let idx = ifindex("eth0").unwrap();
                (vrrp_socket(IpAddr::V4(ip_a), "eth0", idx).unwrap(), idx)
            })
            .unwrap();
        let mut bytes = b"first".to_vec();
        let mut out = vec![Outgoing {
            src: IpAddr::V4(ip_a),
            dst: IpAddr::V4(wire::MULTICAST_V4),
            start: 0,
            len: 5,
        }];
        out.push(Outgoing {
            src: IpAddr::V4(ip_a),
            dst: IpAddr::V6(wire::MULTICAST_V6),
            start: 0,
            len: 5,
        });
        out.push(Outgoing {
            src: IpAddr::V4(ip_a),
            dst: IpAddr::V4(ip_b),
            start: bytes.len(),
            len: 70_000,
        });
        bytes.resize(bytes.len() + 70_000, 0);
        out.push(Outgoing {
            src: IpAddr::V4(ip_a),
            dst: IpAddr::V4(ip_b),
            start: bytes.len(),
            len: 4,
        });
        bytes.extend_from_slice(b"last");
        let mut errors = Vec::new();
        send_vrrp_batch(tx.as_raw_fd(), idx, &bytes, &out, |e| errors.push(e));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].kind(), io::ErrorKind::InvalidInput);
        assert_eq!(errors[1].raw_os_error(), Some(libc::EMSGSIZE), "{errors:?}");
        let got = recv_all(&rx);
        let got: Vec<(IpAddr, IpAddr, u8, &[u8])> = got
            .iter()
            .map(|(m, p)| (m.src, m.dst, m.ttl, p.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    IpAddr::V4(ip_a),
                    IpAddr::V4(wire::MULTICAST_V4),
                    255,
                    &b"first"[..]
                ),
                (IpAddr::V4(ip_a), IpAddr::V4(ip_b), 255, &b"last"[..]),
            ]
        );
    }
}
