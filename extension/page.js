// Starts a page's wasm (the pages' module) while the page is still being
// parsed: popup.js and options.js are `async` module scripts, which run as
// soon as they are fetched instead of after the parse, so the module's
// fetch and compile overlap the parse (Firefox compiles a whole module up
// front, about 20 ms for this one). The page's own code runs once both are
// done, since it finds its elements by id. (Compiling from a classic async
// script at the top of the page, earlier still, made the first render
// slower on the bench's two cores: 10 credentials, Firefox 74 -> 92 ms.)
// https://html.spec.whatwg.org/multipage/scripting.html#attr-script-async
import init from "./wasm/pages.js";

// The steps of the first render, for `cargo xtask bench` (the rest are
// marked in Rust): the scripts are loaded and run.
performance.mark("tokenward:scripts");

export function start(main) {
  const parsed = new Promise((resolve) => {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", resolve, { once: true });
    } else {
      resolve();
    }
  });
  const ready = init().then(() => performance.mark("tokenward:wasm"));
  Promise.all([ready, parsed]).then(() => main());
}
