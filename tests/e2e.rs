//! End-to-end tests: a real Chromium with the extension's test build, driven
//! through its real options page and popup, against a recording loopback
//! server that sees exactly what headers the browser sent.
//!
//! Run with `cargo xtask test`, or by hand:
//!
//! ```text
//! cargo xtask build
//! TOKENWARD_TEST_EXTENSION=target/test-extension CHROMEDRIVER=/usr/bin/chromedriver \
//!   cargo test --test e2e -- --ignored --test-threads=1
//! ```
//!
//! Every test starts its own server and browser, creates its rules through
//! the UI, and checks the server's record. Negative cases always make a
//! positive control request in the same browser first, so a broken injection
//! cannot make them pass.
// Native only: the browser driver and the server do not build for wasm32.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

#[path = "e2e/browser.rs"]
mod browser;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/server.rs"]
mod server;

use std::time::Duration;

use browser::WAIT;
use harness::{assert_header, with_marker, Harness, Header, Kind, RuleSpec, SaveOutcome};

const AUTH: &str = "authorization";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Start, add a bearer rule for `pattern` through the options page, and wait
/// until fetches to `control_url` carry it. Returns the harness, the rule id
/// and the expected header value.
async fn with_bearer_rule(
    pattern: impl Fn(&Harness) -> String,
    control_url: impl Fn(&Harness) -> String,
    token: &str,
) -> (Harness, String, String) {
    let h = Harness::start().await;
    let pattern = pattern(&h);
    let id = h.add_rule(&RuleSpec::bearer(&pattern, token)).await;
    let want = format!("Bearer {token}");
    h.wait_header(&control_url(&h), AUTH, Some(&want)).await;
    (h, id, want)
}

/// The header arrives on one request of `kind` to the covered origin.
async fn delivered_on(kind: Kind, token: &str) {
    let (h, _, want) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        token,
    )
    .await;
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn harness_fixtures_reach_the_server() {
    let h = Harness::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_top_level_navigation() {
    delivered_on(Kind::Nav, "nav-7Qw2").await;
}

/// Also checks that the options page lists the rule with a masked summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_fetch_and_rule_listed_masked() {
    let token = "fetch-Zx81-secretvalue";
    let h = Harness::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_xhr() {
    delivered_on(Kind::Xhr, "xhr-Pp31").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_iframe() {
    delivered_on(Kind::Iframe, "iframe-Lk09").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_image() {
    delivered_on(Kind::Img, "img-Ue55").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_form_post() {
    delivered_on(Kind::Form, "form-Hh72").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_websocket_handshake() {
    delivered_on(Kind::Ws, "ws-Rr16").await;
}

/// Both hops of a same-origin redirect carry the header, for fetch and for a
/// top-level navigation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn header_on_same_origin_redirect_second_hop() {
    let (h, _, want) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "redir-Ab12",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn no_header_on_other_port() {
    let (h, _, _) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "port-Qq01",
    )
    .await;
    for i in [1, 2] {
        let url = format!("{}/x", h.origin("api.localhost", i));
        let r = h.probe(Kind::Fetch, &url).await;
        assert_header(&r, AUTH, None, &format!("another port: {url}"));
        let r = h.probe(Kind::Nav, &url).await;
        assert_header(&r, AUTH, None, &format!("another port, navigation: {url}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn no_header_on_other_host() {
    let (h, _, _) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "host-Ww02",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn no_header_on_lookalike_hosts() {
    let (h, _, _) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "look-Ee03",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn no_header_on_parent_domain() {
    let (h, _, _) = with_bearer_rule(
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn no_header_on_other_scheme() {
    let h = Harness::start().await;
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn redirect_to_other_origin_drops_header() {
    let (h, _, want) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "redir-out-Uu06",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn wildcard_covers_subdomains_only() {
    let (h, _, want) = with_bearer_rule(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn path_prefix_matches_on_segment_boundary() {
    let (h, _, want) = with_bearer_rule(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn live_toggle_stops_and_restores_header() {
    let (h, id, want) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "toggle-Pp09",
    )
    .await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    h.set_rule_enabled(&id, false).await;
    h.wait_header(&url, AUTH, None).await;
    h.set_rule_enabled(&id, true).await;
    h.wait_header(&url, AUTH, Some(&want)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn live_edit_changes_value_and_empty_secret_keeps_it() {
    let (h, id, _) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "edit-old-Aa10",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn live_delete_stops_header() {
    let (h, id, _) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "delete-Cc11",
    )
    .await;
    let url = format!("{}/x", h.origin("api.localhost", 0));
    h.delete_rule(&id).await;
    assert!(h.rule_ids().await.is_empty(), "rules left after delete");
    h.wait_header(&url, AUTH, None).await;
}

// ------------------------------------------------------- popup

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn popup_adds_rule_for_uncovered_site() {
    let secret = "popup-Dd12-verysecret";
    let h = Harness::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn popup_toggle_disables_covering_rule() {
    let (h, _, want) = with_bearer_rule(
        |h| h.origin("api.localhost", 0),
        |h| format!("{}/control", h.origin("api.localhost", 0)),
        "ptoggle-Ff13",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn basic_scheme_encodes_user_password() {
    let h = Harness::start().await;
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
    })
    .await;
    h.wait_header(&format!("{api}/x"), AUTH, Some("Basic dXNlcjpwYXNz"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn raw_custom_header_arrives_verbatim() {
    let value = "yt_live.AbC-123=xyz/+~";
    let h = Harness::start().await;
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
    })
    .await;
    let r = h
        .wait_header(&format!("{api}/x"), "x-yatai-api-token", Some(value))
        .await;
    assert_header(&r, AUTH, None, "a raw-header rule adds no Authorization");
}

/// Two header rows in one rule both arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn two_headers_in_one_rule() {
    let h = Harness::start().await;
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
    })
    .await;
    let r = h
        .wait_header(&format!("{api}/x"), AUTH, Some("Bearer two-Gg14"))
        .await;
    assert_header(&r, "x-api-key", Some("key-Gg14"), "the second header row");
}

/// A `remove` row strips a header the page itself sends; the same header
/// still reaches an uncovered site (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn remove_op_strips_page_header() {
    let h = Harness::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real browser: run with cargo xtask test"]
async fn bad_input_shows_error_and_creates_no_rule() {
    let h = Harness::start().await;
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

    // A secret with a line break in the middle, pasted as a person would.
    // (A password input strips line breaks from its value, so the only way
    // one reaches the page is a paste, which the page must refuse.)
    h.browser.goto(&options).await;
    h.open_options().await;
    let api = h.origin("api.localhost", 0);
    h.fill_rule_form(&RuleSpec::bearer(&api, "")).await;
    let outcome = h
        .browser
        .exec(
            "const input = document.querySelector('#rule-headers .header-row [data-field=secret]');\n\
             input.focus();\n\
             const data = new DataTransfer();\n\
             data.setData('text/plain', 'abc\\ndef');\n\
             const ev = new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });\n\
             const notCancelled = input.dispatchEvent(ev);\n\
             if (notCancelled) { input.value = 'abc\\ndef'; input.dispatchEvent(new Event('input', { bubbles: true })); }\n\
             return { refused: !notCancelled, value: input.value };",
        )
        .await;
    let err_after_paste = h
        .browser
        .text_content("#rule-error")
        .await
        .unwrap_or_default();
    if outcome["refused"].as_bool() == Some(true) {
        assert!(
            !err_after_paste.trim().is_empty(),
            "the page refused a pasted secret with a newline but #rule-error stayed empty"
        );
    }
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
