//! The background: the browser's events, handed to [`tokenward_core::service`].
//!
//! The JS in `extension/background.js` registers every listener
//! synchronously at start-up (a service worker woken by an event only
//! delivers it to listeners registered in the first turn) and calls these
//! functions once the wasm is ready. They keep nothing between calls: state
//! is read from storage every time, so the worker can be stopped at any
//! moment. Never touch `window` here: a service worker has none.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::lock::Mutex;
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use super::browser::{
    self, action, alarms, dnr, identity, idle, net, notifications, permissions, runtime, storage,
    tabs, BrowserError, BrowserRandom, RuleSet,
};
use tokenward_core::compile::Target;
use tokenward_core::dnr::{Rule, UpdateRuleOptions};
use tokenward_core::matcher::Badge;
use tokenward_core::message::{Request, Response};
use tokenward_core::protection::SESSION_KEY;
use tokenward_core::provider::{HttpRequest, HttpResponse};
use tokenward_core::service::{
    self, Platform, PlatformError, RuleEngine, StateStore, StreamRead, Transport,
};
use tokenward_core::store::{State, StoredWrite, TabRules, STATE_KEY, TAB_RULES_KEY};
use tokenward_core::text;
use tokenward_core::text::Text;

const BADGE_COLOR: &str = "#1a7f37";

