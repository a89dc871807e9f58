// Loads the wasm and registers every listener synchronously, in the first
// turn: a service worker (Chromium) or event page (Firefox) woken by an event
// delivers it only to listeners registered at start-up.
// https://developer.chrome.com/docs/extensions/develop/concepts/service-workers/events
// Each event is handed to Rust once the module is ready. Nothing is kept
// here; Rust reads stored state on every event. The background's module
// holds the service, the vault, the providers and the compiler; the pages
// load their own, smaller one (wasm/pages.js).
import init, * as tokenward from "./wasm/background.js";

// User Timing marks, once per worker: DevTools' performance panel and
// `cargo xtask bench` read how long loading this script and the wasm took.
performance.mark("tokenward:script");
const ready = init().then(() => performance.mark("tokenward:wasm-ready"));
// Firefox defines `browser`; Chromium only `chrome`. Rust resolves the same
// way in src/browser.rs.
const api = globalThis.browser ?? globalThis.chrome;

api.runtime.onInstalled.addListener((details) => {
  ready.then(() => tokenward.background_on_installed(details));
});
api.runtime.onStartup.addListener(() => {
  ready.then(() => tokenward.background_on_startup());
});
api.storage.onChanged.addListener((changes, area) => {
  ready.then(() => tokenward.background_on_storage_changed(changes, area));
});
api.tabs.onUpdated.addListener((tabId, change, tab) => {
  ready.then(() => tokenward.background_on_tab_updated(tabId, change, tab));
});
api.tabs.onRemoved.addListener((tabId) => {
  ready.then(() => tokenward.background_on_tab_removed(tabId));
});
api.permissions.onAdded.addListener((permissions) => {
  ready.then(() => tokenward.background_on_permissions_changed(permissions));
});
api.permissions.onRemoved.addListener((permissions) => {
  ready.then(() => tokenward.background_on_permissions_changed(permissions));
});
api.alarms.onAlarm.addListener((alarm) => {
  ready.then(() => tokenward.background_on_alarm(alarm));
});
api.runtime.onMessage.addListener((message, sender, sendResponse) => {
  ready
    .then(() => tokenward.background_on_message(message, sender))
    .then(sendResponse, (error) => sendResponse({ type: "error", message: String(error) }));
  // Keeps the channel open until sendResponse is called.
  return true;
});
