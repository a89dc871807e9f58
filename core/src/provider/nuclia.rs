//! Nuclia, as `nuclia` 4.15.0 speaks to it.
//!
//! Three credentials, three headers:
//! - a user token (personal token or OAuth access token) goes to the
//!   accounts service as `Authorization: Bearer <token>`;
//! - a Knowledge Box API key is checked with `X-Nuclia-Serviceaccount:
//!   Bearer <key>` against the Knowledge Box URL;
//! - a NUA key (a JWT) is checked with `x-nuclia-nuakey: Bearer <jwt>`
//!   against the issuer named inside it.
//!
//! User-token calls follow the SDK's `_request`: 204 is "no content", any
//! other 2xx must carry JSON (an empty 200 is malformed), 401 and 403 mean
//! the login is not accepted.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::http::{self, HttpRequest, HttpResponse, Method, Obj};
use super::{
    AnswerProblem, Call, Identity, NewToken, ProviderError, RemoteToken, Resource, TokenSpec,
};
use crate::credential::{Account, Clock, Endpoint};
use crate::header::Secret;
use crate::text;
use crate::text::Localize;

/// Checks a Knowledge Box key (wire case as the SDK sends it).
pub const KB_CHECK_HEADER: &str = "X-Nuclia-Serviceaccount";
/// A Knowledge Box key on the public API, as the issue names it.
pub const KB_HEADER: &str = "X-NUCLIA-SERVICEACCOUNT";
/// A Knowledge Box key on nucliadb's API (`nucliadb_sdk`).
pub const KB_STF_HEADER: &str = "X-STF-SERVICEACCOUNT";
/// Checks a NUA key (wire case as the SDK sends it).
pub const NUA_CHECK_HEADER: &str = "x-nuclia-nuakey";
/// A NUA key on the NUA API, upper-cased for display beside the others.
pub const NUA_HEADER: &str = "X-NUCLIA-NUAKEY";
/// A NUA key as the SDK sends it for actual NUA calls.
pub const NUA_STF_HEADER: &str = "X-STF-NUAKEY";

/// The browser login (`nuclia auth login`): OAuth 2.0 authorization code
/// with PKCE, as the official client's public client. Its registered
/// redirect is a loopback port, 18765 the first it tries; the extension
/// cannot listen there, but sees the browser arrive at it (the page then
/// fails to load, which is the point: the code is only good with the
/// verifier, which stays in the background).
pub const OAUTH_CLIENT_ID: &str = "43f54e81-932a-4b45-9bba-acbf4e2b5ee6";
pub const OAUTH_REDIRECT: &str = "http://127.0.0.1:18765/callback";
pub const OAUTH_SCOPE: &str = "openid offline_access api:full_access";

/// Where Nuclia's OAuth server is: `https://oauth.<domain>` beside
/// `https://accounts.<domain>`, as the client derives both from
/// `BASE_NUCLIA_DOMAIN`. Any other endpoint (a local stand-in) serves
/// OAuth itself, as the official client does when its bases are aimed at
/// one URL.
pub fn oauth_base(endpoint: &Endpoint) -> String {
    let url = endpoint.as_str();
    match url.split_once("://accounts.") {
        Some((scheme, rest)) => format!(
            "{scheme}://oauth.{}",
            rest.split('/').next().unwrap_or(rest)
        ),
        None => url.to_owned(),
    }
}

pub fn oauth_token_endpoint(endpoint: &Endpoint) -> String {
    format!("{}/oauth2/token", oauth_base(endpoint))
}

/// The client's `state`: base64 of `{"random": "<64 hex digits>"}`.
pub fn oauth_state(random: &[u8; 32]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"random\": \"{hex}\"}}"))
}

/// `oauth2/auth`, with the parameters in the client's order.
pub fn oauth_authorization_url(endpoint: &Endpoint, challenge: &str, state: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", OAUTH_CLIENT_ID)
        .append_pair("redirect_uri", OAUTH_REDIRECT)
        .append_pair("scope", OAUTH_SCOPE)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .finish();
    format!("{}/oauth2/auth?{query}", oauth_base(endpoint))
}

