//! Tokenward: per-site authentication headers compiled to
//! declarativeNetRequest.
//!
//! Everything but [`web`] is pure: no IO, no browser types, so it builds and
//! tests natively. `web` is the browser boundary and exists only on wasm32.
//! See `ARCHITECTURE.md` for the map.

pub mod compile;
pub mod credential;
pub mod dnr;
pub mod header;
pub mod initiator;
pub mod matcher;
pub mod message;
pub mod pattern;
pub mod protection;
pub mod provider;
pub mod reminder;
pub mod rules;
pub mod service;
pub mod store;
pub mod text;
pub mod vault;

#[cfg(target_arch = "wasm32")]
pub mod web;
