//! Golden tests: for each scheduler a short scenario whose picks are worked
//! out by hand from the kernel's C (each step's derivation is in a comment).
//!
//! Remember the kernel's list order: `list_add_rcu` puts a new destination at
//! the *front*, so adding A, B, C gives the list C, B, A.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_sched::{
    ConnKind, DestConfig, DestId, Error, PacketInfo, Protocol, SchedulerConfig, SchedulerKind,
    Scripted, Service, ServiceFlags, ServiceKey, SplitMix64,
};

fn service(kind: impl Into<SchedulerConfig>, flags: ServiceFlags) -> (Service, Instant) {
    let now = Instant::now();
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1:80".parse().unwrap(),
    };
    (Service::new(key, flags, kind, now).unwrap(), now)
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::from([10, 0, 0, last]), 80)
}

fn add(svc: &mut Service, last: u8, weight: u32) -> DestId {
    svc.add_dest(DestConfig::new(addr(last), weight)).unwrap()
}

fn pkt(src: &str, dst: &str) -> PacketInfo {
    PacketInfo::new(Protocol::Tcp, src.parse().unwrap(), dst.parse().unwrap())
}

fn picks(svc: &mut Service, now: Instant, n: usize) -> Vec<Option<DestId>> {
    let p = pkt("198.51.100.7:40000", "192.0.2.1:80");
    let mut rng = SplitMix64::new(0);
    (0..n).map(|_| svc.pick(now, &p, &mut rng)).collect()
}

fn bind(svc: &mut Service, id: DestId, kind: ConnKind, n: usize) {
    for _ in 0..n {
        svc.conn_bind(id, kind).unwrap();
    }
}

#[test]
fn list_order_is_most_recent_first() {
    let (mut svc, _) = service(SchedulerKind::Rr, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 1);
    let c = add(&mut svc, 3, 1);
    let order: Vec<DestId> = svc.dests().map(|(id, _)| id).collect();
    assert_eq!(order, [c, b, a]);
}

#[test]
fn rr_cycles_skips_quiesced_and_fixes_cursor_on_removal() {
    let (mut svc, now) = service(SchedulerKind::Rr, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 1);
    let c = add(&mut svc, 3, 1);
    // List C, B, A; the cursor starts at the head.
    assert_eq!(
        picks(&mut svc, now, 4),
        [Some(c), Some(b), Some(a), Some(c)]
    );
    // Cursor on C; quiesce B (weight 0): C → A → C.
    svc.set_weight(b, 0).unwrap();
    assert_eq!(picks(&mut svc, now, 2), [Some(a), Some(c)]);
    svc.set_weight(b, 1).unwrap();
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // Cursor on B. ip_vs_rr_del_dest moves it to B's predecessor, C, so the
    // next pick is the one after C: A.
    svc.remove_dest(b).unwrap();
    assert_eq!(picks(&mut svc, now, 2), [Some(a), Some(c)]);
    // All quiesced: no destination, cursor unchanged.
    svc.set_weight(a, 0).unwrap();
    svc.set_weight(c, 0).unwrap();
    assert_eq!(picks(&mut svc, now, 1), [None]);
}

#[test]
fn wrr_interleaves_by_weight() {
    let (mut svc, now) = service(SchedulerKind::Wrr, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 4);
    let b = add(&mut svc, 2, 3);
    let c = add(&mut svc, 3, 2);
    // The marks are recomputed on every add (ip_vs_wrr_dest_changed), so
    // the state depends on the history, not just the final list:
    //   init (no dests): di 1, mw 0, cw 0.
    //   add A(4): di 4, mw 4 - 3 = 1; cw == 0 → cw = mw = 1.
    //   add B(3): di 1, mw 4; cw 1 is neither > mw nor 0, di == 1 → cw stays 1.
    //   add C(2): di 1, mw 4, cw 1.
    // List C(2), B(3), A(4). cw=1: C, B, A. Next pass cw 0 → restart at
    // mw = 4: A. cw=3: B, A. cw=2: C, B, A. cw=1: C.
    let want = [c, b, a, a, b, a, c, b, a, c].map(Some);
    assert_eq!(picks(&mut svc, now, 10), want);
}

