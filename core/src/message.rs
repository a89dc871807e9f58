//! The one message type pages send to the background, and what comes back.
//! Views carry no secret: pages show masked values only.

use crate::text;
use crate::text::Text;
use serde::{Deserialize, Serialize};

use crate::compile::{self, Limits, TabRule};
use crate::credential::{
    credential_label, Credential, CredentialId, CredentialInfo, CredentialKind, Credentials,
    Timestamp, Validity,
};
use crate::matcher;
use crate::pattern::{make_ascii, HostNames, Scheme};
use crate::provider::site::{SiteSuggestion, SuggestedHeader};
use crate::provider::{self, Expiry, Provider, RemoteToken, TokenSpec};
use crate::rules::HeaderAction;
use crate::rules::{RuleBook, RuleDraft, SiteRule, SiteRuleId};

/// A page's request, as JSON: `{"saveRule": {"draft": …}}`, or the bare name
/// of a request without fields (`"listRules"`).
///
/// Externally tagged, serde's default, unlike the views: every key order
/// reads the same (tests write requests by hand, and `serde_json::Value`
/// sorts keys), and the derive reads it streaming. An internally tagged
/// enum is read by buffering the whole map into serde's `Content` tree
/// first; for this enum that was 67 kB of the background's wasm, all
/// compiled before a new worker could answer its first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    ListRules,
    SaveRule {
        draft: RuleDraft,
    },
    SetEnabled {
        id: SiteRuleId,
        enabled: bool,
    },
    DeleteRule {
        id: SiteRuleId,
    },
    /// What is sent to the page at `url` in tab `tab` (when the page
    /// knows its tab: its tab rules are then part of the answer).
    SiteStatus {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tab: Option<i32>,
    },
    /// Everything the popup shows when it opens, from one load of the
    /// state: what is sent to the page at `url` in tab `tab` (drawn first),
    /// then the accounts and the lock panel.
    OpenPopup {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tab: Option<i32>,
    },
    /// "Use in this tab only": a rule for one tab, kept in memory, gone
    /// when the tab closes or the browser restarts.
    SaveTabRule {
        tab: i32,
        draft: RuleDraft,
    },
    DeleteTabRule {
        id: SiteRuleId,
    },
    /// The options page's "test a URL": which rules and headers apply to a
    /// request to `url`, made by the page at `from` (none: the user's own
    /// navigation), with `method` and of resource type `kind`, by the same
    /// matcher the badge uses.
    TestUrl {
        url: String,
        #[serde(default)]
        from: Option<String>,
        #[serde(default = "get")]
        method: String,
        #[serde(default = "main_frame")]
        kind: crate::dnr::ResourceType,
    },
    /// Every stored credential, by provider: the popup's status.
    Accounts,
    /// Checks a pasted token with the provider's who-am-I call and keeps it
    /// only if the provider accepts it.
    Login {
        login: LoginDraft,
    },
    /// The account's tokens at the provider, beside the stored ones.
    ListTokens {
        credential: CredentialId,
    },
    /// Creates a token with `credential`; the answer carries the new secret,
    /// the one time a page sees it.
    CreateToken {
        credential: CredentialId,
        spec: TokenSpec,
    },
    /// Replaces the token `credential` (one made here, usually expired)
    /// with a new one created by its account's login: same scopes, same
    /// lifetime, its secret put in every header that used the old one.
    RenewToken {
        credential: CredentialId,
    },
    /// Deletes (revokes) the provider's token `remote_id`, and forgets it
    /// here with its rules if it is stored.
    #[serde(rename_all = "camelCase")]
    DeleteToken {
        credential: CredentialId,
        remote_id: String,
    },
    /// The provider's logout where it has one, then forgets the credential
    /// and removes the rules that used it.
    Logout {
        credential: CredentialId,
    },
    /// Where and how the credential is used, by its provider's convention.
    SuggestSite {
        credential: CredentialId,
        #[serde(default)]
        deployment: Option<String>,
    },
    /// Adds a rule sending `credential` on `pattern`.
    #[serde(rename_all = "camelCase")]
    UseCredential {
        credential: CredentialId,
        pattern: String,
        #[serde(default)]
        allow_http: bool,
        header: SuggestedHeader,
    },
    /// The copy helpers. **The answer carries secrets**: only for the
    /// user's copy click.
    CopyHelpers {
        #[serde(default)]
        credential: Option<CredentialId>,
        #[serde(default)]
        url: Option<String>,
    },
    /// How secrets are kept, locked or not, and what waits for an unlock.
    VaultStatus,
    /// Protects every secret with a passphrase (from unset or convenience).
    #[serde(rename_all = "camelCase")]
    Protect {
        passphrase: Passphrase,
        #[serde(default)]
        idle_minutes: Option<u32>,
    },
    Unlock {
        passphrase: Passphrase,
    },
    Lock,
    ChangePassphrase {
        current: Passphrase,
        new: Passphrase,
    },
    /// Keeps secrets without a passphrase: from unset, or from protected
    /// with the passphrase.
    UseConvenience {
        #[serde(default)]
        passphrase: Passphrase,
    },
    /// An export file: without secrets, or, with a passphrase, with them,
    /// sealed under it.
    Export {
        #[serde(default)]
        passphrase: Option<Passphrase>,
    },
    /// Reads a file to import and says what importing it would do, entry
    /// by entry; writes nothing.
    PreviewImport {
        file: ImportFile,
    },
    /// Imports the entries the user confirmed in the preview, in one write,
    /// if the rules are still those the preview was computed against
    /// (`basis`).
    Import {
        file: ImportFile,
        basis: String,
        choices: Vec<crate::import::ImportChoice>,
    },
    /// Logs in with the browser (BentoCloud, Jina AI, Nuclia, OpenID
    /// Connect): the answer names the page to open, and the background
    /// polls until the user approved there, or, for the OAuth logins, waits
    /// for where the browser lands (`identity.launchWebAuthFlow` for OpenID
    /// Connect, the address of Nuclia's login tab).
    #[serde(rename_all = "camelCase")]
    StartBrowserLogin {
        provider: Provider,
        #[serde(default)]
        endpoint: String,
        /// OpenID Connect: the client registered with the identity provider.
        #[serde(default)]
        client_id: String,
        /// OpenID Connect: `identity.getRedirectURL()`, which the background
        /// fills in itself.
        #[serde(default)]
        redirect_uri: String,
    },
    /// Where an OAuth login's browser landed: the provider's redirect
    /// (`identity.launchWebAuthFlow`'s end, or Nuclia's login tab at its
    /// loopback address), or the browser's reason (the window was closed).
    /// Sent by the background itself.
    FinishWebAuthFlow {
        #[serde(default)]
        redirect: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    /// Refreshes the OAuth logins (OpenID Connect, Nuclia) that are due
    /// (the background's alarm sends it).
    RefreshLogins,
    /// One poll of the pending browser login (the background's own loop and
    /// alarm send it).
    PollBrowserLogin,
    BrowserLoginStatus,
    /// Cancels a pending browser login, or dismisses a finished one.
    CancelBrowserLogin,
    /// Expiry reminders (notifications 3 days and 1 day before) on or off.
    SetReminders {
        enabled: bool,
    },
    /// Lock after `minutes` without input; `None` turns idle locking off.
    SetIdleLock {
        #[serde(default)]
        minutes: Option<u32>,
    },
}

