//! BentoCloud, as `bentoml` 1.4.39 speaks to it.
//!
//! Every call carries the raw token in `X-YATAI-API-TOKEN` and the client's
//! version in `X-Bentoml-Version`. Success is **exactly 200**: a 201 or 204
//! is a failure, as the official client's `_check_resp` has it. A 404, or a
//! 400 saying `record not found`, means "not found" for the user, the
//! organization and a token.

use serde::Serialize;

use super::http::{self, HttpRequest, HttpResponse, Method, Obj};
use super::{
    AnswerProblem, Call, Identity, NewToken, ProviderError, RemoteToken, Resource, TokenSpec,
};
use crate::credential::{Account, Clock, Endpoint};
use crate::header::Secret;

/// Deployments are served under `<name>.<org>.` this domain.
pub const DEPLOYMENT_DOMAIN: &str = "cloud-apps.bentoml.com";
pub const TOKEN_HEADER: &str = "X-YATAI-API-TOKEN";
const VERSION_HEADER: &str = "X-Bentoml-Version";
/// The client version the contract was recorded with.
const CLIENT_VERSION: &str = "1.4.39";
/// `bentoml api-token list` asks for one page of this size, and no more.
const PAGE: &str = "100";

fn request(method: Method, url: String, secret: &Secret) -> HttpRequest {
    HttpRequest::new(method, url)
        .header(TOKEN_HEADER, secret.expose())
        .header(VERSION_HEADER, CLIENT_VERSION)
}

fn api(endpoint: &Endpoint, path: &[&str]) -> String {
    endpoint.join(&[&["api", "v1"], path].concat())
}

/// The JSON of an exactly-200 answer, or the failure it stands for.
fn ok_json(response: &HttpResponse, what: Resource) -> Result<serde_json::Value, ProviderError> {
    match response.status {
        200 => http::json(response),
        400 if response.body.contains("record not found") => {
            Err(ProviderError::NotFound { what, reason: None })
        }
        _ => Err(http::failure(response, what)),
    }
}

/// `GET /api/v1/auth/current`, then `GET /api/v1/current_org`: what
/// `bentoml cloud login --api-token` checks.
pub fn who_am_i(endpoint: &Endpoint, secret: &Secret) -> Call<Identity> {
    let requests = vec![
        request(Method::Get, api(endpoint, &["auth", "current"]), secret),
        request(Method::Get, api(endpoint, &["current_org"]), secret),
    ];
    Call::new(requests, secret, |responses| {
        let user = ok_json(super::answer(responses, 0)?, Resource::Account)?;
        let (name, email) = read_user(&Obj::of(&user, "")?)?;
        let org = ok_json(super::answer(responses, 1)?, Resource::Organization)?;
        let org = read_org(&Obj::of(&org, "")?)?;
        Ok(Identity {
            confirmation: crate::text!("notice_bentocloud_logged_in", &email, &org),
            account: Account {
                user: Some(name),
                email: Some(email),
                organizations: vec![org],
            },
            token_name: None,
        })
    })
}

/// `UserSchema`: all four keys required. Gives the name and email.
fn read_user(user: &Obj<'_>) -> Result<(String, String), ProviderError> {
    user.require(&["name", "email", "first_name", "last_name"])?;
    Ok((user.str("name")?.to_owned(), user.str("email")?.to_owned()))
}

/// `OrganizationSchema`: all keys required, `labels` a list. Gives the name.
fn read_org(org: &Obj<'_>) -> Result<String, ProviderError> {
    org.require(&[
        "uid",
        "created_at",
        "updated_at",
        "deleted_at",
        "name",
        "resource_type",
        "description",
    ])?;
    org.list("labels")?;
    Ok(org.str("name")?.to_owned())
}

/// `ApiTokenSchema`, as a listed token.
fn read_token(t: &Obj<'_>) -> Result<RemoteToken, ProviderError> {
    t.require(&["updated_at", "deleted_at", "resource_type", "description"])?;
    t.list("labels")?;
    read_user(&t.obj("user")?)?;
    read_org(&t.obj("organization")?)?;
    Ok(RemoteToken {
        id: t.str("uid")?.to_owned(),
        name: t.str("name")?.to_owned(),
        description: t.opt_str("description")?.map(str::to_owned),
        scopes: t.strings("scopes")?,
        token_type: None,
        created: Some(t.time("created_at")?),
        expires: t.opt_time("expired_at")?,
        last_used: t.opt_time("last_used_at")?,
    })
}

