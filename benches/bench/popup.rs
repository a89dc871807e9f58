//! The popup's first render, the wasm's start-up on its own, and a large
//! rule set stored and applied, all timed inside extension pages.

use serde_json::{json, Value as Json};

use tokenward_core::compile;

use crate::browser::Browser;
use crate::config::Config;
use crate::core::engine_key;
use crate::fixtures::{self, call};
use crate::requests::Contender;
use crate::site::Site;
use crate::stats::Rows;
use crate::workload;

/// What the popup is opened on: so many credentials (the site's one rule
/// beside them), or so many site rules (the site's and others, no
/// credential).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PopupCase {
    Credentials(usize),
    Rules(usize),
}

impl PopupCase {
    /// The end of the case's row ids: the credential count as it always
    /// was, `rules<n>` for rules.
    fn id(self) -> String {
        match self {
            PopupCase::Credentials(n) => n.to_string(),
            PopupCase::Rules(n) => format!("rules{n}"),
        }
    }

    fn label(self) -> String {
        match self {
            PopupCase::Credentials(n) => format!("{n} credentials"),
            PopupCase::Rules(n) => format!("{n} rules"),
        }
    }

    fn credentials(self) -> usize {
        match self {
            PopupCase::Credentials(n) => n,
            PopupCase::Rules(_) => 0,
        }
    }
}

/// Every case the configuration asks for: the credential counts, then the
/// rule counts.
pub(crate) fn cases(config: &Config) -> Vec<PopupCase> {
    let credentials = config
        .popup_counts
        .iter()
        .map(|&n| PopupCase::Credentials(n));
    let rules = config.popup_rules.iter().map(|&n| PopupCase::Rules(n));
    credentials.chain(rules).collect()
}

/// Opens the popup, for the tab showing the bench site, in an iframe of the
/// bench page, once per repetition (after one warm-up), for each case. The
/// time is from the popup's navigation start to `<body data-ready>`, which
/// the popup sets once it rendered the site status and the header list
/// (`dom::mark_ready`).
pub(crate) async fn first_render(config: &Config, browser: &Browser, site: &Site, rows: &mut Rows) {
    let engine = engine_key(browser.engine);
    let site_origin = site.origin("api.localhost");
    let site_url = format!("{site_origin}/site.html?popup");
    browser.goto(&site_url).await;
    let site_tab = browser.current_tab().await;
    let bench_tab = browser.new_tab().await;
    fixtures::open_bench_page(browser).await;
    let tab_id = browser.tab_id_for_url(&site_url).await;
    let popup_url = browser.extension_url(&format!("popup.html?tabId={tab_id}"));

    for case in cases(config) {
        let (id, label, count) = (case.id(), case.label(), case.credentials());
        let (state, browser_rules) = match case {
            PopupCase::Credentials(n) => (
                fixtures::popup_state(n, &site_origin),
                compile::MAX_RULES_PER_SITE_RULE,
            ),
            PopupCase::Rules(n) => fixtures::popup_state_with_rules(n, &site_origin),
        };
        fixtures::seed_tokenward_state(browser, state, browser_rules).await;
        let mut ready = Vec::new();
        let mut loaded = Vec::new();
        // The steps to data-ready, from the popup's own marks.
        let mut scripts = Vec::new();
        let mut wasm = Vec::new();
        let mut started = Vec::new();
        let mut answer = Vec::new();
        let mut drawn = Vec::new();
        let mut rep = 0;
        let mut missed = 0;
        while ready.len() < config.popup_reps {
            let r = call(
                browser,
                "benchPopupOnce",
                vec![json!(popup_url), json!(15_000)],
            )
            .await;
            assert!(
                r.get("timeout").is_none(),
                "the popup never set data-ready ({label})"
            );
            assert_eq!(
                (
                    r["state"].as_str(),
                    r["headers"].as_u64(),
                    r["credentials"].as_u64()
                ),
                (Some("covered"), Some(1), Some(count as u64)),
                "the popup rendered something else than expected with {label}: {r}"
            );
            if r["missed"] == json!(true) {
                // data-ready was already set when the frame's body was first
                // seen: no exact time. Never seen so far; bounded all the same.
                missed += 1;
                assert!(
                    missed < 5,
                    "the popup renders before its body can be observed"
                );
                continue;
            }
            rep += 1;
            if rep == 1 {
                continue; // warm-up
            }
            let at = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
            ready.push(at("ready_ms"));
            loaded.push(at("dom_content_loaded_ms"));
            scripts.push(at("scripts_ms"));
            wasm.push(at("wasm_ms"));
            started.push(at("started_ms"));
            answer.push(at("answered_ms") - at("asked_ms"));
            drawn.push(at("ready_ms") - at("answered_ms"));
        }
        rows.push(
            &format!("popup.first_render.{id}"),
            engine,
            &format!("popup first render, {label}"),
            "ms",
            &ready,
        );
        rows.push(
            &format!("popup.dom_content_loaded.{id}"),
            engine,
            &format!("popup DOMContentLoaded, {label}"),
            "ms",
            &loaded,
        );
        rows.push(
            &format!("popup.scripts.{id}"),
            engine,
            &format!("popup: of which until its scripts run, {label}"),
            "ms",
            &scripts,
        );
        rows.push(
            &format!("popup.wasm.{id}"),
            engine,
            &format!("popup: of which until its wasm is ready, {label}"),
            "ms",
            &wasm,
        );
        rows.push(
            &format!("popup.started.{id}"),
            engine,
            &format!("popup: of which until its Rust starts (wasm ready, page parsed), {label}"),
            "ms",
            &started,
        );
        rows.push(
            &format!("popup.answer.{id}"),
            engine,
            &format!("popup: of which asked to answered (the background), {label}"),
            "ms",
            &answer,
        );
        rows.push(
            &format!("popup.drawn.{id}"),
            engine,
            &format!("popup: of which answered to drawn, {label}"),
            "ms",
            &drawn,
        );
    }

    // The floor: an empty extension page in the same kind of frame.
    let blank_url = browser.extension_url("blank.html");
    let mut blank = Vec::new();
    for rep in 0..=config.popup_reps {
        let r = call(
            browser,
            "benchBlankOnce",
            vec![json!(blank_url), json!(15_000)],
        )
        .await;
        assert!(r.get("timeout").is_none(), "the empty page never loaded");
        if rep == 0 {
            continue; // warm-up
        }
        blank.push(r["dom_content_loaded_ms"].as_f64().unwrap_or(f64::NAN));
    }
    rows.push(
        "popup.blank_dom_content_loaded",
        engine,
        "floor: an empty extension page's DOMContentLoaded, in the same frame",
        "ms",
        &blank,
    );

    // The wasm's start-up on its own, in the bench page.
    let mut init = Vec::new();
    let mut compile = Vec::new();
    for rep in 0..=config.popup_reps {
        let r = call(browser, "benchWasmInit", vec![]).await;
        if rep == 0 {
            continue;
        }
        init.push(r["init_ms"].as_f64().unwrap_or(f64::NAN));
        compile.push(r["compile_ms"].as_f64().unwrap_or(f64::NAN));
    }
    rows.push(
        "popup.wasm_init",
        engine,
        "wasm init: fetch, compile, instantiate, start",
        "ms",
        &init,
    );
    rows.push(
        "popup.wasm_compile",
        engine,
        "wasm compile alone (WebAssembly.compile)",
        "ms",
        &compile,
    );

    fixtures::seed_tokenward(browser, &Default::default()).await;
    browser.client.close_window().await.ok();
    browser.switch_to(&site_tab).await;
    let _ = bench_tab;
}

