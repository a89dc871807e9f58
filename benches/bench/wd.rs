//! What the bench needs from the drivers beyond fantoccini's methods:
//! vendor endpoints as raw WebDriver commands, and the Chrome DevTools
//! Protocol over its own WebSocket.

use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Client;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

/// `POST /session/{id}/<path>` with a JSON body.
#[derive(Debug)]
struct Post {
    path: String,
    body: Json,
}

impl WebDriverCompatibleCommand for Post {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or(""),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// geckodriver's `moz/context`: `chrome` runs scripts with the browser's own
/// privileges (allowed because the launcher passes `--allow-system-access`),
/// `content` returns to pages.
/// <https://firefox-source-docs.mozilla.org/testing/geckodriver/Usage.html>
pub(crate) async fn firefox_context(client: &Client, context: &str) -> Result<(), String> {
    client
        .issue_cmd(Post {
            path: "moz/context".to_owned(),
            body: json!({ "context": context }),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("moz/context {context}: {e}"))
}

/// A Chrome DevTools Protocol connection to the whole browser (not one
/// page), found through the `debuggerAddress` chromedriver reports in the
/// session's capabilities.
pub(crate) struct Cdp {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl std::fmt::Debug for Cdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cdp")
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl Cdp {
    pub(crate) async fn connect(client: &Client) -> Result<Cdp, String> {
        let address = client
            .capabilities()
            .and_then(|c| c.get("goog:chromeOptions"))
            .and_then(|o| o.get("debuggerAddress"))
            .and_then(Json::as_str)
            .ok_or("chromedriver reported no goog:chromeOptions.debuggerAddress")?
            .to_owned();
        let version = http_get(&address, "/json/version").await?;
        let version: Json = serde_json::from_str(&version).map_err(|e| e.to_string())?;
        let url = version["webSocketDebuggerUrl"]
            .as_str()
            .ok_or("no webSocketDebuggerUrl in /json/version")?;
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("CDP connect {url}: {e}"))?;
        Ok(Cdp { socket, next_id: 0 })
    }

    /// One command, on the browser or on an attached target's `session`;
    /// events in between are skipped.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        params: Json,
        session: Option<&str>,
    ) -> Result<Json, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| format!("CDP send {method}: {e}"))?;
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(frame) = self.socket.next().await {
                let frame = frame.map_err(|e| e.to_string())?;
                let Message::Text(text) = frame else { continue };
                let value: Json = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                if value["id"].as_u64() == Some(id) {
                    return Ok(value);
                }
            }
            Err("the CDP socket closed".to_owned())
        })
        .await
        .map_err(|_| format!("CDP {method}: no answer in 30 s"))??;
        match answer.get("error") {
            Some(error) => Err(format!("CDP {method}: {error}")),
            None => Ok(answer["result"].clone()),
        }
    }

    /// Targets of `kind` (`page`, `service_worker`, …) whose URL starts with `prefix`.
    pub(crate) async fn targets(&mut self, kind: &str, prefix: &str) -> Result<Vec<Json>, String> {
        let all = self.call("Target.getTargets", json!({}), None).await?;
        Ok(all["targetInfos"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|t| {
                        t["type"].as_str() == Some(kind)
                            && t["url"].as_str().is_some_and(|u| u.starts_with(prefix))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A plain HTTP GET on loopback, for the DevTools HTTP endpoints. Reads
/// the body by its Content-Length: Chromium keeps the connection open even
/// when asked to close it.
async fn http_get(address: &str, path: &str) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let read = async {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                });
                match length {
                    Some(length) if body.len() >= length => return Ok(body.to_owned()),
                    None if n == 0 => return Ok(body.to_owned()),
                    _ => {}
                }
            }
            if n == 0 {
                return Err(format!("GET {path}: the connection closed early"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| format!("GET {path}: timed out"))?
}
