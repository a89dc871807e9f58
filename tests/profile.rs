//! The browser profile on disk: a browser session on a profile directory
//! the test owns, shut down the normal way and started again on it, and the
//! scan of that directory for secrets (`common/profile_scan.rs`, whose unit
//! tests run natively with `cargo test`).
//!
//! The real-browser tests are ignored like the rest of the e2e suite; by
//! hand, after `cargo xtask build`:
//!
//! ```text
//! TOKENWARD_TEST_EXTENSION=$PWD/target/test-extension \
//! CHROMEDRIVER=/usr/bin/chromedriver GECKODRIVER=$(command -v geckodriver || echo .tools/bin/geckodriver) \
//!   cargo test --test profile -- --ignored --test-threads=1
//! ```
//!
//! `TOKENWARD_KEEP_PROFILE=1` keeps the profiles and prints where they are.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokenward_testkit::in_both_browsers;
use tokenward_testkit::{browser, harness, profile_scan};

use serde_json::{json, Value as Json};

use browser::{Browser, Engine, OwnedProfile};
use harness::{Harness, RuleSpec};
use profile_scan::scan_profile;

/// `prefix` and 32 random hex digits, from the OS.
fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The extension's `storage.local` value under `key` (the current page
/// must be an extension page).
async fn local_get(b: &Browser, key: &str) -> Json {
    b.exec_async(&format!(
        "const api = globalThis.browser ?? chrome;\n\
         const got = await api.storage.local.get({key});\n\
         return got[{key}] ?? null;",
        key = json!(key)
    ))
    .await
}

/// A secret written in the clear to the profile is found by the scan, before
/// and after a restart; a random string never written is not. Two secrets:
/// one set directly in the extension's `storage.local`, one typed as a
/// rule's token on the options page (Tokenward keeps it in `storage.local`
/// and in a DNR rule). Both still work after the restart.
async fn scan_finds_what_the_profile_holds(engine: Engine) {
    let profile = OwnedProfile::new(engine);
    let marker = random_token("twmarker");
    let token = random_token("twtoken");
    let absent = random_token("twabsent");
    let needles: [&[u8]; 3] = [marker.as_bytes(), token.as_bytes(), absent.as_bytes()];

    let h = Harness::start_on_profile(engine, profile.path()).await;
    h.choose_convenience().await;
    h.open_options().await;
    h.browser
        .exec_async(&format!(
            "await (globalThis.browser ?? chrome).storage.local.set({{ tokenwardE2eMarker: {} }});",
            json!(marker)
        ))
        .await;
    assert_eq!(
        local_get(&h.browser, "tokenwardE2eMarker").await,
        json!(marker)
    );
    let api = h.origin("api.localhost", 0);
    h.add_rule(&RuleSpec::bearer(&api, &token)).await;
    let want = format!("Bearer {token}");
    h.wait_header(&format!("{api}/control"), "authorization", Some(&want))
        .await;

    let stopped = h.stop().await;
    let before = timed_scan(stopped.profile(), &needles);
    let h = stopped.resume().await;

    h.open_options().await;
    assert_eq!(
        local_get(&h.browser, "tokenwardE2eMarker").await,
        json!(marker),
        "storage.local lost the marker across the restart"
    );
    h.wait_header(&format!("{api}/control"), "authorization", Some(&want))
        .await;

    let stopped = h.stop().await;
    let after = timed_scan(stopped.profile(), &needles);

    for (when, report) in [("before the restart", &before), ("after it", &after)] {
        assert!(report.errors.is_empty(), "{when}: {report}");
        assert!(
            report.count(0) > 0,
            "{when}: the marker is not found\n{report}"
        );
        assert!(
            report.count(1) > 0,
            "{when}: the rule's token is not found\n{report}"
        );
        assert_eq!(
            report.count(2),
            0,
            "{when}: found what was never written\n{report}"
        );
    }
}

/// [`scan_profile`], printing the report and how long it took.
fn timed_scan(dir: &Path, needles: &[&[u8]]) -> profile_scan::ScanReport {
    let started = Instant::now();
    let report = scan_profile(dir, needles);
    eprintln!("e2e: scan in {:?}: {report}", started.elapsed());
    report
}

/// A copy of the test build at `dir` whose background does nothing, plus an
/// empty page, `probe.html`, to run scripts in. Tokenward's own background
/// reconciles its DNR rules from `storage.local` whenever it starts,
/// removing rules it did not make and making those it should have, which
/// would hide what the browser itself kept.
fn inert_copy(engine: Engine, dir: &Path) -> PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let copy = dir.join(engine.build_dir());
    copy_dir(&harness::extension_dir(engine), &copy);
    std::fs::write(copy.join("background.js"), "// inert: tests/profile.rs\n").unwrap();
    std::fs::write(
        copy.join("probe.html"),
        "<!doctype html><meta charset=utf-8><title>probe</title>\n",
    )
    .unwrap();
    copy
}

