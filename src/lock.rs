//! The popup's vault panel: choose how tokens are kept, lock, unlock, the
//! idle time, change the passphrase, and back to convenience.
//!
//! Every action is a request to the background, which does the key
//! derivation and the writes; the page sends the passphrase once and
//! renders the [`VaultView`] that comes back.

use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlInputElement, HtmlSelectElement};

use super::browser::runtime;
use super::dom::{self, DomError};
use super::popup;
use tokenward_core::message::{Passphrase, Request, Response, VaultView};
use tokenward_core::text;
use tokenward_core::text::Text;

pub fn install() -> Result<(), DomError> {
    dom::listen(&dom::by_id::<Element>("lock")?, "click", |_| {
        act(Request::Lock, &[]);
    });
    dom::listen(&dom::by_id::<Element>("unlock-form")?, "submit", |event| {
        event.prevent_default();
        let passphrase = field("unlock-passphrase");
        act(
            Request::Unlock {
                passphrase: Passphrase(passphrase),
            },
            &["unlock-passphrase"],
        );
    });
    dom::listen(&dom::by_id::<Element>("protect-form")?, "submit", |event| {
        event.prevent_default();
        let (passphrase, again) = (field("protect-passphrase"), field("protect-confirm"));
        if passphrase != again {
            show(None, Some(&text!("lock_passphrases_differ")));
            return;
        }
        act(
            Request::Protect {
                passphrase: Passphrase(passphrase),
                idle_minutes: None,
            },
            &["protect-passphrase", "protect-confirm"],
        );
    });
    dom::listen(&dom::by_id::<Element>("use-convenience")?, "click", |_| {
        act(
            Request::UseConvenience {
                passphrase: Passphrase::default(),
            },
            &[],
        );
    });
    dom::listen(&dom::by_id::<Element>("idle-minutes")?, "change", |_| {
        let minutes = dom::by_id::<HtmlSelectElement>("idle-minutes")
            .ok()
            .and_then(|s| s.value().parse::<u32>().ok());
        act(Request::SetIdleLock { minutes }, &[]);
    });
    dom::listen(&dom::by_id::<Element>("change-form")?, "submit", |event| {
        event.prevent_default();
        let (new, again) = (field("change-new"), field("change-confirm"));
        if new != again {
            show(None, Some(&text!("lock_new_passphrases_differ")));
            return;
        }
        act(
            Request::ChangePassphrase {
                current: Passphrase(field("change-current")),
                new: Passphrase(new),
            },
            &["change-current", "change-new", "change-confirm"],
        );
    });
    dom::listen(
        &dom::by_id::<Element>("convenience-form")?,
        "submit",
        |event| {
            event.prevent_default();
            act(
                Request::UseConvenience {
                    passphrase: Passphrase(field("convenience-passphrase")),
                },
                &["convenience-passphrase"],
            );
        },
    );
    Ok(())
}

fn field(id: &str) -> String {
    dom::by_id::<HtmlInputElement>(id)
        .map(|i| i.value())
        .unwrap_or_default()
}

/// Sends `request`, clears the passphrase fields whatever the answer (a
/// passphrase stays in the page no longer than it must), then renders.
fn act(request: Request, clear: &'static [&'static str]) {
    let unlocking = matches!(request, Request::Unlock { .. });
    set_busy(true);
    let pending = runtime::send_now(&request);
    spawn_local(async move {
        let answer = pending.await;
        for id in clear {
            if let Ok(input) = dom::by_id::<HtmlInputElement>(id) {
                input.set_value("");
            }
        }
        set_busy(false);
        match answer {
            Ok(Response::Vault(view)) => {
                let _ = render(&view);
                // The site and the accounts read differently locked.
                popup::refresh_everything().await;
                if unlocking && !view.locked {
                    // Unlocked: the focus goes to what is now sent here.
                    dom::focus("site-status");
                }
            }
            other => show(None, Some(&dom::unexpected(other))),
        }
    });
}

/// Unlocking derives the key for about a second: the buttons say so.
fn set_busy(busy: bool) {
    if let Ok(panel) = dom::by_id::<Element>("vault") {
        let _ = panel.toggle_attribute_with_force("data-busy", busy);
        for button in dom::find_all(&panel, "button") {
            let _ = button.toggle_attribute_with_force("disabled", busy);
        }
    }
}

