//! What an administrator sets for a team through browser policy
//! (`storage.managed`): rules for the company's sites whose secrets come
//! from each user's own login, the providers to offer first, the sites a
//! token may go to at all, and safety settings.
//!
//! Chromium delivers the object from `3rdparty.extensions.<id>` in its
//! policy files, checked against `managed_schema.json` (named by the
//! manifest's `storage.managed_schema`); Firefox from `policies.json`
//! (`"3rdparty": {"Extensions": {"<add-on id>": {…}}}`), unchecked. So
//! every field is read here by hand, entry by entry: an entry that is
//! wrong (a type, a pattern that would reach every site, a secret, an
//! unknown key) is refused on its own with a [`Problem`] the options page
//! shows, and nothing refused ever widens what the user configured. A
//! policy never carries a secret: a managed header names the login whose
//! token it sends.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::credential::{Credentials, Endpoint, Provider, Timestamp};
use crate::header::{HeaderName, HeaderValue, ValueScheme};
use crate::initiator::{self, Initiators};
use crate::pattern::{ParseOptions, SitePattern};
use crate::rules::{HeaderAction, SiteRule, SiteRuleId};
use crate::text;
use crate::text::{Localize, Text};

/// Managed rules' ids: above every id the user's book gives out, below the
/// tab rules'. Rule `i` of the policy is `MANAGED_RULE_BASE + i`.
pub const MANAGED_RULE_BASE: SiteRuleId = 1 << 27;
/// The most rules a policy may hold.
pub const MAX_MANAGED_RULES: usize = 500;
/// The longest idle time an administrator may set, a day.
pub const MAX_IDLE_MINUTES: u32 = 24 * 60;

/// The keys a policy may have; any other is refused (a typo in a policy
/// must not pass silently).
const KEYS: [&str; 8] = [
    "rules",
    "providers",
    "allowedSites",
    "requireProtection",
    "maxIdleMinutes",
    "allowPlainHttp",
    "allowAnySitePolicy",
    "allowExportWithSecrets",
];

/// A policy, read. [`Policy::default`] is no policy at all: nothing
/// managed, nothing restricted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether an administrator set anything.
    pub present: bool,
    pub rules: Vec<ManagedRule>,
    pub providers: Vec<ManagedProvider>,
    /// When set, the only sites a rule may name.
    pub allowed_sites: Option<Vec<SitePattern>>,
    pub require_protection: bool,
    pub max_idle_minutes: Option<u32>,
    pub allow_plain_http: bool,
    pub allow_any_site: bool,
    pub allow_export_with_secrets: bool,
    /// The entries refused, and why.
    pub problems: Vec<Problem>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            present: false,
            rules: Vec::new(),
            providers: Vec::new(),
            allowed_sites: None,
            require_protection: false,
            max_idle_minutes: None,
            // No policy: the user's own opt-in decides, as before.
            allow_plain_http: true,
            allow_any_site: true,
            allow_export_with_secrets: true,
            problems: Vec::new(),
        }
    }
}

/// A rule the administrator set: shown to the user, not editable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedRule {
    /// The administrator's name for it.
    pub key: String,
    pub label: String,
    pub pattern: SitePattern,
    pub headers: Vec<ManagedHeader>,
    pub initiators: Initiators,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedHeader {
    pub name: HeaderName,
    pub scheme: ValueScheme,
    /// Whose token: a login at this provider and endpoint. "Ask the user"
    /// is a custom-site login at the rule's own site.
    pub login: ManagedLogin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedLogin {
    pub provider: Provider,
    pub endpoint: Endpoint,
}

/// A provider endpoint offered first in the login form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedProvider {
    pub provider: Provider,
    pub endpoint: Endpoint,
    /// An OpenID Connect client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// One refused entry: where in the policy, and why. Never quotes a value
/// that could be a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub at: String,
    pub why: Text,
}

/// Why a user's change goes against the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0} is outside the sites your administrator allows")]
    OutsideAllowedSites(String),
    #[error("your administrator does not allow plain http")]
    PlainHttp,
    #[error("your administrator does not allow a rule for any site")]
    AnySite,
    #[error("your administrator requires a passphrase")]
    ProtectionRequired,
    #[error("your administrator allows at most {0} idle minutes")]
    IdleTooLong(u32),
    #[error("your administrator does not allow exports with tokens")]
    ExportWithSecrets,
}

