//! The vault's flows: protect, unlock, lock, change the passphrase, go back
//! to convenience, and the idle lock.
//!
//! Every change of mode is one write of the whole state (the mode, the
//! vault header and every secret, sealed or plain, every key in one
//! `storage.local.set`), so an interrupted change leaves either the old
//! state or the new one, each readable. The session key is written after the state: if the
//! worker stops in between, the vault is merely locked.

use super::{
    apply, error_response, load, save, Platform, RuleEngine, ServiceError, StateStore, Transport,
};
use crate::message::{Response, VaultView};
use crate::protection::{Protection, IDLE_CHOICES};
use crate::store::{State, StoredWrite, STATE_KEY};
use crate::text;
use crate::text::Text;
use crate::vault::{VaultError, VaultHeader, VaultKey};

/// The shortest passphrase accepted for a new vault. Argon2id makes each
/// guess cost about a second in a browser, but a short passphrase is still
/// found by an offline attack on a copied profile.
pub const MIN_PASSPHRASE_CHARS: usize = 10;

fn check_new_passphrase(passphrase: &str) -> Result<(), ServiceError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(ServiceError::Invalid(text!(
            "error_lock_passphrase_too_short",
            MIN_PASSPHRASE_CHARS
        )));
    }
    Ok(())
}

fn check_idle(minutes: Option<u32>) -> Result<(), ServiceError> {
    match minutes {
        Some(m) if !IDLE_CHOICES.contains(&m) => Err(ServiceError::Invalid(text!(
            "error_lock_idle_not_a_choice",
            m
        ))),
        _ => Ok(()),
    }
}

/// Answers with the vault's view after re-reading and re-applying stored
/// state, so the page sees what the browser now does.
async fn settle<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    notice: Text,
) -> Response {
    let state = match load(platform.store).await {
        Ok(state) => state,
        Err(e) => return error_response(&e, &State::default()),
    };
    if let Err(e) = apply(platform.store, platform.engine, &state, platform.clock.now).await {
        return error_response(&e, &state);
    }
    Response::Vault(VaultView::of(&state, Some(notice), platform.clock.now))
}

async fn keep_key<S: StateStore>(store: &S, key: &VaultKey) -> Result<(), ServiceError> {
    store
        .set_session_key(Some(&key.expose_base64_for_session_storage()))
        .await
        .map_err(ServiceError::SessionKey)
}

/// Unset or convenience → protected: a new vault key, every secret sealed
/// under it, in one write; then the key for this session, and the header
/// rules move to session rules.
pub(super) async fn protect<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    passphrase: &str,
    idle_minutes: Option<u32>,
) -> Response {
    let result = async {
        if state.protection.is_protected() {
            return Err(ServiceError::Invalid(text!("error_lock_already_protected")));
        }
        check_new_passphrase(passphrase)?;
        check_idle(idle_minutes)?;
        let (header, key) = VaultHeader::create(passphrase, &mut *platform.rng.borrow_mut())?;
        let mut next = state.clone();
        next.protection = Protection::Protected {
            header: Box::new(header),
            idle_minutes,
        };
        let mut stored = next.encode();
        crate::protection::seal_secrets(&mut stored, &key, &mut *platform.rng.borrow_mut())?;
        // Every key in one call: the mode and the sealed secrets change
        // together, or not at all.
        platform
            .store
            .save(StoredWrite::whole(stored))
            .await
            .map_err(ServiceError::Save)?;
        keep_key(platform.store, &key).await
    }
    .await;
    match result {
        Ok(()) => settle(platform, text!("notice_vault_protected")).await,
        Err(e) => error_response(&e, &state),
    }
}

