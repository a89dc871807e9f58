//! Project automation for Tokenward: `cargo xtask build` and `cargo xtask test`.
//!
//! Everything a developer or CI needs beyond `rustup`, `cargo` and `npm` (the
//! wasm target, wasm-bindgen, wasm-opt, web-ext, the browsers and their
//! WebDrivers) is provisioned from here, so that a fresh machine and a
//! long-lived one run the same steps.

// A command-line tool reports its progress on stdout; the workspace-wide
// `print_stdout` lint exists to keep stray prints out of the extension crate.
#![allow(clippy::print_stdout)]

mod bench;
mod browsers;
mod build;
mod demo;
mod manifest;
mod package;
mod permissions;
mod process;
mod suite;
mod tools;
mod wasm;
mod workspace;

use std::process::ExitCode;

use crate::build::Profile;
use crate::workspace::Workspace;

/// Every failure ends up as text on a terminal, so a boxed error is enough.
type Error = Box<dyn std::error::Error>;

const HELP: &str = "\
Tokenward project tasks

USAGE:
    cargo xtask <COMMAND>

COMMANDS:
    build [--debug]  Build the wasm core and both extensions:
                       dist/chrome, dist/firefox and their store zips,
                       target/test-extension/{chrome,firefox} for the e2e tests.
                     --debug skips optimisation and the zips.
    test             Install the test browsers (Chromium, Firefox ESR) and
                     their WebDrivers, build (release), lint dist/firefox
                     with web-ext as addons.mozilla.org does, then run every
                     test: native unit and property tests, wasm tests in
                     headless Chromium, and the end-to-end suite against the
                     built extension in Chromium and Firefox.
    demo             Start local stand-ins of BentoCloud, Jina AI, Nuclia and
                     Hugging Face and a Chromium with the built extension
                     (shown when a display exists, else headless), log in,
                     list and create a token, open a protected deployment,
                     and print what happened.
    browsers         Only the first step of `test`: install what is missing
                     (Chromium, Firefox ESR, chromedriver with apt as root;
                     geckodriver with cargo into .tools) and print each
                     program's path and version.
    bench [--quick]  Not part of `test`. Build (release), then measure in
                     headless Chromium and Firefox: size (and what takes it,
                     with twiggy), core speed native and wasm, popup first
                     render, rule-update latency, per-request overhead
                     against a minimal reference extension and no extension,
                     background start-up and heap. Judges the budgets and
                     writes bench/results.json and BENCHMARKS.md. --quick:
                     few repetitions, small counts, to check the harness
                     (writes under target/bench/quick, judges nothing).
                     --engines chromium, --sections popup,update: a
                     partial run (writes under target/bench/partial).
                     --report: only rewrite BENCHMARKS.md from
                     bench/results.json.
    help             Print this text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let workspace = Workspace::locate();

    let outcome = match args.as_slice() {
        [] | ["help" | "--help" | "-h"] => {
            print!("{HELP}");
            Ok(())
        }
        ["build"] => build::run(&workspace, Profile::Release).map(|_| ()),
        ["build", "--debug"] => build::run(&workspace, Profile::Debug).map(|_| ()),
        ["test"] => suite::run(&workspace),
        ["demo"] => demo::run(&workspace),
        ["browsers"] => browsers::ensure_installed(&workspace).map(|_| ()),
        ["bench", rest @ ..] => bench::run(&workspace, rest),
        _ => {
            eprint!("unknown arguments: {}\n\n{HELP}", args.join(" "));
            return ExitCode::from(2);
        }
    };

    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nerror: {error}");
            ExitCode::FAILURE
        }
    }
}
