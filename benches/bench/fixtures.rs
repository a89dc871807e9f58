//! Stored states and rule sets the bench installs, built with the real
//! core (`RuleBook::save`, `State::encode`, `compile`), and the calls that
//! install them through the bench page of the extension.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokenward_core::compile::{self, Target};
use tokenward_core::credential::{
    Account, Credential, CredentialKind, Credentials, Endpoint, Timestamp,
};
use tokenward_core::header::Secret;
use tokenward_core::protection::Protection;
use tokenward_core::provider::Provider;
use tokenward_core::rules::RuleBook;
use tokenward_core::store::{State, StoredWrite};

use crate::browser::Browser;
use crate::workload;

/// A book of `fillers` filler rules (see `workload::pattern`) followed by one
/// bearer rule per `(pattern, token)` in `live`.
pub(crate) fn book(fillers: usize, live: &[(&str, &str)]) -> RuleBook {
    let mut book = workload::filler_book(fillers).unwrap_or_else(|e| panic!("{e}"));
    for (pattern, token) in live {
        book.save(&workload::bearer_draft(pattern, token, false))
            .unwrap_or_else(|e| panic!("bench rule {pattern}: {e}"));
    }
    book
}

/// `book` as `storage.local` holds it (the head and a key per rule), for a
/// user who chose to keep tokens without a passphrase (the popup's first
/// question): rules are then dynamic rules, which outlive the browser
/// session.
pub(crate) fn state(book: &RuleBook) -> Json {
    stored(&State {
        book: book.clone(),
        protection: Protection::Convenience,
        ..State::default()
    })
}

/// `state` as Tokenward itself writes it whole: the keys of one
/// `storage.local.set`.
fn stored(state: &State) -> Json {
    Json::Object(StoredWrite::whole(state.encode()).set)
}

/// What Tokenward compiles for in `browser`: each browser refuses the
/// resource types only the other knows.
pub(crate) fn target(browser: &Browser) -> Target {
    match browser.engine {
        crate::browser::Engine::Chromium => Target::CHROMIUM,
        crate::browser::Engine::Firefox => Target::FIREFOX,
    }
}

/// The browser rules `book` compiles to, as the DNR JSON a page hands to
/// `updateDynamicRules`: what the reference extension installs.
pub(crate) fn dnr_rules(browser: &Browser, book: &RuleBook) -> Json {
    let rules = compile::compile(book, target(browser)).unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(rules).unwrap_or_else(|e| panic!("{e}"))
}

/// The browser rules site rule `id` of `book` compiles to.
pub(crate) fn dnr_rules_of(
    browser: &Browser,
    book: &RuleBook,
    id: tokenward_core::rules::SiteRuleId,
) -> Json {
    let ids = compile::browser_rule_ids(id).unwrap_or_else(|| panic!("site rule id {id}"));
    let rules: Vec<_> = compile::compile(book, target(browser))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|rule| ids.contains(&rule.id))
        .collect();
    serde_json::to_value(rules).unwrap_or_else(|e| panic!("{e}"))
}

/// How many browser rules `book` installs.
pub(crate) fn rule_count(book: &RuleBook) -> usize {
    compile::usage(book).rules
}

/// The highest browser rule id `book` installs.
pub(crate) fn last_rule_id(book: &RuleBook) -> Option<u32> {
    compile::compile(book, Target::CHROMIUM)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|r| r.id)
        .max()
}

/// The popup's world: `count` credentials, as logins and created tokens
/// leave them (every provider in turn, valid, expiring soon, expired or
/// without expiry), and one rule covering `site`, the tab it describes.
/// The site half renders the same for every count; the credential list
/// grows with it.
pub(crate) fn popup_state(count: usize, site: &str) -> Json {
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
    );
    let mut credentials = Credentials::default();
    for i in 0..count {
        let provider = Provider::ALL[i % Provider::ALL.len()];
        let endpoint = Endpoint::default_for(provider)
            .or_else(|| Endpoint::new(&format!("https://c{i}.bench.example")).ok())
            .unwrap_or_else(|| panic!("no endpoint for credential {i}"));
        let kind = match provider {
            Provider::BentoCloud => CredentialKind::ApiToken {
                scopes: vec!["api".to_owned()],
                deployments: None,
            },
            _ => CredentialKind::PersonalAccessToken,
        };
        let secret = Secret::from_input(&format!("popup-bench-{i:04}-0123456789abcdef"))
            .unwrap_or_else(|e| panic!("credential {i}: {e}"));
        let mut credential = Credential::new(0, provider, endpoint, kind, secret);
        credential.info.account = Account {
            user: Some(format!("user{i}")),
            email: Some(format!("user{i}@bench.example")),
            organizations: vec![format!("org{}", i % 3)],
        };
        credential.info.name = format!("bench token {i}");
        credential.info.created = Some(Timestamp(now.0 - 86_400 * 30));
        credential.info.expires = match i % 4 {
            0 => None,
            1 => Some(now.plus_days(90)),
            2 => Some(now.plus_days(3)),
            _ => Some(Timestamp(now.0 - 86_400)),
        };
        credentials
            .add(credential)
            .unwrap_or_else(|| panic!("no credential id left for {i}"));
    }
    stored(&State {
        book: book(0, &[(site, "popup-bench-token")]),
        credentials,
        protection: Protection::Convenience,
        ..State::default()
    })
}

