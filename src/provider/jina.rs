//! Jina AI's Hubble, as `jina-hubble-sdk` 0.39.0 (`jina-auth`) speaks to it.
//!
//! Every call is a `POST <registry>/v2/rpc/<method>` with
//! `Authorization: token <PAT>` (the literal, lower-case scheme word).
//! Without parameters the body is empty; token create and delete send
//! forms. A failure (HTTP 400 or more) carries a 5-digit Hubble code in the
//! body's `status` (40102 authentication failed, 40403 not found, …), which
//! decides the error; the HTTP status is only the fallback.
//!
//! Not sent: `Accept-Charset` (a header the browser forbids scripts to set)
//! and `jinameta-session-id` (a per-process UUID the validity check omits
//! too).

use serde_json::Value;

use super::http::{self, HttpRequest, HttpResponse, Method, Obj};
use super::{Call, Identity, LogoutOutcome, NewToken, ProviderError, RemoteToken, TokenSpec};
use crate::credential::{Account, Endpoint, Timestamp};
use crate::header::Secret;

pub const DEFAULT_ENDPOINT: &str = "https://api.hubble.jina.ai";
const FORM: &str = "application/x-www-form-urlencoded";

fn rpc(endpoint: &Endpoint, method: &str, secret: &Secret) -> HttpRequest {
    HttpRequest::new(Method::Post, endpoint.join(&["v2", "rpc", method]))
        .header("Authorization", format!("token {}", secret.expose()))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The body's JSON for a 2xx answer; the error a failure stands for.
fn ok_json(response: &HttpResponse, what: &'static str) -> Result<Value, ProviderError> {
    if response.is_success() {
        http::json(response)
    } else {
        Err(failure(response, what))
    }
}

/// A Hubble code (`status` in the body) decides, by its first three digits;
/// a body without one falls back to the HTTP status.
fn failure(response: &HttpResponse, what: &'static str) -> ProviderError {
    let code = match serde_json::from_str::<Value>(&response.body) {
        Ok(Value::Object(body)) => body
            .get("status")
            .and_then(Value::as_u64)
            .filter(|c| (10_000..100_000).contains(c)),
        _ => None,
    };
    let Some(code) = code else {
        return http::failure(response, what);
    };
    let reason = http::reason(&response.body);
    match code / 100 {
        401 => ProviderError::Unauthorized { reason },
        403 => ProviderError::Forbidden { reason },
        404 => ProviderError::NotFound { what, reason },
        429 => ProviderError::RateLimited { retry_after: None },
        500..=599 => ProviderError::Server {
            status: response.status,
            trace_id: None,
        },
        _ => ProviderError::Rejected {
            code: u32::try_from(code).unwrap_or(u32::MAX),
            reason,
        },
    }
}

/// `user.identity.whoami`: the display name is `data.nickname`, else
/// `data.name`.
pub fn who_am_i(endpoint: &Endpoint, secret: &Secret) -> Call<Identity> {
    let request = rpc(endpoint, "user.identity.whoami", secret);
    Call::single(request, secret, |response| {
        let body = ok_json(response, "account")?;
        let data = Obj::of(&body, "")?.obj("data")?;
        let name = data.opt_str("name")?;
        let nickname = data.opt_str("nickname")?;
        let shown = nickname
            .or(name)
            .ok_or_else(|| http::malformed("`data.nickname` and `data.name` are missing"))?;
        let confirmation = match (nickname, name) {
            (Some(nick), Some(name)) if nick != name => {
                format!("Logged in to Jina AI as {nick} (username: {name})")
            }
            _ => format!("Logged in to Jina AI as {shown}"),
        };
        Ok(Identity {
            account: Account {
                user: Some(shown.to_owned()),
                email: data.opt_str("email")?.map(str::to_owned),
                organizations: Vec::new(),
            },
            confirmation,
            token_name: None,
        })
    })
}

/// `user.pat.list`: each token has `name, type, createdAt, expireAt,
/// updatedAt`, all required.
pub fn list_tokens(endpoint: &Endpoint, secret: &Secret) -> Call<Vec<RemoteToken>> {
    let request = rpc(endpoint, "user.pat.list", secret);
    Call::single(request, secret, |response| {
        let body = ok_json(response, "token list")?;
        let data = Obj::of(&body, "")?.obj("data")?;
        data.items("personal_access_tokens")?
            .iter()
            .map(|t| {
                t.require(&["type", "createdAt", "expireAt", "updatedAt"])?;
                let name = t.str("name")?.to_owned();
                Ok(RemoteToken {
                    id: name.clone(),
                    name,
                    description: None,
                    scopes: Vec::new(),
                    token_type: t.opt_str("type")?.map(str::to_owned),
                    created: t.opt_time("createdAt")?,
                    expires: t.opt_time("expireAt")?,
                    last_used: t.opt_time("updatedAt")?,
                })
            })
            .collect()
    })
}

/// `user.pat.create`, form `name=…&expirationDays=N`. Jina counts the
/// expiry in whole days and has no token without one.
pub fn create_token(
    endpoint: &Endpoint,
    secret: &Secret,
    spec: &TokenSpec,
    now: Timestamp,
) -> Result<Call<NewToken>, ProviderError> {
    let days = spec.expiry.days(now).ok_or_else(|| {
        ProviderError::Unsupported("Jina AI tokens always expire: choose a number of days".into())
    })?;
    let name = spec.name.trim().to_owned();
    let request = rpc(endpoint, "user.pat.create", secret).body(
        FORM,
        form(&[("name", &name), ("expirationDays", &days.to_string())]),
    );
    Ok(Call::single(request, secret, move |response| {
        let body = ok_json(response, "account")?;
        let data = Obj::of(&body, "")?.obj("data")?;
        let secret = Secret::from_input(data.str("token")?)
            .map_err(|_| http::malformed("the new token holds characters a header cannot carry"))?;
        Ok(NewToken {
            token: RemoteToken {
                id: name.clone(),
                name,
                description: None,
                scopes: Vec::new(),
                token_type: None,
                created: Some(now),
                expires: Some(now.plus_days(days)),
                last_used: None,
            },
            secret,
        })
    }))
}

/// `user.pat.delete`, form `name=…`: tokens are addressed by name. Any 2xx
/// is success, whatever the body.
pub fn delete_token(endpoint: &Endpoint, secret: &Secret, name: &str) -> Call<()> {
    let request = rpc(endpoint, "user.pat.delete", secret).body(FORM, form(&[("name", name)]));
    Call::single(request, secret, |response| {
        if response.is_success() {
            Ok(())
        } else {
            Err(failure(response, "token"))
        }
    })
}

/// `user.session.dismiss`, with an empty `application/octet-stream` body.
/// The answer's **body** `code` decides, whatever the HTTP status: 200
/// logged out, 401 not logged in, anything else a failure.
pub fn logout(endpoint: &Endpoint, secret: &Secret) -> Call<LogoutOutcome> {
    let request = rpc(endpoint, "user.session.dismiss", secret)
        .body("application/octet-stream", String::new());
    Call::single(request, secret, |response| {
        // A failure whose body is no JSON at all is reported by its status.
        let body = match http::json(response) {
            Ok(body) => body,
            Err(e) if response.is_success() => return Err(e),
            Err(_) => return Err(failure(response, "session")),
        };
        let body = Obj::of(&body, "")?;
        let code = body
            .get("code")?
            .as_u64()
            .ok_or_else(|| http::malformed("`code` should be a number"))?;
        match code {
            200 => Ok(LogoutOutcome::LoggedOut),
            401 => Ok(LogoutOutcome::NotLoggedIn),
            _ => Err(ProviderError::Rejected {
                code: u32::try_from(code).unwrap_or(u32::MAX),
                reason: Some(format!(
                    "Failed to log out. {}",
                    body.opt_str("message").ok().flatten().unwrap_or_default()
                ))
                .map(|r| r.trim().to_owned()),
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provider::tests::{endpoint, secret, shape, CLOCK};
    use crate::provider::{Expiry, Provider};

    const PAT: &str = "jina_pat_0123456789abcdef";
    const AUTH: (&str, &str) = ("Authorization", "token jina_pat_0123456789abcdef");

    fn ep() -> Endpoint {
        endpoint(Provider::Jina)
    }

    fn ok(v: Value) -> HttpResponse {
        HttpResponse::new(200, v.to_string())
    }

    fn hubble_error(http: u16, code: u64, message: &str) -> HttpResponse {
        HttpResponse::new(
            http,
            json!({"status": code, "message": message, "data": {}}).to_string(),
        )
    }

    fn whoami(response: HttpResponse) -> Result<Identity, ProviderError> {
        who_am_i(&ep(), &secret(PAT)).finish(&[response])
    }

    #[test]
    fn whoami_request_and_answer() {
        let call = who_am_i(&ep(), &secret(PAT));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "POST",
                "https://api.hubble.jina.ai/v2/rpc/user.identity.whoami",
                vec![AUTH]
            )
        );
        assert_eq!(
            call.requests[0].body, None,
            "an empty body, no Content-Type"
        );
        let identity = call
            .finish(&[ok(json!({"code": 200, "data": {"_id": "u1", "name": "alice", "nickname": "Alice L."}}))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            identity.confirmation,
            "Logged in to Jina AI as Alice L. (username: alice)"
        );
        assert_eq!(identity.account.user.as_deref(), Some("Alice L."));
        let by_name = whoami(ok(json!({"data": {"name": "alice", "nickname": ""}})));
        assert_eq!(
            by_name.map(|i| i.confirmation),
            Ok("Logged in to Jina AI as alice".into())
        );
    }

    #[test]
    fn whoami_failures() {
        assert_eq!(
            whoami(hubble_error(401, 40102, "AuthenticationFailedError")),
            Err(ProviderError::Unauthorized {
                reason: Some("AuthenticationFailedError".into())
            })
        );
        assert_eq!(
            whoami(hubble_error(401, 40103, "AuthenticationRequiredError"))
                .map_err(|e| e.to_string()),
            Err("the provider refused the token: AuthenticationRequiredError".into())
        );
        assert_eq!(
            whoami(hubble_error(403, 40301, "no")),
            Err(ProviderError::Forbidden {
                reason: Some("no".into())
            })
        );
        assert!(matches!(
            whoami(hubble_error(500, 50000, "boom")),
            Err(ProviderError::Server { status: 500, .. })
        ));
        // An HTTP-like status in the body, or none, falls back to HTTP.
        assert_eq!(
            whoami(hubble_error(401, 401, "x")),
            Err(ProviderError::Unauthorized {
                reason: Some("x".into())
            })
        );
        assert_eq!(
            whoami(HttpResponse::new(404, "not json")),
            Err(ProviderError::NotFound {
                what: "account",
                reason: Some("not json".into())
            })
        );
        assert!(matches!(
            whoami(HttpResponse::new(502, "")),
            Err(ProviderError::Server { status: 502, .. })
        ));
        assert_eq!(
            whoami(ok(json!({"data": {}}))),
            Err(ProviderError::Malformed(
                "`data.nickname` and `data.name` are missing".into()
            ))
        );
        assert_eq!(
            whoami(ok(json!({"data": {"name": ["alice"]}}))),
            Err(ProviderError::Malformed(
                "`data.name` should be text".into()
            ))
        );
        assert_eq!(
            whoami(ok(json!({"user": {}}))),
            Err(ProviderError::Malformed("`data` is missing".into()))
        );
        assert_eq!(
            whoami(HttpResponse::new(200, "")),
            Err(ProviderError::Malformed("the answer is empty".into()))
        );
    }

    #[test]
    fn list_request_and_answer() {
        let call = list_tokens(&ep(), &secret(PAT));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "POST",
                "https://api.hubble.jina.ai/v2/rpc/user.pat.list",
                vec![AUTH]
            )
        );
        let token = json!({"name": "laptop", "type": "PAT", "createdAt": "2025-12-01T00:00:00.000Z",
                           "expireAt": "2025-12-20T00:00:00.000Z", "updatedAt": null, "extra": 1});
        let tokens = call
            .finish(&[ok(json!({"data": {"personal_access_tokens": [token]}}))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tokens,
            [RemoteToken {
                id: "laptop".into(),
                name: "laptop".into(),
                description: None,
                scopes: vec![],
                token_type: Some("PAT".into()),
                created: Timestamp::parse("2025-12-01"),
                expires: Timestamp::parse("2025-12-20"),
                last_used: None,
            }]
        );
        assert_eq!(
            tokens[0].validity(CLOCK.now),
            crate::credential::Validity::ExpiringSoon
        );
        let list = |v: Value| list_tokens(&ep(), &secret(PAT)).finish(&[ok(v)]);
        assert_eq!(
            list(
                json!({"data": {"personal_access_tokens": [{"name": "x", "type": "PAT", "createdAt": null, "updatedAt": null}]}})
            ),
            Err(ProviderError::Malformed(
                "`data.personal_access_tokens[0].expireAt` is missing".into()
            ))
        );
        assert_eq!(
            list(json!({"data": {"personal_access_tokens": {}}})),
            Err(ProviderError::Malformed(
                "`data.personal_access_tokens` should be a list".into()
            ))
        );
    }

    #[test]
    fn create_sends_a_form() {
        let spec = TokenSpec {
            name: "my token".into(),
            description: "ignored: Jina has none".into(),
            expiry: Expiry::Days(30),
            scopes: vec![],
        };
        let call =
            create_token(&ep(), &secret(PAT), &spec, CLOCK.now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "POST",
                "https://api.hubble.jina.ai/v2/rpc/user.pat.create",
                vec![AUTH, ("Content-Type", "application/x-www-form-urlencoded")]
            )
        );
        assert_eq!(
            call.requests[0].body.as_deref(),
            Some("name=my+token&expirationDays=30")
        );
        let new = call
            .finish(&[ok(json!({"data": {"token": "jina_new_secret"}}))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(new.secret.expose(), "jina_new_secret");
        assert_eq!(new.token.id, "my token");
        assert_eq!(new.token.expires, Some(CLOCK.now.plus_days(30)));

        let at = TokenSpec {
            expiry: Expiry::At(Timestamp(CLOCK.now.0 + 36 * 3600)),
            ..spec.clone()
        };
        let call =
            create_token(&ep(), &secret(PAT), &at, CLOCK.now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            call.requests[0].body.as_deref(),
            Some("name=my+token&expirationDays=2")
        );
        assert_eq!(
            call.finish(&[ok(json!({"data": {}}))]).err(),
            Some(ProviderError::Malformed("`data.token` is missing".into()))
        );
        let never = TokenSpec {
            expiry: Expiry::Never,
            ..spec
        };
        assert!(matches!(
            create_token(&ep(), &secret(PAT), &never, CLOCK.now),
            Err(ProviderError::Unsupported(_))
        ));
    }

    #[test]
    fn delete_addresses_tokens_by_name() {
        let delete = || delete_token(&ep(), &secret(PAT), "my token&x=1");
        assert_eq!(
            shape(&delete().requests[0]),
            (
                "POST",
                "https://api.hubble.jina.ai/v2/rpc/user.pat.delete",
                vec![AUTH, ("Content-Type", "application/x-www-form-urlencoded")]
            )
        );
        assert_eq!(
            delete().requests[0].body.as_deref(),
            Some("name=my+token%26x%3D1")
        );
        assert_eq!(delete().finish(&[HttpResponse::new(200, "")]), Ok(()));
        assert_eq!(
            delete().finish(&[hubble_error(404, 40403, "RequestedEntityNotFoundError")]),
            Err(ProviderError::NotFound {
                what: "token",
                reason: Some("RequestedEntityNotFoundError".into())
            })
        );
        assert_eq!(
            delete().finish(&[hubble_error(400, 40001, "ParamValidationError")]),
            Err(ProviderError::Rejected {
                code: 40001,
                reason: Some("ParamValidationError".into())
            })
        );
    }

    #[test]
    fn logout_reads_the_body_code() {
        let call = logout(&ep(), &secret(PAT));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "POST",
                "https://api.hubble.jina.ai/v2/rpc/user.session.dismiss",
                vec![AUTH, ("Content-Type", "application/octet-stream")]
            )
        );
        assert_eq!(call.requests[0].body.as_deref(), Some(""));
        let out = |r: HttpResponse| logout(&ep(), &secret(PAT)).finish(&[r]);
        assert_eq!(
            out(ok(json!({"code": 200, "message": "ok"}))),
            Ok(LogoutOutcome::LoggedOut)
        );
        assert_eq!(
            out(HttpResponse::new(401, json!({"code": 401}).to_string())),
            Ok(LogoutOutcome::NotLoggedIn),
            "the body decides, not the HTTP status"
        );
        assert_eq!(
            out(ok(json!({"code": 500, "message": "session store down"})))
                .map_err(|e| e.to_string()),
            Err(
                "the provider refused the request (500): Failed to log out. session store down"
                    .into()
            )
        );
        assert_eq!(
            out(ok(json!({"code": "200"}))),
            Err(ProviderError::Malformed("`code` should be a number".into()))
        );
        assert_eq!(
            out(ok(json!({}))),
            Err(ProviderError::Malformed("`code` is missing".into()))
        );
        assert_eq!(
            out(HttpResponse::new(200, "Bad Gateway")),
            Err(ProviderError::Malformed("the answer is not JSON".into()))
        );
        assert!(matches!(
            out(HttpResponse::new(502, "Bad Gateway")),
            Err(ProviderError::Server { status: 502, .. })
        ));
    }
}
