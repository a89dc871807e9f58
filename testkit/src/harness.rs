//! One test's world: the recording server, a browser with the extension, and
//! helpers that drive the extension's real options page and popup through
//! their DOM (the selectors of the UI contract) and make requests from pages.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value as Json};

use crate::browser::{poll, Browser, Engine, WAIT};
use crate::server::{Recorded, Server};

/// How long a rule change may take to reach the network.
pub const RULE_WAIT: Duration = Duration::from_secs(15);
/// How long one request may take to reach the server.
pub const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// The kind of request a probe makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A top-level navigation of the tab to the target.
    Nav,
    Fetch,
    Xhr,
    Iframe,
    Img,
    /// A POST form submitted by clicking its button.
    Form,
    /// A WebSocket handshake (target is `ws://`).
    Ws,
}

impl Kind {
    fn fixture(self) -> &'static str {
        match self {
            Kind::Nav => "plain",
            Kind::Fetch => "fetch",
            Kind::Xhr => "xhr",
            Kind::Iframe => "iframe",
            Kind::Img => "img",
            Kind::Form => "form",
            Kind::Ws => "ws",
        }
    }
}

/// One header row of a rule.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    pub name: &'a str,
    /// `bearer`, `basic`, `token`, `raw` or `remove`.
    pub scheme: &'a str,
    pub secret: &'a str,
}

impl<'a> Header<'a> {
    pub fn bearer(secret: &'a str) -> Self {
        Header {
            name: "Authorization",
            scheme: "bearer",
            secret,
        }
    }
}

/// What to type into the options page's rule form.
#[derive(Clone, Debug)]
pub struct RuleSpec<'a> {
    pub pattern: &'a str,
    pub label: &'a str,
    pub allow_http: bool,
    pub headers: Vec<Header<'a>>,
    /// "Any site" instead of the default "Same site".
    pub any_site: bool,
    /// "Also from these sites", one per line.
    pub also_from: Vec<&'a str>,
}

impl<'a> RuleSpec<'a> {
    /// A rule for `pattern` sending `Authorization: Bearer <secret>`.
    pub fn bearer(pattern: &'a str, secret: &'a str) -> Self {
        RuleSpec {
            pattern,
            label: "e2e",
            allow_http: false,
            headers: vec![Header::bearer(secret)],
            any_site: false,
            also_from: Vec::new(),
        }
    }
}

/// The outcome of pressing save in the rule form.
#[derive(Debug)]
pub enum SaveOutcome {
    /// Saved; the rule's `data-rule-id`.
    Saved(String),
    /// `#rule-error` showed this text.
    Error(String),
}

#[derive(Debug)]
pub struct Harness {
    pub browser: Browser,
    pub server: Server,
}

/// A harness whose browser was shut down ([`Harness::stop`]): the server
/// runs on, and the profile the test owns is closed on disk.
#[derive(Debug)]
pub struct Stopped {
    pub server: Server,
    engine: Engine,
    profile: PathBuf,
}

impl Stopped {
    /// The profile directory, as the browser left it.
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// Start the browser again on the same profile, with the same extension
    /// at the same id or UUID, beside the same server.
    pub async fn resume(self) -> Harness {
        let started = Instant::now();
        let Stopped {
            server,
            engine,
            profile,
        } = self;
        let browser = Browser::launch_on_profile(engine, &extension_dir(engine), &profile).await;
        eprintln!(
            "e2e: {} up again in {:?} on profile {}",
            engine.name(),
            started.elapsed(),
            profile.display()
        );
        Harness { browser, server }
    }
}

/// The directory of the unpacked test build for `engine`:
/// `$TOKENWARD_TEST_EXTENSION/{chrome,firefox}`.
pub fn extension_dir(engine: Engine) -> PathBuf {
    let root = std::env::var("TOKENWARD_TEST_EXTENSION").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-extension"),
        PathBuf::from,
    );
    let dir = root.join(engine.build_dir());
    assert!(
        dir.join("manifest.json").exists(),
        "no {} test build at {}: run `cargo xtask build` (or set TOKENWARD_TEST_EXTENSION \
         to a dir holding {}/manifest.json)",
        engine.name(),
        dir.display(),
        engine.build_dir()
    );
    dir
}

