//! Core speed: compile, diff and the matcher, natively and as wasm in the
//! browser, on the same inputs (`tokenward_core::testing::workload`).

use std::time::Instant;

use serde_json::{json, Value as Json};

use crate::browser::{Browser, Engine, WAIT};
use crate::config::Config;
use crate::site::Site;
use crate::stats::Rows;
use crate::workload::{self, Case};

fn cases(config: &Config) -> Vec<Case> {
    let mut cases = Vec::new();
    for &n in &config.core_sizes {
        cases.push(Case::Compile(n));
    }
    for &n in &config.core_sizes {
        cases.push(Case::Diff(n));
    }
    for &(urls, rules) in &config.match_cases {
        cases.push(Case::Match { urls, rules });
    }
    for &n in &config.core_sizes {
        cases.push(Case::Load(n));
    }
    for &n in &config.core_sizes {
        cases.push(Case::Save(n));
    }
    cases
}

fn label(case: Case) -> String {
    match case {
        Case::Compile(n) => format!("compile {n} rules"),
        Case::Diff(n) => format!("diff {n} rules, one edited"),
        Case::Match { urls, rules } => format!("matcher over {urls} URLs, {rules} rules"),
        Case::Load(n) => format!("stored state of {n} rules: parse and decode"),
        Case::Save(n) => format!("stored state of {n} rules: encode and serialize"),
    }
}

fn record(rows: &mut Rows, engine: &str, case: Case, result: &Json) {
    let samples: Vec<f64> = result["samples_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_f64).collect())
        .unwrap_or_default();
    rows.push(
        &format!("core.{}", case.key().replace('/', ".")),
        engine,
        &label(case),
        "ms",
        &samples,
    );
}

/// The native run, in this process (the bench profile: the release
/// profile's `opt-level = "z"`, fat LTO, one codegen unit, as the wasm).
pub(crate) fn native(config: &Config, rows: &mut Rows) {
    let origin = Instant::now();
    let now = move || origin.elapsed().as_secs_f64() * 1000.0;
    for case in cases(config) {
        let result = workload::run(case, config.core_reps, config.min_sample_ms, &now)
            .unwrap_or_else(|e| panic!("native {}: {e}", case.key()));
        record(rows, "native", case, &result);
    }
}

/// The same cases as wasm, in `browser`, from the `bench` build served by
/// `site` at `/core.html`.
pub(crate) async fn wasm(config: &Config, browser: &Browser, site: &Site, rows: &mut Rows) {
    let engine = browser.engine;
    browser
        .goto(&format!("{}/core.html", site.origin("127.0.0.1")))
        .await;
    let ready = browser
        .wait_js(
            "the core bench wasm to instantiate",
            WAIT,
            "const b = document.body; return b && (b.dataset.ready || b.dataset.error);",
        )
        .await;
    assert_eq!(
        ready,
        json!("true"),
        "the core bench page failed to start in {}",
        engine.name()
    );
    let isolated = browser
        .exec("return self.crossOriginIsolated === true;")
        .await;
    if isolated != json!(true) {
        println!(
            "bench: {} core page is not cross-origin isolated; performance.now() is coarse",
            engine.name()
        );
    }
    for case in cases(config) {
        let request = json!({
            "case": case.key(),
            "reps": config.core_reps,
            "min_sample_ms": config.min_sample_ms,
        })
        .to_string();
        let text = crate::fixtures::call(browser, "benchCore", vec![json!(request)]).await;
        let result: Json = text
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_else(|| panic!("benchCore({request}) answered {text}"));
        record(rows, engine_key(engine), case, &result);
    }
}

pub(crate) fn engine_key(engine: Engine) -> &'static str {
    match engine {
        Engine::Chromium => "chromium",
        Engine::Firefox => "firefox",
    }
}
