//! keepalived checker blocks mapped onto `lb-health` checks.

use std::net::SocketAddr;
use std::time::Duration;

use lb_health::probe::{
    ConnectSpec, DnsSpec, FileSpec, HttpSpec, HttpVersion, MiscSpec, PingSpec, SmtpSpec, TlsSpec,
    TlsVerify, UdpSpec, UrlSpec,
};
use lb_health::wire::dns::QueryType;
use lb_health::{CheckKey, ProbeSpec, StateConfig};

use super::plan::{RsId, expand};
use crate::config::{CheckKind, Checker, Config, RealServer, VirtualServer};

/// A check's subscriber: the real server and the index of its checker.
pub type CheckId = (RsId, usize);

/// Every (check id, check) pair of the configuration. `script_user` is the
/// (uid, gid) MISC_CHECK scripts run as unless they name their own user.
pub fn all_checks(cfg: &Config, script_user: Option<(u32, u32)>) -> Vec<(CheckId, CheckKey)> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for key in expand(cfg, vs) {
            for rs in &vs.real_servers {
                for (i, c) in rs.checkers.iter().enumerate() {
                    if let Some(k) = check_key(cfg, vs, rs, c, script_user) {
                        out.push((((key, rs.ip, rs.port), i), k));
                    }
                }
            }
        }
    }
    out
}

/// Whether the checker reports a weight of its own (MISC_CHECK with
/// `misc_dynamic`, FILE_CHECK): only then does a reported weight override
/// the configured one. Other checkers' keys leave the weight out, so a
/// reload that only changes a real server's weight keeps its check running
/// with its state (a down server stays down, as in keepalived) and the new
/// weight applies through the plan.
pub fn reports_weight(c: &Checker) -> bool {
    matches!(
        c.kind,
        CheckKind::Misc { dynamic: true, .. } | CheckKind::File { .. }
    )
}

/// The checks of `cfg` whose reported weight counts ([`reports_weight`]).
pub fn weighing_checks(cfg: &Config) -> std::collections::HashSet<CheckId> {
    let mut out = std::collections::HashSet::new();
    for vs in &cfg.virtual_servers {
        for key in expand(cfg, vs) {
            for rs in &vs.real_servers {
                for (i, c) in rs.checkers.iter().enumerate() {
                    if reports_weight(c) {
                        out.insert(((key, rs.ip, rs.port), i));
                    }
                }
            }
        }
    }
    out
}

fn qtype(t: &str) -> QueryType {
    match t.to_ascii_uppercase().as_str() {
        "A" => QueryType::A,
        "NS" => QueryType::Ns,
        "CNAME" => QueryType::Cname,
        "MX" => QueryType::Mx,
        "TXT" => QueryType::Txt,
        "AAAA" => QueryType::Aaaa,
        _ => QueryType::Soa,
    }
}

