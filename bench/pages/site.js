// Page script of the bench site's pages (`/site.html` on any host): request
// loops and the rule-update poller, timed with performance.now() in the page.
"use strict";

// `count` sequential same-origin GETs of `path`, each read to the end.
window.benchBatch = async (path, count) => {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${path}?i=${i}`, { cache: "no-store" });
    await response.text();
  }
  return performance.now() - started;
};

// What `/echo` says the server received as Authorization ("" for none).
window.benchEcho = async () => (await fetch("/echo", { cache: "no-store" })).text();

// Polls `/echo` back to back and keeps each change of the Authorization the
// server saw: [send time of the last request before the change, send time
// of the first one after it, new value], in epoch milliseconds
// (performance.timeOrigin + performance.now()), comparable across pages.
window.benchPollStart = () => {
  window.benchPolling = true;
  window.benchChanges = [];
  window.benchPolls = 0;
  const stamp = () => performance.timeOrigin + performance.now();
  (async () => {
    let last = null;
    let lastAt = stamp();
    while (window.benchPolling) {
      const at = stamp();
      let value;
      try {
        value = await (await fetch("/echo", { cache: "no-store" })).text();
      } catch (e) {
        value = `error ${e}`;
      }
      window.benchPolls += 1;
      if (value !== last) {
        window.benchChanges.push([lastAt, at, value]);
        last = value;
      }
      lastAt = at;
    }
  })();
  return null;
};

window.benchPollStop = () => {
  window.benchPolling = false;
  return null;
};

// The changes since the poll started, and the mean time of one poll.
window.benchPollRead = () => ({ changes: window.benchChanges, polls: window.benchPolls });