/// [`apply_floor`]'s install: sends the reference extension `arguments[0]`
/// and polls, as `benchApply` does (`bench/pages/extension-bench.js`), until
/// the browser holds rule `arguments[1]`; reports when the page saw it and
/// when the answer came, from the send.
const REFERENCE_APPLY: &str = "\
    const [message, lastId, timeoutMs, done] = arguments;\n\
    const api = globalThis.browser ?? globalThis.chrome;\n\
    const holds = async (id) =>\n\
      (await api.declarativeNetRequest.getDynamicRules({ ruleIds: [id] })).length > 0;\n\
    const tick = () => new Promise((resolve) => setTimeout(resolve, 1));\n\
    const started = performance.now();\n\
    let answer = null, answered = null;\n\
    const reply = api.runtime.sendMessage(message).then(\n\
      (v) => { answer = v; answered = performance.now() - started; },\n\
      (e) => { answer = { error: String(e) }; answered = performance.now() - started; });\n\
    (async () => {\n\
      for (;;) {\n\
        const seen = await holds(lastId);\n\
        const elapsed = performance.now() - started;\n\
        if (seen || elapsed > timeoutMs) {\n\
          await reply;\n\
          done(seen ? { live_ms: elapsed, answered_ms: answered, answer }\n\
                    : { timeout: true, answer });\n\
          return;\n\
        }\n\
        await tick();\n\
      }\n\
    })();";

