//! The wasm modules, one per context: compile, generate the JS glue,
//! optimise, measure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::build::Profile;
use crate::process;
use crate::tools::{WasmBindgen, WASM_TARGET};
use crate::workspace::Workspace;
use crate::Error;

/// A context that loads a wasm module of its own, built from the
/// `tokenward` crate with the cargo feature of the same name: the background
/// gets the service, the vault, the providers and the compiler; the pages
/// only what renders views and sends requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Module {
    Background,
    Pages,
}

impl Module {
    pub(crate) const ALL: [Module; 2] = [Module::Background, Module::Pages];

    /// The cargo feature, and the base name of the generated files
    /// (`background.js`, `background_bg.wasm`), which the extension's
    /// scripts import.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Module::Background => "background",
            Module::Pages => "pages",
        }
    }
}

/// One module, built: as rustc left it, before wasm-bindgen.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) module: Module,
    pub(crate) compiled: PathBuf,
}

/// Every context's module into a fresh `out_dir`, each compiled with its
/// own feature, through wasm-bindgen, optimised when `wasm_opt` is given;
/// the sizes are printed. `target_dir` is cargo's, when not the workspace's.
pub(crate) fn build_modules(
    workspace: &Workspace,
    tools: &WasmBindgen,
    wasm_opt: Option<&Path>,
    profile: Profile,
    target_dir: Option<&Path>,
    out_dir: &Path,
) -> Result<Vec<Built>, Error> {
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir)?;
    }
    let mut built = Vec::new();
    for module in Module::ALL {
        let compiled = compile(workspace, profile, target_dir, module.name(), module.name())?;
        let shipped = bindgen(tools, &compiled, out_dir, module.name())?;
        if let Some(wasm_opt) = wasm_opt {
            optimize(wasm_opt, &shipped)?;
        }
        report_size(&shipped)?;
        built.push(Built { module, compiled });
    }
    Ok(built)
}

/// Features rustc 1.95 enables by default for wasm32-unknown-unknown (the
/// `generic` CPU since Rust 1.82/1.87). wasm-opt must be told, or it rejects
/// the module; it must not be told more, or it may emit instructions the
/// browsers' baseline lacks.
pub(crate) const WASM_OPT_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// `cargo build` of the tokenward cdylib for wasm32 with only `features`,
/// into `target_dir` (the workspace's when `None`); returns the module,
/// copied aside as `tokenward-<name>.wasm`, since every feature set is
/// uplifted to the same `tokenward.wasm`.
pub(crate) fn compile(
    workspace: &Workspace,
    profile: Profile,
    target_dir: Option<&Path>,
    features: &str,
    name: &str,
) -> Result<PathBuf, Error> {
    println!(
        "compile: tokenward --features {features} for {WASM_TARGET} ({})",
        profile.name()
    );
    let mut cargo = process::cargo();
    cargo.current_dir(workspace.root()).args([
        "build",
        "--target",
        WASM_TARGET,
        "-p",
        "tokenward",
        "--lib",
        "--no-default-features",
        "--features",
        features,
    ]);
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    let target = target_dir.unwrap_or(workspace.target());
    if let Some(dir) = target_dir {
        cargo.arg("--target-dir").arg(dir);
    }
    process::run(&mut cargo)?;
    let out = target.join(WASM_TARGET).join(profile.dir());
    let aside = out.join(format!("tokenward-{name}.wasm"));
    std::fs::copy(out.join("tokenward.wasm"), &aside)?;
    Ok(aside)
}

/// wasm-bindgen `--target web` into `out_dir` as `<out_name>.js` and
/// `<out_name>_bg.wasm`; returns the _bg.wasm path.
pub(crate) fn bindgen(
    tools: &WasmBindgen,
    wasm: &Path,
    out_dir: &Path,
    out_name: &str,
) -> Result<PathBuf, Error> {
    println!(
        "wasm-bindgen: --target web {out_name} into {}",
        out_dir.display()
    );
    process::run(
        Command::new(&tools.bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(out_dir)
            .args(["--out-name", out_name])
            .arg(wasm),
    )?;
    Ok(out_dir.join(format!("{out_name}_bg.wasm")))
}

/// `wasm-opt -Oz` in place.
pub(crate) fn optimize(wasm_opt: &Path, wasm: &Path) -> Result<(), Error> {
    println!("wasm-opt: -Oz");
    let optimized = wasm.with_extension("opt.wasm");
    process::run(
        Command::new(wasm_opt)
            .arg("-Oz")
            .args(WASM_OPT_FEATURES)
            .arg(wasm)
            .arg("-o")
            .arg(&optimized),
    )?;
    std::fs::rename(&optimized, wasm)?;
    Ok(())
}

/// Prints raw and gzip -9 sizes: gzip is close to what a store download costs.
pub(crate) fn report_size(wasm: &Path) -> Result<(), Error> {
    let bytes = std::fs::read(wasm)?;
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(&bytes)?;
    let gzipped = gzip.finish()?.len();
    println!(
        "size: {} is {} bytes, {gzipped} gzipped",
        wasm.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        bytes.len()
    );
    Ok(())
}
