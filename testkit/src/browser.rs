//! A real browser, Chromium or Firefox, driven over WebDriver (chromedriver
//! or geckodriver, through fantoccini), with the extension's test build
//! loaded.
//!
//! The wrapper starts its own driver on a free port with a fresh profile
//! directory, and on drop ends the session, kills the driver and every
//! browser process of that profile, and removes the profile. Every wait is a
//! polling loop with a deadline that panics saying what it awaited.
//!
//! A test that needs the profile to outlive the browser (a restart, a look
//! at what the browser wrote to disk) makes an [`OwnedProfile`], launches
//! with [`Browser::launch_on_profile`], and ends with [`Browser::quit`] or
//! [`Browser::restart`], which shut the browser down the normal way.
//!
//! What differs between the two browsers is kept in this file, each
//! difference with its source:
//!
//! | | Chromium | Firefox |
//! |---|---|---|
//! | loading the extension | `--load-extension` | geckodriver's `POST /session/{id}/moz/addon/install`, as a temporary add-on |
//! | its pages | `chrome-extension://<id from the manifest "key">/` | `moz-extension://<uuid pinned by a pref>/` |
//! | the test build's host permissions | granted at install | granted at install since Firefox 127 (see [`firefox_prefs`]) |
//! | opening extension pages over WebDriver | allowed | needs geckodriver `--allow-system-access` since Firefox 153 |
//! | keeping off the network | command-line switches | prefs ([`firefox_prefs`]) |
//! | a profile the test owns | `--user-data-dir` | `-profile`, the add-on installed again each launch, its storage kept by [`persistent_profile_prefs`] |

/// Makes each listed case `async fn case(engine: Engine)` into two ignored
/// tokio tests, `chromium::case` and `firefox::case`, so a failure names the
/// browser and `-- --ignored firefox::` runs one browser's. A case left out
/// of the list is dead code, which clippy and rustc report. The suite needs
/// tokio as a dev-dependency, for `#[tokio::test]`.
#[macro_export]
macro_rules! in_both_browsers {
    ($($case:ident),* $(,)?) => {
        mod chromium {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "real browser (Chromium): run with cargo xtask test"]
                async fn $case() {
                    super::$case($crate::browser::Engine::Chromium).await;
                }
            )*
        }
        mod firefox {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "real browser (Firefox): run with cargo xtask test"]
                async fn $case() {
                    super::$case($crate::browser::Engine::Firefox).await;
                }
            )*
        }
    };
}

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};
use sha2::{Digest as _, Sha256};

/// The default wait for anything in the browser.
pub const WAIT: Duration = Duration::from_secs(15);

/// The browser a test runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
        }
    }

    /// The subdirectory of the test build (`target/test-extension/<dir>`).
    pub fn build_dir(self) -> &'static str {
        match self {
            Engine::Chromium => "chrome",
            Engine::Firefox => "firefox",
        }
    }

    fn driver_name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromedriver",
            Engine::Firefox => "geckodriver",
        }
    }
}

/// Poll `f` until it yields `Some`, or panic after `timeout` saying `what`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
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
pub fn chrome_extension_id(key_b64: &str) -> String {
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

/// The parsed `manifest.json` of the unpacked extension in `dir`.
fn manifest_of(dir: &Path) -> Json {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The Chrome id of the unpacked extension in `dir`, from its manifest's `key`.
pub fn extension_id_of(dir: &Path) -> String {
    let key = manifest_of(dir)["key"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!(
                "{}/manifest.json has no \"key\": the test build must pin its id",
                dir.display()
            )
        });
    chrome_extension_id(&key)
}

/// The Firefox add-on id of the unpacked extension in `dir`
/// (`browser_specific_settings.gecko.id`).
pub fn gecko_id_of(dir: &Path) -> String {
    manifest_of(dir)["browser_specific_settings"]["gecko"]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!(
                "{}/manifest.json has no browser_specific_settings.gecko.id: Firefox needs a \
                 fixed add-on id to pin the extension's UUID",
                dir.display()
            )
        })
}

/// The extension's internal UUID in Firefox, pinned with the pref
/// `extensions.webextensions.uuids`, so that its pages are at
/// `moz-extension://<this>/`. Any fixed UUID would do: each launch has a
/// fresh profile. The pref is a JSON object from add-on id to UUID, read by
/// `UUIDMap` in Firefox's `Extension.sys.mjs`, which uses the UUID it finds
/// and generates one only for an id it lacks.
const FIREFOX_EXTENSION_UUID: &str = "0b5e2f4c-6a1d-4c3e-9f2a-7d8e1b2c3a4f";

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
    if let Ok(b) = std::env::var("TOKENWARD_CHROMIUM") {
        return b;
    }
    for b in ["/usr/lib/chromium/chromium", "/usr/bin/chromium"] {
        if Path::new(b).exists() {
            return b.to_owned();
        }
    }
    panic!("no Chromium found: set TOKENWARD_CHROMIUM to the browser binary");
}

fn chromedriver_binary() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned())
}

/// The Firefox binary itself, not a wrapper script: `TOKENWARD_FIREFOX`, else
/// Debian's Firefox ESR.
pub(crate) fn firefox_binary() -> String {
    if let Ok(b) = std::env::var("TOKENWARD_FIREFOX") {
        return b;
    }
    for b in [
        "/usr/lib/firefox-esr/firefox-esr",
        "/usr/lib/firefox/firefox",
    ] {
        if Path::new(b).exists() {
            return b.to_owned();
        }
    }
    panic!("no Firefox found: set TOKENWARD_FIREFOX to the browser binary");
}

