//! Logging in with the browser, as the providers' CLIs do:
//! - BentoCloud (`bentoml cloud login` without `--api-token`): a code from
//!   the provider, a tab where the user approves it, then polls until the
//!   provider hands over a token;
//! - Jina AI (`jina-auth login -f`): an NDJSON stream whose first event is
//!   the login page to open and whose `authorize` event, once the user
//!   logged in, is exchanged for a token (`user.identity.grant.auto`).
//!
//! Both end with the normal login with that token.
//!
//! The OAuth logins ([`super::oauth`]: OpenID Connect, Nuclia) keep their
//! record here too, with the values that tie the provider's answer to the
//! login, but nothing is polled at the provider: the background reports
//! where the browser lands (`identity.launchWebAuthFlow`'s end, or
//! Nuclia's login tab at its loopback redirect) to
//! [`finish_web_auth_flow`]. Polling only watches their deadline.
//!
//! Unlike the CLI, which polls forever, it gives up after
//! [`LOGIN_WINDOW_SECONDS`] with a clear message, and can be cancelled. The
//! pending login is a record in `storage.session` (in memory, never on
//! disk: the code is as good as a token once approved), not a loop: the
//! background polls every second while it runs, and an alarm resumes the
//! polling if the service worker was stopped in between.
//!
//! Jina's stream is a `fetch` only the worker that opened it can read. If
//! that worker is stopped, the provider's one-time login is lost with it:
//! the next poll finds the stream gone and says so, rather than waiting out
//! the deadline.

use serde::{Deserialize, Serialize};

use super::oauth::{self, OAuthLogin};
use super::{
    account, error_response, redacted, Platform, RuleEngine, ServiceError, StateStore, StreamRead,
    Transport,
};
use crate::credential::{Endpoint, Timestamp};
use crate::message::{BrowserLoginView, LoginDraft, Response};
use crate::provider::jina::{self, LoginEvent};
use crate::provider::{bentocloud, AnswerProblem, Provider, ProviderError};
use crate::store::State;
use crate::text;
use crate::text::{Localize, Text};

/// How long the user has to approve: generous for a person, bounded for a
/// background that would otherwise poll forever.
pub(crate) const LOGIN_WINDOW_SECONDS: i64 = 5 * 60;

/// The `storage.session` record of a browser login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PendingLogin {
    pub(crate) provider: Provider,
    pub(crate) endpoint: String,
    /// Cleared once the login is over.
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// The id of the stream the provider will authorize on (Jina); cleared
    /// once the login is over.
    #[serde(default)]
    pub(crate) stream: Option<String>,
    /// An OAuth login's state, nonce and PKCE verifier; cleared once the
    /// login is over.
    #[serde(default)]
    pub(crate) oauth: Option<OAuthLogin>,
    pub(crate) approve_url: String,
    pub(crate) deadline: Timestamp,
    /// `pending`, `done` or `failed`.
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) message: Option<Text>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    /// Ends the login with `outcome` (`done` or `failed`): what could still
    /// be exchanged for a token (the code, the stream, the OAuth values) is
    /// dropped.
    fn end(&mut self, transport: &impl Transport, outcome: &str, message: Text) {
        self.code = None;
        self.oauth = None;
        if let Some(id) = self.stream.take() {
            transport.close_stream(&id);
        }
        self.state = outcome.to_owned();
        self.message = Some(message);
    }

    fn view(&self) -> BrowserLoginView {
        BrowserLoginView {
            provider: Some(self.provider),
            state: self.state.clone(),
            approve_url: (self.state == "pending").then(|| self.approve_url.clone()),
            deadline: Some(self.deadline),
            message: self.message.clone(),
        }
    }
}

fn none_view() -> Response {
    Response::BrowserLogin(BrowserLoginView {
        provider: None,
        state: "none".to_owned(),
        approve_url: None,
        deadline: None,
        message: None,
    })
}

async fn read<S: StateStore>(store: &S) -> Result<Option<PendingLogin>, ServiceError> {
    let stored = store.pending_login().await.map_err(ServiceError::Load)?;
    // A record this version cannot read is dropped, not trusted.
    Ok(stored.and_then(|v| crate::json::read(&v).ok()))
}