/// Checks the passphrase against the stored vault (about a second of
/// Argon2id), then keeps the key for this session: the rules come back.
pub(super) async fn unlock<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    passphrase: &str,
) -> Response {
    let Some(header) = state.protection.header() else {
        return error_response(
            &ServiceError::Invalid(text!("error_lock_nothing_to_unlock")),
            &state,
        );
    };
    if !state.locked {
        return Response::Vault(VaultView::of(
            &state,
            Some(text!("notice_vault_already_unlocked")),
            platform.clock.now,
        ));
    }
    let waiting = state.waiting_for_unlock(platform.clock.now).len();
    let result = match header.unlock(passphrase) {
        Ok(key) => keep_key(platform.store, &key).await,
        Err(VaultError::WrongPassphrase) => Err(ServiceError::Invalid(text!(
            "error_lock_unlock_wrong_passphrase"
        ))),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => {
            let notice = match waiting {
                1 => text!("notice_vault_unlocked_one_site"),
                n => text!("notice_vault_unlocked_sites", n),
            };
            settle(platform, notice).await
        }
        Err(e) => error_response(&e, &state),
    }
}

/// Forgets the session key; the next reconcile (right here) removes every
/// rule that sends a value.
pub(super) async fn lock<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
) -> Response {
    if !state.protection.is_protected() {
        return error_response(
            &ServiceError::Invalid(text!("error_lock_nothing_to_lock")),
            &state,
        );
    }
    if let Err(e) = platform.store.set_session_key(None).await {
        return error_response(&ServiceError::SessionKey(e), &state);
    }
    // Tab rules keep their secrets in the session's memory; a lock ends
    // them rather than leave a token readable while locked.
    let no_tab_rules = crate::store::TabRules::default().encode();
    if let Err(e) = platform.store.set_tab_rules(&no_tab_rules).await {
        return error_response(&ServiceError::SessionKey(e), &state);
    }
    settle(platform, text!("notice_vault_locked")).await
}

/// Rewraps the same vault key under a new passphrase: the header alone
/// changes, and it is written with the rest of the state in one write.
pub(super) async fn change_passphrase<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    current: &str,
    new: &str,
) -> Response {
    let result = async {
        let header = state
            .protection
            .header()
            .ok_or_else(|| ServiceError::Invalid(text!("error_lock_no_passphrase_to_change")))?;
        check_new_passphrase(new)?;
        let key = header.unlock(current).map_err(|e| match e {
            VaultError::WrongPassphrase => {
                ServiceError::Invalid(text!("error_lock_change_wrong_passphrase"))
            }
            e => e.into(),
        })?;
        let rewrapped = VaultHeader::rewrap(&key, new, &mut *platform.rng.borrow_mut())?;
        // The secrets must be read with the key before the state is
        // written again: a locked state holds placeholders only.
        keep_key(platform.store, &key).await?;
        let mut next = load(platform.store).await?;
        next.protection = Protection::Protected {
            header: Box::new(rewrapped),
            idle_minutes: state.protection.idle_minutes(),
        };
        save(platform, &state, &next).await
    }
    .await;
    match result {
        Ok(()) => settle(platform, text!("notice_vault_passphrase_changed")).await,
        Err(e) => error_response(&e, &state),
    }
}

/// Protected → convenience (with the passphrase), or unset → convenience:
/// every secret written plain in one write, then the session key dropped,
/// and the rules move to dynamic rules.
pub(super) async fn use_convenience<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    passphrase: &str,
) -> Response {
    let result = async {
        let mut next = match state.protection.header() {
            None => state.clone(),
            Some(header) => {
                let key = header.unlock(passphrase).map_err(|e| match e {
                    VaultError::WrongPassphrase => {
                        ServiceError::Invalid(text!("error_lock_convenience_wrong_passphrase"))
                    }
                    e => e.into(),
                })?;
                keep_key(platform.store, &key).await?;
                load(platform.store).await?
            }
        };
        next.protection = Protection::Convenience;
        save(platform, &state, &next).await?;
        platform
            .store
            .set_session_key(None)
            .await
            .map_err(ServiceError::SessionKey)
    }
    .await;
    match result {
        Ok(()) => settle(platform, text!("notice_vault_convenience")).await,
        Err(e) => error_response(&e, &state),
    }
}

