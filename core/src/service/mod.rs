//! The background's logic, free of IO: answer a page's request, and
//! reconcile the browser's rules with stored state.
//!
//! The browser reaches this module only through [`StateStore`] and
//! [`RuleEngine`]; the `tokenward` crate (`src/`) implements them over `storage.local` and
//! `declarativeNetRequest`, and the tests here over memory. Nothing is kept
//! between calls: every call reads stored state, so a service worker that
//! was stopped in between loses nothing.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

mod account;
mod browser_login;
mod lock;

pub use lock::MIN_PASSPHRASE_CHARS;
mod oauth;

use crate::compile::{self, CompileError, Target};
use crate::credential::credential_label;
use crate::credential::{Clock, CredentialId, Credentials, EndpointError, Timestamp};
use crate::dnr::{Rule, RuleSet, UpdateRuleOptions};
use crate::header::HeaderError;
use crate::message::{AccountsView, PopupView, Request, Response, RulesView, SiteView, VaultView};
use crate::pattern::HostNames;
use crate::protection::{self, Protection};
use crate::provider::{site, HttpRequest, HttpResponse, Provider, ProviderError};
use crate::rules::HeaderAction;
use crate::rules::{HeaderDraft, RuleDraft, RuleError, SiteRuleId};
use crate::store::{self, State, StoreError, StoredWrite, TabRules};
use crate::text::{Arg, Localize, Text};
use crate::vault::{RngSource, VaultError, VaultKey};
use crate::{provider, text};
use zeroize::Zeroizing;

/// An error reported by the browser, as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

impl Localize for PlatformError {
    fn text(&self) -> Text {
        text!("error_platform", &self.0)
    }
}

/// Where state is kept: `storage.local` in the browser, and the unlocked
/// vault key in `storage.session`, which stays in memory and ends with the
/// browser.
// These traits are implemented on one thread (wasm, or a test), so their
// futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait StateStore {
    /// Everything `storage.local` holds, as one object (`get(null)`);
    /// [`store::assemble`] reads the state from it.
    async fn load(&self) -> Result<Option<Value>, PlatformError>;
    /// The items of `storage.local` under `keys` (`get(keys)`), as one
    /// object holding those found: what an edit's sized load reads.
    async fn load_keys(&self, keys: &[String]) -> Result<Value, PlatformError>;
    /// One [`StoredWrite`]: its `set` in one call, then its `remove`.
    async fn save(&self, write: StoredWrite) -> Result<(), PlatformError>;
    /// The unlocked vault key, base64, if any.
    async fn session_key(&self) -> Result<Option<String>, PlatformError>;
    /// Keeps the unlocked key, or forgets it (`None`: lock).
    async fn set_session_key(&self, key: Option<&str>) -> Result<(), PlatformError>;
    /// The browser login in progress, in `storage.session` too.
    async fn pending_login(&self) -> Result<Option<Value>, PlatformError>;
    async fn set_pending_login(&self, login: Option<&Value>) -> Result<(), PlatformError>;
    /// The rules for one tab only ([`TabRules`]), in `storage.session` too.
    async fn tab_rules(&self) -> Result<Option<Value>, PlatformError>;
    async fn set_tab_rules(&self, rules: &Value) -> Result<(), PlatformError>;
    /// What the administrator set through browser policy
    /// (`storage.managed.get(null)`); `None` when nothing is.
    async fn managed(&self) -> Result<Option<Value>, PlatformError>;
}

/// The browser's rule sets that carry our headers.
#[allow(async_fn_in_trait)]
pub trait RuleEngine {
    async fn installed(&self, set: RuleSet) -> Result<Vec<Rule>, PlatformError>;
    async fn update(&self, set: RuleSet, update: &UpdateRuleOptions) -> Result<(), PlatformError>;
    /// The browser the rules are for, and its limits.
    fn target(&self) -> Target;
}

/// Where provider requests go: `fetch` in the browser.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Sends one request. `Err` only when no answer came (network, timeout);
    /// any HTTP status is an answer.
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, PlatformError>;

    /// Sends a request whose answer is a stream of lines (Jina's NDJSON
    /// login), kept open under `id` and read with [`Transport::read_stream`].
    /// Returns the answer's status and headers; its body is the stream.
    ///
    /// An open stream lives in the service worker's memory, as the `fetch`
    /// reading it does: when the worker stops, the stream is gone, and
    /// [`StreamRead::Gone`] says so to the next worker.
    async fn open_stream(
        &self,
        id: &str,
        request: &HttpRequest,
    ) -> Result<HttpResponse, PlatformError>;
    /// The complete lines received on stream `id` since the last read. With
    /// `wait`, waits (boundedly) for at least one line or the end.
    async fn read_stream(&self, id: &str, wait: bool) -> StreamRead;
    /// Stops reading stream `id` and forgets it.
    fn close_stream(&self, id: &str);
}

/// What [`Transport::read_stream`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRead {
    /// New complete lines, perhaps none yet.
    Lines(Vec<String>),
    /// The last lines: the provider closed the stream, or it failed.
    Ended(Vec<String>),
    /// No stream has this id here: it was opened by a worker since stopped,
    /// or closed.
    Gone,
}

/// Everything the service reaches the browser through, the time, and
/// randomness (`crypto.getRandomValues` in the browser).
pub struct Platform<'a, S, E, T> {
    pub store: &'a S,
    pub engine: &'a E,
    pub transport: &'a T,
    pub clock: Clock,
    pub rng: &'a RefCell<dyn RngSource>,
    /// The browser's host parser, for hosts typed in Unicode: a request's
    /// are made ASCII where it enters ([`Request::with_ascii_hosts`]).
    pub names: &'a dyn HostNames,
}

impl<S, E, T> Platform<'_, S, E, T> {
    /// `N` bytes from the browser's randomness: login ids, `state`,
    /// `nonce` and PKCE verifiers.
    fn draw<const N: usize>(&self) -> Result<[u8; N], ServiceError> {
        let mut bytes = [0u8; N];
        self.rng
            .borrow_mut()
            .fill(&mut bytes)
            .map_err(VaultError::from)?;
        Ok(bytes)
    }
}

impl<S, E, T> std::fmt::Debug for Platform<'_, S, E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not read the saved settings: {0}")]
    Load(PlatformError),
    #[error("could not save, nothing was changed: {0}")]
    Save(PlatformError),
    #[error("saved, but the browser refused the header rules: {0}")]
    Apply(PlatformError),
    #[error("{provider}: {source}")]
    Provider {
        provider: Provider,
        #[source]
        source: ProviderError,
    },
    /// No answer came from `origin` (empty: unknown, "the provider").
    #[error(
        "could not reach {}: {reason}; nothing was changed",
        if origin.is_empty() { "the provider" } else { origin }
    )]
    Unreachable { origin: String, reason: String },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("the token: {0}")]
    Secret(HeaderError),
    #[error("this credential no longer exists; it may have been removed in another window")]
    UnknownCredential(CredentialId),
    #[error("{}", provider::said(.0))]
    Invalid(Text),
    #[error("Tokenward is locked: unlock it from the toolbar popup first; nothing was changed")]
    Locked,
    #[error(
        "choose how Tokenward keeps your tokens first: in the toolbar popup, protect them with \
         a passphrase (recommended) or keep them without one; nothing was changed"
    )]
    Unchosen,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("could not keep the unlocked key for this session: {0}")]
    SessionKey(PlatformError),
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error("the rules changed since the preview; nothing was imported")]
    ImportStale,
    #[error("{0}; nothing was changed")]
    Policy(#[from] crate::policy::PolicyError),
}

impl Localize for ServiceError {
    fn text(&self) -> Text {
        match self {
            ServiceError::Rule(e) => e.text(),
            ServiceError::Compile(e) => e.text(),
            ServiceError::Store(e) => e.text(),
            ServiceError::Load(e) => text!("error_service_load", &e.0),
            ServiceError::Save(e) => text!("error_service_save", &e.0),
            ServiceError::Apply(e) => text!("error_service_apply", &e.0),
            ServiceError::Provider { provider, source } => {
                text!("error_service_provider", provider.name(), source.text())
            }
            ServiceError::Unreachable { origin, reason } if origin.is_empty() => {
                text!("error_service_unreachable_provider", reason)
            }
            ServiceError::Unreachable { origin, reason } => {
                text!("error_service_unreachable", origin, reason)
            }
            ServiceError::Endpoint(e) => e.text(),
            ServiceError::Secret(e) => text!("error_service_secret", e.text()),
            ServiceError::UnknownCredential(_) => text!("error_service_unknown_credential"),
            ServiceError::Invalid(text) => text.clone(),
            ServiceError::Locked => text!("error_service_locked"),
            ServiceError::Unchosen => text!("error_service_unchosen"),
            ServiceError::Vault(e) => e.text(),
            ServiceError::SessionKey(e) => text!("error_service_session_key", &e.0),
            ServiceError::Import(e) => e.text(),
            ServiceError::ImportStale => text!("import_error_stale"),
            ServiceError::Policy(e) => e.text(),
        }
    }
}

/// What a reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub added: usize,
    pub removed: usize,
    /// When a credential in use next expires: the rules must be recomputed
    /// then, so its header stops on time.
    pub next_expiry: Option<Timestamp>,
}

/// Answers one page request. Errors become [`Response::Error`] with a
/// message fit for the user, with any secret the browser echoed redacted.
pub async fn handle<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    request: Request,
) -> Response {
    answer(platform, request, &mut None).await
}

/// [`handle`], and the state the request ended with where the request
/// kept it (the rule requests: the state is loaded once per request, and
/// the follow-up work, badges and alarms, uses it rather than loading it
/// again); `None` where the request's own module loaded and wrote it. A
/// rule's edit keeps the state it loaded, which may be sized to the edit
/// ([`State::is_whole`]): only the badges follow such an edit, from it
/// where it tells their pages ([`State::tells_pages`]).
pub async fn handle_keeping_state<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    request: Request,
) -> (Response, Option<State>) {
    let mut kept = None;
    let response = answer(platform, request, &mut kept).await;
    (response, kept)
}

async fn answer<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    request: Request,
    kept: &mut Option<State>,
) -> Response {
    let request = request.with_ascii_hosts(platform.names);
    // A rule's edit loads the head and that rule's group; everything else,
    // and an edit the head cannot serve alone, the whole state.
    let loaded = match load_for_edit(platform.store, &request).await {
        Ok(Some(state)) => Ok(state),
        Ok(None) => load(platform.store).await,
        Err(e) => Err(e),
    };
    let mut state = match loaded {
        Ok(state) => state,
        Err(e) => return error_response(&e, &State::default()),
    };
    let now = platform.clock.now;
    if state.locked && !allowed_while_locked(&request) {
        return error_response(&ServiceError::Locked, &state);
    }
    if state.protection == Protection::Unset && adds_a_secret(&request) {
        return error_response(&ServiceError::Unchosen, &state);
    }
    if let Err(e) = against_policy(&state, &request) {
        return error_response(&ServiceError::Policy(e), &state);
    }
    let result = match request {
        Request::ListRules => Ok(None),
        Request::SiteStatus { url, tab } => {
            return match apart(site_view(platform, &state, &url, tab)).await {
                Ok(view) => Response::Site(view),
                Err(e) => error_response(&e, &state),
            };
        }
        Request::OpenPopup { url, tab } => {
            let site = match apart(site_view(platform, &state, &url, tab)).await {
                Ok(view) => view,
                Err(e) => return error_response(&e, &state),
            };
            return Response::Popup(Box::new(PopupView {
                site,
                accounts: accounts_view(&state, now, None, None),
                vault: VaultView::of(&state, None, now),
            }));
        }
        Request::SaveTabRule { tab, draft } => {
            return apart(save_tab_rule(platform, &state, tab, draft)).await;
        }
        Request::DeleteTabRule { id } => {
            return apart(delete_tab_rule(platform, &state, id)).await;
        }
        Request::TestUrl {
            url,
            from,
            method,
            kind,
        } => {
            return Response::UrlTest(crate::message::UrlTestView::of(
                &state.book,
                &state.rules_in_force(now),
                &url,
                from.as_deref(),
                &method,
                kind,
            ));
        }
        Request::SaveRule { mut draft } => {
            if let Err(e) = resolve_credentials(&mut draft, &state.credentials) {
                return error_response(&e, &state);
            }
            let changed = apart(mutate_rule(platform, &mut state, |s| {
                let id = s.save_rule(&draft)?;
                Ok((id, Some(id)))
            }))
            .await;
            return rule_changed(platform, state, changed, kept);
        }
        Request::SetEnabled { id, enabled } => {
            let changed = apart(mutate_rule(platform, &mut state, |s| {
                s.book.set_enabled(id, enabled)?;
                Ok((id, None))
            }))
            .await;
            return rule_changed(platform, state, changed, kept);
        }
        Request::DeleteRule { id } => {
            let changed = apart(mutate_rule(platform, &mut state, |s| {
                s.book.delete(id)?;
                Ok((id, None))
            }))
            .await;
            return rule_changed(platform, state, changed, kept);
        }
        Request::UseCredential {
            credential,
            pattern,
            allow_http,
            header,
        } => {
            let Some(c) = state.credentials.get(credential) else {
                return error_response(&ServiceError::UnknownCredential(credential), &state);
            };
            let draft = RuleDraft {
                id: None,
                label: credential_label(&c.info),
                pattern,
                allow_http,
                enabled: true,
                headers: vec![HeaderDraft {
                    name: header.name,
                    scheme: header.scheme.as_str().to_owned(),
                    secret: c.secret.expose().to_owned(),
                    credential: Some(credential),
                }],
                // Same site, like every new rule; the options page opens it
                // to other sites.
                any_site: false,
                also_from: Vec::new(),
            };
            apart(mutate(platform, &mut state, |s| {
                Ok(s.book.save(&draft).map(|r| Some(r.id))?)
            }))
            .await
        }
        Request::Accounts => return accounts_response(&state, now, None, None),
        Request::Login { login } => return apart(account::login(platform, state, login)).await,
        Request::ListTokens { credential } => {
            return apart(account::list_tokens(platform, state, credential)).await
        }
        Request::CreateToken { credential, spec } => {
            return apart(account::create_token(platform, state, credential, spec)).await
        }
        Request::RenewToken { credential } => {
            return apart(account::renew_token(platform, state, credential)).await
        }
        Request::DeleteToken {
            credential,
            remote_id,
        } => {
            return apart(account::delete_token(
                platform, state, credential, remote_id,
            ))
            .await
        }
        Request::Logout { credential } => {
            return apart(account::logout(platform, state, credential)).await
        }
        Request::SuggestSite {
            credential,
            deployment,
        } => {
            return match state.credentials.get(credential) {
                Some(c) => Response::Suggestion {
                    suggestion: site::suggest_site(&c.info, deployment.as_deref()),
                },
                None => error_response(&ServiceError::UnknownCredential(credential), &state),
            }
        }
        Request::CopyHelpers { credential, url } => {
            return account::copy_helpers(&state, now, credential, url.as_deref())
        }
        Request::VaultStatus => {
            return Response::Vault(VaultView::of(&state, None, platform.clock.now))
        }
        Request::Protect {
            passphrase,
            idle_minutes,
        } => return apart(lock::protect(platform, state, &passphrase.0, idle_minutes)).await,
        Request::Unlock { passphrase } => {
            return apart(lock::unlock(platform, state, &passphrase.0)).await
        }
        Request::Lock => return apart(lock::lock(platform, state)).await,
        Request::ChangePassphrase { current, new } => {
            return apart(lock::change_passphrase(platform, state, &current.0, &new.0)).await
        }
        Request::UseConvenience { passphrase } => {
            return apart(lock::use_convenience(platform, state, &passphrase.0)).await
        }
        Request::SetIdleLock { minutes } => {
            return apart(lock::set_idle_lock(platform, state, minutes)).await
        }
        Request::StartBrowserLogin {
            provider,
            endpoint,
            client_id,
            redirect_uri,
        } => {
            return apart(browser_login::start(
                platform,
                &state,
                provider,
                &endpoint,
                &client_id,
                &redirect_uri,
            ))
            .await
        }
        Request::FinishWebAuthFlow { redirect, error } => {
            return apart(browser_login::finish_web_auth_flow(
                platform, state, redirect, error,
            ))
            .await
        }
        Request::RefreshLogins => return apart(oauth::refresh_due(platform)).await,
        Request::PollBrowserLogin => return apart(browser_login::poll(platform, state)).await,
        Request::BrowserLoginStatus => {
            return apart(browser_login::status(platform.store, &state)).await
        }
        Request::CancelBrowserLogin => return apart(browser_login::cancel(platform, &state)).await,
        Request::SetReminders { enabled } => {
            let done = apart(mutate(platform, &mut state, |s| {
                s.reminders_off = !enabled;
                Ok(())
            }))
            .await;
            return match done {
                Ok(()) => accounts_response(
                    &state,
                    now,
                    Some(if enabled {
                        text!("notice_reminders_on")
                    } else {
                        text!("notice_reminders_off")
                    }),
                    None,
                ),
                Err(e) => error_response(&e, &state),
            };
        }
        Request::PreviewImport { file } => {
            return match preview_import(&state, &file) {
                Ok(preview) => Response::ImportPreview(preview),
                Err(e) => error_response(&e, &state),
            };
        }
        Request::Import {
            file,
            basis,
            choices,
        } => {
            return match apart(import(platform, &mut state, &file, &basis, &choices)).await {
                Ok((added, changed)) => {
                    let rules =
                        RulesView::of_state(&state, now, None, platform.engine.target().limits);
                    *kept = Some(state);
                    Response::Imported {
                        rules,
                        added,
                        changed,
                    }
                }
                Err(e) => error_response(&e, &state),
            };
        }
        Request::Export { passphrase } => {
            return lock::export(platform, &state, passphrase.as_ref().map(|p| p.0.as_str()))
        }
    };
    let response = match result {
        Ok(saved) => Response::Rules(RulesView::of_state(
            &state,
            now,
            saved,
            platform.engine.target().limits,
        )),
        Err(e) => error_response(&e, &state),
    };
    *kept = Some(state);
    response
}

