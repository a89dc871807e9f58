//! The services Tokenward logs in to, spoken without IO.
//!
//! Each operation is a [`Call`]: the requests to send, built exactly as the
//! provider's official client sends them (`shared/provider-contracts.md`),
//! and the parser that turns the answers into a result or a
//! [`ProviderError`]. The background sends the requests with `fetch` and
//! hands the answers back; everything else, status conventions included, is
//! decided here and tested natively.
//!
//! What follows from a credential without asking the provider, the site
//! and header it is used with and the copy helpers, is in [`site`].

pub mod bentocloud;
pub mod http;
pub mod huggingface;
pub mod jina;
pub mod nuclia;
pub mod openid;
pub mod site;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use http::{HttpRequest, HttpResponse, Method};

use crate::credential::{
    Account, Clock, Credential, CredentialId, CredentialInfo, CredentialKind, Timestamp, Validity,
    DAY,
};
use crate::header::Secret;
use crate::text;
use crate::text::{Localize, Text};

pub use crate::credential::Provider;

/// What each provider's official client does by default.
impl Provider {
    /// The official client's default expiry for a new token: BentoCloud
    /// none, Jina 7 days (`jina-auth token create`), Nuclia 90 days.
    pub fn default_expiry(self) -> Expiry {
        match self {
            Provider::Jina => Expiry::Days(7),
            Provider::Nuclia => Expiry::Days(90),
            _ => Expiry::Never,
        }
    }

    /// What the create form proposes: the provider's default, or 30 days
    /// where the default is never to expire, so a token without an end is a
    /// choice, not an accident.
    pub fn suggested_expiry(self) -> Expiry {
        match self.default_expiry() {
            Expiry::Never => Expiry::Days(30),
            e => e,
        }
    }
}

/// Why a provider call failed. Messages are for the user; the sent token is
/// redacted from any text the provider returned, and answers are never
/// quoted beyond the provider's short reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider refused the token{}", because(.reason))]
    Unauthorized { reason: Option<String> },
    #[error("the token is not allowed to do this{}", because(.reason))]
    Forbidden { reason: Option<String> },
    #[error("{what} not found{}", because(.reason))]
    NotFound {
        what: Resource,
        reason: Option<String>,
    },
    #[error("the provider is limiting requests; try again {}", match .retry_after {
        Some(s) => format!("in {s} seconds"),
        None => "later".to_owned(),
    })]
    RateLimited { retry_after: Option<u64> },
    #[error("the provider had an error (HTTP {status}); try again later{}", match .trace_id {
        Some(t) => format!(" (trace id {t})"),
        None => String::new(),
    })]
    Server {
        status: u16,
        trace_id: Option<String>,
    },
    /// A 4xx other than the above, or a Jina error code such as 40001.
    #[error("the provider refused the request ({code}){}", because(.reason))]
    Rejected { code: u32, reason: Option<String> },
    /// A status the provider's convention does not allow here, such as a
    /// 201 from BentoCloud, which answers exactly 200.
    #[error("the provider answered with an unexpected status (HTTP {status})")]
    Unexpected { status: u16 },
    /// The provider ended a browser login without a token, in its words.
    #[error("the login did not finish{}", because(.reason))]
    LoginFailed { reason: Option<String> },
    /// Tokenward ended a browser login: what came back does not belong to
    /// it, or is not what a login gives.
    #[error("the login did not finish: {}", said(.0))]
    LoginRefused(Text),
    #[error("the provider's answer could not be read: {0}")]
    Malformed(AnswerProblem),
    /// The provider has no such operation or option.
    #[error("{}", said(.0))]
    Unsupported(Text),
    /// The request cannot be built from what was entered.
    #[error("{}", said(.0))]
    Invalid(Text),
}

fn because(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

/// A [`Text`] for a `Display` impl, which serves logs and tests: natively
/// in English; in the browser, whose catalogue the pages use, by its name.
pub(crate) fn said(text: &Text) -> String {
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::text::english(text)
    }
    #[cfg(target_arch = "wasm32")]
    {
        format!("[{}]", text.key)
    }
}

