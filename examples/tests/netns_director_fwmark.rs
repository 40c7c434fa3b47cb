//! fwmark services end to end in network namespaces, with the userspace
//! dataplane (this host has no IPVS): the seed `configs/fwmark-dr.conf`,
//! its `fwmark_rules` classified by the forwarder. The topology is
//! [`fwmark_site`]'s.

mod fwmark_site;

use std::process::Stdio;

use fwmark_site::{BIN, Site, seed, wait_for};
use lb_examples::director::daemon;
use lb_testing_netns::{Process, lab_or_skip};

/// Health of `server` (`"192.168.1.11:80"`) in `director status --json`.
fn up(status: &str, server: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_str(status).ok()?;
    v["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["server"] == server)?["up"]
        .as_bool()
}

/// The seed `fwmark-dr.conf`: mark 100 on VIP:80 and VIP:443 from its
/// `fwmark_rules`, DR, wlc, persistence 300 s per /24, HTTP_GET checks with
/// digests, a sorry server.
///
/// 1. As shipped: the seed's digest is of a page nobody has, so both servers
///    fail their checks and the sorry server answers, on both ports.
/// 2. With the digest of the servers' page (made with `genhash`, as an
///    operator would; the only change) and SIGHUP: both servers up; a
///    client's :80 and :443 land on one server (one mark, one persistence
///    template), a neighbour in its /24 follows it, clients from other /24s
///    reach both servers; a port the rule does not mark is not balanced.
/// 3. rs1's page changes: its digest fails, it is drained, everyone is on
///    rs2.
/// 4. SIGTERM: exit 0, the director's nftables tables gone.
#[test]
fn netns_director_fwmark_dr_seed() {
    let Some(l) = lab_or_skip!("dirfwm", "nft") else {
        return;
    };
    let site = Site::build(&l);

    // 1. The seed as shipped.
    let d = l.dir().unwrap().to_owned();
    let run_dir = d.join("run");
    let cfg = d.join("fwmark-dr.conf");
    std::fs::copy(seed(), &cfg).unwrap();
    let log = d.join("d.log");
    let mut cmd = site.dir.command(BIN);
    cmd.arg("run")
        .arg("-f")
        .arg(&cfg)
        .args([
            "--dataplane",
            "userspace",
            "--interface",
            "eth0",
            "--runtime-dir",
        ])
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut p = Process::spawn(cmd).unwrap();
    let status = || daemon::status(&run_dir, true).unwrap_or_default();
    let show = || {
        format!(
            "{}\nstatus: {}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            status()
        )
    };
    // delay_loop 10, three retries 2 s apart: a failing server is down
    // within about 17 s of its first check.
    wait_for("both servers to fail the seed's digest", 60, show, || {
        let s = status();
        up(&s, "192.168.1.11:80") == Some(false) && up(&s, "192.168.1.12:80") == Some(false)
    });
    let s = status();
    assert!(s.contains("\"service\":\"FWM  100\""), "{s}");
    assert!(s.contains("\"quorum_lost\":true"), "{s}");
    // The installed classifier rules, as the configuration writes them.
    assert!(
        s.contains("\"fwmark_rules\":[\"tcp daddr 192.168.1.100 dport 80,443 mark 100\"]"),
        "{s}"
    );
    let text = daemon::status(&run_dir, false).unwrap();
    assert!(
        text.contains("Fwmark rules\n  tcp daddr 192.168.1.100 dport 80,443 mark 100\n"),
        "{text}"
    );
    assert!(s.contains("L7Digest"), "{s}");
    let first = site.clients[0];
    wait_for("the sorry server on :80", 10, show, || {
        site.ask(first, 80).as_deref() == Some("sorry")
    });
    assert_eq!(site.ask(first, 443).as_deref(), Some("sorry"), "{}", show());
    let table = site
        .dir
        .run("nft", ["list", "table", "inet", "lb_director_mark"])
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains("ip daddr 192.168.1.100 tcp dport { 80, 443 } drop"),
        "{table}"
    );

    // 2. The digest of the page the servers serve.
    std::fs::write(&cfg, site.seed_with_our_digest()).unwrap();
    p.signal(libc::SIGHUP).unwrap();
    wait_for("both servers up with the right digest", 60, show, || {
        let s = status();
        up(&s, "192.168.1.11:80") == Some(true) && up(&s, "192.168.1.12:80") == Some(true)
    });
    wait_for("the sorry server to leave", 10, show, || {
        !status().contains("\"quorum_lost\":true")
    });
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
    // Port 8080 is not marked: the forwarder leaves it alone and the
    // director's kernel refuses it.
    assert_eq!(site.ask(first, 8080), None);
    let text = daemon::status(&run_dir, false).unwrap();
    assert!(text.contains("FWM  100 wlc persistent 300"), "{text}");

    // 3. rs1's page changes: its digest fails and it is drained.
    *site.pages[0].lock().unwrap() = "<html><body>maintenance</body></html>\n".to_owned();
    wait_for("rs1 to fail its digest", 60, show, || {
        up(&status(), "192.168.1.11:80") == Some(false)
    });
    // The dataplane applies the new plan within its next control tick.
    let on_rs1 = site.clients[by_client.iter().position(|s| s == "rs1").unwrap()];
    wait_for("rs1's clients to move", 5, show, || {
        site.ask(on_rs1, 80).as_deref() == Some("rs2")
    });
    for &c in &site.clients {
        for port in [80, 443] {
            assert_eq!(
                site.ask(c, port).as_deref(),
                Some("rs2"),
                "{c}:{port}\n{}",
                show()
            );
        }
    }

    // 4. SIGTERM: clean exit, the nftables tables removed.
    p.terminate().unwrap();
    assert!(p.wait().unwrap().success(), "{}", show());
    for table in ["lb_director_mark", "lb_director"] {
        assert!(
            site.dir
                .run("nft", ["list", "table", "inet", table])
                .is_err(),
            "{table} left behind"
        );
    }
    let logtext = std::fs::read_to_string(&log).unwrap();
    assert!(logtext.contains("fwmark rules installed"), "{logtext}");
}

