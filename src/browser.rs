//! The extension APIs, typed. This is the one module that knows how the
//! browser spells things, so browser differences live here (and in the
//! manifest derivation in `xtask`), each with the source that forces it.
//!
//! Values cross the boundary as JSON (`JSON.parse`/`stringify` against
//! serde): the DNR and message types are plain data, and JSON keeps their
//! shape exactly as the serde tests pin it.

use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use tokenward_core::compile::Limits;
use tokenward_core::dnr::{Rule, UpdateRuleOptions};

/// An error the browser reported, or a value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(pub String);

impl From<JsValue> for BrowserError {
    fn from(value: JsValue) -> Self {
        if let Some(error) = value.dyn_ref::<js_sys::Error>() {
            return BrowserError(String::from(error.message()));
        }
        if let Some(text) = value.as_string() {
            return BrowserError(text);
        }
        BrowserError(
            JSON::stringify(&value)
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_else(|| "unknown browser error".to_owned()),
        )
    }
}

impl From<BrowserError> for JsValue {
    fn from(error: BrowserError) -> Self {
        js_sys::Error::new(&error.0).into()
    }
}

type Result<T> = std::result::Result<T, BrowserError>;

/// The extension API root. Firefox provides `browser` (promise-based, and
/// also `chrome`); Chromium provides only `chrome`, whose MV3 methods return
/// promises when no callback is passed.
/// <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/Chrome_incompatibilities>
fn root() -> Result<JsValue> {
    let global = js_sys::global();
    for name in ["browser", "chrome"] {
        let candidate = Reflect::get(&global, &JsValue::from_str(name))?;
        if candidate.is_object()
            && Reflect::has(&candidate, &JsValue::from_str("runtime")).unwrap_or(false)
        {
            return Ok(candidate);
        }
    }
    Err(BrowserError("this page has no extension API".to_owned()))
}

fn namespace(path: &str) -> Result<JsValue> {
    let mut value = root()?;
    for part in path.split('.') {
        value = Reflect::get(&value, &JsValue::from_str(part))?;
        if value.is_undefined() {
            return Err(BrowserError(format!("this browser has no {path} API")));
        }
    }
    Ok(value)
}

/// Calls `path.method(...args)` synchronously and returns what it returned
/// (usually a promise). Synchronous on purpose: `permissions.request` must be
/// called inside the user's click, before any `await`.
fn invoke(path: &str, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let ns = namespace(path)?;
    let function: Function = Reflect::get(&ns, &JsValue::from_str(method))?
        .dyn_into()
        .map_err(|_| BrowserError(format!("this browser has no {path}.{method}")))?;
    let array: Array = args.iter().collect();
    Ok(function.apply(&ns, &array)?)
}

async fn call(path: &str, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let returned = invoke(path, method, args)?;
    // `Promise.resolve` adopts promises from any realm and passes plain
    // values through.
    Ok(JsFuture::from(Promise::resolve(&returned)).await?)
}

/// `i18n.getMessage(key, args)`: the message in the browser's language.
/// Synchronous in both browsers. An unknown name gives `""`
/// (<https://developer.chrome.com/docs/extensions/reference/api/i18n#method-getMessage>).
pub fn message(key: &str, args: &[String]) -> Result<String> {
    let args: Array = args.iter().map(|a| JsValue::from_str(a)).collect();
    invoke("i18n", "getMessage", &[JsValue::from_str(key), args.into()])?
        .as_string()
        .ok_or_else(|| BrowserError("i18n.getMessage returned no string".to_owned()))
}

/// Says a [`Text`] in the browser's language. A name missing from the
/// catalogue (a bug the catalogue test exists to prevent) shows as
/// `[name]` rather than as nothing.
pub fn say(text: &tokenward_core::text::Text) -> String {
    use tokenward_core::text::Arg;
    let args: Vec<String> = text
        .args
        .iter()
        .map(|arg| match arg {
            Arg::Data(data) => data.clone(),
            Arg::Text(inner) => say(inner),
        })
        .collect();
    match template(&text.key) {
        Some(template) => template.fill(&args),
        None => format!("[{}]", text.key),
    }
}

thread_local! {
    /// The catalogue's messages asked so far, by name. Not state: the
    /// catalogue is part of the installed extension and cannot change while
    /// a page or worker runs; a new one starts empty and asks again.
    static TEMPLATES: std::cell::RefCell<
        std::collections::BTreeMap<String, Option<std::rc::Rc<tokenward_core::text::Template>>>,
    > = Default::default();
}

