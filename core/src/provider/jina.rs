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
use super::{
    AnswerProblem, Call, Expected, Identity, LogoutOutcome, NewToken, ProviderError, RemoteToken,
    Resource, TokenSpec,
};
use crate::credential::{Account, Endpoint, Timestamp};
use crate::header::Secret;
use crate::text;

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
fn ok_json(response: &HttpResponse, what: Resource) -> Result<Value, ProviderError> {
    if response.is_success() {
        http::json(response)
    } else {
        Err(failure(response, what))
    }
}

/// A Hubble code (`status` in the body) decides, by its first three digits;
/// a body without one falls back to the HTTP status.
fn failure(response: &HttpResponse, what: Resource) -> ProviderError {
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
        let body = ok_json(response, Resource::Account)?;
        let data = Obj::of(&body, "")?.obj("data")?;
        let name = data.opt_str("name")?;
        let nickname = data.opt_str("nickname")?;
        let shown = nickname.or(name).ok_or_else(|| {
            http::malformed(AnswerProblem::BothMissing(
                "data.nickname".into(),
                "data.name".into(),
            ))
        })?;
        let confirmation = match (nickname, name) {
            (Some(nick), Some(name)) if nick != name => {
                text!("notice_jina_logged_in_username", nick, name)
            }
            _ => text!("notice_jina_logged_in", shown),
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
        let body = ok_json(response, Resource::TokenList)?;
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
        ProviderError::Unsupported(text!("error_unsupported_jina_never_expiring"))
    })?;
    let name = spec.name.trim().to_owned();
    let request = rpc(endpoint, "user.pat.create", secret).body(
        FORM,
        form(&[("name", &name), ("expirationDays", &days.to_string())]),
    );
    Ok(Call::single(request, secret, move |response| {
        let body = ok_json(response, Resource::Account)?;
        let data = Obj::of(&body, "")?.obj("data")?;
        let secret = Secret::from_input(data.str("token")?)
            .map_err(|_| http::malformed(AnswerProblem::NewTokenNotHeaderSafe))?;
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
            Err(failure(response, Resource::Token))
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
            Err(_) => return Err(failure(response, Resource::Session)),
        };
        let body = Obj::of(&body, "")?;
        let code = body.get("code")?.as_u64().ok_or_else(|| {
            http::malformed(AnswerProblem::Wrong {
                field: "code".into(),
                expected: Expected::Number,
            })
        })?;
        match code {
            200 => Ok(LogoutOutcome::LoggedOut),
            401 => Ok(LogoutOutcome::NotLoggedIn),
            _ => Err(ProviderError::Rejected {
                code: u32::try_from(code).unwrap_or(u32::MAX),
                reason: body
                    .opt_str("message")
                    .ok()
                    .flatten()
                    .map(|r| r.trim().to_owned()),
            }),
        }
    })
}

/// `GET user.identity.proxiedAuthorize?prompt=login`, with no token: the
/// start of `jina-auth login -f`. Its answer is an NDJSON stream read line
/// by line ([`read_login_event`]) while the user logs in in a tab.
pub fn login_stream_request(endpoint: &Endpoint) -> HttpRequest {
    HttpRequest::new(
        Method::Get,
        format!(
            "{}?prompt=login",
            endpoint.join(&["v2", "rpc", "user.identity.proxiedAuthorize"])
        ),
    )
}

/// The status of the login stream's answer: 2xx, or the Hubble error.
pub fn read_login_stream_head(head: &HttpResponse) -> Result<(), ProviderError> {
    if head.is_success() {
        Ok(())
    } else {
        Err(failure(head, Resource::Login))
    }
}

/// What a line of the login stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginEvent {
    /// Open this page, where the user logs in.
    Redirect(String),
    /// The user logged in: this `data` goes verbatim to
    /// [`grant_request`]. It holds a one-time code, so it is kept in memory
    /// only.
    Authorize(Value),
}

