//! The browser boundary: the only code that touches wasm-bindgen, js-sys
//! and web-sys. Everything here adapts browser events and APIs to the pure
//! core and back; no domain decision is made here.
//!
//! - [`browser`]: the extension APIs, typed; where browser differences live.
//! - [`background`]: event handlers for the service worker / event page.
//! - [`options`], [`popup`]: the two pages, over the helpers in [`dom`]
//!   and [`save`]; [`accounts`] is the popup's logins and tokens.

pub mod accounts;
pub mod background;
#[cfg(feature = "bench")]
pub mod bench;
pub mod browser;
pub mod browser_login;
pub mod dom;
pub mod export;
pub mod lock;
pub mod options;
pub mod popup;
pub mod save;

use wasm_bindgen::prelude::*;

/// Runs when any context instantiates the module. Panics go to the console
/// with their message; no message in this crate formats a secret.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}