#[test]
fn wrr_uses_gcd_and_resets_on_change() {
    let (mut svc, now) = service(SchedulerKind::Wrr, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 2);
    let b = add(&mut svc, 2, 4);
    // add A(2): di 2, mw 2 - 1 = 1, cw 0 → 1.
    // add B(4): di 2, mw 4 - 1 = 3; cw 1 <= mw and di > 1 → cw = (1/2)*2 + 1 = 1.
    // List B(4), A(2). cw=1: B, A. Then cw = -1 → restart at mw = 3: B.
    // Next pick: A(2) < 3; at the head cw = 1: B, then A. Restart: B. 4:2.
    assert_eq!(picks(&mut svc, now, 6), [b, a, b, b, a, b].map(Some));
    // A weight change resets the cursor to the head and recomputes di = 1,
    // mw = 4; cw (3) stays as it is not above mw: B(4) >= 3 first.
    svc.set_weight(a, 1).unwrap();
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
}

#[test]
fn wrr_all_overloaded_terminates_with_huge_weights() {
    let (mut svc, now) = service(SchedulerKind::Wrr, ServiceFlags::NONE);
    let a = svc
        .add_dest(DestConfig::new(addr(1), 2_000_000_000).thresholds(1, 0))
        .unwrap();
    let b = add(&mut svc, 2, 1);
    svc.conn_bind(a, ConnKind::Inactive).unwrap();
    // A is OVERLOADed; with weights 2e9 and 1 the kernel walks 2e9 passes
    // before reaching cw = 1, where B is taken.
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    svc.conn_bind(b, ConnKind::Inactive).unwrap();
    svc.set_thresholds(b, 1, 0).unwrap();
    svc.conn_bind(b, ConnKind::Inactive).unwrap();
    assert_eq!(picks(&mut svc, now, 1), [None]);
}

