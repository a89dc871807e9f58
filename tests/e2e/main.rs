//! End-to-end tests: a real browser, Chromium and Firefox, with the
//! extension's test build, driven through its real options page and popup,
//! against a recording loopback server that sees exactly what headers the
//! browser sent.
//!
//! Run with `cargo xtask test`, or by hand:
//!
//! ```text
//! cargo xtask build
//! TOKENWARD_TEST_EXTENSION=target/test-extension CHROMEDRIVER=/usr/bin/chromedriver \
//!   cargo test --test e2e -- --ignored --test-threads=1
//! ```
//!
//! Each case is written once, as `async fn case(engine: Engine)`, and
//! [`in_both_browsers!`] at the end makes it two tests, `chromium::case` and
//! `firefox::case`, so a failure names the browser; `-- --ignored firefox::`
//! runs one browser's. Every case runs in both browsers; one that could
//! not would get its own test in that browser's module only, saying why,
//! with the source of the browser difference.
//!
//! Every test starts its own server and browser, creates its rules through
//! the UI, and checks the server's record. Negative cases always make a
//! positive control request in the same browser first, so a broken injection
//! cannot make them pass.
// Native only: the browser driver and the server do not build for wasm32.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use tokenward_testkit::in_both_browsers;
use tokenward_testkit::{browser, harness, scope, server};
mod import;
mod policy;
mod quota;
mod races;
mod screenshot;

use std::time::Duration;

use serde_json::{json, Value as Json};

use browser::{Engine, WAIT};
use harness::{assert_header, with_marker, Harness, Header, Kind, RuleSpec, SaveOutcome};

const AUTH: &str = "authorization";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Start, add a bearer rule for `pattern` through the options page, and wait
/// until fetches to `control_url` carry it. Returns the harness, the rule id
/// and the expected header value.
async fn with_bearer_rule(
    engine: Engine,
    pattern: impl Fn(&Harness) -> String,
    control_url: impl Fn(&Harness) -> String,
    token: &str,
) -> (Harness, String, String) {
    let h = Harness::start(engine).await;
    let pattern = pattern(&h);
    let id = h.add_rule(&RuleSpec::bearer(&pattern, token)).await;
    let want = format!("Bearer {token}");
    h.wait_header(&control_url(&h), AUTH, Some(&want)).await;
    (h, id, want)
}

/// [`with_bearer_rule`] for the suite's usual site, `http://api.localhost:P`,
/// with `/control` on it as the control URL.
async fn with_api_rule(engine: Engine, token: &str) -> (Harness, String, String) {
    with_bearer_rule(
        engine,
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        token,
    )
    .await
}

/// The header arrives on one request of `kind` to the covered origin.
async fn delivered_on(engine: Engine, kind: Kind, token: &str) {
    let (h, _, want) = with_api_rule(engine, token).await;
    let api = h.origin("api.localhost", 0);
    let target = match kind {
        Kind::Img => format!("{api}/img.png"),
        Kind::Ws => format!("ws://api.localhost:{}/ws", h.port(0)),
        _ => format!("{api}/target"),
    };
    let r = h.probe(kind, &target).await;
    assert_header(&r, AUTH, Some(&want), &format!("{kind:?} to {target}"));
    // The request really was of that kind.
    let dest = r.header("sec-fetch-dest");
    match kind {
        Kind::Nav => assert_eq!(dest, Some("document"), "{}", r.describe()),
        Kind::Iframe => assert_eq!(dest, Some("iframe"), "{}", r.describe()),
        Kind::Img => assert_eq!(dest, Some("image"), "{}", r.describe()),
        Kind::Fetch | Kind::Xhr => assert_eq!(dest, Some("empty"), "{}", r.describe()),
        Kind::Form => {
            assert_eq!(r.method, "POST", "{}", r.describe());
            assert_eq!(r.body, b"field=value", "{}", r.describe());
        }
        Kind::Ws => assert_eq!(
            r.header("upgrade").map(str::to_ascii_lowercase).as_deref(),
            Some("websocket"),
            "{}",
            r.describe()
        ),
    }
}

// ------------------------------------------------------------ the harness

/// The fixtures and server work with no rule at all: each kind of request
/// reaches the server (and carries no Authorization), and the WebSocket
/// handshake completes. When this fails, the harness is broken, not the
/// extension.
async fn harness_fixtures_reach_the_server(engine: Engine) {
    let h = Harness::start(engine).await;
    let site = h.origin("plain.localhost", 1);
    for kind in [Kind::Nav, Kind::Fetch, Kind::Xhr, Kind::Iframe, Kind::Form] {
        let r = h.probe(kind, &format!("{site}/target")).await;
        assert_header(&r, AUTH, None, &format!("{kind:?} with no rule"));
        assert_eq!(r.hostname(), "plain.localhost");
        assert_eq!(r.port, h.port(1));
    }
    let r = h.probe(Kind::Img, &format!("{site}/img.png")).await;
    assert_header(&r, AUTH, None, "img with no rule");
    h.browser
        .wait_js(
            "the fixture image to load as 1x1",
            WAIT,
            "const r = document.querySelector('#result'); return r && r.textContent.includes('loaded 1x1');",
        )
        .await;
    let r = h
        .probe(Kind::Ws, &format!("ws://plain.localhost:{}/ws", h.port(1)))
        .await;
    assert_header(&r, AUTH, None, "ws with no rule");
    h.browser
        .wait_js(
            "the WebSocket to open, get `hello` and close",
            WAIT,
            "const r = document.querySelector('#result'); \
             return r && r.textContent.includes('open') && r.textContent.includes('message hello') \
             && r.textContent.includes('close');",
        )
        .await;
    let r = h
        .probe_fetch_with_headers(&format!("{site}/target"), &[("X-Custom", "v 1")])
        .await;
    assert_header(&r, "x-custom", Some("v 1"), "a fixture-set header");
}

// -------------------------------------------------- where the header goes

async fn header_on_top_level_navigation(engine: Engine) {
    delivered_on(engine, Kind::Nav, "nav-7Qw2").await;
}

/// Also checks that the options page lists the rule with a masked summary.
async fn header_on_fetch_and_rule_listed_masked(engine: Engine) {
    let token = "fetch-Zx81-secretvalue";
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let id = h.add_rule(&RuleSpec::bearer(&api, token)).await;
    let pattern = h.rule_text(&id, "pattern").await;
    assert!(
        pattern.contains(&format!("api.localhost:{}", h.port(0))),
        "the listed pattern {pattern:?} does not name api.localhost:{}",
        h.port(0)
    );
    let summary = h.rule_text(&id, "headers").await;
    assert!(
        summary.to_ascii_lowercase().contains("authorization"),
        "the header summary {summary:?} does not name Authorization"
    );
    let list_html = h
        .browser
        .exec("return document.querySelector('#rules').outerHTML;")
        .await;
    assert!(
        !list_html.as_str().unwrap_or("").contains(token),
        "the secret appears in the rule list: {list_html}"
    );
    let toggle = h
        .browser
        .find(&format!(
            "{} input[data-action=toggle]",
            Harness::rule_li(&id)
        ))
        .await;
    assert!(
        toggle.is_selected().await.unwrap(),
        "a new rule should be enabled"
    );
    let want = format!("Bearer {token}");
    let r = h
        .wait_header_kind(Kind::Fetch, &format!("{api}/data"), AUTH, Some(&want))
        .await;
    assert_eq!(r.method, "GET");
}

async fn header_on_xhr(engine: Engine) {
    delivered_on(engine, Kind::Xhr, "xhr-Pp31").await;
}

async fn header_on_iframe(engine: Engine) {
    delivered_on(engine, Kind::Iframe, "iframe-Lk09").await;
}

async fn header_on_image(engine: Engine) {
    delivered_on(engine, Kind::Img, "img-Ue55").await;
}

async fn header_on_form_post(engine: Engine) {
    delivered_on(engine, Kind::Form, "form-Hh72").await;
}

async fn header_on_websocket_handshake(engine: Engine) {
    delivered_on(engine, Kind::Ws, "ws-Rr16").await;
}

/// Both hops of a same-origin redirect carry the header, for fetch and for a
/// top-level navigation.
async fn header_on_same_origin_redirect_second_hop(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "redir-Ab12").await;
    let api = h.origin("api.localhost", 0);
    for kind in [Kind::Fetch, Kind::Nav] {
        let m2 = h.server.marker("hop2");
        let to = with_marker(&format!("{api}/final"), &m2);
        let first = h
            .probe(kind, &format!("{api}/redirect?to={}", enc(&to)))
            .await;
        assert_header(
            &first,
            AUTH,
            Some(&want),
            &format!("{kind:?} redirect, hop 1"),
        );
        let second = h.server.wait_marker(&m2, Duration::from_secs(10)).await;
        assert_header(
            &second,
            AUTH,
            Some(&want),
            &format!("{kind:?} redirect, hop 2"),
        );
    }
}

// ------------------------------------------------ where the header does not go

async fn no_header_on_other_port(engine: Engine) {
    let (h, _, _) = with_api_rule(engine, "port-Qq01").await;
    for i in [1, 2] {
        let url = format!("{}/x", h.origin("api.localhost", i));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("another port: {url}"));
        let r = h.probe(Kind::Nav, &url).await;
        assert_header(&r, AUTH, None, &format!("another port, navigation: {url}"));
    }
}

async fn no_header_on_other_host(engine: Engine) {
    let (h, _, _) = with_api_rule(engine, "host-Ww02").await;
    for host in [
        "other.localhost",
        "localhost",
        "127.0.0.1",
        "www.api.localhost",
    ] {
        let url = format!("{}/x", h.origin(host, 0));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("another host: {url}"));
    }
}

/// A site typed in Unicode in the editor: the page and the background have
/// the browser's own URL parser make it the ASCII host the browser matches
/// (the wasm carries no Unicode tables), and the header arrives there, on
/// a navigation too, and not on the ASCII look-alike.
async fn header_on_a_host_typed_in_unicode(engine: Engine) {
    let (h, _, want) = with_bearer_rule(
        engine,
        |h| h.origin("Bücher.localhost", 0),
        |h| format!("{}/control", h.origin("xn--bcher-kva.localhost", 0)),
        "idn-Uu07",
    )
    .await;
    let url = format!("{}/x", h.origin("xn--bcher-kva.localhost", 0));
    let r = h.probe(Kind::Nav, &url).await;
    assert_header(&r, AUTH, Some(&want), &format!("a navigation to {url}"));
    let url = format!("{}/x", h.origin("bucher.localhost", 0));
    let r = h.probe(Kind::Fetch, &url).await;
    assert_header(&r, AUTH, None, &format!("the ASCII look-alike: {url}"));
}

async fn no_header_on_lookalike_hosts(engine: Engine) {
    let (h, _, _) = with_api_rule(engine, "look-Ee03").await;
    for host in [
        "evilapi.localhost",
        "api.localhost.evil.localhost",
        "api-localhost.localhost",
    ] {
        let url = format!("{}/x", h.origin(host, 0));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("a lookalike host: {url}"));
        let r = h.probe(Kind::Nav, &url).await;
        assert_header(
            &r,
            AUTH,
            None,
            &format!("a lookalike host, navigation: {url}"),
        );
    }
}

