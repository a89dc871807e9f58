//! Every provider's answer parsers (BentoCloud, Jina AI, Nuclia, Hugging
//! Face, and OpenID Connect's discovery, tokens and ID token) on any status
//! and body: they never panic, and no error of a call made with a token
//! repeats it, even when the provider echoes it. (The parsers that hold no
//! token, a login's first steps, can only be checked for panics.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::credential::{Endpoint, Timestamp};
use tokenward_core::header::Secret;
use tokenward_core::provider::http::HttpResponse;
use tokenward_core::provider::{bentocloud, huggingface, jina, nuclia, openid, ProviderError};

const TOKEN: &str = "fuzz-secret-token-0123456789";

fn clean(result: Result<impl Sized, ProviderError>) {
    if let Err(e) = result {
        let said = format!("{e} {e:?}");
        assert!(!said.contains(TOKEN), "the token is in an error: {said}");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let Ok(body) = std::str::from_utf8(&data[2..]) else {
        return;
    };
    let body = body.replace("TOKEN", TOKEN);
    let response = HttpResponse::new(status, body.clone());
    let answers = vec![response.clone(), response.clone(), response.clone()];
    let secret = Secret::from_input(TOKEN).expect("a token");
    let endpoint = |e: &str| Endpoint::new(e).expect("an endpoint");
    let bento = endpoint("https://acme.cloud.bentoml.com");
    clean(bentocloud::who_am_i(&bento, &secret).finish(&answers));
    clean(bentocloud::list_tokens(&bento, &secret, None).finish(&answers));
    let _ = bentocloud::read_login_code(&response);
    let _ = bentocloud::read_login_poll(&response);
    let jina_api = endpoint("https://api.jina.ai");
    clean(jina::who_am_i(&jina_api, &secret).finish(&answers));
    clean(jina::list_tokens(&jina_api, &secret).finish(&answers));
    clean(jina::logout(&jina_api, &secret).finish(&answers));
    let _ = jina::read_login_stream_head(&response);
    for line in body.lines() {
        let _ = jina::read_login_event(line);
    }
    let _ = jina::read_grant(&response);
    let nuclia_zone = endpoint("https://europe-1.nuclia.cloud");
    clean(nuclia::who_am_i(&nuclia_zone, &secret).finish(&answers));
    clean(nuclia::list_tokens(&nuclia_zone, &secret).finish(&answers));
    clean(nuclia::verify_kb_key(&nuclia_zone, &secret).finish(&answers));
    if let Ok(call) = huggingface::who_am_i(&endpoint("https://huggingface.co"), &secret) {
        clean(call.finish(&answers));
    }
    let issuer = endpoint("https://login.example.com");
    let _ = openid::read_discovery(&issuer, &response);
    let _ = openid::read_tokens(&response);
    let _ = openid::read_id_token(
        &body,
        "https://login.example.com",
        "client",
        Some("nonce"),
        Timestamp(1_766_000_000),
    );
});
