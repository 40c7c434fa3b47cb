//! Configuration of one virtual router, with keepalived's defaults.

use core::net::IpAddr;
use core::time::Duration;

use crate::track::Tracked;
use crate::wire::{AddressFamily, Auth, ChecksumMode, Version};

/// Gratuitous ARP / unsolicited NA schedule after becoming Active
/// (keepalived `garp_master_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpConfig {
    /// Announcements per address sent at once on takeover
    /// (keepalived `vrrp_garp_master_repeat`, default 5).
    pub master_repeat: u32,
    /// Delay of the second wave of `master_repeat` announcements; zero
    /// disables it (keepalived `garp_master_delay`, default 5 s).
    pub master_delay: Duration,
    /// Period of refresh waves while Active; `None` disables them
    /// (keepalived `garp_master_refresh`, default off).
    pub refresh: Option<Duration>,
    /// Announcements per address in each refresh wave
    /// (keepalived `garp_master_refresh_repeat`, default 1).
    pub refresh_repeat: u32,
}

impl Default for GarpConfig {
    fn default() -> Self {
        Self {
            master_repeat: 5,
            master_delay: Duration::from_secs(5),
            refresh: None,
            refresh_repeat: 1,
        }
    }
}

/// Router Advertisements sent while Active for an IPv6 virtual router
/// (RFC 9568 §6.4.3: the Active router "MUST send ND Router Advertisements
/// for the Virtual Router"; a Backup MUST NOT, §6.4.2), on the schedule of
/// RFC 4861 §6.2.4: one at once on becoming Active, then at a uniformly
/// random interval in `[min_interval, max_interval]`, the first three capped
/// at 16 s (MAX_INITIAL_RTR_ADVERT_INTERVAL).
///
/// The source is the virtual router's link-local address when the first
/// virtual address is one (RFC 9568 §5.2.9), else the primary address. With
/// a virtual link-local source the router hosts know moves with the Active
/// role and nothing is sent on leaving Active; with the primary address as
/// source, leaving Active sends one final advertisement with Router
/// Lifetime 0 (RFC 4861 §6.2.5), so hosts stop using this node as the
/// virtual router's default router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvertConfig {
    /// MinRtrAdvInterval: 3 s to 0.75 × `max_interval` (default 200 s).
    pub min_interval: Duration,
    /// MaxRtrAdvInterval: 4–1800 s (default 600 s).
    pub max_interval: Duration,
    /// The advertisement's fields and prefixes. Its Router Lifetime must be
    /// 0 or `max_interval`–9000 s (default 1800 s); its `source_mac` is
    /// replaced by [`Config::mac`] (the MAC of the GARPs and NAs).
    pub message: crate::wire::ra::Repr,
    /// Seeds the interval jitter (the core draws no random numbers of its
    /// own); mixed with the VRID and primary address.
    pub seed: u64,
}

impl Default for RouterAdvertConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(200),
            max_interval: Duration::from_secs(600),
            message: crate::wire::ra::Repr::new(1800),
            seed: 0,
        }
    }
}

impl RouterAdvertConfig {
    fn validate(&self) -> Result<(), &'static str> {
        let max = self.max_interval;
        if !(Duration::from_secs(4)..=Duration::from_secs(1800)).contains(&max) {
            return Err("max_interval must be 4-1800 s");
        }
        if self.min_interval < Duration::from_secs(3) || self.min_interval > max * 3 / 4 {
            return Err("min_interval must be 3 s to 0.75 x max_interval");
        }
        let lifetime = Duration::from_secs(u64::from(self.message.router_lifetime));
        if lifetime != Duration::ZERO && !(max..=Duration::from_secs(9000)).contains(&lifetime) {
            return Err("router_lifetime must be 0 or max_interval-9000 s");
        }
        if self.message.prefixes.len() > crate::wire::ra::MAX_PREFIXES {
            return Err("too many prefixes");
        }
        Ok(())
    }
}