/// The message `key` as a [`tokenward_core::text::Template`], asked of the
/// browser the first time only.
fn template(key: &str) -> Option<std::rc::Rc<tokenward_core::text::Template>> {
    use tokenward_core::text::Template;
    if let Some(known) = TEMPLATES.with(|t| t.borrow().get(key).cloned()) {
        return known;
    }
    let asked = message(key, &Template::markers())
        .ok()
        .and_then(Template::from_answer)
        .map(std::rc::Rc::new);
    TEMPLATES.with(|t| t.borrow_mut().insert(key.to_owned(), asked.clone()));
    asked
}

pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    Ok(JSON::parse(&to_json(value)?)?)
}

/// A `T` from a JS value, read from its JSON text straight into `T`.
pub fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T> {
    from_json(&json_text(value)?)
}

/// A `T` from a JS value through a [`serde_json::Value`], the way the core
/// reads stored state ([`tokenward_core::json`]). For what the background
/// reads whose parts it also reads from storage, a page's request above
/// all: read both ways, each type's reader is compiled twice (the request
/// read this way keeps 7 kB out of the background's gzipped module).
pub fn from_js_value<T: DeserializeOwned>(value: &JsValue) -> Result<T> {
    tokenward_core::json::read(&value_from_js(value)?).map_err(|e| BrowserError(e.to_string()))
}

/// A JS value as a [`serde_json::Value`].
pub fn value_from_js(value: &JsValue) -> Result<serde_json::Value> {
    tokenward_core::json::parse(&json_text(value)?).map_err(|e| BrowserError(e.to_string()))
}

fn json_text(value: &JsValue) -> Result<String> {
    JSON::stringify(value)?
        .as_string()
        .ok_or_else(|| BrowserError("value has no JSON form".to_owned()))
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| BrowserError(e.to_string()))
}

/// A `T` read straight from JSON text. The views the pages read must be
/// read so (their tag comes first, which a `Value`'s sorted map loses:
/// `tagged` in the core), and the browser's rule lists are: thousands of
/// entries, read about three times faster than through a `Value`.
fn from_json<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| BrowserError(e.to_string()))
}

fn object(entries: &[(&str, JsValue)]) -> Result<JsValue> {
    let obj = Object::new();
    for (key, value) in entries {
        Reflect::set(&obj, &JsValue::from_str(key), value)?;
    }
    Ok(obj.into())
}

/// Provider requests, with the global `fetch` (a service worker has no
/// `window`).
pub mod net {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;
    use tokenward_core::provider::{HttpRequest, HttpResponse};
    use tokenward_core::service::StreamRead;

    /// How long a provider may take to answer before the user is told.
    const TIMEOUT_MS: u32 = 20_000;

    /// Sends `request` and reads the whole answer. Cookies are never sent
    /// (`credentials: "omit"`): the token in the request is the only
    /// credential, as with the official clients.
    pub async fn fetch(request: &HttpRequest) -> Result<HttpResponse> {
        let response = start(request, TIMEOUT_MS).await?;
        let mut out = head(&response)?;
        out.body = text(&response).await?;
        Ok(out)
    }

    /// Sends `request` and answers with the response once its status and
    /// headers came, the body still to read. Gives up after `timeout_ms`,
    /// body included.
    async fn start(request: &HttpRequest, timeout_ms: u32) -> Result<JsValue> {
        let headers = Object::new();
        for (name, value) in &request.headers {
            Reflect::set(
                &headers,
                &JsValue::from_str(name),
                &JsValue::from_str(value),
            )?;
        }
        let global = js_sys::global();
        let signal = Reflect::get(&global, &JsValue::from_str("AbortSignal"))
            .ok()
            .and_then(|a| {
                let timeout: Function = Reflect::get(&a, &JsValue::from_str("timeout"))
                    .ok()?
                    .dyn_into()
                    .ok()?;
                timeout.call1(&a, &JsValue::from(timeout_ms)).ok()
            })
            .unwrap_or(JsValue::UNDEFINED);
        let init = object(&[
            ("method", JsValue::from_str(request.method.as_str())),
            ("headers", headers.into()),
            ("credentials", JsValue::from_str("omit")),
            ("cache", JsValue::from_str("no-store")),
            ("signal", signal),
            (
                "body",
                request
                    .body
                    .as_deref()
                    .map(JsValue::from_str)
                    .unwrap_or(JsValue::UNDEFINED),
            ),
        ])?;
        let fetch: Function = Reflect::get(&global, &JsValue::from_str("fetch"))?
            .dyn_into()
            .map_err(|_| BrowserError("this context has no fetch".to_owned()))?;
        JsFuture::from(Promise::resolve(&fetch.call2(
            &global,
            &JsValue::from_str(&request.url),
            &init,
        )?))
        .await
        .map_err(|e| {
            let e = BrowserError::from(e);
            if e.0.contains("timed out") || e.0.contains("aborted") {
                BrowserError(format!("no answer within {} seconds", timeout_ms / 1000))
            } else {
                e
            }
        })
    }

