//! The storage schema: how the rule book is kept in `storage.local`.
//!
//! Stored state is versioned. A rule that no longer validates (written by an
//! older version with looser checks, or edited by hand) is kept aside,
//! verbatim, and written back unchanged: reading never loses data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::credential::{Credential, CredentialId, Credentials, Timestamp};
use crate::header::HeaderAction;
use crate::pattern::{ParseOptions, SitePattern};
use crate::protection::Protection;
use crate::reminder::Reminded;
use crate::rules::{RuleBook, SiteRule, SiteRuleId};

/// The `storage.local` key holding the whole state. One key, so one write
/// is one atomic change.
pub const STATE_KEY: &str = "state";
/// 2 added credentials; a schema 1 state reads as having none.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the saved settings come from a newer Tokenward (schema {0}); update the extension, nothing was changed")]
    NewerSchema(u32),
    #[error("the saved settings are not readable ({0}); nothing was changed")]
    Unreadable(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredState {
    schema: u32,
    next_id: SiteRuleId,
    rules: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<Value>,
    #[serde(default = "first_id")]
    next_credential_id: CredentialId,
    #[serde(default)]
    credentials: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unreadable_credentials: Vec<Value>,
    /// How the secrets above are kept; absent in states written before the
    /// vault, which read as [`Protection::Unset`].
    #[serde(default)]
    vault: Protection,
    #[serde(default, skip_serializing_if = "Reminded::is_empty")]
    reminded: Reminded,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reminders_off: bool,
}

fn first_id() -> CredentialId {
    1
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRule {
    id: SiteRuleId,
    #[serde(default)]
    label: String,
    pattern: String,
    #[serde(default)]
    allow_http: bool,
    enabled: bool,
    headers: Vec<HeaderAction>,
}

/// The stored state, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub book: RuleBook,
    /// Stored rules that did not validate, kept verbatim.
    pub unreadable: Vec<Value>,
    pub credentials: Credentials,
    /// Stored credentials that did not validate, kept verbatim.
    pub unreadable_credentials: Vec<Value>,
    pub protection: Protection,
    /// The expiry reminders already shown, by credential.
    pub reminded: Reminded,
    /// The user turned expiry reminders off.
    pub reminders_off: bool,
    /// Not stored: the state was read while the vault was locked, so its
    /// secrets are [`crate::protection::LOCKED_SECRET`] placeholders. Such
    /// a state is shown, never saved, and installs no header value.
    pub locked: bool,
}

impl State {
    /// Decodes what `storage.local.get(STATE_KEY)` returned; `None` is a
    /// fresh install.
    pub fn decode(stored: Option<Value>) -> Result<State, StoreError> {
        let Some(value) = stored else {
            return Ok(State::default());
        };
        let schema = value.get("schema").and_then(Value::as_u64).unwrap_or(0);
        if schema > u64::from(SCHEMA_VERSION) {
            return Err(StoreError::NewerSchema(
                u32::try_from(schema).unwrap_or(u32::MAX),
            ));
        }
        let stored: StoredState =
            serde_json::from_value(value).map_err(|e| StoreError::Unreadable(e.to_string()))?;
        let mut state = State {
            book: RuleBook {
                next_id: stored.next_id.max(1),
                rules: Vec::with_capacity(stored.rules.len()),
            },
            unreadable: stored.unreadable,
            credentials: Credentials {
                next_id: stored.next_credential_id.max(1),
                items: Vec::with_capacity(stored.credentials.len()),
            },
            unreadable_credentials: stored.unreadable_credentials,
            protection: stored.vault,
            reminded: stored.reminded,
            reminders_off: stored.reminders_off,
            locked: false,
        };
        for raw in stored.credentials {
            match serde_json::from_value::<Credential>(raw.clone()) {
                Ok(c) if state.credentials.get(c.info.id).is_none() => {
                    let next = &mut state.credentials.next_id;
                    *next = (*next).max(c.info.id.saturating_add(1));
                    state.credentials.items.push(c);
                }
                _ => state.unreadable_credentials.push(raw),
            }
        }
        for raw in stored.rules {
            match decode_rule(&raw) {
                Some(rule) if state.book.get(rule.id).is_none() => {
                    state.book.next_id = state.book.next_id.max(rule.id.saturating_add(1));
                    state.book.rules.push(rule);
                }
                _ => state.unreadable.push(raw),
            }
        }
        Ok(state)
    }

    pub fn encode(&self) -> Value {
        let rules = self.book.rules().iter().map(encode_rule).collect();
        let stored = StoredState {
            schema: SCHEMA_VERSION,
            next_id: self.book.next_id,
            rules,
            unreadable: self.unreadable.clone(),
            next_credential_id: self.credentials.next_id,
            credentials: self
                .credentials
                .all()
                .iter()
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .collect(),
            unreadable_credentials: self.unreadable_credentials.clone(),
            vault: self.protection.clone(),
            reminded: self.reminded.clone(),
            reminders_off: self.reminders_off,
        };
        serde_json::to_value(stored).unwrap_or(Value::Null)
    }
}

impl State {
    /// The rules as the browser should apply them at `now`: without the
    /// headers of expired or deleted credentials.
    pub fn rules_in_force(&self, now: Timestamp) -> RuleBook {
        let mut book = self.book.in_force(|id| self.credentials.usable(id, now));
        if self.locked {
            // Locked, every value is a placeholder: keep only the rules
            // that set nothing (removals).
            book.rules.retain(|r| {
                !r.headers
                    .iter()
                    .any(|h| matches!(h, HeaderAction::Set { .. }))
            });
        }
        book
    }

    /// Rules that send a secret and wait for an unlock: enabled, with a
    /// header value, while the vault is locked.
    pub fn waiting_for_unlock(&self) -> Vec<&SiteRule> {
        if !self.locked {
            return Vec::new();
        }
        self.book
            .rules()
            .iter()
            .filter(|r| {
                r.enabled
                    && r.headers
                        .iter()
                        .any(|h| matches!(h, HeaderAction::Set { .. }))
            })
            .collect()
    }
}

fn decode_rule(raw: &Value) -> Option<SiteRule> {
    let stored: StoredRule = serde_json::from_value(raw.clone()).ok()?;
    let pattern = SitePattern::parse(
        &stored.pattern,
        ParseOptions {
            allow_http: stored.allow_http,
        },
    )
    .ok()?;
    crate::header::check_actions(&stored.headers).ok()?;
    Some(SiteRule {
        id: stored.id,
        label: stored.label,
        pattern,
        allow_http: stored.allow_http,
        enabled: stored.enabled,
        headers: stored.headers,
    })
}

fn encode_rule(rule: &SiteRule) -> Value {
    let stored = StoredRule {
        id: rule.id,
        label: rule.label.clone(),
        pattern: rule.pattern.to_string(),
        allow_http: rule.allow_http,
        enabled: rule.enabled,
        headers: rule.headers.clone(),
    };
    serde_json::to_value(stored).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let mut state = State::default();
        for p in ["https://a.example", "http://localhost:3000/v1"] {
            assert!(state.book.save(&draft(p, "tok")).is_ok());
        }
        let encoded = state.encode();
        assert_eq!(State::decode(Some(encoded.clone())), Ok(state));
        assert_eq!(encoded["schema"], json!(2));
        assert_eq!(
            encoded["rules"][1],
            json!({
                "id": 2, "label": "", "pattern": "http://localhost:3000/v1/", "allowHttp": false, "enabled": true,
                "headers": [{"op": "set", "name": "Authorization", "value": {"scheme": "bearer", "secret": "tok"}}]
            })
        );
    }

    #[test]
    fn a_fresh_install_is_empty() {
        assert_eq!(State::decode(None), Ok(State::default()));
    }

    #[test]
    fn invalid_rules_are_kept_aside_not_lost() {
        let bad = json!({"id": 2, "pattern": "*", "enabled": true, "headers": []});
        let stored = json!({
            "schema": 1, "nextId": 3,
            "rules": [
                {"id": 1, "pattern": "https://a.example/", "enabled": true,
                 "headers": [{"op": "remove", "name": "X-A"}]},
                bad
            ]
        });
        let state = State::decode(Some(stored)).unwrap_or_default();
        assert_eq!(state.book.rules().len(), 1);
        assert_eq!(state.unreadable, std::slice::from_ref(&bad));
        assert_eq!(
            state.encode()["unreadable"],
            json!([bad]),
            "written back verbatim"
        );
    }

    #[test]
    fn newer_or_garbage_state_is_refused() {
        assert_eq!(
            State::decode(Some(json!({"schema": 9, "nextId": 1, "rules": []}))),
            Err(StoreError::NewerSchema(9))
        );
        assert!(matches!(
            State::decode(Some(json!("garbage"))),
            Err(StoreError::Unreadable(_))
        ));
    }

    #[test]
    fn next_id_never_falls_behind_stored_ids() {
        let stored = json!({"schema": 1, "nextId": 1, "rules": [
            {"id": 5, "pattern": "https://a.example/", "enabled": true, "headers": [{"op": "remove", "name": "X-A"}]}
        ]});
        let mut state = State::decode(Some(stored)).unwrap_or_default();
        assert_eq!(
            state
                .book
                .save(&draft("https://b.example", "t"))
                .map(|r| r.id),
            Ok(6)
        );
    }
}
