//! The measuring half of `cargo xtask bench` (xtask builds what it needs,
//! runs this, then judges the budgets and writes BENCHMARKS.md). Not a test:
//! `cargo test` does not build it.
//!
//! ```text
//! cargo bench -p tokenward --bench bench -- --out results.json [--quick]
//!     [--engines chromium,firefox] [--sections core,popup,apply,update,requests,background]
//! ```
//!
//! with `TOKENWARD_TEST_EXTENSION` (the test build plus `bench.html`),
//! `TOKENWARD_BENCH_REFERENCE` (the reference extension),
//! `TOKENWARD_BENCH_CORE_WASM` (the `bench` feature build) and the
//! browsers' variables of the e2e suite, all set by xtask.
//!
//! It reuses the e2e suite's browser launcher, recording server and options
//! page helpers (the `tokenward-testkit` crate), and the core's benchmark
//! workload (`tokenward_core::testing::workload`). Every wait polls with a
//! deadline; the browsers run one at a time, except the three of the
//! per-request comparison, which take turns.
#![cfg(not(target_arch = "wasm32"))]
// A command-line tool reports progress on stdout.
#![allow(clippy::print_stdout)]

use tokenward_core::testing::workload;
use tokenward_testkit::{browser, harness};

mod background;
mod config;
mod core;
mod fixtures;
mod popup;
mod requests;
mod site;
mod stats;
mod update;
mod wd;

use std::process::ExitCode;
use std::time::Duration;

use fantoccini::wd::TimeoutConfiguration;
use serde_json::{json, Map, Value as Json};

use crate::browser::{Browser, Engine};
use crate::config::Config;
use crate::harness::Harness;
use crate::requests::Variant;
use crate::site::Site;
use crate::stats::Rows;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rows = Rows::default();
    let mut versions = Map::new();
    let site = Site::start(config.core_wasm.as_deref()).await;

    if config.runs("core") {
        core::native(&config, &mut rows);
    }
    for &engine in &config.engines {
        let key = core::engine_key(engine);
        println!("\nbench: ==> {}", engine.name());
        if ["core", "popup", "apply", "update"]
            .iter()
            .any(|s| config.runs(s))
        {
            let h = Harness::start(engine).await;
            long_scripts(&h.browser).await;
            versions.insert(key.to_owned(), json!(browser_version(&h.browser)));
            if config.runs("core") {
                if config.core_wasm.is_some() {
                    core::wasm(&config, &h.browser, &site, &mut rows).await;
                } else {
                    println!("bench: no TOKENWARD_BENCH_CORE_WASM, skipping core in wasm");
                }
            }
            if config.runs("popup") {
                popup::first_render(&config, &h.browser, &site, &mut rows).await;
            }
            if config.runs("apply") {
                popup::apply(&config, &h.browser, &mut rows).await;
            }
            if config.runs("update") {
                update::run(&config, &h, &site, &mut rows).await;
            }
        }
        // Tokenward beside its baselines, each in a browser of its own: the
        // reference extension (the floor of applying rules, rule updates,
        // per-request costs and background start-up), and for per-request
        // costs the browser with no extension.
        if ["apply", "update", "requests", "background"]
            .iter()
            .any(|s| config.runs(s))
        {
            let mut variants = vec![Variant::Reference];
            if config.runs("requests") || config.runs("background") {
                variants.insert(0, Variant::Tokenward);
            }
            if config.runs("requests") {
                variants.push(Variant::Bare);
            }
            let mut contenders = Vec::new();
            for variant in variants {
                let c = requests::launch(&config, engine, variant, &site).await;
                long_scripts(&c.browser).await;
                versions
                    .entry(key.to_owned())
                    .or_insert_with(|| json!(browser_version(&c.browser)));
                contenders.push(c);
            }
            let reference = contenders
                .iter()
                .find(|c| c.variant == Variant::Reference)
                .expect("the reference extension's browser");
            if config.runs("apply") {
                popup::apply_floor(&config, reference, &mut rows).await;
            }
            if config.runs("update") {
                update::floor(&config, reference, &site, &mut rows).await;
            }
            if config.runs("requests") {
                requests::run(&config, &contenders, &site, &mut rows).await;
            }
            if config.runs("background") {
                for c in contenders.iter().filter(|c| c.variant != Variant::Bare) {
                    background::run(&config, c, &mut rows).await;
                }
                background::ratios(key, &mut rows);
            }
        }
    }
    if config.runs("popup") {
        popup::firefox_over_chromium(&config, &mut rows);
    }

    let out = json!({
        "quick": config.quick,
        "engines": config.engines.iter().map(|&e| core::engine_key(e)).collect::<Vec<_>>(),
        "versions": versions,
        "rows": rows.into_json(),
    });
    if let Some(dir) = config.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&config.out, format!("{out:#}\n")) {
        Ok(()) => {
            println!("\nbench: results in {}", config.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: write {}: {e}", config.out.display());
            ExitCode::FAILURE
        }
    }
}

/// Scripts that run a whole batch may take minutes in the full run.
async fn long_scripts(browser: &Browser) {
    browser
        .client
        .update_timeouts(TimeoutConfiguration::new(
            Some(Duration::from_secs(600)),
            Some(Duration::from_secs(60)),
            Some(Duration::from_secs(0)),
        ))
        .await
        .unwrap_or_else(|e| panic!("set WebDriver timeouts: {e}"));
}

/// `browserName browserVersion` from the session's capabilities.
fn browser_version(browser: &Browser) -> String {
    let caps = browser.client.capabilities();
    let field = |name: &str| {
        caps.and_then(|c| c.get(name))
            .and_then(Json::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let name = match browser.engine {
        Engine::Chromium => "Chromium",
        Engine::Firefox => "Firefox",
    };
    format!("{name} {}", field("browserVersion"))
}
