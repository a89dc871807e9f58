//! Size: each context's shipped wasm module raw and gzipped, each store
//! zip, and what takes the space in each module, from twiggy on a copy of the same module that keeps its
//! function names (`wasm-opt -g`; the shipped one has none).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use super::prepare::Prepared;
use crate::process;
use crate::wasm;
use crate::workspace::Workspace;
use crate::Error;

/// twiggy, the wasm code size profiler, from crates.io. 0.8.0 is the first
/// release that reads modules from current wasm-opt (0.7.0 panics "should
/// not parse the same key into multiple items"). It reports its version as
/// `twiggy-opt 0.8.0`. Check for newer releases with `cargo info twiggy`.
const TWIGGY_VERSION: &str = "0.8.0";

/// Items listed individually.
const TOP_ITEMS: usize = 25;

#[derive(Debug)]
pub(crate) struct Sizes {
    /// Each context's module, in [`wasm::Module::ALL`]'s order.
    modules: Vec<ModuleSize>,
    zips: Vec<(String, u64)>,
    /// twiggy's `--version`, or why it could not run.
    pub(crate) twiggy: String,
}

#[derive(Debug)]
struct ModuleSize {
    /// `background` or `pages`.
    name: &'static str,
    wasm_raw: u64,
    wasm_gzip: u64,
    /// Shallow bytes per crate (or "data segments", "wasm-bindgen imports"…),
    /// largest first, from the named copy.
    by_crate: Vec<(String, u64)>,
    /// The `tokenward` and `tokenward_core` shares, per module.
    by_module: Vec<(String, u64)>,
    top: Vec<(String, u64)>,
    /// Bytes of the named copy without its name sections: equal to
    /// `wasm_raw` when the copy is the shipped module plus names.
    named_without_names: u64,
}

pub(crate) fn measure(
    workspace: &Workspace,
    bench_dir: &Path,
    prepared: &Prepared,
) -> Result<Sizes, Error> {
    println!("\n==> size");
    let mut zips = Vec::new();
    for entry in std::fs::read_dir(&prepared.dist)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "zip") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            zips.push((name, std::fs::metadata(&path)?.len()));
        }
    }
    zips.sort();

    let twiggy = ensure_twiggy(workspace)?;
    let twiggy_version = process::version_line(&twiggy).unwrap_or_default();
    let mut modules = Vec::new();
    for built in &prepared.modules {
        let name = built.module.name();
        let shipped = prepared
            .dist
            .join("chrome/wasm")
            .join(format!("{name}_bg.wasm"));
        let bytes = std::fs::read(&shipped)?;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
        gzip.write_all(&bytes)?;
        let wasm_gzip = gzip.finish()?.len() as u64;
        let named = named_copy(bench_dir, prepared, built)?;
        let listing = process::stdout(
            Command::new(&twiggy)
                .args(["top", "-f", "json", "-n", "1000000"])
                .arg(&named),
        )?;
        let items: Vec<Value> = serde_json::from_str(&listing)?;
        let mut by_crate: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_module: BTreeMap<String, u64> = BTreeMap::new();
        let mut top = Vec::new();
        let mut names = 0u64;
        for item in &items {
            let item_name = item["name"].as_str().unwrap_or("");
            let size = item["shallow_size"].as_u64().unwrap_or(0);
            if is_name_section(item_name) {
                names += size;
                continue;
            }
            let owner = owner(item_name);
            if owner == "tokenward" || owner == "tokenward_core" {
                *by_module.entry(module_of(item_name, &owner)).or_default() += size;
            }
            *by_crate.entry(owner).or_default() += size;
            if top.len() < TOP_ITEMS {
                top.push((item_name.to_owned(), size));
            }
        }
        let largest_first = |map: BTreeMap<String, u64>| {
            let mut list: Vec<(String, u64)> = map.into_iter().collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            list
        };
        let named_size = std::fs::metadata(&named)?.len();
        let module = ModuleSize {
            name,
            wasm_raw: bytes.len() as u64,
            wasm_gzip,
            by_crate: largest_first(by_crate),
            by_module: largest_first(by_module),
            top,
            named_without_names: named_size.saturating_sub(names),
        };
        println!(
            "size: {name} wasm {} bytes, {} gzipped; named copy without names {} bytes",
            module.wasm_raw, module.wasm_gzip, module.named_without_names
        );
        modules.push(module);
    }
    Ok(Sizes {
        modules,
        zips,
        twiggy: twiggy_version,
    })
}

