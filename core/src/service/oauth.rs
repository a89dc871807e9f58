//! OAuth logins, OpenID Connect and Nuclia's: started, and finished where
//! the browser lands (`identity.launchWebAuthFlow`'s redirect, or the
//! address of Nuclia's login tab; [`super::browser_login`] keeps the
//! pending record), then refreshed before their access token expires.
//!
//! **Refresh in place.** A refresh puts the new access token in the same
//! credential, under the same id, and [`RuleBook::rotate`] puts it in every
//! header that used the old one; reconciliation then replaces those
//! browser rules by id in one update. A request never meets a gap or a
//! stale token: the old token is still valid when the new one replaces it
//! ([`credential::refresh_at`](crate::credential::refresh_at) leaves at least a quarter of its life).
//!
//! **A refused refresh ends the login.** `invalid_grant` and the like mean
//! the refresh token is dead (revoked, expired, the user removed): the
//! credential records why, its rules stop at once
//! ([`Credentials::usable`]), and the popup says so. A refresh that got no
//! answer, or a 5xx, is tried again [`RETRY_SECONDS`] later, for as long as
//! the access token lives.
//!
//! [`RuleBook::rotate`]: crate::rules::RuleBook::rotate
//! [`Credentials::usable`]: crate::credential::Credentials::usable

use serde::{Deserialize, Serialize};

use super::{
    accounts_response, load, mutate, Platform, RuleEngine, ServiceError, StateStore, Transport,
};
use crate::credential::{Credential, CredentialId, CredentialKind, Endpoint, Renewal, Timestamp};
use crate::message::Response;
use crate::provider::openid::{self, LoginSecrets, TokenRefusal, Tokens};
use crate::provider::{nuclia, Provider, ProviderError};
use crate::store::State;
use crate::text;
use crate::text::{Arg, Localize, Text};

/// How long after a refresh that got no answer the next try comes. Chrome
/// fires alarms at most every 30 s.
pub(crate) const RETRY_SECONDS: i64 = 30;

/// What a pending OAuth login (OpenID Connect, or Nuclia's) keeps in
/// `storage.session`, in memory only, until it is over.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OAuthLogin {
    /// OpenID Connect: the issuer as the discovery document spells it.
    #[serde(default)]
    issuer: Option<String>,
    client_id: String,
    redirect_uri: String,
    token_endpoint: String,
    state: String,
    /// OpenID Connect: what the ID token must carry.
    #[serde(default)]
    nonce: Option<String>,
    verifier: String,
}

impl OAuthLogin {
    fn secrets(&self) -> LoginSecrets {
        LoginSecrets {
            state: self.state.clone(),
            nonce: self.nonce.clone().unwrap_or_default(),
            verifier: self.verifier.clone(),
        }
    }
}

fn failed(source: ProviderError) -> ServiceError {
    failed_at(Provider::OpenId, source)
}

fn failed_at(provider: Provider, source: ProviderError) -> ServiceError {
    ServiceError::Provider { provider, source }
}

fn unreachable(url: &str, e: super::PlatformError) -> ServiceError {
    ServiceError::Unreachable {
        origin: Endpoint::new(url).map_or_else(|_| url.to_owned(), |e| e.origin()),
        reason: e.0,
    }
}

/// Discovery, then the page to log in on, with the values that tie the
/// answer to this login.
pub(super) async fn start_openid<S, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    issuer: &Endpoint,
    client_id: &str,
    redirect_uri: &str,
) -> Result<(String, OAuthLogin), ServiceError> {
    let client_id = client_id.trim();
    if client_id.is_empty() {
        return Err(ServiceError::Invalid(text!("error_oauth_no_client_id")));
    }
    if redirect_uri.is_empty() {
        return Err(ServiceError::Invalid(text!("error_oauth_no_redirect_url")));
    }
    let answer = platform
        .transport
        .send(&openid::discovery_request(issuer))
        .await
        .map_err(|e| unreachable(issuer.as_str(), e))?;
    let discovery = openid::read_discovery(issuer, &answer).map_err(failed)?;
    let secrets = LoginSecrets::from_random(&platform.draw()?);
    let url = openid::authorization_url(
        &discovery,
        client_id,
        openid::DEFAULT_SCOPE,
        redirect_uri,
        &secrets,
    );
    Ok((
        url,
        OAuthLogin {
            issuer: Some(discovery.issuer),
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            token_endpoint: discovery.token_endpoint.as_str().to_owned(),
            state: secrets.state,
            nonce: Some(secrets.nonce),
            verifier: secrets.verifier,
        },
    ))
}

