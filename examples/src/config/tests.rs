use std::net::IpAddr;
use std::time::Duration;

use super::*;

fn ok(text: &str) -> Loaded {
    parse_str("t.conf", text).unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn fail(text: &str) -> ConfigError {
    match parse_str("t.conf", text) {
        Ok(l) => panic!("expected an error, got {:?}", l.config),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const FWMARK_DR: &str = include_str!("../../configs/fwmark-dr.conf");
const NAT_RR: &str = include_str!("../../configs/nat-rr.conf");
const DR_PERSIST: &str = include_str!("../../configs/dr-persist.conf");
const VRRP_SYNC: &str = include_str!("../../configs/vrrp-sync.conf");

#[test]
fn seed_fwmark_dr() {
    let l = ok(FWMARK_DR);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_FWMARK"));
    assert_eq!(c.global.notification_email, ["admin@example.com"]);
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.key, VsKey::Fwmark(100));
    assert_eq!(vs.method, LvsMethod::Dr);
    assert_eq!(vs.persistence_timeout, Some(300));
    assert_eq!(vs.persistence_granularity, Some(24));
    assert_eq!(vs.sorry_server, Some((ip("192.168.1.250"), 80)));
    assert_eq!(vs.real_servers.len(), 2);
    let CheckKind::Http {
        urls, ssl: false, ..
    } = &vs.real_servers[1].checkers[0].kind
    else {
        panic!("not HTTP_GET")
    };
    assert_eq!(urls.len(), 2);
    assert_eq!(
        urls[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert_eq!(urls[1].status, [(200, 200)]);
    let common = &vs.real_servers[1].checkers[0].common;
    assert_eq!(common.retry, Some(3));
    assert_eq!(common.delay_before_retry, Some(Duration::from_secs(2)));
    assert_eq!(
        c.fwmark_rules.iter().map(|r| &r.rule).collect::<Vec<_>>(),
        [&MarkRule {
            protocol: Some(Protocol::Tcp),
            saddr: None,
            daddr: (ip("192.168.1.100"), 32),
            dports: vec![(80, 80), (443, 443)],
            mark: 100,
        }]
    );
}

#[test]
fn fwmark_rules_blocks() {
    let l = ok(r#"
virtual_server_group MARKS {
    fwmark 21
}
fwmark_rules {
    tcp daddr 192.0.2.1 dport 80,443 mark 100
    TCP saddr 198.51.100.77/24 daddr 192.0.2.1 dport 21,10000:20000 mark 21
}
fwmark_rules {
    all mark 7 daddr 2001:db8::1/64
    udp daddr 192.0.2.0/24 mark 100
}
virtual_server fwmark 100 {
    lb_kind DR
    real_server 10.0.0.1 80 {
    }
}
virtual_server group MARKS {
    lb_kind DR
    persistence_timeout 60
    real_server 10.0.0.2 0 {
    }
}
"#);
    let r: Vec<&MarkRule> = l.config.fwmark_rules.iter().map(|r| &r.rule).collect();
    assert_eq!(r.len(), 4);
    assert_eq!(
        r[1],
        &MarkRule {
            protocol: Some(Protocol::Tcp),
            saddr: Some((ip("198.51.100.0"), 24)),
            daddr: (ip("192.0.2.1"), 32),
            dports: vec![(21, 21), (10000, 20000)],
            mark: 21,
        }
    );
    assert_eq!(
        (r[2].protocol, r[2].daddr, r[2].dports.is_empty()),
        (None, (ip("2001:db8::"), 64), true)
    );
    assert_eq!(l.config.fwmark_rules[3].pos.line, 11);
    // Mark 7 has no virtual server: a warning at its rule, nothing fatal.
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert_eq!((l.warnings[0].pos.line, l.warnings[0].pos.col), (10, 5));
    assert!(
        l.warnings[0].message.contains("mark 7"),
        "{}",
        l.warnings[0]
    );
}

/// Each malformed rule gives its error class at the offending word (an
/// item of a port list at the item), and `--config-test` exits 3.
#[test]
fn fwmark_rules_errors_name_line_and_column() {
    let conf = |rule: &str| format!("fwmark_rules {{\n    {rule}\n}}\n");
    let bad_value = |kw: &str| {
        let kw = kw.to_owned();
        move |k: &ErrorKind| matches!(k, ErrorKind::BadValue { keyword, .. } if *keyword == kw)
    };
    type Check = Box<dyn Fn(&ErrorKind) -> bool>;
    let cases: Vec<(&str, u32, Check)> = vec![
        (
            "icmp daddr 10.0.0.1 mark 1",
            5,
            Box::new(bad_value("fwmark_rules")),
        ),
        (
            "tcp daddr 10.0.0.1 dport 80,x mark 1",
            33,
            Box::new(bad_value("dport")),
        ),
        (
            "tcp daddr 10.0.0.1 dport 80,20:10 mark 1",
            33,
            Box::new(bad_value("dport")),
        ),
        (
            "tcp daddr 10.0.0.1 dport 70000 mark 1",
            30,
            Box::new(bad_value("dport")),
        ),
        (
            "tcp daddr 10.0.0.1 dport 80, mark 1",
            33,
            Box::new(bad_value("dport")),
        ),
        (
            "tcp daddr 10.0.0.300 mark 1",
            15,
            Box::new(bad_value("daddr")),
        ),
        (
            "tcp daddr 10.0.0.1/33 mark 1",
            15,
            Box::new(bad_value("daddr")),
        ),
        (
            "tcp saddr nowhere daddr 10.0.0.1 mark 1",
            15,
            Box::new(bad_value("saddr")),
        ),
        ("tcp daddr 10.0.0.1 mark 0", 29, Box::new(bad_value("mark"))),
        (
            "tcp daddr 10.0.0.1 mark 4294967296",
            29,
            Box::new(bad_value("mark")),
        ),
        (
            "tcp daddr 10.0.0.1 port 80 mark 1",
            24,
            Box::new(bad_value("fwmark_rules")),
        ),
        (
            "tcp daddr 10.0.0.1 mark",
            24,
            Box::new(|k| *k == ErrorKind::MissingValue("mark".into())),
        ),
        (
            "tcp dport 80 mark 1",
            5,
            Box::new(|k| *k == ErrorKind::MissingValue("daddr".into())),
        ),
        (
            "tcp daddr 10.0.0.1",
            5,
            Box::new(|k| *k == ErrorKind::MissingValue("mark".into())),
        ),
        (
            "all daddr 10.0.0.1 dport 80 mark 1",
            24,
            Box::new(|k| matches!(k, ErrorKind::Conflict(m) if m.contains("dport"))),
        ),
        (
            "tcp saddr 2001:db8::/32 daddr 10.0.0.1 mark 1",
            9,
            Box::new(|k| matches!(k, ErrorKind::Conflict(m) if m.contains("IPv6"))),
        ),
        (
            "tcp daddr 10.0.0.1 daddr 10.0.0.2 mark 1",
            24,
            Box::new(|k| matches!(k, ErrorKind::Conflict(m) if m.contains("twice"))),
        ),
    ];
    for (rule, col, check) in &cases {
        let r = parse_str("t.conf", &conf(rule));
        assert_eq!(config_test_exit_code(&r), 3, "{rule}");
        let e = r.unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (2, *col), "{rule}: {e}");
        assert!(check(&e.kind), "{rule}: {e}");
        assert!(
            e.to_string().starts_with(&format!("t.conf:2:{col}: ")),
            "{e}"
        );
    }
    // Block structure: a name, a missing block, a nested block, a missing `}`.
    let e = fail("fwmark_rules web {\n}\n");
    assert_eq!((e.pos.line, e.pos.col), (1, 14), "{e}");
    assert_eq!(
        fail("fwmark_rules\n").kind,
        ErrorKind::MissingBlock("fwmark_rules".into())
    );
    let e = fail("fwmark_rules {\n    tcp daddr 10.0.0.1 mark 1 {\n    }\n}\n");
    assert!(matches!(e.kind, ErrorKind::UnclosedBlock { .. }), "{e}");
    let e = fail("fwmark_rules {\n    tcp daddr 10.0.0.1 mark 1\nvirtual_server fwmark 1 {\n}\n");
    assert_eq!(e.pos.line, 3, "{e}");
    assert!(
        matches!(e.kind, ErrorKind::UnclosedBlock { ref keyword, opened: 1, .. } if keyword == "fwmark_rules"),
        "{e}"
    );
    // Inside another block it is a misplaced top-level block.
    let e = fail("virtual_server fwmark 1 {\n lb_kind DR\nfwmark_rules {\n}\n}\n");
    assert_eq!(e.pos.line, 3, "{e}");
    assert!(matches!(e.kind, ErrorKind::UnclosedBlock { .. }), "{e}");
}

#[test]
fn seed_nat_rr() {
    let l = ok(NAT_RR);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    let vi = &c.vrrp_instances[0];
    assert_eq!(vi.auth, Some(Auth::Pass("s3cret".into())));
    assert_eq!(vi.vips[0].dev.as_deref(), Some("eth0"));
    assert_eq!(vi.vips_excluded[0].addr, ip("10.11.12.1"));
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.key,
        VsKey::Addr {
            ip: ip("192.168.200.10"),
            port: 80
        }
    );
    assert_eq!((vs.scheduler.as_str(), vs.method), ("rr", LvsMethod::Nat));
    assert!(
        vs.real_servers
            .iter()
            .all(|r| r.checkers[0].kind == CheckKind::Tcp)
    );
    assert_eq!(vs.real_servers[0].checkers[0].common.connect_port, Some(80));
}

#[test]
fn seed_dr_persist() {
    let l = ok(DR_PERSIST);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let vs = &l.config.virtual_servers[0];
    assert_eq!(vs.persistence_timeout, Some(9600));
    assert_eq!(vs.real_servers[2].weight, 50);
    assert!(vs.real_servers[2].inhibit_on_failure);
    assert!(!vs.real_servers[0].inhibit_on_failure);
}

#[test]
fn seed_vrrp_sync() {
    let l = ok(VRRP_SYNC);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.sync_groups[0].members, ["VI_OUT", "VI_IN"]);
    assert_eq!(
        c.sync_groups[0].notify.master.as_deref(),
        Some("/usr/local/bin/lvs-notify master")
    );
    let out = &c.vrrp_instances[0];
    assert_eq!(out.track_interface[1].weight, Some(-10));
    assert_eq!(out.track_script[0].name, "chk_haproxy");
    assert_eq!(out.garp_master_delay, Duration::from_secs(1));
    assert_eq!(c.vrrp_scripts[0].weight, -20);
    assert_eq!(c.vrrp_scripts[0].script, "/usr/bin/pgrep -x haproxy");
}

/// The seed listings that lose a `}`: the error names the line before which
/// it is missing, and the block it belongs to.
#[test]
fn missing_brace_points_at_the_right_line() {
    // Drop the `}` that closes the first real_server (after its HTTP_GET).
    let lines: Vec<&str> = FWMARK_DR.lines().collect();
    let rs1 = lines
        .iter()
        .position(|l| l.trim_start().starts_with("real_server 192.168.1.11"))
        .unwrap();
    let rs2 = lines
        .iter()
        .position(|l| l.trim_start().starts_with("real_server 192.168.1.12"))
        .unwrap();
    let close = (rs1..rs2).rev().find(|&i| lines[i].trim() == "}").unwrap();
    let broken: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != close)
        .map(|(_, l)| *l)
        .collect();
    let e = fail(&broken.join("\n"));
    // The next real_server now stands on line rs2 (one line earlier).
    assert_eq!(e.pos.line as usize, rs2, "{e}");
    assert_eq!(
        e.kind,
        ErrorKind::UnclosedBlock {
            keyword: "real_server".into(),
            opened: rs1 as u32 + 1,
            before: Some("real_server".into())
        }
    );
    assert!(
        e.to_string()
            .starts_with(&format!("t.conf:{}:5: missing '}}' for 'real_server'", rs2)),
        "{e}"
    );

    // A file that ends inside a block names the block's opening line.
    let e = fail(
        "virtual_server 10.0.0.1 80 {\n  lb_algo rr\n  real_server 10.0.0.2 80 {\n   weight 1\n  }\n",
    );
    assert_eq!(
        e.kind,
        ErrorKind::UnclosedBlock {
            keyword: "virtual_server".into(),
            opened: 1,
            before: None
        }
    );

    // A top-level block inside another.
    let e =
        fail("vrrp_instance A {\n interface eth0\n virtual_router_id 1\nvrrp_instance B {\n}\n}\n");
    assert_eq!(e.pos.line, 4);
    assert!(
        matches!(e.kind, ErrorKind::UnclosedBlock { ref keyword, opened: 1, .. } if keyword == "vrrp_instance")
    );
}

#[test]
fn unknown_keywords_warn_with_position() {
    let l = ok("global_defs {\n  router_id x\n  frobnicate 3\n}\nsomething_new 1\n");
    assert_eq!(l.warnings.len(), 2);
    assert_eq!((l.warnings[0].pos.line, l.warnings[0].pos.col), (3, 3));
    assert!(l.warnings[0].message.contains("frobnicate"));
    assert_eq!(l.warnings[1].pos.line, 5);
    assert_eq!(config_test_exit_code(&Ok(l)), 4);
}

#[test]
fn value_errors_name_line_and_column() {
    let vi = |body: &str| {
        format!("vrrp_instance V {{\n interface eth0\n virtual_router_id 5\n{body}\n}}\n")
    };
    let cases: &[(&str, u32, u32, &str)] = &[
        (" priority 256", 4, 11, "priority"),
        (" priority 0", 4, 11, "priority"),
        (" state LEADER", 4, 8, "state"),
        (" advert_int 0.5", 4, 13, "advert_int"), // v2 needs whole seconds
        (" advert_int 41", 4, 13, "advert_int"),
        (
            " virtual_ipaddress {\n  10.0.0.300/24\n }",
            5,
            3,
            "virtual_ipaddress",
        ),
        (
            " virtual_ipaddress {\n  10.0.0.3/33\n }",
            5,
            3,
            "virtual_ipaddress",
        ),
        (" unicast_peer {\n  nonsense\n }", 5, 3, "unicast_peer"),
        (" preempt_delay -1", 4, 16, "preempt_delay"),
    ];
    for &(body, line, col, kw) in cases {
        let e = fail(&vi(body));
        assert_eq!((e.pos.line, e.pos.col), (line, col), "{body}: {e}");
        match &e.kind {
            ErrorKind::BadValue { keyword, .. } => assert_eq!(keyword, kw, "{body}"),
            k => panic!("{body}: {k:?}"),
        }
    }
    // regex_options: the bad word is named (keepalived ignores it silently).
    let url = |body: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n  HTTP_GET {{\n   url {{\n    path /\n{body}\n   }}\n  }}\n }}\n}}\n"
        )
    };
    for (body, col, kw) in [
        ("    regex_options caseless casless", 28, "regex_options"),
        ("    regex_options alt_bsux", 19, "regex_options"),
        ("    regex_min_offset -1", 22, "regex_min_offset"),
        ("    regex_stack 1 x", 19, "regex_stack"),
    ] {
        let e = fail(&url(body));
        assert_eq!((e.pos.line, e.pos.col), (6, col), "{body}: {e}");
        match &e.kind {
            ErrorKind::BadValue { keyword, .. } => assert_eq!(keyword, kw, "{body}"),
            k => panic!("{body}: {k:?}"),
        }
    }
    let e = fail("virtual_server 10.0.0.1 80 {\n lb_algo fastest\n}\n");
    assert_eq!((e.pos.line, e.pos.col), (2, 10));
    let e = fail("virtual_server 10.0.0.1 99999 {\n}\n");
    assert_eq!((e.pos.line, e.pos.col), (1, 25));
    let e = fail(
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest xyz\n   }\n  }\n }\n}\n",
    );
    assert_eq!((e.pos.line, e.pos.col), (6, 12));
}