async fn no_header_on_parent_domain(engine: Engine) {
    let (h, _, _) = with_bearer_rule(
        engine,
        |h| h.origin("sub.app.localhost", 0),
        |h| format!("{}/control", h.origin("sub.app.localhost", 0)),
        "parent-Rt04",
    )
    .await;
    for host in ["app.localhost", "other.app.localhost"] {
        let url = format!("{}/x", h.origin(host, 0));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("parent or sibling domain: {url}"));
    }
}

/// A rule for `https://api.localhost:P` does not send over plain http to the
/// same host and port. The control is a second, http rule for another host.
async fn no_header_on_other_scheme(engine: Engine) {
    let h = Harness::start(engine).await;
    let p = h.port(0);
    h.add_rule(&RuleSpec::bearer(
        &format!("https://api.localhost:{p}"),
        "https-only-Yy05",
    ))
    .await;
    let ctl = h.origin("ctl.localhost", 0);
    h.add_rule(&RuleSpec::bearer(&ctl, "control-Yy05")).await;
    h.wait_header(&format!("{ctl}/control"), AUTH, Some("Bearer control-Yy05"))
        .await;
    let url = format!("http://api.localhost:{p}/x");
    let r = h.probe(Kind::Fetch, &url).await;
    assert_header(
        &r,
        AUTH,
        None,
        &format!("an https rule, http request {url}"),
    );
    let r = h.probe(Kind::Nav, &url).await;
    assert_header(
        &r,
        AUTH,
        None,
        &format!("an https rule, http navigation {url}"),
    );
}

/// A redirect from the covered origin to another one: the first hop carries
/// the header, the second does not (fetch and navigation).
async fn redirect_to_other_origin_drops_header(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "redir-out-Uu06").await;
    let api = h.origin("api.localhost", 0);
    let elsewhere = [
        format!("{}/final", h.origin("other.localhost", 0)),
        format!("{}/final", h.origin("api.localhost", 1)),
    ];
    for kind in [Kind::Fetch, Kind::Nav] {
        for dest in &elsewhere {
            let m2 = h.server.marker("hop2");
            let to = with_marker(dest, &m2);
            let first = h
                .probe(kind, &format!("{api}/redirect?to={}", enc(&to)))
                .await;
            assert_header(
                &first,
                AUTH,
                Some(&want),
                &format!("{kind:?} redirect, hop 1"),
            );
            let second = h.server.wait_marker(&m2, Duration::from_secs(10)).await;
            assert_header(
                &second,
                AUTH,
                None,
                &format!("{kind:?} redirect, hop 2 to {dest}"),
            );
        }
    }
}

// ------------------------------------------------------- patterns

async fn wildcard_covers_subdomains_only(engine: Engine) {
    let (h, _, want) = with_bearer_rule(
        engine,
        |h| format!("http://*.apps.localhost:{}", h.port(0)),
        |h| format!("{}/control", h.origin("a.apps.localhost", 0)),
        "wild-Ii07",
    )
    .await;
    let r = h
        .probe(
            Kind::Fetch,
            &format!("{}/x", h.origin("x.y.apps.localhost", 0)),
        )
        .await;
    assert_header(
        &r,
        AUTH,
        Some(&want),
        "a deeper subdomain x.y.apps.localhost",
    );
    for host in [
        "apps.localhost",
        "apps.localhost.evil.localhost",
        "evilapps.localhost",
    ] {
        let url = format!("{}/x", h.origin(host, 0));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("not under the wildcard: {url}"));
    }
    let url = format!("{}/x", h.origin("a.apps.localhost", 1));
    let r = h.probe(Kind::Fetch, &url).await;
    assert_header(
        &r,
        AUTH,
        None,
        &format!("the wildcard on another port: {url}"),
    );
}

async fn path_prefix_matches_on_segment_boundary(engine: Engine) {
    let (h, _, want) = with_bearer_rule(
        engine,
        |h| format!("{}/v1", h.origin("api.localhost", 0)),
        |h| format!("{}/v1", h.origin("api.localhost", 0)),
        "path-Oo08",
    )
    .await;
    let api = h.origin("api.localhost", 0);
    for path in ["/v1", "/v1/x", "/v1/x/y", "/v1?q=1"] {
        let r = h.probe(Kind::Fetch, &format!("{api}{path}")).await;
        assert_header(&r, AUTH, Some(&want), &format!("under the prefix: {path}"));
    }
    for path in ["/v10", "/v2", "/", "/x/v1"] {
        let r = h.probe(Kind::Fetch, &format!("{api}{path}")).await;
        assert_header(&r, AUTH, None, &format!("outside the prefix: {path}"));
    }
}

// ------------------------------------------------------- live changes

async fn live_toggle_stops_and_restores_header(engine: Engine) {
    let (h, id, want) = with_api_rule(engine, "toggle-Pp09").await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    // Rules enough for a second group of stored rules (64 to a group), so
    // that the toggle reads only its rule's group, and its badges only the
    // groups of the rules covering open tabs.
    h.open_options().await;
    let filled = h
        .browser
        .exec_async(
            "const api = globalThis.browser ?? chrome;\n\
             for (let i = 0; i < 70; i++) {\n\
               const draft = { pattern: `https://filler${i}.example`,\n\
                 headers: [{ name: 'Authorization', scheme: 'bearer', secret: 'filler-token' }] };\n\
               const answer = JSON.parse(await api.runtime.sendMessage({ saveRule: { draft } }));\n\
               if (answer.type !== 'ruleChanged') return answer;\n\
             }\n\
             return 'filled';",
        )
        .await;
    assert_eq!(filled, json!("filled"), "saving the filler rules");
    // A tab left open on the site, never navigated again: its badge
    // follows each toggle made on the options page.
    let page = format!(
        "{}/page/plain?pm=toggle-badge",
        h.origin("api.localhost", 0)
    );
    let work_tab = h.browser.current_tab().await;
    h.browser.new_tab().await;
    h.browser.goto(&page).await;
    h.browser.wait_for_css("#ready", WAIT).await;
    h.browser.switch_to(&work_tab).await;
    h.open_options().await;
    let tab = h.browser.tab_id_for_url(&page).await;
    h.wait_badge(tab, "ON").await;
    h.set_rule_enabled(&id, false).await;
    h.wait_badge(tab, "").await;
    h.wait_header(&url, AUTH, None).await;
    h.set_rule_enabled(&id, true).await;
    h.wait_badge(tab, "ON").await;
    h.wait_header(&url, AUTH, Some(&want)).await;
}

async fn live_edit_changes_value_and_empty_secret_keeps_it(engine: Engine) {
    let (h, id, _) = with_api_rule(engine, "edit-old-Aa10").await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    h.edit_rule_secret(&id, "edit-new-Bb10").await;
    h.wait_header(&url, AUTH, Some("Bearer edit-new-Bb10"))
        .await;
    assert_eq!(
        h.rule_ids().await,
        vec![id.clone()],
        "editing made a new rule"
    );
    // Editing with the secret left empty keeps the stored secret. The edit
    // is applied when the page reports it saved, so the next requests show
    // its effect without waiting.
    h.edit_rule_secret(&id, "").await;
    for _ in 0..3 {
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(
            &r,
            AUTH,
            Some("Bearer edit-new-Bb10"),
            "after an edit that left the secret empty",
        );
    }
}

async fn live_delete_stops_header(engine: Engine) {
    let (h, id, _) = with_api_rule(engine, "delete-Cc11").await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    h.delete_rule(&id).await;
    assert!(h.rule_ids().await.is_empty(), "rules left after delete");
    h.wait_header(&url, AUTH, None).await;
}

/// A rule's key changed from outside (the developer tools, another
/// version of Tokenward), the head left as it was: the background tells it
/// from its own writes, which always change the head, and applies it.
async fn rule_key_changed_from_outside_is_applied(engine: Engine) {
    let (h, id, _) = with_api_rule(engine, "outside-Qq31").await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    h.open_options().await;
    let id: u32 = id.parse().expect("a rule id");
    let key = tokenward_core::store::rules_key(id);
    let enabled = h
        .browser
        .exec_async(&format!(
            "const api = globalThis.browser ?? chrome; const key = '{key}'; \
             const group = JSON.parse((await api.storage.local.get(key))[key]); \
             const rule = group.find((r) => r.id === {id}); \
             const was = rule.enabled; rule.enabled = false; \
             await api.storage.local.set({{ [key]: JSON.stringify(group) }}); return was;"
        ))
        .await;
    assert_eq!(enabled, json!(true), "the stored rule was enabled");
    h.wait_header(&url, AUTH, None).await;
}

// ------------------------------------------------------- popup

async fn popup_adds_rule_for_uncovered_site(engine: Engine) {
    let secret = "popup-Dd12-verysecret";
    let h = Harness::start(engine).await;
    let site = h.origin("popup.localhost", 0);
    let page = format!("{site}/page/plain?pm=popup");
    let site_tab = h.browser.current_tab().await;
    h.browser.goto(&page).await;
    h.browser.wait_for_css("#ready", WAIT).await;
    let tab = h.tab_id_via_new_tab(&page).await;
    let popup_tab = h.browser.current_tab().await;

    assert_eq!(h.badge_text(tab).await, "", "badge of an uncovered tab");
    let state = h.open_popup(tab).await;
    assert_eq!(state, "uncovered", "popup state for {page}");
    let origin_text = h.browser.text("#site-origin").await;
    assert!(
        origin_text.contains(&format!("popup.localhost:{}", h.port(0))),
        "#site-origin shows {origin_text:?}, expected the tab's origin {site}"
    );
    h.browser.click("#add-site").await;
    h.browser.wait_visible("#add-form", WAIT).await;
    let prefilled = h
        .browser
        .exec("return document.querySelector('#add-pattern').value;")
        .await;
    assert!(
        prefilled.as_str().unwrap_or("").starts_with(&site),
        "#add-pattern prefilled with {prefilled}, expected the origin {site}"
    );
    let name = h
        .browser
        .exec("return document.querySelector('#add-header-name').value;")
        .await;
    assert_eq!(
        name.as_str(),
        Some("Authorization"),
        "#add-header-name default"
    );
    h.browser.select("#add-scheme", "bearer").await;
    h.browser.fill("#add-secret", secret).await;
    h.browser.click("#add-save").await;
    h.wait_popup_state("covered").await;
    let popup_error = h
        .browser
        .text_content("#popup-error")
        .await
        .unwrap_or_default();
    assert!(
        popup_error.trim().is_empty(),
        "#popup-error after a successful save: {popup_error:?}"
    );

    let shown = h
        .browser
        .text_content("#site-rule [data-role=headers]")
        .await
        .unwrap_or_default();
    assert!(
        shown.to_ascii_lowercase().contains("authorization"),
        "the covered popup's header summary {shown:?} does not name Authorization"
    );
    let pattern = h
        .browser
        .text_content("#site-rule [data-role=pattern]")
        .await
        .unwrap_or_default();
    assert!(
        pattern.contains("popup.localhost"),
        "the covered popup's pattern {pattern:?}"
    );
    assert!(
        h.browser
            .find("#site-toggle")
            .await
            .is_selected()
            .await
            .unwrap(),
        "#site-toggle should be checked for a new rule"
    );
    h.assert_secret_not_in_dom(secret, "popup").await;

    // The header now reaches the site, from that tab.
    h.browser.switch_to(&site_tab).await;
    h.wait_header(
        &format!("{site}/api"),
        AUTH,
        Some(&format!("Bearer {secret}")),
    )
    .await;
    h.browser.goto(&page).await;
    h.browser.switch_to(&popup_tab).await;
    h.wait_badge(tab, "ON").await;
}

