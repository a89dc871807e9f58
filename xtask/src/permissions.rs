//! What a built manifest may ask the browser for, checked by every
//! `cargo xtask build` before anything is written.
//!
//! Host access is never granted at install: the store builds carry no
//! `host_permissions` at all, and Tokenward asks for each site at run time
//! through `optional_host_permissions`. Only the test builds hold host
//! permissions, for loopback, and even they may not name every site.

use serde_json::Value;

/// Every API permission any build may request, each with why it is needed.
/// Adding one means adding its reason here, where review sees it.
pub(crate) const ALLOWED_PERMISSIONS: [(&str, &str); 7] = [
    (
        "declarativeNetRequestWithHostAccess",
        "applies the header rules, and only where host access was granted (no install warning)",
    ),
    ("storage", "keeps the rule book in storage.local"),
    (
        "activeTab",
        "the popup reads the current tab's address after the user's click",
    ),
    (
        "alarms",
        "recomputes the rules when a credential expires, though the service worker has stopped",
    ),
    (
        "idle",
        "locks the vault after the idle time the user chose (idle.queryState); shows no warning",
    ),
    (
        "notifications",
        "reminds the user 3 days and 1 day before a token expires (can be turned off in the popup)",
    ),
    (
        "identity",
        "OpenID Connect login: identity.launchWebAuthFlow carries the user through their identity provider's login page; no install warning",
    ),
];

/// Permissions only a test build may hold. A store build with one of these
/// fails the check.
pub(crate) const TEST_ONLY_PERMISSIONS: [(&str, &str); 1] = [(
    "declarativeNetRequestFeedback",
    "declarativeNetRequest.testMatchOutcome, for the differential scope test against the browser's own rule engine",
)];

/// Which kind of build a manifest is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// dist/: what is uploaded to a store or loaded by hand.
    Store,
    /// target/test-extension/: the store build plus loopback host permissions
    /// and the test-only permissions.
    Test,
}

