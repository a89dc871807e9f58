//! What the bench measures and loads, all built under `target/bench/` with
//! its own cargo target directory: a build or test running at the same
//! time (in `target/`, writing `dist/`) neither waits for the bench nor has
//! its files replaced under it.
//!
//! - the release extension, exactly as `cargo xtask build` makes it (the
//!   same compile flags, wasm-bindgen, `wasm-opt -Oz`, manifests and zips):
//!   store builds and zips in `dist/`, and in `extension/` the store build
//!   with the test build's loopback host permissions and a bench page;
//! - the minimal reference extension, in `reference/`;
//! - the background's module built with the `bench` feature, in `core-wasm/`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::build::Profile;
use crate::manifest;
use crate::package::{self, Contents};
use crate::permissions;
use crate::tools::{self, WasmBindgen};
use crate::wasm;
use crate::workspace::Workspace;
use crate::Error;

#[derive(Debug)]
pub(crate) struct Prepared {
    /// The store builds, `chrome/` and `firefox/`, and their zips.
    pub(crate) dist: PathBuf,
    /// `chrome/` and `firefox/`: the store build with loopback host
    /// permissions, plus `bench.html`, `bench.js` and `blank.html`.
    pub(crate) extension: PathBuf,
    /// `chrome/` and `firefox/`: the reference extension.
    pub(crate) reference: PathBuf,
    /// `tokenward.js` and `tokenward_bg.wasm` of the `bench` feature build (the
    /// background's module plus the core benchmark).
    pub(crate) core_wasm: PathBuf,
    /// Each context's release module, as rustc left it (what the size
    /// listing starts from) and as shipped.
    pub(crate) modules: Vec<wasm::Built>,
    pub(crate) wasm_bindgen: WasmBindgen,
    pub(crate) wasm_opt: Option<PathBuf>,
}

/// The Firefox add-on id of the reference extension.
const REFERENCE_GECKO_ID: &str = "reference@bench.tokenward.invalid";

impl Prepared {
    /// The cargo target directory of everything the bench compiles.
    pub(crate) fn cargo_target(bench_dir: &Path) -> PathBuf {
        bench_dir.join("cargo")
    }
}

pub(crate) fn all(workspace: &Workspace, bench_dir: &Path) -> Result<Prepared, Error> {
    println!(
        "\n==> building the release extension and the bench builds in {}",
        bench_dir.display()
    );
    tools::ensure_wasm_target()?;
    let wasm_bindgen = tools::ensure_wasm_bindgen(workspace)?;
    let wasm_opt = tools::ensure_wasm_opt(workspace);
    let cargo_target = Prepared::cargo_target(bench_dir);

    let wasm_dir = bench_dir.join("wasm");
    let modules = wasm::build_modules(
        workspace,
        &wasm_bindgen,
        wasm_opt.as_deref(),
        Profile::Release,
        Some(&cargo_target),
        &wasm_dir,
    )?;

    let text = std::fs::read_to_string(workspace.source_manifest())?;
    let source: Value = serde_json::from_str(&text)?;
    let version = source["version"]
        .as_str()
        .ok_or("manifest.json has no version string")?
        .to_owned();
    let dist = bench_dir.join("dist");
    let extension = bench_dir.join("extension");
    let pages = workspace.root().join("bench/pages");
    for (browser, store) in [
        ("chrome", manifest::chrome(&source)),
        ("firefox", manifest::firefox(&source)?),
    ] {
        let store_dir = dist.join(browser);
        package::assemble(
            &store_dir,
            &Contents {
                extension_dir: &workspace.extension_dir(),
                wasm_dir: &wasm_dir,
                manifest: &store,
            },
        )?;
        package::zip_dir(
            &store_dir,
            &dist.join(format!("tokenward-{browser}-{version}.zip")),
        )?;
        let test_dir = extension.join(browser);
        package::assemble(
            &test_dir,
            &Contents {
                extension_dir: &workspace.extension_dir(),
                wasm_dir: &wasm_dir,
                manifest: &with_loopback_hosts(&store),
            },
        )?;
        std::fs::copy(
            pages.join("extension-bench.html"),
            test_dir.join("bench.html"),
        )?;
        std::fs::copy(pages.join("extension-bench.js"), test_dir.join("bench.js"))?;
        std::fs::copy(
            pages.join("extension-blank.html"),
            test_dir.join("blank.html"),
        )?;
        println!(
            "package: {} (store), {} (with loopback hosts and bench.html)",
            store_dir.display(),
            test_dir.display()
        );
    }

    let reference = reference(workspace, &bench_dir.join("reference"))?;

    let core_wasm = bench_dir.join("core-wasm");
    // The core benchmark's own module: the background's, plus `bench_core`.
    let bench_compiled = wasm::compile(
        workspace,
        Profile::Release,
        Some(&cargo_target),
        "bench",
        "bench",
    )?;
    if core_wasm.exists() {
        std::fs::remove_dir_all(&core_wasm)?;
    }
    let bg = wasm::bindgen(&wasm_bindgen, &bench_compiled, &core_wasm, "tokenward")?;
    if let Some(wasm_opt) = &wasm_opt {
        wasm::optimize(wasm_opt, &bg)?;
    }
    Ok(Prepared {
        dist,
        extension,
        reference,
        core_wasm,
        modules,
        wasm_bindgen,
        wasm_opt,
    })
}

