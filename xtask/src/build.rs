//! `cargo xtask build`: the wasm modules plus both browsers' extensions.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifest;
use crate::package::{self, Contents};
use crate::permissions::{self, Build};
use crate::tools::{self, WasmBindgen};
use crate::wasm;
use crate::workspace::Workspace;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    Release,
    Debug,
}

impl Profile {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Debug => "debug",
        }
    }

    /// Cargo's output directory name for the profile.
    pub(crate) fn dir(self) -> &'static str {
        self.name()
    }
}

/// What a build leaves behind that the test suite needs.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub(crate) wasm_bindgen: WasmBindgen,
    /// Holds `chrome/` and `firefox/`, each with loopback host permissions.
    pub(crate) test_extension: PathBuf,
}

pub(crate) fn run(workspace: &Workspace, profile: Profile) -> Result<Outputs, Error> {
    tools::ensure_wasm_target()?;
    let wasm_bindgen = tools::ensure_wasm_bindgen(workspace)?;

    let wasm_opt = match profile {
        Profile::Release => tools::ensure_wasm_opt(workspace),
        // A debug build is for fast iteration and readable stack traces.
        Profile::Debug => {
            println!("wasm-opt: skipped for --debug");
            None
        }
    };
    let wasm_dir = workspace.stage_dir().join("wasm");
    wasm::build_modules(
        workspace,
        &wasm_bindgen,
        wasm_opt.as_deref(),
        profile,
        None,
        &wasm_dir,
    )?;

    let source = read_manifest(&workspace.source_manifest())?;
    let version = source
        .get("version")
        .and_then(Value::as_str)
        .ok_or("manifest.json has no version string")?
        .to_owned();
    let chrome = manifest::chrome(&source);
    let firefox = manifest::firefox(&source)?;
    let builds = [("chrome", &chrome), ("firefox", &firefox)];
    for (browser, browser_manifest) in builds {
        check_permissions(browser, browser_manifest)?;
    }

    let extension_dir = workspace.extension_dir();
    let dist = workspace.dist_dir();
    let test_extension = workspace.test_extension_dir();
    for (browser, browser_manifest) in builds {
        let store_dir = dist.join(browser);
        package::assemble(
            &store_dir,
            &Contents {
                extension_dir: &extension_dir,
                wasm_dir: &wasm_dir,
                manifest: browser_manifest,
            },
        )?;
        let test_manifest = manifest::with_test_host_permissions(browser_manifest);
        package::assemble(
            &test_extension.join(browser),
            &Contents {
                extension_dir: &extension_dir,
                wasm_dir: &wasm_dir,
                manifest: &test_manifest,
            },
        )?;

        let zip = dist.join(format!("tokenward-{browser}-{version}.zip"));
        if zip.exists() {
            std::fs::remove_file(&zip)?;
        }
        match profile {
            Profile::Release => {
                package::zip_dir(&store_dir, &zip)?;
                println!("package: {} and {}", store_dir.display(), zip.display());
            }
            // A debug zip would look like a release to anyone uploading it.
            Profile::Debug => println!("package: {} (no zip for --debug)", store_dir.display()),
        }
        println!(
            "package: {} (test build)",
            test_extension.join(browser).display()
        );
    }

    print_load_instructions(workspace.root(), &dist, profile);
    Ok(Outputs {
        wasm_bindgen,
        test_extension,
    })
}

/// The store manifest and its test build against the permission rules
/// (xtask/src/permissions.rs), before anything is written to dist/.
fn check_permissions(browser: &str, store: &Value) -> Result<(), Error> {
    let test = manifest::with_test_host_permissions(store);
    for (build, built, label) in [(Build::Store, store, "store"), (Build::Test, &test, "test")] {
        if let Err(problems) = permissions::check(built, build) {
            return Err(format!(
                "the {browser} {label} manifest asks for too much:\n  {}",
                problems.join("\n  ")
            )
            .into());
        }
    }
    let asked: Vec<&str> = store
        .get("permissions")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!(
        "permissions: {browser} asks for {} and no host permission (test build: loopback only)",
        asked.join(", ")
    );
    Ok(())
}

fn read_manifest(path: &Path) -> Result<Value, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()).into())
}

fn print_load_instructions(root: &Path, dist: &Path, profile: Profile) {
    let shown = dist
        .strip_prefix(root)
        .unwrap_or(dist)
        .display()
        .to_string();
    let or_zip = match profile {
        Profile::Release => " (or the zip)",
        Profile::Debug => "",
    };
    println!(
        "\nBuilt. To load by hand:\n  \
         Chrome:  chrome://extensions -> Developer mode -> Load unpacked -> {shown}/chrome\n  \
         Firefox: about:debugging#/runtime/this-firefox -> Load Temporary Add-on -> \
         {shown}/firefox/manifest.json{or_zip}"
    );
}
