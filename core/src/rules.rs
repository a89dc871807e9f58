//! Site rules: a pattern, the headers it gets, and whether it is on. The
//! [`RuleBook`] is the whole set the user keeps, and the only input of the
//! compiler.

use serde::{Deserialize, Serialize};

use crate::credential::CredentialId;
use crate::header::{
    HeaderError, HeaderName, HeaderValue, Secret, ValueScheme, MAX_HEADERS_PER_RULE,
};
use crate::initiator::{self, InitiatorError, Initiators};
use crate::pattern::{make_ascii, HostNames, ParseOptions, PatternError, SitePattern};
use crate::text;
use crate::text::{Localize, Text};

/// A site rule's id. Stable for the rule's life and never reused, so the
/// browser rule ids derived from it are deterministic.
pub type SiteRuleId = u32;

/// The longest label kept.
pub const MAX_LABEL_LEN: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRule {
    pub id: SiteRuleId,
    pub label: String,
    pub pattern: SitePattern,
    pub allow_http: bool,
    pub enabled: bool,
    pub headers: Vec<HeaderAction>,
    /// Which pages may make the browser send these headers.
    pub initiators: Initiators,
}

impl SiteRule {
    /// The rule as the browser should apply it: without the headers whose
    /// credential is not `usable` (expired, or gone); `None` when no header
    /// is left. The stored rule keeps them, so a renewed credential brings
    /// them back.
    pub fn in_force(&self, usable: impl Fn(CredentialId) -> bool) -> Option<SiteRule> {
        let headers: Vec<HeaderAction> = self
            .headers
            .iter()
            .filter(|a| match a {
                HeaderAction::Set {
                    credential: Some(id),
                    ..
                } => usable(*id),
                _ => true,
            })
            .cloned()
            .collect();
        (!headers.is_empty()).then(|| SiteRule {
            headers,
            ..self.clone()
        })
    }
    /// The host permissions the rule needs: its own site's
    /// ([`SitePattern::host_permissions`]) and, for each "also from" site,
    /// that site's pages: the browser applies a header to a request a page
    /// makes only where it also holds the page's permission. A listed site
    /// is asked for with the rule's own scheme (an https API is called from
    /// https pages), and for its exact host, narrower than the domain the
    /// browser compares, so a subdomain stays out unless listed.
    pub fn host_permissions(&self) -> Vec<String> {
        host_permissions(&self.pattern, self.initiators.also())
    }
}

fn host_permissions(pattern: &SitePattern, also: &[initiator::InitiatorSite]) -> Vec<String> {
    let mut out = pattern.host_permissions().to_vec();
    for site in also {
        out.push(format!(
            "{}://{}/*",
            pattern.scheme().as_str(),
            site.as_str()
        ));
    }
    out
}

/// Why a rule edit was refused. Messages are for the user and never carry a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Pattern(#[from] PatternError),
    #[error("header {position}: {source}")]
    Header {
        position: usize,
        #[source]
        source: HeaderError,
    },
    #[error("{0}")]
    Headers(HeaderError),
    #[error("header {0}: unknown value type; choose Bearer token, Basic, Token, Raw value or Remove header")]
    UnknownScheme(usize),
    #[error("another rule already covers exactly {0}; edit that one instead")]
    Duplicate(String),
    #[error("this rule no longer exists; it may have been deleted in another window")]
    NotFound(SiteRuleId),
    #[error("the label is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong,
    #[error("no more rule ids are available")]
    IdsExhausted,
    #[error("also from, site {position}: {source}")]
    Also {
        position: usize,
        #[source]
        source: InitiatorError,
    },
}

impl Localize for RuleError {
    fn text(&self) -> Text {
        match self {
            RuleError::Pattern(e) => e.text(),
            RuleError::Header { position, source } => {
                text!("error_rule_header", *position, source.text())
            }
            RuleError::Headers(e) => e.text(),
            RuleError::UnknownScheme(position) => text!("error_rule_unknown_scheme", *position),
            RuleError::Duplicate(pattern) => text!("error_rule_duplicate", pattern),
            RuleError::NotFound(_) => text!("error_rule_not_found"),
            RuleError::LabelTooLong => text!("error_rule_label_too_long", MAX_LABEL_LEN),
            RuleError::IdsExhausted => text!("error_rule_ids_exhausted"),
            RuleError::Also { position, source } => {
                text!("error_rule_also", *position, source.text())
            }
        }
    }
}

