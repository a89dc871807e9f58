//! `cargo xtask test`: every test the project has, in one command.

use std::path::Path;

use serde_json::json;

use crate::browsers::{self, CHROMIUM};
use crate::build::{self, Profile};
use crate::process;
use crate::tools::WASM_TARGET;
use crate::workspace::Workspace;
use crate::Error;

pub(crate) fn run(workspace: &Workspace) -> Result<(), Error> {
    step("browsers", browsers::ensure_installed)?;
    let outputs = step("build (release)", || {
        build::run(workspace, Profile::Release)
    })?;
    step("native tests", || native_tests(workspace))?;
    step("wasm tests in headless Chromium", || {
        wasm_tests(workspace, &outputs.wasm_bindgen.test_runner)
    })?;
    step("end-to-end tests", || {
        e2e_tests(workspace, &outputs.test_extension)
    })?;
    println!("\nAll test steps passed.");
    Ok(())
}

/// Prints the step's name, and names it again if it fails, so the cause is
/// findable at the end of a long log.
fn step<T>(name: &str, body: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    println!("\n==> {name}");
    body().map_err(|error| format!("step `{name}` failed: {error}").into())
}

/// Unit and property tests of every crate. The e2e tests are #[ignore]d, so
/// they compile here but run in their own step, against a fresh build.
fn native_tests(workspace: &Workspace) -> Result<(), Error> {
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args(["test", "--workspace"]),
    )
}

/// The crate's #[wasm_bindgen_test] tests, through the wasm-bindgen-test-runner
/// of the pinned CLI, in headless Chromium via chromedriver.
fn wasm_tests(workspace: &Workspace, test_runner: &Path) -> Result<(), Error> {
    // The runner merges this file into the WebDriver capabilities; it already
    // adds --headless and --no-sandbox (needed as root) itself. The other flags
    // keep Chromium off the network, which is closed here and would only add
    // failed connections and delays.
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM.binary,
            "args": [
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run"
            ]
        }
    });
    let webdriver_json = workspace.stage_dir().join("webdriver.json");
    std::fs::create_dir_all(workspace.stage_dir())?;
    std::fs::write(
        &webdriver_json,
        serde_json::to_string_pretty(&capabilities)?,
    )?;

    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args(["test", "--target", WASM_TARGET, "-p", "tokenward", "--lib"])
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", test_runner)
            // Run in a browser even where a test module did not say
            // wasm_bindgen_test_configure!(run_in_browser); the default is Node.
            .env("WASM_BINDGEN_USE_BROWSER", "1")
            .env("CHROMEDRIVER", CHROMIUM.driver)
            .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
            // The default 20 s per test is tight for a cold browser on 2 cores.
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    )
}

/// The real-browser suite in tests/e2e.rs, one test at a time since each
/// drives its own browser and loopback server.
fn e2e_tests(workspace: &Workspace, test_extension: &Path) -> Result<(), Error> {
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args([
                "test",
                "-p",
                "tokenward",
                "--test",
                "e2e",
                "--",
                "--ignored",
                "--test-threads=1",
            ])
            // Holds chrome/ and firefox/, unpacked, with loopback host permissions.
            .env("TOKENWARD_TEST_EXTENSION", test_extension)
            .env("CHROMEDRIVER", CHROMIUM.driver)
            .env("CHROME_BIN", CHROMIUM.binary)
            // The name tests/e2e/browser.rs reads today; one of the two goes
            // once the suite settles on a name.
            .env("TOKENWARD_CHROMIUM", CHROMIUM.binary),
    )
}
