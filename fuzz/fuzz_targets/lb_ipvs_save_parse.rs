//! The ipvsadm save/restore parser: arbitrary text must parse or fail with
//! a line number, and the saved form of a parsed table must be a fixed
//! point (the format is lossy by design: ipvsadm does not save `-M`
//! without `-p`, nor thresholds, nor flag-3 of sh/mh).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = lb_ipvs::save::parse_commands(text);
    let Ok(table) = lb_ipvs::save::parse_table(text) else { return };
    let saved = lb_ipvs::save::emit(&table);
    let Ok(back) = lb_ipvs::save::parse_table(&saved) else {
        // ipvsadm 1.31 saves flag-3 of sh/mh as an empty `-b `, which it
        // cannot restore either.
        assert!(saved.contains(" -b \n"), "{saved}");
        return;
    };
    assert_eq!(lb_ipvs::save::emit(&back), saved);
});
