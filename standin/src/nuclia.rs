//! Nuclia (`nuclia` 4.15.0): the accounts API, the regional API, a
//! Knowledge Box and the OAuth server, all on one stand-in (the zone's
//! `origin`, the KB URL and the NUA key's `iss` point back at it).
//!
//! User calls take `Authorization: Bearer <PAT or OAuth access token>`:
//! - `GET /api/v1/user/welcome`, `/api/v1/user`, `/api/v1/accounts`
//! - `GET /api/v1/zones` (public)
//! - `GET|POST /api/v1/user/pa_tokens` (create: 201 `{id, token, expires}`),
//!   `DELETE /api/v1/user/pa_token/{id}` (204)
//! - `GET /api/v1/account/{id}/kbs[?mode=agent|agent_no_memory]` (a NUA key
//!   of the account works too, as `x-nuclia-nuakey`)
//!
//! Keys:
//! - `GET /api/v1/kb/{kbid}` with `X-Nuclia-Serviceaccount: Bearer <key>`
//!   (or `X-STF-SERVICEACCOUNT`) → KnowledgeBoxObj
//! - `/api/v1/kb/{kbid}/...` (the data API, e.g. `configuration`) only with
//!   `X-STF-SERVICEACCOUNT: Bearer <key>`, as nucliadb_sdk sends it
//! - `POST /api/v1/ephemeral_token` with `X-NUCLIA-SERVICEACCOUNT`
//! - `GET /api/authorizer/info` with `x-nuclia-serviceaccount` (KB key) or
//!   `x-nuclia-nuakey` (NUA key)
//!
//! OAuth (authorization code with PKCE S256, refresh with rotation):
//! - `GET /oauth2/auth` → 302 to `redirect_uri?code&state`, approved at once
//! - `POST /oauth2/token` (form) → `{access_token, refresh_token, expires_in}`

use serde_json::{json, Value};

use crate::http::{self, Request, Response};
use crate::{secret, time, IssuedToken, NucliaSeed, TokenInfo};

const USER_NAME: &str = "Alice";
const EMAIL: &str = "alice@example.com";
const USER_ID: &str = "5f0c2a9e-1b7d-4c3e-9a41-0a11ce000001";
const ACCOUNT_ID: &str = "0f2b6c1e-5d4a-4c3b-8e9f-acce55000001";
const ACCOUNT_SLUG: &str = "acme";
const ZONE: &str = "europe-1";
const KB_ID: &str = "7b3ad4d7-2b8e-4f0e-9a52-6cde1f0c2a11";
const AGENT_ID: &str = "9c4be5e8-3c9f-4a1f-8b63-7def2a1d3b22";
const NUA_CLIENT_ID: &str = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
/// The public client id Nuclia's CLI registers its callback ports with.
pub(crate) const OAUTH_CLIENT_ID: &str = "43f54e81-932a-4b45-9bba-acbf4e2b5ee6";
/// Lifetime of OAuth access tokens, unless a test sets another.
const ACCESS_SECONDS: i64 = 3600;

#[derive(Debug, Clone)]
struct Pat {
    id: String,
    description: String,
    secret: String,
    expires: Option<i64>,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct Access {
    secret: String,
    expires: i64,
}

#[derive(Debug, Clone)]
struct Refresh {
    secret: String,
    used: bool,
}

#[derive(Debug, Clone)]
struct Code {
    code: String,
    challenge: String,
    redirect_uri: String,
    client_id: String,
    expires: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct KbKey {
    secret: String,
    expires: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct State {
    base: String,
    pats: Vec<Pat>,
    access: Vec<Access>,
    refresh: Vec<Refresh>,
    codes: Vec<Code>,
    kb_keys: Vec<KbKey>,
    nua_key: String,
    next: u64,
    access_seconds: i64,
}

fn detail(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"detail": message}))
}

fn oauth_error(error: &str, description: &str) -> Response {
    Response::json(
        400,
        &json!({"error": error, "error_description": description}),
    )
}