/// `GET /api/v1/api_tokens?start=0&count=100[&search=S]`: one page, as the
/// official client asks.
pub fn list_tokens(
    endpoint: &Endpoint,
    secret: &Secret,
    search: Option<&str>,
) -> Call<Vec<RemoteToken>> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("start", "0").append_pair("count", PAGE);
    if let Some(s) = search {
        query.append_pair("search", s);
    }
    let url = format!("{}?{}", api(endpoint, &["api_tokens"]), query.finish());
    Call::single(request(Method::Get, url, secret), secret, |response| {
        let page = ok_json(response, Resource::TokenList)?;
        let page = Obj::of(&page, "")?;
        page.require(&["start", "count", "total"])?;
        page.items("items")?.iter().map(read_token).collect()
    })
}

/// The create body: all four keys always present, `null` when not given.
#[derive(Serialize)]
struct CreateBody<'a> {
    name: &'a str,
    description: Option<&'a str>,
    scopes: Option<&'a [String]>,
    /// Naive local time, `%Y-%m-%d %H:%M:%S.%f`.
    expired_at: Option<String>,
}

/// `POST /api/v1/api_tokens`. The answer is the token and, once, its
/// secret in `token`.
pub fn create_token(
    endpoint: &Endpoint,
    secret: &Secret,
    spec: &TokenSpec,
    clock: Clock,
) -> Call<NewToken> {
    let body = CreateBody {
        name: spec.name.trim(),
        description: Some(spec.description.trim()).filter(|d| !d.is_empty()),
        scopes: Some(spec.scopes.as_slice()).filter(|s| !s.is_empty()),
        expired_at: spec
            .expiry
            .at(clock.now)
            .map(|t| t.naive_local(clock.utc_offset_minutes, ' ')),
    };
    let request = request(Method::Post, api(endpoint, &["api_tokens"]), secret).body(
        "application/json",
        serde_json::to_string(&body).unwrap_or_default(),
    );
    Call::single(request, secret, |response| {
        let created = ok_json(response, Resource::Token)?;
        let created = Obj::of(&created, "")?;
        let token = read_token(&created)?;
        let secret = created
            .opt_str("token")?
            .ok_or_else(|| http::malformed(AnswerProblem::Missing("token".into())))?;
        let secret = Secret::from_input(secret)
            .map_err(|_| http::malformed(AnswerProblem::NewTokenNotHeaderSafe))?;
        Ok(NewToken { token, secret })
    })
}

/// `DELETE /api/v1/api_tokens/{uid}`: 200 only, body ignored.
pub fn delete_token(endpoint: &Endpoint, secret: &Secret, uid: &str) -> Call<()> {
    let url = api(endpoint, &["api_tokens", uid]);
    Call::single(
        request(Method::Delete, url, secret),
        secret,
        |response| match response.status {
            200 => Ok(()),
            _ => Err(http::failure(response, Resource::ApiToken)),
        },
    )
}

/// The browser login of `bentoml cloud login` (menu item 1): a code from
/// `GET /api/v1/auth/code`, sent **without** the token header (there is no
/// token yet).
pub fn login_code_request(endpoint: &Endpoint) -> HttpRequest {
    HttpRequest::new(Method::Get, api(endpoint, &["auth", "code"]))
        .header(VERSION_HEADER, CLIENT_VERSION)
}

/// The code in the answer to [`login_code_request`]: `{"code"}`.
pub fn read_login_code(response: &HttpResponse) -> Result<String, ProviderError> {
    let value = ok_json(response, Resource::LoginCode)?;
    let code = Obj::of(&value, "")?.str("code")?.to_owned();
    // The code goes into a URL and a storage record: a hostile answer must
    // not smuggle anything else in.
    if code.is_empty()
        || code.len() > 256
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        return Err(http::malformed(AnswerProblem::LoginCodeNotToken));
    }
    Ok(code)
}

/// The page where the user approves the login: `<endpoint>/api_tokens?code=`.
pub fn login_approval_url(endpoint: &Endpoint, code: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("code", code);
    format!("{}?{}", endpoint.join(&["api_tokens"]), query.finish())
}

/// `GET /api/v1/auth/token?code=`, asked until the user approved.
pub fn login_poll_request(endpoint: &Endpoint, code: &str) -> HttpRequest {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("code", code);
    HttpRequest::new(
        Method::Get,
        format!("{}?{}", api(endpoint, &["auth", "token"]), query.finish()),
    )
    .header(VERSION_HEADER, CLIENT_VERSION)
}