async fn popup_toggle_disables_covering_rule(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "ptoggle-Ff13").await;
    let api = h.origin("api.localhost", 0);
    let page = format!("{api}/page/plain?pm=ptoggle");
    let site_tab = h.browser.current_tab().await;
    h.browser.goto(&page).await;
    h.browser.wait_for_css("#ready", WAIT).await;
    let tab = h.tab_id_via_new_tab(&page).await;
    let popup_tab = h.browser.current_tab().await;
    let state = h.open_popup(tab).await;
    assert_eq!(state, "covered", "popup state for a covered page {page}");
    h.assert_secret_not_in_dom("ptoggle-Ff13", "popup").await;
    h.wait_badge(tab, "ON").await;

    h.browser.set_checked("#site-toggle", false).await;
    h.browser.switch_to(&site_tab).await;
    h.wait_header(&format!("{api}/x"), AUTH, None).await;
    h.browser.goto(&page).await;
    h.browser.switch_to(&popup_tab).await;
    h.wait_badge(tab, "").await;

    h.open_popup(tab).await;
    h.browser.set_checked("#site-toggle", true).await;
    h.browser.switch_to(&site_tab).await;
    h.wait_header(&format!("{api}/x"), AUTH, Some(&want)).await;
}

// ------------------------------------------------------- header values

async fn basic_scheme_encodes_user_password(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    h.add_rule(&RuleSpec {
        pattern: &api,
        label: "basic",
        allow_http: false,
        headers: vec![Header {
            name: "Authorization",
            scheme: "basic",
            secret: "user:pass",
        }],
        ..RuleSpec::bearer(&api, "")
    })
    .await;
    h.wait_header(&format!("{api}/x"), AUTH, Some("Basic dXNlcjpwYXNz"))
        .await;
}

async fn raw_custom_header_arrives_verbatim(engine: Engine) {
    let value = "yt_live.AbC-123=xyz/+~";
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    h.add_rule(&RuleSpec {
        pattern: &api,
        label: "yatai",
        allow_http: false,
        headers: vec![Header {
            name: "X-YATAI-API-TOKEN",
            scheme: "raw",
            secret: value,
        }],
        ..RuleSpec::bearer(&api, "")
    })
    .await;
    let r = h
        .wait_header(&format!("{api}/x"), "x-yatai-api-token", Some(value))
        .await;
    assert_header(&r, AUTH, None, "a raw-header rule adds no Authorization");
}

/// Two header rows in one rule both arrive.
async fn two_headers_in_one_rule(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    h.add_rule(&RuleSpec {
        pattern: &api,
        label: "two",
        allow_http: false,
        headers: vec![
            Header::bearer("two-Gg14"),
            Header {
                name: "X-Api-Key",
                scheme: "raw",
                secret: "key-Gg14",
            },
        ],
        ..RuleSpec::bearer(&api, "")
    })
    .await;
    let r = h
        .wait_header(&format!("{api}/x"), AUTH, Some("Bearer two-Gg14"))
        .await;
    assert_header(&r, "x-api-key", Some("key-Gg14"), "the second header row");
}