/// The longest stream line read; a provider sending more is not followed.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One line of the login stream. Blank lines and events this client does
/// not know are `None`, as the official client skips them; an `error`
/// event ends the login with the provider's words.
pub fn read_login_event(line: &str) -> Result<Option<LoginEvent>, ProviderError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line)
        .map_err(|_| http::malformed(AnswerProblem::StreamLineNotJson))?;
    let event = Obj::of(&value, "")?;
    match event.str("event")? {
        "redirect" => {
            let url = event.obj("data")?.str("redirectTo")?;
            // The page is opened in a tab: only a web page, never a
            // `javascript:` or extension URL from a hostile answer.
            let parsed = crate::pattern::parse_url(url)
                .map_err(|_| http::malformed(AnswerProblem::NotUrl("data.redirectTo".into())))?;
            if !matches!(parsed.scheme(), "https" | "http") || url.len() > 4096 {
                return Err(http::malformed(AnswerProblem::NotWebPage(
                    "data.redirectTo".into(),
                )));
            }
            Ok(Some(LoginEvent::Redirect(parsed.into())))
        }
        "authorize" => {
            let data = event.obj("data")?;
            for key in ["code", "state"] {
                if data.str(key)?.is_empty() {
                    return Err(http::malformed(AnswerProblem::EmptyField(format!(
                        "data.{key}"
                    ))));
                }
            }
            Ok(Some(LoginEvent::Authorize(event.get("data")?.clone())))
        }
        "error" => Err(ProviderError::LoginFailed {
            reason: http::reason(&event.get("data")?.to_string()),
        }),
        _ => Ok(None),
    }
}

/// `POST user.identity.grant.auto` with the `authorize` event's data,
/// verbatim, as JSON.
pub fn grant_request(endpoint: &Endpoint, data: &Value) -> HttpRequest {
    HttpRequest::new(
        Method::Post,
        endpoint.join(&["v2", "rpc", "user.identity.grant.auto"]),
    )
    .body("application/json", data.to_string())
}