#[test]
fn missing_values_and_references() {
    assert!(
        matches!(fail("vrrp_instance V {\n interface eth0\n}\n").kind, ErrorKind::MissingValue(ref k) if k == "virtual_router_id")
    );
    assert!(
        matches!(fail("vrrp_instance V {\n virtual_router_id 3\n}\n").kind, ErrorKind::MissingValue(ref k) if k == "interface")
    );
    let e = fail("vrrp_instance V {\n interface eth0\n virtual_router_id 3\n priority\n}\n");
    assert_eq!(
        (e.pos.line, e.kind.clone()),
        (4, ErrorKind::MissingValue("priority".into()))
    );
    let e = fail("vrrp_sync_group G {\n group {\n  NOPE\n }\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::Undefined {
            what: "vrrp_instance",
            name: "NOPE".into()
        }
    );
    let e = fail(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 3\n track_script {\n  chk\n }\n}\n",
    );
    assert_eq!(
        e.kind,
        ErrorKind::Undefined {
            what: "vrrp_script",
            name: "chk".into()
        }
    );
    let e = fail(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 3\n}\nvrrp_instance V {\n interface eth1\n virtual_router_id 4\n}\n",
    );
    assert_eq!(e.pos.line, 5);
    assert!(matches!(e.kind, ErrorKind::Duplicate { first_line: 1, .. }));
    let e = fail(
        "vrrp_instance A {\n interface eth0\n virtual_router_id 3\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 3\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::Conflict(_)));
    let e = fail("virtual_server group NOPE {\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::Undefined {
            what: "virtual_server_group",
            name: "NOPE".into()
        }
    );
    let e = fail("virtual_server 10.0.0.1 {\n lb_algo rr\n}\n");
    assert!(
        matches!(e.kind, ErrorKind::Conflict(_)),
        "port 0 needs persistence"
    );
    assert_eq!(config_test_exit_code(&Err(e)), 3);
}

