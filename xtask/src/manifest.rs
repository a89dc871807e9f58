//! Per-browser manifests, derived from the one source `manifest.json`.
//!
//! The source is written for Chrome. These functions are pure so that what
//! each browser receives is fixed by unit tests, not by reading build output.

use std::fmt;

use serde_json::{json, Map, Value};

/// Firefox add-on ID. Firefox needs one for MV3 signing and for
/// `storage`/DNR state to survive a reinstall; Chrome derives its ID from `key`.
pub(crate) const FIREFOX_ADDON_ID: &str = "tokenward@tokenward.app";

/// Lowest Firefox release with everything the extension uses. First Firefox
/// release per feature, from MDN's browser-compat-data (BCD) and Mozilla docs:
///
/// - declarativeNetRequest with session rules and `modifyHeaders`: 113
///   (BCD `webextensions.api.declarativeNetRequest.updateSessionRules`;
///   <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/declarativeNetRequest/updateSessionRules>).
/// - `storage.session`: 115 (BCD `webextensions.api.storage.session`;
///   <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/storage/session>).
/// - ES-module background scripts, `background.type: "module"`: 112
///   (BCD `webextensions.manifest.background.type`).
/// - `optional_host_permissions`: 128
///   (BCD `webextensions.manifest.optional_host_permissions`).
/// - `browser_specific_settings.gecko.data_collection_permissions`: 140 on
///   desktop, 142 on Android
///   (<https://extensionworkshop.com/documentation/develop/firefox-builtin-data-consent/>);
///   Firefox 127 and older reject the manifest outright when the key is present.
///
/// The data-collection key is what forces 140: without it 128 would do. It
/// stays because addons.mozilla.org requires it of every new extension since
/// 2025-11-03. `web-ext lint` agrees: at 128 it warns only about that key
/// (KEY_FIREFOX_UNSUPPORTED_BY_MIN_VERSION), below 128 about
/// `optional_host_permissions` too.
pub(crate) const FIREFOX_MIN_VERSION: &str = "140.0";

/// Lowest Firefox for Android release, `gecko_android.strict_min_version`.
/// Without it the Android minimum is the desktop one, 140, and `web-ext lint`
/// (as AMO) warns KEY_FIREFOX_ANDROID_UNSUPPORTED_BY_MIN_VERSION: Android
/// gained `data_collection_permissions` in 142, two releases after desktop
/// (<https://extensionworkshop.com/documentation/develop/firefox-builtin-data-consent/>;
/// mozilla/web-ext#3561). Everything else the extension uses arrived on
/// Android earlier (DNR 113, `optional_host_permissions` 128).
pub(crate) const FIREFOX_ANDROID_MIN_VERSION: &str = "142.0";

