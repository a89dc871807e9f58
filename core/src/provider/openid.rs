//! OpenID Connect, for self-hosted deployments behind an identity provider:
//! the authorization code flow with PKCE (RFC 7636), started from issuer
//! discovery, and refresh tokens (RFC 6749 §6) that keep the access token
//! fresh. Spoken without IO, like every provider: the background sends the
//! requests built here and the browser's `identity.launchWebAuthFlow`
//! carries the user through the provider's own login page.
//!
//! What is checked, and why it is enough:
//! - the discovery document names the issuer the user typed (OpenID Connect
//!   Discovery §4.3), and its endpoints are https (or this computer);
//! - the redirect carries the `state` this login drew, and, when the
//!   provider sends one, its `iss` (RFC 9207): a redirect from another
//!   login or another provider is refused;
//! - the ID token names this issuer, this client and this login's `nonce`,
//!   and has not expired. Its signature is not checked: it came straight
//!   from the token endpoint, where "the TLS server validation MAY be used
//!   to validate the issuer in place of checking the token signature"
//!   (OpenID Connect Core §3.1.3.7, item 6).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::form_urlencoded;

use super::http::{self, Obj};
use super::{AnswerProblem, HttpRequest, HttpResponse, Method, ProviderError, Resource};
use crate::credential::{Account, Endpoint, Timestamp};
use crate::header::Secret;
use crate::text;
use crate::text::Localize;

/// What is asked for: an ID token (`openid`), a refresh token
/// (`offline_access`), and a name to show (`profile`, `email`). A provider
/// ignores the scopes it does not know (OpenID Connect Core §3.1.2.1).
pub const DEFAULT_SCOPE: &str = "openid offline_access profile email";

/// How long before `exp` an ID token is still taken, for clocks that
/// disagree a little.
const CLOCK_SKEW: i64 = 60;

/// What the issuer's discovery document says, as far as a login needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Exactly as the document writes it: the ID token's `iss` must match.
    pub issuer: String,
    pub authorization_endpoint: Endpoint,
    pub token_endpoint: Endpoint,
}

/// `GET <issuer>/.well-known/openid-configuration`.
pub fn discovery_request(issuer: &Endpoint) -> HttpRequest {
    HttpRequest::new(
        Method::Get,
        format!("{}/.well-known/openid-configuration", issuer.as_str()),
    )
    .header("Accept", "application/json")
}

pub fn read_discovery(
    issuer: &Endpoint,
    response: &HttpResponse,
) -> Result<Discovery, ProviderError> {
    if !response.is_success() {
        return Err(match response.status {
            404 => ProviderError::NotFound {
                what: Resource::OpenIdConfiguration,
                reason: None,
            },
            _ => http::failure(response, Resource::OpenIdConfiguration),
        });
    }
    let body = http::json(response)?;
    let doc = Obj::of(&body, "")?;
    let named = doc.str("issuer")?;
    if named.trim_end_matches('/') != issuer.as_str() {
        return Err(ProviderError::Invalid(text!(
            "error_openid_issuer_mismatch",
            shorten(named)
        )));
    }
    let endpoint = |key: &str| -> Result<Endpoint, ProviderError> {
        Endpoint::new(doc.str(key)?)
            .map_err(|e| ProviderError::Invalid(text!("error_openid_bad_endpoint", key, e.text())))
    };
    let authorization_endpoint = endpoint("authorization_endpoint")?;
    let token_endpoint = endpoint("token_endpoint")?;
    // Absent means "not said"; said without S256 means PKCE would be
    // ignored, and the code would be usable by whoever intercepts it.
    if let Value::Array(methods) = doc
        .get("code_challenge_methods_supported")
        .unwrap_or(&Value::Null)
    {
        if !methods.iter().any(|m| m.as_str() == Some("S256")) {
            return Err(ProviderError::Unsupported(text!(
                "error_unsupported_openid_pkce"
            )));
        }
    }
    Ok(Discovery {
        issuer: named.to_owned(),
        authorization_endpoint,
        token_endpoint,
    })
}

/// One login's values, drawn at random: `state` ties the redirect to this
/// login, `nonce` the ID token, and the verifier the code (PKCE).
#[derive(Clone, PartialEq, Eq)]
pub struct LoginSecrets {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl std::fmt::Debug for LoginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginSecrets(<redacted>)")
    }
}

