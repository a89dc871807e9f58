//! Provisioning of the build tools: the wasm32 target, wasm-bindgen and wasm-opt.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process;
use crate::workspace::Workspace;
use crate::Error;

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// binaryen from npm, installed into `.tools/npm`. npm is the one registry
/// here with a current binaryen; Debian's (wasm-opt 108) miscompiles modules
/// from current rustc. Check for newer releases with `npm view binaryen version`.
const BINARYEN_NPM_VERSION: &str = "132.0.0";

/// Oldest wasm-opt accepted from PATH. Debian bookworm's 108 produces a module
/// that no longer works; 116 is the floor we trust for rustc 1.95's default
/// wasm features (bulk memory, non-trapping float-to-int, reference types).
const MIN_WASM_OPT_VERSION: u32 = 116;

/// The wasm-bindgen CLI pair: the two must match the library version that was
/// linked into the wasm, or the generated glue does not fit the module.
#[derive(Debug, Clone)]
pub(crate) struct WasmBindgen {
    pub(crate) bindgen: PathBuf,
    pub(crate) test_runner: PathBuf,
}

/// Adds the wasm32 target when rustup does not have it for this toolchain.
pub(crate) fn ensure_wasm_target() -> Result<(), Error> {
    let installed =
        process::stdout(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        println!("wasm target: {WASM_TARGET} installed");
        return Ok(());
    }
    println!("wasm target: adding {WASM_TARGET}");
    process::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Finds, or installs into `.tools/bin`, the wasm-bindgen CLI at exactly the
/// version the root Cargo.toml pins.
pub(crate) fn ensure_wasm_bindgen(workspace: &Workspace) -> Result<WasmBindgen, Error> {
    let cargo_toml = std::fs::read_to_string(workspace.root().join("Cargo.toml"))?;
    let version = wasm_bindgen_pin(&cargo_toml)?;
    let wanted = format!("wasm-bindgen {version}");
    let local_bin = workspace.tools_dir().join("bin");

    let candidates = [
        Some(local_bin.join("wasm-bindgen")),
        process::find_on_path("wasm-bindgen"),
    ];
    for bindgen in candidates.into_iter().flatten() {
        if process::version_line(&bindgen).as_deref() == Some(wanted.as_str()) {
            let test_runner = bindgen.with_file_name("wasm-bindgen-test-runner");
            let runner_wanted = format!("wasm-bindgen-test-runner {version}");
            if process::version_line(&test_runner).as_deref() == Some(runner_wanted.as_str()) {
                println!("wasm-bindgen: {version} at {}", bindgen.display());
                return Ok(WasmBindgen {
                    bindgen,
                    test_runner,
                });
            }
        }
    }

    println!(
        "wasm-bindgen: installing wasm-bindgen-cli {version} into .tools (takes a few minutes)"
    );
    // No --locked: the CLI's own lockfile pins crates that no longer build on
    // current rustc, while fresh resolution does.
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args([
                "install",
                "wasm-bindgen-cli",
                "--version",
                &version,
                "--root",
            ])
            .arg(workspace.tools_dir()),
    )?;
    let installed = WasmBindgen {
        bindgen: local_bin.join("wasm-bindgen"),
        test_runner: local_bin.join("wasm-bindgen-test-runner"),
    };
    match process::version_line(&installed.bindgen) {
        Some(line) if line == wanted => Ok(installed),
        other => {
            Err(format!("installed wasm-bindgen reports {other:?}, expected {wanted:?}").into())
        }
    }
}

/// The exact wasm-bindgen version from `wasm-bindgen = "=X"` (or the table
/// form with `version = "=X"`) in the root Cargo.toml, the single source of truth.
pub(crate) fn wasm_bindgen_pin(cargo_toml: &str) -> Result<String, Error> {
    for line in cargo_toml.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "wasm-bindgen" {
            continue;
        }
        let pinned = value
            .split_once("\"=")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(version, _)| version.trim());
        return match pinned {
            Some(version) if !version.is_empty() => Ok(version.to_owned()),
            _ => Err(format!(
                "Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = \"=X.Y.Z\"), found: {}",
                line.trim()
            )
            .into()),
        };
    }
    Err("Cargo.toml has no wasm-bindgen dependency".into())
}

