//! Where and with what the figures were taken: the machine, the programs'
//! versions, the date and the commit.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Map, Value};

use super::prepare::Prepared;
use crate::browsers::Located;
use crate::process;
use crate::workspace::Workspace;

pub(crate) fn date_utc() -> String {
    process::stdout(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The commit measured, and whether the tree had changes on top of it.
pub(crate) fn commit(workspace: &Workspace) -> String {
    let git = |args: &[&str]| {
        process::stdout(Command::new("git").current_dir(workspace.root()).args(args))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain"]).is_empty();
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

pub(crate) fn describe() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = process::stdout(Command::new("uname").arg("-r"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory_gib,
        "os": format!("{os}, Linux {kernel}"),
    })
}

pub(crate) fn versions(located: &[Located], prepared: &Prepared, twiggy: &str) -> Value {
    let mut versions = Map::new();
    let cargo = process::stdout(process::cargo().arg("--version"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    versions.insert("cargo".into(), json!(cargo));
    for l in located {
        let line = |p: &Path| process::version_line(p).unwrap_or_else(|| "unknown".to_owned());
        versions.insert(l.browser.name.into(), json!(line(&l.binary)));
        let driver = l
            .driver
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        versions.insert(driver, json!(line(&l.driver)));
    }
    versions.insert(
        "wasm-bindgen".into(),
        json!(process::version_line(&prepared.wasm_bindgen.bindgen).unwrap_or_default()),
    );
    if let Some(wasm_opt) = &prepared.wasm_opt {
        versions.insert(
            "wasm-opt".into(),
            json!(process::version_line(wasm_opt).unwrap_or_default()),
        );
    }
    versions.insert("twiggy".into(), json!(twiggy));
    Value::Object(versions)
}