#[test]
fn values_parse_exactly() {
    use super::build::parse_secs;
    assert_eq!(parse_secs("1"), Some(Duration::from_secs(1)));
    assert_eq!(parse_secs("0.01"), Some(Duration::from_millis(10)));
    assert_eq!(parse_secs("2.5"), Some(Duration::from_millis(2500)));
    assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
    for bad in [
        "",
        ".",
        "-1",
        "1e3",
        "0x10",
        "1.0000001",
        "1..2",
        "9999999999",
    ] {
        assert_eq!(parse_secs(bad), None, "{bad}");
    }
    let l = ok(
        "global_defs {\n vrrp_version 3\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 9\n advert_int 0.1\n virtual_ipaddress {\n  2001:db8::1/64\n  2001:db8::2\n }\n}\n",
    );
    let v = &l.config.vrrp_instances[0];
    assert_eq!((v.version, v.advert_int), (3, Duration::from_millis(100)));
    assert_eq!((v.vips[0].prefix, v.vips[1].prefix), (64, 128));
    // IPv6 VIPs force version 3, whatever the global says.
    let l = ok(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n",
    );
    assert_eq!(l.config.vrrp_instances[0].version, 3);
}

#[test]
fn tunnels_groups_and_checkers() {
    let l = ok(r#"
virtual_server_group WEB {
    192.168.1.10-12 80
    10.0.0.1 443
    fwmark 7
}
track_file flag {
    file /run/lb/flag
    weight -5 reverse
    init_file 0
}
virtual_server group WEB {
    lb_algo mh
    mh-port
    lb_kind TUN type gue port 6080 remcsum
    persistence_timeout
    real_server 10.1.0.1 8080 {
        SSL_GET {
            url {
                path /
                status_code 200-299 301
                regex "ok|up"
                regex_no_match
                regex_options caseless firstline no_start_optimize
                regex_min_offset 4
                regex_max_offset 100
                regex_stack 32768 1048576
            }
            enable_sni
            sni_name www.example.com
        }
        SMTP_CHECK { helo_name lb.example.com }
        DNS_CHECK {
            type aaaa
            name example.com
        }
        UDP_CHECK {
            payload 0a0b
            require_reply 0aXX
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check --fast"
            misc_timeout 5
            misc_dynamic
            user nobody
        }
        FILE_CHECK {
            track_file flag
            weight 3
        }
        PING_CHECK { retry 2 }
    }
}
"#);
    let c = &l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let g = &c.virtual_server_groups[0];
    assert_eq!(
        g.ranges,
        [(ip("192.168.1.10"), 3, 80), (ip("10.0.0.1"), 1, 443)]
    );
    assert_eq!(g.fwmarks, [7]);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.method,
        LvsMethod::Tun(TunType::Gue {
            port: 6080,
            csum: TunCsum::RemCsum
        })
    );
    assert_eq!(vs.persistence_timeout, Some(360));
    assert_eq!(vs.sched_flags, ["mh-port"]);
    let ck: Vec<_> = vs.real_servers[0]
        .checkers
        .iter()
        .map(|c| &c.kind)
        .collect();
    assert!(
        matches!(ck[0], CheckKind::Http { ssl: true, enable_sni: true, urls, .. } if urls[0].status == [(200, 299), (301, 301)] && urls[0].regex.as_deref() == Some("ok|up") && urls[0].regex_no_match
            && urls[0].regex_options.caseless && urls[0].regex_options.firstline && !urls[0].regex_options.dotall
            && urls[0].regex_min_offset == 4 && urls[0].regex_max_offset == Some(100))
    );
    assert_eq!(
        ck[1],
        &CheckKind::Smtp {
            helo_name: Some("lb.example.com".into())
        }
    );
    assert_eq!(
        ck[2],
        &CheckKind::Dns {
            qtype: "AAAA".into(),
            name: "example.com".into()
        }
    );
    assert_eq!(
        ck[3],
        &CheckKind::Udp {
            payload: vec![0x0a, 0x0b],
            require_reply: Some("0aXX".into())
        }
    );
    assert!(
        matches!(ck[4], CheckKind::Misc { dynamic: true, path, .. } if path == "/usr/local/bin/check --fast")
    );
    assert_eq!(
        ck[5],
        &CheckKind::File {
            track_file: "flag".into(),
            weight: Some((3, false))
        }
    );
    assert_eq!(ck[6], &CheckKind::Ping);
    assert_eq!(c.track_files[0].weight, -5);
    assert!(c.track_files[0].reverse);
}

