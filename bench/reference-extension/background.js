// The minimal reference extension of `cargo xtask bench`: it installs the
// dynamic rules a page sends it, and does nothing else. No storage, no wasm,
// no other listener: the floor for any extension that sends headers with
// declarativeNetRequest.
"use strict";

const api = globalThis.browser ?? globalThis.chrome;

api.runtime.onMessage.addListener((message, _sender, sendResponse) => {
  let done;
  if (message && message.type === "install") {
    // Replaces every rule it holds, in both sets, with `rules` in the set
    // `set` names ("dynamic" unless "session"): the rules Tokenward holds
    // in the same set, so that a change is timed against the same others.
    const dnr = api.declarativeNetRequest;
    const session = message.set === "session";
    done = Promise.all([dnr.getDynamicRules(), dnr.getSessionRules()])
      .then(([dynamic, held]) => Promise.all([
        dnr.updateDynamicRules({
          removeRuleIds: dynamic.map((rule) => rule.id),
          addRules: session ? [] : message.rules,
        }),
        dnr.updateSessionRules({
          removeRuleIds: held.map((rule) => rule.id),
          addRules: session ? message.rules : [],
        }),
      ]));
  } else if (message && message.type === "update") {
    // One change, as given: the least any extension does to edit a rule.
    done = api.declarativeNetRequest.updateDynamicRules(message.update);
  } else if (message && message.type === "update-session") {
    // The same change to session rules, which the browser keeps in memory
    // only (dynamic rules are also written to disk).
    done = api.declarativeNetRequest.updateSessionRules(message.update);
  } else {
    return false;
  }
  done.then(() => sendResponse({ ok: true }), (error) => sendResponse({ error: String(error) }));
  return true;
});
