//! Moving in: rules from a file another header extension exported, or a
//! Tokenward export, read into [`Candidate`]s, shown as a preview, and
//! written only when the user confirms.
//!
//! Every byte of a file is hostile until read here. A file is at most
//! [`MAX_FILE_BYTES`] and [`MAX_ENTRIES`] entries; it is read as JSON values
//! and walked by hand, so a problem names the entry and the field and never
//! quotes a value (a header value is a secret in these files). Where a rule
//! applies is read by [`scope`], which never widens it.
//!
//! The preview and the import are one function, [`plan`]: the preview runs
//! it on a copy of the state and shows what each entry would do; the import
//! runs it on the state itself with the entries the user confirmed, and the
//! service saves the result in one write, or nothing.

pub mod formats;
pub mod scope;

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::credential::{Credential, CredentialId};
use crate::header::{Secret, ValueScheme};
use crate::initiator::Initiators;
use crate::rules::{HeaderAction, HeaderDraft, RuleDraft, SiteRuleId};
use crate::store::State;
use crate::text;
use crate::text::{Localize, Text};
use crate::vault::VaultError;
use scope::Scope;

/// The largest file read.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// The most entries (rules, profiles, header lines) one file may hold.
pub const MAX_ENTRIES: usize = 1000;

/// Where a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    Tokenward,
    ModHeader,
    SimpleModifyHeaders,
    Requestly,
    Headerly,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Tokenward => "Tokenward",
            Format::ModHeader => "ModHeader",
            Format::SimpleModifyHeaders => "SimpleModifyHeaders",
            Format::Requestly => "Requestly",
            Format::Headerly => "Headerly",
        }
    }
}

/// Why a whole file is refused. Never quotes the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file is larger than 1 MiB")]
    TooLarge,
    #[error("the file holds more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("not a file Tokenward can import")]
    UnknownFormat,
    #[error("{format} file: {what}")]
    Malformed { format: &'static str, what: String },
    #[error("exported by a newer Tokenward (version {0})")]
    Newer(u64),
    #[error("the file is sealed with a passphrase")]
    NeedsPassphrase,
    #[error("{0}")]
    Vault(#[from] VaultError),
}

impl Localize for ImportError {
    fn text(&self) -> Text {
        match self {
            ImportError::TooLarge => text!("import_error_too_large"),
            ImportError::TooManyEntries => text!("import_error_too_many", MAX_ENTRIES),
            ImportError::NotJson { line, column } => {
                text!("import_error_not_json", *line, *column)
            }
            ImportError::UnknownFormat => text!("import_error_unknown_format"),
            ImportError::Malformed { format, what } => {
                text!("import_error_malformed", *format, what)
            }
            ImportError::Newer(v) => text!("import_error_newer", *v),
            ImportError::NeedsPassphrase => text!("import_error_needs_passphrase"),
            ImportError::Vault(e) => e.text(),
        }
    }
}

/// One header a file sets or removes, ready for a [`RuleDraft`].
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedHeader {
    pub name: String,
    /// `None`: remove the header.
    pub value: Option<(ValueScheme, Secret)>,
    /// The file's own credential id (Tokenward exports).
    pub credential: Option<CredentialId>,
}

impl std::fmt::Debug for ImportedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedHeader")
            .field("name", &self.name)
            .field("removes", &self.value.is_none())
            .finish_non_exhaustive()
    }
}

/// One rule the file asks for, before it meets the user's own rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where in the file: "profile “Dev”, URL filter 2".
    pub from: Text,
    pub label: String,
    pub scope: Scope,
    pub enabled: bool,
    pub headers: Vec<ImportedHeader>,
    /// Why this entry cannot be imported at all (a header name that is not
    /// one, a value with a line break), naming the field.
    pub problem: Option<Text>,
    /// What the entry also did that is not imported (response headers,
    /// cookies, headers switched off), each said once.
    pub left_out: Vec<Text>,
    /// Tokenward exports only: the rule's own policy.
    pub initiators: Initiators,
}

