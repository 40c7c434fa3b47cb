//! `lbadm` against the real `ipvsadm` and the real kernel, inside the test
//! VM: byte-identical listings and saves for many random tables, `-R`
//! interchangeability, and the batching figure.

use std::{fmt::Write as _, process::Command, time::Duration};

const LBADM: &str = env!("CARGO_BIN_EXE_lbadm");

fn sh(script: &str) -> (bool, String, String) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn must(script: &str) -> String {
    let (ok, out, err) = sh(script);
    assert!(ok, "{script}\nstdout: {out}\nstderr: {err}");
    out
}

/// xorshift64*: deterministic tables without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// A random table as ipvsadm restore text (with options `-S` does not
/// save, such as thresholds).
fn random_rules(rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut used_keys = std::collections::BTreeSet::new();
    for _ in 0..1 + rng.below(10) {
        let v6 = rng.chance(30);
        let fwmark = rng.chance(20);
        let proto = rng.pick(&["-t", "-u", "--sctp-service"]);
        let port = if rng.chance(15) {
            0
        } else {
            1 + rng.below(65535)
        };
        let (key, svc_port) = if fwmark {
            (
                format!("-f {}{}", 1 + rng.below(5000), if v6 { " -6" } else { "" }),
                0,
            )
        } else if v6 {
            (
                format!("{proto} [2001:db8::{:x}]:{port}", rng.below(0xffff)),
                port,
            )
        } else {
            let a = rng.pick(&["10", "100", "130", "200", "223", "1"]);
            (
                format!(
                    "{proto} {a}.{}.{}.{}:{port}",
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                ),
                port,
            )
        };
        if !used_keys.insert(key.clone()) {
            continue;
        }
        let sched = rng.pick(&[
            "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
        ]);
        let mut line = format!("-A {key} -s {sched}");
        let persistent = (port == 0 && !fwmark) || rng.chance(40);
        if persistent {
            if rng.chance(70) {
                let _ = write!(line, " -p {}", 1 + rng.below(86400 * 31));
            } else {
                line.push_str(" -p");
            }
            if rng.chance(50) {
                if v6 {
                    let _ = write!(line, " -M {}", 1 + rng.below(128));
                } else {
                    let bits = rng.below(33) as u32;
                    let mask = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    };
                    let _ = write!(line, " -M {}", std::net::Ipv4Addr::from(mask));
                }
            }
            if proto == "-u" && !fwmark && rng.chance(20) {
                line.push_str(" --pe sip");
            }
        }
        if (fwmark || proto == "-u") && rng.chance(25) {
            line.push_str(" -o");
        }
        if rng.chance(40) {
            let flags: &[&str] = match sched {
                "sh" => &["sh-fallback", "sh-port", "sh-fallback,sh-port,flag-3"],
                "mh" => &["mh-fallback", "mh-port", "mh-port,mh-fallback,flag-3"],
                _ => &[
                    "flag-1",
                    "flag-2",
                    "flag-3",
                    "flag-1,flag-3",
                    "flag-2,flag-1",
                ],
            };
            let _ = write!(line, " -b {}", rng.pick(flags));
        }
        out.push_str(&line);
        out.push('\n');
        let mut used_dests = std::collections::BTreeSet::new();
        for _ in 0..rng.below(6) {
            let fwd = rng.pick(&["-g", "-m", "-i"]);
            let dv6 = if fwd == "-i" { rng.chance(30) } else { v6 };
            let dport = if fwd == "-m" || fwmark {
                rng.below(65536)
            } else {
                svc_port
            };
            let addr = if dv6 {
                format!("[fd00::{:x}]", 1 + rng.below(0xfffe))
            } else {
                let a = rng.pick(&["10", "200"]);
                format!(
                    "{a}.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(253)
                )
            };
            if !used_dests.insert((addr.clone(), dport)) {
                continue;
            }
            let wmax = if rng.chance(10) { 1 << 31 } else { 1000 };
            let mut d = format!("-a {key} -r {addr}:{dport} {fwd} -w {}", rng.below(wmax));
            if rng.chance(30) {
                let u = rng.below(100_000);
                let _ = write!(d, " -x {u} -y {}", rng.below(u + 1));
            }
            if fwd == "-i" {
                match rng.below(4) {
                    0 => d.push_str(" --tun-type ipip"),
                    1 => {
                        let _ = write!(
                            d,
                            " --tun-type gue --tun-port {} {}",
                            1 + rng.below(65535),
                            rng.pick(&["", "--tun-nocsum", "--tun-csum", "--tun-remcsum"])
                        );
                    }
                    2 => {
                        let _ = write!(
                            d,
                            " --tun-type gre {}",
                            rng.pick(&["", "--tun-nocsum", "--tun-csum"])
                        );
                    }
                    _ => {}
                }
            }
            out.push_str(d.trim_end());
            out.push('\n');
        }
    }
    out
}