    /// The status and headers of a `Response`.
    fn head(response: &JsValue) -> Result<HttpResponse> {
        let status = Reflect::get(response, &JsValue::from_str("status"))?
            .as_f64()
            .unwrap_or(0.0) as u16;
        let mut out = HttpResponse::new(status, String::new());
        let header_list = Reflect::get(response, &JsValue::from_str("headers"))?;
        let pairs = Array::from(&header_list);
        for pair in pairs.iter() {
            let pair = Array::from(&pair);
            if let (Some(n), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.headers.push((n, v));
            }
        }
        Ok(out)
    }

    async fn text(response: &JsValue) -> Result<String> {
        let text: Function = Reflect::get(response, &JsValue::from_str("text"))?
            .dyn_into()
            .map_err(|_| BrowserError("the answer has no body".to_owned()))?;
        Ok(JsFuture::from(Promise::resolve(&text.call0(response)?))
            .await?
            .as_string()
            .unwrap_or_default())
    }

    /// How long a login stream may stay open: past the login's own
    /// five-minute window, which ends it first.
    const STREAM_TIMEOUT_MS: u32 = 6 * 60 * 1000;
    /// How long [`read_stream`] waits when asked to.
    const STREAM_WAIT_MS: f64 = 20_000.0;

    /// A login stream being read: the bytes of the line in progress, the
    /// complete lines not yet read, and whether it ended.
    struct OpenStream {
        reader: JsValue,
        partial: Vec<u8>,
        lines: Vec<String>,
        ended: bool,
    }

    impl OpenStream {
        fn take(&mut self, bytes: &[u8]) {
            for &b in bytes {
                if b == b'\n' {
                    let line = std::mem::take(&mut self.partial);
                    self.lines.push(String::from_utf8_lossy(&line).into_owned());
                } else {
                    self.partial.push(b);
                }
            }
            // A provider that never ends a line is not followed further.
            if self.partial.len() > tokenward_core::provider::jina::MAX_EVENT_BYTES {
                self.partial.clear();
                self.ended = true;
            }
        }

        fn end(&mut self) {
            if !self.partial.is_empty() {
                let line = std::mem::take(&mut self.partial);
                self.lines.push(String::from_utf8_lossy(&line).into_owned());
            }
            self.ended = true;
        }
    }

