// Starts a page's wasm (the pages' module) while the page is still being
// parsed: popup.js and options.js are `async` module scripts, which run as
// soon as they are fetched instead of after the parse, so the module's
// fetch and compile overlap the parse (Firefox compiles a whole module up
// front, about 20 ms for this one). The page's own code runs once both are
// done, since it finds its elements by id.
// https://html.spec.whatwg.org/multipage/scripting.html#attr-script-async
import init from "./wasm/pages.js";

export function start(main) {
  const parsed = new Promise((resolve) => {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", resolve, { once: true });
    } else {
      resolve();
    }
  });
  Promise.all([init(), parsed]).then(() => main());
}
