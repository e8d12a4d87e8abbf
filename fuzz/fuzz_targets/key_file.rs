#![no_main]
//! Fuzz target `key_file`: see `checks.rs` for what it asserts.

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::key_file(data));