pub(super) async fn set_idle_lock<S: StateStore, E: RuleEngine, T: Transport>(
    platform: &Platform<'_, S, E, T>,
    state: State,
    minutes: Option<u32>,
) -> Response {
    let result = async {
        check_idle(minutes)?;
        let Protection::Protected { header, .. } = &state.protection else {
            return Err(ServiceError::Invalid(text!(
                "error_lock_idle_needs_passphrase"
            )));
        };
        let mut next = state.clone();
        next.protection = Protection::Protected {
            header: header.clone(),
            idle_minutes: minutes,
        };
        if state.locked {
            // Turning idle locking off while locked needs no secret: the
            // sealed secrets are written back as they were read.
            return save_locked_protection(platform, &next.protection).await;
        }
        save(platform, &state, &next).await
    }
    .await;
    let notice = match minutes {
        Some(m) => text!("notice_vault_idle_lock", m),
        None => text!("notice_vault_no_idle_lock"),
    };
    match result {
        Ok(()) => settle(platform, notice).await,
        Err(e) => error_response(&e, &state),
    }
}

/// An export file: rules and accounts without secrets, or with them,
/// sealed under `passphrase` (Argon2id and XChaCha20-Poly1305, like the
/// vault, with a salt of its own), so the file is safe wherever it lands.
pub(super) fn export<S, E, T>(
    platform: &Platform<'_, S, E, T>,
    state: &State,
    passphrase: Option<&str>,
) -> Response {
    let date = platform.clock.now.date();
    let result = match passphrase {
        None => Ok((
            format!("tokenward-{date}.json"),
            crate::protection::export_document(state.encode(), false).to_string(),
        )),
        Some(passphrase) => (|| {
            if state.locked {
                return Err(ServiceError::Locked);
            }
            check_new_passphrase(passphrase)?;
            let document = zeroize::Zeroizing::new(
                crate::protection::export_document(state.encode(), true).to_string(),
            );
            let envelope = crate::vault::seal_export(
                passphrase,
                document.as_bytes(),
                &mut *platform.rng.borrow_mut(),
            )?;
            let text = serde_json::to_string(&envelope).map_err(|e| {
                ServiceError::Invalid(text!("error_lock_export_encoding", e.to_string()))
            })?;
            Ok((format!("tokenward-{date}-with-tokens.json"), text))
        })(),
    };
    match result {
        Ok((file_name, document)) => Response::Export {
            file_name,
            document,
        },
        Err(e) => error_response(&e, state),
    }
}

/// Rewrites only the mode of a locked state, in its head; the sealed
/// secrets stay untouched.
async fn save_locked_protection<S: StateStore, E, T>(
    platform: &Platform<'_, S, E, T>,
    protection: &Protection,
) -> Result<(), ServiceError> {
    let items = platform
        .store
        .load()
        .await
        .map_err(ServiceError::Load)?
        .unwrap_or_default();
    let mut head = items.get(STATE_KEY).cloned().unwrap_or_default();
    let mode = serde_json::to_value(protection)
        .map_err(|e| ServiceError::Invalid(text!("error_lock_mode_encoding", e.to_string())))?;
    if let Some(object) = head.as_object_mut() {
        object.insert("vault".to_owned(), mode);
    }
    let mut write = StoredWrite::default();
    write.set.insert(STATE_KEY.to_owned(), head);
    platform.store.save(write).await.map_err(ServiceError::Save)
}

#[cfg(test)]
mod tests {
    use super::super::account::tests::{bento, logged_in, use_on, TOKEN};
    use super::super::fakes::Fakes;
    use crate::dnr::Rule;
    use crate::message::{Passphrase, Request, Response, VaultView};
    use crate::rules::tests::draft;
    use crate::text::english;

    const PASS: &str = "correct horse battery";
    const RULE_SECRET: &str = "rule-secret-0123456789";