/// The token in the answer to [`grant_request`]: `data.token`.
pub fn read_grant(response: &HttpResponse) -> Result<Secret, ProviderError> {
    let body = ok_json(response, Resource::Login)?;
    let token = Obj::of(&body, "")?.obj("data")?.str("token")?;
    Secret::from_input(token).map_err(|_| http::malformed(AnswerProblem::TokenNotHeaderSafe))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provider::tests::{endpoint, secret, shape, CLOCK};
    use crate::provider::{Expiry, Provider};
    use crate::text::Localize;

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
            text::english(&identity.confirmation),
            "Logged in to Jina AI as Alice L. (username: alice)."
        );
        assert_eq!(identity.account.user.as_deref(), Some("Alice L."));
        let by_name = whoami(ok(json!({"data": {"name": "alice", "nickname": ""}})));
        assert_eq!(
            by_name.map(|i| text::english(&i.confirmation)),
            Ok("Logged in to Jina AI as alice.".into())
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
                what: Resource::Account,
                reason: Some("not json".into())
            })
        );
        assert!(matches!(
            whoami(HttpResponse::new(502, "")),
            Err(ProviderError::Server { status: 502, .. })
        ));
        assert_eq!(
            whoami(ok(json!({"data": {}}))),
            Err(ProviderError::Malformed(AnswerProblem::BothMissing(
                "data.nickname".into(),
                "data.name".into()
            )))
        );
        assert_eq!(
            whoami(ok(json!({"data": {"name": ["alice"]}}))),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "data.name".into(),
                expected: Expected::Text
            }))
        );
        assert_eq!(
            whoami(ok(json!({"user": {}}))),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "data".into()
            )))
        );
        assert_eq!(
            whoami(HttpResponse::new(200, "")),
            Err(ProviderError::Malformed(AnswerProblem::Empty))
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
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "data.personal_access_tokens[0].expireAt".into()
            )))
        );
        assert_eq!(
            list(json!({"data": {"personal_access_tokens": {}}})),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "data.personal_access_tokens".into(),
                expected: Expected::List
            }))
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
            Some(ProviderError::Malformed(AnswerProblem::Missing(
                "data.token".into()
            )))
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
                what: Resource::Token,
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
                .map_err(|e| (e.to_string(), text::english(&e.text()))),
            Err((
                "the provider refused the request (500): session store down".into(),
                "The provider refused the request (500): session store down".into()
            ))
        );
        assert_eq!(
            out(ok(json!({"code": "200"}))),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "code".into(),
                expected: Expected::Number
            }))
        );
        assert_eq!(
            out(ok(json!({}))),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "code".into()
            )))
        );
        assert_eq!(
            out(HttpResponse::new(200, "Bad Gateway")),
            Err(ProviderError::Malformed(AnswerProblem::NotJson))
        );
        assert!(matches!(
            out(HttpResponse::new(502, "Bad Gateway")),
            Err(ProviderError::Server { status: 502, .. })
        ));
    }

    #[test]
    fn browser_login_stream_and_grant() {
        let e = ep();
        let start = login_stream_request(&e);
        assert_eq!(
            shape(&start).1,
            format!(
                "{}/v2/rpc/user.identity.proxiedAuthorize?prompt=login",
                e.origin()
            )
        );
        assert_eq!(start.method, Method::Get);
        assert_eq!(start.header_value("Authorization"), None, "no token yet");

        assert_eq!(read_login_event(""), Ok(None));
        assert_eq!(
            read_login_event(r#"{"event":"progress","data":{}}"#),
            Ok(None)
        );
        assert_eq!(
            read_login_event(
                r#"{"event":"redirect","data":{"redirectTo":"https://auth.example/login?state=s1"}}"#
            ),
            Ok(Some(LoginEvent::Redirect(
                "https://auth.example/login?state=s1".to_owned()
            )))
        );
        let data = json!({"code": "c0de", "state": "s1", "extra": [1]});
        assert_eq!(
            read_login_event(&json!({"event": "authorize", "data": data}).to_string()),
            Ok(Some(LoginEvent::Authorize(data.clone())))
        );
        for hostile in [
            r#"{"event":"redirect","data":{"redirectTo":"javascript:alert(1)"}}"#,
            r#"{"event":"redirect","data":{"redirectTo":"chrome://settings"}}"#,
            r#"{"event":"redirect","data":{}}"#,
            r#"{"event":"authorize","data":{"code":"","state":"s"}}"#,
            r#"{"event":"authorize","data":{"code":"c"}}"#,
            r#"{"event":"authorize","data":"c"}"#,
            "<html>",
            "[1]",
        ] {
            assert!(
                matches!(read_login_event(hostile), Err(ProviderError::Malformed(_))),
                "{hostile}"
            );
        }
        assert_eq!(
            read_login_event(r#"{"event":"error","data":"login timed out"}"#)
                .expect_err("an error event")
                .to_string(),
            "the login did not finish: login timed out"
        );

        let grant = grant_request(&e, &data);
        assert_eq!(
            shape(&grant),
            (
                "POST",
                format!("{}/v2/rpc/user.identity.grant.auto", e.origin()).as_str(),
                vec![("Content-Type", "application/json")]
            )
        );
        assert_eq!(
            serde_json::from_str::<Value>(grant.body.as_deref().unwrap_or_default()).ok(),
            Some(data),
            "the event's data, verbatim"
        );
        let answer = ok(
            json!({"data": {"token": PAT, "user": {"name": "alice-liddell", "nickname": "alice"}}}),
        );
        assert_eq!(
            read_grant(&answer).map(|s| s.expose().to_owned()),
            Ok(PAT.to_owned())
        );
        assert!(matches!(
            read_grant(&hubble_error(401, 40102, "code expired")),
            Err(ProviderError::Unauthorized { .. })
        ));
        assert!(read_grant(&ok(json!({"data": {}}))).is_err());
    }
}
