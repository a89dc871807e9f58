//! End-to-end tests of logins and tokens: the real popup of the built test
//! extension, in a real browser, against the local stand-ins of BentoCloud,
//! Jina AI, Nuclia and Hugging Face (`standin/`), which answer as the
//! providers' contracts say and record every request they get.
//!
//! Run with `cargo xtask test`, or by hand after `cargo xtask build`:
//!
//! ```text
//! TOKENWARD_TEST_EXTENSION=target/test-extension CHROMEDRIVER=/usr/bin/chromedriver \
//!   cargo test --test providers -- --ignored --test-threads=1
//! ```
//!
//! Every provider request is made by the extension's background; the tests
//! check both what the popup shows and what reached the stand-in.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use tokenward_testkit::in_both_browsers;
use tokenward_testkit::{accounts, browser, harness, oidc};

use serde_json::Value as Json;
use tokenward_standin::{Fault, Service, DEPLOYMENT_OK};

use accounts::{World, CALL_WAIT};
use browser::{Engine, WAIT};
use harness::RULE_WAIT;

// ------------------------------------------------------------- logins

async fn log_in_to_each_provider_and_refuse_a_bad_token(engine: Engine) {
    let w = World::start(engine).await;
    let seeds = w.s.seeds().clone();
    w.open_popup().await;
    assert_eq!(w.credential_count().await, 0);
    let before = w.stored_state().await;

    // A refused token keeps nothing, and says why in the provider's words.
    let refused = w
        .log_in(
            "bentoCloud",
            None,
            &seeds.bentocloud.url,
            "not-a-valid-token",
        )
        .await;
    let error = refused.expect_err("a bad token was accepted");
    assert!(
        error.contains("BentoCloud") && error.contains("refused the token"),
        "{error}"
    );
    assert_eq!(w.credential_count().await, 0);
    assert_eq!(w.stored_state().await, before, "nothing was written");

    let bento = &seeds.bentocloud;
    let notice = w.log_in("bentoCloud", None, &bento.url, &bento.token).await;
    assert_eq!(
        notice.as_deref(),
        Ok(format!(
            "Logged in as {} at {} organization.",
            bento.email, bento.org
        )
        .as_str())
    );
    let who =
        w.s.wait_for_request(Service::BentoCloud, WAIT, |r| {
            r.path() == "/api/v1/current_org" && r.header("x-yatai-api-token") == Some(&bento.token)
        })
        .await;
    assert!(
        who.is_some(),
        "BentoCloud saw no current_org with the token"
    );

    let jina = &seeds.jina;
    let notice = w
        .log_in("jina", None, &jina.url, &jina.token)
        .await
        .unwrap();
    assert!(notice.contains(&jina.nickname), "{notice}");
    let whoami =
        w.s.requests(Service::Jina)
            .into_iter()
            .find(|r| r.path() == "/v2/rpc/user.identity.whoami")
            .expect("Jina saw no whoami");
    assert_eq!(whoami.method, "POST");
    assert_eq!(
        whoami.header("authorization"),
        Some(format!("token {}", jina.token).as_str())
    );

    let nuclia = &seeds.nuclia;
    let notice = w
        .log_in(
            "nuclia",
            Some("personalAccessToken"),
            &nuclia.url,
            &nuclia.token,
        )
        .await
        .unwrap();
    assert!(
        notice.contains(&nuclia.user) || notice.contains(&nuclia.email),
        "{notice}"
    );
    let kb = w
        .log_in(
            "nuclia",
            Some("knowledgeBoxKey"),
            &nuclia.kb_url,
            &nuclia.kb_key,
        )
        .await;
    assert!(kb.is_ok(), "{kb:?}");
    let kb_check =
        w.s.requests(Service::Nuclia)
            .into_iter()
            .find(|r| r.path().ends_with(&nuclia.kb_id))
            .expect("Nuclia saw no Knowledge Box check");
    assert_eq!(
        kb_check.header_name("x-nuclia-serviceaccount"),
        Some("X-Nuclia-Serviceaccount")
    );
    let nua = w
        .log_in("nuclia", Some("nuaKey"), "", &nuclia.nua_key)
        .await;
    assert!(nua.is_ok(), "{nua:?}");

    let hf = &seeds.huggingface;
    let notice = w
        .log_in("huggingFace", None, &hf.url, &hf.token)
        .await
        .unwrap();
    assert!(notice.contains(&hf.user), "{notice}");

    assert_eq!(w.credential_count().await, 6);
    for secret in [
        &bento.token,
        &jina.token,
        &nuclia.token,
        &nuclia.kb_key,
        &hf.token,
    ] {
        w.h.assert_secret_not_in_dom(secret, "popup").await;
    }
    // A second popup shows the same accounts: they were stored.
    w.open_popup().await;
    assert_eq!(w.credential_count().await, 6);
}

// ------------------------------------------------------------- tokens