fn bearer(secret: &Secret) -> String {
    format!("Bearer {}", secret.expose())
}

fn user_request(method: Method, endpoint: &Endpoint, path: &str, secret: &Secret) -> HttpRequest {
    let segments: Vec<&str> = path.split('/').collect();
    HttpRequest::new(method, endpoint.join(&segments)).header("Authorization", bearer(secret))
}

/// A user-token answer: `None` for 204, the JSON of any other 2xx.
fn user_answer(response: &HttpResponse, what: Resource) -> Result<Option<Value>, ProviderError> {
    match response.status {
        204 => Ok(None),
        200..=299 => http::json(response).map(Some),
        _ => Err(http::failure(response, what)),
    }
}

fn user_json(response: &HttpResponse, what: Resource) -> Result<Value, ProviderError> {
    user_answer(response, what)?.ok_or_else(|| http::malformed(AnswerProblem::Empty))
}

/// `GET /api/v1/user`, then `GET /api/v1/accounts`: the user, and the
/// accounts (organizations) it belongs to.
pub fn who_am_i(endpoint: &Endpoint, secret: &Secret) -> Call<Identity> {
    let requests = vec![
        user_request(Method::Get, endpoint, "api/v1/user", secret),
        user_request(Method::Get, endpoint, "api/v1/accounts", secret),
    ];
    Call::new(requests, secret, |responses| {
        let user = user_json(super::answer(responses, 0)?, Resource::User)?;
        let user = Obj::of(&user, "")?;
        user.require(&["type"])?;
        let (name, email) = (user.str("name")?, user.str("email")?);
        let accounts = user_json(super::answer(responses, 1)?, Resource::Accounts)?;
        let organizations = Obj::each(&accounts, "")?
            .iter()
            .map(|a| {
                a.require(&["id"])?;
                Ok(a.str("title")?.to_owned())
            })
            .collect::<Result<_, ProviderError>>()?;
        Ok(Identity {
            confirmation: text!("notice_nuclia_logged_in", name, email),
            account: Account {
                user: Some(name.to_owned()),
                email: Some(email.to_owned()),
                organizations,
            },
            token_name: None,
        })
    })
}

/// `GET /api/v1/user/pa_tokens`: a JSON list of `{id, description,
/// expires}`, `expires` present but possibly null.
pub fn list_tokens(endpoint: &Endpoint, secret: &Secret) -> Call<Vec<RemoteToken>> {
    let request = user_request(Method::Get, endpoint, "api/v1/user/pa_tokens", secret);
    Call::single(request, secret, |response| {
        let tokens = user_json(response, Resource::TokenList)?;
        Obj::each(&tokens, "")?
            .iter()
            .map(|t| {
                t.require(&["expires"])?;
                let id = t.str("id")?.to_owned();
                let description = t.opt_str("description")?.map(str::to_owned);
                Ok(RemoteToken {
                    name: description.clone().unwrap_or_else(|| id.clone()),
                    id,
                    description,
                    scopes: Vec::new(),
                    token_type: None,
                    created: None,
                    expires: t.opt_time("expires")?,
                    last_used: None,
                })
            })
            .collect()
    })
}

#[derive(Serialize)]
struct CreateBody<'a> {
    description: &'a str,
    /// Naive local time, Python's `isoformat()`.
    expiration_date: String,
}