/// `store` with the test builds' loopback host permissions, and without
/// their test-only permissions: the bench measures what ships, and
/// `declarativeNetRequestFeedback` lets the browser keep track of every
/// matched rule, work neither Tokenward nor the reference asks for.
fn with_loopback_hosts(store: &Value) -> Value {
    let mut built = manifest::with_test_host_permissions(store);
    if let Some(list) = built["permissions"].as_array_mut() {
        list.retain(|p| {
            !permissions::TEST_ONLY_PERMISSIONS
                .iter()
                .any(|(name, _)| p.as_str() == Some(name))
        });
    }
    built
}

/// `bench/reference-extension/` as Chrome and Firefox builds, with exactly
/// the test build's host permissions, so that the same rules act on the
/// same requests.
fn reference(workspace: &Workspace, out: &Path) -> Result<PathBuf, Error> {
    let source = workspace.root().join("bench/reference-extension");
    let text = std::fs::read_to_string(source.join("manifest.json"))?;
    let chrome: Value = serde_json::from_str(&text)?;
    for (browser, built) in [
        ("chrome", with_loopback_hosts(&chrome)),
        ("firefox", with_loopback_hosts(&reference_firefox(&chrome)?)),
    ] {
        let dir = out.join(browser);
        copy_tree(&source, &dir)?;
        std::fs::write(
            dir.join("manifest.json"),
            format!("{}\n", serde_json::to_string_pretty(&built)?),
        )?;
    }
    Ok(out.to_path_buf())
}

/// The Firefox form of the reference manifest: Tokenward's derivation
/// (event page, no `key`), with the reference's own add-on id.
fn reference_firefox(chrome: &Value) -> Result<Value, Error> {
    let mut firefox = manifest::firefox(chrome)?;
    firefox["browser_specific_settings"]["gecko"]["id"] = json!(REFERENCE_GECKO_ID);
    Ok(firefox)
}

/// Replaces `to` with a copy of the tree at `from`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    for relative in package::files_under(from)? {
        let target = to.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&relative), &target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_manifest_is_minimal_and_derives_for_firefox() -> Result<(), Error> {
        let path = Workspace::locate()
            .root()
            .join("bench/reference-extension/manifest.json");
        let chrome: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        assert_eq!(
            chrome["permissions"],
            json!(["declarativeNetRequestWithHostAccess"])
        );
        assert!(
            chrome["key"].is_string(),
            "Chrome needs a key to pin the id"
        );
        let firefox = reference_firefox(&chrome)?;
        assert_eq!(
            firefox["browser_specific_settings"]["gecko"]["id"],
            json!(REFERENCE_GECKO_ID)
        );
        assert_eq!(
            firefox["background"],
            json!({ "scripts": ["background.js"] })
        );
        assert!(firefox.get("key").is_none());
        let built = with_loopback_hosts(&chrome);
        assert_eq!(
            built["permissions"],
            json!(["declarativeNetRequestWithHostAccess"])
        );
        assert!(built["host_permissions"]
            .as_array()
            .is_some_and(|hosts| hosts.contains(&json!("http://*.localhost/*"))));
        Ok(())
    }
}