/// Keeps the login's new state and answers with it.
async fn settle<S: StateStore>(store: &S, state: &State, login: &PendingLogin) -> Response {
    match write(store, Some(login)).await {
        Ok(()) => Response::BrowserLogin(login.view()),
        Err(e) => error_response(&e, state),
    }
}

async fn write<S: StateStore>(store: &S, login: Option<&PendingLogin>) -> Result<(), ServiceError> {
    let value = login.and_then(|l| serde_json::to_value(l).ok());
    store
        .set_pending_login(value.as_ref())
        .await
        .map_err(ServiceError::SessionKey)
}

/// Asks the provider for a code (BentoCloud) or opens the login stream
/// (Jina), and records the pending login. The answer carries the page to
/// open.
pub(super) async fn start<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    provider: Provider,
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
) -> Response {
    let result = async {
        let endpoint = Endpoint::parse(provider, endpoint)?;
        let mut oauth_login = None;
        let unreachable = |e: super::PlatformError| ServiceError::Unreachable {
            origin: endpoint.origin(),
            reason: e.0,
        };
        let (approve_url, code, stream) = match provider {
            Provider::BentoCloud => {
                let request = bentocloud::login_code_request(&endpoint);
                let answer = platform
                    .transport
                    .send(&request)
                    .await
                    .map_err(unreachable)?;
                let code = bentocloud::read_login_code(&answer)
                    .map_err(|source| ServiceError::Provider { provider, source })?;
                (
                    bentocloud::login_approval_url(&endpoint, &code),
                    Some(code),
                    None,
                )
            }
            Provider::Jina => {
                let id = stream_id(platform)?;
                let page = open_jina_stream(platform, &endpoint, &id).await;
                if page.is_err() {
                    platform.transport.close_stream(&id);
                }
                (page?, None, Some(id))
            }
            Provider::Nuclia => {
                let (page, login) = oauth::start_nuclia(platform, &endpoint)?;
                oauth_login = Some(login);
                (page, None, None)
            }
            Provider::OpenId => {
                let (page, login) =
                    oauth::start_openid(platform, &endpoint, client_id, redirect_uri).await?;
                oauth_login = Some(login);
                (page, None, None)
            }
            _ => {
                return Err(ServiceError::Invalid(text!(
                    "error_browser_login_unsupported",
                    provider.name()
                )))
            }
        };
        let minutes = LOGIN_WINDOW_SECONDS / 60;
        let waiting = match (code.is_some(), provider) {
            (_, Provider::OpenId) => text!("notice_browser_login_finish_in_window", minutes),
            (true, _) => text!(
                "notice_browser_login_approve_in_tab",
                provider.name(),
                minutes
            ),
            (false, _) => text!(
                "notice_browser_login_finish_in_tab",
                provider.name(),
                minutes
            ),
        };
        let login = PendingLogin {
            provider,
            endpoint: endpoint.as_str().to_owned(),
            approve_url,
            code,
            stream,
            oauth: oauth_login,
            deadline: Timestamp(platform.clock.now.0 + LOGIN_WINDOW_SECONDS),
            state: "pending".to_owned(),
            message: Some(waiting),
        };
        write(platform.store, Some(&login)).await?;
        Ok(login)
    }
    .await;
    match result {
        Ok(login) => Response::BrowserLogin(login.view()),
        Err(e) => error_response(&e, state),
    }
}

