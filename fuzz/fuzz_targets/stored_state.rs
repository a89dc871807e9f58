//! The stored state decoder on any storage contents: assembling the keys
//! and decoding never panic; a state that decodes encodes and decodes back
//! to itself, and its rules compile or are refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::compile::{compile, Target};
use tokenward_core::credential::Timestamp;
use tokenward_core::store::{assemble, State};

fuzz_target!(|data: &[u8]| {
    let Ok(items) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(document) = assemble(&items) else {
        return;
    };
    let Ok(state) = State::decode(Some(document)) else {
        return;
    };
    let again = State::decode(Some(state.encode())).expect("an encoded state decodes");
    assert_eq!(again, state);
    let _ = compile(&state.rules_in_force(Timestamp(1_766_000_000)), Target::CHROMIUM);
});
