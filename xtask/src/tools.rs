//! Provisioning of the build and test tools: the wasm32 target,
//! wasm-bindgen, wasm-opt, web-ext and the crates.io WebDriver (geckodriver).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::process;
use crate::workspace::Workspace;
use crate::Error;

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// binaryen from npm, installed into `.tools/npm`. npm is the one registry
/// here with a current binaryen; Debian's (wasm-opt 108) miscompiles modules
/// from current rustc. Check for newer releases with `npm view binaryen version`.
const BINARYEN_NPM_VERSION: &str = "132.0.0";

/// Mozilla's web-ext from npm, installed into `.tools/npm` beside binaryen:
/// its `lint` runs addons-linter, the validator addons.mozilla.org runs on
/// every upload. Check for newer releases with `npm view web-ext version`.
pub(crate) const WEB_EXT_NPM_VERSION: &str = "10.7.0";

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

    println!("wasm-opt: installing binaryen@{BINARYEN_NPM_VERSION} into .tools/npm");
    match npm_install(&prefix, "binaryen", BINARYEN_NPM_VERSION) {
        Ok(()) if usable(&pinned) => return Some(pinned),
        Ok(()) => println!("wasm-opt: the installed binaryen does not run"),
        Err(error) => println!("wasm-opt: {error}"),
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
    npm_package_version(prefix, "binaryen")
}

/// Finds, or installs into `.tools/npm`, web-ext at exactly
/// [`WEB_EXT_NPM_VERSION`]. Unlike wasm-opt it is required: the lint step is
/// a test, and a test that cannot run has failed.
pub(crate) fn ensure_web_ext(workspace: &Workspace) -> Result<PathBuf, Error> {
    let prefix = workspace.tools_dir().join("npm");
    let web_ext = prefix.join("node_modules/.bin/web-ext");
    let ready = || {
        npm_package_version(&prefix, "web-ext").as_deref() == Some(WEB_EXT_NPM_VERSION)
            && process::version_line(&web_ext).as_deref() == Some(WEB_EXT_NPM_VERSION)
    };
    if !ready() {
        println!("web-ext: installing web-ext@{WEB_EXT_NPM_VERSION} into .tools/npm");
        npm_install(&prefix, "web-ext", WEB_EXT_NPM_VERSION)?;
        if !ready() {
            return Err(format!(
                "web-ext@{WEB_EXT_NPM_VERSION} installed into {} but {} does not report that version",
                prefix.display(),
                web_ext.display()
            )
            .into());
        }
    }
    println!("web-ext: {WEB_EXT_NPM_VERSION} from .tools/npm");
    Ok(web_ext)
}

/// Deque's axe-core from npm, installed into `.tools/npm` beside web-ext:
/// the end-to-end suite runs it inside the real popup and options page
/// (tests/e2e/main.rs `pages_are_readable_and_pass_axe_in_light_and_dark`). Check for newer
/// releases with `npm view axe-core version`.
pub(crate) const AXE_CORE_NPM_VERSION: &str = "4.11.0";

/// Finds, or installs into `.tools/npm`, axe-core at exactly
/// [`AXE_CORE_NPM_VERSION`]; returns its `axe.min.js`.
pub(crate) fn ensure_axe_core(workspace: &Workspace) -> Result<PathBuf, Error> {
    let prefix = workspace.tools_dir().join("npm");
    let script = prefix.join("node_modules/axe-core/axe.min.js");
    let ready =
        || npm_package_version(&prefix, "axe-core").as_deref() == Some(AXE_CORE_NPM_VERSION);
    if !ready() || !script.exists() {
        println!("axe-core: installing axe-core@{AXE_CORE_NPM_VERSION} into .tools/npm");
        npm_install(&prefix, "axe-core", AXE_CORE_NPM_VERSION)?;
        if !ready() || !script.exists() {
            return Err(format!(
                "axe-core@{AXE_CORE_NPM_VERSION} installed into {} but {} is missing",
                prefix.display(),
                script.display()
            )
            .into());
        }
    }
    println!("axe-core: {AXE_CORE_NPM_VERSION} from .tools/npm");
    Ok(script)
}

/// The version of `oidc-provider` standin/oidc/package.json pins; its
/// package-lock.json holds the rest of the tree.
pub(crate) const OIDC_PROVIDER_NPM_VERSION: &str = "9.13.3";

/// The OpenID Connect stand-in of the provider e2e tests
/// (standin/oidc/server.mjs): its npm tree installed exactly from the lock
/// file (`npm ci`) unless already there. Returns the script to run.
pub(crate) fn ensure_oidc_standin(workspace: &Workspace) -> Result<PathBuf, Error> {
    let dir = workspace.root().join("standin/oidc");
    let ready =
        || npm_package_version(&dir, "oidc-provider").as_deref() == Some(OIDC_PROVIDER_NPM_VERSION);
    if !ready() {
        println!("oidc-provider: npm ci in standin/oidc");
        let npm = process::find_on_path("npm")
            .ok_or("npm not found on PATH, cannot install standin/oidc's packages")?;
        process::run(Command::new(npm).current_dir(&dir).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))?;
        if !ready() {
            return Err(format!(
                "npm ci in {} did not install oidc-provider@{OIDC_PROVIDER_NPM_VERSION}",
                dir.display()
            )
            .into());
        }
    }
    println!("oidc-provider: {OIDC_PROVIDER_NPM_VERSION} in standin/oidc");
    Ok(dir.join("server.mjs"))
}

