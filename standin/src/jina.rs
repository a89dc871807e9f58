//! Jina Hubble (`jina-hubble-sdk` 0.39.0): RPCs at `/v2/rpc/<method>`,
//! `Authorization: token <PAT>`, errors as `{"status": <hubble code>,
//! "message", "data": {}}` with an HTTP 4xx/5xx. Successes are
//! `{"code": 200, "status": 20000, "data": ...}`.
//!
//! RPCs (all `POST` but `proxiedAuthorize`): `user.identity.whoami`,
//! `dockerRegistry.listInternalRegistries`, `user.pat.create` (form `name`,
//! `expirationDays`), `user.pat.list`, `user.pat.delete` (form `name`),
//! `user.session.dismiss` (body `code` 200 or 401), `GET
//! user.identity.proxiedAuthorize` (NDJSON: a `redirect` event to this
//! stand-in's `/login?state=` page, then `authorize` once approved) and
//! `user.identity.grant.auto` (`{code, state}` → `data.token`,
//! `data.user`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::bentocloud::page;
use crate::http::{self, html_escape, Request, Response};
use crate::server::{Outcome, Shared};
use crate::{secret, time, IssuedToken, JinaSeed, PendingLogin, TokenInfo};

const RPC: &str = "/v2/rpc/";
const NAME: &str = "alice-liddell";
const NICKNAME: &str = "alice";
const USER_ID: &str = "64f0a1b2c3d4e5f600000001";
/// How long a login stream waits for approval.
const LOGIN_WAIT: Duration = Duration::from_secs(600);
/// What `jina-auth token create` offers and real tokens never exceed.
const MAX_DAYS: i64 = 3650;

#[derive(Debug, Clone)]
struct Pat {
    name: String,
    secret: String,
    created_at: i64,
    expire_at: i64,
    updated_at: i64,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct Session {
    secret: String,
    expire_at: i64,
    dismissed: bool,
}

#[derive(Debug, Clone)]
struct Login {
    state: String,
    code: String,
    approved: bool,
    granted: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    base: String,
    pats: Vec<Pat>,
    sessions: Vec<Session>,
    logins: Vec<Login>,
}

/// Whom a token belongs to.
enum Caller {
    Pat,
    Session(usize),
}

fn user() -> Value {
    json!({"_id": USER_ID, "name": NAME, "nickname": NICKNAME, "email": "alice@example.com",
           "avatarUrl": "", "status": "active"})
}

fn ok(data: Value) -> Response {
    Response::json(200, &json!({"code": 200, "status": 20000, "data": data}))
}

/// A Hubble error: HTTP `http`, body `status` = `code`.
pub(crate) fn error(http: u16, code: u32, message: &str) -> Response {
    Response::json(
        http,
        &json!({"code": http, "status": code, "message": message, "data": {}}),
    )
}

/// The Hubble code for an HTTP status, from the SDK's `errorcodes` table.
pub(crate) fn hubble_code(status: u16) -> u32 {
    match status {
        400 => 40001,
        401 => 40102,
        403 => 40301,
        404 => 40403,
        409 => 40901,
        413 => 41301,
        500 => 50001,
        502..=504 => 50002,
        s => u32::from(s) * 100 + 1,
    }
}

pub(crate) fn is_page(request: &Request) -> bool {
    request.path() == "/login"
}

impl State {
    pub(crate) fn new(base: String) -> (State, JinaSeed) {
        let mut state = State {
            base: base.clone(),
            pats: Vec::new(),
            sessions: Vec::new(),
            logins: Vec::new(),
        };
        let name = "seeded-token";
        let issued = state.add_token(name, Some(time::now() + 365 * time::DAY));
        let seed = JinaSeed {
            url: base,
            token: issued.secret,
            token_name: name.to_owned(),
            name: NAME.to_owned(),
            nickname: NICKNAME.to_owned(),
        };
        (state, seed)
    }

    pub(crate) fn add_token(&mut self, name: &str, expires: Option<i64>) -> IssuedToken {
        let now = time::now();
        let secret = secret::jina();
        self.pats.push(Pat {
            name: name.to_owned(),
            secret: secret.clone(),
            created_at: now,
            expire_at: expires.unwrap_or(now + MAX_DAYS * time::DAY),
            updated_at: now,
            deleted: false,
        });
        IssuedToken {
            id: name.to_owned(),
            secret,
        }
    }

    pub(crate) fn expire(&mut self, secret: &str, at: i64) -> bool {
        let mut found = false;
        for p in self.pats.iter_mut().filter(|p| p.secret == secret) {
            p.expire_at = at;
            found = true;
        }
        for s in self.sessions.iter_mut().filter(|s| s.secret == secret) {
            s.expire_at = at;
            found = true;
        }
        found
    }

