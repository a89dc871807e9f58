//! BentoCloud (`bentoml` 1.4.39): `X-YATAI-API-TOKEN`, success is exactly
//! 200, not-found is 404 with `record not found`.
//!
//! Routes:
//! - `GET /api/v1/auth/current` → UserSchema
//! - `GET /api/v1/current_org` → OrganizationSchema
//! - `GET /api/v1/api_tokens?start&count&search` → `{start, count, total, items}`
//! - `POST /api/v1/api_tokens` `{name, description, scopes, expired_at}` → ApiToken + `token`
//! - `GET|DELETE /api/v1/api_tokens/{uid}`
//! - `GET /api/v1/auth/code` → `{code}` (no auth)
//! - `GET /api/v1/auth/token?code=` → 404 while pending, then `{token}` once
//! - `GET /api_tokens?code=` → the approval page; `POST /api_tokens` (form
//!   `code`) approves it.

use serde_json::{json, Value};

use crate::http::{self, html_escape, Request, Response};
use crate::{secret, time, BentoCloudSeed, IssuedToken, PendingLogin, TokenInfo};

pub(crate) const TOKEN_HEADER: &str = "X-YATAI-API-TOKEN";
const USER: &str = "alice";
const EMAIL: &str = "alice@example.com";
const ORG: &str = "acme";
const ORG_UID: &str = "org0acme0standin0001";

#[derive(Debug, Clone)]
pub(crate) struct Token {
    uid: String,
    name: String,
    description: String,
    scopes: Vec<String>,
    created_at: i64,
    updated_at: i64,
    expired_at: Option<i64>,
    last_used_at: Option<i64>,
    secret: String,
    deleted: bool,
}

impl Token {
    fn live(&self, now: i64) -> bool {
        !self.deleted && self.expired_at.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Clone)]
struct Login {
    code: String,
    /// The secret of the token made at approval.
    token: Option<String>,
    delivered: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    base: String,
    created: i64,
    tokens: Vec<Token>,
    logins: Vec<Login>,
    next: u64,
}

fn user() -> Value {
    json!({"name": USER, "email": EMAIL, "first_name": "Alice", "last_name": "Liddell",
           "avatar_url": ""})
}

fn not_found() -> Response {
    Response::json(404, &json!({"error": "record not found"}))
}

fn bad_request(message: &str) -> Response {
    Response::json(400, &json!({"error": message}))
}

pub(crate) fn is_page(request: &Request) -> bool {
    request.path() == "/api_tokens"
}

impl State {
    pub(crate) fn new(base: String) -> (State, BentoCloudSeed) {
        let mut state = State {
            base: base.clone(),
            created: time::now(),
            tokens: Vec::new(),
            logins: Vec::new(),
            next: 1,
        };
        let name = "seeded-token";
        let issued = state.add_token(name, None);
        let seed = BentoCloudSeed {
            url: base,
            token: issued.secret,
            token_uid: issued.id,
            token_name: name.to_owned(),
            user: USER.to_owned(),
            email: EMAIL.to_owned(),
            org: ORG.to_owned(),
        };
        (state, seed)
    }

    fn org(&self) -> Value {
        let created = time::rfc3339(self.created);
        json!({"uid": ORG_UID, "created_at": created, "updated_at": created,
               "deleted_at": null, "name": ORG, "resource_type": "organization",
               "labels": [], "description": "Acme's organization"})
    }

    fn create(
        &mut self,
        name: &str,
        description: &str,
        scopes: Vec<String>,
        expires: Option<i64>,
    ) -> &Token {
        let now = time::now();
        let uid = format!("tok{:017}", self.next);
        self.next += 1;
        self.tokens.push(Token {
            uid,
            name: name.to_owned(),
            description: description.to_owned(),
            scopes,
            created_at: now,
            updated_at: now,
            expired_at: expires,
            last_used_at: None,
            secret: secret::bentocloud(),
            deleted: false,
        });
        let last = self.tokens.len() - 1;
        &self.tokens[last]
    }

    pub(crate) fn add_token(&mut self, name: &str, expires: Option<i64>) -> IssuedToken {
        let t = self.create(name, "", vec!["api".to_owned()], expires);
        IssuedToken {
            id: t.uid.clone(),
            secret: t.secret.clone(),
        }
    }

