//! AF_PACKET I/O (Linux): a `TPACKET_V3` memory-mapped receive ring per
//! interface, batched transmit with `sendmmsg(2)`, and `PACKET_FANOUT` to
//! spread flows over threads.
//!
//! This is the only module of the crate that makes system calls, and so
//! the only one allowed `unsafe` (the workspace denies it elsewhere): the
//! ring is shared memory the kernel writes, and libc calls take raw
//! pointers. Each `unsafe` block states why it is sound.
//!
//! Frames the host sends itself are not received (`PACKET_IGNORE_OUTGOING`),
//! so the forwarder never sees its own output.
#![allow(unsafe_code)] // System calls and the mmap'ed ring; see the module docs.

use crate::addr::Mac;
use crate::error::IoError;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Receive ring geometry and socket options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block (a power of two, multiple of the page size).
    pub block_size: u32,
    /// Number of blocks.
    pub block_nr: u32,
    /// A partly filled block is handed over after this many milliseconds.
    pub retire_ms: u32,
    /// Join this `PACKET_FANOUT` group (hash mode), so that several
    /// sockets (one per thread) share an interface's traffic by flow.
    pub fanout: Option<u16>,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 18,
            block_nr: 16,
            retire_ms: 1,
            fanout: None,
        }
    }
}

/// A raw packet socket bound to one interface, with its receive ring.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    cfg: RingConfig,
    block: std::cell::Cell<u32>,
    /// Set while recv_block hands out frames (refuses reentry).
    busy: std::cell::Cell<bool>,
    ifindex: i32,
    mac: Mac,
}

// SAFETY: the ring mapping is owned by this value alone (nothing else holds
// the pointer), so moving it to another thread moves sole access with it.
// It is not Sync (the Cell), so two threads never read one ring.
unsafe impl Send for PacketSocket {}

fn sys(call: &'static str) -> IoError {
    IoError::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}

fn setsockopt<T>(
    fd: RawFd,
    level: i32,
    name: i32,
    val: &T,
    call: &'static str,
) -> Result<(), IoError> {
    // SAFETY: `val` points to a live T of the size passed; the kernel only
    // reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(sys(call)) } else { Ok(()) }
}

// Offsets in struct tpacket_block_desc / tpacket_hdr_v1 (linux/if_packet.h).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
// Offsets in struct tpacket3_hdr.
const PKT_NEXT: usize = 0;
const PKT_SNAPLEN: usize = 12;
const PKT_MAC: usize = 24;