/// What a provider did not find (HTTP 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Resource {
    #[error("account")]
    Account,
    #[error("accounts")]
    Accounts,
    #[error("organization")]
    Organization,
    #[error("user")]
    User,
    #[error("token")]
    Token,
    #[error("token list")]
    TokenList,
    #[error("API token")]
    ApiToken,
    #[error("Knowledge Box")]
    KnowledgeBox,
    #[error("NUA key")]
    NuaKey,
    #[error("session")]
    Session,
    #[error("login")]
    Login,
    #[error("login code")]
    LoginCode,
    #[error("the OpenID configuration (.well-known/openid-configuration)")]
    OpenIdConfiguration,
    #[error("the token endpoint")]
    TokenEndpoint,
}

impl Localize for Resource {
    fn text(&self) -> Text {
        match self {
            Resource::Account => text!("error_resource_account"),
            Resource::Accounts => text!("error_resource_accounts"),
            Resource::Organization => text!("error_resource_organization"),
            Resource::User => text!("error_resource_user"),
            Resource::Token => text!("error_resource_token"),
            Resource::TokenList => text!("error_resource_token_list"),
            Resource::ApiToken => text!("error_resource_api_token"),
            Resource::KnowledgeBox => text!("error_resource_knowledge_box"),
            Resource::NuaKey => text!("error_resource_nua_key"),
            Resource::Session => text!("error_resource_session"),
            Resource::Login => text!("error_resource_login"),
            Resource::LoginCode => text!("error_resource_login_code"),
            Resource::OpenIdConfiguration => text!("error_resource_openid_configuration"),
            Resource::TokenEndpoint => text!("error_resource_token_endpoint"),
        }
    }
}

/// What is wrong with a provider's answer. Names fields (`items[2].name`),
/// never values: an answer may hold a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerProblem {
    #[error("no answer was received")]
    NoAnswer,
    #[error("the answer is empty")]
    Empty,
    #[error("the answer is not JSON")]
    NotJson,
    #[error("the answer is not a JSON object")]
    NotObject,
    #[error("the answer is not a JSON list")]
    NotList,
    #[error("a line of the login stream is not JSON")]
    StreamLineNotJson,
    #[error("`{0}` is missing")]
    Missing(String),
    #[error("`{0}` and `{1}` are missing")]
    BothMissing(String, String),
    #[error("`{0}` is empty")]
    EmptyField(String),
    #[error("`{field}` should be {expected}")]
    Wrong { field: String, expected: Expected },
    #[error("`{0}` is not a URL")]
    NotUrl(String),
    #[error("`{0}` is not a web page")]
    NotWebPage(String),
    #[error("`{0}` holds characters a header cannot carry")]
    FieldNotHeaderSafe(String),
    #[error("the token holds characters a header cannot carry")]
    TokenNotHeaderSafe,
    #[error("the new token holds characters a header cannot carry")]
    NewTokenNotHeaderSafe,
    #[error("the login code is not a plain token")]
    LoginCodeNotToken,
    #[error("the login was authorized before its page was opened")]
    AuthorizedBeforePage,
}

/// What a field of an answer should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Object,
    List,
    Text,
    ListOfText,
    Date,
    Number,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::Object => "an object",
            Expected::List => "a list",
            Expected::Text => "text",
            Expected::ListOfText => "a list of text",
            Expected::Date => "a date",
            Expected::Number => "a number",
        })
    }
}

