//! A hand-rolled HTTP/1.1 server on loopback that records every request's raw
//! headers, so the tests can see exactly what the browser sent.
//!
//! One server listens on several OS-assigned ports of 127.0.0.1. Both
//! browsers resolve `localhost` and every `*.localhost` name to loopback
//! without asking DNS, as the Fetch standard's "resolve an origin" says
//! (Firefox since 84: https://bugzil.la/1220810; seen in Chromium 156 and
//! Firefox 153), so one listener serves any number of distinct host names;
//! the Host header tells them apart. Firefox needs no
//! `network.dns.localDomains` for them.
//!
//! Routes:
//! - `GET /page/<name>?target=<url>&...` — HTML fixtures that make one request
//!   of a given kind to `target` (see [`fixture_page`]).
//! - `/redirect?to=<url>` — 302 to `to`.
//! - `/img.png` — a valid 1x1 PNG.
//! - `/ws` with `Upgrade: websocket` — a real 101 handshake, one text frame,
//!   then a close frame.
//! - `OPTIONS *` — a CORS preflight answer that allows any method and header.
//! - anything else — 200 `text/plain` "ok" with `Access-Control-Allow-Origin: *`.
//!
//! Every response is `Connection: close` and `Cache-Control: no-store`, so
//! each browser request is one connection and one record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The local port the request arrived on.
    pub port: u16,
    pub method: String,
    /// The request target: path and query, exactly as sent.
    pub target: String,
    /// The Host header, as sent (`api.localhost:1234`).
    pub host: String,
    /// Every header in order, name lower-cased, value as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The marker (`m` query parameter) of this request, if any.
    pub fn marker(&self) -> Option<String> {
        self.query_param("m")
    }

    /// The Host header's hostname, without the port.
    pub fn hostname(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => &self.host,
        }
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!(
            "{} http://{}{} (port {}) headers [{}]",
            self.method,
            self.host,
            self.target,
            self.port,
            headers.join(" | ")
        )
    }
}

/// The running server. Dropping it stops the listeners.
#[derive(Debug)]
pub struct Server {
    ports: Vec<u16>,
    log: Arc<Mutex<Vec<Recorded>>>,
    tasks: Vec<JoinHandle<()>>,
    counter: AtomicU64,
}