/// A stream id no other login shares.
fn stream_id<S, E, T>(platform: &Platform<'_, S, E, T>) -> Result<String, ServiceError> {
    let bytes: [u8; 12] = platform.draw()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Opens `user.identity.proxiedAuthorize` and reads up to its `redirect`
/// event: the page where the user logs in.
async fn open_jina_stream<S, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    endpoint: &Endpoint,
    id: &str,
) -> Result<String, ServiceError> {
    let provider = Provider::Jina;
    let failed = |source| ServiceError::Provider { provider, source };
    let request = jina::login_stream_request(endpoint);
    let head = platform
        .transport
        .open_stream(id, &request)
        .await
        .map_err(|e| ServiceError::Unreachable {
            origin: endpoint.origin(),
            reason: e.0,
        })?;
    jina::read_login_stream_head(&head).map_err(failed)?;
    // The provider sends the page first; a few reads bound the wait for a
    // provider that sends nothing.
    for _ in 0..3 {
        let (lines, ended) = match platform.transport.read_stream(id, true).await {
            StreamRead::Lines(lines) => (lines, false),
            StreamRead::Ended(lines) => (lines, true),
            StreamRead::Gone => break,
        };
        // A wait that brought nothing: the provider is silent.
        if lines.is_empty() && !ended {
            break;
        }
        for line in &lines {
            match jina::read_login_event(line).map_err(failed)? {
                Some(LoginEvent::Redirect(url)) => return Ok(url),
                Some(LoginEvent::Authorize(_)) => {
                    return Err(failed(ProviderError::Malformed(
                        AnswerProblem::AuthorizedBeforePage,
                    )))
                }
                None => {}
            }
        }
        if ended {
            break;
        }
    }
    Err(failed(ProviderError::LoginRefused(text!(
        "error_login_no_page"
    ))))
}

/// One poll: gives up past the deadline, finishes the login once the
/// provider hands over the token, and otherwise leaves the record pending.
/// A failed request (network) is not the end: the next poll tries again.
pub(super) async fn poll<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
) -> Response {
    let mut login = match read(platform.store).await {
        Ok(Some(login)) => login,
        Ok(None) => return none_view(),
        Err(e) => return error_response(&e, &state),
    };
    if login.state != "pending" {
        return Response::BrowserLogin(login.view());
    }
    let provider = login.provider;
    let Ok(endpoint) = Endpoint::parse(provider, &login.endpoint) else {
        return none_view();
    };
    let outcome = if platform.clock.now >= login.deadline {
        Some(Err(ServiceError::Invalid(too_late(provider))))
    } else if let Some(code) = login.code.clone() {
        poll_bentocloud(platform, &endpoint, &code).await
    } else if login.stream.is_some() {
        poll_jina_stream(platform, &login, &endpoint).await
    } else {
        // An OAuth login: where the browser lands finishes it.
        None
    };
    match outcome {
        // Still waiting: nothing to write.
        None => return Response::BrowserLogin(login.view()),
        Some(Ok(token)) => {
            let (outcome, message) = log_in(platform, &state, &login, token).await;
            login.end(platform.transport, outcome, message);
        }
        Some(Err(e)) => login.end(platform.transport, "failed", redacted(e.text(), &state)),
    }
    settle(platform.store, &state, &login).await
}

/// Asks BentoCloud whether the user approved: `None` while pending, or when
/// no answer came (the next poll tries again).
async fn poll_bentocloud<S, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    endpoint: &Endpoint,
    code: &str,
) -> Option<Result<crate::header::Secret, ServiceError>> {
    let request = bentocloud::login_poll_request(endpoint, code);
    let answer = platform.transport.send(&request).await.ok()?;
    bentocloud::read_login_poll(&answer)
        .map_err(|source| ServiceError::Provider {
            provider: Provider::BentoCloud,
            source,
        })
        .transpose()
}

fn too_late(provider: Provider) -> Text {
    text!(
        "error_browser_login_too_late",
        provider.name(),
        LOGIN_WINDOW_SECONDS / 60
    )
}

/// The normal login with the token the browser login produced: who-am-I,
/// then the credential stored.
async fn log_in<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    login: &PendingLogin,
    token: crate::header::Secret,
) -> (&'static str, Text) {
    let draft = LoginDraft {
        provider: login.provider,
        kind: String::new(),
        endpoint: login.endpoint.clone(),
        secret: token.expose().to_owned(),
        name: String::new(),
    };
    match account::login(platform, state.clone(), draft).await {
        Response::Accounts(view) => (
            "done",
            view.notice.unwrap_or_else(|| text!("notice_logged_in")),
        ),
        Response::Error { message } => ("failed", message),
        _ => ("failed", text!("error_provider_login_failed")),
    }
}

