//! Logins and tokens: the requests that go to a provider.
//!
//! Each operation loads state, talks to the provider through the
//! [`Transport`], and only then changes state, through the same
//! validate-save-apply path as rule edits. A provider that refuses, fails or
//! answers garbage leaves stored state exactly as it was.

use super::{
    accounts_response, error_response, mutate, redacted, Platform, RuleEngine, ServiceError,
    StateStore, Transport,
};
use crate::credential::credential_label;
use crate::credential::{Credential, CredentialId, CredentialKind, Endpoint, Timestamp, Validity};
use crate::header::Secret;
use crate::matcher;
use crate::message::{CopyView, CredentialView, LoginDraft, RemoteTokenView, Response, TokensView};
use crate::provider::{self, nuclia, site, Call, HttpResponse, Provider, TokenSpec};
use crate::store::State;
use crate::text;
use crate::text::{Localize, Text};

/// Sends a call's requests in order, stopping at the first answer that is
/// not 2xx (the parser reports the first failure), and parses the answers.
pub(super) async fn run<T: 'static, X: Transport>(
    transport: &X,
    provider: Provider,
    call: Call<T>,
) -> Result<T, ServiceError> {
    let mut answers: Vec<HttpResponse> = Vec::with_capacity(call.requests.len());
    for request in &call.requests {
        let answer = transport
            .send(request)
            .await
            .map_err(|e| ServiceError::Unreachable {
                origin: origin_of(request.url.as_str()),
                reason: e.0,
            })?;
        let ok = answer.is_success();
        answers.push(answer);
        if !ok {
            break;
        }
    }
    call.finish(&answers)
        .map_err(|source| ServiceError::Provider { provider, source })
}

/// The origin of `url`; empty (said as "the provider") if it has none.
fn origin_of(url: &str) -> String {
    crate::pattern::parse_url(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// Two sentences, the second when there is one.
fn then(first: Text, second: Option<Text>) -> Text {
    match second {
        Some(second) => text!("notice_joined", first, second),
        None => first,
    }
}

fn ids_exhausted() -> ServiceError {
    ServiceError::Invalid(text!("error_account_ids_exhausted"))
}

fn provider_error(provider: Provider, source: provider::ProviderError) -> ServiceError {
    ServiceError::Provider { provider, source }
}

fn kind_for(provider: Provider, kind: &str) -> Result<CredentialKind, ServiceError> {
    Ok(match (provider, kind) {
        (Provider::BentoCloud, "" | "apiToken") => CredentialKind::ApiToken {
            scopes: Vec::new(),
            deployments: None,
        },
        (Provider::Nuclia, "knowledgeBoxKey") => CredentialKind::KnowledgeBoxKey,
        (Provider::Nuclia, "nuaKey") => CredentialKind::NuaKey,
        (_, "userToken") => CredentialKind::UserToken,
        (_, "" | "personalAccessToken") => CredentialKind::PersonalAccessToken,
        (p, other) => {
            return Err(ServiceError::Invalid(text!(
                "error_account_unknown_kind",
                p.name(),
                other
            )))
        }
    })
}

/// Checks the token with the provider and keeps it only if accepted. The
/// same token logged in again refreshes the stored account instead of
/// adding a second copy.
pub(super) async fn login<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    login: LoginDraft,
) -> Response {
    let provider = login.provider;
    let prepared = (|| {
        let secret = Secret::from_input(&login.secret).map_err(ServiceError::Secret)?;
        let kind = kind_for(provider, &login.kind)?;
        let endpoint = match kind {
            // A NUA key names its own issuer.
            CredentialKind::NuaKey => {
                nuclia::nua_issuer(&secret).map_err(|e| provider_error(provider, e))?
            }
            _ if provider == Provider::Custom && login.endpoint.trim().is_empty() => {
                return Err(ServiceError::Invalid(text!(
                    "error_account_custom_no_address"
                )))
            }
            _ => Endpoint::parse(provider, &login.endpoint)?,
        };
        Ok(Credential::new(0, provider, endpoint, kind, secret))
    })();
    let mut credential = match prepared {
        Ok(c) => c,
        Err(e) => return error_response(&e, &state),
    };
    let now = platform.clock.now;
    let confirmation = if provider == Provider::Custom {
        credential.info.name = login.name.trim().to_owned();
        let endpoint = credential.info.endpoint.as_str();
        if credential.info.name.is_empty() {
            text!("notice_custom_saved", endpoint)
        } else {
            text!("notice_custom_saved_named", &credential.info.name, endpoint)
        }
    } else {
        let identity = match provider::who_am_i(&credential) {
            Ok(call) => run(platform.transport, provider, call).await,
            Err(e) => Err(provider_error(provider, e)),
        };
        let identity = match identity {
            Ok(identity) => identity,
            Err(e) => return error_response(&e, &state),
        };
        credential.info.account = identity.account;
        credential.info.name = identity
            .token_name
            .unwrap_or_else(|| login.name.trim().to_owned());
        credential.info.last_verified = Some(now);
        identity.confirmation
    };
    // A pasted JWT says when it expires, where the provider did not.
    if credential.info.expires.is_none() {
        credential.info.expires = crate::credential::jwt_expiry(credential.secret.expose());
    }
    let same = state
        .credentials
        .all()
        .iter()
        .find(|c| {
            c.info.provider == provider
                && c.info.endpoint == credential.info.endpoint
                && c.secret == credential.secret
        })
        .map(|c| c.info.id);
    let saved = mutate(platform, &mut state, |s| match same {
        Some(id) => {
            let stored = s
                .credentials
                .get_mut(id)
                .ok_or(ServiceError::UnknownCredential(id))?;
            stored.info.account = credential.info.account;
            stored.info.last_verified = credential.info.last_verified;
            // The provider accepted it again.
            stored.info.refused = None;
            if !credential.info.name.is_empty() {
                stored.info.name = credential.info.name;
            }
            Ok(id)
        }
        None => s.credentials.add(credential).ok_or_else(ids_exhausted),
    })
    .await;
    match saved {
        Ok(id) => accounts_response(&state, now, Some(confirmation), Some(id)),
        Err(e) => error_response(&e, &state),
    }
}

fn tokens_view(
    state: &State,
    credential: &Credential,
    remote: Option<Vec<provider::RemoteToken>>,
    note: Option<Text>,
    now: Timestamp,
) -> TokensView {
    let info = &credential.info;
    let remote = remote.map(|tokens| {
        tokens
            .into_iter()
            .map(|token| RemoteTokenView {
                validity: token.validity(now),
                stored: state
                    .credentials
                    .matching_remote(info, &token.id)
                    .map(|c| c.info.id),
                current: info.remote_id.as_deref() == Some(token.id.as_str()),
                token,
            })
            .collect()
    });
    let local = state
        .credentials
        .all()
        .iter()
        .filter(|c| c.info.provider == info.provider && c.info.endpoint == info.endpoint)
        .map(|c| CredentialView::of(c, &state.book, now))
        .collect();
    TokensView {
        credential: CredentialView::of(credential, &state.book, now),
        remote,
        note,
        local,
        suggested_expiry: info.provider.suggested_expiry(),
    }
}

/// Lists the account's tokens. The provider's word on when a stored token
/// expires wins over what was stored: a token the provider shortened, or
/// expired, stops being sent here too.
pub(super) async fn list_tokens<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    id: CredentialId,
) -> Response {
    let Some(credential) = state.credentials.get(id).cloned() else {
        return error_response(&ServiceError::UnknownCredential(id), &state);
    };
    let now = platform.clock.now;
    let provider = credential.info.provider;
    match provider::list_tokens(&credential) {
        Ok(call) => match run(platform.transport, provider, call).await {
            Ok(tokens) => {
                if credential.info.refused.is_some() {
                    if let Err(e) = mark_refused(platform, &mut state, id, None).await {
                        return error_response(&e, &state);
                    }
                }
                let changed: Vec<(CredentialId, Option<Timestamp>)> = tokens
                    .iter()
                    .filter_map(|t| {
                        let stored = state.credentials.matching_remote(&credential.info, &t.id)?;
                        (stored.info.expires != t.expires).then_some((stored.info.id, t.expires))
                    })
                    .collect();
                if !changed.is_empty() {
                    let synced = mutate(platform, &mut state, |s| {
                        for (id, expires) in &changed {
                            if let Some(c) = s.credentials.get_mut(*id) {
                                c.info.expires = *expires;
                                c.info.last_verified = Some(now);
                            }
                        }
                        Ok(())
                    })
                    .await;
                    if let Err(e) = synced {
                        return error_response(&e, &state);
                    }
                }
                let credential = state.credentials.get(id).cloned().unwrap_or(credential);
                Response::Tokens(tokens_view(&state, &credential, Some(tokens), None, now))
            }
            Err(e) => {
                refused_answer(platform, &mut state, id, &e).await;
                error_response(&e, &state)
            }
        },
        Err(provider::ProviderError::Unsupported(why)) => {
            Response::Tokens(tokens_view(&state, &credential, None, Some(why), now))
        }
        Err(e) => error_response(&provider_error(provider, e), &state),
    }
}

