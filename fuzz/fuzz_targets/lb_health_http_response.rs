#![no_main]
//! The HTTP response parser: arbitrary bytes in arbitrary splits must not
//! panic, and must not buffer past the limits.
use lb_health::wire::http::{Limits, ResponseParser};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the split size, so splits are explored too.
    let Some((&split, rest)) = data.split_first() else { return };
    let limits = Limits { max_line: 256, max_headers: 16, max_body: 4096 };
    let mut p = ResponseParser::new(limits);
    let mut result = Ok(0);
    for chunk in rest.chunks(usize::from(split).max(1)) {
        result = p.feed(chunk);
        if result.is_err() || p.is_done() {
            break;
        }
    }
    if result.is_ok() && !p.is_done() {
        let _ = p.finish();
    }
    if let Some(r) = p.response() {
        assert!(r.body.len() <= 4096);
        assert!((100..1000).contains(&r.status));
    }
});
