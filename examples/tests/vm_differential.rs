//! Differential test: `lbsim` (the `lb_sched::director` new-connection path)
//! against the real kernel IPVS, connection by connection.
//!
//! Inside the kernel VM, for cases generated from a fixed seed: program a
//! random service with `ipvsadm -R`, open connections with raw packets from
//! many client addresses (TCP SYN, plus a FIN for connections that should
//! count inactive; a UDP datagram; `SO_MARK` for fwmark services), read the
//! kernel's pick for each from `/proc/net/ip_vs_conn`, and check that `lbsim`,
//! given the same rule text and client lines, picks the same real server and
//! port for every connection, in order, and ends with the same per-destination
//! active / inactive / persistent counters and list order. Cases run in 1-3
//! phases: later phases change weights and thresholds, delete and add
//! destinations, then open more connections.
//!
//! Locally generated packets pass IPVS's `LOCAL_OUT` hook, so a raw
//! `IP_HDRINCL` socket can be any client. Each case uses its own virtual
//! addresses, so connections and destinations of earlier cases never
//! interfere; every case finishes within seconds, far inside the 60 s
//! SYN_RECV timeout, so no connection expires while it is compared.
//!
//! Reproduce a failure: the report prints the seed, the case's rule text and
//! client lines, which `lbsim` takes as they are. `LB_DIFF_SEED` and
//! `LB_DIFF_CASES` (cases per scheduler variant) override the defaults.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use lb_examples::lbsim::{Sim, parse_clients, sched_key};
use lb_ipvs::{Op, cmdline::Command};
use lb_sched::{RandomSource, SplitMix64};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const SEED: u64 = 0x6c62_7369_6d5f_6466;
const CASES_PER_VARIANT: usize = 6;

/// A scheduler and its `-b` flags.
type Variant = (&'static str, &'static str);

const LEAST: [Variant; 10] = [
    ("rr", ""),
    ("wrr", ""),
    ("lc", ""),
    ("wlc", ""),
    ("sed", ""),
    ("nq", ""),
    ("fo", ""),
    ("ovf", ""),
    ("lblc", ""),
    ("lblcr", ""),
];

const HASHING: [Variant; 9] = [
    ("dh", ""),
    ("sh", ""),
    ("sh", "sh-fallback"),
    ("sh", "sh-port"),
    ("sh", "sh-fallback,sh-port"),
    ("mh", ""),
    ("mh", "mh-fallback"),
    ("mh", "mh-port"),
    ("mh", "mh-fallback,mh-port"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
}

/// One client line, and how to replay it as packets.
#[derive(Debug, Clone)]
struct Client {
    proto: Proto,
    src: SocketAddr,
    dst: SocketAddr,
    mark: u32,
    inactive: bool,
}

impl Client {
    fn line(&self) -> String {
        let mut s = format!(
            "{} {} {}",
            if self.proto == Proto::Tcp {
                "tcp"
            } else {
                "udp"
            },
            self.src,
            self.dst
        );
        if self.mark != 0 {
            write!(s, " fwmark={}", self.mark).unwrap();
        }
        if self.inactive {
            s.push_str(" inactive");
        }
        s
    }
}

#[derive(Debug, Clone)]
struct Phase {
    rules: String,
    clients: Vec<Client>,
}

#[derive(Debug, Clone)]
struct Case {
    label: String,
    /// The `-A` line's service, as ipvsadm names it (`-t 10.100.0.1:80`).
    service: String,
    phases: Vec<Phase>,
}

struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0.next_u32() % n
    }
    fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u32) as usize]
    }
}

fn vip(v6: bool, case: usize, k: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            1,
            case as u16,
            0,
            0,
            0,
            0,
            1 + k as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            10,
            100 + (case / 256) as u8,
            (case % 256) as u8,
            1 + k as u8,
        ))
    }
}

fn rip(v6: bool, case: usize, d: usize) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            2,
            case as u16,
            0,
            0,
            0,
            0,
            1 + d as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            10,
            150 + (case / 256) as u8,
            (case % 256) as u8,
            1 + d as u8,
        ))
    }
}

