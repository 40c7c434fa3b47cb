//! A minimal VRRP daemon over the Linux driver, one virtual router per
//! process (used by the keepalived interop tests).
//!
//! ```text
//! lb-vrrpd --iface IF --src IP --vrid N [--priority P] [--version 2|3]
//!          [--interval N (v2: s, v3: cs)] --vip IP [--vip IP ...]
//!          [--nopreempt] [--preempt-delay SECS] [--pass PASSWORD]
//!          [--unicast-peer IP ...] [--check-ttl-unicast] [--checksum pseudo|message]
//!          [--no-accept] [--v2-interop]
//!          [--router-advert [--ra-lifetime SECS] [--ra-prefix P/LEN ...]]
//! ```
//!
//! `--v2-interop` (v3 over IPv4) also sends and accepts VRRPv2 (RFC 9568
//! §8.4.2). `--no-accept` sets Accept_Mode False (traffic to the VIPs is dropped with
//! nftables while Master, unless priority 255). `--router-advert` (IPv6) sends Router Advertisements while Master, with
//! RFC 4861's default intervals (200–600 s) and lifetime (1800 s).
//!
//! Prints one line per event (`STATE from to reason`, `DISCARD reason src`,
//! `PRIORITY from to`), and a `COUNTERS …` line on exit. SIGTERM / SIGINT
//! shut down gracefully (priority 0).

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use lb_vrrp::linux::Driver;
use lb_vrrp::wire::ra::PrefixInfo;
use lb_vrrp::wire::{Auth, ChecksumMode, Version};
use lb_vrrp::{Config, Event, RouterAdvertConfig, VirtualRouter};

fn parse() -> Result<(Config, String), String> {
    let mut args = std::env::args().skip(1);
    let mut iface = None;
    let mut src: Option<IpAddr> = None;
    let mut vrid = None;
    let mut priority = 100u8;
    let mut version = Version::V3;
    let mut interval = None;
    let mut vips = Vec::new();
    let mut preempt = true;
    let mut preempt_delay = 0u64;
    let mut pass = None;
    let mut peers = Vec::new();
    let mut check_ttl_unicast = false;
    let mut accept = true;
    let mut v2_interop = false;
    let mut checksum = ChecksumMode::PseudoHeader;
    let mut ra: Option<RouterAdvertConfig> = None;
    let mut ra_lifetime = None;
    let mut ra_prefixes = Vec::new();
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a}: missing value"));
        match a.as_str() {
            "--iface" => iface = Some(val()?),
            "--src" => src = Some(val()?.parse().map_err(|e| format!("--src: {e}"))?),
            "--vrid" => vrid = Some(val()?.parse().map_err(|e| format!("--vrid: {e}"))?),
            "--priority" => priority = val()?.parse().map_err(|e| format!("--priority: {e}"))?,
            "--version" => {
                version = match val()?.as_str() {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    v => return Err(format!("--version: {v}")),
                }
            }
            "--interval" => {
                interval = Some(val()?.parse().map_err(|e| format!("--interval: {e}"))?)
            }
            "--vip" => vips.push(val()?.parse().map_err(|e| format!("--vip: {e}"))?),
            "--nopreempt" => preempt = false,
            "--preempt-delay" => {
                preempt_delay = val()?
                    .parse()
                    .map_err(|e| format!("--preempt-delay: {e}"))?
            }
            "--pass" => pass = Some(val()?),
            "--unicast-peer" => {
                peers.push(val()?.parse().map_err(|e| format!("--unicast-peer: {e}"))?)
            }
            "--checksum" => {
                checksum = match val()?.as_str() {
                    "pseudo" => ChecksumMode::PseudoHeader,
                    "message" => ChecksumMode::MessageOnly,
                    v => return Err(format!("--checksum: {v}")),
                }
            }
            "--check-ttl-unicast" => check_ttl_unicast = true,
            "--no-accept" => accept = false,
            "--v2-interop" => v2_interop = true,
            "--router-advert" => ra = Some(RouterAdvertConfig::default()),
            "--ra-lifetime" => {
                ra_lifetime = Some(val()?.parse().map_err(|e| format!("--ra-lifetime: {e}"))?)
            }
            "--ra-prefix" => {
                let v = val()?;
                let (p, l) = v.split_once('/').ok_or("--ra-prefix: PREFIX/LEN")?;
                let p = p.parse().map_err(|e| format!("--ra-prefix: {e}"))?;
                let l = l.parse().map_err(|e| format!("--ra-prefix: {e}"))?;
                ra_prefixes.push(PrefixInfo::new(p, l));
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let iface = iface.ok_or("--iface is required")?;
    let mut c = Config::new(
        version,
        vrid.ok_or("--vrid is required")?,
        src.ok_or("--src is required")?,
    );
    c.priority = priority;
    if let Some(i) = interval {
        c.interval = i;
    }
    c.virtual_addresses = vips;
    c.preempt = preempt;
    c.preempt_delay = Duration::from_secs(preempt_delay);
    if let Some(p) = pass {
        c.auth = Auth::simple_text(p.as_bytes());
    }
    c.unicast_peers = peers;
    c.check_ttl_unicast = check_ttl_unicast;
    c.accept_mode = accept;
    c.v2_interop = v2_interop;
    c.checksum_mode = checksum;
    if let Some(mut ra) = ra {
        if let Some(l) = ra_lifetime {
            ra.message.router_lifetime = l;
        }
        ra.message.prefixes.extend(ra_prefixes);
        c.router_advert = Some(ra);
    }
    Ok((c, iface))
}

fn main() -> ExitCode {
    let (config, iface) = match parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("lb-vrrpd: {e}");
            return ExitCode::from(2);
        }
    };
    let router = match VirtualRouter::new(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lb-vrrpd: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt.block_on(async move {
        // The handlers are installed now, not when `run` first polls `stop`:
        // `run` adds the VIPs (and sends the first RA) before that, and a
        // SIGTERM in between would kill the process with the VIPs left behind.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        let mut d = Driver::new(router, &iface)?;
        d.on_event(|r, ev| match ev {
            Event::StateChanged { from, to, reason } => {
                println!("STATE {from:?} {to:?} {reason:?} prio={}", r.priority())
            }
            Event::Discarded { reason, src, .. } => println!("DISCARD {} {src}", reason.as_str()),
            Event::PriorityChanged { from, to } => println!("PRIORITY {from} {to}"),
            Event::AddAddresses | Event::RemoveAddresses => println!("{ev:?}"),
        });
        d.on_error(|e| eprintln!("lb-vrrpd: {e}"));
        d.run(stop).await?;
        let c = d.router().counters();
        println!(
            "COUNTERS adverts_sent={} v3_speaker_without_v2={} router_adverts_sent={} router_solicitations={}",
            c.adverts_sent, c.v3_speaker_without_v2, c.router_adverts_sent, c.router_solicitations
        );
        Ok::<(), std::io::Error>(())
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-vrrpd: {e}");
            ExitCode::FAILURE
        }
    }
}
