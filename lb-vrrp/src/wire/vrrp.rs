//! The VRRP advertisement, versions 2 and 3.
//!
//! Version 2 (RFC 3768 §5.1), IPv4 only:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            .                                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Version 3 (RFC 9568 §5.1), IPv4 (4-byte addresses) or IPv6 (16-byte):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                       IPvX Address(es)                        |
//! +                                                               +
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! # Checksums
//!
//! * v2: the RFC 1071 sum over the VRRP message (authentication data
//!   included), no pseudo-header (RFC 3768 §5.3.7).
//! * v3 over IPv6: the message plus the RFC 8200 pseudo-header, next header
//!   112 (RFC 9568 §5.2.8).
//! * v3 over IPv4: RFC 9568 §5.2.8 says the message only. RFC 5798 was read
//!   by keepalived, FRR, tcpdump and Wireshark as "message plus an IPv4
//!   pseudo-header", and keepalived (up to at least 2.3) still *sends* that
//!   form by default and rejects the other ("Invalid VRRPv3 checksum")
//!   unless `v3_checksum_as_v2` is set. [`Packet::verify_checksum`] accepts
//!   both forms and says which one matched; [`ChecksumMode`] picks the one
//!   to send. Its default, [`ChecksumMode::PseudoHeader`], is what a default
//!   keepalived accepts.
//!
//! # Fuzzing
//!
//! Under `cfg(fuzzing)` [`Packet::verify_checksum`] accepts every packet, so
//! that the fuzzer reaches the code behind the checksum.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use super::checksum::{finish, pseudo, sum_words};
use super::{AddressFamily, Error};

/// IP protocol number of VRRP (both versions).
pub const PROTOCOL: u8 = 112;
/// IPv4 multicast group of VRRP (224.0.0.18).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (ff02::12).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only TTL / Hop Limit VRRP sends and accepts (RFC 9568 §5.1.1.3, §5.1.2.3).
pub const TTL: u8 = 255;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Length of the version 2 authentication data.
pub const AUTH_LEN: usize = 8;
/// The only packet type, ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest version 3 Max Adver Int (12 bits, centiseconds).
pub const MAX_V3_INTERVAL: u16 = 0x0fff;

mod field {
    use core::ops::Range;
    pub(super) const VER_TYPE: usize = 0;
    pub(super) const VRID: usize = 1;
    pub(super) const PRIORITY: usize = 2;
    pub(super) const COUNT: usize = 3;
    /// v2: Auth Type.
    pub(super) const AUTH_TYPE: usize = 4;
    /// v2: Adver Int (seconds).
    pub(super) const ADVER_INT: usize = 5;
    /// v3: 4 reserved bits and the 12-bit Max Adver Int.
    pub(super) const MAX_ADVER_INT: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
    pub(super) const ADDRESSES: usize = 8;
}

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRP version 2, RFC 3768 (IPv4 only, whole-second intervals).
    V2,
    /// VRRP version 3, RFC 9568 (IPv4 and IPv6, centisecond intervals).
    V3,
}

impl Version {
    /// The number in the Version field.
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// Version 2 authentication (RFC 3768 §5.3.6; RFC 2338 defined types 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0: no authentication (the data is zero on send, ignored on receive).
    None,
    /// Type 1: simple text password, up to 8 bytes, zero padded (keepalived `PASS`).
    SimpleText([u8; 8]),
    /// Type 2: IP Authentication Header (keepalived `AH`). Recognised and
    /// reported, not verified: the AH header precedes VRRP in the IP packet.
    Ah([u8; 8]),
    /// Any other type.
    Unknown {
        /// The Auth Type byte.
        auth_type: u8,
        /// The authentication data.
        data: [u8; 8],
    },
}

impl Auth {
    /// The Auth Type byte.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Self::None => 0,
            Self::SimpleText(_) => 1,
            Self::Ah(_) => 2,
            Self::Unknown { auth_type, .. } => *auth_type,
        }
    }

    fn data(&self) -> [u8; 8] {
        match self {
            Self::None => [0; 8],
            Self::SimpleText(d) | Self::Ah(d) | Self::Unknown { data: d, .. } => *d,
        }
    }

    /// A simple-text password: the first 8 bytes of `password`, zero padded
    /// (keepalived likewise uses only the first 8 characters).
    pub fn simple_text(password: &[u8]) -> Self {
        let mut d = [0u8; 8];
        let n = password.len().min(8);
        d[..n].copy_from_slice(&password[..n]);
        Self::SimpleText(d)
    }
}