#[test]
fn lc_counts_active_256_times_and_ignores_weight() {
    let (mut svc, now) = service(SchedulerKind::Lc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 5);
    let _c = add(&mut svc, 3, 0);
    // List C(0), B, A. C is quiesced; B and A both 0: the first, B.
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B overhead 1, A 0 → A.
    bind(&mut svc, b, ConnKind::Inactive, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
    // A one active = 256 > B's 1 → B, whatever the weights.
    bind(&mut svc, a, ConnKind::Active, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B at 255 inactive still beats 256; at 256 it ties and, being first, wins.
    bind(&mut svc, b, ConnKind::Inactive, 255);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    bind(&mut svc, b, ConnKind::Inactive, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
}

#[test]
fn wlc_weighs_overhead_and_keeps_the_first_on_ties() {
    let (mut svc, now) = service(SchedulerKind::Wlc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 3);
    // List B(3), A(1). Idle: B is the first eligible, nothing beats 0.
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B 3 inactive: 3/3 = 1 > A 0/1 → A.
    bind(&mut svc, b, ConnKind::Inactive, 3);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
    // A 1 inactive: 1/1 = 3/3, tie → B (loh*dw > doh*lw is strict).
    bind(&mut svc, a, ConnKind::Inactive, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // Templates do not count.
    bind(&mut svc, b, ConnKind::Template, 50);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
}

#[test]
fn sed_uses_active_plus_one() {
    let (mut svc, now) = service(SchedulerKind::Sed, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 3);
    // List B(3), A(1). (0+1)/3 < (0+1)/1 → B.
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B 2 active: 3/3 = 1/1 → tie, B first.
    bind(&mut svc, b, ConnKind::Active, 2);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // Inactive connections are ignored by sed.
    bind(&mut svc, b, ConnKind::Inactive, 100);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B 3 active: 4/3 > 1/1 → A.
    bind(&mut svc, b, ConnKind::Active, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
}

#[test]
fn nq_prefers_the_first_idle() {
    let (mut svc, now) = service(SchedulerKind::Nq, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 3);
    // List B, A: both idle → the first, B.
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B busy (sed ratio 2/3 would beat A's 1/1), but A is idle → A.
    bind(&mut svc, b, ConnKind::Active, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
    // Both busy: B 2/3 < A 2/1 → B.
    bind(&mut svc, a, ConnKind::Active, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
}

#[test]
fn fo_takes_the_first_highest_weight() {
    let (mut svc, now) = service(SchedulerKind::Fo, ServiceFlags::NONE);
    let _a = add(&mut svc, 1, 5);
    let b = add(&mut svc, 2, 10);
    let c = svc
        .add_dest(DestConfig::new(addr(3), 10).thresholds(1, 0))
        .unwrap();
    // List C(10), B(10), A(5): C is the first with weight 10.
    assert_eq!(picks(&mut svc, now, 1), [Some(c)]);
    // One connection reaches C's upper threshold: OVERLOAD → B.
    bind(&mut svc, c, ConnKind::Inactive, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
}

#[test]
fn ovf_overflows_past_the_weight() {
    let (mut svc, now) = service(SchedulerKind::Ovf, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 2);
    let b = add(&mut svc, 2, 1);
    // List B(1), A(2): A is heavier and has active 0 <= 2.
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
    bind(&mut svc, a, ConnKind::Active, 2);
    assert_eq!(picks(&mut svc, now, 1), [Some(a)]);
    // A active 3 > 2 → skipped → B.
    bind(&mut svc, a, ConnKind::Active, 1);
    assert_eq!(picks(&mut svc, now, 1), [Some(b)]);
    // B active 2 > 1 too → none.
    bind(&mut svc, b, ConnKind::Active, 2);
    assert_eq!(picks(&mut svc, now, 1), [None]);
}

#[test]
fn overload_set_and_clear_rules() {
    let (mut svc, _) = service(SchedulerKind::Wlc, ServiceFlags::NONE);
    let a = svc
        .add_dest(DestConfig::new(addr(1), 1).thresholds(4, 0))
        .unwrap();
    let over = |svc: &Service| svc.dest(a).unwrap().is_overloaded();
    bind(&mut svc, a, ConnKind::Inactive, 3);
    assert!(!over(&svc));
    // active + inactive reaches u_threshold 4.
    bind(&mut svc, a, ConnKind::Active, 1);
    assert!(over(&svc));
    // No lower threshold: clear when total * 4 < u * 3, i.e. total < 3.
    svc.conn_unbind(a, ConnKind::Inactive).unwrap();
    assert!(over(&svc), "3 * 4 = 12 is not below 12");
    svc.conn_unbind(a, ConnKind::Inactive).unwrap();
    assert!(!over(&svc), "2 * 4 = 8 < 12");
    // With l_threshold 2: clear only when total < 2.
    svc.set_thresholds(a, 3, 2).unwrap();
    bind(&mut svc, a, ConnKind::Inactive, 1);
    assert!(over(&svc));
    svc.conn_unbind(a, ConnKind::Inactive).unwrap();
    assert!(over(&svc), "total 2 is not below l_threshold 2");
    // Changed thresholds re-evaluate the flag at once
    // (ip_vs_dest_update_overload): total 2, u 3, default l = 3 - 0 = 3,
    // 2 < 3 → clear.
    svc.set_thresholds(a, 3, 0).unwrap();
    assert!(!over(&svc));
    // u 2: 2 >= 2 → set, without a new connection.
    svc.set_thresholds(a, 2, 0).unwrap();
    assert!(over(&svc));
    // u 5, l 2: 2 is neither >= 5 nor < 2 → kept.
    svc.set_thresholds(a, 5, 2).unwrap();
    assert!(over(&svc));
    // The same thresholds again change nothing; u 5 with default l
    // 5 - 1 = 4: 2 < 4 → clear.
    svc.set_thresholds(a, 5, 2).unwrap();
    assert!(over(&svc));
    svc.set_thresholds(a, 5, 0).unwrap();
    assert!(!over(&svc));
    // Templates do not count towards the threshold.
    bind(&mut svc, a, ConnKind::Template, 10);
    assert!(!over(&svc));
    assert_eq!(
        svc.set_thresholds(a, 1, 2),
        Err(Error::ThresholdRange { lower: 2, upper: 1 })
    );
}

#[test]
fn removed_dest_keeps_counting_and_comes_back_from_trash() {
    let (mut svc, _) = service(SchedulerKind::Wlc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    bind(&mut svc, a, ConnKind::Active, 2);
    svc.remove_dest(a).unwrap();
    assert!(svc.find_dest(addr(1)).is_none());
    assert!(!svc.dest(a).unwrap().is_available());
    // Connections still close against it.
    svc.conn_unbind(a, ConnKind::Active).unwrap();
    // Re-adding the address revives the same destination with its counter.
    let again = add(&mut svc, 1, 3);
    assert_eq!(again, a);
    assert_eq!(svc.dest(a).unwrap().active_conns(), 1);
    // Once removed with no connections left, it is freed and the id goes stale.
    svc.conn_unbind(a, ConnKind::Active).unwrap();
    svc.remove_dest(a).unwrap();
    assert_eq!(svc.dest(a), None);
    assert_eq!(
        svc.conn_bind(a, ConnKind::Active),
        Err(Error::NoSuchDest(a))
    );
    let fresh = add(&mut svc, 1, 1);
    assert_ne!(fresh, a);
}

#[test]
fn lblc_caches_per_destination_address() {
    let mut cfg = SchedulerConfig::new(SchedulerKind::Lblc);
    cfg.lblc_expiration = Duration::from_secs(600);
    let (mut svc, t0) = service(cfg, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 2);
    let b = add(&mut svc, 2, 2);
    let mut rng = SplitMix64::new(0);
    let to_x = pkt("198.51.100.7:1", "203.0.113.10:80");
    let to_y = pkt("198.51.100.7:2", "203.0.113.11:80");
    // X is not cached: wlc over B, A (idle) → B, cached for X.
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(b));
    svc.conn_bind(b, ConnKind::Active).unwrap();
    // Y: wlc → A (B has 256/2). X stays on B although A is lighter.
    assert_eq!(svc.pick(t0, &to_y, &mut rng), Some(a));
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(b));
    // B active 3 > weight 2, and A has 0*2 < 2: "overloaded" → wlc → A, re-cached.
    bind(&mut svc, b, ConnKind::Active, 2);
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(a));
    svc.conn_bind(a, ConnKind::Active).unwrap();
    // A now 1 active (1*2 < 2 is false) and B 3 active: no light destination
    // left, so X's entry (A) is used again even if A fills up.
    bind(&mut svc, a, ConnKind::Active, 4);
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(a));
    // Garbage collection: ticks every 60 s. The counter starts at 1 and
    // grows on each tick while the table is small, so tick 30 sees counter
    // 30 and runs the full check, dropping entries unused for
    // lblc_expiration (600 s). After 29 ticks X is still cached (A).
    let mut now = t0;
    for _ in 0..29 {
        now = svc.poll_timeout().unwrap();
        svc.handle_timeout(now);
    }
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(a));
    // That pick refreshed X (1740 s). Tick 30 (1800 s) keeps it (1740 + 600
    // > 1800) and resets the counter to 1; the next full check is tick 60
    // (3600 s), which drops it.
    for _ in 0..31 {
        now = svc.poll_timeout().unwrap();
        svc.handle_timeout(now);
    }
    // X is gone and scheduled
    // afresh by wlc: B has 768/2, A 1280/2 → B.
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(b));
}

#[test]
fn lblcr_grows_and_shrinks_the_server_set() {
    let mut cfg = SchedulerConfig::new(SchedulerKind::Lblcr);
    cfg.lblcr_expiration = Duration::from_secs(100);
    let (mut svc, t0) = service(cfg, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 4);
    let mut rng = SplitMix64::new(0);
    let to_x = pkt("198.51.100.7:1", "203.0.113.10:80");
    // New entry: wlc → B (first, idle); set {B}.
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(b));
    // B active 5 > 4 and A is light (0*2 < 1): wlc → A, added: set {A, B}.
    bind(&mut svc, b, ConnKind::Active, 5);
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(a));
    // The set's least loaded is A (0 vs 1280/4) → A.
    assert_eq!(svc.pick(t0, &to_x, &mut rng), Some(a));
    // 101 s after the last change the most loaded member (B) is dropped; the
    // pick itself was taken before that: A.
    let later = t0 + Duration::from_secs(101);
    assert_eq!(svc.pick(later, &to_x, &mut rng), Some(a));
    // Now the set is {A}. Make A overloaded (active 2 > 1) while B is not
    // light: A is still used.
    bind(&mut svc, a, ConnKind::Active, 2);
    assert_eq!(svc.pick(later, &to_x, &mut rng), Some(a));
}

#[test]
fn dh_maps_destination_addresses_through_256_buckets() {
    let (mut svc, now) = service(SchedulerKind::Dh, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 1);
    let c = add(&mut svc, 3, 1);
    // Buckets cycle through the list C, B, A: bucket i → [C, B, A][i % 3].
    // The bucket is hash_32(ntohl(daddr), 8) = (daddr * 0x61C88647) >> 24:
    //   203.0.113.1 → 0x320ddd47 >> 24 = 50 → 50 % 3 = 2 → A;
    //   .2 → 147 → 0 → C;  .7 → 124 → 1 → B.
    let mut rng = SplitMix64::new(0);
    let to = |o: u8| pkt("198.51.100.7:1", &format!("203.0.113.{o}:80"));
    assert_eq!(svc.pick(now, &to(1), &mut rng), Some(a));
    assert_eq!(svc.pick(now, &to(2), &mut rng), Some(c));
    assert_eq!(svc.pick(now, &to(7), &mut rng), Some(b));
    // Quiescing the bucket's destination gives no destination (no fallback).
    svc.set_weight(a, 0).unwrap();
    assert_eq!(svc.pick(now, &to(1), &mut rng), None);
}

#[test]
fn sh_tiles_by_weight_and_falls_back() {
    let (mut svc, now) = service(SchedulerKind::Sh, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 2);
    // List B(2), A(1): buckets B, B, A, B, B, A, ...: bucket i is A iff i % 3 == 2.
    // The bucket is hash_32(port + ntohl(saddr), 8), port 0 without sh-port:
    // client 198.51.100.2 → 194; 194 % 3 = 2 → A.
    // Client 198.51.100.4 → 133; 133 % 3 = 1 → B.
    let mut rng = SplitMix64::new(0);
    let from = |o: u8, port: u16| pkt(&format!("198.51.100.{o}:{port}"), "192.0.2.1:80");
    assert_eq!(svc.pick(now, &from(2, 1), &mut rng), Some(a));
    assert_eq!(svc.pick(now, &from(4, 1), &mut rng), Some(b));
    // Quiesce A: without sh-fallback, no destination.
    svc.set_weight(a, 0).unwrap();
    assert_eq!(svc.pick(now, &from(2, 1), &mut rng), None);
    // With sh-fallback: offsets from ihash 194: roffset 194, key
    // (194 + 194) & 255 = 132 → 132 % 3 = 0 → B. (Weight 0 still owns one
    // bucket per round: B, B, A.)
    let (mut svc, now) = service(SchedulerKind::Sh, ServiceFlags::SH_FALLBACK);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 2);
    svc.set_weight(a, 0).unwrap();
    assert_eq!(svc.pick(now, &from(2, 1), &mut rng), Some(b));
    // sh-port adds the source port before hashing: client .7 with port 1:
    // hash_32(ntohl(198.51.100.8), 8) = 12 → 0 → B; port 2: 110 → 2 → A.
    let (mut svc, now) = service(SchedulerKind::Sh, ServiceFlags::SH_PORT);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 2);
    assert_eq!(svc.pick(now, &from(7, 1), &mut rng), Some(b));
    assert_eq!(svc.pick(now, &from(7, 2), &mut rng), Some(a));
}