impl LoginSecrets {
    /// Bytes to the three values: 16 for `state`, 16 for `nonce`, and 32 for
    /// the verifier, which makes 43 characters, RFC 7636 §4.1's minimum.
    pub fn from_random(random: &[u8; 64]) -> LoginSecrets {
        LoginSecrets {
            state: URL_SAFE_NO_PAD.encode(&random[..16]),
            nonce: URL_SAFE_NO_PAD.encode(&random[16..32]),
            verifier: URL_SAFE_NO_PAD.encode(&random[32..]),
        }
    }

    /// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.2.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// The page the user logs in on. `prompt=consent` comes with
/// `offline_access`: without it a provider must not issue a refresh token
/// (OpenID Connect Core §11).
pub fn authorization_url(
    discovery: &Discovery,
    client_id: &str,
    scope: &str,
    redirect_uri: &str,
    secrets: &LoginSecrets,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", &secrets.state)
        .append_pair("nonce", &secrets.nonce)
        .append_pair("code_challenge", &secrets.challenge())
        .append_pair("code_challenge_method", "S256");
    if scope.split(' ').any(|s| s == "offline_access") {
        query.append_pair("prompt", "consent");
    }
    format!(
        "{}?{}",
        discovery.authorization_endpoint.as_str(),
        query.finish()
    )
}

/// The code from the provider's redirect, once it is known to answer this
/// login: the redirect URI and `state` are this login's, and `iss`, when
/// present, is this issuer. The provider's `error` becomes its words.
pub fn read_redirect(
    redirect: &str,
    redirect_uri: &str,
    secrets: &LoginSecrets,
    issuer: Option<&str>,
) -> Result<String, ProviderError> {
    let url = crate::pattern::parse_url(redirect)
        .map_err(|_| ProviderError::LoginRefused(text!("error_login_redirect_not_url")))?;
    let mut without_query = url.clone();
    without_query.set_query(None);
    without_query.set_fragment(None);
    let expected = crate::pattern::parse_url(redirect_uri)
        .map_err(|_| ProviderError::Invalid(text!("error_login_redirect_uri_not_url")))?;
    if without_query != expected {
        return Err(ProviderError::LoginRefused(text!(
            "error_login_redirected_elsewhere"
        )));
    }
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        let words = match param("error_description") {
            Some(d) => format!("{}: {}", clean(&error), clean(&d)),
            None => clean(&error),
        };
        return Err(ProviderError::LoginFailed {
            reason: Some(words),
        });
    }
    if param("state").as_deref() != Some(secrets.state.as_str()) {
        return Err(ProviderError::LoginRefused(text!(
            "error_login_state_differs"
        )));
    }
    if let (Some(iss), Some(issuer)) = (param("iss"), issuer) {
        if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::LoginRefused(text!(
                "error_login_other_issuer",
                shorten(&iss)
            )));
        }
    }
    param("code")
        .filter(|c| !c.is_empty())
        .ok_or(ProviderError::LoginRefused(text!("error_login_no_code")))
}

/// `grant_type=authorization_code`, from a public client: the verifier
/// stands in for a client secret.
pub fn code_request(
    token_endpoint: &str,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    secrets: &LoginSecrets,
) -> HttpRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("client_id", client_id)
        .append_pair("code_verifier", &secrets.verifier)
        .finish();
    token_endpoint_request(token_endpoint, body)
}

/// `grant_type=refresh_token`, RFC 6749 §6.
pub fn refresh_request(
    token_endpoint: &str,
    client_id: &str,
    refresh_token: &Secret,
) -> HttpRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token.expose())
        .append_pair("client_id", client_id)
        .finish();
    token_endpoint_request(token_endpoint, body)
}

fn token_endpoint_request(url: &str, body: String) -> HttpRequest {
    HttpRequest::new(Method::Post, url.to_owned())
        .header("Accept", "application/json")
        .body("application/x-www-form-urlencoded", body)
}

/// What the token endpoint handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Seconds the access token lives, if the provider said.
    pub expires_in: Option<i64>,
    pub id_token: Option<String>,
}

/// Why the token endpoint said no, and whether asking again later can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// The grant is dead (`invalid_grant`: revoked, expired, reused; or the
    /// client is no longer allowed): only a new login helps.
    Final(ProviderError),
    /// The provider is down or busy: the next try may work.
    Passing(ProviderError),
}