/// One request kind's work behind a pointer. Each handler's future is then
/// its own function, not a part of one state machine that holds every
/// handler: a new worker compiles its wasm lazily, function by function, on
/// first call, so the first request compiles only what it runs (one state
/// machine of every handler was 100 kB of code to compile before the first
/// answer). The background serves a page's request through it too.
pub fn apart<'a, O>(work: impl Future<Output = O> + 'a) -> Pin<Box<dyn Future<Output = O> + 'a>> {
    Box::pin(work)
}

/// The answer to a rule's edit: the list's change ([`RulesView::change_of`]),
/// from the state the edit left, which is kept for the follow-up work,
/// whole or sized to the edit.
fn rule_changed<S, E: RuleEngine, T>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    changed: Result<(SiteRuleId, Option<SiteRuleId>), ServiceError>,
    kept: &mut Option<State>,
) -> Response {
    let response = match changed {
        Ok((id, saved)) => Response::RuleChanged(RulesView::change_of(
            &state,
            id,
            platform.clock.now,
            saved,
            platform.engine.target().limits,
        )),
        Err(e) => error_response(&e, &state),
    };
    // Kept whole or sized: the badges after it use it as it is when it
    // holds what their pages need (`State::tells_pages`).
    *kept = Some(state);
    response
}

/// Reads an import file and runs it on a copy of the state: what importing
/// it would do, written nowhere.
fn preview_import(
    state: &State,
    file: &crate::message::ImportFile,
) -> Result<crate::import::ImportPreview, ServiceError> {
    let reading = read_import(state, file)?;
    let mut copy = state.clone();
    let entries = crate::import::plan(&mut copy, &reading, None);
    Ok(crate::import::ImportPreview {
        format: reading.format,
        entries,
        accounts: reading.credentials.len(),
        basis: crate::import::basis(state),
    })
}

fn read_import(
    state: &State,
    file: &crate::message::ImportFile,
) -> Result<crate::import::Reading, ServiceError> {
    let passphrase = file.passphrase.as_ref().map(|p| p.0.as_str());
    let reading = crate::import::read(&file.text, passphrase)?;
    if reading.carries_secrets() && state.protection == Protection::Unset {
        return Err(ServiceError::Unchosen);
    }
    if reading.carries_secrets() && state.protection_missing() {
        return Err(crate::policy::PolicyError::ProtectionRequired.into());
    }
    Ok(reading)
}

/// Imports the entries the user confirmed: the same run as the preview's,
/// on the state itself, saved in one write and applied, or nothing at all.
async fn import<S, E, T>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    file: &crate::message::ImportFile,
    basis: &str,
    choices: &[crate::import::ImportChoice],
) -> Result<(usize, usize), ServiceError>
where
    S: StateStore,
    E: RuleEngine,
    T: Transport,
{
    if crate::import::basis(state) != basis {
        return Err(ServiceError::ImportStale);
    }
    let reading = read_import(state, file)?;
    mutate(platform, state, |next| {
        let entries = crate::import::plan(next, &reading, Some(choices));
        let count = |f: fn(&crate::import::Outcome) -> bool| {
            entries.iter().filter(|e| f(&e.outcome)).count()
        };
        Ok((
            count(|o| matches!(o, crate::import::Outcome::New)),
            count(|o| matches!(o, crate::import::Outcome::Changed { .. })),
        ))
    })
    .await
}

/// What a locked state may still answer: views that need no secret, and
/// the lock itself.
fn allowed_while_locked(request: &Request) -> bool {
    matches!(
        request,
        Request::ListRules
            | Request::SiteStatus { .. }
            | Request::OpenPopup { .. }
            // Removing a tab rule only ever stops a header.
            | Request::DeleteTabRule { .. }
            | Request::TestUrl { .. }
            | Request::Accounts
            | Request::SuggestSite { .. }
            | Request::VaultStatus
            | Request::Unlock { .. }
            | Request::Lock
            | Request::SetIdleLock { minutes: None }
            | Request::Export { passphrase: None }
            | Request::BrowserLoginStatus
            | Request::CancelBrowserLogin
            // Does nothing while locked: the refresh tokens are sealed.
            | Request::RefreshLogins
    )
}

/// Requests that would keep a new secret: refused until the user chose how
/// secrets are kept, so that no token is written in the clear by default.
fn adds_a_secret(request: &Request) -> bool {
    match request {
        Request::SaveRule { draft } | Request::SaveTabRule { draft, .. } => {
            draft.headers.iter().any(|h| !h.secret.trim().is_empty())
        }
        Request::Login { .. }
        | Request::CreateToken { .. }
        | Request::RenewToken { .. }
        | Request::UseCredential { .. }
        | Request::StartBrowserLogin { .. }
        | Request::FinishWebAuthFlow { .. }
        | Request::PollBrowserLogin => true,
        _ => false,
    }
}

/// What the administrator's policy refuses before anything is done: a
/// rule outside the allowed sites, plain http or "any site" where not
/// allowed, keeping tokens without the passphrase it requires, a longer
/// idle time than it allows, an export with tokens it forbids.
fn against_policy(state: &State, request: &Request) -> Result<(), crate::policy::PolicyError> {
    use crate::policy::PolicyError;
    let policy = &state.policy;
    if !policy.present {
        return Ok(());
    }
    if state.protection_missing() && adds_a_secret(request) {
        return Err(PolicyError::ProtectionRequired);
    }
    match request {
        Request::SaveRule { draft } | Request::SaveTabRule { draft, .. } => {
            match draft.parse_pattern() {
                Ok(pattern) => policy.check_site(&pattern, draft.any_site)?,
                // A pattern that does not parse is the editor's to report.
                Err(_) if draft.any_site && !policy.allow_any_site => {
                    return Err(PolicyError::AnySite)
                }
                Err(_) => {}
            }
        }
        Request::UseCredential { pattern, .. } => {
            let parsed = crate::pattern::SitePattern::parse(
                pattern,
                crate::pattern::ParseOptions { allow_http: true },
            );
            if let Ok(pattern) = parsed {
                if !policy.allows(&pattern) {
                    return Err(PolicyError::OutsideAllowedSites(pattern.to_string()));
                }
            }
        }
        Request::UseConvenience { .. } if policy.require_protection => {
            return Err(PolicyError::ProtectionRequired);
        }
        Request::SetIdleLock { minutes }
        | Request::Protect {
            idle_minutes: minutes,
            ..
        } => {
            // Protecting without an idle time is fine: the policy's applies
            // (`State::idle_minutes`).
            let asked_none = matches!(request, Request::SetIdleLock { .. }) && minutes.is_none();
            if let Some(max) = policy.max_idle_minutes {
                if asked_none || minutes.is_some_and(|m| m > max) {
                    return Err(PolicyError::IdleTooLong(max));
                }
            }
        }
        Request::Export {
            passphrase: Some(_),
        } if !policy.allow_export_with_secrets => {
            return Err(PolicyError::ExportWithSecrets);
        }
        _ => {}
    }
    Ok(())
}

/// A header drafted from a stored credential takes that credential's
/// secret, whatever the page sent.
fn resolve_credentials(
    draft: &mut RuleDraft,
    credentials: &Credentials,
) -> Result<(), ServiceError> {
    for row in &mut draft.headers {
        if let Some(id) = row.credential {
            let c = credentials
                .get(id)
                .ok_or(ServiceError::UnknownCredential(id))?;
            row.secret = c.secret.expose().to_owned();
        }
    }
    Ok(())
}

/// What is sent to the page at `url`, with the tab's own rules when the
/// page knows its tab.
async fn site_view<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    url: &str,
    tab: Option<i32>,
) -> Result<SiteView, ServiceError> {
    let tabs = match tab {
        Some(_) => load_tab_rules(platform.store).await?,
        None => TabRules::default(),
    };
    // The administrator's rules count as the user's here: the popup says
    // what is sent to the site, whoever set it.
    let book = state.book_with_managed(platform.clock.now);
    let mut view = SiteView::of(
        &book,
        &state.credentials,
        platform.clock.now,
        url,
        tab.map(|t| (t, tabs.rules.as_slice())),
    );
    view.locked = state.locked;
    if view.rule.is_none() {
        // The administrator's rule for this page, waiting for a login the
        // user has not made: the popup says which.
        let spec = crate::matcher::canonical(url.trim());
        view.managed_waiting = state
            .policy
            .rules
            .iter()
            .filter(|r| spec.as_deref().is_some_and(|s| r.pattern.matches_spec(s)))
            .flat_map(|r| &r.headers)
            .find(|h| {
                crate::policy::login_for(&state.credentials, &h.login, platform.clock.now).is_none()
            })
            .map(|h| {
                (
                    h.login.provider.name().to_owned(),
                    h.login.endpoint.as_str().to_owned(),
                )
            });
    }
    if let Some(rule) = view.rule.as_mut() {
        let held_back = book
            .get(rule.id)
            .is_some_and(|r| state.held_back_by_policy(r));
        if rule.enabled && held_back {
            rule.held_back = Some(crate::message::NotSent::NotAllowed);
        }
    }
    Ok(view)
}

fn accounts_response(
    state: &State,
    now: Timestamp,
    notice: Option<Text>,
    concerned: Option<CredentialId>,
) -> Response {
    Response::Accounts(accounts_view(state, now, notice, concerned))
}

fn accounts_view(
    state: &State,
    now: Timestamp,
    notice: Option<Text>,
    concerned: Option<CredentialId>,
) -> AccountsView {
    let mut view = AccountsView::of(&state.credentials, &state.book, now);
    view.reminders = !state.reminders_off;
    view.suggested = state.policy.providers.clone();
    view.notice = notice;
    view.concerned = concerned;
    view
}

/// Makes the browser's rules equal to what stored state compiles to at
/// `now`, in one update. Safe to call at any time and any number of times.
/// It runs when the worker starts and when storage changed from outside,
/// so it first brings stored state written by an older version (or left
/// untidy) to this build's schema and layout ([`store::upgrade`]), which
/// writes only when there is something to do.
pub async fn reconcile<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
    now: Timestamp,
) -> Result<Reconciled, ServiceError> {
    Ok(reconcile_keeping(store, engine, now).await?.0)
}

/// [`reconcile`], and the whole state it applied, as stored: what follows
/// it (the reminders, the alarms, the badges) reads that instead of loading
/// everything again.
pub async fn reconcile_keeping<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
    now: Timestamp,
) -> Result<(Reconciled, State), ServiceError> {
    let (items, beside) = join(load_items(store), Beside::read(store)).await;
    let mut items = items?;
    if let Some(write) = items.as_ref().and_then(store::upgrade) {
        store.save(write).await.map_err(ServiceError::Save)?;
        items = load_items(store).await?;
    }
    let state = open_items(items.as_ref(), beside)?;
    if let Some(write) = items
        .as_ref()
        .and_then(|items| store::reindex(items, &state))
    {
        store.save(write).await.map_err(ServiceError::Save)?;
    }
    let done = apply(store, engine, &state, now).await?;
    Ok((done, state))
}

/// The tab rules in `storage.session`.
async fn load_tab_rules<S: StateStore>(store: &S) -> Result<TabRules, ServiceError> {
    Ok(TabRules::decode(
        store
            .tab_rules()
            .await
            .map_err(ServiceError::Load)?
            .as_ref(),
    ))
}

/// Adds a rule for one tab: validated as any rule, kept in
/// `storage.session`, applied as session rules limited to the tab.
async fn save_tab_rule<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    tab: i32,
    mut draft: RuleDraft,
) -> Response {
    if let Err(e) = resolve_credentials(&mut draft, &state.credentials) {
        return error_response(&e, state);
    }
    let done = async {
        let mut tabs = load_tab_rules(platform.store).await?;
        let id = tabs.add(tab, &draft)?;
        change_tab_rules(platform, state, &tabs).await?;
        Ok::<_, ServiceError>(id)
    }
    .await;
    match done {
        Ok(id) => rules_response(platform, state, Some(id)),
        Err(e) => error_response(&e, state),
    }
}

async fn delete_tab_rule<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    id: crate::rules::SiteRuleId,
) -> Response {
    let done = async {
        let mut tabs = load_tab_rules(platform.store).await?;
        if !tabs.remove(id) {
            return Err(ServiceError::Rule(RuleError::NotFound(id)));
        }
        change_tab_rules(platform, state, &tabs).await
    }
    .await;
    match done {
        Ok(()) => rules_response(platform, state, None),
        Err(e) => error_response(&e, state),
    }
}

/// A tab closed: its rules go, from `storage.session` and the browser.
pub async fn tab_closed<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
    now: Timestamp,
    tab: i32,
) -> Result<(), ServiceError> {
    let mut tabs = load_tab_rules(store).await?;
    if !tabs.close_tab(tab) {
        return Ok(());
    }
    store
        .set_tab_rules(&tabs.encode())
        .await
        .map_err(ServiceError::Save)?;
    let state = load(store).await?;
    apply(store, engine, &state, now).await.map(|_| ())
}

/// Checks the tab rules compile beside the book's session rules, keeps
/// them, then applies.
async fn change_tab_rules<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    tabs: &TabRules,
) -> Result<(), ServiceError> {
    desired_session_rules(state, tabs, platform.clock.now, platform.engine.target())?;
    platform
        .store
        .set_tab_rules(&tabs.encode())
        .await
        .map_err(ServiceError::Save)?;
    apply(platform.store, platform.engine, state, platform.clock.now).await?;
    Ok(())
}

fn rules_response<S, E: RuleEngine, T>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    saved: Option<crate::rules::SiteRuleId>,
) -> Response {
    Response::Rules(RulesView::of_state(
        state,
        platform.clock.now,
        saved,
        platform.engine.target().limits,
    ))
}

/// [`due_reminders`]' answer.
#[derive(Debug)]
pub struct Due {
    /// The reminders to show.
    pub reminders: Vec<crate::reminder::Reminder>,
    /// The whole state, as stored once the reminders are marked: read in
    /// the same exclusive section, so the alarms and badges that follow a
    /// request whose own state was not whole (an edit's sized load) need
    /// not read it again.
    pub state: State,
}

/// The expiry reminders due now, marked as shown in stored state before
/// they are returned, so a worker stopped in between never shows one twice.
/// None while locked (the state cannot be written then) or when the user
/// turned them off.
pub async fn due_reminders<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
) -> Result<Due, ServiceError> {
    due_reminders_of(platform, load(platform.store).await?).await
}

