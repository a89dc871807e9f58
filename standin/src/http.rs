//! A small HTTP/1.1 server over tokio: one request per connection.
//!
//! Request bodies may come with `Content-Length` or `Transfer-Encoding:
//! chunked`; `Expect: 100-continue` is answered. Every response says
//! `Connection: close` and the connection is closed after it, so a
//! keep-alive client simply opens a new connection for its next request.
//! Bodies are sent with `Content-Length`, except streams (Jina's NDJSON
//! login events), which are sent chunked so that each line reaches the
//! client as soon as it is written.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Requests larger than this (head or body) are refused.
const MAX_BODY: usize = 1 << 20;
const MAX_HEAD: usize = 64 << 10;
/// How long a client may take to send its request.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    /// Every header in order, name and value as sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn path(&self) -> &str {
        path_of(&self.target)
    }

    /// The decoded query parameter `name`.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        query_of(&self.target, name)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as a JSON value, when it is JSON.
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A field of the body, read as a form (`a=1&b=2`) or, failing that, as
    /// a JSON object (strings and numbers).
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        if let Some(Value::Object(map)) = self.json() {
            return match map.get(name)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
        }
        let body = std::str::from_utf8(&self.body).ok()?;
        form_pairs(body)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

pub(crate) fn path_of(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or("")
}

pub(crate) fn query_of(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    form_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub(crate) fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Form decoding: `+` is a space, `%XX` a byte; invalid escapes stay as
/// they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection closed (or failed) before a request line: nothing to answer.
    Closed,
    /// A malformed or oversized request: answer 400 or 413.
    Bad(u16, &'static str),
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> ReadError {
        ReadError::Closed
    }
}

/// Reads one request. `stream` is used to send `100 Continue` when asked.
pub(crate) async fn read_request<R>(reader: &mut R) -> Result<(Request, bool), ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut head_len = 0usize;
    let mut line = String::new();
    // Skip blank lines before the request line (RFC 9112 §2.2).
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    if method.is_empty() || target.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ReadError::Bad(400, "malformed request line"));
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        head_len += n;
        if head_len > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        match l.split_once(':') {
            Some((n, v)) => headers.push((n.trim().to_owned(), v.trim().to_owned())),
            None => return Err(ReadError::Bad(400, "malformed header line")),
        }
    }
    let expect_continue =
        header_in(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    Ok((
        Request {
            method,
            target,
            headers,
            body: Vec::new(),
        },
        expect_continue,
    ))
}

/// Reads the body the headers announce: chunked or `Content-Length`.
pub(crate) async fn read_body<R>(reader: &mut R, request: &mut Request) -> Result<(), ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let chunked = header_in(&request.headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(reader).await?;
        return Ok(());
    }
    if let Some(len) = header_in(&request.headers, "content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?;
        if len > MAX_BODY {
            return Err(ReadError::Bad(413, "body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        request.body = body;
    }
    Ok(())
}

async fn read_chunked<R>(reader: &mut R) -> Result<Vec<u8>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(ReadError::Closed);
        }
        let size = line.trim().split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
        if size == 0 {
            break;
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        line.clear();
        reader.read_line(&mut line).await?; // the CRLF after the chunk
    }
    // Trailer fields, up to the empty line.
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line.trim().is_empty() {
            break;
        }
    }
    Ok(body)
}

/// A response to send in full.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    pub(crate) fn json(status: u16, value: &Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub(crate) fn html(status: u16, html: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", html)
    }

    pub(crate) fn text(status: u16, text: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", text)
    }

    /// A response without a body (and without `Content-Type`).
    pub(crate) fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        425 => "Too Early",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn head(status: u16, headers: &[(String, String)], content_length: Option<usize>) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    match content_length {
        Some(len) => {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    head
}

/// Sends `response` and closes the connection. A `HEAD` request gets the
/// head only.
pub(crate) async fn write_response(stream: &mut TcpStream, response: &Response, head_only: bool) {
    // 204 and 304 carry neither a body nor Content-Length.
    let bodiless = matches!(response.status, 204 | 304);
    let mut out = if bodiless {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\n",
            response.status,
            reason(response.status)
        );
        for (n, v) in &response.headers {
            let _ = write!(h, "{n}: {v}\r\n");
        }
        h.push_str("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        h
    } else {
        head(
            response.status,
            &response.headers,
            Some(response.body.len()),
        )
    }
    .into_bytes();
    if !head_only && !bodiless {
        out.extend_from_slice(&response.body);
    }
    let _ = stream.write_all(&out).await;
    close(stream).await;
}

/// Flushes and closes the connection, then reads (briefly) whatever the
/// client still sends, so that the close is a FIN rather than a reset that
/// could destroy the response in flight.
pub(crate) async fn close(stream: &mut TcpStream) {
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A response whose body is written piece by piece, chunked.
#[derive(Debug)]
pub(crate) struct Chunked<'a> {
    stream: &'a mut TcpStream,
}

impl<'a> Chunked<'a> {
    /// Sends the head of a chunked response.
    pub(crate) async fn start(
        stream: &'a mut TcpStream,
        status: u16,
        headers: &[(String, String)],
    ) -> std::io::Result<Chunked<'a>> {
        stream
            .write_all(head(status, headers, None).as_bytes())
            .await?;
        stream.flush().await?;
        Ok(Chunked { stream })
    }

    /// Sends one chunk, at once.
    pub(crate) async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    /// Ends the body and closes the connection.
    pub(crate) async fn finish(self) {
        let _ = self.stream.write_all(b"0\r\n\r\n").await;
        close(self.stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(
            form_pairs("name=my+token&expirationDays=30&x=%E2%9C%93&bad=%zz&e"),
            [
                ("name".to_owned(), "my token".to_owned()),
                ("expirationDays".to_owned(), "30".to_owned()),
                ("x".to_owned(), "✓".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("e".to_owned(), String::new()),
            ]
        );
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(query_of("/p?a=1&b=x%20y#frag", "b").as_deref(), Some("x y"));
        assert_eq!(path_of("/p/q?a=1"), "/p/q");
    }

    #[test]
    fn encodes() {
        assert_eq!(percent_encode("a b/=+é"), "a%20b%2F%3D%2B%C3%A9");
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
