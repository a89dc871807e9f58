//! Two pages editing at once while the background is stopped mid-edit, as
//! the browser stops an idle service worker or event page: no edit is
//! lost, and afterwards the browser's rules are exactly what the stored
//! state compiles to.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokenward_core::compile::{compile, Target};
use tokenward_core::credential::Timestamp;
use tokenward_core::store::{assemble, State};
use tokenward_testkit::browser::{Engine, WAIT};
use tokenward_testkit::harness::Harness;
use tokenward_testkit::in_both_browsers;

/// How many rules each page adds.
const EDITS: usize = 8;

/// Starts, in the current page, a loop of `EDITS` rule saves sent as the
/// options page sends them, without waiting for it. A save whose answer is
/// lost with the worker is sent again until it is answered; "already
/// there" is an answer too (the lost answer's save was kept).
const RACE: &str = "const [tag, port, n] = arguments;\n\
    const api = globalThis.browser ?? chrome;\n\
    window.__race = { done: false, saved: 0, retries: 0, failed: null };\n\
    (async () => {\n\
      for (let i = 0; i < n; i++) {\n\
        const draft = { pattern: `http://${tag}${i}.localhost:${port}`,\n\
          headers: [{ name: 'Authorization', scheme: 'bearer', secret: `${tag}-token-${i}` }] };\n\
        const deadline = Date.now() + 60000;\n\
        for (;;) {\n\
          let answer;\n\
          try { answer = JSON.parse(await api.runtime.sendMessage({ saveRule: { draft } })); }\n\
          catch (e) { answer = { type: 'thrown', message: String(e) }; }\n\
          if (answer && answer.type === 'ruleChanged') { window.__race.saved++; break; }\n\
          if (answer && answer.type === 'error' && answer.message && answer.message.key === 'error_rule_duplicate') { window.__race.saved++; break; }\n\
          window.__race.retries++;\n\
          if (Date.now() > deadline) { window.__race.failed = `edit ${i}: ${JSON.stringify(answer)}`; break; }\n\
          await new Promise((r) => setTimeout(r, 50));\n\
        }\n\
      }\n\
      window.__race.done = true;\n\
    })();\n\
    return true;";

async fn race_state(h: &Harness) -> Json {
    h.browser.exec("return window.__race || null;").await
}

/// What the stored state compiles to and what the browser holds, each as
/// id → the rule's condition and headers.
async fn stored_and_installed(
    h: &Harness,
    engine: Engine,
) -> (State, BTreeMap<u64, Json>, BTreeMap<u64, Json>) {
    let v = h
        .browser
        .exec_async(
            "const api = globalThis.browser ?? chrome;\n\
             return { items: await api.storage.local.get(null),\n\
                      rules: await api.declarativeNetRequest.getDynamicRules() };",
        )
        .await;
    let document = assemble(&v["items"]).expect("a stored state");
    let state = State::decode(Some(document)).expect("the stored state reads");
    let target = match engine {
        Engine::Chromium => Target::CHROMIUM,
        Engine::Firefox => Target::FIREFOX,
    };
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    );
    let essence = |rule: &Json| {
        json!({
            "urlFilter": rule["condition"]["urlFilter"],
            "regexFilter": rule["condition"]["regexFilter"],
            "headers": rule["action"]["requestHeaders"],
        })
    };
    let desired = compile(&state.rules_in_force(now), target)
        .expect("the stored state compiles")
        .iter()
        .map(|r| {
            let rule = serde_json::to_value(r).expect("a rule serializes");
            (u64::from(r.id), essence(&rule))
        })
        .collect();
    let installed = v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["id"].as_u64()?, essence(r))))
        .collect();
    (state, desired, installed)
}

async fn two_pages_edit_while_the_background_stops(engine: Engine) {
    let h = Harness::start(engine).await;
    let port = h.port(0);
    let b = &h.browser;
    h.open_options().await;
    let first = b.client.window().await.expect("the first window");
    let second = b
        .client
        .new_window(true)
        .await
        .expect("a second tab")
        .handle;
    b.client
        .switch_to_window(second.clone())
        .await
        .expect("switch");
    h.open_options().await;
    // Both pages start editing; the second first, then the first.
    b.client
        .execute(RACE, vec![json!("b"), json!(port), json!(EDITS)])
        .await
        .expect("page B starts");
    b.client
        .switch_to_window(first.clone())
        .await
        .expect("switch");
    b.client
        .execute(RACE, vec![json!("a"), json!(port), json!(EDITS)])
        .await
        .expect("page A starts");
    // Stop the background twice, each time with edits still to come.
    for after in [2, 5] {
        let deadline = Instant::now() + WAIT;
        loop {
            let saved = race_state(&h).await["saved"].as_u64().unwrap_or(0);
            if saved >= after {
                break;
            }
            assert!(Instant::now() < deadline, "page A saved only {saved} rules");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b.stop_background_while_busy().await;
    }
    // Both loops end, every edit answered.
    for window in [&first, &second] {
        b.client
            .switch_to_window(window.clone())
            .await
            .expect("switch");
        let deadline = Instant::now() + Duration::from_secs(90);
        let race = loop {
            let race = race_state(&h).await;
            if race["done"] == json!(true) {
                break race;
            }
            assert!(Instant::now() < deadline, "the edits did not end: {race}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(race["failed"], Json::Null, "{race}");
        assert_eq!(race["saved"], json!(EDITS), "{race}");
        eprintln!("races: {race}");
    }
    // No edit lost: every rule of both pages is stored, once.
    let deadline = Instant::now() + WAIT;
    loop {
        let (state, desired, installed) = stored_and_installed(&h, engine).await;
        let mut patterns: Vec<String> = state
            .book
            .rules()
            .iter()
            .map(|r| r.pattern.to_string())
            .collect();
        patterns.sort();
        let mut expected: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|tag| (0..EDITS).map(move |i| format!("http://{tag}{i}.localhost:{port}/")))
            .collect();
        expected.sort();
        assert_eq!(patterns, expected, "the stored rules");
        // The browser holds what the stored state says (the new worker
        // reconciles as it starts; wait for it).
        if desired == installed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the browser's rules differ from the stored state's:\nstored {desired:#?}\nbrowser {installed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the headers reach the network: one of each page's sites.
    for tag in ["a", "b"] {
        let i = EDITS - 1;
        h.wait_header(
            &format!("http://{tag}{i}.localhost:{port}/x"),
            "authorization",
            Some(&format!("Bearer {tag}-token-{i}")),
        )
        .await;
    }
}

in_both_browsers!(two_pages_edit_while_the_background_stops);