impl Server {
    /// Listen on `n` OS-assigned ports of 127.0.0.1 (at least two).
    pub async fn start(n: usize) -> Server {
        let n = n.max(2);
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let mut ports = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port for the test server");
            let port = listener.local_addr().expect("local addr").port();
            ports.push(port);
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        // A connection that sends nothing (a preconnect) or
                        // stalls is dropped after a while.
                        let _ = tokio::time::timeout(
                            Duration::from_secs(30),
                            handle(stream, port, log),
                        )
                        .await;
                    });
                }
            }));
        }
        Server {
            ports,
            log,
            tasks,
            counter: AtomicU64::new(0),
        }
    }

    /// The `i`th port (0 is the main one).
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// A fresh marker, unique within this server: put it in a URL as `m=`.
    pub fn marker(&self, what: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let what: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("{what}-{}-{n}", std::process::id())
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("server log lock").clone()
    }

    /// Poll until a recorded request satisfies `pred`; panic after `timeout`
    /// with `what` and the recent log.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Recorded {
        match self.try_wait_for(timeout, pred).await {
            Some(r) => r,
            None => panic!(
                "timed out after {timeout:?} waiting for the server to receive {what}\n\
                 last requests received:\n{}",
                self.recent(15)
            ),
        }
    }

    /// Poll until a recorded request satisfies `pred`, or `None` after `timeout`.
    pub async fn try_wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .log
                .lock()
                .expect("server log lock")
                .iter()
                .find(|r| pred(r))
                .cloned();
            if found.is_some() {
                return found;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for the non-preflight request carrying `marker`.
    pub async fn wait_marker(&self, marker: &str, timeout: Duration) -> Recorded {
        self.wait_for(&format!("a request with m={marker}"), timeout, |r| {
            r.method != "OPTIONS" && r.marker().as_deref() == Some(marker)
        })
        .await
    }

    /// The last `n` requests, one per line, for failure messages.
    pub fn recent(&self, n: usize) -> String {
        let all = self.requests();
        let start = all.len().saturating_sub(n);
        let lines: Vec<String> = all[start..]
            .iter()
            .map(|r| format!("  {}", r.describe()))
            .collect();
        if lines.is_empty() {
            "  (none)".to_owned()
        } else {
            lines.join("\n")
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A valid 1x1 transparent PNG.
const PNG_1X1: [u8; 68] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 31, 21, 196, 137, 0, 0, 0, 11, 73, 68, 65, 84, 120, 156, 99, 96, 0, 2, 0, 0, 5, 0, 1,
    122, 94, 171, 63, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

async fn handle(stream: TcpStream, port: u16, log: Arc<Mutex<Vec<Recorded>>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Request line.
    match reader.read_line(&mut line).await {
        Ok(0) | Err(_) => return,
        Ok(_) => {}
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    if method.is_empty() || target.is_empty() {
        return;
    }
    // Headers, raw.
    let mut headers = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let host = get("host").unwrap_or_default();
    let mut body = Vec::new();
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len.min(1 << 20), 0);
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
    }
    let rec = Recorded {
        port,
        method,
        target,
        host,
        headers,
        body,
    };
    log.lock().expect("server log lock").push(rec.clone());

    let mut stream = reader.into_inner();
    let is_ws = rec.path() == "/ws"
        && rec
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_ws {
        websocket(stream, &rec).await;
        return;
    }
    let response = respond(&rec);
    let _ = stream.write_all(&response).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

fn response(status: &str, extra: &[(&str, String)], content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n",
        body.len()
    );
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn respond(rec: &Recorded) -> Vec<u8> {
    if rec.method == "OPTIONS" {
        let allow_headers = rec
            .header("access-control-request-headers")
            .unwrap_or("*")
            .to_owned();
        return response(
            "204 No Content",
            &[
                (
                    "Access-Control-Allow-Methods",
                    "GET, POST, PUT, DELETE, OPTIONS".to_owned(),
                ),
                ("Access-Control-Allow-Headers", allow_headers),
                ("Access-Control-Allow-Private-Network", "true".to_owned()),
                ("Access-Control-Max-Age", "0".to_owned()),
            ],
            "text/plain",
            b"",
        );
    }
    let path = rec.path();
    if let Some(name) = path.strip_prefix("/page/") {
        return match fixture_page(name) {
            Some(html) => response("200 OK", &[], "text/html; charset=utf-8", html.as_bytes()),
            None => response("404 Not Found", &[], "text/plain", b"no such fixture"),
        };
    }
    match path {
        "/redirect" => {
            let to = rec.query_param("to").unwrap_or_else(|| "/".to_owned());
            response("302 Found", &[("Location", to)], "text/plain", b"redirect")
        }
        "/img.png" => response("200 OK", &[], "image/png", &PNG_1X1),
        // A service worker that fetches its `target` while installing, so
        // the request comes from the worker, not the page.
        "/sw.js" => response(
            "200 OK",
            &[],
            "text/javascript; charset=utf-8",
            b"const target = new URL(self.location).searchParams.get('target');\n\
              self.addEventListener('install', (event) => {\n\
                event.waitUntil(fetch(target, { cache: 'no-store' }).catch(() => {}));\n\
              });\n",
        ),
        _ => response("200 OK", &[], "text/plain; charset=utf-8", b"ok"),
    }
}

async fn websocket(mut stream: TcpStream, rec: &Recorded) {
    let key = rec.header("sec-websocket-key").unwrap_or("").to_owned();
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // One unmasked text frame "hello".
    let _ = stream
        .write_all(&[0x81, 5, b'h', b'e', b'l', b'l', b'o'])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Close frame, status 1000.
    let _ = stream.write_all(&[0x88, 2, 0x03, 0xE8]).await;
    let _ = stream.flush().await;
    // Drain whatever the browser sends (its close frame) for a moment.
    let mut buf = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let _ = stream.shutdown().await;
}

/// The HTML of fixture `name`. Each reads its parameters from its own query
/// string and reports progress in `#result`; `#ready` exists once the page
/// has parsed.
///
/// - `plain`: nothing.
/// - `fetch?target=U[&method=M][&header=Name:Value]...`: `fetch(U)`.
/// - `xhr?target=U`: an XMLHttpRequest GET.
/// - `iframe?target=U`: an `<iframe src=U>`.
/// - `img?target=U`: an `<img src=U>`.
/// - `form?target=U[&auto=1]`: a POST form to U with one field; submitted by
///   script when `auto=1`, else by clicking `#submit`.
/// - `ws?target=ws://...`: `new WebSocket(target)`.
/// - `sw?target=U`: registers `/sw.js`, whose install handler fetches U.
/// - `beacon?target=U`: `navigator.sendBeacon(U, 'x=1')`.
/// - `link?target=U`: a link `#link` to U, for a person to click.
/// - `frame-form?target=U&method=M`: a form posting (or getting, with its
///   query as hidden fields) to U inside a hidden frame, submitted at load.
/// - `opaque?target=U&frame=data|sandbox&method=M&mode=cors|no-cors`: a
///   frame with an opaque origin (a `data:` URL, or a sandboxed `srcdoc`)
///   whose script fetches U.
pub fn fixture_page(name: &str) -> Option<String> {
    let script = match name {
        "plain" => "",
        "fetch" => {
            r#"
const init = { method: q.get('method') || 'GET', headers: {}, cache: 'no-store' };
for (const h of q.getAll('header')) {
  const i = h.indexOf(':');
  init.headers[h.slice(0, i)] = h.slice(i + 1);
}
fetch(target, init)
  .then((r) => r.text().then((t) => { out('status ' + r.status + ' ' + t); done(); }))
  .catch((e) => { out('error ' + e); done(); });
"#
        }
        "sw" => {
            r#"
navigator.serviceWorker.register('/sw.js?target=' + encodeURIComponent(target))
  .then(() => { out('registered'); done(); })
  .catch((e) => { out('error ' + e); done(); });
"#
        }
        "xhr" => {
            r#"
const x = new XMLHttpRequest();
x.open('GET', target);
x.onloadend = () => { out('status ' + x.status); done(); };
x.send();
"#
        }
        "iframe" => {
            r#"
const f = document.createElement('iframe');
f.id = 'frame';
f.onload = () => { out('loaded'); done(); };
f.src = target;
document.body.appendChild(f);
"#
        }
        "img" => {
            r#"
const i = new Image();
i.id = 'img';
i.onload = () => { out('loaded ' + i.naturalWidth + 'x' + i.naturalHeight); done(); };
i.onerror = () => { out('error'); done(); };
i.src = target;
document.body.appendChild(i);
"#
        }
        "form" => {
            r#"
const form = document.createElement('form');
form.id = 'form';
form.method = 'POST';
form.action = target;
const field = document.createElement('input');
field.name = 'field';
field.value = 'value';
const submit = document.createElement('button');
submit.id = 'submit';
submit.type = 'submit';
submit.textContent = 'Send';
form.append(field, submit);
document.body.appendChild(form);
// `form.submit` is the button named `submit` (forms expose their controls
// by id, over their own methods), so the method is taken from the prototype.
if (q.get('auto') === '1') HTMLFormElement.prototype.submit.call(form);
"#
        }
        "beacon" => {
            r#"
out(navigator.sendBeacon(target, 'x=1') ? 'queued' : 'refused');
done();
"#
        }
        "link" => {
            r#"
const a = document.createElement('a');
a.id = 'link';
a.href = target;
a.textContent = 'Open the API';
document.body.appendChild(a);
done();
"#
        }
        "frame-form" => {
            r#"
const sink = document.createElement('iframe');
sink.name = 'sink';
sink.onload = () => { if (sink.dataset.sent) { out('loaded'); done(); } };
document.body.appendChild(sink);
const form = document.createElement('form');
form.method = q.get('method') || 'POST';
form.target = 'sink';
const url = new URL(target);
// A GET form replaces the action's query with its fields: carry it over.
for (const [k, v] of url.searchParams) {
  const field = document.createElement('input');
  field.type = 'hidden'; field.name = k; field.value = v;
  form.appendChild(field);
}
const field = document.createElement('input');
field.name = 'field'; field.value = 'value';
form.appendChild(field);
form.action = target;
document.body.appendChild(form);
sink.dataset.sent = '1';
form.submit();
"#
        }
        "opaque" => {
            r#"
const method = q.get('method') || 'GET';
const init = { method, mode: q.get('mode') || 'cors', cache: 'no-store' };
if (method !== 'GET') init.body = 'x=1';
const script = 'fetch(' + JSON.stringify(target) + ', ' + JSON.stringify(init) + ').catch(() => {});';
const f = document.createElement('iframe');
if (q.get('frame') === 'sandbox') {
  f.sandbox = 'allow-scripts';
  f.srcdoc = '<script>' + script + '<' + '/script>';
} else {
  f.src = 'data:text/html,' + encodeURIComponent('<script>' + script + '<' + '/script>');
}
f.onload = () => { out('framed'); done(); };
document.body.appendChild(f);
"#
        }
        "ws" => {
            r#"
const ws = new WebSocket(target);
ws.onopen = () => out('open');
ws.onmessage = (e) => out('message ' + e.data);
ws.onerror = () => out('error');
ws.onclose = (e) => { out('close ' + e.code); done(); };
"#
        }
        _ => return None,
    };
    Some(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>fixture {name}</title><link rel="icon" href="data:,"></head>
<body>
<h1>fixture {name}</h1>
<div id="ready">ready</div>
<pre id="result"></pre>
<script>
const q = new URLSearchParams(location.search);
const target = q.get('target');
const out = (s) => {{ document.getElementById('result').textContent += s + '\n'; }};
const done = () => {{ document.body.dataset.done = '1'; }};
{script}
</script>
</body></html>
"#
    ))
}
