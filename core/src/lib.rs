//! Tokenward's core: per-site authentication headers compiled to
//! declarativeNetRequest, and everything around them (credentials and their
//! providers, the vault, stored state, the background's service).
//!
//! Pure: no IO, no browser types, no wasm-bindgen in the dependency tree,
//! so everything here builds and tests natively. The browser reaches the
//! core through the traits in [`service`]; the `tokenward` crate (the
//! repository's `src/`) implements them. See `ARCHITECTURE.md` for the map.
//!
//! The modules form no cycle (`tests/layers.rs` checks it), from the leaves
//! up: `tagged`, [`json`], [`text`], [`dnr`], [`vault`], [`migration`], [`pattern`], [`header`] →
//! [`credential`] → [`provider`], [`initiator`] → [`rules`] → [`compile`],
//! [`matcher`], [`policy`] → [`protection`], [`reminder`] → [`store`] → [`import`] → [`message`] →
//! [`service`].

pub mod compile;
pub mod credential;
pub mod dnr;
pub mod header;
pub mod import;
pub mod initiator;
pub mod json;
pub mod matcher;
pub mod message;
pub mod migration;
pub mod pattern;
pub mod policy;
pub mod protection;
pub mod provider;
pub mod reminder;
pub mod rules;
pub mod service;
pub mod store;
mod tagged;
pub mod text;
pub mod vault;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
