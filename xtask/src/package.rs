//! Laying out an unpacked extension directory and zipping it for a store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::Error;

/// One unpacked extension: the static files, the wasm glue under `wasm/`, and
/// the browser's own manifest.json.
#[derive(Debug)]
pub(crate) struct Contents<'a> {
    pub(crate) extension_dir: &'a Path,
    pub(crate) wasm_dir: &'a Path,
    pub(crate) manifest: &'a Value,
}

/// Writes `contents` into `out_dir`, wiping it first so no file from an
/// earlier build (a renamed page, an old wasm) can ship by accident.
pub(crate) fn assemble(out_dir: &Path, contents: &Contents<'_>) -> Result<(), Error> {
    if out_dir.exists() {
        fs::remove_dir_all(out_dir)?;
    }
    fs::create_dir_all(out_dir)?;

    for relative in files_under(contents.extension_dir)? {
        if relative == Path::new("manifest.json") {
            return Err(format!(
                "{} must not exist: manifest.json is generated from the root manifest.json",
                contents.extension_dir.join("manifest.json").display()
            )
            .into());
        }
        if relative.starts_with("wasm") {
            return Err(format!(
                "{} clashes with the generated wasm/ directory",
                contents.extension_dir.join(&relative).display()
            )
            .into());
        }
        if relative.starts_with(PARTIALS) {
            continue;
        }
        let from = contents.extension_dir.join(&relative);
        if relative.extension().is_some_and(|e| e == "html") {
            let page = fs::read_to_string(&from)?;
            let page = expand_includes(&page, contents.extension_dir)
                .map_err(|e| format!("{}: {e}", from.display()))?;
            write_file(&out_dir.join(&relative), page.as_bytes())?;
        } else {
            copy(&from, &out_dir.join(&relative))?;
        }
    }
    for relative in files_under(contents.wasm_dir)? {
        copy(
            &contents.wasm_dir.join(&relative),
            &out_dir.join("wasm").join(&relative),
        )?;
    }

    let mut json = serde_json::to_string_pretty(contents.manifest)?;
    json.push('\n');
    fs::write(out_dir.join("manifest.json"), json)?;
    Ok(())
}

/// Where the pieces of HTML that several pages share live, under the
/// extension directory; they are expanded into the pages, not shipped.
pub(crate) const PARTIALS: &str = "partials";

/// Replaces each `<!-- include partials/x.html -->` line of a page with
/// that file (not recursively: a partial includes nothing).
pub(crate) fn expand_includes(page: &str, extension_dir: &Path) -> Result<String, Error> {
    let mut out = String::with_capacity(page.len());
    for line in page.split_inclusive('\n') {
        let included = line
            .trim()
            .strip_prefix("<!-- include ")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim);
        match included {
            Some(name) if Path::new(name).starts_with(PARTIALS) && !name.contains("..") => {
                let text = fs::read_to_string(extension_dir.join(name))
                    .map_err(|e| format!("include {name}: {e}"))?;
                out.push_str(&text);
            }
            Some(name) => return Err(format!("include {name}: only {PARTIALS}/ files").into()),
            None => out.push_str(line),
        }
    }
    Ok(out)
}

/// Zips `dir` with entries relative to it (manifest.json at the root, as the
/// stores require), in sorted order with fixed timestamps and modes, so the
/// same tree always gives the same bytes.
pub(crate) fn zip_dir(dir: &Path, zip_path: &Path) -> Result<(), Error> {
    if let Some(parent) = zip_path.parent() {
        fs::create_dir_all(parent)?;
    }
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(File::create(zip_path)?);
    for relative in files_under(dir)? {
        // Zip entry names always use '/', whatever the host's separator.
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        zip.start_file(name, options)?;
        zip.write_all(&fs::read(dir.join(&relative))?)?;
    }
    zip.finish()?;
    Ok(())
}