impl Request {
    /// The request with every host a person typed in Unicode in its ASCII
    /// form ([`crate::pattern::with_ascii_host`]): a rule's site and "also
    /// from" sites, an address to test, a login's endpoint, a site
    /// confirmed for an import entry. The service reads requests after
    /// this, so its parsers never
    /// meet a host in Unicode from a page.
    pub fn with_ascii_hosts(mut self, names: &dyn HostNames) -> Request {
        match &mut self {
            Request::SaveRule { draft } | Request::SaveTabRule { draft, .. } => {
                draft.make_hosts_ascii(names);
            }
            Request::TestUrl { url, from, .. } => {
                make_ascii(url, names);
                if let Some(from) = from {
                    make_ascii(from, names);
                }
            }
            Request::Login { login } => make_ascii(&mut login.endpoint, names),
            Request::StartBrowserLogin { endpoint, .. } => make_ascii(endpoint, names),
            Request::UseCredential { pattern, .. } => make_ascii(pattern, names),
            Request::Import { choices, .. } => {
                for site in choices.iter_mut().filter_map(|c| c.site.as_mut()) {
                    make_ascii(site, names);
                }
            }
            _ => {}
        }
        self
    }

    /// Whether answering changes the rule book alone (a rule's save, toggle
    /// or delete): then only the badges follow it, since the alarms and
    /// the reminders follow the credentials and the vault, which it leaves
    /// as they were.
    pub fn changes_only_rules(&self) -> bool {
        matches!(
            self,
            Request::SaveRule { .. } | Request::SetEnabled { .. } | Request::DeleteRule { .. }
        )
    }

    /// Whether answering may change the stored state or what the browser
    /// applies, so the badges and alarms must follow it afterwards.
    pub fn may_change_state(&self) -> bool {
        !matches!(
            self,
            Request::ListRules
                | Request::SiteStatus { .. }
                | Request::OpenPopup { .. }
                | Request::TestUrl { .. }
                | Request::Accounts
                | Request::SuggestSite { .. }
                | Request::CopyHelpers { .. }
                | Request::VaultStatus
                | Request::BrowserLoginStatus
        )
    }
}

/// Read tag first ([`crate::tagged`]): only the background writes it, with
/// serde's derive, and the pages read every view through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Response {
    Rules(RulesView),
    /// One rule saved, turned on or off, or deleted: the list's change.
    RuleChanged(RuleChange),
    Site(SiteView),
    Popup(Box<PopupView>),
    Accounts(AccountsView),
    Tokens(TokensView),
    /// A token was created. `secret` is shown once and never sent again.
    Created {
        credential: CredentialView,
        secret: String,
    },
    Suggestion {
        suggestion: Option<SiteSuggestion>,
    },
    Copy(CopyView),
    Vault(VaultView),
    BrowserLogin(BrowserLoginView),
    /// An export file's name and text. With secrets, the text is the
    /// sealed envelope only.
    #[serde(rename_all = "camelCase")]
    Export {
        file_name: String,
        document: String,
    },
    UrlTest(UrlTestView),
    ImportPreview(crate::import::ImportPreview),
    /// The import is written: the rules as they are now, and how many
    /// entries were added and changed.
    Imported {
        rules: RulesView,
        added: usize,
        changed: usize,
    },
    /// What went wrong, in words the page says in the browser's language,
    /// with every secret redacted from what the browser or provider said.
    Error {
        message: Text,
    },
}

crate::tagged::deserialize_tag_first!(Response);

impl crate::tagged::TagFirst for Response {
    const TAG: &'static str = "type";
    const NAME: &'static str = "Response";

    fn variant<'de, A: serde::de::MapAccess<'de>>(
        tag: &str,
        rest: crate::tagged::Rest<A>,
    ) -> Result<Self, A::Error> {
        // The struct variants' fields, as the derive writes them.
        #[derive(Deserialize)]
        struct Created {
            credential: CredentialView,
            secret: String,
        }
        #[derive(Deserialize)]
        struct Suggestion {
            suggestion: Option<SiteSuggestion>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Export {
            file_name: String,
            document: String,
        }
        #[derive(Deserialize)]
        struct Imported {
            rules: RulesView,
            added: usize,
            changed: usize,
        }
        #[derive(Deserialize)]
        struct Error {
            message: Text,
        }
        const VARIANTS: &[&str] = &[
            "rules",
            "ruleChanged",
            "site",
            "popup",
            "accounts",
            "tokens",
            "created",
            "suggestion",
            "copy",
            "vault",
            "browserLogin",
            "export",
            "urlTest",
            "importPreview",
            "imported",
            "error",
        ];
        Ok(match tag {
            "rules" => Response::Rules(rest.fields()?),
            "ruleChanged" => Response::RuleChanged(rest.fields()?),
            "site" => Response::Site(rest.fields()?),
            "popup" => Response::Popup(rest.fields()?),
            "accounts" => Response::Accounts(rest.fields()?),
            "tokens" => Response::Tokens(rest.fields()?),
            "created" => {
                let Created { credential, secret } = rest.fields()?;
                Response::Created { credential, secret }
            }
            "suggestion" => {
                let Suggestion { suggestion } = rest.fields()?;
                Response::Suggestion { suggestion }
            }
            "copy" => Response::Copy(rest.fields()?),
            "vault" => Response::Vault(rest.fields()?),
            "browserLogin" => Response::BrowserLogin(rest.fields()?),
            "export" => {
                let Export {
                    file_name,
                    document,
                } = rest.fields()?;
                Response::Export {
                    file_name,
                    document,
                }
            }
            "urlTest" => Response::UrlTest(rest.fields()?),
            "importPreview" => Response::ImportPreview(rest.fields()?),
            "imported" => {
                let Imported {
                    rules,
                    added,
                    changed,
                } = rest.fields()?;
                Response::Imported {
                    rules,
                    added,
                    changed,
                }
            }
            "error" => {
                let Error { message } = rest.fields()?;
                Response::Error { message }
            }
            _ => return Err(serde::de::Error::unknown_variant(tag, VARIANTS)),
        })
    }
}

fn get() -> String {
    "GET".to_owned()
}

fn main_frame() -> crate::dnr::ResourceType {
    crate::dnr::ResourceType::MainFrame
}

/// The answer to [`Request::TestUrl`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlTestView {
    /// Each header the request would carry, with the rule it comes from.
    pub headers: Vec<TestedHeader>,
    /// Rules whose pattern contains the URL but that send nothing on this
    /// request, with why.
    pub not_applied: Vec<NotApplied>,
    /// Why the URL could not be tested, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestedHeader {
    pub rule: SiteRuleId,
    pub pattern: String,
    /// `Authorization: Bearer ••••wxyz`, or `X-Drop: removed`.
    pub summary: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotApplied {
    pub rule: SiteRuleId,
    pub pattern: String,
    pub why: Text,
}

impl UrlTestView {
    /// Tests a request against `book` (the stored book) as the browser
    /// applies it at `in_force` (expired or refused tokens left out).
    pub fn of(
        book: &RuleBook,
        in_force: &RuleBook,
        url: &str,
        from: Option<&str>,
        method: &str,
        kind: crate::dnr::ResourceType,
    ) -> UrlTestView {
        let Some(spec) = matcher::canonical(url.trim()).filter(|s| {
            s.split_once("://")
                .is_some_and(|(scheme, _)| Scheme::of_url(scheme).is_some())
        }) else {
            return UrlTestView {
                headers: Vec::new(),
                not_applied: Vec::new(),
                problem: Some(text!("test_url_not_web")),
            };
        };
        let from = from.map(str::trim).filter(|f| !f.is_empty());
        let request = crate::initiator::RequestFacts {
            url: &spec,
            initiator: from,
            method: crate::dnr::RequestMethod::parse(method),
            kind,
        };
        let headers: Vec<TestedHeader> = matcher::effective_headers_for(in_force, &request)
            .into_iter()
            .map(|(rule, action)| TestedHeader {
                rule: rule.id,
                pattern: rule.pattern.to_string(),
                summary: summary(action),
            })
            .collect();
        let applied: Vec<SiteRuleId> = headers.iter().map(|h| h.rule).collect();
        let not_applied = book
            .rules()
            .iter()
            .filter(|r| r.pattern.matches_spec(&spec) && !applied.contains(&r.id))
            .map(|r| NotApplied {
                rule: r.id,
                pattern: r.pattern.to_string(),
                why: if !r.enabled {
                    text!("test_why_off")
                } else if !r.initiators.allow(&r.pattern, &request) {
                    text!("test_why_same_site")
                } else if in_force.get(r.id).is_none() {
                    text!("test_why_token")
                } else {
                    text!("test_why_overridden")
                },
            })
            .collect();
        UrlTestView {
            headers,
            not_applied,
            problem: None,
        }
    }
}

/// A file the user picked to import: its text, as read by the page, and
/// the passphrase of a sealed export. Never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportFile {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Passphrase>,
}

