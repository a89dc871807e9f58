//! How secrets are kept in stored state: the protection mode, and the
//! sealing of every secret in the stored JSON under the vault key.
//!
//! Three modes:
//! - **unset**: a state written before the user chose (or by a version
//!   without the vault). Secrets are plain, and the pages ask the user to
//!   choose, protected first.
//! - **convenience**: no passphrase. Secrets are plain in `storage.local`,
//!   and header rules are dynamic, so they survive a restart; anyone with
//!   the browser profile can read the tokens.
//! - **protected**: every secret in `storage.local` is sealed
//!   ([`crate::vault::seal`]) under the vault key, which is itself sealed
//!   under the passphrase in [`VaultHeader`]. Unlocked, the key lives in
//!   `storage.session` only, and header rules are session rules only: both
//!   stay in memory, never on disk, and both are gone when the browser
//!   closes, which locks the vault.
//!
//! Sealing works on the stored JSON, not on the types: the rule book and
//! the credentials are the same in every mode, and this module is the one
//! place that knows where their secrets sit (`rules[].headers[].value.secret`
//! and `credentials[].secret`). Each secret's authenticated data names its
//! place (`credential:3`, `rule:7:0`), so a tampered store cannot move a
//! sealed token to another site.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::vault::{self, MalformedPart, RngSource, Sealed, VaultError, VaultHeader, VaultKey};

/// What stands in for a sealed secret while the vault is locked, so the
/// rest of the state (sites, accounts, expiry) still reads. It never
/// reaches a rule: a locked state installs no header that sets a value, and
/// refuses every change.
pub const LOCKED_SECRET: &str = "locked";

/// The `storage.session` key holding the unlocked vault key (base64).
pub const SESSION_KEY: &str = "vaultKey";

/// The idle times the popup offers, in minutes.
pub const IDLE_CHOICES: [u32; 5] = [5, 15, 30, 60, 240];

/// How secrets are kept. Read by its tag through a `Value`
/// (`json::read_tagged`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Protection {
    #[default]
    Unset,
    Convenience,
    #[serde(rename_all = "camelCase")]
    Protected {
        header: Box<VaultHeader>,
        /// Lock after this many minutes without input; `None` locks only
        /// by hand and when the browser closes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idle_minutes: Option<u32>,
    },
}

impl<'de> Deserialize<'de> for Protection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Protected {
            header: Box<VaultHeader>,
            #[serde(default)]
            idle_minutes: Option<u32>,
        }
        crate::json::read_tagged(d, "mode", |tag, fields| match tag {
            "unset" => Ok(Protection::Unset),
            "convenience" => Ok(Protection::Convenience),
            "protected" => {
                let Protected {
                    header,
                    idle_minutes,
                } = crate::json::read(fields)?;
                Ok(Protection::Protected {
                    header,
                    idle_minutes,
                })
            }
            _ => Err(serde::de::Error::unknown_variant(
                tag,
                &["unset", "convenience", "protected"],
            )),
        })
    }
}

impl Protection {
    pub fn is_protected(&self) -> bool {
        matches!(self, Protection::Protected { .. })
    }

    pub fn header(&self) -> Option<&VaultHeader> {
        match self {
            Protection::Protected { header, .. } => Some(header),
            _ => None,
        }
    }

    pub fn idle_minutes(&self) -> Option<u32> {
        match self {
            Protection::Protected { idle_minutes, .. } => *idle_minutes,
            _ => None,
        }
    }

    /// The mode's name in views: `unset`, `convenience` or `protected`.
    pub fn name(&self) -> &'static str {
        match self {
            Protection::Unset => "unset",
            Protection::Convenience => "convenience",
            Protection::Protected { .. } => "protected",
        }
    }
}

/// Seals every plain secret of an encoded state under `key`, in place.
pub fn seal_secrets(
    state: &mut Value,
    key: &VaultKey,
    rng: &mut (impl RngSource + ?Sized),
) -> Result<(), VaultError> {
    for_each_secret(state, |place, slot| {
        let Value::String(plain) = slot else {
            // Already sealed: nothing to do.
            return Ok(());
        };
        let sealed = vault::seal(key, plain.as_bytes(), place.as_bytes(), rng)?;
        *slot = serde_json::to_value(sealed)
            .map_err(|_| VaultError::Malformed(MalformedPart::Sealed))?;
        Ok(())
    })
}

