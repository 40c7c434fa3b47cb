//! Smoke tests of the lab itself. They need root; see the crate docs for the
//! skip rule (`CI=true` turns a skip into a failure).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use lb_testing_netns::{Error, Host, Lab, Process, lab_or_skip};

const C4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const R4A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const R4B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const S4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const C6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const R6A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const R6B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

/// The namespaces `ip netns list` shows.
fn netns_list() -> BTreeSet<String> {
    let out = std::process::Command::new(lb_testing_netns::find_program("ip").unwrap())
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // Lines look like "name" or "name (id: 3)".
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn with_prefix(prefix: &str) -> Vec<String> {
    netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect()
}

/// client —(10.0.1.0/24, 2001:db8:1::/64)— router —(10.0.2.0/24, 2001:db8:2::/64)— server
fn client_router_server(lab: &Lab) -> (Host, Host, Host) {
    let client = lab.add_host("client").unwrap();
    let router = lab.add_host("router").unwrap();
    let server = lab.add_host("server").unwrap();
    lab.link(&client, "eth0", &router, "eth0").unwrap();
    lab.link(&router, "eth1", &server, "eth0").unwrap();
    router.enable_forwarding().unwrap();
    for (host, ifname, v4, v6) in [
        (&client, "eth0", C4, C6),
        (&router, "eth0", R4A, R6A),
        (&router, "eth1", R4B, R6B),
        (&server, "eth0", S4, S6),
    ] {
        host.add_addr(ifname, v4, 24).unwrap();
        host.add_addr(ifname, v6, 64).unwrap();
    }
    client.add_default_route(R4A).unwrap();
    client.add_default_route(R6A).unwrap();
    server.add_default_route(R4B).unwrap();
    server.add_default_route(R6B).unwrap();
    (client, router, server)
}

/// Polls `done` until it holds, failing after a generous deadline (a
/// liveness bound, not a timing assertion).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; check its state too.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn netns_ping_through_router_ipv4_and_ipv6() {
    let Some(lab) = lab_or_skip!("ping") else {
        return;
    };
    let (client, router, server) = client_router_server(&lab);
    client.ping(S4).unwrap();
    client.ping(S6).unwrap();
    server.ping(C4).unwrap();
    server.ping(C6).unwrap();
    // The router really routes: without forwarding the same pings fail.
    router.sysctl("net.ipv4.ip_forward", "0").unwrap();
    let err = client.ping_wait(S4, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, Error::Command { .. }), "{err}");
    assert!(err.to_string().contains("ping"), "{err}");
}

#[test]
fn netns_tcp_echo_through_router() {
    let Some(lab) = lab_or_skip!("tcpecho") else {
        return;
    };
    let (client, _router, server) = client_router_server(&lab);
    for dst in [IpAddr::V4(S4), IpAddr::V6(S6)] {
        let listener = server
            .run_in(|| TcpListener::bind((dst, 7000)))
            .unwrap()
            .unwrap();
        let echo = std::thread::spawn(move || -> std::io::Result<IpAddr> {
            let (mut conn, peer) = listener.accept()?;
            let mut buf = Vec::new();
            conn.read_to_end(&mut buf)?;
            conn.write_all(&buf)?;
            Ok(peer.ip())
        });
        let reply = client
            .run_in(|| -> std::io::Result<Vec<u8>> {
                let mut conn = TcpStream::connect((dst, 7000))?;
                conn.write_all(b"hello through the router")?;
                conn.shutdown(std::net::Shutdown::Write)?;
                let mut buf = Vec::new();
                conn.read_to_end(&mut buf)?;
                Ok(buf)
            })
            .unwrap()
            .unwrap();
        assert_eq!(reply, b"hello through the router");
        let peer = echo.join().unwrap().unwrap();
        let want: IpAddr = if dst.is_ipv4() { C4.into() } else { C6.into() };
        assert_eq!(peer, want, "the server saw the client's own address");
    }
}