/// `GECKODRIVER`, else `geckodriver` on `PATH`, else `~/.cargo/bin/geckodriver`
/// (where `cargo install geckodriver` puts it).
fn geckodriver_binary() -> String {
    if let Ok(b) = std::env::var("GECKODRIVER") {
        return b;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("geckodriver"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return p.display().to_string();
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cargo/bin/geckodriver");
        if p.is_file() {
            return p.display().to_string();
        }
    }
    panic!("no geckodriver found: set GECKODRIVER, put it on PATH, or `cargo install geckodriver`");
}

/// The prefs of the Firefox profile (written to its `user.js` by
/// geckodriver). geckodriver and Marionette already set their own
/// automation prefs (updates, telemetry upload, remote settings, safe
/// browsing, captive portal: geckodriver's `src/prefs.rs` and Marionette's
/// `RecommendedPreferences.sys.mjs`,
/// <https://firefox-source-docs.mozilla.org/remote/Prefs.html>); these are
/// what the suite needs on top, each for a reason.
pub fn firefox_prefs(gecko_id: &str) -> Json {
    json!({
        // The extension's UUID, so its pages have a known address.
        "extensions.webextensions.uuids": json!({ gecko_id: FIREFOX_EXTENSION_UUID }).to_string(),
        // MV3 host permissions are the user's to grant in Firefox. Since
        // Firefox 127 the ones in `host_permissions` are granted at install
        // (shown in the install prompt): MDN, manifest.json/host_permissions,
        // "Requested permissions and user prompts". Firefox implements that as
        // this pref, whose default is already `true` (Firefox 153:
        // greprefs.js; read in Extension.sys.mjs `_setupStartupPermissions`,
        // which grants the manifest's origins on ADDON_INSTALL, temporary
        // installs included). Set here so the suite does not rest on a
        // default; the launch also checks with `permissions.contains` that
        // the test build's host permissions are held.
        "extensions.originControls.grantByDefault": true,
        // `declarativeNetRequest.testMatchOutcome`, for the differential
        // scope test, needs this pref besides the test build's
        // `declarativeNetRequestFeedback` permission (Firefox's
        // parent/ext-declarativeNetRequest.js `ensureDNRFeedbackEnabled`;
        // bugzil.la/1811947). Chromium offers it to unpacked extensions.
        "extensions.dnr.feedback": true,
        // Keep Firefox off the network: the test machines have none, and
        // connections Firefox makes on its own would fail slowly or reach
        // the recording server.
        // https://support.mozilla.org/kb/how-stop-firefox-making-automatic-connections
        // (Marionette sets several of these too, but only once it runs; in
        // user.js they hold from the first moment.) No proxy, no DNS over
        // HTTPS, no captive-portal or connectivity probes, no DNS prefetch,
        // link prefetch or speculative connections, no safe-browsing list
        // updates, no search, add-on or system add-on updates, no Normandy,
        // no telemetry upload.
        "network.proxy.type": 0,
        "network.trr.mode": 5,
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "network.dns.disablePrefetch": true,
        "network.prefetch-next": false,
        "network.http.speculative-parallel-limit": 0,
        "browser.safebrowsing.malware.enabled": false,
        "browser.safebrowsing.phishing.enabled": false,
        "browser.safebrowsing.downloads.enabled": false,
        "browser.safebrowsing.blockedURIs.enabled": false,
        "browser.search.update": false,
        "extensions.getAddons.cache.enabled": false,
        "extensions.systemAddon.update.enabled": false,
        "app.normandy.enabled": false,
        "datareporting.policy.dataSubmissionEnabled": false,
        // Pages' and extension pages' console messages to stdout, which the
        // driver log keeps: a failing test prints its tail.
        "devtools.console.stdout.content": true,
    })
}

/// The prefs added in Firefox when the test owns the profile
/// ([`Browser::launch_on_profile`]). Firefox uninstalls a temporary add-on
/// when it shuts down, and uninstalling clears the add-on's storage and
/// forgets its UUID, unless these two prefs say otherwise
/// (`ExtensionAddonObserver.onUninstalled` in Firefox's
/// `toolkit/components/extensions/Extension.sys.mjs`; "Testing persistent and
/// restart features" on extensionworkshop.com). With them `storage.local`
/// (and IndexedDB, localStorage) is kept for the next session, which
/// installs the add-on again under the UUID pinned by
/// `extensions.webextensions.uuids`, so at the same origin. What the prefs
/// do not keep: the `declarativeNetRequest` dynamic rules, which the
/// uninstall drops whatever the prefs say
/// (`ExtensionDNRStore.clearOnUninstall`): the add-on installed again starts
/// with none, although the old rules file stays in `extension-dnr/` (seen
/// with Firefox 153 ESR; tests/profile.rs `what_survives_a_restart`); and
/// the host permissions granted at install (granted again at the next
/// install).
pub fn persistent_profile_prefs() -> Json {
    json!({
        "extensions.webextensions.keepStorageOnUninstall": true,
        "extensions.webextensions.keepUuidOnUninstall": true,
    })
}

/// How long a browser may take to quit after its session is deleted.
/// geckodriver itself waits up to 70 s for Firefox to exit before killing
/// it (its `LocalBrowser::close`).
pub const QUIT_WAIT: Duration = Duration::from_secs(90);

/// A running browser with the extension loaded.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    pub engine: Engine,
    /// The extension's base URL, `chrome-extension://<id>/` or
    /// `moz-extension://<uuid>/`.
    pub extension_base: String,
    /// Dropped after `client`: ends the browser and cleans up.
    _procs: Processes,
}