/// Clients cluster in /24s inside /16s (IPv6: /64s inside /48s), so that
/// persistence netmasks group some of them.
fn client_addr(v6: bool, r: &mut Rng) -> IpAddr {
    let (a, b, h) = (r.below(2), r.below(3), r.below(4));
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1 + a as u16,
            b as u16,
            0,
            0,
            0,
            1 + h as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(172, 16 + a as u8, b as u8, 1 + h as u8))
    }
}

fn sock(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

struct DestSpec {
    addr: IpAddr,
    port: u16,
    fwd: &'static str,
    listed: bool,
}

fn dest_opts(r: &mut Rng, d: &DestSpec) -> String {
    let w = if r.chance(1, 6) { 0 } else { 1 + r.below(5) };
    let mut s = format!(" {} -w {w}", d.fwd);
    if r.chance(1, 4) {
        let u = 1 + r.below(6);
        let l = r.below(u + 1);
        write!(s, " -x {u} -y {l}").unwrap();
    }
    s
}

fn gen_case(r: &mut Rng, id: usize, (sched, flags): Variant) -> Case {
    let v6 = id % 4 == 3;
    // dh, lblc and lblcr key on the destination address: give them fwmark
    // services reached at several addresses.
    let keyed_on_dst = matches!(sched, "dh" | "lblc" | "lblcr");
    let fwmark = keyed_on_dst || r.chance(1, 4);
    let persistent = r.chance(1, 3);
    let port_zero = persistent && !fwmark && r.chance(1, 3);
    let udp = !fwmark && r.chance(1, 5);
    let vport: u16 = if port_zero { 0 } else { r.pick(&[80, 443, 53]) };
    let mark = 1000 + id as u32;
    let proto_opt = if udp { "-u" } else { "-t" };
    let service = if fwmark {
        format!("-f {mark}{}", if v6 { " -6" } else { "" })
    } else {
        format!("{proto_opt} {}", sock(vip(v6, id, 0), vport))
    };
    let mut a = format!("-A {service} -s {sched}");
    if !flags.is_empty() {
        write!(a, " -b {flags}").unwrap();
    }
    if persistent {
        write!(a, " -p {}", 60 + r.below(600)).unwrap();
        let mask = if v6 {
            r.pick(&["", "64", "48"])
        } else {
            r.pick(&["", "255.255.255.0", "255.255.0.0"])
        };
        if !mask.is_empty() {
            write!(a, " -M {mask}").unwrap();
        }
    }
    let mut rules = format!("{a}\n");
    // ipvsadm gives -g/-i destinations of a non-fwmark service the service
    // port (0 for a port-zero service); fwmark services have port 0.
    let dest_port = |r: &mut Rng, fwd: &str| {
        if fwmark || fwd == "-m" {
            r.pick(&[vport, 8080])
        } else {
            vport
        }
    };
    let n = 1 + r.below(6) as usize;
    let mut dests: Vec<DestSpec> = (0..n)
        .map(|d| {
            let fwd = r.pick(&["-g", "-m"]);
            DestSpec {
                addr: rip(v6, id, d),
                port: dest_port(r, fwd),
                fwd,
                listed: true,
            }
        })
        .collect();
    for d in &dests {
        let opts = dest_opts(r, d);
        writeln!(rules, "-a {service} -r {}{opts}", sock(d.addr, d.port)).unwrap();
    }
    let mut used_ports = std::collections::HashSet::new();
    let mut clients = |r: &mut Rng| -> Vec<Client> {
        let count = 15 + r.below(40) as usize;
        (0..count)
            .map(|_| {
                let src_ip = client_addr(v6, r);
                let mut sport = 1024 + r.below(64000) as u16;
                while !used_ports.insert(sport) {
                    sport = 1024 + r.below(64000) as u16;
                }
                // Rarely: FTP data source port (never scheduled), or a
                // port without a service.
                if r.chance(1, 60) {
                    sport = 20;
                }
                let (proto, dst, m) = if fwmark {
                    let p = if r.chance(1, 4) {
                        Proto::Udp
                    } else {
                        Proto::Tcp
                    };
                    let dst =
                        SocketAddr::new(vip(v6, id, r.below(3) as usize), r.pick(&[80, 443, 8443]));
                    (p, dst, if r.chance(1, 30) { 0 } else { mark })
                } else {
                    let p = if udp { Proto::Udp } else { Proto::Tcp };
                    let port = if port_zero {
                        r.pick(&[22, 80, 443, 8443])
                    } else if r.chance(1, 40) {
                        9999
                    } else {
                        vport
                    };
                    (p, SocketAddr::new(vip(v6, id, 0), port), 0)
                };
                Client {
                    proto,
                    src: SocketAddr::new(src_ip, sport),
                    dst,
                    mark: m,
                    inactive: proto == Proto::Tcp && r.chance(1, 4),
                }
            })
            .collect()
    };
    let mut phases = vec![Phase {
        rules,
        clients: clients(r),
    }];
    let extra = r.below(3);
    for _ in 0..extra {
        let mut rules = String::new();
        for _ in 0..1 + r.below(3) {
            let i = r.below(dests.len() as u32) as usize;
            let d = &dests[i];
            let target = sock(d.addr, d.port);
            match r.below(5) {
                // Weight / threshold change of a listed destination.
                0..=2 if d.listed => {
                    let opts = dest_opts(r, d);
                    writeln!(rules, "-e {service} -r {target}{opts}").unwrap();
                }
                3 if d.listed && dests.iter().filter(|d| d.listed).count() > 1 => {
                    writeln!(rules, "-d {service} -r {target}").unwrap();
                    dests[i].listed = false;
                }
                _ if !d.listed => {
                    // Back from the trash, with its counters.
                    let opts = dest_opts(r, d);
                    writeln!(rules, "-a {service} -r {target}{opts}").unwrap();
                    dests[i].listed = true;
                }
                _ if dests.len() < 8 => {
                    let fwd = r.pick(&["-g", "-m"]);
                    let port = dest_port(r, fwd);
                    let nd = DestSpec {
                        addr: rip(v6, id, dests.len()),
                        port,
                        fwd,
                        listed: true,
                    };
                    let opts = dest_opts(r, &nd);
                    writeln!(rules, "-a {service} -r {}{opts}", sock(nd.addr, nd.port)).unwrap();
                    dests.push(nd);
                }
                _ => {}
            }
        }
        phases.push(Phase {
            rules,
            clients: clients(r),
        });
    }
    Case {
        label: format!(
            "case {id}: {sched}{}{}",
            if flags.is_empty() {
                String::new()
            } else {
                format!(" -b {flags}")
            },
            if v6 { " (IPv6)" } else { "" }
        ),
        service,
        phases,
    }
}

// ---- packets -------------------------------------------------------------

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An IPv4 or IPv6 packet carrying `l4` (TCP or UDP, checksum filled in).
fn packet(src: SocketAddr, dst: SocketAddr, proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    let csum_at = if proto == 6 { 16 } else { 6 };
    let len = l4.len();
    let (mut pkt, pseudo) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
            h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let mut p = Vec::new();
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
            (h, p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(len as u16).to_be_bytes());
            h.extend_from_slice(&[proto, 64]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let mut p = Vec::new();
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            (h, p)
        }
        _ => panic!("mixed families"),
    };
    let c = fold(sum16(&l4, sum16(&pseudo, 0)));
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    pkt.extend_from_slice(&l4);
    pkt
}

fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8, seq: u32) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&src.port().to_be_bytes());
    t.extend_from_slice(&dst.port().to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    packet(src, dst, 6, t)
}

fn udp(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut u = Vec::with_capacity(12);
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(&[0, 0, b'l', b'b', b's', b'm']);
    packet(src, dst, 17, u)
}

struct Wire {
    v4: Socket,
    v6: Socket,
}

impl Wire {
    fn new() -> Self {
        // IPPROTO_RAW sockets imply IP_HDRINCL / IPV6_HDRINCL.
        let raw = Some(Protocol::from(255));
        Self {
            v4: Socket::new(Domain::IPV4, Type::RAW, raw).expect("raw IPv4 socket"),
            v6: Socket::new(Domain::IPV6, Type::RAW, raw).expect("raw IPv6 socket"),
        }
    }

    fn send(&self, c: &Client, pkt: &[u8]) {
        let (s, to) = match c.dst.ip() {
            IpAddr::V4(a) => (&self.v4, SockAddr::from(SocketAddrV4::new(a, 0))),
            IpAddr::V6(a) => (&self.v6, SockAddr::from(SocketAddrV6::new(a, 0, 0, 0))),
        };
        s.set_mark(c.mark).expect("SO_MARK");
        // EPERM: a netfilter hook dropped the packet, as IPVS does when it
        // finds no destination (`ip_vs_leave`); the comparison sees that.
        match s.send_to(pkt, &to) {
            Ok(n) => assert_eq!(n, pkt.len()),
            Err(e) if e.raw_os_error() == Some(1) => {}
            Err(e) => panic!("raw send of `{}`: {e}", c.line()),
        }
    }

