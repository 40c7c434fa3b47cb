use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const TCP: u8 = 6;
const UDP: u8 = 17;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}
fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// Three dests with settable availability and weight, counting persistconns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Dests {
    down: [bool; 3],
    weight: [u32; 3],
    persistconns: [i64; 3],
}
impl Dests {
    fn up() -> Self {
        Self {
            weight: [1; 3],
            ..Self::default()
        }
    }
}
impl PersistDests<u8> for Dests {
    fn is_available(&self, d: &u8) -> bool {
        !self.down[*d as usize]
    }
    fn weight(&self, d: &u8) -> u32 {
        self.weight[*d as usize]
    }
    fn template_bound(&mut self, d: &u8) {
        self.persistconns[*d as usize] += 1;
    }
    fn template_unbound(&mut self, d: &u8) {
        self.persistconns[*d as usize] -= 1;
    }
}

fn svc(fwmark: u32, port: u16) -> PersistService {
    PersistService {
        fwmark,
        port,
        netmask: Netmask::V4(0xffff_ffff),
    }
}

#[test]
fn keys_follow_ip_vs_sched_persist() {
    let c = v4("203.0.113.9");
    let vip = v4("192.0.2.1");
    // Non-FTP service, packet to its port: vport kept.
    let k = TemplateKey::for_packet(&svc(0, 443), TCP, c, vip, 443).unwrap();
    assert_eq!(
        (k.protocol, k.vport, &k.vaddr[..4]),
        (TCP, 443, &[192, 0, 2, 1][..])
    );
    // FTP: vport 0.
    let k = TemplateKey::for_packet(&svc(0, 21), TCP, c, vip, 21).unwrap();
    assert_eq!(k.vport, 0);
    // Port-zero service, any port: protocol and vaddr kept, vport 0.
    let k = TemplateKey::for_packet(&svc(0, 0), UDP, c, vip, 5060).unwrap();
    assert_eq!(
        (k.protocol, k.vport, &k.vaddr[..4]),
        (UDP, 0, &[192, 0, 2, 1][..])
    );
    // fwmark service: IPPROTO_IP, fwmark as the address, one key for all protocols and ports.
    let a = TemplateKey::for_packet(&svc(21, 0), TCP, c, vip, 21).unwrap();
    let b = TemplateKey::for_packet(&svc(21, 0), UDP, c, v4("192.0.2.2"), 15000).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        (a.protocol, a.vport, &a.vaddr[..4]),
        (IPPROTO_IP, 0, &21u32.to_be_bytes()[..])
    );
    // ...except a portless packet (dst port 0 == svc port 0) takes the first branch.
    let k = TemplateKey::for_packet(&svc(21, 0), 47, c, vip, 0).unwrap();
    assert_eq!((k.protocol, &k.vaddr[..4]), (47, &[192, 0, 2, 1][..]));
    // Netmask granularity.
    let s24 = PersistService {
        netmask: Netmask::V4(0xffff_ff00),
        ..svc(0, 80)
    };
    let x = TemplateKey::for_packet(&s24, TCP, v4("10.1.2.3"), vip, 80).unwrap();
    let y = TemplateKey::for_packet(&s24, TCP, v4("10.1.2.200"), vip, 80).unwrap();
    assert_eq!(x, y);
    assert_eq!(&x.client[..4], &[10, 1, 2, 0]);
    // IPv6 prefix.
    let s64 = PersistService {
        fwmark: 0,
        port: 80,
        netmask: Netmask::V6(64),
    };
    let k = TemplateKey::for_packet(&s64, TCP, v6("2001:db8:1:2:3:4:5:6"), v6("2001:db8::1"), 80)
        .unwrap();
    assert_eq!(k.family, AddressFamily::Inet6);
    assert_eq!(
        k.client,
        v6("2001:db8:1:2::")
            .to_string()
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
    );
    let s0 = PersistService {
        netmask: Netmask::V6(0),
        ..s64
    };
    assert_eq!(
        TemplateKey::for_packet(&s0, TCP, v6("::1"), v6("::2"), 80)
            .unwrap()
            .client,
        [0; 16]
    );
    // Errors.
    assert_eq!(
        TemplateKey::for_packet(&svc(0, 80), TCP, v6("::1"), vip, 80),
        Err(PersistError::FamilyMismatch)
    );
    let bad = PersistService {
        netmask: Netmask::V6(129),
        ..s64
    };
    assert_eq!(
        TemplateKey::for_packet(&bad, TCP, v6("::1"), v6("::2"), 80),
        Err(PersistError::BadPrefix(129))
    );
}