/// Nuclia's browser login, as `nuclia auth login` starts it: its public
/// client, its loopback redirect, its `state`; the page opens in a tab.
pub(super) fn start_nuclia<S, E, T>(
    platform: &Platform<'_, S, E, T>,
    endpoint: &Endpoint,
) -> Result<(String, OAuthLogin), ServiceError> {
    // The verifier as for OpenID Connect; the state in the client's own
    // form, and no nonce (Nuclia's login sends none).
    let secrets = LoginSecrets {
        state: nuclia::oauth_state(&platform.draw()?),
        nonce: String::new(),
        verifier: LoginSecrets::from_random(&platform.draw()?).verifier,
    };
    Ok((
        nuclia::oauth_authorization_url(endpoint, &secrets.challenge(), &secrets.state),
        OAuthLogin {
            issuer: None,
            client_id: nuclia::OAUTH_CLIENT_ID.to_owned(),
            redirect_uri: nuclia::OAUTH_REDIRECT.to_owned(),
            token_endpoint: nuclia::oauth_token_endpoint(endpoint),
            state: secrets.state,
            nonce: None,
            verifier: secrets.verifier,
        },
    ))
}

/// The redirect checked, the code exchanged, and who logged in read (the
/// ID token for OpenID Connect, Nuclia's who-am-I for Nuclia); then the
/// login is stored: a new credential, or, logged in again as the same
/// user, the old one renewed under its id so its rules follow. Returns the
/// confirmation.
pub(super) async fn finish<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    provider: Provider,
    endpoint: &Endpoint,
    login: &OAuthLogin,
    redirect: &str,
) -> Result<Text, ServiceError> {
    let now = platform.clock.now;
    let failed = |e| failed_at(provider, e);
    let secrets = login.secrets();
    let code = openid::read_redirect(
        redirect,
        &login.redirect_uri,
        &secrets,
        login.issuer.as_deref(),
    )
    .map_err(failed)?;
    let request = openid::code_request(
        &login.token_endpoint,
        &login.client_id,
        &code,
        &login.redirect_uri,
        &secrets,
    );
    let answer = platform
        .transport
        .send(&request)
        .await
        .map_err(|e| unreachable(&login.token_endpoint, e))?;
    let tokens = openid::read_tokens(&answer).map_err(|refusal| match refusal {
        TokenRefusal::Final(e) | TokenRefusal::Passing(e) => failed(e),
    })?;
    let renewal = Renewal {
        client_id: login.client_id.clone(),
        token_endpoint: login.token_endpoint.clone(),
        failed: None,
        retry_at: None,
    };
    let (mut credential, provider_words) = match (provider, &login.issuer, &login.nonce) {
        (Provider::OpenId, Some(issuer), Some(nonce)) => {
            let id_token = tokens.id_token.as_deref().ok_or_else(|| {
                failed(ProviderError::LoginRefused(text!(
                    "error_oauth_no_id_token"
                )))
            })?;
            let claims =
                openid::read_id_token(id_token, issuer, &login.client_id, Some(nonce), now)
                    .map_err(failed)?;
            let mut credential = Credential::new(
                0,
                Provider::OpenId,
                endpoint.clone(),
                CredentialKind::OpenId {
                    subject: claims.subject.clone(),
                },
                tokens.access.clone(),
            );
            credential.info.account = claims.account;
            credential.info.name = host_of(endpoint);
            (credential, None)
        }
        _ => {
            let mut credential = Credential::new(
                0,
                provider,
                endpoint.clone(),
                CredentialKind::UserToken,
                tokens.access.clone(),
            );
            let identity = match crate::provider::who_am_i(&credential) {
                Ok(call) => super::account::run(platform.transport, provider, call).await?,
                Err(e) => return Err(failed(e)),
            };
            credential.info.account = identity.account;
            (credential, Some(identity.confirmation))
        }
    };
    credential.info.renewal = Some(renewal);
    credential.info.last_verified = Some(now);
    take_tokens(&mut credential, tokens, now);
    let same = state
        .credentials
        .all()
        .iter()
        .find(|c| same_login(c, &credential))
        .map(|c| c.info.id);
    let confirmation = confirmation(&credential, provider_words, now);
    mutate(platform, state, |s| match same {
        Some(id) => {
            credential.info.id = id;
            s.book.rotate(id, &credential.secret);
            let stored = s
                .credentials
                .get_mut(id)
                .ok_or(ServiceError::UnknownCredential(id))?;
            *stored = credential;
            Ok(id)
        }
        None => s
            .credentials
            .add(credential)
            .ok_or_else(|| ServiceError::Invalid(text!("error_account_ids_exhausted"))),
    })
    .await?;
    Ok(confirmation)
}