    fn pass(p: &str) -> Passphrase {
        Passphrase(p.to_owned())
    }

    fn values(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .flat_map(|r| r.action.request_headers.iter().flatten())
            .filter_map(|h| h.value.clone())
            .collect()
    }

    fn vault(response: Response) -> VaultView {
        match response {
            Response::Vault(view) => view,
            other => panic!("{other:?}"),
        }
    }

    fn error(response: Response) -> String {
        match response {
            Response::Error { message } => english(&message),
            other => panic!("{other:?}"),
        }
    }

    /// A credential used on a site, a plain rule, then protected.
    fn protected() -> Fakes {
        let fakes = bento();
        let id = logged_in(&fakes);
        assert!(matches!(
            use_on(&fakes, id, "https://*.acme.cloud-apps.bentoml.com"),
            Response::Rules(_)
        ));
        assert!(matches!(
            fakes.handle(Request::SaveRule {
                draft: draft("https://api.example.com", RULE_SECRET)
            }),
            Response::RuleChanged(_)
        ));
        let view = vault(fakes.handle(Request::Protect {
            passphrase: pass(PASS),
            idle_minutes: None,
        }));
        assert_eq!(view.mode, "protected");
        assert!(!view.locked);
        fakes
    }

    fn stored_text(fakes: &Fakes) -> String {
        fakes
            .store
            .value
            .borrow()
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn protect_seals_every_secret_and_moves_rules_to_session() {
        let fakes = protected();
        let text = stored_text(&fakes);
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains(RULE_SECRET), "{text}");
        assert!(text.contains("argon2id"), "{text}");
        assert!(fakes.engine.rules.borrow().is_empty(), "no dynamic rule");
        let session = values(&fakes.engine.session.borrow());
        assert!(session.contains(&format!("Bearer {TOKEN}")), "{session:?}");
        assert!(
            session.contains(&format!("Bearer {RULE_SECRET}")),
            "{session:?}"
        );
        // Unlocked, the state reads as before.
        let state = fakes.state();
        assert_eq!(state.credentials.all()[0].secret.expose(), TOKEN);
    }

    #[test]
    fn lock_stops_every_header_and_unlock_brings_them_back() {
        let fakes = protected();
        let before = fakes.engine.session.borrow().clone();
        let view = vault(fakes.handle(Request::Lock));
        assert!(view.locked);
        assert!(fakes.engine.session.borrow().is_empty());
        assert!(fakes.engine.rules.borrow().is_empty());
        assert_eq!(
            view.waiting,
            [
                "https://*.acme.cloud-apps.bentoml.com/",
                "https://api.example.com/"
            ]
        );
        assert!(fakes.store.session.borrow().is_none());

        let view = vault(fakes.handle(Request::Unlock {
            passphrase: pass(PASS),
        }));
        assert!(!view.locked);
        assert_eq!(
            view.notice.as_ref().map(english).as_deref(),
            Some("Unlocked: 2 sites get their headers again.")
        );
        assert_eq!(*fakes.engine.session.borrow(), before);
    }

    #[test]
    fn locked_refuses_changes_and_secrets_and_saves_nothing() {
        let fakes = protected();
        vault(fakes.handle(Request::Lock));
        let saves = *fakes.store.saves.borrow();
        let stored = stored_text(&fakes);
        for request in [
            Request::SaveRule {
                draft: draft("https://b.example.com", "other-secret-1234"),
            },
            Request::DeleteRule { id: 1 },
            Request::CopyHelpers {
                credential: Some(1),
                url: None,
            },
            Request::ListTokens { credential: 1 },
            Request::UseConvenience {
                passphrase: pass("anything"),
            },
        ] {
            let message = error(fakes.handle(request));
            assert!(message.contains("locked"), "{message}");
        }
        assert_eq!(*fakes.store.saves.borrow(), saves);
        assert_eq!(stored_text(&fakes), stored);
        assert!(fakes.transport.sent.borrow().len() <= 3, "no provider call");
        // Views still answer, with no placeholder passed off as a token.
        assert!(matches!(
            fakes.handle(Request::Accounts),
            Response::Accounts(_)
        ));
    }

