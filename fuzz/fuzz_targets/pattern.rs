//! Any input: the parser never panics, and whatever it accepts compiles to a
//! condition the browser would take, and prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenward_core::compile::{compile_rule, Target};
use tokenward_core::dnr::Browser;
use tokenward_core::pattern::{ParseOptions, SitePattern, MAX_PATTERN_LEN};
use tokenward_core::rules::{HeaderDraft, RuleBook, RuleDraft};

fuzz_target!(|input: &str| {
    for allow_http in [false, true] {
        let Ok(pattern) = SitePattern::parse(input, ParseOptions { allow_http }) else {
            continue;
        };
        let canonical = pattern.to_string();
        assert!(canonical.is_ascii() && canonical.len() <= MAX_PATTERN_LEN);
        assert!(!canonical.chars().any(|c| c.is_whitespace() || c.is_control()));
        let again = SitePattern::parse(&canonical, ParseOptions { allow_http: true });
        assert_eq!(again.as_ref(), Ok(&pattern), "{canonical} must parse back to itself");

        let mut book = RuleBook::default();
        let draft = RuleDraft {
            pattern: input.to_owned(),
            allow_http,
            enabled: true,
            headers: vec![HeaderDraft {
                name: "Authorization".into(),
                scheme: "bearer".into(),
                secret: "t".into(),
                credential: None,
            }],
            ..RuleDraft::default()
        };
        let Ok(rule) = book.save(&draft).cloned() else {
            panic!("{input:?} parsed as a pattern but was refused as a rule");
        };
        for compiled in compile_rule(&rule, Browser::Firefox).expect("an accepted rule compiles") {
            let c = &compiled.condition;
            match (&c.url_filter, &c.regex_filter) {
                (Some(filter), None) => {
                    assert!(filter.is_ascii(), "urlFilter must be ASCII: {filter}");
                    assert!(filter.starts_with('|') && !filter.starts_with("||"), "{filter}");
                }
                (None, Some(regex)) => {
                    assert!(regex.is_ascii(), "regexFilter must be ASCII: {regex}");
                    // Far below RE2's default memory budget in Chromium.
                    assert!(regex.len() < 4 * MAX_PATTERN_LEN, "{regex}");
                }
                other => panic!("exactly one filter: {other:?}"),
            }
            assert!(compiled.priority >= 1 && compiled.priority < i32::MAX as u32);
        }
        let _ = compile(&book);
    }
});

fn compile(book: &RuleBook) -> usize {
    tokenward_core::compile::compile(book, Target::CHROMIUM).map_or(0, |r| r.len())
}
