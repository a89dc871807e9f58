//! Tokenward's browser boundary: the only code that touches wasm-bindgen,
//! js-sys and web-sys. Everything here adapts browser events and APIs to
//! the pure core (`tokenward-core`, in `core/`) and back; no domain
//! decision is made here.
//!
//! One crate, built once per context (`cargo xtask build`), so each context
//! loads only what it runs:
//! - feature `background`: the service worker / event page,
//!   [`background`]: event handlers that call the core's service;
//! - feature `pages`: the popup and options page, [`popup`] and [`options`]
//!   over the helpers in [`dom`] and [`save`]; [`accounts`], [`lock`],
//!   [`browser_login`] and [`export`] are the parts both pages share. A page
//!   renders views and sends requests; it never loads stored state, the
//!   vault, the providers or the compiler.
//!
//! [`browser`] is the extension APIs, typed, for both; browser differences
//! live there. Both features are on by default, so `cargo check`, clippy
//! and the wasm tests see all of it.
//!
//! Natively this crate is empty: everything testable without a browser is
//! in the core.

#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod accounts;
#[cfg(all(target_arch = "wasm32", feature = "background"))]
pub mod background;
#[cfg(all(target_arch = "wasm32", feature = "bench"))]
pub mod bench;
#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod browser_login;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod dom;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod export;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod import;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod lock;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod options;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod popup;
#[cfg(all(target_arch = "wasm32", feature = "pages"))]
pub mod save;

/// Runs when a context instantiates its module. Panics go to the console
/// with their message; no message in this crate formats a secret.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}
