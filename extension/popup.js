import init, { popup_main } from "./wasm/pages.js";

init().then(() => popup_main());