/// The provider's 401 to a call made with credential `id`: the token is no
/// longer good, so it is marked refused at once, which stops its headers and
/// says so wherever it is shown. Other errors (403, 5xx, no answer) say
/// nothing about the token and change nothing.
async fn refused_answer<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    id: CredentialId,
    error: &ServiceError,
) {
    if let ServiceError::Provider {
        source: provider::ProviderError::Unauthorized { reason },
        ..
    } = error
    {
        // The provider's words, or its status: pages say the rest.
        let why = reason.clone().unwrap_or_else(|| "401".to_owned());
        // A failed write leaves the mark for the next refusal; the answer
        // still carries the provider's error.
        let _ = mark_refused(platform, state, id, Some(why)).await;
    }
}

async fn mark_refused<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    id: CredentialId,
    why: Option<String>,
) -> Result<(), ServiceError> {
    mutate(platform, state, |s| {
        if let Some(c) = s.credentials.get_mut(id) {
            c.info.refused = why;
        }
        Ok(())
    })
    .await
}

/// Creates the token at the provider, then keeps it as a new credential.
/// The answer is the only time the secret reaches a page.
pub(super) async fn create_token<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    id: CredentialId,
    spec: TokenSpec,
) -> Response {
    let Some(creator) = state.credentials.get(id).cloned() else {
        return error_response(&ServiceError::UnknownCredential(id), &state);
    };
    let provider = creator.info.provider;
    let created = match provider::create_token(&creator, &spec, platform.clock) {
        Ok(call) => run(platform.transport, provider, call).await,
        Err(e) => Err(provider_error(provider, e)),
    };
    let new = match created {
        Ok(new) => new,
        Err(e) => {
            refused_answer(platform, &mut state, creator.info.id, &e).await;
            return error_response(&e, &state);
        }
    };
    let now = platform.clock.now;
    let name = new.token.name.clone();
    let credential = new.into_credential(0, &creator.info, &spec, now);
    let secret = credential.secret.expose().to_owned();
    let added = mutate(platform, &mut state, |s| {
        s.credentials.add(credential).ok_or_else(ids_exhausted)
    })
    .await;
    match added {
        Ok(new_id) => match state.credentials.get(new_id) {
            Some(c) => Response::Created {
                credential: CredentialView::of(c, &state.book, now),
                secret,
            },
            None => error_response(&ServiceError::UnknownCredential(new_id), &state),
        },
        // The provider has the token but we could not keep it: say so, so
        // the user can delete it there rather than leave it unknown.
        Err(e) => not_kept(provider, &name, &e, &state),
    }
}

