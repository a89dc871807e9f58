//! Moving in from other header extensions through the real options page:
//! a file is picked, the preview shows each entry (never a value), refused
//! entries are confirmed with their narrower site where the test says so,
//! and then the server sees each header arrive where the file said and
//! nowhere broader. The files are ours, written from each project's public
//! source (`tests/fixtures/import/`), with `PORT` the server's port.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokenward_testkit::browser::{Engine, WAIT};
use tokenward_testkit::harness::{assert_header, Harness, Kind};
use tokenward_testkit::in_both_browsers;

/// A fixture with the server's port, written where the browser can read it.
pub(crate) fn fixture_file(h: &Harness, name: &str) -> PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name);
    let text = std::fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
        .replace("PORT", &h.port(0).to_string());
    write_file(name, &text)
}

fn write_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenward-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the file");
    path
}

/// One preview line as the page drew it.
#[derive(Debug)]
struct Line {
    outcome: String,
    site: String,
    suggestion: String,
    headers: String,
    ticked: bool,
}

/// Picks `path` in the options page's import, shows the preview, checks
/// that none of `secrets` is in the page, ticks the refused entries listed
/// in `confirm` (with the site the page suggests), imports, and waits for
/// the list to hold the new rules. Returns the preview's lines.
async fn import_through_page(
    h: &Harness,
    path: &std::path::Path,
    passphrase: Option<&str>,
    confirm: &[usize],
    secrets: &[&str],
) -> Vec<Line> {
    h.open_options().await;
    let b = &h.browser;
    let input = b.find("#import-file").await;
    input
        .send_keys(path.to_str().expect("a UTF-8 path"))
        .await
        .unwrap_or_else(|e| panic!("pick {}: {e}", path.display()));
    if let Some(p) = passphrase {
        b.fill("#import-passphrase", p).await;
    }
    b.click("#import-preview").await;
    let read = "const result = document.getElementById('import-result');\n\
        const items = Array.from(document.querySelectorAll('#import-entries .import-entry'));\n\
        if (result.hidden || !items.length) return null;\n\
        return items.map((li) => ({\n\
          outcome: li.dataset.outcome,\n\
          site: li.querySelector('[data-role=site]').textContent,\n\
          suggestion: li.querySelector('[data-field=site]').value,\n\
          headers: li.querySelector('[data-role=headers]').textContent,\n\
          ticked: li.querySelector('[data-field=chosen]').checked,\n\
        }));";
    let deadline = Instant::now() + WAIT;
    let lines: Vec<Line> = loop {
        let v = b.exec(read).await;
        if let Some(items) = v.as_array() {
            break items
                .iter()
                .map(|i| Line {
                    outcome: i["outcome"].as_str().unwrap_or("").to_owned(),
                    site: i["site"].as_str().unwrap_or("").to_owned(),
                    suggestion: i["suggestion"].as_str().unwrap_or("").to_owned(),
                    headers: i["headers"].as_str().unwrap_or("").to_owned(),
                    ticked: i["ticked"].as_bool().unwrap_or(false),
                })
                .collect();
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {WAIT:?} waiting for the import preview; #import-status says {:?}",
                b.text_content("#import-status").await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for secret in secrets {
        h.assert_secret_not_in_dom(secret, "options page's import preview")
            .await;
    }
    for entry in confirm {
        b.click(&format!(
            "#import-entries .import-entry[data-entry=\"{entry}\"] [data-field=chosen]"
        ))
        .await;
    }
    let before = h.rule_ids().await.len();
    let chosen = lines.iter().filter(|l| l.ticked).count() + confirm.len();
    b.click("#import-confirm").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let hidden = b
            .exec("return document.getElementById('import-result').hidden;")
            .await;
        let now = h.rule_ids().await.len();
        if hidden == Json::Bool(true) && now > before {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {WAIT:?} waiting for {chosen} entries to be imported; \
                 #import-status says {:?}, rules {before} → {now}",
                b.text_content("#import-status").await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lines
}

/// `url` carries `name: want` (waiting for the rules to arrive).
async fn arrives(h: &Harness, url: &str, name: &str, want: &str) {
    h.wait_header(url, name, Some(want)).await;
}

/// `url` carries none of `names`.
async fn absent(h: &Harness, url: &str, names: &[&str]) {
    let r = h.probe(Kind::Fetch, url).await;
    for name in names {
        assert_header(&r, name, None, url);
    }
}

/// A ModHeader export: the anchored profile is imported as its site; the
/// one whose regex matches anywhere is refused until the user confirms its
/// narrower site; the one without a URL filter (every site) is refused.
async fn import_modheader_file(engine: Engine) {
    let h = Harness::start(engine).await;
    let file = fixture_file(&h, "modheader.json");
    let secrets = ["mh-model-token-1", "mh-old-key-2", "mh-everywhere-3"];
    let lines = import_through_page(&h, &file, None, &[1], &secrets).await;
    let p = h.port(0);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0].outcome, "new", "{lines:?}");
    assert_eq!(lines[0].site, format!("http://mh.localhost:{p}/api/"));
    assert_eq!(lines[0].headers, "Authorization (Bearer token)");
    assert_eq!(lines[1].outcome, "refused", "{lines:?}");
    assert_eq!(lines[1].suggestion, format!("http://mh-old.localhost:{p}/"));
    assert!(!lines[1].ticked && !lines[2].ticked, "{lines:?}");
    assert_eq!(lines[2].outcome, "refused", "{lines:?}");
    assert_eq!(lines[2].suggestion, "");

    let mh = format!("http://mh.localhost:{p}");
    arrives(
        &h,
        &format!("{mh}/api/models"),
        "authorization",
        "Bearer mh-model-token-1",
    )
    .await;
    arrives(
        &h,
        &format!("http://mh-old.localhost:{p}/v1/x"),
        "x-api-key",
        "mh-old-key-2",
    )
    .await;
    // Nowhere broader: the same host outside the path, other hosts, and
    // nothing from the refused "every site" profile.
    absent(
        &h,
        &format!("{mh}/other"),
        &["authorization", "x-everywhere"],
    )
    .await;
    absent(&h, &format!("{mh}/apis-elsewhere/../x"), &["x-api-key"]).await;
    absent(
        &h,
        &format!("http://api.localhost:{p}/api/models"),
        &["authorization", "x-api-key", "x-everywhere"],
    )
    .await;
    // Appending and switched-off headers were left out.
    absent(&h, &format!("{mh}/api/models"), &["x-switched-off"]).await;
    h.assert_secret_not_in_dom("mh-model-token-1", "options page after the import")
        .await;
}

/// One file of each other format, and a Tokenward export sealed with a
/// passphrase: each header arrives where its file said, and nowhere broader.
async fn import_each_other_format(engine: Engine) {
    let h = Harness::start(engine).await;
    let p = h.port(0);

    let smh = fixture_file(&h, "SimpleModifyHeader.conf");
    let lines = import_through_page(&h, &smh, None, &[], &["smh-key-1", "smh-admin-2"]).await;
    assert_eq!(lines[0].outcome, "new", "{lines:?}");
    assert_eq!(lines[1].outcome, "refused", "{lines:?}");
    arrives(
        &h,
        &format!("http://smh.localhost:{p}/x"),
        "x-api-key",
        "smh-key-1",
    )
    .await;
    // The row narrowed by `url_contains` was not confirmed: not sent, even
    // under /admin; the response and switched-off rows were not imported.
    absent(
        &h,
        &format!("http://smh.localhost:{p}/admin/x"),
        &["x-admin", "x-later"],
    )
    .await;
    absent(&h, &format!("http://api.localhost:{p}/x"), &["x-api-key"]).await;

    let rq = fixture_file(&h, "requestly.json");
    let lines = import_through_page(
        &h,
        &rq,
        None,
        &[],
        &["rq-token-1", "rq-token-2", "rq-legacy-3"],
    )
    .await;
    assert_eq!(
        lines.iter().map(|l| l.outcome.as_str()).collect::<Vec<_>>(),
        ["new", "refused", "new", "not-imported"],
        "{lines:?}"
    );
    arrives(
        &h,
        &format!("http://rq.localhost:{p}/predict"),
        "authorization",
        "Bearer rq-token-1",
    )
    .await;
    arrives(
        &h,
        &format!("http://rq-legacy.localhost:{p}/x"),
        "x-legacy",
        "rq-legacy-3",
    )
    .await;
    // The `Contains` pair was refused: a URL containing its text gets nothing.
    absent(
        &h,
        &format!("http://api.localhost:{p}/rq-other"),
        &["authorization"],
    )
    .await;

    let hl = fixture_file(&h, "headerly.json");
    let lines = import_through_page(&h, &hl, None, &[], &["hl-token-1", "hl-kinds-2"]).await;
    assert_eq!(
        lines.iter().map(|l| l.outcome.as_str()).collect::<Vec<_>>(),
        ["new", "refused", "not-imported"],
        "{lines:?}"
    );
    arrives(
        &h,
        &format!("http://hl.localhost:{p}/embed"),
        "authorization",
        "Bearer hl-token-1",
    )
    .await;
    absent(
        &h,
        &format!("http://hl-kinds.localhost:{p}/x"),
        &["x-kinds"],
    )
    .await;
    absent(
        &h,
        &format!("http://api.localhost:{p}/embed"),
        &["authorization"],
    )
    .await;

    // A Tokenward export with its tokens, sealed under a passphrase.
    let document = serde_json::json!({
        "format": "tokenward-export",
        "version": 1,
        "secrets": true,
        "state": {
            "schema": 4,
            "rules": [{"id": 3, "label": "Backup", "pattern": format!("http://tw.localhost:{p}/"),
                       "allowHttp": false, "enabled": true,
                       "headers": [{"op": "set", "name": "Authorization",
                                    "value": {"scheme": "bearer", "secret": "tw-sealed-token"}}],
                       "initiators": {"policy": "sameSite"}}]
        }
    });
    struct Seeded(u8);
    impl tokenward_core::vault::RngSource for Seeded {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), tokenward_core::vault::RngUnavailable> {
            for b in dest {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *b = self.0;
            }
            Ok(())
        }
    }
    let envelope = tokenward_core::vault::seal_export(
        "a passphrase for the file",
        document.to_string().as_bytes(),
        &mut Seeded(1),
    )
    .expect("seals");
    let sealed = write_file(
        "tokenward-export.json",
        &serde_json::to_string(&envelope).expect("json"),
    );
    let lines = import_through_page(
        &h,
        &sealed,
        Some("a passphrase for the file"),
        &[],
        &["tw-sealed-token"],
    )
    .await;
    assert_eq!(lines[0].outcome, "new", "{lines:?}");
    arrives(
        &h,
        &format!("http://tw.localhost:{p}/x"),
        "authorization",
        "Bearer tw-sealed-token",
    )
    .await;
    absent(
        &h,
        &format!("http://api.localhost:{p}/x"),
        &["authorization"],
    )
    .await;
}

in_both_browsers!(import_modheader_file, import_each_other_format);