/// One virtual router (keepalived `vrrp_instance`). Build it with
/// [`Config::new`] and change the public fields; [`Config::validate`] (called
/// by [`crate::VirtualRouter::new`]) checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Protocol version. v2 is IPv4 only.
    pub version: Version,
    /// Virtual Router Identifier, 1–255.
    pub vrid: u8,
    /// Configured priority: 1–254, or 255 for the address owner.
    pub priority: u8,
    /// Advertisement_Interval: **seconds** (1–255) in v2, **centiseconds**
    /// (1–4095) in v3. Default 1 s (100 cs).
    pub interval: u16,
    /// Our primary address: the source of our advertisements and the
    /// tie-breaker on equal priority. For IPv6 it must be link-local
    /// (RFC 9568 §5.1.2.1).
    pub primary_address: IpAddr,
    /// The addresses advertised and owned while Active (keepalived
    /// `virtual_ipaddress`), all of the primary address's family.
    pub virtual_addresses: Vec<IpAddr>,
    /// Addresses owned while Active but not advertised (keepalived
    /// `virtual_ipaddress_excluded`); may mix families.
    pub excluded_addresses: Vec<IpAddr>,
    /// Preempt_Mode (default true; keepalived `nopreempt` sets false).
    pub preempt: bool,
    /// Hold-off before a higher-priority Backup preempts a lower-priority
    /// Active router, counted from the first lower-priority advertisement
    /// seen (keepalived `preempt_delay`, default 0).
    pub preempt_delay: Duration,
    /// Accept_Mode. The core only reports it; the driver enforces it. True
    /// by default, as keepalived (a load balancer must accept VIP traffic).
    pub accept_mode: bool,
    /// v2 authentication ([`Auth::None`] or [`Auth::SimpleText`]); must be
    /// [`Auth::None`] in v3.
    pub auth: Auth,
    /// Checksum form sent for v3 over IPv4 (both forms are accepted).
    pub checksum_mode: ChecksumMode,
    /// Unicast peers (keepalived `unicast_peer`): when non-empty,
    /// advertisements go to each peer instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// With unicast peers, discard advertisements from other sources
    /// (keepalived `check_unicast_src`; default true here).
    pub check_unicast_src: bool,
    /// Whether the TTL / Hop Limit 255 check also applies to unicast
    /// advertisements. Default false, as keepalived: unicast peers are a
    /// keepalived extension, guarded by the source allow-list
    /// ([`check_unicast_src`](Self::check_unicast_src)), and keepalived 2.2.7
    /// sends IPv6 unicast advertisements with Hop Limit 64 (seen on the wire
    /// in `netns_keepalived_matrix_v3_ipv6_unicast`), so checking them
    /// would make us ignore the Active router and take over (split brain).
    /// We always send 255.
    pub check_ttl_unicast: bool,
    /// Discard advertisements whose address list differs from ours unless
    /// sent by an address owner (RFC 3768 §7.1; RFC 9568 §7.1 "MAY").
    /// Default true, like keepalived without `skip_check_adv_addr`.
    pub check_address_list: bool,
    /// v2 only: an Active router answers a lower-priority advertisement with
    /// an immediate advertisement, as RFC 9568 §6.4.3 requires for v3.
    /// RFC 3768 just discards; keepalived answers (unless
    /// `lower_prio_no_advert`), which is the default here.
    pub v2_answer_lower_priority: bool,
    /// v3 over IPv4 only: the VRRPv2 interoperation mode of RFC 9568 §8.4.2
    /// (a MAY, "NOT RECOMMENDED" beyond an upgrade): every advertisement is
    /// also sent as VRRPv2 (interval rounded to whole seconds, at least 1),
    /// VRRPv2 advertisements are accepted, and a VRRPv2 Active router's
    /// interval is read as seconds × 100 cs. A VRRPv2 advertisement from a
    /// router we also hear VRRPv3 from is ignored (§8.4.2 SHOULD). Requires
    /// no authentication and an interval of whole seconds (v2 peers discard
    /// other intervals). Default false.
    pub v2_interop: bool,
    /// The MAC announced in gratuitous ARPs and NAs (the interface's MAC or
    /// the virtual MAC, see [`crate::wire::virtual_mac`]).
    pub mac: [u8; 6],
    /// The Router flag of the unsolicited NAs (RFC 9568 says set; default true).
    pub nd_router_flag: bool,
    /// Gratuitous ARP / NA schedule.
    pub garp: GarpConfig,
    /// IPv6 only: send Router Advertisements while Active. Off by default:
    /// a load-balancer director is usually not the LAN's router, and an RA
    /// would make every host route through it.
    pub router_advert: Option<RouterAdvertConfig>,
    /// Tracked objects (interfaces, scripts, files) and their weights.
    pub tracked: Vec<Tracked>,
    /// Minimum time between two [`crate::Event::Discarded`] reports of the
    /// same reason (the RFC's "SHOULD log, subject to rate limiting").
    /// Counters count every discard. Default 1 s.
    pub discard_log_interval: Duration,
}