    thread_local! {
        /// Login streams open in this worker, by id. Not state: each is a
        /// `fetch` being read, which ends with the worker; the service
        /// reads its absence after a restart as a lost login
        /// ([`StreamRead::Gone`]).
        static STREAMS: RefCell<BTreeMap<String, OpenStream>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Sends `request` and keeps reading its body as lines under `id`.
    pub async fn open_stream(id: &str, request: &HttpRequest) -> Result<HttpResponse> {
        let response = start(request, STREAM_TIMEOUT_MS).await?;
        let mut out = head(&response)?;
        if !out.is_success() {
            out.body = text(&response).await?;
            return Ok(out);
        }
        let body = Reflect::get(&response, &JsValue::from_str("body"))?;
        let get_reader: Function = Reflect::get(&body, &JsValue::from_str("getReader"))?
            .dyn_into()
            .map_err(|_| BrowserError("the answer cannot be read as a stream".to_owned()))?;
        let reader = get_reader.call0(&body)?;
        STREAMS.with(|s| {
            s.borrow_mut().insert(
                id.to_owned(),
                OpenStream {
                    reader: reader.clone(),
                    partial: Vec::new(),
                    lines: Vec::new(),
                    ended: false,
                },
            )
        });
        wasm_bindgen_futures::spawn_local(pump(id.to_owned(), reader));
        Ok(out)
    }

    /// Reads the stream's chunks into its lines until it ends or is
    /// closed.
    async fn pump(id: String, reader: JsValue) {
        let read: Option<Function> = Reflect::get(&reader, &JsValue::from_str("read"))
            .ok()
            .and_then(|f| f.dyn_into().ok());
        loop {
            let chunk = match &read {
                Some(read) => match read.call0(&reader) {
                    Ok(p) => JsFuture::from(Promise::resolve(&p)).await.ok(),
                    Err(_) => None,
                },
                None => None,
            };
            let done = chunk.as_ref().is_none_or(|c| {
                Reflect::get(c, &JsValue::from_str("done"))
                    .map(|d| d.is_truthy())
                    .unwrap_or(true)
            });
            let bytes = chunk
                .as_ref()
                .and_then(|c| Reflect::get(c, &JsValue::from_str("value")).ok())
                .filter(|v| !v.is_undefined())
                .map(|v| js_sys::Uint8Array::new(&v).to_vec())
                .unwrap_or_default();
            let open = STREAMS.with(|s| match s.borrow_mut().get_mut(&id) {
                Some(stream) => {
                    stream.take(&bytes);
                    if done {
                        stream.end();
                    }
                    !stream.ended
                }
                None => false,
            });
            if !open {
                return;
            }
        }
    }

    /// The complete lines received on `id` since the last read.
    pub async fn read_stream(id: &str, wait: bool) -> StreamRead {
        let deadline = js_sys::Date::now() + STREAM_WAIT_MS;
        loop {
            let read = STREAMS.with(|s| {
                s.borrow_mut().get_mut(id).map(|stream| {
                    let lines = std::mem::take(&mut stream.lines);
                    if stream.ended {
                        StreamRead::Ended(lines)
                    } else {
                        StreamRead::Lines(lines)
                    }
                })
            });
            match read {
                None => return StreamRead::Gone,
                Some(StreamRead::Lines(lines))
                    if lines.is_empty() && wait && js_sys::Date::now() < deadline =>
                {
                    super::sleep(50).await;
                }
                Some(read) => return read,
            }
        }
    }

    /// Stops reading `id`: the `fetch` is cancelled, the stream forgotten.
    pub fn close_stream(id: &str) {
        let closed = STREAMS.with(|s| s.borrow_mut().remove(id));
        if let Some(stream) = closed {
            let cancel: Option<Function> =
                Reflect::get(&stream.reader, &JsValue::from_str("cancel"))
                    .ok()
                    .and_then(|f| f.dyn_into().ok());
            if let Some(cancel) = cancel {
                let _ = cancel.call0(&stream.reader);
            }
        }
    }
}

/// Waits `ms` milliseconds with the global `setTimeout`, which pages and
/// service workers both have. Only for short waits while the worker is
/// busy anyway; anything that must outlive the worker is an alarm.
pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout = Reflect::get(&js_sys::global(), &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        if let Some(set_timeout) = set_timeout {
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &JsValue::from(ms));
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// The time, as the core takes it.
pub fn clock() -> tokenward_core::credential::Clock {
    let date = js_sys::Date::new_0();
    tokenward_core::credential::Clock {
        now: tokenward_core::credential::Timestamp((js_sys::Date::now() / 1000.0) as i64),
        utc_offset_minutes: -(date.get_timezone_offset() as i32),
    }
}

/// The browser's URL parser, for hosts typed in Unicode: `new
/// URL(…).hostname` is the very form the browser matches rules against
/// (the URL standard's domain to ASCII, UTS #46), so it converts them,
/// and the wasm carries no Unicode tables ([`tokenward_core::pattern::HostNames`]).
#[derive(Debug, Clone, Copy)]
pub struct BrowserHostNames;

impl tokenward_core::pattern::HostNames for BrowserHostNames {
    fn to_ascii(&self, host: &str) -> Option<String> {
        // `with_ascii_host` passes hosts without delimiters, so the URL's
        // host is all of `host`.
        let url = web_sys::Url::new(&format!("https://{host}/")).ok()?;
        Some(url.hostname())
    }
}

/// Wake-ups that survive the service worker stopping.
pub mod alarms {
    use super::*;

    /// Fires `name` at `when` (Unix seconds), replacing any earlier one.
    pub async fn at(name: &str, when: tokenward_core::credential::Timestamp) -> Result<()> {
        let info = object(&[("when", JsValue::from_f64(when.0 as f64 * 1000.0))])?;
        call("alarms", "create", &[JsValue::from_str(name), info])
            .await
            .map(drop)
    }

    /// Fires `name` every `minutes` (Chromium's floor is half a minute),
    /// unless it already exists: creating it again would push its next
    /// firing back.
    /// <https://developer.chrome.com/docs/extensions/reference/api/alarms#method-create>
    pub async fn every(name: &str, minutes: f64) -> Result<()> {
        let existing = call("alarms", "get", &[JsValue::from_str(name)]).await?;
        if existing.is_object() {
            return Ok(());
        }
        let info = object(&[("periodInMinutes", JsValue::from_f64(minutes))])?;
        call("alarms", "create", &[JsValue::from_str(name), info])
            .await
            .map(drop)
    }

    pub async fn clear(name: &str) -> Result<()> {
        call("alarms", "clear", &[JsValue::from_str(name)])
            .await
            .map(drop)
    }
}

/// `identity`: the browser carries the user through an identity
/// provider's login and hands back where it redirected.
pub mod identity {
    use super::*;

    /// `https://<extension id>.chromiumapp.org/` in Chromium,
    /// `https://<hash>.extensions.allizom.org/` in Firefox: the redirect
    /// URI to register with the identity provider, and the one
    /// `launchWebAuthFlow` stops at.
    pub fn redirect_url() -> Result<String> {
        invoke("identity", "getRedirectURL", &[])?
            .as_string()
            .ok_or_else(|| BrowserError("the browser gave no redirect URL".to_owned()))
    }

    /// Opens `url` in the browser's login window and resolves with the URL
    /// the provider redirected to. Rejects when the user closes the window
    /// or the provider never redirects there.
    /// <https://developer.chrome.com/docs/extensions/reference/api/identity#method-launchWebAuthFlow>
    pub async fn launch_web_auth_flow(url: &str) -> Result<String> {
        let details = object(&[
            ("url", JsValue::from_str(url)),
            ("interactive", JsValue::TRUE),
        ])?;
        call("identity", "launchWebAuthFlow", &[details])
            .await?
            .as_string()
            .ok_or_else(|| BrowserError("the login window gave no address back".to_owned()))
    }
}

pub mod storage {
    use super::*;

    /// Everything `storage.local` holds, as one object.
    pub async fn local_get_all() -> Result<Option<serde_json::Value>> {
        let items = call("storage.local", "get", &[JsValue::NULL]).await?;
        if items.is_undefined() || items.is_null() {
            return Ok(None);
        }
        value_from_js(&items).map(Some)
    }

    /// `storage.local.get(keys)`: the items under `keys` that are stored,
    /// as one object.
    pub async fn local_get(keys: &[String]) -> Result<serde_json::Value> {
        let list: js_sys::Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let items = call("storage.local", "get", &[list.into()]).await?;
        if items.is_undefined() || items.is_null() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        value_from_js(&items)
    }

    /// `storage.managed.get(null)`: what an administrator set through
    /// browser policy. Chromium answers `{}` when nothing is set; Firefox
    /// rejects ("Managed storage manifest not found"), read as nothing.
    /// <https://developer.mozilla.org/en-US/docs/Mozilla/Add-ons/WebExtensions/API/storage/managed>
    pub async fn managed_get_all() -> Option<serde_json::Value> {
        let items = call("storage.managed", "get", &[JsValue::NULL])
            .await
            .ok()?;
        if items.is_undefined() || items.is_null() {
            return None;
        }
        value_from_js(&items).ok()
    }

    /// `storage.local.set` of several keys in one call, which both browsers
    /// apply in one transaction: every key or none (Chromium writes one
    /// LevelDB batch; Firefox one IndexedDB transaction).
    /// <https://developer.chrome.com/docs/extensions/reference/api/storage#method-StorageArea-set>
    pub async fn local_set_all(items: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
        let items = to_js(items)?;
        call("storage.local", "set", &[items]).await?;
        Ok(())
    }

    pub async fn local_remove(keys: &[String]) -> Result<()> {
        let keys = to_js(&keys)?;
        call("storage.local", "remove", &[keys]).await?;
        Ok(())
    }

    /// `storage.session`: in memory, gone when the browser closes, and by
    /// default out of reach of content scripts (Tokenward has none anyway).
    /// <https://developer.chrome.com/docs/extensions/reference/api/storage#property-session>
    pub async fn session_get_string(key: &str) -> Result<Option<String>> {
        let items = call("storage.session", "get", &[JsValue::from_str(key)]).await?;
        Ok(Reflect::get(&items, &JsValue::from_str(key))?.as_string())
    }

    pub async fn session_set_string(key: &str, value: &str) -> Result<()> {
        let items = object(&[(key, JsValue::from_str(value))])?;
        call("storage.session", "set", &[items]).await?;
        Ok(())
    }

    pub async fn session_get(key: &str) -> Result<Option<serde_json::Value>> {
        let items = call("storage.session", "get", &[JsValue::from_str(key)]).await?;
        let value = Reflect::get(&items, &JsValue::from_str(key))?;
        if value.is_undefined() {
            return Ok(None);
        }
        value_from_js(&value).map(Some)
    }

    pub async fn session_set(key: &str, value: &serde_json::Value) -> Result<()> {
        let items = object(&[(key, to_js(value)?)])?;
        call("storage.session", "set", &[items]).await?;
        Ok(())
    }

    pub async fn session_remove(key: &str) -> Result<()> {
        call("storage.session", "remove", &[JsValue::from_str(key)]).await?;
        Ok(())
    }
}

/// The browser's CSPRNG, `crypto.getRandomValues`, present in pages and in
/// service workers alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserRandom;

impl tokenward_core::vault::RngSource for BrowserRandom {
    fn fill(
        &mut self,
        dest: &mut [u8],
    ) -> std::result::Result<(), tokenward_core::vault::RngUnavailable> {
        let mut fill = || -> Result<()> {
            let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
            let get = Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))?
                .dyn_into::<js_sys::Function>()?;
            // getRandomValues takes at most 65,536 bytes a call.
            for chunk in dest.chunks_mut(65_536) {
                let buffer = js_sys::Uint8Array::new_with_length(chunk.len() as u32);
                get.call1(&crypto, &buffer)?;
                buffer.copy_to(chunk);
            }
            Ok(())
        };
        fill().map_err(|_| tokenward_core::vault::RngUnavailable)
    }
}

