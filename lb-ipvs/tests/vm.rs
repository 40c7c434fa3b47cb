//! Every IPVS command against the real kernel, inside the test VM (Debian's
//! kernel). One boot runs all the checks.

use std::{net::IpAddr, process::Command, time::Duration};

use lb_ipvs::{
    Client, Daemon, DaemonState, Dest, Error, Family, ForwardMethod, Op, Protocol, Service,
    ServiceFlags, ServiceKey, Timeouts, TunnelFlags, TunnelType, cmdline::Format, conn, list,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn vm_ipvs_every_command_round_trips() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(180)), {
        sh("ip -6 addr add fd00::254/64 dev dummy0 nodad");
        let mut c = Client::new().expect("IPVS family");
        c.apply(&[Op::Flush]).unwrap();

        // GET_INFO.
        let info = c.info().unwrap();
        assert_eq!(info.version_triple(), (1, 2, 1));
        assert!(info.conn_tab_size >= 256);

        // NEW_SERVICE / GET_SERVICE for every kind of key and option.
        let tcp = ServiceKey::tcp(ip("10.1.0.1"), 80);
        let mut s_tcp = Service::new(tcp);
        s_tcp.scheduler = "rr".into();
        s_tcp.flags = ServiceFlags(ServiceFlags::PERSISTENT);
        s_tcp.timeout = 600;
        s_tcp.netmask = 0xffff_ff00;
        let udp = ServiceKey::udp(ip("fd00::1"), 53);
        let mut s_udp = Service::new(udp);
        s_udp.scheduler = "sh".into();
        s_udp.flags = ServiceFlags(
            ServiceFlags::PERSISTENT
                | ServiceFlags::ONEPACKET
                | ServiceFlags::SCHED1
                | ServiceFlags::SCHED2,
        );
        s_udp.timeout = 30;
        s_udp.netmask = 64;
        s_udp.pe_name = Some("sip".into());
        let fwm = ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 77,
        };
        let mut s_fwm = Service::new(fwm);
        s_fwm.scheduler = "mh".into();
        s_fwm.flags = ServiceFlags(ServiceFlags::SCHED2);
        let sctp = ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: ip("10.1.0.2"),
            port: 9,
        };
        let s_sctp = Service::new(sctp);
        c.apply(&[
            Op::AddService(s_tcp.clone()),
            Op::AddService(s_udp.clone()),
            Op::AddService(s_fwm.clone()),
            Op::AddService(s_sctp.clone()),
        ])
        .unwrap();
        for s in [&s_tcp, &s_udp, &s_fwm, &s_sctp] {
            let got = c.service(&s.key).unwrap();
            assert_eq!(got.service.normalized(), *s, "{}", s.key);
            assert!(got.service.flags.has(ServiceFlags::HASHED));
        }
        assert_eq!(c.services().unwrap().len(), 4);

        // SET_SERVICE.
        s_tcp.scheduler = "wlc".into();
        s_tcp.flags = ServiceFlags(0);
        s_tcp.timeout = 0;
        s_tcp.netmask = u32::MAX;
        c.apply(&[Op::EditService(s_tcp.clone())]).unwrap();
        assert_eq!(c.service(&tcp).unwrap().service.normalized(), s_tcp);

        // NEW_DEST / GET_DEST with every forwarding method, thresholds and
        // tunnels (GUE, GRE, and a mixed-family IPIP tunnel).
        let mut masq = Dest::new(ip("10.1.1.1"), 8080);
        masq.fwd = ForwardMethod::Masq;
        masq.weight = 5;
        masq.u_threshold = 100;
        masq.l_threshold = 20;
        let route = Dest::new(ip("10.1.1.2"), 80);
        let mut gue = Dest::new(ip("10.1.1.3"), 80);
        gue.fwd = ForwardMethod::Tunnel;
        gue.tun_type = TunnelType::Gue;
        gue.tun_port = 6080;
        gue.tun_flags = TunnelFlags(TunnelFlags::REMCSUM);
        let mut gre = Dest::new(ip("fd00::3"), 0);
        gre.fwd = ForwardMethod::Tunnel;
        gre.tun_type = TunnelType::Gre;
        gre.tun_flags = TunnelFlags(TunnelFlags::CSUM);
        let mut mixed = Dest::new(ip("10.1.1.4"), 0);
        mixed.fwd = ForwardMethod::Tunnel;
        let mut local = Dest::new(ip("10.0.0.254"), 80);
        local.weight = 0;
        c.apply(&[
            Op::AddDest(tcp, masq.clone()),
            Op::AddDest(tcp, route.clone()),
            Op::AddDest(tcp, gue.clone()),
            Op::AddDest(fwm, gre.clone()),
            Op::AddDest(fwm, mixed.clone()),
            Op::AddDest(tcp, local.clone()),
        ])
        .unwrap();
        let mut got: Vec<Dest> = c.dests(&tcp).unwrap().into_iter().map(|e| e.dest).collect();
        got.sort_by_key(Dest::id);
        // (A destination on a local address is still reported as Route.)
        let mut want = vec![masq.clone(), route.clone(), gue.clone(), local];
        want.sort_by_key(Dest::id);
        assert_eq!(got, want);
        let mut got: Vec<Dest> = c.dests(&fwm).unwrap().into_iter().map(|e| e.dest).collect();
        got.sort_by_key(Dest::id);
        assert_eq!(got, vec![mixed.clone(), gre.clone()]);

        // SET_DEST.
        masq.weight = 9;
        masq.u_threshold = 0;
        masq.l_threshold = 0;
        c.apply(&[Op::EditDest(tcp, masq.clone())]).unwrap();
        let e = c
            .dests(&tcp)
            .unwrap()
            .into_iter()
            .find(|e| e.dest.id() == masq.id())
            .unwrap();
        assert_eq!(e.dest, masq);

        // Typed errors naming the operation and its objects.
        let err = c.apply(&[Op::AddService(s_udp.clone())]).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert_eq!(
            err.to_string(),
            "add service -u [fd00::1]:53: Service already exists (errno 17)"
        );
        let ghost = ServiceKey::tcp(ip("10.9.9.9"), 1);
        let err = c.apply(&[Op::AddDest(ghost, route.clone())]).unwrap_err();
        assert!(
            err.to_string().contains(
                "add destination 10.1.1.2:80 to service -t 10.9.9.9:1: Service not defined"
            ),
            "{err}"
        );
        let err = c
            .apply(&[Op::DelDest(tcp, ip("10.1.1.99"), 80)])
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        let mut bad = s_sctp.clone();
        bad.scheduler = "nosuch".into();
        let err = c.apply(&[Op::EditService(bad)]).unwrap_err();
        assert!(
            err.to_string()
                .contains("Scheduler or persistence engine not found"),
            "{err}"
        );
        assert!(matches!(
            c.service(&ghost),
            Err(Error::Kernel {
                errno: libc::ESRCH,
                ..
            })
        ));
        // A batch reports each failure and applies the rest.
        let extra = Dest::new(ip("10.1.1.5"), 80);
        let err = c
            .apply(&[
                Op::AddDest(ghost, extra.clone()),
                Op::AddDest(tcp, extra.clone()),
                Op::DelService(ghost),
            ])
            .unwrap_err();
        let Error::Batch { failures, total: 3 } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(failures.iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 2]);
        assert!(c.dests(&tcp).unwrap().iter().any(|e| e.dest == extra));

        // DEL_DEST, DEL_SERVICE.
        c.apply(&[
            Op::DelDest(tcp, extra.addr, extra.port),
            Op::DelService(sctp),
        ])
        .unwrap();
        assert!(c.service(&sctp).is_err());
        assert!(!c.dests(&tcp).unwrap().iter().any(|e| e.dest == extra));

        // ZERO (all and one).
        c.apply(&[Op::Zero(None), Op::Zero(Some(tcp))]).unwrap();
        assert_eq!(c.service(&tcp).unwrap().stats.conns, 0);

        // SET_CONFIG / GET_CONFIG.
        let t = Timeouts {
            tcp: 1000,
            tcp_fin: 90,
            udp: 200,
        };
        c.apply(&[Op::SetTimeouts(t)]).unwrap();
        assert_eq!(c.timeouts().unwrap(), t);
        c.apply(&[Op::SetTimeouts(Timeouts {
            tcp: 0,
            tcp_fin: 0,
            udp: 60,
        })])
        .unwrap();
        assert_eq!(c.timeouts().unwrap(), Timeouts { udp: 60, ..t });
        assert_eq!(
            list::timeouts(&c.timeouts().unwrap()),
            sh("ipvsadm -L --timeout")
        );

        // NEW_DAEMON / GET_DAEMON / DEL_DAEMON (mixed-family destinations
        // forbid the sync daemon, so remove that one first).
        c.apply(&[Op::DelDest(fwm, mixed.addr, mixed.port)])
            .unwrap();
        let mut m = Daemon::new(DaemonState::Master, "dummy0");
        m.syncid = 7;
        m.mcast_port = 9000;
        m.mcast_ttl = 3;
        let mut b = Daemon::new(DaemonState::Backup, "dummy0");
        b.syncid = 8;
        b.mcast_group = Some(ip("224.0.0.99"));
        c.apply(&[Op::StartDaemon(m.clone()), Op::StartDaemon(b.clone())])
            .unwrap();
        let ds = c.daemons().unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(
            (ds[0].state, ds[0].syncid, ds[0].mcast_port, ds[0].mcast_ttl),
            (DaemonState::Master, 7, 9000, 3)
        );
        assert_eq!(
            (ds[1].state, ds[1].mcast_group),
            (DaemonState::Backup, Some(ip("224.0.0.99")))
        );
        assert_eq!(list::daemons(&ds), sh("ipvsadm -L --daemon"));
        let err = c.apply(&[Op::StartDaemon(m)]).unwrap_err();
        assert!(err.to_string().contains("Daemon has already run"), "{err}");
        c.apply(&[
            Op::StopDaemon(DaemonState::Master),
            Op::StopDaemon(DaemonState::Backup),
        ])
        .unwrap();
        assert!(c.daemons().unwrap().is_empty());

        // Listings against ipvsadm, every modifier.
        for flags in [
            "",
            "--stats",
            "--rate",
            "--thresholds",
            "--persistent-conn",
            "--tun-info",
            "--exact --stats",
        ] {
            let mut f = Format {
                numeric: true,
                ..Format::default()
            };
            f.stats = flags.contains("stats");
            f.rate = flags.contains("rate");
            f.thresholds = flags.contains("thresholds");
            f.persistent_conn = flags.contains("persistent");
            f.tun_info = flags.contains("tun-info");
            f.exact = flags.contains("exact");
            let snap = c.snapshot().unwrap();
            assert_eq!(
                list::list_all(&snap, &f, &list::Numeric),
                sh(&format!("ipvsadm -L -n {flags}")),
                "{flags}"
            );
        }
        let snap = c.snapshot().unwrap();
        assert_eq!(list::save(&snap, true, &list::Numeric), sh("ipvsadm -S -n"));

        // Connections (after the listings, whose rates would move): a local
        // connection attempt to the VIP creates an
        // entry; our parser and listing match ipvsadm -L -c -n.
        let _ = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip("10.1.0.1"), 80),
            Duration::from_millis(300),
        );
        let conns = conn::read().unwrap();
        assert!(
            conns.iter().any(|k| k.virt == (ip("10.1.0.1"), 80)),
            "{conns:?}"
        );
        let ours = list::conns(
            &conns,
            &Format {
                numeric: true,
                ..Format::default()
            },
            &list::Numeric,
        );
        let theirs = sh("ipvsadm -L -c -n");
        // Expiry counters may tick between the two reads: compare without them.
        let strip = |s: &str| {
            s.lines()
                .map(|l| {
                    l.split_whitespace()
                        .filter(|w| !w.contains(':') || w.contains('.') || w.contains('['))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&ours), strip(&theirs));
        let _ = conn::read_file(conn::CONN_SYNC_PROC_FILE).unwrap();

        // Reconcile to a different table, then FLUSH.
        let desired = lb_ipvs::save::parse_table(
            "-A -t 10.1.0.1:80 -s wlc\n-a -t 10.1.0.1:80 -r 10.1.1.2:80 -g -w 4\n-A -u 10.1.0.3:53 -s rr\n-a -u 10.1.0.3:53 -r 10.1.1.7:53 -m -w 1\n",
        )
        .unwrap();
        let ops = c.reconcile(&desired).unwrap();
        assert!(!ops.is_empty());
        assert_eq!(c.table().unwrap().canonical(), desired.canonical());
        assert!(c.reconcile(&desired).unwrap().is_empty());
        c.apply(&[Op::Flush]).unwrap();
        assert!(c.services().unwrap().is_empty());
    });
}

#[test]
fn vm_ipvs_family_missing_is_a_clear_error() {
    // With module loading disabled (the kernel would otherwise load ip_vs
    // for the family lookup), the IPVS family is not registered.
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(60)), {
        std::fs::write("/proc/sys/kernel/modules_disabled", "1\n").unwrap();
        assert!(
            !std::fs::read_to_string("/proc/modules")
                .unwrap()
                .contains("ip_vs ")
        );
        let err = Client::new().unwrap_err();
        assert!(matches!(err, Error::FamilyNotFound), "{err:?}");
        assert!(err.to_string().contains("modprobe ip_vs"));
    });
}
