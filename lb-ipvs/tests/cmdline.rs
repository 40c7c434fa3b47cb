//! ipvsadm command-line compatibility: defaults, option forms and error
//! messages (from ipvsadm.c 1.31).

use lb_ipvs::{
    Dest, Family, ForwardMethod, Op, ServiceFlags, ServiceKey, Timeouts, TunnelFlags, TunnelType,
    cmdline::{Command, parse},
};

fn ok(args: &str) -> Command {
    parse(&args.split_whitespace().collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{args}: {e}"))
}

fn err(args: &str) -> String {
    parse(&args.split_whitespace().collect::<Vec<_>>())
        .unwrap_err()
        .message
}

#[test]
fn add_service_defaults_and_options() {
    let Command::Apply(Op::AddService(s)) = ok("-A -t 10.0.0.1:80") else {
        panic!()
    };
    assert_eq!(
        (s.scheduler.as_str(), s.flags, s.timeout, s.netmask),
        ("wlc", ServiceFlags(0), 0, u32::MAX)
    );
    let Command::Apply(Op::AddService(s)) =
        ok("-A -u 10.0.0.1:0 -p -s sh -b sh-port,sh-fallback -M 255.255.0.0")
    else {
        panic!()
    };
    assert_eq!(s.timeout, 360);
    assert_eq!(s.netmask, 0xffff_0000);
    assert_eq!(
        s.flags.0,
        ServiceFlags::PERSISTENT | ServiceFlags::SCHED1 | ServiceFlags::SCHED2
    );
    let Command::Apply(Op::EditService(s)) =
        ok("--edit-service --fwmark-service=9 -6 --persistent=60 -M 48 --pe sip")
    else {
        panic!()
    };
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 9
        }
    );
    assert_eq!(
        (s.timeout, s.netmask, s.pe_name.as_deref()),
        (60, 48, Some("sip"))
    );
    let Command::Apply(Op::AddService(s)) = ok("-A -t [2001:db8::1]:443 -s mh -b mh-port") else {
        panic!()
    };
    assert_eq!(s.netmask, 128);
    assert_eq!(s.flags.0, ServiceFlags::SCHED2);
}

#[test]
fn real_server_defaults_port_copy_and_tunnels() {
    let Command::Apply(Op::AddDest(k, d)) = ok("-a -t 10.0.0.1:80 -r 10.0.1.1") else {
        panic!()
    };
    assert_eq!(k, ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80));
    assert_eq!(d, Dest::new("10.0.1.1".parse().unwrap(), 80));
    // Direct routing forces the service port; masquerading keeps the given one.
    let Command::Apply(Op::AddDest(_, d)) = ok("-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g") else {
        panic!()
    };
    assert_eq!(d.port, 80);
    let Command::Apply(Op::EditDest(_, d)) =
        ok("-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5 -x 10 -y 2")
    else {
        panic!()
    };
    assert_eq!(
        (d.port, d.fwd, d.weight, d.u_threshold, d.l_threshold),
        (8080, ForwardMethod::Masq, 5, 10, 2)
    );
    let Command::Apply(Op::AddDest(_, d)) =
        ok("-a -t 10.0.0.1:80 -r 2001:db8::9 -i --tun-type gue --tun-port 6080 --tun-remcsum")
    else {
        panic!()
    };
    assert_eq!(
        (d.tun_type, d.tun_port, d.tun_flags),
        (TunnelType::Gue, 6080, TunnelFlags(TunnelFlags::REMCSUM))
    );
    let Command::Apply(Op::DelDest(_, a, p)) = ok("-d -f 3 -r 10.0.1.1:99") else {
        panic!()
    };
    assert_eq!((a, p), ("10.0.1.1".parse().unwrap(), 99));
}

#[test]
fn other_commands() {
    assert_eq!(ok("-C"), Command::Apply(Op::Flush));
    assert_eq!(ok("-Z"), Command::Apply(Op::Zero(None)));
    assert_eq!(
        ok("--set 900 120 300"),
        Command::Apply(Op::SetTimeouts(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }))
    );
    assert_eq!(ok("-S -n"), Command::Save { numeric: true });
    assert_eq!(ok("-R"), Command::Restore);
    assert_eq!(ok("ipvsadm -R"), Command::Restore);
    let Command::List(l) = ok("-Ln --stats") else {
        panic!()
    };
    assert!(l.format.numeric && l.format.stats && l.service.is_none());
    let Command::List(l) = ok("-L -c -n") else {
        panic!()
    };
    assert!(l.connections);
    let Command::Apply(Op::StartDaemon(d)) = ok(
        "--start-daemon backup --syncid 3 --mcast-group 224.0.0.99 --mcast-port 9000 --mcast-ttl 2 --sync-maxlen 1400",
    ) else {
        panic!()
    };
    assert_eq!(
        (
            d.mcast_ifn.as_str(),
            d.syncid,
            d.mcast_port,
            d.mcast_ttl,
            d.sync_maxlen
        ),
        ("eth0", 3, 9000, 2, 1400)
    );
    assert!(matches!(
        ok("--stop-daemon master"),
        Command::Apply(Op::StopDaemon(_))
    ));
}

#[test]
fn ipvsadm_error_messages() {
    assert_eq!(
        err("-a -t 10.0.0.1:80"),
        "You need to supply the 'real-server' option for the 'add-server' command"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -w 3"),
        "Illegal 'weight' option with the 'add-service' command"
    );
    assert_eq!(
        err("-L -c --timeout"),
        "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
    );
    assert_eq!(err("-A -t 10.0.0.1:80 -A"), "multiple commands specified");
    assert_eq!(
        err("-A -t 10.0.0.1:80 -s rr -s wlc"),
        "multiple 'scheduler' options specified"
    );
    assert_eq!(
        err("-A -t 10.0.0.1"),
        "Zero port specified for non-persistent service"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -o"),
        "One-Packet Scheduling is only for UDP virtual services"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -b sh-port"),
        "incompatible scheduler flag `sh-port'"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:80 -b bogus"),
        "invalid scheduler flag `bogus'"
    );
    assert_eq!(
        err("-A -t 10.0.0.1:99999"),
        "illegal virtual server address[:port] specified"
    );
    assert_eq!(err("-A -f 0"), "invalid fwmark value `0' specified");
    assert_eq!(
        err("-A -t 10.0.0.1:80 -p 0"),
        "invalid timeout value `0' specified"
    );
    assert_eq!(
        err("-a -t 10.0.0.1:80 -r 10.0.1.1 -g --tun-type gue"),
        "Tunnel options conflict with forward method"
    );
    assert_eq!(
        err("-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue"),
        "You need to supply the 'tun-port' option for the 'gue' tunnel type"
    );
    assert_eq!(
        err("-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-csum"),
        "Illegal 'tun-csum' option with the 'ipip' tunnel type"
    );
    assert_eq!(
        err("-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m"),
        "Different address family is allowed only for tunneling servers"
    );
    assert_eq!(err("--set 1 2"), "--set option requires 3 timeout values");
    assert_eq!(err("-C extra"), "unexpected argument extra");
    assert_eq!(
        err("--start-daemon primary"),
        "illegal start-daemon parameter specified"
    );
    assert_eq!(err("-A -t 10.0.0.1:80 -6"), "-6 used before -f\n");
}
