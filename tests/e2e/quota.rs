//! A full `storage.local`: an edit and an import say so, and leave the
//! stored state and the browser's rules as they were.
//!
//! Chromium only: its `storage.local` has a quota (`QUOTA_BYTES`, 10 MB
//! without the `unlimitedStorage` permission, which Tokenward does not
//! ask for). Firefox's has none of its own: it is bounded by IndexedDB's
//! limits for the whole profile, a share of the disk
//! (<https://developer.mozilla.org/en-US/docs/Mozilla/Add-ons/WebExtensions/API/storage/local>),
//! which a test cannot fill. The service's tests cover the same failure in
//! both (`a_full_store_loses_nothing`, `import_previews_then_writes_in_one_save`).

use std::time::{Duration, Instant};

use tokenward_testkit::browser::{Engine, WAIT};
use tokenward_testkit::harness::{assert_header, Harness, Kind, RuleSpec, SaveOutcome};

async fn a_full_store_refuses_an_edit_and_an_import_and_keeps_the_old_state(engine: Engine) {
    let h = Harness::start(engine).await;
    let p = h.port(0);
    let kept = format!("http://kept.localhost:{p}");
    h.add_rule(&RuleSpec::bearer(&kept, "kept-token")).await;
    h.wait_header(
        &format!("{kept}/x"),
        "authorization",
        Some("Bearer kept-token"),
    )
    .await;
    let before = h.rule_ids().await;
    // Fill the store to 40 bytes short of its quota.
    let left = h
        .browser
        .exec_async(
            "const api = globalThis.browser ?? chrome;\n\
             const quota = api.storage.local.QUOTA_BYTES;\n\
             const used = await api.storage.local.getBytesInUse(null);\n\
             await api.storage.local.set({ ballast: 'x'.repeat(quota - used - 'ballast'.length - 2 - 40) });\n\
             return quota - await api.storage.local.getBytesInUse(null);",
        )
        .await;
    assert_eq!(left, serde_json::json!(40), "the store is not full");

    // An edit: refused, said, nothing changed.
    let added = format!("http://added.localhost:{p}");
    h.fill_rule_form(&RuleSpec::bearer(&added, "added-token"))
        .await;
    match h.save_rule_form(true).await {
        SaveOutcome::Error(message) => {
            assert!(message.contains("quota"), "the error says why: {message}")
        }
        SaveOutcome::Saved(id) => panic!("a rule was saved in a full store: {id}"),
    }
    assert_eq!(h.rule_ids().await, before);

    // An import: previewed (which writes nothing), then refused at once.
    let file = super::import::fixture_file(&h, "modheader.json");
    h.open_options().await;
    let b = &h.browser;
    b.find("#import-file")
        .await
        .send_keys(file.to_str().expect("a UTF-8 path"))
        .await
        .expect("pick the file");
    b.click("#import-preview").await;
    b.wait_visible("#import-confirm", WAIT).await;
    b.click("#import-confirm").await;
    let deadline = Instant::now() + WAIT;
    let said = loop {
        let said = b.text_content("#import-status").await.unwrap_or_default();
        if said.contains("quota") {
            break said;
        }
        assert!(Instant::now() < deadline, "#import-status says {said:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(said.contains("nothing was changed"), "{said}");
    assert_eq!(h.rule_ids().await, before);

    // The browser's rules are as they were: the old header still goes, the
    // refused ones do not.
    h.wait_header(
        &format!("{kept}/y"),
        "authorization",
        Some("Bearer kept-token"),
    )
    .await;
    for url in [
        format!("{added}/x"),
        format!("http://mh.localhost:{p}/api/x"),
    ] {
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, "authorization", None, &url);
    }
}

mod chromium {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "real browser (Chromium): run with cargo xtask test"]
    async fn a_full_store_refuses_an_edit_and_an_import_and_keeps_the_old_state() {
        super::a_full_store_refuses_an_edit_and_an_import_and_keeps_the_old_state(
            tokenward_testkit::browser::Engine::Chromium,
        )
        .await;
    }
}
