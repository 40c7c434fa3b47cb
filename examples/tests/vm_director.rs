//! The director with the kernel IPVS dataplane, inside the kernel VM: the
//! configuration becomes the IPVS table (persistence, weights, methods),
//! SIGHUP applies a changed weight in place, SIGTERM removes exactly the
//! director's services (another tool's service stays).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_director");

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn conf(weight: u32) -> String {
    format!(
        "virtual_server 10.0.0.100 80 {{
    lb_algo rr
    lb_kind NAT
    persistence_timeout 60
    real_server 10.1.0.1 80 {{
        weight {weight}
    }}
    real_server 10.1.0.2 8080 {{
        weight 3
    }}
}}
virtual_server 10.0.0.101 53 {{
    protocol UDP
    lb_algo wlc
    lb_kind DR
    real_server 10.1.0.3 53 {{
        weight 1
    }}
}}
"
    )
}

/// The weight `ipvsadm -Ln` lists for `dest`.
fn weight_of(listing: &str, dest: &str) -> Option<u32> {
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == "->" && f[1] == dest).then(|| f[3].parse().ok())?
    })
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", sh("ipvsadm -Ln"));
}

#[test]
fn vm_director_ipvs_dataplane() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(300)), {
        sh("modprobe ip_vs && ipvsadm -A -t 10.9.9.9:80 -s rr");
        let dir = std::env::temp_dir().join("director-vm");
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("d.conf");
        std::fs::write(&cfg, conf(2)).unwrap();
        let run_dir = dir.join("run");
        let mut child = Command::new(BIN)
            .arg("run")
            .arg("-f")
            .arg(&cfg)
            .args(["--dataplane", "ipvs", "--runtime-dir"])
            .arg(&run_dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the director's services", || {
            weight_of(&sh("ipvsadm -Ln"), "10.1.0.1:80") == Some(2)
        });
        let l = sh("ipvsadm -Ln");
        assert!(l.contains("TCP  10.0.0.100:80 rr persistent 60"), "{l}");
        assert!(l.contains("UDP  10.0.0.101:53 wlc"), "{l}");
        assert_eq!(weight_of(&l, "10.1.0.2:8080"), Some(3), "{l}");
        assert!(
            l.lines()
                .any(|x| x.contains("10.1.0.2:8080") && x.contains("Masq")),
            "{l}"
        );
        assert!(
            l.lines()
                .any(|x| x.contains("10.1.0.3:53") && x.contains("Route")),
            "{l}"
        );
        // The table can be programmed before the status socket is bound.
        wait_for("the status socket", || {
            lb_examples::director::daemon::status(&run_dir, false).is_ok()
        });
        let status = lb_examples::director::daemon::status(&run_dir, false).unwrap();
        assert!(status.contains("kernel IPVS"), "{status}");

        std::fs::write(&cfg, conf(9)).unwrap();
        sh(&format!("kill -HUP {}", child.id()));
        wait_for("weight 9 after SIGHUP", || {
            weight_of(&sh("ipvsadm -Ln"), "10.1.0.1:80") == Some(9)
        });

        sh(&format!("kill -TERM {}", child.id()));
        assert!(child.wait().unwrap().success());
        let l = sh("ipvsadm -Ln");
        assert!(
            !l.contains("10.0.0.100") && !l.contains("10.0.0.101"),
            "{l}"
        );
        assert!(
            l.contains("TCP  10.9.9.9:80 rr"),
            "another tool's service was removed: {l}"
        );
    });
}

/// A director on `cfg` with the IPVS dataplane, run from `dir` (log in
/// `dir/d.log`), for the sync-daemon tests.
struct SyncDirector {
    child: std::process::Child,
    log: PathBuf,
}