/// One statement per line: a value keyword that swallows a block on its
/// line is an error at the `{`, never a silently lost checker.
#[test]
fn value_keyword_with_a_block_is_an_error() {
    let e = fail(
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 2 TCP_CHECK { connect_timeout 3 }\n }\n}\n",
    );
    assert_eq!((e.pos.line, e.pos.col), (3, 12), "{e}");
    assert_eq!(
        e.kind,
        ErrorKind::UnexpectedBlock {
            keyword: "weight".into(),
            after: Some("TCP_CHECK".into())
        }
    );
    assert!(
        e.to_string().contains("start 'TCP_CHECK' on a new line"),
        "{e}"
    );
}

#[test]
fn exit_codes() {
    assert_eq!(config_test_exit_code(&parse_str("t", VRRP_SYNC)), 0);
    assert_eq!(
        config_test_exit_code(&parse_str("t", "bogus_keyword 1\n")),
        4
    );
    assert_eq!(config_test_exit_code(&parse_str("t", "}\n")), 3);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any text, however broken, gives a value or an error, never a panic,
        /// and errors point inside the text.
        #[test]
        fn never_panics(text in "[ -~\n{}!#\"]{0,300}") {
            if let Err(e) = parse_str("p.conf", &text) {
                let lines = text.lines().count() as u32;
                prop_assert!(e.pos.line <= lines.max(1), "{e}");
            }
        }

        /// A `fwmark_rules` line made of any arrangement of its words and
        /// plausible or broken values gives rules or an error on that line,
        /// never a panic; a rule that parses matches what it says.
        #[test]
        fn fwmark_rule_lines(words in proptest::collection::vec(prop_oneof![
            Just("tcp"), Just("udp"), Just("all"), Just("sctp"), Just("saddr"), Just("daddr"),
            Just("dport"), Just("mark"), Just("10.0.0.1"), Just("10.0.0.0/8"), Just("::1"),
            Just("80"), Just("80,443"), Just("1:65535"), Just("9:1"), Just("0"), Just("7"),
            Just("x"), Just(","), Just("/"),
        ], 0..10)) {
            let line = words.join(" ");
            match parse_str("p.conf", &format!("fwmark_rules {{\n{line}\n}}\n")) {
                Ok(l) => {
                    for r in &l.config.fwmark_rules {
                        prop_assert!(r.rule.mark >= 1);
                        prop_assert!(r.rule.dports.iter().all(|(a, b)| a <= b));
                        prop_assert!(r.rule.dports.is_empty() || r.rule.protocol.is_some());
                        prop_assert!(line.contains("daddr") && line.contains("mark"));
                    }
                }
                Err(e) => prop_assert!(e.pos.line == 2 || (line.is_empty() && e.pos.line <= 3), "{e}"),
            }
        }

        /// A rule printed as a `fwmark_rules` line (its `Display`, which
        /// `director status` shows) parses back to the same rule.
        #[test]
        fn fwmark_rule_display_round_trips(
            protocol in prop_oneof![
                Just(None), Just(Some(Protocol::Tcp)), Just(Some(Protocol::Udp)), Just(Some(Protocol::Sctp)),
            ],
            v6 in any::<bool>(),
            saddr in proptest::option::of((any::<u128>(), 0u8..=128)),
            daddr in (any::<u128>(), 0u8..=128),
            ports in proptest::collection::vec((1u16.., 0u16..100), 0..4),
            mark in 1u32..,
        ) {
            let net = |(bits, len): (u128, u8)| -> (IpAddr, u8) {
                if v6 {
                    let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                    (IpAddr::V6((bits & m).into()), len)
                } else {
                    let len = len % 33;
                    let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    (IpAddr::V4((bits as u32 & m).into()), len)
                }
            };
            let dports = if protocol.is_some() {
                ports.iter().map(|&(lo, w)| (lo, lo.saturating_add(w))).collect()
            } else {
                Vec::new()
            };
            let rule = MarkRule { protocol, saddr: saddr.map(net), daddr: net(daddr), dports, mark };
            let text = format!("fwmark_rules {{\n {rule}\n}}\n");
            let l = parse_str("p.conf", &text)
                .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(&l.config.fwmark_rules[0].rule, &rule, "{}", text);
        }

        /// Mutating a valid seed by deleting one line never panics, and a
        /// deleted `}` is always reported (never silently accepted).
        #[test]
        fn deleting_a_brace_is_reported(seed in 0usize..4, pick in any::<proptest::sample::Index>()) {
            let text = [FWMARK_DR, NAT_RR, DR_PERSIST, VRRP_SYNC][seed];
            let lines: Vec<&str> = text.lines().collect();
            let closers: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim() == "}").collect();
            let drop = closers[pick.index(closers.len())];
            let broken: Vec<&str> = lines.iter().enumerate().filter(|&(i, _)| i != drop).map(|(_, l)| *l).collect();
            let r = parse_str("p.conf", &broken.join("\n"));
            prop_assert!(matches!(r, Err(ConfigError { kind: ErrorKind::UnclosedBlock { .. }, .. })), "{:?}", r.map(|l| l.warnings));
        }
    }
}