#[test]
fn mh_table_shares_follow_turns_and_survive_quiescing() {
    let mut cfg = SchedulerConfig::new(SchedulerKind::Mh);
    cfg.mh_table_size = 251;
    let (mut svc, now) = service(cfg, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 2);
    // M = 251 (TAB_INDEX 8, TAB_BITS 4); gcd 1, max 2 → shift 0; turns B 2,
    // A 1. Rounds fill B, B, A: 83 rounds = 249 slots, then B takes 2 more.
    let mut rng = SplitMix64::new(0);
    let clients: Vec<PacketInfo> = (0..4000u32)
        .map(|i| {
            let ip = IpAddr::from((0xc633_6400u32 + i).to_be_bytes());
            PacketInfo::new(
                Protocol::Tcp,
                SocketAddr::new(ip, 1),
                "192.0.2.1:80".parse().unwrap(),
            )
        })
        .collect();
    let before: Vec<Option<DestId>> = clients.iter().map(|p| svc.pick(now, p, &mut rng)).collect();
    assert!(before.iter().all(Option::is_some));
    // Quiescing A keeps the table (it is built from last_weight): B's
    // clients stay, A's get no destination.
    svc.set_weight(a, 0).unwrap();
    for (p, was) in clients.iter().zip(&before) {
        let now_pick = svc.pick(now, p, &mut rng);
        if *was == Some(b) {
            assert_eq!(now_pick, Some(b));
        } else {
            assert_eq!(now_pick, None);
        }
    }
    // The slot shares: count distinct hashes through a single-port view.
    let mut seen = std::collections::HashMap::new();
    for (p, was) in clients.iter().zip(&before) {
        let h = lb_sched::ipvs::hash::mh_hash(
            lb_sched::AddressFamily::Inet,
            p.src,
            0,
            lb_sched::ipvs::hash::MH_KEY1,
            0,
        ) % 251;
        seen.insert(h, *was);
    }
    assert_eq!(seen.len(), 251, "4000 clients cover every slot");
    assert_eq!(seen.values().filter(|d| **d == Some(b)).count(), 168);
    assert_eq!(seen.values().filter(|d| **d == Some(a)).count(), 83);
}

