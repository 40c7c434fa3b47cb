//! lbsim on arbitrary input: the text before the first NUL byte is the rule
//! file, the rest the client file. Any input gives output or an error naming
//! a file and line, never a panic (including the scheduling of whatever
//! services and clients the input describes).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules, clients) = text.split_once('\0').unwrap_or((text, ""));
    match lb_examples::lbsim::run("rules", rules, "clients", clients, data.len() % 2 == 0) {
        Ok(out) => assert!(out.lines().count() <= clients.lines().count()),
        Err(e) => assert!(e.line >= 1 && (e.file == "rules" || e.file == "clients")),
    }
});
