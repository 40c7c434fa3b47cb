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
