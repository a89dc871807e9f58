//! Any secret, any scheme, any header name: what is accepted never carries
//! CR, LF or NUL into the header the browser sends, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::header::{HeaderName, HeaderValue, Secret, ValueScheme};

fuzz_target!(|input: (u8, &str, &str)| {
    let (selector, name, secret) = input;
    let scheme = ValueScheme::ALL[usize::from(selector) % ValueScheme::ALL.len()];
    if let Ok(name) = HeaderName::new(name) {
        let name = name.as_str();
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()), "{name:?}");
    }
    let Ok(secret) = Secret::from_input(secret) else { return };
    assert!(!secret.expose().contains(['\r', '\n', '\0']));
    let Ok(value) = HeaderValue::new(scheme, secret) else { return };
    let rendered = value.render().expect("a value that was accepted renders");
    assert!(
        rendered.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
        "header value with a forbidden byte: {rendered:?}"
    );
    let masked = value.masked();
    assert!(!masked.contains(['\r', '\n', '\0']));
});