/// Which v3/IPv4 checksum to send (the other variants have one form only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// Message plus IPv4 pseudo-header: the RFC 5798 reading, keepalived's
    /// and FRR's default. The default here, so that a default keepalived
    /// accepts our advertisements.
    #[default]
    PseudoHeader,
    /// Message only: RFC 9568 §5.2.8, keepalived `v3_checksum_as_v2`, Cisco, Juniper.
    MessageOnly,
}

/// Which checksum form a received packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumVariant {
    /// Over the message only (v2; v3 over IPv4 per RFC 9568).
    MessageOnly,
    /// Over the message and a pseudo-header (v3 over IPv6; v3 over IPv4 per RFC 5798 / keepalived).
    PseudoHeader,
}

/// The addresses of an advertisement. Up to 8 are held inline, so parsing a
/// typical advertisement does not allocate.
pub type Addresses = SmallVec<[IpAddr; 8]>;

/// The length of a complete VRRP message with `count` addresses, or `None`
/// for version 2 over IPv6, which does not exist.
pub const fn message_len(version: Version, family: AddressFamily, count: u8) -> Option<usize> {
    let n = count as usize;
    match (version, family) {
        (Version::V2, AddressFamily::Ipv4) => Some(HEADER_LEN + 4 * n + AUTH_LEN),
        (Version::V2, AddressFamily::Ipv6) => None,
        (Version::V3, AddressFamily::Ipv4) => Some(HEADER_LEN + 4 * n),
        (Version::V3, AddressFamily::Ipv6) => Some(HEADER_LEN + 16 * n),
    }
}

