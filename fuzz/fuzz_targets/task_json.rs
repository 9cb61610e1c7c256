//! Fuzz target: `todo_domain_fuzz::task_json` on arbitrary bytes (`cargo xtask fuzz task_json`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| todo_domain_fuzz::task_json(data));