impl Sizes {
    /// The size figures as rows, in the bench's row format.
    pub(crate) fn rows(&self) -> Vec<Value> {
        let row = |id: &str, label: &str, value: u64| {
            json!({
                "id": id, "engine": "-", "label": label, "unit": "bytes",
                "median": value, "min": value, "max": value, "n": 1,
            })
        };
        let mut rows = Vec::new();
        for m in &self.modules {
            rows.push(row(
                &format!("size.{}.wasm_raw", m.name),
                &format!("{} wasm, raw", m.name),
                m.wasm_raw,
            ));
            rows.push(row(
                &format!("size.{}.wasm_gzip", m.name),
                &format!("{} wasm, gzip -9", m.name),
                m.wasm_gzip,
            ));
        }
        for (name, bytes) in &self.zips {
            rows.push(row(&format!("size.zip.{name}"), name, *bytes));
        }
        rows
    }

    pub(crate) fn to_json(&self) -> Value {
        let pairs = |list: &[(String, u64)]| {
            list.iter()
                .map(|(name, bytes)| json!({ "name": name, "bytes": bytes }))
                .collect::<Vec<_>>()
        };
        let modules: Vec<Value> = self
            .modules
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "wasm_raw": m.wasm_raw,
                    "wasm_gzip": m.wasm_gzip,
                    "by_crate": pairs(&m.by_crate),
                    "by_module": pairs(&m.by_module),
                    "top": pairs(&m.top),
                    "named_copy_without_names": m.named_without_names,
                })
            })
            .collect();
        json!({
            "modules": modules,
            "zips": pairs(&self.zips),
            "twiggy": self.twiggy,
        })
    }
}

/// A release module through wasm-bindgen and `wasm-opt -Oz -g`: the
/// shipped module plus its name sections.
fn named_copy(
    bench_dir: &Path,
    prepared: &Prepared,
    built: &wasm::Built,
) -> Result<PathBuf, Error> {
    let out = bench_dir.join("size");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let name = built.module.name();
    let bg = wasm::bindgen(&prepared.wasm_bindgen, &built.compiled, &out, name)?;
    let named = out.join(format!("{name}_named.wasm"));
    match &prepared.wasm_opt {
        Some(wasm_opt) => process::run(
            Command::new(wasm_opt)
                .args(["-Oz", "-g"])
                .args(wasm::WASM_OPT_FEATURES)
                .arg(&bg)
                .arg("-o")
                .arg(&named),
        )?,
        None => {
            std::fs::copy(&bg, &named)?;
        }
    }
    Ok(named)
}

/// twiggy at [`TWIGGY_VERSION`] from `.tools/bin`, PATH or `~/.cargo/bin`,
/// else `cargo install`ed into `.tools`: `tools::ensure_crate_tool`'s way,
/// which cannot be used as it is, since it expects the program to print its
/// own name (`twiggy 0.8.0`) and twiggy prints `twiggy-opt 0.8.0`.
fn ensure_twiggy(workspace: &Workspace) -> Result<PathBuf, Error> {
    let wanted = format!("twiggy-opt {TWIGGY_VERSION}");
    let local = workspace.tools_dir().join("bin/twiggy");
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|home| home.join("bin/twiggy"));
    for candidate in [
        Some(local.clone()),
        process::find_on_path("twiggy"),
        cargo_bin,
    ]
    .into_iter()
    .flatten()
    {
        if process::version_line(&candidate).as_deref() == Some(wanted.as_str()) {
            println!("twiggy: {TWIGGY_VERSION} at {}", candidate.display());
            return Ok(candidate);
        }
    }
    println!("twiggy: installing twiggy {TWIGGY_VERSION} into .tools (compiles; about 2 minutes)");
    process::run(
        process::cargo()
            .current_dir(workspace.root())
            .args([
                "install",
                "twiggy",
                "--version",
                TWIGGY_VERSION,
                "--locked",
                "--root",
            ])
            .arg(workspace.tools_dir()),
    )?;
    match process::version_line(&local) {
        Some(line) if line == wanted => Ok(local),
        other => Err(format!("installed twiggy reports {other:?}, expected {wanted:?}").into()),
    }
}