impl std::fmt::Debug for ImportFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImportFile({} bytes, <redacted>)", self.text.len())
    }
}

/// A passphrase as a page sends it. Never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Passphrase(pub String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A browser login, as the popup shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserLoginView {
    pub provider: Option<Provider>,
    /// `none`, `pending`, `done` or `failed`.
    pub state: String,
    /// While pending: the page where the user approves.
    pub approve_url: Option<String>,
    pub deadline: Option<Timestamp>,
    pub message: Option<Text>,
}

/// The answer to [`Request::OpenPopup`]: the popup's three parts, as one
/// state holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PopupView {
    pub site: SiteView,
    pub accounts: AccountsView,
    pub vault: VaultView,
}

/// How secrets are kept, for the popup's lock panel and the options page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultView {
    /// `unset`, `convenience` or `protected`.
    pub mode: String,
    pub locked: bool,
    pub idle_minutes: Option<u32>,
    pub idle_choices: Vec<u32>,
    /// The patterns of the sites whose headers wait for an unlock.
    pub waiting: Vec<String>,
    /// The key derivation, e.g. `Argon2id, 64 MiB, 6 passes`: for the
    /// tests and a curious reader of the message, not shown.
    pub kdf: Option<String>,
    /// What the last action did.
    pub notice: Option<Text>,
}

impl VaultView {
    pub fn of(state: &crate::store::State, notice: Option<Text>, now: Timestamp) -> VaultView {
        let protection = &state.protection;
        VaultView {
            mode: protection.name().to_owned(),
            locked: state.locked,
            // What the background applies: the administrator's bound
            // included.
            idle_minutes: state.idle_minutes(),
            idle_choices: crate::protection::IDLE_CHOICES
                .iter()
                .copied()
                .filter(|m| state.policy.max_idle_minutes.is_none_or(|max| *m <= max))
                .collect(),
            waiting: state
                .waiting_for_unlock(now)
                .iter()
                .map(|r| r.pattern.to_string())
                .collect(),
            kdf: protection.header().map(|h| {
                let kdf = h.kdf();
                format!(
                    "Argon2id, {} MiB, {} passes",
                    kdf.memory_kib() / 1024,
                    kdf.passes()
                )
            }),
            notice,
        }
    }
}

/// What the login form submits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginDraft {
    pub provider: Provider,
    /// `personalAccessToken`, `apiToken`, `knowledgeBoxKey`, `nuaKey` or
    /// `userToken`; blank for the provider's usual kind.
    #[serde(default)]
    pub kind: String,
    /// Blank keeps the provider's public service.
    #[serde(default)]
    pub endpoint: String,
    pub secret: String,
    /// A name for a custom site's credential; providers name their tokens.
    #[serde(default)]
    pub name: String,
}

impl std::fmt::Debug for LoginDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginDraft")
            .field("provider", &self.provider)
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .field("secret", &"<redacted>")
            .field("name", &self.name)
            .finish()
    }
}

/// A stored credential as pages see it: everything but the secret, which
/// appears only as a hint (`••••••••wxyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    /// Nested, not `#[serde(flatten)]`: flattening reads through serde's
    /// buffer ([`crate::tagged`]).
    pub info: CredentialInfo,
    pub provider_name: String,
    /// What kind of secret, in words.
    pub kind_name: Text,
    pub hint: String,
    pub validity: Validity,
    /// How many rules send it.
    pub rules: usize,
    /// Whether the provider lists, creates and deletes tokens with it.
    pub manages_tokens: bool,
}

impl CredentialView {
    pub fn of(credential: &Credential, book: &RuleBook, now: Timestamp) -> CredentialView {
        let info = &credential.info;
        CredentialView {
            provider_name: info.provider.name().to_owned(),
            kind_name: kind_name(&info.kind),
            hint: credential.secret.hint(),
            validity: credential.validity(now),
            rules: book.using(info.id).count(),
            manages_tokens: provider::list_tokens(credential).is_ok(),
            info: info.clone(),
        }
    }
}

pub fn kind_name(kind: &CredentialKind) -> Text {
    match kind {
        CredentialKind::PersonalAccessToken => text!("kind_personal_access_token"),
        CredentialKind::ApiToken { .. } => text!("kind_api_token"),
        CredentialKind::KnowledgeBoxKey => text!("kind_knowledge_box_key"),
        CredentialKind::NuaKey => text!("kind_nua_key"),
        CredentialKind::UserToken => text!("kind_user_token"),
        CredentialKind::OpenId { .. } => text!("kind_openid_login"),
    }
}

/// `Authorization: Bearer ••••wxyz`, or `X-Drop: removed`.
fn summary(action: &HeaderAction) -> Text {
    match action {
        HeaderAction::Set { name, value, .. } => {
            text!("header_summary_set", name.to_string(), value.masked())
        }
        HeaderAction::Remove { name } => text!("header_summary_removed", name.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsView {
    pub credentials: Vec<CredentialView>,
    /// What the last action did, for the status line: `Logged in as …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Text>,
    /// The credential the action concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concerned: Option<CredentialId>,
    /// Whether expiry reminders are on.
    #[serde(default)]
    pub reminders: bool,
    /// The logins the administrator's policy offers first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggested: Vec<crate::policy::ManagedProvider>,
}

impl AccountsView {
    pub fn of(credentials: &Credentials, book: &RuleBook, now: Timestamp) -> AccountsView {
        AccountsView {
            credentials: credentials
                .all()
                .iter()
                .map(|c| CredentialView::of(c, book, now))
                .collect(),
            notice: None,
            concerned: None,
            reminders: true,
            suggested: Vec::new(),
        }
    }
}

/// A token as the provider lists it, with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteTokenView {
    /// Nested, as [`CredentialView::info`] is.
    pub token: RemoteToken,
    pub validity: Validity,
    /// The stored credential that is this token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<CredentialId>,
    /// Whether this is the token the list was asked with.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensView {
    pub credential: CredentialView,
    /// The provider's list; `None` where the provider has none.
    pub remote: Option<Vec<RemoteTokenView>>,
    /// Why there is no list (Hugging Face manages tokens on its website).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Text>,
    /// Stored credentials of the same account.
    pub local: Vec<CredentialView>,
    /// What the form proposes for a new token.
    pub suggested_expiry: Expiry,
}

/// The copy helpers' text. **Carries secrets**; pages put it on the
/// clipboard and show nothing of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyView {
    /// `curl -H '…' 'URL'` for the current site, when a rule applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curl: Option<String>,
    /// `export NAME='value'` lines for the credential's official client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesView {
    pub rules: Vec<RuleView>,
    /// The rule the request saved, if it saved one.
    pub saved: Option<SiteRuleId>,
    /// Stored rules that could not be read and were kept aside.
    pub unreadable: usize,
    /// Set when the enabled rules come close to the browser's limit.
    pub limit_warning: Option<Text>,
    /// The administrator's rules and settings, when a policy is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
}

/// What the administrator set, as the options page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub rules: Vec<ManagedRuleView>,
    /// The sites rules may name, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_sites: Option<Vec<String>>,
    pub require_protection: bool,
    /// The policy's entries that were refused, and why.
    pub problems: Vec<crate::policy::Problem>,
}

