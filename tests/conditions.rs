//! The compiled browser condition matches exactly the URLs its pattern
//! names. DNR's `urlFilter` and `regexFilter` are evaluated here with their
//! documented semantics, and must agree with `SitePattern::matches` on every
//! generated URL, lookalikes and tricks included.
//! <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#property-RuleCondition-urlFilter>

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

#[path = "common/scope.rs"]
mod scope;

use proptest::prelude::*;
use regex::Regex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokenward::compile::{compile_rule, Limits};
use tokenward::dnr::{ResourceType, Rule};
use tokenward::rules::{RuleBook, SiteRule};
use url::Url;

/// How many generated cases the browser would inject into: the property is
/// only worth something if both answers occur often.
static MATCHED: AtomicUsize = AtomicUsize::new(0);

/// A `urlFilter` as a regex: `|` anchors at the start, `^` is a separator
/// (anything but a letter, digit, `_`, `-`, `.`, `%`) or the end, `*` is
/// anything. Only these appear in what Tokenward emits; `||` never does.
fn url_filter_regex(filter: &str) -> Regex {
    assert!(
        !filter.starts_with("||"),
        "the compiler never emits a domain anchor"
    );
    let mut out = String::new();
    let body = filter.strip_prefix('|').map_or(filter, |rest| {
        out.push('^');
        rest
    });
    for c in body.chars() {
        match c {
            '^' => out.push_str("(?:[^A-Za-z0-9_.%-]|$)"),
            '*' => out.push_str(".*"),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).unwrap()
}

/// A compiled rule's condition as a regex, with the checks the browser makes
/// when it accepts the rule.
fn condition_regex(rule: &Rule) -> Regex {
    let c = &rule.condition;
    assert_eq!(c.is_url_filter_case_sensitive, Some(true));
    match (&c.url_filter, &c.regex_filter) {
        (Some(filter), None) => {
            assert!(filter.is_ascii());
            url_filter_regex(filter)
        }
        (None, Some(regex)) => {
            assert!(regex.is_ascii() && regex.len() < 2048);
            Regex::new(regex).unwrap()
        }
        other => panic!("exactly one filter expected, got {other:?}"),
    }
}

fn applies_to(rule: &Rule, resource: ResourceType) -> bool {
    rule.condition
        .resource_types
        .as_ref()
        .unwrap()
        .contains(&resource)
}

fn condition_matches(rule: &Rule, url: &str, resource: ResourceType) -> bool {
    assert!(url.is_ascii(), "browsers match canonical, ASCII URLs");
    applies_to(rule, resource) && condition_regex(rule).is_match(url)
}

fn rule_for(pattern: &str) -> Option<SiteRule> {
    let mut book = RuleBook::default();
    book.save(&scope::bearer_draft(pattern, false, "t"))
        .ok()
        .cloned()
}

/// Whether the browser would inject for this URL: the page rule for http(s)
/// URLs of any type, the WebSocket rule for ws(s) handshakes.
fn browser_injects(rule: &SiteRule, url: &Url) -> bool {
    let [page, socket] = compile_rule(rule).unwrap();
    let text = url.as_str();
    match url.scheme() {
        "ws" | "wss" => {
            condition_matches(&socket, text, ResourceType::Websocket)
                || condition_matches(&page, text, ResourceType::Websocket)
        }
        _ => {
            [
                ResourceType::MainFrame,
                ResourceType::Xmlhttprequest,
                ResourceType::Image,
            ]
            .into_iter()
            .all(|t| condition_matches(&page, text, t))
                && !condition_matches(&socket, text, ResourceType::MainFrame)
        }
    }
}

const LABELS: &[&str] = &[
    "api",
    "example",
    "evil",
    "a",
    "b-c",
    "xn--bcher-kva",
    "localhost",
    "com",
    "test",
];
const PATHS: &[&str] = &[
    "", "/", "/v1", "/v1/", "/v1/x", "/v10", "/v1.json", "/v1-beta", "/V1", "/v1;p", "/v1:run",
    "/v1%2Fx", "/v2/v1", "/a/b",
];

fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LABELS), 1..4).prop_map(|labels| labels.join("."))
}

/// Pieces of a generated pattern, so URLs can be built near it.
#[derive(Debug, Clone)]
struct Parts {
    scheme: &'static str,
    wild: bool,
    host: String,
    port: &'static str,
    path: &'static str,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        prop::sample::select(&["http", "https"][..]),
        any::<bool>(),
        host(),
        prop::sample::select(&["", ":8080", ":443", ":80"][..]),
        prop::sample::select(PATHS),
    )
        .prop_map(|(scheme, wild, host, port, path)| Parts {
            scheme,
            wild,
            host,
            port,
            path,
        })
}

fn pattern_text(p: &Parts) -> String {
    format!(
        "{}://{}{}{}{}",
        p.scheme,
        if p.wild { "*." } else { "" },
        p.host,
        p.port,
        p.path
    )
}