    #[test]
    fn a_wrong_passphrase_is_refused_and_changes_nothing() {
        let fakes = protected();
        vault(fakes.handle(Request::Lock));
        let stored = stored_text(&fakes);
        let message = error(fakes.handle(Request::Unlock {
            passphrase: pass("wrong horse battery"),
        }));
        assert!(message.contains("not the one"), "{message}");
        assert!(!message.contains("wrong horse"), "{message}");
        assert!(fakes.store.session.borrow().is_none());
        assert!(fakes.engine.session.borrow().is_empty());
        assert_eq!(stored_text(&fakes), stored);
    }

    #[test]
    fn change_passphrase_keeps_every_secret() {
        let fakes = protected();
        vault(fakes.handle(Request::Lock));
        let message = error(fakes.handle(Request::ChangePassphrase {
            current: pass("not the passphrase"),
            new: pass("a new passphrase here"),
        }));
        assert!(message.contains("locked"), "{message}");
        vault(fakes.handle(Request::Unlock {
            passphrase: pass(PASS),
        }));
        let message = error(fakes.handle(Request::ChangePassphrase {
            current: pass("not the passphrase"),
            new: pass("a new passphrase here"),
        }));
        assert!(message.contains("not right"), "{message}");
        vault(fakes.handle(Request::ChangePassphrase {
            current: pass(PASS),
            new: pass("a new passphrase here"),
        }));
        vault(fakes.handle(Request::Lock));
        error(fakes.handle(Request::Unlock {
            passphrase: pass(PASS),
        }));
        vault(fakes.handle(Request::Unlock {
            passphrase: pass("a new passphrase here"),
        }));
        assert_eq!(fakes.state().credentials.all()[0].secret.expose(), TOKEN);
    }

    #[test]
    fn convenience_writes_plain_and_uses_dynamic_rules() {
        let fakes = protected();
        let message = error(fakes.handle(Request::UseConvenience {
            passphrase: pass("not the passphrase"),
        }));
        assert!(message.contains("stays protected"), "{message}");
        let view = vault(fakes.handle(Request::UseConvenience {
            passphrase: pass(PASS),
        }));
        assert_eq!(view.mode, "convenience");
        assert!(stored_text(&fakes).contains(TOKEN));
        assert!(fakes.engine.session.borrow().is_empty());
        assert!(values(&fakes.engine.rules.borrow()).contains(&format!("Bearer {TOKEN}")));
        assert!(fakes.store.session.borrow().is_none());
    }

    #[test]
    fn an_interrupted_protect_leaves_the_old_state() {
        let fakes = bento();
        logged_in(&fakes);
        let stored = stored_text(&fakes);
        *fakes.store.fail_saves.borrow_mut() = Some("QUOTA_BYTES quota exceeded".into());
        let message = error(fakes.handle(Request::Protect {
            passphrase: pass(PASS),
            idle_minutes: Some(15),
        }));
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(stored_text(&fakes), stored);
        assert!(fakes.store.session.borrow().is_none());
        assert_eq!(fakes.state().protection.name(), "convenience");
    }

