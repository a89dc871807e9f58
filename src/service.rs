//! The background's logic, free of IO: answer a page's request, and
//! reconcile the browser's rules with stored state.
//!
//! The browser reaches this module only through [`StateStore`] and
//! [`RuleEngine`]; `src/web/` implements them over `storage.local` and
//! `declarativeNetRequest`, and the tests here over memory. Nothing is kept
//! between calls: every call reads stored state, so a service worker that
//! was stopped in between loses nothing.

use serde_json::Value;

use crate::compile::{self, CompileError, Limits};
use crate::dnr::{Rule, UpdateRuleOptions};
use crate::header::HeaderAction;
use crate::message::{Request, Response, RulesView, SiteView};
use crate::rules::{RuleError, SiteRuleId};
use crate::store::{State, StoreError};

/// An error reported by the browser, as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

/// Where state is kept: `storage.local` in the browser.
// These traits are implemented on one thread (wasm, or a test), so their
// futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait StateStore {
    async fn load(&self) -> Result<Option<Value>, PlatformError>;
    async fn save(&self, state: Value) -> Result<(), PlatformError>;
}

/// The browser's rule set that carries our headers.
#[allow(async_fn_in_trait)]
pub trait RuleEngine {
    async fn installed(&self) -> Result<Vec<Rule>, PlatformError>;
    async fn update(&self, update: &UpdateRuleOptions) -> Result<(), PlatformError>;
    fn limits(&self) -> Limits;
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
}

/// What a reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub added: usize,
    pub removed: usize,
}

/// Answers one page request. Errors become [`Response::Error`] with a
/// message fit for the user, with any secret the browser echoed redacted.
pub async fn handle<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
    request: Request,
) -> Response {
    let mut state = match load(store).await {
        Ok(state) => state,
        Err(e) => return error_response(&e, &State::default()),
    };
    let result = match request {
        Request::ListRules => Ok(None),
        Request::SiteStatus { url } => return Response::Site(SiteView::of(&state.book, &url)),
        Request::SaveRule { draft } => {
            mutate(store, engine, &mut state, |book| {
                book.save(&draft).map(|r| Some(r.id))
            })
            .await
        }
        Request::SetEnabled { id, enabled } => {
            mutate(store, engine, &mut state, |book| {
                book.set_enabled(id, enabled).map(|_| None)
            })
            .await
        }
        Request::DeleteRule { id } => {
            mutate(store, engine, &mut state, |book| {
                book.delete(id).map(|_| None)
            })
            .await
        }
    };
    match result {
        Ok(saved) => Response::Rules(RulesView::of(
            &state.book,
            saved,
            state.unreadable.len(),
            engine.limits(),
        )),
        Err(e) => error_response(&e, &state),
    }
}

/// Makes the browser's rules equal to what stored state compiles to, in one
/// update. Safe to call at any time and any number of times.
pub async fn reconcile<S: StateStore, E: RuleEngine>(
    store: &S,
    engine: &E,
) -> Result<Reconciled, ServiceError> {
    let state = load(store).await?;
    apply(engine, &state).await
}

async fn load<S: StateStore>(store: &S) -> Result<State, ServiceError> {
    let stored = store.load().await.map_err(ServiceError::Load)?;
    Ok(State::decode(stored)?)
}

/// Changes the book, checks it still compiles, saves it, then applies it.
/// A refused change or a failed save leaves stored state and the browser as
/// they were.
async fn mutate<S, E, F>(
    store: &S,
    engine: &E,
    state: &mut State,
    change: F,
) -> Result<Option<SiteRuleId>, ServiceError>
where
    S: StateStore,
    E: RuleEngine,
    F: FnOnce(&mut crate::rules::RuleBook) -> Result<Option<SiteRuleId>, RuleError>,
{
    let mut next = state.clone();
    let saved = change(&mut next.book)?;
    compile::compile(&next.book, engine.limits())?;
    store
        .save(next.encode())
        .await
        .map_err(ServiceError::Save)?;
    *state = next;
    apply(engine, state).await?;
    Ok(saved)
}