/// A URL that matches the pattern, then changed in a few places: scheme,
/// user info, lookalike prefixes and suffixes, subdomains, port, path
/// boundary, query, case. Each change is likely alone, so near misses are
/// common rather than one in thousands.
fn url_near(p: Parts) -> impl Strategy<Value = String> {
    let same_ws = if p.scheme == "http" { "ws" } else { "wss" };
    (
        prop_oneof![6 => Just(p.scheme), 2 => Just(same_ws), 2 => prop::sample::select(&["http", "https", "ws", "wss"][..])],
        prop_oneof![8 => Just(""), 1 => Just("user:pw@"), 1 => Just("api.example.com@")],
        prop_oneof![4 => Just(if p.wild { "x." } else { "" }), 1 => Just("y.z."), 1 => Just("evil"), 1 => Just("")],
        prop_oneof![8 => Just(""), 1 => Just(".evil.test"), 1 => Just("x"), 1 => Just(".")],
        prop_oneof![7 => Just(p.port), 3 => prop::sample::select(&["", ":8080", ":443", ":80", ":8443"][..])],
        prop_oneof![
            6 => prop::sample::select(&["", "/", "0", ".json", "-beta", "_x", "%2F", "/x", "?q=1", ";p", ":run", "~x", "/../v2"][..])
                .prop_map({ let base = p.path; move |tail| format!("{}{tail}", base.trim_end_matches('/')) }),
            4 => prop::sample::select(PATHS).prop_map(str::to_owned),
        ],
        prop_oneof![8 => Just(""), 1 => Just("?q=1"), 1 => Just("?https://api.example.com/")],
        prop_oneof![9 => Just(false), 1 => Just(true)],
    )
        .prop_map(move |(scheme, userinfo, prefix, suffix, port, path, query, upper)| {
            let host = format!("{prefix}{}{suffix}", p.host);
            let host = if upper { host.to_uppercase() } else { host };
            format!("{scheme}://{userinfo}{host}{port}{path}{query}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn compiled_condition_matches_exactly_the_pattern(
        (pattern, url) in parts().prop_flat_map(|p| (Just(pattern_text(&p)), url_near(p)))
    ) {
        let Some(rule) = rule_for(&pattern) else { return Ok(()) };
        let Ok(url) = Url::parse(&url) else { return Ok(()) };
        let injects = browser_injects(&rule, &url);
        if injects {
            MATCHED.fetch_add(1, Ordering::Relaxed);
        }
        prop_assert_eq!(
            injects,
            rule.pattern.matches(&url),
            "pattern {} url {}", rule.pattern, url
        );
    }

    #[test]
    fn canonical_form_parses_to_the_same_pattern(pattern in parts().prop_map(|p| pattern_text(&p))) {
        if let Some(rule) = rule_for(&pattern) {
            let again = rule_for(&rule.pattern.to_string()).unwrap();
            prop_assert_eq!(&again.pattern, &rule.pattern);
            prop_assert_eq!(again.pattern.to_string(), rule.pattern.to_string());
        }
    }
}

#[test]
fn generated_cases_include_many_matches() {
    // Runs the property on its own so the count is this run's.
    compiled_condition_matches_exactly_the_pattern();
    let matched = MATCHED.load(Ordering::Relaxed);
    assert!(
        matched > 400,
        "only {matched} of 4000 cases matched; the generator drifted away from its patterns"
    );
}

#[test]
fn the_evaluator_knows_the_classic_leaks() {
    let rule = rule_for("https://api.example.com").unwrap();
    for leak in [
        "https://api.example.com.evil.test/",
        "https://api.example.com@evil.test/",
        "https://evilapi.example.com/",
        "https://evil.test/?https://api.example.com/",
    ] {
        assert!(
            !browser_injects(&rule, &Url::parse(leak).unwrap()),
            "{leak}"
        );
    }
    assert!(browser_injects(
        &rule,
        &Url::parse("https://api.example.com/x").unwrap()
    ));
    assert!(browser_injects(
        &rule,
        &Url::parse("wss://api.example.com/socket").unwrap()
    ));
    let _ = Limits::CHROMIUM;
}

/// Every tricky family against the whole overlapping rule set: the set of
/// browser rules whose compiled conditions match is exactly the set the
/// matcher derives from the patterns.
#[test]
fn tricky_families_agree_with_the_matcher() {
    let mut book = RuleBook::default();
    for rule in scope::RULES {
        book.save(&rule.draft())
            .unwrap_or_else(|e| panic!("{}: {e}", rule.pattern));
    }
    let compiled: Vec<(Rule, Regex)> = tokenward::compile::compile(&book, Limits::CHROMIUM)
        .unwrap()
        .into_iter()
        .map(|r| {
            let regex = condition_regex(&r);
            (r, regex)
        })
        .collect();
    let (mut compared, mut matched) = (0, 0);
    for case in scope::urls(0x5eed, 5_000) {
        let Ok(url) = Url::parse(&case.url) else {
            continue;
        };
        let websocket = matches!(url.scheme(), "ws" | "wss");
        let resource = if websocket {
            ResourceType::Websocket
        } else {
            ResourceType::MainFrame
        };
        let mut by_conditions: Vec<u32> = compiled
            .iter()
            .filter(|(r, regex)| applies_to(r, resource) && regex.is_match(url.as_str()))
            .map(|(r, _)| r.id)
            .collect();
        by_conditions.sort_unstable();
        let mut by_matcher: Vec<u32> = tokenward::matcher::applying(&book, url.as_str())
            .iter()
            .map(|r| r.id * 2 + u32::from(websocket))
            .collect();
        by_matcher.sort_unstable();
        assert_eq!(
            by_conditions, by_matcher,
            "{} ({}) as {url}",
            case.url, case.family
        );
        compared += 1;
        matched += usize::from(!by_matcher.is_empty());
    }
    assert!(
        compared > 7_500 && matched > 500,
        "compared {compared}, matched {matched}"
    );
}