/// Every file below `root`, relative to it, sorted. Dotfiles (.gitkeep,
/// .DS_Store) are left out: they are never part of the extension, and the
/// Firefox linter flags hidden files in a package. A missing root is empty.
pub(crate) fn files_under(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    if root.exists() {
        walk(root, Path::new(""), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn walk(root: &Path, relative: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(relative))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            walk(root, &path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))?;
    Ok(())
}

fn write_file(to: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(to, bytes).map_err(|e| format!("write {}: {e}", to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_get_their_partials_and_partials_do_not_ship() {
        let temp = std::env::temp_dir().join(format!("tw-include-{}", std::process::id()));
        let ext = temp.join("ext");
        fs::create_dir_all(ext.join(PARTIALS)).expect("test setup");
        fs::write(
            ext.join("page.html"),
            "<main>\n  <!-- include partials/a.html -->\n</main>\n",
        )
        .expect("test setup");
        fs::write(ext.join("partials/a.html"), "<p>shared</p>\n").expect("test setup");
        let wasm = temp.join("wasm");
        fs::create_dir_all(&wasm).expect("test setup");
        let out = temp.join("out");
        let manifest = serde_json::json!({ "name": "x" });
        assemble(
            &out,
            &Contents {
                extension_dir: &ext,
                wasm_dir: &wasm,
                manifest: &manifest,
            },
        )
        .expect("test setup");
        assert_eq!(
            fs::read_to_string(out.join("page.html")).expect("test setup"),
            "<main>\n<p>shared</p>\n</main>\n"
        );
        assert!(!out.join(PARTIALS).exists());
        assert!(expand_includes("<!-- include ../secret -->\n", &ext).is_err());
        assert!(expand_includes("<!-- include partials/missing.html -->\n", &ext).is_err());
        fs::remove_dir_all(&temp).expect("test setup");
    }
    use serde_json::json;
    use std::io::Read;

    /// A scratch directory under target/, unique per test.
    fn scratch(name: &str) -> Result<PathBuf, Error> {
        let dir = crate::workspace::Workspace::locate()
            .stage_dir()
            .join("unit-tests")
            .join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn write(path: &Path, text: &str) -> Result<(), Error> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, text)?;
        Ok(())
    }

    #[test]
    fn assembles_files_wasm_and_manifest_and_zips_deterministically() -> Result<(), Error> {
        let dir = scratch("assemble")?;
        let (ext, wasm, out) = (dir.join("ext"), dir.join("wasm"), dir.join("out"));
        write(&ext.join("popup.html"), "<p>")?;
        write(&ext.join("icons/icon-16.png"), "png")?;
        write(&ext.join(".gitkeep"), "")?;
        write(&wasm.join("pages.js"), "js")?;
        write(&wasm.join("pages_bg.wasm"), "wasm")?;
        write(&out.join("stale.txt"), "old build")?;
        let manifest = json!({ "name": "Tokenward" });

        let contents = Contents {
            extension_dir: &ext,
            wasm_dir: &wasm,
            manifest: &manifest,
        };
        assemble(&out, &contents)?;
        assert_eq!(
            files_under(&out)?,
            [
                "icons/icon-16.png",
                "manifest.json",
                "popup.html",
                "wasm/pages.js",
                "wasm/pages_bg.wasm"
            ]
            .map(PathBuf::from)
        );

        let (first, second) = (dir.join("a.zip"), dir.join("b.zip"));
        zip_dir(&out, &first)?;
        zip_dir(&out, &second)?;
        assert_eq!(fs::read(&first)?, fs::read(&second)?);

        let mut archive = zip::ZipArchive::new(File::open(&first)?)?;
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        assert!(names.contains(&"manifest.json".to_owned()));
        assert!(names.contains(&"icons/icon-16.png".to_owned()));
        let mut text = String::new();
        archive
            .by_name("manifest.json")?
            .read_to_string(&mut text)?;
        assert_eq!(serde_json::from_str::<Value>(&text)?, manifest);
        Ok(())
    }

    #[test]
    fn a_manifest_in_extension_dir_is_an_error() -> Result<(), Error> {
        let dir = scratch("manifest-clash")?;
        let ext = dir.join("ext");
        write(&ext.join("manifest.json"), "{}")?;
        let manifest = json!({});
        let contents = Contents {
            extension_dir: &ext,
            wasm_dir: &dir.join("none"),
            manifest: &manifest,
        };
        assert!(assemble(&dir.join("out"), &contents).is_err());
        Ok(())
    }
}
