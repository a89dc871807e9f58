//! The stand-ins against `shared/provider-contracts.md`, over a tiny
//! blocking HTTP client on `std::net::TcpStream`: status codes, header
//! names, JSON shapes and the in-memory token life cycle.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{json, Value};
use tokenward_standin::{Fault, Seeds, Service, StandIns, DEPLOYMENT_OK};
use tokio::runtime::Runtime;

/// The stand-ins, served by a multi-threaded runtime's workers while the
/// test thread blocks on its client.
fn start() -> (Runtime, StandIns) {
    let rt = Runtime::new().expect("a tokio runtime");
    let standins = rt.block_on(StandIns::start()).expect("the stand-ins start");
    (rt, standins)
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn host_port(base: &str) -> &str {
    base.strip_prefix("http://").expect("an http:// URL")
}

/// Sends raw bytes and reads the whole answer (the server closes).
fn raw(base: &str, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(host_port(base)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)
}

fn read_head(reader: &mut impl std::io::BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("status line");
        // Skip interim answers (100 Continue).
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("a header");
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        if status != 100 {
            return (status, headers);
        }
    }
}

fn read_reply(reader: &mut impl std::io::BufRead) -> Reply {
    let (status, headers) = read_head(reader);
    let reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let mut body = Vec::new();
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        while let Some(chunk) = read_chunk(reader) {
            body.extend(chunk);
        }
    } else {
        reader.read_to_end(&mut body).expect("body");
        if let Some(len) = reply.header("content-length") {
            assert_eq!(body.len(), len.parse::<usize>().expect("a length"));
        }
    }
    Reply { body, ..reply }
}

fn read_chunk(reader: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    reader.read_line(&mut line).expect("chunk size");
    let size = usize::from_str_radix(line.trim(), 16).expect("a chunk size");
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).expect("chunk");
    chunk.truncate(size);
    Some(chunk)
}

fn request(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n",
        host_port(base)
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    let mut out = Vec::new();
    match body {
        Some((content_type, body)) => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ));
            out.extend(head.into_bytes());
            out.extend_from_slice(body);
        }
        None => {
            head.push_str("\r\n");
            out.extend(head.into_bytes());
        }
    }
    let reply = raw(base, &out);
    assert_eq!(
        reply.header("connection"),
        Some("close"),
        "{method} {target}"
    );
    reply
}

fn get(base: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(base, "GET", target, headers, None)
}

fn post_json(base: &str, target: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let body = body.to_string();
    request(
        base,
        "POST",
        target,
        headers,
        Some(("application/json", body.as_bytes())),
    )
}