/// The popup's state with `rules` site rules: the bench site's, and
/// fillers for other sites; no credential. With the browser rules they
/// compile to, which the seed waits for.
pub(crate) fn popup_state_with_rules(rules: usize, site: &str) -> (Json, usize) {
    let book = book(rules.saturating_sub(1), &[(site, "popup-bench-token")]);
    let count = rule_count(&book);
    (state(&book), count)
}

/// Calls `window.<function>(...args)` in the current page and returns what
/// its promise resolves to; panics, saying so, if it rejects.
pub(crate) async fn call(browser: &Browser, function: &str, args: Vec<Json>) -> Json {
    let script = format!(
        "const done = arguments[arguments.length - 1];\n\
         const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
         Promise.resolve().then(() => window.{function}(...args)).then(\n\
           (v) => done({{ ok: v === undefined ? null : v }}),\n\
           (e) => done({{ err: String(e && e.stack || e) }}));"
    );
    let answer = browser
        .client
        .execute_async(&script, args)
        .await
        .unwrap_or_else(|e| panic!("window.{function}(): {e}"));
    if let Some(err) = answer.get("err") {
        panic!("window.{function}() threw: {err}");
    }
    answer.get("ok").cloned().unwrap_or(Json::Null)
}

/// Navigates the current tab to Tokenward's bench page and waits for its
/// helpers.
pub(crate) async fn open_bench_page(browser: &Browser) {
    browser.goto(&browser.extension_url("bench.html")).await;
    browser
        .wait_js(
            "the bench page's helpers",
            crate::browser::WAIT,
            "return typeof window.benchSeed === 'function';",
        )
        .await;
}

/// Polls (every 20 ms, up to `timeout`) until the extension of the current
/// extension page holds `count` dynamic rules.
pub(crate) async fn wait_rule_count(browser: &Browser, count: usize, timeout: Duration) {
    wait_rule_count_in(browser, "getDynamicRules", count, timeout).await;
}

/// [`wait_rule_count`] for the rules `getter` (`getDynamicRules`,
/// `getSessionRules`) lists.
pub(crate) async fn wait_rule_count_in(
    browser: &Browser,
    getter: &str,
    count: usize,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let script = format!(
        "return (await (globalThis.browser ?? globalThis.chrome)\
         .declarativeNetRequest.{getter}()).length;"
    );
    loop {
        let held = browser
            .exec_async(&script)
            .await
            .as_u64()
            .unwrap_or(u64::MAX);
        if held == count as u64 {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {getter} to list {count} rules; {held} held");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stores `book` as Tokenward's state from its bench page (current tab) and
/// waits until the background has installed its rules.
pub(crate) async fn seed_tokenward(browser: &Browser, book: &RuleBook) {
    seed_tokenward_state(browser, state(book), rule_count(book)).await;
}

/// Stores `state` (the keys of [`state`] or [`popup_state`]) as
/// Tokenward's from its bench page (current tab) and waits until the
/// browser holds its `rules` browser rules.
pub(crate) async fn seed_tokenward_state(browser: &Browser, state: Json, rules: usize) {
    call(browser, "benchSeed", vec![state]).await;
    wait_rule_count(browser, rules, Duration::from_secs(60)).await;
}

/// Hands `book`'s compiled rules to the reference extension's background
/// from its page (current tab) and waits until they are installed.
pub(crate) async fn seed_reference(browser: &Browser, book: &RuleBook) {
    seed_reference_in(browser, book, Held::Dynamic).await;
}

/// Which of its rule sets the reference extension holds a book's rules in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    Dynamic,
    /// As Tokenward holds its book when protected.
    Session,
}

/// [`seed_reference`] into the rule set `held`; the other set is emptied.
pub(crate) async fn seed_reference_in(browser: &Browser, book: &RuleBook, held: Held) {
    let (set, getter, other) = match held {
        Held::Dynamic => ("dynamic", "getDynamicRules", "getSessionRules"),
        Held::Session => ("session", "getSessionRules", "getDynamicRules"),
    };
    tell_reference(
        browser,
        json!({ "type": "install", "set": set, "rules": dnr_rules(browser, book) }),
    )
    .await;
    let timeout = Duration::from_secs(60);
    wait_rule_count_in(browser, getter, rule_count(book), timeout).await;
    wait_rule_count_in(browser, other, 0, timeout).await;
}

/// Panics unless `reply["answer"]` is the reference extension's `{ ok: true }`.
pub(crate) fn expect_accepted(reply: &Json) {
    assert_eq!(
        reply["answer"],
        json!({ "ok": true }),
        "the reference extension refused a change: {reply}"
    );
}

/// Sends `message` to the reference extension's background from its page
/// (current tab) and waits for its answer that the browser took the change.
/// Returns when it was sent and when the answer came, as
/// `performance.timeOrigin + performance.now()` (how the bench site's pages
/// stamp requests).
pub(crate) async fn tell_reference(browser: &Browser, message: Json) -> (f64, f64) {
    let script = "const done = arguments[arguments.length - 1];\n\
                  const now = () => performance.timeOrigin + performance.now();\n\
                  const sent = now();\n\
                  (globalThis.browser ?? globalThis.chrome).runtime.sendMessage(arguments[0])\
                  .then((v) => done({ answer: v, sent, answered: now() }),\
                        (e) => done({ answer: { error: String(e) } }));";
    let reply = browser
        .client
        .execute_async(script, vec![message])
        .await
        .unwrap_or_else(|e| panic!("message the reference extension: {e}"));
    expect_accepted(&reply);
    let at = |key: &str| reply[key].as_f64().unwrap_or(f64::NAN);
    (at("sent"), at("answered"))
}