/// A working wasm-opt, or None with the reason printed: optimisation only
/// shrinks the module, so the build goes on without it.
pub(crate) fn ensure_wasm_opt(workspace: &Workspace) -> Option<PathBuf> {
    let prefix = workspace.tools_dir().join("npm");
    let pinned = prefix.join("node_modules/.bin/wasm-opt");

    if npm_binaryen_version(&prefix).as_deref() == Some(BINARYEN_NPM_VERSION) && usable(&pinned) {
        println!("wasm-opt: binaryen {BINARYEN_NPM_VERSION} from .tools/npm");
        return Some(pinned);
    }

    match process::find_on_path("npm") {
        Some(npm) => {
            println!("wasm-opt: installing binaryen@{BINARYEN_NPM_VERSION} into .tools/npm");
            let installed = process::run(
                Command::new(npm)
                    .args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                    ])
                    .arg(&prefix)
                    .arg(format!("binaryen@{BINARYEN_NPM_VERSION}")),
            );
            match installed {
                Ok(()) if usable(&pinned) => return Some(pinned),
                Ok(()) => println!("wasm-opt: the installed binaryen does not run"),
                Err(error) => println!("wasm-opt: npm install failed: {error}"),
            }
        }
        None => println!("wasm-opt: npm not found, cannot install binaryen"),
    }

    // Last resort: a system wasm-opt, if it is new enough to be trusted.
    if let Some(system) = process::find_on_path("wasm-opt") {
        match process::version_line(&system).and_then(|line| wasm_opt_version(&line)) {
            Some(v) if v >= MIN_WASM_OPT_VERSION => {
                println!("wasm-opt: version {v} at {}", system.display());
                return Some(system);
            }
            Some(v) => println!(
                "wasm-opt: skipping {} (version {v} < {MIN_WASM_OPT_VERSION} breaks the module)",
                system.display()
            ),
            None => println!("wasm-opt: skipping {} (no version)", system.display()),
        }
    }
    println!("wasm-opt: none usable, the wasm stays unoptimised");
    None
}

fn usable(wasm_opt: &Path) -> bool {
    process::version_line(wasm_opt)
        .and_then(|line| wasm_opt_version(&line))
        .is_some_and(|v| v >= MIN_WASM_OPT_VERSION)
}

fn npm_binaryen_version(prefix: &Path) -> Option<String> {
    let text = std::fs::read_to_string(prefix.join("node_modules/binaryen/package.json")).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    package.get("version")?.as_str().map(str::to_owned)
}

/// The release number from `wasm-opt --version`, e.g. "wasm-opt version 132 (version_132)".
pub(crate) fn wasm_opt_version(line: &str) -> Option<u32> {
    let after = line.split_once("version")?.1.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_is_read_from_the_plain_form() -> Result<(), Error> {
        let toml = "[dependencies]\nwasm-bindgen = \"=0.2.130\"\nwasm-bindgen-futures = \"0.4\"\n";
        assert_eq!(wasm_bindgen_pin(toml)?, "0.2.130");
        Ok(())
    }

    #[test]
    fn pin_is_read_from_the_table_form() -> Result<(), Error> {
        let toml = "wasm-bindgen = { version = \"=0.2.99\", features = [\"serde\"] }\n";
        assert_eq!(wasm_bindgen_pin(toml)?, "0.2.99");
        Ok(())
    }

    #[test]
    fn pin_ignores_similar_crate_names() {
        let toml = "wasm-bindgen-test = \"=0.3.1\"\nwasm-bindgen-futures = \"=0.4\"\n";
        assert!(wasm_bindgen_pin(toml).is_err());
    }

    #[test]
    fn an_unpinned_wasm_bindgen_is_an_error() {
        assert!(wasm_bindgen_pin("wasm-bindgen = \"0.2\"\n").is_err());
    }

    #[test]
    fn the_real_cargo_toml_is_pinned() -> Result<(), Error> {
        let toml = std::fs::read_to_string(Workspace::locate().root().join("Cargo.toml"))?;
        let version = wasm_bindgen_pin(&toml)?;
        assert!(version.starts_with("0."), "{version}");
        Ok(())
    }

    #[test]
    fn wasm_opt_versions_parse() {
        assert_eq!(
            wasm_opt_version("wasm-opt version 132 (version_132)"),
            Some(132)
        );
        assert_eq!(wasm_opt_version("wasm-opt version 108"), Some(108));
        assert_eq!(wasm_opt_version("wasm-opt version_116"), None);
        assert_eq!(wasm_opt_version("something else"), None);
    }
}