/// Loopback origins the end-to-end tests serve from, in every scheme a rule
/// may name. Granting them up front in the test build means no permission
/// prompt, which a WebDriver session cannot click through. WebSocket
/// handshakes need their `ws(s)://` permission: Chromium checks the
/// handshake against its `ws` URL, which an `http` permission does not cover
/// (see `SitePattern::host_permissions`).
pub(crate) const TEST_HOST_PERMISSIONS: [&str; 16] = [
    "http://127.0.0.1/*",
    "http://localhost/*",
    "http://*.localhost/*",
    "ws://127.0.0.1/*",
    "ws://localhost/*",
    "ws://*.localhost/*",
    "https://127.0.0.1/*",
    "https://localhost/*",
    "https://*.localhost/*",
    "wss://127.0.0.1/*",
    "wss://localhost/*",
    "wss://*.localhost/*",
    "http://[::1]/*",
    "ws://[::1]/*",
    "https://[::1]/*",
    "wss://[::1]/*",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManifestError {
    NotAnObject,
    /// Firefox gets an event page made from the service worker, so the source
    /// must name one.
    NoServiceWorker,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("manifest.json is not a JSON object"),
            Self::NoServiceWorker => {
                f.write_str("manifest.json has no background.service_worker string")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// The Chrome manifest: the source as it is, since the source is written for Chrome.
pub(crate) fn chrome(src: &Value) -> Value {
    src.clone()
}

/// The Firefox manifest.
///
/// - `key`, `minimum_chrome_version` and `storage` (the managed schema) are
///   Chrome-only (Firefox warns on them).
/// - Firefox MV3 runs background scripts as an event page, not a service
///   worker, so `service_worker` becomes a one-element `scripts` list; `type`
///   carries over so `background.js` still loads as an ES module.
/// - `browser_specific_settings.gecko` gets the add-on ID, the minimum version
///   and the data-collection declaration (Tokenward collects nothing);
///   `gecko_android` gets the Android minimum, which that declaration raises.
pub(crate) fn firefox(src: &Value) -> Result<Value, ManifestError> {
    let mut manifest = src.as_object().ok_or(ManifestError::NotAnObject)?.clone();
    // shift_remove keeps the remaining keys in source order, so the output
    // diffs cleanly against the source.
    manifest.shift_remove("key");
    manifest.shift_remove("minimum_chrome_version");
    // Firefox reads `storage.managed` from policies.json without a schema,
    // and has no `storage` manifest key.
    // <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/manifest.json/storage>
    manifest.shift_remove("storage");

    let background = manifest
        .get("background")
        .and_then(Value::as_object)
        .ok_or(ManifestError::NoServiceWorker)?;
    let worker = background
        .get("service_worker")
        .and_then(Value::as_str)
        .ok_or(ManifestError::NoServiceWorker)?;
    let mut event_page = Map::new();
    event_page.insert("scripts".into(), json!([worker]));
    if let Some(kind) = background.get("type") {
        event_page.insert("type".into(), kind.clone());
    }
    manifest.insert("background".into(), Value::Object(event_page));

    let mut settings = take_object(&mut manifest, "browser_specific_settings");
    let mut gecko = take_object(&mut settings, "gecko");
    gecko.insert("id".into(), json!(FIREFOX_ADDON_ID));
    gecko.insert("strict_min_version".into(), json!(FIREFOX_MIN_VERSION));
    gecko.insert(
        "data_collection_permissions".into(),
        json!({ "required": ["none"] }),
    );
    settings.insert("gecko".into(), Value::Object(gecko));
    let mut android = take_object(&mut settings, "gecko_android");
    android.insert(
        "strict_min_version".into(),
        json!(FIREFOX_ANDROID_MIN_VERSION),
    );
    settings.insert("gecko_android".into(), Value::Object(android));
    manifest.insert("browser_specific_settings".into(), Value::Object(settings));

    Ok(Value::Object(manifest))
}

/// The test build of either browser's manifest: adds the loopback origins to
/// `host_permissions`, keeping any already there, and the test-only
/// permissions (`permissions::TEST_ONLY_PERMISSIONS`). Never used for dist/.
pub(crate) fn with_test_host_permissions(m: &Value) -> Value {
    let mut manifest = m.clone();
    let Some(object) = manifest.as_object_mut() else {
        return manifest;
    };
    let entry = object
        .entry("host_permissions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(hosts) = entry {
        for host in TEST_HOST_PERMISSIONS {
            if !hosts.iter().any(|h| h.as_str() == Some(host)) {
                hosts.push(json!(host));
            }
        }
    }
    let permissions = object
        .entry("permissions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(permissions) = permissions {
        for (permission, _) in crate::permissions::TEST_ONLY_PERMISSIONS {
            if !permissions.iter().any(|p| p.as_str() == Some(permission)) {
                permissions.push(json!(permission));
            }
        }
    }
    manifest
}

/// Removes and returns the object under `key` (empty if absent or not an
/// object), for the caller to fill and insert back.
fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.shift_remove(key) {
        Some(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Value {
        json!({
            "manifest_version": 3,
            "name": "Tokenward",
            "version": "0.1.0",
            "key": "MIIB...",
            "minimum_chrome_version": "121",
            "background": { "service_worker": "background.js", "type": "module" },
            "permissions": ["declarativeNetRequestWithHostAccess", "storage", "activeTab"],
            "optional_host_permissions": ["https://*/*", "http://*/*"]
        })
    }

    #[test]
    fn chrome_is_the_source_unchanged() {
        assert_eq!(chrome(&source()), source());
    }

    #[test]
    fn chrome_is_idempotent() {
        assert_eq!(chrome(&chrome(&source())), chrome(&source()));
    }

    #[test]
    fn firefox_manifest_is_exactly_this() -> Result<(), ManifestError> {
        let expected = json!({
            "manifest_version": 3,
            "name": "Tokenward",
            "version": "0.1.0",
            "background": { "scripts": ["background.js"], "type": "module" },
            "permissions": ["declarativeNetRequestWithHostAccess", "storage", "activeTab"],
            "optional_host_permissions": ["https://*/*", "http://*/*"],
            "browser_specific_settings": {
                "gecko": {
                    "id": "tokenward@tokenward.app",
                    "strict_min_version": "140.0",
                    "data_collection_permissions": { "required": ["none"] }
                },
                "gecko_android": { "strict_min_version": "142.0" }
            }
        });
        assert_eq!(firefox(&source())?, expected);
        Ok(())
    }

    #[test]
    fn firefox_keeps_source_key_order() -> Result<(), ManifestError> {
        let out = firefox(&source())?;
        let keys: Vec<&str> = out
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "manifest_version",
                "name",
                "version",
                "background",
                "permissions",
                "optional_host_permissions",
                "browser_specific_settings"
            ]
        );
        Ok(())
    }

    #[test]
    fn firefox_keeps_a_classic_background_classic() -> Result<(), ManifestError> {
        let mut src = source();
        src["background"] = json!({ "service_worker": "bg.js" });
        assert_eq!(
            firefox(&src)?["background"],
            json!({ "scripts": ["bg.js"] })
        );
        Ok(())
    }

    #[test]
    fn firefox_merges_into_existing_gecko_settings() -> Result<(), ManifestError> {
        let mut src = source();
        src["browser_specific_settings"] = json!({
            "gecko": { "update_url": "https://example.org/u.json" },
            "gecko_android": { "strict_max_version": "150.*" },
            "safari": {}
        });
        let out = firefox(&src)?;
        assert_eq!(
            out["browser_specific_settings"]["gecko_android"],
            json!({ "strict_max_version": "150.*", "strict_min_version": "142.0" })
        );
        assert_eq!(
            out["browser_specific_settings"]["gecko"]["update_url"],
            "https://example.org/u.json"
        );
        assert_eq!(out["browser_specific_settings"]["safari"], json!({}));
        assert_eq!(
            out["browser_specific_settings"]["gecko"]["id"],
            FIREFOX_ADDON_ID
        );
        Ok(())
    }

    #[test]
    fn firefox_rejects_a_manifest_without_service_worker() {
        let mut no_background = source();
        no_background
            .as_object_mut()
            .map(|o| o.shift_remove("background"));
        assert_eq!(firefox(&no_background), Err(ManifestError::NoServiceWorker));

        let mut page = source();
        page["background"] = json!({ "page": "background.html" });
        assert_eq!(firefox(&page), Err(ManifestError::NoServiceWorker));

        let mut not_a_string = source();
        not_a_string["background"] = json!({ "service_worker": ["a.js"] });
        assert_eq!(firefox(&not_a_string), Err(ManifestError::NoServiceWorker));
    }

    #[test]
    fn firefox_output_is_not_a_valid_source() -> Result<(), ManifestError> {
        // Feeding a Firefox manifest back in is a build mistake, not a no-op.
        assert_eq!(
            firefox(&firefox(&source())?),
            Err(ManifestError::NoServiceWorker)
        );
        Ok(())
    }

    #[test]
    fn firefox_rejects_a_non_object() {
        assert_eq!(firefox(&json!([])), Err(ManifestError::NotAnObject));
    }

    #[test]
    fn test_permissions_are_added() {
        let out = with_test_host_permissions(&source());
        assert_eq!(
            out["host_permissions"],
            json!([
                "http://127.0.0.1/*",
                "http://localhost/*",
                "http://*.localhost/*",
                "ws://127.0.0.1/*",
                "ws://localhost/*",
                "ws://*.localhost/*",
                "https://127.0.0.1/*",
                "https://localhost/*",
                "https://*.localhost/*",
                "wss://127.0.0.1/*",
                "wss://localhost/*",
                "wss://*.localhost/*",
                "http://[::1]/*",
                "ws://[::1]/*",
                "https://[::1]/*",
                "wss://[::1]/*"
            ])
        );
        // The test-only permissions are added after the store's own.
        assert_eq!(
            out["permissions"],
            json!([
                "declarativeNetRequestWithHostAccess",
                "storage",
                "activeTab",
                "declarativeNetRequestFeedback"
            ])
        );
        // Nothing else changes.
        let mut back = out.clone();
        back.as_object_mut()
            .map(|o| o.shift_remove("host_permissions"));
        back["permissions"] = source()["permissions"].clone();
        assert_eq!(back, source());
    }

    #[test]
    fn test_permissions_keep_existing_hosts() {
        let mut src = source();
        src["host_permissions"] = json!(["https://api.example.org/*", "http://localhost/*"]);
        assert_eq!(
            with_test_host_permissions(&src)["host_permissions"],
            json!([
                "https://api.example.org/*",
                "http://localhost/*",
                "http://127.0.0.1/*",
                "http://*.localhost/*",
                "ws://127.0.0.1/*",
                "ws://localhost/*",
                "ws://*.localhost/*",
                "https://127.0.0.1/*",
                "https://localhost/*",
                "https://*.localhost/*",
                "wss://127.0.0.1/*",
                "wss://localhost/*",
                "wss://*.localhost/*",
                "http://[::1]/*",
                "ws://[::1]/*",
                "https://[::1]/*",
                "wss://[::1]/*"
            ])
        );
    }

    #[test]
    fn test_permissions_are_idempotent() {
        let once = with_test_host_permissions(&source());
        assert_eq!(with_test_host_permissions(&once), once);
    }

    #[test]
    fn test_permissions_commute_with_firefox() -> Result<(), ManifestError> {
        // The test build may be derived in either order and is the same.
        assert_eq!(
            firefox(&with_test_host_permissions(&source()))?,
            with_test_host_permissions(&firefox(&source())?)
        );
        Ok(())
    }

    #[test]
    fn store_builds_never_get_test_permissions() -> Result<(), ManifestError> {
        assert!(chrome(&source()).get("host_permissions").is_none());
        assert!(firefox(&source())?.get("host_permissions").is_none());
        Ok(())
    }

    #[test]
    fn the_real_source_manifest_converts() -> Result<(), Box<dyn std::error::Error>> {
        let path = crate::workspace::Workspace::locate().source_manifest();
        let src: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let out = firefox(&src)?;
        assert!(out.get("key").is_none());
        assert!(out["background"]["scripts"].is_array());
        Ok(())
    }
}