impl Localize for PolicyError {
    fn text(&self) -> Text {
        match self {
            PolicyError::OutsideAllowedSites(site) => text!("error_policy_outside", site),
            PolicyError::PlainHttp => text!("error_policy_plain_http"),
            PolicyError::AnySite => text!("error_policy_any_site"),
            PolicyError::ProtectionRequired => text!("error_policy_protection"),
            PolicyError::IdleTooLong(max) => text!("error_policy_idle", *max),
            PolicyError::ExportWithSecrets => text!("error_policy_export"),
        }
    }
}

fn problem(at: impl Into<String>, why: Text) -> Problem {
    Problem { at: at.into(), why }
}

impl Policy {
    /// Reads what `storage.managed.get(null)` gave: `None` or `{}` is no
    /// policy.
    pub fn read(value: Option<&Value>) -> Policy {
        let mut policy = Policy::default();
        let Some(value) = value else {
            return policy;
        };
        let Some(object) = value.as_object() else {
            policy.present = true;
            policy
                .problems
                .push(problem("", text!("policy_problem_not_object")));
            policy.allowed_sites = Some(Vec::new());
            return policy;
        };
        if object.is_empty() {
            return policy;
        }
        policy.present = true;
        // With a policy, plain http and exports with tokens are off unless
        // it turns them on.
        policy.allow_plain_http = false;
        for key in object.keys() {
            if !KEYS.contains(&key.as_str()) {
                policy
                    .problems
                    .push(problem(short(key), text!("policy_problem_unknown_key")));
            }
        }
        let flag = |policy: &mut Policy, key: &str, default: bool| -> bool {
            match object.get(key) {
                None => default,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    policy
                        .problems
                        .push(problem(key, text!("policy_problem_not_bool")));
                    // A wrong type never loosens: the stricter reading.
                    matches!(key, "requireProtection")
                }
            }
        };
        policy.require_protection = flag(&mut policy, "requireProtection", false);
        policy.allow_plain_http = flag(&mut policy, "allowPlainHttp", false);
        policy.allow_any_site = flag(&mut policy, "allowAnySitePolicy", true);
        policy.allow_export_with_secrets = flag(&mut policy, "allowExportWithSecrets", true);
        match object.get("maxIdleMinutes") {
            None => {}
            Some(v) => match v.as_u64().and_then(|m| u32::try_from(m).ok()) {
                Some(m) if (1..=MAX_IDLE_MINUTES).contains(&m) => policy.max_idle_minutes = Some(m),
                _ => {
                    policy.problems.push(problem(
                        "maxIdleMinutes",
                        text!("policy_problem_idle", MAX_IDLE_MINUTES),
                    ));
                    // The strictest reading of a bad idle time: the shortest.
                    policy.max_idle_minutes = Some(5);
                }
            },
        }
        policy.read_allowed_sites(object);
        policy.read_providers(object);
        policy.read_rules(object);
        policy
    }

    fn options(&self) -> ParseOptions {
        ParseOptions {
            allow_http: self.allow_plain_http,
        }
    }

    fn read_allowed_sites(&mut self, object: &Map<String, Value>) {
        let Some(value) = object.get("allowedSites") else {
            return;
        };
        let mut allowed = Vec::new();
        match value.as_array() {
            None => self
                .problems
                .push(problem("allowedSites", text!("policy_problem_not_list"))),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("allowedSites[{i}]");
                    match item
                        .as_str()
                        .map(|s| SitePattern::parse(s, ParseOptions { allow_http: true }))
                    {
                        Some(Ok(p)) => allowed.push(p),
                        Some(Err(e)) => self.problems.push(problem(at, e.text())),
                        None => self
                            .problems
                            .push(problem(at, text!("policy_problem_not_text"))),
                    }
                }
            }
        }
        // A list that is set but holds nothing readable allows nothing:
        // refusing an entry never widens.
        self.allowed_sites = Some(allowed);
    }

    fn read_providers(&mut self, object: &Map<String, Value>) {
        let Some(value) = object.get("providers") else {
            return;
        };
        let Some(items) = value.as_array() else {
            self.problems
                .push(problem("providers", text!("policy_problem_not_list")));
            return;
        };
        for (i, item) in items.iter().enumerate().take(50) {
            let at = format!("providers[{i}]");
            match read_login(item, &at) {
                Ok(login) => {
                    let client_id = item
                        .get("clientId")
                        .and_then(Value::as_str)
                        .filter(|c| !c.is_empty() && c.len() <= 200)
                        .map(str::to_owned);
                    self.providers.push(ManagedProvider {
                        provider: login.provider,
                        endpoint: login.endpoint,
                        client_id,
                    });
                }
                Err(p) => self.problems.push(p),
            }
        }
    }

    fn read_rules(&mut self, object: &Map<String, Value>) {
        let Some(value) = object.get("rules") else {
            return;
        };
        let Some(items) = value.as_array() else {
            self.problems
                .push(problem("rules", text!("policy_problem_not_list")));
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("rules[{i}]");
            if self.rules.len() >= MAX_MANAGED_RULES {
                self.problems.push(problem(
                    at,
                    text!("policy_problem_too_many", MAX_MANAGED_RULES),
                ));
                break;
            }
            match self.read_rule(item, &at) {
                Ok(rule) => {
                    if self
                        .rules
                        .iter()
                        .any(|r| r.key == rule.key || r.pattern == rule.pattern)
                    {
                        self.problems
                            .push(problem(at, text!("policy_problem_duplicate")));
                    } else {
                        self.rules.push(rule);
                    }
                }
                Err(p) => self.problems.push(p),
            }
        }
    }

    fn read_rule(&self, item: &Value, at: &str) -> Result<ManagedRule, Problem> {
        let object = item
            .as_object()
            .ok_or_else(|| problem(at, text!("policy_problem_not_object")))?;
        refuse_secrets(object, at)?;
        for key in object.keys() {
            if !["id", "label", "site", "headers", "anySite", "alsoFrom"].contains(&key.as_str()) {
                return Err(problem(
                    format!("{at}.{}", short(key)),
                    text!("policy_problem_unknown_key"),
                ));
            }
        }
        let text_field = |key: &str| -> Result<&str, Problem> {
            object
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| problem(format!("{at}.{key}"), text!("policy_problem_not_text")))
        };
        let key = text_field("id")?;
        if key.is_empty() || key.len() > 100 {
            return Err(problem(
                format!("{at}.id"),
                text!("policy_problem_not_text"),
            ));
        }
        let label = object.get("label").and_then(Value::as_str).unwrap_or(key);
        let pattern = SitePattern::parse(text_field("site")?, self.options())
            .map_err(|e| problem(format!("{at}.site"), e.text()))?;
        let headers = object
            .get("headers")
            .and_then(Value::as_array)
            .filter(|h| !h.is_empty() && h.len() <= crate::header::MAX_HEADERS_PER_RULE)
            .ok_or_else(|| problem(format!("{at}.headers"), text!("policy_problem_headers")))?;
        let mut managed = Vec::new();
        for (n, header) in headers.iter().enumerate() {
            let at = format!("{at}.headers[{n}]");
            let h = header
                .as_object()
                .ok_or_else(|| problem(&at, text!("policy_problem_not_object")))?;
            refuse_secrets(h, &at)?;
            let name = h
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| problem(format!("{at}.name"), text!("policy_problem_not_text")))
                .and_then(|n| {
                    HeaderName::new(n).map_err(|e| problem(format!("{at}.name"), e.text()))
                })?;
            let scheme = h
                .get("scheme")
                .and_then(Value::as_str)
                .map_or(Some(ValueScheme::Bearer), ValueScheme::parse)
                .ok_or_else(|| problem(format!("{at}.scheme"), text!("policy_problem_scheme")))?;
            let login = match (h.get("login"), h.get("ask")) {
                (Some(login), None) => read_login(login, &format!("{at}.login"))?,
                (None, Some(Value::Bool(true))) => ManagedLogin {
                    provider: Provider::Custom,
                    endpoint: Endpoint::new(&pattern.origin().replace("*.", ""))
                        .map_err(|e| problem(format!("{at}.ask"), e.text()))?,
                },
                _ => return Err(problem(&at, text!("policy_problem_secret_source"))),
            };
            managed.push(ManagedHeader {
                name,
                scheme,
                login,
            });
        }
        let any_site = match object.get("anySite") {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) if self.allow_any_site => true,
            Some(Value::Bool(true)) => {
                return Err(problem(
                    format!("{at}.anySite"),
                    PolicyError::AnySite.text(),
                ))
            }
            Some(_) => {
                return Err(problem(
                    format!("{at}.anySite"),
                    text!("policy_problem_not_bool"),
                ))
            }
        };
        let also: Vec<String> = match object.get("alsoFrom") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    problem(format!("{at}.alsoFrom"), text!("policy_problem_not_text"))
                })?,
            Some(_) => {
                return Err(problem(
                    format!("{at}.alsoFrom"),
                    text!("policy_problem_not_list"),
                ))
            }
        };
        let initiators = if any_site {
            Initiators::AnySite
        } else {
            Initiators::SameSite {
                also: initiator::parse_also(&also, &pattern)
                    .map_err(|(n, e)| problem(format!("{at}.alsoFrom[{}]", n - 1), e.text()))?,
            }
        };
        Ok(ManagedRule {
            key: key.to_owned(),
            label: label.chars().take(crate::rules::MAX_LABEL_LEN).collect(),
            pattern,
            headers: managed,
            initiators,
        })
    }

    /// Whether the user may have a rule for `pattern`.
    pub fn allows(&self, pattern: &SitePattern) -> bool {
        self.allowed_sites
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|a| a.covers(pattern)))
    }

    /// Checks a user's rule against the policy.
    pub fn check_rule(&self, rule: &SiteRule) -> Result<(), PolicyError> {
        self.check_site(&rule.pattern, rule.initiators.is_any_site())
    }

    /// Checks a user's rule for `pattern`, open to any site or not: the
    /// allowed sites, plain http, "any site". A saved rule, a draft and an
    /// imported entry are all checked here.
    pub fn check_site(&self, pattern: &SitePattern, any_site: bool) -> Result<(), PolicyError> {
        if !self.allows(pattern) {
            return Err(PolicyError::OutsideAllowedSites(pattern.to_string()));
        }
        if pattern.needs_http_opt_in() && !self.allow_plain_http {
            return Err(PolicyError::PlainHttp);
        }
        if any_site && !self.allow_any_site {
            return Err(PolicyError::AnySite);
        }
        Ok(())
    }

    /// Whether `id` is a managed rule's.
    pub fn is_managed(id: SiteRuleId) -> bool {
        (MANAGED_RULE_BASE..crate::compile::TAB_RULE_BASE).contains(&id)
    }

    /// The browser rules the administrator's rules need once every login
    /// they use is made: kept free whatever the user adds, so that a login
    /// never finds the browser's limit reached.
    pub fn reserved(&self) -> crate::compile::Usage {
        self.rules
            .iter()
            .map(|rule| crate::compile::usage_of_one(&rule.pattern, &rule.initiators))
            .fold(
                crate::compile::Usage::default(),
                crate::compile::Usage::plus,
            )
    }

    /// The managed rules as the browser applies them now: each header's
    /// secret from the user's usable login at its provider and endpoint;
    /// a header without one is left out, and a rule left with none is not
    /// applied.
    pub fn rules_in_force(&self, credentials: &Credentials, now: Timestamp) -> Vec<SiteRule> {
        self.rules
            .iter()
            .zip(0u32..)
            .filter_map(|(rule, i)| {
                let headers: Vec<HeaderAction> = rule
                    .headers
                    .iter()
                    .filter_map(|h| {
                        let credential = login_for(credentials, &h.login, now)?;
                        let value = HeaderValue::new(h.scheme, credential.secret.clone()).ok()?;
                        Some(HeaderAction::Set {
                            name: h.name.clone(),
                            value,
                            credential: Some(credential.info.id),
                        })
                    })
                    .collect();
                (!headers.is_empty()).then(|| SiteRule {
                    id: MANAGED_RULE_BASE + i,
                    label: rule.label.clone(),
                    pattern: rule.pattern.clone(),
                    allow_http: self.allow_plain_http,
                    enabled: true,
                    headers,
                    initiators: rule.initiators.clone(),
                })
            })
            .collect()
    }
}