const NET_SETUP: &str = "modprobe ip_vs && ip addr add 200.0.0.254/8 dev dummy0 && ip -6 addr add fd00::254/64 dev dummy0 nodad";

/// The listing variants compared between lbadm and ipvsadm.
const LISTINGS: &[&str] = &[
    "-L -n",
    "-L -n --stats",
    "-L -n --rate",
    "-L -n --thresholds",
    "-L -n --persistent-conn",
    "-L -n --tun-info",
    "-L -n --stats --exact",
    "-l -n --nosort",
    "-S -n",
];

#[test]
fn vm_lbadm_matches_ipvsadm_on_random_tables() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(900)), {
        must(NET_SETUP);
        let dir = std::env::temp_dir().join("lbadm-vm");
        std::fs::create_dir_all(&dir).unwrap();
        let rules = dir.join("rules");
        let saved = dir.join("saved");
        let (rules, saved) = (rules.display(), saved.display());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let tables = std::env::var("LB_IPVS_VM_TABLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        for i in 0..tables {
            let text = random_rules(&mut rng);
            std::fs::write(dir.join("rules"), &text).unwrap();
            // The real ipvsadm loads the table; both tools list it.
            let (ok, _, err) = sh(&format!("ipvsadm -C && ipvsadm -R < {rules}"));
            assert!(
                ok && err.is_empty(),
                "table {i}: ipvsadm -R failed: {err}\n{text}"
            );
            for l in LISTINGS {
                let theirs = must(&format!("ipvsadm {l}"));
                let ours = must(&format!("{LBADM} {l}"));
                assert_eq!(ours, theirs, "table {i}: `{l}` differs; rules:\n{text}");
            }
            // One service (GET_SERVICE doit), with and without --stats.
            let first = text.lines().next().unwrap();
            let key = first
                .trim_start_matches("-A ")
                .split(" -s ")
                .next()
                .unwrap();
            for l in [format!("-L -n {key}"), format!("-L -n --stats {key}")] {
                assert_eq!(
                    must(&format!("{LBADM} {l}")),
                    must(&format!("ipvsadm {l}")),
                    "table {i}: `{l}`"
                );
            }
            // Our parser of the same restore text builds the same table
            // (thresholds included).
            let by_ipvsadm = must("ipvsadm -S -n; ipvsadm -L -n --thresholds");
            must(&format!("ipvsadm -C && {LBADM} -R < {rules}"));
            assert_eq!(
                must("ipvsadm -S -n; ipvsadm -L -n --thresholds"),
                by_ipvsadm,
                "table {i}: lbadm -R of the rules; rules:\n{text}"
            );
            // lbadm -R of ipvsadm's saved output reproduces the table, and
            // ipvsadm -R of lbadm's saved output too.
            must(&format!("ipvsadm -S -n > {saved}"));
            let want = std::fs::read_to_string(dir.join("saved")).unwrap();
            must(&format!("ipvsadm -C && {LBADM} -R < {saved}"));
            assert_eq!(
                must("ipvsadm -S -n"),
                want,
                "table {i}: lbadm -R of ipvsadm -S"
            );
            must(&format!(
                "{LBADM} -S -n > {saved} && ipvsadm -C && ipvsadm -R < {saved}"
            ));
            assert_eq!(
                must("ipvsadm -S -n"),
                want,
                "table {i}: ipvsadm -R of lbadm -S"
            );
            // The library's parser reads ipvsadm -S output to the same table
            // the kernel holds (emit order can differ from ipvsadm's: its
            // comparator is not transitive, so the order depends on the
            // kernel's dump order, which only `lbadm -S` sees).
            let table = lb_ipvs::save::parse_table(&want).unwrap();
            let again = lb_ipvs::save::parse_table(&lb_ipvs::save::emit(&table)).unwrap();
            assert_eq!(again.canonical(), table.canonical(), "table {i}");
        }
        // Connection listings (a local connection attempt makes entries).
        must(
            "ipvsadm -C && ipvsadm -A -t 10.0.0.1:80 -p 60 && ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
        );
        let _ = std::net::TcpStream::connect_timeout(
            &"10.0.0.1:80".parse().unwrap(),
            Duration::from_millis(200),
        );
        for l in ["-L -c -n", "-L -c -n --persistent-conn"] {
            let strip = |s: String| -> Vec<String> {
                // Expiry seconds may tick between the two reads.
                s.lines()
                    .map(|l| {
                        l.split_whitespace()
                            .filter(|w| !(w.len() == 5 && w.as_bytes()[2] == b':'))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            };
            assert_eq!(
                strip(must(&format!("{LBADM} {l}"))),
                strip(must(&format!("ipvsadm {l}"))),
                "{l}"
            );
        }
        assert!(must("ipvsadm -L -c -n").lines().count() >= 3);
        // Timeouts and daemons listings, and errors on stderr.
        must("ipvsadm --set 901 121 301");
        assert_eq!(
            must(&format!("{LBADM} -L --timeout")),
            must("ipvsadm -L --timeout")
        );
        must(&format!(
            "{LBADM} --start-daemon backup --mcast-interface dummy0 --syncid 9"
        ));
        must("ipvsadm --start-daemon master --mcast-interface dummy0 --syncid 3 --mcast-port 9999");
        assert_eq!(
            must(&format!("{LBADM} -L --daemon")),
            must("ipvsadm -L --daemon")
        );
        must(&format!(
            "{LBADM} --stop-daemon master && {LBADM} --stop-daemon backup"
        ));
        assert_eq!(must("ipvsadm -L --daemon"), "");
        must("ipvsadm -C && ipvsadm -A -t 10.0.0.1:80");
        let (_, _, e1) = sh("ipvsadm -A -t 10.0.0.1:80");
        let (_, _, e2) = sh(&format!("{LBADM} -A -t 10.0.0.1:80"));
        assert_eq!(e2, e1);
        let (_, _, e1) = sh("ipvsadm -d -t 10.0.0.1:80 -r 10.0.0.9");
        let (_, _, e2) = sh(&format!("{LBADM} -d -t 10.0.0.1:80 -r 10.0.0.9"));
        assert_eq!(e2, e1);
        let (_, _, e1) = sh("ipvsadm -a -t 10.0.0.1:80");
        let (_, _, e2) = sh(&format!("{LBADM} -a -t 10.0.0.1:80"));
        assert_eq!(e2, e1);
        // Without CAP_NET_ADMIN: a clear permission error naming the operation.
        let (ok, _, e) = sh(&format!(
            "setpriv --reuid 65534 --regid 65534 --clear-groups {LBADM} -A -t 10.0.0.2:80"
        ));
        assert!(!ok);
        assert_eq!(
            e,
            "permission denied: add service -t 10.0.0.2:80 needs CAP_NET_ADMIN in the network \
             namespace (run as root)\n"
        );
    });
}

