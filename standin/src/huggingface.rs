//! Hugging Face Hub (`huggingface_hub` 2.4.0): `GET /api/whoami-v2` with
//! `Authorization: Bearer <token>`; `GET /api/agent-harnesses` is 404 (the
//! CLI's best-effort probe). Anything else is 404.

use serde_json::{json, Value};

use crate::http::{Request, Response};
use crate::{secret, time, HuggingFaceSeed, IssuedToken, TokenInfo};

const USER: &str = "alice";
const ORG: &str = "acme";

#[derive(Debug, Clone)]
struct Token {
    name: String,
    secret: String,
    created: i64,
    expires: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct State {
    tokens: Vec<Token>,
}

fn unauthorized() -> Response {
    Response::json(
        401,
        &json!({"error": "Invalid credentials in Authorization header"}),
    )
    .with_header(
        "X-Error-Message",
        "Invalid credentials in Authorization header",
    )
}

impl State {
    pub(crate) fn new(base: String) -> (State, HuggingFaceSeed) {
        let mut state = State { tokens: Vec::new() };
        let name = "alice-laptop";
        let issued = state.add_token(name, None);
        let seed = HuggingFaceSeed {
            url: base,
            token: issued.secret,
            token_name: name.to_owned(),
            user: USER.to_owned(),
            org: ORG.to_owned(),
        };
        (state, seed)
    }

    pub(crate) fn add_token(&mut self, name: &str, expires: Option<i64>) -> IssuedToken {
        let secret = secret::huggingface();
        self.tokens.push(Token {
            name: name.to_owned(),
            secret: secret.clone(),
            created: time::now(),
            expires,
        });
        IssuedToken {
            id: name.to_owned(),
            secret,
        }
    }

    pub(crate) fn expire(&mut self, secret: &str, at: i64) -> bool {
        let mut found = false;
        for t in self.tokens.iter_mut().filter(|t| t.secret == secret) {
            t.expires = Some(at);
            found = true;
        }
        found
    }

    pub(crate) fn tokens(&self) -> Vec<TokenInfo> {
        self.tokens
            .iter()
            .map(|t| TokenInfo {
                id: t.name.clone(),
                name: t.name.clone(),
                expires: t.expires.map(time::to_system),
                deleted: false,
            })
            .collect()
    }

    pub(crate) fn route(&mut self, request: &Request) -> Response {
        match (request.method.as_str(), request.path()) {
            ("GET", "/api/whoami-v2") => self.whoami(request),
            _ => Response::json(404, &json!({"error": "Not Found"}))
                .with_header("X-Error-Code", "EntryNotFound"),
        }
    }

    fn whoami(&self, request: &Request) -> Response {
        let now = time::now();
        let header = request.header("authorization").unwrap_or_default().trim();
        let token = match header.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return unauthorized(),
        };
        let Some(t) = self
            .tokens
            .iter()
            .find(|t| t.secret == token && t.expires.is_none_or(|e| e > now))
        else {
            return unauthorized();
        };
        let body: Value = json!({
            "type": "user",
            "id": "65a1a11ce000000000000001",
            "name": USER,
            "fullname": "Alice Liddell",
            "email": "alice@example.com",
            "emailVerified": true,
            "isPro": false,
            "canPay": false,
            "avatarUrl": "",
            "orgs": [{"type": "org", "id": "65a1ac3e0000000000000001", "name": ORG,
                      "fullname": "Acme", "roleInOrg": "admin", "isEnterprise": false}],
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": t.name, "role": "write",
                                     "createdAt": time::rfc3339(t.created)}},
        });
        Response::json(200, &body)
    }
}
