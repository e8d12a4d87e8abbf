#![no_main]
//! Fuzz target `tree_roundtrip`: see `checks.rs` for what it asserts.

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::tree_roundtrip(data));