async fn list_create_and_delete_tokens(engine: Engine) {
    let w = World::start(engine).await;
    let seeds = w.s.seeds().clone();
    w.open_popup().await;
    let b = &w.h.browser;

    for (provider, kind, url, token, seeded_name, service) in [
        (
            "bentoCloud",
            None,
            &seeds.bentocloud.url,
            &seeds.bentocloud.token,
            &seeds.bentocloud.token_name,
            Service::BentoCloud,
        ),
        (
            "jina",
            None,
            &seeds.jina.url,
            &seeds.jina.token,
            &seeds.jina.token_name,
            Service::Jina,
        ),
        (
            "nuclia",
            Some("personalAccessToken"),
            &seeds.nuclia.url,
            &seeds.nuclia.token,
            &seeds.nuclia.token_id,
            Service::Nuclia,
        ),
    ] {
        w.log_in(provider, kind, url, token).await.unwrap();
        let id = w.credential_id(provider).await;
        let names = w.open_tokens(&id).await;
        let held: Vec<String> =
            w.s.tokens(service)
                .into_iter()
                .filter(|t| !t.deleted)
                .map(|t| t.name)
                .collect();
        assert_eq!(names.len(), held.len(), "{provider}: {names:?} vs {held:?}");
        if service != Service::Nuclia {
            assert!(names.contains(seeded_name), "{provider}: {names:?}");
        }

        // The provider's default expiry is proposed.
        let days = b
            .exec("return document.getElementById('create-days').value;")
            .await;
        let want_days = match service {
            Service::Jina => "7",
            Service::Nuclia => "90",
            _ => "30",
        };
        assert_eq!(days.as_str(), Some(want_days), "{provider} default expiry");

        let name = format!("e2e-{provider}");
        b.fill("#create-name", &name).await;
        b.fill("#create-description", "made by the e2e test").await;
        b.click("#create-submit").await;
        b.wait_visible("#new-secret", CALL_WAIT).await;
        let secret = b.text("#new-secret-value").await;
        assert!(!secret.is_empty(), "{provider}: no secret shown");
        let created = w
            .s
            .tokens(service)
            .into_iter()
            .find(|t| {
                t.name == name || (service == Service::Nuclia && t.name == "made by the e2e test")
            })
            .unwrap_or_else(|| panic!("{provider}: the stand-in holds no new token"));
        assert!(
            created.expires.is_some(),
            "{provider}: created without expiry"
        );
        let sent =
            w.s.requests(service)
                .into_iter()
                .rev()
                .find(|r| {
                    r.method == "POST"
                        && (r.path().contains("pat.create")
                            || r.path().ends_with("api_tokens")
                            || r.path().ends_with("pa_tokens"))
                })
                .unwrap();
        match service {
            Service::Jina => {
                assert_eq!(sent.form("expirationDays").as_deref(), Some("7"));
                assert_eq!(sent.form("name").as_deref(), Some(name.as_str()));
            }
            Service::BentoCloud => {
                let body: Json = serde_json::from_slice(&sent.body).unwrap();
                assert_eq!(body["name"], Json::from(name.clone()));
                assert_eq!(body["scopes"], serde_json::json!(["api"]));
                assert!(body["expired_at"]
                    .as_str()
                    .is_some_and(|t| !t.contains('T')));
            }
            _ => {
                let body: Json = serde_json::from_slice(&sent.body).unwrap();
                assert_eq!(body["description"], Json::from("made by the e2e test"));
            }
        }
        // The new token is listed, and kept as a credential of its own.
        b.wait_js(
            "the new token in the list",
            CALL_WAIT,
            &format!(
                "return document.querySelectorAll('#remote-tokens li').length === {};",
                held.len() + 1
            ),
        )
        .await;
        // Shown once: gone from the page once dismissed.
        b.click("#dismiss-new-secret").await;
        w.h.assert_secret_not_in_dom(&secret, "popup").await;

        // Delete it, with confirmation.
        let li = format!("#remote-tokens li[data-remote-id='{}']", created.id);
        b.exec("document.getElementById('tokens-notice').hidden = true; return null;")
            .await;
        b.click(&format!("{li} [data-action=delete]")).await;
        b.click(&format!("{li} [data-action=confirm-delete]")).await;
        let gone = w.s.tokens(service);
        poll_deleted(&w, service, &created.id).await;
        drop(gone);
        b.wait_js(
            "the account list after the delete",
            CALL_WAIT,
            "return !document.getElementById('tokens-notice').hidden;",
        )
        .await;
        // Said in the token list, where the delete was clicked.
        let notice = b.text("#tokens-notice").await;
        assert!(notice.contains("Deleted the token"), "{notice}");
        // The list no longer shows it.
        b.wait_js(
            "the deleted token to leave the list",
            CALL_WAIT,
            &format!("return !document.querySelector(\"{li}\");"),
        )
        .await;
        b.click("#tokens-close").await;
    }
    assert_eq!(w.popup_error().await.trim(), "");
}

async fn poll_deleted(w: &World, service: Service, id: &str) {
    browser::poll(
        &format!("{service:?} token {id} to be deleted"),
        CALL_WAIT,
        || async {
            w.s.tokens(service)
                .iter()
                .any(|t| t.id == id && t.deleted)
                .then_some(())
        },
    )
    .await;
}

async fn log_out_ends_the_jina_session_and_forgets_the_rest(engine: Engine) {
    let w = World::start(engine).await;
    let seeds = w.s.seeds().clone();
    w.open_popup().await;
    w.log_in("jina", None, &seeds.jina.url, &seeds.jina.token)
        .await
        .unwrap();
    w.log_in(
        "huggingFace",
        None,
        &seeds.huggingface.url,
        &seeds.huggingface.token,
    )
    .await
    .unwrap();
    let jina = w.credential_id("jina").await;
    w.click_credential(&jina, "logout").await;
    w.click_credential(&jina, "confirm-logout").await;
    let dismissed =
        w.s.wait_for_request(Service::Jina, CALL_WAIT, |r| {
            r.path() == "/v2/rpc/user.session.dismiss"
        })
        .await
        .expect("Jina's session was not dismissed");
    assert_eq!(
        dismissed.header("authorization"),
        Some(format!("token {}", seeds.jina.token).as_str())
    );
    w.h.browser
        .wait_js(
            "one account left",
            CALL_WAIT,
            "return document.querySelectorAll('#credentials li.credential').length === 1;",
        )
        .await;
    let hf = w.credential_id("huggingFace").await;
    w.click_credential(&hf, "logout").await;
    w.click_credential(&hf, "confirm-logout").await;
    w.h.browser
        .wait_js(
            "no account left",
            CALL_WAIT,
            "return document.querySelectorAll('#credentials li.credential').length === 0;",
        )
        .await;
    let state = w.stored_state().await;
    assert_eq!(state["credentials"], serde_json::json!([]));
    assert!(!state.to_string().contains(&seeds.huggingface.token));
}