#[test]
fn netns_tcp_echo_server_as_spawned_process() {
    let Some(lab) = lab_or_skip!("spawnecho") else {
        return;
    };
    let (client, _router, server) = client_router_server(&lab);
    // A background server thread in the server's namespace: the listener is
    // bound inside the namespace by the thread itself.
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = server
        .spawn_thread(move || -> std::io::Result<()> {
            let listener = TcpListener::bind((S4, 7001))?;
            tx.send(()).unwrap();
            let (mut conn, _) = listener.accept()?;
            let mut buf = [0; 4];
            conn.read_exact(&mut buf)?;
            conn.write_all(&buf)
        })
        .unwrap();
    rx.recv().unwrap();
    let got = client
        .run_in(|| -> std::io::Result<[u8; 4]> {
            let mut conn = TcpStream::connect((S4, 7001))?;
            conn.write_all(b"ping")?;
            let mut buf = [0; 4];
            conn.read_exact(&mut buf)?;
            Ok(buf)
        })
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"ping");
    handle.join().unwrap().unwrap();
}

#[test]
fn netns_sysctls_are_per_namespace() {
    let Some(lab) = lab_or_skip!("sysctl") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    a.sysctl("net.ipv4.ip_forward", "1").unwrap();
    assert_eq!(a.sysctl_get("net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(b.sysctl_get("net.ipv4.ip_forward").unwrap(), "0");
    assert_eq!(
        a.sysctl_get("net.ipv6.conf.default.accept_dad").unwrap(),
        "0"
    );
    lab.link(&a, "x.1", &b, "y").unwrap();
    a.sysctl("net/ipv4/conf/x.1/rp_filter", "2").unwrap();
    assert_eq!(a.sysctl_get("net/ipv4/conf/x.1/rp_filter").unwrap(), "2");
    let err = a.sysctl("net.ipv4.no_such_key", "1").unwrap_err();
    assert!(matches!(err, Error::Sysctl { .. }), "{err}");
}

#[test]
fn netns_teardown_on_panic() {
    let Some(lab) = lab_or_skip!("panic") else {
        return;
    };
    let prefix = lab.prefix().to_owned();
    let mut sleeper_pid = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = lab;
        let a = lab.add_host("a").unwrap();
        let b = lab.add_host("b").unwrap();
        lab.link(&a, "eth0", &b, "eth0").unwrap();
        // Not held by a guard: only the lab's teardown can kill it.
        let sleeper = Process::spawn({
            let mut cmd = a.command("sleep");
            cmd.arg("600");
            cmd
        })
        .unwrap();
        sleeper_pid = sleeper.pid();
        std::mem::forget(sleeper);
        assert_eq!(with_prefix(&prefix).len(), 2);
        panic!("test body panics inside the lab");
    }));
    assert!(result.is_err());
    assert_eq!(with_prefix(&prefix), Vec::<String>::new());
    assert!(!Path::new("/run/netns").join(format!("{prefix}-a")).exists());
    eventually("the sleeper to die", || !pid_alive(sleeper_pid));
}