/// `npm install NAME@VERSION` into `prefix`, recorded exactly in its
/// package.json so that a later install of another tool keeps this one.
fn npm_install(prefix: &Path, name: &str, version: &str) -> Result<(), Error> {
    let npm = process::find_on_path("npm")
        .ok_or_else(|| format!("npm not found on PATH, cannot install {name}@{version}"))?;
    process::run(
        Command::new(npm)
            .args([
                "install",
                "--save-exact",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(prefix)
            .arg(format!("{name}@{version}")),
    )
}

/// The version of an npm package installed under `prefix`, from its package.json.
fn npm_package_version(prefix: &Path, name: &str) -> Option<String> {
    let manifest = prefix.join("node_modules").join(name).join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    package.get("version")?.as_str().map(str::to_owned)
}

/// cargo-fuzz, which builds and runs the libFuzzer targets in fuzz/.
pub(crate) const CARGO_FUZZ: CrateTool = CrateTool {
    krate: "cargo-fuzz",
    version: "0.13.2",
    bin: "cargo-fuzz",
};

/// The targets in fuzz/Cargo.toml.
pub(crate) const FUZZ_TARGETS: [&str; 11] = [
    "pattern",
    "header_value",
    "import_modheader",
    "import_simplemodifyheaders",
    "import_requestly",
    "import_headerly",
    "import_tokenward",
    "provider_responses",
    "message",
    "stored_state",
    "policy",
];

/// A nightly toolchain for cargo-fuzz. This machine image ships one; where it
/// is missing, rustup installs it (minimal profile).
pub(crate) fn ensure_nightly() -> Result<(), Error> {
    let present =
        process::stdout(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]));
    match present {
        Ok(version) => {
            println!("nightly: {}", version.trim());
            Ok(())
        }
        Err(_) => {
            println!("nightly: installing with rustup (minimal profile)");
            process::run(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]))
        }
    }
}

/// A program installed with `cargo install` from crates.io, at an exact version.
#[derive(Debug)]
pub(crate) struct CrateTool {
    pub(crate) krate: &'static str,
    pub(crate) version: &'static str,
    pub(crate) bin: &'static str,
}

/// Finds, or installs into `.tools/bin`, a crates.io program at exactly its
/// pinned version. One already in `.tools/bin`, on PATH or in cargo's own
/// bin directory (`~/.cargo/bin`) is used when it reports that version.
pub(crate) fn ensure_crate_tool(workspace: &Workspace, tool: &CrateTool) -> Result<PathBuf, Error> {
    let local = workspace.tools_dir().join("bin").join(tool.bin);
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin").join(tool.bin));
    let candidates = [
        Some(local.clone()),
        process::find_on_path(tool.bin),
        cargo_bin,
    ];
    for candidate in candidates.into_iter().flatten() {
        if reports_version(&candidate, tool) {
            println!("{}: {} at {}", tool.bin, tool.version, candidate.display());
            return Ok(candidate);
        }
    }

    println!(
        "{}: installing {} {} into .tools (compiles; minutes on a cold machine)",
        tool.bin, tool.krate, tool.version
    );
    let started = Instant::now();
    // --locked: build with the crate's own Cargo.lock, the dependency versions
    // its release was tested with (geckodriver 0.37.1's builds on rustc 1.95).
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args([
                "install",
                tool.krate,
                "--version",
                tool.version,
                "--locked",
                "--root",
            ])
            .arg(workspace.tools_dir()),
    )?;
    println!(
        "{}: installed in {} s",
        tool.bin,
        started.elapsed().as_secs()
    );
    if reports_version(&local, tool) {
        Ok(local)
    } else {
        Err(format!(
            "installed {} reports {:?}, expected {} {}",
            local.display(),
            process::version_line(&local),
            tool.bin,
            tool.version
        )
        .into())
    }
}

fn reports_version(program: &Path, tool: &CrateTool) -> bool {
    process::version_line(program).is_some_and(|line| is_version_line(&line, tool))
}

/// Whether `--version`'s first line names exactly the tool's version:
/// "geckodriver 0.37.1", or with a build note after it
/// ("geckodriver 0.37.1 (abc123 2025-01-01)"), but not "geckodriver 0.37.10".
pub(crate) fn is_version_line(line: &str, tool: &CrateTool) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some(tool.bin) && words.next() == Some(tool.version)
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

    const TOOL: CrateTool = CrateTool {
        krate: "geckodriver",
        version: "0.37.1",
        bin: "geckodriver",
    };

    #[test]
    fn crate_tool_versions_match_exactly() {
        assert!(is_version_line("geckodriver 0.37.1", &TOOL));
        assert!(is_version_line(
            "geckodriver 0.37.1 (e3b3a9e 2025-01-01)",
            &TOOL
        ));
        assert!(!is_version_line("geckodriver 0.37.10", &TOOL));
        assert!(!is_version_line("geckodriver 0.36.0", &TOOL));
        assert!(!is_version_line("chromedriver 0.37.1", &TOOL));
        assert!(!is_version_line("", &TOOL));
    }

    #[test]
    fn every_fuzz_target_is_run() -> Result<(), Error> {
        let manifest = std::fs::read_to_string(Workspace::locate().root().join("fuzz/Cargo.toml"))?;
        let declared = manifest.matches("[[bin]]").count();
        assert_eq!(
            declared,
            FUZZ_TARGETS.len(),
            "fuzz/Cargo.toml and FUZZ_TARGETS disagree"
        );
        for target in FUZZ_TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target}"
            );
        }
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
