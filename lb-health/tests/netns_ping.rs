//! PING_CHECK over an unprivileged ICMP datagram socket, in a fresh network
//! namespace whose `net.ipv4.ping_group_range` admits us (the host's may
//! not, and we must not change the host's). The test re-executes itself
//! under `unshare --net`; needs root and util-linux `unshare`.

use std::process::Command;

use lb_health::FailureClass;
use lb_health::probe::{PingSpec, Probe, ProbeSpec};

const INNER: &str = "LB_HEALTH_NETNS_INNER";

#[test]
fn netns_ping_datagram_socket_and_unreachable() {
    if std::env::var_os(INNER).is_some() {
        inner();
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let unshare = Command::new("unshare").arg("--version").output().is_ok();
    if !root || !unshare {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs root and unshare"
        );
        eprintln!("skipping: needs root and unshare (root={root}, unshare={unshare})");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 2147483647' \
             && exec \"$0\" --exact netns_ping_datagram_socket_and_unreachable --nocapture",
        ])
        .arg(exe)
        .env(INNER, "1")
        .status()
        .unwrap();
    assert!(status.success(), "inner run failed: {status}");
}

fn ping(addr: &str) -> Result<Option<u32>, lb_health::Failure> {
    let mut spec = PingSpec::new(addr.parse().unwrap());
    spec.timeout = std::time::Duration::from_secs(2);
    let probe = Probe::new(&ProbeSpec::Ping(spec)).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(probe.run())
}

fn inner() {
    use socket2::{Domain, Protocol, Socket, Type};
    // The probe tries the datagram socket first; make sure it is the one
    // available here, so that this exercises that path.
    assert!(Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).is_ok());
    assert_eq!(ping("127.0.0.1"), Ok(None));
    assert!(Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::ICMPV6)).is_ok());
    assert_eq!(ping("::1"), Ok(None));
    // The namespace has no route beyond loopback: unreachable at once.
    let err = ping("10.1.2.3").unwrap_err();
    assert_eq!(err.class, FailureClass::L4Unreachable, "{err}");
}