fn post_form(base: &str, target: &str, headers: &[(&str, &str)], form: &str) -> Reply {
    request(
        base,
        "POST",
        target,
        headers,
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn has_keys(value: &Value, required: &[&str]) {
    let present = keys(value);
    for k in required {
        assert!(present.contains(k), "`{k}` missing from {value}");
    }
}

/// The hidden field of an approval page's form, as `name=value`.
fn approve_form_field(html: &str) -> String {
    let start = html
        .find("type=\"hidden\" name=\"")
        .expect("a hidden field");
    let rest = &html[start + "type=\"hidden\" name=\"".len()..];
    let (name, rest) = rest.split_once('"').expect("a name");
    let rest = rest.split_once("value=\"").expect("a value").1;
    let value = rest.split_once('"').expect("a value").0;
    assert!(html.contains("id=\"approve\""), "no Approve button: {html}");
    format!("{name}={value}")
}

// --- BentoCloud ----------------------------------------------------------------

const USER_KEYS: [&str; 4] = ["email", "first_name", "last_name", "name"];
const ORG_KEYS: [&str; 8] = [
    "created_at",
    "deleted_at",
    "description",
    "labels",
    "name",
    "resource_type",
    "uid",
    "updated_at",
];
const API_TOKEN_KEYS: [&str; 11] = [
    "uid",
    "created_at",
    "updated_at",
    "deleted_at",
    "name",
    "resource_type",
    "labels",
    "description",
    "scopes",
    "user",
    "organization",
];

fn check_api_token(t: &Value) {
    has_keys(t, &API_TOKEN_KEYS);
    has_keys(&t["user"], &USER_KEYS);
    has_keys(&t["organization"], &ORG_KEYS);
    assert!(t["labels"].is_array() && t["scopes"].is_array(), "{t}");
    assert!(!t["created_at"].as_str().unwrap_or_default().is_empty());
}

#[test]
fn bentocloud_login_calls() {
    let (_rt, s) = start();
    let seed = &s.seeds().bentocloud;
    let auth = [
        ("X-YATAI-API-TOKEN", seed.token.as_str()),
        ("X-Bentoml-Version", "1.4.39"),
    ];
    let user = get(&seed.url, "/api/v1/auth/current", &auth);
    assert_eq!(user.status, 200);
    has_keys(&user.json(), &USER_KEYS);
    assert_eq!(user.json()["email"], "alice@example.com");
    let org = get(&seed.url, "/api/v1/current_org", &auth);
    assert_eq!(org.status, 200);
    has_keys(&org.json(), &ORG_KEYS);
    assert_eq!(org.json()["name"], "acme");
    assert_eq!(org.json()["labels"], json!([]));

    for bad in [vec![("X-YATAI-API-TOKEN", "nope")], vec![]] {
        let r = get(&seed.url, "/api/v1/auth/current", &bad);
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"], "Bad credentials");
    }
    // The header name is case-insensitive, as in HTTP.
    let r = get(
        &seed.url,
        "/api/v1/current_org",
        &[("x-yatai-api-token", &seed.token)],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn bentocloud_token_life_cycle() {
    let (_rt, s) = start();
    let seed = &s.seeds().bentocloud;
    let auth = [("X-YATAI-API-TOKEN", seed.token.as_str())];

    let list = get(&seed.url, "/api/v1/api_tokens?start=0&count=100", &auth);
    assert_eq!(list.status, 200);
    let page = list.json();
    has_keys(&page, &["count", "items", "start", "total"]);
    assert_eq!(
        (
            page["start"].as_u64(),
            page["count"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(0), Some(100), Some(1))
    );
    check_api_token(&page["items"][0]);
    assert_eq!(page["items"][0]["uid"], seed.token_uid.as_str());

    let created = post_json(
        &seed.url,
        "/api/v1/api_tokens",
        &auth,
        &json!({"name": "ci-token", "description": "CI pipeline token", "scopes": ["api", "read_cluster"],
                "expired_at": "2099-12-23 07:19:19.108731"}),
    );
    assert_eq!(
        created.status,
        200,
        "BentoCloud answers exactly 200: {}",
        created.text()
    );
    let created = created.json();
    check_api_token(&created);
    assert_eq!(created["scopes"], json!(["api", "read_cluster"]));
    assert_eq!(created["expired_at"], "2099-12-23T07:19:19Z");
    assert_eq!(created["is_expired"], false);
    let uid = created["uid"].as_str().expect("uid").to_owned();
    let secret = created["token"].as_str().expect("token").to_owned();

    // The new token is alice's too.
    let mine = [("X-YATAI-API-TOKEN", secret.as_str())];
    let who = get(&seed.url, "/api/v1/auth/current", &mine);
    assert_eq!(who.json()["email"], "alice@example.com");
    let got = get(&seed.url, &format!("/api/v1/api_tokens/{uid}"), &mine);
    assert_eq!(got.status, 200);
    check_api_token(&got.json());
    assert!(
        got.json().get("token").is_none(),
        "the secret is shown once"
    );

    let searched = get(
        &seed.url,
        "/api/v1/api_tokens?start=0&count=100&search=CI",
        &auth,
    )
    .json();
    assert_eq!(searched["total"], 1);
    assert_eq!(searched["items"][0]["name"], "ci-token");

    // Null description and scopes, no expiry.
    let bare = post_json(
        &seed.url,
        "/api/v1/api_tokens",
        &auth,
        &json!({"name": "t", "description": null, "scopes": null, "expired_at": null}),
    );
    assert_eq!(bare.status, 200);
    assert_eq!(bare.json()["description"], "");
    assert_eq!(bare.json()["scopes"], json!([]));
    assert_eq!(bare.json()["expired_at"], Value::Null);
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "expired_at": "soon"}),
        json!([1]),
    ] {
        assert_eq!(
            post_json(&seed.url, "/api/v1/api_tokens", &auth, &bad).status,
            400,
            "{bad}"
        );
    }

    let deleted = request(
        &seed.url,
        "DELETE",
        &format!("/api/v1/api_tokens/{uid}"),
        &auth,
        None,
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(get(&seed.url, "/api/v1/auth/current", &mine).status, 401);
    let again = get(&seed.url, &format!("/api/v1/api_tokens/{uid}"), &auth);
    assert_eq!(again.status, 404);
    assert!(again.text().contains("record not found"));
    assert_eq!(
        request(
            &seed.url,
            "DELETE",
            &format!("/api/v1/api_tokens/{uid}"),
            &auth,
            None
        )
        .status,
        404
    );
    let infos = s.tokens(Service::BentoCloud);
    assert!(infos.iter().any(|t| t.id == uid && t.deleted));
}

#[test]
fn bentocloud_expired_tokens() {
    let (_rt, s) = start();
    let seed = &s.seeds().bentocloud;
    let past = SystemTime::now() - Duration::from_secs(3600);
    let old = s.add_token(Service::BentoCloud, "old", Some(past));
    let r = get(
        &seed.url,
        "/api/v1/auth/current",
        &[("X-YATAI-API-TOKEN", &old.secret)],
    );
    assert_eq!(r.status, 401);
    let list = get(
        &seed.url,
        "/api/v1/api_tokens?start=0&count=100",
        &[("X-YATAI-API-TOKEN", &seed.token)],
    )
    .json();
    let listed = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|t| t["uid"] == old.id.as_str()))
        .expect("expired tokens are listed")
        .clone();
    assert_eq!(listed["is_expired"], true);

    let fresh = s.add_token(Service::BentoCloud, "fresh", None);
    let auth = [("X-YATAI-API-TOKEN", fresh.secret.as_str())];
    assert_eq!(get(&seed.url, "/api/v1/current_org", &auth).status, 200);
    assert!(s.expire_token(&fresh.secret));
    assert_eq!(get(&seed.url, "/api/v1/current_org", &auth).status, 401);
    assert!(!s.expire_token("unknown"));
}

#[test]
fn bentocloud_browser_login() {
    let (_rt, s) = start();
    let seed = &s.seeds().bentocloud;
    let code = get(&seed.url, "/api/v1/auth/code", &[]).json()["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    let poll = format!("/api/v1/auth/token?code={code}");
    let pending = get(&seed.url, &poll, &[]);
    assert!(!(200..300).contains(&pending.status), "pending is non-2xx");
    let logins = s.pending_logins(Service::BentoCloud);
    assert_eq!(logins.len(), 1);
    assert_eq!(
        logins[0].page_url,
        format!("{}/api_tokens?code={code}", seed.url)
    );

    // The page the CLI opens, and its Approve button. Faults never hit it.
    s.fail_until_reset(Service::BentoCloud, Fault::Status(500));
    let page = get(&seed.url, &format!("/api_tokens?code={code}"), &[]);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let field = approve_form_field(&page.text());
    assert_eq!(field, format!("code={code}"));
    let approved = post_form(&seed.url, "/api_tokens", &[], &field);
    assert_eq!(approved.status, 200);
    assert!(approved.text().contains("Approved"));
    assert_eq!(
        get(&seed.url, &poll, &[]).status,
        500,
        "the poll is faulted"
    );
    s.reset_faults(Service::BentoCloud);

    let token = get(&seed.url, &poll, &[]);
    assert_eq!(token.status, 200);
    let token = token.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(
        get(&seed.url, &poll, &[]).status,
        404,
        "a code gives its token once"
    );
    let who = get(
        &seed.url,
        "/api/v1/auth/current",
        &[("X-YATAI-API-TOKEN", &token)],
    );
    assert_eq!(who.json()["email"], "alice@example.com");
    assert!(s.pending_logins(Service::BentoCloud).is_empty());

    // Approving through the API, as tests do.
    let code = get(&seed.url, "/api/v1/auth/code", &[]).json()["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    assert!(s.approve_login(Service::BentoCloud, &code));
    assert!(!s.approve_login(Service::BentoCloud, &code));
    assert_eq!(
        get(&seed.url, &format!("/api/v1/auth/token?code={code}"), &[]).status,
        200
    );
    assert_eq!(get(&seed.url, "/api_tokens?code=unknown", &[]).status, 404);
}

// --- Jina ------------------------------------------------------------------------

fn hubble_error(r: &Reply, http: u16, code: u64) {
    assert_eq!(r.status, http, "{}", r.text());
    let body = r.json();
    has_keys(&body, &["data", "message", "status"]);
    assert_eq!(body["status"].as_u64(), Some(code), "{body}");
    assert_eq!(body["data"], json!({}));
}

#[test]
fn jina_rpcs() {
    let (_rt, s) = start();
    let seed = &s.seeds().jina;
    let token = format!("token {}", seed.token);
    let auth = [("Authorization", token.as_str())];
    let rpc = |m: &str| format!("/v2/rpc/{m}");

    let who = request(
        &seed.url,
        "POST",
        &rpc("user.identity.whoami"),
        &auth,
        Some(("text/plain", b"")),
    );
    assert_eq!(who.status, 200);
    assert_eq!(who.json()["data"]["nickname"], "alice");
    assert_eq!(who.json()["data"]["name"], "alice-liddell");
    hubble_error(
        &request(&seed.url, "POST", &rpc("user.identity.whoami"), &[], None),
        401,
        40103,
    );
    hubble_error(
        &request(
            &seed.url,
            "POST",
            &rpc("user.identity.whoami"),
            &[("Authorization", "token nope")],
            None,
        ),
        401,
        40102,
    );
    hubble_error(
        &request(
            &seed.url,
            "POST",
            &rpc("user.identity.whoami"),
            &[("Authorization", &format!("Bearer {}", seed.token))],
            None,
        ),
        401,
        40103,
    );
    let registries = request(
        &seed.url,
        "POST",
        &rpc("dockerRegistry.listInternalRegistries"),
        &auth,
        None,
    );
    assert!(registries.json()["data"].is_array());

    let created = post_form(
        &seed.url,
        &rpc("user.pat.create"),
        &auth,
        "name=my-token&expirationDays=30",
    );
    assert_eq!(created.status, 200);
    let secret = created.json()["data"]["token"]
        .as_str()
        .expect("data.token")
        .to_owned();
    assert!(secret.starts_with("jina_"));
    hubble_error(
        &post_form(
            &seed.url,
            &rpc("user.pat.create"),
            &auth,
            "name=my-token&expirationDays=30",
        ),
        409,
        40901,
    );
    hubble_error(
        &post_form(
            &seed.url,
            &rpc("user.pat.create"),
            &auth,
            "name=&expirationDays=30",
        ),
        400,
        40001,
    );
    hubble_error(
        &post_form(
            &seed.url,
            &rpc("user.pat.create"),
            &auth,
            "name=x&expirationDays=ten",
        ),
        400,
        40001,
    );

    let mine = format!("token {secret}");
    let list = request(
        &seed.url,
        "POST",
        &rpc("user.pat.list"),
        &[("Authorization", &mine)],
        None,
    )
    .json();
    let tokens = list["data"]["personal_access_tokens"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(tokens.len(), 2);
    for t in &tokens {
        has_keys(t, &["createdAt", "expireAt", "name", "type", "updatedAt"]);
    }

    let deleted = post_form(&seed.url, &rpc("user.pat.delete"), &auth, "name=my-token");
    assert_eq!(deleted.status, 200);
    deleted.json();
    hubble_error(
        &post_form(&seed.url, &rpc("user.pat.delete"), &auth, "name=my-token"),
        404,
        40403,
    );
    hubble_error(
        &request(
            &seed.url,
            "POST",
            &rpc("user.identity.whoami"),
            &[("Authorization", &mine)],
            None,
        ),
        401,
        40102,
    );
    hubble_error(
        &request(&seed.url, "POST", &rpc("no.such.method"), &auth, None),
        404,
        40402,
    );

    // Logout reads the body's `code`.
    let none = request(
        &seed.url,
        "POST",
        &rpc("user.session.dismiss"),
        &[("Authorization", "token None")],
        Some(("application/octet-stream", b"")),
    );
    assert_eq!(none.json()["code"], 401);
    let pat = request(
        &seed.url,
        "POST",
        &rpc("user.session.dismiss"),
        &auth,
        Some(("application/octet-stream", b"")),
    );
    assert_eq!(pat.status, 200);
    assert_eq!(pat.json()["code"], 200);
    assert!(pat
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
}

#[test]
fn jina_chunked_request_body() {
    let (_rt, s) = start();
    let seed = &s.seeds().jina;
    let body = "name=chunky&expirationDays=7";
    let (a, b) = body.split_at(10);
    let raw_request = format!(
        "POST /v2/rpc/user.pat.create HTTP/1.1\r\nHost: x\r\nAuthorization: token {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nTrailer: x\r\n\r\n",
        seed.token,
        a.len(),
        b.len()
    );
    let r = raw(&seed.url, raw_request.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.tokens(Service::Jina).iter().any(|t| t.name == "chunky"));
    let rec = s
        .requests(Service::Jina)
        .into_iter()
        .find(|r| r.path() == "/v2/rpc/user.pat.create")
        .expect("recorded");
    assert_eq!(rec.body_text(), body);
    assert_eq!(rec.form("name").as_deref(), Some("chunky"));
}

#[test]
fn jina_browser_login_streams_events() {
    let (_rt, s) = start();
    let seed = &s.seeds().jina;
    let mut stream = TcpStream::connect(host_port(&seed.url)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            b"GET /v2/rpc/user.identity.proxiedAuthorize?prompt=login HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .expect("send");
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n == "Transfer-Encoding" && v == "chunked"));
    // The redirect event arrives before any approval.
    let first: Value =
        serde_json::from_slice(&read_chunk(&mut reader).expect("an event")).expect("JSON");
    assert_eq!(first["event"], "redirect");
    let page_url = first["data"]["redirectTo"]
        .as_str()
        .expect("redirectTo")
        .to_owned();
    assert!(page_url.starts_with(&format!("{}/login?state=", seed.url)));
    assert_eq!(s.pending_logins(Service::Jina)[0].page_url, page_url);

    let page = get(&seed.url, &page_url[seed.url.len()..], &[]);
    let field = approve_form_field(&page.text());
    assert_eq!(post_form(&seed.url, "/login", &[], &field).status, 200);

    let second = read_chunk(&mut reader).expect("an event");
    assert!(second.ends_with(b"\n"), "one JSON per line");
    let second: Value = serde_json::from_slice(&second).expect("JSON");
    assert_eq!(second["event"], "authorize");
    let data = second["data"].clone();
    assert!(!data["code"].as_str().unwrap_or_default().is_empty());
    assert!(!data["state"].as_str().unwrap_or_default().is_empty());
    assert!(read_chunk(&mut reader).is_none(), "the stream ends");

    let granted = post_json(&seed.url, "/v2/rpc/user.identity.grant.auto", &[], &data);
    assert_eq!(granted.status, 200);
    let granted = granted.json();
    assert_eq!(granted["data"]["user"]["nickname"], "alice");
    assert_eq!(granted["data"]["user"]["name"], "alice-liddell");
    let session = format!(
        "token {}",
        granted["data"]["token"].as_str().expect("token")
    );
    hubble_error(
        &post_json(&seed.url, "/v2/rpc/user.identity.grant.auto", &[], &data),
        400,
        40001,
    );

    let auth = [("Authorization", session.as_str())];
    assert_eq!(
        request(
            &seed.url,
            "POST",
            "/v2/rpc/user.identity.whoami",
            &auth,
            None
        )
        .status,
        200
    );
    let out = request(
        &seed.url,
        "POST",
        "/v2/rpc/user.session.dismiss",
        &auth,
        None,
    );
    assert_eq!(out.json()["code"], 200);
    let again = request(
        &seed.url,
        "POST",
        "/v2/rpc/user.session.dismiss",
        &auth,
        None,
    );
    assert_eq!(again.json()["code"], 401);
    hubble_error(
        &request(
            &seed.url,
            "POST",
            "/v2/rpc/user.identity.whoami",
            &auth,
            None,
        ),
        401,
        40102,
    );
}

// --- Nuclia ----------------------------------------------------------------------

#[test]
fn nuclia_user_calls_and_tokens() {
    let (_rt, s) = start();
    let seed = &s.seeds().nuclia;
    let bearer = format!("Bearer {}", seed.token);
    let auth = [("Authorization", bearer.as_str())];

    let welcome = get(&seed.url, "/api/v1/user/welcome", &auth);
    assert_eq!(welcome.status, 200);
    assert!(!welcome.body.is_empty());
    assert_eq!(
        get(
            &seed.url,
            "/api/v1/user/welcome",
            &[("Authorization", "Bearer None")]
        )
        .status,
        401
    );
    let user = get(&seed.url, "/api/v1/user", &auth).json();
    assert_eq!(
        (
            user["name"].as_str(),
            user["email"].as_str(),
            user["type"].as_str()
        ),
        (Some("Alice"), Some("alice@example.com"), Some("USER"))
    );
    let accounts = get(&seed.url, "/api/v1/accounts", &auth).json();
    has_keys(&accounts[0], &["id", "slug", "title"]);
    assert_eq!(accounts[0]["id"], seed.account_id.as_str());
    let zones = get(&seed.url, "/api/v1/zones", &auth).json();
    has_keys(&zones[0], &["id", "origin", "slug", "title"]);
    assert_eq!(
        zones[0]["origin"],
        seed.url.as_str(),
        "regional calls land here too"
    );

    for mode in ["", "?mode=agent", "?mode=agent_no_memory"] {
        let kbs = get(
            &seed.url,
            &format!("/api/v1/account/{}/kbs{mode}", seed.account_id),
            &auth,
        );
        assert_eq!(kbs.status, 200);
        for kb in kbs.json().as_array().expect("a list") {
            has_keys(kb, &["id", "slug", "title"]);
        }
    }
    assert_eq!(
        get(
            &seed.url,
            &format!("/api/v1/account/{}/kbs", seed.account_id),
            &auth
        )
        .json()[0]["id"],
        seed.kb_id.as_str()
    );

    let created = post_json(
        &seed.url,
        "/api/v1/user/pa_tokens",
        &auth,
        &json!({"description": "browser extension", "expiration_date": "2099-12-23T07:21:56.139579"}),
    );
    assert_eq!(created.status, 201);
    let created = created.json();
    has_keys(&created, &["expires", "id", "token"]);
    let id = created["id"].as_str().expect("id").to_owned();
    let mine = format!("Bearer {}", created["token"].as_str().expect("token"));
    let list = get(
        &seed.url,
        "/api/v1/user/pa_tokens",
        &[("Authorization", &mine)],
    )
    .json();
    let list = list.as_array().expect("an array").clone();
    assert_eq!(list.len(), 2);
    for t in &list {
        has_keys(t, &["description", "expires", "id"]);
    }
    assert_eq!(
        post_json(
            &seed.url,
            "/api/v1/user/pa_tokens",
            &auth,
            &json!({"description": "x"})
        )
        .status,
        422
    );

    let deleted = request(
        &seed.url,
        "DELETE",
        &format!("/api/v1/user/pa_token/{id}"),
        &auth,
        None,
    );
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    assert_eq!(
        request(
            &seed.url,
            "DELETE",
            &format!("/api/v1/user/pa_token/{id}"),
            &auth,
            None
        )
        .status,
        404
    );
    assert_eq!(
        get(&seed.url, "/api/v1/user", &[("Authorization", &mine)]).status,
        401
    );

    let old = s.add_token(
        Service::Nuclia,
        "old",
        Some(SystemTime::now() - Duration::from_secs(60)),
    );
    assert_eq!(
        get(
            &seed.url,
            "/api/v1/user",
            &[("Authorization", &format!("Bearer {}", old.secret))]
        )
        .status,
        401
    );
}

#[test]
fn nuclia_keys() {
    let (_rt, s) = start();
    let seed = &s.seeds().nuclia;
    let key = format!("Bearer {}", seed.kb_key);
    let kb_path = &seed.kb_url[seed.url.len()..];

    let kb = get(&seed.url, kb_path, &[("X-Nuclia-Serviceaccount", &key)]);
    assert_eq!(kb.status, 200);
    assert_eq!(kb.json()["uuid"], seed.kb_id.as_str());
    assert_eq!(kb.json()["config"]["title"], "Docs");
    assert_eq!(get(&seed.url, kb_path, &[]).status, 401);
    assert_eq!(
        get(
            &seed.url,
            kb_path,
            &[("X-Nuclia-Serviceaccount", "Bearer nope")]
        )
        .status,
        401
    );
    assert_eq!(
        get(
            &seed.url,
            "/api/v1/kb/unknown",
            &[("X-Nuclia-Serviceaccount", &key)]
        )
        .status,
        404
    );

    // The data API takes nucliadb's header only.
    let config = format!("{kb_path}/configuration");
    assert_eq!(
        get(&seed.url, &config, &[("X-NUCLIA-SERVICEACCOUNT", &key)]).status,
        401
    );
    let ok = get(
        &seed.url,
        &config,
        &[("X-STF-SERVICEACCOUNT", &key), ("X-SYNCHRONOUS", "True")],
    );
    assert_eq!(ok.status, 200);
    ok.json();

    let info = get(
        &seed.url,
        "/api/authorizer/info",
        &[("x-nuclia-serviceaccount", &key)],
    )
    .json();
    assert_eq!(info["user"]["kb_id"], seed.kb_id.as_str());
    assert_eq!(info["user"]["account_id"], seed.account_id.as_str());
    assert_eq!(info["user"]["role"], "SOWNER");

    // The NUA key's issuer is this stand-in, read with the standard alphabet.
    let payload = seed.nua_key.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(payload)
            .expect("standard base64"),
    )
    .expect("JSON claims");
    assert_eq!(claims["iss"], format!("{}/", seed.url));
    let nua = get(
        &seed.url,
        "/api/authorizer/info",
        &[("x-nuclia-nuakey", &format!("Bearer {}", seed.nua_key))],
    );
    assert_eq!(nua.status, 200);
    let user = &nua.json()["user"];
    assert_eq!(user["user_id"], seed.nua_client_id.as_str());
    assert_eq!(user["account_id"], seed.account_id.as_str());
    assert!(user["account_type"].is_string());
    assert_eq!(get(&seed.url, "/api/authorizer/info", &[]).status, 401);

    let eph = post_json(
        &seed.url,
        "/api/v1/ephemeral_token",
        &[("X-NUCLIA-SERVICEACCOUNT", &key)],
        &json!({"ttl": 300}),
    );
    assert!(eph.json()["token"].is_string());

    let expired = s.add_nuclia_kb_key(Some(SystemTime::now() - Duration::from_secs(1)));
    assert_eq!(
        get(
            &seed.url,
            kb_path,
            &[("X-Nuclia-Serviceaccount", &format!("Bearer {expired}"))]
        )
        .status,
        401
    );
}

#[test]
fn nuclia_oauth_with_pkce() {
    let (_rt, s) = start();
    let seed = &s.seeds().nuclia;
    // RFC 7636, appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1:18765/callback";
    let authorize = |challenge: &str| {
        let r = get(
            &seed.url,
            &format!(
                "/oauth2/auth?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A18765%2Fcallback\
                 &scope=openid+offline_access+api%3Afull_access&code_challenge={challenge}\
                 &code_challenge_method=S256&state=eyJyYW5kb20iOiAiMSJ9",
                seed.oauth_client_id
            ),
            &[],
        );
        assert_eq!(r.status, 302);
        let location = r.header("location").expect("Location").to_owned();
        assert!(
            location.starts_with(&format!("{redirect}?code=")),
            "{location}"
        );
        assert!(
            location.contains("&state=eyJyYW5kb20iOiAiMSJ9"),
            "{location}"
        );
        let code = location
            .split("code=")
            .nth(1)
            .and_then(|c| c.split('&').next())
            .expect("code");
        code.replace("%2E", ".")
    };
    let exchange = |code: &str, verifier: &str| {
        post_form(
            &seed.url,
            "/oauth2/token",
            &[("Accept", "application/json")],
            &format!(
                "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%3A18765%2Fcallback\
                 &client_id={}&code_verifier={verifier}",
                seed.oauth_client_id
            ),
        )
    };

    let code = authorize(challenge);
    let wrong = exchange(&code, "not-the-verifier");
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["error"], "invalid_grant");
    let code = authorize(challenge);
    let tokens = exchange(&code, verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let tokens = tokens.json();
    has_keys(&tokens, &["access_token", "expires_in", "refresh_token"]);
    assert_eq!(exchange(&code, verifier).status, 400, "a code works once");

    let access = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("access")
    );
    assert_eq!(
        get(&seed.url, "/api/v1/user", &[("Authorization", &access)]).json()["name"],
        "Alice"
    );

    let refresh = |token: &str| {
        post_form(
            &seed.url,
            "/oauth2/token",
            &[],
            &format!(
                "grant_type=refresh_token&refresh_token={token}&client_id={}",
                seed.oauth_client_id
            ),
        )
    };
    let old_refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let renewed = refresh(&old_refresh);
    assert_eq!(renewed.status, 200);
    assert_ne!(
        renewed.json()["refresh_token"],
        tokens["refresh_token"],
        "rotated"
    );
    assert_eq!(
        refresh(&old_refresh).status,
        400,
        "the old refresh token is spent"
    );
    let new_access = format!(
        "Bearer {}",
        renewed.json()["access_token"].as_str().expect("access")
    );
    assert_eq!(
        get(&seed.url, "/api/v1/user", &[("Authorization", &new_access)]).status,
        200
    );
    assert!(s.expire_token(new_access.trim_start_matches("Bearer ")));
    assert_eq!(
        get(&seed.url, "/api/v1/user", &[("Authorization", &new_access)]).status,
        401
    );

    assert_eq!(
        get(
            &seed.url,
            "/oauth2/auth?response_type=code&redirect_uri=http://x/cb",
            &[]
        )
        .status,
        400,
        "PKCE is required"
    );
}

// --- Hugging Face ----------------------------------------------------------------

#[test]
fn huggingface_whoami() {
    let (_rt, s) = start();
    let seed = &s.seeds().huggingface;
    let r = get(
        &seed.url,
        "/api/whoami-v2",
        &[("authorization", &format!("Bearer {}", seed.token))],
    );
    assert_eq!(r.status, 200);
    let me = r.json();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["orgs"][0]["name"], "acme");
    assert_eq!(me["auth"]["accessToken"]["role"], "write");
    assert_eq!(
        me["auth"]["accessToken"]["displayName"],
        seed.token_name.as_str()
    );
    assert!(seed.token.starts_with("hf_"));
    assert_eq!(
        get(
            &seed.url,
            "/api/whoami-v2",
            &[("authorization", "Bearer hf_nope")]
        )
        .status,
        401
    );
    assert_eq!(get(&seed.url, "/api/whoami-v2", &[]).status, 401);
    assert_eq!(get(&seed.url, "/api/agent-harnesses", &[]).status, 404);

    let temp = s.add_token(Service::HuggingFace, "temp", None);
    let auth = format!("Bearer {}", temp.secret);
    assert_eq!(
        get(&seed.url, "/api/whoami-v2", &[("authorization", &auth)]).json()["auth"]["accessToken"]
            ["displayName"],
        "temp"
    );
    s.expire_token(&temp.secret);
    assert_eq!(
        get(&seed.url, "/api/whoami-v2", &[("authorization", &auth)]).status,
        401
    );
}

// --- The deployment --------------------------------------------------------------

#[test]
fn deployment_wants_a_bentocloud_token() {
    let (_rt, s) = start();
    let url = &s.seeds().deployment.url;
    let token = &s.seeds().bentocloud.token;
    let port = s.port(Service::Deployment);
    let host = format!("mydep.acme.localhost:{port}");
    let at = |headers: &[(&str, &str)]| {
        let mut h = format!("GET /predict?x=1 HTTP/1.1\r\nHost: {host}\r\n");
        for (n, v) in headers {
            h.push_str(&format!("{n}: {v}\r\n"));
        }
        h.push_str("\r\n");
        raw(url, h.as_bytes())
    };

    let denied = at(&[]);
    assert_eq!(denied.status, 401);
    assert!(!denied.body.is_empty());
    assert_eq!(
        denied.header("www-authenticate"),
        Some("Bearer realm=\"bentocloud-deployment\"")
    );
    assert_eq!(denied.header("access-control-allow-origin"), Some("*"));

    let ok = at(&[
        ("Authorization", &format!("Bearer {token}")),
        ("Origin", "http://page.localhost:1"),
    ]);
    assert_eq!(ok.status, 200);
    assert!(ok
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(ok.text().contains(DEPLOYMENT_OK));
    assert!(ok.text().contains(&host));
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://page.localhost:1")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("anything:{token}"));
    assert_eq!(
        at(&[("Authorization", &format!("Basic {basic}"))]).status,
        200
    );
    let swapped = base64::engine::general_purpose::STANDARD.encode(format!("{token}:x"));
    assert_eq!(
        at(&[("Authorization", &format!("Basic {swapped}"))]).status,
        401
    );
    assert_eq!(at(&[("Authorization", "Bearer nope")]).status, 401);
    assert_eq!(at(&[("X-YATAI-API-TOKEN", token)]).status, 401);

    let options = raw(
        url,
        format!(
            "OPTIONS /predict HTTP/1.1\r\nHost: {host}\r\nOrigin: http://page.localhost:1\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(options.status, 204);
    assert_eq!(
        options.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert!(options
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));

    // A deleted or expired token stops working.
    let temp = s.add_token(Service::BentoCloud, "temp", None);
    let bearer = format!("Bearer {}", temp.secret);
    assert_eq!(at(&[("Authorization", &bearer)]).status, 200);
    s.expire_token(&temp.secret);
    assert_eq!(at(&[("Authorization", &bearer)]).status, 401);

    let got = s.requests(Service::Deployment);
    assert_eq!(got.len(), 9);
    assert_eq!(got[1].host, host);
    assert_eq!(got[1].path(), "/predict");
    assert_eq!(got[1].query("x").as_deref(), Some("1"));
    assert_eq!(
        got[1].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(got[1].header_name("authorization"), Some("Authorization"));
    assert_eq!(got[6].method, "OPTIONS");
}

// --- Faults, recording, HTTP ------------------------------------------------------

#[test]
fn faults() {
    let (_rt, s) = start();
    let bento = &s.seeds().bentocloud;
    let auth = [("X-YATAI-API-TOKEN", bento.token.as_str())];
    s.fail_next(Service::BentoCloud, 2, Fault::Status(503));
    let first = get(&bento.url, "/api/v1/auth/current", &auth);
    assert_eq!(first.status, 503);
    assert!(first.header("x-trace-id").is_some());
    first.json();
    // A preflight neither fails nor counts.
    let pre = request(
        &bento.url,
        "OPTIONS",
        "/api/v1/auth/current",
        &[
            ("Origin", "http://x.localhost"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(get(&bento.url, "/api/v1/auth/current", &auth).status, 503);
    assert_eq!(get(&bento.url, "/api/v1/auth/current", &auth).status, 200);

    s.fail_until_reset(Service::BentoCloud, Fault::Garbage);
    for _ in 0..3 {
        let g = get(&bento.url, "/api/v1/current_org", &auth);
        assert_eq!(g.status, 200);
        assert!(serde_json::from_slice::<Value>(&g.body).is_err());
        assert!(g
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html")));
    }
    s.reset_faults(Service::BentoCloud);
    assert_eq!(
        get(&bento.url, "/api/v1/current_org", &auth).json()["name"],
        "acme"
    );

    let jina = &s.seeds().jina;
    s.fail_next(Service::Jina, 1, Fault::Status(500));
    hubble_error(
        &request(&jina.url, "POST", "/v2/rpc/user.identity.whoami", &[], None),
        500,
        50001,
    );
    s.fail_next(Service::Jina, 1, Fault::Status(429));
    let limited = request(&jina.url, "POST", "/v2/rpc/user.identity.whoami", &[], None);
    assert_eq!(limited.header("retry-after"), Some("1"));

    let nuclia = &s.seeds().nuclia;
    s.fail_next(Service::Nuclia, 1, Fault::Status(502));
    assert_eq!(
        get(&nuclia.url, "/api/v1/zones", &[]).json()["detail"],
        "injected failure (HTTP 502)"
    );
    s.fail_next(Service::HuggingFace, 1, Fault::Status(500));
    assert_eq!(
        get(&s.seeds().huggingface.url, "/api/whoami-v2", &[]).status,
        500
    );
    // Other services are unaffected.
    assert_eq!(get(&nuclia.url, "/api/v1/zones", &[]).status, 200);
}

#[test]
fn recording_and_http_details() {
    let (rt, s) = start();
    let hf = &s.seeds().huggingface;
    let r = raw(
        &hf.url,
        format!(
            "GET /api/whoami-v2 HTTP/1.1\r\nHost: h\r\nauthorization: Bearer {}\r\nX-Amzn-Trace-Id: abc\r\n\r\n",
            hf.token
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200);
    let rec = &s.requests(Service::HuggingFace)[0];
    assert_eq!(
        (rec.method.as_str(), rec.target.as_str(), rec.host.as_str()),
        ("GET", "/api/whoami-v2", "h")
    );
    assert_eq!(
        rec.header_name("Authorization"),
        Some("authorization"),
        "case as sent"
    );
    assert_eq!(
        rec.headers[2],
        ("X-Amzn-Trace-Id".to_owned(), "abc".to_owned())
    );
    assert!(s.requests(Service::Jina).is_empty());

    // Expect: 100-continue is answered before the body.
    let nuclia = &s.seeds().nuclia;
    let body = json!({"description": "d", "expiration_date": "2099-01-01T00:00:00"}).to_string();
    let mut stream = TcpStream::connect(host_port(&nuclia.url)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            format!(
                "POST /api/v1/user/pa_tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                nuclia.token,
                body.len()
            )
            .as_bytes(),
        )
        .expect("head");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("interim");
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).expect("blank");
    reader.get_mut().write_all(body.as_bytes()).expect("body");
    assert_eq!(read_reply(&mut reader).status, 201);

    // A malformed request gets a 400.
    assert_eq!(raw(&nuclia.url, b"hello\r\n\r\n").status, 400);

    let waited = rt.block_on(
        s.wait_for_request(Service::Nuclia, Duration::from_secs(1), |r| {
            r.method == "POST"
        }),
    );
    assert_eq!(
        waited.map(|r| r.path().to_owned()).as_deref(),
        Some("/api/v1/user/pa_tokens")
    );
    s.clear_requests();
    assert!(s.requests(Service::Nuclia).is_empty());
}

#[test]
fn urls_and_seeds() {
    let (_rt, s) = start();
    let seeds = s.seeds();
    let mut ports: Vec<u16> = Service::ALL.iter().map(|&svc| s.port(svc)).collect();
    for svc in Service::ALL {
        assert_eq!(s.url(svc), format!("http://127.0.0.1:{}", s.port(svc)));
    }
    assert_eq!(seeds.bentocloud.url, s.url(Service::BentoCloud));
    assert_eq!(
        seeds.nuclia.kb_url,
        format!("{}/api/v1/kb/{}", seeds.nuclia.url, seeds.nuclia.kb_id)
    );
    assert_eq!(
        seeds.deployment.example_url,
        format!(
            "http://mydep.acme.localhost:{}/",
            s.port(Service::Deployment)
        )
    );
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 5, "one port per service");
    let line = serde_json::to_string(seeds).expect("JSON");
    let back: Seeds = serde_json::from_str(&line).expect("round trip");
    assert_eq!(&back, seeds);
    for key in ["bentocloud", "jina", "nuclia", "huggingface", "deployment"] {
        assert!(serde_json::from_str::<Value>(&line)
            .expect("JSON")
            .get(key)
            .is_some());
    }
}

#[test]
fn the_bin_prints_its_seeds_and_serves() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_standin"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run standin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let seeds: Seeds = serde_json::from_str(&line).expect("the seeds as JSON");
    let who = get(
        &seeds.huggingface.url,
        "/api/whoami-v2",
        &[(
            "Authorization",
            &format!("Bearer {}", seeds.huggingface.token),
        )],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(who.status, 200);
}