impl Localize for AnswerProblem {
    fn text(&self) -> Text {
        match self {
            AnswerProblem::NoAnswer => text!("error_answer_no_answer"),
            AnswerProblem::Empty => text!("error_answer_empty"),
            AnswerProblem::NotJson => text!("error_answer_not_json"),
            AnswerProblem::NotObject => text!("error_answer_not_object"),
            AnswerProblem::NotList => text!("error_answer_not_list"),
            AnswerProblem::StreamLineNotJson => text!("error_answer_stream_line_not_json"),
            AnswerProblem::Missing(field) => text!("error_answer_missing", field),
            AnswerProblem::BothMissing(a, b) => text!("error_answer_both_missing", a, b),
            AnswerProblem::EmptyField(field) => text!("error_answer_empty_field", field),
            AnswerProblem::Wrong { field, expected } => match expected {
                Expected::Object => text!("error_answer_should_be_object", field),
                Expected::List => text!("error_answer_should_be_list", field),
                Expected::Text => text!("error_answer_should_be_text", field),
                Expected::ListOfText => text!("error_answer_should_be_list_of_text", field),
                Expected::Date => text!("error_answer_should_be_date", field),
                Expected::Number => text!("error_answer_should_be_number", field),
            },
            AnswerProblem::NotUrl(field) => text!("error_answer_not_url", field),
            AnswerProblem::NotWebPage(field) => text!("error_answer_not_web_page", field),
            AnswerProblem::FieldNotHeaderSafe(field) => {
                text!("error_answer_field_not_header_safe", field)
            }
            AnswerProblem::TokenNotHeaderSafe => text!("error_answer_token_not_header_safe"),
            AnswerProblem::NewTokenNotHeaderSafe => {
                text!("error_answer_new_token_not_header_safe")
            }
            AnswerProblem::LoginCodeNotToken => text!("error_answer_login_code_not_token"),
            AnswerProblem::AuthorizedBeforePage => text!("error_answer_authorized_before_page"),
        }
    }
}

impl Localize for ProviderError {
    fn text(&self) -> Text {
        match self {
            ProviderError::Unauthorized { reason: None } => text!("error_provider_unauthorized"),
            ProviderError::Unauthorized { reason: Some(r) } => {
                text!("error_provider_unauthorized_because", r)
            }
            ProviderError::Forbidden { reason: None } => text!("error_provider_forbidden"),
            ProviderError::Forbidden { reason: Some(r) } => {
                text!("error_provider_forbidden_because", r)
            }
            ProviderError::NotFound { what, reason: None } => {
                text!("error_provider_not_found", what.text())
            }
            ProviderError::NotFound {
                what,
                reason: Some(r),
            } => text!("error_provider_not_found_because", what.text(), r),
            ProviderError::RateLimited { retry_after: None } => {
                text!("error_provider_rate_limited")
            }
            ProviderError::RateLimited {
                retry_after: Some(seconds),
            } => text!("error_provider_rate_limited_for", *seconds),
            ProviderError::Server {
                status,
                trace_id: None,
            } => text!("error_provider_server", *status),
            ProviderError::Server {
                status,
                trace_id: Some(trace),
            } => text!("error_provider_server_traced", *status, trace),
            ProviderError::Rejected { code, reason: None } => {
                text!("error_provider_rejected", *code)
            }
            ProviderError::Rejected {
                code,
                reason: Some(r),
            } => text!("error_provider_rejected_because", *code, r),
            ProviderError::Unexpected { status } => text!("error_provider_unexpected", *status),
            ProviderError::LoginFailed { reason: None } => text!("error_provider_login_failed"),
            ProviderError::LoginFailed { reason: Some(r) } => {
                text!("error_provider_login_failed_because", r)
            }
            ProviderError::LoginRefused(why) => {
                text!("error_provider_login_failed_because", why.clone())
            }
            ProviderError::Malformed(problem) => text!("error_provider_malformed", problem.text()),
            ProviderError::Unsupported(why) | ProviderError::Invalid(why) => why.clone(),
        }
    }
}

impl ProviderError {
    /// The same error with the secret removed from the provider's words.
    fn redacted(self, secret: &Secret) -> ProviderError {
        let clean = |r: Option<String>| r.and_then(|r| http::redact(&r, secret));
        match self {
            ProviderError::Unauthorized { reason } => ProviderError::Unauthorized {
                reason: clean(reason),
            },
            ProviderError::Forbidden { reason } => ProviderError::Forbidden {
                reason: clean(reason),
            },
            ProviderError::NotFound { what, reason } => ProviderError::NotFound {
                what,
                reason: clean(reason),
            },
            ProviderError::Rejected { code, reason } => ProviderError::Rejected {
                code,
                reason: clean(reason),
            },
            ProviderError::Server { status, trace_id } => ProviderError::Server {
                status,
                trace_id: clean(trace_id),
            },
            other => other,
        }
    }
}

type Finish<T> = Box<dyn FnOnce(&[HttpResponse]) -> Result<T, ProviderError>>;