/// The answer to [`code_request`] or [`refresh_request`] (RFC 6749 §5).
pub fn read_tokens(response: &HttpResponse) -> Result<Tokens, TokenRefusal> {
    if !response.is_success() {
        let error = oauth_error(&response.body);
        return Err(match response.status {
            400 | 401 | 403 => TokenRefusal::Final(ProviderError::LoginFailed { reason: error }),
            _ => TokenRefusal::Passing(http::failure(response, Resource::TokenEndpoint)),
        });
    }
    let bad = TokenRefusal::Final;
    let body = http::json(response).map_err(bad)?;
    let doc = Obj::of(&body, "").map_err(bad)?;
    // The header says Bearer: a DPoP or MAC token would be refused there.
    // Absent (Nuclia's contract does not promise it) means Bearer.
    let token_type = doc.opt_str("token_type").map_err(bad)?.unwrap_or("Bearer");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(bad(ProviderError::Unsupported(text!(
            "error_unsupported_token_type",
            shorten(token_type)
        ))));
    }
    let secret = |key: &str| -> Result<Option<Secret>, TokenRefusal> {
        doc.opt_str(key)
            .map_err(bad)?
            .map(|s| {
                Secret::from_input(s).map_err(|_| {
                    bad(http::malformed(AnswerProblem::FieldNotHeaderSafe(
                        key.to_owned(),
                    )))
                })
            })
            .transpose()
    };
    let access = secret("access_token")?.ok_or_else(|| {
        bad(http::malformed(AnswerProblem::Missing(
            "access_token".into(),
        )))
    })?;
    let expires_in = match doc.get("expires_in") {
        Ok(Value::Number(n)) => n.as_i64().filter(|s| *s > 0),
        // Some providers send it as a string.
        Ok(Value::String(s)) => s.trim().parse().ok().filter(|s: &i64| *s > 0),
        _ => None,
    };
    Ok(Tokens {
        access,
        refresh: secret("refresh_token")?,
        expires_in,
        id_token: doc.opt_str("id_token").map_err(bad)?.map(str::to_owned),
    })
}

/// `error: error_description`, as RFC 6749 §5.2 spells a refusal.
fn oauth_error(body: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(body).ok()?;
    let error = doc.get("error").and_then(Value::as_str).map(clean);
    let description = doc
        .get("error_description")
        .and_then(Value::as_str)
        .map(clean);
    match (error, description) {
        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (e, d) => e.or(d),
    }
}

/// Who logged in, from the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub subject: String,
    pub account: Account,
}

/// Checks the ID token of a login (`nonce`: this login's) or of a refresh
/// (`nonce`: `None`, and it must name the same `subject`).
pub fn read_id_token(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: Timestamp,
) -> Result<IdClaims, ProviderError> {
    let invalid = ProviderError::LoginRefused;
    let mut parts = id_token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(text!("error_id_token_not_jwt")));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid(text!("error_id_token_not_jwt")))?;
    let claims =
        crate::json::parse_bytes(&bytes).ok_or_else(|| invalid(text!("error_id_token_not_jwt")))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    // Compared as discovery is: an issuer written with a trailing `/` is
    // the same issuer.
    if claim("iss").map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/')) {
        return Err(invalid(text!("error_id_token_other_issuer")));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid(text!("error_id_token_other_client")));
    }
    if let Some(nonce) = nonce {
        if claim("nonce") != Some(nonce) {
            return Err(invalid(text!("error_id_token_nonce_differs")));
        }
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + CLOCK_SKEW > now.0 => {}
        Some(_) => return Err(invalid(text!("error_id_token_expired"))),
        None => return Err(invalid(text!("error_id_token_no_expiry"))),
    }
    let subject = claim("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(text!("error_id_token_no_subject")))?
        .to_owned();
    let user = claim("preferred_username")
        .or(claim("name"))
        .map(clean)
        .or_else(|| Some(clean(&subject)));
    Ok(IdClaims {
        account: Account {
            user,
            email: claim("email").map(clean),
            organizations: Vec::new(),
        },
        subject,
    })
}

/// Provider words for the user: no control characters, bounded.
fn clean(text: &str) -> String {
    shorten(
        &text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>(),
    )
}

fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::refresh_at;
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:4000";
    const REDIRECT: &str = "https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/";

    fn issuer() -> Endpoint {
        Endpoint::new(ISSUER).expect("issuer")
    }

    fn discovery() -> Discovery {
        let doc = json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/auth"),
            "token_endpoint": format!("{ISSUER}/token"),
            "code_challenge_methods_supported": ["S256"],
        });
        read_discovery(&issuer(), &HttpResponse::new(200, doc.to_string())).expect("discovery")
    }

    fn secrets() -> LoginSecrets {
        let mut random = [0u8; 64];
        for (i, b) in random.iter_mut().enumerate() {
            *b = i as u8;
        }
        LoginSecrets::from_random(&random)
    }

    fn jwt(claims: Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            "c2ln"
        )
    }

    const NOW: Timestamp = Timestamp(1_790_000_000);

    #[test]
    fn pkce_challenge_is_rfc_7636_appendix_b() {
        let s = LoginSecrets {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        };
        assert_eq!(s.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(secrets().verifier.len(), 43);
        assert!(!format!("{:?}", secrets()).contains(&secrets().verifier));
    }

    #[test]
    fn discovery_must_name_the_issuer_and_safe_endpoints() {
        let d = discovery();
        assert_eq!(d.token_endpoint.as_str(), "http://127.0.0.1:4000/token");
        assert_eq!(
            discovery_request(&issuer()).url,
            "http://127.0.0.1:4000/.well-known/openid-configuration"
        );
        let read = |doc: Value| read_discovery(&issuer(), &HttpResponse::new(200, doc.to_string()));
        let other = read(
            json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"}),
        );
        assert!(
            matches!(other, Err(ProviderError::Invalid(m)) if text::english(&m).contains("“https://evil.example”"))
        );
        let plain = read(
            json!({"issuer": ISSUER, "authorization_endpoint": "http://idp.example/a", "token_endpoint": format!("{ISSUER}/t")}),
        );
        assert!(
            matches!(plain, Err(ProviderError::Invalid(m)) if text::english(&m).starts_with("The provider's “authorization_endpoint”: Plain http"))
        );
        let no_s256 = read(
            json!({"issuer": ISSUER, "authorization_endpoint": format!("{ISSUER}/a"), "token_endpoint": format!("{ISSUER}/t"), "code_challenge_methods_supported": ["plain"]}),
        );
        assert!(matches!(no_s256, Err(ProviderError::Unsupported(_))));
        assert!(matches!(
            read_discovery(&issuer(), &HttpResponse::new(404, "nope")),
            Err(ProviderError::NotFound { .. })
        ));
        assert!(matches!(
            read_discovery(&issuer(), &HttpResponse::new(200, "<html>")),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_nonce_and_consent() {
        let url = url::Url::parse(&authorization_url(
            &discovery(),
            "tokenward",
            DEFAULT_SCOPE,
            REDIRECT,
            &secrets(),
        ))
        .expect("url");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/auth");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "tokenward");
        assert_eq!(q["redirect_uri"], REDIRECT);
        assert_eq!(q["scope"], DEFAULT_SCOPE);
        assert_eq!(q["state"], secrets().state);
        assert_eq!(q["nonce"], secrets().nonce);
        assert_eq!(q["code_challenge"], secrets().challenge());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["prompt"], "consent");
        assert!(
            !q.values().any(|v| v == &secrets().verifier),
            "the verifier stays here"
        );
        let no_offline = authorization_url(&discovery(), "c", "openid", REDIRECT, &secrets());
        assert!(!no_offline.contains("prompt="));
    }

    #[test]
    fn the_redirect_must_answer_this_login() {
        let s = secrets();
        let ok = format!(
            "{REDIRECT}?code=c0de&state={}&iss=http%3A%2F%2F127.0.0.1%3A4000",
            s.state
        );
        assert_eq!(
            read_redirect(&ok, REDIRECT, &s, Some(ISSUER)),
            Ok("c0de".to_owned())
        );
        let reason = |url: &str| match read_redirect(url, REDIRECT, &s, Some(ISSUER)) {
            Err(ProviderError::LoginFailed { reason: Some(r) }) => r,
            Err(ProviderError::LoginRefused(why)) => text::english(&why),
            other => panic!("{other:?}"),
        };
        assert!(reason(&format!("{REDIRECT}?code=c0de&state=other")).contains("state differs"));
        assert!(reason(&format!("{REDIRECT}?code=c0de")).contains("state differs"));
        assert!(reason(&format!(
            "{REDIRECT}?code=c&state={}&iss=https%3A%2F%2Fevil.example",
            s.state
        ))
        .contains("evil.example"));
        assert!(reason(&format!(
            "https://elsewhere.example/?code=c&state={}",
            s.state
        ))
        .contains("somewhere else"));
        assert_eq!(
            reason(&format!(
                "{REDIRECT}?error=access_denied&error_description=The+user+said+no%0A&state={}",
                s.state
            )),
            "access_denied: The user said no "
        );
        assert!(reason(&format!("{REDIRECT}?state={}", s.state)).contains("no code"));
    }

    #[test]
    fn token_requests_are_forms_with_the_verifier_or_refresh_token() {
        let s = secrets();
        let r = code_request(
            discovery().token_endpoint.as_str(),
            "tokenward",
            "c0de",
            REDIRECT,
            &s,
        );
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::Post, "http://127.0.0.1:4000/token")
        );
        assert_eq!(
            r.header_value("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        let form: Vec<(String, String)> =
            form_urlencoded::parse(r.body.as_deref().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            form,
            [
                ("grant_type", "authorization_code"),
                ("code", "c0de"),
                ("redirect_uri", REDIRECT),
                ("client_id", "tokenward"),
                ("code_verifier", s.verifier.as_str()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let refresh = Secret::from_input("rt-1").expect("secret");
        let r = refresh_request("http://127.0.0.1:4000/token", "tokenward", &refresh);
        assert_eq!(
            r.body.as_deref(),
            Some("grant_type=refresh_token&refresh_token=rt-1&client_id=tokenward")
        );
    }

    #[test]
    fn token_answers_and_refusals() {
        let ok = HttpResponse::new(
            200,
            r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60,"refresh_token":"rt-1","id_token":"x.y.z"}"#,
        );
        let t = read_tokens(&ok).expect("tokens");
        assert_eq!(t.access.expose(), "at-1");
        assert_eq!(t.refresh.as_ref().map(Secret::expose), Some("rt-1"));
        assert_eq!(t.expires_in, Some(60));
        assert_eq!(t.id_token.as_deref(), Some("x.y.z"));

        let dead = HttpResponse::new(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
        );
        assert_eq!(
            read_tokens(&dead),
            Err(TokenRefusal::Final(ProviderError::LoginFailed {
                reason: Some("invalid_grant: grant request is invalid".to_owned())
            }))
        );
        assert!(matches!(
            read_tokens(&HttpResponse::new(503, "")),
            Err(TokenRefusal::Passing(_))
        ));
        assert!(matches!(
            read_tokens(&HttpResponse::new(200, "garbage")),
            Err(TokenRefusal::Final(ProviderError::Malformed(_)))
        ));
        let dpop = HttpResponse::new(200, r#"{"access_token":"a","token_type":"DPoP"}"#);
        assert!(matches!(
            read_tokens(&dpop),
            Err(TokenRefusal::Final(ProviderError::Unsupported(_)))
        ));
        let crlf = HttpResponse::new(
            200,
            r#"{"access_token":"a\r\nX-Evil: 1","token_type":"bearer"}"#,
        );
        assert!(
            matches!(read_tokens(&crlf), Err(TokenRefusal::Final(ProviderError::Malformed(m))) if !m.to_string().contains("Evil") && !text::english(&m.text()).contains("Evil"))
        );
    }

    #[test]
    fn the_id_token_must_be_for_this_login() {
        let good = json!({"iss": ISSUER, "aud": "tokenward", "nonce": "n1", "exp": NOW.0 + 3600, "sub": "alice", "preferred_username": "alice", "email": "alice@example.test"});
        let id = read_id_token(&jwt(good.clone()), ISSUER, "tokenward", Some("n1"), NOW)
            .expect("identity");
        assert_eq!(id.subject, "alice");
        assert_eq!(id.account.user.as_deref(), Some("alice"));
        assert_eq!(id.account.email.as_deref(), Some("alice@example.test"));
        let refused = |change: Value, nonce: Option<&str>| {
            let mut claims = good.clone();
            if let (Value::Object(c), Value::Object(change)) = (&mut claims, change) {
                c.extend(change);
            }
            match read_id_token(&jwt(claims), ISSUER, "tokenward", nonce, NOW) {
                Err(ProviderError::LoginRefused(why)) => text::english(&why),
                other => panic!("{other:?}"),
            }
        };
        assert!(
            refused(json!({"iss": "https://evil.example"}), Some("n1")).contains("another issuer")
        );
        assert!(refused(json!({"aud": ["other"]}), Some("n1")).contains("another client"));
        assert!(refused(json!({}), Some("n2")).contains("nonce"));
        assert!(refused(json!({"exp": NOW.0 - 3600}), Some("n1")).contains("expired"));
        assert!(refused(json!({"sub": ""}), None).contains("subject"));
        assert!(read_id_token("not-a-jwt", ISSUER, "tokenward", None, NOW).is_err());
        assert!(read_id_token("a.!!!.c", ISSUER, "tokenward", None, NOW).is_err());
        // A refresh's ID token carries no nonce to check.
        assert!(read_id_token(&jwt(good), ISSUER, "tokenward", None, NOW).is_ok());
    }

    #[test]
    fn refresh_leaves_time_before_expiry() {
        let at = |life: i64| refresh_at(NOW, Timestamp(NOW.0 + life)).0 - NOW.0;
        assert_eq!(at(60), 30);
        assert_eq!(at(30 * 60), 1350);
        assert_eq!(at(3600), 2700);
        assert_eq!(at(86_400), 64_800);
        assert_eq!(at(0), 0);
    }
}