    #[test]
    fn a_fresh_install_keeps_no_secret_until_the_user_chooses() {
        let fakes = Fakes::fresh();
        for request in [
            Request::SaveRule {
                draft: draft("https://a.example.com", RULE_SECRET),
            },
            Request::Login {
                login: crate::message::LoginDraft {
                    provider: crate::provider::Provider::BentoCloud,
                    kind: String::new(),
                    endpoint: String::new(),
                    secret: TOKEN.into(),
                    name: String::new(),
                },
            },
        ] {
            let message = error(fakes.handle(request));
            assert!(
                message.starts_with("Choose how Tokenward keeps"),
                "{message}"
            );
        }
        assert!(fakes.transport.sent.borrow().is_empty());
        assert_eq!(*fakes.store.saves.borrow(), 0);
        // A rule that only removes a header keeps no secret.
        let mut remove = draft("https://a.example.com", "");
        remove.headers[0].scheme = "remove".into();
        assert!(matches!(
            fakes.handle(Request::SaveRule { draft: remove }),
            Response::RuleChanged(_)
        ));
        assert_eq!(vault(fakes.handle(Request::VaultStatus)).mode, "unset");
        vault(fakes.handle(Request::Protect {
            passphrase: pass(PASS),
            idle_minutes: None,
        }));
        assert!(matches!(
            fakes.handle(Request::SaveRule {
                draft: draft("https://b.example.com", RULE_SECRET)
            }),
            Response::RuleChanged(_)
        ));
        assert!(!stored_text(&fakes).contains(RULE_SECRET));
    }

    #[test]
    fn short_passphrases_and_odd_idle_times_are_refused() {
        let fakes = bento();
        let message = error(fakes.handle(Request::Protect {
            passphrase: pass("short"),
            idle_minutes: None,
        }));
        assert!(message.contains("at least 10"), "{message}");
        let message = error(fakes.handle(Request::Protect {
            passphrase: pass(PASS),
            idle_minutes: Some(7),
        }));
        assert!(message.contains("7 minutes"), "{message}");
        assert_eq!(*fakes.store.saves.borrow(), 0);
    }

    #[test]
    fn exports_carry_tokens_only_sealed_under_a_passphrase() {
        let fakes = protected();
        let Response::Export {
            file_name,
            document,
        } = fakes.handle(Request::Export { passphrase: None })
        else {
            panic!("no export")
        };
        assert!(file_name.ends_with(".json"), "{file_name}");
        assert!(!document.contains(TOKEN) && !document.contains(RULE_SECRET));
        assert!(document.contains("api.example.com"), "{document}");

        let message = error(fakes.handle(Request::Export {
            passphrase: Some(pass("short")),
        }));
        assert!(message.contains("at least 10"), "{message}");
        let Response::Export {
            file_name,
            document,
        } = fakes.handle(Request::Export {
            passphrase: Some(pass("export passphrase")),
        })
        else {
            panic!("no export")
        };
        assert!(file_name.ends_with("-with-tokens.json"), "{file_name}");
        assert!(!document.contains(TOKEN) && !document.contains(RULE_SECRET));
        let envelope =
            crate::vault::ExportEnvelope::from_json(&document).expect("an export envelope");
        let opened = crate::vault::open_export("export passphrase", &envelope).expect("opens");
        let text = String::from_utf8(opened.to_vec()).expect("utf-8");
        assert!(text.contains(TOKEN) && text.contains(RULE_SECRET), "{text}");
        assert!(crate::vault::open_export("another passphrase", &envelope).is_err());

        // Locked: the plain export still works, the one with tokens cannot.
        vault(fakes.handle(Request::Lock));
        assert!(matches!(
            fakes.handle(Request::Export { passphrase: None }),
            Response::Export { .. }
        ));
        let message = error(fakes.handle(Request::Export {
            passphrase: Some(pass("export passphrase")),
        }));
        assert!(message.contains("locked"), "{message}");
    }

    #[test]
    fn idle_lock_is_kept_with_the_vault() {
        let fakes = protected();
        let view = vault(fakes.handle(Request::SetIdleLock { minutes: Some(15) }));
        assert_eq!(view.idle_minutes, Some(15));
        vault(fakes.handle(Request::Lock));
        let view = vault(fakes.handle(Request::SetIdleLock { minutes: None }));
        assert_eq!(view.idle_minutes, None);
        assert!(view.locked);
        vault(fakes.handle(Request::Unlock {
            passphrase: pass(PASS),
        }));
        assert_eq!(fakes.state().credentials.all()[0].secret.expose(), TOKEN);
    }
}