/// One provider operation, sans IO: send [`Call::requests`] in order, then
/// give every answer to [`Call::finish`]. A driver may stop after the first
/// answer that is not 2xx: the parser reports the first failure, in order.
pub struct Call<T> {
    pub requests: Vec<HttpRequest>,
    secret: Secret,
    finish: Finish<T>,
}

impl<T: 'static> Call<T> {
    fn new(
        requests: Vec<HttpRequest>,
        secret: &Secret,
        finish: impl FnOnce(&[HttpResponse]) -> Result<T, ProviderError> + 'static,
    ) -> Call<T> {
        Call {
            requests,
            secret: secret.clone(),
            finish: Box::new(finish),
        }
    }

    fn single(
        request: HttpRequest,
        secret: &Secret,
        parse: impl FnOnce(&HttpResponse) -> Result<T, ProviderError> + 'static,
    ) -> Call<T> {
        Call::new(vec![request], secret, |responses| {
            parse(answer(responses, 0)?)
        })
    }

    /// The result, from the answers to [`Call::requests`], in order.
    pub fn finish(self, responses: &[HttpResponse]) -> Result<T, ProviderError> {
        (self.finish)(responses).map_err(|e| e.redacted(&self.secret))
    }
}

fn answer(responses: &[HttpResponse], i: usize) -> Result<&HttpResponse, ProviderError> {
    responses
        .get(i)
        .ok_or_else(|| http::malformed(AnswerProblem::NoAnswer))
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// Who a token belongs to, from the provider's who-am-I call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub account: Account,
    /// The provider's own confirmation, such as BentoCloud's `Logged in as
    /// <email> at <org> organization`.
    pub confirmation: Text,
    /// The token's name, where the provider tells it (Hugging Face).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

/// A token as the provider lists it. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteToken {
    /// What deleting it takes: BentoCloud's `uid`, Jina's name, Nuclia's id.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Jina's token `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// BentoCloud `last_used_at`; Jina's `updatedAt`, which its CLI shows
    /// as "Last use at".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Timestamp>,
}

impl RemoteToken {
    pub fn validity(&self, now: Timestamp) -> Validity {
        Validity::at(self.expires, now)
    }
}

/// A token just created: the only time its secret is seen. Show it once,
/// then keep it in the vault only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub token: RemoteToken,
    pub secret: Secret,
}

impl NewToken {
    /// The vault entry for the new token, at the same provider, endpoint and
    /// account as the credential that created it.
    pub fn into_credential(
        self,
        id: CredentialId,
        creator: &CredentialInfo,
        spec: &TokenSpec,
        now: Timestamp,
    ) -> Credential {
        let kind = match creator.provider {
            Provider::BentoCloud => CredentialKind::ApiToken {
                scopes: self.token.scopes.clone(),
                deployments: None,
            },
            _ => CredentialKind::PersonalAccessToken,
        };
        let mut c = Credential::new(
            id,
            creator.provider,
            creator.endpoint.clone(),
            kind,
            self.secret,
        );
        c.info.account = creator.account.clone();
        c.info.name = self.token.name;
        c.info.description = spec.description.clone();
        c.info.remote_id = Some(self.token.id);
        c.info.created = self.token.created.or(Some(now));
        c.info.expires = self.token.expires;
        c.info.last_verified = Some(now);
        c
    }
}

/// When a new token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Expiry {
    Never,
    Days(u32),
    At(Timestamp),
}

impl Expiry {
    fn at(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::Days(d) => Some(now.plus_days(d)),
            Expiry::At(t) => Some(t),
        }
    }

    /// Whole days from now, rounded up, for providers that count in days.
    fn days(self, now: Timestamp) -> Option<u32> {
        match self {
            Expiry::Never => None,
            Expiry::Days(d) => Some(d),
            Expiry::At(t) => u32::try_from((t.0 - now.0 + DAY - 1) / DAY).ok(),
        }
    }
}

