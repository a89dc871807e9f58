//! For tests, benches and stand-ins outside this crate (cargo feature
//! `testing`): the browser in memory and the benchmark workload. Never in
//! an extension build.

pub use crate::service::fakes::*;

pub mod workload;