/// `url` with `m=<marker>` appended to its query.
pub fn with_marker(url: &str, marker: &str) -> String {
    let mut u = url::Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
    let q = match u.query() {
        Some(q) if !q.is_empty() => format!("{q}&m={marker}"),
        _ => format!("m={marker}"),
    };
    u.set_query(Some(&q));
    u.to_string()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `scheme://host:port` of `url`, with ws mapped to http.
fn page_origin_for(url: &str) -> String {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
    let scheme = match u.scheme() {
        "ws" => "http",
        "wss" => "https",
        s => s,
    };
    let host = u.host_str().expect("url has a host");
    match u.port() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Assert that `r` carries header `name` with exactly `want` (or lacks it
/// when `want` is `None`).
#[track_caller]
pub fn assert_header(r: &Recorded, name: &str, want: Option<&str>, context: &str) {
    let got = r.header_all(name);
    let ok = match want {
        None => got.is_empty(),
        Some(w) => got == [w],
    };
    assert!(
        ok,
        "{context}: expected header `{name}` to be {}, got {}\nrequest: {}",
        want.map_or("absent".to_owned(), |w| format!("`{w}`")),
        if got.is_empty() {
            "none".to_owned()
        } else {
            format!("{got:?}")
        },
        r.describe()
    );
}

impl Harness {
    /// Start the server (3 ports) and `engine` with its test build.
    /// The extension keeps no token until the user chose how (a passphrase,
    /// or none), so this chooses convenience, as a user would in the popup:
    /// the tests that start here are about rules, not the vault
    /// (tests/vault.rs starts unchosen, with [`Harness::start_on_profile`]).
    pub async fn start(engine: Engine) -> Harness {
        let started = Instant::now();
        let server = Server::start(3).await;
        let browser = Browser::launch(engine, &extension_dir(engine)).await;
        eprintln!(
            "e2e: {} up in {:?} (extension at {})",
            engine.name(),
            started.elapsed(),
            browser.extension_base
        );
        let h = Harness { browser, server };
        h.choose_convenience().await;
        h
    }

    /// Start the server and `engine` with its interface in `language`
    /// ([`Browser::launch_in_language`]), at the first run: nothing chosen
    /// yet.
    pub async fn start_in_language(engine: Engine, language: &str) -> Harness {
        let server = Server::start(3).await;
        let browser = Browser::launch_in_language(engine, &extension_dir(engine), language).await;
        Harness { browser, server }
    }

    /// Tells the background to keep tokens without a passphrase, the
    /// popup's *Keep tokens without a passphrase*, through the same message.
    pub async fn choose_convenience(&self) {
        self.open_options().await;
        let answer = self
            .browser
            .exec_async(
                "const api = globalThis.browser ?? chrome; \
                 return JSON.parse(await api.runtime.sendMessage({ useConvenience: {} }));",
            )
            .await;
        assert_eq!(
            answer["mode"], "convenience",
            "choosing convenience mode failed: {answer}"
        );
    }

    /// Protects the tokens with `passphrase`, then locks, through the
    /// messages the popup sends (the vault's own flows are tests/vault.rs's).
    pub async fn protect_and_lock(&self, passphrase: &str) {
        let answer = self
            .browser
            .exec_async(&format!(
                "const api = globalThis.browser ?? chrome; \
                 await api.runtime.sendMessage({{ protect: {{ passphrase: {}, idleMinutes: null }} }}); \
                 return JSON.parse(await api.runtime.sendMessage('lock'));",
                json!(passphrase)
            ))
            .await;
        assert_eq!(answer["locked"], json!(true), "{answer}");
    }

    /// Opens the popup of tab `tab` with pages seeing `prefers-color-scheme`
    /// dark (or light), and waits until the page says `ready` (a script
    /// returning true).
    pub async fn popup_in_scheme(&self, tab: i64, dark: bool, what: &str, ready: &str) {
        self.browser.set_color_scheme(dark).await;
        self.open_popup(tab).await;
        self.browser.set_color_scheme(dark).await;
        self.browser.wait_js(what, WAIT, ready).await;
    }

    /// [`Harness::start`] with the browser on `profile`, a directory the
    /// test owns ([`crate::browser::OwnedProfile`]); see
    /// [`Browser::launch_on_profile`].
    pub async fn start_on_profile(engine: Engine, profile: &Path) -> Harness {
        let started = Instant::now();
        let server = Server::start(3).await;
        let browser = Browser::launch_on_profile(engine, &extension_dir(engine), profile).await;
        eprintln!(
            "e2e: {} up in {:?} on profile {} (extension at {})",
            engine.name(),
            started.elapsed(),
            profile.display(),
            browser.extension_base
        );
        Harness { browser, server }
    }

    /// [`Harness::start_on_profile`], with `prepare` run between the
    /// server's start and the browser's, knowing the server's ports (to
    /// write a browser policy naming them), and nothing chosen for tokens.
    pub async fn start_on_profile_with(
        engine: Engine,
        profile: &Path,
        prepare: impl FnOnce(&Server),
    ) -> Harness {
        let server = Server::start(3).await;
        prepare(&server);
        let browser = Browser::launch_on_profile(engine, &extension_dir(engine), profile).await;
        Harness { browser, server }
    }

    /// Shut the browser down the normal way ([`Browser::quit`]) and keep the
    /// server: the profile is on disk and no process has it open, to be
    /// scanned, until [`Stopped::resume`]. Only for a harness from
    /// [`Harness::start_on_profile`].
    pub async fn stop(self) -> Stopped {
        let Harness { browser, server } = self;
        let engine = browser.engine;
        let profile = browser
            .owned_profile()
            .unwrap_or_else(|| {
                panic!("Harness::stop needs a harness from Harness::start_on_profile")
            })
            .to_owned();
        browser.quit().await;
        Stopped {
            server,
            engine,
            profile,
        }
    }

    /// [`Harness::stop`], then [`Stopped::resume`]: the browser starts again
    /// on the same profile with the same extension; the server, its ports
    /// and its record stay.
    pub async fn restart(self) -> Harness {
        self.stop().await.resume().await
    }

    pub fn port(&self, i: usize) -> u16 {
        self.server.port(i)
    }

    /// `http://<host>:<port i>`.
    pub fn origin(&self, host: &str, port_index: usize) -> String {
        format!("http://{host}:{}", self.port(port_index))
    }

    // ---------------------------------------------------------------- probes

    /// Make one request of `kind` to `url` (a marker is added) from a fixture
    /// page on the target's own origin, and return it as the server saw it.
    pub async fn probe(&self, kind: Kind, url: &str) -> Recorded {
        let origin = page_origin_for(url);
        self.probe_from(&origin, kind, url).await
    }

    /// Like [`Harness::probe`], with the fixture page on `page_origin`.
    pub async fn probe_from(&self, page_origin: &str, kind: Kind, url: &str) -> Recorded {
        let marker = self.server.marker(kind.fixture());
        let target = with_marker(url, &marker);
        self.request(page_origin, kind, &target).await;
        self.server.wait_marker(&marker, REQUEST_WAIT).await
    }

    /// Start a request of `kind` to `target` exactly as given (no marker
    /// added) from a fixture page on `page_origin`; does not wait for it.
    pub async fn request(&self, page_origin: &str, kind: Kind, target: &str) {
        let b = &self.browser;
        match kind {
            Kind::Nav => b.goto_nowait(target).await,
            Kind::Form => {
                let page = format!(
                    "{page_origin}/page/form?target={}&pm={}",
                    enc(target),
                    self.server.marker("page")
                );
                b.goto(&page).await;
                b.click("#submit").await;
            }
            _ => {
                let page = format!(
                    "{page_origin}/page/{}?target={}&pm={}",
                    kind.fixture(),
                    enc(target),
                    self.server.marker("page")
                );
                b.goto_nowait(&page).await;
            }
        }
    }

    /// Fetch `url` (with extra request headers) from a fixture page on its
    /// own origin; return the request as the server saw it.
    pub async fn probe_fetch_with_headers(&self, url: &str, headers: &[(&str, &str)]) -> Recorded {
        let marker = self.server.marker("fetchh");
        let target = with_marker(url, &marker);
        let mut page = format!(
            "{}/page/fetch?target={}&pm={}",
            page_origin_for(url),
            enc(&target),
            self.server.marker("page")
        );
        for (n, v) in headers {
            page.push_str(&format!("&header={}", enc(&format!("{n}:{v}"))));
        }
        self.browser.goto_nowait(&page).await;
        self.server.wait_marker(&marker, REQUEST_WAIT).await
    }

    /// Repeat fetch probes to `url` until header `name` is `want` (rule
    /// changes apply asynchronously); panic with the last request seen.
    pub async fn wait_header(&self, url: &str, name: &str, want: Option<&str>) -> Recorded {
        self.wait_header_kind(Kind::Fetch, url, name, want).await
    }

    /// [`Harness::wait_header`] with a given request kind.
    pub async fn wait_header_kind(
        &self,
        kind: Kind,
        url: &str,
        name: &str,
        want: Option<&str>,
    ) -> Recorded {
        let deadline = Instant::now() + RULE_WAIT;
        loop {
            let r = self.probe(kind, url).await;
            let got = r.header_all(name);
            let ok = match want {
                None => got.is_empty(),
                Some(w) => got == [w],
            };
            if ok {
                return r;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {RULE_WAIT:?} waiting for {kind:?} requests to {url} to carry \
                     `{name}` {}; the last one carried {}\nrequest: {}",
                    want.map_or("absent".to_owned(), |w| format!("= `{w}`")),
                    if got.is_empty() {
                        "none".to_owned()
                    } else {
                        format!("{got:?}")
                    },
                    r.describe()
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    // ---------------------------------------------------------- options page

    /// Navigate the current tab to the options page (unless it is there) and
    /// wait until the page has started: its script has reset the form (which
    /// adds the first header row; the static HTML has none) and rendered the
    /// rule list (a `li.rule`, or `#rules-empty` shown). Typing into the form
    /// before that would be wiped by the reset, and the list read before
    /// that would be empty.
    pub async fn open_options(&self) {
        let url = self.browser.extension_url("options.html");
        if self.browser.current_url().await != url {
            self.browser.goto(&url).await;
        }
        // The page marks <body data-ready> once it rendered the background's
        // answer; typing before that would be undone by the first render.
        // Right after navigating, the previous document may still be the
        // current one, so check it is the options page.
        let started = "return location.pathname.endsWith('/options.html') \
             && !!document.body && document.body.dataset.ready === 'true';";
        let deadline = Instant::now() + WAIT;
        loop {
            let ok = self
                .browser
                .client
                .execute(started, vec![])
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {WAIT:?} waiting for the options page to render \
                     (body[data-ready]); #status says {:?}",
                    self.browser.text_content("#status").await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `data-rule-id`s of `#rules li.rule`, in order (opens the options
    /// page in the current tab if it is not there).
    pub async fn rule_ids(&self) -> Vec<String> {
        self.open_options().await;
        let v = self
            .browser
            .exec(
                "return Array.from(document.querySelectorAll('#rules li.rule'))\
                 .map((li) => li.getAttribute('data-rule-id'));",
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// CSS selector of the rule `li` with `id`.
    pub fn rule_li(id: &str) -> String {
        format!("#rules li.rule[data-rule-id=\"{id}\"]")
    }

    /// Text of `[data-role=role]` in rule `id`.
    pub async fn rule_text(&self, id: &str, role: &str) -> String {
        let sel = format!("{} [data-role={role}]", Self::rule_li(id));
        self.browser
            .text_content(&sel)
            .await
            .unwrap_or_else(|| panic!("no element `{sel}` on the options page"))
            .trim()
            .to_owned()
    }

    /// Fill the rule form with `spec` (does not save). Header rows beyond
    /// `spec.headers` are removed; missing ones are added with `#add-header`.
    pub async fn fill_rule_form(&self, spec: &RuleSpec<'_>) {
        let b = &self.browser;
        b.fill("#rule-pattern", spec.pattern).await;
        b.fill("#rule-label", spec.label).await;
        b.set_checked("#rule-allow-http", spec.allow_http).await;
        // The list first: "any site" disables it.
        b.set_checked("#rule-same-site", true).await;
        b.fill("#rule-also-from", &spec.also_from.join("\n")).await;
        if spec.any_site {
            b.set_checked("#rule-any-site", true).await;
        }
        // Make the number of header rows match.
        let rows_sel = "#rule-headers .header-row";
        let count = |b: &Browser| {
            let c = b.client.clone();
            async move {
                c.find_all(Locator::Css(rows_sel))
                    .await
                    .map(|v| v.len())
                    .unwrap_or(0)
            }
        };
        let mut n = count(b).await;
        while n < spec.headers.len() {
            b.click("#add-header").await;
            let want = n + 1;
            let c = b.client.clone();
            poll("a new header row after #add-header", WAIT, || {
                let c = c.clone();
                async move {
                    let k = c.find_all(Locator::Css(rows_sel)).await.ok()?.len();
                    (k >= want).then_some(())
                }
            })
            .await;
            n = count(b).await;
        }
        while n > spec.headers.len() {
            let rows = b
                .client
                .find_all(Locator::Css(rows_sel))
                .await
                .expect("rows");
            let last = rows.last().expect("a header row");
            last.find(Locator::Css("[data-action=remove-header]"))
                .await
                .expect("[data-action=remove-header] in a header row")
                .click()
                .await
                .expect("click remove-header");
            let want = n - 1;
            let c = b.client.clone();
            poll("a header row to go after remove-header", WAIT, || {
                let c = c.clone();
                async move {
                    let k = c.find_all(Locator::Css(rows_sel)).await.ok()?.len();
                    (k <= want).then_some(())
                }
            })
            .await;
            n = count(b).await;
        }
        let rows = b
            .client
            .find_all(Locator::Css(rows_sel))
            .await
            .expect("rows");
        for (row, h) in rows.iter().zip(&spec.headers) {
            let field = |f: &'static str| async move {
                row.find(Locator::Css(&format!("[data-field={f}]")))
                    .await
                    .unwrap_or_else(|e| panic!("[data-field={f}] in a header row: {e}"))
            };
            field("scheme")
                .await
                .select_by_value(h.scheme)
                .await
                .unwrap_or_else(|e| panic!("select scheme {}: {e}", h.scheme));
            let name = field("name").await;
            name.clear().await.expect("clear header name");
            name.send_keys(h.name).await.expect("type header name");
            let secret = field("secret").await;
            let usable = secret.is_displayed().await.unwrap_or(false)
                && secret.is_enabled().await.unwrap_or(false);
            if usable {
                secret.clear().await.expect("clear secret");
                if !h.secret.is_empty() {
                    secret.send_keys(h.secret).await.expect("type secret");
                }
            } else if h.scheme != "remove" {
                panic!(
                    "the secret field of a `{}` header row is hidden or disabled",
                    h.scheme
                );
            }
        }
    }

    /// Press `#rule-save` and wait for the outcome: a non-empty
    /// `#rule-error`, or else, when `creating`, a new `li.rule` in the list,
    /// and when editing, a `#status` line.
    pub async fn save_rule_form(&self, creating: bool) -> SaveOutcome {
        let b = &self.browser;
        let before = self.rule_ids().await;
        // Clear the last outcome so a new one can be seen, even if its text
        // is the same as before.
        b.exec(
            "for (const s of ['#status', '#rule-error']) { const e = document.querySelector(s); \
             if (e) e.textContent = ''; } return null;",
        )
        .await;
        b.click("#rule-save").await;
        let script = format!(
            "const before = {};\n\
             const text = (s) => {{ const e = document.querySelector(s); return e ? e.textContent.trim() : ''; }};\n\
             const ids = Array.from(document.querySelectorAll('#rules li.rule')).map((li) => li.getAttribute('data-rule-id'));\n\
             return {{ error: text('#rule-error'), status: text('#status'), added: ids.filter((id) => !before.includes(id)) }};",
            json!(before)
        );
        let deadline = Instant::now() + WAIT;
        loop {
            let v = b
                .client
                .execute(&script, vec![])
                .await
                .unwrap_or(Json::Null);
            let error = v["error"].as_str().unwrap_or("");
            let status = v["status"].as_str().unwrap_or("");
            let added = v["added"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Json::as_str);
            if !error.is_empty() {
                return SaveOutcome::Error(error.to_owned());
            }
            match (creating, added) {
                (_, Some(id)) => return SaveOutcome::Saved(id.to_owned()),
                // The page says "Saved" only once the background answered,
                // and it answers after the browser accepted the rule update.
                (false, None) if status.starts_with("Saved") => {
                    return SaveOutcome::Saved(String::new())
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {WAIT:?} waiting for #rule-save to {}: #rule-error is \
                     empty, #status says {status:?}, rules before {before:?}, now {:?}. If the \
                     pattern needs a host permission the test build does not pre-grant, the \
                     page waits on a permission prompt that a headless browser never answers.",
                    if creating {
                        "add a li.rule or show #rule-error"
                    } else {
                        "show #status or #rule-error"
                    },
                    self.rule_ids().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Create a rule through the options page; return its id. Panics if the
    /// page shows an error.
    pub async fn add_rule(&self, spec: &RuleSpec<'_>) -> String {
        self.open_options().await;
        self.fill_rule_form(spec).await;
        match self.save_rule_form(true).await {
            SaveOutcome::Saved(id) => id,
            SaveOutcome::Error(e) => {
                panic!("saving rule {spec:?} failed; #rule-error says: {e}")
            }
        }
    }

    /// Set rule `id`'s enable checkbox.
    pub async fn set_rule_enabled(&self, id: &str, enabled: bool) {
        self.open_options().await;
        let sel = format!("{} input[data-action=toggle]", Self::rule_li(id));
        self.browser.set_checked(&sel, enabled).await;
        let c = self.browser.client.clone();
        poll(&format!("`{sel}` to be checked={enabled}"), WAIT, || {
            let c = c.clone();
            let sel = sel.clone();
            async move {
                let e = c.find(Locator::Css(&sel)).await.ok()?;
                (e.is_selected().await.ok()? == enabled).then_some(())
            }
        })
        .await;
    }

    /// Load rule `id` into the form with its edit button, set the secret of
    /// header row 0 to `secret`, and save.
    pub async fn edit_rule_secret(&self, id: &str, secret: &str) {
        self.open_options().await;
        let b = &self.browser;
        b.click(&format!("{} [data-action=edit]", Self::rule_li(id)))
            .await;
        b.wait_js(
            "the edit button to load the rule into #rule-pattern",
            WAIT,
            "const e = document.querySelector('#rule-pattern'); return e && e.value.trim();",
        )
        .await;
        let row = b
            .wait_for_css("#rule-headers .header-row [data-field=secret]", WAIT)
            .await;
        row.clear().await.expect("clear secret");
        if !secret.is_empty() {
            row.send_keys(secret).await.expect("type secret");
        }
        match self.save_rule_form(false).await {
            SaveOutcome::Error(e) => panic!("editing rule {id} failed; #rule-error says: {e}"),
            SaveOutcome::Saved(new) => {
                assert!(
                    new.is_empty(),
                    "editing rule {id} created a new rule {new} instead of updating it"
                );
            }
        }
    }

    /// Delete rule `id` (delete, then confirm-delete) and wait for its li to go.
    pub async fn delete_rule(&self, id: &str) {
        self.open_options().await;
        let b = &self.browser;
        let li = Self::rule_li(id);
        b.click(&format!("{li} [data-action=delete]")).await;
        b.click(&format!("{li} [data-action=confirm-delete]")).await;
        let c = b.client.clone();
        poll(&format!("`{li}` to disappear after delete"), WAIT, || {
            let c = c.clone();
            let li = li.clone();
            async move { c.find(Locator::Css(&li)).await.is_err().then_some(()) }
        })
        .await;
    }

    /// Every word the page shows a person or assistive technology: its
    /// visible text nodes, the options of its visible selects, the
    /// `aria-label`, `placeholder` and `title` of its visible elements, and
    /// its title, each with where it is. Text inside `translate="no"` is the
    /// user's or the world's (a site, a header, a name) and left out.
    pub async fn words_on_page(&self) -> Vec<(String, String)> {
        let found = self
            .browser
            .exec(
                r#"
const out = [];
const seen = (el) => el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0;
const data = (el) => !!el.closest('[translate="no"]');
const where = (el) => el.id ? '#' + el.id : el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + (el.dataset.role ? '[' + el.dataset.role + ']' : '') + (el.dataset.action ? '[' + el.dataset.action + ']' : '');
const letters = /\p{L}/u;
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walk.nextNode(); n; n = walk.nextNode()) {
  const el = n.parentElement;
  const text = n.textContent.trim();
  if (!letters.test(text) || el.closest('script, style, template, option') || data(el) || !seen(el)) continue;
  out.push([where(el), text]);
}
for (const select of document.querySelectorAll('select')) {
  if (!seen(select) || data(select)) continue;
  for (const o of select.options) if (!data(o) && letters.test(o.text)) out.push([where(select) + ' option', o.text.trim()]);
}
for (const el of document.querySelectorAll('[aria-label], [placeholder], [title]')) {
  if (!seen(el) || data(el)) continue;
  for (const a of ['aria-label', 'placeholder', 'title']) {
    const v = el.getAttribute(a);
    if (v && letters.test(v)) out.push([where(el) + ' @' + a, v]);
  }
}
if (document.title) out.push(['title', document.title]);
return out;
"#,
            )
            .await;
        found
            .as_array()
            .expect("a list of words")
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap_or_default().to_owned(),
                    pair[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Measures every visible text of the current page against the
    /// background it is really drawn on (the nearest opaque background up
    /// the tree, translucent layers blended over it, the page's own canvas
    /// colour at the root), with the element's opacity, as WCAG 2.2's
    /// contrast ratio. Disabled controls are exempt, as WCAG exempts them.
    /// Returns `{dark, checked, min, failures}`: `dark` is what
    /// `prefers-color-scheme` matches on the page; a failure is text under
    /// 4.5:1 (3:1 when large: 24px, or 18.66px bold).
    pub async fn text_contrast(&self) -> Json {
        self.browser
            .exec(
                r#"
const parse = (c) => {
  let m = c.match(/^rgba?\(([^)]*)\)/);
  if (m) { const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
  m = c.match(/^color\(srgb ([^)]*)\)/);
  if (m) { const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number); return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
  return null;
};
const over = (top, bottom) => { const a = top[3]; return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]); };
const probe = document.createElement('div');
probe.style.background = 'Canvas';
document.documentElement.appendChild(probe);
const canvas = parse(getComputedStyle(probe).backgroundColor) || [255, 255, 255, 1];
probe.remove();
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = canvas;
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return bg;
};
const luminance = (c) => {
  const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const opacity = (el) => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
const owns = (el) => {
  if (el.matches('input[type=text], input[type=password], input[type=number], input[type=date], textarea')) return el.value.trim() !== '';
  if (el.matches('select')) return true;
  return [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
};
let checked = 0, min = Infinity;
const failures = [];
for (const el of document.body.querySelectorAll('*')) {
  if (['SCRIPT', 'STYLE', 'TEMPLATE', 'OPTION'].includes(el.tagName) || el.closest('template')) continue;
  if (!owns(el) || el.getClientRects().length === 0) continue;
  const style = getComputedStyle(el);
  if (style.visibility !== 'visible' || el.closest(':disabled, [aria-hidden=true]')) continue;
  const bg = background(el);
  const fg0 = parse(style.color);
  const fg = over([fg0[0], fg0[1], fg0[2], fg0[3] * opacity(el)], bg);
  const r = ratio(fg, bg);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const needed = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
  checked++;
  min = Math.min(min, r);
  if (r < needed) {
    failures.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + String(el.className).split(' ').join('.') : ''} "${(el.value || el.textContent).trim().slice(0, 40)}": ${r.toFixed(2)}:1 < ${needed} (text ${style.color} on ${bg.map(Math.round).slice(0, 3)})`);
  }
}
return { dark: matchMedia('(prefers-color-scheme: dark)').matches, checked, min: Math.round(min * 100) / 100, failures };
"#,
            )
            .await
    }

    /// Runs axe-core (the script `TOKENWARD_AXE` names, which `cargo xtask
    /// test` installs at a pinned version) on the current page, every
    /// WCAG 2.x A and AA rule and axe's best practices, and returns its
    /// violations as `rule: n nodes (first target)` lines. axe's own
    /// colour-contrast rule is left to [`Harness::text_contrast`], which
    /// measures against the real background in dark mode too.
    pub async fn axe_violations(&self) -> Vec<String> {
        let path = std::env::var("TOKENWARD_AXE").unwrap_or_else(|_| {
            format!(
                "{}/.tools/npm/node_modules/axe-core/axe.min.js",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        let script = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core at {path}: {e}; run the suite with cargo xtask test")
        });
        // Injected through WebDriver, which extension pages' CSP does not
        // govern; the page's own scripts are untouched.
        self.browser
            .exec(&format!("{script}\n;return typeof axe === 'object';"))
            .await;
        let result = self
            .browser
            .exec_async(
                "const r = await axe.run(document, { \
                   runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] }, \
                   rules: { 'color-contrast': { enabled: false } }, resultTypes: ['violations'] }); \
                 return r.violations.map((v) => `${v.id}: ${v.nodes.length} node(s), e.g. ${JSON.stringify(v.nodes[0].target)} (${v.help})`);",
            )
            .await;
        result
            .as_array()
            .unwrap_or_else(|| panic!("axe did not run: {result}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    // ----------------------------------------------------------------- popup

    /// Open a new tab on an extension page and find the browser's tab id of the
    /// tab showing `url`. Leaves the new tab current.
    pub async fn tab_id_via_new_tab(&self, url: &str) -> i64 {
        self.browser.new_tab().await;
        self.browser
            .goto(&self.browser.extension_url("options.html"))
            .await;
        self.browser.wait_for_css("body", WAIT).await;
        self.browser.tab_id_for_url(url).await
    }

    /// Navigate the current tab to `popup.html?tabId=<tab>` and wait for it
    /// to settle on a state.
    pub async fn open_popup(&self, tab: i64) -> String {
        let url = self
            .browser
            .extension_url(&format!("popup.html?tabId={tab}"));
        self.browser.goto(&url).await;
        self.popup_state().await
    }

    /// Wait for `#site-status[data-state]` to be set; return it.
    pub async fn popup_state(&self) -> String {
        let v = self
            .browser
            .wait_js(
                "#site-status to have a data-state",
                WAIT,
                "const e = document.querySelector('#site-status'); \
                 return e && e.getAttribute('data-state');",
            )
            .await;
        v.as_str().unwrap_or("").to_owned()
    }

    /// Wait for `#site-status[data-state=<state>]`.
    pub async fn wait_popup_state(&self, state: &str) {
        self.browser
            .wait_js(
                &format!("#site-status[data-state={state}]"),
                RULE_WAIT,
                &format!("return !!document.querySelector('#site-status[data-state={state}]');"),
            )
            .await;
    }

    /// The action badge text of `tab`; the current tab must be an extension
    /// page.
    pub async fn badge_text(&self, tab: i64) -> String {
        let v = self
            .browser
            .exec_async(&format!(
                "return await chrome.action.getBadgeText({{ tabId: {tab} }});"
            ))
            .await;
        v.as_str().unwrap_or("").to_owned()
    }

    /// Poll until the badge of `tab` reads `want`.
    pub async fn wait_badge(&self, tab: i64, want: &str) {
        let deadline = Instant::now() + RULE_WAIT;
        loop {
            let got = self.badge_text(tab).await;
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {RULE_WAIT:?} waiting for the badge of tab {tab} to read \
                     {want:?}; it reads {got:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Panic if `secret` appears anywhere in the current page's DOM: markup,
    /// text, or any form field's value.
    pub async fn assert_secret_not_in_dom(&self, secret: &str, page: &str) {
        let v = self
            .browser
            .exec(
                "return { html: document.documentElement.outerHTML, \
                 text: document.body ? document.body.innerText : '', \
                 values: Array.from(document.querySelectorAll('input, textarea, select')) \
                   .map((e) => (e.id || e.name || e.getAttribute('data-field') || e.tagName) + '=' + e.value) };",
            )
            .await;
        let html = v["html"].as_str().unwrap_or("");
        let text = v["text"].as_str().unwrap_or("");
        assert!(
            !html.contains(secret) && !text.contains(secret),
            "the secret {secret:?} appears in the {page} DOM:\n{html}"
        );
        let values: Vec<&str> = v["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let leaking: Vec<&&str> = values.iter().filter(|s| s.contains(secret)).collect();
        assert!(
            leaking.is_empty(),
            "the secret {secret:?} is still the value of a form field in the {page}: {leaking:?}"
        );
    }
}