    pub(crate) fn tokens(&self) -> Vec<TokenInfo> {
        self.pats
            .iter()
            .map(|p| TokenInfo {
                id: p.name.clone(),
                name: p.name.clone(),
                expires: Some(time::to_system(p.expire_at)),
                deleted: p.deleted,
            })
            .collect()
    }

    pub(crate) fn pending_logins(&self) -> Vec<PendingLogin> {
        self.logins
            .iter()
            .filter(|l| !l.approved)
            .map(|l| PendingLogin {
                key: l.state.clone(),
                page_url: self.login_page(&l.state),
            })
            .collect()
    }

    fn login_page(&self, state: &str) -> String {
        format!("{}/login?state={}", self.base, http::percent_encode(state))
    }

    pub(crate) fn approve(&mut self, state: &str) -> bool {
        match self
            .logins
            .iter_mut()
            .find(|l| l.state == state && !l.approved)
        {
            Some(l) => {
                l.approved = true;
                true
            }
            None => false,
        }
    }

    /// The approved login's `authorize` event data, if approved.
    fn authorized(&self, state: &str) -> Option<Value> {
        self.logins
            .iter()
            .find(|l| l.state == state && l.approved)
            .map(|l| json!({"code": l.code, "state": l.state, "provider": "standin"}))
    }

    /// The caller, from `Authorization: token <secret>`: `Err` is the error
    /// to answer (40103 without a token, 40102 with a bad one).
    fn caller(&mut self, request: &Request) -> Result<Caller, Response> {
        let now = time::now();
        let header = request.header("authorization").unwrap_or_default().trim();
        let token = match header.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("token") => t.trim(),
            _ => "",
        };
        if token.is_empty() || token == "None" {
            return Err(error(401, 40103, "Authentication required"));
        }
        if let Some(i) = self
            .pats
            .iter()
            .position(|p| p.secret == token && !p.deleted && p.expire_at > now)
        {
            self.pats[i].updated_at = now;
            return Ok(Caller::Pat);
        }
        if let Some(i) = self
            .sessions
            .iter()
            .position(|s| s.secret == token && !s.dismissed && s.expire_at > now)
        {
            return Ok(Caller::Session(i));
        }
        Err(error(
            401,
            40102,
            "Authentication failed: invalid or expired token",
        ))
    }

    pub(crate) fn route(&mut self, request: &Request) -> Outcome {
        let path = request.path();
        let method = request.method.as_str();
        if path == "/login" {
            return match method {
                "POST" => self.approve_from_page(request),
                _ => self.page(request),
            }
            .into();
        }
        let Some(rpc) = path.strip_prefix(RPC) else {
            return error(404, 40402, "No such RPC method").into();
        };
        if rpc == "user.identity.proxiedAuthorize" {
            if method != "GET" {
                return error(405, 40502, "Use GET").into();
            }
            let state = secret::code(32);
            self.logins.push(Login {
                state: state.clone(),
                code: secret::code(40),
                approved: false,
                granted: false,
            });
            return Outcome::JinaAuthorize { state };
        }
        if method != "POST" {
            return error(405, 40502, "Hubble RPCs are POST").into();
        }
        match rpc {
            "dockerRegistry.listInternalRegistries" => {
                ok(json!(["registry.hubble.localhost"])).into()
            }
            "user.identity.grant.auto" => self.grant(request).into(),
            "user.session.dismiss" => self.dismiss(request).into(),
            "user.identity.whoami" | "user.pat.create" | "user.pat.list" | "user.pat.delete" => {
                if let Err(e) = self.caller(request) {
                    return e.into();
                }
                match rpc {
                    "user.identity.whoami" => ok(user()),
                    "user.pat.create" => self.create(request),
                    "user.pat.list" => self.list(),
                    _ => self.delete(request),
                }
                .into()
            }
            _ => error(404, 40402, &format!("RPC method not found: {rpc}")).into(),
        }
    }

    fn create(&mut self, request: &Request) -> Response {
        let name = request.field("name").unwrap_or_default().trim().to_owned();
        if name.is_empty() {
            return error(400, 40001, "name is required");
        }
        let days = match request.field("expirationDays") {
            None => 30,
            Some(d) => match d.trim().parse::<i64>() {
                Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
                _ => return error(400, 40001, "expirationDays should be a number of days"),
            },
        };
        if self.pats.iter().any(|p| p.name == name && !p.deleted) {
            return error(409, 40901, &format!("A token named {name} already exists"));
        }
        let now = time::now();
        let issued = self.add_token(&name, Some(now + days * time::DAY));
        ok(json!({"token": issued.secret, "name": name,
                  "expireAt": time::rfc3339_millis(now + days * time::DAY)}))
    }