#[test]
fn netns_process_guard_kills_group_on_drop() {
    let Some(lab) = lab_or_skip!("proc") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    // A shell with a background child: both in the guard's process group.
    let guard = a
        .spawn("sh", ["-c", "sleep 600 & sleep 600; wait"])
        .unwrap();
    let in_ns = |host: &Host| -> Vec<u32> {
        let out = std::process::Command::new(lb_testing_netns::find_program("ip").unwrap())
            .args(["netns", "pids", host.netns()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    eventually("sh and both sleeps to start", || in_ns(&a).len() == 3);
    let pids = in_ns(&a);
    assert!(pids.contains(&guard.pid()));
    drop(guard);
    for pid in pids {
        eventually("the group to die", || !pid_alive(pid));
    }
    assert_eq!(in_ns(&a), Vec::<u32>::new());
}

#[test]
fn netns_process_terminate_and_wait() {
    let Some(lab) = lab_or_skip!("term") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let mut p = a.spawn("sleep", ["600"]).unwrap();
    assert_eq!(p.try_wait().unwrap(), None);
    p.terminate().unwrap();
    let status = p.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    // Once reaped, signalling is a no-op rather than hitting a reused pid.
    p.terminate().unwrap();
}

#[test]
fn netns_leftover_of_dead_process_is_removed() {
    // A namespace of a live process (this one) must survive the cleanup.
    let Some(live) = lab_or_skip!("leftover") else {
        return;
    };
    let keep = live.add_host("keep").unwrap();
    // The "killed test process" is a child we control: while it lives no
    // parallel test may clean its namespace, once reaped its pid is dead.
    let mut owner = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let name = format!("lbt-{}-0-left-h", owner.id());
    let ip = lb_testing_netns::find_program("ip").unwrap();
    let status = std::process::Command::new(&ip)
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(status.success());
    let mut sleeper = Process::spawn({
        let mut cmd = std::process::Command::new(&ip);
        cmd.args(["netns", "exec", &name, "sleep", "600"]);
        cmd
    })
    .unwrap();
    eventually("the sleeper to enter the namespace", || {
        std::process::Command::new(&ip)
            .args(["netns", "pids", &name])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    });

    // Its scratch directory is a leftover too.
    let scratch = std::env::temp_dir()
        .join("lb-testing-netns")
        .join(format!("lbt-{}-0-left", owner.id()));
    std::fs::create_dir_all(&scratch).unwrap();
    owner.kill().unwrap();
    owner.wait().unwrap();

    let _lab = Lab::new("cleaner").unwrap();

    assert!(
        !netns_list().contains(&name),
        "leftover {name} still listed"
    );
    assert!(
        netns_list().contains(keep.netns()),
        "live lab namespace was removed"
    );
    assert!(
        !scratch.exists(),
        "leftover scratch dir {} remains",
        scratch.display()
    );
    eventually("the leftover's process to die", || {
        sleeper.try_wait().unwrap().is_some()
    });
    let status = sleeper.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "leftover process was SIGKILLed"
    );
}

#[test]
fn netns_bridge_with_three_hosts() {
    let Some(lab) = lab_or_skip!("bridge") else {
        return;
    };
    let switch = lab.add_switch("sw").unwrap();
    let hosts: Vec<Host> = ["a", "b", "c"]
        .iter()
        .map(|n| lab.add_host(n).unwrap())
        .collect();
    let mut ports = Vec::new();
    for (i, host) in (1u8..).zip(&hosts) {
        ports.push(lab.attach(&switch, host, "eth0").unwrap());
        host.add_addr("eth0", Ipv4Addr::new(192, 168, 9, i), 24)
            .unwrap();
        host.add_addr(
            "eth0",
            Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, i.into()),
            64,
        )
        .unwrap();
    }
    for (i, host) in (1u8..).zip(&hosts) {
        for j in (1u8..=3).filter(|&j| j != i) {
            host.ping(Ipv4Addr::new(192, 168, 9, j)).unwrap();
            host.ping(Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, j.into()))
                .unwrap();
        }
    }
    // Every host has its own MAC, as the others learnt it.
    let macs: BTreeSet<[u8; 6]> = hosts.iter().map(|h| h.mac("eth0").unwrap()).collect();
    assert_eq!(macs.len(), 3);
    let neigh = hosts[0].ip(["neigh", "show", "192.168.9.3"]).unwrap();
    let c_mac = hosts[2].mac("eth0").unwrap();
    let c_text = c_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(neigh.contains(&c_text), "{neigh} lacks {c_text}");
    // Unplug c: a can no longer reach it; plug it back: it can again.
    switch.host().set_link(&ports[2], false).unwrap();
    assert!(
        hosts[0]
            .ping_wait(Ipv4Addr::new(192, 168, 9, 3), Duration::from_secs(1))
            .is_err()
    );
    switch.host().set_link(&ports[2], true).unwrap();
    hosts[0].ping(Ipv4Addr::new(192, 168, 9, 3)).unwrap();
    assert!(hosts[2].ifindex("eth0").unwrap() > 1);
}