// ------------------------------------------------------- using a credential

/// Logs in to BentoCloud, creates a token, and uses it on the protected
/// deployment; returns the deployment URL, the new token and the tab id of
/// a page the popup can describe.
async fn deployment_with_new_token(w: &World) -> (String, String) {
    deployment_with_token_for_days(w, None).await
}

/// [`deployment_with_new_token`], the token expiring in `days`.
async fn deployment_with_token_for_days(w: &World, days: Option<&str>) -> (String, String) {
    let seeds = w.s.seeds().clone();
    let b = &w.h.browser;
    w.open_popup().await;
    w.log_in(
        "bentoCloud",
        None,
        &seeds.bentocloud.url,
        &seeds.bentocloud.token,
    )
    .await
    .unwrap();
    let login = w.credential_id("bentoCloud").await;
    w.open_tokens(&login).await;
    b.fill("#create-name", "deploy").await;
    if let Some(days) = days {
        b.fill("#create-days", days).await;
    }
    b.click("#create-submit").await;
    b.wait_visible("#new-secret", CALL_WAIT).await;
    let secret = b.text("#new-secret-value").await;
    b.click("#dismiss-new-secret").await;
    b.click("#tokens-close").await;
    b.wait_js(
        "the new credential",
        CALL_WAIT,
        "return document.querySelectorAll('#credentials li.credential').length === 2;",
    )
    .await;
    // One login and the token it made are one account, not two look-alikes.
    let grouped = b
        .exec(
            "const a = document.querySelectorAll('#credentials li.account'); \
             return a.length === 1 && a[0].querySelectorAll('li.credential').length;",
        )
        .await;
    assert_eq!(
        grouped,
        serde_json::json!(2),
        "the login's tokens grouped under it"
    );
    let new_id = b
        .exec("return document.querySelectorAll('#credentials li.credential')[1].getAttribute('data-credential-id');")
        .await;
    let new_id = new_id.as_str().unwrap().to_owned();

    let deployment = seeds
        .deployment
        .example_url
        .trim_end_matches('/')
        .to_owned();
    open_use(w, &new_id).await;
    let suggested = b
        .exec("return document.getElementById('use-pattern').value;")
        .await;
    assert_eq!(
        suggested.as_str(),
        Some("https://*.acme.cloud-apps.bentoml.com/"),
        "BentoCloud's convention is suggested"
    );
    use_here(w, &deployment, false).await;
    (deployment, secret)
}

/// Opens *Use on a site* for credential `id`, once its suggestion is in.
async fn open_use(w: &World, id: &str) {
    w.click_credential(id, "use").await;
    w.h.browser
        .wait_for_css("#use[data-loaded]", CALL_WAIT)
        .await;
}

/// Saves the open *Use on a site* panel for `pattern`; returns once the
/// rule is in use, with no error shown.
async fn use_here(w: &World, pattern: &str, allow_http: bool) {
    let b = &w.h.browser;
    b.fill("#use-pattern", pattern).await;
    b.set_checked("#use-allow-http", allow_http).await;
    b.click("#use-save").await;
    b.wait_js(
        "the rule to be used",
        CALL_WAIT,
        "return document.getElementById('use').hidden;",
    )
    .await;
    assert_eq!(w.popup_error().await.trim(), "");
}