/// A read/write view of a VRRP message in a byte buffer (the IP payload).
///
/// [`Packet::new_checked`] verifies that the buffer holds the whole message
/// its Count field announces; after that no accessor panics. Bytes after the
/// message (Ethernet padding) are allowed and ignored.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: AddressFamily,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T, family: AddressFamily) -> Self {
        Self { buffer, family }
    }

    /// Wraps a buffer received over `family`, checking it with [`Self::check_len`].
    pub fn new_checked(buffer: T, family: AddressFamily) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer, family);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the version is 2 or 3, that version 2 is not over IPv6,
    /// and that the buffer holds the complete message (fixed fields,
    /// addresses and, for v2, authentication data: RFC 9568 §7.1).
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: b.len(),
                needed: HEADER_LEN,
            });
        }
        let version = match b[field::VER_TYPE] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(Error::Version(v)),
        };
        let needed = message_len(version, self.family, b[field::COUNT]).ok_or(Error::V2OverIpv6)?;
        if b.len() < needed {
            return Err(Error::Truncated {
                len: b.len(),
                needed,
            });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The address family the packet was received over.
    pub const fn family(&self) -> AddressFamily {
        self.family
    }

    /// The Version field (4 bits).
    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The Version field, if it is 2 or 3.
    pub fn version(&self) -> Option<Version> {
        match self.version_number() {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// The Type field (4 bits); 1 is ADVERTISEMENT.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The Virtual Rtr ID field.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The Priority field.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The Count IP Addrs / Count IPvX Addr field.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2: the Auth Type field.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2: the Adver Int field, in seconds.
    pub fn adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3: the 12-bit Max Adver Int field, in centiseconds.
    pub fn max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & MAX_V3_INTERVAL
    }

    /// v3: the 4 reserved bits (sent as zero, ignored on receipt).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    /// The Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The length of the message (without trailing padding), per the version
    /// and Count fields; `None` when the version is unknown or v2 over IPv6.
    pub fn message_len(&self) -> Option<usize> {
        message_len(self.version()?, self.family, self.count())
    }

    /// The `i`-th address (0-based).
    pub fn address(&self, i: usize) -> IpAddr {
        let b = &self.buffer.as_ref()[field::ADDRESSES..];
        match self.family {
            AddressFamily::Ipv4 => {
                let o = &b[4 * i..4 * i + 4];
                IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
            }
            AddressFamily::Ipv6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[16 * i..16 * i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        }
    }

    /// v2: the 8 bytes of authentication data after the addresses.
    pub fn auth_data(&self) -> [u8; 8] {
        let at = field::ADDRESSES + 4 * usize::from(self.count());
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.buffer.as_ref()[at..at + AUTH_LEN]);
        d
    }

    /// Verifies the checksum of a packet sent from `src` to `dst` (the IP
    /// header's addresses) and says which form matched; `None` when neither
    /// does. A v3/IPv4 packet passes with either form (see the module doc).
    ///
    /// Call [`Self::check_len`] first.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> Option<ChecksumVariant> {
        let msg = &self.buffer.as_ref()[..self.message_len()?];
        let plain = sum_words(0, msg);
        let variant = match (self.version()?, self.family) {
            (Version::V2, _) => (finish(plain) == 0).then_some(ChecksumVariant::MessageOnly),
            (Version::V3, AddressFamily::Ipv6) => {
                let ph = pseudo(src, dst, PROTOCOL, msg.len())?;
                (finish(plain.wrapping_add(ph)) == 0).then_some(ChecksumVariant::PseudoHeader)
            }
            (Version::V3, AddressFamily::Ipv4) => {
                let ph = pseudo(src, dst, PROTOCOL, msg.len())?;
                if finish(plain.wrapping_add(ph)) == 0 {
                    Some(ChecksumVariant::PseudoHeader)
                } else if finish(plain) == 0 {
                    Some(ChecksumVariant::MessageOnly)
                } else {
                    None
                }
            }
        };
        if cfg!(fuzzing) {
            return Some(variant.unwrap_or(ChecksumVariant::MessageOnly));
        }
        variant
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Version and Type fields.
    pub fn set_version_kind(&mut self, version: u8, kind: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (kind & 0x0f);
    }

    /// Sets the Virtual Rtr ID field.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the Priority field.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets the Count field.
    pub fn set_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// v2: sets the Auth Type field.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// v2: sets the Adver Int field (seconds).
    pub fn set_adver_int(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// v3: sets the reserved bits to zero and Max Adver Int to the low 12 bits of `cs`.
    pub fn set_max_adver_int(&mut self, cs: u16) {
        self.buffer.as_mut()[field::MAX_ADVER_INT]
            .copy_from_slice(&(cs & MAX_V3_INTERVAL).to_be_bytes());
    }

    /// Sets the Checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Sets the `i`-th address; its family must be the packet's.
    pub fn set_address(&mut self, i: usize, addr: IpAddr) {
        let b = &mut self.buffer.as_mut()[field::ADDRESSES..];
        match addr {
            IpAddr::V4(a) => b[4 * i..4 * i + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => b[16 * i..16 * i + 16].copy_from_slice(&a.octets()),
        }
    }

    /// v2: sets the authentication data.
    pub fn set_auth_data(&mut self, data: [u8; 8]) {
        let at = field::ADDRESSES + 4 * usize::from(self.count());
        self.buffer.as_mut()[at..at + AUTH_LEN].copy_from_slice(&data);
    }

    /// Computes and stores the checksum for a packet from `src` to `dst`.
    /// `mode` matters only for v3 over IPv4. The version, family and Count
    /// must be set and the buffer long enough.
    pub fn fill_checksum(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<(), Error> {
        self.set_checksum(0);
        let len = self.message_len().ok_or(Error::V2OverIpv6)?;
        let pseudo_sum = match (self.version(), self.family, mode) {
            (Some(Version::V3), AddressFamily::Ipv6, _)
            | (Some(Version::V3), AddressFamily::Ipv4, ChecksumMode::PseudoHeader) => {
                pseudo(src, dst, PROTOCOL, len).ok_or(Error::MixedFamilies)?
            }
            _ => 0,
        };
        let sum = sum_words(pseudo_sum, &self.buffer.as_ref()[..len]);
        self.set_checksum(finish(sum));
        Ok(())
    }
}

/// A parsed advertisement: what it means, apart from where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// The protocol version.
    pub version: Version,
    /// Virtual Router Identifier, 1–255.
    pub vrid: u8,
    /// Sender's priority: 0 = leaving, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval: **seconds** in v2 (1–255), **centiseconds**
    /// in v3 (the 12-bit Max Adver Int, 1–4095).
    pub interval: u16,
    /// v2 authentication; [`Auth::None`] in v3, which has none.
    pub auth: Auth,
    /// The virtual addresses, all of the packet's family.
    pub addresses: Addresses,
}

impl Repr {
    /// Parses a packet checked by [`Packet::new_checked`]. Verifies the Type
    /// (ADVERTISEMENT); the checksum is verified separately by
    /// [`Packet::verify_checksum`] because it needs the IP addresses.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Self, Error> {
        packet.check_len()?;
        if packet.kind() != TYPE_ADVERTISEMENT {
            return Err(Error::Type(packet.kind()));
        }
        let version = packet
            .version()
            .ok_or_else(|| Error::Version(packet.version_number()))?;
        let addresses = (0..usize::from(packet.count()))
            .map(|i| packet.address(i))
            .collect();
        let (interval, auth) = match version {
            Version::V2 => {
                let data = packet.auth_data();
                let auth = match packet.auth_type() {
                    0 => Auth::None,
                    1 => Auth::SimpleText(data),
                    2 => Auth::Ah(data),
                    t => Auth::Unknown { auth_type: t, data },
                };
                (u16::from(packet.adver_int()), auth)
            }
            Version::V3 => (packet.max_adver_int(), Auth::None),
        };
        Ok(Self {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval,
            auth,
            addresses,
        })
    }

    /// The family of the addresses, or `None` when there are none or they mix families.
    pub fn family(&self) -> Option<AddressFamily> {
        let first = AddressFamily::of(*self.addresses.first()?);
        self.addresses
            .iter()
            .all(|a| AddressFamily::of(*a) == first)
            .then_some(first)
    }

    /// The length [`Self::emit`] writes over `family`.
    pub fn buffer_len(&self, family: AddressFamily) -> Result<usize, Error> {
        let count = u8::try_from(self.addresses.len()).map_err(|_| Error::TooManyAddresses)?;
        message_len(self.version, family, count).ok_or(Error::V2OverIpv6)
    }

    /// Writes the advertisement into `buffer` (which must hold at least
    /// [`Self::buffer_len`] bytes) for sending from `src` to `dst`, checksum
    /// included, and returns the length written.
    pub fn emit(
        &self,
        buffer: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<usize, Error> {
        let family = AddressFamily::of(src);
        if AddressFamily::of(dst) != family
            || self
                .addresses
                .iter()
                .any(|a| AddressFamily::of(*a) != family)
        {
            return Err(Error::MixedFamilies);
        }
        let len = self.buffer_len(family)?;
        if buffer.len() < len {
            return Err(Error::BufferTooSmall {
                len: buffer.len(),
                needed: len,
            });
        }
        let mut p = Packet::new_unchecked(&mut buffer[..len], family);
        p.set_version_kind(self.version.number(), TYPE_ADVERTISEMENT);
        p.set_vrid(self.vrid);
        p.set_priority(self.priority);
        p.set_count(self.addresses.len() as u8);
        match self.version {
            Version::V2 => {
                let secs =
                    u8::try_from(self.interval).map_err(|_| Error::Interval(self.interval))?;
                p.set_auth_type(self.auth.auth_type());
                p.set_adver_int(secs);
            }
            Version::V3 => {
                if self.interval > MAX_V3_INTERVAL {
                    return Err(Error::Interval(self.interval));
                }
                p.set_max_adver_int(self.interval);
            }
        }
        for (i, a) in self.addresses.iter().enumerate() {
            p.set_address(i, *a);
        }
        if self.version == Version::V2 {
            p.set_auth_data(self.auth.data());
        }
        p.fill_checksum(src, dst, mode)?;
        Ok(len)
    }
}