/// A managed rule: its site and, per header, whose login fills it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRuleView {
    pub id: SiteRuleId,
    pub label: String,
    pub pattern: String,
    pub host_permissions: Vec<String>,
    pub headers: Vec<ManagedHeaderView>,
    /// Sent now: every header has a usable login.
    pub sending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedHeaderView {
    pub name: String,
    /// Whose login fills it: the provider's name and the endpoint.
    pub provider: String,
    pub endpoint: String,
    pub logged_in: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub id: SiteRuleId,
    pub label: String,
    pub pattern: String,
    pub allow_http: bool,
    pub enabled: bool,
    /// The match patterns to request as host permissions.
    pub host_permissions: Vec<String>,
    pub headers: Vec<HeaderView>,
    /// Every page may make the browser send these headers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_site: bool,
    /// Same site: the other sites whose pages may use them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_from: Vec<String>,
    /// A rule for this tab only: gone when the tab closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<i32>,
    /// An enabled rule that sends nothing because each token it sends is
    /// unusable: why. (A missing permission only the page can see.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<NotSent>,
    /// Set by the administrator's policy: shown, not editable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub managed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderView {
    pub name: String,
    /// A `ValueScheme` name, or `remove`.
    pub scheme: String,
    /// `Authorization: Bearer ••••••••wxyz`.
    pub summary: Text,
    /// The credential the value comes from, and whether it still works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<HeaderCredential>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderCredential {
    pub id: CredentialId,
    /// `Jina AI: alice (laptop)`; empty when the credential is gone.
    pub label: String,
    pub validity: Validity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// Why the header is not sent, for the popup: `expired on 2026-11-20;
    /// create a new one`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Text>,
    /// Expired or expiring, and its account's login can make the next one
    /// ([`Request::RenewToken`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renewable: bool,
}

impl HeaderCredential {
    fn of(id: CredentialId, credentials: &Credentials, now: Timestamp) -> HeaderCredential {
        match credentials.get(id) {
            Some(c) => {
                let validity = c.validity(now);
                HeaderCredential {
                    id,
                    label: credential_label(&c.info),
                    validity,
                    expires: c.info.expires,
                    renewable: validity != Validity::Valid
                        && credentials.creator_for(id, now).is_some(),
                    problem: match (c.info.refresh_failure(), validity, c.info.expires) {
                        (None, Validity::Refused, _) => Some(text!(
                            "header_problem_refused",
                            credential_label(&c.info),
                            c.info.refused.as_deref().unwrap_or("401"),
                        )),
                        (Some(why), _, _) => Some(text!(
                            "header_problem_not_refreshed",
                            credential_label(&c.info),
                            why,
                        )),
                        (None, Validity::Expired, Some(e)) => Some(text!(
                            "header_problem_expired",
                            credential_label(&c.info),
                            e.date()
                        )),
                        _ => None,
                    },
                }
            }
            None => HeaderCredential {
                id,
                label: String::new(),
                validity: Validity::Expired,
                expires: None,
                problem: Some(text!("header_problem_deleted")),
                renewable: false,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SiteState {
    /// A rule's pattern contains this URL (the rule may be off).
    Covered,
    /// An http(s) page no rule names.
    Uncovered,
    /// Not a web page: browser pages, extension pages, files.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    pub origin: String,
    pub state: SiteState,
    pub rule: Option<RuleView>,
    /// The tab rule that covers this page in its tab, if any; it wins over
    /// `rule` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab_rule: Option<RuleView>,
    /// The pattern to prefill when adding a rule for this site.
    pub suggested_pattern: String,
    /// The state was read locked: no header with a value is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// An administrator's rule covers this page and waits for the user's
    /// login there: the provider's name and its endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_waiting: Option<(String, String)>,
}

/// What is sent to a page now, and why not: the one answer the popup's
/// status line, its toggle, *Copy as curl* and the toolbar badge read
/// ([`SiteView::sending`]).
///
/// Read tag first ([`crate::tagged`]): a view, written only by the
/// background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Sending {
    /// Not a web page: nothing can be sent.
    Unsupported,
    /// No rule covers the page.
    Uncovered,
    /// The acting rule's headers are sent to the page and its own requests.
    /// `partly`: some of its headers are held back (their rows say why).
    #[serde(rename_all = "camelCase")]
    Sent {
        partly: bool,
        /// The soonest expiry of a token sent, if any expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<Timestamp>,
        expiring_soon: bool,
    },
    /// A rule covers the page, but nothing of it is sent.
    NotSent { why: NotSent },
}

crate::tagged::deserialize_tag_first!(Sending);

impl crate::tagged::TagFirst for Sending {
    const TAG: &'static str = "state";
    const NAME: &'static str = "Sending";

    fn variant<'de, A: serde::de::MapAccess<'de>>(
        tag: &str,
        rest: crate::tagged::Rest<A>,
    ) -> Result<Self, A::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Sent {
            partly: bool,
            #[serde(default)]
            expires: Option<Timestamp>,
            expiring_soon: bool,
        }
        #[derive(Deserialize)]
        struct NotSentBody {
            why: NotSent,
        }
        const VARIANTS: &[&str] = &["unsupported", "uncovered", "sent", "notSent"];
        Ok(match tag {
            "unsupported" => rest.unit().map(|()| Sending::Unsupported)?,
            "uncovered" => rest.unit().map(|()| Sending::Uncovered)?,
            "sent" => {
                let Sent {
                    partly,
                    expires,
                    expiring_soon,
                } = rest.fields()?;
                Sending::Sent {
                    partly,
                    expires,
                    expiring_soon,
                }
            }
            "notSent" => {
                let NotSentBody { why } = rest.fields()?;
                Sending::NotSent { why }
            }
            _ => return Err(serde::de::Error::unknown_variant(tag, VARIANTS)),
        })
    }
}

/// Why a covering rule sends nothing, most telling first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotSent {
    /// The vault is locked.
    Locked,
    /// The rule is turned off.
    Disabled,
    /// Every token it sends has expired.
    Expired,
    /// The provider refused its token, or the token's renewal.
    Refused,
    /// The credential it sent was deleted.
    CredentialDeleted,
    /// Tokenward lacks the site's permission, so the browser applies nothing.
    PermissionMissing,
    /// The administrator's policy does not allow the rule (a site outside
    /// the allowed ones, plain http, any site, or tokens kept without the
    /// passphrase it requires).
    NotAllowed,
}

impl Sending {
    pub fn is_sent(&self) -> bool {
        matches!(self, Sending::Sent { .. })
    }