    pub(crate) fn expire(&mut self, secret: &str, at: i64) -> bool {
        let mut found = false;
        for t in self.tokens.iter_mut().filter(|t| t.secret == secret) {
            t.expired_at = Some(at);
            found = true;
        }
        found
    }

    pub(crate) fn tokens(&self) -> Vec<TokenInfo> {
        self.tokens
            .iter()
            .map(|t| TokenInfo {
                id: t.uid.clone(),
                name: t.name.clone(),
                expires: t.expired_at.map(time::to_system),
                deleted: t.deleted,
            })
            .collect()
    }

    /// Whether `secret` is a live (not deleted, not expired) API token: what
    /// the deployment accepts.
    pub(crate) fn is_valid(&self, secret: &str) -> bool {
        let now = time::now();
        self.tokens
            .iter()
            .any(|t| t.secret == secret && t.live(now))
    }

    pub(crate) fn pending_logins(&self) -> Vec<PendingLogin> {
        self.logins
            .iter()
            .filter(|l| l.token.is_none())
            .map(|l| PendingLogin {
                key: l.code.clone(),
                page_url: format!("{}/api_tokens?code={}", self.base, l.code),
            })
            .collect()
    }

    pub(crate) fn approve(&mut self, code: &str) -> bool {
        let Some(i) = self
            .logins
            .iter()
            .position(|l| l.code == code && l.token.is_none())
        else {
            return false;
        };
        let name = format!("bentoml-cli-{}", self.next);
        let secret = self
            .create(
                &name,
                "Created by browser login (bentoml cloud login)",
                vec!["api".to_owned()],
                None,
            )
            .secret
            .clone();
        self.logins[i].token = Some(secret);
        true
    }

    fn token_json(&self, t: &Token, now: i64) -> Value {
        json!({
            "uid": t.uid,
            "created_at": time::rfc3339(t.created_at),
            "updated_at": time::rfc3339(t.updated_at),
            "deleted_at": null,
            "name": t.name,
            "resource_type": "api_token",
            "labels": [],
            "description": t.description,
            "scopes": t.scopes,
            "user": user(),
            "organization": self.org(),
            "expired_at": t.expired_at.map(time::rfc3339),
            "last_used_at": t.last_used_at.map(time::rfc3339),
            "is_expired": t.expired_at.is_some_and(|e| e <= now),
            "is_api_token": true,
            "is_organization_token": false,
            "is_global_access": false,
        })
    }

    pub(crate) fn route(&mut self, request: &Request) -> Response {
        let path = request.path();
        let method = request.method.as_str();
        match (method, path) {
            ("GET", "/api/v1/auth/code") => return self.new_login(),
            ("GET", "/api/v1/auth/token") => return self.poll_login(request),
            ("GET" | "HEAD", "/api_tokens") => return self.page(request),
            ("POST", "/api_tokens") => return self.approve_from_page(request),
            _ => {}
        }
        if !path.starts_with("/api/") {
            return not_found();
        }
        let now = time::now();
        let secret = request.header(TOKEN_HEADER).unwrap_or_default();
        let Some(caller) = self
            .tokens
            .iter_mut()
            .find(|t| !secret.is_empty() && t.secret == secret && t.live(now))
        else {
            return Response::json(401, &json!({"error": "Bad credentials"}));
        };
        caller.last_used_at = Some(now);
        match (method, path) {
            ("GET", "/api/v1/auth/current") => Response::json(200, &user()),
            ("GET", "/api/v1/current_org") => Response::json(200, &self.org()),
            ("GET", "/api/v1/api_tokens") => self.list(request, now),
            ("POST", "/api/v1/api_tokens") => self.create_from(request, now),
            (_, p) if p.starts_with("/api/v1/api_tokens/") => {
                let uid = http::percent_decode(&p["/api/v1/api_tokens/".len()..]);
                let Some(i) = self.tokens.iter().position(|t| t.uid == uid && !t.deleted) else {
                    return not_found();
                };
                match method {
                    "GET" => Response::json(200, &self.token_json(&self.tokens[i], now)),
                    "DELETE" => {
                        self.tokens[i].deleted = true;
                        self.tokens[i].updated_at = now;
                        Response::json(200, &self.token_json(&self.tokens[i], now))
                    }
                    _ => Response::json(405, &json!({"error": "method not allowed"})),
                }
            }
            _ => not_found(),
        }
    }