async fn apply<E: RuleEngine>(engine: &E, state: &State) -> Result<Reconciled, ServiceError> {
    let desired = compile::compile(&state.book, engine.limits())?;
    // The browser's error text may quote a rule, value included; redact it
    // here so no caller, logging included, ever holds the raw text.
    let refused = |e: PlatformError| ServiceError::Apply(PlatformError(redact(&e.0, state)));
    let installed = engine.installed().await.map_err(refused)?;
    let update = compile::diff(&desired, &installed);
    if !update.is_empty() {
        engine.update(&update).await.map_err(refused)?;
    }
    Ok(Reconciled {
        added: update.add_rules.len(),
        removed: update.remove_rule_ids.len(),
    })
}

fn error_response(error: &ServiceError, state: &State) -> Response {
    Response::Error {
        message: redact(&error.to_string(), state),
    }
}

/// Browser error text may quote a rule, header value included. Replace every
/// stored secret, and every rendered value, before it reaches a page or a
/// log.
pub fn redact(text: &str, state: &State) -> String {
    let mut out = text.to_owned();
    for rule in state.book.rules() {
        for action in &rule.headers {
            if let HeaderAction::Set { value, .. } = action {
                let rendered = value.render().unwrap_or_default();
                for secret in [rendered.as_str(), value.secret.expose()] {
                    if secret.len() >= 4 && out.contains(secret) {
                        out = out.replace(secret, "•••");
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fakes {
    //! In-memory stand-ins for the browser, for native tests.

    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[derive(Default)]
    pub(crate) struct MemoryStore {
        pub(crate) value: RefCell<Option<Value>>,
        pub(crate) fail_saves: RefCell<Option<String>>,
        pub(crate) saves: RefCell<usize>,
    }

    impl StateStore for MemoryStore {
        async fn load(&self) -> Result<Option<Value>, PlatformError> {
            Ok(self.value.borrow().clone())
        }
        async fn save(&self, state: Value) -> Result<(), PlatformError> {
            if let Some(msg) = self.fail_saves.borrow().clone() {
                return Err(PlatformError(msg));
            }
            *self.saves.borrow_mut() += 1;
            *self.value.borrow_mut() = Some(state);
            Ok(())
        }
    }

    /// Behaves like the browser's rule store: refuses duplicate ids and
    /// removals of unknown ids are ignored, as Chromium does.
    #[derive(Default)]
    pub(crate) struct MemoryEngine {
        pub(crate) rules: RefCell<Vec<Rule>>,
        pub(crate) updates: RefCell<Vec<UpdateRuleOptions>>,
        pub(crate) reject: RefCell<Option<String>>,
    }

    impl RuleEngine for MemoryEngine {
        async fn installed(&self) -> Result<Vec<Rule>, PlatformError> {
            Ok(self.rules.borrow().clone())
        }
        async fn update(&self, update: &UpdateRuleOptions) -> Result<(), PlatformError> {
            if let Some(msg) = self.reject.borrow().clone() {
                return Err(PlatformError(msg));
            }
            let mut rules = self.rules.borrow().clone();
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
            *self.rules.borrow_mut() = rules;
            self.updates.borrow_mut().push(update.clone());
            Ok(())
        }
        fn limits(&self) -> Limits {
            Limits::CHROMIUM
        }
    }

    /// Runs a future whose fakes are always ready.
    pub(crate) fn run<F: Future>(future: F) -> F::Output {
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
    use super::fakes::{run, MemoryEngine, MemoryStore};
    use super::*;
    use crate::rules::tests::draft;

    fn save(store: &MemoryStore, engine: &MemoryEngine, pattern: &str, secret: &str) -> Response {
        run(handle(
            store,
            engine,
            Request::SaveRule {
                draft: draft(pattern, secret),
            },
        ))
    }

    fn installed_ids(engine: &MemoryEngine) -> Vec<u32> {
        let mut ids: Vec<u32> = engine.rules.borrow().iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn saving_stores_and_applies_in_one_update() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        let response = save(&store, &engine, "https://api.example.com", "tok-123456");
        assert!(
            matches!(&response, Response::Rules(v) if v.saved == Some(1) && v.rules.len() == 1),
            "{response:?}"
        );
        assert_eq!(installed_ids(&engine), [2, 3]);
        assert_eq!(engine.updates.borrow().len(), 1);
        assert_eq!(*store.saves.borrow(), 1);
    }

    #[test]
    fn reconcile_is_idempotent_and_repairs_drift() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        save(&store, &engine, "https://a.example", "t");
        save(&store, &engine, "https://b.example", "t");
        assert_eq!(run(reconcile(&store, &engine)), Ok(Reconciled::default()));
        let before = engine.updates.borrow().len();
        assert_eq!(run(reconcile(&store, &engine)), Ok(Reconciled::default()));
        assert_eq!(
            engine.updates.borrow().len(),
            before,
            "no browser call when nothing changed"
        );

        // The browser lost a rule and holds a stray one (a crash between
        // steps, or an older version's leftovers): one update fixes both.
        engine.rules.borrow_mut().retain(|r| r.id != 2);
        let mut stray = engine.rules.borrow()[0].clone();
        stray.id = 999;
        engine.rules.borrow_mut().push(stray);
        assert_eq!(
            run(reconcile(&store, &engine)),
            Ok(Reconciled {
                added: 1,
                removed: 1
            })
        );
        assert_eq!(installed_ids(&engine), [2, 3, 4, 5]);
    }

    #[test]
    fn toggling_and_deleting_change_only_that_rule() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        save(&store, &engine, "https://a.example", "t");
        save(&store, &engine, "https://b.example", "t");
        run(handle(
            &store,
            &engine,
            Request::SetEnabled {
                id: 1,
                enabled: false,
            },
        ));
        assert_eq!(installed_ids(&engine), [4, 5]);
        let last = engine.updates.borrow().last().cloned().unwrap_or_default();
        assert_eq!(
            (last.remove_rule_ids, last.add_rules.len()),
            (vec![2, 3], 0)
        );
        run(handle(
            &store,
            &engine,
            Request::SetEnabled {
                id: 1,
                enabled: true,
            },
        ));
        assert_eq!(installed_ids(&engine), [2, 3, 4, 5]);
        run(handle(&store, &engine, Request::DeleteRule { id: 2 }));
        assert_eq!(installed_ids(&engine), [2, 3]);
    }

    #[test]
    fn a_full_store_loses_nothing() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        save(&store, &engine, "https://a.example", "t");
        let before = store.value.borrow().clone();
        *store.fail_saves.borrow_mut() = Some("QUOTA_BYTES quota exceeded".into());
        let response = save(&store, &engine, "https://b.example", "t");
        assert_eq!(
            response,
            Response::Error {
                message: "could not save, nothing was changed: QUOTA_BYTES quota exceeded".into()
            }
        );
        assert_eq!(*store.value.borrow(), before);
        assert_eq!(
            installed_ids(&engine),
            [2, 3],
            "the browser keeps the old rules"
        );
    }

    #[test]
    fn browser_errors_are_redacted() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        save(&store, &engine, "https://a.example", "first-secret");
        *engine.reject.borrow_mut() =
            Some("bad rule: value 'Bearer second-secret' is invalid".into());
        let response = save(&store, &engine, "https://b.example", "second-secret");
        match response {
            Response::Error { message } => {
                assert!(
                    message.starts_with("saved, but the browser refused"),
                    "{message}"
                );
                assert!(!message.contains("second-secret"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The rule was saved; the next reconcile, once the browser accepts,
        // installs it.
        *engine.reject.borrow_mut() = None;
        assert_eq!(run(reconcile(&store, &engine)).map(|r| r.added), Ok(2));
    }

    #[test]
    fn refused_rules_touch_neither_store_nor_browser() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        let response = save(&store, &engine, "http://api.example.com", "t");
        assert!(matches!(response, Response::Error { message } if message.contains("plain http")));
        assert_eq!(*store.saves.borrow(), 0);
        assert!(engine.updates.borrow().is_empty());
    }

    #[test]
    fn site_status_reads_stored_state() {
        let (store, engine) = (MemoryStore::default(), MemoryEngine::default());
        save(&store, &engine, "https://a.example", "t");
        let response = run(handle(
            &store,
            &engine,
            Request::SiteStatus {
                url: "https://a.example/x".into(),
            },
        ));
        assert!(matches!(response, Response::Site(s) if s.rule.as_ref().map(|r| r.id) == Some(1)));
    }
}