fn key(n: u8) -> TemplateKey {
    TemplateKey::for_packet(
        &svc(0, 80),
        TCP,
        v4(&format!("198.51.100.{n}")),
        v4("192.0.2.1"),
        80,
    )
    .unwrap()
}

fn table() -> PersistTable<u8> {
    PersistTable::new(PersistConfig::new(HashKey::new(1, 2)))
}

#[test]
fn live_at_expiry_minus_one_gone_at_expiry() {
    let mut t = table();
    let mut d = Dests::up();
    let p = t
        .schedule(1000, &key(1), 5000, &mut d, |_| Some(2))
        .unwrap()
        .unwrap();
    t.release(1000, p.template, &mut d).unwrap();
    assert_eq!(t.get(5999, &key(1)), Some(2));
    assert_eq!(t.get(6000, &key(1)), None);
    t.advance(5999, &mut d);
    assert_eq!((t.len(), d.persistconns[2]), (1, 1));
    t.advance(6000, &mut d);
    assert_eq!((t.len(), d.persistconns[2]), (0, 0));
    assert!(t.is_empty());
}

#[test]
fn refresh_on_use_and_sticky_dest() {
    let mut t = table();
    let mut d = Dests::up();
    let a = t
        .schedule(0, &key(1), 1000, &mut d, |_| Some(0))
        .unwrap()
        .unwrap();
    let b = t
        .schedule(900, &key(1), 1000, &mut d, |_| Some(1))
        .unwrap()
        .unwrap();
    assert_eq!((b.dest, b.created, b.template), (0, false, a.template));
    t.release(900, a.template, &mut d).unwrap();
    t.release(900, b.template, &mut d).unwrap();
    assert_eq!(
        t.release(900, b.template, &mut d),
        Err(PersistError::NotControlling(b.template))
    );
    assert_eq!(t.get(1899, &key(1)), Some(0));
    t.advance(1900, &mut d);
    assert_eq!(t.get(1900, &key(1)), None);
    assert_eq!(d.persistconns, [0, 0, 0]);
}

#[test]
fn unavailable_dest_invalidates_but_counts_until_expiry() {
    let mut t = table();
    let mut d = Dests::up();
    let a = t
        .schedule(0, &key(1), 1000, &mut d, |_| Some(0))
        .unwrap()
        .unwrap();
    t.release(0, a.template, &mut d).unwrap();
    d.down[0] = true;
    let b = t
        .schedule(500, &key(1), 1000, &mut d, |_| Some(1))
        .unwrap()
        .unwrap();
    assert!(b.created && b.dest == 1);
    // The old template is unreachable but still counted (not refreshed: gone at 1000).
    assert_eq!(t.len(), 2);
    assert_eq!(d.persistconns, [1, 1, 0]);
    t.advance(999, &mut d);
    assert_eq!(d.persistconns, [1, 1, 0]);
    t.advance(1000, &mut d);
    assert_eq!(d.persistconns, [0, 1, 0]);
    assert_eq!(t.get(1000, &key(1)), Some(1));
    // No dest at all: nothing created.
    d.down[1] = true;
    assert_eq!(
        t.schedule(1100, &key(1), 1000, &mut d, |_| None).unwrap(),
        None
    );
    assert_eq!(t.get(1100, &key(1)), None);
}

#[test]
fn expire_quiescent_template_sysctl() {
    for sysctl in [false, true] {
        let mut cfg = PersistConfig::new(HashKey::new(3, 4));
        cfg.expire_quiescent_template = sysctl;
        let mut t: PersistTable<u8> = PersistTable::new(cfg);
        let mut d = Dests::up();
        let first = t
            .schedule(0, &key(7), 1000, &mut d, |_| Some(0))
            .unwrap()
            .unwrap();
        assert_eq!(first.dest, 0);
        d.weight[0] = 0;
        let p = t
            .schedule(10, &key(7), 1000, &mut d, |_| Some(1))
            .unwrap()
            .unwrap();
        // Default: a quiesced dest keeps its persistent clients.
        assert_eq!(p.dest, if sysctl { 1 } else { 0 });
    }
}

