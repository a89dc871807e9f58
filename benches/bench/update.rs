//! Rule-update latency: from the click that saves a rule on the options
//! page to the first request carrying its header, and from the click that
//! disables it to the first request without, with other rules installed;
//! and the floor of the same two latencies: the reference extension told
//! to add, then remove, the same browser rules with the same rules
//! installed, from the message to the header on the wire.
//!
//! A page of the bench site in its own window polls `/echo` back to back
//! and keeps every change of the Authorization the server saw, stamped with
//! each request's send time; the options page stamps the click in a
//! capturing listener. Both stamps are `performance.timeOrigin +
//! performance.now()`, comparable across the two pages' processes.

use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use serde_json::json;
use tokenward_core::compile;

use crate::browser::Browser;
use crate::config::Config;
use crate::core::engine_key;
use crate::fixtures::{self, call};
use crate::harness::{Harness, RuleSpec, SaveOutcome};
use crate::requests::Contender;
use crate::site::Site;
use crate::stats::Rows;
use crate::workload;

/// Records, in a DOM attribute (readable from any script world), stamped as
/// the poller stamps requests: clicks on the save button and the toggles,
/// the stored state changing (`stored`), and the page showing the
/// background's answer in `#status` (`answered`: the background answers
/// once the browser took the rule update). Run again, it only clears the
/// record.
const RECORDER: &str = "\
    const root = document.documentElement;\n\
    root.dataset.benchEvents = '[]';\n\
    if (!root.dataset.benchRecorder) {\n\
      root.dataset.benchRecorder = '1';\n\
      const record = (what) => {\n\
        const at = performance.timeOrigin + performance.now();\n\
        const events = JSON.parse(root.dataset.benchEvents || '[]');\n\
        events.push([what, at]);\n\
        root.dataset.benchEvents = JSON.stringify(events);\n\
      };\n\
      document.addEventListener('click', (event) => {\n\
        const target = event.target.closest && event.target.closest('#rule-save, [data-action=toggle]');\n\
        if (target) record(target.id || target.dataset.action);\n\
      }, true);\n\
      (globalThis.browser ?? globalThis.chrome).storage.onChanged.addListener((changes, area) => {\n\
        if (area === 'local' && changes.state) record('stored');\n\
      });\n\
      const status = document.getElementById('status');\n\
      if (status) new MutationObserver(() => {\n\
        if (status.textContent.trim()) record('answered');\n\
      }).observe(status, { childList: true, characterData: true, subtree: true });\n\
    }\n\
    return null;";

