import init, { options_main } from "./wasm/pages.js";

init().then(() => options_main());
