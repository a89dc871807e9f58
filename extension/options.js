import { start } from "./page.js";
import { options_main } from "./wasm/pages.js";

start(options_main);