    fn list(&self) -> Response {
        let tokens: Vec<Value> = self
            .pats
            .iter()
            .filter(|p| !p.deleted)
            .map(|p| {
                json!({"name": p.name, "type": "pat",
                       "createdAt": time::rfc3339_millis(p.created_at),
                       "expireAt": time::rfc3339_millis(p.expire_at),
                       "updatedAt": time::rfc3339_millis(p.updated_at)})
            })
            .collect();
        ok(json!({"personal_access_tokens": tokens}))
    }

    fn delete(&mut self, request: &Request) -> Response {
        let name = request.field("name").unwrap_or_default();
        match self.pats.iter_mut().find(|p| p.name == name && !p.deleted) {
            Some(p) => {
                p.deleted = true;
                ok(json!({"name": name}))
            }
            None => error(404, 40403, &format!("No token named {name}")),
        }
    }

    /// Logout: a session token is dismissed; a personal access token stays
    /// valid (it is not a session), but the answer is a success either way.
    fn dismiss(&mut self, request: &Request) -> Response {
        match self.caller(request) {
            Ok(Caller::Session(i)) => {
                self.sessions[i].dismissed = true;
                ok(json!({}))
            }
            Ok(Caller::Pat) => ok(json!({})),
            Err(e) => e,
        }
    }

    fn grant(&mut self, request: &Request) -> Response {
        let code = request.field("code").unwrap_or_default();
        let state = request.field("state").unwrap_or_default();
        let Some(login) = self.logins.iter_mut().find(|l| {
            !code.is_empty() && l.code == code && l.state == state && l.approved && !l.granted
        }) else {
            return error(400, 40001, "Invalid or used authorization code");
        };
        login.granted = true;
        let secret = secret::jina();
        self.sessions.push(Session {
            secret: secret.clone(),
            expire_at: time::now() + 30 * time::DAY,
            dismissed: false,
        });
        ok(json!({"token": secret, "user": user()}))
    }

    fn page(&self, request: &Request) -> Response {
        let state = request.query("state").unwrap_or_default();
        let body = match self.logins.iter().find(|l| l.state == state) {
            None => return Response::html(404, page("Unknown login", "<p>No such login.</p>")),
            Some(l) if l.approved => {
                "<p id=\"status\">Approved. You can close this tab.</p>".to_owned()
            }
            Some(_) => format!(
                "<p>Log in to Jina AI as <b>{NICKNAME}</b>?</p>\
                 <form method=\"post\" action=\"/login\">\
                 <input type=\"hidden\" name=\"state\" value=\"{}\">\
                 <button type=\"submit\" id=\"approve\">Approve</button></form>",
                html_escape(&state)
            ),
        };
        Response::html(200, page("Jina AI login", &body))
    }

    fn approve_from_page(&mut self, request: &Request) -> Response {
        let state = request
            .field("state")
            .or_else(|| request.query("state"))
            .unwrap_or_default();
        if self.approve(&state) {
            Response::html(
                200,
                page(
                    "Jina AI login",
                    "<p id=\"status\">Approved. You can close this tab.</p>",
                ),
            )
        } else {
            Response::html(404, page("Unknown login", "<p>No pending login.</p>"))
        }
    }
}

/// Streams the login's NDJSON events: `redirect` at once, `authorize` when
/// approved (or `error` after [`LOGIN_WAIT`] or when the stand-ins stop).
pub(crate) async fn authorize_stream(
    stream: &mut TcpStream,
    shared: &Arc<Shared>,
    state: &str,
    mut headers: Vec<(String, String)>,
) {
    headers.push((
        "Content-Type".to_owned(),
        "application/x-ndjson; charset=utf-8".to_owned(),
    ));
    let redirect = {
        let world = shared.lock();
        json!({"event": "redirect", "data": {"redirectTo": world.jina.login_page(state)}})
    };
    let Ok(mut out) = http::Chunked::start(stream, 200, &headers).await else {
        return;
    };
    if out.send(format!("{redirect}\n").as_bytes()).await.is_err() {
        return;
    }
    let deadline = Instant::now() + LOGIN_WAIT;
    let event = loop {
        {
            let world = shared.lock();
            if let Some(data) = world.jina.authorized(state) {
                break json!({"event": "authorize", "data": data});
            }
            if world.stopped {
                break json!({"event": "error", "data": "the stand-in stopped"});
            }
        }
        if Instant::now() >= deadline {
            break json!({"event": "error", "data": "login timed out"});
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if out.send(format!("{event}\n").as_bytes()).await.is_ok() {
        out.finish().await;
    }
}