/// A fwmark service's family: `ip_family`, else its first direct real
/// server's, else IPv4; a group's fwmarks take it too. Mixing families is an
/// error at the offending line (tunnelled real servers may differ).
#[test]
fn fwmark_family() {
    let family = |text: &str| parse_str("t.conf", text).unwrap().config.virtual_servers[0].family;
    assert_eq!(
        family("virtual_server fwmark 1 {\n ip_family inet6\n}\n"),
        IpFamily::Inet6
    );
    assert_eq!(
        family("virtual_server fwmark 1 {\n real_server 2001:db8::1 80 {\n }\n}\n"),
        IpFamily::Inet6
    );
    assert_eq!(family("virtual_server fwmark 1 {\n}\n"), IpFamily::Inet);
    assert_eq!(
        family("virtual_server fwmark 1 {\n sorry_server 2001:db8::9 80\n}\n"),
        IpFamily::Inet6
    );
    // A tunnelled IPv4 real server does not decide, nor conflict.
    assert_eq!(
        family(
            "virtual_server fwmark 1 {\n real_server 10.0.0.1 80 {\n  lvs_method TUN\n }\n real_server 2001:db8::1 80 {\n  lvs_method DR\n }\n}\n"
        ),
        IpFamily::Inet6
    );
    assert_eq!(
        family("virtual_server 2001:db8::1 80 {\n ip_family inet6\n}\n"),
        IpFamily::Inet6
    );
    let cases: &[(&str, u32, u32, &str)] = &[
        (
            "virtual_server fwmark 1 {\n real_server 2001:db8::1 80 {\n }\n real_server 10.0.0.2 80 {\n }\n}\n",
            4,
            2,
            "real server 10.0.0.2 is IPv4 but the virtual server is IPv6 (from its first real server, line 2)",
        ),
        (
            "virtual_server fwmark 1 {\n ip_family inet6\n real_server 10.0.0.2 80 {\n }\n}\n",
            3,
            2,
            "(from ip_family, line 2)",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n ip_family inet6\n}\n",
            2,
            2,
            "ip_family inet6 conflicts with the IPv4 virtual server address",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 2001:db8::1 80 {\n }\n}\n",
            2,
            2,
            "real server 2001:db8::1 is IPv6",
        ),
    ];
    for &(text, line, col, msg) in cases {
        let e = fail(text);
        assert_eq!((e.pos.line, e.pos.col), (line, col), "{text}: {e}");
        assert!(e.to_string().contains(msg), "{e}");
        assert!(e.to_string().starts_with("t.conf:"), "{e}");
    }
    let e = fail("virtual_server fwmark 1 {\n ip_family ipx\n}\n");
    assert_eq!((e.pos.line, e.pos.col), (2, 12), "{e}");
}

