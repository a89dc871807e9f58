//! Background cost: start-up on a cold event, and the JS heap after it.
//!
//! Each repetition stops the background (Chromium: the DevTools Protocol
//! closes the service worker's target; Firefox: the privileged
//! `DebugUtils.terminateBackgroundScript`, what about:debugging's
//! "Terminate background script" does), then times a message from an
//! extension page to its answer (cold: the background starts, loads its
//! script and, for Tokenward, the wasm), then the same message again (warm),
//! then reads the background's memory. Each cold start is also split by the
//! background's own clock ([`Split`]).

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::browser::{gecko_id_of, Engine};
use crate::config::Config;
use crate::core::engine_key;
use crate::requests::Contender;
use crate::stats::Rows;
use crate::wd::{firefox_context, Cdp};

/// Round trip of one message the background does not understand: it
/// starts (if stopped) and answers, or lets the port close. Its duration,
/// and when it was sent and answered on the shared clock
/// (`performance.timeOrigin` plus `now()`, comparable across the page and
/// the worker).
const PING: &str = "\
    const started = performance.now();\n\
    try { await (globalThis.browser ?? globalThis.chrome).runtime.sendMessage({ type: 'bench-ping' }); }\n\
    catch (_) { /* no answer from the reference extension */ }\n\
    const ended = performance.now();\n\
    return { ms: ended - started, sent: performance.timeOrigin + started,\n\
             answered: performance.timeOrigin + ended };";

/// A [`PING`]'s round trip, in ms.
fn millis(ping: &Json) -> f64 {
    ping["ms"].as_f64().unwrap_or(f64::NAN)
}

/// The running event page's time origin and User Timing marks (name → ms
/// since the origin), as [`worker_clock`] reads a service worker's. In
/// Firefox an extension page reaches its event page's window directly
/// (`runtime.getBackgroundPage`, which Chromium offers only for persistent
/// pages); the bench calls it once the cold message is answered, so it
/// wakes nothing.
/// <https://developer.mozilla.org/en-US/docs/Mozilla/Add-ons/WebExtensions/API/runtime/getBackgroundPage>
const EVENT_PAGE_CLOCK: &str = "\
    const page = await browser.runtime.getBackgroundPage();\n\
    return { origin: page.performance.timeOrigin, marks: Object.fromEntries(\
        page.performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])) };";

/// Where a cold start's time went, from the background's own clock: its
/// time origin and the User Timing marks `background.js` sets (Tokenward's
/// only; the reference extension sets none).
#[derive(Debug, Default)]
struct Split {
    /// Message sent → the background's time origin: the browser starting
    /// it (Firefox: an event page's document, in the extension process).
    start: Vec<f64>,
    /// Time origin → `tokenward:script`: `background.js` and the wasm
    /// module's JS glue loaded and run.
    script: Vec<f64>,
    /// `tokenward:script` → `tokenward:wasm-ready`: the module fetched,
    /// compiled and instantiated.
    wasm: Vec<f64>,
    /// Ready (Tokenward: `tokenward:wasm-ready`; the reference: its time
    /// origin) → the answer in the page: the message handled, with the
    /// first call's lazy compilation, and the way back.
    answer: Vec<f64>,
}