#[test]
fn controlling_template_is_deferred_by_60s_and_keeps_60s_timeout() {
    let mut t = table();
    let mut d = Dests::up();
    let p = t
        .schedule(0, &key(1), 1000, &mut d, |_| Some(0))
        .unwrap()
        .unwrap();
    // Still controls a connection when its timer fires at 1000: re-armed at 61 000.
    t.advance(1000, &mut d);
    assert_eq!(t.get(60_999, &key(1)), Some(0));
    t.release(30_000, p.template, &mut d).unwrap();
    assert_eq!(t.get(60_999, &key(1)), Some(0));
    assert_eq!(t.get(61_000, &key(1)), None);
    // Use it again: the timeout is now 60 s, not the service's 1 s.
    let q = t
        .schedule(40_000, &key(1), 1000, &mut d, |_| Some(1))
        .unwrap()
        .unwrap();
    assert_eq!((q.dest, q.created), (0, false));
    t.release(40_000, q.template, &mut d).unwrap();
    assert_eq!(t.get(99_999, &key(1)), Some(0));
    t.advance(100_000, &mut d);
    assert_eq!((t.len(), d.persistconns[0]), (0, 0));
}

#[test]
fn timeouts_and_flush() {
    let mut t = table();
    let mut d = Dests::up();
    assert_eq!(
        t.schedule(0, &key(1), 0, &mut d, |_| Some(0)),
        Err(PersistError::BadTimeout(0))
    );
    assert_eq!(
        t.schedule(0, &key(1), MAX_TIMEOUT_MS + 1, &mut d, |_| Some(0)),
        Err(PersistError::BadTimeout(MAX_TIMEOUT_MS + 1))
    );
    for n in 0..50 {
        let _ = t
            .schedule(1, &key(n), MAX_TIMEOUT_MS, &mut d, |_| Some(n % 3))
            .unwrap();
    }
    assert_eq!(d.persistconns.iter().sum::<i64>(), 50);
    t.flush(&mut d);
    assert_eq!((t.len(), d.persistconns), (0, [0, 0, 0]));
}

#[test]
fn entry_sizes_fit_the_budget() {
    // 32 B (IPv4) and 44 B (IPv6) per slab entry with a u32 dest id.
    let (a, b) = PersistTable::<u32>::entry_sizes();
    assert!(a <= 32 && b <= 44, "{a} {b}");
    let t: PersistTable<u32> = PersistTable::with_capacity(PersistConfig::default(), 1000, 0);
    // slab + index (4 B at load ≤ 7/8) + two wheels of 64 K × 4 B.
    assert!(t.memory_bytes() <= 1000 * 32 + 1200 * 4 + 2 * 65536 * 4);
}

// ---------------------------------------------------------------------------
// Reference model: a Vec with linear expiry, normalised on every operation.

#[derive(Debug, Clone)]
struct MEntry {
    key: TemplateKey,
    dest: u8,
    exp: u64,
    timeout: u32,
    n_control: u32,
    linked: bool,
}

#[derive(Debug, Default)]
struct Model {
    entries: Vec<Option<MEntry>>,
    last: u64,
    quiescent: bool,
}

impl Model {
    fn advance(&mut self, now: u64, d: &mut Dests) {
        if now <= self.last {
            return;
        }
        for slot in &mut self.entries {
            let Some(e) = slot else { continue };
            if e.exp > now {
                continue;
            }
            if e.n_control > 0 {
                while e.exp <= now {
                    e.exp += 60_000;
                }
                e.timeout = 60_000;
            } else {
                d.persistconns[e.dest as usize] -= 1;
                *slot = None;
            }
        }
        self.last = now;
    }