/// Reads what Jina's login stream sent since the last poll. `None` while
/// the user is still logging in; the token, exchanged for the `authorize`
/// event's data, once they did; an error when the stream failed, ended, or
/// is gone with a stopped worker.
async fn poll_jina_stream<S, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    login: &PendingLogin,
    endpoint: &Endpoint,
) -> Option<Result<crate::header::Secret, ServiceError>> {
    let provider = login.provider;
    let failed = |source| ServiceError::Provider { provider, source };
    let id = login.stream.as_deref()?;
    let (lines, ended) = match platform.transport.read_stream(id, false).await {
        StreamRead::Lines(lines) => (lines, false),
        StreamRead::Ended(lines) => (lines, true),
        StreamRead::Gone => {
            return Some(Err(ServiceError::Invalid(text!(
                "error_browser_login_interrupted",
                provider.name()
            ))))
        }
    };
    for line in &lines {
        match jina::read_login_event(line) {
            Ok(Some(LoginEvent::Authorize(data))) => {
                let answer = match platform
                    .transport
                    .send(&jina::grant_request(endpoint, &data))
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => {
                        return Some(Err(ServiceError::Unreachable {
                            origin: endpoint.origin(),
                            reason: e.0,
                        }))
                    }
                };
                return Some(jina::read_grant(&answer).map_err(failed));
            }
            Ok(Some(LoginEvent::Redirect(_)) | None) => {}
            Err(e) => return Some(Err(failed(e))),
        }
    }
    ended.then(|| {
        Err(failed(ProviderError::LoginRefused(text!(
            "error_login_closed_early"
        ))))
    })
}

/// Where the browser landed, for the pending OAuth login: the provider's
/// redirect is checked and exchanged; no redirect (the user closed the
/// login window, or the browser gave up) ends the login.
/// A report for no pending login (a stale or repeated one) changes nothing.
pub(super) async fn finish_web_auth_flow<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    redirect: Option<String>,
    error: Option<String>,
) -> Response {
    let mut login = match read(platform.store).await {
        Ok(Some(login)) => login,
        Ok(None) => return none_view(),
        Err(e) => return error_response(&e, &state),
    };
    let Some(pending) = login.oauth.take().filter(|_| login.state == "pending") else {
        return Response::BrowserLogin(login.view());
    };
    let provider = login.provider;
    let outcome = match (redirect, Endpoint::parse(provider, &login.endpoint)) {
        (Some(redirect), Ok(endpoint)) => {
            oauth::finish(
                platform, &mut state, provider, &endpoint, &pending, &redirect,
            )
            .await
        }
        (Some(_), Err(e)) => Err(e.into()),
        (None, _) => Err(ServiceError::Invalid(match error {
            Some(e) => text!(
                "error_browser_login_window_closed_because",
                e.chars().take(200).collect::<String>()
            ),
            None => text!("error_browser_login_window_closed"),
        })),
    };
    match outcome {
        Ok(confirmation) => login.end(platform.transport, "done", confirmation),
        Err(e) => login.end(platform.transport, "failed", redacted(e.text(), &state)),
    }
    settle(platform.store, &state, &login).await
}

pub(super) async fn status<S: StateStore>(store: &S, state: &State) -> Response {
    match read(store).await {
        Ok(Some(login)) => Response::BrowserLogin(login.view()),
        Ok(None) => none_view(),
        Err(e) => error_response(&e, state),
    }
}

/// Cancels a pending login, or dismisses a finished one.
pub(super) async fn cancel<S: StateStore, E, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
) -> Response {
    if let Ok(Some(PendingLogin {
        stream: Some(id), ..
    })) = read(platform.store).await
    {
        platform.transport.close_stream(&id);
    }
    match write(platform.store, None).await {
        Ok(()) => none_view(),
        Err(e) => error_response(&e, state),
    }
}

#[cfg(test)]
mod tests {
    use super::super::account::tests::{bento, TOKEN};
    use super::super::fakes::{Fakes, NOW};
    use super::*;
    use crate::message::Request;
    use crate::provider::HttpResponse;
    use crate::text::english;

    fn said(message: &Option<Text>) -> String {
        message.as_ref().map(english).unwrap_or_default()
    }

