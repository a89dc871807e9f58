// Helpers the bench calls over WebDriver from `bench.html`, a page that
// `cargo xtask bench` adds to a copy of the test build (never to a store
// build). Page script, not WebDriver script, so that both browsers run it in
// the page's own world. Every timing is performance.now() in this page.
"use strict";

const api = globalThis.browser ?? globalThis.chrome;

// Seeds stored state: `items`, the keys Tokenward writes for a whole state
// (the bench makes them with the core's own StoredWrite::whole). The
// background reconciles on storage.onChanged.
window.benchSeed = async (items) => {
  const before = Object.keys(await api.storage.local.get(null));
  if (items === null) {
    await api.storage.local.remove(before);
    return null;
  }
  await api.storage.local.set(items);
  // Keys of an earlier seed the new head does not list; the background
  // ignores a change without the head.
  const stale = before.filter((key) => !(key in items));
  if (stale.length > 0) await api.storage.local.remove(stale);
  return null;
};

// Whether the browser holds the dynamic rule `id`.
const holds = async (id) =>
  (await api.declarativeNetRequest.getDynamicRules({ ruleIds: [id] })).length > 0;

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

// Stores `items` (the keys of a whole state, as for benchSeed) and polls
// until the browser holds rule `lastId` (or, when `lastId` is null, holds no
// rule): stored state to live rules, through the background's
// storage.onChanged, decode, compile, diff and one update.
window.benchApply = async (items, lastId, timeoutMs) => {
  const started = performance.now();
  await api.storage.local.set(items);
  const stored = performance.now() - started;
  for (;;) {
    const done = lastId === null
      ? (await api.declarativeNetRequest.getDynamicRules()).length === 0
      : await holds(lastId);
    const elapsed = performance.now() - started;
    if (done) return { stored_ms: stored, live_ms: elapsed };
    if (elapsed > timeoutMs) return { timeout: true, stored_ms: stored, live_ms: elapsed };
    await tick();
  }
};

// Opens `url` (the popup) in a fresh same-origin iframe and reports, in the
// frame's own clock (0 = its navigation start), when <body data-ready> was
// set: a MutationObserver, attached as soon as the frame's body exists
// (long before the wasm is ready), fires in the task that sets it.
window.benchPopupOnce = (url, timeoutMs) => new Promise((resolve) => {
  for (const old of document.querySelectorAll("iframe")) old.remove();
  const frame = document.createElement("iframe");
  frame.style.width = "400px";
  frame.style.height = "600px";
  let settled = false;
  let observer = null;
  const read = (win, doc, readyMs, missed) => {
    const nav = win.performance.getEntriesByType("navigation")[0];
    const status = doc.querySelector("#site-status");
    // The popup's own User Timing marks (src/popup.rs), in the same clock.
    const mark = (name) => {
      const entry = win.performance.getEntriesByName(`tokenward:${name}`, "mark")[0];
      return entry ? entry.startTime : null;
    };
    return {
      ready_ms: readyMs,
      scripts_ms: mark("scripts"),
      wasm_ms: mark("wasm"),
      started_ms: mark("started"),
      asked_ms: mark("asked"),
      answered_ms: mark("answered"),
      missed,
      dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
      state: status ? status.getAttribute("data-state") : null,
      headers: doc.querySelectorAll("#site-rule [data-role=headers] li").length,
      credentials: doc.querySelectorAll("#credentials > li").length,
    };
  };
  const finish = (result) => {
    if (settled) return;
    settled = true;
    if (observer) observer.disconnect();
    resolve(result);
  };
  const watch = () => {
    if (settled) return;
    const win = frame.contentWindow;
    const doc = frame.contentDocument;
    if (win && doc && doc.URL === url && doc.body) {
      if (doc.body.dataset.ready === "true") {
        finish(read(win, doc, win.performance.now(), true));
        return;
      }
      observer = new MutationObserver(() => {
        if (doc.body.dataset.ready === "true") {
          const readyMs = win.performance.now();
          finish(read(win, doc, readyMs, false));
        }
      });
      observer.observe(doc.body, { attributes: true, attributeFilter: ["data-ready"] });
      return;
    }
    setTimeout(watch, 0);
  };
  setTimeout(() => finish({ timeout: true }), timeoutMs);
  frame.src = url;
  document.body.appendChild(frame);
  watch();
});

// The popup's floor: an empty extension page (blank.html) in a fresh frame;
// its DOMContentLoaded in the frame's clock.
window.benchBlankOnce = (url, timeoutMs) => new Promise((resolve) => {
  for (const old of document.querySelectorAll("iframe")) old.remove();
  const frame = document.createElement("iframe");
  const timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
  frame.addEventListener("load", () => {
    clearTimeout(timer);
    const nav = frame.contentWindow.performance.getEntriesByType("navigation")[0];
    resolve({ dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null });
  });
  frame.src = url;
  document.body.appendChild(frame);
});

// The wasm's start-up cost on its own, in this page: import a fresh copy of
// the pages' glue (a new URL is a new module), then its init(): fetch, compile,
// instantiate, run the start function. Then fetch alone and compile alone.
let fresh = 0;
window.benchWasmInit = async () => {
  fresh += 1;
  const base = api.runtime.getURL("wasm/");
  const t0 = performance.now();
  const glue = await import(`${base}pages.js?fresh=${fresh}`);
  const t1 = performance.now();
  await glue.default();
  const t2 = performance.now();
  const bytes = await (await fetch(`${base}pages_bg.wasm`, { cache: "no-store" })).arrayBuffer();
  const t3 = performance.now();
  await WebAssembly.compile(bytes);
  const t4 = performance.now();
  return { import_ms: t1 - t0, init_ms: t2 - t1, fetch_ms: t3 - t2, compile_ms: t4 - t3 };
};