fn is_name_section(item: &str) -> bool {
    item.ends_with("names\" subsection") || item == "custom section 'name'"
}

/// Who owns an item of twiggy's listing: the crate of a function (for `<A
/// as B>::f`, A's crate, where the code was written; generic code counts
/// for the crate that defines it, whoever instantiated it), or the kind of
/// a non-function item.
pub(crate) fn owner(item: &str) -> String {
    if item.starts_with("data segment") || item.starts_with("data[") {
        return "(data segments: constants, tables, strings)".to_owned();
    }
    if item.starts_with("code[") {
        return "(unnamed functions)".to_owned();
    }
    if item.starts_with("import ") || item.contains("__wbg_") || item.starts_with("__wbindgen") {
        return "(wasm-bindgen imports and glue)".to_owned();
    }
    if item.starts_with("custom section") || item.ends_with("subsection") {
        return format!("({item})");
    }
    crate_of(item)
        .or_else(|| item.split_once(" as ").and_then(|(_, tail)| crate_of(tail)))
        .unwrap_or_else(|| "(other)".to_owned())
}

/// `<crate>::<module>` of an item [`owner`] gives to `krate` (`tokenward`
/// or `tokenward_core`).
fn module_of(item: &str, krate: &str) -> String {
    let prefix = format!("{krate}::");
    let at = item.find(&prefix).map_or(0, |i| i + prefix.len());
    let rest = &item[at..];
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    format!("{prefix}{}", &rest[..end])
}

/// The first path segment of `path` when it is a crate (`name::` or
/// `name[hash]::`), after any `<`, `&`, `mut`, `dyn`.
fn crate_of(path: &str) -> Option<String> {
    let mut path = path.trim_start_matches(['<', '&', ' ', '*']);
    for prefix in ["mut ", "dyn ", "const "] {
        path = path.trim_start_matches(prefix);
    }
    let end = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    let krate = &path[..end];
    let rest = &path[end..];
    let is_path = rest.starts_with("::") || rest.starts_with('[');
    (!krate.is_empty() && is_path).then(|| krate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(owner("tokenward::store::State::decode::hb622"), "tokenward");
        assert_eq!(
            owner("<dlmalloc[e24a]::dlmalloc::Dlmalloc<dlmalloc[e24a]::sys::System>>::malloc"),
            "dlmalloc"
        );
        assert_eq!(
            owner("<&mut serde_json::de::Deserializer<R> as serde_core::de::Deserializer>::x"),
            "serde_json"
        );
        assert_eq!(owner("<f64 as core[c593]::fmt::Display>::fmt"), "core");
        assert_eq!(
            owner("\"function names\" subsection"),
            "(\"function names\" subsection)"
        );
        assert_eq!(owner("core[c593]::num::flt2dec::format"), "core");
        assert_eq!(
            owner("data segment \".rodata.431\""),
            "(data segments: constants, tables, strings)"
        );
        assert_eq!(owner("code[15]"), "(unnamed functions)");
        assert_eq!(
            owner("js_sys::futures::future_to_promise::{{closure}}::h43"),
            "js_sys"
        );
    }

    #[test]
    fn modules_of_the_crate() {
        assert_eq!(
            module_of(
                "tokenward_core::store::State::decode::hb622",
                "tokenward_core"
            ),
            "tokenward_core::store"
        );
        assert_eq!(
            module_of(
                "<tokenward::background::Engine as tokenward_core::service::RuleEngine>::x",
                "tokenward"
            ),
            "tokenward::background"
        );
    }

    #[test]
    fn name_sections_are_not_shipped_bytes() {
        assert!(is_name_section("\"function names\" subsection"));
        assert!(is_name_section("\"data names\" subsection"));
        assert!(!is_name_section("data segment \".rodata\""));
    }
}