impl Config {
    /// A router with keepalived's defaults: priority 100, interval 1 s,
    /// preempt, accept, no authentication, no VIPs.
    ///
    /// ```
    /// use core::net::IpAddr;
    /// use lb_vrrp::{Config, TrackKind, Tracked, wire::Version};
    ///
    /// let mut c = Config::new(Version::V3, 51, "fe80::1".parse().unwrap());
    /// c.priority = 150;
    /// c.interval = 50; // centiseconds in v3
    /// c.virtual_addresses = vec!["2001:db8::100".parse::<IpAddr>().unwrap()];
    /// c.tracked = vec![Tracked::new("eth1", TrackKind::Interface, -60)];
    /// assert_eq!(c.validate(), Ok(()));
    /// c.primary_address = "2001:db8::1".parse().unwrap();
    /// assert!(c.validate().is_err(), "an IPv6 primary address must be link-local");
    /// ```
    pub fn new(version: Version, vrid: u8, primary_address: IpAddr) -> Self {
        Self {
            version,
            vrid,
            priority: 100,
            interval: match version {
                Version::V2 => 1,
                Version::V3 => 100,
            },
            primary_address,
            virtual_addresses: Vec::new(),
            excluded_addresses: Vec::new(),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: true,
            auth: Auth::None,
            checksum_mode: ChecksumMode::default(),
            unicast_peers: Vec::new(),
            check_unicast_src: true,
            check_ttl_unicast: false,
            check_address_list: true,
            v2_answer_lower_priority: true,
            v2_interop: false,
            mac: [0; 6],
            nd_router_flag: true,
            garp: GarpConfig::default(),
            router_advert: None,
            tracked: Vec::new(),
            discard_log_interval: Duration::from_secs(1),
        }
    }

    /// The address family of the router (that of its primary address).
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(self.primary_address)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::Priority);
        }
        let max = match self.version {
            Version::V2 => 255,
            Version::V3 => crate::wire::vrrp::MAX_V3_INTERVAL,
        };
        if self.interval == 0 || self.interval > max {
            return Err(ConfigError::Interval {
                value: self.interval,
                max,
            });
        }
        let family = self.family();
        if self.version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(ConfigError::V2OverIpv6);
        }
        if let IpAddr::V6(a) = self.primary_address
            && !a.is_unicast_link_local()
        {
            return Err(ConfigError::PrimaryNotLinkLocal);
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ConfigError::TooManyAddresses);
        }
        if let Some(a) = self
            .virtual_addresses
            .iter()
            .chain(&self.unicast_peers)
            .find(|a| AddressFamily::of(**a) != family)
        {
            return Err(ConfigError::FamilyMismatch(*a));
        }
        match (self.version, self.auth) {
            (_, Auth::None) | (Version::V2, Auth::SimpleText(_)) => {}
            _ => return Err(ConfigError::Auth),
        }
        if self.v2_interop
            && (self.version != Version::V3
                || family != AddressFamily::Ipv4
                || self.auth != Auth::None
                || !self.interval.is_multiple_of(100)
                || self.interval > 25_500)
        {
            return Err(ConfigError::V2Interop);
        }
        if let Some(ra) = &self.router_advert {
            if family != AddressFamily::Ipv6 {
                return Err(ConfigError::RouterAdvert("IPv6 routers only"));
            }
            ra.validate().map_err(ConfigError::RouterAdvert)?;
        }
        if self.discard_log_interval.is_zero() {
            return Err(ConfigError::DiscardLogInterval);
        }
        for t in &self.tracked {
            if !(-253..=253).contains(&t.weight) {
                return Err(ConfigError::TrackWeight {
                    name: t.name.clone(),
                    weight: t.weight,
                });
            }
        }
        Ok(())
    }
}

/// A configuration field out of range, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `vrid` must be 1–255.
    #[error("vrid: must be 1-255")]
    Vrid,
    /// `priority` must be 1–255.
    #[error("priority: must be 1-255 (255 = address owner)")]
    Priority,
    /// `interval` out of range for the version.
    #[error("interval: {value} is outside 1-{max}")]
    Interval {
        /// The configured value.
        value: u16,
        /// The largest allowed value.
        max: u16,
    },
    /// VRRP version 2 is IPv4 only.
    #[error("version: VRRP v2 does not run over IPv6")]
    V2OverIpv6,
    /// An IPv6 primary address must be link-local.
    #[error("primary_address: an IPv6 primary address must be link-local")]
    PrimaryNotLinkLocal,
    /// At most 255 advertised addresses.
    #[error("virtual_addresses: more than 255")]
    TooManyAddresses,
    /// A virtual address or unicast peer of the other family.
    #[error("virtual_addresses/unicast_peers: {0} is not of the primary address's family")]
    FamilyMismatch(IpAddr),
    /// Authentication other than none / simple text, or any in v3.
    #[error("auth: only none or simple text, and only in v2")]
    Auth,
    /// `v2_interop` needs v3 over IPv4, no authentication and an interval
    /// of whole seconds.
    #[error("v2_interop: needs version 3 over IPv4, no auth, and an interval of whole seconds")]
    V2Interop,
    /// `router_advert` out of range (RFC 4861 §6.2.1 limits), or on IPv4.
    #[error("router_advert: {0}")]
    RouterAdvert(&'static str),
    /// The discard log interval must be positive.
    #[error("discard_log_interval: must be positive")]
    DiscardLogInterval,
    /// A track weight outside -253..=253.
    #[error("tracked {name}: weight {weight} outside -253..=253")]
    TrackWeight {
        /// The tracked object's name.
        name: String,
        /// The configured weight.
        weight: i32,
    },
}