/// What the create form submits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub expiry: Expiry,
    /// BentoCloud scopes, spelled as BentoCloud does.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl TokenSpec {
    /// What replaces the token `old` when it expires: the same description
    /// and scopes, the same lifetime (or the provider's suggestion when it
    /// had none), and its name dated today (`ci` → `ci-2026-11-23`), since
    /// Jina addresses tokens by name and the old one still holds it.
    pub fn successor(old: &CredentialInfo, now: Timestamp) -> TokenSpec {
        const DAY: i64 = 24 * 60 * 60;
        let base = old.name.trim();
        // A name dated by an earlier rotation keeps one date.
        let base = match base.len().checked_sub(11) {
            Some(cut)
                if base.is_char_boundary(cut)
                    && base[cut..].starts_with('-')
                    && base[cut + 1..].bytes().enumerate().all(|(i, b)| {
                        if i == 4 || i == 7 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    }) =>
            {
                &base[..cut]
            }
            _ => base,
        };
        let base = if base.is_empty() { "tokenward" } else { base };
        let expiry = match (old.created, old.expires) {
            (Some(created), Some(expires)) if expires.0 > created.0 => {
                let days = (expires.0 - created.0 + DAY / 2) / DAY;
                Expiry::Days(u32::try_from(days.clamp(1, 3650)).unwrap_or(30))
            }
            _ => old.provider.suggested_expiry(),
        };
        TokenSpec {
            name: format!("{base}-{}", now.date()),
            description: old.description.clone(),
            expiry,
            scopes: match &old.kind {
                CredentialKind::ApiToken { scopes, .. } => scopes.clone(),
                _ => Vec::new(),
            },
        }
    }

    fn check(&self, now: Timestamp) -> Result<(), ProviderError> {
        if self.name.trim().is_empty() {
            return Err(ProviderError::Invalid(text!("error_token_spec_no_name")));
        }
        match self.expiry {
            Expiry::Days(0) => Err(ProviderError::Invalid(text!("error_token_spec_zero_days"))),
            Expiry::At(t) if t <= now => Err(ProviderError::Invalid(text!(
                "error_token_spec_past_expiry"
            ))),
            _ => Ok(()),
        }
    }
}

/// How Jina's logout went; both leave the user logged out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogoutOutcome {
    LoggedOut,
    /// The provider had no session for this token.
    NotLoggedIn,
}

fn unsupported<T>(why: Text) -> Result<T, ProviderError> {
    Err(ProviderError::Unsupported(why))
}

fn openid_no_tokens<T>() -> Result<T, ProviderError> {
    unsupported(text!("error_unsupported_openid_no_tokens"))
}

fn huggingface_no_tokens<T>() -> Result<T, ProviderError> {
    unsupported(text!("error_unsupported_huggingface_tokens"))
}

/// Checks a token and reads the account: the provider's who-am-I call.
pub fn who_am_i(credential: &Credential) -> Result<Call<Identity>, ProviderError> {
    let (info, secret) = (&credential.info, &credential.secret);
    let endpoint = &info.endpoint;
    match (info.provider, &info.kind) {
        (Provider::BentoCloud, _) => Ok(bentocloud::who_am_i(endpoint, secret)),
        (Provider::Jina, _) => Ok(jina::who_am_i(endpoint, secret)),
        (Provider::Nuclia, CredentialKind::KnowledgeBoxKey) => {
            Ok(nuclia::verify_kb_key(endpoint, secret))
        }
        (Provider::Nuclia, CredentialKind::NuaKey) => nuclia::verify_nua_key(secret),
        (Provider::Nuclia, _) => Ok(nuclia::who_am_i(endpoint, secret)),
        (Provider::HuggingFace, _) => huggingface::who_am_i(endpoint, secret),
        (Provider::Custom, _) => unsupported(text!("error_unsupported_custom_check")),
        (Provider::OpenId, _) => unsupported(text!("error_unsupported_openid_browser_only")),
    }
}

/// The account's tokens, as the provider lists them.
pub fn list_tokens(credential: &Credential) -> Result<Call<Vec<RemoteToken>>, ProviderError> {
    let (info, secret) = (&credential.info, &credential.secret);
    match info.provider {
        Provider::BentoCloud => Ok(bentocloud::list_tokens(&info.endpoint, secret, None)),
        Provider::Jina => Ok(jina::list_tokens(&info.endpoint, secret)),
        Provider::Nuclia => nuclia_user(info).map(|()| nuclia::list_tokens(&info.endpoint, secret)),
        Provider::HuggingFace => huggingface_no_tokens(),
        Provider::Custom => unsupported(text!("error_unsupported_custom_token_list")),
        Provider::OpenId => openid_no_tokens(),
    }
}

