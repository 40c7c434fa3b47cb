//! fwmark services with the kernel IPVS dataplane, inside the kernel VM:
//! the seed `configs/fwmark-dr.conf` in [`fwmark_site`]'s namespaces. The
//! director installs its `fwmark_rules` as an nftables table that marks
//! the packets and the `FWM 100` service that takes them; real traffic from
//! clients in four /24s is forwarded by the kernel with persistence across
//! ports; a rule change on SIGHUP replaces the table; SIGTERM removes the
//! service and the table.

mod fwmark_site;

use std::process::Stdio;
use std::time::Duration;

use fwmark_site::{BIN, Site, wait_for};
use lb_testing_netns::{Host, Lab, Process};

/// Runs `program ARGS` in `h`; its stdout.
fn out(h: &Host, program: &str, args: &[&str]) -> String {
    let o = h.run(program, args.iter().copied()).unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn vm_director_fwmark_ipvs() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(400)), {
        lb_testing_vm::sh("modprobe ip_vs && modprobe nf_tables");
        let l = Lab::with_programs("vmfwm", &["nft", "ipvsadm"]).unwrap();
        let site = Site::build(&l);
        let d = l.dir().unwrap().to_owned();
        let cfg = d.join("fwmark-dr.conf");
        let text = site.seed_with_our_digest();
        std::fs::write(&cfg, &text).unwrap();
        let log = d.join("d.log");
        let mut cmd = site.dir.command(BIN);
        cmd.arg("run")
            .arg("-f")
            .arg(&cfg)
            .args(["--dataplane", "ipvs", "--runtime-dir"])
            .arg(d.join("run"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut p = Process::spawn(cmd).unwrap();
        let ipvs = || out(&site.dir, "ipvsadm", &["-Ln"]);
        let ruleset = || out(&site.dir, "nft", &["list", "ruleset"]);
        let show = || {
            format!(
                "{}\n{}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                ipvs(),
                ruleset()
            )
        };
        wait_for(
            "the FWM 100 service and its marking table",
            60,
            show,
            || {
                let l = ipvs();
                l.contains("FWM  100 wlc persistent 300 mask 255.255.255.0")
                    && l.contains("192.168.1.11:80")
                    && l.contains("192.168.1.12:80")
                    && ruleset().contains("table inet lb_director_mark")
            },
        );
        let listing = ipvs();
        let rules = ruleset();
        eprintln!("ipvsadm -Ln:\n{listing}\nnft list ruleset:\n{rules}");
        assert!(
            listing
                .lines()
                .any(|x| x.contains("192.168.1.11:80") && x.contains("Route")),
            "{listing}"
        );
        assert!(rules.contains("hook prerouting priority mangle"), "{rules}");
        assert!(
            rules.contains(
                "ip daddr 192.168.1.100 tcp dport { 80, 443 } meta mark set 0x00000064 accept"
            ),
            "{rules}"
        );

        // Real traffic, forwarded by the kernel: each client's :80 and :443
        // on one server, both servers used across the /24s.
        let by_client = site.servers_per_client(show);
        eprintln!(
            "server per client (:80 and :443 alike): {:?} -> {by_client:?}",
            site.clients
        );
        assert_eq!(by_client[0], by_client[1], "one /24, one server");
        assert!(
            by_client.iter().any(|s| s == "rs1") && by_client.iter().any(|s| s == "rs2"),
            "{by_client:?}"
        );
        let conns = out(&site.dir, "ipvsadm", &["-Lnc"]);
        eprintln!("ipvsadm -Lnc:\n{conns}");
        assert!(conns.contains("192.168.1.100:443"), "{conns}");
        assert!(conns.contains("10.1.2.10:"), "{conns}");
        // One persistence template per client /24, protocol IP (fwmark
        // templates span protocols and ports), virtual "address" the mark.
        let templates: Vec<&str> = conns.lines().filter(|x| x.starts_with("IP ")).collect();
        assert_eq!(templates.len(), 4, "{conns}");
        assert!(
            templates.iter().all(|t| t.contains("0.0.0.100:0")),
            "{conns}"
        );

        // A rule change: the table is replaced, the service stays.
        std::fs::write(
            &cfg,
            text.replace("dport 80,443 mark", "dport 80,443,8080 mark"),
        )
        .unwrap();
        p.signal(libc::SIGHUP).unwrap();
        wait_for("the new rule", 30, show, || {
            ruleset().contains("tcp dport { 80, 443, 8080 } meta mark set 0x00000064 accept")
        });
        assert_eq!(ruleset().matches("table inet lb_director_mark").count(), 1);
        assert!(ipvs().contains("FWM  100 wlc persistent 300"), "{}", show());
        eprintln!(
            "ipvsadm -Ln --stats:\n{}",
            out(&site.dir, "ipvsadm", &["-Ln", "--stats"])
        );

        // SIGTERM: the service and the table are gone.
        p.terminate().unwrap();
        assert!(p.wait().unwrap().success(), "{}", show());
        let listing = ipvs();
        assert!(!listing.contains("FWM  100"), "{listing}");
        let rules = ruleset();
        assert!(!rules.contains("lb_director"), "{rules}");
    });
}