/// [`due_reminders`] from `state`, the whole state as stored, read in the
/// same exclusive section ([`reconcile_keeping`]'s).
pub async fn due_reminders_of<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    mut state: State,
) -> Result<Due, ServiceError> {
    let none = |state| {
        Ok(Due {
            reminders: Vec::new(),
            state,
        })
    };
    if state.locked || state.reminders_off {
        return none(state);
    }
    let due = crate::reminder::due(&state.credentials, &state.reminded, platform.clock.now);
    if due.is_empty() {
        return none(state);
    }
    mutate(platform, &mut state, |s| {
        for (reminder, passed) in &due {
            s.reminded.insert(reminder.credential, passed.clone());
        }
        // Forget the record of credentials that are gone.
        let ids: Vec<CredentialId> = s.credentials.all().iter().map(|c| c.info.id).collect();
        s.reminded.retain(|id, _| ids.contains(id));
        Ok(())
    })
    .await?;
    Ok(Due {
        reminders: due.into_iter().map(|(reminder, _)| reminder).collect(),
        state,
    })
}

/// Reads stored state as the service does, for the background's badges
/// and alarms.
pub async fn read<S: StateStore>(store: &S) -> Result<State, ServiceError> {
    load(store).await
}

/// Reads stored state, opening its sealed secrets with the session's key
/// when the vault is unlocked. Locked, the secrets read as placeholders and
/// [`State::locked`] is set.
async fn load<S: StateStore>(store: &S) -> Result<State, ServiceError> {
    let (items, beside) = join(load_items(store), Beside::read(store)).await;
    open_items(items?.as_ref(), beside)
}

/// Everything `storage.local` holds, its texts read once
/// ([`store::read_texts`]) for the passes of a whole load.
async fn load_items<S: StateStore>(store: &S) -> Result<Option<Value>, ServiceError> {
    let mut items = store.load().await.map_err(ServiceError::Load)?;
    if let Some(items) = items.as_mut() {
        store::read_texts(items);
    }
    Ok(items)
}