/// System notifications: `notifications.create`.
pub mod notifications {
    use super::*;

    /// Shows a notification with Tokenward's icon; the same `id` replaces
    /// an earlier one.
    pub async fn show(id: &str, title: &str, message: &str) -> Result<()> {
        let icon = runtime::extension_base_url()? + "icons/icon-128.png";
        let options = object(&[
            ("type", JsValue::from_str("basic")),
            ("iconUrl", JsValue::from_str(&icon)),
            ("title", JsValue::from_str(title)),
            ("message", JsValue::from_str(message)),
        ])?;
        call("notifications", "create", &[JsValue::from_str(id), options])
            .await
            .map(drop)
    }
}

/// Whether the user is at the machine: `idle.queryState`.
pub mod idle {
    use super::*;

    /// True when there was no input for `seconds`, or the screen is locked.
    pub async fn away_for(seconds: u32) -> Result<bool> {
        let state = call(
            "idle",
            "queryState",
            &[JsValue::from_f64(f64::from(seconds))],
        )
        .await?;
        Ok(state.as_string().is_some_and(|s| s != "active"))
    }
}

pub use tokenward_core::dnr::RuleSet;

pub mod dnr {
    use super::*;

    fn methods(set: RuleSet) -> (&'static str, &'static str) {
        match set {
            RuleSet::Dynamic => ("getDynamicRules", "updateDynamicRules"),
            RuleSet::Session => ("getSessionRules", "updateSessionRules"),
        }
    }