/// Opens every sealed secret of an encoded state in place: with `key`, to
/// its plain text; without, to [`LOCKED_SECRET`]. Returns whether any
/// secret was sealed.
pub fn open_secrets(state: &mut Value, key: Option<&VaultKey>) -> Result<bool, VaultError> {
    let mut any = false;
    for_each_secret(state, |place, slot| {
        if slot.is_string() {
            return Ok(());
        }
        any = true;
        let plain = match key {
            None => LOCKED_SECRET.to_owned(),
            Some(key) => {
                let sealed: Sealed = crate::json::read(slot)
                    .map_err(|_| VaultError::Malformed(MalformedPart::SealedSecret))?;
                let bytes = vault::open(key, &sealed, place.as_bytes())?;
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| VaultError::Malformed(MalformedPart::SealedSecretText))?
            }
        };
        *slot = Value::String(plain);
        Ok(())
    })?;
    Ok(any)
}

/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "tokenward-export";

/// An export of an encoded state: rules and accounts, and their secrets only when
/// `with_secrets` (the caller then seals the whole file under a passphrase,
/// [`crate::vault::seal_export`]). Never the vault header, and never the
/// entries kept aside as unreadable, which may hold anything.
pub fn export_document(mut stored: Value, with_secrets: bool) -> Value {
    if let Some(object) = stored.as_object_mut() {
        for kept_aside in ["vault", "unreadable", "unreadableCredentials", "index"] {
            object.remove(kept_aside);
        }
    }
    if !with_secrets {
        // Infallible: the visitor never fails.
        let _ = for_each_secret(&mut stored, |_, slot| {
            *slot = Value::Null;
            Ok(())
        });
    }
    serde_json::json!({
        "format": EXPORT_FORMAT,
        "version": 1,
        "secrets": with_secrets,
        "state": stored,
    })
}