#[test]
fn twos_draws_two_weighted_choices() {
    let (mut svc, now) = service(SchedulerKind::Twos, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 3);
    let p = pkt("198.51.100.7:1", "192.0.2.1:80");
    // List B(3), A(1); total_weight = 4 + 1 = 5. Each draw is
    // get_random_u32_below(5) = (5 * word) >> 32, redrawn while the low
    // half of 5 * word is below 2^32 % 5 = 1.
    // 0x3333_3333: 5 * w = 0x0_FFFF_FFFF → r1 = 0: B (0 - 3 <= 0).
    // 0xCCCC_CCCD: 5 * w = 0x4_0000_0001 → r2 = 4: B leaves 1, A 0 → A.
    // Both idle: weight2 * oh1 = 1 * 0 > weight1 * oh2 = 3 * 0 is false →
    // choice 1, B. (As `word % 5` the draws would be 4 and 2: A, then B,
    // and the answer A.)
    let words = [0x3333_3333, 0xCCCC_CCCD];
    assert_eq!(svc.pick(now, &p, &mut Scripted::new(&words)), Some(b));
    // Word 0 gives 5 * 0 = 0, low half 0 < 1: rejected, the next word
    // decides. So r1 = 4 (A) and r2 = 0 (B): both idle → choice 1, A.
    // (Taking the 0 as r1 would give B.)
    let words = [0, 0xCCCC_CCCD, 0x3333_3333];
    assert_eq!(svc.pick(now, &p, &mut Scripted::new(&words)), Some(a));
    // B 3 inactive, draws B then A: weight2 * oh1 = 1 * 3 > weight1 * oh2
    // = 3 * 0 → choice 2, A.
    bind(&mut svc, b, ConnKind::Inactive, 3);
    let words = [0x3333_3333, 0xCCCC_CCCD];
    assert_eq!(svc.pick(now, &p, &mut Scripted::new(&words)), Some(a));
    // Both draws land on B (r = 0 and 0): B.
    assert_eq!(svc.pick(now, &p, &mut Scripted::new(&[1, 2])), Some(b));
}