/// `POST /api/v1/user/pa_tokens`. Nuclia tokens have a description and no
/// name: the description is sent, or the name when it is blank. They
/// always expire.
pub fn create_token(
    endpoint: &Endpoint,
    secret: &Secret,
    spec: &TokenSpec,
    clock: Clock,
) -> Result<Call<NewToken>, ProviderError> {
    let expires = spec.expiry.at(clock.now).ok_or_else(|| {
        ProviderError::Unsupported(text!("error_unsupported_nuclia_never_expiring"))
    })?;
    let description = match spec.description.trim() {
        "" => spec.name.trim().to_owned(),
        d => d.to_owned(),
    };
    let body = CreateBody {
        description: &description,
        expiration_date: expires.naive_local(clock.utc_offset_minutes, 'T'),
    };
    let request = user_request(Method::Post, endpoint, "api/v1/user/pa_tokens", secret).body(
        "application/json",
        serde_json::to_string(&body).unwrap_or_default(),
    );
    Ok(Call::single(request, secret, move |response| {
        let created = user_json(response, Resource::Account)?;
        let created = Obj::of(&created, "")?;
        created.require(&["expires"])?;
        let id = created.str("id")?.to_owned();
        let secret = Secret::from_input(created.str("token")?)
            .map_err(|_| http::malformed(AnswerProblem::NewTokenNotHeaderSafe))?;
        Ok(NewToken {
            token: RemoteToken {
                id,
                name: description.clone(),
                description: Some(description),
                scopes: Vec::new(),
                token_type: None,
                created: Some(clock.now),
                expires: created.opt_time("expires")?.or(Some(expires)),
                last_used: None,
            },
            secret,
        })
    }))
}

/// `DELETE /api/v1/user/pa_token/{id}` (singular `pa_token`): 204, or a
/// 2xx with a JSON body.
pub fn delete_token(endpoint: &Endpoint, secret: &Secret, id: &str) -> Call<()> {
    let segments = ["api", "v1", "user", "pa_token", id];
    let request = HttpRequest::new(Method::Delete, endpoint.join(&segments))
        .header("Authorization", bearer(secret));
    Call::single(request, secret, |response| {
        user_answer(response, Resource::Token).map(drop)
    })
}