/// An IPv6 fwmark service (its family from `ip_family inet6`, or from its
/// IPv6 real servers): the director creates it as IPv6 (`FWM  N IPv6`,
/// persistence granularity /128 by default) with its IPv6 real servers,
/// and an IPv4 fwmark service next to it stays IPv4.
#[test]
fn vm_director_fwmark_ipv6_ipvs() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(300)), {
        lb_testing_vm::sh("modprobe ip_vs && modprobe nf_tables");
        let l = Lab::with_programs("vmfwm6", &["nft", "ipvsadm"]).unwrap();
        let dir = l.add_host("dir").unwrap();
        let d = l.dir().unwrap().to_owned();
        let cfg = d.join("fwm6.conf");
        std::fs::write(
            &cfg,
            "fwmark_rules {
    tcp daddr 2001:db8::100 dport 80,443 mark 6
    tcp daddr 192.0.2.100 dport 80 mark 4
}
virtual_server fwmark 6 {
    lb_algo rr
    lb_kind DR
    persistence_timeout 60
    real_server 2001:db8::11 80 {
        weight 2
    }
    real_server 2001:db8::12 80 {
        weight 3
    }
}
virtual_server fwmark 7 {
    ip_family inet6
    lb_kind DR
    sorry_server 2001:db8::99 80
}
virtual_server fwmark 4 {
    lb_kind DR
    real_server 192.0.2.11 80 {
    }
}
",
        )
        .unwrap();
        let log = d.join("d.log");
        let mut cmd = dir.command(BIN);
        cmd.arg("run")
            .arg("-f")
            .arg(&cfg)
            .args(["--dataplane", "ipvs", "--runtime-dir"])
            .arg(d.join("run"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut p = Process::spawn(cmd).unwrap();
        let ipvs = || out(&dir, "ipvsadm", &["-Ln"]);
        let ruleset = || out(&dir, "nft", &["list", "ruleset"]);
        let show = || {
            format!(
                "{}\n{}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                ipvs(),
                ruleset()
            )
        };
        wait_for("the IPv6 fwmark services", 60, show, || {
            let l = ipvs();
            l.contains("FWM  6 IPv6 rr persistent 60")
                && l.contains("[2001:db8::12]:80")
                && l.contains("FWM  7 IPv6 wlc")
                && l.contains("FWM  4 wlc")
        });
        let listing = ipvs();
        eprintln!("ipvsadm -Ln:\n{listing}");
        let weight = |dest: &str| {
            listing.lines().find_map(|x| {
                let f: Vec<&str> = x.split_whitespace().collect();
                (f.len() >= 4 && f[0] == "->" && f[1] == dest).then(|| f[2..4].join(" "))
            })
        };
        assert_eq!(weight("[2001:db8::11]:80").as_deref(), Some("Route 2"));
        assert_eq!(weight("[2001:db8::12]:80").as_deref(), Some("Route 3"));
        assert_eq!(weight("192.0.2.11:80").as_deref(), Some("Route 1"));
        // No real server: quorum lost, the sorry server serves.
        assert_eq!(weight("[2001:db8::99]:80").as_deref(), Some("Route 1"));
        // The default granularity of an IPv6 persistent service is /128:
        // ipvsadm shows no mask then (it prints one only when narrower).
        let svc6 = listing.lines().find(|x| x.starts_with("FWM  6 ")).unwrap();
        assert!(!svc6.contains("mask"), "{listing}");
        let rules = ruleset();
        eprintln!("nft list ruleset:\n{rules}");
        assert!(
            rules
                .contains("ip6 daddr 2001:db8::100 tcp dport { 80, 443 } meta mark set 0x00000006"),
            "{rules}"
        );

        p.terminate().unwrap();
        assert!(p.wait().unwrap().success(), "{}", show());
        let listing = ipvs();
        assert!(!listing.contains("FWM"), "{listing}");
    });
}