impl PacketSocket {
    /// Opens a socket on interface `ifname` (in the calling thread's
    /// network namespace) with a receive ring. Needs `CAP_NET_RAW`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use lb_forward::afpacket::{PacketSocket, RingConfig, TxBatch, wait_any};
    /// let sock = PacketSocket::open("eth0", RingConfig::default())?;
    /// let mut batch = TxBatch::new(2048);
    /// wait_any(std::slice::from_ref(&sock), 100)?;
    /// sock.recv_block(|frame| {
    ///     frame[..6].copy_from_slice(&[0xff; 6]); // rewrite in place...
    ///     batch.push(frame); // ...and queue it
    /// });
    /// sock.send(&mut batch)?;
    /// # Ok::<(), lb_forward::IoError>(())
    /// ```
    pub fn open(ifname: &str, cfg: RingConfig) -> Result<Self, IoError> {
        let name = CString::new(ifname).map_err(|_| IoError::NoInterface(ifname.to_owned()))?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(IoError::NoInterface(ifname.to_owned()));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(sys("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let fdr = fd.as_raw_fd();
        let v3 = libc::tpacket_versions::TPACKET_V3 as i32;
        setsockopt(
            fdr,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &v3,
            "setsockopt(PACKET_VERSION)",
        )?;
        let one: i32 = 1;
        setsockopt(
            fdr,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
            "setsockopt(PACKET_IGNORE_OUTGOING)",
        )?;
        setsockopt(
            fdr,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one,
            "setsockopt(PACKET_QDISC_BYPASS)",
        )?;
        let frame_size = 2048u32;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_nr,
            tp_frame_size: frame_size,
            tp_frame_nr: cfg.block_size / frame_size * cfg.block_nr,
            tp_retire_blk_tov: cfg.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            fdr,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
        )?;
        let ring_len = cfg.block_size as usize * cfg.block_nr as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the result is checked, and unmapped in Drop.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                fdr,
                0,
            )
        };
        let ring = if ring == libc::MAP_FAILED {
            // MAP_LOCKED may exceed RLIMIT_MEMLOCK; retry without it.
            // SAFETY: as above.
            let r = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    ring_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fdr,
                    0,
                )
            };
            if r == libc::MAP_FAILED {
                return Err(sys("mmap(PACKET_RX_RING)"));
            }
            r
        } else {
            ring
        };
        let mut s = Self {
            fd,
            ring: ring.cast(),
            ring_len,
            cfg,
            block: std::cell::Cell::new(0),
            busy: std::cell::Cell::new(false),
            ifindex,
            mac: [0; 6],
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fdr,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(sys("bind(AF_PACKET)"));
        }
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` is writable for `len` bytes; the kernel fills in
        // the bound address, whose sll_addr is the interface's MAC.
        let r = unsafe { libc::getsockname(fdr, (&raw mut sll).cast(), &mut len) };
        if r < 0 {
            return Err(sys("getsockname(AF_PACKET)"));
        }
        s.mac.copy_from_slice(&sll.sll_addr[..6]);
        if let Some(group) = cfg.fanout {
            let arg: u32 = u32::from(group) | (libc::PACKET_FANOUT_HASH << 16);
            setsockopt(
                fdr,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &arg,
                "setsockopt(PACKET_FANOUT)",
            )?;
        }
        Ok(s)
    }

    /// The interface's MAC address.
    #[must_use]
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// The interface index.
    #[must_use]
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The interface's MTU.
    pub fn mtu(&self) -> Result<u16, IoError> {
        // struct ifreq: 16-byte name, then a union whose int ifru_mtu is first.
        let mut ifr = [0u8; 40];
        let mut name = [0 as libc::c_char; 16];
        // SAFETY: `name` has IFNAMSIZ bytes, as if_indextoname requires.
        let p = unsafe { libc::if_indextoname(self.ifindex as u32, name.as_mut_ptr()) };
        if p.is_null() {
            return Err(sys("if_indextoname"));
        }
        for (d, s) in ifr.iter_mut().zip(name.iter()) {
            *d = *s as u8;
        }
        const SIOCGIFMTU: libc::c_ulong = 0x8921;
        // SAFETY: `ifr` is a 40-byte buffer laid out as struct ifreq.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCGIFMTU as _, ifr.as_mut_ptr()) };
        if r < 0 {
            return Err(sys("ioctl(SIOCGIFMTU)"));
        }
        let mtu = i32::from_ne_bytes([ifr[16], ifr[17], ifr[18], ifr[19]]);
        Ok(mtu.clamp(0, 0xffff) as u16)
    }

    fn block_ptr(&self, b: u32) -> *mut u8 {
        // SAFETY: b < block_nr, so the offset stays inside the mapping.
        unsafe { self.ring.add(b as usize * self.cfg.block_size as usize) }
    }

    fn status(&self, b: u32) -> &AtomicU32 {
        // SAFETY: block_status is a 4-byte aligned u32 inside the mapping,
        // shared with the kernel, which is what atomics are for.
        unsafe { &*self.block_ptr(b).add(BLOCK_STATUS).cast::<AtomicU32>() }
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`). The kernel
    /// sets one when the device goes down (`ENETDOWN`); left pending, it
    /// makes every `poll` return at once. [`wait_any`] clears it.
    pub fn take_error(&self) -> Option<io::Error> {
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are valid for writes of the sizes given;
        // SO_ERROR writes one int.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut err).cast(),
                &raw mut len,
            )
        };
        (r == 0 && err != 0).then(|| io::Error::from_raw_os_error(err))
    }

    /// True if the next block is ready to read.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.status(self.block.get()).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Reads the next block if it is ready: calls `f` on each frame (which
    /// it may rewrite in place) and hands the block back. Returns the
    /// number of frames (0 if no block was ready).
    pub fn recv_block(&self, mut f: impl FnMut(&mut [u8])) -> usize {
        if !self.ready() || self.busy.replace(true) {
            return 0;
        }
        let cur = self.block.get();
        // Hands the block back and moves on even if `f` panics.
        let _release = Release { sock: self, cur };
        let base = self.block_ptr(cur);
        let bs = self.cfg.block_size as usize;
        let rd = |off: usize| -> u32 {
            // SAFETY: callers keep off + 4 <= block_size (checked below).
            unsafe { base.add(off).cast::<u32>().read_unaligned() }
        };
        let n = rd(BLOCK_NUM_PKTS) as usize;
        let mut off = rd(BLOCK_FIRST) as usize;
        for _ in 0..n {
            if off + 32 > bs {
                break;
            }
            let snap = rd(off + PKT_SNAPLEN) as usize;
            // SAFETY: in bounds (off + 32 <= block_size).
            let mac =
                usize::from(unsafe { base.add(off + PKT_MAC).cast::<u16>().read_unaligned() });
            if off + mac + snap <= bs {
                // SAFETY: the frame lies inside this block, which the kernel
                // has handed to us (TP_STATUS_USER) until `_release` writes
                // the status back; no other reference to it exists: the
                // socket is !Sync, and `busy` makes a reentrant call from
                // `f` return at once.
                let frame = unsafe { std::slice::from_raw_parts_mut(base.add(off + mac), snap) };
                f(frame);
            }
            let next = rd(off + PKT_NEXT) as usize;
            if next == 0 {
                break;
            }
            off += next;
        }
        n
    }

    /// Sends every frame of `batch` with as few `sendmmsg` calls as it
    /// takes, then empties it. Returns the number sent; frames the kernel
    /// refuses (e.g. over the MTU) are dropped, and so is the rest of the
    /// batch when the device cannot take frames now (link down, device
    /// gone, queue full): a forwarder drops packets then, as a switch
    /// would, and carries on when the link is back. Only an error that says
    /// the socket itself is broken is returned.
    pub fn send(&self, batch: &mut TxBatch) -> Result<usize, IoError> {
        let n = batch.lens.len();
        let mut iov: [libc::iovec; TX_BATCH] =
            // SAFETY: iovec is plain data; zeroed is valid and overwritten below.
            unsafe { std::mem::zeroed() };
        // SAFETY: as above for mmsghdr.
        let mut msgs: [libc::mmsghdr; TX_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iov[i].iov_base = batch.buf[i * batch.slot..].as_mut_ptr().cast();
            iov[i].iov_len = batch.lens[i];
            msgs[i].msg_hdr.msg_iov = &raw mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // `next`: the first frame not yet tried; `sent`: how many the
        // kernel took.
        let (mut next, mut sent) = (0, 0);
        while next < n {
            // SAFETY: msgs[next..n] point at iovecs that point into
            // `batch.buf`, all alive and unaliased for the call.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs[next..].as_mut_ptr(),
                    (n - next) as u32,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(
                        libc::EAGAIN | libc::ENOBUFS | libc::ENETDOWN | libc::ENXIO | libc::ENODEV,
                    ) => break,
                    // A frame the device refuses: skip it, send the rest.
                    Some(libc::EMSGSIZE | libc::EINVAL) => {
                        next += 1;
                        continue;
                    }
                    _ => {
                        batch.clear();
                        return Err(IoError::Sys {
                            call: "sendmmsg",
                            source: e,
                        });
                    }
                }
            }
            next += r as usize;
            sent += r as usize;
        }
        batch.clear();
        Ok(sent)
    }
}

