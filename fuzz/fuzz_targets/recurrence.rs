//! Fuzz target: `todo_domain_fuzz::recurrence` on arbitrary bytes (`cargo xtask fuzz recurrence`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_domain_fuzz::recurrence(data));
