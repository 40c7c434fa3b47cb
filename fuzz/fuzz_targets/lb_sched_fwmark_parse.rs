#![no_main]
//! Port lists and prefixes from arbitrary text: never panic, and every parsed
//! range contains its own endpoints.
use lb_sched::fwmark::{PortSet, Prefix};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = PortSet::parse(s) {
        for &(lo, hi) in p.ranges() {
            assert!(lo <= hi && p.contains(lo) && p.contains(hi));
        }
    }
    if let Ok(p) = Prefix::parse(s) {
        assert!(p.len() <= if p.is_ipv6() { 128 } else { 32 });
    }
});