    fn list(&self, request: &Request, now: i64) -> Response {
        let start: usize = request
            .query("start")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let count: usize = request
            .query("count")
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        let search = request.query("search").map(|s| s.to_lowercase());
        let matching: Vec<&Token> = self
            .tokens
            .iter()
            .filter(|t| !t.deleted)
            .filter(|t| {
                search
                    .as_deref()
                    .is_none_or(|s| t.name.to_lowercase().contains(s))
            })
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(count)
            .map(|t| self.token_json(t, now))
            .collect();
        Response::json(
            200,
            &json!({"start": start, "count": count, "total": matching.len(), "items": items}),
        )
    }

    fn create_from(&mut self, request: &Request, now: i64) -> Response {
        let Some(Value::Object(body)) = request.json() else {
            return bad_request("the body should be a JSON object");
        };
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_owned(),
            _ => return bad_request("name is required"),
        };
        let description = match body.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => return bad_request("description should be a string"),
        };
        let scopes = match body.get("scopes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let scopes: Option<Vec<String>> =
                    a.iter().map(|s| s.as_str().map(str::to_owned)).collect();
                match scopes {
                    Some(s) => s,
                    None => return bad_request("scopes should be strings"),
                }
            }
            Some(_) => return bad_request("scopes should be a list"),
        };
        let expires = match body.get("expired_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match time::parse(s) {
                Some(t) => Some(t),
                None => return bad_request("expired_at is not a date"),
            },
            Some(_) => return bad_request("expired_at should be a string"),
        };
        let t = self.create(&name, &description, scopes, expires).clone();
        let mut out = self.token_json(&t, now);
        out["token"] = Value::String(t.secret);
        Response::json(200, &out)
    }

    fn new_login(&mut self) -> Response {
        let code = secret::code(32);
        self.logins.push(Login {
            code: code.clone(),
            token: None,
            delivered: false,
        });
        Response::json(200, &json!({"code": code}))
    }

    fn poll_login(&mut self, request: &Request) -> Response {
        let code = request.query("code").unwrap_or_default();
        let Some(login) = self
            .logins
            .iter_mut()
            .find(|l| l.code == code && !l.delivered)
        else {
            return not_found();
        };
        match &login.token {
            Some(token) => {
                login.delivered = true;
                Response::json(200, &json!({"token": token}))
            }
            None => Response::json(404, &json!({"error": "authorization pending"})),
        }
    }

    fn page(&self, request: &Request) -> Response {
        let code = request.query("code").unwrap_or_default();
        let login = self.logins.iter().find(|l| l.code == code);
        let body = match login {
            None => {
                return Response::html(404, page("Unknown login", "<p>No such login code.</p>"))
            }
            Some(l) if l.token.is_some() => {
                "<p id=\"status\">Approved. You can close this tab.</p>".to_owned()
            }
            Some(_) => format!(
                "<p>The BentoML CLI asks for a new API token of <b>{EMAIL}</b> at <b>{ORG}</b>.</p>\
                 <form method=\"post\" action=\"/api_tokens\">\
                 <input type=\"hidden\" name=\"code\" value=\"{}\">\
                 <button type=\"submit\" id=\"approve\">Approve</button></form>",
                html_escape(&code)
            ),
        };
        Response::html(200, page("Authorize the BentoML CLI", &body))
    }

    fn approve_from_page(&mut self, request: &Request) -> Response {
        let code = request
            .field("code")
            .or_else(|| request.query("code"))
            .unwrap_or_default();
        if self.approve(&code) {
            Response::html(
                200,
                page(
                    "Authorize the BentoML CLI",
                    "<p id=\"status\">Approved. You can close this tab.</p>",
                ),
            )
        } else {
            Response::html(
                404,
                page("Unknown login", "<p>No pending login with this code.</p>"),
            )
        }
    }
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <link rel=\"icon\" href=\"data:,\"></head><body><h1>{t}</h1>{body}</body></html>",
        t = html_escape(title)
    )
}