/// A rule as the editor submits it: plain strings, not yet validated. An
/// empty secret on an existing header keeps the stored secret, so editing a
/// rule never requires pasting the token again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDraft {
    #[serde(default)]
    pub id: Option<SiteRuleId>,
    #[serde(default)]
    pub label: String,
    pub pattern: String,
    #[serde(default)]
    pub allow_http: bool,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub headers: Vec<HeaderDraft>,
    /// "Any site": every page may make the browser send these headers.
    /// Off (the default) is the same-site policy.
    #[serde(default)]
    pub any_site: bool,
    /// Same site only: other sites whose pages may use these headers, as
    /// typed (`https://app.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_from: Vec<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// One header row of the editor. `scheme` is a [`ValueScheme`] name or
/// `remove`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderDraft {
    pub name: String,
    pub scheme: String,
    #[serde(default)]
    pub secret: String,
    /// Use this stored credential's secret. The background fills `secret`
    /// from the vault; a page never sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialId>,
}

impl std::fmt::Debug for HeaderDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDraft")
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .field("secret", &"<redacted>")
            .field("credential", &self.credential)
            .finish()
    }
}

impl RuleDraft {
    /// The draft with the hosts typed in Unicode (its site, its "also
    /// from" sites) in their ASCII form
    /// ([`crate::pattern::with_ascii_host`]), as the parsers read them.
    pub fn with_ascii_hosts(mut self, names: &dyn HostNames) -> RuleDraft {
        self.make_hosts_ascii(names);
        self
    }

    /// [`RuleDraft::with_ascii_hosts`], in place.
    pub fn make_hosts_ascii(&mut self, names: &dyn HostNames) {
        make_ascii(&mut self.pattern, names);
        for site in &mut self.also_from {
            make_ascii(site, names);
        }
    }

    /// Parses only the pattern: what a page needs before asking for the host
    /// permission, synchronously inside the click.
    pub fn parse_pattern(&self) -> Result<SitePattern, PatternError> {
        SitePattern::parse(
            &self.pattern,
            ParseOptions {
                allow_http: self.allow_http,
            },
        )
    }

    /// Everything a page can check before sending the draft: the pattern,
    /// header names, schemes, "also from" sites and any secret typed. A blank
    /// secret passes when editing, since the background fills it from the
    /// stored rule. Returns the pattern and the host permissions the page
    /// then requests ([`SiteRule::host_permissions`]).
    pub fn precheck(&self) -> Result<(SitePattern, Vec<String>), RuleError> {
        if self.label.chars().count() > MAX_LABEL_LEN {
            return Err(RuleError::LabelTooLong);
        }
        let editing = self.id.is_some();
        // Any valid secret stands in for the stored one; only its presence
        // matters here.
        self.validate(|_| {
            editing
                .then(|| Secret::from_input("stored").ok().map(|s| (s, None)))
                .flatten()
        })
        .map(|(pattern, _, initiators)| {
            let permissions = host_permissions(&pattern, initiators.also());
            (pattern, permissions)
        })
    }

    /// Validates the draft. `stored_secret` supplies the secret of a row
    /// left blank, and the credential it came from: the stored rule's, for
    /// that header, when editing.
    fn validate(
        &self,
        stored_secret: impl Fn(&HeaderName) -> Option<(Secret, Option<CredentialId>)>,
    ) -> Result<(SitePattern, Vec<HeaderAction>, Initiators), RuleError> {
        let pattern = self.parse_pattern()?;
        let initiators = self.initiators(&pattern)?;
        let mut actions = Vec::with_capacity(self.headers.len());
        for (i, row) in self.headers.iter().enumerate() {
            let position = i + 1;
            let at = |source| RuleError::Header { position, source };
            let name = HeaderName::new(&row.name).map_err(at)?;
            if row.scheme == "remove" {
                actions.push(HeaderAction::Remove { name });
                continue;
            }
            let scheme =
                ValueScheme::parse(&row.scheme).ok_or(RuleError::UnknownScheme(position))?;
            let (secret, credential) = if row.secret.trim().is_empty() {
                stored_secret(&name).ok_or(at(HeaderError::EmptySecret))?
            } else {
                (Secret::from_input(&row.secret).map_err(at)?, row.credential)
            };
            let value = HeaderValue::new(scheme, secret).map_err(at)?;
            actions.push(HeaderAction::Set {
                name,
                value,
                credential,
            });
        }
        check_actions(&actions).map_err(RuleError::Headers)?;
        Ok((pattern, actions, initiators))
    }

