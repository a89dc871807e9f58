//! Where things live in the repository and under `target/`.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    root: PathBuf,
    target: PathBuf,
}

impl Workspace {
    /// The xtask crate sits one level below the workspace root; resolving from
    /// its manifest dir makes `cargo xtask` work from any subdirectory.
    pub(crate) fn locate() -> Self {
        let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf();
        // Honour CARGO_TARGET_DIR like cargo does, or we would look for the
        // wasm where cargo did not put it.
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        Self { root, target }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// The Chrome-form source manifest; both browsers' manifests derive from it.
    pub(crate) fn source_manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// Static extension files (HTML, JS glue, icons), copied as they are.
    pub(crate) fn extension_dir(&self) -> PathBuf {
        self.root.join("extension")
    }

    /// Tools installed by xtask itself (gitignored), so nothing lands in the
    /// user's global cargo or npm prefix.
    pub(crate) fn tools_dir(&self) -> PathBuf {
        self.root.join(".tools")
    }

    /// Store builds: what gets uploaded or loaded by hand.
    pub(crate) fn dist_dir(&self) -> PathBuf {
        self.root.join("dist")
    }

    /// Test builds: the store build plus loopback host permissions.
    pub(crate) fn test_extension_dir(&self) -> PathBuf {
        self.target.join("test-extension")
    }

    /// Scratch space for intermediate outputs (wasm-bindgen's, webdriver.json).
    pub(crate) fn stage_dir(&self) -> PathBuf {
        self.target.join("xtask")
    }
}