    pub async fn rules(set: RuleSet) -> Result<Vec<Rule>> {
        let rules = call("declarativeNetRequest", methods(set).0, &[]).await?;
        from_js(&rules)
    }

    pub async fn update(set: RuleSet, update: &UpdateRuleOptions) -> Result<()> {
        call("declarativeNetRequest", methods(set).1, &[to_js(update)?]).await?;
        Ok(())
    }

    /// What rules are compiled for here: this browser, and its limits.
    pub fn target() -> tokenward_core::compile::Target {
        let browser = match runtime::extension_base_url() {
            Ok(base) => tokenward_core::dnr::Browser::of_extension_url(&base),
            Err(_) => tokenward_core::dnr::Browser::Chromium,
        };
        tokenward_core::compile::Target {
            browser,
            limits: limits(),
        }
    }

    /// The limits as the browser states them. Chromium names the cap on
    /// `modifyHeaders` rules `MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES`; Firefox
    /// has `MAX_NUMBER_OF_DYNAMIC_AND_SESSION_RULES` (older) or
    /// `MAX_NUMBER_OF_DYNAMIC_RULES`. Whatever is missing falls back to
    /// Chromium's documented values.
    pub fn limits() -> Limits {
        let read = |name: &str| -> Option<usize> {
            let ns = namespace("declarativeNetRequest").ok()?;
            let n = Reflect::get(&ns, &JsValue::from_str(name)).ok()?.as_f64()?;
            (n >= 1.0).then_some(n as usize)
        };
        let max_rules = read("MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES")
            .or_else(|| read("MAX_NUMBER_OF_DYNAMIC_AND_SESSION_RULES"))
            .or_else(|| read("MAX_NUMBER_OF_DYNAMIC_RULES"))
            .unwrap_or(Limits::CHROMIUM.max_rules);
        let max_regex_rules =
            read("MAX_NUMBER_OF_REGEX_RULES").unwrap_or(Limits::CHROMIUM.max_regex_rules);
        Limits {
            max_rules,
            max_regex_rules,
        }
    }
}

pub mod runtime {
    use super::*;
    use tokenward_core::message::{Request, Response};

    /// Sends a request to the background and waits for its answer.
    pub async fn send(request: &Request) -> Result<Response> {
        send_now(request).await
    }

    /// Sends a request right now, synchronously, and returns the pending
    /// answer. Called inside a click handler, the message is on its way
    /// before anything can close the page: a popup loses focus, and dies,
    /// when the browser shows a permission prompt over it. A request that
    /// could not be sent at all answers with that error.
    pub fn send_now(
        request: &Request,
    ) -> impl std::future::Future<Output = Result<Response>> + 'static {
        let sent = to_js(request)
            .and_then(|message| invoke("runtime", "sendMessage", &[message]))
            .map(|promise| JsFuture::from(Promise::resolve(&promise)));
        async move {
            let answer = sent?.await?;
            if answer.is_undefined() {
                return Err(BrowserError("the background did not answer".to_owned()));
            }
            match answer.as_string() {
                Some(text) => from_json(&text),
                // background.js's own answer when Rust threw: an object.
                None => from_js(&answer),
            }
        }
    }

    /// An answer to a page, as its JSON text rather than as an object: the
    /// browser then carries one string, where an object is converted field
    /// by field on each side (Chromium turns a message into its own values
    /// and back; Firefox clones it), and the page reads the text as sent
    /// without `JSON.stringify`. An answer listing 5,000 rules is about
    /// 50,000 values.
    pub fn answer_to_js(response: &Response) -> Result<JsValue> {
        to_json(response).map(|text| JsValue::from_str(&text))
    }

    /// `chrome-extension://<id>/` or `moz-extension://<uuid>/`.
    pub fn extension_base_url() -> Result<String> {
        invoke("runtime", "getURL", &[JsValue::from_str("")])?
            .as_string()
            .ok_or_else(|| BrowserError("runtime.getURL returned no string".to_owned()))
    }

    pub async fn open_options_page() -> Result<()> {
        call("runtime", "openOptionsPage", &[]).await.map(drop)
    }
}