    /// The draft's policy. The "also from" list is checked even when "any
    /// site" is ticked (a typo is reported, not hidden), and has no use then.
    fn initiators(&self, pattern: &SitePattern) -> Result<Initiators, RuleError> {
        let also = initiator::parse_also(&self.also_from, pattern)
            .map_err(|(position, source)| RuleError::Also { position, source })?;
        Ok(if self.any_site {
            Initiators::AnySite
        } else {
            Initiators::SameSite { also }
        })
    }
}

fn previous_secret(rule: &SiteRule, name: &HeaderName) -> Option<(Secret, Option<CredentialId>)> {
    rule.headers.iter().find_map(|a| match a {
        HeaderAction::Set {
            name: n,
            value,
            credential,
        } if n.same_as(name) => Some((value.secret.clone(), *credential)),
        _ => None,
    })
}

/// Every rule the user keeps, in the order they were created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleBook {
    pub(crate) next_id: SiteRuleId,
    pub(crate) rules: Vec<SiteRule>,
}

impl Default for RuleBook {
    fn default() -> Self {
        RuleBook {
            next_id: 1,
            rules: Vec::new(),
        }
    }
}

impl RuleBook {
    pub fn rules(&self) -> &[SiteRule] {
        &self.rules
    }

    pub fn get(&self, id: SiteRuleId) -> Option<&SiteRule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Creates or replaces a rule from a draft. Nothing changes on error.
    pub fn save(&mut self, draft: &RuleDraft) -> Result<&SiteRule, RuleError> {
        if draft.label.chars().count() > MAX_LABEL_LEN {
            return Err(RuleError::LabelTooLong);
        }
        let previous = match draft.id {
            Some(id) => Some(self.get(id).ok_or(RuleError::NotFound(id))?),
            None => None,
        };
        let (pattern, headers, initiators) =
            draft.validate(|name| previous.and_then(|p| previous_secret(p, name)))?;
        // Two rules on the same pattern would tie on priority, and the
        // browser's choice between tied rules is unspecified.
        if let Some(other) = self
            .rules
            .iter()
            .find(|r| r.pattern == pattern && Some(r.id) != draft.id)
        {
            return Err(RuleError::Duplicate(other.pattern.to_string()));
        }
        let rule = SiteRule {
            id: draft.id.unwrap_or(self.next_id),
            label: draft.label.trim().to_owned(),
            allow_http: draft.allow_http,
            enabled: draft.enabled,
            pattern,
            headers,
            initiators,
        };
        let index = match self.rules.iter().position(|r| r.id == rule.id) {
            Some(i) => {
                self.rules[i] = rule;
                i
            }
            None => {
                self.next_id = self.next_id.checked_add(1).ok_or(RuleError::IdsExhausted)?;
                self.rules.push(rule);
                self.rules.len() - 1
            }
        };
        Ok(&self.rules[index])
    }

    pub fn set_enabled(&mut self, id: SiteRuleId, enabled: bool) -> Result<&SiteRule, RuleError> {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(RuleError::NotFound(id))?;
        rule.enabled = enabled;
        Ok(rule)
    }

    /// The rules that take a header from credential `id`.
    pub fn using(&self, id: CredentialId) -> impl Iterator<Item = &SiteRule> {
        self.rules.iter().filter(move |r| {
            r.headers
                .iter()
                .any(|a| matches!(a, HeaderAction::Set { credential: Some(c), .. } if *c == id))
        })
    }

    /// Puts a rotated credential's new secret in every header that uses it.
    /// Returns how many headers changed.
    pub fn rotate(&mut self, id: CredentialId, secret: &Secret) -> usize {
        let mut changed = 0;
        for rule in &mut self.rules {
            for action in &mut rule.headers {
                if let HeaderAction::Set {
                    value,
                    credential: Some(c),
                    ..
                } = action
                {
                    if *c == id {
                        value.secret = secret.clone();
                        changed += 1;
                    }
                }
            }
        }
        changed
    }

    /// Removes every header that uses credential `id`, and every rule left
    /// with no header. Returns the ids of the rules removed.
    pub fn forget_credential(&mut self, id: CredentialId) -> Vec<SiteRuleId> {
        let mut removed = Vec::new();
        self.rules.retain_mut(|rule| {
            rule.headers.retain(
                |a| !matches!(a, HeaderAction::Set { credential: Some(c), .. } if *c == id),
            );
            if rule.headers.is_empty() {
                removed.push(rule.id);
            }
            !rule.headers.is_empty()
        });
        removed
    }