pub(crate) async fn run(config: &Config, contender: &Contender, rows: &mut Rows) {
    let Some(page) = &contender.extension_page else {
        return;
    };
    let browser = &contender.browser;
    let engine = engine_key(browser.engine);
    let who = contender.variant.key();
    browser.switch_to(page).await;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut heap = Vec::new();
    let mut wasm_memory = Vec::new();
    let mut split = Split::default();
    match browser.engine {
        Engine::Chromium => {
            let mut cdp = Cdp::connect(&browser.client)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for rep in 0..=config.background_reps {
                stop_service_worker(&mut cdp, &browser.extension_base).await;
                let ping = browser.exec_async(PING).await;
                let c = millis(&ping);
                let w = millis(&browser.exec_async(PING).await);
                let memory = service_worker_memory(&mut cdp, &browser.extension_base).await;
                // Read last: reading the clock allocates in the worker.
                let clock = worker_clock(&mut cdp, &browser.extension_base).await;
                if rep > 0 {
                    split.add(&ping, &clock);
                    cold.push(c);
                    warm.push(w);
                    heap.push(memory.js_heap / 1024.0);
                    wasm_memory.push(memory.wasm / 1024.0);
                }
            }
        }
        Engine::Firefox => {
            let id = gecko_id_of(&contender.dir);
            for rep in 0..=config.background_reps {
                terminate_event_page(browser, &id).await;
                let ping = browser.exec_async(PING).await;
                let c = millis(&ping);
                let w = millis(&browser.exec_async(PING).await);
                let memory = event_page_memory(browser).await;
                // Read last: reading the clock reaches into the event page.
                let clock = browser.exec_async(EVENT_PAGE_CLOCK).await;
                if rep > 0 {
                    split.add(&ping, &clock);
                    cold.push(c);
                    warm.push(w);
                    heap.push(memory.js_heap / 1024.0);
                    wasm_memory.push(memory.wasm / 1024.0);
                }
            }
        }
    }
    let startup: Vec<f64> = cold.iter().zip(&warm).map(|(c, w)| c - w).collect();
    rows.push(
        &format!("background.cold.{who}"),
        engine,
        &format!("{who}: message to a stopped background, answered"),
        "ms",
        &cold,
    );
    rows.push(
        &format!("background.warm.{who}"),
        engine,
        &format!("{who}: the same message, background running"),
        "ms",
        &warm,
    );
    rows.push(
        &format!("background.startup.{who}"),
        engine,
        &format!("{who}: start-up (cold minus warm)"),
        "ms",
        &startup,
    );
    for (what, label, samples) in [
        (
            "start",
            "cold, message sent → background's time origin (the browser starts it)",
            &split.start,
        ),
        (
            "script",
            "cold, time origin → background.js and the wasm glue run",
            &split.script,
        ),
        (
            "wasm",
            "cold, the wasm module fetched, compiled and instantiated",
            &split.wasm,
        ),
        (
            "answer",
            "cold, ready (wasm ready, or time origin) → answer in the page",
            &split.answer,
        ),
    ] {
        if !samples.is_empty() {
            rows.push(
                &format!("background.split.{what}.{who}"),
                engine,
                &format!("{who}: {label}"),
                "ms",
                samples,
            );
        }
    }
    rows.push(
        &format!("background.heap.{who}"),
        engine,
        &format!("{who}: background JS heap (GC heap) after start-up"),
        "KiB",
        &heap,
    );
    rows.push(
        &format!("background.wasm_memory.{who}"),
        engine,
        &format!("{who}: background wasm linear memory after start-up"),
        "KiB",
        &wasm_memory,
    );
}

/// Tokenward's cold start and heap over the reference extension's, in the
/// same browser and run.
pub(crate) fn ratios(engine: &str, rows: &mut Rows) {
    for (what, label) in [
        ("cold", "message to a stopped background, answered"),
        ("heap", "background JS heap after start-up"),
    ] {
        rows.push_ratio_of_medians(
            &format!("background.ratio_reference.{what}"),
            engine,
            &format!("Tokenward ÷ reference: {label}"),
            (
                &format!("background.{what}.tokenward"),
                &format!("background.{what}.reference"),
            ),
        );
    }
}

impl Split {
    /// One cold start: the page's `ping` against the worker's `clock`.
    fn add(&mut self, ping: &Json, clock: &Json) {
        let (Some(sent), Some(answered), Some(origin)) = (
            ping["sent"].as_f64(),
            ping["answered"].as_f64(),
            clock["origin"].as_f64(),
        ) else {
            return;
        };
        self.start.push(origin - sent);
        let mark = |name: &str| clock["marks"][name].as_f64();
        match (mark("tokenward:script"), mark("tokenward:wasm-ready")) {
            (Some(script), Some(ready)) => {
                self.script.push(script);
                self.wasm.push(ready - script);
                self.answer.push(answered - (origin + ready));
            }
            _ => self.answer.push(answered - origin),
        }
    }
}

/// A DevTools session on the extension's running service worker.
async fn attach_to_worker(cdp: &mut Cdp, base: &str) -> String {
    let workers = cdp
        .targets("service_worker", base)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let id = workers
        .first()
        .and_then(|w| w["targetId"].as_str())
        .unwrap_or_else(|| panic!("no running service worker for {base}"))
        .to_owned();
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({ "targetId": id, "flatten": true }),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    attached["sessionId"].as_str().unwrap_or("").to_owned()
}

async fn detach(cdp: &mut Cdp, session: &str) {
    let _ = cdp
        .call(
            "Target.detachFromTarget",
            json!({ "sessionId": session }),
            None,
        )
        .await;
}

