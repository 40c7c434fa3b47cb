#![no_main]
//! The DNS reply checker against a fixed query: no panic on any datagram.
use lb_health::wire::dns::{QueryType, ReplyVerdict, check_reply, encode_query};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(query) = encode_query(0x1234, "www.example.com", QueryType::A) else { return };
    if let ReplyVerdict::Ok { .. } = check_reply(&query, data) {
        assert_eq!(&data[..2], &query[..2]);
    }
});