#[test]
fn netns_bridge_inside_a_host() {
    let Some(lab) = lab_or_skip!("hostbr") else {
        return;
    };
    // The reference LVS topology: the client bridges two links on br0.
    let client = lab.add_host("client").unwrap();
    let director = lab.add_host("director").unwrap();
    let real = lab.add_host("real").unwrap();
    let br = client.add_bridge("br0").unwrap();
    lab.attach(&br, &director, "eth0").unwrap();
    lab.attach(&br, &real, "eth0").unwrap();
    client
        .add_addr("br0", Ipv4Addr::new(10, 0, 0, 2), 24)
        .unwrap();
    director
        .add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24)
        .unwrap();
    real.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 3), 24)
        .unwrap();
    client.ping(Ipv4Addr::new(10, 0, 0, 1)).unwrap();
    director.ping(Ipv4Addr::new(10, 0, 0, 3)).unwrap();
}

#[test]
fn netns_loopback_vip_recipe() {
    let Some(lab) = lab_or_skip!("vip") else {
        return;
    };
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let client = lab.add_host("client").unwrap();
    let real = lab.add_host("real").unwrap();
    lab.link(&client, "eth0", &real, "eth0").unwrap();
    client
        .add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24)
        .unwrap();
    real.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 2), 24)
        .unwrap();
    real.add_loopback_vip(vip).unwrap();
    assert!(real.has_addr("lo", vip).unwrap());
    assert!(!real.has_addr("eth0", vip).unwrap());
    assert_eq!(
        real.sysctl_get("net.ipv4.conf.all.arp_ignore").unwrap(),
        "1"
    );
    assert_eq!(
        real.sysctl_get("net.ipv4.conf.all.arp_announce").unwrap(),
        "2"
    );
    // The VIP is inside the link's /24, so the client ARPs for it: the real
    // server must stay silent (arp_ignore=1), so the ping fails...
    assert!(client.ping_wait(vip, Duration::from_secs(1)).is_err());
    // ...but a packet sent to the real server's MAC (what a DR director does)
    // is accepted and answered from the VIP.
    client
        .ip(["route", "add", "10.0.0.100/32", "via", "10.0.0.2"])
        .unwrap();
    client.ping(vip).unwrap();
    // The v6 variant lands on lo as a /128.
    let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    real.add_loopback_vip(vip6).unwrap();
    assert!(real.has_addr("lo", vip6).unwrap());
}

