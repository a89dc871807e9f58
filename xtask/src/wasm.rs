//! The wasm core: compile, generate the JS glue, optimise, measure.

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

/// Base name of the generated files: `tokenward.js`, `tokenward_bg.wasm`.
const OUT_NAME: &str = "tokenward";

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

/// `cargo build` of the tokenward cdylib for wasm32; returns the .wasm path.
pub(crate) fn compile(workspace: &Workspace, profile: Profile) -> Result<PathBuf, Error> {
    println!("compile: tokenward for {WASM_TARGET} ({})", profile.name());
    let mut cargo = process::cargo();
    cargo.current_dir(workspace.root()).args([
        "build",
        "--target",
        WASM_TARGET,
        "-p",
        "tokenward",
        "--lib",
    ]);
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    process::run(&mut cargo)?;
    Ok(workspace
        .target()
        .join(WASM_TARGET)
        .join(profile.dir())
        .join(format!("{OUT_NAME}.wasm")))
}

/// wasm-bindgen `--target web` into a fresh `out_dir`; returns the _bg.wasm path.
pub(crate) fn bindgen(tools: &WasmBindgen, wasm: &Path, out_dir: &Path) -> Result<PathBuf, Error> {
    println!("wasm-bindgen: --target web into {}", out_dir.display());
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir)?;
    }
    process::run(
        Command::new(&tools.bindgen)
            .args(["--target", "web", "--no-typescript", "--out-dir"])
            .arg(out_dir)
            .args(["--out-name", OUT_NAME])
            .arg(wasm),
    )?;
    Ok(out_dir.join(format!("{OUT_NAME}_bg.wasm")))
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