/// One checker block as an `lb-health` check (`None` when it cannot run,
/// e.g. a FILE_CHECK naming an unknown track_file).
pub fn check_key(
    cfg: &Config,
    vs: &VirtualServer,
    rs: &RealServer,
    c: &Checker,
    script_user: Option<(u32, u32)>,
) -> Option<CheckKey> {
    let k = &c.common;
    let addr = SocketAddr::new(
        k.connect_ip.unwrap_or(rs.ip),
        k.connect_port.unwrap_or(rs.port),
    );
    let mut connect = ConnectSpec::new(addr);
    connect.timeout(k.connect_timeout.unwrap_or(Duration::from_secs(5)));
    if let Some(b) = k.bindto {
        connect.bind(SocketAddr::new(b, k.bind_port.unwrap_or(0)));
    }
    let probe = match &c.kind {
        CheckKind::Tcp => ProbeSpec::Tcp(connect),
        CheckKind::Http {
            ssl,
            urls,
            protocol,
            virtualhost,
            enable_sni,
            sni_name,
        } => {
            let urls = urls
                .iter()
                .map(|u| {
                    let mut s = UrlSpec::new(u.path.clone());
                    if !u.status.is_empty() {
                        let r: Vec<_> = u.status.iter().map(|&(a, b)| a..=b).collect();
                        s.status_codes(&r);
                    }
                    if let Some(d) = &u.digest {
                        let _ = s.digest_hex(d);
                    }
                    if let Some(re) = &u.regex {
                        s.regex(re.clone(), u.regex_no_match)
                            .regex_options(u.regex_options)
                            .regex_offsets(u.regex_min_offset, u.regex_max_offset);
                    }
                    if let Some(v) = &u.virtualhost {
                        s.virtualhost(v.clone());
                    }
                    s
                })
                .collect();
            let mut h = HttpSpec::new(connect, urls);
            h.version(match protocol.as_deref() {
                Some("1.1") => HttpVersion::V11,
                Some("1.0C") => HttpVersion::V10Close,
                _ => HttpVersion::V10,
            });
            if let Some(v) = virtualhost.as_ref().or(vs.virtualhost.as_ref()) {
                h.virtualhost(v.clone());
            }
            if *ssl {
                let mut t = TlsSpec::new();
                // keepalived does not verify real servers' certificates.
                t.verify(TlsVerify::None);
                if *enable_sni && let Some(n) = sni_name.as_ref().or(virtualhost.as_ref()) {
                    t.sni(n.clone());
                }
                h.tls(t);
            }
            ProbeSpec::Http(h)
        }
        CheckKind::Smtp { helo_name } => ProbeSpec::Smtp(SmtpSpec::new(
            connect,
            helo_name.clone().unwrap_or_else(|| "localhost".into()),
        )),
        CheckKind::Dns { qtype: t, name } => {
            let mut d = DnsSpec::new(connect);
            d.query(name.clone(), qtype(t));
            ProbeSpec::Dns(d)
        }
        CheckKind::Udp {
            payload,
            require_reply,
        } => {
            let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
            let mut u = UdpSpec::new(connect, hex);
            if let Some(r) = require_reply {
                u.require_reply(r.clone());
            }
            ProbeSpec::Udp(u)
        }
        CheckKind::Ping => ProbeSpec::Ping(PingSpec::new(addr.ip())),
        CheckKind::Misc {
            path,
            timeout,
            dynamic,
            user,
        } => {
            let mut m = MiscSpec::from_command_line(
                path,
                timeout.unwrap_or(k.connect_timeout.unwrap_or(Duration::from_secs(5))),
            )
            .ok()?;
            m.dynamic(*dynamic);
            let who = user
                .as_ref()
                .and_then(|(u, g)| super::privs::lookup_user(u, g.as_deref()))
                .or(script_user);
            if let Some((uid, gid)) = who {
                m.user(uid, gid);
            }
            ProbeSpec::Misc(m)
        }
        CheckKind::File { track_file, weight } => {
            let tf = cfg.track_files.iter().find(|t| &t.name == track_file)?;
            let mut f = FileSpec::new(tf.file.clone());
            let (w, rev) = weight.unwrap_or((tf.weight, tf.reverse));
            f.weight = w.into();
            f.reverse = rev;
            f.base_weight = rs.weight;
            ProbeSpec::File(f)
        }
    };
    let delay_loop = k.delay_loop.unwrap_or(vs.delay_loop);
    let mut state = StateConfig::keepalived(
        delay_loop,
        k.retry.unwrap_or(1),
        k.delay_before_retry.unwrap_or(Duration::from_secs(1)),
    );
    state
        .alpha(vs.alpha || k.alpha)
        .omega(vs.omega)
        .inhibit_on_failure(rs.inhibit_on_failure)
        // Not part of the key unless the checker weighs (see reports_weight).
        .weight(if reports_weight(c) { rs.weight } else { 1 });
    if let Some(w) = k.warmup {
        state.warmup(w);
    }
    Some(CheckKey { probe, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(weight: u32) -> Vec<(CheckId, CheckKey)> {
        let cfg = crate::config::parse_str(
            "t.conf",
            &format!(
                "virtual_server 192.0.2.1 80 {{
                   real_server 10.0.0.1 80 {{
                     weight {weight}
                     TCP_CHECK {{ }}
                     MISC_CHECK {{
                       misc_path /bin/true
                       misc_dynamic
                     }}
                     MISC_CHECK {{
                       misc_path /bin/false
                     }}
                   }}
                 }}"
            ),
        )
        .unwrap()
        .config;
        let w = weighing_checks(&cfg);
        let ids: Vec<usize> = w.iter().map(|(_, i)| *i).collect();
        assert_eq!(ids, [1]);
        all_checks(&cfg, None)
    }

    /// A weight-only change keeps the key of checkers that do not weigh
    /// (the engine keeps them running with their state) and changes the
    /// key of a dynamic MISC_CHECK (its probe reports relative to it).
    #[test]
    fn weight_only_change_keeps_plain_checks() {
        let (a, b) = (checks(2), checks(5));
        let same: Vec<bool> = a.iter().zip(&b).map(|(x, y)| x == y).collect();
        assert_eq!(same, [true, false, true]);
    }
}