/// What the recorder holds: `(event, time)`, in order.
async fn recorded(browser: &Browser) -> Vec<(String, f64)> {
    let events = browser
        .exec("return JSON.parse(document.documentElement.dataset.benchEvents || '[]');")
        .await;
    events
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| Some((e[0].as_str()?.to_owned(), e[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The time of the first `what` at or after `since`.
fn first(events: &[(String, f64)], what: &str, since: f64) -> Option<f64> {
    events
        .iter()
        .find(|(name, at)| name == what && *at >= since)
        .map(|(_, at)| *at)
}

/// The time of the click on `what` the recorder saw.
fn click(events: &[(String, f64)], what: &str) -> f64 {
    first(events, what, f64::MIN)
        .unwrap_or_else(|| panic!("no click on {what} was recorded: {events:?}"))
}

/// Milliseconds from `click` to the first `what` after it, or NaN.
fn after(events: &[(String, f64)], what: &str, click: f64) -> f64 {
    first(events, what, click).map_or(f64::NAN, |at| at - click)
}

/// How far apart two pages' clocks (`performance.timeOrigin +
/// performance.now()`) may read at the same moment: each browser coarsens
/// them (Firefox to the millisecond), in different processes.
const CLOCK_SLACK_MS: f64 = 5.0;

/// The bench site's polling page, in a window of its own.
struct Poller {
    window: WindowHandle,
    since: Instant,
    /// When the change last waited for happened: the next one comes after.
    last_change: f64,
}

impl Poller {
    /// Opens the poller on `origin` and starts it; the current window is
    /// `back` again when it returns.
    async fn start(browser: &Browser, origin: &str, back: &WindowHandle) -> Poller {
        let window = browser
            .client
            .new_window(false)
            .await
            .expect("open the poller's window")
            .handle;
        browser.switch_to(&window).await;
        browser.goto(&format!("{origin}/site.html?poller")).await;
        browser
            .wait_js(
                "the poller page's helpers",
                crate::browser::WAIT,
                "return typeof window.benchPollStart === 'function';",
            )
            .await;
        call(browser, "benchPollStart", vec![]).await;
        let since = Instant::now();
        browser.switch_to(back).await;
        Poller {
            window,
            since,
            last_change: f64::MIN,
        }
    }

    /// Waits until the poller saw the Authorization become `want` after
    /// `click` (the first such change since the one last waited for, and
    /// not before `click` by more than the clocks' slack); returns the
    /// latency to the first request with it and to the last request
    /// without it, in ms. Switches back to `back`.
    async fn wait_change(
        &mut self,
        browser: &Browser,
        back: &WindowHandle,
        click: f64,
        want: &str,
    ) -> (f64, f64) {
        browser.switch_to(&self.window).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        // After the change this poller last reported: the values alternate,
        // so that alone finds the one the click caused. The click's time
        // bounds only the first; later ones would be refused when the two
        // processes' clocks drift apart by more than the slack, as seen in
        // Firefox under load (a change seen 5+ ms "before" its click).
        let not_before = if self.last_change > f64::MIN {
            self.last_change
        } else {
            click - CLOCK_SLACK_MS
        };
        let (before, at) = loop {
            let log = call(browser, "benchPollRead", vec![]).await;
            let hit = log["changes"].as_array().and_then(|changes| {
                changes.iter().find_map(|c| {
                    let (before, at, value) = (c[0].as_f64()?, c[1].as_f64()?, c[2].as_str()?);
                    (at > not_before && value == want).then_some((before, at))
                })
            });
            if let Some(hit) = hit {
                break hit;
            }
            if Instant::now() >= deadline {
                panic!("the poller never saw Authorization {want:?} after the click: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.last_change = at;
        browser.switch_to(back).await;
        ((at - click).max(0.0), (before - click).max(0.0))
    }

    /// Stops and closes the poller, recording its mean period (the
    /// resolution of the latencies) as `id`; switches back to `back`.
    async fn finish(
        self,
        browser: &Browser,
        back: &WindowHandle,
        rows: &mut Rows,
        (id, label): (&str, &str),
    ) {
        browser.switch_to(&self.window).await;
        let log = call(browser, "benchPollRead", vec![]).await;
        call(browser, "benchPollStop", vec![]).await;
        let polls = log["polls"].as_f64().unwrap_or(f64::NAN);
        rows.push(
            id,
            engine_key(browser.engine),
            label,
            "ms",
            &[self.since.elapsed().as_secs_f64() * 1000.0 / polls],
        );
        browser.client.close_window().await.ok();
        browser.switch_to(back).await;
    }
}

/// How the user chose to keep tokens (the popup's first question), which
/// decides where Tokenward puts its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Without a passphrase: dynamic rules, which the browser keeps on disk.
    Convenience,
    /// With a passphrase, unlocked: session rules, in memory only.
    Protected,
}

impl Mode {
    /// The prefix of this mode's row ids and labels.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Mode::Convenience => ("update", ""),
            Mode::Protected => ("update.protected", "protected: "),
        }
    }
}

/// What the passphrase protects in the bench: nothing. Argon2id derives the
/// key from it once per rule count, when the rules are first protected.
const PASSPHRASE: &str = "bench passphrase, not a secret";

/// Sends `request` (a `Request` of the extension, as JSON) to the
/// background from the current extension page and returns the answer.
async fn tell_tokenward(browser: &Browser, request: serde_json::Value) -> serde_json::Value {
    let script = "const done = arguments[arguments.length - 1];\n\
                  (globalThis.browser ?? globalThis.chrome).runtime.sendMessage(arguments[0])\
                  .then((a) => done(JSON.parse(a)), (e) => done({ error: String(e) }));";
    browser
        .client
        .execute_async(script, vec![request])
        .await
        .unwrap_or_else(|e| panic!("message Tokenward's background: {e}"))
}

pub(crate) async fn run(config: &Config, h: &Harness, site: &Site, rows: &mut Rows) {
    let browser = &h.browser;
    let api = site.origin("api.localhost");

    let options_tab = browser.current_tab().await;
    let mut poller = Poller::start(browser, &api, &options_tab).await;
    let place = Place {
        config,
        h,
        api: &api,
        options_tab: &options_tab,
    };
    for mode in [Mode::Convenience, Mode::Protected] {
        for &total in &config.update_counts {
            edits(&place, &mut poller, mode, total, rows).await;
        }
    }
    poller
        .finish(
            browser,
            &options_tab,
            rows,
            (
                "update.poll_period",
                "poller: mean time between requests (the resolution of the above)",
            ),
        )
        .await;
    fixtures::open_bench_page(browser).await;
    fixtures::seed_tokenward(browser, &Default::default()).await;
}

/// Where the edits happen: the browser with Tokenward, its options page's
/// tab, and the bench site's origin the rule is for.
#[derive(Clone, Copy)]
struct Place<'a> {
    config: &'a Config,
    h: &'a Harness,
    api: &'a str,
    options_tab: &'a WindowHandle,
}

/// One rule saved and disabled through the options page, repeatedly, with
/// `total` browser rules installed counting it, in `mode`. Each repetition
/// starts from the same other rules, stored and installed once: the rule is
/// then deleted with the background's own request.
async fn edits(place: &Place<'_>, poller: &mut Poller, mode: Mode, total: usize, rows: &mut Rows) {
    let Place {
        config,
        h,
        api,
        options_tab,
    } = *place;
    let browser = &h.browser;
    let engine = engine_key(browser.engine);
    let fillers = fixtures::book(workload::site_rules_for(total).saturating_sub(1), &[]);
    fixtures::open_bench_page(browser).await;
    fixtures::seed_tokenward(browser, &fillers).await;
    if mode == Mode::Protected {
        let answer = tell_tokenward(browser, json!({"protect": {"passphrase": PASSPHRASE}})).await;
        assert!(
            answer.get("error").is_none() && answer["type"] != json!("error"),
            "protecting the rules failed: {answer}"
        );
        fixtures::wait_rule_count_in(
            browser,
            "getSessionRules",
            fixtures::rule_count(&fillers),
            Duration::from_secs(60),
        )
        .await;
    }
    let mut on = Vec::new();
    let mut on_before = Vec::new();
    let mut off = Vec::new();
    let mut on_stored = Vec::new();
    let mut on_answered = Vec::new();
    let mut off_stored = Vec::new();
    for rep in 0..=config.update_reps {
        h.open_options().await;
        let token = format!("update-{total}-{rep}");
        h.fill_rule_form(&RuleSpec::bearer(api, &token)).await;
        browser.exec(RECORDER).await;
        let id = match h.save_rule_form(true).await {
            SaveOutcome::Saved(id) => id,
            SaveOutcome::Error(e) => panic!("saving the bench rule failed: {e}"),
        };
        let saved = click(&recorded(browser).await, "rule-save");
        let (live, before) = poller
            .wait_change(browser, options_tab, saved, &format!("Bearer {token}"))
            .await;
        let events = recorded(browser).await;
        let save_stored = after(&events, "stored", saved);
        let save_answered = after(&events, "answered", saved);

        browser.exec(RECORDER).await;
        h.set_rule_enabled(&id, false).await;
        let toggled = click(&recorded(browser).await, "toggle");
        let (stopped, _) = poller.wait_change(browser, options_tab, toggled, "").await;
        let disable_stored = after(&recorded(browser).await, "stored", toggled);
        // Deleted with the background's own request, which answers once
        // the browser took the change: the next repetition starts from the
        // same other rules, as the floor's do, without storing and
        // installing them all again (a UI delete would race the options
        // page's redraw).
        let id: u32 = id.parse().unwrap_or_else(|_| panic!("rule id {id:?}"));
        let answer = tell_tokenward(browser, json!({"deleteRule": {"id": id}})).await;
        assert!(
            answer.get("error").is_none() && answer["type"] != json!("error"),
            "deleting the bench rule failed: {answer}"
        );
        if rep == 0 {
            continue; // warm-up
        }
        on.push(live);
        on_before.push(before);
        off.push(stopped);
        on_stored.push(save_stored);
        on_answered.push(save_answered);
        off_stored.push(disable_stored);
    }
    let (id, label) = mode.names();
    for (what, text, samples) in [
        ("save_live", "rule saved to header on the wire", &on),
        (
            "save_last_without",
            "rule saved: last request still without it",
            &on_before,
        ),
        (
            "save_stored",
            "rule saved: of which click to state stored",
            &on_stored,
        ),
        (
            "save_answered",
            "rule saved: click to the background's answer (rules applied)",
            &on_answered,
        ),
        ("disable_stopped", "rule disabled to header gone", &off),
        (
            "disable_stored",
            "rule disabled: of which click to state stored",
            &off_stored,
        ),
    ] {
        rows.push(
            &format!("{id}.{what}.{total}"),
            engine,
            &format!("{label}{text}, {total} rules installed"),
            "ms",
            samples,
        );
    }
}

/// The floor: the reference extension, from its page, adds the browser
/// rules Tokenward installs for the same rule (with the same other rules
/// installed as dynamic rules), then removes them, each in one
/// `updateDynamicRules` call; timed from sending the message to the
/// poller's first request with the header (without it). Then the ratios of
/// Tokenward's medians to these. The same change made to session rules
/// (`updateSessionRules`, kept in memory only), with the other rules held
/// as session rules too, is timed beside it: the floor of a protected
/// edit, since a protected Tokenward holds its book in session rules.
pub(crate) async fn floor(config: &Config, reference: &Contender, site: &Site, rows: &mut Rows) {
    let browser = &reference.browser;
    let engine = engine_key(browser.engine);
    let api = site.origin("api.localhost");
    let page = reference
        .extension_page
        .as_ref()
        .expect("the reference extension's page");
    browser.switch_to(page).await;
    let mut poller = Poller::start(browser, &api, page).await;

    for &total in &config.update_counts {
        let fillers = workload::site_rules_for(total).saturating_sub(1);
        // [dynamic, session] × [added, removed]
        let mut samples: [[Vec<f64>; 2]; 2] = Default::default();
        // The other rules are held in the set the change goes to, as
        // Tokenward holds its book: dynamic rules, or session rules when
        // protected. Chromium's session update takes longer with more
        // session rules held, so a session change beside dynamic rules
        // would be a floor no extension holding its rules in session rules
        // could reach.
        for (set, message, held) in [
            (0, "update", fixtures::Held::Dynamic),
            (1, "update-session", fixtures::Held::Session),
        ] {
            fixtures::seed_reference_in(browser, &fixtures::book(fillers, &[]), held).await;
            for rep in 0..=config.update_reps {
                let token = format!("floor-{total}-{rep}-{set}");
                let with = fixtures::book(fillers, &[(&api, &token)]);
                let id = with.rules().last().map(|r| r.id).expect("the new rule");
                let added = fixtures::dnr_rules_of(browser, &with, id);
                let ids = compile::browser_rule_ids(id).expect("browser rule ids");
                let (sent, _) = fixtures::tell_reference(
                    browser,
                    json!({ "type": message, "update": { "addRules": added } }),
                )
                .await;
                let (live, _) = poller
                    .wait_change(browser, page, sent, &format!("Bearer {token}"))
                    .await;
                let (sent, _) = fixtures::tell_reference(
                    browser,
                    json!({ "type": message, "update": { "removeRuleIds": ids } }),
                )
                .await;
                let (stopped, _) = poller.wait_change(browser, page, sent, "").await;
                if rep > 0 {
                    samples[set][0].push(live);
                    samples[set][1].push(stopped);
                }
            }
        }
        let [dynamic, session] = samples;
        for (i, (what, label)) in [
            ("save_live", "rule added to header on the wire"),
            ("disable_stopped", "rule removed to header gone"),
        ]
        .into_iter()
        .enumerate()
        {
            rows.push(
                &format!("update.floor.{what}.{total}"),
                engine,
                &format!("floor, reference extension: {label}, {total} rules installed"),
                "ms",
                &dynamic[i],
            );
            rows.push_ratio_of_medians(
                &format!("update.ratio_floor.{what}.{total}"),
                engine,
                &format!("Tokenward ÷ floor: {label}, {total} rules installed"),
                (
                    &format!("update.{what}.{total}"),
                    &format!("update.floor.{what}.{total}"),
                ),
            );
            rows.push(
                &format!("update.floor_session.{what}.{total}"),
                engine,
                &format!("reference extension, session rules: {label}, {total} rules installed"),
                "ms",
                &session[i],
            );
            // Protected, Tokenward's rules are session rules: the floor is
            // the same change to a session rule.
            rows.push_ratio_of_medians(
                &format!("update.protected.ratio_floor.{what}.{total}"),
                engine,
                &format!(
                    "protected: Tokenward ÷ session-rule floor: {label}, {total} rules installed"
                ),
                (
                    &format!("update.protected.{what}.{total}"),
                    &format!("update.floor_session.{what}.{total}"),
                ),
            );
        }
    }
    poller
        .finish(
            browser,
            page,
            rows,
            (
                "update.floor.poll_period",
                "floor poller: mean time between requests",
            ),
        )
        .await;
    fixtures::seed_reference(browser, &Default::default()).await;
}