/// The marking rules follow mastership: dir1, master alone, holds its
/// `inet lb_director_mark` table; dir2 with a higher priority takes over
/// and dir1 (now backup) removes its table while dir2 installs one; when
/// dir2 stops, dir1 is master again and installs it again.
#[test]
fn netns_director_fwmark_rules_only_while_master() {
    let Some(l) = lab_or_skip!("dirfwv", "nft") else {
        return;
    };
    let sw = l.add_switch("sw").unwrap();
    let hosts: Vec<_> = (1..=2)
        .map(|i| l.add_host(&format!("dir{i}")).unwrap())
        .collect();
    for (h, a) in hosts.iter().zip([11u8, 12]) {
        let p = l.attach(&sw, h, "eth0").unwrap();
        sw.host().disable_offloads(&p).unwrap();
        h.add_addr("eth0", std::net::Ipv4Addr::new(10, 0, 0, a), 24)
            .unwrap();
    }
    let conf = |prio: u8| {
        format!(
            "fwmark_rules {{
    tcp daddr 10.0.0.100 dport 80,443 mark 100
}}
vrrp_instance VI_M {{
    state BACKUP
    interface eth0
    virtual_router_id 83
    priority {prio}
    advert_int 0.1
    version 3
    virtual_ipaddress {{ 10.0.0.100/24 }}
}}
virtual_server fwmark 100 {{
    lb_kind DR
    real_server 10.0.0.21 80 {{
        weight 1
    }}
}}
"
        )
    };
    let d = l.dir().unwrap().to_owned();
    let start = |i: usize, prio: u8| {
        let cfg = d.join(format!("dir{i}.conf"));
        std::fs::write(&cfg, conf(prio)).unwrap();
        let mut cmd = hosts[i].command(BIN);
        cmd.arg("run")
            .arg("-f")
            .arg(&cfg)
            .args(["--dataplane", "userspace", "--runtime-dir"])
            .arg(d.join(format!("run{i}")))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join(format!("dir{i}.log"))).unwrap());
        Process::spawn(cmd).unwrap()
    };
    let has_table = |i: usize| {
        hosts[i]
            .run("nft", ["list", "table", "inet", "lb_director_mark"])
            .is_ok()
    };
    let show = || {
        (0..2)
            .map(|i| std::fs::read_to_string(d.join(format!("dir{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let mut p1 = start(0, 100);
    wait_for("dir1, master, to install its marks", 15, show, || {
        has_table(0)
    });
    let mut p2 = start(1, 200);
    wait_for("dir2 to take over the marks", 15, show, || {
        has_table(1) && !has_table(0)
    });
    p2.terminate().unwrap();
    assert!(p2.wait().unwrap().success(), "{}", show());
    assert!(!has_table(1), "{}", show());
    wait_for("dir1 to install its marks again", 15, show, || has_table(0));
    p1.terminate().unwrap();
    assert!(p1.wait().unwrap().success(), "{}", show());
    assert!(!has_table(0), "{}", show());
}
