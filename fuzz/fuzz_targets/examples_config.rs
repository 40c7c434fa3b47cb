//! keepalived.conf parser: any text gives a configuration or a positioned
//! error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = lb_examples::config::parse_str("fuzz.conf", text)
    {
        let _ = e.to_string();
    }
});