    fn view(response: Response) -> BrowserLoginView {
        match response {
            Response::BrowserLogin(view) => view,
            other => panic!("{other:?}"),
        }
    }

    fn start_request() -> Request {
        Request::StartBrowserLogin {
            provider: Provider::BentoCloud,
            endpoint: "http://127.0.0.1:9000".into(),
            client_id: String::new(),
            redirect_uri: String::new(),
        }
    }

    #[test]
    fn approved_in_the_browser_logs_in() {
        let fakes = bento();
        let t = &fakes.transport;
        t.answer(
            "GET /api/v1/auth/code",
            HttpResponse::new(200, r#"{"code":"c0de"}"#),
        );
        t.answer(
            "GET /api/v1/auth/token",
            HttpResponse::new(404, r#"{"error":"authorization pending"}"#),
        );
        let started = view(fakes.handle(start_request()));
        assert_eq!(started.state, "pending");
        assert_eq!(
            started.approve_url.as_deref(),
            Some("http://127.0.0.1:9000/api_tokens?code=c0de")
        );
        assert_eq!(started.deadline, Some(Timestamp(NOW.0 + 300)));
        assert_eq!(
            t.sent.borrow()[0].header_value("X-YATAI-API-TOKEN"),
            None,
            "no token yet"
        );
        // Pending: nothing is kept, and polling again is harmless.
        assert_eq!(
            view(fakes.handle(Request::PollBrowserLogin)).state,
            "pending"
        );
        assert!(fakes.state().credentials.all().is_empty());

        t.answer(
            "GET /api/v1/auth/token",
            HttpResponse::new(200, format!(r#"{{"token":"{TOKEN}"}}"#)),
        );
        let done = view(fakes.handle(Request::PollBrowserLogin));
        assert_eq!(done.state, "done");
        assert_eq!(
            done.message.as_ref().map(english).as_deref(),
            Some("Logged in as alice@example.com at acme organization.")
        );
        assert_eq!(fakes.state().credentials.all()[0].secret.expose(), TOKEN);
        // Over: no more polls reach the provider, and the code is gone.
        let sent = t.sent.borrow().len();
        assert_eq!(view(fakes.handle(Request::PollBrowserLogin)).state, "done");
        assert_eq!(t.sent.borrow().len(), sent);
        let record = fakes
            .store
            .pending_login
            .borrow()
            .clone()
            .unwrap_or_default();
        assert!(
            record.get("code").is_none_or(serde_json::Value::is_null),
            "{record}"
        );
    }

    #[test]
    fn no_approval_in_time_gives_up_and_cancel_forgets() {
        let fakes = bento();
        let t = &fakes.transport;
        t.answer(
            "GET /api/v1/auth/code",
            HttpResponse::new(200, r#"{"code":"c0de"}"#),
        );
        t.answer("GET /api/v1/auth/token", HttpResponse::new(404, "{}"));
        view(fakes.handle(start_request()));
        let late = fakes.platform_at(Timestamp(NOW.0 + LOGIN_WINDOW_SECONDS));
        let failed = view(super::super::fakes::run(super::super::handle(
            &late,
            Request::PollBrowserLogin,
        )));
        assert_eq!(failed.state, "failed");
        assert!(
            said(&failed.message).contains("within 5 minutes"),
            "{failed:?}"
        );
        assert_eq!(
            view(fakes.handle(Request::CancelBrowserLogin)).state,
            "none"
        );
        assert_eq!(
            view(fakes.handle(Request::BrowserLoginStatus)).state,
            "none"
        );
        assert!(fakes.state().credentials.all().is_empty());
    }

    #[test]
    fn a_bad_code_or_another_provider_is_refused() {
        let fakes = bento();
        fakes.transport.answer(
            "GET /api/v1/auth/code",
            HttpResponse::new(200, r#"{"code":"a/../b"}"#),
        );
        assert!(matches!(
            fakes.handle(start_request()),
            Response::Error { .. }
        ));
        assert!(matches!(
            fakes.handle(Request::StartBrowserLogin {
                provider: Provider::HuggingFace,
                endpoint: String::new(),
                client_id: String::new(),
                redirect_uri: String::new(),
            }),
            Response::Error { .. }
        ));
        assert!(fakes.store.pending_login.borrow().is_none());
    }

    const PAT: &str = "jina_pat_browser_0123456789";
    const PAGE: &str =
        r#"{"event":"redirect","data":{"redirectTo":"http://127.0.0.1:9100/login?state=s1"}}"#;
    const AUTHORIZED: &str = r#"{"event":"authorize","data":{"code":"c0de","state":"s1"}}"#;

    /// A Jina stand-in: the stream's first line is the login page; whoami
    /// and the grant answer.
    fn jina() -> Fakes {
        let fakes = Fakes::default();
        let t = &fakes.transport;
        t.answer(
            "GET /v2/rpc/user.identity.proxiedAuthorize",
            HttpResponse::new(200, PAGE),
        );
        t.answer(
            "POST /v2/rpc/user.identity.grant.auto",
            HttpResponse::new(
                200,
                format!(r#"{{"data":{{"token":"{PAT}","user":{{"name":"alice-liddell","nickname":"alice"}}}}}}"#),
            ),
        );
        t.answer(
            "POST /v2/rpc/user.identity.whoami",
            HttpResponse::new(
                200,
                r#"{"code":200,"status":20000,"data":{"name":"alice-liddell","nickname":"alice"}}"#,
            ),
        );
        fakes
    }

    fn start_jina(fakes: &Fakes) -> BrowserLoginView {
        view(fakes.handle(Request::StartBrowserLogin {
            provider: Provider::Jina,
            endpoint: "http://127.0.0.1:9100".into(),
            client_id: String::new(),
            redirect_uri: String::new(),
        }))
    }

    #[test]
    fn jina_logs_in_through_its_stream() {
        let fakes = jina();
        let t = &fakes.transport;
        let started = start_jina(&fakes);
        assert_eq!(started.state, "pending", "{started:?}");
        assert_eq!(
            started.approve_url.as_deref(),
            Some("http://127.0.0.1:9100/login?state=s1")
        );
        assert_eq!(t.open_streams().len(), 1);
        // Nothing yet: pending, and nothing kept.
        assert_eq!(
            view(fakes.handle(Request::PollBrowserLogin)).state,
            "pending"
        );
        assert!(fakes.state().credentials.all().is_empty());

        t.stream_lines(&["", AUTHORIZED], false);
        let done = view(fakes.handle(Request::PollBrowserLogin));
        assert_eq!(done.state, "done", "{done:?}");
        assert_eq!(
            done.message.as_ref().map(english).as_deref(),
            Some("Logged in to Jina AI as alice (username: alice-liddell).")
        );
        let grant = t
            .sent
            .borrow()
            .iter()
            .find(|r| r.url.ends_with("user.identity.grant.auto"))
            .and_then(|r| r.body.clone())
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&grant).ok(),
            Some(serde_json::json!({"code": "c0de", "state": "s1"})),
            "the authorize event's data, verbatim"
        );
        assert_eq!(fakes.state().credentials.all()[0].secret.expose(), PAT);
        assert!(
            t.open_streams().is_empty(),
            "the stream is closed once over"
        );
        let record = fakes
            .store
            .pending_login
            .borrow()
            .clone()
            .unwrap_or_default();
        assert!(
            record.get("stream").is_none_or(serde_json::Value::is_null),
            "{record}"
        );
    }

    #[test]
    fn a_stopped_worker_ends_the_jina_login_with_a_clear_message() {
        let fakes = jina();
        start_jina(&fakes);
        fakes.transport.stop_worker();
        let failed = view(fakes.handle(Request::PollBrowserLogin));
        assert_eq!(failed.state, "failed");
        let message = said(&failed.message);
        assert!(message.contains("interrupted"), "{message}");
        assert!(fakes.state().credentials.all().is_empty());
    }

    #[test]
    fn jina_errors_timeouts_and_cancel() {
        // An error event, in the provider's words.
        let fakes = jina();
        start_jina(&fakes);
        fakes
            .transport
            .stream_lines(&[r#"{"event":"error","data":"access denied"}"#], true);
        let failed = view(fakes.handle(Request::PollBrowserLogin));
        assert_eq!(failed.state, "failed");
        assert_eq!(
            failed.message.as_ref().map(english).as_deref(),
            Some("Jina AI: The login did not finish: access denied")
        );

        // The stream ends without an authorization.
        let fakes = jina();
        start_jina(&fakes);
        fakes.transport.stream_lines(&[], true);
        assert_eq!(
            view(fakes.handle(Request::PollBrowserLogin)).state,
            "failed"
        );

        // A refused grant keeps nothing.
        let fakes = jina();
        fakes.transport.answer(
            "POST /v2/rpc/user.identity.grant.auto",
            HttpResponse::new(
                401,
                r#"{"status":40102,"message":"code expired","data":{}}"#,
            ),
        );
        start_jina(&fakes);
        fakes.transport.stream_lines(&[AUTHORIZED], false);
        let failed = view(fakes.handle(Request::PollBrowserLogin));
        assert_eq!(failed.state, "failed");
        assert!(fakes.state().credentials.all().is_empty());

        // Past the deadline, even with the stream open.
        let fakes = jina();
        start_jina(&fakes);
        let late = fakes.platform_at(Timestamp(NOW.0 + LOGIN_WINDOW_SECONDS));
        let failed = view(super::super::fakes::run(super::super::handle(
            &late,
            Request::PollBrowserLogin,
        )));
        assert!(said(&failed.message).contains("within 5 minutes"));
        assert!(fakes.transport.open_streams().is_empty());

        // Cancel closes the stream; a late authorization is never granted.
        let fakes = jina();
        start_jina(&fakes);
        assert_eq!(
            view(fakes.handle(Request::CancelBrowserLogin)).state,
            "none"
        );
        assert!(fakes.transport.open_streams().is_empty());
        fakes.transport.stream_lines(&[AUTHORIZED], false);
        assert_eq!(view(fakes.handle(Request::PollBrowserLogin)).state, "none");
        assert!(!fakes
            .transport
            .sent
            .borrow()
            .iter()
            .any(|r| r.url.ends_with("grant.auto")));
    }

    #[test]
    fn a_jina_stream_without_a_page_or_with_a_hostile_one_is_refused() {
        for first in [
            r#"{"event":"redirect","data":{"redirectTo":"javascript:alert(1)"}}"#,
            AUTHORIZED,
            r#"{"event":"error","data":"maintenance"}"#,
        ] {
            let fakes = jina();
            fakes.transport.answer(
                "GET /v2/rpc/user.identity.proxiedAuthorize",
                HttpResponse::new(200, first),
            );
            assert!(
                matches!(
                    fakes.handle(Request::StartBrowserLogin {
                        provider: Provider::Jina,
                        endpoint: "http://127.0.0.1:9100".into(),
                        client_id: String::new(),
                        redirect_uri: String::new(),
                    }),
                    Response::Error { .. }
                ),
                "{first}"
            );
            assert!(fakes.transport.open_streams().is_empty(), "{first}");
            assert!(fakes.store.pending_login.borrow().is_none(), "{first}");
        }
        // Only the page, then silence: refused after a bounded wait.
        let fakes = jina();
        fakes.transport.answer(
            "GET /v2/rpc/user.identity.proxiedAuthorize",
            HttpResponse::new(200, ""),
        );
        assert!(matches!(
            start_jina_response(&fakes),
            Response::Error { .. }
        ));
        let fakes = jina();
        fakes.transport.answer(
            "GET /v2/rpc/user.identity.proxiedAuthorize",
            HttpResponse::new(503, r#"{"status":50301,"message":"down","data":{}}"#),
        );
        assert!(matches!(
            start_jina_response(&fakes),
            Response::Error { .. }
        ));
    }

    fn start_jina_response(fakes: &Fakes) -> Response {
        fakes.handle(Request::StartBrowserLogin {
            provider: Provider::Jina,
            endpoint: "http://127.0.0.1:9100".into(),
            client_id: String::new(),
            redirect_uri: String::new(),
        })
    }
}
