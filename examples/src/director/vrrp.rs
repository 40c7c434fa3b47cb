//! `vrrp_instance` blocks mapped onto `lb-vrrp` router configurations.

use std::net::IpAddr;

use lb_vrrp::GarpConfig;
use lb_vrrp::wire::{Auth, Version};

use super::sys;
use crate::config::{self, VrrpInstance};

/// The `lb-vrrp` configuration of an instance. `iface_addrs` are the
/// interface's current addresses (the primary address is the first of the
/// VIPs' family that is not a VIP, unless `unicast_src_ip`/`mcast_src_ip`
/// names one); `mac` is the interface's.
pub fn router_config(
    inst: &VrrpInstance,
    iface_addrs: &[IpAddr],
    mac: [u8; 6],
) -> Result<lb_vrrp::Config, String> {
    let v6 = inst.vips.first().is_some_and(|v| v.addr.is_ipv6());
    let version = if inst.version == 3 || v6 {
        Version::V3
    } else {
        Version::V2
    };
    let primary = inst
        .unicast_src_ip
        .or(inst.mcast_src_ip)
        .filter(|_| !v6)
        .or_else(|| {
            iface_addrs.iter().copied().find(|a| {
                a.is_ipv6() == v6
                    && !inst.vips.iter().any(|v| v.addr == *a)
                    && match a {
                        IpAddr::V6(x) => x.is_unicast_link_local(),
                        IpAddr::V4(_) => true,
                    }
            })
        })
        .ok_or_else(|| {
            format!(
                "vrrp_instance {}: no {} address on {}",
                inst.name,
                if v6 { "link-local IPv6" } else { "IPv4" },
                inst.interface
            )
        })?;
    let mut c = lb_vrrp::Config::new(version, inst.vrid, primary);
    c.priority = inst.priority;
    c.interval = match version {
        Version::V2 => inst.advert_int.as_secs().clamp(1, 255) as u16,
        Version::V3 => (inst.advert_int.as_millis() / 10).clamp(1, 4095) as u16,
    };
    c.virtual_addresses = inst.vips.iter().map(|v| v.addr).collect();
    c.excluded_addresses = inst.vips_excluded.iter().map(|v| v.addr).collect();
    c.preempt = !inst.nopreempt;
    c.preempt_delay = inst.preempt_delay;
    c.accept_mode = inst.accept.unwrap_or(true);
    if let (Some(config::Auth::Pass(p)), Version::V2) = (&inst.auth, version) {
        c.auth = Auth::simple_text(p.as_bytes());
    }
    c.unicast_peers = inst.unicast_peers.clone();
    c.mac = mac;
    c.garp = GarpConfig {
        master_repeat: inst.garp_master_repeat.max(1),
        master_delay: inst.garp_master_delay,
        refresh: (!inst.garp_master_refresh.is_zero()).then_some(inst.garp_master_refresh),
        refresh_repeat: inst.garp_master_refresh_repeat.max(1),
    };
    c.validate()
        .map_err(|e| format!("vrrp_instance {}: {e}", inst.name))?;
    Ok(c)
}

/// [`router_config`] with the interface's live addresses and MAC.
pub fn router_config_live(inst: &VrrpInstance) -> Result<lb_vrrp::Config, String> {
    let addrs = sys::iface_addrs(&inst.interface);
    let mac = sys::iface_mac(&inst.interface).unwrap_or([0; 6]);
    router_config(inst, &addrs, mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_an_instance() {
        let cfg = config::parse_str(
            "t.conf",
            "vrrp_instance VI_1 {
               state MASTER
               interface eth0
               virtual_router_id 51
               priority 150
               advert_int 0.1
               version 3
               nopreempt
               virtual_ipaddress { 10.0.0.100/24 }
             }",
        )
        .unwrap()
        .config;
        let addrs = ["10.0.0.100".parse().unwrap(), "10.0.0.11".parse().unwrap()];
        let c = router_config(&cfg.vrrp_instances[0], &addrs, [2, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(c.primary_address, "10.0.0.11".parse::<IpAddr>().unwrap());
        assert_eq!((c.version, c.interval, c.priority), (Version::V3, 10, 150));
        assert!(!c.preempt);
        assert!(router_config(&cfg.vrrp_instances[0], &addrs[..1], [0; 6]).is_err());
    }
}