    fn find(&self, k: &TemplateKey) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.linked && e.key == *k))
    }

    fn schedule(
        &mut self,
        now: u64,
        k: &TemplateKey,
        timeout: u32,
        d: &mut Dests,
        pick: Option<u8>,
    ) -> Option<(u8, bool, usize)> {
        self.advance(now, d);
        let now = self.last.max(now);
        if let Some(i) = self.find(k) {
            let e = self.entries[i].as_mut().unwrap();
            let ok =
                !(d.down[e.dest as usize] || (self.quiescent && d.weight[e.dest as usize] == 0));
            if ok {
                e.exp = now + u64::from(e.timeout);
                e.n_control += 1;
                return Some((e.dest, false, i));
            }
            e.linked = false;
        }
        let dest = pick?;
        d.persistconns[dest as usize] += 1;
        self.entries.push(Some(MEntry {
            key: *k,
            dest,
            exp: now + u64::from(timeout),
            timeout,
            n_control: 1,
            linked: true,
        }));
        Some((dest, true, self.entries.len() - 1))
    }

    fn get(&self, now: u64, k: &TemplateKey) -> Option<u8> {
        let e = self.entries[self.find(k)?].as_ref().unwrap();
        (e.exp > now || e.n_control > 0).then_some(e.dest)
    }

    fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Schedule { key: u8, timeout: u32, pick: u8 },
    Release { which: usize },
    Advance,
    Toggle { dest: u8, down: bool, weight: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..11, prop::sample::select(vec![1u32, 7, 1000, 59_999, 60_000, 300_000]), 0u8..4)
            .prop_map(|(key, timeout, pick)| Op::Schedule { key, timeout, pick }),
        3 => any::<usize>().prop_map(|which| Op::Release { which }),
        1 => Just(Op::Advance),
        1 => (0u8..3, any::<bool>(), 0u32..2).prop_map(|(dest, down, weight)| Op::Toggle { dest, down, weight }),
    ]
}

fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..3,
        3 => 0u64..2000,
        1 => prop::sample::select(vec![59_999u64, 60_000, 60_001, 65_535, 65_536, 65_537, 300_000]),
        1 => prop::sample::select(vec![1u64 << 20, 1 << 31, 1 << 32, (1 << 33) + 5]),
    ]
}

fn keys() -> Vec<TemplateKey> {
    let s4 = svc(0, 80);
    let s6 = PersistService {
        fwmark: 9,
        port: 0,
        netmask: Netmask::V6(64),
    };
    let mut k: Vec<TemplateKey> = (0..5)
        .map(|i| {
            TemplateKey::for_packet(&s4, TCP, v4(&format!("10.0.0.{i}")), v4("192.0.2.1"), 80)
                .unwrap()
        })
        .collect();
    for i in 0..3 {
        k.push(
            TemplateKey::for_packet(
                &s6,
                UDP,
                v6(&format!("2001:db8:{i}::1")),
                v6("2001:db8::1"),
                53,
            )
            .unwrap(),
        );
    }
    // One IPv6 client on three virtual addresses of a port-53 service: the
    // interned virtual addresses come and go with their templates.
    let s6b = PersistService {
        fwmark: 0,
        port: 53,
        netmask: Netmask::V6(128),
    };
    for vip in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
        k.push(TemplateKey::for_packet(&s6b, UDP, v6("2001:db8:1::1"), v6(vip), 53).unwrap());
    }
    k
}