/// Whether `stored` is an earlier login of the same user as `new`, with
/// the same client: the one a new login renews.
fn same_login(stored: &Credential, new: &Credential) -> bool {
    let (a, b) = (&stored.info, &new.info);
    let client =
        |c: &crate::credential::CredentialInfo| c.renewal.as_ref().map(|r| r.client_id.clone());
    a.provider == b.provider
        && a.endpoint == b.endpoint
        && client(a).is_some()
        && client(a) == client(b)
        && match (&a.kind, &b.kind) {
            (CredentialKind::OpenId { subject: x }, CredentialKind::OpenId { subject: y }) => {
                x == y
            }
            (CredentialKind::UserToken, CredentialKind::UserToken) => a.account == b.account,
            _ => false,
        }
}

/// `Logged in to idp.example.com as alice (alice@example.com)`, or the
/// provider's own words, and what to expect of its token.
fn confirmation(credential: &Credential, provider_words: Option<Text>, now: Timestamp) -> Text {
    let info = &credential.info;
    let who = match provider_words {
        Some(words) => words,
        None => {
            let user = info.account.user.as_deref();
            let email = info.account.email.as_deref().filter(|e| Some(*e) != user);
            match (user, email) {
                (Some(user), Some(email)) => {
                    text!("notice_openid_logged_in_as_email", &info.name, user, email)
                }
                (Some(user), None) => text!("notice_openid_logged_in_as", &info.name, user),
                (None, Some(email)) => {
                    text!("notice_openid_logged_in_email", &info.name, email)
                }
                (None, None) => text!("notice_openid_logged_in", &info.name),
            }
        }
    };
    let renewal = match (info.expires, credential.refresh_token.is_some()) {
        (Some(_), true) => text!("notice_openid_renewed"),
        (Some(e), false) => text!("notice_openid_no_refresh", (e.0 - now.0).max(0) / 60),
        (None, _) => return who,
    };
    text!("notice_joined", who, renewal)
}

/// `idp.example.com`, or `127.0.0.1:4000`: how the login is named.
fn host_of(endpoint: &Endpoint) -> String {
    crate::pattern::parse_url(endpoint.as_str())
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .unwrap_or_else(|| endpoint.as_str().to_owned())
}

/// A token endpoint's answer into the credential: the new access token,
/// the refresh token if it was rotated (RFC 6749 §6: else the old one
/// stays), and the new lifetime.
pub(super) fn take_tokens(credential: &mut Credential, tokens: Tokens, now: Timestamp) {
    credential.secret = tokens.access;
    if let Some(refresh) = tokens.refresh {
        credential.refresh_token = Some(refresh);
    }
    credential.info.created = Some(now);
    credential.info.expires = tokens.expires_in.map(|s| Timestamp(now.0 + s));
    if let Some(renewal) = &mut credential.info.renewal {
        renewal.failed = None;
        renewal.retry_at = None;
    }
}

/// How one refresh went.
enum Refreshed {
    Tokens(Tokens),
    /// The login is over; the reason is shown: the provider's words, or
    /// ours.
    Refused(Arg),
    /// No answer, or a passing failure: try again later.
    Later,
}

