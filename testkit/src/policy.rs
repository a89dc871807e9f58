//! Browser policy for the managed-policy tests, written where each browser
//! reads it, and put back as it was found when the test ends, passes or
//! fails.
//!
//! Neither browser offers a flag or pref that points a release build at a
//! test policy file: Chromium reads `/etc/chromium/policies/managed/*.json`
//! on Linux, and Firefox's `browser.policies.alternatePath` is honoured by
//! Nightly builds only (`EnterprisePolicies.sys.mjs`,
//! `_getConfigurationFile`), so ESR reads `distribution/policies.json` in
//! its installation folder. So the test writes there, as an administrator
//! would: Chromium's file is one of its own in the managed folder; Firefox's
//! `policies.json`, if one was there, is kept aside and put back. A run
//! killed before it could clean up leaves a backup behind, which the next
//! run puts back first.

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

use crate::browser::{extension_id_of, gecko_id_of, Engine};
use crate::harness::extension_dir;

/// Chromium's folder of mandatory policies on Linux.
const CHROMIUM_POLICY_DIR: &str = "/etc/chromium/policies/managed";
const CHROMIUM_FILE: &str = "tokenward-e2e.json";
const FIREFOX_BACKUP: &str = "policies.json.tokenward-e2e-backup";

/// A policy file in place; dropped, the machine is as it was.
#[derive(Debug)]
pub struct PolicyFile {
    engine: Engine,
    path: PathBuf,
    /// Folders this test created, deepest first, removed if left empty.
    created: Vec<PathBuf>,
}

/// Where `engine` reads its policies.
pub fn policy_path(engine: Engine) -> PathBuf {
    match engine {
        Engine::Chromium => Path::new(CHROMIUM_POLICY_DIR).join(CHROMIUM_FILE),
        Engine::Firefox => {
            let binary = PathBuf::from(crate::browser::firefox_binary());
            let binary = binary.canonicalize().unwrap_or(binary);
            binary
                .parent()
                .expect("Firefox's installation folder")
                .join("distribution")
                .join("policies.json")
        }
    }
}

impl PolicyFile {
    /// Writes `policy` (the object the extension reads from
    /// `storage.managed`) for the test build of `engine`.
    pub fn write(engine: Engine, policy: &Json) -> PolicyFile {
        let path = policy_path(engine);
        let mut created = Vec::new();
        let mut missing = Vec::new();
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d.exists() {
                break;
            }
            missing.push(d.clone());
            dir = d.parent().map(Path::to_path_buf);
        }
        for d in missing.iter().rev() {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
        }
        created.extend(missing);
        if engine == Engine::Firefox {
            let backup = path.with_file_name(FIREFOX_BACKUP);
            if backup.exists() {
                // A killed run's leftover: put the machine's own back first.
                std::fs::rename(&backup, &path).expect("restore the earlier backup");
            }
            if path.exists() {
                std::fs::rename(&path, &backup).expect("keep policies.json aside");
            }
        }
        let file = PolicyFile {
            engine,
            path,
            created,
        };
        file.rewrite(policy);
        file
    }

    /// Replaces the policy (Chromium reads it again while running; Firefox
    /// at its next start).
    pub fn rewrite(&self, policy: &Json) {
        let dir = extension_dir(self.engine);
        let document = match self.engine {
            Engine::Chromium => {
                json!({"3rdparty": {"extensions": {extension_id_of(&dir): policy}}})
            }
            Engine::Firefox => {
                json!({"policies": {"3rdparty": {"Extensions": {gecko_id_of(&dir): policy}}}})
            }
        };
        let text = serde_json::to_string_pretty(&document).expect("a policy serializes");
        std::fs::write(&self.path, text)
            .unwrap_or_else(|e| panic!("write {}: {e}", self.path.display()));
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if self.engine == Engine::Firefox {
            let backup = self.path.with_file_name(FIREFOX_BACKUP);
            if backup.exists() {
                let _ = std::fs::rename(&backup, &self.path);
            }
        }
        for dir in &self.created {
            // Only if empty: never anything that was not ours.
            let _ = std::fs::remove_dir(dir);
        }
    }
}