/// Stores a state of `config.apply_rules` browser rules and times, in the
/// bench page, from `storage.local.set` to the browser holding the last
/// rule: the background's decode, compile, diff and one update. Starts
/// from no rule each time.
pub(crate) async fn apply(config: &Config, browser: &Browser, rows: &mut Rows) {
    let engine = engine_key(browser.engine);
    fixtures::open_bench_page(browser).await;
    let book = fixtures::book(workload::site_rules_for(config.apply_rules), &[]);
    let full = fixtures::state(&book);
    let empty = fixtures::state(&Default::default());
    let last = fixtures::last_rule_id(&book).map_or(Json::Null, |id| json!(id));
    let mut live = Vec::new();
    let mut stored = Vec::new();
    for rep in 0..=config.apply_reps {
        let cleared = call(
            browser,
            "benchApply",
            vec![empty.clone(), Json::Null, json!(60_000)],
        )
        .await;
        assert!(
            cleared.get("timeout").is_none(),
            "clearing the rules timed out"
        );
        let r = call(
            browser,
            "benchApply",
            vec![full.clone(), last.clone(), json!(60_000)],
        )
        .await;
        assert!(
            r.get("timeout").is_none(),
            "{} rules were not live after 60 s",
            config.apply_rules
        );
        if rep == 0 {
            continue;
        }
        live.push(r["live_ms"].as_f64().unwrap_or(f64::NAN));
        stored.push(r["stored_ms"].as_f64().unwrap_or(f64::NAN));
    }
    fixtures::wait_rule_count(
        browser,
        fixtures::rule_count(&book),
        std::time::Duration::from_secs(10),
    )
    .await;
    let n = config.apply_rules;
    rows.push(
        &format!("apply.live.{n}"),
        engine,
        &format!("{n} rules stored, compiled and applied"),
        "ms",
        &live,
    );
    rows.push(
        &format!("apply.stored.{n}"),
        engine,
        &format!("{n} rules: of which storage.local.set"),
        "ms",
        &stored,
    );
    call(
        browser,
        "benchApply",
        vec![empty, Json::Null, json!(60_000)],
    )
    .await;
}

/// Firefox's popup first render over Chromium's, for each case measured in
/// both.
pub(crate) fn firefox_over_chromium(config: &Config, rows: &mut Rows) {
    for case in cases(config) {
        let case_id = case.id();
        let id = format!("popup.first_render.{case_id}");
        let label = format!("Firefox ÷ Chromium: popup first render, {}", case.label());
        match (rows.median(&id, "firefox"), rows.median(&id, "chromium")) {
            (Some(f), Some(c)) if c > 0.0 => rows.push(
                &format!("popup.ratio_engines.first_render.{case_id}"),
                "-",
                &label,
                "×",
                &[f / c],
            ),
            _ => rows.missing(
                &format!("popup.ratio_engines.first_render.{case_id}"),
                "-",
                &label,
                "×",
                "not measured in both browsers",
            ),
        }
    }
}

/// The floor of [`apply`]: the reference extension, from its page, installs
/// the same `config.apply_rules` browser rules in one `updateDynamicRules`
/// call, timed as [`apply`] times Tokenward: from sending them until the
/// page sees the browser hold the last one (`getDynamicRules`, polled as
/// `benchApply` polls). Chromium answers `getDynamicRules` from the rules
/// it keeps on disk, which at 5,000 rules takes long enough that the poll
/// sees a change some 40 ms after the update's promise settled; timing the
/// floor to its answer and Tokenward to the poll counted that against
/// Tokenward only. The answer is kept as a row of its own. Starts from no
/// rule each time. Then the ratio of Tokenward's median to this one's.
pub(crate) async fn apply_floor(config: &Config, reference: &Contender, rows: &mut Rows) {
    let browser = &reference.browser;
    let engine = engine_key(browser.engine);
    let page = reference
        .extension_page
        .as_ref()
        .expect("the reference extension's page");
    browser.switch_to(page).await;
    let book = fixtures::book(workload::site_rules_for(config.apply_rules), &[]);
    let last = fixtures::last_rule_id(&book).expect("a rule");
    let mut live = Vec::new();
    let mut answered = Vec::new();
    for rep in 0..=config.apply_reps {
        fixtures::seed_reference(browser, &Default::default()).await;
        let r = browser
            .client
            .execute_async(
                REFERENCE_APPLY,
                vec![
                    json!({ "type": "install", "rules": fixtures::dnr_rules(browser, &book) }),
                    json!(last),
                    json!(60_000),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("install through the reference extension: {e}"));
        fixtures::expect_accepted(&r);
        assert!(
            r.get("timeout").is_none(),
            "the reference's rules were not live after 60 s"
        );
        if rep > 0 {
            live.push(r["live_ms"].as_f64().unwrap_or(f64::NAN));
            answered.push(r["answered_ms"].as_f64().unwrap_or(f64::NAN));
        }
    }
    fixtures::wait_rule_count(
        browser,
        fixtures::rule_count(&book),
        std::time::Duration::from_secs(10),
    )
    .await;
    let n = config.apply_rules;
    rows.push(
        &format!("apply.floor.live.{n}"),
        engine,
        &format!("floor, reference extension: {n} rules applied"),
        "ms",
        &live,
    );
    rows.push(
        &format!("apply.floor.answered.{n}"),
        engine,
        "floor: of which sent to its answer (the update's promise settled)",
        "ms",
        &answered,
    );
    rows.push_ratio_of_medians(
        &format!("apply.ratio_floor.live.{n}"),
        engine,
        &format!("Tokenward ÷ floor: {n} rules applied"),
        (&format!("apply.live.{n}"), &format!("apply.floor.live.{n}")),
    );
    fixtures::seed_reference(browser, &Default::default()).await;
}