/// Returns a block to the kernel when dropped (see `recv_block`).
struct Release<'a> {
    sock: &'a PacketSocket,
    cur: u32,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let s = self.sock;
        s.status(self.cur)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        s.block.set((self.cur + 1) % s.cfg.block_nr);
        s.busy.set(false);
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: `ring` was mapped with `ring_len` in open() and is unmapped
        // once; no frame slices outlive recv_block.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
    }
}

/// Frames per `sendmmsg` batch.
pub const TX_BATCH: usize = 64;

/// A batch of frames to send: one preallocated buffer, no allocation per
/// frame.
#[derive(Debug)]
pub struct TxBatch {
    buf: Vec<u8>,
    lens: Vec<usize>,
    slot: usize,
}

impl TxBatch {
    /// A batch of [`TX_BATCH`] frames of up to `max_frame` bytes.
    #[must_use]
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: vec![0; max_frame * TX_BATCH],
            lens: Vec::with_capacity(TX_BATCH),
            slot: max_frame,
        }
    }

    /// Queues a copy of `frame`; false if the batch is full (send it first)
    /// or the frame is too long.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if self.lens.len() == TX_BATCH || frame.len() > self.slot {
            return false;
        }
        let at = self.lens.len() * self.slot;
        self.buf[at..at + frame.len()].copy_from_slice(frame);
        self.lens.push(frame.len());
        true
    }

    /// Frames queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// True when another push would fail.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.lens.len() == TX_BATCH
    }

    fn clear(&mut self) {
        self.lens.clear();
    }
}

/// Waits until one of `socks` (at most the first 8) has a block ready or
/// `timeout_ms` passes.
pub fn wait_any(socks: &[PacketSocket], timeout_ms: i32) -> Result<(), IoError> {
    if socks.iter().any(PacketSocket::ready) {
        return Ok(());
    }
    let mut fds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 8];
    let n = socks.len().min(8);
    for (p, s) in fds.iter_mut().zip(socks) {
        *p = libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
    }
    // SAFETY: `fds[..n]` is a valid pollfd array of length n.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Err(sys("poll"));
    }
    // A pending socket error (the link went down) keeps POLLERR raised:
    // clear it, or the loop would spin until the link is back.
    for (p, s) in fds.iter().zip(socks) {
        if p.revents & libc::POLLERR != 0 {
            let _ = s.take_error();
        }
    }
    Ok(())
}
