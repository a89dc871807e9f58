//! The bench's own loopback HTTP/1.1 server: keep-alive (a real API client
//! reuses its connection, so the per-request figure is not drowned in TCP
//! set-up), no request log (2,000-request batches would only fill memory),
//! and an echo of the Authorization header it received, so that a page can
//! tell when a rule went live. The e2e recording server
//! (`tests/e2e/server.rs`) still runs beside it for the e2e harness.
//!
//! Routes, on any host name (`*.localhost` resolves to loopback):
//! - `/site.html`, `/site.js`: the request-loop page (`bench/pages/site.*`);
//! - `/core.html`, `/wasm/tokenward.js`, `/wasm/tokenward_bg.wasm`: the core
//!   benchmark built with the `bench` feature, cross-origin isolated;
//! - `/echo`: the Authorization header received, or nothing;
//! - anything else: `ok`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SITE_HTML: &str = include_str!("../../bench/pages/site.html");
const SITE_JS: &str = include_str!("../../bench/pages/site.js");
const CORE_HTML: &str = include_str!("../../bench/pages/core.html");

#[derive(Debug)]
pub(crate) struct Site {
    port: u16,
    task: JoinHandle<()>,
}

struct File {
    content_type: &'static str,
    body: Vec<u8>,
    isolated: bool,
}

impl Site {
    /// Listen on an OS-assigned port of 127.0.0.1. `core_wasm` holds the
    /// wasm-bindgen output of the `bench` build (`tokenward.js`,
    /// `tokenward_bg.wasm`), when the core benchmark is to run.
    pub(crate) async fn start(core_wasm: Option<&Path>) -> Site {
        let mut files: HashMap<String, File> = HashMap::new();
        let mut add = |path: &str, content_type, body: Vec<u8>, isolated| {
            files.insert(
                path.to_owned(),
                File {
                    content_type,
                    body,
                    isolated,
                },
            );
        };
        add(
            "/site.html",
            "text/html; charset=utf-8",
            SITE_HTML.into(),
            false,
        );
        add(
            "/site.js",
            "text/javascript; charset=utf-8",
            SITE_JS.into(),
            false,
        );
        add(
            "/core.html",
            "text/html; charset=utf-8",
            CORE_HTML.into(),
            true,
        );
        if let Some(dir) = core_wasm {
            for (name, content_type) in [
                ("tokenward.js", "text/javascript; charset=utf-8"),
                ("tokenward_bg.wasm", "application/wasm"),
            ] {
                let path = dir.join(name);
                let body =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                add(&format!("/wasm/{name}"), content_type, body, true);
            }
        }
        let files = Arc::new(files);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the bench site");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let files = Arc::clone(&files);
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(600), serve(stream, files)).await;
                });
            }
        });
        Site { port, task }
    }

    /// `http://<host>:<port>`.
    pub(crate) fn origin(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers requests on one connection until the browser closes it.
async fn serve(stream: TcpStream, files: Arc<HashMap<String, File>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut authorization = String::new();
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = line.trim_end_matches(['\r', '\n']);
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "authorization" => value.clone_into(&mut authorization),
                    "content-length" => length = value.parse().unwrap_or(0),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        if length > 0 {
            let mut body = vec![0; length.min(1 << 20)];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        let path = target.split('?').next().unwrap_or("");
        let response = if method == "OPTIONS" {
            respond("204 No Content", "text/plain", b"", false)
        } else if path == "/echo" {
            respond(
                "200 OK",
                "text/plain; charset=utf-8",
                authorization.as_bytes(),
                false,
            )
        } else if let Some(file) = files.get(path) {
            respond("200 OK", file.content_type, &file.body, file.isolated)
        } else {
            respond("200 OK", "text/plain; charset=utf-8", b"ok", false)
        };
        let stream = reader.get_mut();
        if stream.write_all(&response).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

fn respond(status: &str, content_type: &str, body: &[u8], isolated: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n\
         Access-Control-Allow-Headers: *\r\nConnection: keep-alive\r\n",
        body.len()
    );
    if isolated {
        // crossOriginIsolated: performance.now() at its finest resolution.
        head.push_str(
            "Cross-Origin-Opener-Policy: same-origin\r\n\
             Cross-Origin-Embedder-Policy: require-corp\r\n\
             Cross-Origin-Resource-Policy: same-origin\r\n",
        );
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