    /// Opens `c` in the kernel: a SYN (TCP: SYN_RECV, counted active) and,
    /// for an inactive one, a FIN (TIME_WAIT, inactive); or one datagram.
    fn open(&self, c: &Client) {
        match c.proto {
            Proto::Tcp => {
                self.send(c, &tcp(c.src, c.dst, 0x02, 1000));
                if c.inactive {
                    self.send(c, &tcp(c.src, c.dst, 0x11, 1001));
                }
            }
            Proto::Udp => self.send(c, &udp(c.src, c.dst)),
        }
    }
}

// ---- the comparison ------------------------------------------------------

type ConnKey = (String, IpAddr, u16, IpAddr, u16);

/// The kernel's connections by `(protocol, client, virtual)`.
///
/// `/proc/net/ip_vs_conn` is a seq_file walked by position over a hash table
/// that changes while it is read (connections of earlier cases expire), so
/// one read can skip an entry. Reads are merged until one adds nothing.
fn kernel_conns() -> HashMap<ConnKey, SocketAddr> {
    let mut all = HashMap::new();
    for _ in 0..6 {
        let before = all.len();
        for c in lb_ipvs::conn::read().expect("read /proc/net/ip_vs_conn") {
            if c.client.1 != 0 {
                all.insert(
                    (c.protocol, c.client.0, c.client.1, c.virt.0, c.virt.1),
                    SocketAddr::new(c.dest.0, c.dest.1),
                );
            }
        }
        if all.len() == before && before > 0 {
            break;
        }
    }
    all
}

fn restore(rules: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("ipvsadm")
        .arg("-R")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run ipvsadm -R");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "ipvsadm -R failed on:\n{rules}");
}

#[derive(Default)]
struct Tally {
    cases: usize,
    conns: usize,
    nones: usize,
    mismatches: usize,
}

/// Kernel destinations (list order, counters) against the director's.
fn compare_counters(
    client: &mut lb_ipvs::Client,
    sim: &Sim,
    key: &lb_ipvs::ServiceKey,
) -> Result<(), String> {
    let kernel: Vec<(SocketAddr, (u32, u32, u32))> = client
        .dests(key)
        .map_err(|e| format!("list destinations: {e}"))?
        .into_iter()
        .map(|d| {
            (
                SocketAddr::new(d.dest.addr, d.dest.port),
                (d.active_conns, d.inact_conns, d.persist_conns),
            )
        })
        .collect();
    let id = sim
        .director()
        .find_service(&sched_key(key))
        .ok_or("service missing in lbsim")?;
    let svc = sim.director().service(id).unwrap();
    let model: Vec<(SocketAddr, (u32, u32, u32))> = svc
        .dests()
        .map(|(_, d)| {
            (
                d.addr(),
                (d.active_conns(), d.inactive_conns(), d.persistent_conns()),
            )
        })
        .collect();
    if kernel == model {
        Ok(())
    } else {
        Err(format!(
            "destinations (addr, (active, inactive, persistent)) in list order differ:\n  kernel {kernel:?}\n  lbsim  {model:?}"
        ))
    }
}