/// The IPv6 virtual-address list names exactly the addresses of the IPv6
/// entries in the slab, each counted once per entry, and nothing else.
fn check_vips<D: Copy>(t: &PersistTable<D>) -> Result<(), TestCaseError> {
    let c = &t.v6;
    let mut want: HashMap<[u8; 16], u32> = HashMap::new();
    for e in c.entries.iter().filter(|e| e.flags & F_USED != 0) {
        *want.entry(c.vips.addrs[e.vip as usize]).or_default() += 1;
    }
    prop_assert_eq!(c.vips.ids.len(), want.len());
    for (addr, n) in want {
        let id = c.vips.ids.get(&addr).copied();
        prop_assert!(id.is_some(), "{:?} not interned", addr);
        let id = id.unwrap_or_default() as usize;
        prop_assert_eq!(c.vips.refs[id], n);
    }
    for &f in &c.vips.free {
        prop_assert_eq!(c.vips.refs[f as usize], 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn table_matches_linear_model(
        steps in prop::collection::vec((dt(), op()), 1..120),
        slots in prop::sample::select(vec![2usize, 16, 1 << 16]),
        quiescent in any::<bool>(),
    ) {
        let keys = keys();
        let mut cfg = PersistConfig::new(HashKey::new(9, 10));
        cfg.wheel_slots = slots;
        cfg.expire_quiescent_template = quiescent;
        let mut t: PersistTable<u8> = PersistTable::new(cfg);
        let mut m = Model { quiescent, ..Model::default() };
        let (mut dt_, mut dm) = (Dests::up(), Dests::up());
        let mut held: Vec<(TemplateId, usize)> = Vec::new();
        let mut now = 0u64;
        for (delta, op) in steps {
            now += delta;
            match op {
                Op::Schedule { key, timeout, pick } => {
                    let k = keys[key as usize];
                    let p = (pick < 3).then_some(pick);
                    let got = t.schedule(now, &k, timeout, &mut dt_, |_| p).unwrap();
                    let want = m.schedule(now, &k, timeout, &mut dm, p);
                    prop_assert_eq!(got.map(|g| (g.dest, g.created)), want.map(|w| (w.0, w.1)));
                    if let (Some(g), Some(w)) = (got, want) {
                        held.push((g.template, w.2));
                    }
                }
                Op::Release { which } => {
                    if !held.is_empty() {
                        let (id, mi) = held.swap_remove(which % held.len());
                        t.release(now, id, &mut dt_).unwrap();
                        m.advance(now, &mut dm);
                        m.entries[mi].as_mut().unwrap().n_control -= 1;
                    }
                }
                Op::Advance => {
                    t.advance(now, &mut dt_);
                    m.advance(now, &mut dm);
                }
                Op::Toggle { dest, down, weight } => {
                    for d in [&mut dt_, &mut dm] {
                        d.down[dest as usize] = down;
                        d.weight[dest as usize] = weight;
                    }
                }
            }
            // Lookups at now-1, now, now+1 agree, before any further advance.
            for k in &keys {
                for at in [now.saturating_sub(1), now, now + 1] {
                    if at >= m.last {
                        prop_assert_eq!(t.get(at, k), m.get(at, k), "get at {}", at);
                    }
                }
            }
            check_vips(&t)?;
            // After an explicit advance everything due is gone and counted.
            if matches!(op, Op::Advance) {
                prop_assert_eq!(t.len(), m.len());
                prop_assert_eq!(&dt_.persistconns, &dm.persistconns);
            }
        }
        t.advance(now + (1 << 34), &mut dt_);
        m.advance(now + (1 << 34), &mut dm);
        prop_assert_eq!(t.len(), m.len());
        prop_assert_eq!(&dt_.persistconns, &dm.persistconns);
        check_vips(&t)?;
        t.flush(&mut dt_);
        check_vips(&t)?;
    }
}

#[test]
fn raw_template_ids_round_trip_and_release() {
    // Input: one v4 and one v6 template, each handle stored as `to_raw` and
    // released through `from_raw`; then a bogus raw handle. Output: the
    // handles round-trip, both releases succeed once, the bogus one and a
    // second release fail with NotControlling.
    let mut t = PersistTable::new(PersistConfig::default());
    let mut d = Dests::up();
    let k4 =
        TemplateKey::for_packet(&svc(0, 80), TCP, v4("203.0.113.9"), v4("192.0.2.1"), 80).unwrap();
    let s6 = PersistService {
        netmask: Netmask::V6(128),
        ..svc(0, 80)
    };
    let k6 = TemplateKey::for_packet(&s6, TCP, v6("2001:db8::9"), v6("2001:db8::1"), 80).unwrap();
    let p4 = t
        .schedule(1, &k4, 1_000, &mut d, |_| Some(0))
        .unwrap()
        .unwrap();
    let p6 = t
        .schedule(1, &k6, 1_000, &mut d, |_| Some(1))
        .unwrap()
        .unwrap();
    let (r4, r6) = (p4.template.to_raw(), p6.template.to_raw());
    assert_ne!(r4, r6);
    assert_eq!(TemplateId::from_raw(r4), p4.template);
    assert_eq!(TemplateId::from_raw(r6), p6.template);
    t.release(2, TemplateId::from_raw(r4), &mut d).unwrap();
    t.release(2, TemplateId::from_raw(r6), &mut d).unwrap();
    assert!(t.release(2, TemplateId::from_raw(r6), &mut d).is_err());
    assert!(
        t.release(2, TemplateId::from_raw(0x7fff_fff0), &mut d)
            .is_err()
    );
}