/// Both futures, run at once: the browser works on two calls while wasm
/// waits for either (the core has no executor of its own, and needs no
/// more than this).
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(|cx| {
        if done_a.is_none() {
            if let std::task::Poll::Ready(out) = a.as_mut().poll(cx) {
                done_a = Some(out);
            }
        }
        if done_b.is_none() {
            if let std::task::Poll::Ready(out) = b.as_mut().poll(cx) {
                done_b = Some(out);
            }
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => std::task::Poll::Ready((a, b)),
            (a, b) => {
                done_a = a;
                done_b = b;
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// The state a rule's edit (save, toggle, delete) needs, sized to it: the
/// head, the group of the rule edited (or of the id a new rule gets) and
/// the credentials the draft and that rule name, in at most three reads of
/// a few keys each, where [`load`] reads every key. The rules and
/// credentials not loaded are counted from the head ([`State::unloaded`],
/// the head's [`store::BookIndex`]), so the edit's checks (a duplicate
/// pattern, the browser's limits) and its write see the whole book.
/// `None` when the head cannot serve the edit alone, and the whole state
/// is loaded instead: no state yet, another schema or layout, no index (a
/// head an older build wrote) or one that disagrees with the head's list,
/// or a protected vault without the session's key (a locked state is the
/// whole load's to make).
async fn load_for_edit<S: StateStore>(
    store: &S,
    request: &Request,
) -> Result<Option<State>, ServiceError> {
    let (edited, named): (Option<SiteRuleId>, Vec<CredentialId>) = match request {
        Request::SaveRule { draft } => (
            draft.id,
            draft.headers.iter().filter_map(|h| h.credential).collect(),
        ),
        Request::SetEnabled { id, .. } | Request::DeleteRule { id } => (Some(*id), Vec::new()),
        _ => return Ok(None),
    };
    let read = |keys| read_keys(store, keys);
    // The head, and with it what is known to be needed before reading it:
    // the edited rule's group, the credentials the draft names (a key
    // not stored is simply not found). Each read is a round trip to the
    // browser's storage, which Firefox pays in milliseconds.
    let mut first = vec![store::STATE_KEY.to_owned()];
    first.extend(edited.map(store::rules_key));
    first.extend(named.iter().map(|&id| store::credential_key(id)));
    let (items, beside) = join(read(first), Beside::read(store)).await;
    let mut items = items?;
    let Some(head) = items.get(store::STATE_KEY) else {
        return Ok(None);
    };
    let Some(plan) = store::ReadPlan::of(head, edited) else {
        return Ok(None);
    };
    // A new rule's group (its id is the head's), and the credentials the
    // edited rule itself takes its headers from, if not read yet.
    let mut missing: Vec<String> = Vec::new();
    if edited.is_none() {
        missing.extend(plan.groups().iter().cloned());
    }
    missing.extend(
        plan.credential_keys(plan.credentials_of_rules(&items))
            .filter(|key| items.get(key).is_none()),
    );
    if !missing.is_empty() {
        merge_items(&mut items, read(missing).await?);
    }
    open_planned(&plan, &items, beside)
}

/// The state the pages at `urls` are shown by (the toolbar's badges after
/// a rule's edit), sized to them: the head, the groups of the rules whose
/// pattern contains one of the URLs ([`store::ReadPlan::for_pages`]) and
/// the credentials those rules name, where [`load`] reads every key. It
/// holds every rule that covers one of the pages, with its credentials,
/// so what it says of those pages is what the whole state says
/// (`tests::a_read_for_pages_tells_them_what_the_whole_state_does`). The
/// whole state when the head cannot serve it alone, as for an edit.
pub async fn read_for_pages<S: StateStore>(
    store: &S,
    urls: &[String],
) -> Result<State, ServiceError> {
    let read = |keys| read_keys(store, keys);
    let (items, beside) = join(read(vec![store::STATE_KEY.to_owned()]), Beside::read(store)).await;
    let mut items = items?;
    let plan = items
        .get(store::STATE_KEY)
        .and_then(|head| store::ReadPlan::for_pages(head, urls));
    let Some(plan) = plan else {
        return load(store).await;
    };
    if !plan.groups().is_empty() {
        merge_items(&mut items, read(plan.groups().to_vec()).await?);
        let named: Vec<String> = plan
            .credential_keys(plan.credentials_of_rules(&items))
            .collect();
        if !named.is_empty() {
            merge_items(&mut items, read(named).await?);
        }
    }
    match open_planned(&plan, &items, beside)? {
        Some(state) => Ok(state),
        // Locked, or so it may be: the whole load tells.
        None => load(store).await,
    }
}

/// The items of `storage.local` under `keys`, for a sized read.
async fn read_keys<S: StateStore>(store: &S, keys: Vec<String>) -> Result<Value, ServiceError> {
    store.load_keys(&keys).await.map_err(ServiceError::Load)
}

/// What a sized read (`plan`) read, `items`, opened as a state that knows
/// what it does not hold; `None` when the state is protected and the
/// session holds no key that opens it, which only a whole load can tell
/// from locked.
fn open_planned(
    plan: &store::ReadPlan,
    items: &Value,
    beside: Beside,
) -> Result<Option<State>, ServiceError> {
    let partial = plan.partial_items(items);
    let (mut state, keyless) = open_items_keyed(Some(&partial), beside)?;
    if keyless {
        return Ok(None);
    }
    plan.count_unloaded(&mut state, items);
    Ok(Some(state))
}

/// `more`'s items put in `items` (both objects of `storage.local` items).
fn merge_items(items: &mut Value, more: Value) {
    if let (Some(items), Value::Object(more)) = (items.as_object_mut(), more) {
        items.extend(more);
    }
}

/// The administrator's policy. One that cannot be read is no policy: the
/// browser delivers it, and a failure to read it is the browser's (Firefox
/// answers an error when no policy names the extension).
async fn read_policy<S: StateStore>(store: &S) -> crate::policy::Policy {
    let managed = store.managed().await.ok().flatten();
    crate::policy::Policy::read(managed.as_ref())
}

/// What a load reads beside `storage.local`, asked at the same time as
/// it: the administrator's policy and the session's vault key. Each is a
/// round trip to the browser (Firefox pays milliseconds for each), so the
/// key is asked for before the state says whether it is protected, and
/// dropped unread when it is not.
struct Beside {
    policy: crate::policy::Policy,
    session_key: Result<Option<Zeroizing<String>>, PlatformError>,
}

impl Beside {
    async fn read<S: StateStore>(store: &S) -> Beside {
        let (policy, session_key) = join(read_policy(store), store.session_key()).await;
        Beside {
            policy,
            session_key: session_key.map(|text| text.map(Zeroizing::new)),
        }
    }
}

/// The vault key in the session's `text`, if there is one and it opens
/// this vault. A key that does not (left by a vault since replaced) counts
/// as locked.
fn key_for(
    text: Result<Option<Zeroizing<String>>, PlatformError>,
    header: &crate::vault::VaultHeader,
) -> Result<Option<VaultKey>, ServiceError> {
    let Some(text) = text.map_err(ServiceError::Load)? else {
        return Ok(None);
    };
    let Ok(key) = VaultKey::from_session_storage_base64(&text) else {
        return Ok(None);
    };
    Ok(header.verify_key(&key).is_ok().then_some(key))
}

/// [`load`] of what `storage.local` holds, already read.
fn open_items(items: Option<&Value>, beside: Beside) -> Result<State, ServiceError> {
    Ok(open_items_keyed(items, beside)?.0)
}

/// [`open_items`], and whether the state is protected and the session holds
/// no key that opens it: an edit's sized load, which may hold no sealed
/// secret to tell it is locked, then reads the whole state instead.
fn open_items_keyed(items: Option<&Value>, beside: Beside) -> Result<(State, bool), ServiceError> {
    let Some((items, mut stored)) = items.and_then(|i| Some((i, store::assemble(i)?))) else {
        let state = State {
            policy: beside.policy,
            ..State::default()
        };
        return Ok((state, false));
    };
    let protection: Protection = stored
        .get("vault")
        .map(crate::json::read)
        .transpose()
        .map_err(|e| StoreError::Unreadable(e.to_string()))?
        .unwrap_or_default();
    let Beside {
        policy,
        session_key,
    } = beside;
    let key = match protection.header() {
        Some(header) => key_for(session_key, header)?,
        None => None,
    };
    let sealed = protection::open_secrets(&mut stored, key.as_ref())?;
    let mut state = State::decode(Some(stored))?;
    state.policy = policy;
    let keyless = protection.is_protected() && key.is_none();
    state.locked = keyless && sealed;
    state.older_layout = store::in_older_layout(items);
    Ok((state, keyless))
}

/// [`key_for`] of the session's key, read now: for a write, whose state
/// may have been loaded before the vault was unlocked.
async fn session_key<S: StateStore>(
    store: &S,
    header: &crate::vault::VaultHeader,
) -> Result<Option<VaultKey>, ServiceError> {
    let text = store
        .session_key()
        .await
        .map(|text| text.map(Zeroizing::new));
    key_for(text, header)
}

/// Seals the secrets in `value` (a state in [`State::encode`]'s form, whole
/// or only some of its rules and credentials) when `state` is protected,
/// under the session's vault key.
async fn seal_for_storage<S, E, T>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    value: &mut Value,
) -> Result<(), ServiceError>
where
    S: StateStore,
{
    if let Some(header) = state.protection.header() {
        let key = session_key(platform.store, header)
            .await?
            .ok_or(ServiceError::Locked)?;
        protection::seal_secrets(value, &key, &mut *platform.rng.borrow_mut())?;
    }
    Ok(())
}

/// Changes the state, checks its rules still compile, saves it, then
/// applies it. A refused change or a failed save leaves stored state and
/// the browser as they were.
async fn mutate<S, E, T, F, R>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    change: F,
) -> Result<R, ServiceError>
where
    S: StateStore,
    E: RuleEngine,
    T: Transport,
    F: FnOnce(&mut State) -> Result<R, ServiceError>,
{
    if state.locked {
        return Err(ServiceError::Locked);
    }
    let mut next = state.clone();
    let out = change(&mut next)?;
    let target = platform.engine.target();
    compile::fits(&next.book, next.policy.reserved(), target.limits)?;
    compile::compile(&next.book, target)?;
    save(platform, state, &next).await?;
    *state = next;
    apply(platform.store, platform.engine, state, platform.clock.now).await?;
    Ok(out)
}

/// Saves `after` over `before` (the state as loaded): the head, the groups
/// of the rules that differ ([`store::RULES_PER_KEY`] rules at most each)
/// and the credentials that differ, their secrets sealed when protected, in
/// one write; the keys of what `before` held and `after` does not are
/// removed after it. All of it is written when the secrets must be sealed
/// anew (a new vault key, or none any more) or the state came from an older
/// layout.
pub(super) async fn save<S: StateStore, E, T>(
    platform: &Platform<'_, S, E, T>,
    before: &State,
    after: &State,
) -> Result<(), ServiceError> {
    if after.locked {
        return Err(ServiceError::Locked);
    }
    let reseal = before.locked || before.protection.header() != after.protection.header();
    let write = if before.older_layout || reseal {
        let mut whole = after.encode();
        seal_for_storage(platform, after, &mut whole).await?;
        StoredWrite::whole(whole)
    } else {
        // The groups of the rules added, changed or deleted, each written
        // whole: what it holds after the change.
        let touched: std::collections::BTreeSet<String> = after
            .book
            .rules()
            .iter()
            .filter(|rule| before.book.get(rule.id) != Some(*rule))
            .map(|rule| rule.id)
            .chain(
                before
                    .book
                    .rules()
                    .iter()
                    .filter(|rule| after.book.get(rule.id).is_none())
                    .map(|rule| rule.id),
            )
            .map(store::rules_key)
            .collect();
        let rules: Vec<Value> = after
            .book
            .rules()
            .iter()
            .filter(|rule| touched.contains(&store::rules_key(rule.id)))
            .map(store::encode_rule)
            .collect();
        let credentials: Vec<Value> = after
            .credentials
            .all()
            .iter()
            .filter(|c| before.credentials.get(c.info.id) != Some(*c))
            .map(store::encode_credential)
            .collect();
        // Sealed as in a whole state: each secret under its own place.
        let mut changed = serde_json::json!({ "rules": rules, "credentials": credentials });
        seal_for_storage(platform, after, &mut changed).await?;
        StoredWrite::head_and(after.encode_head(), changed)
    };
    platform
        .store
        .save(write.removing(before, after))
        .await
        .map_err(ServiceError::Save)
}

/// [`mutate`] for a change to one site rule (`change` says which): the
/// browser gets that rule's own update, computed from it alone
/// ([`compile::rule_update`]) and sent in one call, without reading the
/// installed rules back or compiling the rest of the book. The rules the
/// browser holds were a full reconciliation's (the background reconciles
/// when it starts and when storage changes from outside), so the result is
/// the same as a full reconciliation's; should the browser refuse the
/// update, a full reconciliation is tried before the error is reported.
async fn mutate_rule<S, E, T, F, R>(
    platform: &Platform<'_, S, E, T>,
    state: &mut State,
    change: F,
) -> Result<(SiteRuleId, R), ServiceError>
where
    S: StateStore,
    E: RuleEngine,
    T: Transport,
    F: FnOnce(&mut State) -> Result<(SiteRuleId, R), ServiceError>,
{
    if state.locked {
        return Err(ServiceError::Locked);
    }
    let target = platform.engine.target();
    let now = platform.clock.now;
    let mut next = state.clone();
    let (id, out) = change(&mut next)?;
    compile::fits_usage(next.usage(), next.policy.reserved(), target.limits)?;
    let update = compile::rule_update(id, next.rule_in_force(id, now).as_ref(), target)?;
    let set = if next.protection.is_protected() {
        RuleSet::Session
    } else {
        RuleSet::Dynamic
    };
    // The write and the browser's update at once: the header goes live
    // after the longer of the two, not after both. The update is asked
    // for first (`join` polls its first future first): the write's
    // encoding and sealing then run in wasm while the browser works on
    // the rules, instead of before it is asked. Should either fail, a
    // full reconciliation brings the browser back to what is stored, the
    // state before the change if the write failed (a worker stopped in
    // between is reconciled by the next one, on its first event).
    let (updated, saved) = join(
        platform.engine.update(set, &update),
        save(platform, state, &next),
    )
    .await;
    if saved.is_ok() {
        *state = next;
    }
    if saved.is_err() || updated.is_err() {
        if saved.is_ok() && state.is_whole() {
            apply(platform.store, platform.engine, state, now).await?;
        } else {
            // The whole state, which a sized load did not read.
            let repaired = reconcile(platform.store, platform.engine, now).await;
            saved?;
            repaired?;
        }
    }
    Ok((id, out))
}

/// The session rules: the book's when protected, and the tab rules (none
/// while locked: a lock stops every header).
fn desired_session_rules(
    state: &State,
    tabs: &TabRules,
    now: Timestamp,
    target: Target,
) -> Result<Vec<Rule>, CompileError> {
    let mut rules = if state.protection.is_protected() {
        compile::compile(&state.rules_in_force(now), target)?
    } else {
        Vec::new()
    };
    if !state.locked {
        // Session rules share one limit: the tab rules get what the book
        // leaves.
        let left = compile::Limits {
            max_rules: target.limits.max_rules.saturating_sub(rules.len()),
            ..target.limits
        };
        rules.extend(compile::compile_tab_rules(
            &tabs.rules,
            Target {
                limits: left,
                ..target
            },
        )?);
    }
    rules.sort_by_key(|r| r.id);
    Ok(rules)
}

async fn apply<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
    state: &State,
    now: Timestamp,
) -> Result<Reconciled, ServiceError> {
    let target = engine.target();
    let tabs = load_tab_rules(store).await?;
    // Protected, header values must never reach the profile on disk, where
    // the browser keeps dynamic rules: they go to session rules, in memory.
    // Tab rules are always session rules: `tabIds` is only allowed there.
    let session = desired_session_rules(state, &tabs, now, target)?;
    let dynamic = if state.protection.is_protected() {
        Vec::new()
    } else {
        compile::compile(&state.rules_in_force(now), target)?
    };
    let (chosen, other, desired, other_desired) = if state.protection.is_protected() {
        (RuleSet::Session, RuleSet::Dynamic, session, dynamic)
    } else {
        (RuleSet::Dynamic, RuleSet::Session, dynamic, session)
    };
    // The browser's error text may quote a rule, value included; redact it
    // here so no caller, logging included, ever holds the raw text.
    let refused = |e: PlatformError| ServiceError::Apply(PlatformError(redact(&e.0, state)));
    let mut done = Reconciled {
        next_expiry: state.credentials.next_expiry(now),
        ..Reconciled::default()
    };
    // Empty the set not in use first (of all but tab rules), so a rule
    // never sits in both. The session set is applied last when protected:
    // it is the one a lock or an unlock changes, and it takes effect as soon
    // as its update resolves.
    for (set, desired) in [(other, other_desired), (chosen, desired)] {
        let installed = engine.installed(set).await.map_err(refused)?;
        let update = compile::diff(&desired, &installed);
        if !update.is_empty() {
            engine.update(set, &update).await.map_err(refused)?;
        }
        done.added += update.add_rules.len();
        done.removed += update.remove_rule_ids.len();
    }
    Ok(done)
}

fn error_response(error: &ServiceError, state: &State) -> Response {
    Response::Error {
        message: redacted(error.text(), state),
    }
}

/// `text` with every stored secret redacted from the words that are not
/// ours (the browser's, a provider's, what the user typed), at any depth.
fn redacted(mut text: Text, state: &State) -> Text {
    for arg in &mut text.args {
        *arg = match std::mem::replace(arg, Arg::Data(String::new())) {
            Arg::Data(words) => Arg::Data(redact(&words, state)),
            Arg::Text(inner) => Arg::Text(redacted(inner, state)),
        };
    }
    text
}

/// Browser error text may quote a rule, header value included. Replace every
/// stored secret, and every rendered value, before it reaches a page or a
/// log.
pub fn redact(text: &str, state: &State) -> String {
    let mut out = text.to_owned();
    let mut hide = |secret: &str| {
        // A locked state's placeholder is no secret, and a common word.
        if secret.len() >= 4 && secret != protection::LOCKED_SECRET && out.contains(secret) {
            out = out.replace(secret, "•••");
        }
    };
    for rule in state.book.rules() {
        for action in &rule.headers {
            if let HeaderAction::Set { value, .. } = action {
                hide(&value.render().unwrap_or_default());
                hide(value.secret.expose());
            }
        }
    }
    for credential in state.credentials.all() {
        hide(credential.secret.expose());
    }
    out
}

#[cfg(any(test, feature = "testing"))]
pub mod fakes {
    //! In-memory stand-ins for the browser, for native tests.

    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// A deterministic source for tests: never use outside them.
    #[derive(Debug, Default)]
    pub struct CountingRng(pub u8);

    impl RngSource for CountingRng {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), crate::vault::RngUnavailable> {
            for b in dest {
                self.0 = self.0.wrapping_add(1).max(1);
                *b = self.0;
            }
            Ok(())
        }
    }

    /// The browser's host parser, as far as tests need it: lower case,
    /// and labels in Unicode as punycode (RFC 3492). UTS #46 also maps
    /// compatibility forms (full-width letters, `ß`…), which only the
    /// browser does; a host with a character outside letters, digits,
    /// `-`, `_` and `.` is refused here.
    #[derive(Debug, Default)]
    pub struct PunycodeNames;

    impl HostNames for PunycodeNames {
        fn to_ascii(&self, host: &str) -> Option<String> {
            let lower = host.to_lowercase();
            let labels: Option<Vec<String>> = lower
                .split('.')
                .map(|label| {
                    if label.is_ascii() {
                        Some(label.to_owned())
                    } else if label.chars().all(|c| c.is_alphanumeric() || c == '-') {
                        punycode(label).map(|p| format!("xn--{p}"))
                    } else {
                        None
                    }
                })
                .collect();
            labels.map(|labels| labels.join("."))
        }
    }

    /// RFC 3492's encoding of one label, without the `xn--` prefix.
    fn punycode(label: &str) -> Option<String> {
        const BASE: u32 = 36;
        const T_MIN: u32 = 1;
        const T_MAX: u32 = 26;
        let digit = |d: u32| {
            char::from(if d < 26 {
                b'a' + d as u8
            } else {
                b'0' + (d - 26) as u8
            })
        };
        let adapt = |delta: u32, points: u32, first: bool| {
            let mut delta = if first { delta / 700 } else { delta / 2 };
            delta += delta / points;
            let mut k = 0;
            while delta > ((BASE - T_MIN) * T_MAX) / 2 {
                delta /= BASE - T_MIN;
                k += BASE;
            }
            k + (BASE - T_MIN + 1) * delta / (delta + 38)
        };
        let points: Vec<u32> = label.chars().map(u32::from).collect();
        let mut out: String = label.chars().filter(char::is_ascii).collect();
        let basic = u32::try_from(out.len()).ok()?;
        if basic > 0 {
            out.push('-');
        }
        let (mut n, mut delta, mut bias, mut handled) = (128u32, 0u32, 72u32, basic);
        while (handled as usize) < points.len() {
            let m = *points.iter().filter(|&&c| c >= n).min()?;
            delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
            n = m;
            for &c in &points {
                if c < n {
                    delta = delta.checked_add(1)?;
                }
                if c == n {
                    let mut q = delta;
                    let mut k = BASE;
                    loop {
                        let t = if k <= bias {
                            T_MIN
                        } else if k >= bias + T_MAX {
                            T_MAX
                        } else {
                            k - bias
                        };
                        if q < t {
                            break;
                        }
                        out.push(digit(t + (q - t) % (BASE - t)));
                        q = (q - t) / (BASE - t);
                        k += BASE;
                    }
                    out.push(digit(q));
                    bias = adapt(delta, handled + 1, handled == basic);
                    delta = 0;
                    handled += 1;
                }
            }
            delta += 1;
            n += 1;
        }
        Some(out)
    }

    #[derive(Debug, Default)]
    pub struct MemoryStore {
        pub value: RefCell<Option<Value>>,
        pub fail_saves: RefCell<Option<String>>,
        pub saves: RefCell<usize>,
        /// How many times the state was read whole.
        pub loads: std::cell::Cell<usize>,
        /// The keys read one by one (an edit's sized load), in order.
        pub keys_read: RefCell<Vec<String>>,
        /// Calls to `storage.local` that wrote (a `set`, a `remove`).
        pub writes: std::cell::Cell<usize>,
        /// The last write asked for.
        pub last_write: RefCell<Option<StoredWrite>>,
        /// The worker stops before this write (counted as `writes` is):
        /// it and every later write never happen.
        pub stop_at_write: std::cell::Cell<Option<usize>>,
        /// `storage.session`'s vault key.
        pub session: RefCell<Option<String>>,
        pub pending_login: RefCell<Option<Value>>,
        pub tab_rules: RefCell<Option<Value>>,
        /// `storage.managed`: the administrator's policy.
        pub managed: RefCell<Option<Value>>,
    }

    impl StateStore for MemoryStore {
        async fn managed(&self) -> Result<Option<Value>, PlatformError> {
            Ok(self.managed.borrow().clone())
        }
        async fn load(&self) -> Result<Option<Value>, PlatformError> {
            self.loads.set(self.loads.get() + 1);
            Ok(self.value.borrow().clone())
        }
        async fn load_keys(&self, keys: &[String]) -> Result<Value, PlatformError> {
            self.keys_read.borrow_mut().extend(keys.iter().cloned());
            let value = self.value.borrow();
            let found = keys
                .iter()
                .filter_map(|key| Some((key.clone(), value.as_ref()?.get(key)?.clone())))
                .collect();
            Ok(Value::Object(found))
        }
        async fn save(&self, write: StoredWrite) -> Result<(), PlatformError> {
            if let Some(msg) = self.fail_saves.borrow().clone() {
                return Err(PlatformError(msg));
            }
            *self.saves.borrow_mut() += 1;
            *self.last_write.borrow_mut() = Some(write.clone());
            // `storage.local.set`: every key or none.
            self.write_step()?;
            let mut value = self
                .value
                .borrow()
                .clone()
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(items) = value.as_object_mut() {
                items.extend(write.set);
            }
            *self.value.borrow_mut() = Some(value);
            // `storage.local.remove`, a call of its own.
            if !write.remove.is_empty() {
                self.write_step()?;
                if let Some(items) = self
                    .value
                    .borrow_mut()
                    .as_mut()
                    .and_then(Value::as_object_mut)
                {
                    for key in &write.remove {
                        items.remove(key);
                    }
                }
            }
            Ok(())
        }
        async fn session_key(&self) -> Result<Option<String>, PlatformError> {
            Ok(self.session.borrow().clone())
        }
        async fn set_session_key(&self, key: Option<&str>) -> Result<(), PlatformError> {
            *self.session.borrow_mut() = key.map(str::to_owned);
            Ok(())
        }
        async fn pending_login(&self) -> Result<Option<Value>, PlatformError> {
            Ok(self.pending_login.borrow().clone())
        }
        async fn set_pending_login(&self, login: Option<&Value>) -> Result<(), PlatformError> {
            *self.pending_login.borrow_mut() = login.cloned();
            Ok(())
        }
        async fn tab_rules(&self) -> Result<Option<Value>, PlatformError> {
            Ok(self.tab_rules.borrow().clone())
        }
        async fn set_tab_rules(&self, rules: &Value) -> Result<(), PlatformError> {
            *self.tab_rules.borrow_mut() = Some(rules.clone());
            Ok(())
        }
    }

    impl MemoryStore {
        /// Holds `state` as a saved state: split into its keys.
        pub fn seed(&self, state: &State) {
            let write = StoredWrite::whole(state.encode());
            *self.value.borrow_mut() = Some(Value::Object(write.set));
        }

        /// Holds `document` (one state in [`State::encode`]'s form) under
        /// the one key of schema 3 and older.
        pub fn seed_one_key(&self, document: Value) {
            *self.value.borrow_mut() =
                Some(serde_json::json!({ crate::store::STATE_KEY: document }));
        }

        /// Whether the worker was stopped ([`MemoryStore::stop_at_write`]).
        pub fn stopped(&self) -> bool {
            self.stop_at_write
                .get()
                .is_some_and(|at| self.writes.get() >= at)
        }

        fn write_step(&self) -> Result<(), PlatformError> {
            if self.stopped() {
                return Err(PlatformError("the worker stopped".into()));
            }
            self.writes.set(self.writes.get() + 1);
            Ok(())
        }
    }

    /// Behaves like the browser's rule store: refuses duplicate ids and
    /// removals of unknown ids are ignored, as Chromium does.
    #[derive(Debug, Default)]
    pub struct MemoryEngine {
        /// Dynamic rules.
        pub rules: RefCell<Vec<Rule>>,
        pub session: RefCell<Vec<Rule>>,
        pub updates: RefCell<Vec<UpdateRuleOptions>>,
        pub reject: RefCell<Option<String>>,
        /// How many times the installed rules were read back.
        pub reads: std::cell::Cell<usize>,
    }

    impl RuleEngine for MemoryEngine {
        async fn installed(&self, set: RuleSet) -> Result<Vec<Rule>, PlatformError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.set(set).borrow().clone())
        }
        async fn update(
            &self,
            set: RuleSet,
            update: &UpdateRuleOptions,
        ) -> Result<(), PlatformError> {
            if let Some(msg) = self.reject.borrow().clone() {
                return Err(PlatformError(msg));
            }
            let mut rules = self.set(set).borrow().clone();
            rules.retain(|r| !update.remove_rule_ids.contains(&r.id));
            for add in &update.add_rules {
                if rules.iter().any(|r| r.id == add.id) {
                    return Err(PlatformError(format!(
                        "Rule with id {} already exists",
                        add.id
                    )));
                }
                rules.push(add.clone());
            }
            *self.set(set).borrow_mut() = rules;
            self.updates.borrow_mut().push(update.clone());
            Ok(())
        }
        fn target(&self) -> Target {
            Target::CHROMIUM
        }
    }

    impl MemoryEngine {
        fn set(&self, set: RuleSet) -> &RefCell<Vec<Rule>> {
            match set {
                RuleSet::Dynamic => &self.rules,
                RuleSet::Session => &self.session,
            }
        }
    }

    /// A provider that answers from a script: each request is recorded, and
    /// answered by the first route whose `method path` prefix matches.
    #[derive(Debug, Default)]
    pub struct ScriptedTransport {
        pub routes: RefCell<Vec<(String, HttpResponse)>>,
        pub sent: RefCell<Vec<HttpRequest>>,
        pub unreachable: RefCell<bool>,
        /// Open streams: lines not yet read, and whether the stream ended.
        #[allow(clippy::type_complexity)]
        pub streams: RefCell<std::collections::BTreeMap<String, (Vec<String>, bool)>>,
    }

    impl ScriptedTransport {
        pub fn answer(&self, route: &str, response: HttpResponse) {
            self.routes
                .borrow_mut()
                .insert(0, (route.to_owned(), response));
        }
    }

    impl ScriptedTransport {
        /// Adds lines to every open stream, as a provider sending them.
        pub fn stream_lines(&self, lines: &[&str], end: bool) {
            for (_, (pending, ended)) in self.streams.borrow_mut().iter_mut() {
                pending.extend(lines.iter().map(|l| (*l).to_owned()));
                *ended |= end;
            }
        }

        /// The open streams' ids.
        pub fn open_streams(&self) -> Vec<String> {
            self.streams.borrow().keys().cloned().collect()
        }

        /// A service worker stopping: its streams are gone.
        pub fn stop_worker(&self) {
            self.streams.borrow_mut().clear();
        }
    }

    impl Transport for ScriptedTransport {
        async fn open_stream(
            &self,
            id: &str,
            request: &HttpRequest,
        ) -> Result<HttpResponse, PlatformError> {
            let head = self.send(request).await?;
            if head.is_success() {
                let first = head.body.lines().map(str::to_owned).collect();
                self.streams
                    .borrow_mut()
                    .insert(id.to_owned(), (first, false));
            }
            Ok(head)
        }

        async fn read_stream(&self, id: &str, _wait: bool) -> StreamRead {
            let mut streams = self.streams.borrow_mut();
            let Some((pending, ended)) = streams.get_mut(id) else {
                return StreamRead::Gone;
            };
            let lines = std::mem::take(pending);
            if *ended {
                StreamRead::Ended(lines)
            } else {
                StreamRead::Lines(lines)
            }
        }

        fn close_stream(&self, id: &str) {
            self.streams.borrow_mut().remove(id);
        }

        async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, PlatformError> {
            self.sent.borrow_mut().push(request.clone());
            if *self.unreachable.borrow() {
                return Err(PlatformError(
                    "NetworkError when attempting to fetch resource.".into(),
                ));
            }
            let path = url::Url::parse(request.url.as_str())
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            let key = format!("{} {path}", request.method.as_str());
            Ok(self
                .routes
                .borrow()
                .iter()
                .find(|(route, _)| key.starts_with(route.as_str()))
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| HttpResponse::new(404, "not found")))
        }
    }

    /// The browser, in memory, at a fixed time.
    #[derive(Debug)]
    pub struct Fakes {
        pub store: MemoryStore,
        pub engine: MemoryEngine,
        pub transport: ScriptedTransport,
        pub rng: RefCell<CountingRng>,
    }

    /// A browser whose user chose convenience mode: most tests are about
    /// something else. [`Fakes::fresh`] is a fresh install.
    impl Default for Fakes {
        fn default() -> Fakes {
            let fakes = Fakes::fresh();
            let chosen = State {
                protection: Protection::Convenience,
                ..State::default()
            };
            fakes.store.seed(&chosen);
            fakes
        }
    }

    impl Fakes {
        pub fn fresh() -> Fakes {
            Fakes {
                store: MemoryStore::default(),
                engine: MemoryEngine::default(),
                transport: ScriptedTransport::default(),
                rng: RefCell::default(),
            }
        }
    }

    pub const NOW: Timestamp = Timestamp(1_766_000_000);

    impl Fakes {
        pub fn platform(&self) -> Platform<'_, MemoryStore, MemoryEngine, ScriptedTransport> {
            self.platform_at(NOW)
        }

        pub fn platform_at(
            &self,
            now: Timestamp,
        ) -> Platform<'_, MemoryStore, MemoryEngine, ScriptedTransport> {
            Platform {
                store: &self.store,
                engine: &self.engine,
                transport: &self.transport,
                clock: Clock {
                    now,
                    utc_offset_minutes: 0,
                },
                rng: &self.rng,
                names: &PunycodeNames,
            }
        }

        pub fn handle(&self, request: Request) -> Response {
            run(handle(&self.platform(), request))
        }

        pub fn handle_at(&self, now: Timestamp, request: Request) -> Response {
            self.handle_keeping_at(now, request).0
        }

        /// [`handle_keeping_state`] at `now`.
        pub fn handle_keeping_at(
            &self,
            now: Timestamp,
            request: Request,
        ) -> (Response, Option<State>) {
            run(handle_keeping_state(&self.platform_at(now), request))
        }

        /// The stored state as the service reads it (secrets opened with
        /// the session key, if any).
        pub fn state(&self) -> State {
            run(load(&self.store)).unwrap_or_default()
        }
    }

    /// Runs a future whose fakes are always ready.
    pub fn run<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fakes::{run, Fakes, MemoryEngine, NOW};
    use super::*;
    use crate::rules::tests::draft;

    fn save(fakes: &Fakes, pattern: &str, secret: &str) -> Response {
        fakes.handle(Request::SaveRule {
            draft: draft(pattern, secret),
        })
    }

    /// What the popup is told for `url`, outside any tab.
    fn site_status(fakes: &Fakes, url: &str) -> crate::message::SiteView {
        match fakes.handle(Request::SiteStatus {
            url: url.into(),
            tab: None,
        }) {
            Response::Site(site) => site,
            other => panic!("a site view for {url}: {other:?}"),
        }
    }

    fn installed_ids(engine: &MemoryEngine) -> Vec<u32> {
        let mut ids: Vec<u32> = engine.rules.borrow().iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn hosts_typed_in_unicode_are_saved_tested_and_sent_in_their_ascii_form() {
        let fakes = Fakes::default();
        let mut typed = draft("https://Bücher.example/ä", "tok-1234567890");
        typed.also_from = vec!["https://app.bücher.example".into()];
        let saved = fakes.handle(Request::SaveRule { draft: typed });
        assert!(matches!(saved, Response::RuleChanged(_)), "{saved:?}");
        let rules = fakes.engine.rules.borrow().clone();
        // The site's rules (a same-site request, a WebSocket, a typed
        // navigation), each for the ASCII host the browser matches.
        assert_eq!(rules.len(), 3, "{rules:?}");
        for rule in &rules {
            let filter = rule.condition.url_filter.as_deref().unwrap_or_default();
            assert!(
                filter.ends_with("://xn--bcher-kva.example/%C3%A4^"),
                "{rule:?}"
            );
        }
        assert_eq!(
            rules[0].condition.initiator_domains,
            Some(vec![
                "xn--bcher-kva.example".into(),
                "app.xn--bcher-kva.example".into()
            ])
        );
        // The options page's test of an address typed in Unicode.
        let tested = fakes.handle(Request::TestUrl {
            url: "https://bücher.example/ä/x".into(),
            from: Some("https://app.bücher.example".into()),
            method: "GET".into(),
            kind: crate::dnr::ResourceType::Xmlhttprequest,
        });
        match tested {
            Response::UrlTest(view) => {
                assert_eq!(view.problem, None);
                assert_eq!(view.headers.len(), 1, "{view:?}");
                assert_eq!(
                    view.headers[0].pattern,
                    "https://xn--bcher-kva.example/%C3%A4/"
                );
            }
            other => panic!("a test of the address: {other:?}"),
        }
    }

    /// The requests of [`an_interrupted_write_leaves_a_whole_readable_state`]:
    /// rule edits in both modes, an account, a change of mode and of
    /// passphrase, deletions, and back to convenience.
    fn life() -> Vec<Request> {
        let passphrase = |p: &str| crate::message::Passphrase(p.to_owned());
        vec![
            Request::SaveRule {
                draft: draft("https://a.example", "tok-aaaaaaaaaa"),
            },
            Request::SaveRule {
                draft: draft("https://b.example", "tok-bbbbbbbbbb"),
            },
            Request::SetEnabled {
                id: 2,
                enabled: false,
            },
            Request::Login {
                login: crate::message::LoginDraft {
                    provider: Provider::Custom,
                    kind: String::new(),
                    endpoint: "https://c.example".into(),
                    secret: "tok-cccccccccc".into(),
                    name: "c".into(),
                },
            },
            Request::Protect {
                passphrase: passphrase("a long passphrase"),
                idle_minutes: None,
            },
            Request::SaveRule {
                draft: draft("https://d.example", "tok-dddddddddd"),
            },
            Request::SaveRule {
                draft: RuleDraft {
                    id: Some(1),
                    ..draft("https://a.example/v2", "tok-eeeeeeeeee")
                },
            },
            Request::ChangePassphrase {
                current: passphrase("a long passphrase"),
                new: passphrase("another long passphrase"),
            },
            Request::DeleteRule { id: 2 },
            Request::Logout { credential: 1 },
            Request::UseConvenience {
                passphrase: passphrase("another long passphrase"),
            },
            Request::DeleteRule { id: 3 },
        ]
    }

    /// The worker may stop between any two calls to storage. Stopped at
    /// every write of a life of edits and mode changes, the next worker
    /// reads a whole state: the one before the interrupted request, or the
    /// one after it.
    #[test]
    fn an_interrupted_write_leaves_a_whole_readable_state() {
        let reference = Fakes::default();
        let mut states = vec![reference.state()];
        for request in life() {
            let shown = format!("{request:?}");
            let answer = reference.handle(request);
            assert!(
                !matches!(answer, Response::Error { .. }),
                "{shown}: {answer:?}"
            );
            states.push(reference.state());
        }
        let writes = reference.store.writes.get();
        assert!(writes > life().len(), "removals are writes of their own");
        for stop in 0..writes {
            let fakes = Fakes::default();
            fakes.store.stop_at_write.set(Some(stop));
            let mut interrupted = None;
            for (n, request) in life().into_iter().enumerate() {
                fakes.handle(request);
                if fakes.store.stopped() {
                    interrupted = Some(n);
                    break;
                }
            }
            let n = interrupted.unwrap_or_else(|| panic!("write {stop} never came"));
            let read = run(load(&fakes.store))
                .unwrap_or_else(|e| panic!("stopped at write {stop}: unreadable: {e}"));
            assert!(
                read == states[n] || read == states[n + 1],
                "stopped at write {stop}, in request {n}: neither before nor after\n{read:#?}"
            );
        }
    }

    #[test]
    fn saving_one_rule_writes_the_head_and_that_rules_group() {
        let fakes = Fakes::default();
        // Ids 1 to 70: groups `rules:0` (1 to 63) and `rules:1` (64 to 70).
        for n in 0..70 {
            fakes.handle(Request::SaveRule {
                draft: draft(&format!("https://s{n}.example"), "tok-123456789"),
            });
        }
        // The keys set, and (after a `-`) removed, by the request's write.
        let written = |request: Request| {
            fakes.handle(request);
            let write = fakes.store.last_write.borrow().clone().unwrap_or_default();
            let mut keys: Vec<String> = write.set.keys().cloned().collect();
            keys.extend(write.remove.iter().map(|k| format!("-{k}")));
            keys.sort();
            keys
        };
        let group_1 = |fakes: &Fakes| {
            let stored = fakes.store.value.borrow().clone().unwrap_or_default();
            stored["rules:1"].clone()
        };
        let other_group = group_1(&fakes);
        assert_eq!(
            written(Request::SetEnabled {
                id: 7,
                enabled: false
            }),
            ["rules:0", "state"]
        );
        assert_eq!(
            group_1(&fakes),
            other_group,
            "the other group is not written"
        );
        assert_eq!(
            written(Request::SaveRule {
                draft: draft("https://new.example", "tok-123456789"),
            }),
            ["rules:1", "state"]
        );
        assert_eq!(written(Request::DeleteRule { id: 3 }), ["rules:0", "state"]);
        // A group left empty is removed after the write.
        for id in 64..=70 {
            fakes.handle(Request::DeleteRule { id });
        }
        assert_eq!(
            written(Request::DeleteRule { id: 71 }),
            ["-rules:1", "state"]
        );
        // An account is written alone too, and its end removes its key.
        let login = crate::message::LoginDraft {
            provider: Provider::Custom,
            kind: String::new(),
            endpoint: "https://c.example".into(),
            secret: "tok-cccccccccc".into(),
            name: "c".into(),
        };
        assert_eq!(written(Request::Login { login }), ["credential:1", "state"]);
        assert_eq!(
            written(Request::Logout { credential: 1 }),
            ["-credential:1", "state"]
        );
        // Protected, only the edited rule's group is sealed anew.
        for n in 70..75 {
            fakes.handle(Request::SaveRule {
                draft: draft(&format!("https://s{n}.example"), "tok-123456789"),
            });
        }
        fakes.handle(Request::Protect {
            passphrase: crate::message::Passphrase("a long passphrase".into()),
            idle_minutes: None,
        });
        let sealed_before = fakes.store.value.borrow().clone().unwrap_or_default();
        assert_eq!(
            written(Request::SaveRule {
                draft: RuleDraft {
                    id: Some(5),
                    ..draft("https://s4.example/v1", "tok-new-secret-5")
                },
            }),
            ["rules:0", "state"]
        );
        let stored = fakes.store.value.borrow().clone().unwrap_or_default();
        assert!(!stored.to_string().contains("tok-new-secret-5"));
        assert!(!stored.to_string().contains("tok-123456789"));
        assert_eq!(stored["rules:1"], sealed_before["rules:1"]);
        let state = fakes.state();
        assert_eq!(state.book.rules().len(), 67);
        assert!(state.encode().to_string().contains("tok-new-secret-5"));
    }

    #[test]
    fn a_state_in_an_older_layout_reads_and_moves_on_its_next_save() {
        let mut old = State {
            protection: Protection::Convenience,
            ..State::default()
        };
        for n in 0..3 {
            old.book
                .save(&draft(&format!("https://o{n}.example"), "tok-123456789"))
                .expect("test setup");
        }
        // Schema 3: one key. Schema 4: a key per rule.
        let mut one_key = old.encode();
        one_key["schema"] = serde_json::json!(3);
        let mut per_rule = serde_json::json!({});
        let mut head = old.encode_head();
        head["schema"] = serde_json::json!(4);
        per_rule["state"] = head;
        for rule in old.book.rules() {
            per_rule[store::schema_4_rule_key(rule.id)] = store::encode_rule(rule);
        }
        // Schema 5: groups of JSON, no index.
        let mut grouped = serde_json::json!({});
        let mut head = old.encode_head();
        head["schema"] = serde_json::json!(5);
        head.as_object_mut().expect("a head").remove("index");
        grouped["state"] = head;
        grouped["rules:0"] = old.book.rules().iter().map(store::encode_rule).collect();
        for (name, stored) in [
            ("one key", serde_json::json!({ "state": one_key })),
            ("a key per rule", per_rule),
            ("groups of JSON", grouped),
        ] {
            let fakes = Fakes::default();
            *fakes.store.value.borrow_mut() = Some(stored);
            let read = fakes.state();
            assert!(read.older_layout, "{name}");
            assert_eq!(read.book, old.book, "{name}");
            // One rule changed: all of it is written, in the new layout,
            // and the old keys go.
            fakes.handle(Request::SetEnabled {
                id: 2,
                enabled: false,
            });
            let stored = fakes.store.value.borrow().clone().unwrap_or_default();
            assert_eq!(
                stored["state"]["schema"],
                serde_json::json!(store::SCHEMA_VERSION),
                "{name}"
            );
            assert_eq!(stored["state"]["ruleIds"], serde_json::json!([1, 2, 3]));
            assert!(stored["state"].get("rules").is_none(), "{name}");
            assert_eq!(
                group(&stored, "rules:0").as_array().map(Vec::len),
                Some(3),
                "{name}"
            );
            let mut keys: Vec<&String> = stored
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .collect();
            keys.sort();
            assert_eq!(keys, ["rules:0", "state"], "{name}");
            let after = fakes.state();
            assert!(!after.older_layout, "{name}");
            assert_eq!(after.book.rules().len(), 3, "{name}");
            assert!(!after.book.get(2).expect("kept").enabled, "{name}");
        }
    }

    #[test]
    fn the_popup_opens_from_one_load_with_its_three_parts() {
        let fakes = Fakes::default();
        fakes.handle(Request::SaveRule {
            draft: draft("https://api.example.com", "tok-123456789"),
        });
        let url = "https://api.example.com/v1";
        let loads = |request: Request| {
            let before = fakes.store.loads.get();
            let answer = fakes.handle(request);
            (answer, fakes.store.loads.get() - before)
        };
        let (answer, read) = loads(Request::OpenPopup {
            url: url.into(),
            tab: None,
        });
        assert_eq!(read, 1, "one load for the whole popup");
        let Response::Popup(popup) = answer else {
            panic!("expected the popup's view, got {answer:?}");
        };
        // The same parts the separate requests answer.
        let (site, _) = loads(Request::SiteStatus {
            url: url.into(),
            tab: None,
        });
        assert_eq!(site, Response::Site(popup.site.clone()));
        assert_eq!(
            loads(Request::Accounts).0,
            Response::Accounts(popup.accounts.clone())
        );
        assert_eq!(
            loads(Request::VaultStatus).0,
            Response::Vault(popup.vault.clone())
        );
        assert_eq!(popup.site.state, crate::message::SiteState::Covered);
    }

    #[test]
    fn every_request_loads_the_state_once() {
        let fakes = Fakes::default();
        let requests = [
            Request::SaveRule {
                draft: draft("https://a.example", "tok-aaaaaaaaaa"),
            },
            Request::SaveRule {
                draft: draft("https://b.example", "tok-bbbbbbbbbb"),
            },
            Request::SetEnabled {
                id: 2,
                enabled: false,
            },
            Request::DeleteRule { id: 1 },
            Request::ListRules,
            Request::Accounts,
            Request::VaultStatus,
            Request::SiteStatus {
                url: "https://b.example/".into(),
                tab: None,
            },
        ];
        for request in requests {
            let shown = format!("{request:?}");
            let edit = matches!(
                request,
                Request::SaveRule { .. } | Request::SetEnabled { .. } | Request::DeleteRule { .. }
            );
            let before = fakes.store.loads.get();
            fakes.store.keys_read.borrow_mut().clear();
            let answer = fakes.handle(request);
            assert!(
                !matches!(answer, Response::Error { .. }),
                "{shown}: {answer:?}"
            );
            let keys = fakes.store.keys_read.borrow().clone();
            if edit {
                // Sized to the edit: the head, then the rule's group.
                assert_eq!(fakes.store.loads.get() - before, 0, "{shown}");
                assert_eq!(keys, ["state", "rules:0"], "{shown}");
            } else {
                assert_eq!(fakes.store.loads.get() - before, 1, "{shown}");
                assert!(keys.is_empty(), "{shown}");
            }
        }
    }

    /// The rules of group `key` in `items`, kept as JSON text.
    fn group(items: &Value, key: &str) -> Value {
        let text = items[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not text"));
        serde_json::from_str(text).expect("a group's JSON")
    }

    #[test]
    fn a_whole_read_puts_the_heads_index_right() {
        let fakes = Fakes::default();
        for i in 0..3 {
            save(&fakes, &format!("https://h{i}.example"), "tok-aaaaaaaaaa");
        }
        let index = |fakes: &Fakes| {
            fakes.store.value.borrow().as_ref().expect("a state")["state"]["index"].clone()
        };
        let written = index(&fakes);
        // A group changed from outside (rule 2's pattern), and a head
        // without an index (an older build's).
        {
            let mut value = fakes.store.value.borrow_mut();
            let items = value.as_mut().expect("a state");
            let mut rules = group(items, "rules:0");
            rules[1]["pattern"] = "https://outside.example".into();
            items["rules:0"] = rules.to_string().into();
            items["state"]
                .as_object_mut()
                .expect("a head")
                .remove("index");
        }
        // Until a whole read, an edit reads the whole state.
        let before = fakes.store.loads.get();
        fakes.handle(Request::SetEnabled {
            id: 1,
            enabled: false,
        });
        assert_eq!(fakes.store.loads.get(), before + 1);
        run(reconcile(&fakes.store, &fakes.engine, NOW)).expect("a reconciliation");
        let state = fakes.state();
        assert_eq!(
            index(&fakes),
            serde_json::to_value(store::BookIndex::of(state.book.rules())).expect("an index")
        );
        assert_ne!(index(&fakes), written);
        // Then the outside's pattern counts in an edit's duplicate check.
        let Response::Error { message } = save(&fakes, "https://outside.example", "tok-bbbbbbbbbb")
        else {
            panic!("a duplicate pattern was saved");
        };
        assert_eq!(message.key, "error_rule_duplicate");
        // A right index is left as it is: no write.
        let saves = *fakes.store.saves.borrow();
        run(reconcile(&fakes.store, &fakes.engine, NOW)).expect("a reconciliation");
        assert_eq!(*fakes.store.saves.borrow(), saves);
    }

    /// Fakes holding 70 rules on `h0.example` to `h69.example`: ids 1 to 70,
    /// in two groups (64 rules to a group), so that a sized read holds one
    /// and counts the other from the head's index.
    fn two_groups() -> Fakes {
        let fakes = Fakes::default();
        for i in 0..70 {
            assert!(matches!(
                save(&fakes, &format!("https://h{i}.example"), "tok-aaaaaaaaaa"),
                Response::RuleChanged(_)
            ));
        }
        fakes
    }

    #[test]
    fn a_read_for_pages_tells_them_what_the_whole_state_does() {
        let fakes = two_groups();
        // In the second group: a wildcard, a narrower rule under it, and
        // one turned off.
        save(&fakes, "https://*.wide.example", "tok-wide-aaaaaa");
        save(&fakes, "https://sub.wide.example/path", "tok-sub-aaaaaaa");
        save(&fakes, "https://off.example", "tok-off-aaaaaaa");
        let off = fakes.state().book.rules().last().map(|r| r.id);
        fakes.handle(Request::SetEnabled {
            id: off.unwrap_or_else(|| panic!()),
            enabled: false,
        });
        let pages = [
            "https://h3.example/x",
            "https://sub.wide.example/path/y",
            "https://sub.wide.example/other",
            "https://off.example/",
            "https://nothing.example/",
            "about:blank",
        ];
        let whole = run(read(&fakes.store)).expect("whole");
        for page in pages {
            fakes.store.keys_read.borrow_mut().clear();
            let before = fakes.store.loads.get();
            let sized = run(read_for_pages(&fakes.store, &[page.to_owned()])).expect("sized");
            assert_eq!(fakes.store.loads.get(), before, "{page}: read every key");
            let view =
                |state: &State| SiteView::of(&state.book, &state.credentials, NOW, page, None);
            assert_eq!(view(&sized), view(&whole), "{page}");
            assert_eq!(sized.usage(), whole.usage(), "{page}");
        }
        // Only the groups that cover the pages are read.
        fakes.store.keys_read.borrow_mut().clear();
        run(read_for_pages(&fakes.store, &[pages[0].to_owned()])).expect("sized");
        assert_eq!(*fakes.store.keys_read.borrow(), ["state", "rules:0"]);
        fakes.store.keys_read.borrow_mut().clear();
        run(read_for_pages(&fakes.store, &[pages[4].to_owned()])).expect("sized");
        assert_eq!(*fakes.store.keys_read.borrow(), ["state"]);
    }

    /// A draft for `pattern` whose header takes its value from a BentoCloud
    /// credential stored just now.
    fn draft_naming_a_new_credential(fakes: &Fakes, pattern: &str) -> RuleDraft {
        let mut state = fakes.state();
        let credential = state
            .credentials
            .add(crate::credential::Credential::new(
                0,
                Provider::BentoCloud,
                crate::credential::Endpoint::default_for(Provider::BentoCloud)
                    .unwrap_or_else(|| panic!()),
                crate::credential::CredentialKind::ApiToken {
                    scopes: vec!["api".into()],
                    deployments: None,
                },
                crate::header::Secret::from_input("tok-from-a-credential")
                    .unwrap_or_else(|e| panic!("{e}")),
            ))
            .unwrap_or_else(|| panic!());
        fakes.store.seed(&state);
        let mut named = draft(pattern, "");
        named.headers[0].credential = Some(credential);
        named
    }

    #[test]
    fn an_edit_keeps_a_state_that_tells_the_pages_its_group_covers() {
        let fakes = two_groups();
        save(&fakes, "https://*.wide.example", "tok-wide-aaaaaa");
        let wide = fakes.state().book.rules().last().map(|r| r.id);
        let wide = wide.unwrap_or_else(|| panic!("no rule"));
        let (answer, kept) = fakes.handle_keeping_at(
            NOW,
            Request::SetEnabled {
                id: wide,
                enabled: false,
            },
        );
        assert!(matches!(answer, Response::RuleChanged(_)), "{answer:?}");
        let kept = kept.unwrap_or_else(|| panic!("the edit kept no state"));
        assert!(!kept.is_whole(), "the edit read every group");
        let whole = fakes.state();
        let page = |url: &str| vec![url.to_owned()];
        // Its own group's pages (ids 64 to 127), and a page no rule
        // covers: told as the whole state tells them.
        for url in [
            "https://a.wide.example/x",
            "https://h65.example/",
            "https://nothing.example/",
            "about:blank",
        ] {
            assert!(kept.tells_pages(&page(url)), "{url}");
            let view =
                |state: &State| SiteView::of(&state.book, &state.credentials, NOW, url, None);
            assert_eq!(view(&kept), view(&whole), "{url}");
        }
        // A page a rule of the group not read covers: not told.
        assert!(!kept.tells_pages(&page("https://h3.example/")));
        assert!(!kept.tells_pages(&[
            "https://a.wide.example/".to_owned(),
            "https://h3.example/".to_owned(),
        ]));
        // A covering rule of the group read whose credential was not read:
        // not told either.
        let named = draft_naming_a_new_credential(&fakes, "https://named.example");
        fakes.handle(Request::SaveRule { draft: named });
        let (_, kept) = fakes.handle_keeping_at(
            NOW,
            Request::SetEnabled {
                id: wide,
                enabled: true,
            },
        );
        let kept = kept.unwrap_or_else(|| panic!("the edit kept no state"));
        assert!(kept.tells_pages(&page("https://a.wide.example/")));
        assert!(!kept.tells_pages(&page("https://named.example/")));
    }

    #[test]
    fn an_edit_reads_its_group_and_the_credentials_it_names() {
        let fakes = two_groups();
        let named = draft_naming_a_new_credential(&fakes, "https://named.example");
        let credential = named.headers[0].credential.unwrap_or_else(|| panic!());
        fakes.store.keys_read.borrow_mut().clear();
        let before = fakes.store.loads.get();
        let Response::RuleChanged(change) = fakes.handle(Request::SaveRule { draft: named }) else {
            panic!("the save failed");
        };
        assert_eq!(fakes.store.loads.get(), before);
        assert_eq!(
            *fakes.store.keys_read.borrow(),
            ["state", &format!("credential:{credential}"), "rules:1"]
        );
        assert_eq!(change.id, 71);
        // The rule's header takes the credential's secret.
        assert!(
            fakes.store.value.borrow().as_ref().expect("a state")["rules:1"]
                .to_string()
                .contains("tok-from-a-credential")
        );
        // Toggling it reads the credential it names, from its group.
        fakes.store.keys_read.borrow_mut().clear();
        fakes.handle(Request::SetEnabled {
            id: 71,
            enabled: false,
        });
        assert_eq!(
            *fakes.store.keys_read.borrow(),
            ["state", "rules:1", &format!("credential:{credential}")]
        );
        // A duplicate in a group not read is refused all the same.
        let Response::Error { message } = save(&fakes, "https://h3.example", "tok-bbbbbbbbbb")
        else {
            panic!("a duplicate pattern was saved");
        };
        assert_eq!(message.key, "error_rule_duplicate");
        assert_eq!(fakes.state().book.rules().len(), 71);
    }

    #[test]
    fn saving_stores_and_applies_in_one_update() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        let response = save(&fakes, "https://api.example.com", "tok-123456");
        assert!(
            matches!(&response, Response::RuleChanged(v) if v.saved == Some(1) && v.rule.is_some()),
            "{response:?}"
        );
        assert_eq!(installed_ids(engine), [4, 5, 6]);
        assert_eq!(engine.updates.borrow().len(), 1);
        assert_eq!(*store.saves.borrow(), 1);
    }

    #[test]
    fn reconcile_is_idempotent_and_repairs_drift() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        save(&fakes, "https://a.example", "t");
        save(&fakes, "https://b.example", "t");
        assert_eq!(
            run(reconcile(store, engine, NOW)),
            Ok(Reconciled::default())
        );
        let before = engine.updates.borrow().len();
        assert_eq!(
            run(reconcile(store, engine, NOW)),
            Ok(Reconciled::default())
        );
        assert_eq!(
            engine.updates.borrow().len(),
            before,
            "no browser call when nothing changed"
        );

        // The browser lost a rule and holds a stray one (a crash between
        // steps, or an older version's leftovers): one update fixes both.
        engine.rules.borrow_mut().retain(|r| r.id != 4);
        let mut stray = engine.rules.borrow()[0].clone();
        stray.id = 999;
        engine.rules.borrow_mut().push(stray);
        assert_eq!(
            run(reconcile(store, engine, NOW)),
            Ok(Reconciled {
                added: 1,
                removed: 1,
                next_expiry: None
            })
        );
        assert_eq!(installed_ids(engine), [4, 5, 6, 8, 9, 10]);
    }

    #[test]
    fn toggling_and_deleting_change_only_that_rule() {
        let fakes = Fakes::default();
        let engine = &fakes.engine;
        save(&fakes, "https://a.example", "t");
        save(&fakes, "https://b.example", "t");
        fakes.handle(Request::SetEnabled {
            id: 1,
            enabled: false,
        });
        assert_eq!(installed_ids(engine), [8, 9, 10]);
        let last = engine.updates.borrow().last().cloned().unwrap_or_default();
        assert_eq!(
            (last.remove_rule_ids, last.add_rules.len()),
            (vec![4, 5, 6], 0)
        );
        fakes.handle(Request::SetEnabled {
            id: 1,
            enabled: true,
        });
        assert_eq!(installed_ids(engine), [4, 5, 6, 8, 9, 10]);
        fakes.handle(Request::DeleteRule { id: 2 });
        assert_eq!(installed_ids(engine), [4, 5, 6]);
    }

    fn modheader_file() -> crate::message::ImportFile {
        crate::message::ImportFile {
            text: serde_json::json!([{
                "version": 2, "title": "Models",
                "headers": [{"enabled": true, "name": "Authorization", "value": "Bearer mh-file-token"}],
                "urlFilters": [{"enabled": true, "urlRegex": "^https://models\\.example\\.com/.*"}]
            }, {
                "version": 2, "title": "Loose",
                "headers": [{"enabled": true, "name": "X-Key", "value": "mh-loose-key"}],
                "urlFilters": [{"enabled": true, "urlRegex": "api\\.example\\.com"}]
            }])
            .to_string(),
            passphrase: None,
        }
    }

    /// The preview writes nothing; the import writes the chosen entries in
    /// one save and brings the browser along; a preview made against other
    /// rules is refused; a full store leaves everything as it was.
    #[test]
    fn import_previews_then_writes_in_one_save() {
        use crate::import::{ImportChoice, Outcome};
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        let writes = store.writes.get();
        let Response::ImportPreview(preview) = fakes.handle(Request::PreviewImport {
            file: modheader_file(),
        }) else {
            panic!("a preview");
        };
        assert_eq!(store.writes.get(), writes, "a preview writes nothing");
        assert!(matches!(preview.entries[0].outcome, Outcome::New));
        assert!(matches!(
            preview.entries[1].outcome,
            Outcome::Refused { .. }
        ));
        assert_eq!(
            preview.entries[1].suggestion.as_deref(),
            Some("https://api.example.com/")
        );
        let choices = vec![
            ImportChoice {
                entry: 0,
                site: None,
            },
            ImportChoice {
                entry: 1,
                site: preview.entries[1].suggestion.clone(),
            },
        ];
        // Rules changed since: refused, nothing written.
        save(&fakes, "https://other.example", "tok-other");
        let writes = store.writes.get();
        let stale = fakes.handle(Request::Import {
            file: modheader_file(),
            basis: preview.basis.clone(),
            choices: choices.clone(),
        });
        assert_eq!(
            stale,
            Response::Error {
                message: text!("import_error_stale")
            }
        );
        assert_eq!(store.writes.get(), writes);
        let Response::ImportPreview(preview) = fakes.handle(Request::PreviewImport {
            file: modheader_file(),
        }) else {
            panic!("a preview");
        };
        // A full store: the error says so and the state stays.
        let before = store.value.borrow().clone();
        let installed = installed_ids(engine);
        *store.fail_saves.borrow_mut() = Some("QUOTA_BYTES quota exceeded".into());
        let full = fakes.handle(Request::Import {
            file: modheader_file(),
            basis: preview.basis.clone(),
            choices: choices.clone(),
        });
        assert_eq!(
            full,
            Response::Error {
                message: text!("error_service_save", "QUOTA_BYTES quota exceeded")
            }
        );
        assert_eq!(*store.value.borrow(), before);
        assert_eq!(installed_ids(engine), installed);
        *store.fail_saves.borrow_mut() = None;
        let writes = store.writes.get();
        let answer = fakes.handle(Request::Import {
            file: modheader_file(),
            basis: preview.basis,
            choices,
        });
        let Response::Imported {
            rules,
            added,
            changed,
        } = answer
        else {
            panic!("imported: {answer:?}");
        };
        assert_eq!((added, changed), (2, 0));
        assert_eq!(rules.rules.len(), 3);
        assert_eq!(store.writes.get() - writes, 1, "one write");
        let state = fakes.state();
        assert_eq!(state.book.rules().len(), 3);
        // The browser holds what a full reconciliation computes.
        let mut desired =
            crate::compile::compile(&state.rules_in_force(NOW), engine.target()).expect("compiles");
        desired.sort_by_key(|r| r.id);
        let mut installed = engine.rules.borrow().clone();
        installed.sort_by_key(|r| r.id);
        assert_eq!(installed, desired);
    }

    #[test]
    fn an_import_carrying_tokens_waits_for_the_choice_of_protection() {
        let fakes = Fakes::fresh();
        let answer = fakes.handle(Request::PreviewImport {
            file: modheader_file(),
        });
        assert_eq!(
            answer,
            Response::Error {
                message: text!("error_service_unchosen")
            }
        );
    }

    /// Start-up brings an old state to the current schema and layout in one
    /// write, removes the keys an interrupted tidy left, records a listed
    /// key that went missing, and writes nothing the second time.
    #[test]
    fn start_up_upgrades_old_and_untidy_states_once() {
        let fakes = Fakes::fresh();
        let (store, engine) = (&fakes.store, &fakes.engine);
        *store.value.borrow_mut() = Some(serde_json::json!({
            "state": {"schema": 2, "nextId": 3, "vault": {"mode": "convenience"}, "rules": [
                {"id": 1, "pattern": "https://a.example/", "enabled": true,
                 "headers": [{"op": "set", "name": "Authorization", "value": {"scheme": "bearer", "secret": "tok-a"}}]},
                {"pattern": "https://no-id.example/", "enabled": true, "headers": []}
            ]},
            "rule:9": {"id": 9, "pattern": "https://left.example/"}
        }));
        let reconciled = run(reconcile(store, engine, NOW)).expect("reconciles");
        assert_eq!(reconciled.added, 3, "{reconciled:?}");
        let items = store.value.borrow().clone().expect("stored");
        assert_eq!(items["state"]["schema"], store::SCHEMA_VERSION);
        assert_eq!(items["state"]["ruleIds"], serde_json::json!([1]));
        assert_eq!(
            group(&items, "rules:0")[0]["initiators"],
            serde_json::json!({"policy": "sameSite"})
        );
        assert!(
            items.get("rule:9").is_none(),
            "the unlisted key is tidied: {items}"
        );
        assert_eq!(
            items["state"]["unreadable"][0]["pattern"],
            "https://no-id.example/"
        );
        let writes = store.writes.get();
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert_eq!(store.writes.get(), writes, "nothing to do the second time");

        // A key the head lists and storage lost: recorded, not forgotten.
        if let Some(items) = store
            .value
            .borrow_mut()
            .as_mut()
            .and_then(Value::as_object_mut)
        {
            items.remove("rules:0");
        }
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        let items = store.value.borrow().clone().expect("stored");
        assert_eq!(items["state"]["ruleIds"], serde_json::json!([]));
        assert_eq!(
            items["state"]["unreadable"][1],
            serde_json::json!({"missingKey": "rules:0", "id": 1})
        );
        assert_eq!(fakes.state().unreadable.len(), 2);
        assert!(installed_ids(engine).is_empty());
    }

    /// A state from a newer version is left as it is, and says why.
    #[test]
    fn a_newer_schema_is_left_untouched() {
        let fakes = Fakes::fresh();
        let newer = serde_json::json!({"state": {"schema": 99, "whatever": [1]}});
        *fakes.store.value.borrow_mut() = Some(newer.clone());
        let writes = fakes.store.writes.get();
        let answer = fakes.handle(Request::ListRules);
        assert_eq!(
            answer,
            Response::Error {
                message: text!("error_store_newer_schema", 99u32)
            }
        );
        let _ = run(reconcile(&fakes.store, &fakes.engine, NOW));
        assert_eq!(fakes.store.writes.get(), writes);
        assert_eq!(*fakes.store.value.borrow(), Some(newer));
    }

    fn managed_policy() -> Value {
        serde_json::json!({
            "rules": [{"id": "models", "label": "ACME models", "site": "https://models.acme.example",
                       "headers": [{"name": "Authorization", "scheme": "bearer",
                                    "login": {"provider": "huggingFace", "endpoint": "https://huggingface.co"}}]}],
            "allowedSites": ["https://*.acme.example"],
        })
    }

    /// A managed rule sends the user's own login's token, and only once
    /// there is one; a policy change applies through the same
    /// reconciliation; the options page shows it, and the refused entries.
    #[test]
    fn managed_rules_use_the_users_login_and_follow_the_policy() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        *store.managed.borrow_mut() = Some(managed_policy());
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert!(
            installed_ids(engine).is_empty(),
            "no login yet, nothing sent"
        );
        let Response::Rules(view) = fakes.handle(Request::ListRules) else {
            panic!("rules");
        };
        let policy = view.policy.expect("the policy is shown");
        assert_eq!(policy.rules[0].pattern, "https://models.acme.example/");
        assert!(!policy.rules[0].sending && !policy.rules[0].headers[0].logged_in);
        // The popup says the site's managed rule waits for a login.
        let site = site_status(&fakes, "https://models.acme.example/v1");
        assert_eq!(
            site.managed_waiting,
            Some((
                "Hugging Face".to_owned(),
                "https://huggingface.co".to_owned()
            ))
        );
        // The user's own rule outside the allowed sites is refused.
        let outside = save(&fakes, "https://elsewhere.example", "tok-elsewhere");
        assert!(
            matches!(&outside, Response::Error { message } if message.key == "error_policy_outside"),
            "{outside:?}"
        );
        // Logging in fills the managed rule.
        fakes.transport.answer(
            "GET /api/whoami-v2",
            crate::provider::http::HttpResponse::new(
                200,
                r#"{"name": "alice", "type": "user", "orgs": []}"#,
            ),
        );
        let login = fakes.handle(Request::Login {
            login: crate::message::LoginDraft {
                provider: Provider::HuggingFace,
                kind: String::new(),
                endpoint: String::new(),
                secret: "hf_managed_token".into(),
                name: String::new(),
            },
        });
        assert!(!matches!(login, Response::Error { .. }), "{login:?}");
        let base = crate::policy::MANAGED_RULE_BASE * 4;
        assert_eq!(installed_ids(engine), [base, base + 1, base + 2]);
        let site = site_status(&fakes, "https://models.acme.example/v1");
        assert!(site.sending(true).is_sent(), "{site:?}");
        assert!(site.rule.as_ref().is_some_and(|r| r.managed));
        assert!(engine
            .rules
            .borrow()
            .iter()
            .any(|r| serde_json::to_string(r).is_ok_and(|j| j.contains("hf_managed_token"))));
        // The policy changes: the rule goes, through a reconciliation.
        *store.managed.borrow_mut() =
            Some(serde_json::json!({"allowedSites": ["https://*.acme.example"]}));
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert!(installed_ids(engine).is_empty());
    }

    /// The administrator's rules keep their room in the browser's limit
    /// before their logins are made: the user's rules cannot take it, so a
    /// login never finds the limit reached.
    #[test]
    fn managed_rules_keep_their_room_under_the_browser_limit() {
        let managed = |count: usize| {
            let rules: Vec<Value> = (0..count)
                .map(|i| {
                    serde_json::json!({"id": format!("m{i}"), "site": format!("https://m{i}.acme.example"),
                        "headers": [{"name": "Authorization", "scheme": "bearer",
                                     "login": {"provider": "huggingFace", "endpoint": "https://huggingface.co"}}]})
                })
                .collect();
            serde_json::json!({ "rules": rules })
        };
        // 1,660 same-site rules: 4,980 of Chromium's 5,000 browser rules.
        let book = crate::testing::workload::filler_book(1660).expect("fillers");
        let fakes = Fakes::default();
        fakes.store.seed(&State {
            book,
            protection: Protection::Convenience,
            ..State::default()
        });
        *fakes.store.managed.borrow_mut() = Some(managed(10));
        let refused = save(&fakes, "https://one-more.example", "tok-one-more");
        let Response::Error { message } = &refused else {
            panic!("saved past the administrator's room: {refused:?}");
        };
        assert_eq!(message.key, "error_compile_too_many_with_managed");
        assert_eq!(
            text::english(message),
            "The enabled rules need 5013 browser rules, 30 of them kept for your \
             administrator's rules, but the browser allows 5000; disable or delete some."
        );
        // With fewer managed rules there is room again.
        *fakes.store.managed.borrow_mut() = Some(managed(5));
        let saved = save(&fakes, "https://one-more.example", "tok-one-more");
        assert!(!matches!(saved, Response::Error { .. }), "{saved:?}");
    }

    #[test]
    fn a_required_passphrase_leaves_no_way_to_keep_tokens_without_one() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        save(&fakes, "https://a.acme.example", "tok-before-policy");
        assert_eq!(installed_ids(engine), [4, 5, 6]);
        *store.managed.borrow_mut() = Some(serde_json::json!({"requireProtection": true}));
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert!(
            installed_ids(engine).is_empty(),
            "tokens kept without a passphrase are not sent"
        );
        // The options page and the popup say so, as the browser does it.
        let Response::Rules(view) = fakes.handle(Request::ListRules) else {
            panic!("rules");
        };
        assert_eq!(
            view.rules[0].held_back,
            Some(crate::message::NotSent::NotAllowed)
        );
        let site = site_status(&fakes, "https://a.acme.example/");
        assert_eq!(
            site.sending(true),
            crate::message::Sending::NotSent {
                why: crate::message::NotSent::NotAllowed
            }
        );
        for request in [
            Request::UseConvenience {
                passphrase: crate::message::Passphrase::default(),
            },
            Request::SaveRule {
                draft: draft("https://b.acme.example", "tok-b"),
            },
        ] {
            let answer = fakes.handle(request);
            assert_eq!(
                answer,
                Response::Error {
                    message: text!("error_policy_protection")
                }
            );
        }
    }

    #[test]
    fn the_administrators_idle_time_is_the_longest() {
        let mut state = State {
            protection: Protection::Convenience,
            ..State::default()
        };
        state.policy =
            crate::policy::Policy::read(Some(&serde_json::json!({"maxIdleMinutes": 30})));
        assert_eq!(
            state.idle_minutes(),
            None,
            "nothing to lock without a passphrase"
        );
        let (header, _) = crate::vault::VaultHeader::create(
            "idle pass",
            &mut crate::service::fakes::CountingRng(0),
        )
        .expect("a vault header");
        for (own, effective) in [(None, Some(30)), (Some(10), Some(10)), (Some(60), Some(30))] {
            state.protection = Protection::Protected {
                header: Box::new(header.clone()),
                idle_minutes: own,
            };
            assert_eq!(state.idle_minutes(), effective, "{own:?}");
            // The popup says what applies, and offers nothing longer.
            let view = VaultView::of(&state, None, NOW);
            assert_eq!(view.idle_minutes, effective);
            assert!(
                view.idle_choices.iter().all(|m| *m <= 30),
                "{:?}",
                view.idle_choices
            );
        }
        let fakes = Fakes::default();
        *fakes.store.managed.borrow_mut() = Some(serde_json::json!({"maxIdleMinutes": 30}));
        for minutes in [None, Some(31)] {
            let answer = fakes.handle(Request::SetIdleLock { minutes });
            assert_eq!(
                answer,
                Response::Error {
                    message: text!("error_policy_idle", 30u32)
                }
            );
        }
    }

    #[test]
    fn a_hostile_policy_is_refused_entry_by_entry_and_never_widens() {
        let fakes = Fakes::default();
        save(&fakes, "https://a.example", "tok-a");
        *fakes.store.managed.borrow_mut() = Some(serde_json::json!({
            "rules": [{"id": "all", "site": "<all_urls>", "headers": [{"name": "A", "ask": true}]},
                      {"id": "leak", "site": "https://b.example", "headers": [{"name": "A", "token": "policy-secret-1"}]}],
            "allowedSites": ["*"],
            "mystery": 1
        }));
        let Response::Rules(view) = fakes.handle(Request::ListRules) else {
            panic!("rules");
        };
        let policy = view.policy.expect("shown");
        assert!(policy.rules.is_empty());
        assert_eq!(policy.problems.len(), 4, "{:?}", policy.problems);
        assert!(!serde_json::to_string(&policy)
            .expect("json")
            .contains("policy-secret-1"));
        // "*" was refused: the allowed list holds nothing, so the user's
        // rule is held back rather than everything being allowed.
        assert_eq!(
            view.rules[0].held_back,
            Some(crate::message::NotSent::NotAllowed)
        );
    }

    #[test]
    fn a_full_store_loses_nothing() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        save(&fakes, "https://a.example", "t");
        let before = store.value.borrow().clone();
        *store.fail_saves.borrow_mut() = Some("QUOTA_BYTES quota exceeded".into());
        let response = save(&fakes, "https://b.example", "t");
        assert_eq!(
            response,
            Response::Error {
                message: text!("error_service_save", "QUOTA_BYTES quota exceeded")
            }
        );
        let Response::Error { message } = response else {
            unreachable!()
        };
        assert_eq!(
            text::english(&message),
            "Could not save, nothing was changed: QUOTA_BYTES quota exceeded"
        );
        assert_eq!(*store.value.borrow(), before);
        assert_eq!(
            installed_ids(engine),
            [4, 5, 6],
            "the browser keeps the old rules"
        );
    }

    #[test]
    fn errors_are_said_with_every_secret_redacted_at_any_depth() {
        let fakes = Fakes::default();
        save(&fakes, "https://a.example", "first-secret");
        let state = fakes.state();
        let error = ServiceError::Provider {
            provider: Provider::Jina,
            source: ProviderError::Rejected {
                code: 400,
                reason: Some("token first-secret is bad".into()),
            },
        };
        let Response::Error { message } = error_response(&error, &state) else {
            panic!()
        };
        assert_eq!(
            message,
            text!(
                "error_service_provider",
                "Jina AI",
                text!(
                    "error_provider_rejected_because",
                    400_u32,
                    "token ••• is bad"
                )
            )
        );
        assert_eq!(
            text::english(&message),
            "Jina AI: The provider refused the request (400): token ••• is bad"
        );
        let unreachable = |origin: &str| {
            text::english(
                &ServiceError::Unreachable {
                    origin: origin.into(),
                    reason: "Failed to fetch".into(),
                }
                .text(),
            )
        };
        assert_eq!(
            unreachable("https://api.example"),
            "Could not reach https://api.example: Failed to fetch; nothing was changed."
        );
        assert_eq!(
            unreachable(""),
            "Could not reach the provider: Failed to fetch; nothing was changed."
        );
        for (error, english) in [
            (
                ServiceError::Locked,
                "Tokenward is locked: unlock it from the toolbar popup first; nothing was changed.",
            ),
            (
                ServiceError::Secret(HeaderError::EmptySecret),
                "The token: Enter the token or secret to send.",
            ),
            (
                ServiceError::Store(StoreError::NewerSchema(9)),
                "The saved settings come from a newer Tokenward (schema 9); update the extension. \
                 Nothing was changed.",
            ),
            (
                ServiceError::Compile(CompileError::TooManyRules { needed: 9, max: 8 }),
                "The enabled rules need 9 browser rules, but the browser allows 8; disable or \
                 delete some.",
            ),
            (
                ServiceError::Endpoint(EndpointError::Scheme),
                "The address must start with https://.",
            ),
            (
                ServiceError::Vault(VaultError::EmptyPassphrase),
                "Enter a passphrase.",
            ),
            (
                ServiceError::SessionKey(PlatformError("no session storage".into())),
                "Could not keep the unlocked key for this session: no session storage",
            ),
        ] {
            assert_eq!(text::english(&error.text()), english, "{error:?}");
        }
    }

    #[test]
    fn browser_errors_are_redacted() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        save(&fakes, "https://a.example", "first-secret");
        *engine.reject.borrow_mut() =
            Some("bad rule: value 'Bearer second-secret' is invalid".into());
        let response = save(&fakes, "https://b.example", "second-secret");
        match response {
            Response::Error { message } => {
                let message = text::english(&message);
                assert_eq!(
                    message,
                    "Saved, but the browser refused the header rules: bad rule: value '•••' is invalid"
                );
                assert!(!message.contains("second-secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The rule was saved; the next reconcile, once the browser accepts,
        // installs it.
        *engine.reject.borrow_mut() = None;
        assert_eq!(run(reconcile(store, engine, NOW)).map(|r| r.added), Ok(3));
    }

    fn session_ids(engine: &MemoryEngine) -> Vec<(u32, Option<Vec<i32>>)> {
        let mut ids: Vec<_> = engine
            .session
            .borrow()
            .iter()
            .map(|r| (r.id, r.condition.tab_ids.clone()))
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn tab_rules_are_session_rules_of_their_tab_until_it_closes() {
        use crate::compile::TAB_RULE_BASE;
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        save(&fakes, "https://a.example", "t");
        let saved = fakes.handle(Request::SaveTabRule {
            tab: 9,
            draft: draft("https://tab.example", "tab-secret"),
        });
        assert!(
            matches!(&saved, Response::Rules(v) if v.saved == Some(TAB_RULE_BASE) && v.rules.len() == 1),
            "the book is unchanged: {saved:?}"
        );
        let base = TAB_RULE_BASE * 4;
        let tab = Some(vec![9]);
        assert_eq!(
            session_ids(engine),
            [
                (base, tab.clone()),
                (base + 1, tab.clone()),
                (base + 2, tab)
            ]
        );
        assert_eq!(installed_ids(engine), [4, 5, 6], "the book's stay dynamic");
        // The page asks with its tab: the tab rule covers it there only.
        let site = |tab| {
            fakes.handle(Request::SiteStatus {
                url: "https://tab.example/x".into(),
                tab: Some(tab),
            })
        };
        assert!(matches!(site(9), Response::Site(v) if v.tab_rule.is_some()));
        assert!(matches!(site(10), Response::Site(v) if v.tab_rule.is_none()));
        // A full reconciliation keeps them.
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert_eq!(session_ids(engine).len(), 3);
        // Closing another tab changes nothing; closing this one ends them.
        assert!(run(tab_closed(store, engine, NOW, 10)).is_ok());
        assert_eq!(session_ids(engine).len(), 3);
        assert!(run(tab_closed(store, engine, NOW, 9)).is_ok());
        assert!(session_ids(engine).is_empty());
        assert_eq!(installed_ids(engine), [4, 5, 6]);
        // Deleting by hand, and a bad draft, from the popup.
        fakes.handle(Request::SaveTabRule {
            tab: 3,
            draft: draft("https://tab.example", "t"),
        });
        assert_eq!(session_ids(engine).len(), 3);
        fakes.handle(Request::DeleteTabRule {
            id: TAB_RULE_BASE + 1,
        });
        assert!(session_ids(engine).is_empty());
        let refused = fakes.handle(Request::SaveTabRule {
            tab: 3,
            draft: draft("*", "t"),
        });
        assert!(matches!(refused, Response::Error { .. }));
        assert!(session_ids(engine).is_empty());
    }

    #[test]
    fn a_lock_ends_tab_rules_and_protected_rules_share_the_session_set() {
        let fakes = Fakes::fresh();
        let (store, engine) = (&fakes.store, &fakes.engine);
        let protect = fakes.handle(Request::Protect {
            passphrase: crate::message::Passphrase("correct horse battery".into()),
            idle_minutes: None,
        });
        assert!(matches!(protect, Response::Vault(_)), "{protect:?}");
        save(&fakes, "https://a.example", "t");
        fakes.handle(Request::SaveTabRule {
            tab: 4,
            draft: draft("https://tab.example", "t"),
        });
        assert_eq!(session_ids(engine).len(), 6, "the book's and the tab's");
        assert!(installed_ids(engine).is_empty());
        assert!(run(reconcile(store, engine, NOW)).is_ok());
        assert_eq!(session_ids(engine).len(), 6, "a reconcile keeps both");
        fakes.handle(Request::Lock);
        assert!(session_ids(engine).is_empty(), "{:?}", session_ids(engine));
        assert!(TabRules::decode(store.tab_rules.borrow().as_ref())
            .rules
            .is_empty());
    }

    #[test]
    fn refused_rules_touch_neither_store_nor_browser() {
        let fakes = Fakes::default();
        let (store, engine) = (&fakes.store, &fakes.engine);
        let response = save(&fakes, "http://api.example.com", "t");
        assert!(
            matches!(response, Response::Error { message } if message == text!("error_pattern_insecure_http"))
        );
        assert_eq!(*store.saves.borrow(), 0);
        assert!(engine.updates.borrow().is_empty());
    }

    #[test]
    fn site_status_reads_stored_state() {
        let fakes = Fakes::default();
        save(&fakes, "https://a.example", "t");
        let response = fakes.handle(Request::SiteStatus {
            url: "https://a.example/x".into(),
            tab: None,
        });
        assert!(matches!(response, Response::Site(s) if s.rule.as_ref().map(|r| r.id) == Some(1)));
    }

    /// A Jina token that expires two days after [`NOW`]: a reminder is due.
    fn token_expiring_soon() -> crate::credential::Credential {
        use crate::credential::{Credential, CredentialKind, Endpoint, DAY};
        use crate::header::Secret;
        use crate::provider::Provider;
        let mut c = Credential::new(
            0,
            Provider::Jina,
            Endpoint::parse(Provider::Jina, "").expect("endpoint"),
            CredentialKind::PersonalAccessToken,
            Secret::from_input("jina_secret").expect("secret"),
        );
        c.info.expires = Some(Timestamp(NOW.0 + 2 * DAY));
        c
    }

    #[test]
    fn reminders_are_shown_once_and_can_be_turned_off() {
        use crate::credential::DAY;
        let fakes = Fakes::default();
        let mut state = fakes.state();
        state.credentials.add(token_expiring_soon());
        fakes.store.seed(&state);

        let due = run(due_reminders(&fakes.platform())).expect("reminders");
        assert_eq!(due.reminders.len(), 1);
        assert_eq!(due.reminders[0].days, 3);
        // The state it answers with holds the mark, as stored.
        assert!(due.state.is_whole());
        assert_eq!(due.state, run(read(&fakes.store)).expect("stored"));
        assert!(run(due_reminders(&fakes.platform()))
            .expect("again")
            .reminders
            .is_empty());

        // The 1-day one, with reminders off: nothing.
        let later = fakes.platform_at(Timestamp(NOW.0 + DAY + 1));
        let off = run(handle(&later, Request::SetReminders { enabled: false }));
        assert!(
            matches!(off, Response::Accounts(ref v) if !v.reminders),
            "{off:?}"
        );
        assert!(run(due_reminders(&later))
            .expect("off")
            .reminders
            .is_empty());
        run(handle(&later, Request::SetReminders { enabled: true }));
        let due = run(due_reminders(&later)).expect("on again").reminders;
        assert_eq!(due.iter().map(|r| r.days).collect::<Vec<_>>(), [1]);
    }

    /// A reconciliation from outside is followed by the reminders, the
    /// alarms and the badges without a second load: the state it hands back
    /// is the state stored, an older layout's upgrade included, and the
    /// reminders marked from it are those a load of its own would mark.
    #[test]
    fn a_reconciliation_hands_on_the_state_it_applied() {
        let fakes = Fakes::default();
        save(&fakes, "https://a.example", "t");
        save(&fakes, "https://b.example", "u");
        let mut state = fakes.state();
        state.credentials.add(token_expiring_soon());
        // Written from outside in the one-key layout of schema 3, which
        // the reconciliation upgrades before it applies.
        *fakes.store.value.borrow_mut() = Some(serde_json::json!({ "state": state.encode() }));
        let loads = fakes.store.loads.get();
        let (_, kept) =
            run(reconcile_keeping(&fakes.store, &fakes.engine, NOW)).expect("reconciles");
        assert!(kept.is_whole());
        assert_eq!(kept.book.rules().len(), 2);
        let read_after = fakes.store.loads.get() - loads;
        assert_eq!(kept, run(read(&fakes.store)).expect("stored"));
        let due = run(due_reminders_of(&fakes.platform(), kept)).expect("reminders");
        assert_eq!(due.reminders.len(), 1);
        assert_eq!(due.state, run(read(&fakes.store)).expect("marked"));
        assert_eq!(read_after, 2, "one load, and one after the upgrade's write");
    }
}

/// Edits applied as their own diff leave the browser with exactly what a
/// full reconciliation computes, over random sequences of edits, toggles,
/// deletes, tokens expiring, locks and changes of mode.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod incremental {
    use proptest::prelude::*;

    use super::fakes::{run, Fakes, MemoryEngine, NOW};
    use super::*;
    use crate::credential::{Credential, CredentialKind, Endpoint};
    use crate::header::Secret;
    use crate::message::Passphrase;
    use crate::rules::tests::draft;

    const DAY: i64 = 86_400;
    const PASS: &str = "incremental passphrase 1";

    #[derive(Debug, Clone)]
    enum Op {
        Save {
            host: u8,
            wildcard: bool,
            any_site: bool,
            credential: Option<u8>,
        },
        Edit {
            rule: u8,
            host: u8,
            secret: u8,
        },
        Toggle {
            rule: u8,
        },
        Delete {
            rule: u8,
        },
        /// Time passes; the expiry alarm reconciles.
        Pass {
            days: u8,
        },
        Protect,
        Unprotect,
        Lock,
        Unlock,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<bool>(), any::<bool>(), proptest::option::of(0u8..2)).prop_map(
                |(host, wildcard, any_site, credential)| Op::Save {
                    host,
                    wildcard,
                    any_site,
                    credential
                }
            ),
            3 => (any::<u8>(), 0u8..6, any::<u8>())
                .prop_map(|(rule, host, secret)| Op::Edit { rule, host, secret }),
            3 => any::<u8>().prop_map(|rule| Op::Toggle { rule }),
            2 => any::<u8>().prop_map(|rule| Op::Delete { rule }),
            1 => (1u8..4).prop_map(|days| Op::Pass { days }),
            1 => Just(Op::Protect),
            1 => Just(Op::Unprotect),
            1 => Just(Op::Lock),
            1 => Just(Op::Unlock),
        ]
    }

    /// Convenience mode with two logins: one whose token expires in two
    /// days, one without expiry.
    fn seeded() -> Fakes {
        let fakes = Fakes::default();
        let mut state = fakes.state();
        for (user, expires) in [("soon", Some(NOW.0 + 2 * DAY)), ("lasting", None)] {
            let mut c = Credential::new(
                0,
                Provider::HuggingFace,
                Endpoint::default_for(Provider::HuggingFace).expect("an endpoint"),
                CredentialKind::PersonalAccessToken,
                Secret::from_input(&format!("hf_token_{user}")).expect("a secret"),
            );
            c.info.expires = expires.map(Timestamp);
            state.credentials.add(c).expect("room");
        }
        // Rules in two groups (ids 1 to 70, 64 to a group), so that an edit
        // reads one of them and counts the other from the head's index.
        for i in 0..70 {
            let wildcard = if i % 3 == 0 { "*." } else { "" };
            let mut d = draft(&format!("https://{wildcard}f{i}.example"), "filler-secret");
            d.enabled = i % 4 != 0;
            state.book.save(&d).expect("a filler rule");
        }
        fakes.store.seed(&state);
        fakes
    }

    fn pattern(host: u8, wildcard: bool) -> String {
        if wildcard {
            format!("https://*.h{host}.example")
        } else {
            format!("https://h{host}.example")
        }
    }

    fn sorted(rules: &RefCell<Vec<Rule>>) -> Vec<Rule> {
        let mut rules = rules.borrow().clone();
        rules.sort_by_key(|r| r.id);
        rules
    }

    fn pick(fakes: &Fakes, index: u8) -> Option<SiteRuleId> {
        let ids: Vec<SiteRuleId> = fakes.state().book.rules().iter().map(|r| r.id).collect();
        (!ids.is_empty()).then(|| ids[usize::from(index) % ids.len()])
    }

    fn passphrase() -> Passphrase {
        Passphrase(PASS.to_owned())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn edits_applied_alone_equal_a_full_reconcile(ops in proptest::collection::vec(op(), 1..24)) {
            let fakes = seeded();
            // The same requests, each read whole: its head's index is taken
            // out before each, as an older build would have left it.
            let twin = seeded();
            let mut now = NOW;
            run(reconcile(&fakes.store, &fakes.engine, now)).expect("the first reconciliation");
            run(reconcile(&twin.store, &twin.engine, now)).expect("the twin's first reconciliation");
            let limits = fakes.engine.target().limits;
            for op in ops {
                let reads = fakes.engine.reads.get();
                let edit = matches!(op, Op::Save { .. } | Op::Edit { .. } | Op::Toggle { .. } | Op::Delete { .. });
                let before = fakes.state();
                let shown = RulesView::of_state(&before, now, None, limits);
                if let Some(head) = twin.store.value.borrow_mut().as_mut().and_then(|v| v.get_mut(store::STATE_KEY)).and_then(Value::as_object_mut) {
                    head.remove("index");
                }
                let (answer, twin_answer) = match op {
                    Op::Pass { days } => {
                        now = Timestamp(now.0 + i64::from(days) * DAY);
                        run(reconcile(&fakes.store, &fakes.engine, now)).expect("the alarm's reconciliation");
                        run(reconcile(&twin.store, &twin.engine, now)).expect("the twin's reconciliation");
                        (None, None)
                    }
                    op => (perform(&fakes, &op, now), perform(&twin, &op, now)),
                };
                let (answer, loads, kept) = match answer {
                    Some((answer, loads, kept)) => (Some(answer), Some(loads), kept),
                    None => (None, None, None),
                };
                if edit {
                    prop_assert_eq!(fakes.engine.reads.get(), reads, "an edit read the installed rules back");
                    // Locked, the edit is refused from the whole state.
                    if !before.locked {
                        prop_assert_eq!(loads.unwrap_or(0), 0, "an edit read every key");
                    }
                }
                // Read sized or whole, a request answers and writes the same.
                prop_assert_eq!(&answer, &twin_answer.map(|(answer, _, _)| answer));
                let (ours, theirs) = (stored(&fakes), stored(&twin));
                prop_assert_eq!(&ours.0, &theirs.0);
                // The twin's index, where its request wrote one, is ours.
                if theirs.1.is_some() {
                    prop_assert_eq!(&ours.1, &theirs.1);
                }
                let state = fakes.state();
                // The page's list, changed by the answer, is the list anew.
                if let Some(Response::RuleChanged(change)) = answer {
                    let saved = change.saved;
                    let mut changed = shown;
                    changed.apply(change);
                    prop_assert_eq!(changed, RulesView::of_state(&state, now, saved, limits));
                }
                prop_assert_eq!(
                    store::BookIndex::of(state.book.rules()),
                    serde_json::from_value::<store::BookIndex>(
                        fakes.store.value.borrow().as_ref().expect("a state")[store::STATE_KEY]["index"].clone()
                    ).expect("an index")
                );
                // The badges' read, sized to the pages, says of them what
                // the whole state says.
                let pages: Vec<String> = (0..6)
                    .flat_map(|host| [format!("https://h{host}.example/p"), format!("https://x.h{host}.example/")])
                    .collect();
                let sized = run(read_for_pages(&fakes.store, &pages)).expect("a read for pages");
                for page in &pages {
                    let view = |s: &State| crate::message::SiteView::of(&s.book, &s.credentials, now, page, None);
                    prop_assert_eq!(view(&sized), view(&state), "{}", page);
                }
                prop_assert_eq!(sized.locked, state.locked);
                // The state a rule's edit kept, whole or sized to its group,
                // where it says it tells pages (the badges after the edit
                // then read nothing), tells them what the whole state does:
                // the pages of the new rules' group alone, and with a page
                // of the first group's.
                if let Some(kept) = kept.filter(|_| edit) {
                    let first_group = pages.iter().cloned().chain(["https://f5.example/".to_owned()]).collect::<Vec<_>>();
                    for urls in [&pages, &first_group] {
                        if kept.tells_pages(urls) {
                            for page in urls {
                                let view = |s: &State| crate::message::SiteView::of(&s.book, &s.credentials, now, page, None);
                                prop_assert_eq!(view(&kept), view(&state), "{}", page);
                            }
                        }
                    }
                }
                let full = MemoryEngine::default();
                run(apply(&fakes.store, &full, &state, now)).expect("a full reconciliation");
                prop_assert_eq!(sorted(&fakes.engine.rules), sorted(&full.rules));
                prop_assert_eq!(sorted(&fakes.engine.session), sorted(&full.session));
            }
        }
    }

    /// What `fakes` stores, its head's index taken out, and the index.
    fn stored(fakes: &Fakes) -> (Value, Option<Value>) {
        let mut value = fakes.store.value.borrow().clone().unwrap_or_default();
        let index = value
            .get_mut(store::STATE_KEY)
            .and_then(Value::as_object_mut)
            .and_then(|head| head.remove("index"));
        (value, index)
    }

    /// Sends `op`'s request, if it has one for the state `fakes` holds:
    /// the answer, how many times the request read every key, and the
    /// state it kept.
    fn perform(fakes: &Fakes, op: &Op, now: Timestamp) -> Option<(Response, usize, Option<State>)> {
        let request = match *op {
            Op::Save {
                host,
                wildcard,
                any_site,
                credential,
            } => {
                let mut d = draft(&pattern(host, wildcard), "pasted-secret");
                d.any_site = any_site;
                d.headers[0].credential = credential.map(|c| u32::from(c) + 1);
                Request::SaveRule { draft: d }
            }
            Op::Edit { rule, host, secret } => {
                let mut d = draft(&pattern(host, false), &format!("edited-{secret}"));
                d.id = Some(pick(fakes, rule)?);
                Request::SaveRule { draft: d }
            }
            Op::Toggle { rule } => {
                let id = pick(fakes, rule)?;
                let enabled = !fakes.state().book.get(id).is_some_and(|r| r.enabled);
                Request::SetEnabled { id, enabled }
            }
            Op::Delete { rule } => Request::DeleteRule {
                id: pick(fakes, rule)?,
            },
            Op::Pass { .. } => return None,
            Op::Protect => Request::Protect {
                passphrase: passphrase(),
                idle_minutes: None,
            },
            Op::Unprotect => Request::UseConvenience {
                passphrase: passphrase(),
            },
            Op::Lock => Request::Lock,
            Op::Unlock => Request::Unlock {
                passphrase: passphrase(),
            },
        };
        let loads = fakes.store.loads.get();
        let (answer, kept) = fakes.handle_keeping_at(now, request);
        Some((answer, fakes.store.loads.get() - loads, kept))
    }
}