/// Times `ipvsadm -R` and `lbadm -R` of the same N services × 5
/// destinations in the same VM run (N = `LB_IPVS_BENCH_SERVICES`, default
/// 1000) and checks both build the same table. Prints the figures; no
/// timing is asserted.
#[test]
fn vm_lbadm_restore_batching_vs_ipvsadm() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(1800)), {
        must(NET_SETUP);
        let n: u32 = std::env::var("LB_IPVS_BENCH_SERVICES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let mut text = String::new();
        for s in 0..n {
            let vip = format!("10.{}.{}.1:80", 100 + s / 256 % 100, s % 256);
            let _ = writeln!(text, "-A -t {vip} -s wlc");
            for d in 0..5u32 {
                let _ = writeln!(
                    text,
                    "-a -t {vip} -r 10.{}.{}.{}:80 -g -w 1",
                    s / 256 % 50,
                    s % 256,
                    10 + d
                );
            }
        }
        let file = std::env::temp_dir().join("bench-rules");
        std::fs::write(&file, &text).unwrap();
        let f = file.display();
        let time = |cmd: &str| -> f64 {
            must("ipvsadm -C");
            let t = std::time::Instant::now();
            must(cmd);
            t.elapsed().as_secs_f64()
        };
        let t_ipvsadm = time(&format!("ipvsadm -R < {f}"));
        let want = must("ipvsadm -S -n");
        let t_lbadm = time(&format!("{LBADM} -R < {f}"));
        assert_eq!(must("ipvsadm -S -n"), want);
        assert_eq!(want.lines().count() as u32, n * 6);
        // The library alone, one request per datagram vs batched: what
        // batching itself buys, without process start-up or parsing.
        let ops: Vec<lb_ipvs::Op> = lb_ipvs::save::parse_commands(&text)
            .unwrap()
            .into_iter()
            .map(|(_, c)| match c {
                lb_ipvs::cmdline::Command::Apply(op) => op,
                other => panic!("{other:?}"),
            })
            .collect();
        let lib = |batch: usize| -> f64 {
            must("ipvsadm -C");
            let mut c = lb_ipvs::Client::new().unwrap();
            c.set_batch_limit(batch);
            let t = std::time::Instant::now();
            c.apply(&ops).unwrap();
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(must("ipvsadm -S -n"), want);
            dt
        };
        let t_one = lib(1);
        let t_batched = lib(256);
        println!(
            "BATCHING services={n} dests={} ipvsadm_R={t_ipvsadm:.3}s lbadm_R={t_lbadm:.3}s ratio={:.1}x \
             library_batch1={t_one:.3}s library_batch256={t_batched:.3}s batch_ratio={:.1}x",
            n * 5,
            t_ipvsadm / t_lbadm,
            t_one / t_batched
        );
    });
}