    /// The toolbar badge: "ON" where headers are sent (amber when a token
    /// sent expires within 7 days), "!" where only the permission is
    /// missing, nothing elsewhere.
    pub fn badge(&self) -> matcher::Badge {
        match self {
            Sending::Sent {
                expiring_soon: true,
                ..
            } => matcher::Badge::OnExpiringSoon,
            Sending::Sent { .. } => matcher::Badge::On,
            Sending::NotSent {
                why: NotSent::PermissionMissing,
            } => matcher::Badge::NeedsPermission,
            _ => matcher::Badge::Off,
        }
    }
}

impl RuleView {
    /// When the first token this rule sends expires, if one of them is
    /// expiring soon ([`Validity::ExpiringSoon`]): the options page warns
    /// of it beside "Sending", as the popup does in the site's status.
    pub fn expiring_soon(&self) -> Option<Timestamp> {
        let (expires, soon) = self.sent_expiry();
        expires.filter(|_| soon)
    }

    /// Over the headers whose token is sent (not held back): when the
    /// first of those tokens expires, and whether one expires soon. What
    /// the popup's status and the options page's line both say.
    fn sent_expiry(&self) -> (Option<Timestamp>, bool) {
        self.headers
            .iter()
            .filter(|header| held_back(header).is_none())
            .filter_map(|header| header.credential.as_ref())
            .fold((None, false), |(expires, soon), c| {
                let expires = match (expires, c.expires) {
                    (Some(x), Some(e)) => Some(Timestamp::min(x, e)),
                    (x, e) => x.or(e),
                };
                (expires, soon || c.validity == Validity::ExpiringSoon)
            })
    }

    /// One line saying who may use the rule's headers, for both pages.
    pub fn policy_text(&self) -> Text {
        if self.any_site {
            text!("policy_any_site")
        } else if self.also_from.is_empty() {
            text!("policy_same_site")
        } else {
            text!("policy_same_site_also", self.also_from.join(", "))
        }
    }

    pub fn of(rule: &SiteRule, credentials: &Credentials, now: Timestamp) -> RuleView {
        let mut view = RuleView {
            id: rule.id,
            label: rule.label.clone(),
            pattern: rule.pattern.to_string(),
            allow_http: rule.allow_http,
            enabled: rule.enabled,
            host_permissions: rule.host_permissions(),
            any_site: rule.initiators.is_any_site(),
            also_from: rule
                .initiators
                .also()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            tab: None,
            held_back: None,
            managed: crate::policy::Policy::is_managed(rule.id),
            headers: rule
                .headers
                .iter()
                .map(|a| HeaderView {
                    name: a.name().to_string(),
                    scheme: match a {
                        HeaderAction::Set { value, .. } => value.scheme.as_str().to_owned(),
                        HeaderAction::Remove { .. } => "remove".to_owned(),
                    },
                    summary: summary(a),
                    credential: match a {
                        HeaderAction::Set {
                            credential: Some(id),
                            ..
                        } => Some(HeaderCredential::of(*id, credentials, now)),
                        _ => None,
                    },
                })
                .collect(),
        };
        let values: Vec<Option<NotSent>> = view
            .headers
            .iter()
            .filter(|h| h.scheme != "remove")
            .map(held_back)
            .collect();
        if view.enabled && !values.is_empty() && values.iter().all(Option::is_some) {
            view.held_back = values.into_iter().flatten().next();
        }
        view
    }
}

/// Why a header's token is not sent, if it is not: its credential was
/// deleted, refused (or its renewal was), or has expired.
fn held_back(header: &HeaderView) -> Option<NotSent> {
    let c = header.credential.as_ref()?;
    match c.validity {
        _ if c.label.is_empty() => Some(NotSent::CredentialDeleted),
        Validity::Refused => Some(NotSent::Refused),
        // A refused renewal is reported through `problem`.
        _ if c.problem.is_some() && c.validity != Validity::Expired => Some(NotSent::Refused),
        Validity::Expired => Some(NotSent::Expired),
        Validity::Valid | Validity::ExpiringSoon => None,
    }
}

/// What the options page says when the rules come near a browser limit.
fn limit_warning(used: compile::Usage, limits: Limits) -> Option<Text> {
    if Limits::near(used.rules, limits.max_rules) {
        Some(text!("limit_near_rules", used.rules, limits.max_rules))
    } else if Limits::near(used.regex_rules, limits.max_regex_rules) {
        Some(text!(
            "limit_near_regex_rules",
            used.regex_rules,
            limits.max_regex_rules
        ))
    } else {
        None
    }
}

impl RulesView {
    pub fn of(
        book: &RuleBook,
        credentials: &Credentials,
        now: Timestamp,
        saved: Option<SiteRuleId>,
        unreadable: usize,
        limits: Limits,
    ) -> RulesView {
        RulesView::with_usage(
            book,
            credentials,
            now,
            saved,
            unreadable,
            compile::usage(book),
            limits,
        )
    }

    /// [`RulesView::of`], warning of the limit for `used` browser rules.
    fn with_usage(
        book: &RuleBook,
        credentials: &Credentials,
        now: Timestamp,
        saved: Option<SiteRuleId>,
        unreadable: usize,
        used: compile::Usage,
        limits: Limits,
    ) -> RulesView {
        RulesView {
            rules: book
                .rules()
                .iter()
                .map(|r| RuleView::of(r, credentials, now))
                .collect(),
            saved,
            unreadable,
            limit_warning: limit_warning(used, limits),
            policy: None,
        }
    }

    /// The user's rules (those the policy refuses held back, saying so) and
    /// what the administrator set.
    pub fn of_state(
        state: &crate::store::State,
        now: Timestamp,
        saved: Option<SiteRuleId>,
        limits: Limits,
    ) -> RulesView {
        let policy = &state.policy;
        // The administrator's rules count as the browser will hold them
        // once their logins are made (`Policy::reserved`; none without a
        // policy).
        let mut view = RulesView::with_usage(
            &state.book,
            &state.credentials,
            now,
            saved,
            state.unreadable.len(),
            state.usage().plus(policy.reserved()),
            limits,
        );
        if !policy.present {
            return view;
        }
        for (rule, shown) in state.book.rules().iter().zip(view.rules.iter_mut()) {
            held_back_by_policy(state, rule, shown);
        }
        let rules = policy
            .rules
            .iter()
            .zip(0u32..)
            .map(|(rule, i)| {
                let headers: Vec<ManagedHeaderView> = rule
                    .headers
                    .iter()
                    .map(|h| ManagedHeaderView {
                        name: h.name.to_string(),
                        provider: h.login.provider.name().to_owned(),
                        endpoint: h.login.endpoint.as_str().to_owned(),
                        logged_in: crate::policy::login_for(&state.credentials, &h.login, now)
                            .is_some(),
                    })
                    .collect();
                ManagedRuleView {
                    id: crate::policy::MANAGED_RULE_BASE + i,
                    label: rule.label.clone(),
                    pattern: rule.pattern.to_string(),
                    host_permissions: rule.pattern.host_permissions().to_vec(),
                    sending: !state.locked
                        && !state.protection_missing()
                        && headers.iter().all(|h| h.logged_in),
                    headers,
                }
            })
            .collect();
        view.policy = Some(PolicyView {
            rules,
            allowed_sites: policy
                .allowed_sites
                .as_ref()
                .map(|a| a.iter().map(ToString::to_string).collect()),
            require_protection: policy.require_protection,
            problems: policy.problems.clone(),
        });
        view
    }