/// Creates the successor of token `id` with its account's login, then, in
/// one write, puts it in place of the old one (same credential id, so every
/// rule keeps pointing at it) and its secret in every header that used the
/// old one. The old token is then deleted at the provider, best effort.
pub(super) async fn renew_token<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    id: CredentialId,
) -> Response {
    let now = platform.clock.now;
    let Some(old) = state.credentials.get(id).cloned() else {
        return error_response(&ServiceError::UnknownCredential(id), &state);
    };
    let provider = old.info.provider;
    let Some(creator) = state.credentials.creator_for(id, now).cloned() else {
        let label = credential_label(&old.info);
        let needs = match old.info.account.user.as_deref() {
            Some(user) => text!(
                "error_account_renew_needs_login_as",
                label,
                provider.name(),
                user
            ),
            None => text!("error_account_renew_needs_login", label, provider.name()),
        };
        return error_response(&ServiceError::Invalid(needs), &state);
    };
    let spec = TokenSpec::successor(&old.info, now);
    let created = match provider::create_token(&creator, &spec, platform.clock) {
        Ok(call) => run(platform.transport, provider, call).await,
        Err(e) => Err(provider_error(provider, e)),
    };
    let new = match created {
        Ok(new) => new,
        Err(e) => return error_response(&e, &state),
    };
    let name = new.token.name.clone();
    let mut successor = new.into_credential(id, &creator.info, &spec, now);
    if let (
        CredentialKind::ApiToken { deployments, .. },
        CredentialKind::ApiToken {
            deployments: kept, ..
        },
    ) = (&mut successor.info.kind, &old.info.kind)
    {
        if deployments.is_none() {
            deployments.clone_from(kept);
        }
    }
    let secret = successor.secret.clone();
    let expires = successor.info.expires;
    let renewed = mutate(platform, &mut state, |s| {
        let slot = s
            .credentials
            .get_mut(id)
            .ok_or(ServiceError::UnknownCredential(id))?;
        successor.info.id = id;
        *slot = successor;
        Ok(s.book.rotate(id, &secret))
    })
    .await;
    let headers = match renewed {
        Ok(headers) => headers,
        Err(e) => return not_kept(provider, &name, &e, &state),
    };
    let old_name = &old.info.name;
    let created = match (expires, headers) {
        (None, 1) => text!("notice_renewed_one_header", &name, old_name),
        (None, n) => text!("notice_renewed_headers", &name, n, old_name),
        (Some(e), 1) => text!(
            "notice_renewed_one_header_expiring",
            &name,
            e.date(),
            old_name
        ),
        (Some(e), n) => text!(
            "notice_renewed_headers_expiring",
            &name,
            e.date(),
            n,
            old_name
        ),
    };
    // The old token is of no use any more; deleting it is hygiene, and a
    // failure loses nothing.
    let mut old_deleted = None;
    if let Some(remote_id) = old.info.remote_id.as_deref() {
        let deleted = match provider::delete_token(&creator, remote_id) {
            Ok(call) => run(platform.transport, provider, call).await.is_ok(),
            Err(_) => false,
        };
        old_deleted = Some(if deleted {
            text!("notice_renewed_old_deleted", provider.name())
        } else {
            text!("notice_renewed_old_not_deleted", provider.name())
        });
    }
    let notice = then(created, old_deleted);
    accounts_response(&state, now, Some(notice), Some(id))
}

/// The provider made token `name`, but it could not be stored: said, so
/// the user can delete it there rather than leave it unknown.
fn not_kept(provider: Provider, name: &str, error: &ServiceError, state: &State) -> Response {
    Response::Error {
        message: redacted(
            text!(
                "error_account_created_not_kept",
                provider.name(),
                name,
                error.text()
            ),
            state,
        ),
    }
}

/// Deletes the token at the provider; a stored copy of it is forgotten with
/// the rules that used it.
pub(super) async fn delete_token<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    id: CredentialId,
    remote_id: String,
) -> Response {
    let Some(credential) = state.credentials.get(id).cloned() else {
        return error_response(&ServiceError::UnknownCredential(id), &state);
    };
    let provider = credential.info.provider;
    let deleted = match provider::delete_token(&credential, &remote_id) {
        Ok(call) => run(platform.transport, provider, call).await,
        Err(e) => Err(provider_error(provider, e)),
    };
    if let Err(e) = deleted {
        return error_response(&e, &state);
    }
    let now = platform.clock.now;
    let stored = state
        .credentials
        .matching_remote(&credential.info, &remote_id)
        .map(|c| c.info.id);
    let mut notice = text!("notice_token_deleted", provider.name());
    if let Some(stored) = stored {
        match mutate(platform, &mut state, |s| Ok(forget(s, stored))).await {
            Ok(rules) => notice = then(notice, removed_rules(rules)),
            Err(e) => return error_response(&e, &state),
        }
    }
    let concerned = state.credentials.get(id).map(|c| c.info.id);
    accounts_response(&state, now, Some(notice), concerned)
}

fn forget(state: &mut State, id: CredentialId) -> usize {
    state.credentials.remove(id);
    state.book.forget_credential(id).len()
}