pub mod permissions {
    use super::*;

    /// Asks for a host permission. Call it synchronously from the click
    /// handler: Chromium needs a user gesture and Firefox only accepts the
    /// call while the input event is being handled.
    /// <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/permissions/request>
    pub fn request_origins(origins: &[String]) -> Result<JsFuture> {
        let origins: Array = origins.iter().map(|o| JsValue::from_str(o)).collect();
        let request = object(&[("origins", origins.into())])?;
        let promise = invoke("permissions", "request", &[request])?;
        Ok(JsFuture::from(Promise::resolve(&promise)))
    }

    pub async fn contains_origins(origins: &[String]) -> Result<bool> {
        let origins: Array = origins.iter().map(|o| JsValue::from_str(o)).collect();
        let query = object(&[("origins", origins.into())])?;
        Ok(call("permissions", "contains", &[query])
            .await?
            .as_bool()
            .unwrap_or(false))
    }

    /// Whether Tokenward holds the permissions once `requested` (the result
    /// of [`request_origins`]) settles. A request the browser refused to
    /// show (no user gesture, e.g. a synthetic click) is not a denial: the
    /// permission may be held already.
    pub async fn held_after(requested: Result<JsFuture>, origins: &[String]) -> bool {
        if let Ok(answer) = requested {
            if let Ok(granted) = answer.await {
                return granted.as_bool().unwrap_or(false);
            }
        }
        contains_origins(origins).await.unwrap_or(false)
    }
}

/// A tab as far as Tokenward cares. `url` is only present where the
/// extension has host permission, or `activeTab` was granted by a click.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Tab {
    pub id: i32,
    #[serde(default)]
    pub url: Option<String>,
}

pub mod tabs {
    use super::*;

    pub async fn get(id: i32) -> Result<Tab> {
        from_js(&call("tabs", "get", &[JsValue::from(id)]).await?)
    }

    pub async fn active() -> Result<Option<Tab>> {
        let query = object(&[("active", JsValue::TRUE), ("currentWindow", JsValue::TRUE)])?;
        let tabs: Vec<Tab> = from_js(&call("tabs", "query", &[query]).await?)?;
        Ok(tabs.into_iter().next())
    }

    /// Opens `url` in a new, active tab.
    pub async fn open(url: &str) -> Result<()> {
        let details = object(&[("url", JsValue::from_str(url))])?;
        call("tabs", "create", &[details]).await.map(drop)
    }

    pub async fn close(id: i32) -> Result<()> {
        call("tabs", "remove", &[JsValue::from(id)]).await.map(drop)
    }

    pub async fn all() -> Result<Vec<Tab>> {
        let tabs = call("tabs", "query", &[Object::new().into()]).await?;
        // Some tabs (devtools, prerendered) come without an id.
        let raw = value_from_js(&tabs)?;
        Ok(raw
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| tokenward_core::json::read(t).ok())
            .collect())
    }
}

pub mod action {
    use super::*;

    pub async fn set_badge_text(tab_id: i32, text: &str) -> Result<()> {
        let details = object(&[
            ("tabId", JsValue::from(tab_id)),
            ("text", JsValue::from_str(text)),
        ])?;
        call("action", "setBadgeText", &[details]).await.map(drop)
    }

    /// The badge's text and colour on one tab.
    pub async fn set_badge(tab_id: i32, badge: tokenward_core::matcher::Badge) -> Result<()> {
        let text = badge.text().map(|t| say(&t)).unwrap_or_default();
        set_badge_text(tab_id, &text).await?;
        let details = object(&[
            ("tabId", JsValue::from(tab_id)),
            ("color", JsValue::from_str(badge.color())),
        ])?;
        call("action", "setBadgeBackgroundColor", &[details])
            .await
            .map(drop)
    }