impl SyncDirector {
    fn start(dir: &Path, cfg: &Path) -> Self {
        let log = dir.join("d.log");
        let child = Command::new(BIN)
            .arg("run")
            .arg("-f")
            .arg(cfg)
            .args(["--dataplane", "ipvs", "--runtime-dir"])
            .arg(dir.join("run"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// Waits up to 30 s for `f`; on time-out shows the log and the daemons.
    fn until(&self, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default(),
                daemons()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, sig: &str) {
        sh(&format!("kill -{sig} {}", self.child.id()));
    }

    /// SIGTERM: exit 0 and no sync daemon left.
    fn stop(mut self) {
        self.signal("TERM");
        assert!(self.child.wait().unwrap().success());
        let d = daemons();
        assert!(
            !d.contains("sync daemon"),
            "{d}\n{}",
            std::fs::read_to_string(&self.log).unwrap()
        );
    }
}

/// The kernel's sync daemons, as `ipvsadm -L --daemon` lists them.
fn daemons() -> String {
    sh("ipvsadm -L --daemon")
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `lvs_sync_daemon_interface`: the director runs the kernel's connection
/// sync daemon as keepalived, a backup daemon while its instance is not
/// master (here: FAULT, its tracked link down), a master daemon once it is
/// (the link up), sync id the VRID; SIGTERM stops it.
#[test]
fn vm_director_sync_daemon() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(300)), {
        sh("modprobe ip_vs \
            && ip link add sync0 type dummy && ip link set sync0 multicast on up \
            && ip addr add 10.5.0.1/24 dev sync0 \
            && ip link add trk0 type dummy");
        let dir = scratch("director-vm-sync");
        let cfg = dir.join("d.conf");
        std::fs::write(
            &cfg,
            "vrrp_instance VI_S {
    state BACKUP
    interface sync0
    virtual_router_id 42
    priority 100
    advert_int 1
    lvs_sync_daemon_interface sync0
    track_interface {
        trk0
    }
    virtual_ipaddress { 10.5.0.100/24 }
}
virtual_server 10.5.0.100 80 {
    lb_kind DR
    real_server 10.5.0.11 80 {
    }
}
",
        )
        .unwrap();
        let d = SyncDirector::start(&dir, &cfg);
        d.until("the backup sync daemon while FAULT", || {
            daemons().contains("backup sync daemon (mcast=sync0, syncid=42,")
        });
        let list = daemons();
        eprintln!("FAULT: ipvsadm -L --daemon:\n{list}");
        assert!(!list.contains("master sync daemon"), "{list}");
        assert!(!sh("ipvsadm -Ln").contains("10.5.0.100"));

        sh("ip link set trk0 up");
        d.until("the master sync daemon once MASTER", || {
            let list = daemons();
            list.contains("master sync daemon (mcast=sync0, syncid=42,")
                && !list.contains("backup sync daemon")
        });
        eprintln!("MASTER: ipvsadm -L --daemon:\n{}", daemons());
        d.until("the service once MASTER", || {
            sh("ipvsadm -Ln").contains("TCP  10.5.0.100:80 wlc")
        });
        d.stop();
    });
}

/// `global_defs { lvs_sync_daemon IFACE inst NAME id N port P ttl T group G }`
/// (keepalived's current form): the daemon follows the named instance and
/// carries the options; a SIGHUP that changes the port restarts it with the
/// new one; SIGTERM stops it.
#[test]
fn vm_director_global_sync_daemon() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(300)), {
        sh("modprobe ip_vs \
            && ip link add sync0 type dummy && ip link set sync0 multicast on up \
            && ip addr add 10.6.0.1/24 dev sync0");
        let dir = scratch("director-vm-gsync");
        let cfg = dir.join("d.conf");
        let conf = |port: u16| {
            format!(
                "global_defs {{
    lvs_sync_daemon sync0 inst VI_G id 77 port {port} ttl 3 group 239.1.2.3
}}
vrrp_instance VI_G {{
    state MASTER
    interface sync0
    virtual_router_id 43
    priority 100
    advert_int 1
    virtual_ipaddress {{ 10.6.0.100/24 }}
}}
virtual_server 10.6.0.100 80 {{
    lb_kind DR
    real_server 10.6.0.11 80 {{
    }}
}}
"
            )
        };
        std::fs::write(&cfg, conf(8850)).unwrap();
        let d = SyncDirector::start(&dir, &cfg);
        let has = |port: &str| {
            daemons()
                .lines()
                .find(|l| l.starts_with("master sync daemon"))
                .is_some_and(|l| {
                    l.contains("mcast=sync0")
                        && l.contains("syncid=77")
                        && l.contains(port)
                        && l.contains("ttl=3")
                        && l.contains("group=239.1.2.3")
                })
        };
        d.until("the master sync daemon with its options", || {
            has("port=8850")
        });
        eprintln!("ipvsadm -L --daemon:\n{}", daemons());
        assert!(!daemons().contains("backup sync daemon"), "{}", daemons());

        std::fs::write(&cfg, conf(8851)).unwrap();
        d.signal("HUP");
        d.until("the daemon restarted on the new port", || has("port=8851"));
        eprintln!("after SIGHUP:\n{}", daemons());
        d.stop();
    });
}
