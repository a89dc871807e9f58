//! `cargo xtask demo`: the provider stand-ins and a Chromium with the built
//! extension, through a login, a token list, a new token and a protected
//! page (examples/demo.rs), printing what happened. Headed when a display
//! exists, headless otherwise.

use crate::browsers;
use crate::build::{self, Profile};
use crate::process;
use crate::workspace::Workspace;
use crate::Error;

pub(crate) fn run(workspace: &Workspace) -> Result<(), Error> {
    let browsers = browsers::ensure_installed(workspace)?;
    let outputs = build::run(workspace, Profile::Release)?;
    let mut cargo = process::cargo();
    cargo
        .current_dir(workspace.root())
        .args(["run", "-q", "-p", "tokenward", "--example", "demo"])
        .env("TOKENWARD_TEST_EXTENSION", &outputs.test_extension);
    for located in &browsers {
        cargo
            .env(located.browser.binary_env, &located.binary)
            .env(located.browser.driver_env, &located.driver);
    }
    process::run(&mut cargo)
}
