//! Listings against hand-written ipvsadm 1.31 output (derived from the
//! `printf` formats of ipvsadm.c with C printf semantics).

use std::net::IpAddr;

use lb_ipvs::{
    Daemon, DaemonState, Dest, DestEntry, Family, ForwardMethod, Info, Service, ServiceEntry,
    ServiceFlags, ServiceKey, Snapshot, Stats, Timeouts, TunnelFlags, TunnelType, cmdline::Format,
    conn, list, list::Numeric,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dest(addr: &str, port: u16, fwd: ForwardMethod, weight: i32) -> Dest {
    Dest {
        fwd,
        weight,
        ..Dest::new(ip(addr), port)
    }
}

fn entry(d: Dest, active: u32, inact: u32) -> DestEntry {
    DestEntry {
        dest: d,
        active_conns: active,
        inact_conns: inact,
        persist_conns: 0,
        stats: Stats::default(),
    }
}

/// Services and destinations deliberately out of order.
fn sample() -> Snapshot {
    let mut fwm = Service::new(ServiceKey::Fwmark {
        family: Family::Inet6,
        mark: 7,
    });
    fwm.scheduler = "rr".into();
    fwm.flags = ServiceFlags(ServiceFlags::PERSISTENT | ServiceFlags::HASHED);
    fwm.timeout = 60;
    fwm.netmask = 64;
    let mut tun = dest("2001:db8::1", 0, ForwardMethod::Tunnel, 2);
    tun.tun_type = TunnelType::Gue;
    tun.tun_port = 6080;
    tun.tun_flags = TunnelFlags(TunnelFlags::CSUM);

    let mut udp = Service::new(ServiceKey::udp(ip("10.0.0.2"), 53));
    udp.scheduler = "sh".into();
    udp.flags = ServiceFlags(
        ServiceFlags::PERSISTENT
            | ServiceFlags::HASHED
            | ServiceFlags::ONEPACKET
            | ServiceFlags::SCHED1
            | ServiceFlags::SCHED2,
    );
    udp.timeout = 300;
    udp.netmask = 0xffff_ff00;

    let tcp = Service::new(ServiceKey::tcp(ip("10.0.0.1"), 80));
    Snapshot {
        info: Info {
            version: 0x010201,
            conn_tab_size: 4096,
        },
        services: vec![
            (
                ServiceEntry {
                    service: fwm,
                    stats: Stats::default(),
                },
                vec![entry(tun, 0, 0)],
            ),
            (
                ServiceEntry {
                    service: udp,
                    stats: Stats::default(),
                },
                vec![],
            ),
            (
                ServiceEntry {
                    service: tcp,
                    stats: Stats::default(),
                },
                vec![
                    entry(dest("10.0.1.2", 80, ForwardMethod::Route, 1), 0, 0),
                    entry(dest("10.0.1.1", 80, ForwardMethod::Masq, 3), 5, 7),
                ],
            ),
        ],
    }
}

fn numeric() -> Format {
    Format {
        numeric: true,
        ..Format::default()
    }
}

#[test]
fn list_numeric() {
    let want = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.1:80 wlc\n\
\x20 -> 10.0.1.1:80                  Masq    3      5          7         \n\
\x20 -> 10.0.1.2:80                  Route   1      0          0         \n\
UDP  10.0.0.2:53 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0 ops\n\
FWM  7 IPv6 rr persistent 60 mask 64\n\
\x20 -> [2001:db8::1]:0              Tunnel  2      0          0         \n";
    assert_eq!(list::list_all(&sample(), &numeric(), &Numeric), want);
}

#[test]
fn save_numeric() {
    let want = "-A -t 10.0.0.1:80 -s wlc\n\
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3\n\
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n\
-A -u 10.0.0.2:53 -s sh -p 300 -M 255.255.255.0 -o -b sh-fallback,sh-port\n\
-A -f 7 -6 -s rr -p 60 -M 64\n\
-a -f 7 -6 -r [2001:db8::1]:0 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum\n";
    assert_eq!(list::save(&sample(), true, &Numeric), want);
    // And it restores to the same table.
    let table = lb_ipvs::save::parse_table(want).unwrap();
    assert_eq!(table.canonical(), sample().table().canonical());
    assert_eq!(lb_ipvs::save::emit(&table), want);
}

fn one_service_with_stats() -> Snapshot {
    let stats = Stats {
        conns: 12,
        inpkts: 100,
        outpkts: 0,
        inbytes: 123_456_789,
        outbytes: 5_000_000_000_000,
        cps: 1,
        inpps: 2,
        outpps: 3,
        inbps: 4000,
        outbps: 5_000_000_000,
    };
    let mut d = entry(dest("10.0.1.1", 80, ForwardMethod::Masq, 3), 5, 7);
    d.stats = stats;
    d.persist_conns = 4;
    d.dest.u_threshold = 100;
    d.dest.l_threshold = 10;
    Snapshot {
        info: Info {
            version: 0x010201,
            conn_tab_size: 4096,
        },
        services: vec![(
            ServiceEntry {
                service: Service::new(ServiceKey::tcp(ip("10.0.0.1"), 80)),
                stats,
            },
            vec![d],
        )],
    }
}

#[test]
fn list_stats_rate_thresholds_persistent_conn() {
    let snap = one_service_with_stats();
    let (se, d) = &snap.services[0];
    let f = |f: Format| list::list_service(se, d, &f, &Numeric);
    assert_eq!(
        f(Format {
            stats: true,
            ..numeric()
        }),
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                        12      100        0  123456K    5000G\n  -> 10.0.1.1:80                        12      100        0  123456K    5000G\n"
    );
    assert_eq!(
        f(Format {
            rate: true,
            ..numeric()
        }),
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                         1        2        3     4000    5000M\n  -> 10.0.1.1:80                         1        2        3     4000    5000M\n"
    );
    assert_eq!(
        f(Format {
            thresholds: true,
            ..numeric()
        }),
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80                  100        10         5          7         \n"
    );
    assert_eq!(
        f(Format {
            persistent_conn: true,
            ..numeric()
        }),
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80                  3         4           5          7         \n"
    );
    // --exact expands large numbers.
    let exact = f(Format {
        stats: true,
        exact: true,
        ..numeric()
    });
    assert!(
        exact.contains("        0 123456789 5000000000000\n"),
        "{exact}"
    );
}

#[test]
fn list_tun_info() {
    let mut snap = sample();
    snap.services.truncate(1);
    snap.services[0]
        .1
        .push(entry(dest("2001:db8::2", 0, ForwardMethod::Route, 1), 0, 0));
    let (se, d) = &snap.services[0];
    assert_eq!(
        list::list_service(
            se,
            d,
            &Format {
                tun_info: true,
                ..numeric()
            },
            &Numeric
        ),
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\nFWM  7 IPv6 rr persistent 60 mask 64\n  -> [2001:db8::1]:0              Tunnel  gue:6080:+c   2      0          0         \n  -> [2001:db8::2]:0              Route   n/a           1      0          0         \n"
    );
}

#[test]
fn list_connections() {
    let proc_text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A000001 9C40 0A000064 0050 0A000002 0050 ESTABLISHED     899\n\
UDP 2001:0db8:0000:0000:0000:0000:0000:0005 0035 2001:0db8:0000:0000:0000:0000:0000:0001 0035 2001:0db8:0000:0000:0000:0000:0000:0002 0035 UDP               5\n";
    let conns = conn::parse(proc_text).unwrap();
    assert_eq!(
        list::conns(&conns, &numeric(), &Numeric),
        "IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:59  ESTABLISHED 10.0.0.1:40000     10.0.0.100:80      10.0.0.2:80\nUDP 00:05  UDP         [2001:db8::5]:53   [2001:db8::1]:53   [2001:db8::2]:53\n"
    );
}

#[test]
fn conn_sync_file_has_origin() {
    let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
TCP 0A000001 9C40 0A000064 0050 0A000002 0050 ESTABLISHED LOCAL      899\n\
TCP 0A000003 9C41 0A000064 0050 0A000002 0050 NONE        SYNC       120\n";
    let c = conn::parse(text).unwrap();
    assert_eq!(c[0].origin, Some(conn::Origin::Local));
    assert_eq!(
        (c[1].origin, c[1].expires, c[1].state.as_str()),
        (Some(conn::Origin::Sync), 120, "NONE")
    );
    let bad = conn::parse("Pro x\nTCP zz 0 0 0 0 0 X 1\n").unwrap_err();
    assert_eq!(bad.line, 2);
}

#[test]
fn timeout_and_daemon_lines() {
    assert_eq!(
        list::timeouts(&Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let mut m = Daemon::new(DaemonState::Master, "eth0");
    m.syncid = 5;
    m.sync_maxlen = 1472;
    m.mcast_group = Some(ip("224.0.0.81"));
    m.mcast_port = 8848;
    m.mcast_ttl = 1;
    let b = Daemon::new(DaemonState::Backup, "eth1");
    assert_eq!(
        list::daemons(&[m, b]),
        "master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
backup sync daemon (mcast=eth1, syncid=0)\n"
    );
}

#[test]
fn names_from_files_without_numeric() {
    let res = list::Files::from_text(
        "10.0.0.1 web.example web\n",
        "http 80/tcp www\ndomain 53/udp\n",
    );
    let snap = one_service_with_stats();
    let out = list::list_all(&snap, &Format::default(), &res);
    assert!(out.contains("TCP  web.example:http wlc\n"), "{out}");
    assert!(out.contains("  -> 10.0.1.1:http "), "{out}");
}

#[test]
fn sort_order_follows_ipvsadm_wrapping_comparator() {
    // 10.0.0.1 and 200.0.0.1 differ by more than 2^31: ipvsadm's
    // `ntohl(a) - ntohl(b)` wraps and lists 200.0.0.1 first.
    let mk = |a: &str| {
        (
            ServiceEntry {
                service: Service::new(ServiceKey::tcp(ip(a), 80)),
                stats: Stats::default(),
            },
            vec![],
        )
    };
    let snap = Snapshot {
        info: Info {
            version: 0x010201,
            conn_tab_size: 4096,
        },
        services: vec![mk("10.0.0.1"), mk("200.0.0.1")],
    };
    let out = list::save(&snap, true, &Numeric);
    assert_eq!(out, "-A -t 200.0.0.1:80 -s wlc\n-A -t 10.0.0.1:80 -s wlc\n");
}