/// The `Bearer` value of header `name`.
fn bearer<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    let value = request.header(name)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl State {
    pub(crate) fn new(base: String) -> (State, NucliaSeed) {
        let nua_key = secret::jwt_both_alphabets(&json!({
            "iss": format!("{base}/"),
            "sub": NUA_CLIENT_ID,
            "aud": "nua",
            "jti": "nua-standin-1",
        }));
        let mut state = State {
            base: base.clone(),
            pats: Vec::new(),
            access: Vec::new(),
            refresh: Vec::new(),
            codes: Vec::new(),
            kb_keys: Vec::new(),
            nua_key: nua_key.clone(),
            access_seconds: ACCESS_SECONDS,
            next: 1,
        };
        let description = "seeded token";
        let issued = state.add_token(description, Some(time::now() + 365 * time::DAY));
        let kb_key = state.add_kb_key(None);
        let seed = NucliaSeed {
            url: base.clone(),
            token: issued.secret,
            token_id: issued.id,
            user: USER_NAME.to_owned(),
            email: EMAIL.to_owned(),
            account_id: ACCOUNT_ID.to_owned(),
            account_slug: ACCOUNT_SLUG.to_owned(),
            zone: ZONE.to_owned(),
            kb_id: KB_ID.to_owned(),
            kb_url: format!("{base}/api/v1/kb/{KB_ID}"),
            kb_key,
            nua_key,
            nua_client_id: NUA_CLIENT_ID.to_owned(),
            oauth_client_id: OAUTH_CLIENT_ID.to_owned(),
        };
        (state, seed)
    }

    fn next_id(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    pub(crate) fn add_token(&mut self, description: &str, expires: Option<i64>) -> IssuedToken {
        let id = self.next_id();
        let secret = secret::jwt(&json!({
            "iss": format!("{}/", self.base), "sub": USER_ID, "jti": id, "type": "pa_token",
        }));
        self.pats.push(Pat {
            id: id.clone(),
            description: description.to_owned(),
            secret: secret.clone(),
            expires,
            deleted: false,
        });
        IssuedToken { id, secret }
    }

    pub(crate) fn add_kb_key(&mut self, expires: Option<i64>) -> String {
        let id = self.next_id();
        let secret = secret::jwt(&json!({
            "iss": format!("{}/", self.base), "sub": KB_ID, "jti": id, "type": "service_account",
        }));
        self.kb_keys.push(KbKey {
            secret: secret.clone(),
            expires,
        });
        secret
    }

    pub(crate) fn expire(&mut self, secret: &str, at: i64) -> bool {
        let mut found = false;
        for p in self.pats.iter_mut().filter(|p| p.secret == secret) {
            p.expires = Some(at);
            found = true;
        }
        for a in self.access.iter_mut().filter(|a| a.secret == secret) {
            a.expires = at;
            found = true;
        }
        for k in self.kb_keys.iter_mut().filter(|k| k.secret == secret) {
            k.expires = Some(at);
            found = true;
        }
        found
    }

    pub(crate) fn tokens(&self) -> Vec<TokenInfo> {
        self.pats
            .iter()
            .map(|p| TokenInfo {
                id: p.id.clone(),
                name: p.description.clone(),
                expires: p.expires.map(time::to_system),
                deleted: p.deleted,
            })
            .collect()
    }

    fn user_ok(&self, request: &Request) -> bool {
        let now = time::now();
        let Some(token) = bearer(request, "authorization") else {
            return false;
        };
        self.pats
            .iter()
            .any(|p| p.secret == token && !p.deleted && p.expires.is_none_or(|e| e > now))
            || self
                .access
                .iter()
                .any(|a| a.secret == token && a.expires > now)
    }

    fn kb_key_ok(&self, key: Option<&str>) -> bool {
        let now = time::now();
        key.is_some_and(|key| {
            self.kb_keys
                .iter()
                .any(|k| k.secret == key && k.expires.is_none_or(|e| e > now))
        })
    }

    fn nua_ok(&self, request: &Request) -> bool {
        bearer(request, "x-nuclia-nuakey").is_some_and(|k| k == self.nua_key)
            || bearer(request, "x-stf-nuakey").is_some_and(|k| k == self.nua_key)
    }

    fn user() -> Value {
        json!({"id": USER_ID, "name": USER_NAME, "email": EMAIL, "type": "USER"})
    }

    fn kb_list(&self, mode: Option<&str>) -> Value {
        match mode {
            None => json!([{"id": KB_ID, "slug": "docs", "title": "Docs", "zone": ZONE,
                            "account_id": ACCOUNT_ID}]),
            Some("agent") => json!([{"id": AGENT_ID, "slug": "assistant", "title": "Assistant",
                                     "zone": ZONE, "account_id": ACCOUNT_ID}]),
            Some(_) => json!([]),
        }
    }

    pub(crate) fn route(&mut self, request: &Request) -> Response {
        let path = request.path().to_owned();
        let method = request.method.as_str();
        match (method, path.as_str()) {
            ("GET", "/oauth2/auth") => return self.authorize(request),
            ("POST", "/oauth2/token") => return self.token(request),
            ("GET", "/api/authorizer/info") => return self.authorizer_info(request),
            ("POST", "/api/v1/ephemeral_token") => {
                return if self.kb_key_ok(bearer(request, "x-nuclia-serviceaccount")) {
                    Response::json(
                        200,
                        &json!({"token": secret::jwt(&json!({"sub": KB_ID, "type": "ephemeral"}))}),
                    )
                } else {
                    detail(401, "Invalid service account key")
                };
            }
            ("GET", "/api/v1/zones") => {
                return Response::json(
                    200,
                    &json!([{"id": ZONE, "title": "Europe 1", "slug": ZONE, "private": false,
                             "origin": self.base}]),
                )
            }
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/api/v1/kb/") {
            return self.kb(request, rest);
        }
        if let Some(rest) = path.strip_prefix("/api/v1/account/") {
            if let Some(account) = rest.strip_suffix("/kbs") {
                if method != "GET" {
                    return detail(405, "Method Not Allowed");
                }
                if !self.user_ok(request) && !self.nua_ok(request) {
                    return detail(401, "Login required");
                }
                if account != ACCOUNT_ID && account != ACCOUNT_SLUG {
                    return detail(403, "Not a member of this account");
                }
                let mode = request.query("mode");
                return Response::json(200, &self.kb_list(mode.as_deref()));
            }
        }
        if !path.starts_with("/api/") {
            return detail(404, "Not Found");
        }
        if !self.user_ok(request) {
            return detail(401, "Login required");
        }
        match (method, path.as_str()) {
            ("GET", "/api/v1/user/welcome") => {
                let mut welcome = State::user();
                welcome["accounts"] = json!([ACCOUNT_SLUG]);
                Response::json(200, &welcome)
            }
            ("GET", "/api/v1/user") => Response::json(200, &State::user()),
            ("GET", "/api/v1/accounts") => Response::json(
                200,
                &json!([{"id": ACCOUNT_ID, "title": "Acme", "slug": ACCOUNT_SLUG, "type": "stash-trial"}]),
            ),
            ("GET", "/api/v1/user/pa_tokens") => {
                let list: Vec<Value> = self
                    .pats
                    .iter()
                    .filter(|p| !p.deleted)
                    .map(|p| {
                        json!({"id": p.id, "description": p.description,
                                    "expires": p.expires.map(time::rfc3339)})
                    })
                    .collect();
                Response::json(200, &Value::Array(list))
            }
            ("POST", "/api/v1/user/pa_tokens") => self.create(request),
            ("DELETE", p) if p.starts_with("/api/v1/user/pa_token/") => {
                let id = http::percent_decode(&p["/api/v1/user/pa_token/".len()..]);
                match self.pats.iter_mut().find(|t| t.id == id && !t.deleted) {
                    Some(t) => {
                        t.deleted = true;
                        Response::empty(204)
                    }
                    None => detail(404, "Token not found"),
                }
            }
            _ => detail(404, "Not Found"),
        }
    }

    fn create(&mut self, request: &Request) -> Response {
        let Some(Value::Object(body)) = request.json() else {
            return Response::json(
                422,
                &json!({"detail": [{"msg": "body should be a JSON object"}]}),
            );
        };
        let Some(description) = body.get("description").and_then(Value::as_str) else {
            return Response::json(
                422,
                &json!({"detail": [{"loc": ["body", "description"], "msg": "Field required"}]}),
            );
        };
        let expires = match body
            .get("expiration_date")
            .and_then(Value::as_str)
            .map(time::parse)
        {
            Some(Some(t)) => t,
            _ => {
                return Response::json(
                    422,
                    &json!({"detail": [{"loc": ["body", "expiration_date"], "msg": "a datetime is required"}]}),
                )
            }
        };
        let issued = self.add_token(description, Some(expires));
        Response::json(
            201,
            &json!({"id": issued.id, "token": issued.secret, "expires": time::rfc3339(expires)}),
        )
    }

    fn kb(&self, request: &Request, rest: &str) -> Response {
        let (kbid, sub) = rest.split_once('/').unwrap_or((rest, ""));
        if kbid != KB_ID {
            return detail(404, "Knowledge Box not found");
        }
        let stf = bearer(request, "x-stf-serviceaccount");
        if sub.is_empty() {
            if request.method != "GET" {
                return detail(405, "Method Not Allowed");
            }
            if !self.kb_key_ok(bearer(request, "x-nuclia-serviceaccount").or(stf)) {
                return detail(401, "Invalid service account key");
            }
            return Response::json(
                200,
                &json!({"uuid": KB_ID, "slug": "docs",
                        "config": {"slug": "docs", "title": "Docs",
                                   "description": "Acme's documentation"}}),
            );
        }
        // The data API, as nucliadb_sdk calls it.
        if !self.kb_key_ok(stf) {
            return detail(401, "Invalid service account key (X-STF-SERVICEACCOUNT)");
        }
        match (request.method.as_str(), sub) {
            ("GET", "configuration") => Response::json(
                200,
                &json!({"semantic_models": ["multilingual-2024-05-06"],
                        "default_semantic_model": "multilingual-2024-05-06",
                        "generative_model": "chatgpt-azure-4o-mini"}),
            ),
            ("GET", "resources") => Response::json(
                200,
                &json!({"resources": [], "pagination": {"page": 0, "size": 20, "last": true}}),
            ),
            _ => detail(404, "Not Found"),
        }
    }

    fn authorizer_info(&self, request: &Request) -> Response {
        if self.kb_key_ok(
            bearer(request, "x-nuclia-serviceaccount").or(bearer(request, "x-stf-serviceaccount")),
        ) {
            return Response::json(
                200,
                &json!({"user": {"account_id": ACCOUNT_ID, "kb_id": KB_ID, "role": "SOWNER"}}),
            );
        }
        if self.nua_ok(request) {
            return Response::json(
                200,
                &json!({"user": {"user_id": NUA_CLIENT_ID, "account_type": "stash-trial",
                                 "account_id": ACCOUNT_ID}}),
            );
        }
        detail(401, "No valid key")
    }

    fn authorize(&mut self, request: &Request) -> Response {
        let q = |n: &str| request.query(n).unwrap_or_default();
        let redirect_uri = q("redirect_uri");
        if q("response_type") != "code" {
            return oauth_error("unsupported_response_type", "response_type must be code");
        }
        if redirect_uri.is_empty() || !redirect_uri.contains("://") {
            return oauth_error("invalid_request", "redirect_uri is required");
        }
        if q("code_challenge_method") != "S256" || q("code_challenge").is_empty() {
            return oauth_error("invalid_request", "PKCE with S256 is required");
        }
        let code = format!("ory_ac_{}.{}", secret::code(43), secret::code(43));
        self.codes.push(Code {
            code: code.clone(),
            challenge: q("code_challenge"),
            redirect_uri: redirect_uri.clone(),
            client_id: q("client_id"),
            expires: time::now() + 600,
            used: false,
        });
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        let mut location = format!("{redirect_uri}{sep}code={}", http::percent_encode(&code));
        if let Some(state) = request.query("state") {
            location.push_str(&format!("&state={}", http::percent_encode(&state)));
        }
        location.push_str("&scope=openid%20offline_access%20api%3Afull_access");
        Response::text(302, "Redirecting").with_header("Location", location)
    }

    fn token(&mut self, request: &Request) -> Response {
        let f = |n: &str| request.field(n).unwrap_or_default();
        match f("grant_type").as_str() {
            "authorization_code" => {
                let now = time::now();
                let code = f("code");
                let Some(c) = self.codes.iter_mut().find(|c| c.code == code) else {
                    return oauth_error("invalid_grant", "unknown authorization code");
                };
                if c.used || c.expires <= now {
                    return oauth_error(
                        "invalid_grant",
                        "the authorization code was used or expired",
                    );
                }
                c.used = true;
                if f("redirect_uri") != c.redirect_uri {
                    return oauth_error("invalid_grant", "redirect_uri does not match");
                }
                if !c.client_id.is_empty() && f("client_id") != c.client_id {
                    return oauth_error("invalid_client", "client_id does not match");
                }
                if secret::pkce_s256(&f("code_verifier")) != c.challenge {
                    return oauth_error("invalid_grant", "PKCE verification failed");
                }
                self.issue()
            }
            "refresh_token" => {
                let token = f("refresh_token");
                let Some(r) = self
                    .refresh
                    .iter_mut()
                    .find(|r| r.secret == token && !r.used)
                else {
                    return oauth_error(
                        "invalid_grant",
                        "the refresh token is invalid or was used",
                    );
                };
                r.used = true;
                self.issue()
            }
            _ => oauth_error(
                "unsupported_grant_type",
                "use authorization_code or refresh_token",
            ),
        }
    }

    /// How long the OAuth access tokens issued from now on live (Nuclia's
    /// own last about 30 minutes).
    pub(crate) fn set_access_seconds(&mut self, seconds: i64) {
        self.access_seconds = seconds;
    }

    /// A new access token and a new (rotated) refresh token.
    fn issue(&mut self) -> Response {
        let access = format!("ory_at_{}.{}", secret::code(43), secret::code(43));
        let refresh = format!("ory_rt_{}.{}", secret::code(43), secret::code(43));
        self.access.push(Access {
            secret: access.clone(),
            expires: time::now() + self.access_seconds,
        });
        self.refresh.push(Refresh {
            secret: refresh.clone(),
            used: false,
        });
        Response::json(
            200,
            &json!({"access_token": access, "refresh_token": refresh, "expires_in": self.access_seconds,
                    "token_type": "bearer", "scope": "openid offline_access api:full_access"}),
        )
    }
}