thread_local! {
    /// Not state: a lock. Two messages handled at once would each read,
    /// change and write the state, and the second write would drop the
    /// first change. Dies with the worker, as it should.
    static WRITER: Rc<Mutex<()>> = Rc::new(Mutex::new(()));
    /// Not state: this worker's name, random, in the mark of each write it
    /// makes, so that its own writes' `storage.onChanged` is known for its
    /// own, and a write by a worker the browser stopped before it updated
    /// the rules is not. Dies with the worker, as it should.
    static WORKER: String = format!(
        "{:x}",
        (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
    );
    /// Not state: whether this worker reconciled since it started. The
    /// one before may have been stopped between a write and its rule
    /// update (`tests/e2e/races.rs` stops it mid-edit), so each worker
    /// reconciles once, fully, on its first event: after answering it, when
    /// the event is a page's request.
    static RECONCILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Not state: how many writes this worker made, in the mark of each so
    /// that no two writes leave the same head. Chromium reports in
    /// `storage.onChanged` only the keys whose value changed, and an edit
    /// of one rule may leave the head as it was: without the count, that
    /// write would reach the listener as a change to the rule's key alone,
    /// which is what a write from outside looks like.
    /// <https://github.com/w3c/webextensions/issues/86>
    static WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// This worker's first event: reconcile fully, once.
async fn reconcile_once() {
    if !RECONCILED.with(std::cell::Cell::get) {
        sync_everything().await;
    }
}

async fn exclusive<T>(work: impl std::future::Future<Output = T>) -> T {
    let lock = WRITER.with(Rc::clone);
    let _guard = lock.lock().await;
    work.await
}

struct LocalStore;

impl StateStore for LocalStore {
    async fn managed(&self) -> Result<Option<serde_json::Value>, PlatformError> {
        Ok(storage::managed_get_all().await)
    }

    async fn load(&self) -> Result<Option<serde_json::Value>, PlatformError> {
        storage::local_get_all().await.map_err(platform)
    }

    async fn load_keys(&self, keys: &[String]) -> Result<serde_json::Value, PlatformError> {
        storage::local_get(keys).await.map_err(platform)
    }

    async fn save(&self, mut write: StoredWrite) -> Result<(), PlatformError> {
        // Signed with this worker's name, so that the `storage.onChanged`
        // this write fires is known for its own: it applies what it wrote
        // itself, and a second, full reconciliation would only cost the
        // size of the store. A worker stopped before its rule update left a
        // mark no later worker has: that write is reconciled.
        let count = WRITES.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        let mark = format!("{}.{count}", WORKER.with(String::clone));
        // Every write carries the head, so every write carries the mark.
        if let Some(head) = write
            .set
            .get_mut(STATE_KEY)
            .and_then(serde_json::Value::as_object_mut)
        {
            head.insert(WRITER_FIELD.to_owned(), serde_json::Value::String(mark));
        }
        storage::local_set_all(&write.set).await.map_err(platform)?;
        // Unlisted keys, never read again: if the worker stops before this,
        // they only take room.
        if !write.remove.is_empty() {
            storage::local_remove(&write.remove)
                .await
                .map_err(platform)?;
        }
        Ok(())
    }

    async fn session_key(&self) -> Result<Option<String>, PlatformError> {
        storage::session_get_string(SESSION_KEY)
            .await
            .map_err(platform)
    }

    async fn pending_login(&self) -> Result<Option<serde_json::Value>, PlatformError> {
        storage::session_get(PENDING_LOGIN_KEY)
            .await
            .map_err(platform)
    }

    async fn set_pending_login(
        &self,
        login: Option<&serde_json::Value>,
    ) -> Result<(), PlatformError> {
        match login {
            Some(login) => storage::session_set(PENDING_LOGIN_KEY, login).await,
            None => storage::session_remove(PENDING_LOGIN_KEY).await,
        }
        .map_err(platform)
    }

    async fn set_session_key(&self, key: Option<&str>) -> Result<(), PlatformError> {
        match key {
            Some(key) => storage::session_set_string(SESSION_KEY, key).await,
            None => storage::session_remove(SESSION_KEY).await,
        }
        .map_err(platform)
    }

    async fn tab_rules(&self) -> Result<Option<serde_json::Value>, PlatformError> {
        storage::session_get(TAB_RULES_KEY).await.map_err(platform)
    }

    async fn set_tab_rules(&self, rules: &serde_json::Value) -> Result<(), PlatformError> {
        storage::session_set(TAB_RULES_KEY, rules)
            .await
            .map_err(platform)
    }
}

struct BrowserRules;

impl RuleEngine for BrowserRules {
    async fn installed(&self, set: RuleSet) -> Result<Vec<Rule>, PlatformError> {
        dnr::rules(set).await.map_err(platform)
    }

    async fn update(&self, set: RuleSet, update: &UpdateRuleOptions) -> Result<(), PlatformError> {
        dnr::update(set, update).await.map_err(platform)
    }

    fn target(&self) -> Target {
        dnr::target()
    }
}

struct Fetch;

impl Transport for Fetch {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, PlatformError> {
        net::fetch(request).await.map_err(platform)
    }

    async fn open_stream(
        &self,
        id: &str,
        request: &HttpRequest,
    ) -> Result<HttpResponse, PlatformError> {
        net::open_stream(id, request).await.map_err(platform)
    }

    async fn read_stream(&self, id: &str, wait: bool) -> StreamRead {
        net::read_stream(id, wait).await
    }

    fn close_stream(&self, id: &str) {
        net::close_stream(id);
    }
}

/// Recomputes the rules when a credential expires, so its header stops on
/// time even if nothing else happens. An alarm, not a timer: the worker may
/// be stopped long before.
const EXPIRY_ALARM: &str = "credential-expiry";

/// The browser as the service reaches it, now.
fn browser_platform(rng: &RefCell<BrowserRandom>) -> Platform<'_, LocalStore, BrowserRules, Fetch> {
    Platform {
        store: &LocalStore,
        engine: &BrowserRules,
        transport: &Fetch,
        clock: browser::clock(),
        rng,
        names: &browser::BrowserHostNames,
    }
}

/// One request to the service, under the write lock.
async fn serve(request: Request) -> Response {
    let rng = RefCell::new(BrowserRandom);
    exclusive(service::handle(&browser_platform(&rng), request)).await
}

/// [`serve`], and the state the request ended with, where it kept one.
async fn serve_keeping_state(request: Request) -> (Response, Option<State>) {
    let rng = RefCell::new(BrowserRandom);
    exclusive(service::handle_keeping_state(
        &browser_platform(&rng),
        request,
    ))
    .await
}

/// The field of the stored state's head that names the worker that wrote
/// it.
const WRITER_FIELD: &str = "writer";

fn platform(error: BrowserError) -> PlatformError {
    PlatformError(error.0)
}

/// Locks an idle vault: every minute while unlocked with an idle time, the
/// alarm asks `idle.queryState`. An alarm, not a timer or an
/// `idle.onStateChanged` listener with a detection interval set at unlock:
/// the worker may be stopped, and restarted, in between.
const IDLE_ALARM: &str = "vault-idle";

/// Shows the expiry reminders that fall due while nothing else happens.
const REMINDER_ALARM: &str = "expiry-reminder";

/// Refreshes the OAuth logins due (OpenID Connect, Nuclia;
/// `Credentials::next_refresh` says when): an alarm, so a stopped worker is
/// woken for it.
const REFRESH_ALARM: &str = "token-refresh";

/// The browser login in progress, in `storage.session`.
const PENDING_LOGIN_KEY: &str = "pendingLogin";
/// Resumes the polling of a browser login after the worker was stopped.
const LOGIN_ALARM: &str = "browser-login";
/// The official client polls every second; so does the worker while it runs.
const LOGIN_POLL_MS: i32 = 1000;

thread_local! {
    /// Not state: whether this worker already runs a polling loop, so an
    /// alarm does not start a second one. Dies with the worker, as the loop
    /// does.
    static POLLING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn warn(context: &str, error: &dyn std::fmt::Display) {
    web_sys::console::warn_1(&JsValue::from_str(&format!(
        "Tokenward: {context}: {error}"
    )));
}

/// Brings the browser's rules, the alarms and every tab's badge in line
/// with storage.
async fn sync_everything() {
    RECONCILED.with(|done| done.set(true));
    let rng = RefCell::new(BrowserRandom);
    let platform = browser_platform(&rng);
    // One load for all of it: the reminders are marked from the state the
    // reconciliation applied, in its exclusive section (a write between
    // the two would be lost), and the alarms and badges follow that state.
    // A second load of 5,000 rules, right after their update, took Chromium
    // 45–65 ms while a page waited to see them.
    let due = exclusive(async {
        let (_, state) =
            service::reconcile_keeping(platform.store, platform.engine, platform.clock.now)
                .await
                .map_err(|e| ("reconcile", e))?;
        service::due_reminders_of(&platform, state)
            .await
            .map_err(|e| ("reminders", e))
    })
    .await;
    match due {
        Ok(due) => follow_whole(&show(due).await).await,
        Err((what, e)) => {
            warn(what, &e);
            follow_state().await;
        }
    }
}

/// After anything that may have changed the state: the reminders due are
/// shown (which records them, so first), then the alarms and the badges
/// follow the state, read once.
async fn follow_state() {
    follow(None).await;
}

/// [`follow_state`] from the state a request ended with, if it kept one.
async fn follow(state: Option<State>) {
    let read = show_reminders().await;
    // The request's own state when it kept one; else the whole state the
    // reminders were read from, in the same exclusive section; only when
    // that failed, a read of its own.
    // Only a whole state schedules alarms (a rule's edit, which may keep
    // a sized one, is followed by `follow_rule_edit`).
    let state = match state.filter(State::is_whole).or(read) {
        Some(state) => state,
        None => match load_state().await {
            Ok(state) => state,
            Err(e) => return warn("state", &e),
        },
    };
    follow_whole(&state).await;
}

/// The alarms and the badges, from `state`, whole and as stored.
async fn follow_whole(state: &State) {
    let now = browser::clock().now;
    schedule_expiry(state.credentials.next_expiry(now)).await;
    schedule_idle_lock(state).await;
    schedule_reminder(state).await;
    schedule_refresh(state).await;
    refresh_badges(state).await;
}

/// The alarm for the next OAuth refresh. None while locked: the
/// refresh tokens are sealed then, and the unlock comes back here.
async fn schedule_refresh(state: &State) {
    let next = state.credentials.next_refresh().filter(|_| !state.locked);
    let scheduled = match next {
        Some(when) => alarms::at(REFRESH_ALARM, when).await,
        None => alarms::clear(REFRESH_ALARM).await,
    };
    if let Err(e) = scheduled {
        warn("refresh alarm", &e);
    }
}

async fn schedule_expiry(next: Option<tokenward_core::credential::Timestamp>) {
    let scheduled = match next {
        Some(when) => alarms::at(EXPIRY_ALARM, when).await,
        None => alarms::clear(EXPIRY_ALARM).await,
    };
    if let Err(e) = scheduled {
        warn("expiry alarm", &e);
    }
}

/// An alarm fired: a credential expired, so the rules are recomputed; or
/// the idle check is due.
#[wasm_bindgen]
pub async fn background_on_alarm(alarm: JsValue) {
    reconcile_once().await;
    let name = Reflect::get(&alarm, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string());
    if name.as_deref() == Some(IDLE_ALARM) {
        lock_if_idle().await;
    } else if name.as_deref() == Some(REMINDER_ALARM) {
        follow_state().await;
    } else if name.as_deref() == Some(LOGIN_ALARM) {
        poll_browser_login().await;
    } else if name.as_deref() == Some(REFRESH_ALARM) {
        if let Response::Error { message } = serve(Request::RefreshLogins).await {
            warn("refresh", &browser::say(&message));
        }
        follow_state().await;
    } else {
        sync_everything().await;
    }
}

/// Shows the expiry reminders due now (the service marks them shown
/// first). Returns the whole state they were read from, as it is stored.
async fn show_reminders() -> Option<State> {
    let rng = RefCell::new(BrowserRandom);
    match exclusive(service::due_reminders(&browser_platform(&rng))).await {
        Ok(due) => Some(show(due).await),
        Err(e) => {
            warn("reminders", &e);
            None
        }
    }
}

/// Shows `due`'s reminders, marked shown already; returns its state.
async fn show(due: service::Due) -> State {
    for reminder in due.reminders {
        if let Err(e) = notifications::show(
            &reminder.id,
            &browser::say(&reminder.title),
            &browser::say(&reminder.message),
        )
        .await
        {
            warn("reminder", &e);
        }
    }
    due.state
}

/// The alarm for the next expiry reminder, if any is to come.
async fn schedule_reminder(state: &State) {
    let next = if state.reminders_off {
        None
    } else {
        tokenward_core::reminder::next(&state.credentials, &state.reminded, browser::clock().now)
    };
    let scheduled = match next {
        Some(when) => alarms::at(REMINDER_ALARM, when).await,
        None => alarms::clear(REMINDER_ALARM).await,
    };
    if let Err(e) = scheduled {
        warn("reminder alarm", &e);
    }
}

/// Resumes the polls of a pending browser login in a worker started by some
/// other event. The approval page loading in its tab is one (`tabs.onUpdated`),
/// so a login whose worker was stopped finishes as soon as the user
/// approves, not at the next alarm, which remains for when nothing else
/// happens. One `storage.session` read when no login is pending.
async fn resume_browser_login() {
    if POLLING.with(std::cell::Cell::get) {
        return;
    }
    let pending = LocalStore
        .pending_login()
        .await
        .ok()
        .flatten()
        .is_some_and(|record| {
            record.get("state").and_then(serde_json::Value::as_str) == Some("pending")
        });
    if pending {
        wasm_bindgen_futures::spawn_local(poll_browser_login());
    }
}

/// Polls the pending browser login every second until it is over, then
/// drops the alarm that would resume it. Runs once per worker.
async fn poll_browser_login() {
    if POLLING.with(|p| p.replace(true)) {
        return;
    }
    loop {
        let answer = serve(Request::PollBrowserLogin).await;
        let pending = matches!(&answer, Response::BrowserLogin(view) if view.state == "pending");
        if !pending {
            if let Err(e) = alarms::clear(LOGIN_ALARM).await {
                warn("login alarm", &e);
            }
            follow_state().await;
            break;
        }
        browser::sleep(LOGIN_POLL_MS).await;
    }
    POLLING.with(|p| p.set(false));
}

/// Carries the user through the identity provider's login in the
/// browser's login window, then hands where it ended to the service. The
/// login polls run beside it: they watch the deadline, and their extension
/// API calls keep the worker alive while the user types. A worker stopped
/// anyway loses this promise; the record's deadline then ends the login
/// with a message.
async fn web_auth_flow(url: String) {
    let request = match identity::launch_web_auth_flow(&url).await {
        Ok(redirect) => Request::FinishWebAuthFlow {
            redirect: Some(redirect),
            error: None,
        },
        Err(e) => Request::FinishWebAuthFlow {
            redirect: None,
            error: Some(e.0),
        },
    };
    if let Response::Error { message } = serve(request).await {
        warn("login", &browser::say(&message));
    }
    follow_state().await;
}

/// The idle check runs only while it can do something: protected,
/// unlocked, with an idle time.
async fn schedule_idle_lock(state: &State) {
    let idle_minutes = state.idle_minutes().filter(|_| !state.locked);
    let scheduled = match idle_minutes {
        Some(_) => alarms::every(IDLE_ALARM, 1.0).await,
        None => alarms::clear(IDLE_ALARM).await,
    };
    if let Err(e) = scheduled {
        warn("idle alarm", &e);
    }
}

async fn lock_if_idle() {
    let Ok(state) = load_state().await else {
        return;
    };
    let Some(minutes) = state.idle_minutes().filter(|_| !state.locked) else {
        schedule_idle_lock(&state).await;
        return;
    };
    match idle::away_for(minutes.saturating_mul(60)).await {
        Ok(true) => {
            if let Response::Error { message } = serve(Request::Lock).await {
                warn("idle lock", &browser::say(&message));
            }
            sync_everything().await;
        }
        Ok(false) => {}
        Err(e) => warn("idle state", &e),
    }
}

/// The state as the service reads it: secrets opened with the session key,
/// or placeholders while locked.
async fn load_state() -> Result<State, BrowserError> {
    service::read(&LocalStore)
        .await
        .map_err(|e| BrowserError(e.to_string()))
}

async fn refresh_badges(state: &State) {
    let tabs = match tabs::all().await {
        Ok(tabs) => tabs,
        Err(e) => return warn("badges", &e),
    };
    badge_tabs(state, tabs).await;
}

/// What follows a rule's save, toggle or delete: the badges, from the
/// state the request ended with when it tells the open tabs' pages (whole,
/// or sized to the rule's group and holding every rule that covers them:
/// no read at all); else from a read sized to those pages, which holds
/// every rule that covers them. The alarms and reminders follow the
/// credentials and the vault, which a rule's edit leaves as they were.
async fn follow_rule_edit(kept: Option<State>) {
    let tabs = match tabs::all().await {
        Ok(tabs) => tabs,
        Err(e) => return warn("badges", &e),
    };
    let pages: Vec<String> = tabs.iter().filter_map(|tab| tab.url.clone()).collect();
    let state = match kept.filter(|state| state.tells_pages(&pages)) {
        Some(state) => state,
        // Its reads are several: none may fall between a write's.
        None => match exclusive(service::read_for_pages(&LocalStore, &pages)).await {
            Ok(state) => state,
            Err(e) => return warn("badges", &e),
        },
    };
    badge_tabs(&state, tabs).await;
}

/// Each of `tabs` badged from `state`.
async fn badge_tabs(state: &State, tabs: Vec<browser::Tab>) {
    let tab_rules = load_tab_rules().await;
    for tab in tabs {
        let badge = badge_for(state, &tab_rules, tab.id, tab.url.as_deref()).await;
        // A tab may close while we loop; that is not an error worth raising.
        let _ = action::set_badge(tab.id, badge).await;
    }
}

/// The badge for a tab's URL: the same answer as the popup's status line
/// ([`tokenward_core::message::SiteView::sending`]). A rule whose site permission is
/// missing (never granted in Firefox, or withdrawn) sends nothing, so the
/// badge says so rather than "ON"; one sending a token that expires within
/// 7 days is amber.
async fn badge_for(state: &State, tab_rules: &TabRules, tab: i32, url: Option<&str>) -> Badge {
    let Some(url) = url else {
        return Badge::Off;
    };
    let now = browser::clock().now;
    let mut view = tokenward_core::message::SiteView::of(
        &state.book,
        &state.credentials,
        now,
        url,
        Some((tab, &tab_rules.rules)),
    );
    view.locked = state.locked;
    let permitted = match view.acting() {
        Some(rule) => permissions::contains_origins(&rule.host_permissions)
            .await
            .unwrap_or(false),
        None => true,
    };
    view.sending(permitted).badge()
}

/// The "this tab only" rules; unreadable ones read as none, which only
/// leaves a badge off.
async fn load_tab_rules() -> TabRules {
    match storage::session_get(TAB_RULES_KEY).await {
        Ok(value) => TabRules::decode(value.as_ref()),
        Err(e) => {
            warn("tab rules", &e);
            TabRules::default()
        }
    }
}

/// A host permission was granted or withdrawn: badges follow.
#[wasm_bindgen]
pub async fn background_on_permissions_changed(_permissions: JsValue) {
    reconcile_once().await;
    match load_state().await {
        Ok(state) => refresh_badges(&state).await,
        Err(e) => warn("badges", &e),
    }
}

#[wasm_bindgen]
pub async fn background_on_installed(_details: JsValue) {
    start().await;
}

#[wasm_bindgen]
pub async fn background_on_startup() {
    start().await;
}

/// Install, update or browser start: the badge colour, the rules and the
/// badges, all from stored state.
async fn start() {
    if let Err(e) = action::set_badge_color(BADGE_COLOR).await {
        warn("badge colour", &e);
    }
    sync_everything().await;
}

/// Stored state changed. When the background wrote it, it applied it
/// already: nothing to do. From outside (another version of Tokenward, a
/// restore, the developer tools), everything is reconciled.
#[wasm_bindgen]
pub async fn background_on_storage_changed(changes: JsValue, area: String) {
    // The administrator changed the policy: it applies live, through the
    // same reconciliation as everything else.
    if area == "managed" {
        sync_everything().await;
        return;
    }
    if area != "local" {
        return;
    }
    let Some(written) = local_change(&changes) else {
        return;
    };
    let own = format!("{}.", WORKER.with(String::clone));
    let ours = matches!(written, Written::Head(Some(ref mark)) if mark.starts_with(&own));
    if ours {
        reconcile_once().await;
    } else {
        sync_everything().await;
    }
}

/// What a change to `storage.local` wrote, as far as the background cares.
enum Written {
    /// A new head, with the mark of the worker that wrote it, if any.
    Head(Option<String>),
    /// Other keys were set and the head was not: only a writer from outside
    /// (the developer tools, another extension version) does that, since
    /// every write of the background's carries a head no earlier write left.
    KeysWithoutHead,
}

/// `None` when the change removes keys and sets none: the background's own
/// writes remove what the head no longer lists, in a call of its own after
/// the head, and that needs no reconciliation.
fn local_change(changes: &JsValue) -> Option<Written> {
    if let Ok(change) = Reflect::get(changes, &JsValue::from_str(STATE_KEY)) {
        if !change.is_undefined() {
            let mark = Reflect::get(&change, &JsValue::from_str("newValue"))
                .and_then(|value| Reflect::get(&value, &JsValue::from_str(WRITER_FIELD)))
                .ok()
                .and_then(|w| w.as_string());
            return Some(Written::Head(mark));
        }
    }
    let keys = js_sys::Object::keys(changes.unchecked_ref::<js_sys::Object>());
    let sets = keys.iter().any(|key| {
        Reflect::get(changes, &key)
            .and_then(|change| Reflect::get(&change, &JsValue::from_str("newValue")))
            .is_ok_and(|value| !value.is_undefined())
    });
    sets.then_some(Written::KeysWithoutHead)
}

/// A tab navigated: its badge follows its new URL.
#[wasm_bindgen]
pub async fn background_on_tab_updated(tab_id: i32, _change: JsValue, tab: JsValue) {
    reconcile_once().await;
    resume_browser_login().await;
    let url = Reflect::get(&tab, &JsValue::from_str("url"))
        .ok()
        .and_then(|u| u.as_string());
    let Some(url) = url else { return };
    if url.starts_with(&format!(
        "{}?",
        tokenward_core::provider::nuclia::OAUTH_REDIRECT
    )) {
        loopback_redirect(tab_id, url).await;
        return;
    }
    match load_state().await {
        Ok(state) => {
            let tab_rules = load_tab_rules().await;
            let badge = badge_for(&state, &tab_rules, tab_id, Some(&url)).await;
            let _ = action::set_badge(tab_id, badge).await;
        }
        Err(e) => warn("badge", &e),
    }
}

/// A tab closed: its "this tab only" rules end with it.
#[wasm_bindgen]
pub async fn background_on_tab_removed(tab_id: i32) {
    reconcile_once().await;
    let now = browser::clock().now;
    if let Err(e) = exclusive(service::tab_closed(&LocalStore, &BrowserRules, now, tab_id)).await {
        warn("tab rules", &e);
    }
}

/// Nuclia's login tab arrived at the official client's loopback redirect,
/// where nothing of ours listens: its address carries the code. Handed to
/// the pending login, which checks its `state` (an unrelated or repeated
/// visit changes nothing), and the tab, whose page cannot load, is closed.
/// Seeing the address needs the `http://127.0.0.1/*` host permission, asked
/// by the login's click.
async fn loopback_redirect(tab_id: i32, url: String) {
    let answer = serve(Request::FinishWebAuthFlow {
        redirect: Some(url),
        error: None,
    })
    .await;
    let finished = matches!(&answer, Response::BrowserLogin(view) if view.state != "pending");
    if finished {
        // The tab reports the address more than once (loading, then the
        // error page); the first report closes it, the later ones find it
        // gone, which is not worth a warning.
        let _ = tabs::close(tab_id).await;
        follow_state().await;
    }
}

/// A page's request. Only Tokenward's own pages may send one: the manifest
/// exposes no external messaging and injects no content script, and the
/// sender check keeps it that way if either changes.
#[wasm_bindgen]
pub async fn background_on_message(message: JsValue, sender: JsValue) -> Result<JsValue, JsValue> {
    let response = match read_message(&message, &sender) {
        // Its own function, compiled by a new worker only when a request
        // is served.
        Ok(request) => service::apart(serve_page(request)).await,
        Err(message) => Response::Error { message },
    };
    Ok(browser::runtime::answer_to_js(&response)?)
}

/// A page's message as a request, or why it is refused.
fn read_message(message: &JsValue, sender: &JsValue) -> Result<Request, Text> {
    if !from_own_page(sender) {
        return Err(text!("error_foreign_sender"));
    }
    match browser::from_js_value::<Request>(message) {
        Err(e) => Err(text!("error_malformed_request", e.0)),
        Ok(Request::FinishWebAuthFlow { .. }) => Err(text!("error_oauth_finish_from_page")),
        Ok(request) => Ok(request),
    }
}

/// A page's request: served, then the follow-up work started.
async fn serve_page(mut request: Request) -> Response {
    if let Request::StartBrowserLogin {
        provider: tokenward_core::provider::Provider::OpenId,
        redirect_uri,
        ..
    } = &mut request
    {
        // The browser's own, whatever the page sent: the only one
        // `launchWebAuthFlow` stops at.
        *redirect_uri = identity::redirect_url().unwrap_or_default();
    }
    let mutates = request.may_change_state();
    let only_rules = request.changes_only_rules();
    let starts_login = matches!(request, Request::StartBrowserLogin { .. });
    let asks_login = matches!(request, Request::BrowserLoginStatus);
    let (response, kept) = serve_keeping_state(request).await;
    if asks_login {
        // The popup following a login a stopped worker left pending.
        resume_browser_login().await;
    }
    if let (true, Response::BrowserLogin(view)) = (starts_login, &response) {
        if let Some(url) = &view.approve_url {
            if view.provider == Some(tokenward_core::provider::Provider::OpenId) {
                wasm_bindgen_futures::spawn_local(web_auth_flow(url.clone()));
            } else if let Err(e) = tabs::open(url).await {
                warn("login tab", &e);
            }
            if let Err(e) = alarms::every(LOGIN_ALARM, 0.5).await {
                warn("login alarm", &e);
            }
            wasm_bindgen_futures::spawn_local(poll_browser_login());
        }
    }
    if mutates {
        // The page gets its answer first; the badges and alarms
        // follow, from the state the request ended with. The
        // browser keeps the worker alive while a page's message
        // port is open and for 30 s after the last event.
        // <https://developer.chrome.com/docs/extensions/develop/concepts/service-workers/lifecycle>
        if only_rules {
            wasm_bindgen_futures::spawn_local(follow_rule_edit(kept));
        } else {
            wasm_bindgen_futures::spawn_local(follow(kept));
        }
    }
    // A new worker's first request: answered, then everything is
    // reconciled (see `RECONCILED`).
    if !RECONCILED.with(std::cell::Cell::get) {
        wasm_bindgen_futures::spawn_local(reconcile_once());
    }
    response
}

fn from_own_page(sender: &JsValue) -> bool {
    let url = Reflect::get(sender, &JsValue::from_str("url"))
        .ok()
        .and_then(|u| u.as_string());
    match (url, runtime::extension_base_url()) {
        (Some(url), Ok(base)) => url.starts_with(&base),
        _ => false,
    }
}