fn removed_rules(count: usize) -> Option<Text> {
    match count {
        0 => None,
        1 => Some(text!("notice_rule_removed")),
        n => Some(text!("notice_rules_removed", n)),
    }
}

/// Logs out: the provider's logout where it has one (Jina), then the
/// credential and its rules are forgotten. A provider that cannot be told
/// does not keep the user logged in here.
pub(super) async fn logout<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
    id: CredentialId,
) -> Response {
    let Some(credential) = state.credentials.get(id).cloned() else {
        return error_response(&ServiceError::UnknownCredential(id), &state);
    };
    let provider = credential.info.provider;
    let label = credential_label(&credential.info);
    let mut notice = text!("notice_logged_out", &label);
    if let Some(call) = provider::logout(&credential) {
        if let Err(e) = run(platform.transport, provider, call).await {
            notice = redacted(
                text!(
                    "notice_logged_out_untold",
                    &label,
                    provider.name(),
                    e.text()
                ),
                &state,
            );
        }
    }
    match mutate(platform, &mut state, |s| Ok(forget(s, id))).await {
        Ok(rules) => {
            let notice = then(notice, removed_rules(rules));
            accounts_response(&state, platform.clock.now, Some(notice), None)
        }
        Err(e) => error_response(&e, &state),
    }
}

