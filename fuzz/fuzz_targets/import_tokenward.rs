//! The Tokenward import reader on any input: see `import_common.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "import_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check(tokenward_core::import::Format::Tokenward, data);
});