/// Creates a token. The secret comes back once, in [`NewToken`].
pub fn create_token(
    credential: &Credential,
    spec: &TokenSpec,
    clock: Clock,
) -> Result<Call<NewToken>, ProviderError> {
    let (info, secret) = (&credential.info, &credential.secret);
    spec.check(clock.now)?;
    match info.provider {
        Provider::BentoCloud => Ok(bentocloud::create_token(
            &info.endpoint,
            secret,
            spec,
            clock,
        )),
        Provider::Jina => jina::create_token(&info.endpoint, secret, spec, clock.now),
        Provider::Nuclia => {
            nuclia_user(info)?;
            nuclia::create_token(&info.endpoint, secret, spec, clock)
        }
        Provider::HuggingFace => huggingface_no_tokens(),
        Provider::Custom => unsupported(text!("error_unsupported_custom_token_creation")),
        Provider::OpenId => openid_no_tokens(),
    }
}

/// Deletes (revokes) the token the provider knows as `id`
/// ([`RemoteToken::id`]).
pub fn delete_token(credential: &Credential, id: &str) -> Result<Call<()>, ProviderError> {
    let (info, secret) = (&credential.info, &credential.secret);
    if id.is_empty() {
        return Err(ProviderError::Invalid(text!(
            "error_token_delete_none_chosen"
        )));
    }
    match info.provider {
        Provider::BentoCloud => Ok(bentocloud::delete_token(&info.endpoint, secret, id)),
        Provider::Jina => Ok(jina::delete_token(&info.endpoint, secret, id)),
        Provider::Nuclia => {
            nuclia_user(info).map(|()| nuclia::delete_token(&info.endpoint, secret, id))
        }
        Provider::HuggingFace => huggingface_no_tokens(),
        Provider::Custom => unsupported(text!("error_unsupported_custom_token_deletion")),
        Provider::OpenId => openid_no_tokens(),
    }
}

/// The provider's logout, where it has one: Jina's `user.session.dismiss`.
/// `None`: the others have nothing to tell; forget the credential locally.
pub fn logout(credential: &Credential) -> Option<Call<LogoutOutcome>> {
    match credential.info.provider {
        Provider::Jina => Some(jina::logout(&credential.info.endpoint, &credential.secret)),
        _ => None,
    }
}