/// Refreshes every login that is due, one store write each. Locked, the
/// refresh tokens cannot be read: nothing happens, and the unlock's
/// reconciliation wakes the background again.
pub(super) async fn refresh_due<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
) -> Response {
    let now = platform.clock.now;
    let mut state = match load(platform.store).await {
        Ok(state) => state,
        Err(e) => return super::error_response(&e, &State::default()),
    };
    if state.locked {
        return accounts_response(&state, now, None, None);
    }
    let mut renewed: usize = 0;
    for id in state.credentials.due_refreshes(now) {
        let Some(credential) = state.credentials.get(id).cloned() else {
            continue;
        };
        let outcome = refresh_one(platform, &credential).await;
        let result = mutate(platform, &mut state, |s| apply_refresh(s, id, outcome, now)).await;
        match result {
            Ok(true) => renewed += 1,
            Ok(false) => {}
            Err(e) => return super::error_response(&e, &state),
        }
    }
    let notice = match renewed {
        0 => None,
        1 => Some(text!("notice_refresh_renewed_one")),
        n => Some(text!("notice_refresh_renewed", n)),
    };
    accounts_response(&state, now, notice, None)
}

async fn refresh_one<S, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    credential: &Credential,
) -> Refreshed {
    let (Some(renewal), Some(refresh)) = (&credential.info.renewal, &credential.refresh_token)
    else {
        return Refreshed::Later;
    };
    let client_id = &renewal.client_id;
    let request = openid::refresh_request(&renewal.token_endpoint, client_id, refresh);
    let Ok(answer) = platform.transport.send(&request).await else {
        return Refreshed::Later;
    };
    match openid::read_tokens(&answer) {
        Ok(tokens) => {
            // A refresh may bring a new ID token: it must be about the same
            // user (OpenID Connect Core §12.2).
            let subject = match &credential.info.kind {
                CredentialKind::OpenId { subject } => Some(subject),
                _ => None,
            };
            if let (Some(id_token), Some(subject)) = (tokens.id_token.as_deref(), subject) {
                let issuer = credential.info.endpoint.as_str();
                match openid::read_id_token(id_token, issuer, client_id, None, platform.clock.now) {
                    Ok(claims) if claims.subject == *subject => {}
                    Ok(_) => {
                        return Refreshed::Refused(Arg::Text(text!("error_refresh_other_user")))
                    }
                    Err(e) => return Refreshed::Refused(Arg::Text(e.text())),
                }
            }
            Refreshed::Tokens(tokens)
        }
        Err(TokenRefusal::Final(ProviderError::LoginFailed { reason: Some(why) })) => {
            Refreshed::Refused(Arg::Data(why))
        }
        Err(TokenRefusal::Final(e)) => Refreshed::Refused(Arg::Text(e.text())),
        Err(TokenRefusal::Passing(_)) => Refreshed::Later,
    }
}