    /// What changing rule `id` did to the list [`RulesView::of_state`]
    /// shows, from `state` (as the change left it; it may hold only that
    /// rule's group, [`crate::store::State::unloaded`]).
    pub fn change_of(
        state: &crate::store::State,
        id: SiteRuleId,
        now: Timestamp,
        saved: Option<SiteRuleId>,
        limits: Limits,
    ) -> RuleChange {
        let rule = state.book.get(id).map(|rule| {
            let mut shown = RuleView::of(rule, &state.credentials, now);
            held_back_by_policy(state, rule, &mut shown);
            shown
        });
        RuleChange {
            id,
            rule,
            saved,
            unreadable: state.unreadable.len(),
            limit_warning: limit_warning(state.usage().plus(state.policy.reserved()), limits),
        }
    }

    /// The list after `change`: [`RulesView::of_state`] of the state the
    /// change left, computed from the list before it
    /// (`service::tests::edits_applied_alone_equal_a_full_reconcile`
    /// checks that they agree).
    pub fn apply(&mut self, change: RuleChange) {
        let at = self.rules.iter().position(|r| r.id == change.id);
        match (at, change.rule) {
            (Some(i), Some(rule)) => self.rules[i] = rule,
            (Some(i), None) => {
                self.rules.remove(i);
            }
            // Ids grow with each rule made, as the book keeps them.
            (None, Some(rule)) => {
                let i = self
                    .rules
                    .iter()
                    .position(|r| r.id > rule.id)
                    .unwrap_or(self.rules.len());
                self.rules.insert(i, rule);
            }
            (None, None) => {}
        }
        self.saved = change.saved;
        self.unreadable = change.unreadable;
        self.limit_warning = change.limit_warning;
    }
}

/// Marks `shown` held back when the policy keeps enabled `rule` from the
/// browser.
fn held_back_by_policy(state: &crate::store::State, rule: &SiteRule, shown: &mut RuleView) {
    if state.policy.present && rule.enabled && state.held_back_by_policy(rule) {
        shown.held_back = Some(NotSent::NotAllowed);
    }
}

/// What one rule's change did to the options page's list: the answer to a
/// save, a toggle or a delete, sized to the rule rather than the book. The
/// page applies it to the list it shows ([`RulesView::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleChange {
    pub id: SiteRuleId,
    /// The rule as the list shows it now; `None` once deleted.
    pub rule: Option<RuleView>,
    /// The rule the request saved, if it saved one.
    pub saved: Option<SiteRuleId>,
    pub unreadable: usize,
    pub limit_warning: Option<Text>,
}

impl SiteView {
    /// The rule that acts on the page: this tab's own, else the book's.
    pub fn acting(&self) -> Option<&RuleView> {
        self.tab_rule.as_ref().or(self.rule.as_ref())
    }

    /// What is sent to the page now. `permitted` says whether Tokenward
    /// holds the acting rule's host permissions, which only the browser
    /// knows; everything else is in the view.
    pub fn sending(&self, permitted: bool) -> Sending {
        let rule = match (self.state, self.acting()) {
            (SiteState::Unsupported, _) => return Sending::Unsupported,
            (_, None) | (SiteState::Uncovered, _) => return Sending::Uncovered,
            (SiteState::Covered, Some(rule)) => rule,
        };
        let sets_a_value = rule.headers.iter().any(|h| h.scheme != "remove");
        if self.locked && sets_a_value {
            return Sending::NotSent {
                why: NotSent::Locked,
            };
        }
        if !rule.enabled {
            return Sending::NotSent {
                why: NotSent::Disabled,
            };
        }
        // The administrator's policy holds the whole rule back.
        if rule.held_back == Some(NotSent::NotAllowed) {
            return Sending::NotSent {
                why: NotSent::NotAllowed,
            };
        }
        let mut held_back_why = None;
        let mut sent = 0;
        for header in &rule.headers {
            match held_back(header) {
                Some(why) => {
                    held_back_why.get_or_insert(why);
                }
                None => sent += 1,
            }
        }
        if sent == 0 {
            return Sending::NotSent {
                why: held_back_why.unwrap_or(NotSent::Expired),
            };
        }
        if !permitted {
            return Sending::NotSent {
                why: NotSent::PermissionMissing,
            };
        }
        let (expires, expiring_soon) = rule.sent_expiry();
        Sending::Sent {
            partly: held_back_why.is_some(),
            expires,
            expiring_soon,
        }
    }