    pub async fn set_badge_color(color: &str) -> Result<()> {
        let details = object(&[("color", JsValue::from_str(color))])?;
        call("action", "setBadgeBackgroundColor", &[details])
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    //! Run by `wasm-bindgen-test-runner` in a real JS engine: the JSON
    //! boundary must carry our types unchanged, and errors must keep their
    //! message.

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use tokenward_core::compile::{compile, Limits, Target};
    use tokenward_core::message::{Request, Response};
    use tokenward_core::rules::{HeaderDraft, RuleBook, RuleDraft};

    fn book() -> RuleBook {
        let mut book = RuleBook::default();
        for pattern in ["https://api.example.com/v1", "https://*.apps.example.com"] {
            let draft = RuleDraft {
                pattern: pattern.into(),
                enabled: true,
                headers: vec![HeaderDraft {
                    name: "Authorization".into(),
                    scheme: "bearer".into(),
                    secret: "tok".into(),
                    credential: None,
                }],
                ..RuleDraft::default()
            };
            assert!(book.save(&draft).is_ok());
        }
        book
    }

    #[wasm_bindgen_test]
    fn dnr_rules_cross_the_boundary_unchanged() {
        let rules = compile(&book(), Target::CHROMIUM).unwrap_or_default();
        let js = to_js(&rules).unwrap_or(JsValue::NULL);
        assert!(Array::is_array(&js));
        let first = Reflect::get(&Array::from(&js).get(0), &JsValue::from_str("condition"))
            .unwrap_or(JsValue::NULL);
        assert_eq!(
            Reflect::get(&first, &JsValue::from_str("urlFilter"))
                .ok()
                .and_then(|v| v.as_string()),
            Some("|https://api.example.com/v1^".to_owned())
        );
        assert_eq!(from_js::<Vec<Rule>>(&js).ok(), Some(rules));
    }

    #[wasm_bindgen_test]
    fn messages_cross_the_boundary_unchanged() {
        let request = Request::SetEnabled {
            id: 3,
            enabled: false,
        };
        let js = to_js(&request).unwrap_or(JsValue::NULL);
        // Named by its variant: `{ setEnabled: { id: 3, enabled: false } }`.
        let fields = Reflect::get(&js, &JsValue::from_str("setEnabled")).unwrap_or(JsValue::NULL);
        assert_eq!(
            Reflect::get(&fields, &JsValue::from_str("id"))
                .ok()
                .and_then(|v| v.as_f64()),
            Some(3.0)
        );
        assert_eq!(from_js::<Request>(&js).ok(), Some(request.clone()));
        // The background reads it through a `Value`, to the same request.
        assert_eq!(from_js_value::<Request>(&js).ok(), Some(request));
        assert!(from_js_value::<Request>(&JsValue::from_str("nonsense")).is_err());
        // A page answered with something that is not a response.
        assert!(from_js::<Response>(&JsValue::from_str("nonsense")).is_err());
    }

    #[wasm_bindgen_test]
    fn browser_errors_keep_their_message() {
        let thrown: JsValue = js_sys::Error::new("Rule with id 2 already exists").into();
        assert_eq!(
            BrowserError::from(thrown).0,
            "Rule with id 2 already exists"
        );
        assert_eq!(BrowserError::from(JsValue::from_str("plain")).0, "plain");
    }

    #[wasm_bindgen_test]
    fn hosts_typed_in_unicode_are_converted_by_the_browser() {
        use tokenward_core::pattern::{with_ascii_host, HostNames};
        let names = BrowserHostNames;
        assert_eq!(
            names.to_ascii("Bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        // UTS #46 maps what the core's own stand-in does not: full-width
        // letters and ideographic full stops, `ß` kept (non-transitional).
        assert_eq!(
            names.to_ascii("ｅｘａｍｐｌｅ。bücher").as_deref(),
            Some("example.xn--bcher-kva")
        );
        assert_eq!(
            names.to_ascii("straße.de").as_deref(),
            Some("xn--strae-oqa.de")
        );
        // A host the browser refuses stays refused.
        assert_eq!(names.to_ascii("a\u{fffd}b.example"), None);
        assert_eq!(
            with_ascii_host("https://*.пример.рф:8443/v1", &names),
            "https://*.xn--e1afmkfd.xn--p1ai:8443/v1"
        );
        let draft = RuleDraft {
            pattern: "münchen.example/ä".into(),
            also_from: vec!["https://app.münchen.example".into()],
            ..RuleDraft::default()
        }
        .with_ascii_hosts(&names);
        assert_eq!(draft.pattern, "xn--mnchen-3ya.example/ä");
        assert_eq!(draft.also_from, ["https://app.xn--mnchen-3ya.example"]);
    }

    #[wasm_bindgen_test]
    fn no_extension_api_is_an_error_not_a_panic() {
        // The test runner is not an extension: `chrome.runtime` is absent.
        assert!(namespace("declarativeNetRequest").is_err());
        assert_eq!(dnr::limits(), Limits::CHROMIUM);
    }
}