/// What the browser started: cleaned up on drop, also when launch fails.
#[derive(Debug)]
struct Processes {
    engine: Engine,
    driver: Option<tokio::process::Child>,
    driver_port: u16,
    session_id: Option<String>,
    /// This launch's own directory (driver log, and the profile unless the
    /// test owns one): removed on drop.
    temp: PathBuf,
    /// The unpacked extension loaded, for [`Browser::restart`].
    extension_dir: PathBuf,
    /// The profile directory the browser runs on, when the test owns it
    /// ([`Browser::launch_on_profile`]): kept on drop, but no process of it
    /// may outlive the browser.
    owned_profile: Option<PathBuf>,
}

impl Browser {
    /// Launch `engine` with the unpacked extension in `extension_dir` (the
    /// directory holding its manifest.json).
    pub async fn launch(engine: Engine, extension_dir: &Path) -> Browser {
        Self::launch_with(engine, extension_dir, None, None).await
    }

    /// [`Browser::launch`] with the browser's interface in `language` (an
    /// ISO 639 code such as `de`), which is the language extensions'
    /// `i18n.getMessage` speaks. Chromium takes `--lang` and needs the
    /// language's resources (Debian's `chromium-l10n`); Firefox takes
    /// `intl.locale.requested` and needs the language pack
    /// (`firefox-esr-l10n-de`), else both stay in English.
    pub async fn launch_in_language(
        engine: Engine,
        extension_dir: &Path,
        language: &str,
    ) -> Browser {
        Self::launch_with(engine, extension_dir, None, Some(language)).await
    }

    /// Launch `engine` with the unpacked extension in `extension_dir` on the
    /// profile directory `profile`, which the test owns (see [`OwnedProfile`]):
    /// Chromium's `--user-data-dir`, Firefox's `-profile`, used in place and
    /// never removed by the browser wrapper. End the session with
    /// [`Browser::quit`] (or [`Browser::restart`]) so the browser shuts down
    /// the normal way and writes what it holds to disk; dropping the
    /// `Browser` kills it instead.
    ///
    /// Launching again on the same directory gives the same extension the
    /// same id and origin and its `storage.local`. In Firefox the extension
    /// is a temporary add-on, which Firefox uninstalls when it shuts down;
    /// [`persistent_profile_prefs`] keeps its storage and UUID through that
    /// uninstall, and the next launch installs it again.
    pub async fn launch_on_profile(
        engine: Engine,
        extension_dir: &Path,
        profile: &Path,
    ) -> Browser {
        Self::launch_with(engine, extension_dir, Some(profile), None).await
    }