/// The running service worker's time origin and User Timing marks (name →
/// ms since the origin).
async fn worker_clock(cdp: &mut Cdp, base: &str) -> Json {
    let session = attach_to_worker(cdp, base).await;
    let clock = cdp
        .call(
            "Runtime.evaluate",
            json!({
                "expression": "({ origin: performance.timeOrigin, marks: Object.fromEntries(\
                    performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])) })",
                "returnByValue": true,
            }),
            Some(&session),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    detach(cdp, &session).await;
    clock["result"]["value"].clone()
}

/// A background's memory once it answered its first message.
#[derive(Debug)]
struct Memory {
    /// Bytes of the JavaScript engine's garbage-collected heap.
    js_heap: f64,
    /// Bytes of wasm linear memory (Tokenward's heap, stack and data),
    /// outside the JS heap.
    wasm: f64,
}

async fn stop_service_worker(cdp: &mut Cdp, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let workers = cdp
            .targets("service_worker", base)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if workers.is_empty() {
            return;
        }
        for worker in &workers {
            let id = worker["targetId"].as_str().unwrap_or("");
            cdp.call("Target.closeTarget", json!({ "targetId": id }), None)
                .await
                .unwrap_or_else(|e| panic!("stop the service worker: {e}"));
        }
        if Instant::now() >= deadline {
            panic!("the service worker of {base} did not stop: {workers:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The memory of the extension's service worker: V8's used heap
/// (`Runtime.getHeapUsage`), and the size of every `WebAssembly.Memory` it
/// holds (`Runtime.queryObjects` by prototype; V8 counts wasm memory in
/// neither heap figure).
async fn service_worker_memory(cdp: &mut Cdp, base: &str) -> Memory {
    let session = attach_to_worker(cdp, base).await;
    let mut call = async |method: &str, params: Json| {
        cdp.call(method, params, Some(&session))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let usage = call("Runtime.getHeapUsage", json!({})).await;
    let prototype = call(
        "Runtime.evaluate",
        json!({ "expression": "WebAssembly.Memory.prototype" }),
    )
    .await;
    let memories = call(
        "Runtime.queryObjects",
        json!({ "prototypeObjectId": prototype["result"]["objectId"] }),
    )
    .await;
    let wasm = call(
        "Runtime.callFunctionOn",
        json!({
            "objectId": memories["objects"]["objectId"],
            "functionDeclaration":
                "function () { return this.reduce((n, m) => n + m.buffer.byteLength, 0); }",
            "returnByValue": true,
        }),
    )
    .await;
    detach(cdp, &session).await;
    Memory {
        js_heap: usage["usedSize"].as_f64().unwrap_or(f64::NAN),
        wasm: wasm["result"]["value"].as_f64().unwrap_or(f64::NAN),
    }
}

/// Runs `body` (an async function body) with the browser's privileges.
async fn privileged(browser: &crate::browser::Browser, body: &str) -> Json {
    firefox_context(&browser.client, "chrome")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = browser.exec_async(body).await;
    firefox_context(&browser.client, "content")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    answer
}

async fn terminate_event_page(browser: &crate::browser::Browser, id: &str) {
    let body = format!(
        "const {{ ExtensionParent }} = ChromeUtils.importESModule(\
           'resource://gre/modules/ExtensionParent.sys.mjs');\n\
         await ExtensionParent.DebugUtils.terminateBackgroundScript({id:?});\n\
         const extension = ExtensionParent.GlobalManager.getExtension({id:?});\n\
         return String(extension && extension.backgroundState);"
    );
    let state = privileged(browser, &body).await;
    if state != json!("stopped") {
        println!("bench: Firefox event page of {id} is {state} after terminate");
    }
}

/// The memory of the running event page, from Firefox's memory reporters
/// (what about:memory shows), for the page's own realm in its active window
/// (earlier, stopped instances linger as detached windows until collected):
/// the `gc-heap` and `gc-buffers` reports are the JS heap,
/// `non-heap/elements/wasm` the wasm memory. Compiled wasm code is in
/// neither, as in Chromium's figures.
async fn event_page_memory(browser: &crate::browser::Browser) -> Memory {
    let uuid = browser
        .extension_base
        .trim_start_matches("moz-extension://")
        .trim_end_matches('/')
        .to_owned();
    let body = format!(
        "const manager = Cc['@mozilla.org/memory-reporter-manager;1']\
           .getService(Ci.nsIMemoryReporterManager);\n\
         const uuid = {uuid:?};\n\
         // about:memory writes the page's URL with backslashes for slashes.\n\
         const inRealm = (path) => path.includes(uuid) && path.includes('/active/window(moz-extension:')\n\
           && path.includes('_generated_background_page.html)/js-realm(moz-extension:');\n\
         let heap = 0, wasm = 0, reports = 0;\n\
         await new Promise((resolve) => manager.getReports(\n\
           (process, path, kind, units, amount) => {{\n\
             if (units !== Ci.nsIMemoryReporter.UNITS_BYTES || !inRealm(path)) return;\n\
             reports += 1;\n\
             if (/\\/gc-(heap|buffers)/.test(path)) heap += amount;\n\
             else if (path.includes('/non-heap/elements/wasm')) wasm += amount;\n\
           }}, null, resolve, null, false));\n\
         return {{ heap, wasm, reports }};"
    );
    let answer = privileged(browser, &body).await;
    assert!(
        answer["reports"].as_u64().unwrap_or(0) > 0,
        "no memory report names the running event page of {uuid}: {answer}"
    );
    Memory {
        js_heap: answer["heap"].as_f64().unwrap_or(f64::NAN),
        wasm: answer["wasm"].as_f64().unwrap_or(f64::NAN),
    }
}