impl Candidate {
    /// Takes one header the file sets, replacing an earlier one of the same
    /// name (the file's last word wins, as the extensions apply them), or
    /// records why the entry cannot be imported.
    pub fn take(&mut self, header: Result<ImportedHeader, Text>) {
        match header {
            Ok(h) => {
                self.headers
                    .retain(|x| !x.name.eq_ignore_ascii_case(&h.name));
                self.headers.push(h);
            }
            Err(problem) => self.problem = Some(problem),
        }
    }

    pub fn new(from: Text, label: &str, scope: Scope) -> Candidate {
        Candidate {
            from,
            label: label.chars().take(crate::rules::MAX_LABEL_LEN).collect(),
            scope,
            enabled: true,
            headers: Vec::new(),
            problem: None,
            left_out: Vec::new(),
            initiators: Initiators::default(),
        }
    }
}

/// What a file holds, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub format: Format,
    pub candidates: Vec<Candidate>,
    /// Tokenward exports with secrets: the accounts, by their id in the file.
    pub credentials: Vec<Credential>,
    /// Entries the file holds that are not rules Tokenward imports, each
    /// said once (a Requestly redirect rule, a response-only profile).
    pub not_imported: Vec<(Text, Text)>,
}

impl Reading {
    pub fn new(format: Format) -> Reading {
        Reading {
            format,
            candidates: Vec::new(),
            credentials: Vec::new(),
            not_imported: Vec::new(),
        }
    }

    /// Whether importing would keep a secret from the file.
    pub fn carries_secrets(&self) -> bool {
        !self.credentials.is_empty()
            || self
                .candidates
                .iter()
                .any(|c| c.headers.iter().any(|h| h.value.is_some()))
    }
}

/// Reads a file's text. `passphrase` opens a sealed Tokenward export.
pub fn read(text: &str, passphrase: Option<&str>) -> Result<Reading, ImportError> {
    read_as(None, text, passphrase)
}

/// [`read`], as `format` when given (the fuzz targets reach each reader
/// this way), or as the format the file's shape says.
pub fn read_as(
    format: Option<Format>,
    text: &str,
    passphrase: Option<&str>,
) -> Result<Reading, ImportError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| ImportError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
    let format = format
        .or_else(|| formats::detect(&value))
        .ok_or(ImportError::UnknownFormat)?;
    let reading = formats::read(format, value, passphrase)?;
    if reading.candidates.len() + reading.not_imported.len() > MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    Ok(reading)
}

/// What the page sends back for each entry the user wants imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportChoice {
    pub entry: usize,
    /// For an entry refused as it is: the site the user confirmed instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// What an entry does. Read tag first ([`crate::tagged`]): a view, written
/// only by the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Outcome {
    /// A rule is added.
    New,
    /// A rule with the same site gets these headers.
    Changed { rule: SiteRuleId, label: String },
    /// A rule with the same site already does exactly this.
    Unchanged { rule: SiteRuleId },
    /// Not imported: why.
    Refused { why: Text },
    /// Not something Tokenward imports (responses, cookies, redirects).
    NotImported { why: Text },
    /// Left out by the user.
    Skipped,
}

crate::tagged::deserialize_tag_first!(Outcome);

impl crate::tagged::TagFirst for Outcome {
    const TAG: &'static str = "kind";
    const NAME: &'static str = "Outcome";

    fn variant<'de, A: serde::de::MapAccess<'de>>(
        tag: &str,
        rest: crate::tagged::Rest<A>,
    ) -> Result<Self, A::Error> {
        #[derive(Deserialize)]
        struct Changed {
            rule: SiteRuleId,
            label: String,
        }
        #[derive(Deserialize)]
        struct Unchanged {
            rule: SiteRuleId,
        }
        #[derive(Deserialize)]
        struct Why {
            why: Text,
        }
        const VARIANTS: &[&str] = &[
            "new",
            "changed",
            "unchanged",
            "refused",
            "notImported",
            "skipped",
        ];
        Ok(match tag {
            "new" => rest.unit().map(|()| Outcome::New)?,
            "changed" => {
                let Changed { rule, label } = rest.fields()?;
                Outcome::Changed { rule, label }
            }
            "unchanged" => {
                let Unchanged { rule } = rest.fields()?;
                Outcome::Unchanged { rule }
            }
            "refused" => Outcome::Refused {
                why: rest.fields::<Why>()?.why,
            },
            "notImported" => Outcome::NotImported {
                why: rest.fields::<Why>()?.why,
            },
            "skipped" => rest.unit().map(|()| Outcome::Skipped)?,
            _ => return Err(serde::de::Error::unknown_variant(tag, VARIANTS)),
        })
    }
}