/// The user's usable login at `login`'s provider and endpoint, if any.
pub fn login_for<'a>(
    credentials: &'a Credentials,
    login: &ManagedLogin,
    now: Timestamp,
) -> Option<&'a crate::credential::Credential> {
    credentials.all().iter().find(|c| {
        c.info.provider == login.provider
            && c.info.endpoint == login.endpoint
            && credentials.usable(c.info.id, now)
    })
}

fn read_login(value: &Value, at: &str) -> Result<ManagedLogin, Problem> {
    let object = value
        .as_object()
        .ok_or_else(|| problem(at, text!("policy_problem_not_object")))?;
    refuse_secrets(object, at)?;
    let name = object
        .get("provider")
        .and_then(Value::as_str)
        .ok_or_else(|| problem(format!("{at}.provider"), text!("policy_problem_provider")))?;
    let provider = Provider::ALL
        .into_iter()
        .find(|p| {
            serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.eq_ignore_ascii_case(name)))
                .unwrap_or(false)
                || p.name().eq_ignore_ascii_case(name)
        })
        .ok_or_else(|| problem(format!("{at}.provider"), text!("policy_problem_provider")))?;
    let endpoint = object
        .get("endpoint")
        .or_else(|| object.get("issuer"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let endpoint = Endpoint::parse(provider, endpoint)
        .map_err(|e| problem(format!("{at}.endpoint"), e.text()))?;
    Ok(ManagedLogin { provider, endpoint })
}

/// A policy never carries a secret: an entry with one is refused, and the
/// value is not repeated.
fn refuse_secrets(object: &Map<String, Value>, at: &str) -> Result<(), Problem> {
    for key in ["secret", "token", "value", "password", "apiKey"] {
        if object.contains_key(key) {
            return Err(problem(
                format!("{at}.{key}"),
                text!("policy_problem_secret"),
            ));
        }
    }
    Ok(())
}

/// A key as the problem names it: the first 40 characters.
fn short(key: &str) -> String {
    key.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Policy {
        Policy::read(Some(&value))
    }

    fn pattern(s: &str) -> SitePattern {
        SitePattern::parse(s, ParseOptions { allow_http: true }).expect("a pattern")
    }

    #[test]
    fn no_policy_restricts_nothing() {
        for policy in [Policy::read(None), read(json!({}))] {
            assert!(!policy.present);
            assert!(policy.allows(&pattern("https://anything.example")));
            assert!(policy.rules.is_empty() && policy.problems.is_empty());
        }
    }

    #[test]
    fn a_good_policy_reads_whole() {
        let policy = read(json!({
            "rules": [{"id": "models", "label": "ACME models", "site": "https://*.acme.example",
                       "headers": [{"name": "Authorization", "scheme": "bearer",
                                    "login": {"provider": "bentocloud", "endpoint": "https://acme.cloud.bentoml.com"}},
                                   {"name": "X-Team-Key", "scheme": "raw", "ask": true}]}],
            "providers": [{"provider": "openId", "issuer": "https://login.acme.example", "clientId": "tokenward"}],
            "allowedSites": ["https://*.acme.example", "http://localhost"],
            "requireProtection": true,
            "maxIdleMinutes": 30
        }));
        assert!(policy.problems.is_empty(), "{:?}", policy.problems);
        assert_eq!(policy.rules.len(), 1);
        assert_eq!(policy.rules[0].headers[1].login.provider, Provider::Custom);
        assert_eq!(
            policy.rules[0].headers[1].login.endpoint.as_str(),
            "https://acme.example"
        );
        assert_eq!(policy.providers[0].client_id.as_deref(), Some("tokenward"));
        assert!(policy.require_protection && !policy.allow_plain_http);
        assert_eq!(policy.max_idle_minutes, Some(30));
        assert!(policy.allows(&pattern("https://api.acme.example/v1")));
        assert!(!policy.allows(&pattern("https://acme.example.evil.test")));
        assert!(!policy.allows(&pattern("https://*.other.example")));
    }

    /// A policy is read as written, without the browser's URL parser: a
    /// host in Unicode is refused by name, and the rest is read.
    #[test]
    fn a_host_in_unicode_is_a_problem_that_says_to_write_its_ascii_form() {
        let policy = read(json!({
            "allowedSites": ["https://bücher.example", "https://xn--bcher-kva.example"],
            "rules": [{"id": "idn", "site": "https://*.bücher.example",
                       "headers": [{"name": "X-Key", "scheme": "raw", "ask": true}]}]
        }));
        let said: Vec<(String, String)> = policy
            .problems
            .iter()
            .map(|p| (p.at.clone(), crate::text::english(&p.why)))
            .collect();
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0].0, "allowedSites[0]");
        assert_eq!(said[1].0, "rules[0].site");
        for (_, why) in &said {
            assert!(
                why.contains("bücher.example") && why.contains("ASCII form (xn--"),
                "{why}"
            );
        }
        assert!(policy.allows(&pattern("https://xn--bcher-kva.example/")));
        assert!(policy.rules.is_empty());
    }

    #[test]
    fn hostile_entries_are_refused_one_by_one_and_never_widen() {
        let policy = read(json!({
            "rules": [
                {"id": "all", "site": "<all_urls>", "headers": [{"name": "A", "ask": true}]},
                {"id": "star", "site": "*://*/*", "headers": [{"name": "A", "ask": true}]},
                {"id": "leak", "site": "https://a.example", "headers": [{"name": "A", "secret": "s3cret-value"}]},
                {"id": "any", "site": "https://b.example", "anySite": "yes", "headers": [{"name": "A", "ask": true}]},
                {"id": "bad-name", "site": "https://c.example", "headers": [{"name": "X A\r\n", "ask": true}]},
                {"id": "http", "site": "http://d.example", "headers": [{"name": "A", "ask": true}]},
                "not a rule",
                {"id": "good", "site": "https://e.example", "headers": [{"name": "A", "ask": true}]}
            ],
            "allowedSites": ["*", 7, "https://*.ok.example"],
            "requireProtection": "yes",
            "maxIdleMinutes": -1,
            "allowPlainHtpp": true
        }));
        let keys: Vec<&str> = policy.rules.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["good"]);
        let at: Vec<&str> = policy.problems.iter().map(|p| p.at.as_str()).collect();
        for expected in [
            "allowPlainHtpp",
            "requireProtection",
            "maxIdleMinutes",
            "allowedSites[0]",
            "allowedSites[1]",
            "rules[0].site",
            "rules[1].site",
            "rules[2].headers[0].secret",
            "rules[3].anySite",
            "rules[4].headers[0].name",
            "rules[5].site",
            "rules[6]",
        ] {
            assert!(at.contains(&expected), "{expected} not in {at:?}");
        }
        // Wrong types read strictly.
        assert!(policy.require_protection);
        assert_eq!(policy.max_idle_minutes, Some(5));
        assert!(!policy.allow_plain_http);
        // The only readable allowed site is the only one allowed.
        assert!(policy.allows(&pattern("https://x.ok.example")));
        assert!(!policy.allows(&pattern("https://e.example")));
        let said = serde_json::to_string(&policy.problems).expect("json");
        assert!(!said.contains("s3cret-value"), "{said}");
    }

    #[test]
    fn a_list_of_nothing_readable_allows_nothing() {
        let policy = read(json!({"allowedSites": ["*"]}));
        assert!(!policy.allows(&pattern("https://a.example")));
        let policy = read(json!({"allowedSites": "https://a.example"}));
        assert!(!policy.allows(&pattern("https://a.example")));
        assert!(read(json!([1])).allowed_sites == Some(Vec::new()));
    }

    #[test]
    fn managed_headers_come_from_the_users_login() {
        use crate::credential::{Credential, CredentialKind};
        use crate::header::Secret;
        let policy = read(
            json!({"rules": [{"id": "m", "site": "https://api.acme.example",
            "headers": [{"name": "Authorization", "login": {"provider": "jina", "endpoint": "https://api.jina.ai"}}]}]}),
        );
        let mut credentials = Credentials::default();
        let now = Timestamp(1_766_000_000);
        assert!(
            policy.rules_in_force(&credentials, now).is_empty(),
            "no login, no rule"
        );
        let id = credentials
            .add(Credential::new(
                0,
                Provider::Jina,
                Endpoint::new("https://api.jina.ai").expect("an endpoint"),
                CredentialKind::PersonalAccessToken,
                Secret::from_input("jina_abc").expect("a secret"),
            ))
            .expect("added");
        let rules = policy.rules_in_force(&credentials, now);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].id, MANAGED_RULE_BASE);
        assert!(
            matches!(&rules[0].headers[0], HeaderAction::Set { credential: Some(c), value, .. }
            if *c == id && value.secret.expose() == "jina_abc")
        );
    }
}