/// Only the first instance's `lvs_sync_daemon_interface` counts; another
/// one is a warning at its instance.
#[test]
fn second_sync_daemon_interface_warns() {
    let l = ok("vrrp_instance A {
 interface eth0
 virtual_router_id 1
 priority 100
 lvs_sync_daemon_interface eth1
}
vrrp_instance B {
 interface eth0
 virtual_router_id 2
 priority 100
 lvs_sync_daemon_interface eth2
}
");
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert_eq!(l.warnings[0].pos.line, 7);
    assert!(l.warnings[0].message.contains("follows A (line 1)"));
}

/// `lvs_sync_daemon` in `global_defs`: keepalived's ranges and forms; bad
/// values are errors at their own word; a missing or unknown instance, a
/// second `lvs_sync_daemon` and an instance's `lvs_sync_daemon_interface`
/// beside it are warnings.
#[test]
fn lvs_sync_daemon_forms_and_errors() {
    let inst = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n priority 100\n lvs_sync_daemon_interface eth9\n}\n";
    let l = ok(&format!(
        "global_defs {{\n lvs_sync_daemon eth1 A 12 ttl 4 group ff02::99\n lvs_sync_daemon eth2 inst A\n}}\n{inst}"
    ));
    let d = l.config.global.lvs_sync_daemon.as_ref().unwrap();
    assert_eq!(
        (d.interface.as_str(), d.instance.as_deref(), d.syncid, d.ttl),
        ("eth1", Some("A"), Some(12), Some(4))
    );
    assert_eq!(d.group, Some("ff02::99".parse().unwrap()));
    assert_eq!(d.pos.line, 2);
    let msgs: Vec<(u32, &str)> = l
        .warnings
        .iter()
        .map(|w| (w.pos.line, w.message.as_str()))
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].0 == 3 && msgs[0].1.contains("already set at line 2"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].0 == 5
            && msgs[1]
                .1
                .contains("lvs_sync_daemon (line 2) sets the sync daemon"),
        "{msgs:?}"
    );

    for (line, want) in [
        ("lvs_sync_daemon eth1", "names no VRRP instance"),
        ("lvs_sync_daemon eth1 inst Z", "no vrrp_instance Z"),
    ] {
        let l = ok(&format!("global_defs {{\n {line}\n}}\n"));
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert_eq!(l.warnings[0].pos.line, 2);
        assert!(l.warnings[0].message.contains(want), "{:?}", l.warnings);
    }

    for (line, col, want) in [
        ("lvs_sync_daemon", 2, "lvs_sync_daemon"),
        (
            "lvs_sync_daemon averyveryverylongname A",
            18,
            "at most 15 bytes",
        ),
        ("lvs_sync_daemon eth1 inst A id 256", 33, "from 0 to 255"),
        ("lvs_sync_daemon eth1 inst A port 0", 35, "from 1 to 65535"),
        ("lvs_sync_daemon eth1 inst A ttl", 30, "ttl"),
        (
            "lvs_sync_daemon eth1 inst A maxlen 70000",
            37,
            "from 1 to 65507",
        ),
        (
            "lvs_sync_daemon eth1 inst A group 10.0.0.1",
            36,
            "a multicast address",
        ),
        ("lvs_sync_daemon eth1 A 7 8", 27, "inst NAME, id N"),
        ("lvs_sync_daemon eth1 A x", 25, "from 0 to 255"),
    ] {
        let e = fail(&format!("global_defs {{\n {line}\n}}\n"));
        assert_eq!((e.pos.line, e.pos.col), (2, col), "{line}: {e}");
        assert!(e.to_string().contains(want), "{line}: {e}");
    }
}