/// Checks one built manifest; every problem found is listed, one per line.
pub(crate) fn check(manifest: &Value, build: Build) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for key in ["permissions", "optional_permissions"] {
        for permission in strings(manifest, key, &mut problems) {
            let test_only = TEST_ONLY_PERMISSIONS
                .iter()
                .any(|(name, _)| *name == permission);
            if test_only && build == Build::Store {
                problems.push(format!(
                    "`{key}` has \"{permission}\", which only a test build may hold"
                ));
            } else if reason(permission).is_none() && !test_only {
                problems.push(format!(
                    "`{key}` has \"{permission}\", which is not allowed: add it to \
                     ALLOWED_PERMISSIONS in xtask/src/permissions.rs with its reason, or remove it"
                ));
            }
        }
    }
    match build {
        Build::Store => {
            if manifest.get("host_permissions").is_some() {
                problems.push(
                    "a store build must not have `host_permissions`: host access is asked \
                     per site at run time, through `optional_host_permissions`"
                        .to_owned(),
                );
            }
        }
        Build::Test => {
            for pattern in strings(manifest, "host_permissions", &mut problems) {
                if is_every_site(pattern) {
                    problems.push(format!(
                        "`host_permissions` has \"{pattern}\", which covers every site"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Why a permission is allowed, or None when it is not.
pub(crate) fn reason(permission: &str) -> Option<&'static str> {
    ALLOWED_PERMISSIONS
        .iter()
        .find(|(name, _)| *name == permission)
        .map(|(_, why)| *why)
}

/// Whether a match pattern grants every site: `<all_urls>`, or any scheme
/// with the host `*` (`*://*/*`, `https://*/*`, `https://*:8080/*`).
/// A wildcard below a named domain (`https://*.localhost/*`) is not.
pub(crate) fn is_every_site(pattern: &str) -> bool {
    if pattern == "<all_urls>" {
        return true;
    }
    let Some((_, rest)) = pattern.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.split(':').next().unwrap_or(authority);
    host == "*"
}

/// The strings in the array under `key` (none when absent); anything else
/// there is a problem, since the browser would refuse or misread it.
fn strings<'a>(manifest: &'a Value, key: &str, problems: &mut Vec<String>) -> Vec<&'a str> {
    let Some(value) = manifest.get(key) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.push(format!("`{key}` is not an array"));
        return Vec::new();
    };
    let mut found = Vec::new();
    for item in items {
        match item.as_str() {
            Some(text) => found.push(text),
            None => problems.push(format!("`{key}` has a non-string entry: {item}")),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use serde_json::json;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn real_source() -> Result<Value, Box<dyn std::error::Error>> {
        let path = crate::workspace::Workspace::locate().source_manifest();
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    }

    fn minimal() -> Value {
        json!({
            "manifest_version": 3,
            "permissions": ["declarativeNetRequestWithHostAccess", "storage", "activeTab", "alarms", "idle", "notifications"],
            "optional_host_permissions": ["https://*/*", "wss://*/*", "http://*/*", "ws://*/*"]
        })
    }

    #[test]
    fn the_real_builds_pass() -> TestResult {
        let source = real_source()?;
        for store in [manifest::chrome(&source), manifest::firefox(&source)?] {
            assert_eq!(check(&store, Build::Store), Ok(()));
            let test = manifest::with_test_host_permissions(&store);
            assert_eq!(check(&test, Build::Test), Ok(()));
        }
        Ok(())
    }

    #[test]
    fn the_source_asks_for_exactly_the_allowed_permissions() -> TestResult {
        // An allowlist entry the manifest no longer uses is a stale reason.
        let source = real_source()?;
        let mut asked: Vec<&str> = source["permissions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut allowed: Vec<&str> = ALLOWED_PERMISSIONS.iter().map(|(name, _)| *name).collect();
        asked.sort_unstable();
        allowed.sort_unstable();
        assert_eq!(asked, allowed);
        Ok(())
    }

    #[test]
    fn every_allowed_permission_has_a_one_line_reason() {
        for (name, why) in ALLOWED_PERMISSIONS {
            assert!(!why.trim().is_empty(), "{name}");
            assert!(!why.contains('\n'), "{name}");
        }
    }

    #[test]
    fn an_unlisted_permission_is_refused() {
        for key in ["permissions", "optional_permissions"] {
            let mut m = minimal();
            m[key] = json!(["storage", "tabs"]);
            let problems = check(&m, Build::Store).err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("\"tabs\""), "{problems:?}");
        }
    }

    #[test]
    fn test_only_permissions_stay_out_of_store_builds() {
        let mut m = minimal();
        m["permissions"] = json!(["storage", "declarativeNetRequestFeedback"]);
        let problems = check(&m, Build::Store).err().unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("only a test build"), "{problems:?}");
        assert_eq!(check(&m, Build::Test), Ok(()));
    }

    #[test]
    fn a_host_pattern_in_permissions_is_refused() {
        let mut m = minimal();
        m["permissions"] = json!(["storage", "<all_urls>"]);
        assert!(check(&m, Build::Store).is_err());
        assert!(check(&m, Build::Test).is_err());
    }

    #[test]
    fn store_builds_have_no_host_permissions_at_all() {
        let mut m = minimal();
        m["host_permissions"] = json!([]);
        assert!(check(&m, Build::Store).is_err());
        m["host_permissions"] = json!(["https://api.example.com/*"]);
        assert!(check(&m, Build::Store).is_err());
        assert_eq!(check(&m, Build::Test), Ok(()));
    }

    #[test]
    fn test_builds_may_not_reach_every_site() {
        for broad in [
            "<all_urls>",
            "*://*/*",
            "https://*/*",
            "ws://*/*",
            "*://*:8080/*",
        ] {
            let mut m = minimal();
            m["host_permissions"] = json!(["http://127.0.0.1/*", broad]);
            let problems = check(&m, Build::Test).err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{broad}: {problems:?}");
            assert!(problems[0].contains(broad), "{problems:?}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let m = json!({
            "permissions": ["tabs", "cookies"],
            "host_permissions": ["<all_urls>"]
        });
        assert_eq!(check(&m, Build::Store).err().map(|p| p.len()), Some(3));
        assert_eq!(check(&m, Build::Test).err().map(|p| p.len()), Some(3));
    }

    #[test]
    fn malformed_lists_are_refused() {
        let mut m = minimal();
        m["permissions"] = json!("storage");
        assert!(check(&m, Build::Store).is_err());
        let mut m = minimal();
        m["host_permissions"] = json!([42]);
        assert!(check(&m, Build::Test).is_err());
    }

    #[test]
    fn every_site_patterns() {
        for every in [
            "<all_urls>",
            "*://*/*",
            "https://*/*",
            "http://*/path",
            "*://*:443/*",
        ] {
            assert!(is_every_site(every), "{every}");
        }
        for named in [
            "https://api.example.com/*",
            "https://*.localhost/*",
            "*://127.0.0.1/*",
            "wss://*.example.com:8443/*",
            "file:///*",
            "",
        ] {
            assert!(!is_every_site(named), "{named}");
        }
    }
}
