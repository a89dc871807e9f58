import init, { popup_main } from "./wasm/tokenward.js";

init().then(() => popup_main());