fn run_case(case: &Case, wire: &Wire, nl: &mut lb_ipvs::Client, t: &mut Tally) -> Vec<String> {
    let mut sim = Sim::new();
    let mut failures = Vec::new();
    let mut key = None;
    let mut replay = String::new();
    for (pi, phase) in case.phases.iter().enumerate() {
        write!(replay, "--- phase {pi} rules ---\n{}", phase.rules).unwrap();
        replay.push_str(&format!("--- phase {pi} clients ---\n"));
        restore(&phase.rules);
        if let Err(e) = sim.apply_rules("rules", &phase.rules) {
            failures.push(format!("lbsim refused rules the kernel took: {e}"));
            break;
        }
        if key.is_none() {
            let cmds = lb_ipvs::save::parse_commands(&phase.rules).unwrap();
            if let Some((_, Command::Apply(Op::AddService(s)))) = cmds.first() {
                key = Some(s.key);
            }
        }
        let text: String = phase.clients.iter().map(|c| c.line() + "\n").collect();
        let parsed = parse_clients("clients", &text).expect("generated client lines parse");
        let mut answers = Vec::new();
        for (c, pc) in phase.clients.iter().zip(&parsed) {
            wire.open(c);
            answers.push(sim.connect(pc).expect("lbsim connect").dest);
            replay.push_str(&pc.text);
            replay.push('\n');
        }
        let kconns = kernel_conns();
        for (c, want) in phase.clients.iter().zip(&answers) {
            let proto = if c.proto == Proto::Tcp { "TCP" } else { "UDP" };
            let k = (
                proto.to_owned(),
                c.src.ip(),
                c.src.port(),
                c.dst.ip(),
                c.dst.port(),
            );
            let got = kconns.get(&k).copied();
            t.conns += 1;
            if got.is_none() {
                t.nones += 1;
            }
            if got != *want {
                t.mismatches += 1;
                failures.push(format!(
                    "phase {pi}: `{}`: kernel {} lbsim {}",
                    c.line(),
                    got.map_or_else(|| "none".into(), |a| a.to_string()),
                    want.map_or_else(|| "none".into(), |a| a.to_string()),
                ));
            }
        }
        if let Some(k) = &key
            && let Err(e) = compare_counters(nl, &sim, k)
        {
            failures.push(format!("after phase {pi}: {e}"));
        }
    }
    t.cases += 1;
    if failures.is_empty() {
        return failures;
    }
    let mut report = format!(
        "{} ({}) — {} problem(s):\n",
        case.label,
        case.service,
        failures.len()
    );
    for f in failures.iter().take(8) {
        writeln!(report, "  {f}").unwrap();
    }
    report.push_str(&replay);
    vec![report]
}

fn differential(variants: &[Variant], salt: u64) {
    let seed = std::env::var("LB_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let per = std::env::var("LB_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES_PER_VARIANT);
    lb_testing_vm::sh(
        "modprobe ip_vs && ip -6 addr add fd00::fe/64 dev dummy0 nodad && \
         ip -6 route add fd00::/16 dev dummy0",
    );
    let wire = Wire::new();
    let mut nl = lb_ipvs::Client::new().expect("IPVS netlink");
    let mut r = Rng(SplitMix64::new(seed ^ salt));
    let mut reports = Vec::new();
    let mut summary = String::new();
    let mut total = Tally::default();
    let mut id = 0;
    for &v in variants {
        let mut t = Tally::default();
        for _ in 0..per {
            let case = gen_case(&mut r, id, v);
            id += 1;
            reports.extend(run_case(&case, &wire, &mut nl, &mut t));
        }
        writeln!(
            summary,
            "  {:<5} {:<20} cases {:>3}  connections {:>5}  none {:>4}  mismatches {}",
            v.0, v.1, t.cases, t.conns, t.nones, t.mismatches
        )
        .unwrap();
        total.cases += t.cases;
        total.conns += t.conns;
        total.nones += t.nones;
        total.mismatches += t.mismatches;
    }
    println!(
        "differential (seed {seed:#x}, salt {salt:#x}): {} variants x {per} cases, {} connections, {} without a destination, {} mismatches\n{summary}",
        variants.len(),
        total.conns,
        total.nones,
        total.mismatches
    );
    assert!(
        reports.is_empty(),
        "lbsim and the kernel disagree (seed {seed:#x}):\n{}",
        reports.join("\n")
    );
}

#[test]
fn vm_differential_rr_wrr_least_conn_lblc() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(540)), {
        differential(&LEAST, 1);
    });
}

#[test]
fn vm_differential_dh_sh_mh() {
    lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(540)), {
        differential(&HASHING, 2);
    });
}