    /// What is sent to the page at `url`; with `tab`, in that tab, whose
    /// rules are among `tab.1`.
    pub fn of(
        book: &RuleBook,
        credentials: &Credentials,
        now: Timestamp,
        url: &str,
        tab: Option<(i32, &[TabRule])>,
    ) -> SiteView {
        let web = matcher::canonical(url).and_then(|spec| {
            let (scheme, rest) = spec.split_once("://")?;
            Scheme::of_url(scheme)?;
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            (!authority.is_empty()).then(|| (format!("{scheme}://{authority}"), spec.clone()))
        });
        let Some((origin, spec)) = web else {
            return SiteView {
                origin: String::new(),
                state: SiteState::Unsupported,
                rule: None,
                tab_rule: None,
                suggested_pattern: String::new(),
                locked: false,
                managed_waiting: None,
            };
        };
        // The rule that acts: the most specific one that is on, else the
        // most specific one there is (which the popup can turn on).
        let rule = matcher::applying(book, &spec)
            .first()
            .copied()
            .or_else(|| matcher::covering(book, &spec))
            .map(|r| RuleView::of(r, credentials, now));
        let tab_rule = tab.and_then(|(tab, rules)| {
            let mut covering: Vec<&SiteRule> = rules
                .iter()
                .filter(|t| t.tab == tab && t.rule.pattern.matches_spec(&spec))
                .map(|t| &t.rule)
                .collect();
            covering.sort_by_key(|r| std::cmp::Reverse(r.pattern.specificity()));
            covering.first().map(|r| RuleView {
                tab: Some(tab),
                ..RuleView::of(r, credentials, now)
            })
        });
        SiteView {
            state: if rule.is_some() || tab_rule.is_some() {
                SiteState::Covered
            } else {
                SiteState::Uncovered
            },
            rule,
            tab_rule,
            locked: false,
            managed_waiting: None,
            suggested_pattern: origin.clone(),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use crate::text::english;
    use serde_json::json;

    #[test]
    fn every_host_a_person_types_is_made_ascii_where_the_request_enters() {
        let names = crate::service::fakes::PunycodeNames;
        let idn = "https://bücher.example";
        let ascii = "https://xn--bcher-kva.example";
        let request = |json: serde_json::Value| {
            serde_json::from_value::<Request>(json)
                .map(|r| r.with_ascii_hosts(&names))
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .unwrap_or_default()
        };
        let login = request(json!({"login": {"login": {
            "provider": "custom", "endpoint": idn, "secret": "tok-1234567890"}}}));
        assert_eq!(login["login"]["login"]["endpoint"], ascii);
        let browser_login = request(json!({"startBrowserLogin": {
            "provider": "openId", "endpoint": idn, "clientId": "c"}}));
        assert_eq!(browser_login["startBrowserLogin"]["endpoint"], ascii);
        let used = request(json!({"useCredential": {"credential": 1, "pattern": idn,
            "header": {"name": "Authorization", "scheme": "bearer"}}}));
        assert_eq!(used["useCredential"]["pattern"], ascii);
        let tested = request(json!({"testUrl": {"url": format!("{idn}/v1"), "from": idn}}));
        assert_eq!(
            (&tested["testUrl"]["url"], &tested["testUrl"]["from"]),
            (&json!(format!("{ascii}/v1")), &json!(ascii))
        );
        let imported = request(json!({"import": {"file": {"text": "{}"}, "basis": "b",
            "choices": [{"entry": 0, "site": idn}, {"entry": 1}]}}));
        assert_eq!(
            imported["import"]["choices"],
            json!([{"entry": 0, "site": ascii}, {"entry": 1}])
        );
        let saved = request(json!({"saveTabRule": {"tab": 3,
            "draft": {"pattern": idn, "headers": [], "alsoFrom": [idn]}}}));
        assert_eq!(
            (
                &saved["saveTabRule"]["draft"]["pattern"],
                &saved["saveTabRule"]["draft"]["alsoFrom"]
            ),
            (&json!(ascii), &json!([ascii]))
        );
        // Whatever names no host a person typed is left as it came.
        let status = json!({"siteStatus": {"url": "https://bücher.example/"}});
        assert_eq!(request(status.clone()), status);
    }

    const NOW: Timestamp = Timestamp(1_766_000_000);

    #[test]
    fn requests_are_named_by_their_variant_in_camel_case() {
        let json = json!({"setEnabled": {"id": 3, "enabled": false}});
        assert_eq!(
            serde_json::from_value::<Request>(json).ok(),
            Some(Request::SetEnabled {
                id: 3,
                enabled: false
            })
        );
        let save = json!({"saveRule": {"draft": {
            "pattern": "https://a.example", "headers": [{"name": "Authorization", "scheme": "bearer", "secret": "t"}]
        }}});
        assert!(
            matches!(serde_json::from_value::<Request>(save), Ok(Request::SaveRule { draft }) if draft.enabled)
        );
        // A request without fields is its name alone, both ways.
        assert_eq!(
            serde_json::from_value::<Request>(json!("lock")).ok(),
            Some(Request::Lock)
        );
        assert_eq!(
            serde_json::to_value(Request::ListRules).ok(),
            Some(json!("listRules"))
        );
        // The old internally tagged form is refused, not misread.
        assert!(serde_json::from_value::<Request>(json!({"type": "lock"})).is_err());
    }

    #[test]
    fn site_view_reports_coverage_without_secrets() {
        let mut book = RuleBook::default();
        assert!(book
            .save(&draft("https://api.example.com", "sk-secret-value-1234"))
            .is_ok());
        let covered = SiteView::of(
            &book,
            &Credentials::default(),
            NOW,
            "https://api.example.com/docs",
            None,
        );
        assert_eq!(covered.state, SiteState::Covered);
        assert_eq!(covered.origin, "https://api.example.com");
        let json = serde_json::to_string(&covered).unwrap_or_default();
        assert!(
            json.contains("Bearer ••••••••1234") && !json.contains("sk-secret"),
            "{json}"
        );

        let other = SiteView::of(
            &book,
            &Credentials::default(),
            NOW,
            "https://other.example.com:8443/x",
            None,
        );
        assert_eq!(
            (other.state, other.suggested_pattern.as_str()),
            (SiteState::Uncovered, "https://other.example.com:8443")
        );
        for page in [
            "chrome://extensions/",
            "about:blank",
            "moz-extension://x/popup.html",
            "file:///tmp/x",
            "",
        ] {
            assert_eq!(
                SiteView::of(&book, &Credentials::default(), NOW, page, None).state,
                SiteState::Unsupported,
                "{page}"
            );
        }
    }

    #[test]
    fn sending_tells_the_truth_in_every_state() {
        use crate::credential::{Credential, CredentialKind, Endpoint};
        use crate::header::Secret;
        const DAY: i64 = 86_400;
        let mut credentials = Credentials::default();
        let mut token = |expires: Option<i64>, refused: bool, renewal_failed: bool| {
            let mut c = Credential::new(
                0,
                Provider::HuggingFace,
                Endpoint::default_for(Provider::HuggingFace).unwrap_or_else(|| panic!()),
                CredentialKind::PersonalAccessToken,
                Secret::from_input("hf_token_1234").unwrap_or_else(|e| panic!("{e}")),
            );
            c.info.expires = expires.map(|d| Timestamp(NOW.0 + d));
            c.info.refused = refused.then(|| "Invalid credentials".to_owned());
            if renewal_failed {
                c.info.renewal = serde_json::from_value(json!({
                    "tokenEndpoint": "https://idp.example/token", "clientId": "c",
                    "failed": "invalid_grant"
                }))
                .ok();
            }
            credentials.add(c).unwrap_or_default()
        };
        let valid = token(None, false, false);
        let soon = token(Some(2 * DAY), false, false);
        let later = token(Some(30 * DAY), false, false);
        let expired = token(Some(-DAY), false, false);
        let refused = token(None, true, false);
        let not_renewed = token(Some(DAY), false, true);
        let deleted = 999;
        let rule_with = |ids: &[u32]| {
            let mut book = RuleBook::default();
            let mut d = draft("https://api.example.com", "t");
            if ids.is_empty() {
                d.headers[0].scheme = "remove".into();
            } else {
                d.headers = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| crate::rules::HeaderDraft {
                        name: format!("X-H{i}"),
                        scheme: "bearer".into(),
                        secret: "t".into(),
                        credential: Some(*id),
                    })
                    .collect();
            }
            let saved = book.save(&d);
            assert!(saved.is_ok(), "{saved:?}");
            book
        };
        let url = "https://api.example.com/x";
        let sending = |book: &RuleBook, locked: bool, permitted: bool| {
            let mut view = SiteView::of(book, &credentials, NOW, url, None);
            view.locked = locked;
            view.sending(permitted)
        };
        // The options page's line for the rule warns as the popup does.
        let expiring =
            |book: &RuleBook| RuleView::of(&book.rules()[0], &credentials, NOW).expiring_soon();
        assert_eq!(expiring(&rule_with(&[valid])), None);
        assert_eq!(expiring(&rule_with(&[later])), None);
        assert_eq!(
            expiring(&rule_with(&[later, soon, valid])),
            Some(Timestamp(NOW.0 + 2 * DAY))
        );
        assert_eq!(expiring(&rule_with(&[expired])), None);
        let not = |why| Sending::NotSent { why };
        let sent = |partly, expires: Option<i64>, expiring_soon| Sending::Sent {
            partly,
            expires: expires.map(|d| Timestamp(NOW.0 + d)),
            expiring_soon,
        };
        let one = rule_with(&[valid]);
        assert_eq!(sending(&one, false, true), sent(false, None, false));
        assert_eq!(sending(&one, true, true), not(NotSent::Locked));
        assert_eq!(sending(&one, false, false), not(NotSent::PermissionMissing));
        assert_eq!(
            sending(&one, true, false),
            not(NotSent::Locked),
            "locked says more"
        );
        let mut off = one.clone();
        assert!(off.set_enabled(1, false).is_ok());
        assert_eq!(sending(&off, false, true), not(NotSent::Disabled));
        assert_eq!(
            sending(&rule_with(&[expired]), false, true),
            not(NotSent::Expired)
        );
        assert_eq!(
            sending(&rule_with(&[expired]), false, false),
            not(NotSent::Expired),
            "a permission would not help"
        );
        assert_eq!(
            sending(&rule_with(&[refused]), false, true),
            not(NotSent::Refused)
        );
        assert_eq!(
            sending(&rule_with(&[not_renewed]), false, true),
            not(NotSent::Refused)
        );
        assert_eq!(
            sending(&rule_with(&[deleted]), false, true),
            not(NotSent::CredentialDeleted)
        );
        assert_eq!(
            sending(&rule_with(&[soon]), false, true),
            sent(false, Some(2 * DAY), true)
        );
        assert_eq!(
            sending(&rule_with(&[later, soon]), false, true),
            sent(false, Some(2 * DAY), true),
            "the soonest expiry"
        );
        assert_eq!(
            sending(&rule_with(&[valid, expired]), false, true),
            sent(true, None, false),
            "one header held back"
        );
        // A rule that only removes a header sends no secret: locked or not.
        assert_eq!(
            sending(&rule_with(&[]), true, true),
            sent(false, None, false)
        );
        assert_eq!(
            SiteView::of(&one, &credentials, NOW, "https://other.example/", None).sending(true),
            Sending::Uncovered
        );
        assert_eq!(
            SiteView::of(&one, &credentials, NOW, "chrome://extensions/", None).sending(true),
            Sending::Unsupported
        );
        // The options page's list says the same of each rule.
        let held = |book: &RuleBook| {
            SiteView::of(book, &credentials, NOW, url, None)
                .rule
                .and_then(|r| r.held_back)
        };
        assert_eq!(held(&rule_with(&[expired])), Some(NotSent::Expired));
        assert_eq!(
            held(&rule_with(&[refused, expired])),
            Some(NotSent::Refused)
        );
        assert_eq!(held(&rule_with(&[valid, expired])), None, "partly sent");
        assert_eq!(held(&rule_with(&[])), None);
        // The badge reads the same answer.
        assert_eq!(
            sending(&one, false, true).badge(),
            crate::matcher::Badge::On
        );
        assert_eq!(
            sending(&rule_with(&[soon]), false, true).badge(),
            crate::matcher::Badge::OnExpiringSoon
        );
        assert_eq!(
            sending(&one, false, false).badge(),
            crate::matcher::Badge::NeedsPermission
        );
        assert_eq!(
            sending(&one, true, true).badge(),
            crate::matcher::Badge::Off
        );
        assert_eq!(
            sending(&rule_with(&[expired]), false, true).badge(),
            crate::matcher::Badge::Off
        );
        // A tab rule acts over the book's rule in its tab.
        let mut tabs = crate::store::TabRules::default();
        assert!(tabs.add(3, &draft("https://api.example.com", "t")).is_ok());
        let view = SiteView::of(&off, &credentials, NOW, url, Some((3, &tabs.rules)));
        assert_eq!(view.sending(true), sent(false, None, false));
    }

    #[test]
    fn a_url_test_names_each_header_and_what_is_held_back() {
        use crate::dnr::ResourceType;
        let mut book = RuleBook::default();
        let mut wild = draft("https://*.example.com", "wild-secret-1");
        wild.any_site = true;
        let mut off = draft("https://off.example.com", "t");
        off.enabled = false;
        for d in [wild, draft("https://api.example.com", "api-secret-2"), off] {
            assert!(book.save(&d).is_ok());
        }
        let test = |url, from, method, kind| UrlTestView::of(&book, &book, url, from, method, kind);
        let own = test(
            "https://api.example.com/v1",
            None,
            "GET",
            ResourceType::MainFrame,
        );
        assert_eq!(own.headers.iter().map(|h| h.rule).collect::<Vec<_>>(), [2]);
        assert!(
            english(&own.headers[0].summary).starts_with("Authorization: Bearer ••"),
            "{own:?}"
        );
        assert_eq!(own.not_applied.len(), 1);
        assert!(
            english(&own.not_applied[0].why).contains("more specific"),
            "{own:?}"
        );
        let cross = test(
            "https://api.example.com/v1",
            Some("https://evil.test"),
            "POST",
            ResourceType::Xmlhttprequest,
        );
        assert_eq!(
            cross.headers.iter().map(|h| h.rule).collect::<Vec<_>>(),
            [1],
            "only the any-site rule"
        );
        assert!(
            cross
                .not_applied
                .iter()
                .any(|n| n.rule == 2 && english(&n.why).contains("same site")),
            "{cross:?}"
        );
        let off = test(
            "https://off.example.com/",
            None,
            "GET",
            ResourceType::MainFrame,
        );
        assert!(
            off.not_applied
                .iter()
                .any(|n| n.rule == 3 && english(&n.why).contains("off")),
            "{off:?}"
        );
        assert!(test("ftp://x", None, "GET", ResourceType::MainFrame)
            .problem
            .is_some());
        let json = serde_json::to_string(&own).unwrap_or_default();
        assert!(!json.contains("api-secret"), "{json}");
    }

    #[test]
    fn site_view_shows_this_tabs_rule_and_the_policy() {
        let mut book = RuleBook::default();
        let mut d = draft("https://api.example.com", "t");
        d.also_from = vec!["https://app.example.com".into()];
        assert!(book.save(&d).is_ok());
        let mut tabs = crate::store::TabRules::default();
        assert!(tabs.add(5, &draft("https://tab.example.com", "t")).is_ok());
        let view = |url: &str, tab: i32| {
            SiteView::of(
                &book,
                &Credentials::default(),
                NOW,
                url,
                Some((tab, &tabs.rules)),
            )
        };
        let here = view("https://tab.example.com/x", 5);
        assert_eq!(here.state, SiteState::Covered);
        assert_eq!(here.tab_rule.as_ref().and_then(|r| r.tab), Some(5));
        assert!(here.rule.is_none());
        assert_eq!(
            view("https://tab.example.com/x", 6).state,
            SiteState::Uncovered
        );
        let api = view("https://api.example.com/", 5);
        let rule = api.rule.unwrap_or_else(|| panic!("covered"));
        assert_eq!(
            (rule.any_site, rule.also_from.as_slice()),
            (false, &["app.example.com".to_owned()][..])
        );
        assert!(rule
            .host_permissions
            .contains(&"https://app.example.com/*".to_owned()));
    }

    #[test]
    fn wildcard_rules_warn_near_the_regex_limit() {
        let mut book = RuleBook::default();
        // Three same-site wildcard rules, three regex rules each.
        for i in 0..3 {
            assert!(book
                .save(&draft(&format!("https://*.h{i}.example"), "t"))
                .is_ok());
        }
        let limits = Limits {
            max_rules: 100,
            max_regex_rules: 10,
        };
        let warning = RulesView::of(&book, &Credentials::default(), NOW, None, 0, limits)
            .limit_warning
            .map(|w| english(&w))
            .unwrap_or_default();
        assert!(
            warning.contains("9 of the browser's 10 pattern rules"),
            "{warning}"
        );
    }

    #[test]
    fn limit_warning_appears_near_the_limit() {
        let mut book = RuleBook::default();
        // Five same-site rules, 15 browser rules.
        for i in 0..5 {
            assert!(book
                .save(&draft(&format!("https://h{i}.example"), "t"))
                .is_ok());
        }
        let tight = Limits {
            max_rules: 17,
            max_regex_rules: 10,
        };
        assert!(
            RulesView::of(&book, &Credentials::default(), NOW, None, 0, tight)
                .limit_warning
                .is_none()
        );
        let tighter = Limits {
            max_rules: 16,
            max_regex_rules: 10,
        };
        assert!(
            RulesView::of(&book, &Credentials::default(), NOW, None, 0, tighter)
                .limit_warning
                .is_some()
        );
    }
}
