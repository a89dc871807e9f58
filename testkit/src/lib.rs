//! What the browser suites (`tests/`), the bench (`benches/bench`) and the
//! demo (`examples/demo.rs`) share, as one crate instead of source files
//! each of them includes:
//!
//! - [`browser`]: Chromium or Firefox over WebDriver, with the extension's
//!   test build loaded, and [`in_both_browsers!`] to run a case in each;
//! - [`server`]: the recording loopback server that sees exactly what
//!   headers the browser sent;
//! - [`harness`]: one test's world (server, browser, the extension's pages
//!   driven through their DOM);
//! - [`accounts`], [`oidc`]: the popup's accounts panels and the OpenID
//!   stand-in, for the provider suite and the demo;
//! - [`profile_scan`]: looking for secrets in a profile on disk;
//! - [`scope`]: the rules and URLs of the scope suites (native and browser).
//!
//! Native only: a browser driver and a server do not build for wasm32.
#![cfg(not(target_arch = "wasm32"))]

pub mod accounts;
pub mod browser;
pub mod harness;
pub mod oidc;
pub mod policy;
pub mod profile_scan;
pub mod scope;
pub mod server;