/// `GET <Knowledge Box URL>` with the key: 200 and the Knowledge Box's
/// `uuid` (required), `slug` and `config.title`.
pub fn verify_kb_key(kb_url: &Endpoint, secret: &Secret) -> Call<Identity> {
    let request = HttpRequest::new(Method::Get, kb_url.as_str().to_owned())
        .header(KB_CHECK_HEADER, bearer(secret));
    Call::single(request, secret, |response| {
        if response.status != 200 {
            return Err(http::failure(response, Resource::KnowledgeBox));
        }
        let kb = http::json(response)?;
        let kb = Obj::of(&kb, "")?;
        let uuid = kb.str("uuid")?;
        let title = match kb.opt_obj("config")? {
            Some(config) => config.opt_str("title")?,
            None => None,
        };
        let shown = title.or(kb.opt_str("slug")?).unwrap_or(uuid);
        Ok(Identity {
            confirmation: text!("notice_nuclia_knowledge_box_valid", shown),
            account: Account {
                user: Some(shown.to_owned()),
                ..Account::default()
            },
            token_name: None,
        })
    })
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The issuer (`iss`) of a NUA key: where the key is checked and used. The
/// SDK decodes the JWT payload with standard base64; URL-safe base64, what
/// JWTs normally use, is accepted too.
pub fn nua_issuer(secret: &Secret) -> Result<Endpoint, ProviderError> {
    let invalid = || ProviderError::Invalid(text!("error_nuclia_not_nua_key"));
    let payload = secret.expose().split('.').nth(1).ok_or_else(invalid)?;
    let bytes = STANDARD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .map_err(|_| invalid())?;
    let claims = crate::json::parse_bytes(&bytes).ok_or_else(invalid)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    Endpoint::new(iss)
        .map_err(|e| ProviderError::Invalid(text!("error_nuclia_nua_key_issuer", e.text())))
}

/// `GET <iss>/api/authorizer/info` with the key: 200 and `{"user":
/// {user_id, account_type, account_id}}`, ids not null.
pub fn verify_nua_key(secret: &Secret) -> Result<Call<Identity>, ProviderError> {
    let issuer = nua_issuer(secret)?;
    let request = HttpRequest::new(Method::Get, issuer.join(&["api", "authorizer", "info"]))
        .header(NUA_CHECK_HEADER, bearer(secret));
    Ok(Call::single(request, secret, |response| {
        if response.status != 200 {
            return Err(http::failure(response, Resource::NuaKey));
        }
        let info = http::json(response)?;
        let user = Obj::of(&info, "")?.obj("user")?;
        user.require(&["account_type"])?;
        let (user_id, account_id) = (user.str("user_id")?, user.str("account_id")?);
        Ok(Identity {
            confirmation: text!("notice_nuclia_nua_key_valid", user_id),
            account: Account {
                user: Some(user_id.to_owned()),
                email: None,
                organizations: vec![account_id.to_owned()],
            },
            token_name: None,
        })
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provider::tests::{body_json, endpoint, secret, shape, CLOCK};
    use crate::provider::{Expected, Expiry, Provider};

    const TOKEN: &str = "nuclia-user-token-0123456789";
    const AUTH: (&str, &str) = ("Authorization", "Bearer nuclia-user-token-0123456789");

    #[test]
    fn oauth_login_is_the_clients() {
        let url = oauth_authorization_url(&ep(), "ch4llenge", "c3RhdGU=");
        assert_eq!(
            url,
            "https://oauth.progress.cloud/oauth2/auth?response_type=code&client_id=43f54e81-932a-4b45-9bba-acbf4e2b5ee6&redirect_uri=http%3A%2F%2F127.0.0.1%3A18765%2Fcallback&scope=openid+offline_access+api%3Afull_access&code_challenge=ch4llenge&code_challenge_method=S256&state=c3RhdGU%3D"
        );
        assert_eq!(
            oauth_token_endpoint(&ep()),
            "https://oauth.progress.cloud/oauth2/token"
        );
        let local = Endpoint::new("http://127.0.0.1:4100").expect("endpoint");
        assert_eq!(
            oauth_token_endpoint(&local),
            "http://127.0.0.1:4100/oauth2/token"
        );
        let state = oauth_state(&[0xab; 32]);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&state)
            .expect("base64");
        assert_eq!(
            String::from_utf8(decoded).expect("utf-8"),
            format!("{{\"random\": \"{}\"}}", "ab".repeat(32))
        );
    }

    fn ep() -> Endpoint {
        endpoint(Provider::Nuclia)
    }

    fn ok(v: Value) -> HttpResponse {
        HttpResponse::new(200, v.to_string())
    }

    fn user() -> Value {
        json!({"name": "Alice", "email": "alice@example.com", "type": "USER"})
    }

    fn whoami(responses: &[HttpResponse]) -> Result<Identity, ProviderError> {
        who_am_i(&ep(), &secret(TOKEN)).finish(responses)
    }

    #[test]
    fn whoami_requests_and_answers() {
        let call = who_am_i(&ep(), &secret(TOKEN));
        assert_eq!(
            call.requests.iter().map(shape).collect::<Vec<_>>(),
            [
                (
                    "GET",
                    "https://accounts.progress.cloud/api/v1/user",
                    vec![AUTH]
                ),
                (
                    "GET",
                    "https://accounts.progress.cloud/api/v1/accounts",
                    vec![AUTH]
                ),
            ]
        );
        let accounts = json!([{"id": "acc1", "title": "Acme", "slug": "acme"}, {"id": "acc2", "title": "Beta"}]);
        let identity = call
            .finish(&[ok(user()), ok(accounts)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text::english(&identity.confirmation),
            "User: Alice <alice@example.com>."
        );
        assert_eq!(identity.account.organizations, ["Acme", "Beta"]);
    }

    #[test]
    fn whoami_failures() {
        assert_eq!(
            whoami(&[HttpResponse::new(401, r#"{"detail":"Login required"}"#)]),
            Err(ProviderError::Unauthorized {
                reason: Some("Login required".into())
            })
        );
        assert_eq!(
            whoami(&[HttpResponse::new(403, "")]),
            Err(ProviderError::Forbidden { reason: None })
        );
        assert_eq!(
            whoami(&[HttpResponse::new(200, "")]),
            Err(ProviderError::Malformed(AnswerProblem::Empty)),
            "a 2xx with an empty body is what crashes the SDK"
        );
        assert_eq!(
            whoami(&[HttpResponse::new(204, "")]),
            Err(ProviderError::Malformed(AnswerProblem::Empty))
        );
        let mut u = user();
        u.as_object_mut().map(|o| o.remove("type"));
        assert_eq!(
            whoami(&[ok(u), ok(json!([]))]),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "type".into()
            )))
        );
        assert_eq!(
            whoami(&[ok(user()), ok(json!({"accounts": []}))]),
            Err(ProviderError::Malformed(AnswerProblem::NotList))
        );
        assert_eq!(
            whoami(&[ok(user()), ok(json!([{"id": "a", "title": 3}]))]),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "[0].title".into(),
                expected: Expected::Text
            }))
        );
        assert!(matches!(
            whoami(&[ok(user()), HttpResponse::new(500, "oops")]),
            Err(ProviderError::Server { status: 500, .. })
        ));
    }

    #[test]
    fn list_request_and_answer() {
        let call = list_tokens(&ep(), &secret(TOKEN));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "GET",
                "https://accounts.progress.cloud/api/v1/user/pa_tokens",
                vec![AUTH]
            )
        );
        let answer = json!([
            {"id": "t1", "description": "browser extension", "expires": "2026-03-17T19:33:20"},
            {"id": "t2", "description": null, "expires": null, "new": "ignored"}
        ]);
        let tokens = call.finish(&[ok(answer)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tokens[0].name, "browser extension");
        assert_eq!(tokens[0].expires, Some(CLOCK.now.plus_days(90)));
        assert_eq!((tokens[1].name.as_str(), tokens[1].expires), ("t2", None));
        let list = |v: Value| list_tokens(&ep(), &secret(TOKEN)).finish(&[ok(v)]);
        assert_eq!(
            list(json!([{"id": "t1", "description": "x"}])),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "[0].expires".into()
            )))
        );
        assert_eq!(
            list(json!([{"id": 1, "description": "x", "expires": null}])),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "[0].id".into(),
                expected: Expected::Text
            }))
        );
    }

    #[test]
    fn create_request_and_answer() {
        let spec = TokenSpec {
            name: "ext".into(),
            description: "browser extension".into(),
            expiry: Expiry::Days(90),
            scopes: vec![],
        };
        let call =
            create_token(&ep(), &secret(TOKEN), &spec, CLOCK).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "POST",
                "https://accounts.progress.cloud/api/v1/user/pa_tokens",
                vec![AUTH, ("Content-Type", "application/json")]
            )
        );
        assert_eq!(
            call.requests[0].body.as_deref(),
            Some(
                r#"{"description":"browser extension","expiration_date":"2026-03-17T19:33:20.000000"}"#
            )
        );
        let answer =
            json!({"id": "t9", "token": "new-nuclia-secret", "expires": "2026-03-17T19:33:20Z"});
        let new = call
            .finish(&[HttpResponse::new(201, answer.to_string())])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(new.secret.expose(), "new-nuclia-secret");
        assert_eq!(new.token.id, "t9");
        assert_eq!(new.token.expires, Some(CLOCK.now.plus_days(90)));

        let unnamed = TokenSpec {
            description: String::new(),
            ..spec.clone()
        };
        let call =
            create_token(&ep(), &secret(TOKEN), &unnamed, CLOCK).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body_json(&call.requests[0])["description"], json!("ext"));
        assert_eq!(
            call.finish(&[HttpResponse::new(
                201,
                json!({"id": "t9", "expires": null}).to_string()
            )]),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "token".into()
            )))
        );
        let never = TokenSpec {
            expiry: Expiry::Never,
            ..spec
        };
        assert!(matches!(
            create_token(&ep(), &secret(TOKEN), &never, CLOCK),
            Err(ProviderError::Unsupported(_))
        ));
    }

    #[test]
    fn delete_is_204() {
        let delete = || delete_token(&ep(), &secret(TOKEN), "t1");
        assert_eq!(
            shape(&delete().requests[0]),
            (
                "DELETE",
                "https://accounts.progress.cloud/api/v1/user/pa_token/t1",
                vec![AUTH]
            )
        );
        assert_eq!(delete().finish(&[HttpResponse::new(204, "")]), Ok(()));
        assert_eq!(delete().finish(&[ok(json!({"ok": true}))]), Ok(()));
        assert_eq!(
            delete().finish(&[HttpResponse::new(200, "")]),
            Err(ProviderError::Malformed(AnswerProblem::Empty))
        );
        assert_eq!(
            delete().finish(&[HttpResponse::new(404, r#"{"detail":"Token not found"}"#)]),
            Err(ProviderError::NotFound {
                what: Resource::Token,
                reason: Some("Token not found".into())
            })
        );
    }

    #[test]
    fn knowledge_box_keys() {
        let kb = Endpoint::new("https://europe-1.dp.progress.cloud/api/v1/kb/kb1")
            .unwrap_or_else(|e| panic!("{e}"));
        let verify = || verify_kb_key(&kb, &secret("kb-key-0123456789"));
        assert_eq!(
            shape(&verify().requests[0]),
            (
                "GET",
                "https://europe-1.dp.progress.cloud/api/v1/kb/kb1",
                vec![("X-Nuclia-Serviceaccount", "Bearer kb-key-0123456789")]
            )
        );
        let answer = json!({"uuid": "kb1", "slug": "docs", "config": {"title": "Docs"}});
        assert_eq!(
            verify()
                .finish(&[ok(answer)])
                .map(|i| text::english(&i.confirmation)),
            Ok("Validated Knowledge Box Docs.".into())
        );
        assert_eq!(
            verify()
                .finish(&[ok(json!({"uuid": "kb1"}))])
                .map(|i| i.account.user),
            Ok(Some("kb1".into()))
        );
        assert_eq!(
            verify().finish(&[ok(json!({"slug": "docs"}))]),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "uuid".into()
            )))
        );
        assert_eq!(
            verify().finish(&[ok(json!({"uuid": "kb1", "config": "x"}))]),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "config".into(),
                expected: Expected::Object
            }))
        );
        assert_eq!(
            verify().finish(&[HttpResponse::new(404, "")]),
            Err(ProviderError::NotFound {
                what: Resource::KnowledgeBox,
                reason: None
            })
        );
        assert_eq!(
            verify().finish(&[HttpResponse::new(204, "")]),
            Err(ProviderError::Unexpected { status: 204 })
        );
    }

    fn jwt(claims: &Value, engine: &GeneralPurpose) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            engine.encode(claims.to_string())
        )
    }

    #[test]
    fn nua_keys_are_checked_at_their_issuer() {
        let key = jwt(
            &json!({"iss": "https://europe-1.rag.progress.cloud/", "sub": "c1"}),
            &STANDARD,
        );
        let key = secret(&key);
        assert_eq!(
            nua_issuer(&key).map(String::from).as_deref(),
            Ok("https://europe-1.rag.progress.cloud")
        );
        let call = verify_nua_key(&key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "GET",
                "https://europe-1.rag.progress.cloud/api/authorizer/info",
                vec![(
                    "x-nuclia-nuakey",
                    format!("Bearer {}", key.expose()).as_str()
                )]
            )
        );
        let answer = json!({"user": {"user_id": "client1", "account_type": "stash-trial", "account_id": "acc1"}});
        let identity = call.finish(&[ok(answer)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text::english(&identity.confirmation),
            "Validated NUA key client1."
        );
        assert_eq!(identity.account.organizations, ["acc1"]);

        let verify = |v: Value| verify_nua_key(&key).and_then(|c| c.finish(&[ok(v)]));
        assert_eq!(
            verify(json!({"user": {"user_id": null, "account_type": "x", "account_id": "a"}})),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "user.user_id".into(),
                expected: Expected::Text
            }))
        );
        assert_eq!(
            verify(json!({"user": {"user_id": "u", "account_id": "a"}})),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "user.account_type".into()
            )))
        );

        let url_safe = jwt(&json!({"iss": "https://x.example/?>>"}), &URL_SAFE);
        assert!(matches!(
            nua_issuer(&secret(&url_safe)),
            Err(ProviderError::Invalid(m))
                if text::english(&m) == "The NUA key's issuer: The address names a site and a path, without “?query” or “#fragment”."
        ));
        for bad in [
            "not-a-jwt",
            "a.!!!.c",
            "a.e30.c",
            &jwt(&json!({"iss": "http://evil.example"}), &STANDARD),
        ] {
            assert!(
                matches!(nua_issuer(&secret(bad)), Err(ProviderError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
