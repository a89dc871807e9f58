import { start } from "./page.js";
import { popup_main } from "./wasm/pages.js";

start(popup_main);