/// A `remove` row strips a header the page itself sends; the same header
/// still reaches an uncovered site (the control).
async fn remove_op_strips_page_header(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    h.add_rule(&RuleSpec {
        pattern: &api,
        label: "remove",
        allow_http: false,
        headers: vec![Header {
            name: "X-Remove-Me",
            scheme: "remove",
            secret: "",
        }],
        ..RuleSpec::bearer(&api, "")
    })
    .await;
    let sent = [("X-Remove-Me", "page-value"), ("X-Keep-Me", "keep")];
    let other = h.origin("other.localhost", 0);
    let r = h
        .probe_fetch_with_headers(&format!("{other}/x"), &sent)
        .await;
    assert_header(
        &r,
        "x-remove-me",
        Some("page-value"),
        "control: the fixture sends X-Remove-Me to an uncovered site",
    );
    let deadline = std::time::Instant::now() + harness::RULE_WAIT;
    loop {
        let r = h.probe_fetch_with_headers(&format!("{api}/x"), &sent).await;
        if r.header("x-remove-me").is_none() {
            assert_header(&r, "x-keep-me", Some("keep"), "other page headers survive");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "X-Remove-Me still reaches {api} after {:?}: {}",
            harness::RULE_WAIT,
            r.describe()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

// ------------------------------------------------------- bad input

async fn bad_input_shows_error_and_creates_no_rule(engine: Engine) {
    let h = Harness::start(engine).await;
    let options = h.browser.extension_url("options.html");
    for pattern in ["*", "http://", "", "http://*"] {
        h.browser.goto(&options).await;
        h.open_options().await;
        h.fill_rule_form(&RuleSpec::bearer(pattern, "bad-Jj15"))
            .await;
        match h.save_rule_form(true).await {
            SaveOutcome::Error(e) => assert!(!e.trim().is_empty()),
            SaveOutcome::Saved(id) => panic!(
                "pattern {pattern:?} was accepted (rule {id:?}, status {:?})",
                h.browser.text_content("#status").await
            ),
        }
        assert!(
            h.rule_ids().await.is_empty(),
            "pattern {pattern:?} created a rule"
        );
    }

    // A secret with a line break in the middle, pasted as a person would:
    // copied to the clipboard and pasted with the keyboard, so the page gets
    // a real, trusted paste event. (A password input strips line breaks from
    // its value, so the only way one reaches the page is a paste, which the
    // page must refuse.) A script-made `ClipboardEvent` would not do in
    // Firefox: Gecko's `ClipboardEventInit` has no `clipboardData` member
    // (it takes `data` and `dataType` strings instead), so the page would
    // see an empty paste (seen in Firefox 153;
    // https://github.com/w3c/clipboard-apis/issues/33).
    h.browser.goto(&options).await;
    h.open_options().await;
    let api = h.origin("api.localhost", 0);
    h.fill_rule_form(&RuleSpec::bearer(&api, "")).await;
    let secret = "#rule-headers .header-row [data-field=secret]";
    // Control: the clipboard works, and a paste without a line break is
    // taken as is.
    h.browser.paste_into(secret, "abc-def").await;
    let value = h
        .browser
        .exec(&format!("return document.querySelector('{secret}').value;"))
        .await;
    assert_eq!(
        value.as_str(),
        Some("abc-def"),
        "control: a pasted secret without a line break should be taken"
    );
    h.browser.fill(secret, "").await;
    h.browser.paste_into(secret, "abc\ndef").await;
    let after = h
        .browser
        .exec(&format!("return document.querySelector('{secret}').value;"))
        .await;
    let refused = after.as_str() == Some("");
    let err_after_paste = h
        .browser
        .text_content("#rule-error")
        .await
        .unwrap_or_default();
    if refused {
        assert!(
            !err_after_paste.trim().is_empty(),
            "the page refused a pasted secret with a newline but #rule-error stayed empty"
        );
    }
    let outcome = json!({ "refused": refused, "value": after });
    let saved = h.save_rule_form(true).await;
    match saved {
        SaveOutcome::Error(e) => assert!(!e.trim().is_empty()),
        SaveOutcome::Saved(id) => panic!(
            "a secret pasted with a newline was accepted (rule {id:?}); paste outcome {outcome}, \
             #rule-error after paste {err_after_paste:?}"
        ),
    }
    assert!(
        h.rule_ids().await.is_empty(),
        "a secret with a newline created a rule"
    );

    // Control: a valid rule saves, and its header arrives.
    h.browser.goto(&options).await;
    h.add_rule(&RuleSpec::bearer(&api, "good-Jj15")).await;
    h.wait_header(&format!("{api}/x"), AUTH, Some("Bearer good-Jj15"))
        .await;
}

// ------------------------------------------------------- the tests

/// A rule for a site Tokenward holds no permission for is still saved
/// (nothing is lost while the browser's prompt is open, or if it is refused),
/// and the list says the permission is missing and offers the one-click
/// grant. A rule on a granted site says neither.
async fn missing_permission_is_shown_with_a_grant_button(engine: Engine) {
    let h = Harness::start(engine).await;
    let granted = h
        .add_rule(&RuleSpec::bearer(
            &h.origin("api.localhost", 0),
            "perm-ok-Kk16",
        ))
        .await;
    // 127.0.0.2 is loopback, so plain http needs no opt-in, but the test
    // build pre-grants only 127.0.0.1: this rule's permission is missing,
    // and headless browsers leave the prompt unanswered.
    let unpermitted = format!("http://127.0.0.2:{}", h.port(0));
    let missing = h
        .add_rule(&RuleSpec::bearer(&unpermitted, "perm-missing-Ll17"))
        .await;
    let state = |id: &str| {
        format!(
            "const li = document.querySelector('#rules li.rule[data-rule-id=\"{id}\"]'); \
             const grant = li && li.querySelector('[data-action=grant]'); \
             return li && grant ? li.getAttribute('data-permission') + '/' + (grant.hidden ? 'hidden' : 'shown') : null;"
        )
    };
    let seen = h
        .browser
        .wait_js(
            "the rule without permission to be marked missing, with its grant button",
            WAIT,
            &format!(
                "const s = (() => {{ {} }})(); return s === 'missing/shown' ? s : null;",
                state(&missing)
            ),
        )
        .await;
    assert_eq!(seen.as_str(), Some("missing/shown"));
    let other = h
        .browser
        .wait_js(
            "the granted rule's permission state",
            WAIT,
            &format!(
                "const s = (() => {{ {} }})(); return s && !s.startsWith('null') ? s : null;",
                state(&granted)
            ),
        )
        .await;
    assert_eq!(
        other.as_str(),
        Some("granted/hidden"),
        "a granted rule shows no grant button"
    );
}

// ------------------------------------------- who may use a header (same site)

/// The request a fixture page on `page_origin` makes, found by its marker.
async fn attack(
    h: &Harness,
    page_origin: &str,
    fixture: &str,
    target: &str,
    extra: &str,
) -> server::Recorded {
    let marker = h.server.marker(fixture);
    let target = with_marker(target, &marker);
    let page = format!(
        "{page_origin}/page/{fixture}?target={}{extra}",
        enc(&target)
    );
    h.browser.goto_nowait(&page).await;
    h.server.wait_marker(&marker, harness::REQUEST_WAIT).await
}

/// Another site's form posts to the API: top-level, and into a hidden frame
/// by POST and by GET. Each request as the server saw it, with what it is;
/// the kind of request is checked here, so a fixture that stopped working
/// cannot pass for a refused header.
async fn form_attacks(h: &Harness, evil: &str, api: &str) -> Vec<(String, server::Recorded)> {
    let mut out = Vec::new();
    let top = attack(h, evil, "form", &format!("{api}/transfer"), "&auto=1").await;
    assert_eq!(top.method, "POST", "{}", top.describe());
    out.push(("another site's top-level form post".to_owned(), top));
    for method in ["POST", "GET"] {
        let framed = attack(
            h,
            evil,
            "frame-form",
            &format!("{api}/transfer"),
            &format!("&method={method}"),
        )
        .await;
        assert_eq!(framed.method, method, "{}", framed.describe());
        assert_eq!(
            framed.header("sec-fetch-dest"),
            Some("iframe"),
            "{}",
            framed.describe()
        );
        out.push((
            format!("another site's {method} form into a hidden frame"),
            framed,
        ));
    }
    out
}

/// Fetches of the API from frames with an opaque origin (a `data:` URL, a
/// sandboxed frame) on another site: cors and no-cors, GET and POST.
async fn opaque_frame_attacks(
    h: &Harness,
    evil: &str,
    api: &str,
) -> Vec<(String, server::Recorded)> {
    let mut out = Vec::new();
    for frame in ["data", "sandbox"] {
        for method in ["GET", "POST"] {
            for mode in ["cors", "no-cors"] {
                let r = attack(
                    h,
                    evil,
                    "opaque",
                    &format!("{api}/steal"),
                    &format!("&frame={frame}&method={method}&mode={mode}"),
                )
                .await;
                assert_eq!(r.method, method, "{}", r.describe());
                out.push((format!("a {frame} frame's {mode} {method}"), r));
            }
        }
    }
    out
}

/// A same-site rule (the default) keeps its token out of another site's
/// form posts, top-level or into a hidden frame, POST or GET, as a
/// `SameSite=Lax` cookie is. The site's own form post gets it.
async fn same_site_refuses_cross_site_form_posts(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "csrf-Ss01").await;
    let api = h.origin("api.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    let own = attack(&h, &api, "form", &format!("{api}/own-post"), "&auto=1").await;
    assert_eq!(own.method, "POST", "{}", own.describe());
    assert_header(&own, AUTH, Some(&want), "the site's own form post");
    for (what, r) in form_attacks(&h, &evil, &api).await {
        assert_header(&r, AUTH, None, &what);
    }
}

/// Frames with an opaque origin (a `data:` URL, a sandboxed frame) on
/// another site fetch the API, cors and no-cors, GET and POST: none of these
/// requests carries the token.
async fn same_site_refuses_opaque_frames(engine: Engine) {
    let (h, _, _) = with_api_rule(engine, "opaque-Ss02").await;
    let api = h.origin("api.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    for (what, r) in opaque_frame_attacks(&h, &evil, &api).await {
        assert_header(&r, AUTH, None, &what);
    }
}

/// A link on another site, clicked, opens the API with its header (a safe
/// top-level navigation, as `SameSite=Lax` allows); the same site framed by
/// another site gets none.
async fn same_site_allows_links_but_not_frames(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "link-Ss03").await;
    let api = h.origin("api.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    let marker = h.server.marker("link");
    let target = with_marker(&format!("{api}/docs"), &marker);
    h.browser
        .goto(&format!("{evil}/page/link?target={}", enc(&target)))
        .await;
    h.browser.click("#link").await;
    let r = h.server.wait_marker(&marker, harness::REQUEST_WAIT).await;
    assert_eq!(
        r.header("sec-fetch-dest"),
        Some("document"),
        "{}",
        r.describe()
    );
    assert_header(&r, AUTH, Some(&want), "a link clicked on another site");

    let framed = h
        .probe_from(&evil, Kind::Iframe, &format!("{api}/embedded"))
        .await;
    assert_eq!(
        framed.header("sec-fetch-dest"),
        Some("iframe"),
        "{}",
        framed.describe()
    );
    assert_header(&framed, AUTH, None, "the site framed by another site");
    let own = h
        .probe_from(&api, Kind::Iframe, &format!("{api}/embedded"))
        .await;
    assert_header(&own, AUTH, Some(&want), "the site framing itself");
}

/// A site listed on the rule ("also from") may use its header; others may
/// not; and the rule list says so.
async fn same_site_companion_gets_header(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let app = h.origin("app.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    let id = h
        .add_rule(&RuleSpec {
            also_from: vec![&app],
            ..RuleSpec::bearer(&api, "companion-Ss04")
        })
        .await;
    let want = "Bearer companion-Ss04";
    h.wait_header(&format!("{api}/control"), AUTH, Some(want))
        .await;
    for kind in [Kind::Fetch, Kind::Xhr, Kind::Iframe] {
        let r = h.probe_from(&app, kind, &format!("{api}/from-app")).await;
        assert_header(
            &r,
            AUTH,
            Some(want),
            &format!("{kind:?} from the listed site"),
        );
        let r = h.probe_from(&evil, kind, &format!("{api}/from-evil")).await;
        assert_header(&r, AUTH, None, &format!("{kind:?} from an unlisted site"));
    }
    h.open_options().await;
    assert_eq!(
        h.rule_text(&id, "policy").await,
        "Same site, also from app.localhost"
    );
}

/// "Any site" restores matching by URL alone, and with it every attack the
/// same-site tests refuse: another site's form posts, top-level and into a
/// frame, its opaque frames' fetches and its frame of the site all carry
/// the token. This is also what keeps those tests honest: the same
/// requests, from the same pages, do reach the header rules. The editor
/// warns when "Any site" is chosen.
async fn any_site_allows_cross_site_use(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    h.open_options().await;
    assert!(!h
        .browser
        .find("#rule-any-site-warning")
        .await
        .is_displayed()
        .await
        .unwrap_or(true));
    h.browser.set_checked("#rule-any-site", true).await;
    h.browser.wait_visible("#rule-any-site-warning", WAIT).await;
    let warning = h.browser.text("#rule-any-site-warning").await;
    assert!(warning.contains("cross-site request forgery"), "{warning}");
    let id = h
        .add_rule(&RuleSpec {
            any_site: true,
            ..RuleSpec::bearer(&api, "any-Ss05")
        })
        .await;
    let want = "Bearer any-Ss05";
    h.wait_header(&format!("{api}/control"), AUTH, Some(want))
        .await;
    h.open_options().await;
    assert_eq!(
        h.rule_text(&id, "policy").await,
        "Any site may use these headers"
    );

    let mut attacks = form_attacks(&h, &evil, &api).await;
    attacks.extend(opaque_frame_attacks(&h, &evil, &api).await);
    for (what, r) in attacks {
        assert_header(&r, AUTH, Some(want), &format!("{what}, any site allowed"));
    }
    let framed = h
        .probe_from(&evil, Kind::Iframe, &format!("{api}/embedded"))
        .await;
    assert_header(&framed, AUTH, Some(want), "the site framed by another site");
}

/// `navigator.sendBeacon` from the covered site carries the header: Firefox
/// types it `beacon`, which a rule must list (Chromium types it `ping`).
async fn header_on_beacon(engine: Engine) {
    let (h, _, want) = with_api_rule(engine, "beacon-Ss06").await;
    let api = h.origin("api.localhost", 0);
    let r = attack(&h, &api, "beacon", &format!("{api}/beacon"), "").await;
    assert_eq!(r.method, "POST", "{}", r.describe());
    assert_header(&r, AUTH, Some(&want), "a beacon from the site");
}

/// The resource types the running browser's own schema lists are each
/// either compiled into every rule or excluded on purpose: a type the
/// browser adds later fails this test rather than silently going without
/// its header. Both browsers expose their schema's enum as
/// `declarativeNetRequest.ResourceType` (Chromium 156: 15 types, Firefox
/// ESR 153: 21).
async fn resource_types_cover_the_browser_schema(engine: Engine) {
    use tokenward_core::dnr::{Browser as Dialect, ResourceType};
    let h = Harness::start(engine).await;
    h.open_options().await;
    let exposed = h
        .browser
        .exec(
            "const t = (globalThis.browser ?? chrome).declarativeNetRequest.ResourceType;              return t ? Object.values(t) : null;",
        )
        .await;
    let known: Vec<String> = exposed
        .as_array()
        .unwrap_or_else(|| panic!("{engine:?} exposes no declarativeNetRequest.ResourceType"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(known.len() >= 10, "{engine:?}: the schema lists {known:?}");
    let dialect = match engine {
        Engine::Chromium => Dialect::Chromium,
        Engine::Firefox => Dialect::Firefox,
    };
    let name = |t: &ResourceType| {
        serde_json::to_value(t)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    let compiled: Vec<String> = dialect.resource_types().iter().map(name).collect();
    let excluded: Vec<String> = Dialect::EXCLUDED_RESOURCE_TYPES
        .iter()
        .map(|(t, _)| name(t))
        .collect();
    let missing: Vec<&String> = known
        .iter()
        .filter(|t| !compiled.contains(t) && !excluded.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "{engine:?} knows resource types no rule lists and none excludes on purpose: {missing:?}"
    );
    let unknown: Vec<&String> = compiled.iter().filter(|t| !known.contains(t)).collect();
    assert!(
        unknown.is_empty(),
        "{engine:?} would refuse every update: {unknown:?}"
    );
    eprintln!("{engine:?}: {} resource types, all compiled", known.len());
}

/// "Use in this tab only" from the popup: the header goes to the site in
/// that tab, in no other tab, and the rule ends when the tab closes.
async fn tab_only_rule_stays_in_its_tab(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let site = format!("{api}/page/plain?tab=1");
    h.browser.goto(&site).await;
    let site_tab = h.browser.current_tab().await;
    let tab = h.tab_id_via_new_tab(&site).await;
    let other_tab = h.browser.current_tab().await;
    assert_eq!(h.open_popup(tab).await, "uncovered");
    h.browser.click("#add-site").await;
    h.browser.fill("#add-secret", "tab-Ss07").await;
    h.browser.set_checked("#add-tab-only", true).await;
    h.browser.click("#add-save").await;
    h.wait_popup_state("covered").await;
    h.browser.wait_visible("#site-tab-rule", WAIT).await;
    let status = h.browser.text("#site-status").await;
    assert!(status.contains("this tab only"), "{status}");
    assert!(
        h.browser
            .find("#site-rule")
            .await
            .is_displayed()
            .await
            .map(|d| !d)
            .unwrap_or(false),
        "no rule of the book covers the site"
    );

    // In its tab: the header arrives.
    h.browser.switch_to(&site_tab).await;
    let r = h
        .wait_header(&format!("{api}/in-tab"), AUTH, Some("Bearer tab-Ss07"))
        .await;
    assert_eq!(r.hostname(), "api.localhost");
    // In the other tab: none.
    h.browser.switch_to(&other_tab).await;
    let r = h.probe(Kind::Fetch, &format!("{api}/other-tab")).await;
    assert_header(&r, AUTH, None, "the same site in another tab");
    // The rule is a session rule of that tab alone.
    h.browser
        .goto(&h.browser.extension_url("options.html"))
        .await;
    let rules = h
        .browser
        .exec_async(
            "return await (globalThis.browser ?? chrome).declarativeNetRequest.getSessionRules();",
        )
        .await;
    let rules = rules.as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 3, "{rules:?}");
    for rule in &rules {
        assert_eq!(rule["condition"]["tabIds"], json!([tab]), "{rule}");
    }
    assert!(
        h.rule_ids().await.is_empty(),
        "nothing was added to the rule book"
    );

    // Closing the tab ends it.
    h.browser.switch_to(&site_tab).await;
    h.browser
        .client
        .close_window()
        .await
        .expect("close the tab");
    h.browser.switch_to(&other_tab).await;
    let c = h.browser.client.clone();
    browser::poll("the tab's session rules to go with it", harness::RULE_WAIT, || {
        let c = c.clone();
        async move {
            let n = c
                .execute_async(
                    "const done = arguments[arguments.length - 1];                      (globalThis.browser ?? chrome).declarativeNetRequest.getSessionRules()                        .then((r) => done(r.length), (e) => done(String(e)));",
                    vec![],
                )
                .await
                .ok()?;
            (n.as_u64() == Some(0)).then_some(())
        }
    })
    .await;
}

// ------------------------------------------------- contrast, light and dark

/// Measures the current page in both colour schemes' turn (the caller set
/// it): every visible text at least 4.5:1 (3:1 large) on its real
/// background. Returns the lowest ratio.
async fn assert_contrast(h: &Harness, engine: Engine, dark: bool, state: &str) -> f64 {
    // A scheme switched while the page is open reaches it asynchronously
    // (Firefox's pref); wait for it, with a deadline.
    h.browser
        .wait_js(
            &format!(
                "the page to see prefers-color-scheme {}",
                if dark { "dark" } else { "light" }
            ),
            WAIT,
            &format!("return matchMedia('(prefers-color-scheme: dark)').matches === {dark};"),
        )
        .await;
    let report = h.text_contrast().await;
    assert_eq!(
        report["dark"],
        json!(dark),
        "{engine:?} {state}: the page does not see the colour scheme asked for"
    );
    let checked = report["checked"].as_u64().unwrap_or(0);
    assert!(
        checked >= 3,
        "{engine:?} {state}: only {checked} texts measured: {report}"
    );
    assert_eq!(
        report["failures"],
        json!([]),
        "{engine:?} {} {state}: text below the contrast WCAG asks for",
        if dark { "dark" } else { "light" }
    );
    let min = report["min"].as_f64().unwrap_or(0.0);
    let violations = h.axe_violations().await;
    eprintln!(
        "contrast: {engine:?} {} {state}: {checked} texts, lowest {min}:1; axe: {} violations",
        if dark { "dark" } else { "light" },
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{engine:?} {} {state}: axe found violations:\n{}",
        if dark { "dark" } else { "light" },
        violations.join("\n")
    );
    min
}

/// Every text of the popup and the options page, in the states a user
/// meets (a rule sending, one off, an uncovered site with the add form
/// open, the token shown once, a form error, the "any site" warning,
/// locked), is readable in light and in dark: at least 4.5:1 against the
/// background it is drawn on, measured in the real page (axe-core alone
/// assumes white behind a dark page).
async fn pages_are_readable_and_pass_axe_in_light_and_dark(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let off_site = h.origin("off.localhost", 0);
    h.add_rule(&RuleSpec::bearer(&api, "contrast-Cc01")).await;
    let off = h
        .add_rule(&RuleSpec {
            any_site: true,
            ..RuleSpec::bearer(&off_site, "contrast-Cc02")
        })
        .await;
    h.set_rule_enabled(&off, false).await;
    let pages = [
        ("sent", format!("{api}/page/plain?contrast=1")),
        ("off", format!("{off_site}/page/plain?contrast=2")),
        (
            "uncovered",
            format!("{}/page/plain?contrast=3", h.origin("plain.localhost", 0)),
        ),
    ];
    for (i, (_, url)) in pages.iter().enumerate() {
        if i > 0 {
            h.browser.new_tab().await;
        }
        h.browser.goto(url).await;
    }
    h.browser.new_tab().await;
    h.browser
        .goto(&h.browser.extension_url("options.html"))
        .await;
    let mut tabs = Vec::new();
    for (_, url) in &pages {
        tabs.push(h.browser.tab_id_for_url(url).await);
    }
    let mut lowest: Vec<(String, f64)> = Vec::new();
    for dark in [false, true] {
        let scheme = if dark { "dark" } else { "light" };
        h.browser.set_color_scheme(dark).await;
        // The options page, with its rules, a refused pattern's error and
        // the "any site" warning showing.
        h.browser
            .goto(&h.browser.extension_url("options.html"))
            .await;
        h.open_options().await;
        h.browser.set_color_scheme(dark).await;
        h.browser.fill("#rule-pattern", "*").await;
        h.browser.click("#rule-save").await;
        h.browser.wait_visible("#rule-error", WAIT).await;
        h.browser.set_checked("#rule-any-site", true).await;
        h.browser.wait_visible("#rule-any-site-warning", WAIT).await;
        let min = assert_contrast(
            &h,
            engine,
            dark,
            "options: rules, an error, the any-site warning",
        )
        .await;
        lowest.push((format!("{scheme} options"), min));
        for ((state, _), tab) in pages.iter().zip(&tabs) {
            assert!(!h.open_popup(*tab).await.is_empty());
            h.browser.set_color_scheme(dark).await;
            if *state == "uncovered" {
                h.browser.click("#add-site").await;
                h.browser.wait_visible("#add-form", WAIT).await;
                // The token a creation shows once, in its real styles: the
                // panel is shown with a stand-in value (creating one needs
                // a provider; tests/providers.rs does that).
                h.browser
                    .exec(
                        "document.getElementById('new-secret-value').textContent = 'tw_example_0123456789'; \
                         document.getElementById('new-secret').hidden = false; \
                         document.getElementById('tokens').hidden = false; return null;",
                    )
                    .await;
            }
            let min = assert_contrast(&h, engine, dark, &format!("popup: {state}")).await;
            lowest.push((format!("{scheme} popup {state}"), min));
        }
    }
    // Locked: a passphrase, then the lock, through the popup's messages.
    h.protect_and_lock("contrast passphrase 1").await;
    for dark in [false, true] {
        h.popup_in_scheme(
            tabs[0],
            dark,
            "the popup to say it is locked",
            "return document.querySelector('#site-status').dataset.sending === 'not-sent';",
        )
        .await;
        let min = assert_contrast(&h, engine, dark, "popup: locked").await;
        lowest.push((
            format!("{} popup locked", if dark { "dark" } else { "light" }),
            min,
        ));
    }
    eprintln!("contrast: {engine:?} lowest per state: {lowest:?}");
}

/// The options page is the full editor: rules grouped by site, each with
/// whether it sends and why not, a search, and "test a URL", whose answer
/// is the browser's (checked here against real requests).
async fn options_groups_rules_says_their_state_and_tests_urls(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let off_site = h.origin("off.localhost", 0);
    let evil = h.origin("evil.localhost", 0);
    h.add_rule(&RuleSpec::bearer(&api, "editor-Ee01")).await;
    let off = h
        .add_rule(&RuleSpec::bearer(&off_site, "editor-Ee02"))
        .await;
    h.set_rule_enabled(&off, false).await;
    h.open_options().await;
    let read = |js: &'static str| {
        let b = &h.browser;
        async move { b.exec(js).await }
    };
    h.browser
        .wait_js(
            "both rules' states",
            WAIT,
            "const s = [...document.querySelectorAll('#rules [data-role=state]')].map((e) => e.textContent); \
             return s.length === 2 && s.includes('Sending') && s.includes('Off') && s;",
        )
        .await;
    assert_eq!(
        read("return [...document.querySelectorAll('.rule-group h3')].map((e) => e.textContent);")
            .await,
        json!(["api.localhost", "off.localhost"])
    );
    // The search keeps what matches, and says when nothing does.
    h.browser.fill("#rule-search", "off.local").await;
    assert_eq!(
        read("return [...document.querySelectorAll('#rules li.rule')].filter((e) => !e.hidden).map((e) => e.dataset.ruleId);").await,
        json!([off])
    );
    h.browser.fill("#rule-search", "no such rule").await;
    h.browser.wait_visible("#rules-none-found", WAIT).await;
    h.browser.fill("#rule-search", "").await;

    // Test a URL: the user's own page load gets the header...
    let url = format!("{api}/v1/models");
    h.browser.fill("#test-url", &url).await;
    h.browser.click("#test-run").await;
    let got = h
        .browser
        .wait_js(
            "the URL test's answer",
            WAIT,
            "const s = document.getElementById('test-summary'); \
             return s.dataset.headers === '1' && document.getElementById('test-headers').textContent;",
        )
        .await;
    assert!(
        got.as_str()
            .unwrap_or_default()
            .contains("Authorization: Bearer"),
        "{got}"
    );
    // ...another site's fetch does not, and the page says why.
    h.browser.fill("#test-from", &evil).await;
    h.browser.select("#test-kind", "xmlhttprequest").await;
    h.browser.select("#test-method", "POST").await;
    h.browser.click("#test-run").await;
    let why = h
        .browser
        .wait_js(
            "the URL test's answer from another site",
            WAIT,
            "const s = document.getElementById('test-summary'); \
             return s.dataset.headers === '0' && document.getElementById('test-not-applied').textContent;",
        )
        .await;
    assert!(
        why.as_str().unwrap_or_default().contains("same site"),
        "{why}"
    );
    // The browser agrees on both.
    let own = h.probe(Kind::Fetch, &url).await;
    assert_header(
        &own,
        AUTH,
        Some("Bearer editor-Ee01"),
        "the site's own fetch",
    );
    let cross = h.probe_from(&evil, Kind::Fetch, &url).await;
    assert_header(&cross, AUTH, None, "another site's fetch");
}

// ------------------------------------------------------------- screenshots

/// Stores `state` as Tokenward's from the current extension page, as a
/// restore would: the background takes it from `storage.onChanged`. It is
/// stored whole under one key, the layout of schema 3 and older, which
/// still reads (and moves to a key per rule on its next save).
async fn seed_state(h: &Harness, state: &tokenward_core::store::State) {
    let value = state.encode();
    let answer = h
        .browser
        .exec_async(&format!(
            "await (globalThis.browser ?? chrome).storage.local.set({{ state: {value} }}); return true;"
        ))
        .await;
    assert_eq!(answer, json!(true));
}

/// A state with three logins' tokens in use: one valid, one expiring in 2
/// days, one expired, each sent to its own site.
fn screenshot_state(h: &Harness) -> tokenward_core::store::State {
    use tokenward_core::credential::{Credential, CredentialKind, Endpoint, Timestamp};
    use tokenward_core::header::Secret;
    use tokenward_core::protection::Protection;
    use tokenward_core::provider::Provider;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut state = tokenward_core::store::State {
        protection: Protection::Convenience,
        ..Default::default()
    };
    for (host, user, expires) in [
        ("api.localhost", "alice", None),
        ("soon.localhost", "bob", Some(now + 2 * 86_400)),
        ("old.localhost", "carol", Some(now - 86_400)),
    ] {
        let mut c = Credential::new(
            0,
            Provider::HuggingFace,
            Endpoint::default_for(Provider::HuggingFace).unwrap(),
            CredentialKind::PersonalAccessToken,
            Secret::from_input(&format!("hf_screenshot_token_{user}")).unwrap(),
        );
        c.info.account.user = Some(user.to_owned());
        c.info.expires = expires.map(Timestamp);
        let id = state.credentials.add(c).unwrap();
        let mut draft = scope::bearer_draft(
            &h.origin(host, 0),
            false,
            &format!("hf_screenshot_token_{user}"),
        );
        draft.headers[0].credential = Some(id);
        draft.label = format!("Hugging Face: {user}");
        state.book.save(&draft).unwrap();
    }
    state
}

/// Ports and dates change from run to run; the screenshots show fixed ones.
const NORMALIZE: &str = "const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); \
    for (let n = walk.nextNode(); n; n = walk.nextNode()) { \
      n.textContent = n.textContent.replace(/:\\d{4,5}\\b/g, ':8080').replace(/\\d{4}-\\d{2}-\\d{2}/g, '2030-01-01'); } \
    for (const i of document.querySelectorAll('input')) { \
      i.value = i.value.replace(/:\\d{4,5}\\b/g, ':8080'); } \
    return document.body.getBoundingClientRect().height;";

/// The current page's `body`, normalized, as a PNG, checked against the
/// stored one. Returns the page's height in CSS pixels.
async fn shoot(h: &Harness, engine: Engine, name: &str) -> f64 {
    // Each state shown is also readable and clean for axe, and says
    // everything through the catalogue.
    assert_contrast(h, engine, name.ends_with("-dark"), name).await;
    assert_words_from_catalogue(h, engine, "en", name).await;
    let height = h.browser.exec(NORMALIZE).await.as_f64().unwrap_or(0.0);
    // A frame for the edits to be painted.
    h.browser
        .exec_async("await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); return true;")
        .await;
    let body = h.browser.find("body").await;
    let png = body.screenshot().await.expect("a screenshot of the page");
    let differing = screenshot::check(engine, name, &png);
    eprintln!(
        "screenshot: {engine:?} {name}: {height:.0} px high, {:.2}% of pixels differ",
        differing * 100.0
    );
    height
}

/// Seeds [`screenshot_state`], waits for the options page (this tab) to
/// list its rules, and opens a tab on each of its sites: the popup's states
/// (uncovered, sending, expiring, expired), with their tab ids.
async fn open_screenshot_sites(h: &Harness, tag: &str) -> ([(&'static str, String); 4], Vec<i64>) {
    seed_state(h, &screenshot_state(h)).await;
    h.browser
        .goto(&h.browser.extension_url("options.html"))
        .await;
    h.browser
        .wait_js(
            "the seeded rules",
            WAIT,
            "return document.querySelectorAll('#rules li.rule').length === 3;",
        )
        .await;
    // Each rule's line says what the popup says of its site: the expiring
    // token's with its date (seeded to expire in 2 days a moment ago, maybe
    // before midnight) and the 7 days' warning, in any of the catalogue's
    // languages.
    h.browser
        .wait_js(
            "each rule's state line",
            WAIT,
            "const line = (host) => [...document.querySelectorAll('#rules li.rule')] \
               .find((li) => li.querySelector('[data-role=pattern]').textContent.includes(host)) \
               ?.querySelector('[data-role=state]'); \
             const soon = line('soon.localhost'); \
             const dated = (back) => soon.textContent.includes( \
               new Date(Date.now() + 2 * 86400e3 - back).toISOString().slice(0, 10)); \
             return line('api.localhost')?.dataset.state === 'sending' \
               && soon?.dataset.state === 'expiring' && (dated(0) || dated(600e3)) \
               && /(^|\\D)7(\\D|$)/.test(soon.textContent) \
               && line('old.localhost')?.dataset.state === 'held-back';",
        )
        .await;
    let sites = [
        (
            "uncovered",
            format!("{}/page/plain?{tag}=1", h.origin("plain.localhost", 0)),
        ),
        (
            "sending",
            format!("{}/page/plain?{tag}=2", h.origin("api.localhost", 0)),
        ),
        (
            "expiring",
            format!("{}/page/plain?{tag}=3", h.origin("soon.localhost", 0)),
        ),
        (
            "expired",
            format!("{}/page/plain?{tag}=4", h.origin("old.localhost", 0)),
        ),
    ];
    let options_tab = h.browser.current_tab().await;
    for (_, url) in &sites {
        h.browser.new_tab().await;
        h.browser.goto(url).await;
    }
    h.browser.switch_to(&options_tab).await;
    let mut tabs = Vec::new();
    for (_, url) in &sites {
        tabs.push(h.browser.tab_id_for_url(url).await);
    }
    (sites, tabs)
}

/// The popup in the states the user meets (first run, an uncovered site, a
/// site sending, one whose token expires soon, one whose token expired,
/// locked) and the options page, in light and dark, at fixed sizes,
/// compared with the stored screenshots (`tests/screenshots/`), each also
/// measured for contrast and checked by axe. The popup's main states fit
/// the browsers' 600 px popup.
async fn screenshots_match_the_stored_ones(engine: Engine) {
    let mut heights: Vec<(String, f64)> = Vec::new();
    // First run: a fresh profile, before the user chose how tokens are kept.
    {
        let profile = browser::OwnedProfile::new(engine);
        let h = Harness::start_on_profile(engine, profile.path()).await;
        h.browser
            .client
            .set_window_size(1024, 1400)
            .await
            .expect("window size");
        for dark in [false, true] {
            h.browser.set_color_scheme(dark).await;
            h.browser.goto(&h.browser.extension_url("popup.html")).await;
            h.browser.set_color_scheme(dark).await;
            h.browser
                .wait_js("the popup to render", WAIT, "return document.body.dataset.ready === 'true' && document.body.dataset.vault === 'unset';")
                .await;
            let name = format!("popup-first-run-{}", if dark { "dark" } else { "light" });
            heights.push((name.clone(), shoot(&h, engine, &name).await));
        }
    }
    let h = Harness::start(engine).await;
    h.browser
        .client
        .set_window_size(1024, 1400)
        .await
        .expect("window size");
    h.open_options().await;
    let (sites, tabs) = open_screenshot_sites(&h, "shot").await;
    for dark in [false, true] {
        let scheme = if dark { "dark" } else { "light" };
        h.browser.set_color_scheme(dark).await;
        h.open_options().await;
        h.browser.set_color_scheme(dark).await;
        h.browser
            .wait_js("the rules' states", WAIT, "return [...document.querySelectorAll('#rules [data-role=state]')].every((e) => e.textContent !== '');")
            .await;
        let name = format!("options-{scheme}");
        shoot(&h, engine, &name).await;
        for ((state, _), tab) in sites.iter().zip(&tabs) {
            h.browser.set_color_scheme(dark).await;
            h.open_popup(*tab).await;
            h.browser.set_color_scheme(dark).await;
            h.browser
                .wait_js("the popup to render", WAIT, "return document.body.dataset.ready === 'true' && !!document.querySelector('#site-status').dataset.sending;")
                .await;
            let name = format!("popup-{state}-{scheme}");
            heights.push((name.clone(), shoot(&h, engine, &name).await));
        }
    }
    // The popup's forms, not photographed: each also readable, clean for
    // axe and worded from the catalogue, in both schemes.
    for dark in [false, true] {
        let scheme = if dark { "dark" } else { "light" };
        h.popup_in_scheme(
            tabs[1],
            dark,
            "the popup",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
        h.browser.click("#show-login").await;
        h.browser.wait_visible("#login-form", WAIT).await;
        let state = format!("popup login form {scheme}");
        assert_contrast(&h, engine, dark, &state).await;
        assert_words_from_catalogue(&h, engine, "en", &state).await;
        h.browser.click("#login-cancel").await;
        h.browser.click("#credentials [data-action=use]").await;
        h.browser
            .wait_js(
                "the use form",
                WAIT,
                "return document.querySelector('#use').dataset.loaded === 'true' && !document.querySelector('#use').hidden;",
            )
            .await;
        let state = format!("popup use on a site {scheme}");
        assert_contrast(&h, engine, dark, &state).await;
        assert_words_from_catalogue(&h, engine, "en", &state).await;
    }
    h.protect_and_lock("screenshot passphrase").await;
    for dark in [false, true] {
        h.popup_in_scheme(
            tabs[1],
            dark,
            "the locked popup",
            "return document.body.dataset.vault === 'locked';",
        )
        .await;
        let name = format!("popup-locked-{}", if dark { "dark" } else { "light" });
        heights.push((name.clone(), shoot(&h, engine, &name).await));
    }
    eprintln!("screenshots: {engine:?} popup heights: {heights:?}");
    let too_tall: Vec<&(String, f64)> = heights.iter().filter(|(_, px)| *px > 600.0).collect();
    assert!(
        too_tall.is_empty(),
        "{engine:?}: popup states taller than the 600 px popup: {too_tall:?}"
    );
}

/// A catalogue's messages as patterns: each placeholder stands for one or
/// more characters. Messages that are only placeholders (a date, a header
/// line) would match anything and are left out.
fn message_patterns(language: &str) -> Vec<(String, Vec<String>)> {
    let path = format!(
        "{}/extension/_locales/{language}/messages.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let catalogue = tokenward_core::text::Catalogue::parse(
        &std::fs::read_to_string(&path).expect("the catalogue"),
    )
    .expect("a valid catalogue");
    catalogue
        .0
        .into_iter()
        .filter_map(|(name, message)| {
            let text = message.message.replace("$$", "\u{0}");
            let mut literals: Vec<String> = text
                .split('$')
                .step_by(2)
                .map(|l| l.replace('\u{0}', "$"))
                .collect();
            if text.split('$').count() % 2 == 0 {
                // An unpaired dollar sign: the whole message is literal.
                literals = vec![message.message.clone()];
            }
            literals
                .iter()
                .any(|l| l.chars().any(char::is_alphabetic))
                .then_some((name, literals))
        })
        .collect()
}

/// Whether `text` is `literals` with one or more characters between each
/// two of them.
fn fits(literals: &[String], text: &str) -> bool {
    match literals {
        [] => text.is_empty(),
        [only] => text == only,
        [first, rest @ ..] => {
            let Some(after) = text.strip_prefix(first.as_str()) else {
                return false;
            };
            // The placeholder takes at least one character; try each end.
            after
                .char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain(std::iter::once(after.len()))
                .filter(|i| *i > 0)
                .any(|i| fits(rest, &after[i..]))
        }
    }
}

/// Every word the page shows comes from `language`'s catalogue: a text no
/// message explains bypassed it (or is the user's data and lacks
/// `translate="no"`). Also: the page says which language it speaks.
async fn assert_words_from_catalogue(h: &Harness, engine: Engine, language: &str, state: &str) {
    let patterns = message_patterns(language);
    let words = h.words_on_page().await;
    assert!(words.len() >= 3, "{engine:?} {state}: only {words:?}");
    let stray: Vec<&(String, String)> = words
        .iter()
        .filter(|(_, text)| !patterns.iter().any(|(_, literals)| fits(literals, text)))
        .collect();
    assert!(
        stray.is_empty(),
        "{engine:?} {state} ({language}): words that no message of the catalogue explains: {stray:#?}"
    );
    let lang = h
        .browser
        .exec("return document.documentElement.lang;")
        .await;
    assert!(
        lang.as_str().is_some_and(|l| l.starts_with(language)),
        "{engine:?} {state}: <html lang> is {lang}, not {language}"
    );
}

/// The pages speak the browser's language: in a German browser every state
/// of the popup and the options page says everything in German (each word
/// from the German catalogue, as [`assert_words_from_catalogue`] checks),
/// and the longer German words still fit the popup without a sideways
/// scroll.
async fn pages_speak_the_browsers_language(engine: Engine) {
    let h = Harness::start_in_language(engine, "de").await;
    h.browser
        .client
        .set_window_size(1024, 1400)
        .await
        .expect("window size");
    let fits_popup = |state: &'static str| {
        let h = &h;
        async move {
            let size = h
                .browser
                .exec(
                    "const e = document.documentElement;                      return [e.scrollWidth, e.clientWidth, document.body.getBoundingClientRect().height];",
                )
                .await;
            let (scroll, client, height) = (
                size[0].as_f64().unwrap_or(0.0),
                size[1].as_f64().unwrap_or(0.0),
                size[2].as_f64().unwrap_or(0.0),
            );
            assert!(
                scroll <= client,
                "{engine:?} {state} (de): the popup scrolls sideways ({scroll} > {client} px)"
            );
            eprintln!("language: {engine:?} de {state}: {height:.0} px high");
            // A state, not a form opened in it, fits the 600 px popup.
            assert!(
                state == "uncovered" || height <= 600.0,
                "{engine:?} {state} (de): {height} px, taller than the 600 px popup"
            );
        }
    };
    // First run: the one question, in German.
    h.browser.goto(&h.browser.extension_url("popup.html")).await;
    h.browser
        .wait_js(
            "the first-run popup",
            WAIT,
            "return document.body.dataset.ready === 'true' && document.body.dataset.vault === 'unset';",
        )
        .await;
    assert_words_from_catalogue(&h, engine, "de", "popup first run").await;
    fits_popup("popup first run").await;
    h.choose_convenience().await;
    let (sites, tabs) = open_screenshot_sites(&h, "de").await;
    // The options page with its rules, a refused pattern's error, the
    // any-site warning and a URL test's answer.
    h.browser
        .wait_js(
            "the rules' states",
            WAIT,
            "const s = [...document.querySelectorAll('#rules [data-role=state]')];              return s.length === 3 && s.every((e) => e.textContent !== '');",
        )
        .await;
    h.browser.fill("#rule-pattern", "*").await;
    h.browser.click("#rule-save").await;
    h.browser.wait_visible("#rule-error", WAIT).await;
    h.browser.set_checked("#rule-any-site", true).await;
    h.browser.wait_visible("#rule-any-site-warning", WAIT).await;
    h.browser.fill("#test-url", &sites[1].1).await;
    h.browser.click("#test-run").await;
    h.browser
        .wait_js(
            "the URL test's answer",
            WAIT,
            "return document.querySelector('#test-summary').dataset.headers === '1';",
        )
        .await;
    assert_words_from_catalogue(&h, engine, "de", "options").await;
    for ((state, _), tab) in sites.iter().zip(&tabs) {
        h.open_popup(*tab).await;
        h.browser
            .wait_js(
                "the popup to render",
                WAIT,
                "return document.body.dataset.ready === 'true' && !!document.querySelector('#site-status').dataset.sending;",
            )
            .await;
        if *state == "uncovered" {
            h.browser.click("#add-site").await;
            h.browser.wait_visible("#add-form", WAIT).await;
        }
        assert_words_from_catalogue(&h, engine, "de", state).await;
        fits_popup(state).await;
    }
    h.protect_and_lock("Sprachtest Passphrase").await;
    h.open_popup(tabs[1]).await;
    h.browser
        .wait_js(
            "the locked popup",
            WAIT,
            "return document.body.dataset.ready === 'true' && document.body.dataset.vault === 'locked';",
        )
        .await;
    assert_words_from_catalogue(&h, engine, "de", "locked").await;
    fits_popup("locked").await;
}

/// The id of the focused element.
async fn focused(h: &Harness) -> String {
    h.browser
        .exec("return document.activeElement ? document.activeElement.id : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Presses Escape on the focused element, as a keyboard user does
/// (WebDriver's key U+E00C).
async fn press_escape(h: &Harness) {
    let active = h
        .browser
        .client
        .active_element()
        .await
        .expect("a focused element");
    active.send_keys("\u{E00C}").await.expect("press Escape");
}

/// Keyboard and assistive technology: an error is tied to its field and
/// takes the focus; repeated controls have names of their own; Escape
/// leaves an edit and closes the popup's form, returning the focus to what
/// opened it.
async fn errors_focus_and_escape_follow_the_keyboard(engine: Engine) {
    let h = Harness::start(engine).await;
    let a = h.origin("a.localhost", 0);
    let b = h.origin("b.localhost", 0);
    h.add_rule(&RuleSpec::bearer(&a, "kbd-Kk01")).await;
    let second = h.add_rule(&RuleSpec::bearer(&b, "kbd-Kk02")).await;
    h.open_options().await;
    let names = h
        .browser
        .exec(
            "return [...document.querySelectorAll('#rules [data-action=toggle], #rules [data-action=edit]')] \
             .map((e) => e.getAttribute('aria-label'));",
        )
        .await;
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((names.len(), unique.len()), (4, 4), "{names:?}");
    assert!(names.iter().any(|n| n.contains("b.localhost")), "{names:?}");

    // A refused pattern: the error is the field's, and the field has the focus.
    h.browser.fill("#rule-pattern", "*").await;
    h.browser.click("#rule-save").await;
    h.browser.wait_visible("#rule-error", WAIT).await;
    let field = h
        .browser
        .exec(
            "const f = document.getElementById('rule-pattern'); \
             return [f.getAttribute('aria-invalid'), f.getAttribute('aria-describedby')];",
        )
        .await;
    assert_eq!(field, json!(["true", "rule-error"]));
    assert_eq!(focused(&h).await, "rule-pattern");

    // Escape leaves an edit.
    h.browser
        .click(&format!(
            "li.rule[data-rule-id=\"{second}\"] [data-action=edit]"
        ))
        .await;
    h.browser
        .wait_js(
            "the form to edit the rule",
            WAIT,
            "return document.getElementById('rule-form').hasAttribute('data-editing-id') \
             && document.activeElement.id === 'rule-pattern';",
        )
        .await;
    press_escape(&h).await;
    h.browser
        .wait_js(
            "Escape to leave the edit",
            WAIT,
            "return !document.getElementById('rule-form').hasAttribute('data-editing-id') \
             && document.getElementById('rule-pattern').value === '';",
        )
        .await;

    // The popup's add form: opened, its secret field focused; Escape closes
    // it and gives the focus back to the button that opened it.
    let site = format!("{}/page/plain?kbd=1", h.origin("plain.localhost", 0));
    h.browser.goto(&site).await;
    let tab = h.tab_id_via_new_tab(&site).await;
    assert_eq!(h.open_popup(tab).await, "uncovered");
    h.browser.click("#add-site").await;
    h.browser.wait_visible("#add-form", WAIT).await;
    assert_eq!(focused(&h).await, "add-secret");
    press_escape(&h).await;
    h.browser
        .wait_js(
            "Escape to close the add form",
            WAIT,
            "return document.getElementById('add-form').hidden \
             && document.activeElement.id === 'add-site';",
        )
        .await;
}

/// Whether the browser's URL parser reads `url`: Firefox's refuses a host
/// whose punycode label does not decode to a valid label (`xn--pi-7ld` is
/// `pהi`, which IDNA's Bidi rule refuses). The core's `url` crate has no
/// Unicode tables to tell.
async fn parses_in_browser(h: &Harness, url: &str) -> bool {
    let script = format!("try {{ new URL({url:?}); return true; }} catch (e) {{ return false; }}");
    h.browser.exec(&script).await == json!(true)
}

/// The browser's own rule engine and the Rust matcher pick the same rules for
/// every URL of every tricky family in `tests/common/scope.rs`, plus random
/// ones, each asked as the user's own navigation and as requests from pages
/// of every kind (initiator, method, resource type): at least 18,000
/// requests against an overlapping rule set of same-site rules (some with
/// "also from" sites) and any-site rules. The rules go
/// in through the messages the options page sends; the browser answers
/// through `declarativeNetRequest.testMatchOutcome`, which the test build's
/// `declarativeNetRequestFeedback` permission unlocks.
async fn differential_scope_agrees_with_the_browser(engine: Engine) {
    use tokenward_core::pattern::with_ascii_host;
    use tokenward_core::rules::RuleBook;
    use tokenward_core::testing::PunycodeNames;

    const SEED: u64 = 0x7a11_5c0b_e5ee_d001;
    let h = Harness::start(engine).await;
    h.open_options().await;
    let mut book = RuleBook::default();
    for rule in scope::RULES {
        let draft = rule.draft();
        // The background makes a host typed in Unicode ASCII with the
        // browser's URL parser; the matcher reads it as the core's stand-in
        // writes it.
        let ascii = draft.clone().with_ascii_hosts(&PunycodeNames);
        let expected = book.save(&ascii).unwrap().id;
        let request = json!({"saveRule": {"draft": draft}});
        let answer = h
            .browser
            .exec_async(&format!(
                "return JSON.parse(await (globalThis.browser ?? chrome).runtime.sendMessage({request}));"
            ))
            .await;
        assert_eq!(
            answer["saved"],
            json!(expected),
            "saving {}: {answer}",
            rule.pattern
        );
    }

    let cases = scope::urls(SEED, 6_000);
    // The requests each URL stands for, as this browser presents them to
    // its rule engine: the user's own navigation and requests from pages
    // of every kind (`scope::requests`: initiators, methods, resource
    // types). Chromium matches a WebSocket handshake by its `ws(s)` URL;
    // Firefox presents it with its `http(s)` URL and never matches a
    // `ws(s)` URL at all (AdguardTeam/CoreLibs#1236; seen in Chromium 156
    // and Firefox 153 with real handshakes in `header_on_websocket_handshake`).
    let mut requests: Vec<(usize, String, scope::ScopeRequest)> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let url = match (engine, c.url.strip_prefix("ws")) {
            (Engine::Firefox, Some(rest)) => format!("http{rest}"),
            _ => c.url.clone(),
        };
        for request in scope::requests(&c.url, i) {
            requests.push((i, url.clone(), request));
        }
    }
    // What the matcher says, per request: the site rules that apply.
    let expected: Vec<Vec<u64>> = requests
        .iter()
        .map(|(_, url, r)| {
            // The browser presents a request with its host in ASCII.
            let url = with_ascii_host(url, &PunycodeNames);
            let facts = tokenward_core::initiator::RequestFacts {
                url: &url,
                initiator: r.initiator.as_deref(),
                method: tokenward_core::dnr::RequestMethod::parse(r.method),
                kind: serde_json::from_value(json!(r.kind)).unwrap(),
            };
            let mut ids: Vec<u64> = tokenward_core::matcher::applying_to(&book, &facts)
                .iter()
                .map(|r| u64::from(r.id))
                .collect();
            ids.sort_unstable();
            ids
        })
        .collect();
    let queries: Vec<Json> = requests
        .iter()
        .map(|(_, url, r)| {
            let mut q = json!({ "url": url, "type": r.kind, "method": r.method });
            if let Some(initiator) = &r.initiator {
                q["initiator"] = json!(initiator);
            }
            q
        })
        .collect();

    let mut answers: Vec<Json> = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(400) {
        let batch = h
            .browser
            .exec_async(&format!(
                "const dnr = (globalThis.browser ?? chrome).declarativeNetRequest;\n\
                 return await Promise.all({}.map((q) =>\n\
                   dnr.testMatchOutcome(q).then(\n\
                     (r) => r.matchedRules.map((m) => m.ruleId).sort((a, b) => a - b),\n\
                     (e) => 'refused: ' + (e && e.message))));",
                json!(chunk)
            ))
            .await;
        answers.extend(batch.as_array().cloned().unwrap_or_default());
    }
    assert_eq!(answers.len(), requests.len());

    let mut per_family: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let (mut compared, mut matched, mut refused) = (0, 0, 0);
    let (mut disagreements, mut known_differences): (Vec<String>, Vec<String>) =
        (Vec::new(), Vec::new());
    let mut refusals: Vec<String> = Vec::new();
    for (((i, _, request), want), got) in requests.iter().zip(&expected).zip(&answers) {
        let case = &cases[*i];
        // Chromium's testMatchOutcome lists a rule once per place its
        // urlFilter occurs in the URL (`https://h/?https://h/` reports the
        // rule twice; seen in Chromium 156). That is reporting, not scope:
        // the header is set once. Compare the sets. A URL the browser
        // refuses (`https://evil127.0.0.1/`, `https://a.[::1]/`) can never be
        // requested, so no rule applies to it.
        // The browser answers with browser rule ids; a site rule's page,
        // socket and navigation rules may all match one request.
        let got: Vec<u64> = match got.as_array() {
            Some(ids) => {
                let mut ids: Vec<u64> = ids
                    .iter()
                    .filter_map(Json::as_u64)
                    .map(|id| u64::from(tokenward_core::compile::site_rule_id(id as u32)))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            None => {
                refused += 1;
                if refusals.len() < 5 {
                    refusals.push(format!("{} {request:?}: {got}", case.url));
                }
                Vec::new()
            }
        };
        compared += 1;
        let entry = per_family.entry(case.family).or_default();
        entry.0 += 1;
        if !want.is_empty() {
            matched += 1;
            entry.1 += 1;
        }
        if *want != got {
            // The one difference between the browsers the matcher does not
            // model yet: a host whose punycode label does not decode
            // (`xn--pi-7ld`, which Firefox's URL parser refuses) is matched by
            // Chromium 156 and by the matcher, but not by Firefox 153. Either
            // way the header stays inside the wildcard the user named; only
            // Firefox's popup would call such a tab covered. Counted and
            // printed, never silent; issue 4 tracks teaching the matcher.
            if engine == Engine::Firefox
                && got.is_empty()
                && case.url.contains("xn--")
                && !parses_in_browser(&h, &case.url).await
            {
                known_differences.push(case.url.clone());
            } else {
                disagreements.push(format!(
                    "{} ({}) {request:?}: Rust {want:?}, browser {got:?}",
                    case.url, case.family
                ));
            }
        }
    }
    let summary = format!(
        "{engine:?}: {compared} requests compared ({matched} matched a rule; {refused} invalid to the browser, \
         first: {refusals:?}); per family (requests, matched): {per_family:?}; known browser differences: {known_differences:?}"
    );
    eprintln!("{summary}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements between the browser and the Rust matcher; first ones:\n{}\n{summary}",
        disagreements.len(),
        disagreements
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(compared >= 18_000, "{summary}");
}

/// A request a page's service worker makes carries the header: DNR acts on
/// worker requests, whose initiator is the page's origin. The page itself
/// never requests the target, so its arrival proves the worker sent it.
/// Plain `localhost` is a secure context in both browsers, which service
/// workers require.
async fn header_on_service_worker_fetch(engine: Engine) {
    let (h, _, want) = with_bearer_rule(
        engine,
        |h| h.origin("localhost", 0),
        |h| format!("{}/control", h.origin("localhost", 0)),
        "worker-Nn19",
    )
    .await;
    let site = h.origin("localhost", 0);
    let marker = h.server.marker("sw");
    let target = with_marker(&format!("{site}/from-worker"), &marker);
    h.browser
        .goto_nowait(&format!("{site}/page/sw?target={}", enc(&target)))
        .await;
    let r = h.server.wait_marker(&marker, harness::REQUEST_WAIT).await;
    assert_header(
        &r,
        AUTH,
        Some(&want),
        "a fetch from the page's service worker",
    );
}

/// A cross-origin fetch with a custom header is preflighted; the request
/// that follows the preflight carries the token when the page's site is
/// listed on the rule ("also from"): a web app calling its API on another
/// host. The page's origin is also under the test build's host
/// permissions, which DNR requires of the initiator of a non-navigation
/// request.
async fn header_on_preflighted_cross_origin_fetch(engine: Engine) {
    let h = Harness::start(engine).await;
    let api = h.origin("api.localhost", 0);
    let app = h.origin("app.localhost", 0);
    h.add_rule(&RuleSpec {
        also_from: vec![&app],
        ..RuleSpec::bearer(&api, "cors-Pp20")
    })
    .await;
    let want = "Bearer cors-Pp20";
    h.wait_header(&format!("{api}/control"), AUTH, Some(want))
        .await;
    let marker = h.server.marker("cors");
    let target = with_marker(&format!("{api}/cors"), &marker);
    let page = format!(
        "{app}/page/fetch?target={}&header={}",
        enc(&target),
        enc("X-Custom:1")
    );
    h.browser.goto_nowait(&page).await;
    let r = h.server.wait_marker(&marker, harness::REQUEST_WAIT).await;
    assert_header(&r, AUTH, Some(want), "the request after a CORS preflight");
    assert_eq!(r.header("x-custom"), Some("1"), "{}", r.describe());
    let preflighted = h
        .server
        .requests()
        .iter()
        .any(|q| q.method == "OPTIONS" && q.marker().as_deref() == Some(marker.as_str()));
    assert!(
        preflighted,
        "the custom header should have forced a preflight"
    );
}

/// Navigations whose URL puts the covered host in the user info never send
/// the token: `http://api.localhost:P@evil.localhost:P/` and the backslash
/// form both go to `evil.localhost`. Firefox asks the user to confirm a
/// navigation with user info ("You are about to log in to the site…"); the
/// test confirms it as a person would, so the request is really made.
async fn no_header_on_userinfo_navigations(engine: Engine) {
    let (h, _, _) = with_api_rule(engine, "userinfo-Qq21").await;
    let port = h.port(0);
    for (label, url) in [
        (
            "host in the user name",
            format!("http://api.localhost:{port}@evil.localhost:{port}/x"),
        ),
        (
            "backslash before @",
            format!("http://evil.localhost:{port}\\@api.localhost:{port}/x"),
        ),
    ] {
        let marker = h.server.marker("userinfo");
        h.browser.goto_nowait(&with_marker(&url, &marker)).await;
        let deadline = std::time::Instant::now() + harness::REQUEST_WAIT;
        let r = loop {
            if let Some(r) = h
                .server
                .requests()
                .into_iter()
                .find(|r| r.marker().as_deref() == Some(marker.as_str()))
            {
                break r;
            }
            // Firefox's confirmation prompt, if shown.
            let _ = h.browser.client.accept_alert().await;
            assert!(
                std::time::Instant::now() < deadline,
                "{label}: no request for {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            r.host.starts_with("evil.localhost"),
            "{label}: expected the request at evil.localhost: {}",
            r.describe()
        );
        assert_header(&r, AUTH, None, &format!("{label}: {url}"));
    }
}

in_both_browsers!(
    harness_fixtures_reach_the_server,
    header_on_top_level_navigation,
    header_on_fetch_and_rule_listed_masked,
    header_on_xhr,
    header_on_iframe,
    header_on_image,
    header_on_form_post,
    header_on_websocket_handshake,
    header_on_same_origin_redirect_second_hop,
    no_header_on_other_port,
    no_header_on_other_host,
    no_header_on_lookalike_hosts,
    header_on_a_host_typed_in_unicode,
    no_header_on_parent_domain,
    no_header_on_other_scheme,
    redirect_to_other_origin_drops_header,
    wildcard_covers_subdomains_only,
    path_prefix_matches_on_segment_boundary,
    live_toggle_stops_and_restores_header,
    live_edit_changes_value_and_empty_secret_keeps_it,
    live_delete_stops_header,
    rule_key_changed_from_outside_is_applied,
    popup_adds_rule_for_uncovered_site,
    popup_toggle_disables_covering_rule,
    basic_scheme_encodes_user_password,
    raw_custom_header_arrives_verbatim,
    two_headers_in_one_rule,
    remove_op_strips_page_header,
    bad_input_shows_error_and_creates_no_rule,
    missing_permission_is_shown_with_a_grant_button,
    differential_scope_agrees_with_the_browser,
    header_on_service_worker_fetch,
    header_on_preflighted_cross_origin_fetch,
    no_header_on_userinfo_navigations,
    same_site_refuses_cross_site_form_posts,
    same_site_refuses_opaque_frames,
    same_site_allows_links_but_not_frames,
    same_site_companion_gets_header,
    any_site_allows_cross_site_use,
    header_on_beacon,
    resource_types_cover_the_browser_schema,
    tab_only_rule_stays_in_its_tab,
    pages_are_readable_and_pass_axe_in_light_and_dark,
    errors_focus_and_escape_follow_the_keyboard,
    options_groups_rules_says_their_state_and_tests_urls,
    screenshots_match_the_stored_ones,
    pages_speak_the_browsers_language,
);
