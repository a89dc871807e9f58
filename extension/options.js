import init, { options_main } from "./wasm/tokenward.js";

init().then(() => options_main());