    pub fn delete(&mut self, id: SiteRuleId) -> Result<SiteRule, RuleError> {
        let index = self
            .rules
            .iter()
            .position(|r| r.id == id)
            .ok_or(RuleError::NotFound(id))?;
        Ok(self.rules.remove(index))
    }
}

/// What a rule does to one request header. Read by its tag through a
/// `Value` (`json::read_tagged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum HeaderAction {
    Set {
        name: HeaderName,
        value: HeaderValue,
        /// The credential the secret comes from, when the rule was made from
        /// one. The value keeps a copy of its secret so that a rule compiles
        /// on its own; the service keeps the copy equal to the credential's
        /// secret (rotation) and drops the header with the credential.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<CredentialId>,
    },
    Remove {
        name: HeaderName,
    },
}

impl<'de> Deserialize<'de> for HeaderAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Set {
            name: HeaderName,
            value: HeaderValue,
            #[serde(default)]
            credential: Option<CredentialId>,
        }
        #[derive(Deserialize)]
        struct Remove {
            name: HeaderName,
        }
        crate::json::read_tagged(d, "op", |tag, fields| match tag {
            "set" => {
                let Set {
                    name,
                    value,
                    credential,
                } = crate::json::read(fields)?;
                Ok(HeaderAction::Set {
                    name,
                    value,
                    credential,
                })
            }
            "remove" => {
                let Remove { name } = crate::json::read(fields)?;
                Ok(HeaderAction::Remove { name })
            }
            _ => Err(serde::de::Error::unknown_variant(tag, &["set", "remove"])),
        })
    }
}

impl HeaderAction {
    pub fn name(&self) -> &HeaderName {
        match self {
            HeaderAction::Set { name, .. } | HeaderAction::Remove { name } => name,
        }
    }

    /// `Authorization: Bearer ••••••••wxyz`, or `X-Foo: (removed)`.
    pub fn summary(&self) -> String {
        match self {
            HeaderAction::Set { name, value, .. } => format!("{name}: {}", value.masked()),
            HeaderAction::Remove { name } => format!("{name}: (removed)"),
        }
    }
}