/// Nuclia manages tokens with a user token; its Knowledge Box and NUA keys
/// are managed in its dashboard.
fn nuclia_user(info: &CredentialInfo) -> Result<(), ProviderError> {
    match info.kind {
        CredentialKind::KnowledgeBoxKey | CredentialKind::NuaKey => {
            unsupported(text!("error_unsupported_nuclia_keys"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::credential::Endpoint;

    pub(crate) fn secret(s: &str) -> Secret {
        Secret::from_input(s).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn endpoint(provider: Provider) -> Endpoint {
        Endpoint::default_for(provider).unwrap_or_else(|| panic!("{provider}"))
    }

    pub(crate) fn credential(provider: Provider, kind: CredentialKind, s: &str) -> Credential {
        let endpoint = Endpoint::default_for(provider).unwrap_or_else(|| {
            Endpoint::new("https://api.example.com").unwrap_or_else(|e| panic!("{e}"))
        });
        Credential::new(1, provider, endpoint, kind, secret(s))
    }

    pub(crate) fn body_json(request: &HttpRequest) -> serde_json::Value {
        serde_json::from_str(request.body.as_deref().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The request's method, URL and headers, for comparing with the
    /// contract.
    pub(crate) fn shape(request: &HttpRequest) -> (&'static str, &str, Vec<(&str, &str)>) {
        (
            request.method.as_str(),
            request.url.as_str(),
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
        )
    }

    pub(crate) const CLOCK: Clock = Clock {
        now: Timestamp(1_766_000_000), // 2025-12-17T19:33:20Z
        utc_offset_minutes: 0,
    };

    fn pat() -> CredentialKind {
        CredentialKind::PersonalAccessToken
    }

    #[test]
    fn every_error_from_an_echoing_body_is_redacted() {
        let token = "sk-live-0123456789abcdef";
        let echo = format!(
            r#"{{"message":"token {token} is invalid","status":40102,"detail":"{token}","error":"{token}"}}"#
        );
        for provider in [
            Provider::BentoCloud,
            Provider::Jina,
            Provider::Nuclia,
            Provider::HuggingFace,
        ] {
            for status in [400, 401, 403, 404, 409, 422] {
                let c = credential(provider, pat(), token);
                let call = who_am_i(&c).unwrap_or_else(|e| panic!("{e}"));
                let n = call.requests.len();
                let responses = vec![HttpResponse::new(status, echo.clone()); n];
                let err = call
                    .finish(&responses)
                    .err()
                    .unwrap_or_else(|| panic!("{provider} {status}"));
                let text = err.to_string();
                assert!(!text.contains(token), "{provider} {status}: {text}");
                assert!(!format!("{err:?}").contains(token), "{provider} {status}");
            }
        }
        // Plain text bodies too.
        let c = credential(Provider::HuggingFace, pat(), token);
        let call = who_am_i(&c).unwrap_or_else(|e| panic!("{e}"));
        let err = call.finish(&[HttpResponse::new(401, format!("Invalid token {token}"))]);
        assert_eq!(
            err.err()
                .map(|e| (e.to_string(), crate::text::english(&e.text()))),
            Some((
                "the provider refused the token: Invalid token •••".to_owned(),
                "The provider refused the token: Invalid token •••".to_owned()
            ))
        );
    }

    #[test]
    fn errors_are_said_to_the_user() {
        let said = |e: ProviderError| crate::text::english(&e.text());
        for (error, english) in [
            (
                ProviderError::Unauthorized { reason: None },
                "The provider refused the token.",
            ),
            (
                ProviderError::Forbidden {
                    reason: Some("read only".into()),
                },
                "The token is not allowed to do this: read only",
            ),
            (
                ProviderError::NotFound {
                    what: Resource::KnowledgeBox,
                    reason: None,
                },
                "Knowledge Box not found.",
            ),
            (
                ProviderError::NotFound {
                    what: Resource::Token,
                    reason: Some("gone".into()),
                },
                "Token not found: gone",
            ),
            (
                ProviderError::RateLimited {
                    retry_after: Some(12),
                },
                "The provider is limiting requests; try again in 12 seconds.",
            ),
            (
                ProviderError::RateLimited { retry_after: None },
                "The provider is limiting requests; try again later.",
            ),
            (
                ProviderError::Server {
                    status: 502,
                    trace_id: Some("t-1".into()),
                },
                "The provider had an error (HTTP 502); try again later (trace id t-1).",
            ),
            (
                ProviderError::Rejected {
                    code: 40001,
                    reason: None,
                },
                "The provider refused the request (40001).",
            ),
            (
                ProviderError::Unexpected { status: 201 },
                "The provider answered with an unexpected status (HTTP 201).",
            ),
            (
                ProviderError::LoginFailed {
                    reason: Some("access_denied".into()),
                },
                "The login did not finish: access_denied",
            ),
            (
                ProviderError::LoginRefused(text!("error_login_no_code")),
                "The login did not finish: The provider's redirect has no code.",
            ),
            (
                ProviderError::Malformed(AnswerProblem::Wrong {
                    field: "items[2].name".into(),
                    expected: Expected::ListOfText,
                }),
                "The provider's answer could not be read: The field “items[2].name” should be a \
                 list of text.",
            ),
            (
                ProviderError::Unsupported(text!("error_unsupported_custom_token_list")),
                "A custom site has no token list.",
            ),
        ] {
            assert_eq!(said(error), english);
        }
        let hf = credential(Provider::HuggingFace, pat(), "hf_abc");
        assert_eq!(
            list_tokens(&hf).err().map(said).as_deref(),
            Some("Hugging Face tokens are created and deleted only at huggingface.co/settings/tokens.")
        );
    }

    #[test]
    fn operations_a_provider_lacks_are_refused_before_any_request() {
        let hf = credential(Provider::HuggingFace, pat(), "hf_abc");
        let spec = TokenSpec {
            name: "x".into(),
            description: String::new(),
            expiry: Expiry::Days(1),
            scopes: vec![],
        };
        assert!(matches!(
            list_tokens(&hf),
            Err(ProviderError::Unsupported(_))
        ));
        assert!(matches!(
            create_token(&hf, &spec, CLOCK),
            Err(ProviderError::Unsupported(_))
        ));
        assert!(matches!(
            delete_token(&hf, "x"),
            Err(ProviderError::Unsupported(_))
        ));
        assert!(logout(&hf).is_none());
        let kb = credential(Provider::Nuclia, CredentialKind::KnowledgeBoxKey, "key");
        assert!(matches!(
            list_tokens(&kb),
            Err(ProviderError::Unsupported(_))
        ));
        let custom = credential(Provider::Custom, pat(), "x");
        assert!(matches!(
            who_am_i(&custom),
            Err(ProviderError::Unsupported(_))
        ));
        let jina = credential(Provider::Jina, pat(), "jina_x");
        assert!(logout(&jina).is_some());
        assert!(matches!(
            delete_token(&jina, ""),
            Err(ProviderError::Invalid(_))
        ));
    }

    #[test]
    fn token_specs_are_checked() {
        let c = credential(Provider::BentoCloud, pat(), "t");
        let spec = |name: &str, expiry| TokenSpec {
            name: name.into(),
            description: String::new(),
            expiry,
            scopes: vec![],
        };
        let refused =
            |s: TokenSpec| matches!(create_token(&c, &s, CLOCK), Err(ProviderError::Invalid(_)));
        assert!(refused(spec(" ", Expiry::Never)));
        assert!(refused(spec("x", Expiry::Days(0))));
        assert!(refused(spec("x", Expiry::At(CLOCK.now))));
        assert!(!refused(spec("x", Expiry::At(CLOCK.now.plus_days(1)))));
        assert_eq!(
            Expiry::At(Timestamp(CLOCK.now.0 + 1)).days(CLOCK.now),
            Some(1)
        );
        assert_eq!(Expiry::At(CLOCK.now.plus_days(2)).days(CLOCK.now), Some(2));
        assert_eq!(Expiry::Never.days(CLOCK.now), None);
    }

    #[test]
    fn expiry_defaults_follow_the_official_clients() {
        assert_eq!(Provider::BentoCloud.default_expiry(), Expiry::Never);
        assert_eq!(Provider::BentoCloud.suggested_expiry(), Expiry::Days(30));
        assert_eq!(Provider::Jina.default_expiry(), Expiry::Days(7));
        assert_eq!(Provider::Nuclia.suggested_expiry(), Expiry::Days(90));
        assert_eq!(
            serde_json::to_value(Expiry::Days(7)).ok(),
            Some(serde_json::json!({"days": 7}))
        );
        assert_eq!(
            serde_json::to_value(Provider::HuggingFace).ok(),
            Some(serde_json::json!("huggingFace"))
        );
    }

    #[test]
    fn new_tokens_become_credentials() {
        let mut creator = credential(Provider::BentoCloud, CredentialKind::UserToken, "t").info;
        creator.account.user = Some("Alice".into());
        let spec = TokenSpec {
            name: "ci".into(),
            description: "CI".into(),
            expiry: Expiry::Never,
            scopes: vec!["api".into()],
        };
        let new = NewToken {
            token: RemoteToken {
                id: "uid1".into(),
                name: "ci".into(),
                description: Some("CI".into()),
                scopes: vec!["api".into()],
                token_type: None,
                created: None,
                expires: None,
                last_used: None,
            },
            secret: secret("new-secret"),
        };
        let c = new.into_credential(9, &creator, &spec, CLOCK.now);
        assert_eq!(c.info.id, 9);
        assert_eq!(c.info.remote_id.as_deref(), Some("uid1"));
        assert_eq!(c.info.account, creator.account);
        assert_eq!(c.info.created, Some(CLOCK.now));
        assert_eq!(
            c.info.kind,
            CredentialKind::ApiToken {
                scopes: vec!["api".into()],
                deployments: None
            }
        );
        assert_eq!(c.secret.expose(), "new-secret");
    }
}