/// Navigates to the deployment until its page says `want` (200 with the
/// marker, or 401), and returns the Authorization header it got.
async fn open_deployment(w: &World, url: &str, want_ok: bool) -> Option<String> {
    let b = &w.h.browser;
    let deadline = std::time::Instant::now() + RULE_WAIT;
    loop {
        w.s.clear_requests();
        b.goto(&format!("{url}/?t={}", rand_marker())).await;
        let text = b
            .wait_js("the deployment page", WAIT, "return document.readyState === 'complete' && document.body ? document.body.innerText : '';")
            .await;
        let ok = text.as_str().unwrap_or("").contains(DEPLOYMENT_OK);
        let got =
            w.s.requests(Service::Deployment)
                .into_iter()
                .find(|r| r.method == "GET" && r.path() == "/")
                .and_then(|r| r.header("authorization").map(str::to_owned));
        if ok == want_ok {
            return got;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "the deployment at {url} never answered {}; last header {got:?}, text {text}",
                if want_ok { "200" } else { "401" }
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rand_marker() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn protected_deployment_opens_with_the_credential(engine: Engine) {
    let w = World::start(engine).await;
    let before =
        w.s.seeds()
            .deployment
            .example_url
            .trim_end_matches('/')
            .to_owned();
    // Without a rule, the deployment refuses.
    assert_eq!(open_deployment(&w, &before, false).await, None);
    let (deployment, secret) = deployment_with_new_token(&w).await;
    let header = open_deployment(&w, &deployment, true).await;
    assert_eq!(header, Some(format!("Bearer {secret}")));
}

/// The toolbar badge of a site whose token expires within 7 days is amber,
/// not green; the header still goes.
async fn a_token_expiring_soon_turns_the_badge_amber(engine: Engine) {
    let w = World::start(engine).await;
    let (deployment, secret) = deployment_with_token_for_days(&w, Some("3")).await;
    assert_eq!(
        open_deployment(&w, &deployment, true).await,
        Some(format!("Bearer {secret}"))
    );
    let page = format!("{deployment}/");
    w.h.browser.goto(&page).await;
    let tab = w.h.tab_id_via_new_tab(&page).await;
    w.h.wait_badge(tab, "ON").await;
    let color =
        w.h.browser
            .exec_async(&format!(
                "const api = globalThis.browser ?? chrome; \
             return await api.action.getBadgeBackgroundColor({{ tabId: {tab} }});"
            ))
            .await;
    // #9a6700, as [r, g, b, alpha].
    assert_eq!(color, serde_json::json!([154, 103, 0, 255]), "badge colour");

    // And the 3-day reminder: recorded as shown (once, for the new token
    // only: the seeded login never expires), and shown.
    let state = w.stored_state().await;
    let reminded = state["reminded"].as_object().cloned().unwrap_or_default();
    assert_eq!(reminded.len(), 1, "{state}");
    assert_eq!(reminded.values().next(), Some(&serde_json::json!([3])));
    let id = reminded.keys().next().cloned().unwrap_or_default();
    match engine {
        Engine::Chromium => {
            let deadline = std::time::Instant::now() + WAIT;
            let shown = loop {
                let shown =
                    w.h.browser
                        .exec_async("return Object.keys(await chrome.notifications.getAll());")
                        .await;
                let ids: Vec<String> = serde_json::from_value(shown).unwrap_or_default();
                if !ids.is_empty() || std::time::Instant::now() >= deadline {
                    break ids;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(shown, [format!("expiry-{id}-3")]);
        }
        // Headless Firefox ESR 153 lists no notification at all here
        // (`notifications.getAll()` stays empty): it has no alert window to
        // show one in. The record above is what the test can see.
        Engine::Firefox => {}
    }
}

/// An expired token's rule stops, the popup says why, and one click renews
/// it.
async fn expired_token_stops_its_rule_and_the_popup_says_why(engine: Engine) {
    let w = World::start(engine).await;
    let (deployment, secret) = deployment_with_new_token(&w).await;
    assert_eq!(
        open_deployment(&w, &deployment, true).await,
        Some(format!("Bearer {secret}"))
    );
    // The provider expires it; the token list tells the extension.
    assert!(w.s.expire_token(&secret));
    let page = format!("{deployment}/");
    w.h.browser.goto(&page).await;
    let tab = w.h.tab_id_via_new_tab(&page).await;
    w.open_popup().await;
    let login = w.credential_id("bentoCloud").await;
    w.open_tokens(&login).await;
    w.h.browser
        .wait_js(
            "the expired state in the list",
            WAIT,
            "return !!document.querySelector('#remote-tokens [data-validity=expired]');",
        )
        .await;
    // The popup on the deployment's tab says why nothing is sent.
    w.h.open_popup(tab).await;
    let problem = w.why_nothing_is_sent().await;
    assert!(
        problem.contains("expired on") && problem.contains("Create a new one"),
        "{problem}"
    );
    // And the header has stopped.
    assert_eq!(open_deployment(&w, &deployment, false).await, None);

    // One click from the popup: a new token from the same login, in place
    // of the old one in the rule, and the old one deleted at BentoCloud.
    w.h.open_popup(tab).await;
    let b = &w.h.browser;
    b.wait_visible("#site-renew", WAIT).await;
    b.click("#site-renew").await;
    let notice = b
        .wait_js(
            "the renewal notice",
            CALL_WAIT,
            "const n = document.getElementById('account-notice'); \
             return !n.hidden && n.textContent.startsWith('Created') && n.textContent;",
        )
        .await;
    let notice = notice.as_str().unwrap_or("").to_owned();
    assert!(
        notice.contains("deploy-") && notice.contains("put it in 1 header"),
        "{notice}"
    );
    assert!(
        notice.contains("The old one was deleted at BentoCloud"),
        "{notice}"
    );
    b.wait_js(
        "the problem to go",
        CALL_WAIT,
        "return document.getElementById('site-status').dataset.sending !== 'not-sent' && \
                document.getElementById('site-renew').hidden;",
    )
    .await;
    let renewed = open_deployment(&w, &deployment, true).await;
    let renewed = renewed.unwrap_or_default();
    assert!(
        renewed.starts_with("Bearer ") && renewed != format!("Bearer {secret}"),
        "a new token: {renewed}"
    );
    let tokens = w.s.tokens(Service::BentoCloud);
    assert!(
        tokens.iter().any(|t| t.name == "deploy" && t.deleted),
        "the old token deleted: {tokens:?}"
    );
    assert!(
        tokens
            .iter()
            .any(|t| t.name.starts_with("deploy-") && !t.deleted),
        "{tokens:?}"
    );
}

// ------------------------------------------------------- provider failures

async fn provider_failures_leave_stored_state_unchanged(engine: Engine) {
    let w = World::start(engine).await;
    let seeds = w.s.seeds().clone();
    w.open_popup().await;
    let b = &w.h.browser;
    w.log_in(
        "bentoCloud",
        None,
        &seeds.bentocloud.url,
        &seeds.bentocloud.token,
    )
    .await
    .unwrap();
    let id = w.credential_id("bentoCloud").await;
    w.open_tokens(&id).await;
    let before = w.stored_state().await;

    for fault in [Fault::Status(500), Fault::Garbage] {
        w.s.fail_next(Service::BentoCloud, 1, fault.clone());
        b.fill("#create-name", "doomed").await;
        b.click("#create-submit").await;
        let error = b
            .wait_js("the create error", CALL_WAIT, "const e = document.getElementById('tokens-error'); return !e.hidden && e.textContent;")
            .await;
        let error = error.as_str().unwrap_or("").to_owned();
        let want = match fault {
            Fault::Status(_) => "had an error (HTTP 500)",
            Fault::Garbage => "could not be read",
        };
        assert!(error.contains(want), "{fault:?}: {error}");
        assert_eq!(
            w.stored_state().await,
            before,
            "{fault:?} changed stored state"
        );
        b.exec("document.getElementById('tokens-error').hidden = true; return null;")
            .await;
    }
    // A second login that meets a failing provider keeps nothing either.
    b.click("#tokens-close").await;
    w.s.fail_next(Service::HuggingFace, 1, Fault::Garbage);
    let refused = w
        .log_in(
            "huggingFace",
            None,
            &seeds.huggingface.url,
            &seeds.huggingface.token,
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(w.stored_state().await, before);
}

// ------------------------------------------------------- browser login

/// Switches to the tab whose address contains `part` (one the extension
/// opened), waiting for it to appear.
async fn switch_to_tab_with(w: &World, part: &str) {
    let b = &w.h.browser;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        for handle in b.client.windows().await.unwrap_or_default() {
            b.switch_to(&handle).await;
            if b.current_url().await.contains(part) {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no tab at an address containing {part} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_browser_login(w: &World, state: &str) -> String {
    let v = w
        .h
        .browser
        .wait_js(
            &format!("#browser-login[data-state={state}]"),
            CALL_WAIT,
            &format!(
                "const p = document.querySelector('#browser-login[data-state={state}]'); \
                 return p && !p.hidden && document.getElementById('browser-login-message').textContent;"
            ),
        )
        .await;
    v.as_str().unwrap_or_default().to_owned()
}

/// BentoCloud's "Create a new API token with a web browser", from the
/// popup: the background gets a code (no token header), opens the approval
/// page, polls until the user presses Approve there, then logs in with the
/// token as a pasted one would. A second login is cancelled from the popup.
async fn log_in_to_bentocloud_with_the_browser(engine: Engine) {
    let w = World::start(engine).await;
    let bento = w.s.seeds().bentocloud.clone();
    let b = &w.h.browser;
    w.open_popup().await;
    let popup_tab = b.current_tab().await;
    let waiting = start_browser_login(&w, "bentoCloud", &bento.url).await;
    assert!(waiting.contains("Approve the login"), "{waiting}");
    let pending = w.s.pending_logins(Service::BentoCloud);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(w.credential_count().await, 0);

    // The user approves on the page the extension opened.
    switch_to_tab_with(&w, "/api_tokens?code=").await;
    b.click("#approve").await;
    b.switch_to(&popup_tab).await;
    let done = wait_browser_login(&w, "done").await;
    assert_eq!(
        done,
        format!(
            "Logged in as {} at {} organization.",
            bento.email, bento.org
        )
    );
    b.wait_js(
        "the popup to list the new account",
        CALL_WAIT,
        "return document.querySelectorAll('#credentials li.credential').length === 1;",
    )
    .await;
    let requests = w.s.requests(Service::BentoCloud);
    let polls: Vec<_> = requests
        .iter()
        .filter(|r| r.path() == "/api/v1/auth/token")
        .collect();
    assert!(!polls.is_empty());
    for r in requests
        .iter()
        .filter(|r| r.path().starts_with("/api/v1/auth/"))
        .filter(|r| r.path() != "/api/v1/auth/current")
    {
        assert_eq!(r.header("x-yatai-api-token"), None, "{}", r.path());
    }
    let who = requests
        .iter()
        .find(|r| r.path() == "/api/v1/auth/current")
        .expect("the login's who-am-I");
    let token = who.header("x-yatai-api-token").unwrap_or_default();
    // A new token, issued for this login, not the seeded one.
    assert!(!token.is_empty() && token != bento.token, "{token}");

    // A second one, cancelled: the record goes, and so does the panel.
    b.click("#browser-login-cancel").await;
    start_browser_login(&w, "bentoCloud", &bento.url).await;
    b.switch_to(&popup_tab).await;
    b.click("#browser-login-cancel").await;
    b.wait_js(
        "the browser login panel to hide",
        WAIT,
        "return document.querySelector('#browser-login').hidden;",
    )
    .await;
    w.open_popup().await;
    let state = b
        .exec("return document.querySelector('#browser-login').dataset.state;")
        .await;
    assert_eq!(state, "none", "the cancelled login came back");
    assert_eq!(w.credential_count().await, 1);
}

/// Starts a browser login to `provider` (its popup key) at `url` from the
/// open popup; the pending message.
async fn start_browser_login(w: &World, provider: &str, url: &str) -> String {
    let b = &w.h.browser;
    b.click("#show-login").await;
    b.select("#login-provider", provider).await;
    b.fill("#login-endpoint", url).await;
    b.click("#login-browser").await;
    wait_browser_login(w, "pending").await
}

/// How many `grant.auto` requests Jina's stand-in received.
fn jina_grants(w: &World) -> usize {
    w.s.requests(Service::Jina)
        .iter()
        .filter(|r| r.path() == "/v2/rpc/user.identity.grant.auto")
        .count()
}

/// `jina-auth login -f`, from the popup: the background opens Jina's NDJSON
/// login stream (no token), opens its `redirect` page in a tab, and once
/// the user approved there, posts the `authorize` event's data to
/// `grant.auto` and logs in with the token that comes back. A second login
/// is cancelled, which closes its stream: the approval that follows is
/// never exchanged.
async fn log_in_to_jina_with_the_browser(engine: Engine) {
    let w = World::start(engine).await;
    let jina = w.s.seeds().jina.clone();
    let b = &w.h.browser;
    w.open_popup().await;
    let popup_tab = b.current_tab().await;
    let waiting = start_browser_login(&w, "jina", &jina.url).await;
    assert!(
        waiting.contains("Finish the login in the Jina AI tab"),
        "{waiting}"
    );
    assert_eq!(w.s.pending_logins(Service::Jina).len(), 1);
    assert_eq!(w.credential_count().await, 0);

    switch_to_tab_with(&w, "/login?state=").await;
    b.click("#approve").await;
    b.switch_to(&popup_tab).await;
    let done = wait_browser_login(&w, "done").await;
    assert_eq!(
        done,
        format!(
            "Logged in to Jina AI as {} (username: {}).",
            jina.nickname, jina.name
        )
    );
    b.wait_js(
        "the popup to list the new account",
        CALL_WAIT,
        "return document.querySelectorAll('#credentials li.credential').length === 1;",
    )
    .await;
    let requests = w.s.requests(Service::Jina);
    let stream = requests
        .iter()
        .find(|r| r.path() == "/v2/rpc/user.identity.proxiedAuthorize")
        .expect("the login stream");
    assert_eq!(stream.method, "GET");
    assert_eq!(stream.header("authorization"), None, "no token yet");
    let grant = requests
        .iter()
        .find(|r| r.path() == "/v2/rpc/user.identity.grant.auto")
        .expect("the grant");
    assert_eq!(grant.method, "POST");
    assert_eq!(grant.header("content-type"), Some("application/json"));
    let body: serde_json::Value =
        serde_json::from_str(&grant.body_text()).expect("the grant's body is JSON");
    for key in ["code", "state"] {
        assert!(
            body[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {body}"
        );
    }
    let who = requests
        .iter()
        .find(|r| r.path() == "/v2/rpc/user.identity.whoami")
        .expect("the login's who-am-I");
    let token = who.header("authorization").unwrap_or_default();
    assert!(
        token.starts_with("token ") && token != format!("token {}", jina.token),
        "a token issued for this login: {token}"
    );

    // A second login, cancelled: its stream is closed, so approving it
    // afterwards exchanges nothing.
    b.click("#browser-login-cancel").await;
    start_browser_login(&w, "jina", &jina.url).await;
    b.switch_to(&popup_tab).await;
    b.click("#browser-login-cancel").await;
    b.wait_js(
        "the browser login panel to hide",
        WAIT,
        "return document.querySelector('#browser-login').hidden;",
    )
    .await;
    let grants_before = jina_grants(&w);
    assert_eq!(w.s.approve_all_logins(Service::Jina), 1);
    // The approval is pushed to a stream nobody reads: the background
    // polls every second, so a few seconds without a grant show it.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        assert_eq!(
            jina_grants(&w),
            grants_before,
            "a cancelled login was granted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.credential_count().await, 1);
}

/// A browser login outlives the background that started it. The worker is
/// stopped (as the browser does when idle) while the user is on the
/// approval page, with no extension page open to wake it. BentoCloud's
/// login then finishes in the worker the approval page's load wakes
/// (`tabs.onUpdated`), well before the 30-second alarm would. Jina's
/// stream cannot outlive its worker: the login ends at once, and the popup
/// says why.
async fn a_browser_login_outlives_a_stopped_background(engine: Engine) {
    let w = World::start(engine).await;
    let seeds = w.s.seeds().clone();
    let b = &w.h.browser;
    w.open_popup().await;
    let popup_tab = b.current_tab().await;
    start_browser_login(&w, "bentoCloud", &seeds.bentocloud.url).await;
    // Nothing of ours left open to wake the worker.
    b.goto("about:blank").await;
    b.stop_background().await;

    switch_to_tab_with(&w, "/api_tokens?code=").await;
    b.click("#approve").await;
    let approved = std::time::Instant::now();
    b.switch_to(&popup_tab).await;
    b.goto(&w.h.browser.extension_url("options.html")).await;
    let deadline = approved + Duration::from_secs(20);
    loop {
        let state = w.stored_state().await;
        let kept = state["credentials"].as_array().map_or(0, Vec::len);
        if kept == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no login within 20 s of the approval: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{}: login finished {} ms after the approval, in a new worker",
        engine.name(),
        approved.elapsed().as_millis()
    );
    w.open_popup().await;
    let done = wait_browser_login(&w, "done").await;
    assert!(done.starts_with("Logged in as"), "{done}");
    b.click("#browser-login-cancel").await;

    // Jina: the stream dies with the worker.
    start_browser_login(&w, "jina", &seeds.jina.url).await;
    b.goto("about:blank").await;
    b.stop_background().await;
    switch_to_tab_with(&w, "/login?state=").await;
    b.click("#approve").await;
    b.switch_to(&popup_tab).await;
    w.open_popup().await;
    let failed = wait_browser_login(&w, "failed").await;
    assert!(
        failed.contains("interrupted") && failed.contains("Start again"),
        "{failed}"
    );
    assert_eq!(w.credential_count().await, 1, "nothing kept from Jina");
    assert_eq!(
        jina_grants(&w),
        0,
        "a lost stream's approval is never exchanged"
    );
}

/// How long the OpenID provider's access tokens live in the test: short,
/// so refreshes come within the test (one after 30 s, by
/// `openid::refresh_at`), long enough for a 30 s alarm.
const OIDC_ACCESS_TTL: i64 = 60;

/// A self-hosted deployment behind a real OpenID provider (`oidc-provider`
/// under Node): the user logs in through the provider's own login and
/// consent pages in the browser's login window (`launchWebAuthFlow`), uses
/// the login on the deployment, whose every request is checked by
/// introspection at the provider, and keeps working past the access
/// token's expiry with no 401, the rule's token replaced in place by a
/// worker the refresh alarm started (the test stops the first). When
/// the provider then refuses to refresh, the header stops and the popup on
/// the deployment's tab says why.
async fn log_in_with_openid_connect_and_stay_fresh(engine: Engine) {
    let w = World::start(engine).await;
    let b = &w.h.browser;
    w.open_popup().await;
    let popup_tab = b.current_tab().await;
    b.click("#show-login").await;
    b.select("#login-provider", "openId").await;
    let redirect = b
        .wait_js(
            "the redirect URL to register",
            WAIT,
            "return !document.getElementById('login-redirect').hidden && \
                    document.getElementById('login-redirect-url').textContent;",
        )
        .await;
    let redirect = redirect.as_str().unwrap_or_default().to_owned();
    assert!(
        redirect.ends_with(".chromiumapp.org/") || redirect.ends_with(".extensions.allizom.org/"),
        "the browser's redirect URL: {redirect}"
    );
    assert!(!b
        .find("#login-secret-row")
        .await
        .is_displayed()
        .await
        .unwrap());
    let idp = oidc::OidcProvider::start(&redirect, OIDC_ACCESS_TTL as u64);
    b.fill("#login-endpoint", &idp.issuer).await;
    b.fill("#login-client-id", "tokenward").await;
    b.click("#login-browser").await;

    // The provider's own sign-in and consent pages, in the login window.
    switch_to_tab_with(&w, "/interaction/").await;
    b.wait_for_css("input[name=prompt][value=login]", CALL_WAIT)
        .await;
    b.fill("input[name=login]", "alice").await;
    b.fill("input[name=password]", "wonderland").await;
    b.click("button[type=submit]").await;
    b.wait_for_css("input[name=prompt][value=consent]", CALL_WAIT)
        .await;
    b.click("button[type=submit]").await;
    b.switch_to(&popup_tab).await;
    let host = idp.issuer.trim_start_matches("http://").to_owned();
    let done = wait_browser_login(&w, "done").await;
    assert_eq!(
        done,
        format!(
            "Logged in to {host} as alice (alice@example.test). Its token is renewed before it \
             expires."
        )
    );
    let id = w.credential_id("openId").await;

    // Used on the deployment, with the Bearer header it suggests.
    open_use(&w, &id).await;
    use_here(&w, &format!("{}/", idp.resource), true).await;

    // The deployment's page calls its API twice a second from here on.
    let page = format!("{}/", idp.resource);
    b.goto(&page).await;
    let tab = w.h.tab_id_via_new_tab(&page).await;
    let ok = |r: &Json| r["status"] == 200;
    let first = browser::poll("a 200 from the deployment", CALL_WAIT, || async {
        idp.events("request").into_iter().find(|r| ok(r))
    })
    .await;
    let first_token = first["token"].clone();
    let first_expiry_ms = first["exp"].as_i64().unwrap() * 1000;
    // The browser stops the idle background, as it does after 30 s without
    // an event (no extension page stays open to wake it): the refresh must
    // come from the alarm, in a new worker.
    b.goto("about:blank").await;
    b.stop_background().await;

    // Past the first token's expiry, the deployment still answers 200, to
    // another token, and never answered 401 since the first 200.
    let wait = Duration::from_secs(OIDC_ACCESS_TTL as u64 * 2 + 30);
    browser::poll(
        "a 200 with a new token after the first expired",
        wait,
        || async {
            idp.events("request").into_iter().find(|r| {
                ok(r)
                    && r["token"] != first_token
                    && r["at"].as_i64().unwrap() > first_expiry_ms + 1000
            })
        },
    )
    .await;
    let requests = idp.events("request");
    let since_first: Vec<&Json> = requests.iter().skip_while(|r| !ok(r)).collect();
    let unauthorized: Vec<&&Json> = since_first.iter().filter(|r| !ok(r)).collect();
    assert!(
        unauthorized.is_empty(),
        "no 401 once logged in: {unauthorized:?} of {} requests",
        since_first.len()
    );
    let tokens = idp.events("token");
    assert_eq!(tokens[0]["grant"], "authorization_code");
    assert!(
        tokens.len() >= 2 && tokens[1..].iter().all(|t| t["grant"] == "refresh_token"),
        "{tokens:?}"
    );
    let issued = tokens[0]["at"].as_i64().unwrap();
    let refreshed = tokens[1]["at"].as_i64().unwrap();
    let after_ms = refreshed - issued;
    eprintln!(
        "{engine:?}: first refresh {after_ms} ms after the login, {} ms before the token \
         expired; {} requests since the first 200, none refused",
        OIDC_ACCESS_TTL * 1000 - after_ms,
        since_first.len()
    );
    assert!(
        (OIDC_ACCESS_TTL * 1000 / 2 - 2000..OIDC_ACCESS_TTL * 1000 - 5000).contains(&after_ms),
        "refreshed {after_ms} ms after the login: not before half its life, well before its end"
    );

    // The provider refuses the next refresh: the header stops, and the
    // popup on the deployment's tab says why.
    idp.refuse_tokens().await;
    let refused_at = browser::poll("a refused refresh", wait, || async {
        idp.events("refused")
            .first()
            .map(|r| r["at"].as_i64().unwrap())
    })
    .await;
    browser::poll("the header to stop", CALL_WAIT, || async {
        idp.events("request")
            .into_iter()
            .find(|r| r["token"].is_null() && r["at"].as_i64().unwrap() > refused_at)
    })
    .await;
    w.h.open_popup(tab).await;
    let problem = w.why_nothing_is_sent().await;
    assert_eq!(
        problem,
        format!(
            "OpenID Connect: alice ({host}) could not be refreshed (The identity provider \
             refused: invalid_grant: grant request is invalid), so this header is not sent. Log \
             in again."
        )
    );
    let listed = b
        .wait_js(
            "the login's state in the list",
            WAIT,
            "const e = document.querySelector('#credentials li[data-provider=openId] \
             [data-role=expires]'); return e && e.textContent;",
        )
        .await;
    assert_eq!(
        listed.as_str().unwrap_or_default(),
        "Not renewed: The identity provider refused: invalid_grant: grant request is invalid; \
         log in again"
    );
}

/// The Nuclia stand-in's access tokens in the test: refreshed after 30 s.
const NUCLIA_ACCESS_TTL: i64 = 60;

/// The Nuclia credential's access and refresh tokens, as stored.
async fn nuclia_tokens(w: &World) -> (String, String) {
    w.open_popup().await;
    let state = w.stored_state().await;
    let c = state["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["provider"] == "nuclia"))
        .cloned()
        .expect("the Nuclia credential");
    (
        c["secret"].as_str().unwrap_or_default().to_owned(),
        c["refreshToken"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `nuclia auth login`, from the popup: the background opens Nuclia's OAuth
/// page in a tab with the official client's id, PKCE and loopback
/// redirect; the stand-in approves at once and the tab arrives at
/// `127.0.0.1:18765/callback`, where nothing listens: the background reads
/// the code from the tab's address, closes the tab, exchanges the code and
/// logs in with the user token. Used on a site, the token is refreshed
/// (rotated refresh token) before it expires and the header follows.
async fn log_in_to_nuclia_with_the_browser_and_stay_fresh(engine: Engine) {
    let w = World::start(engine).await;
    let nuclia = w.s.seeds().nuclia.clone();
    w.s.set_nuclia_access_seconds(NUCLIA_ACCESS_TTL);
    let b = &w.h.browser;
    w.open_popup().await;
    b.click("#show-login").await;
    b.select("#login-provider", "nuclia").await;
    b.fill("#login-endpoint", &nuclia.url).await;
    b.click("#login-browser").await;
    let logged_in = std::time::Instant::now();
    let done = wait_browser_login(&w, "done").await;
    assert_eq!(
        done,
        format!(
            "User: {} <{}>. Its token is renewed before it expires.",
            nuclia.user, nuclia.email
        )
    );
    browser::poll("the login tab to close", WAIT, || async {
        (b.client.windows().await.map(|w| w.len()).unwrap_or(0) == 1).then_some(())
    })
    .await;
    let requests = w.s.requests(Service::Nuclia);
    let auth = requests
        .iter()
        .find(|r| r.path() == "/oauth2/auth")
        .expect("the login page");
    assert_eq!(
        auth.query("client_id").as_deref(),
        Some(nuclia.oauth_client_id.as_str())
    );
    assert_eq!(
        auth.query("redirect_uri").as_deref(),
        Some("http://127.0.0.1:18765/callback")
    );
    assert_eq!(auth.query("code_challenge_method").as_deref(), Some("S256"));
    let exchange = requests
        .iter()
        .find(|r| r.path() == "/oauth2/token")
        .expect("the code exchange");
    assert_eq!(
        exchange.form("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert!(exchange
        .form("code_verifier")
        .is_some_and(|v| v.len() == 43));
    let (first, first_refresh) = nuclia_tokens(&w).await;
    assert!(first.starts_with("ory_at_") && first_refresh.starts_with("ory_rt_"));

    // Used on a site: the header carries the token, then its successor.
    let id = w.credential_id("nuclia").await;
    let site = w.h.origin("127.0.0.1", 0);
    open_use(&w, &id).await;
    use_here(&w, &format!("{site}/"), true).await;
    let api = format!("{site}/api/v1/user");
    w.h.wait_header(&api, "authorization", Some(&format!("Bearer {first}")))
        .await;
    let wait = Duration::from_secs(NUCLIA_ACCESS_TTL as u64 + 30);
    let refresh = browser::poll("a refresh at Nuclia", wait, || async {
        w.s.requests(Service::Nuclia)
            .into_iter()
            .find(|r| r.form("grant_type").as_deref() == Some("refresh_token"))
    })
    .await;
    let refreshed_after = logged_in.elapsed();
    assert_eq!(
        refresh.form("refresh_token").as_deref(),
        Some(first_refresh.as_str())
    );
    assert_eq!(
        refresh.form("client_id").as_deref(),
        Some(nuclia.oauth_client_id.as_str())
    );
    assert!(
        refreshed_after < Duration::from_secs(NUCLIA_ACCESS_TTL as u64 - 5),
        "refreshed {refreshed_after:?} after the login: before the token expired"
    );
    let (second, second_refresh) = browser::poll("the new token stored", CALL_WAIT, || async {
        let tokens = nuclia_tokens(&w).await;
        (tokens.0 != first).then_some(tokens)
    })
    .await;
    assert_ne!(
        second_refresh, first_refresh,
        "the rotated refresh token is kept"
    );
    w.h.wait_header(&api, "authorization", Some(&format!("Bearer {second}")))
        .await;
    eprintln!("{engine:?}: Nuclia token refreshed {refreshed_after:?} after the login");
}

in_both_browsers!(
    log_in_with_openid_connect_and_stay_fresh,
    log_in_to_nuclia_with_the_browser_and_stay_fresh,
    log_in_to_each_provider_and_refuse_a_bad_token,
    list_create_and_delete_tokens,
    log_out_ends_the_jina_session_and_forgets_the_rest,
    protected_deployment_opens_with_the_credential,
    expired_token_stops_its_rule_and_the_popup_says_why,
    provider_failures_leave_stored_state_unchanged,
    log_in_to_bentocloud_with_the_browser,
    log_in_to_jina_with_the_browser,
    a_browser_login_outlives_a_stopped_background,
    a_token_expiring_soon_turns_the_badge_amber,
);