/// Calls `visit` with the place and the value of every secret in an encoded
/// state. The places are stable: ids never change and never get reused.
fn for_each_secret(
    state: &mut Value,
    mut visit: impl FnMut(&str, &mut Value) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    if let Some(credentials) = state.get_mut("credentials").and_then(Value::as_array_mut) {
        for credential in credentials {
            let id = credential.get("id").and_then(Value::as_u64).unwrap_or(0);
            if let Some(slot) = credential.get_mut("secret") {
                visit(&format!("credential:{id}"), slot)?;
            }
            if let Some(slot) = credential.get_mut("refreshToken") {
                visit(&format!("credential:{id}:refresh"), slot)?;
            }
        }
    }
    if let Some(rules) = state.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules {
            let id = rule.get("id").and_then(Value::as_u64).unwrap_or(0);
            let Some(headers) = rule.get_mut("headers").and_then(Value::as_array_mut) else {
                continue;
            };
            for (n, header) in headers.iter_mut().enumerate() {
                if let Some(slot) = header.get_mut("value").and_then(|v| v.get_mut("secret")) {
                    visit(&format!("rule:{id}:{n}"), slot)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::fakes::CountingRng;
    use serde_json::json;

    /// The stored enums read by their tag through a `Value`
    /// (`json::read_tagged`), and a credential, whose info shares its map
    /// with its secrets: every variant reads back in any key order, both
    /// through a `Value` and streaming, and with a key from a later version.
    #[test]
    fn stored_tagged_values_read_back_in_any_key_order() {
        use crate::credential::{
            Credential, CredentialKind, Deployments, Endpoint, Provider, Renewal,
        };
        use crate::header::{HeaderName, HeaderValue, Secret, ValueScheme};
        use crate::initiator::{InitiatorSite, Initiators};
        use crate::json::check::reads_back;
        use crate::rules::HeaderAction;

        let secret = |s: &str| Secret::from_input(s).expect("test setup");
        let name = |n: &str| HeaderName::new(n).expect("test setup");
        let (header, _) =
            VaultHeader::create("stored pass", &mut CountingRng(0)).expect("a vault header");
        for protection in [
            Protection::Unset,
            Protection::Convenience,
            Protection::Protected {
                header: Box::new(header.clone()),
                idle_minutes: None,
            },
            Protection::Protected {
                header: Box::new(header),
                idle_minutes: Some(15),
            },
        ] {
            reads_back(&protection);
        }
        for action in [
            HeaderAction::Set {
                name: name("Authorization"),
                value: HeaderValue::new(ValueScheme::Bearer, secret("token-0123"))
                    .expect("test setup"),
                credential: None,
            },
            HeaderAction::Set {
                name: name("X-Api-Key"),
                value: HeaderValue::new(ValueScheme::Raw, secret("key-0123")).expect("test setup"),
                credential: Some(4),
            },
            HeaderAction::Remove {
                name: name("Cookie"),
            },
        ] {
            reads_back(&action);
        }
        for initiators in [
            Initiators::SameSite { also: Vec::new() },
            Initiators::SameSite {
                also: vec![InitiatorSite::parse("https://app.example.com").expect("test setup")],
            },
            Initiators::AnySite,
        ] {
            reads_back(&initiators);
        }
        let kinds = [
            CredentialKind::PersonalAccessToken,
            CredentialKind::ApiToken {
                scopes: Vec::new(),
                deployments: None,
            },
            CredentialKind::ApiToken {
                scopes: vec!["api".into()],
                deployments: Some(Deployments::Chosen(vec!["summarize".into()])),
            },
            CredentialKind::ApiToken {
                scopes: Vec::new(),
                deployments: Some(Deployments::All),
            },
            CredentialKind::KnowledgeBoxKey,
            CredentialKind::NuaKey,
            CredentialKind::UserToken,
            CredentialKind::OpenId {
                subject: "user-1".into(),
            },
        ];
        for kind in kinds {
            reads_back(&kind);
            let mut credential = Credential::new(
                3,
                Provider::Jina,
                Endpoint::default_for(Provider::Jina).expect("test setup"),
                kind,
                secret("jina_0123456789"),
            );
            reads_back(&credential);
            credential.refresh_token = Some(secret("refresh-0123"));
            credential.info.renewal = Some(Renewal {
                client_id: "tokenward".into(),
                token_endpoint: "https://id.example.com/token".into(),
                failed: None,
                retry_at: None,
            });
            reads_back(&credential);
        }
    }

    fn key(byte: u8) -> VaultKey {
        VaultKey::from_session_storage_bytes(&[byte; 32]).expect("test setup")
    }

    fn state() -> Value {
        json!({
            "schema": 2,
            "credentials": [
                {"id": 3, "provider": "jina", "secret": "jina_secret_one"},
                {"id": 5, "provider": "openId", "secret": "oidc_access", "refreshToken": "oidc_refresh"}
            ],
            "rules": [{"id": 7, "pattern": "https://a.example/", "headers": [
                {"op": "set", "name": "Authorization", "value": {"scheme": "bearer", "secret": "tok-rule-seven"}},
                {"op": "remove", "name": "Cookie"}
            ]}]
        })
    }

    #[test]
    fn sealed_state_holds_no_secret_and_opens_back() {
        let mut v = state();
        seal_secrets(&mut v, &key(1), &mut CountingRng(0)).expect("test setup");
        let text = v.to_string();
        assert!(!text.contains("jina_secret_one"), "{text}");
        assert!(!text.contains("tok-rule-seven"), "{text}");
        assert!(!text.contains("oidc_refresh"), "{text}");
        assert_eq!(v["credentials"][0]["provider"], "jina");
        assert_eq!(open_secrets(&mut v, Some(&key(1))), Ok(true));
        assert_eq!(v, state());
    }

    /// What the store really writes for a credential with a refresh token
    /// is sealed whole: the places above are the ones serde writes.
    #[test]
    fn a_stored_refresh_token_is_sealed() {
        use crate::credential::{Credential, CredentialKind, Endpoint};
        use crate::header::Secret;
        let mut state = crate::store::State::default();
        let mut c = Credential::new(
            0,
            crate::provider::Provider::Nuclia,
            Endpoint::new("https://accounts.progress.cloud").expect("test setup"),
            CredentialKind::UserToken,
            Secret::from_input("ory_at_access").expect("test setup"),
        );
        c.refresh_token = Some(Secret::from_input("ory_rt_refresh").expect("test setup"));
        state.credentials.add(c);
        let mut stored = state.encode();
        seal_secrets(&mut stored, &key(1), &mut CountingRng(0)).expect("test setup");
        let text = stored.to_string();
        assert!(!text.contains("ory_at_access"), "{text}");
        assert!(!text.contains("ory_rt_refresh"), "{text}");
        assert_eq!(open_secrets(&mut stored, Some(&key(1))), Ok(true));
        let back = crate::store::State::decode(Some(stored)).expect("decode");
        assert_eq!(
            back.credentials.all()[0]
                .refresh_token
                .as_ref()
                .map(Secret::expose),
            Some("ory_rt_refresh")
        );
    }

    #[test]
    fn locked_opens_to_the_placeholder_and_a_wrong_key_fails() {
        let mut sealed = state();
        seal_secrets(&mut sealed, &key(1), &mut CountingRng(0)).expect("test setup");
        let mut locked = sealed.clone();
        assert_eq!(open_secrets(&mut locked, None), Ok(true));
        assert_eq!(locked["credentials"][0]["secret"], LOCKED_SECRET);
        assert_eq!(locked["credentials"][1]["refreshToken"], LOCKED_SECRET);
        assert_eq!(
            locked["rules"][0]["headers"][0]["value"]["secret"],
            LOCKED_SECRET
        );
        let mut wrong = sealed.clone();
        assert_eq!(
            open_secrets(&mut wrong, Some(&key(2))),
            Err(VaultError::Damaged)
        );
    }

    #[test]
    fn a_sealed_secret_moved_to_another_place_does_not_open() {
        let mut v = state();
        v["credentials"]
            .as_array_mut()
            .expect("test setup")
            .push(json!({"id": 4, "secret": "other"}));
        seal_secrets(&mut v, &key(1), &mut CountingRng(0)).expect("test setup");
        let moved = v["credentials"][0]["secret"].clone();
        v["credentials"][2]["secret"] = moved;
        assert_eq!(
            open_secrets(&mut v, Some(&key(1))),
            Err(VaultError::Damaged)
        );
        // A refresh token is sealed to its own place too: swapped with the
        // access token of the same credential, neither opens.
        let mut v = state();
        seal_secrets(&mut v, &key(1), &mut CountingRng(0)).expect("test setup");
        let refresh = v["credentials"][1]["refreshToken"].clone();
        v["credentials"][1]["refreshToken"] = v["credentials"][1]["secret"].clone();
        v["credentials"][1]["secret"] = refresh;
        assert_eq!(
            open_secrets(&mut v, Some(&key(1))),
            Err(VaultError::Damaged)
        );
    }

    #[test]
    fn plain_state_is_untouched() {
        let mut v = state();
        assert_eq!(open_secrets(&mut v, None), Ok(false));
        assert_eq!(v, state());
    }

    #[test]
    fn exports_leave_secrets_out_unless_asked() {
        let mut state = crate::store::State::decode(Some(json!({
            "schema": 2, "nextId": 8,
            "rules": [{"id": 7, "label": "", "pattern": "https://a.example/", "allowHttp": false,
                       "enabled": true, "headers": [{"op": "set", "name": "Authorization",
                       "value": {"scheme": "bearer", "secret": "tok-rule-seven"}}]}],
            "unreadable": [{"pattern": "*", "secret": "kept-aside-secret"}],
        })))
        .expect("test setup");
        state.protection = Protection::Convenience;
        let plain = export_document(state.encode(), false).to_string();
        assert!(!plain.contains("tok-rule-seven"), "{plain}");
        assert!(!plain.contains("kept-aside-secret"), "{plain}");
        assert!(plain.contains("https://a.example/"), "{plain}");
        assert!(!plain.contains("convenience"), "{plain}");
        let full = export_document(state.encode(), true).to_string();
        assert!(full.contains("tok-rule-seven"), "{full}");
        assert!(!full.contains("kept-aside-secret"), "{full}");
    }

    #[test]
    fn protection_json_shape() {
        assert_eq!(
            serde_json::to_value(Protection::Convenience).expect("test setup"),
            json!({"mode": "convenience"})
        );
        let unset: Protection =
            serde_json::from_value(json!({"mode": "unset"})).expect("test setup");
        assert_eq!(unset, Protection::Unset);
    }
}