#[test]
fn errors_mirror_the_kernel() {
    let (mut svc, _) = service(SchedulerKind::Wlc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    assert_eq!(
        svc.add_dest(DestConfig::new(addr(1), 1)),
        Err(Error::DestExists(addr(1)))
    );
    assert_eq!(
        svc.add_dest(DestConfig::new(addr(2), u32::MAX)),
        Err(Error::WeightRange(u32::MAX))
    );
    assert_eq!(
        svc.add_dest(DestConfig::new(addr(2), 1).thresholds(0, 1)),
        Err(Error::ThresholdRange { lower: 1, upper: 0 })
    );
    assert_eq!(
        svc.edit_dest(DestConfig::new(addr(9), 1)),
        Err(Error::NoSuchAddr(addr(9)))
    );
    assert_eq!(
        svc.conn_unbind(a, ConnKind::Active),
        Err(Error::CounterUnderflow(a))
    );
    assert_eq!(
        svc.conn_set_active(a, true),
        Err(Error::CounterUnderflow(a))
    );
    let mut cfg = SchedulerConfig::new(SchedulerKind::Mh);
    cfg.mh_table_size = 1000;
    assert_eq!(
        svc.set_scheduler(cfg, Instant::now()),
        Err(Error::MhTableSize(1000))
    );
    assert_eq!("wlc".parse::<SchedulerKind>(), Ok(SchedulerKind::Wlc));
    assert!("xyz".parse::<SchedulerKind>().is_err());
}

#[test]
fn set_scheduler_rebinds_but_sysctls_stay_live() {
    let (mut svc, now) = service(SchedulerKind::Lblc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let b = add(&mut svc, 2, 1);
    let mut rng = SplitMix64::new(0);
    let to_x = pkt("198.51.100.7:1", "203.0.113.10:80");
    // List B, A, idle: X → B, cached.
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(b));
    svc.conn_bind(b, ConnKind::Inactive).unwrap();
    // Changing only lblc_expiration keeps the cache: still B.
    let mut cfg = SchedulerConfig::new(SchedulerKind::Lblc);
    cfg.lblc_expiration = Duration::from_secs(60);
    svc.set_scheduler(cfg, now).unwrap();
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(b));
    // Another scheduler, then lblc again: a fresh, empty cache → wlc → A.
    svc.set_scheduler(SchedulerKind::Wlc, now).unwrap();
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(a));
    svc.set_scheduler(cfg, now).unwrap();
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(a));
    assert_eq!(svc.scheduler().kind, SchedulerKind::Lblc);
}

#[test]
fn lblc_cache_keeps_a_removed_dest_in_the_trash() {
    let (mut svc, now) = service(SchedulerKind::Lblc, ServiceFlags::NONE);
    let a = add(&mut svc, 1, 1);
    let mut rng = SplitMix64::new(0);
    let to_x = pkt("198.51.100.7:1", "203.0.113.10:80");
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(a));
    // Removed without connections, but the cache entry holds it (the
    // kernel's ip_vs_dest_hold), so it waits in the trash...
    svc.remove_dest(a).unwrap();
    assert_eq!(svc.trashed().count(), 1);
    // ...and is not used while unavailable.
    assert_eq!(svc.pick(now, &to_x, &mut rng), None);
    // Re-added, it is the same destination and the entry serves X again.
    let again = add(&mut svc, 1, 1);
    assert_eq!(again, a);
    let b = add(&mut svc, 2, 1);
    // wlc alone would take B (first in the list, idle); the cache says A.
    assert_eq!(svc.pick(now, &to_x, &mut rng), Some(a));
    let _ = b;
}
