//! `cargo xtask test`: every test the project has, in one command.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::browsers::{self, Located, CHROMEDRIVER, CHROMIUM};
use crate::build::{self, Profile};
use crate::process;
use crate::tools::{self, WASM_TARGET};
use crate::workspace::Workspace;
use crate::Error;

pub(crate) fn run(workspace: &Workspace) -> Result<(), Error> {
    let browsers = step("browsers", || browsers::ensure_installed(workspace))?;
    let outputs = step("build (release)", || {
        build::run(workspace, Profile::Release)
    })?;
    step("lint Firefox build", || lint_firefox(workspace))?;
    step("rustfmt and clippy", || lint_rust(workspace))?;
    step("native tests", || native_tests(workspace))?;
    step("fuzz, bounded", || fuzz(workspace))?;
    step("wasm tests in headless Chromium", || {
        wasm_tests(workspace, &outputs.wasm_bindgen.test_runner)
    })?;
    step("end-to-end tests in Chromium and Firefox", || {
        e2e_tests(workspace, &outputs.test_extension, &browsers)
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

/// Formatting, and clippy with the lints of [workspace.lints] as errors, for
/// the native crates and for the wasm builds, whose browser boundary (`src/`)
/// a native check never compiles: each context's feature alone, as
/// `cargo xtask build` compiles it, and the bench's. Then the core's promise:
/// no wasm-bindgen, js-sys or web-sys in its dependency tree.
fn lint_rust(workspace: &Workspace) -> Result<(), Error> {
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args(["fmt", "--all", "--check"]),
    )?;
    process::run(process::cargo().current_dir(workspace.root()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for features in ["background", "pages", "background,pages,bench"] {
        process::run(process::cargo().current_dir(workspace.root()).args([
            "clippy",
            "--package",
            "tokenward",
            "--lib",
            "--target",
            WASM_TARGET,
            "--no-default-features",
            "--features",
            features,
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    core_stays_pure(workspace)
}

/// The crates only the browser boundary may depend on.
const BROWSER_CRATES: [&str; 4] = ["wasm-bindgen", "js-sys", "web-sys", "gloo"];

/// Fails when `tokenward-core`, built for wasm32 with every feature, has a
/// browser binding anywhere in its dependency tree.
fn core_stays_pure(workspace: &Workspace) -> Result<(), Error> {
    let tree = process::stdout(process::cargo().current_dir(workspace.root()).args([
        "tree",
        "--package",
        "tokenward-core",
        "--target",
        WASM_TARGET,
        "--all-features",
        "--edges",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    let found = browser_crates_in(&tree);
    if found.is_empty() {
        println!("tokenward-core: no browser bindings in its dependency tree");
        Ok(())
    } else {
        Err(format!(
            "tokenward-core must stay pure, but its tree has {}",
            found.join(", ")
        )
        .into())
    }
}

/// The [`BROWSER_CRATES`] named in `cargo tree --prefix none` output.
fn browser_crates_in(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| BROWSER_CRATES.contains(name) || name.starts_with("gloo-"))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
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

/// libFuzzer targets in fuzz/, for a bounded time each, so every run of the
/// suite also fuzzes; `cargo +nightly fuzz run <target>` runs one longer.
/// cargo-fuzz needs nightly for the sanitizer-coverage flags; the rest of
/// the project builds on the pinned stable toolchain.
fn fuzz(workspace: &Workspace) -> Result<(), Error> {
    // Eleven targets: five and a half minutes in all, within CI's budget.
    const SECONDS_PER_TARGET: u32 = 30;
    let cargo_fuzz = tools::ensure_crate_tool(workspace, &tools::CARGO_FUZZ)?;
    tools::ensure_nightly()?;
    for target in tools::FUZZ_TARGETS {
        // New inputs go to the corpus (not committed); `fuzz/seeds/<target>`
        // holds the files written by hand each target starts from.
        let corpus = workspace.root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = workspace.root().join("fuzz/seeds").join(target);
        let mut command = Command::new(&cargo_fuzz);
        command
            .current_dir(workspace.root())
            .env("RUSTUP_TOOLCHAIN", "nightly")
            .args(["fuzz", "run", target])
            .arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        process::run(
            command
                .arg("--")
                .arg(format!("-max_total_time={SECONDS_PER_TARGET}"))
                .arg("-print_final_stats=1"),
        )?;
    }
    Ok(())
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
            .env("CHROMEDRIVER", CHROMEDRIVER)
            .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
            // The default 20 s per test is tight for a cold browser on 2 cores.
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
    )
}

/// The real-browser suites: tests/e2e/main.rs (site rules), tests/providers.rs
/// (logins and tokens against the provider stand-ins), tests/vault.rs (the
/// vault, with a restart and a scan of the profile on disk) and
/// tests/profile.rs (what a profile keeps across a restart, and that the
/// scan finds what is there), one test at a time since each
/// drives its own browser and loopback server. Every case runs in each
/// browser of the table in browsers.rs, found through that browser's two
/// variables (TOKENWARD_CHROMIUM and CHROMEDRIVER, TOKENWARD_FIREFOX and
/// GECKODRIVER), all absolute paths.
fn e2e_tests(
    workspace: &Workspace,
    test_extension: &Path,
    browsers: &[Located],
) -> Result<(), Error> {
    let mut cargo = process::cargo();
    cargo
        .current_dir(workspace.root())
        .args([
            "test",
            "-p",
            "tokenward",
            "--test",
            "e2e",
            "--test",
            "providers",
            "--test",
            "vault",
            "--test",
            "profile",
            "--",
            "--ignored",
            "--test-threads=1",
        ])
        // Holds chrome/ and firefox/, unpacked, with loopback host permissions.
        .env("TOKENWARD_TEST_EXTENSION", test_extension)
        // The OpenID provider of tests/providers.rs, run with this Node.
        .env(
            "TOKENWARD_OIDC_STANDIN",
            tools::ensure_oidc_standin(workspace)?,
        )
        .env(
            "TOKENWARD_NODE",
            process::find_on_path("node").ok_or("node not found on PATH")?,
        )
        // axe-core's script, which tests/e2e/main.rs runs inside the pages.
        .env("TOKENWARD_AXE", tools::ensure_axe_core(workspace)?);
    for located in browsers {
        cargo
            .env(located.browser.binary_env, &located.binary)
            .env(located.browser.driver_env, &located.driver);
    }
    process::run(&mut cargo)
}

/// `web-ext lint` on dist/firefox as addons.mozilla.org validates a listed
/// add-on: no `--self-hosted` (which hides the AMO-only checks) and every
/// warning an error. dist/firefox is exactly what the store zip holds.
fn lint_firefox(workspace: &Workspace) -> Result<(), Error> {
    let web_ext = tools::ensure_web_ext(workspace)?;
    let source = workspace.dist_dir().join("firefox");
    let output = Command::new(&web_ext)
        .current_dir(workspace.root())
        .args(["lint", "--warnings-as-errors", "--output", "json"])
        // Only the flags above: no web-ext config from $HOME or the repo.
        .args(["--no-config-discovery", "--no-input", "--source-dir"])
        .arg(&source)
        .output()
        .map_err(|e| format!("could not start {}: {e}", web_ext.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "web-ext lint printed no JSON report ({e}; {}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let verdict = lint_verdict(&report);
    for line in &verdict.lines {
        println!("  {line}");
    }
    println!("web-ext lint: {}", verdict.summary);
    if verdict.passed && output.status.success() {
        Ok(())
    } else {
        Err(format!("web-ext lint on {}: {}", source.display(), verdict.summary).into())
    }
}

/// What a `web-ext lint --output json` report says.
#[derive(Debug, PartialEq, Eq)]
struct LintVerdict {
    /// No error and no warning (notices are information, as on AMO).
    passed: bool,
    /// "0 errors, 0 warnings, 0 notices".
    summary: String,
    /// One line per message: kind, code, file, what it says.
    lines: Vec<String>,
}

fn lint_verdict(report: &Value) -> LintVerdict {
    let count = |kind: &str| {
        report
            .get("summary")
            .and_then(|s| s.get(kind))
            .and_then(Value::as_u64)
    };
    let (errors, warnings, notices) = (count("errors"), count("warnings"), count("notices"));
    let mut lines = Vec::new();
    for (kind, label) in [
        ("errors", "error"),
        ("warnings", "warning"),
        ("notices", "notice"),
    ] {
        let messages = report.get(kind).and_then(Value::as_array);
        for message in messages.into_iter().flatten() {
            let field = |name: &str| message.get(name).and_then(Value::as_str).unwrap_or("");
            let place = match (field("file"), message.get("line").and_then(Value::as_u64)) {
                ("", _) => String::new(),
                (file, Some(line)) => format!(" {file}:{line}"),
                (file, None) => format!(" {file}"),
            };
            lines.push(format!(
                "{label} {}{place}: {} {}",
                field("code"),
                field("message"),
                field("description")
            ));
        }
    }
    match (errors, warnings, notices) {
        (Some(errors), Some(warnings), Some(notices)) => LintVerdict {
            passed: errors == 0 && warnings == 0,
            summary: format!("{errors} errors, {warnings} warnings, {notices} notices"),
            lines,
        },
        _ => LintVerdict {
            passed: false,
            summary: "the report has no summary counts".to_owned(),
            lines,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_bindings_in_a_tree_are_found() {
        let pure = "tokenward-core v0.1.0 (/w/core)\nserde v1.0.228\nurl v2.5.7\n";
        assert!(browser_crates_in(pure).is_empty());
        let bound = "tokenward-core v0.1.0\njs-sys v0.3.82\nwasm-bindgen v0.2.130\n\
                     wasm-bindgen-macro v0.2.130\njs-sys v0.3.82\ngloo-timers v0.3.0\n";
        assert_eq!(
            browser_crates_in(bound),
            ["gloo-timers", "js-sys", "wasm-bindgen"]
        );
    }

    #[test]
    fn a_clean_report_passes() {
        let report = json!({
            "count": 0,
            "summary": { "errors": 0, "notices": 0, "warnings": 0 },
            "errors": [], "notices": [], "warnings": []
        });
        assert_eq!(
            lint_verdict(&report),
            LintVerdict {
                passed: true,
                summary: "0 errors, 0 warnings, 0 notices".to_owned(),
                lines: Vec::new(),
            }
        );
    }

    #[test]
    fn a_warning_fails_and_is_shown() {
        let report = json!({
            "summary": { "errors": 0, "notices": 0, "warnings": 1 },
            "errors": [], "notices": [],
            "warnings": [{
                "_type": "warning",
                "code": "KEY_FIREFOX_ANDROID_UNSUPPORTED_BY_MIN_VERSION",
                "message": "Manifest key not supported by the specified minimum Firefox for Android version",
                "description": "\"strict_min_version\" requires Firefox for Android 140.",
                "file": "manifest.json"
            }]
        });
        let verdict = lint_verdict(&report);
        assert!(!verdict.passed);
        assert_eq!(verdict.summary, "0 errors, 1 warnings, 0 notices");
        assert_eq!(verdict.lines.len(), 1);
        assert!(verdict.lines[0].starts_with(
            "warning KEY_FIREFOX_ANDROID_UNSUPPORTED_BY_MIN_VERSION manifest.json: Manifest key"
        ));
    }

    #[test]
    fn an_error_fails_with_its_line() {
        let report = json!({
            "summary": { "errors": 1, "notices": 0, "warnings": 0 },
            "errors": [{ "code": "JS_SYNTAX_ERROR", "message": "bad", "description": "", "file": "popup.js", "line": 3 }],
            "notices": [], "warnings": []
        });
        let verdict = lint_verdict(&report);
        assert!(!verdict.passed);
        assert_eq!(verdict.lines, ["error JS_SYNTAX_ERROR popup.js:3: bad "]);
    }

    #[test]
    fn notices_alone_pass() {
        let report = json!({
            "summary": { "errors": 0, "notices": 1, "warnings": 0 },
            "errors": [], "warnings": [],
            "notices": [{ "code": "SOME_NOTICE", "message": "fyi", "description": "" }]
        });
        assert!(lint_verdict(&report).passed);
    }

    #[test]
    fn a_report_without_counts_fails() {
        assert!(!lint_verdict(&json!({})).passed);
        assert!(!lint_verdict(&json!({ "summary": { "errors": 0 } })).passed);
    }
}