/// One line of the preview. Names headers, never their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportEntry {
    pub entry: usize,
    pub from: Text,
    pub label: String,
    pub outcome: Outcome,
    /// The site the rule is for, canonical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// A narrower site to confirm, for an entry refused for its breadth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// "Authorization (Bearer token)", "X-Trace (Remove header)".
    pub headers: Vec<Text>,
    pub notes: Vec<Text>,
    pub enabled: bool,
}

/// The preview of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPreview {
    pub format: Format,
    pub entries: Vec<ImportEntry>,
    /// Accounts the file brings (Tokenward exports with secrets).
    pub accounts: usize,
    /// The rules the preview was computed against; an import against other
    /// rules is refused, so what is written is what was shown.
    pub basis: String,
}

impl ImportPreview {
    pub fn format_name(&self) -> &'static str {
        self.format.name()
    }
}

/// A fingerprint of the rules and accounts the user has, without any
/// secret: ids, sites, switches, header names and schemes.
pub fn basis(state: &State) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    state.book.next_id.hash(&mut hasher);
    for rule in state.book.rules() {
        (
            rule.id,
            rule.pattern.to_string(),
            rule.enabled,
            rule.allow_http,
        )
            .hash(&mut hasher);
        rule.label.hash(&mut hasher);
        for action in &rule.headers {
            action.name().as_str().hash(&mut hasher);
            if let HeaderAction::Set {
                value, credential, ..
            } = action
            {
                (value.scheme.as_str(), credential).hash(&mut hasher);
            }
        }
    }
    for credential in state.credentials.all() {
        credential.info.id.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Runs a reading against `state`: each entry, in order, added to the rule
/// book or merged into the rule with the same site. `choices`: `None` for
/// the preview (every entry that can be imported as it is), or the entries
/// the user confirmed. The caller checks that the result fits the browser
/// and saves it, or drops it.
pub fn plan(
    state: &mut State,
    reading: &Reading,
    choices: Option<&[ImportChoice]>,
) -> Vec<ImportEntry> {
    let chosen = |i: usize| match choices {
        None => Some(None),
        Some(list) => list.iter().find(|c| c.entry == i).map(|c| c.site.clone()),
    };
    // Accounts first, so rules made from them can name their new ids.
    let mut credential_ids: Vec<(CredentialId, CredentialId)> = Vec::new();
    for credential in &reading.credentials {
        let same = state.credentials.all().iter().find(|c| {
            c.info.provider == credential.info.provider
                && c.info.endpoint == credential.info.endpoint
                && c.secret == credential.secret
        });
        let id = match same {
            Some(c) => Some(c.info.id),
            None => state.credentials.add(credential.clone()),
        };
        if let Some(id) = id {
            credential_ids.push((credential.info.id, id));
        }
    }
    let mut entries = Vec::with_capacity(reading.candidates.len());
    for (i, candidate) in reading.candidates.iter().enumerate() {
        let mut entry = ImportEntry {
            entry: i,
            from: candidate.from.clone(),
            label: candidate.label.clone(),
            outcome: Outcome::Skipped,
            site: None,
            suggestion: None,
            headers: candidate.headers.iter().map(header_line).collect(),
            notes: candidate.left_out.clone(),
            enabled: candidate.enabled,
        };
        let choice = chosen(i);
        let site = match (&candidate.problem, &candidate.scope) {
            (Some(problem), _) => {
                entry.outcome = Outcome::Refused {
                    why: problem.clone(),
                };
                entries.push(entry);
                continue;
            }
            (None, Scope::Sites { patterns, narrower }) => {
                entry.notes.extend(narrower.iter().cloned());
                // The reader made one candidate per pattern.
                patterns.first().cloned()
            }
            (None, Scope::Refused { why, suggestion }) => {
                entry.suggestion = suggestion.clone();
                match choice.clone().flatten() {
                    Some(site) => Some(site),
                    None => {
                        entry.outcome = Outcome::Refused { why: why.clone() };
                        entries.push(entry);
                        continue;
                    }
                }
            }
        };
        let Some(site) = site else {
            entry.outcome = Outcome::Refused {
                why: text!("import_scope_every_url", ""),
            };
            entries.push(entry);
            continue;
        };
        entry.site = Some(site.clone());
        if choice.is_none() {
            entry.outcome = Outcome::Skipped;
            entries.push(entry);
            continue;
        }
        entry.outcome = merge(state, candidate, &site, &credential_ids);
        if let Some(rule) = match &entry.outcome {
            Outcome::Changed { rule, .. } | Outcome::Unchanged { rule } => state.book.get(*rule),
            Outcome::New => state.book.rules().last(),
            _ => None,
        } {
            entry.site = Some(rule.pattern.to_string());
        }
        entries.push(entry);
    }
    let start = entries.len();
    for (entry, (from, why)) in (start..).zip(&reading.not_imported) {
        entries.push(ImportEntry {
            entry,
            from: from.clone(),
            label: String::new(),
            outcome: Outcome::NotImported { why: why.clone() },
            site: None,
            suggestion: None,
            headers: Vec::new(),
            notes: Vec::new(),
            enabled: false,
        });
    }
    entries
}

/// A header as the preview lists it: its name and, in the words of the
/// rule form's menu, what it sends (never the value).
fn header_line(header: &ImportedHeader) -> Text {
    let kind = match &header.value {
        Some((ValueScheme::Bearer, _)) => text!("ui_bearer_token"),
        Some((ValueScheme::Basic, _)) => text!("ui_basic_user_password"),
        Some((ValueScheme::Token, _)) => text!("ui_token"),
        Some((ValueScheme::Raw, _)) => text!("ui_raw_value"),
        None => text!("ui_remove_header"),
    };
    text!("import_header_line", header.name.as_str(), kind)
}

/// Adds the candidate's rule at `site`, or merges its headers into the rule
/// the user already has there.
fn merge(
    state: &mut State,
    candidate: &Candidate,
    site: &str,
    credential_ids: &[(CredentialId, CredentialId)],
) -> Outcome {
    let rows = |headers: &[ImportedHeader]| -> Vec<HeaderDraft> {
        headers
            .iter()
            .map(|h| match &h.value {
                Some((scheme, secret)) => HeaderDraft {
                    name: h.name.clone(),
                    scheme: scheme.as_str().to_owned(),
                    secret: secret.expose().to_owned(),
                    credential: h.credential.and_then(|old| {
                        credential_ids
                            .iter()
                            .find(|(from, _)| *from == old)
                            .map(|(_, to)| *to)
                    }),
                },
                None => HeaderDraft {
                    name: h.name.clone(),
                    scheme: "remove".to_owned(),
                    ..HeaderDraft::default()
                },
            })
            .collect()
    };
    let (any_site, also_from) = as_drafted(&candidate.initiators);
    let draft = RuleDraft {
        id: None,
        label: candidate.label.clone(),
        pattern: site.to_owned(),
        allow_http: site.starts_with("http://"),
        enabled: candidate.enabled,
        headers: rows(&candidate.headers),
        any_site,
        also_from,
    };
    let canonical = match draft.parse_pattern() {
        Ok(p) => p,
        Err(e) => return Outcome::Refused { why: e.text() },
    };
    // The administrator's policy first: an import is a user's edit.
    if let Err(e) = state.policy.check_site(&canonical, draft.any_site) {
        return Outcome::Refused { why: e.text() };
    }
    let existing = state
        .book
        .rules()
        .iter()
        .find(|r| r.pattern == canonical)
        .cloned();
    let Some(existing) = existing else {
        return match state.book.save(&draft) {
            Ok(_) => Outcome::New,
            Err(e) => Outcome::Refused { why: e.text() },
        };
    };
    // The user's rule keeps its label, switch and policy, and its other
    // headers; the file's headers replace those of the same name.
    let mut headers: Vec<HeaderDraft> = existing
        .headers
        .iter()
        .filter(|a| {
            !draft
                .headers
                .iter()
                .any(|d| a.name().as_str().eq_ignore_ascii_case(&d.name))
        })
        .map(|a| HeaderDraft {
            name: a.name().to_string(),
            scheme: match a {
                HeaderAction::Set { value, .. } => value.scheme.as_str().to_owned(),
                HeaderAction::Remove { .. } => "remove".to_owned(),
            },
            // Blank: the stored secret (and its credential) is kept.
            ..HeaderDraft::default()
        })
        .collect();
    headers.extend(draft.headers);
    let (any_site, also_from) = as_drafted(&existing.initiators);
    let merged = RuleDraft {
        id: Some(existing.id),
        label: existing.label.clone(),
        pattern: existing.pattern.to_string(),
        allow_http: existing.allow_http || draft.allow_http,
        enabled: existing.enabled,
        headers,
        any_site,
        also_from,
    };
    match state.book.save(&merged) {
        Ok(rule) if *rule == existing => Outcome::Unchanged { rule: existing.id },
        Ok(rule) => Outcome::Changed {
            rule: rule.id,
            label: rule.label.clone(),
        },
        Err(e) => Outcome::Refused { why: e.text() },
    }
}

/// A policy as the editor drafts it: "any site", and the "also from" sites.
fn as_drafted(initiators: &Initiators) -> (bool, Vec<String>) {
    match initiators {
        Initiators::AnySite => (true, Vec::new()),
        Initiators::SameSite { also } => (
            false,
            also.iter().map(|s| String::from(s.clone())).collect(),
        ),
    }
}

/// A header value as the other extension stored it (`Bearer abc`), split
/// into a scheme and a secret.
pub fn split_value(value: &str) -> (ValueScheme, &str) {
    let trimmed = value.trim();
    for scheme in [ValueScheme::Bearer, ValueScheme::Token, ValueScheme::Basic] {
        let prefix = match scheme {
            ValueScheme::Bearer => "bearer ",
            ValueScheme::Token => "token ",
            _ => "basic ",
        };
        if trimmed.len() > prefix.len()
            && trimmed.is_char_boundary(prefix.len())
            && trimmed[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            let secret = trimmed[prefix.len()..].trim_start();
            // `Basic` with something that is not base64 of `user:password`
            // stays as it was written.
            let kept = Secret::from_input(secret)
                .ok()
                .and_then(|s| crate::header::HeaderValue::new(scheme, s).ok());
            if kept.is_some() {
                return (scheme, secret);
            }
        }
    }
    (ValueScheme::Raw, trimmed)
}

/// Builds an [`ImportedHeader`] from a name and a value the file holds;
/// `field` names where, for the message. `None` value: a removal.
pub fn header(name: &str, value: Option<&str>, field: &Text) -> Result<ImportedHeader, Text> {
    let header_name = crate::header::HeaderName::new(name.trim())
        .map_err(|e| text!("import_problem_field", field.clone(), e.text()))?;
    let value = match value {
        None => None,
        Some(v) => {
            let (scheme, secret) = split_value(v);
            let secret = Secret::from_input(secret)
                .map_err(|e| text!("import_problem_field", field.clone(), e.text()))?;
            crate::header::HeaderValue::new(scheme, secret.clone())
                .map_err(|e| text!("import_problem_field", field.clone(), e.text()))?;
            Some((scheme, secret))
        }
    };
    Ok(ImportedHeader {
        name: header_name.to_string(),
        value,
        credential: None,
    })
}

/// Expands a candidate whose scope names several sites into one candidate
/// per site, each naming only its own.
pub fn one_per_site(candidate: Candidate, out: &mut Vec<Candidate>) {
    match &candidate.scope {
        Scope::Sites { patterns, narrower } if patterns.len() > 1 => {
            for pattern in patterns {
                out.push(Candidate {
                    scope: Scope::Sites {
                        patterns: vec![pattern.clone()],
                        narrower: narrower.clone(),
                    },
                    ..candidate.clone()
                });
            }
        }
        _ => out.push(candidate),
    }
}