/// Writes a refresh's outcome. `Ok(true)`: the token was replaced.
fn apply_refresh(
    state: &mut State,
    id: CredentialId,
    outcome: Refreshed,
    now: Timestamp,
) -> Result<bool, ServiceError> {
    // Logged out while the refresh was on its way: nothing to keep.
    let Some(credential) = state.credentials.get_mut(id) else {
        return Ok(false);
    };
    match outcome {
        Refreshed::Tokens(tokens) => {
            take_tokens(credential, tokens, now);
            credential.info.last_verified = Some(now);
            let secret = credential.secret.clone();
            state.book.rotate(id, &secret);
            Ok(true)
        }
        Refreshed::Refused(why) => {
            let failed = match credential.info.provider {
                Provider::OpenId => text!("error_refresh_refused_by_idp", why),
                other => text!("error_refresh_refused", other.name(), why),
            };
            if let Some(renewal) = &mut credential.info.renewal {
                renewal.failed = Some(failed);
            }
            Ok(false)
        }
        Refreshed::Later => {
            if let Some(renewal) = &mut credential.info.renewal {
                renewal.retry_at = Some(Timestamp(now.0 + RETRY_SECONDS));
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    use super::super::fakes::{run, Fakes, NOW};
    use super::*;
    use crate::header::ValueScheme;
    use crate::message::{BrowserLoginView, Request, SiteView};
    use crate::provider::openid::DEFAULT_SCOPE;
    use crate::provider::site::SuggestedHeader;
    use crate::provider::HttpResponse;
    use crate::text::english;

    const ISSUER: &str = "http://127.0.0.1:4000";
    const REDIRECT: &str = "https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/";
    const SITE: &str = "https://model.example.com/";

    fn discovery(fakes: &Fakes) {
        fakes.transport.answer(
            "GET /.well-known/openid-configuration",
            HttpResponse::new(
                200,
                json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/auth"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "code_challenge_methods_supported": ["S256"],
                })
                .to_string(),
            ),
        );
    }

    fn id_token(nonce: Option<&str>, sub: &str) -> String {
        let mut claims = json!({"iss": ISSUER, "aud": "tokenward", "exp": NOW.0 + 3600,
            "sub": sub, "preferred_username": sub, "email": format!("{sub}@example.test")});
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        format!(
            "e30.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        )
    }

    fn tokens(fakes: &Fakes, access: &str, refresh: Option<&str>, id_token: Option<String>) {
        let mut body = json!({"access_token": access, "token_type": "Bearer", "expires_in": 60});
        if let Some(r) = refresh {
            body["refresh_token"] = json!(r);
        }
        if let Some(t) = id_token {
            body["id_token"] = json!(t);
        }
        fakes
            .transport
            .answer("POST /token", HttpResponse::new(200, body.to_string()));
    }

    fn view(response: Response) -> BrowserLoginView {
        match response {
            Response::BrowserLogin(view) => view,
            other => panic!("{other:?}"),
        }
    }

    fn handle_at(fakes: &Fakes, at: i64, request: Request) -> Response {
        run(super::super::handle(
            &fakes.platform_at(Timestamp(NOW.0 + at)),
            request,
        ))
    }

    /// Starts a browser login; returns the page to log in on and its
    /// query.
    fn start_login(
        fakes: &Fakes,
        provider: Provider,
        endpoint: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> (url::Url, std::collections::HashMap<String, String>) {
        let started = view(fakes.handle(Request::StartBrowserLogin {
            provider,
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
        }));
        assert_eq!(started.state, "pending");
        let page = url::Url::parse(started.approve_url.as_deref().unwrap_or_default())
            .expect("the login page");
        let query = page.query_pairs().into_owned().collect();
        (page, query)
    }

    /// Starts a login; returns its `state` and `nonce`, read from the page.
    fn start(fakes: &Fakes) -> (String, String) {
        discovery(fakes);
        let (page, q) = start_login(fakes, Provider::OpenId, ISSUER, "tokenward", REDIRECT);
        assert_eq!(page.path(), "/auth");
        assert_eq!(q["scope"], DEFAULT_SCOPE);
        assert_eq!(q["redirect_uri"], REDIRECT);
        (q["state"].clone(), q["nonce"].clone())
    }

    fn finish(fakes: &Fakes, redirect: &str) -> BrowserLoginView {
        view(fakes.handle(Request::FinishWebAuthFlow {
            redirect: Some(redirect.to_owned()),
            error: None,
        }))
    }

    fn site(fakes: &Fakes, at: i64) -> SiteView {
        match handle_at(
            fakes,
            at,
            Request::SiteStatus {
                url: SITE.into(),
                tab: None,
            },
        ) {
            Response::Site(view) => view,
            other => panic!("{other:?}"),
        }
    }

    fn installed_bearer(fakes: &Fakes) -> Vec<(u32, String)> {
        fakes
            .engine
            .rules
            .borrow()
            .iter()
            .map(|r| {
                let json = serde_json::to_value(r).expect("rule json");
                let value = json["action"]["requestHeaders"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (r.id, value)
            })
            .collect()
    }

    #[test]
    fn logs_in_refreshes_in_place_and_stops_when_refused() {
        let fakes = Fakes::default();
        let (state, nonce) = start(&fakes);
        tokens(
            &fakes,
            "at-1",
            Some("rt-1"),
            Some(id_token(Some(&nonce), "alice")),
        );
        let done = finish(
            &fakes,
            &format!("{REDIRECT}?code=c0de&state={state}&iss={ISSUER}"),
        );
        assert_eq!(
            done.message.as_ref().map(english).as_deref(),
            Some(
                "Logged in to 127.0.0.1:4000 as alice (alice@example.test). Its token is \
                 renewed before it expires."
            ),
            "{done:?}"
        );
        let sent = fakes.transport.sent.borrow().clone();
        let exchange = sent.last().expect("the code exchange");
        let body = exchange.body.clone().unwrap_or_default();
        assert!(
            body.starts_with("grant_type=authorization_code&code=c0de&"),
            "{body}"
        );
        assert!(body.contains("code_verifier="), "{body}");
        let c = fakes.state().credentials.all()[0].clone();
        assert_eq!(c.secret.expose(), "at-1");
        assert_eq!(c.refresh_token.as_ref().map(|r| r.expose()), Some("rt-1"));
        assert_eq!(c.info.expires, Some(Timestamp(NOW.0 + 60)));
        assert_eq!(c.validity(NOW), crate::credential::Validity::Valid);
        assert!(
            crate::reminder::due(&fakes.state().credentials, &Default::default(), NOW).is_empty()
        );
        let id = c.info.id;
        fakes.handle(Request::UseCredential {
            credential: id,
            pattern: SITE.into(),
            allow_http: false,
            header: SuggestedHeader {
                name: "Authorization".into(),
                scheme: ValueScheme::Bearer,
            },
        });
        // A site rule compiles to more than one browser rule; each must
        // keep its id through a refresh (replaced in place, not re-added).
        let ids: Vec<u32> = installed_bearer(&fakes).iter().map(|(id, _)| *id).collect();
        let bearer = |token: &str| -> Vec<(u32, String)> {
            ids.iter()
                .map(|id| (*id, format!("Bearer {token}")))
                .collect()
        };
        assert!(!ids.is_empty());
        assert_eq!(installed_bearer(&fakes), bearer("at-1"));

        // Not due yet: nothing is sent.
        let before = fakes.transport.sent.borrow().len();
        handle_at(&fakes, 29, Request::RefreshLogins);
        assert_eq!(fakes.transport.sent.borrow().len(), before);

        // Due after half its life: the new token replaces the old in the
        // same rule; the refresh token was not rotated, so it stays.
        tokens(&fakes, "at-2", None, Some(id_token(None, "alice")));
        handle_at(&fakes, 30, Request::RefreshLogins);
        let refresh = fakes
            .transport
            .sent
            .borrow()
            .last()
            .cloned()
            .expect("refresh");
        assert_eq!(
            refresh.body.as_deref(),
            Some("grant_type=refresh_token&refresh_token=rt-1&client_id=tokenward")
        );
        assert_eq!(installed_bearer(&fakes), bearer("at-2"));
        let c = fakes.state().credentials.all()[0].clone();
        assert_eq!(
            (c.info.id, c.info.expires),
            (id, Some(Timestamp(NOW.0 + 90)))
        );
        assert_eq!(c.refresh_token.as_ref().map(|r| r.expose()), Some("rt-1"));
        assert_eq!(
            fakes.state().credentials.next_refresh(),
            Some(Timestamp(NOW.0 + 60))
        );

        // No answer: tried again 30 s later, the rule untouched meanwhile.
        *fakes.transport.unreachable.borrow_mut() = true;
        handle_at(&fakes, 60, Request::RefreshLogins);
        *fakes.transport.unreachable.borrow_mut() = false;
        assert_eq!(
            fakes.state().credentials.next_refresh(),
            Some(Timestamp(NOW.0 + 90))
        );
        assert_eq!(installed_bearer(&fakes), bearer("at-2"));

        // Refused: the rule stops at once, and the site says why.
        fakes.transport.answer(
            "POST /token",
            HttpResponse::new(
                400,
                r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
            ),
        );
        handle_at(&fakes, 75, Request::RefreshLogins);
        assert_eq!(
            installed_bearer(&fakes),
            bearer("at-2"),
            "not due before the retry"
        );
        handle_at(&fakes, 90, Request::RefreshLogins);
        assert!(installed_bearer(&fakes).is_empty());
        let problem = site(&fakes, 90).rule.expect("the site's rule").headers[0]
            .credential
            .as_ref()
            .and_then(|c| c.problem.as_ref().map(english))
            .unwrap_or_default();
        assert_eq!(
            problem,
            "OpenID Connect: alice (127.0.0.1:4000) could not be refreshed (The identity \
             provider refused: invalid_grant: grant request is invalid), so this header is not \
             sent. Log in again."
        );
        assert_eq!(fakes.state().credentials.next_refresh(), None);

        // Logging in again as alice renews the same credential: its rule
        // comes back with the new token.
        fakes.handle(Request::CancelBrowserLogin);
        let (state, nonce) = start(&fakes);
        tokens(
            &fakes,
            "at-3",
            Some("rt-3"),
            Some(id_token(Some(&nonce), "alice")),
        );
        assert_eq!(
            finish(&fakes, &format!("{REDIRECT}?code=c2&state={state}")).state,
            "done"
        );
        assert_eq!(fakes.state().credentials.all().len(), 1);
        assert_eq!(installed_bearer(&fakes), bearer("at-3"));
    }

    #[test]
    fn an_answer_for_another_login_is_refused_and_nothing_is_kept() {
        let fakes = Fakes::default();
        let (_, nonce) = start(&fakes);
        tokens(
            &fakes,
            "at-1",
            Some("rt-1"),
            Some(id_token(Some(&nonce), "alice")),
        );
        let sent = fakes.transport.sent.borrow().len();
        let refused = finish(&fakes, &format!("{REDIRECT}?code=stolen&state=forged"));
        assert_eq!(refused.state, "failed");
        assert!(refused
            .message
            .as_ref()
            .map(english)
            .unwrap_or_default()
            .contains("state differs"));
        assert_eq!(
            fakes.transport.sent.borrow().len(),
            sent,
            "no code exchanged"
        );
        assert!(fakes.state().credentials.all().is_empty());
        // A repeated report changes nothing.
        assert_eq!(finish(&fakes, REDIRECT).state, "failed");

        // The ID token of another login (its nonce) is refused too.
        fakes.handle(Request::CancelBrowserLogin);
        let (state, _) = start(&fakes);
        tokens(
            &fakes,
            "at-1",
            Some("rt-1"),
            Some(id_token(Some("other"), "alice")),
        );
        let refused = finish(&fakes, &format!("{REDIRECT}?code=c&state={state}"));
        let message = refused.message.as_ref().map(english).unwrap_or_default();
        assert!(message.contains("nonce"), "{message}");
        assert!(fakes.state().credentials.all().is_empty());
    }

    #[test]
    fn a_closed_window_or_a_provider_error_ends_the_login() {
        let fakes = Fakes::default();
        start(&fakes);
        let closed = view(fakes.handle(Request::FinishWebAuthFlow {
            redirect: None,
            error: Some("The user did not approve access.".into()),
        }));
        assert_eq!(closed.state, "failed");
        assert_eq!(
            closed.message.as_ref().map(english).as_deref(),
            Some(
                "The login window closed before the login finished (The user did not approve \
                 access.); nothing was changed. Start again to log in."
            )
        );
        fakes.handle(Request::CancelBrowserLogin);
        let (state, _) = start(&fakes);
        let denied = finish(
            &fakes,
            &format!(
                "{REDIRECT}?error=access_denied&error_description=denied+by+policy&state={state}"
            ),
        );
        assert_eq!(
            denied.message.as_ref().map(english).as_deref(),
            Some("OpenID Connect: The login did not finish: access_denied: denied by policy")
        );
    }

    /// `nuclia auth login`: the client's page opened in a tab, the loopback
    /// redirect it lands on handed over, the code exchanged, the user read
    /// with Nuclia's who-am-I; then the 30-minute token is refreshed with
    /// the rotated refresh token, and a second login of the same user
    /// renews the same credential.
    #[test]
    fn nuclia_logs_in_with_the_browser_and_stays_fresh() {
        const NUCLIA: &str = "https://accounts.progress.cloud";
        let fakes = Fakes::default();
        let t = &fakes.transport;
        let start = || start_login(&fakes, Provider::Nuclia, NUCLIA, "", "");
        // Where the login tab lands: the client's loopback redirect.
        let landed = |code: &str, state: &str| {
            format!(
                "{}?code={code}&state={}&scope=openid",
                nuclia::OAUTH_REDIRECT,
                url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
            )
        };
        let (page, q) = start();
        assert!(
            t.sent.borrow().is_empty(),
            "nothing sent before the user logs in"
        );
        assert_eq!(
            page.origin().ascii_serialization(),
            "https://oauth.progress.cloud"
        );
        assert_eq!(q["redirect_uri"], nuclia::OAUTH_REDIRECT);
        assert_eq!(q["client_id"], nuclia::OAUTH_CLIENT_ID);
        assert!(
            !q.contains_key("nonce") && !q.contains_key("prompt"),
            "{q:?}"
        );
        let answer_tokens = |access: &str, refresh: &str| {
            t.answer(
                "POST /oauth2/token",
                HttpResponse::new(
                    200,
                    json!({"access_token": access, "refresh_token": refresh, "expires_in": 1800})
                        .to_string(),
                ),
            );
        };
        answer_tokens("ory_at_1", "ory_rt_1");
        t.answer(
            "GET /api/v1/user",
            HttpResponse::new(
                200,
                r#"{"name":"Alice","email":"alice@example.com","type":"USER"}"#,
            ),
        );
        t.answer(
            "GET /api/v1/accounts",
            HttpResponse::new(200, r#"[{"id":"a1","title":"acme"}]"#),
        );
        let done = finish(&fakes, &landed("ory_ac_1", &q["state"]));
        assert_eq!(
            done.message.as_ref().map(english).as_deref(),
            Some("User: Alice <alice@example.com>. Its token is renewed before it expires."),
            "{done:?}"
        );
        let sent = t.sent.borrow().clone();
        assert_eq!(sent[0].url, "https://oauth.progress.cloud/oauth2/token");
        assert_eq!(
            sent[1].header_value("Authorization"),
            Some("Bearer ory_at_1")
        );
        let c = fakes.state().credentials.all()[0].clone();
        assert_eq!(
            (c.info.provider, &c.info.kind),
            (Provider::Nuclia, &CredentialKind::UserToken)
        );
        assert_eq!(c.info.expires, Some(Timestamp(NOW.0 + 1800)));
        assert_eq!(
            fakes.state().credentials.next_refresh(),
            Some(Timestamp(NOW.0 + 1350))
        );

        answer_tokens("ory_at_2", "ory_rt_2");
        handle_at(&fakes, 1350, Request::RefreshLogins);
        let refresh = t.sent.borrow().last().cloned().expect("refresh");
        assert_eq!(refresh.url, "https://oauth.progress.cloud/oauth2/token");
        assert_eq!(
            refresh.body.as_deref(),
            Some(
                "grant_type=refresh_token&refresh_token=ory_rt_1&client_id=43f54e81-932a-4b45-9bba-acbf4e2b5ee6"
            )
        );
        let c = fakes.state().credentials.all()[0].clone();
        assert_eq!(c.secret.expose(), "ory_at_2");
        assert_eq!(
            c.refresh_token.as_ref().map(|r| r.expose()),
            Some("ory_rt_2")
        );

        // Logging in again as Alice renews the same credential.
        fakes.handle(Request::CancelBrowserLogin);
        let (_, q) = start();
        answer_tokens("ory_at_3", "ory_rt_3");
        assert_eq!(
            finish(&fakes, &landed("ory_ac_2", &q["state"])).state,
            "done"
        );
        let all = fakes.state().credentials.all().to_vec();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].secret.expose(), "ory_at_3");
    }

    #[test]
    fn start_needs_a_client_id_and_a_discoverable_issuer() {
        let fakes = Fakes::default();
        let start = |client: &str| {
            fakes.handle(Request::StartBrowserLogin {
                provider: Provider::OpenId,
                endpoint: ISSUER.into(),
                client_id: client.into(),
                redirect_uri: REDIRECT.into(),
            })
        };
        assert!(
            matches!(start(" "), Response::Error { message } if message == text!("error_oauth_no_client_id"))
        );
        assert!(
            matches!(start("tokenward"), Response::Error { message } if english(&message) == "OpenID Connect: OpenID configuration (.well-known/openid-configuration) not found."),
            "no discovery document: 404"
        );
    }
}