    async fn launch_with(
        engine: Engine,
        extension_dir: &Path,
        profile: Option<&Path>,
        language: Option<&str>,
    ) -> Browser {
        let extension_dir = extension_dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("extension dir {}: {e}", extension_dir.display()));
        let profile = profile.map(|p| {
            std::fs::create_dir_all(p)
                .and_then(|()| p.canonicalize())
                .unwrap_or_else(|e| panic!("profile dir {}: {e}", p.display()))
        });
        let browser = match engine {
            Engine::Chromium => Self::launch_chromium(&extension_dir, profile, language).await,
            Engine::Firefox => Self::launch_firefox(&extension_dir, profile, language).await,
        };
        browser.wait_extension_loaded().await;
        browser.check_host_permissions(&extension_dir).await;
        browser
    }

    /// End the session the normal way and wait until the browser has
    /// exited; the profile stays. WebDriver's Delete Session makes
    /// chromedriver close Chromium and geckodriver quit Firefox (Marionette's
    /// quit, which runs Firefox's whole shutdown: storage is flushed, and a
    /// temporary add-on is uninstalled). Then every process whose command
    /// line names the profile must be gone within [`QUIT_WAIT`], polled; the
    /// driver is stopped after that.
    pub async fn quit(self) {
        let started = Instant::now();
        let Browser {
            client,
            engine,
            _procs: mut procs,
            ..
        } = self;
        let profile = procs.profile_dir();
        match tokio::time::timeout(QUIT_WAIT, client.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "ending the {} session failed: {e}\n{}",
                engine.name(),
                procs.driver_log_tail()
            ),
            Err(_) => panic!(
                "ending the {} session took over {QUIT_WAIT:?}\n{}",
                engine.name(),
                procs.driver_log_tail()
            ),
        }
        // Ended: Drop must not end it again.
        procs.session_id = None;
        let deadline = Instant::now() + QUIT_WAIT;
        loop {
            let left = processes_using(&profile);
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} was asked to quit, but {QUIT_WAIT:?} later these processes of its profile {} \
                     are still running: {left:?}\n{}",
                    engine.name(),
                    profile.display(),
                    procs.driver_log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Err(why) = check_clean_exit(engine, &profile) {
            panic!(
                "{} exited, but not cleanly: {why}\n{}",
                engine.name(),
                procs.driver_log_tail()
            );
        }
        eprintln!(
            "e2e: {} quit in {:?} (profile {})",
            engine.name(),
            started.elapsed(),
            profile.display()
        );
        // Stops the driver and removes this launch's temp dir, not the
        // owned profile.
        drop(procs);
    }

    /// [`Browser::quit`], then [`Browser::launch_on_profile`] again with the
    /// same extension on the same profile. Only for a browser started with
    /// `launch_on_profile`.
    pub async fn restart(self) -> Browser {
        let engine = self.engine;
        let extension_dir = self._procs.extension_dir.clone();
        let profile = self._procs.owned_profile.clone().unwrap_or_else(|| {
            panic!(
                "restart needs a browser started with Browser::launch_on_profile: a launch's \
                 own profile is removed with it"
            )
        });
        self.quit().await;
        Browser::launch_on_profile(engine, &extension_dir, &profile).await
    }

    /// The profile directory the test owns, when launched with
    /// [`Browser::launch_on_profile`]; `None` for a launch's own profile,
    /// which goes with the browser.
    pub fn owned_profile(&self) -> Option<&Path> {
        self._procs.owned_profile.as_deref()
    }

    /// Start `driver` in its own process group, logging to `log`.
    fn spawn_driver(engine: Engine, binary: &str, args: &[String], log: &Path) -> Processes {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            // Its own process group: Drop kills the driver and the browser it
            // started together.
            .process_group(0);
        match engine {
            Engine::Chromium => {
                cmd.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
            }
            Engine::Firefox => {
                // geckodriver logs to stderr and passes on the browser's
                // stdout and stderr (console messages, extension errors).
                let file = std::fs::File::create(log)
                    .unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
                let err = file.try_clone().expect("clone the log file handle");
                cmd.stdout(file).stderr(err);
            }
        }
        let driver = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        Processes {
            engine,
            driver: Some(driver),
            driver_port: 0,
            session_id: None,
            temp: log.parent().expect("log in the temp dir").to_owned(),
            extension_dir: PathBuf::new(),
            owned_profile: None,
        }
    }

    /// Open a WebDriver session with `caps` on the driver at `procs`, retrying
    /// while the driver starts listening.
    async fn connect(procs: &mut Processes, caps: Capabilities) -> Client {
        let url = format!("http://127.0.0.1:{}", procs.driver_port);
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
                    // The driver is not listening yet, most likely.
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => panic!(
                    "could not start a browser session via {} on {url}: {e}\n{}",
                    procs.engine.driver_name(),
                    procs.driver_log_tail()
                ),
                Err(_) => panic!(
                    "starting a browser session timed out\n{}",
                    procs.driver_log_tail()
                ),
            }
        };
        procs.session_id = client.session_id().await.ok().flatten();
        client
    }

    /// `owned_profile`: the test's own `--user-data-dir`, else a fresh one in
    /// the launch's temp dir.
    async fn launch_chromium(
        extension_dir: &Path,
        owned_profile: Option<PathBuf>,
        language: Option<&str>,
    ) -> Browser {
        let extension_id = extension_id_of(extension_dir);
        let temp = fresh_temp_dir("chrome");
        let profile = owned_profile
            .clone()
            .unwrap_or_else(|| temp.join("profile"));
        std::fs::create_dir_all(&profile).expect("create the profile dir");
        let driver_port = free_port();
        let driver_log = temp.join("driver.log");
        // From here on, a panic drops `procs` and cleans up.
        let mut procs = Self::spawn_driver(
            Engine::Chromium,
            &chromedriver_binary(),
            &[
                format!("--port={driver_port}"),
                format!("--log-path={}", driver_log.display()),
            ],
            &driver_log,
        );
        procs.driver_port = driver_port;
        procs.extension_dir = extension_dir.to_owned();
        procs.owned_profile = owned_profile;

        let ext = extension_dir.display().to_string();
        // `cargo xtask demo` shows the browser when a display exists.
        let headed = std::env::var_os("TOKENWARD_HEADED").is_some();
        let mut args = vec![
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
        if headed {
            args.retain(|a| a != "--headless=new");
        }
        if let Some(language) = language {
            args.push(format!("--lang={language}"));
            args.push(format!("--accept-lang={language}"));
        }
        let mut caps = Capabilities::new();
        caps.insert("browserName".to_owned(), json!("chrome"));
        caps.insert("pageLoadStrategy".to_owned(), json!("none"));
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium_binary(), "args": args }),
        );
        let client = Self::connect(&mut procs, caps).await;
        Browser {
            client,
            engine: Engine::Chromium,
            extension_base: format!("chrome-extension://{extension_id}/"),
            _procs: procs,
        }
    }

    /// `owned_profile`: the test's own profile directory, else a fresh one
    /// in the launch's temp dir. Either way geckodriver uses it in place
    /// (`-profile` in the arguments; without it geckodriver would copy a
    /// profile to a temp dir of its own) and writes the prefs to its
    /// `user.js`.
    async fn launch_firefox(
        extension_dir: &Path,
        owned_profile: Option<PathBuf>,
        language: Option<&str>,
    ) -> Browser {
        let gecko_id = gecko_id_of(extension_dir);
        let temp = fresh_temp_dir("firefox");
        let profile = owned_profile
            .clone()
            .unwrap_or_else(|| temp.join("profile"));
        std::fs::create_dir_all(&profile).expect("create the profile dir");
        let driver_port = free_port();
        let driver_log = temp.join("driver.log");
        // From here on, a panic drops `procs` and cleans up.
        let mut procs = Self::spawn_driver(
            Engine::Firefox,
            &geckodriver_binary(),
            &[
                "--port".to_owned(),
                driver_port.to_string(),
                // Since Firefox 153, WebDriver may only navigate to http(s),
                // file, blob and about:blank unless the browser allows system
                // access; extension pages are moz-extension://.
                // https://firefox-source-docs.mozilla.org/testing/geckodriver/Flags.html#allow-system-access
                "--allow-system-access".to_owned(),
            ],
            &driver_log,
        );
        procs.driver_port = driver_port;
        procs.extension_dir = extension_dir.to_owned();
        let mut prefs = firefox_prefs(&gecko_id);
        if owned_profile.is_some() {
            if let (Some(prefs), Json::Object(more)) =
                (prefs.as_object_mut(), persistent_profile_prefs())
            {
                prefs.extend(more);
            }
        }
        procs.owned_profile = owned_profile;
        if let (Some(language), Some(prefs)) = (language, prefs.as_object_mut()) {
            // The language pack sits in the application's own add-on
            // folder, which geckodriver's profile leaves enabled.
            prefs.insert("intl.locale.requested".to_owned(), json!(language));
            prefs.insert("intl.accept_languages".to_owned(), json!(language));
        }

        let mut caps = Capabilities::new();
        caps.insert("browserName".to_owned(), json!("firefox"));
        // As in Chromium: navigation commands return at once, and the
        // helpers poll for what they need. geckodriver implements "none" as
        // the WebDriver spec says.
        // https://www.w3.org/TR/webdriver2/#dfn-table-of-page-load-strategies
        caps.insert("pageLoadStrategy".to_owned(), json!("none"));
        caps.insert(
            "moz:firefoxOptions".to_owned(),
            json!({
                "binary": firefox_binary(),
                // A profile of our own, so Drop can find every process that
                // names it and remove it.
                "args": ["-headless", "-profile", profile.display().to_string()],
                "prefs": prefs,
            }),
        );
        let client = Self::connect(&mut procs, caps).await;
        let browser = Browser {
            client,
            engine: Engine::Firefox,
            extension_base: format!("moz-extension://{FIREFOX_EXTENSION_UUID}/"),
            _procs: procs,
        };
        browser
            .install_temporary_addon(extension_dir, &gecko_id)
            .await;
        browser
    }

    /// Install the unpacked extension in `dir` as a temporary add-on, as
    /// about:debugging's "Load Temporary Add-on" does, through geckodriver's
    /// own endpoint:
    /// <https://firefox-source-docs.mozilla.org/testing/geckodriver/Usage.html>
    /// (`POST /session/{session id}/moz/addon/install` with `path` and
    /// `temporary`). It is sent as a plain HTTP request: fantoccini's raw
    /// command trait needs the `http` crate's types, which this crate does
    /// not depend on.
    async fn install_temporary_addon(&self, dir: &Path, gecko_id: &str) {
        let procs = &self._procs;
        let session = procs.session_id.clone().expect("a geckodriver session id");
        let port = procs.driver_port;
        let body = json!({ "path": dir.display().to_string(), "temporary": true }).to_string();
        let path = format!("/session/{session}/moz/addon/install");
        let answer = tokio::task::spawn_blocking(move || {
            driver_http(port, "POST", &path, Some(&body), Duration::from_secs(30))
        })
        .await
        .expect("the add-on install task");
        let (status, text) = answer.unwrap_or_else(|e| {
            panic!(
                "installing the add-on {} failed: {e}\n{}",
                dir.display(),
                procs.driver_log_tail()
            )
        });
        let value: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        assert!(
            status == 200 && value["value"].as_str() == Some(gecko_id),
            "installing the add-on {} answered {status} {text}, expected the id {gecko_id}\n{}",
            dir.display(),
            procs.driver_log_tail()
        );
    }

    /// Stops the extension's background as the browser does when it is idle:
    /// Chromium's service worker through the DevTools protocol
    /// (`Target.closeTarget` on its target, as Chrome's guide to testing
    /// service-worker termination does with Puppeteer:
    /// <https://developer.chrome.com/docs/extensions/how-to/test/test-serviceworker-termination-with-puppeteer>),
    /// Firefox's event page with `Extension.terminateBackground()`, the
    /// call its own tests use, run in the browser's chrome context (which
    /// geckodriver's `--allow-system-access` permits).
    pub async fn stop_background(&self) {
        self.stop_background_then(true).await;
    }

    /// [`Browser::stop_background`] while pages keep sending it messages:
    /// each message starts a new worker at once (Chromium reuses the
    /// worker's DevTools target), so the stop is known from the browser's
    /// answer to it rather than from the target going away.
    pub async fn stop_background_while_busy(&self) {
        self.stop_background_then(false).await;
    }

    async fn stop_background_then(&self, wait_gone: bool) {
        let procs = &self._procs;
        let session = procs.session_id.clone().expect("a driver session id");
        let port = procs.driver_port;
        let call = move |method: &'static str, path: String, body: Json| async move {
            let body = body.to_string();
            let sent = path.clone();
            let answer = tokio::task::spawn_blocking(move || {
                driver_http(port, method, &sent, Some(&body), Duration::from_secs(30))
            })
            .await
            .expect("the driver call task");
            let (status, text) = answer.unwrap_or_else(|e| panic!("{path}: {e}"));
            let value: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
            assert_eq!(status, 200, "{path} answered {status} {text}");
            value["value"].clone()
        };
        match self.engine {
            Engine::Chromium => {
                let cdp = format!("/session/{session}/goog/cdp/execute");
                let worker = poll("the extension's service worker", WAIT, || {
                    let cdp = cdp.clone();
                    let base = self.extension_base.clone();
                    async move {
                        let targets = call(
                            "POST",
                            cdp,
                            json!({"cmd": "Target.getTargets", "params": {}}),
                        )
                        .await;
                        targets["targetInfos"]
                            .as_array()?
                            .iter()
                            .find(|t| {
                                t["type"] == "service_worker"
                                    && t["url"].as_str().is_some_and(|u| u.starts_with(&base))
                            })
                            .and_then(|t| t["targetId"].as_str().map(str::to_owned))
                    }
                })
                .await;
                let closed = call(
                    "POST",
                    cdp.clone(),
                    json!({"cmd": "Target.closeTarget", "params": {"targetId": worker}}),
                )
                .await;
                if !wait_gone {
                    // `success` is deprecated and may be absent; an error
                    // would have failed the call.
                    assert_ne!(
                        closed["success"],
                        json!(false),
                        "Chromium did not stop the worker"
                    );
                    return;
                }
                poll("the service worker to stop", WAIT, || {
                    let cdp = cdp.clone();
                    let worker = worker.clone();
                    async move {
                        let targets = call(
                            "POST",
                            cdp,
                            json!({"cmd": "Target.getTargets", "params": {}}),
                        )
                        .await;
                        let gone = !targets["targetInfos"]
                            .as_array()?
                            .iter()
                            .any(|t| t["targetId"].as_str() == Some(worker.as_str()));
                        gone.then_some(())
                    }
                })
                .await;
            }
            Engine::Firefox => {
                let context = format!("/session/{session}/moz/context");
                call("POST", context.clone(), json!({"context": "chrome"})).await;
                let stopped = self
                    .client
                    .execute_async(
                        "const [id, done] = arguments; \
                         const { ExtensionParent } = ChromeUtils.importESModule(\
                           'resource://gre/modules/ExtensionParent.sys.mjs'); \
                         const ext = ExtensionParent.GlobalManager.getExtension(id); \
                         if (!ext) { done('no extension ' + id); } else { \
                           ext.terminateBackground({ ignoreDevToolsAttached: true }) \
                             .then(() => done(true), e => done(String(e))); }",
                        vec![json!(gecko_id_of(&procs.extension_dir))],
                    )
                    .await;
                call("POST", context, json!({"context": "content"})).await;
                assert_eq!(
                    stopped.ok(),
                    Some(json!(true)),
                    "Firefox did not stop the background"
                );
            }
        }
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light): Chromium's
    /// DevTools `Emulation.setEmulatedMedia` on the current tab, Firefox's
    /// `layout.css.prefers-color-scheme.content-override` pref (0 dark,
    /// 1 light), set in the browser's chrome context. The caller checks
    /// `matchMedia` on the page, so a switch that did not take fails there.
    pub async fn set_color_scheme(&self, dark: bool) {
        let procs = &self._procs;
        let session = procs.session_id.clone().expect("a driver session id");
        let port = procs.driver_port;
        let post = move |path: String, body: Json| async move {
            let body = body.to_string();
            let sent = path.clone();
            let answer = tokio::task::spawn_blocking(move || {
                driver_http(port, "POST", &sent, Some(&body), Duration::from_secs(30))
            })
            .await
            .expect("the driver call task");
            let (status, text) = answer.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(status, 200, "{path} answered {status} {text}");
        };
        let scheme = if dark { "dark" } else { "light" };
        match self.engine {
            Engine::Chromium => {
                post(
                    format!("/session/{session}/goog/cdp/execute"),
                    json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                        "features": [{"name": "prefers-color-scheme", "value": scheme}]
                    }}),
                )
                .await;
            }
            Engine::Firefox => {
                let context = format!("/session/{session}/moz/context");
                post(context.clone(), json!({"context": "chrome"})).await;
                let set = self
                    .client
                    .execute(
                        "Services.prefs.setIntPref(\
                           'layout.css.prefers-color-scheme.content-override', arguments[0]); \
                         return true;",
                        vec![json!(if dark { 0 } else { 1 })],
                    )
                    .await;
                post(context, json!({"context": "content"})).await;
                assert_eq!(set.ok(), Some(json!(true)), "Firefox did not take the pref");
            }
        }
    }

    /// Poll until an extension page is served and has the extension APIs,
    /// which proves the extension loaded. Leaves the options page open.
    async fn wait_extension_loaded(&self) {
        let url = self.extension_url("options.html");
        self.client.goto(&url).await.expect("navigate");
        let c = self.client.clone();
        let found = tokio::time::timeout(
            Duration::from_secs(20),
            poll("the extension's options page to be served", WAIT, || {
                let c = c.clone();
                let url = url.clone();
                async move {
                    let v = c
                        .execute(
                            "return [location.href, typeof chrome === 'object' && !!chrome.runtime \
                             && !!chrome.runtime.id];",
                            vec![],
                        )
                        .await
                        .ok()?;
                    if v.get(0)?.as_str()? == url && v.get(1)?.as_bool()? {
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
            panic!(
                "the extension did not load in {} ({url} not served)\n{}",
                self.engine.name(),
                self._procs.driver_log_tail()
            );
        }
    }

    /// Panic unless the extension holds every host permission its test
    /// build's manifest lists (the current page must be an extension page).
    /// Without them the pages would wait on a permission prompt that nobody
    /// answers, and DNR would not act on the test hosts.
    ///
    /// Polled: Firefox grants them while the add-on starts, and an extension
    /// page that loads at once may see `false` for a moment (seen with
    /// Firefox 153, where `permissions.getAll` already listed them).
    async fn check_host_permissions(&self, extension_dir: &Path) {
        let origins = manifest_of(extension_dir)["host_permissions"].clone();
        let contains =
            format!("return await chrome.permissions.contains({{ origins: {origins} }});");
        // A failed script is tried again too: the page may be reloading,
        // when `wait_extension_loaded` saw the first load of the options
        // page succeed after it had asked for another ("Document was
        // unloaded", seen in Firefox on a loaded machine).
        let deadline = Instant::now() + WAIT;
        let mut held = self.try_exec_async(&contains).await;
        while held != Ok(Json::Bool(true)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            held = self.try_exec_async(&contains).await;
        }
        if let Err(e) = held {
            panic!(
                "checking the host permissions of the extension in {} failed: {e}",
                self.engine.name()
            );
        }
        if held != Ok(Json::Bool(true)) {
            let all = self
                .exec_async("return await chrome.permissions.getAll();")
                .await;
            panic!(
                "{} did not grant the test build's host permissions {origins} at install; it \
                 holds {all}",
                self.engine.name()
            );
        }
    }

    /// The extension page at `path` (`chrome-extension://<id>/<path>` or
    /// `moz-extension://<uuid>/<path>`).
    pub fn extension_url(&self, path: &str) -> String {
        format!("{}{}", self.extension_base, path.trim_start_matches('/'))
    }

    /// Start navigating to `url` and return at once (page load strategy none).
    pub async fn goto_nowait(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Navigate to `url` and wait until the document at that URL exists (not
    /// until it has loaded).
    pub async fn goto(&self, url: &str) {
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
    pub async fn current_url(&self) -> String {
        self.client
            .execute("return location.href", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Wait for an element matching `selector`.
    pub async fn wait_for_css(&self, selector: &str, timeout: Duration) -> Element {
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
    pub async fn wait_visible(&self, selector: &str, timeout: Duration) -> Element {
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
    pub async fn wait_js(&self, what: &str, timeout: Duration, js: &str) -> Json {
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
    pub async fn find(&self, selector: &str) -> Element {
        self.wait_for_css(selector, WAIT).await
    }

    /// Click the element `selector` (waits for it to exist).
    pub async fn click(&self, selector: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click `{selector}`: {err}"));
    }

    /// Replace the text of input `selector` with `text`, by typing.
    pub async fn fill(&self, selector: &str, text: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        fill_element(&e, text)
            .await
            .unwrap_or_else(|err| panic!("fill `{selector}`: {err}"));
    }

    /// Paste `text` into the field `selector` as a person would: put it on
    /// the clipboard by selecting it in a scratch textarea and pressing
    /// Ctrl+C, then click the field and press Ctrl+V. The page sees a
    /// trusted `paste` event carrying `text`, whatever the browser.
    pub async fn paste_into(&self, selector: &str, text: &str) {
        let scratch = "tokenward-e2e-clipboard";
        self.client
            .execute(
                "const t = document.createElement('textarea');\n\
                 t.id = arguments[0];\n\
                 t.value = arguments[1];\n\
                 document.body.prepend(t);\n\
                 t.focus();\n\
                 t.select();\n\
                 return null;",
                vec![json!(scratch), json!(text)],
            )
            .await
            .unwrap_or_else(|e| panic!("make the clipboard scratch textarea: {e}"));
        let area = self.find(&format!("#{scratch}")).await;
        area.send_keys(&(Key::Control + "c"))
            .await
            .unwrap_or_else(|e| panic!("press Ctrl+C in the scratch textarea: {e}"));
        self.client
            .execute(
                "document.getElementById(arguments[0]).remove(); return null;",
                vec![json!(scratch)],
            )
            .await
            .unwrap_or_else(|e| panic!("remove the scratch textarea: {e}"));
        let field = self.wait_visible(selector, WAIT).await;
        field
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{selector}`: {e}"));
        field
            .send_keys(&(Key::Control + "v"))
            .await
            .unwrap_or_else(|e| panic!("press Ctrl+V in `{selector}`: {e}"));
    }

    /// Choose the option with `value` in select `selector`.
    pub async fn select(&self, selector: &str, value: &str) {
        let e = self.wait_visible(selector, WAIT).await;
        e.select_by_value(value)
            .await
            .unwrap_or_else(|err| panic!("select {value} in `{selector}`: {err}"));
    }

    /// Make checkbox `selector` checked or not, by clicking it if needed.
    pub async fn set_checked(&self, selector: &str, checked: bool) {
        let e = self.wait_visible(selector, WAIT).await;
        let now = e.is_selected().await.unwrap_or(false);
        if now != checked {
            e.click()
                .await
                .unwrap_or_else(|err| panic!("click checkbox `{selector}`: {err}"));
        }
    }

    /// The rendered text of `selector` (waits for it to exist).
    pub async fn text(&self, selector: &str) -> String {
        let e = self.find(selector).await;
        e.text()
            .await
            .unwrap_or_else(|err| panic!("text of `{selector}`: {err}"))
    }

    /// `textContent` of `selector`, or `None` when there is no such element.
    pub async fn text_content(&self, selector: &str) -> Option<String> {
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
    pub async fn exec(&self, js: &str) -> Json {
        self.client
            .execute(js, vec![])
            .await
            .unwrap_or_else(|e| panic!("executing script failed: {e}\nscript: {js}"))
    }

    /// Run `body` as the body of an async function in the current page and
    /// return what it returns (a rejected promise panics).
    pub async fn exec_async(&self, body: &str) -> Json {
        self.try_exec_async(body)
            .await
            .unwrap_or_else(|e| panic!("{e}\nscript: {body}"))
    }

    /// [`Browser::exec_async`], saying what failed instead of panicking.
    async fn try_exec_async(&self, body: &str) -> Result<Json, String> {
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
            .map_err(|e| format!("executing async script failed: {e}"))?;
        if let Some(err) = v.get("err") {
            return Err(format!("async script threw: {err}"));
        }
        Ok(v.get("ok").cloned().unwrap_or(Json::Null))
    }

    /// Open a new tab, switch to it, and return its handle.
    pub async fn new_tab(&self) -> WindowHandle {
        let w = self.client.new_window(true).await.expect("open a new tab");
        self.client
            .switch_to_window(w.handle.clone())
            .await
            .expect("switch to the new tab");
        w.handle
    }

    /// The handle of the current tab.
    pub async fn current_tab(&self) -> WindowHandle {
        self.client.window().await.expect("current window handle")
    }

    /// Switch to tab `handle`.
    pub async fn switch_to(&self, handle: &WindowHandle) {
        self.client
            .switch_to_window(handle.clone())
            .await
            .expect("switch tab");
    }

    /// The browser's tab id (chrome.tabs) of the tab whose URL is `url`.
    /// The current tab must be an extension page.
    pub async fn tab_id_for_url(&self, url: &str) -> i64 {
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
    /// The profile directory the browser runs on.
    fn profile_dir(&self) -> PathBuf {
        self.owned_profile
            .clone()
            .unwrap_or_else(|| self.temp.join("profile"))
    }

    fn driver_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.temp.join("driver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(60);
        format!(
            "{} log tail:\n{}",
            self.engine.driver_name(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // Ask chromedriver to end the session (it quits the browser). Not
        // geckodriver: its graceful quit takes most of a second (seen with
        // Firefox 153), and nothing in the profile is kept, so killing is
        // enough.
        if let (Engine::Chromium, Some(id)) = (self.engine, &self.session_id) {
            let _ = driver_http(
                self.driver_port,
                "DELETE",
                &format!("/session/{id}"),
                None,
                Duration::from_secs(5),
            );
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
        if let Some(profile) = &self.owned_profile {
            kill_processes_using(profile);
        }
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

/// One plain HTTP/1.1 request to the driver on `port`; returns the status
/// and body. For what fantoccini does not send (geckodriver's add-on
/// install) and for ending the session from `Drop`, where nothing async can
/// run.
fn driver_http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read until the whole response is in: a driver may keep the connection
    // open, so EOF is not a signal.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            let text = String::from_utf8_lossy(&buf);
            let body = text
                .find("\r\n\r\n")
                .map_or(String::new(), |e| text[e + 4..].to_owned());
            return Ok((status_of(&text), body));
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
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return Ok((status_of(&text), body));
            }
        }
    }
}

/// The status code of an HTTP response's head (0 if unreadable).
fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Kill (by pid) every process whose command line names `dir`: the browser
/// processes started for this test's own temp profile, and nothing else.
fn kill_processes_using(dir: &Path) {
    for (pid, _) in processes_using(dir) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The pid and command line of every process whose command line names
/// `dir` (a zombie's is empty, so an exited but unreaped process is not
/// listed).
fn processes_using(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push((pid, cmdline.trim_end().to_owned()));
        }
    }
    found
}

/// Whether the browser that ran on `profile` says it went through its whole
/// shutdown (and so wrote out what it held), in its own records, each
/// checked to be `false` while the browser runs and after it is killed:
/// Chromium's clean-exit beacon, `user_experience_metrics.stability.
/// exited_cleanly` in the user data dir's `Variations` file (written
/// `false` at start-up, `true` at the end of a normal shutdown; `Local
/// State` and `Default/Preferences` are not rewritten at start-up, so they
/// still show the previous session's); Firefox's `sessionCheckpoints.json`,
/// rewritten from start-up on with each shutdown phase reached, which must
/// reach `profile-before-change`, the phase in which storage is flushed.
fn check_clean_exit(engine: Engine, profile: &Path) -> Result<(), String> {
    let (file, pointer, want) = match engine {
        Engine::Chromium => (
            profile.join("Variations"),
            "/user_experience_metrics.stability.exited_cleanly",
            json!(true),
        ),
        Engine::Firefox => (
            profile.join("sessionCheckpoints.json"),
            "/profile-before-change",
            json!(true),
        ),
    };
    let text =
        std::fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let value: Json =
        serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", file.display()))?;
    match value.pointer(pointer) {
        Some(got) if *got == want => Ok(()),
        got => Err(format!(
            "{} has {pointer} = {}, not {want}",
            file.display(),
            got.map_or("nothing".to_owned(), Json::to_string)
        )),
    }
}

/// A browser profile directory that the test owns and that outlives browser
/// sessions: give [`OwnedProfile::path`] to [`Browser::launch_on_profile`],
/// [`Browser::quit`] or [`Browser::restart`] on it, and scan it. On drop it
/// kills any process still naming it and removes it, unless
/// `TOKENWARD_KEEP_PROFILE` is set (then it says where it is).
#[derive(Debug)]
pub struct OwnedProfile {
    dir: PathBuf,
}

impl OwnedProfile {
    /// A fresh, empty directory under the temp dir.
    pub fn new(engine: Engine) -> OwnedProfile {
        let dir = fresh_temp_dir(&format!("{}-profile", engine.build_dir()));
        let dir = dir.canonicalize().unwrap_or(dir);
        OwnedProfile { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for OwnedProfile {
    fn drop(&mut self) {
        kill_processes_using(&self.dir);
        if std::env::var_os("TOKENWARD_KEEP_PROFILE").is_some() {
            eprintln!("e2e: kept the profile {}", self.dir.display());
            return;
        }
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