/// Checks a rule's list of header actions as a whole.
pub fn check_actions(actions: &[HeaderAction]) -> Result<(), HeaderError> {
    if actions.is_empty() {
        return Err(HeaderError::NoHeaders);
    }
    if actions.len() > MAX_HEADERS_PER_RULE {
        return Err(HeaderError::TooManyHeaders);
    }
    for (i, a) in actions.iter().enumerate() {
        if actions[..i].iter().any(|b| b.name().same_as(a.name())) {
            return Err(HeaderError::DuplicateName(a.name().to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn draft(pattern: &str, secret: &str) -> RuleDraft {
        RuleDraft {
            pattern: pattern.into(),
            enabled: true,
            headers: vec![HeaderDraft {
                name: "Authorization".into(),
                scheme: "bearer".into(),
                secret: secret.into(),
                credential: None,
            }],
            ..RuleDraft::default()
        }
    }

    #[test]
    fn save_assigns_stable_ids() {
        let mut book = RuleBook::default();
        let a = book.save(&draft("https://a.example", "t1")).map(|r| r.id);
        let b = book.save(&draft("https://b.example", "t2")).map(|r| r.id);
        assert_eq!((a, b), (Ok(1), Ok(2)));
        assert!(book.delete(1).is_ok());
        let c = book.save(&draft("https://c.example", "t3")).map(|r| r.id);
        assert_eq!(c, Ok(3), "ids are never reused");
    }

    #[test]
    fn editing_with_a_blank_secret_keeps_the_old_one() {
        let mut book = RuleBook::default();
        assert!(book
            .save(&draft("https://a.example", "first-secret"))
            .is_ok());
        let mut edit = draft("https://a.example/v1", "");
        edit.id = Some(1);
        edit.headers[0].scheme = "token".into();
        let saved = book.save(&edit).map(|r| r.headers.clone());
        assert_eq!(
            book.get(1).map(|r| r.initiators.clone()),
            Some(Initiators::default()),
            "a rule is same-site unless the draft says any site"
        );
        let expected = HeaderValue::new(
            ValueScheme::Token,
            Secret::from_input("first-secret").unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(
            saved.ok().and_then(|h| match &h[0] {
                HeaderAction::Set { value, .. } => Some(value.clone()),
                HeaderAction::Remove { .. } => None,
            }),
            expected.ok()
        );
        // A new rule with a blank secret has nothing to keep.
        assert_eq!(
            book.save(&draft("https://b.example", "")).err(),
            Some(RuleError::Header {
                position: 1,
                source: HeaderError::EmptySecret
            })
        );
    }

    #[test]
    fn refused_edits_change_nothing() {
        let mut book = RuleBook::default();
        assert!(book.save(&draft("https://a.example", "t")).is_ok());
        let before = book.clone();
        for bad in [
            draft("*", "t"),
            draft("https://a.example", "t"),
            draft("https://b.example", "bad\nsecret"),
            draft("http://b.example", "t"),
        ] {
            assert!(book.save(&bad).is_err(), "{bad:?}");
            assert_eq!(book, before);
        }
        let mut missing = draft("https://z.example", "t");
        missing.id = Some(99);
        assert_eq!(book.save(&missing).err(), Some(RuleError::NotFound(99)));
        let mut bad_scheme = draft("https://z.example", "t");
        bad_scheme.headers[0].scheme = "digest".into();
        assert_eq!(
            book.save(&bad_scheme).err(),
            Some(RuleError::UnknownScheme(1))
        );
        assert_eq!(book, before);
    }

    #[test]
    fn precheck_matches_what_the_background_refuses() {
        assert!(matches!(
            draft("*", "t").precheck(),
            Err(RuleError::Pattern(_))
        ));
        assert!(matches!(
            draft("https://a.example", "a\nb").precheck(),
            Err(RuleError::Header { position: 1, .. })
        ));
        assert!(
            draft("https://a.example", "").precheck().is_err(),
            "a new rule needs a secret"
        );
        let mut edit = draft("https://a.example", "");
        edit.id = Some(4);
        assert_eq!(
            edit.precheck().map(|p| p.0.to_string()),
            Ok("https://a.example/".to_owned())
        );
        edit.also_from = vec!["app.example".into()];
        assert_eq!(
            edit.precheck().map(|p| p.1),
            Ok(vec![
                "https://a.example/*".to_owned(),
                "wss://a.example/*".to_owned(),
                "https://app.example/*".to_owned()
            ]),
            "a listed site's pages need their permission too"
        );
        edit.also_from = vec!["*".into()];
        assert!(matches!(
            edit.precheck(),
            Err(RuleError::Also { position: 1, .. })
        ));
    }

    #[test]
    fn errors_never_carry_the_secret() {
        let mut book = RuleBook::default();
        let secret = "sk-live-0123456789abcdef\nX-Injected: yes";
        let err = book
            .save(&draft("https://a.example", secret))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| !e.contains("0123456789")),
            "{err:?}"
        );
        assert!(!format!("{:?}", draft("https://a.example", secret)).contains("0123456789"));
        let said = book
            .save(&draft("https://a.example", secret))
            .err()
            .map(|e| crate::text::english(&e.text()));
        assert_eq!(
            said.as_deref(),
            Some(
                "Header 1: The secret contains a line break or NUL character, which would let it \
                 inject other headers; paste it again without one."
            )
        );
    }

    #[test]
    fn refusals_are_said_with_where_they_are() {
        let said = |e: RuleError| crate::text::english(&e.text());
        let mut book = RuleBook::default();
        assert!(book.save(&draft("https://a.example", "t")).is_ok());
        assert_eq!(
            book.save(&draft("https://a.example", "t"))
                .err()
                .map(said)
                .as_deref(),
            Some("Another rule already covers exactly https://a.example/; edit that one instead.")
        );
        let mut also = draft("https://b.example", "t");
        also.also_from = vec!["ok.example".into(), "https://app.example.com/v1".into()];
        assert_eq!(
            also.precheck().err().map(said).as_deref(),
            Some(
                "Also from, site 2: “https://app.example.com/v1” is a path; name the site only, \
                 as in https://app.example.com."
            )
        );
        let mut unnamed = draft("https://b.example", "t");
        unnamed.headers[0].name = " ".into();
        assert_eq!(
            book.save(&unnamed).err().map(said).as_deref(),
            Some("Header 1: Enter a header name, such as Authorization.")
        );
        unnamed.headers[0].scheme = "digest".into();
        unnamed.headers[0].name = "X-Key".into();
        assert_eq!(
            book.save(&unnamed).err().map(said).as_deref(),
            Some("Header 1: Unknown value type; choose Bearer token, Basic, Token, Raw value or Remove header.")
        );
        assert_eq!(
            said(RuleError::Pattern(PatternError::Empty)),
            "Enter a site, for example https://api.example.com."
        );
        assert_eq!(
            said(RuleError::NotFound(9)),
            "This rule no longer exists; it may have been deleted in another window."
        );
    }
}