/// Draws the lock panel from a view the page already has.
pub fn show_view(view: &VaultView) {
    if let Err(e) = render(view) {
        show(None, Some(&dom::page_error(&e)));
    }
}

/// The vault panel's feedback: a notice, an error, or neither.
fn show(notice: Option<&Text>, error: Option<&Text>) {
    dom::feedback("vault-notice", notice);
    dom::feedback("vault-error", error);
}

fn render(view: &VaultView) -> Result<(), DomError> {
    let panel = dom::by_id::<Element>("vault")?;
    let _ = panel.set_attribute("data-mode", &view.mode);
    let _ = panel.set_attribute("data-locked", if view.locked { "true" } else { "false" });
    let protected = view.mode == "protected";
    let summary = match (view.mode.as_str(), view.locked) {
        ("protected", true) => text!("lock_summary_locked"),
        // The key derivation's parameters are in the README, not here:
        // they tell a user nothing they can act on.
        ("protected", false) => text!("lock_summary_protected"),
        // The risk, said where it is always seen.
        ("convenience", _) => text!("lock_summary_convenience"),
        _ => text!("lock_summary_unset"),
    };
    let summary_line: Element = dom::by_id("vault-summary")?;
    dom::set_say(&dom::by_id("vault-summary-text")?, &summary);
    // At first run the question below says it; one line, not two alike.
    dom::show(&summary_line, view.mode != "unset");
    let warning = match view.mode.as_str() {
        "convenience" => text!("lock_warning_convenience"),
        _ => text!("lock_warning_unset"),
    };
    dom::set_say(&dom::by_id("vault-warning")?, &warning);
    // The rules before the typing, not as an error after it.
    dom::set_say(
        &dom::by_id("protect-rules")?,
        &text!(
            "lock_passphrase_rules",
            tokenward_core::service::MIN_PASSPHRASE_CHARS
        ),
    );
    // State first: locked, the popup is the unlock form and the sites that
    // wait; before the choice, the choice. Nothing that needs an unlocked
    // vault, or the choice, is offered (style.css hides it by this).
    if let Some(body) = dom::document()?.body() {
        let stage = match (view.mode.as_str(), view.locked) {
            ("protected", true) => "locked",
            ("unset", _) => "unset",
            _ => "ready",
        };
        let _ = body.set_attribute("data-vault", stage);
    }
    let choose: Element = dom::by_id("vault-choose")?;
    dom::show(&choose, !protected);
    // The first run's one question stays open; in convenience mode it is
    // one line to open.
    let _ = choose.toggle_attribute_with_force("open", view.mode == "unset");
    dom::set_say(
        &dom::by_id("vault-choose-title")?,
        &if view.mode == "unset" {
            text!("lock_choose_question")
        } else {
            text!("ui_protect_the_tokens_with_a_passphrase")
        },
    );
    dom::show(
        &dom::by_id::<Element>("use-convenience")?,
        view.mode == "unset",
    );
    dom::show(
        &dom::by_id::<Element>("vault-unlocked")?,
        protected && !view.locked,
    );
    dom::show(
        &dom::by_id::<Element>("unlock-form")?,
        protected && view.locked,
    );

    let waiting = dom::by_id::<Element>("waiting-sites")?;
    waiting.set_text_content(None);
    for pattern in &view.waiting {
        let item = dom::document()?
            .create_element("li")
            .map_err(|_| DomError("could not create a list item".to_owned()))?;
        dom::set_text(&item, pattern);
        let _ = waiting.append_child(&item);
    }
    dom::show(
        &dom::by_id::<Element>("waiting-title")?,
        !view.waiting.is_empty(),
    );

    let select = dom::by_id::<HtmlSelectElement>("idle-minutes")?;
    if select.length() <= 1 {
        for minutes in &view.idle_choices {
            let option = dom::document()?
                .create_element("option")
                .map_err(|_| DomError("could not create an option".to_owned()))?;
            let _ = option.set_attribute("value", &minutes.to_string());
            dom::set_say(&option, &text!("lock_idle_minutes", *minutes));
            let _ = select.append_child(&option);
        }
    }
    select.set_value(&view.idle_minutes.map(|m| m.to_string()).unwrap_or_default());
    show(view.notice.as_ref(), None);
    Ok(())
}