#[test]
fn netns_errors_name_the_command_and_stderr() {
    let Some(lab) = lab_or_skip!("errors") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    assert!(matches!(lab.add_host("a"), Err(Error::DuplicateHost(_))));
    assert!(matches!(
        lab.add_host("Bad"),
        Err(Error::InvalidName { .. })
    ));
    let err = a.set_link("nosuchif", true).unwrap_err();
    match &err {
        Error::Command {
            command, stderr, ..
        } => {
            assert!(
                command.ends_with(&format!("-n {} link set dev nosuchif up", a.netns())),
                "{command}"
            );
            assert!(stderr.contains("nosuchif"), "{stderr}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        a.mac("toolongname12345"),
        Err(Error::InvalidName { .. })
    ));
    assert_eq!(a.mac("lo").unwrap(), [0; 6]);
    let missing = a.run("no-such-program-lb", ["x"]).unwrap_err();
    assert!(missing.is_environment(), "{missing}");
    let failing = a.run("sh", ["-c", "echo bad >&2; exit 4"]).unwrap_err();
    assert!(failing.to_string().contains("bad"), "{failing}");
    // A panic inside run_in reaches the caller.
    let caught = std::panic::catch_unwind(|| a.run_in(|| panic!("inside")));
    assert!(caught.is_err());
    // An explicit teardown reports success and leaves nothing behind.
    let prefix = lab.prefix().to_owned();
    lab.teardown().unwrap();
    assert_eq!(with_prefix(&prefix), Vec::<String>::new());
    assert!(matches!(
        a.ping(Ipv4Addr::LOCALHOST),
        Err(Error::Command { .. } | Error::Setns { .. })
    ));
}

#[test]
fn netns_scratch_dir_lives_with_the_lab() {
    let Some(lab) = lab_or_skip!("scratch") else {
        return;
    };
    let dir = lab.dir().unwrap().to_owned();
    assert!(dir.ends_with(lab.prefix()));
    std::fs::write(dir.join("keepalived.conf"), "vrrp_instance x {}\n").unwrap();
    assert_eq!(lab.dir().unwrap(), dir, "stable across calls");
    drop(lab);
    assert!(!dir.exists());
}

#[test]
fn netns_offloads_can_be_disabled() {
    let Some(lab) = lab_or_skip!("offload") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let b = lab.add_host("b").unwrap();
    lab.link(&a, "eth0", &b, "eth0").unwrap();
    assert!(
        a.offloads_enabled("eth0").unwrap(),
        "veth starts with offloads on"
    );
    a.disable_offloads("eth0").unwrap();
    b.disable_offloads("eth0").unwrap();
    assert!(!a.offloads_enabled("eth0").unwrap());
    assert!(!b.offloads_enabled("eth0").unwrap());
    let err = a.disable_offloads("nosuchif").unwrap_err();
    assert!(matches!(err, Error::Ethtool { .. }), "{err}");
    // Traffic still flows, in bulk.
    a.add_addr("eth0", Ipv4Addr::new(10, 9, 0, 1), 24).unwrap();
    b.add_addr("eth0", Ipv4Addr::new(10, 9, 0, 2), 24).unwrap();
    let listener = b
        .run_in(|| TcpListener::bind((Ipv4Addr::new(10, 9, 0, 2), 7002)))
        .unwrap()
        .unwrap();
    let sink = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf)?;
        Ok(buf.len())
    });
    a.run_in(|| -> std::io::Result<()> {
        let mut conn = TcpStream::connect((Ipv4Addr::new(10, 9, 0, 2), 7002))?;
        conn.write_all(&vec![0x5a; 1 << 20])
    })
    .unwrap()
    .unwrap();
    assert_eq!(sink.join().unwrap().unwrap(), 1 << 20);
}

#[test]
fn netns_keepalived_runs_in_a_host() {
    // The pattern the VRRP interop tests use: config and pid files in the
    // lab's scratch dir (keepalived's default pid file is global), the daemon
    // in the foreground under a Process guard.
    let Some(lab) = lab_or_skip!("keepalive", "keepalived") else {
        return;
    };
    let r1 = lab.add_host("r1").unwrap();
    let peer = lab.add_host("peer").unwrap();
    lab.link(&r1, "eth0", &peer, "eth0").unwrap();
    r1.add_addr("eth0", Ipv4Addr::new(10, 1, 0, 1), 24).unwrap();
    peer.add_addr("eth0", Ipv4Addr::new(10, 1, 0, 2), 24)
        .unwrap();
    let vip = Ipv4Addr::new(10, 1, 0, 100);
    let dir = lab.dir().unwrap();
    let conf = dir.join("r1.conf");
    std::fs::write(
        &conf,
        format!(
            "global_defs {{ router_id r1 }}\n\
             vrrp_instance v1 {{\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
             priority 150\n  advert_int 1\n  virtual_ipaddress {{ {vip}/24 }}\n}}\n"
        ),
    )
    .unwrap();
    let mut cmd = r1.command("keepalived");
    cmd.args(["--dont-fork", "--log-console", "-f"]).arg(&conf);
    for (flag, file) in [
        ("-p", "r1.pid"),
        ("-r", "r1.vrrp.pid"),
        ("-c", "r1.check.pid"),
    ] {
        cmd.arg(flag).arg(dir.join(file));
    }
    let mut keepalived = Process::spawn(cmd).unwrap();
    eventually("keepalived to take the VIP", || {
        assert_eq!(keepalived.try_wait().unwrap(), None, "keepalived exited");
        r1.has_addr("eth0", vip).unwrap()
    });
    peer.ping(vip).unwrap();
    // A graceful stop removes the VIP.
    keepalived.terminate().unwrap();
    assert!(keepalived.wait().unwrap().success());
    assert!(!r1.has_addr("eth0", vip).unwrap());
}
