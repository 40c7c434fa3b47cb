#![no_main]
//! Arbitrary schedule / release / advance sequences on the persistence
//! table with a tiny wheel: never panic, and persistconns callbacks pair up
//! (all zero after a flush).
use lb_sched::hashkey::HashKey;
use lb_sched::persist::{Netmask, PersistConfig, PersistDests, PersistService, PersistTable, TemplateKey};
use std::net::{IpAddr, Ipv4Addr};

struct Dests {
    down: [bool; 4],
    count: [i64; 4],
}
impl PersistDests<u8> for Dests {
    fn is_available(&self, d: &u8) -> bool {
        !self.down[*d as usize]
    }
    fn weight(&self, _: &u8) -> u32 {
        1
    }
    fn template_bound(&mut self, d: &u8) {
        self.count[*d as usize] += 1;
    }
    fn template_unbound(&mut self, d: &u8) {
        self.count[*d as usize] -= 1;
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut cfg = PersistConfig::new(HashKey::new(1, 2));
    cfg.wheel_slots = 8;
    let mut t: PersistTable<u8> = PersistTable::new(cfg);
    let mut d = Dests { down: [false; 4], count: [0; 4] };
    let svc = PersistService { fwmark: 0, port: 80, netmask: Netmask::V4(u32::MAX) };
    let mut held = Vec::new();
    let mut now = 0u64;
    for c in data.chunks(3) {
        let [op, a, b] = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        now = now.saturating_add(u64::from(a) << (b % 40));
        match op % 4 {
            0 => {
                let k = TemplateKey::for_packet(&svc, 6, IpAddr::V4(Ipv4Addr::new(10, 0, 0, b % 8)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80).unwrap();
                let timeout = 1 + u32::from(a) * 1000;
                if let Ok(Some(p)) = t.schedule(now, &k, timeout, &mut d, |_| (b % 5 < 4).then_some(b % 4)) {
                    held.push(p.template);
                }
            }
            1 => {
                if !held.is_empty() {
                    let id = held.swap_remove(usize::from(a) % held.len());
                    t.release(now, id, &mut d).unwrap();
                }
            }
            2 => t.advance(now, &mut d),
            _ => d.down[usize::from(b % 4)] = a % 2 == 0,
        }
        assert_eq!(d.count.iter().sum::<i64>(), t.len() as i64);
    }
    t.flush(&mut d);
    assert_eq!(d.count, [0; 4]);
});
