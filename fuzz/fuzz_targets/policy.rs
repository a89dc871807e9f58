//! An administrator's policy, from any JSON: reading never panics, a
//! managed rule never names every site, and a refused entry's message
//! never repeats a value given under a secret's name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::pattern::{ParseOptions, SitePattern};
use tokenward_core::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let policy = Policy::read(Some(&value));
    for rule in &policy.rules {
        // What was accepted is a site pattern that parses back to itself,
        // which `*`, `<all_urls>` and `*://*/*` never do.
        let again = SitePattern::parse(&rule.pattern.to_string(), ParseOptions { allow_http: true });
        assert_eq!(again.as_ref(), Ok(&rule.pattern));
    }
    let said = serde_json::to_string(&policy.problems).expect("problems serialize");
    let mut secrets = Vec::new();
    collect_secrets(&value, &mut secrets);
    for secret in secrets.iter().filter(|s| s.len() >= 12) {
        if data.windows(secret.len()).filter(|w| *w == secret.as_bytes()).count() == 1 {
            assert!(!said.contains(secret.as_str()), "a secret is in a message: {said}");
        }
    }
});

fn collect_secrets(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                if ["secret", "token", "value", "password", "apiKey"].contains(&k.as_str()) {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                }
                collect_secrets(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}
