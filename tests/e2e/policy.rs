//! A team's policy, as an administrator rolls it out: each browser starts
//! with a policy written where it reads one (and put back as it was found,
//! `tokenward_testkit::policy`). The managed rule appears; logging in with
//! the login the policy offers fills it and its header arrives, and goes
//! nowhere else; a user rule outside the allowed sites is refused; the
//! required passphrase leaves no way to keep tokens without one; a hostile
//! entry is refused and shown; and a changed policy moves the rule
//! (Chromium reads the file again while it runs; Firefox reads policies at
//! start only, so it is restarted:
//! <https://developer.mozilla.org/en-US/docs/Mozilla/Add-ons/WebExtensions/API/storage/managed>).

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokenward_testkit::browser::{Engine, OwnedProfile, WAIT};
use tokenward_testkit::harness::{assert_header, Harness, Kind, RuleSpec, SaveOutcome};
use tokenward_testkit::in_both_browsers;
use tokenward_testkit::policy::PolicyFile;

const PASSPHRASE: &str = "a team passphrase for the test";
const TEAM_TOKEN: &str = "team-token-0123456789";

/// The policy, with its managed rule for `host` on the server's port.
fn policy(port: u16, host: &str) -> Json {
    let site = format!("http://{host}.acme.localhost:{port}");
    json!({
        "rules": [
            {"id": "acme-api", "label": "ACME models", "site": site,
             "headers": [{"name": "X-Team-Key", "scheme": "raw", "ask": true}]},
            {"id": "everything", "site": "<all_urls>",
             "headers": [{"name": "X-Everywhere", "scheme": "raw", "ask": true}]}
        ],
        "providers": [{"provider": "custom", "endpoint": site}],
        "allowedSites": [format!("http://*.acme.localhost:{port}")],
        "requireProtection": true
    })
}

async fn send(h: &Harness, message: Json) -> Json {
    h.browser
        .exec_async(&format!(
            "const api = globalThis.browser ?? chrome; \
             return JSON.parse(await api.runtime.sendMessage({message}));"
        ))
        .await
}

/// The managed rule listed on the options page for `host`.
async fn wait_managed_rule(h: &Harness, host: &str) -> String {
    let p = h.port(0);
    let want = format!("http://{host}.acme.localhost:{p}/");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = h.browser.client.refresh().await;
        h.open_options().await;
        let shown = h
            .browser
            .exec(
                "return Array.from(document.querySelectorAll('#managed-rules li.managed [data-role=pattern]'))\
                 .map((e) => e.textContent);",
            )
            .await;
        if shown
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(want.as_str())))
        {
            return want;
        }
        assert!(
            Instant::now() < deadline,
            "the managed rule for {want} is not shown: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn a_team_policy_manages_rules_and_safety(engine: Engine) {
    let profile = OwnedProfile::new(engine);
    let mut file = None;
    let h = Harness::start_on_profile_with(engine, profile.path(), |server| {
        file = Some(PolicyFile::write(engine, &policy(server.port(0), "api")));
    })
    .await;
    let file = file.expect("the policy was written");
    let p = h.port(0);
    h.open_options().await;

    // No way to keep tokens without a passphrase.
    let answer = send(&h, json!({"useConvenience": {}})).await;
    assert_eq!(
        answer["message"]["key"], "error_policy_protection",
        "{answer}"
    );
    let answer = send(
        &h,
        json!({"protect": {"passphrase": PASSPHRASE, "idleMinutes": null}}),
    )
    .await;
    assert_eq!(answer["mode"], "protected", "{answer}");
    let answer = send(&h, json!({"useConvenience": {"passphrase": PASSPHRASE}})).await;
    assert_eq!(
        answer["message"]["key"], "error_policy_protection",
        "{answer}"
    );

    // The managed rule is shown, waiting for the user's login; the hostile
    // entry is refused and said.
    let site = wait_managed_rule(&h, "api").await;
    let problems = h
        .browser
        .text_content("#policy-problem-list")
        .await
        .unwrap_or_default();
    assert!(problems.contains("rules[1].site"), "{problems}");

    // A user rule outside the allowed sites is refused; inside, saved.
    let outside = format!("http://other.localhost:{p}");
    h.fill_rule_form(&RuleSpec::bearer(&outside, "user-token-1"))
        .await;
    match h.save_rule_form(true).await {
        SaveOutcome::Error(e) => assert!(e.contains("outside the sites"), "{e}"),
        SaveOutcome::Saved(id) => panic!("a rule outside the allowed sites was saved: {id}"),
    }
    let inside = format!("http://mine.acme.localhost:{p}");
    h.add_rule(&RuleSpec::bearer(&inside, "user-token-2")).await;

    // The login the policy offers fills the managed rule.
    h.open_options().await;
    let b = &h.browser;
    b.click("#login-suggested [data-suggested=\"0\"]").await;
    b.wait_visible("#login-form", WAIT).await;
    b.fill("#login-secret", TEAM_TOKEN).await;
    b.click("#login-submit").await;
    let api = format!("http://api.acme.localhost:{p}");
    h.wait_header(&format!("{api}/v1/models"), "x-team-key", Some(TEAM_TOKEN))
        .await;
    h.wait_header(
        &format!("{inside}/x"),
        "authorization",
        Some("Bearer user-token-2"),
    )
    .await;
    // Nowhere else: the user's site, other hosts, and nothing from the
    // refused "every site" entry.
    for url in [
        format!("{inside}/x"),
        format!("{outside}/x"),
        format!("http://api.localhost:{p}/v1"),
    ] {
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, "x-team-key", None, &url);
        assert_header(&r, "x-everywhere", None, &url);
    }
    assert!(site.contains("api.acme"));

    // The administrator moves the rule.
    file.rewrite(&policy(p, "api2"));
    let h = match engine {
        Engine::Chromium => h,
        Engine::Firefox => {
            let h = h.restart().await;
            h.open_options().await;
            let answer = send(&h, json!({"unlock": {"passphrase": PASSPHRASE}})).await;
            assert_eq!(answer["locked"], json!(false), "{answer}");
            h
        }
    };
    wait_managed_rule(&h, "api2").await;
    // The login for the old site does not fill the new one ("ask" is a
    // login at the rule's own site): log in there too.
    let api2 = format!("http://api2.acme.localhost:{p}");
    h.open_options().await;
    h.browser
        .click("#login-suggested [data-suggested=\"0\"]")
        .await;
    h.browser.wait_visible("#login-form", WAIT).await;
    h.browser.fill("#login-secret", "team-token-second").await;
    h.browser.click("#login-submit").await;
    h.wait_header(
        &format!("{api2}/v1/models"),
        "x-team-key",
        Some("team-token-second"),
    )
    .await;
    h.wait_header(&format!("{api}/v1/models"), "x-team-key", None)
        .await;
    drop(file);
}

in_both_browsers!(a_team_policy_manages_rules_and_safety);
