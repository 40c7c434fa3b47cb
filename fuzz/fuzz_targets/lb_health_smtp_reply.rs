#![no_main]
//! The SMTP reply parser: no panic, consumed counts stay in bounds.
use lb_health::wire::smtp::ReplyParser;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut p = ReplyParser::default();
    for chunk in rest.chunks(usize::from(split).max(1)) {
        match p.feed(chunk) {
            Ok(Some((code, used))) => {
                assert!((100..1000).contains(&code) && used <= chunk.len());
                p.reset();
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
});