/// The copy helpers: a `curl` line with the headers the rules in force send
/// to `url`, and the credential's environment variables.
pub(super) fn copy_helpers(
    state: &State,
    now: Timestamp,
    credential: Option<CredentialId>,
    url: Option<&str>,
) -> Response {
    let curl = url.and_then(|url| {
        let book = state.rules_in_force(now);
        let spec = matcher::canonical(url)?;
        let headers: Vec<(String, String)> = matcher::effective_headers(&book, &spec)
            .into_iter()
            .filter_map(|(_, action)| match action {
                crate::rules::HeaderAction::Set { name, value, .. } => {
                    Some((name.as_str().to_owned(), value.render().ok()?))
                }
                crate::rules::HeaderAction::Remove { .. } => None,
            })
            .collect();
        (!headers.is_empty()).then(|| site::curl_command(url, &headers))
    });
    let env = match credential {
        Some(id) => match state.credentials.get(id) {
            Some(c) if c.validity(now) == Validity::Expired => {
                return Response::Error {
                    message: redacted(
                        text!("error_account_copy_expired", credential_label(&c.info)),
                        state,
                    ),
                }
            }
            Some(c) => Some(site::env_exports(c)).filter(|e| !e.is_empty()),
            None => return error_response(&ServiceError::UnknownCredential(id), state),
        },
        None => None,
    };
    Response::Copy(CopyView { curl, env })
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Value};

    use super::super::fakes::{Fakes, NOW};
    use super::super::handle;
    use crate::credential::{Credential, CredentialKind, Endpoint, Timestamp, Validity, DAY};
    use crate::header::{Secret, ValueScheme};
    use crate::message::{LoginDraft, Request, Response};
    use crate::provider::site::SuggestedHeader;
    use crate::provider::{Expiry, HttpResponse, Provider, TokenSpec};
    use crate::rules::HeaderAction;
    use crate::text::english;

    pub(crate) const TOKEN: &str = "yatai-token-0123456789";

    fn user() -> Value {
        json!({"name": "alice", "email": "alice@example.com", "first_name": "Alice", "last_name": "L"})
    }

    fn org() -> Value {
        json!({"uid": "org1", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
               "deleted_at": null, "name": "acme", "resource_type": "organization", "labels": [],
               "description": ""})
    }

    fn api_token(uid: &str, name: &str) -> Value {
        json!({"uid": uid, "created_at": "2025-12-01T10:00:00Z", "updated_at": "2025-12-01T10:00:00Z",
               "deleted_at": null, "name": name, "resource_type": "api_token", "labels": [],
               "description": "", "scopes": ["api"], "user": user(), "organization": org(),
               "expired_at": null})
    }

    pub(crate) fn bento() -> Fakes {
        let fakes = Fakes::default();
        let t = &fakes.transport;
        t.answer(
            "GET /api/v1/auth/current",
            HttpResponse::new(200, user().to_string()),
        );
        t.answer(
            "GET /api/v1/current_org",
            HttpResponse::new(200, org().to_string()),
        );
        t.answer(
            "GET /api/v1/api_tokens",
            HttpResponse::new(
                200,
                json!({"start": 0, "count": 100, "total": 1, "items": [api_token("tok1", "laptop")]})
                    .to_string(),
            ),
        );
        fakes
    }

    fn login_draft(secret: &str) -> LoginDraft {
        LoginDraft {
            provider: Provider::BentoCloud,
            kind: String::new(),
            endpoint: "http://127.0.0.1:9000".into(),
            secret: secret.into(),
            name: String::new(),
        }
    }

    pub(crate) fn logged_in(fakes: &Fakes) -> u32 {
        match fakes.handle(Request::Login {
            login: login_draft(TOKEN),
        }) {
            Response::Accounts(view) => view.concerned.unwrap_or_else(|| panic!("{view:?}")),
            other => panic!("{other:?}"),
        }
    }

    /// BentoCloud creates `created` (an `api_tokens` answer) for `spec`
    /// through the login `login`: the new credential's id.
    fn create_with(fakes: &Fakes, login: u32, created: &Value, spec: TokenSpec) -> u32 {
        fakes.transport.answer(
            "POST /api/v1/api_tokens",
            HttpResponse::new(200, created.to_string()),
        );
        let response = fakes.handle(Request::CreateToken {
            credential: login,
            spec,
        });
        let Response::Created { credential, .. } = response else {
            panic!("{response:?}")
        };
        credential.info.id
    }

    /// Token `tok2`, named `ci`, with `secret`, never expiring.
    fn create_ci(fakes: &Fakes, login: u32, secret: &str) -> u32 {
        let mut created = api_token("tok2", "ci");
        created["token"] = json!(secret);
        let spec = TokenSpec {
            name: "ci".into(),
            description: String::new(),
            expiry: Expiry::Never,
            scopes: vec![],
        };
        create_with(fakes, login, &created, spec)
    }

    #[test]
    fn login_keeps_the_account_and_says_who() {
        let fakes = bento();
        let response = fakes.handle(Request::Login {
            login: login_draft(TOKEN),
        });
        let Response::Accounts(view) = response else {
            panic!("{response:?}")
        };
        assert_eq!(
            view.notice.as_ref().map(english).as_deref(),
            Some("Logged in as alice@example.com at acme organization.")
        );
        let stored = fakes.state();
        let c = &stored.credentials.all()[0];
        assert_eq!(c.info.account.organizations, ["acme"]);
        assert_eq!(c.secret.expose(), TOKEN);
        assert_eq!(c.info.last_verified, Some(NOW));
        let sent = fakes.transport.sent.borrow();
        assert_eq!(sent[0].header_value("X-YATAI-API-TOKEN"), Some(TOKEN));
        // The view carries no secret.
        let json = serde_json::to_string(&view).unwrap_or_default();
        assert!(!json.contains(TOKEN), "{json}");
        drop(sent);
        // Logging in again with the same token does not add a copy.
        logged_in(&fakes);
        assert_eq!(fakes.state().credentials.all().len(), 1);
    }

    #[test]
    fn a_token_the_provider_refuses_is_marked_at_once_and_stops() {
        let fakes = bento();
        let id = logged_in(&fakes);
        assert!(matches!(
            use_on(&fakes, id, "https://a.example"),
            Response::Rules(_)
        ));
        assert_eq!(installed_values(&fakes).len(), 3);
        // A 5xx says nothing about the token.
        fakes
            .transport
            .answer("GET /api/v1/api_tokens", HttpResponse::new(503, "busy"));
        fakes.handle(Request::ListTokens { credential: id });
        assert_eq!(
            fakes
                .state()
                .credentials
                .get(id)
                .map(|c| c.info.refused.clone()),
            Some(None)
        );
        assert_eq!(installed_values(&fakes).len(), 3);
        // A 401 does: the token is refused everywhere, and its header stops.
        fakes.transport.answer(
            "GET /api/v1/api_tokens",
            HttpResponse::new(401, r#"{"error":"token revoked"}"#),
        );
        let answer = fakes.handle(Request::ListTokens { credential: id });
        assert!(matches!(answer, Response::Error { .. }), "{answer:?}");
        let state = fakes.state();
        let marked = state.credentials.get(id).map(|c| c.validity(NOW));
        assert_eq!(marked, Some(Validity::Refused));
        assert!(installed_values(&fakes).is_empty(), "the header stops");
        match fakes.handle(Request::Accounts) {
            Response::Accounts(view) => assert!(
                view.credentials
                    .iter()
                    .any(|c| c.validity == Validity::Refused),
                "{view:?}"
            ),
            other => panic!("{other:?}"),
        }
        match fakes.handle(Request::SiteStatus {
            url: "https://a.example/".into(),
            tab: None,
        }) {
            Response::Site(view) => assert_eq!(
                view.sending(true),
                crate::message::Sending::NotSent {
                    why: crate::message::NotSent::Refused
                }
            ),
            other => panic!("{other:?}"),
        }
        // Logging in again with a token the provider accepts brings it back.
        logged_in(&fakes);
        assert_eq!(
            fakes.state().credentials.get(id).map(|c| c.validity(NOW)),
            Some(Validity::Valid)
        );
        assert_eq!(installed_values(&fakes).len(), 3);
    }

    #[test]
    fn a_pasted_jwt_learns_its_expiry() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let exp = NOW.0 + 3 * 86_400;
        let jwt = format!(
            "{}.{}.signature",
            b64(r#"{"alg":"RS256"}"#),
            b64(&format!(r#"{{"exp":{exp}}}"#))
        );
        let fakes = bento();
        let id = match fakes.handle(Request::Login {
            login: login_draft(&jwt),
        }) {
            Response::Accounts(view) => view.concerned.unwrap_or_else(|| panic!("{view:?}")),
            other => panic!("{other:?}"),
        };
        let c = fakes.state().credentials.get(id).cloned();
        assert_eq!(
            c.as_ref().and_then(|c| c.info.expires),
            Some(Timestamp(exp))
        );
        assert_eq!(c.map(|c| c.validity(NOW)), Some(Validity::ExpiringSoon));
    }

    #[test]
    fn refused_failing_or_garbage_logins_save_nothing() {
        for (status, body, expected) in [
            (
                401,
                r#"{"error":"bad credentials"}"#,
                "BentoCloud: The provider refused the token: bad credentials",
            ),
            (
                500,
                "oops",
                "BentoCloud: The provider had an error (HTTP 500); try again later.",
            ),
            (
                200,
                "<html>not json</html>",
                "BentoCloud: The provider's answer could not be read: The answer is not JSON.",
            ),
            (
                200,
                r#"{"name": 3}"#,
                "BentoCloud: The provider's answer could not be read: The field “email” is missing.",
            ),
        ] {
            let fakes = bento();
            fakes
                .transport
                .answer("GET /api/v1/auth/current", HttpResponse::new(status, body));
            let response = fakes.handle(Request::Login {
                login: login_draft(TOKEN),
            });
            match response {
                Response::Error { message } => {
                    let message = english(&message);
                    assert_eq!(message, expected, "{status}");
                    assert!(!message.contains(TOKEN));
                }
                other => panic!("{status}: {other:?}"),
            }
            assert_eq!(*fakes.store.saves.borrow(), 0, "{status}");
        }
        let fakes = bento();
        *fakes.transport.unreachable.borrow_mut() = true;
        let response = fakes.handle(Request::Login {
            login: login_draft(TOKEN),
        });
        assert!(
            matches!(&response, Response::Error { message } if english(message).starts_with("Could not reach http://127.0.0.1:9000: ")),
            "{response:?}"
        );
        assert_eq!(*fakes.store.saves.borrow(), 0);
    }

    #[test]
    fn bad_input_is_refused_before_any_request() {
        let fakes = bento();
        for (draft, expected) in [
            (
                login_draft("a\nb"),
                "The token: The secret contains a line break",
            ),
            (
                LoginDraft {
                    endpoint: "http://example.com".into(),
                    ..login_draft(TOKEN)
                },
                "Plain http would send the token unencrypted",
            ),
            (
                LoginDraft {
                    kind: "nuaKey".into(),
                    ..login_draft(TOKEN)
                },
                "BentoCloud has no credential of kind “nuaKey”.",
            ),
        ] {
            let response = fakes.handle(Request::Login { login: draft });
            assert!(
                matches!(&response, Response::Error { message } if english(message).starts_with(expected)),
                "{response:?}"
            );
        }
        assert!(fakes.transport.sent.borrow().is_empty());
    }

    #[test]
    fn create_keeps_the_new_token_and_shows_it_once() {
        let fakes = bento();
        let id = logged_in(&fakes);
        let mut created = api_token("tok2", "ci");
        created["token"] = json!("new-secret-abcdef");
        fakes.transport.answer(
            "POST /api/v1/api_tokens",
            HttpResponse::new(200, created.to_string()),
        );
        let response = fakes.handle(Request::CreateToken {
            credential: id,
            spec: TokenSpec {
                name: "ci".into(),
                description: String::new(),
                expiry: Expiry::Days(30),
                scopes: vec!["api".into()],
            },
        });
        let Response::Created { credential, secret } = response else {
            panic!("{response:?}")
        };
        assert_eq!(secret, "new-secret-abcdef");
        assert_eq!(credential.info.remote_id.as_deref(), Some("tok2"));
        assert_eq!(credential.info.account.organizations, ["acme"]);
        let state = fakes.state();
        assert_eq!(state.credentials.all().len(), 2);
        // A list now shows which listed token is kept here.
        fakes.transport.answer(
            "GET /api/v1/api_tokens",
            HttpResponse::new(
                200,
                json!({"start": 0, "count": 100, "total": 2,
                       "items": [api_token("tok1", "laptop"), api_token("tok2", "ci")]})
                .to_string(),
            ),
        );
        let Response::Tokens(tokens) = fakes.handle(Request::ListTokens { credential: id }) else {
            panic!()
        };
        let remote = tokens.remote.unwrap_or_default();
        assert_eq!(remote.len(), 2);
        assert_eq!(remote[1].stored, Some(credential.info.id));
        assert_eq!(remote[0].stored, None);
        assert_eq!(
            *fakes.store.saves.borrow(),
            2,
            "nothing to sync, nothing written"
        );

        // The provider says the kept token has expired: it stops being sent.
        assert!(matches!(
            use_on(&fakes, credential.info.id, "https://a.example"),
            Response::Rules(_)
        ));
        assert_eq!(installed_values(&fakes).len(), 3);
        let mut expired = api_token("tok2", "ci");
        expired["expired_at"] = json!("2025-12-01T00:00:00Z");
        fakes.transport.answer(
            "GET /api/v1/api_tokens",
            HttpResponse::new(
                200,
                json!({"start": 0, "count": 100, "total": 2,
                       "items": [api_token("tok1", "laptop"), expired]})
                .to_string(),
            ),
        );
        let Response::Tokens(tokens) = fakes.handle(Request::ListTokens { credential: id }) else {
            panic!()
        };
        assert_eq!(
            tokens
                .local
                .iter()
                .find(|c| c.info.id == credential.info.id)
                .map(|c| c.validity),
            Some(crate::credential::Validity::Expired)
        );
        assert!(installed_values(&fakes).is_empty());
        // BentoCloud answers a create with exactly 200; a 201 keeps nothing.
        fakes.transport.answer(
            "POST /api/v1/api_tokens",
            HttpResponse::new(201, created.to_string()),
        );
        let saves = *fakes.store.saves.borrow();
        let refused = fakes.handle(Request::CreateToken {
            credential: id,
            spec: TokenSpec {
                name: "x".into(),
                description: String::new(),
                expiry: Expiry::Never,
                scopes: vec![],
            },
        });
        assert!(matches!(refused, Response::Error { .. }), "{refused:?}");
        assert_eq!(*fakes.store.saves.borrow(), saves);
    }

    pub(crate) fn use_on(fakes: &Fakes, id: u32, pattern: &str) -> Response {
        fakes.handle(Request::UseCredential {
            credential: id,
            pattern: pattern.into(),
            allow_http: false,
            header: SuggestedHeader {
                name: "Authorization".into(),
                scheme: ValueScheme::Bearer,
            },
        })
    }

    fn installed_values(fakes: &Fakes) -> Vec<String> {
        fakes
            .engine
            .rules
            .borrow()
            .iter()
            .flat_map(|r| r.action.request_headers.iter().flatten())
            .filter_map(|h| h.value.clone())
            .collect()
    }

    #[test]
    fn rules_follow_their_credential() {
        let fakes = bento();
        let id = logged_in(&fakes);
        let response = use_on(&fakes, id, "https://*.acme.cloud-apps.bentoml.com");
        assert!(matches!(response, Response::Rules(_)), "{response:?}");
        assert_eq!(
            installed_values(&fakes),
            [
                format!("Bearer {TOKEN}"),
                format!("Bearer {TOKEN}"),
                format!("Bearer {TOKEN}")
            ]
        );
        let rule = fakes.state().book.rules()[0].clone();
        assert!(matches!(
            &rule.headers[0],
            HeaderAction::Set { credential: Some(c), .. } if *c == id
        ));

        // Rotation puts the new secret in every rule that used the token.
        let mut state = fakes.state();
        let rotated = Secret::from_input("rotated-secret-1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.book.rotate(id, &rotated), 1);

        // Logging out removes the credential and its rules.
        let response = fakes.handle(Request::Logout { credential: id });
        let Response::Accounts(view) = response else {
            panic!("{response:?}")
        };
        assert_eq!(
            view.notice.as_ref().map(english).as_deref(),
            Some("Logged out of BentoCloud: alice. 1 rule that used it was removed.")
        );
        assert!(fakes.state().credentials.all().is_empty());
        assert!(fakes.state().book.rules().is_empty());
        assert!(fakes.engine.rules.borrow().is_empty());
    }

    #[test]
    fn an_expired_token_is_renewed_in_every_rule_that_used_it() {
        let fakes = bento();
        let login = logged_in(&fakes);
        let mut created = api_token("tok2", "ci");
        created["token"] = json!("old-secret-abcdef");
        created["scopes"] = json!(["api"]);
        created["expired_at"] = json!("2026-01-17T00:00:00Z");
        let spec = TokenSpec {
            name: "ci".into(),
            description: "for CI".into(),
            expiry: Expiry::Days(30),
            scopes: vec!["api".into()],
        };
        let old = create_with(&fakes, login, &created, spec);
        use_on(&fakes, old, "https://a.example");
        use_on(&fakes, old, "https://b.example");
        let installed_before = installed_values(&fakes).len();
        assert!(installed_before >= 2);

        // Past its expiry: the rules stop, and the site view offers renewal.
        let later = Timestamp(NOW.0 + 40 * DAY);
        let at_later = fakes.platform_at(later);
        let site = super::super::fakes::run(handle(
            &at_later,
            Request::SiteStatus {
                url: "https://a.example/".into(),
                tab: None,
            },
        ));
        let Response::Site(site) = site else { panic!() };
        let header = site.rule.map(|r| r.headers[0].clone());
        let credential_view = header
            .and_then(|h| h.credential)
            .unwrap_or_else(|| panic!());
        assert!(credential_view.renewable);

        let mut renewed = api_token("tok3", "ci-2026-01-26");
        renewed["token"] = json!("new-secret-123456");
        fakes.transport.answer(
            "POST /api/v1/api_tokens",
            HttpResponse::new(200, renewed.to_string()),
        );
        fakes.transport.answer(
            "DELETE /api/v1/api_tokens/tok2",
            HttpResponse::new(200, "{}"),
        );
        let sent_before = fakes.transport.sent.borrow().len();
        let response =
            super::super::fakes::run(handle(&at_later, Request::RenewToken { credential: old }));
        let Response::Accounts(view) = response else {
            panic!("{response:?}")
        };
        let notice = view.notice.as_ref().map(english).unwrap_or_default();
        assert!(
            notice.starts_with("Created “ci-2026-01-26”") && notice.contains("put it in 2 headers"),
            "{notice}"
        );
        assert!(
            notice.contains("The old one was deleted at BentoCloud"),
            "{notice}"
        );
        // The same credential id now holds the new token, in both rules.
        let state = fakes.state();
        let c = state.credentials.get(old).unwrap_or_else(|| panic!());
        assert_eq!(c.secret.expose(), "new-secret-123456");
        assert_eq!(c.info.remote_id.as_deref(), Some("tok3"));
        let sent = fakes.transport.sent.borrow();
        let create = &sent[sent_before];
        assert_eq!(
            create.header_value("X-YATAI-API-TOKEN"),
            Some(TOKEN),
            "made by the login"
        );
        let body: Value =
            serde_json::from_str(create.body.as_deref().unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["name"], json!("ci-2026-01-26"));
        assert_eq!(body["description"], json!("for CI"));
        assert_eq!(body["scopes"], json!(["api"]));
        drop(sent);
        let reconciled =
            super::super::fakes::run(super::super::reconcile(&fakes.store, &fakes.engine, later));
        assert!(reconciled.is_ok());
        assert_eq!(
            installed_values(&fakes),
            vec!["Bearer new-secret-123456".to_owned(); installed_before],
            "every header that used the old token"
        );
    }

    #[test]
    fn a_token_without_its_login_is_not_renewed() {
        let fakes = bento();
        let login = logged_in(&fakes);
        let old = create_ci(&fakes, login, "old-secret-abcdef");
        let mut state = fakes.state();
        state.credentials.remove(login);
        fakes.store.seed(&state);
        let before = fakes.store.value.borrow().clone();
        let sent = fakes.transport.sent.borrow().len();
        let response = fakes.handle(Request::RenewToken { credential: old });
        let Response::Error { message } = response else {
            panic!("{response:?}")
        };
        let message = english(&message);
        assert!(
            message.contains("Log in to BentoCloud as alice first"),
            "{message}"
        );
        assert_eq!(*fakes.store.value.borrow(), before);
        assert_eq!(fakes.transport.sent.borrow().len(), sent, "nothing sent");
    }

    #[test]
    fn a_successor_keeps_scopes_lifetime_and_one_date() {
        let mut info = Credential::new(
            0,
            Provider::Jina,
            Endpoint::default_for(Provider::Jina).unwrap_or_else(|| panic!()),
            CredentialKind::PersonalAccessToken,
            Secret::from_input("jina_x_0123456789").unwrap_or_else(|e| panic!("{e}")),
        )
        .info;
        info.name = "laptop-2026-01-01".into();
        info.created = Some(NOW);
        info.expires = Some(Timestamp(NOW.0 + 7 * DAY));
        let spec = TokenSpec::successor(&info, Timestamp(NOW.0 + 8 * DAY));
        assert_eq!(spec.expiry, Expiry::Days(7));
        assert!(
            spec.name.starts_with("laptop-20") && spec.name.len() == "laptop-".len() + 10,
            "{}",
            spec.name
        );
        info.name = String::new();
        info.expires = None;
        let spec = TokenSpec::successor(&info, NOW);
        assert!(spec.name.starts_with("tokenward-"), "{}", spec.name);
        assert_eq!(spec.expiry, Provider::Jina.suggested_expiry());
    }

    #[test]
    fn an_expired_credential_stops_its_rules_and_says_why() {
        let fakes = Fakes::default();
        let mut state = fakes.state();
        let mut c = Credential::new(
            0,
            Provider::HuggingFace,
            Endpoint::default_for(Provider::HuggingFace).unwrap_or_else(|| panic!()),
            CredentialKind::PersonalAccessToken,
            Secret::from_input("hf_secret_token").unwrap_or_else(|e| panic!("{e}")),
        );
        c.info.expires = Some(Timestamp(NOW.0 + DAY));
        let id = state.credentials.add(c).unwrap_or_default();
        fakes.store.seed(&state);
        assert!(matches!(
            use_on(&fakes, id, "https://x.endpoints.huggingface.cloud"),
            Response::Rules(_)
        ));
        assert_eq!(installed_values(&fakes).len(), 3);
        let reconciled =
            super::super::fakes::run(super::super::reconcile(&fakes.store, &fakes.engine, NOW));
        assert_eq!(
            reconciled.map(|r| r.next_expiry),
            Ok(Some(Timestamp(NOW.0 + DAY)))
        );

        // A day later: the rule stays stored, but the browser drops it.
        let later = Timestamp(NOW.0 + DAY);
        let reconciled =
            super::super::fakes::run(super::super::reconcile(&fakes.store, &fakes.engine, later));
        assert_eq!(reconciled.map(|r| r.removed), Ok(3));
        assert!(installed_values(&fakes).is_empty());
        assert_eq!(fakes.state().book.rules().len(), 1);
        let site = super::super::fakes::run(handle(
            &fakes.platform_at(later),
            Request::SiteStatus {
                url: "https://x.endpoints.huggingface.cloud/".into(),
                tab: None,
            },
        ));
        let Response::Site(site) = site else { panic!() };
        let problem = site
            .rule
            .and_then(|r| r.headers[0].credential.clone())
            .and_then(|c| c.problem);
        assert_eq!(
            problem.as_ref().map(english).as_deref(),
            Some("Hugging Face: https://huggingface.co expired on 2025-12-18, so this header is not sent. Create a new one.")
        );
    }

    #[test]
    fn delete_at_the_provider_forgets_the_stored_copy() {
        let fakes = bento();
        let id = logged_in(&fakes);
        let created = create_ci(&fakes, id, "new-secret-abcdef");
        assert!(matches!(
            use_on(&fakes, created, "https://a.example"),
            Response::Rules(_)
        ));
        // A provider that fails keeps everything.
        fakes.transport.answer(
            "DELETE /api/v1/api_tokens/tok2",
            HttpResponse::new(500, "down"),
        );
        let before = fakes.store.value.borrow().clone();
        let failed = fakes.handle(Request::DeleteToken {
            credential: id,
            remote_id: "tok2".into(),
        });
        assert!(matches!(failed, Response::Error { .. }), "{failed:?}");
        assert_eq!(*fakes.store.value.borrow(), before);

        fakes.transport.answer(
            "DELETE /api/v1/api_tokens/tok2",
            HttpResponse::new(200, "{}"),
        );
        let response = fakes.handle(Request::DeleteToken {
            credential: id,
            remote_id: "tok2".into(),
        });
        let Response::Accounts(view) = response else {
            panic!("{response:?}")
        };
        assert_eq!(view.concerned, Some(id));
        assert_eq!(view.credentials.len(), 1);
        assert!(fakes.state().book.rules().is_empty());
    }

    #[test]
    fn copy_helpers_give_the_headers_in_force_and_the_environment() {
        let fakes = bento();
        let id = logged_in(&fakes);
        use_on(&fakes, id, "https://dep.acme.cloud-apps.bentoml.com");
        let response = fakes.handle(Request::CopyHelpers {
            credential: Some(id),
            url: Some("https://dep.acme.cloud-apps.bentoml.com/docs".into()),
        });
        let Response::Copy(view) = response else {
            panic!("{response:?}")
        };
        assert_eq!(
            view.curl.as_deref(),
            Some("curl -H 'Authorization: Bearer yatai-token-0123456789' 'https://dep.acme.cloud-apps.bentoml.com/docs'")
        );
        assert_eq!(
            view.env.as_deref(),
            Some("export BENTO_CLOUD_API_KEY='yatai-token-0123456789'\nexport BENTO_CLOUD_API_ENDPOINT='http://127.0.0.1:9000'\n")
        );
    }
}
