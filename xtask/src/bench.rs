//! `cargo xtask bench [--quick]`: builds the release extension, measures it
//! in headless Chromium and Firefox (the `bench` target of the root crate,
//! `benches/bench/`), judges the budgets, and writes the figures as JSON
//! and as tables in BENCHMARKS.md, with the machine, versions and date.
//!
//! `--quick` (few repetitions, small counts) checks that the harness works:
//! it fails when a figure could not be measured, shows the budgets without
//! judging them, and writes under `target/bench/quick/` instead of the
//! repository. Further arguments (`--engines chromium`, `--sections
//! popup,update`) go to the bench binary; such a partial run writes under
//! `target/bench/partial/`, so BENCHMARKS.md only ever holds whole runs.
//! `--report` only writes BENCHMARKS.md again from `bench/results.json`.

mod machine;
mod prepare;
mod report;
mod size;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use crate::browsers;
use crate::process;
use crate::workspace::Workspace;
use crate::Error;

pub(crate) fn run(workspace: &Workspace, args: &[&str]) -> Result<(), Error> {
    if args == ["--report"] {
        return rewrite_report(workspace);
    }
    let quick = args.contains(&"--quick");
    let passed: Vec<&str> = args.iter().copied().filter(|a| *a != "--quick").collect();
    let started = Instant::now();

    let located = browsers::ensure_installed(workspace)?;
    let bench_dir = workspace.target().join("bench");
    let prepared = prepare::all(workspace, &bench_dir)?;
    let sizes = size::measure(workspace, &bench_dir, &prepared)?;

    let partial = !passed.is_empty();
    let out_dir = bench_dir.join(if quick {
        "quick"
    } else if partial {
        "partial"
    } else {
        "full"
    });
    std::fs::create_dir_all(&out_dir)?;
    let raw = out_dir.join("raw.json");
    if raw.exists() {
        std::fs::remove_file(&raw)?;
    }
    println!(
        "\n==> measuring in the browsers{}",
        if quick { " (quick)" } else { "" }
    );
    let measuring = Instant::now();
    let mut cargo = process::cargo();
    cargo
        .current_dir(workspace.root())
        .args([
            "bench",
            "-p",
            "tokenward",
            "--bench",
            "bench",
            "--target-dir",
        ])
        .arg(prepare::Prepared::cargo_target(&bench_dir))
        .args(["--", "--out"])
        .arg(&raw)
        .args(&passed)
        .env("TOKENWARD_TEST_EXTENSION", &prepared.extension)
        .env("TOKENWARD_BENCH_REFERENCE", &prepared.reference)
        .env("TOKENWARD_BENCH_CORE_WASM", &prepared.core_wasm);
    if quick {
        cargo.arg("--quick");
    }
    for l in &located {
        cargo
            .env(l.browser.binary_env, &l.binary)
            .env(l.browser.driver_env, &l.driver);
    }
    process::run(&mut cargo)?;
    let measuring = measuring.elapsed();
    let measured: Value = serde_json::from_str(&std::fs::read_to_string(&raw)?)?;

    let command = std::iter::once("cargo xtask bench")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let versions = machine::versions(&located, &prepared, &sizes.twiggy);
    let mut rows = sizes.rows();
    rows.extend(measured["rows"].as_array().cloned().unwrap_or_default());
    let judged = report::judge(&rows, quick);
    let results = json!({
        "date": machine::date_utc(),
        "quick": quick,
        "command": command,
        "commit": machine::commit(workspace),
        "machine": machine::describe(),
        "versions": versions,
        "browsers": measured["versions"],
        "size": sizes.to_json(),
        "rows": rows,
        "budgets": judged,
        "duration_s": {
            "total": started.elapsed().as_secs(),
            "cargo_bench": measuring.as_secs(),
        },
    });

    let (json_path, markdown_path): (PathBuf, PathBuf) = if quick || partial {
        (out_dir.join("results.json"), out_dir.join("BENCHMARKS.md"))
    } else {
        (
            workspace.root().join("bench/results.json"),
            workspace.root().join("BENCHMARKS.md"),
        )
    };
    std::fs::write(&json_path, format!("{results:#}\n"))?;
    let previous = std::fs::read_to_string(&markdown_path).ok();
    std::fs::write(
        &markdown_path,
        report::markdown(&results, previous.as_deref()),
    )?;
    println!(
        "\nbench: {} and {} written in {:.0?}",
        json_path.display(),
        markdown_path.display(),
        started.elapsed()
    );
    let failed: Vec<String> = judged
        .iter()
        .filter(|b| b["verdict"] == json!("FAIL"))
        .map(|b| {
            format!(
                "{} {}",
                b["budget"].as_str().unwrap_or(""),
                b["engine"].as_str().unwrap_or("")
            )
        })
        .collect();
    if !failed.is_empty() {
        println!(
            "bench: budgets failed (see BENCHMARKS.md): {}",
            failed.join("; ")
        );
    }
    // A ratio over a floor under the clock's resolution was measured all
    // the same: the harness worked.
    let unmeasured: Vec<String> = rows
        .iter()
        .filter(|r| r.get("missing").is_some() && r["under_resolution"] != json!(true))
        .map(|r| format!("{} {}", text(&r["id"]), text(&r["engine"])))
        .collect();
    if unmeasured.is_empty() {
        Ok(())
    } else if quick {
        Err(format!("the harness could not measure: {}", unmeasured.join("; ")).into())
    } else {
        println!("bench: not measured: {}", unmeasured.join("; "));
        Ok(())
    }
}

/// `--report`: BENCHMARKS.md written again from `bench/results.json`, the
/// last full run's figures, after a change to how they are presented.
fn rewrite_report(workspace: &Workspace) -> Result<(), Error> {
    let json_path = workspace.root().join("bench/results.json");
    let markdown_path = workspace.root().join("BENCHMARKS.md");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&json_path)?)?;
    let previous = std::fs::read_to_string(&markdown_path).ok();
    std::fs::write(
        &markdown_path,
        report::markdown(&results, previous.as_deref()),
    )?;
    println!(
        "bench: {} rewritten from {}",
        markdown_path.display(),
        json_path.display()
    );
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}