/// The answer to [`login_poll_request`]: the token once approved; `None`
/// while pending, which the official client reads from any non-2xx.
pub fn read_login_poll(response: &HttpResponse) -> Result<Option<Secret>, ProviderError> {
    if !(200..300).contains(&response.status) {
        return Ok(None);
    }
    let value = http::json(response)?;
    let token = Obj::of(&value, "")?.str("token")?;
    Secret::from_input(token)
        .map(Some)
        .map_err(|_| http::malformed(AnswerProblem::TokenNotHeaderSafe))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::credential::Timestamp;
    use crate::provider::tests::{body_json, endpoint, secret, shape, CLOCK};
    use crate::provider::{Expiry, Provider};

    const TOKEN: &str = "yatai-token-0123456789";

    fn user() -> Value {
        json!({"name": "alice", "email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"})
    }

    fn org() -> Value {
        json!({"uid": "org1", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
               "deleted_at": null, "name": "acme", "resource_type": "organization", "labels": [],
               "description": ""})
    }

    fn api_token() -> Value {
        json!({"uid": "tok1", "created_at": "2025-12-01T10:00:00Z", "updated_at": "2025-12-01T10:00:00Z",
               "deleted_at": null, "name": "ci-token", "resource_type": "api_token", "labels": [],
               "description": "CI pipeline token", "scopes": ["api", "read_cluster"],
               "user": user(), "organization": org(),
               "expired_at": "2026-12-23T07:19:19Z", "last_used_at": null, "is_expired": false,
               "is_api_token": true, "is_organization_token": false, "is_global_access": false,
               "future_field": {"ignored": true}})
    }

    fn ok(v: &Value) -> HttpResponse {
        HttpResponse::new(200, v.to_string())
    }

    fn headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut h = vec![(TOKEN_HEADER, TOKEN), ("X-Bentoml-Version", "1.4.39")];
        h.extend_from_slice(extra);
        h
    }

    fn login(responses: &[HttpResponse]) -> Result<Identity, ProviderError> {
        who_am_i(&endpoint(Provider::BentoCloud), &secret(TOKEN)).finish(responses)
    }

    #[test]
    fn login_requests_match_the_contract() {
        let call = who_am_i(&endpoint(Provider::BentoCloud), &secret(TOKEN));
        assert_eq!(
            call.requests.iter().map(shape).collect::<Vec<_>>(),
            [
                (
                    "GET",
                    "https://cloud.bentoml.com/api/v1/auth/current",
                    headers(&[])
                ),
                (
                    "GET",
                    "https://cloud.bentoml.com/api/v1/current_org",
                    headers(&[])
                ),
            ]
        );
        assert!(call.requests.iter().all(|r| r.body.is_none()));
        let local = Endpoint::new("http://127.0.0.1:8123/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            who_am_i(&local, &secret(TOKEN)).requests[0].url,
            "http://127.0.0.1:8123/api/v1/auth/current"
        );
    }

    #[test]
    fn login_confirms_as_the_cli_does() {
        let identity = login(&[ok(&user()), ok(&org())]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            crate::text::english(&identity.confirmation),
            "Logged in as alice@example.com at acme organization."
        );
        assert_eq!(
            identity.account,
            Account {
                user: Some("alice".into()),
                email: Some("alice@example.com".into()),
                organizations: vec!["acme".into()],
            }
        );
    }

    #[test]
    fn login_failures() {
        let unauthorized = HttpResponse::new(401, r#"{"error":"Bad credentials"}"#);
        assert_eq!(
            login(&[unauthorized]),
            Err(ProviderError::Unauthorized {
                reason: Some("Bad credentials".into())
            })
        );
        assert_eq!(
            login(&[HttpResponse::new(403, "")]),
            Err(ProviderError::Forbidden { reason: None })
        );
        assert_eq!(
            login(&[HttpResponse::new(400, "record not found")]),
            Err(ProviderError::NotFound {
                what: Resource::Account,
                reason: None
            })
        );
        assert_eq!(
            login(&[ok(&user()), HttpResponse::new(404, "")]),
            Err(ProviderError::NotFound {
                what: Resource::Organization,
                reason: None
            })
        );
        assert_eq!(
            login(&[HttpResponse::new(503, "").with_header("x-trace-id", "t-1")]),
            Err(ProviderError::Server {
                status: 503,
                trace_id: Some("t-1".into())
            })
        );
        // Exactly 200: a 201 or 204 is a failure.
        for status in [201, 204] {
            assert_eq!(
                login(&[HttpResponse::new(status, user().to_string())]),
                Err(ProviderError::Unexpected { status })
            );
        }
        assert_eq!(
            login(&[ok(&user())]),
            Err(ProviderError::Malformed(AnswerProblem::NoAnswer))
        );
    }

    #[test]
    fn login_answers_are_checked_like_the_sdk() {
        let malformed = |user: Value, org: Value| match login(&[ok(&user), ok(&org)]) {
            Err(ProviderError::Malformed(m)) => m.to_string(),
            other => panic!("{other:?}"),
        };
        let mut u = user();
        u.as_object_mut().map(|o| o.remove("last_name"));
        assert_eq!(malformed(u, org()), "`last_name` is missing");
        let mut o = org();
        o["labels"] = json!(null);
        assert_eq!(malformed(user(), o), "`labels` should be a list");
        let mut u = user();
        u["email"] = json!(42);
        assert_eq!(malformed(u, org()), "`email` should be text");
        assert_eq!(
            login(&[HttpResponse::new(200, "<html>")]),
            Err(ProviderError::Malformed(AnswerProblem::NotJson))
        );
        assert_eq!(
            login(&[HttpResponse::new(200, "")]),
            Err(ProviderError::Malformed(AnswerProblem::Empty))
        );
        assert_eq!(
            login(&[HttpResponse::new(200, "[]")]),
            Err(ProviderError::Malformed(AnswerProblem::NotObject))
        );
    }

    #[test]
    fn list_request_and_answer() {
        let call = list_tokens(
            &endpoint(Provider::BentoCloud),
            &secret(TOKEN),
            Some("ci token"),
        );
        assert_eq!(
            shape(&call.requests[0]),
            (
                "GET",
                "https://cloud.bentoml.com/api/v1/api_tokens?start=0&count=100&search=ci+token",
                headers(&[])
            )
        );
        let page = json!({"start": 0, "count": 100, "total": 1, "items": [api_token()]});
        let tokens = call.finish(&[ok(&page)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            tokens,
            [RemoteToken {
                id: "tok1".into(),
                name: "ci-token".into(),
                description: Some("CI pipeline token".into()),
                scopes: vec!["api".into(), "read_cluster".into()],
                token_type: None,
                created: Timestamp::parse("2025-12-01T10:00:00Z"),
                expires: Timestamp::parse("2026-12-23T07:19:19Z"),
                last_used: None,
            }]
        );
        let without_search = list_tokens(&endpoint(Provider::BentoCloud), &secret(TOKEN), None);
        assert!(without_search.requests[0]
            .url
            .ends_with("?start=0&count=100"));
    }

    #[test]
    fn list_answers_are_checked() {
        let list = |page: Value| {
            list_tokens(&endpoint(Provider::BentoCloud), &secret(TOKEN), None).finish(&[ok(&page)])
        };
        let with = |edit: fn(&mut Value)| {
            let mut t = api_token();
            edit(&mut t);
            list(json!({"start": 0, "count": 100, "total": 1, "items": [t]}))
        };
        let err = |r: Result<Vec<RemoteToken>, ProviderError>| match r {
            Err(ProviderError::Malformed(m)) => m.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(list(json!({"items": []}))), "`start` is missing");
        assert_eq!(
            err(with(|t| t["scopes"] = json!(null))),
            "`items[0].scopes` should be a list"
        );
        assert_eq!(
            err(with(|t| t["created_at"] = json!(""))),
            "`items[0].created_at` should be a date"
        );
        assert_eq!(
            err(with(|t| {
                t["user"].as_object_mut().map(|u| u.remove("email"));
            })),
            "`items[0].user.email` is missing"
        );
        assert_eq!(
            err(with(|t| t["organization"] = json!("acme"))),
            "`items[0].organization` should be an object"
        );
        assert_eq!(
            err(with(|t| t["expired_at"] = json!("next week"))),
            "`items[0].expired_at` should be a date"
        );
        let optional_absent = with(|t| {
            if let Some(o) = t.as_object_mut() {
                for k in [
                    "expired_at",
                    "last_used_at",
                    "is_expired",
                    "is_global_access",
                ] {
                    o.remove(k);
                }
            }
        });
        assert_eq!(optional_absent.map(|t| t[0].expires), Ok(None));
    }

    #[test]
    fn create_sends_all_four_keys() {
        let spec = TokenSpec {
            name: "ci-token".into(),
            description: "CI pipeline token".into(),
            expiry: Expiry::Days(30),
            scopes: vec!["api".into(), "read_cluster".into()],
        };
        let clock = Clock {
            utc_offset_minutes: 60,
            ..CLOCK
        };
        let call = create_token(
            &endpoint(Provider::BentoCloud),
            &secret(TOKEN),
            &spec,
            clock,
        );
        let request = &call.requests[0];
        assert_eq!(
            shape(request),
            (
                "POST",
                "https://cloud.bentoml.com/api/v1/api_tokens",
                headers(&[("Content-Type", "application/json")])
            )
        );
        assert_eq!(
            request.body.as_deref(),
            Some(
                r#"{"name":"ci-token","description":"CI pipeline token","scopes":["api","read_cluster"],"expired_at":"2026-01-16 20:33:20.000000"}"#
            )
        );
        let mut answer = api_token();
        answer["token"] = json!("new-secret-value");
        let new = call
            .finish(&[ok(&answer)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(new.secret.expose(), "new-secret-value");
        assert_eq!(new.token.id, "tok1");

        let bare = TokenSpec {
            name: "t".into(),
            description: " ".into(),
            expiry: Expiry::Never,
            scopes: vec![],
        };
        let call = create_token(
            &endpoint(Provider::BentoCloud),
            &secret(TOKEN),
            &bare,
            CLOCK,
        );
        assert_eq!(
            body_json(&call.requests[0]),
            json!({"name": "t", "description": null, "scopes": null, "expired_at": null})
        );
        // A created token without its secret, or with one a header cannot
        // carry, is malformed; only 200 counts.
        assert_eq!(
            call.finish(&[ok(&api_token())]).err(),
            Some(ProviderError::Malformed(AnswerProblem::Missing(
                "token".into()
            )))
        );
        let create = || {
            create_token(
                &endpoint(Provider::BentoCloud),
                &secret(TOKEN),
                &bare,
                CLOCK,
            )
        };
        let mut bad = api_token();
        bad["token"] = json!("a\nb");
        assert!(matches!(
            create().finish(&[ok(&bad)]),
            Err(ProviderError::Malformed(_))
        ));
        assert_eq!(
            create()
                .finish(&[HttpResponse::new(201, answer.to_string())])
                .err(),
            Some(ProviderError::Unexpected { status: 201 })
        );
    }

    #[test]
    fn delete_is_200_only() {
        let delete = || delete_token(&endpoint(Provider::BentoCloud), &secret(TOKEN), "tok/1");
        assert_eq!(
            shape(&delete().requests[0]),
            (
                "DELETE",
                "https://cloud.bentoml.com/api/v1/api_tokens/tok%2F1",
                headers(&[])
            )
        );
        assert_eq!(
            delete().finish(&[HttpResponse::new(200, "not json")]),
            Ok(())
        );
        assert_eq!(
            delete().finish(&[HttpResponse::new(204, "")]),
            Err(ProviderError::Unexpected { status: 204 })
        );
        assert_eq!(
            delete()
                .finish(&[HttpResponse::new(404, "")])
                .map_err(|e| e.to_string()),
            Err("API token not found".into())
        );
        assert!(matches!(
            delete().finish(&[HttpResponse::new(500, "")]),
            Err(ProviderError::Server { status: 500, .. })
        ));
    }

    #[test]
    fn browser_login_requests_and_answers() {
        let e = endpoint(Provider::BentoCloud);
        let code = login_code_request(&e);
        assert_eq!(code.url, format!("{}/api/v1/auth/code", e.origin()));
        assert_eq!(code.header_value(TOKEN_HEADER), None, "no token yet");
        assert_eq!(
            read_login_code(&HttpResponse::new(200, r#"{"code":"abc-123"}"#)),
            Ok("abc-123".to_owned())
        );
        for (status, body) in [
            (200, r#"{"code":"a b"}"#),
            (200, r#"{"code":""}"#),
            (200, r#"{"nocode":1}"#),
            (200, "<html>"),
            (500, r#"{"code":"x"}"#),
        ] {
            assert!(
                read_login_code(&HttpResponse::new(status, body)).is_err(),
                "{status} {body}"
            );
        }
        assert_eq!(
            login_approval_url(&e, "abc-123"),
            format!("{}/api_tokens?code=abc-123", e.origin())
        );
        let poll = login_poll_request(&e, "abc-123");
        assert_eq!(
            poll.url,
            format!("{}/api/v1/auth/token?code=abc-123", e.origin())
        );
        assert_eq!(poll.header_value(TOKEN_HEADER), None);
        assert_eq!(
            read_login_poll(&HttpResponse::new(
                404,
                r#"{"error":"authorization pending"}"#
            )),
            Ok(None)
        );
        assert_eq!(
            read_login_poll(&HttpResponse::new(200, r#"{"token":"tok-1"}"#))
                .map(|t| t.map(|t| t.expose().to_owned())),
            Ok(Some("tok-1".to_owned()))
        );
        assert!(read_login_poll(&HttpResponse::new(200, "garbage")).is_err());
        assert!(read_login_poll(&HttpResponse::new(200, r#"{"token":"a\nb"}"#)).is_err());
    }
}
