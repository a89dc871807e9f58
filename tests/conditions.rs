//! The compiled browser condition matches exactly the URLs its pattern
//! names, for exactly the requests its policy lets through. DNR's
//! `urlFilter`, `regexFilter`, `initiatorDomains`, `requestMethods` and
//! `resourceTypes` are evaluated here with their documented semantics, and
//! must agree with `SitePattern::matches` and the matcher on every generated
//! URL and request, lookalikes and tricks included.
//! <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#type-RuleCondition>

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use regex::Regex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokenward_core::compile::{compile_rule, site_rule_id, Target};
use tokenward_core::dnr::{Browser, RequestMethod, ResourceType, Rule};
use tokenward_core::initiator::RequestFacts;
use tokenward_core::pattern::with_ascii_host;
use tokenward_core::rules::{RuleBook, SiteRule};
use tokenward_core::testing::PunycodeNames;
use tokenward_testkit::scope;
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

/// DNR's `initiatorDomains`, written from the documentation rather than
/// shared with the compiler: the initiator's host is a listed domain or a
/// subdomain of one; a request without an initiator, or with an opaque one,
/// never matches.
fn initiator_matches(rule: &Rule, initiator: Option<&str>) -> bool {
    let Some(domains) = &rule.condition.initiator_domains else {
        return true;
    };
    let host = initiator
        .and_then(|i| Url::parse(i).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let Some(host) = host else { return false };
    domains
        .iter()
        .any(|d| host == *d || (host.ends_with(&format!(".{d}")) && !d.starts_with('[')))
}

/// The whole condition for one request, `compiled` regex and all.
fn request_matches(rule: &Rule, regex: &Regex, request: &RequestFacts<'_>) -> bool {
    let methods_ok = rule
        .condition
        .request_methods
        .as_ref()
        .is_none_or(|m| m.contains(&request.method));
    applies_to(rule, request.kind)
        && methods_ok
        && initiator_matches(rule, request.initiator)
        && regex.is_match(request.url)
}

fn rule_for(pattern: &str) -> Option<SiteRule> {
    let mut book = RuleBook::default();
    book.save(&scope::bearer_draft(pattern, false, "t").with_ascii_hosts(&PunycodeNames))
        .ok()
        .cloned()
}

/// Whether the browser would inject for this URL: the page rule for http(s)
/// URLs of any type, the WebSocket rule for ws(s) handshakes.
fn browser_injects(rule: &SiteRule, url: &Url) -> bool {
    let compiled = compile_rule(rule, Browser::Chromium).unwrap();
    let (page, socket) = (&compiled[0], &compiled[1]);
    let text = url.as_str();
    match url.scheme() {
        "ws" | "wss" => {
            condition_matches(socket, text, ResourceType::Websocket)
                || condition_matches(page, text, ResourceType::Websocket)
        }
        _ => {
            [
                ResourceType::MainFrame,
                ResourceType::Xmlhttprequest,
                ResourceType::Image,
            ]
            .into_iter()
            .all(|t| condition_matches(page, text, t))
                && !condition_matches(socket, text, ResourceType::MainFrame)
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
}

/// Every tricky family against the whole overlapping rule set, asked as
/// the user's own navigation and as requests from every kind of page: the
/// site rules whose compiled conditions match are exactly those the matcher
/// derives from the patterns and policies, in both browsers' dialects.
#[test]
fn tricky_families_agree_with_the_matcher() {
    let mut book = RuleBook::default();
    for rule in scope::RULES {
        // As the background saves it: hosts typed in Unicode made ASCII.
        book.save(&rule.draft().with_ascii_hosts(&PunycodeNames))
            .unwrap_or_else(|e| panic!("{}: {e}", rule.pattern));
    }
    for target in [Target::CHROMIUM, Target::FIREFOX] {
        let compiled: Vec<(Rule, Regex)> = tokenward_core::compile::compile(&book, target)
            .unwrap()
            .into_iter()
            .map(|r| {
                let regex = condition_regex(&r);
                (r, regex)
            })
            .collect();
        let (mut compared, mut matched, mut refused_elsewhere) = (0, 0, 0);
        for (i, case) in scope::urls(0x5eed, 5_000).iter().enumerate() {
            // The browser presents a request with its host in ASCII.
            let Ok(url) = Url::parse(&with_ascii_host(&case.url, &PunycodeNames)) else {
                continue;
            };
            for request in scope::requests(url.as_str(), i) {
                let facts = RequestFacts {
                    url: url.as_str(),
                    initiator: request.initiator.as_deref(),
                    method: RequestMethod::parse(request.method),
                    kind: serde_json::from_value(serde_json::json!(request.kind)).unwrap(),
                };
                let mut by_conditions: Vec<u32> = compiled
                    .iter()
                    .filter(|(r, regex)| request_matches(r, regex, &facts))
                    .map(|(r, _)| site_rule_id(r.id))
                    .collect();
                by_conditions.sort_unstable();
                by_conditions.dedup();
                let mut by_matcher: Vec<u32> = tokenward_core::matcher::applying_to(&book, &facts)
                    .iter()
                    .map(|r| r.id)
                    .collect();
                by_matcher.sort_unstable();
                assert_eq!(
                    by_conditions, by_matcher,
                    "{:?}: {} ({}) as {url}, {request:?}",
                    target.browser, case.url, case.family
                );
                let by_url = tokenward_core::matcher::applying(&book, url.as_str()).len();
                refused_elsewhere += usize::from(by_url > by_matcher.len());
                compared += 1;
                matched += usize::from(!by_matcher.is_empty());
            }
        }
        assert!(
            compared > 15_000 && matched > 800 && refused_elsewhere > 600,
            "{:?}: compared {compared}, matched {matched}, refused for the initiator {refused_elsewhere}",
            target.browser
        );
    }
}
