//! Logging in with the browser, as `bentoml cloud login` does without
//! `--api-token`: a code from the provider, a tab where the user approves
//! it, then polls until the provider hands over a token, and the normal
//! login with it.
//!
//! Unlike the CLI, which polls forever, it gives up after
//! [`LOGIN_WINDOW_SECONDS`] with a clear message, and can be cancelled. The
//! pending login is a record in `storage.session` (in memory, never on
//! disk: the code is as good as a token once approved), not a loop: the
//! background polls every second while it runs, and an alarm resumes the
//! polling if the service worker was stopped in between.

use serde::{Deserialize, Serialize};

use super::{account, error_response, Platform, RuleEngine, ServiceError, StateStore, Transport};
use crate::credential::{Endpoint, Timestamp};
use crate::message::{BrowserLoginView, LoginDraft, Response};
use crate::provider::{bentocloud, Provider};
use crate::store::State;

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
    pub(crate) approve_url: String,
    pub(crate) deadline: Timestamp,
    /// `pending`, `done` or `failed`.
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
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
    Ok(stored.and_then(|v| serde_json::from_value(v).ok()))
}

async fn write<S: StateStore>(store: &S, login: Option<&PendingLogin>) -> Result<(), ServiceError> {
    let value = login.and_then(|l| serde_json::to_value(l).ok());
    store
        .set_pending_login(value.as_ref())
        .await
        .map_err(ServiceError::SessionKey)
}

/// Asks the provider for a code and records the pending login. The answer
/// carries the page to open.
pub(super) async fn start<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    provider: Provider,
    endpoint: &str,
) -> Response {
    let result = async {
        if provider != Provider::BentoCloud {
            return Err(ServiceError::Invalid(format!(
                "{} logs in with a pasted token here; browser login is for BentoCloud",
                provider.name()
            )));
        }
        let endpoint = Endpoint::parse(provider, endpoint)?;
        let request = bentocloud::login_code_request(&endpoint);
        let answer =
            platform
                .transport
                .send(&request)
                .await
                .map_err(|e| ServiceError::Unreachable {
                    origin: endpoint.origin(),
                    reason: e.0,
                })?;
        let code = bentocloud::read_login_code(&answer)
            .map_err(|source| ServiceError::Provider { provider, source })?;
        let login = PendingLogin {
            provider,
            endpoint: endpoint.as_str().to_owned(),
            approve_url: bentocloud::login_approval_url(&endpoint, &code),
            code: Some(code),
            deadline: Timestamp(platform.clock.now.0 + LOGIN_WINDOW_SECONDS),
            state: "pending".to_owned(),
            message: Some(format!(
                "Approve the login in the {} tab that opened; waiting up to {} minutes",
                provider.name(),
                LOGIN_WINDOW_SECONDS / 60
            )),
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
    let Some(code) = login.code.clone().filter(|_| login.state == "pending") else {
        return Response::BrowserLogin(login.view());
    };
    let finish = |login: &mut PendingLogin, outcome: &str, message: String| {
        login.code = None;
        login.state = outcome.to_owned();
        login.message = Some(message);
    };
    let provider = login.provider;
    if platform.clock.now >= login.deadline {
        let message = format!(
            "{} saw no approval within {} minutes; nothing was changed. Start again to log in.",
            provider.name(),
            LOGIN_WINDOW_SECONDS / 60
        );
        finish(&mut login, "failed", message);
    } else {
        let Ok(endpoint) = Endpoint::parse(login.provider, &login.endpoint) else {
            return none_view();
        };
        let request = bentocloud::login_poll_request(&endpoint, &code);
        let token = match platform.transport.send(&request).await {
            Ok(answer) => bentocloud::read_login_poll(&answer),
            // No answer: try again at the next poll.
            Err(_) => return Response::BrowserLogin(login.view()),
        };
        match token {
            Ok(None) => return Response::BrowserLogin(login.view()),
            Ok(Some(token)) => {
                let draft = LoginDraft {
                    provider: login.provider,
                    kind: String::new(),
                    endpoint: login.endpoint.clone(),
                    secret: token.expose().to_owned(),
                    name: String::new(),
                };
                match account::login(platform, state.clone(), draft).await {
                    Response::Accounts(view) => finish(
                        &mut login,
                        "done",
                        view.notice.unwrap_or_else(|| "Logged in".to_owned()),
                    ),
                    Response::Error { message } => finish(&mut login, "failed", message),
                    _ => finish(&mut login, "failed", "the login did not finish".to_owned()),
                }
            }
            Err(source) => finish(
                &mut login,
                "failed",
                ServiceError::Provider { provider, source }.to_string(),
            ),
        }
    }
    match write(platform.store, Some(&login)).await {
        Ok(()) => Response::BrowserLogin(login.view()),
        Err(e) => error_response(&e, &state),
    }
}

pub(super) async fn status<S: StateStore>(store: &S, state: &State) -> Response {
    match read(store).await {
        Ok(Some(login)) => Response::BrowserLogin(login.view()),
        Ok(None) => none_view(),
        Err(e) => error_response(&e, state),
    }
}

/// Cancels a pending login, or dismisses a finished one.
pub(super) async fn cancel<S: StateStore>(store: &S, state: &State) -> Response {
    match write(store, None).await {
        Ok(()) => none_view(),
        Err(e) => error_response(&e, state),
    }
}

#[cfg(test)]
mod tests {
    use super::super::account::tests::{bento, TOKEN};
    use super::super::fakes::NOW;
    use super::*;
    use crate::message::Request;
    use crate::provider::HttpResponse;

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
            done.message.as_deref(),
            Some("Logged in as alice@example.com at acme organization")
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
            failed
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("within 5 minutes"),
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
            }),
            Response::Error { .. }
        ));
        assert!(fakes.store.pending_login.borrow().is_none());
    }
}
