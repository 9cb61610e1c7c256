//! Fuzz target: `todo_domain_fuzz::filters` on arbitrary bytes (`cargo xtask fuzz filters`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_domain_fuzz::filters(data));
