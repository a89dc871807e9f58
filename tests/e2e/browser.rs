//! A real Chromium, driven over WebDriver (chromedriver + fantoccini), with
//! the extension under test loaded unpacked.
//!
//! The wrapper starts its own chromedriver on a free port with a fresh
//! profile directory, and on drop ends the session, kills chromedriver and
//! every browser process of that profile, and removes the profile. Every wait
//! is a polling loop with a deadline that panics saying what it awaited.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};
use sha2::{Digest as _, Sha256};

/// The default wait for anything in the browser.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Poll `f` until it yields `Some`, or panic after `timeout` saying `what`.
pub(crate) async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Chrome extension id for a manifest `key`: the first 32 hex digits of
/// sha256 of the decoded key, each digit 0-f written as a-p.
pub(crate) fn chrome_extension_id(key_b64: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .expect("manifest \"key\" is valid base64");
    let digest = Sha256::digest(&der);
    digest[..16]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| char::from(b'a' + n))
        .collect()
}

/// The id of the unpacked extension in `dir`, from its manifest's `key`.
pub(crate) fn extension_id_of(dir: &Path) -> String {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let manifest: Json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let key = manifest["key"].as_str().unwrap_or_else(|| {
        panic!(
            "{} has no \"key\": the test build must pin its id",
            path.display()
        )
    });
    chrome_extension_id(key)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn fresh_temp_dir(what: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tokenward-e2e-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

fn chromium_binary() -> String {
    for var in ["TOKENWARD_CHROMIUM", "CHROME_BIN"] {
        if let Ok(b) = std::env::var(var) {
            return b;
        }
    }
    for b in ["/usr/lib/chromium/chromium", "/usr/bin/chromium"] {
        if Path::new(b).exists() {
            return b.to_owned();
        }
    }
    panic!("no Chromium found: set TOKENWARD_CHROMIUM (or CHROME_BIN) to the browser binary");
}

fn chromedriver_binary() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

/// A running browser with the extension loaded.
#[derive(Debug)]
pub(crate) struct Browser {
    pub(crate) client: Client,
    /// The extension's id (`chrome-extension://<id>/`).
    pub(crate) extension_id: String,
    /// Dropped after `client`: ends the browser and cleans up.
    _procs: Processes,
}

/// What the browser started: cleaned up on drop, also when launch fails.
#[derive(Debug)]
struct Processes {
    driver: Option<tokio::process::Child>,
    driver_port: u16,
    session_id: Option<String>,
    temp: PathBuf,
}

impl Browser {
    /// Launch Chromium with the unpacked extension in `extension_dir` (the
    /// directory holding its manifest.json).
    pub(crate) async fn launch(extension_dir: &Path) -> Browser {
        let extension_dir = extension_dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("extension dir {}: {e}", extension_dir.display()));
        let extension_id = extension_id_of(&extension_dir);
        let temp = fresh_temp_dir("chrome");
        let profile = temp.join("profile");
        std::fs::create_dir_all(&profile).expect("create the profile dir");
        let driver_port = free_port();
        let driver_log = temp.join("chromedriver.log");

        let mut cmd = tokio::process::Command::new(chromedriver_binary());
        cmd.arg(format!("--port={driver_port}"))
            .arg(format!("--log-path={}", driver_log.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            // Its own process group: Drop kills the driver and the browser it
            // started together.
            .process_group(0);
        let driver = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver_binary()));

        // From here on, a panic drops `procs` and cleans up.
        let mut procs = Processes {
            driver: Some(driver),
            driver_port,
            session_id: None,
            temp,
        };

        let ext = extension_dir.display().to_string();
        let args = vec![
            "--headless=new".to_owned(),
            format!("--load-extension={ext}"),
            format!("--disable-extensions-except={ext}"),
            // Newer Chromium ignores --load-extension without this.
            "--disable-features=DisableLoadExtensionCommandLineSwitch".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1200,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = Capabilities::new();
        caps.insert("browserName".to_owned(), json!("chrome"));
        caps.insert("pageLoadStrategy".to_owned(), json!("none"));
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium_binary(), "args": args }),
        );

        let url = format!("http://127.0.0.1:{driver_port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(45),
                ClientBuilder::native()
                    .capabilities(caps.clone())
                    .connect(&url),
            )
            .await;
            match attempt {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) if Instant::now() < deadline => {
                    // chromedriver not listening yet, most likely.
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => panic!(
                    "could not start a browser session via chromedriver on {url}: {e}\n{}",
                    procs.driver_log_tail()
                ),
                Err(_) => panic!(
                    "starting a browser session timed out\n{}",
                    procs.driver_log_tail()
                ),
            }
        };
        procs.session_id = client.session_id().await.ok().flatten();
        let browser = Browser {
            client,
            extension_id,
            _procs: procs,
        };
        browser.wait_extension_loaded().await;
        browser
    }

    /// Poll until the extension's files are served, which proves it loaded.
    async fn wait_extension_loaded(&self) {
        let url = self.extension_url("manifest.json");
        self.client.goto(&url).await.expect("navigate");
        let c = self.client.clone();
        let id = self.extension_id.clone();
        let found = tokio::time::timeout(
            Duration::from_secs(20),
            poll("the extension's manifest.json to be served", WAIT, || {
                let c = c.clone();
                let url = url.clone();
                async move {
                    let body = c
                        .execute(
                            "return document.body ? document.body.innerText : ''",
                            vec![],
                        )
                        .await
                        .ok()?;
                    if body.as_str()?.contains("manifest_version") {
                        Some(())
                    } else {
                        // Retry the navigation: the extension may register late.
                        let _ = c.goto(&url).await;
                        None
                    }
                }
            }),
        )
        .await;
        if found.is_err() {
            panic!("the extension {id} did not load (manifest.json not served)");
        }
    }

    /// `chrome-extension://<id>/<path>`.
    pub(crate) fn extension_url(&self, path: &str) -> String {
        format!(
            "chrome-extension://{}/{}",
            self.extension_id,
            path.trim_start_matches('/')
        )
    }

    /// Start navigating to `url` and return at once (page load strategy none).
    pub(crate) async fn goto_nowait(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Navigate to `url` and wait until the document at that URL exists (not
    /// until it has loaded).
    pub(crate) async fn goto(&self, url: &str) {
        // Mark the current document, so that a navigation to the same URL
        // (a reload) is not mistaken for done while the old page is shown.
        let _ = self
            .client
            .execute("window.__tokenwardOld = true; return null;", vec![])
            .await;
        self.goto_nowait(url).await;
        let want = url::Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
        let c = self.client.clone();
        poll(&format!("the browser to be at {url}"), WAIT, || {
            let c = c.clone();
            let want = want.clone();
            async move {
                let v = c
                    .execute(
                        "return [location.href, window.__tokenwardOld === true]",
                        vec![],
                    )
                    .await
                    .ok()?;
                let href = url::Url::parse(v.get(0)?.as_str()?).ok()?;
                let old = v.get(1)?.as_bool()?;
                (href == want && !old).then_some(())
            }
        })
        .await;
    }

    /// The URL of the current document, via `location.href`.
    pub(crate) async fn current_url(&self) -> String {
        self.client
            .execute("return location.href", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Wait for an element matching `selector`.
    pub(crate) async fn wait_for_css(&self, selector: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(selector)).await {
                return e;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for an element `{selector}` on {}",
                    self.current_url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait for an element matching `selector` that is displayed.
    pub(crate) async fn wait_visible(&self, selector: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(selector)).await {
                if e.is_displayed().await.unwrap_or(false) {
                    return e;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for `{selector}` to be visible on {}",
                    self.current_url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `js` (a function body that returns a value) returns
    /// something truthy; return it.
    pub(crate) async fn wait_js(&self, what: &str, timeout: Duration, js: &str) -> Json {
        let c = self.client.clone();
        let js = js.to_owned();
        poll(what, timeout, || {
            let c = c.clone();
            let js = js.clone();
            async move {
                let v = c.execute(&js, vec![]).await.ok()?;
                let truthy = match &v {
                    Json::Null => false,
                    Json::Bool(b) => *b,
                    Json::Number(n) => n.as_f64() != Some(0.0),
                    Json::String(s) => !s.is_empty(),
                    _ => true,
                };
                truthy.then_some(v)
            }
        })
        .await
    }

    /// Find `selector` now (after a short wait for it to exist).
    pub(crate) async fn find(&self, selector: &str) -> Element {
        self.wait_for_css(selector, WAIT).await
    }

    /// Click the element `selector` (waits for it to exist).
    pub(crate) async fn click(&self, selector: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click `{selector}`: {err}"));
    }

    /// Replace the text of input `selector` with `text`, by typing.
    pub(crate) async fn fill(&self, selector: &str, text: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        fill_element(&e, text)
            .await
            .unwrap_or_else(|err| panic!("fill `{selector}`: {err}"));
    }

    /// Choose the option with `value` in select `selector`.
    pub(crate) async fn select(&self, selector: &str, value: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        e.select_by_value(value)
            .await
            .unwrap_or_else(|err| panic!("select {value} in `{selector}`: {err}"));
    }

    /// Make checkbox `selector` checked or not, by clicking it if needed.
    pub(crate) async fn set_checked(&self, selector: &str, checked: bool) {
        let e = self.wait_visible(selector, WAIT).await;
        let now = e.is_selected().await.unwrap_or(false);
        if now != checked {
            e.click()
                .await
                .unwrap_or_else(|err| panic!("click checkbox `{selector}`: {err}"));
        }
    }

    /// The rendered text of `selector` (waits for it to exist).
    pub(crate) async fn text(&self, selector: &str) -> String {
        let e = self.find(selector).await;
        e.text()
            .await
            .unwrap_or_else(|err| panic!("text of `{selector}`: {err}"))
    }

    /// `textContent` of `selector`, or `None` when there is no such element.
    pub(crate) async fn text_content(&self, selector: &str) -> Option<String> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(selector)],
            )
            .await
            .ok()?;
        v.as_str().map(str::to_owned)
    }

    /// Run `js` (a function body; `return` a value) in the current page.
    pub(crate) async fn exec(&self, js: &str) -> Json {
        self.client
            .execute(js, vec![])
            .await
            .unwrap_or_else(|e| panic!("executing script failed: {e}\nscript: {js}"))
    }

    /// Run `body` as the body of an async function in the current page and
    /// return what it returns (a rejected promise panics).
    pub(crate) async fn exec_async(&self, body: &str) -> Json {
        let script = format!(
            "const __done = arguments[arguments.length - 1];\n\
             (async () => {{\n{body}\n}})().then(\n\
               (v) => __done({{ ok: v === undefined ? null : v }}),\n\
               (e) => __done({{ err: String(e && e.stack || e) }}));"
        );
        let v = self
            .client
            .execute_async(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("executing async script failed: {e}\nscript: {body}"));
        if let Some(err) = v.get("err") {
            panic!("async script threw: {err}\nscript: {body}");
        }
        v.get("ok").cloned().unwrap_or(Json::Null)
    }

    /// Open a new tab, switch to it, and return its handle.
    pub(crate) async fn new_tab(&self) -> WindowHandle {
        let w = self.client.new_window(true).await.expect("open a new tab");
        self.client
            .switch_to_window(w.handle.clone())
            .await
            .expect("switch to the new tab");
        w.handle
    }

    /// The handle of the current tab.
    pub(crate) async fn current_tab(&self) -> WindowHandle {
        self.client.window().await.expect("current window handle")
    }

    /// Switch to tab `handle`.
    pub(crate) async fn switch_to(&self, handle: &WindowHandle) {
        self.client
            .switch_to_window(handle.clone())
            .await
            .expect("switch tab");
    }

    /// The browser's tab id (chrome.tabs) of the tab whose URL is `url`.
    /// The current tab must be an extension page.
    pub(crate) async fn tab_id_for_url(&self, url: &str) -> i64 {
        let want = url::Url::parse(url).expect("tab url").to_string();
        let c = self.client.clone();
        let js = "const __done = arguments[arguments.length - 1];\n\
                  chrome.tabs.query({}).then((tabs) => __done(tabs.map((t) => [t.id, t.url || t.pendingUrl || ''])),\n\
                  (e) => __done(String(e)));";
        poll(&format!("a browser tab showing {url}"), WAIT, || {
            let c = c.clone();
            let want = want.clone();
            async move {
                let tabs = c.execute_async(js, vec![]).await.ok()?;
                tabs.as_array()?.iter().find_map(|t| {
                    let id = t.get(0)?.as_i64()?;
                    let u = url::Url::parse(t.get(1)?.as_str()?).ok()?;
                    (u.as_str() == want).then_some(id)
                })
            }
        })
        .await
    }
}

async fn fill_element(e: &Element, text: &str) -> Result<(), fantoccini::error::CmdError> {
    e.clear().await?;
    if !text.is_empty() {
        e.send_keys(text).await?;
    }
    Ok(())
}

impl Processes {
    fn driver_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.temp.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("chromedriver log tail:\n{}", lines[start..].join("\n"))
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // Ask chromedriver to end the session (it quits the browser).
        if let Some(id) = &self.session_id {
            let _ = delete_session(self.driver_port, id);
        }
        // Kill the driver's process group (driver and browser).
        if let Some(child) = &self.driver {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        drop(self.driver.take());
        // Any browser process of our profile that left the group.
        kill_processes_using(&self.temp);
        if std::thread::panicking() {
            eprintln!("{}", self.driver_log_tail());
        }
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.temp).is_ok() || !self.temp.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn delete_session(port: u16, id: &str) -> std::io::Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    write!(
        s,
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // Read until the whole response is in: chromedriver may keep the
    // connection open, so EOF is not a signal.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

/// Kill (by pid) every process whose command line names `dir`: the browser
/// processes started for this test's own temp profile, and nothing else.
fn kill_processes_using(dir: &Path) {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
