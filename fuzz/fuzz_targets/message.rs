//! The messages pages send the background, from any bytes: decoding never
//! panics, and what decodes encodes back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::message::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    let again = serde_json::to_vec(&request).expect("a request encodes");
    let back: Request = serde_json::from_slice(&again).expect("an encoded request decodes");
    assert_eq!(back, request);
    // Debug never panics either (it redacts secrets by hand).
    let _ = format!("{request:?}");
});