/// What one session of the inert extension sees: its `storage.local` and
/// `storage.session` values, and the ids of its DNR session and dynamic
/// rules.
async fn observe(b: &Browser) -> Json {
    b.goto(&b.extension_url("probe.html")).await;
    b.exec_async(
        "const api = globalThis.browser ?? chrome;\n\
         return {\n\
           local: (await api.storage.local.get('probe')).probe ?? null,\n\
           session: (await api.storage.session.get('probe')).probe ?? null,\n\
           sessionRules: (await api.declarativeNetRequest.getSessionRules()).map((r) => r.id),\n\
           dynamicRules: (await api.declarativeNetRequest.getDynamicRules()).map((r) => r.id),\n\
         };",
    )
    .await
}

/// A DNR rule `id` that sets the request header `X-Probe: <value>`.
fn header_rule(id: u32, value: &str) -> Json {
    json!({
        "id": id,
        "priority": 1,
        "action": {
            "type": "modifyHeaders",
            "requestHeaders": [{ "header": "X-Probe", "operation": "set", "value": value }],
        },
        "condition": { "urlFilter": "||probe.localhost^", "resourceTypes": ["xmlhttprequest"] },
    })
}

/// What an extension's data does across a normal shutdown and a start on
/// the same profile, as the browser keeps it (the extension's background
/// does nothing), and what of it is on disk after each shutdown:
///
/// - `storage.local` stays, on disk;
/// - `storage.session` and DNR session rules go, and never reach the disk;
/// - DNR dynamic rules are on disk after both shutdowns in both browsers.
///   Chromium gives them back after the restart. Firefox does not: the
///   test's add-on is temporary, Firefox uninstalls it at shutdown and the
///   uninstall drops its DNR rules whatever the prefs say
///   (`ExtensionDNRStore.clearOnUninstall` in `Extension.sys.mjs`;
///   `extensions.webextensions.keepStorageOnUninstall` keeps
///   `storage.local`), so the add-on installed again starts with none; yet
///   the rules file, `extension-dnr/<uuid>.json.lz4`, stays on disk with the
///   old rules in it.
async fn what_survives_a_restart(engine: Engine) {
    let work = OwnedProfile::new(engine);
    let extension = inert_copy(engine, &work.path().join("extension"));
    let profile = work.path().join("profile");
    let local = random_token("twlocal");
    let session = random_token("twsession");
    let session_rule = random_token("twsessionrule");
    let dynamic_rule = random_token("twdynamicrule");
    let needles: [&[u8]; 4] = [
        local.as_bytes(),
        session.as_bytes(),
        session_rule.as_bytes(),
        dynamic_rule.as_bytes(),
    ];

    let b = Browser::launch_on_profile(engine, &extension, &profile).await;
    b.goto(&b.extension_url("probe.html")).await;
    b.exec_async(&format!(
        "const api = globalThis.browser ?? chrome;\n\
         await api.storage.local.set({{ probe: {local} }});\n\
         await api.storage.session.set({{ probe: {session} }});\n\
         await api.declarativeNetRequest.updateSessionRules({{ addRules: [{session_rule}] }});\n\
         await api.declarativeNetRequest.updateDynamicRules({{ addRules: [{dynamic_rule}] }});",
        local = json!(local),
        session = json!(session),
        session_rule = header_rule(7001, &session_rule),
        dynamic_rule = header_rule(7002, &dynamic_rule),
    ))
    .await;
    let first = observe(&b).await;
    eprintln!("e2e: {} session 1 sees {first}", engine.name());
    assert_eq!(
        first,
        json!({ "local": local, "session": session, "sessionRules": [7001], "dynamicRules": [7002] })
    );
    b.quit().await;
    let on_disk = timed_scan(&profile, &needles);

    let b = Browser::launch_on_profile(engine, &extension, &profile).await;
    let second = observe(&b).await;
    eprintln!("e2e: {} after the restart sees {second}", engine.name());
    b.quit().await;
    let on_disk_after = timed_scan(&profile, &needles);

    let dynamic_kept = engine == Engine::Chromium;
    assert_eq!(
        second,
        json!({
            "local": local,
            "session": null,
            "sessionRules": [],
            "dynamicRules": if dynamic_kept { json!([7002]) } else { json!([]) },
        })
    );
    for (when, report) in [
        ("after session 1", &on_disk),
        ("after session 2", &on_disk_after),
    ] {
        assert!(report.errors.is_empty(), "{when}: {report}");
        assert!(
            report.count(0) > 0,
            "{when}: storage.local is not on disk\n{report}"
        );
        assert_eq!(
            report.count(1),
            0,
            "{when}: storage.session is on disk\n{report}"
        );
        assert_eq!(
            report.count(2),
            0,
            "{when}: a session rule is on disk\n{report}"
        );
    }
    for (when, report) in [
        ("after session 1", &on_disk),
        ("after session 2", &on_disk_after),
    ] {
        assert!(
            report.count(3) > 0,
            "{when}: no dynamic rule on disk\n{report}"
        );
    }
}

in_both_browsers!(scan_finds_what_the_profile_holds, what_survives_a_restart);
