//! The popup: what Tokenward does on the current tab, and a rule for it in
//! two clicks ("Add a rule for this site", paste the token, "Save").
//!
//! Like uBlock Origin's popup, it accepts `?tabId=N` so that it can also be
//! opened in a tab (from the options page, or by an automated test) and
//! still describe another tab. Without it, it describes the active tab.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlInputElement, HtmlSelectElement};

use super::browser::{permissions, runtime, tabs, Tab};
use super::dom::{self, DomError};
use super::save::{start_save, start_tab_save};
use super::{accounts, browser_login, lock};
use tokenward_core::message::{
    NotSent, PopupView, Request, Response, Sending, SiteState, SiteView,
};
use tokenward_core::rules::{HeaderDraft, RuleDraft, SiteRuleId};
use tokenward_core::text;
use tokenward_core::text::{Localize, Text};

#[wasm_bindgen]
pub async fn popup_main() -> Result<(), JsValue> {
    dom::timing("tokenward:started");
    dom::localize_page()?;
    let tab = target_tab().await;
    // The tab the popup describes, for its "this tab only" rules. Kept in
    // the page, as the rule being edited is in the options page's form.
    if let Some(id) = tab.as_ref().map(|t| t.id) {
        let _ = dom::by_id::<Element>("site")?.set_attribute("data-tab-id", &id.to_string());
    }
    let url: Rc<str> = tab.and_then(|t| t.url).unwrap_or_default().into();

    dom::listen(&dom::by_id::<Element>("open-options")?, "click", |event| {
        event.prevent_default();
        spawn_local(async {
            let _ = runtime::open_options_page().await;
        });
    });
    dom::listen(&dom::by_id::<Element>("add-site")?, "click", |_| {
        if let (Ok(button), Ok(form)) = (
            dom::by_id::<Element>("add-site"),
            dom::by_id::<Element>("add-form"),
        ) {
            dom::show(&button, false);
            dom::show(&form, true);
            if let Ok(secret) = dom::by_id::<web_sys::HtmlElement>("add-secret") {
                let _ = secret.focus();
            }
        }
    });
    let for_save = Rc::clone(&url);
    dom::listen(
        &dom::by_id::<Element>("add-form")?,
        "submit",
        move |event| {
            event.prevent_default();
            if let Err(e) = save(Rc::clone(&for_save)) {
                show_error(Some(&dom::page_error(&e)));
            }
        },
    );
    let for_grant = Rc::clone(&url);
    dom::listen(
        &dom::by_id::<Element>("grant-permission")?,
        "click",
        move |_| {
            let url = Rc::clone(&for_grant);
            // Asked inside the click, before any await, or the browser refuses.
            let asked = dom::by_id::<Element>("site-rule")
                .ok()
                .and_then(|section| dom::host_permissions(&section))
                .map(|origins| permissions::request_origins(&origins));
            spawn_local(async move {
                if let Some(Ok(answer)) = asked {
                    let _ = answer.await;
                }
                refresh(url).await;
            });
        },
    );
    let for_toggle = Rc::clone(&url);
    dom::listen(
        &dom::by_id::<Element>("site-toggle")?,
        "change",
        move |_| {
            if let Err(e) = toggle(Rc::clone(&for_toggle)) {
                show_error(Some(&dom::page_error(&e)));
            }
        },
    );
    let for_tab_delete = Rc::clone(&url);
    dom::listen(
        &dom::by_id::<Element>("tab-rule-delete")?,
        "click",
        move |_| {
            let url = Rc::clone(&for_tab_delete);
            let Some(id) = dom::by_id::<Element>("site-tab-rule")
                .ok()
                .and_then(|s| s.get_attribute("data-rule-id"))
                .and_then(|id| id.parse::<SiteRuleId>().ok())
            else {
                return;
            };
            let pending = runtime::send_now(&Request::DeleteTabRule { id });
            spawn_local(async move {
                match pending.await {
                    Ok(Response::Rules(_)) => refresh(url).await,
                    other => show_error(Some(&dom::unexpected(other))),
                }
            });
        },
    );
    let for_renew = Rc::clone(&url);
    dom::listen(&dom::by_id::<Element>("site-renew")?, "click", move |_| {
        let url = Rc::clone(&for_renew);
        let Some(credential) = dom::by_id::<Element>("site-renew")
            .ok()
            .and_then(|b| b.get_attribute("data-credential"))
            .and_then(|id| id.parse().ok())
        else {
            return;
        };
        show_error(None);
        spawn_local(async move {
            let busy = dom::by_id::<Element>("site-renew").ok();
            if let Some(b) = &busy {
                let _ = b.set_attribute("disabled", "");
            }
            accounts::render_answer(runtime::send(&Request::RenewToken { credential }).await);
            if let Some(b) = &busy {
                let _ = b.remove_attribute("disabled");
            }
            refresh(url).await;
        });
    });
    dom::guard_secret_paste(&dom::by_id("add-secret")?, |text| show_error(Some(text)));
    // Escape closes whatever form is open, and the focus returns to what
    // opened it.
    dom::on_escape(|| {
        let open = |id: &str| dom::by_id::<Element>(id).is_ok_and(|e| !e.has_attribute("hidden"));
        let click = |id: &str| {
            if let Ok(button) = dom::by_id::<web_sys::HtmlElement>(id) {
                button.click();
            }
        };
        if open("add-form") {
            if let (Ok(form), Ok(button)) = (
                dom::by_id::<Element>("add-form"),
                dom::by_id::<Element>("add-site"),
            ) {
                dom::show(&form, false);
                dom::show(&button, true);
                dom::focus("add-site");
            }
        } else if open("login-form") {
            click("login-cancel");
            dom::focus("show-login");
        } else if open("use") {
            click("use-cancel");
        } else if open("tokens") {
            click("tokens-close");
        }
    });
    accounts::install(Some(Rc::clone(&url)))?;
    lock::install()?;
    browser_login::install()?;

    show_everything(&url).await;
    dom::mark_ready();
    // A browser login in progress is followed for as long as the popup is
    // open; it is not part of "ready".
    browser_login::refresh().await;
    Ok(())
}

/// Everything the popup shows, from one request (one load of the state in
/// the background); the site's status, what the user opened the popup to
/// learn, is drawn first.
async fn show_everything(url: &str) {
    dom::timing("tokenward:asked");
    match runtime::send(&Request::OpenPopup {
        url: url.to_owned(),
        tab: tab_id(),
    })
    .await
    {
        Ok(Response::Popup(popup)) => {
            dom::timing("tokenward:answered");
            let PopupView {
                site,
                accounts,
                vault,
            } = *popup;
            show_site(&site).await;
            accounts::render_answer(Ok(Response::Accounts(accounts)));
            lock::show_view(&vault);
        }
        other => show_error(Some(&dom::unexpected(other))),
    }
}

/// Draws the whole popup again, after a change that touches every part
/// (the vault locked or unlocked).
pub(super) async fn refresh_everything() {
    show_everything(&target_url().await).await;
}

/// Renders the site half again, after a change made elsewhere in the popup.
pub(super) async fn refresh_site() {
    refresh(target_url().await).await;
}

/// The URL of the tab the popup describes, empty when the browser does not
/// let us see it.
async fn target_url() -> Rc<str> {
    target_tab()
        .await
        .and_then(|t| t.url)
        .unwrap_or_default()
        .into()
}

/// The tab the popup describes; its URL when the browser lets us see it
/// (host permission, or `activeTab` from the toolbar click).
async fn target_tab() -> Option<Tab> {
    let search = web_sys::window()?.location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    match params.get("tabId").and_then(|id| id.parse::<i32>().ok()) {
        Some(id) => tabs::get(id).await.ok(),
        None => tabs::active().await.ok().flatten(),
    }
}

/// The id of the tab the popup describes, as `popup_main` found it.
fn tab_id() -> Option<i32> {
    dom::by_id::<Element>("site")
        .ok()?
        .get_attribute("data-tab-id")?
        .parse()
        .ok()
}

async fn refresh(url: Rc<str>) {
    match runtime::send(&Request::SiteStatus {
        url: url.to_string(),
        tab: tab_id(),
    })
    .await
    {
        Ok(Response::Site(view)) => show_site(&view).await,
        other => show_error(Some(&dom::unexpected(other))),
    }
}

/// Draws the site half, once the browser said whether the acting rule's
/// permission is held.
async fn show_site(view: &SiteView) {
    // Firefox grants MV3 host permissions only on request, and every
    // browser lets the user withdraw them: a rule without them sends
    // nothing, and the popup must say so.
    // <https://extensionworkshop.com/documentation/develop/manifest-v3-migration-guide/>
    // The rule that acts here: this tab's own, else the book's.
    let acting = view.tab_rule.as_ref().or(view.rule.as_ref());
    let permitted = match acting {
        Some(rule) => permissions::contains_origins(&rule.host_permissions)
            .await
            .unwrap_or(false),
        None => true,
    };
    if let Err(e) = render(view, permitted) {
        show_error(Some(&dom::page_error(&e)));
    }
}

fn render(view: &SiteView, permitted: bool) -> Result<(), DomError> {
    let origin: Element = dom::by_id("site-origin")?;
    if view.origin.is_empty() {
        dom::set_say(&origin, &text!("popup_this_page"));
    } else {
        dom::set_text(&origin, &view.origin);
    }
    let status: Element = dom::by_id("site-status")?;
    // One answer, from the core, for the status line, the toggle, "Copy as
    // curl" and the badge: what is actually sent now, and why not.
    let sending = view.sending(permitted);
    let state = match view.state {
        SiteState::Covered => "covered",
        SiteState::Uncovered => "uncovered",
        SiteState::Unsupported => "unsupported",
    };
    let _ = status.set_attribute("data-state", state);
    let _ = status.set_attribute(
        "data-permission",
        if permitted { "granted" } else { "missing" },
    );
    let (sending_key, mut line) = status_line(view, &sending);
    // Why a header is not sent: its credential expired, was refused or was
    // deleted. The credential's own words (which, since when, what to do)
    // are the status line then, said once.
    let problem = view
        .acting()
        .iter()
        .flat_map(|r| &r.headers)
        .find_map(|h| h.credential.as_ref()?.problem.clone());
    let about_the_token = matches!(
        sending,
        Sending::NotSent {
            why: NotSent::Expired | NotSent::Refused | NotSent::CredentialDeleted
        }
    );
    if let (true, Some(problem)) = (about_the_token, &problem) {
        line = problem.clone();
    }
    let _ = status.set_attribute("data-sending", sending_key);
    dom::set_say(&status, &line);
    let permission_missing = sending
        == (Sending::NotSent {
            why: NotSent::PermissionMissing,
        });
    dom::show(
        &dom::by_id::<Element>("site-permission")?,
        permission_missing,
    );
    let enabled = sending.is_sent();

    let section: Element = dom::by_id("site-rule")?;
    // Locked, the rule's details wait for the unlock; a tab rule acting
    // here has its own section.
    let book_rule_acts = view.rule.is_some() && view.tab_rule.is_none() && !view.locked;
    dom::show(&section, book_rule_acts);
    // The administrator's rule is not the user's to switch off.
    let managed = view.rule.as_ref().is_some_and(|r| r.managed);
    dom::show(
        &dom::by_id::<Element>("site-toggle-row")?,
        book_rule_acts && !managed,
    );
    if let Some(rule) = &view.rule {
        let _ = section.set_attribute("data-rule-id", &rule.id.to_string());
        dom::set_host_permissions(&section, &rule.host_permissions);
        let pattern: Element = dom::find(&section, "[data-role=pattern]")?;
        dom::set_text(&pattern, &rule.pattern);
        // The site's own address is already the card's first line; the
        // pattern is shown where it says more (a wildcard, a path).
        dom::show(&pattern, rule.pattern != format!("{}/", view.origin));
        let headers: Element = dom::find(&section, "[data-role=headers]")?;
        headers.set_text_content(None);
        for header in &rule.headers {
            let item = dom::instantiate("header-template")?;
            dom::set_say(&item, &header.summary);
            let _ = headers.append_child(&item);
        }
        dom::by_id::<HtmlInputElement>("site-toggle")?.set_checked(rule.enabled);
        dom::set_say(
            &dom::find(&section, "[data-role=policy]")?,
            &rule.policy_text(),
        );
    }
    let tab_section: Element = dom::by_id("site-tab-rule")?;
    dom::show(&tab_section, view.tab_rule.is_some());
    if let Some(rule) = &view.tab_rule {
        let _ = tab_section.set_attribute("data-rule-id", &rule.id.to_string());
        dom::set_host_permissions(&tab_section, &rule.host_permissions);
        dom::set_text(
            &dom::find(&tab_section, "[data-role=pattern]")?,
            &rule.pattern,
        );
        let headers: Element = dom::find(&tab_section, "[data-role=headers]")?;
        headers.set_text_content(None);
        for header in &rule.headers {
            let item = dom::instantiate("header-template")?;
            dom::set_say(&item, &header.summary);
            let _ = headers.append_child(&item);
        }
        dom::set_say(
            &dom::find(&tab_section, "[data-role=policy]")?,
            &rule.policy_text(),
        );
    }
    // A header held back while others are sent: why, under the rule.
    let problem = problem.filter(|_| !about_the_token);
    dom::feedback("site-problem", problem.as_ref());
    // The one-click way out: a new token from the same login, in place of
    // the old one everywhere it was used.
    let renewable = view
        .rule
        .iter()
        .flat_map(|r| &r.headers)
        .filter_map(|h| h.credential.as_ref())
        .find(|c| c.renewable && c.problem.is_some());
    let renew: Element = dom::by_id("site-renew")?;
    match renewable {
        Some(c) => {
            let _ = renew.set_attribute("data-credential", &c.id.to_string());
        }
        None => {
            let _ = renew.remove_attribute("data-credential");
        }
    }
    dom::show(&renew, renewable.is_some());
    dom::show(&dom::by_id::<Element>("copy-curl")?, enabled);
    let uncovered = view.state == SiteState::Uncovered;
    dom::show(&dom::by_id::<Element>("add-site")?, uncovered);
    dom::show(&dom::by_id::<Element>("add-form")?, false);
    if uncovered {
        dom::by_id::<HtmlInputElement>("add-pattern")?.set_value(&view.suggested_pattern);
    }
    Ok(())
}

/// The status line: a key for styling, and the words.
fn status_line(view: &SiteView, sending: &Sending) -> (&'static str, Text) {
    match sending {
        Sending::Unsupported => ("unsupported", text!("popup_status_unsupported")),
        Sending::Uncovered => (
            "uncovered",
            match &view.managed_waiting {
                Some((provider, endpoint)) => text!(
                    "popup_status_managed_waiting",
                    text!(
                        "options_managed_login",
                        provider.as_str(),
                        endpoint.as_str()
                    )
                ),
                None => text!("popup_status_uncovered"),
            },
        ),
        Sending::Sent {
            partly,
            expires,
            expiring_soon,
        } => {
            let sent = if view.tab_rule.is_some() {
                text!("popup_status_sent_tab")
            } else if *partly {
                text!("popup_status_sent_partly")
            } else {
                text!("popup_status_sent")
            };
            let line = match (expires, expiring_soon) {
                (Some(e), true) => text!(
                    "popup_status_sent_expiring_soon",
                    sent,
                    e.date(),
                    tokenward_core::credential::EXPIRY_WARNING / tokenward_core::credential::DAY
                ),
                (Some(e), false) => text!("popup_status_sent_expires", sent, e.date()),
                (None, _) => sent,
            };
            (if *expiring_soon { "expiring" } else { "sent" }, line)
        }
        Sending::NotSent { why } => (
            "not-sent",
            match why {
                NotSent::Locked => text!("popup_status_locked"),
                NotSent::Disabled => text!("popup_status_disabled"),
                NotSent::Expired => text!("popup_status_expired"),
                NotSent::Refused => text!("popup_status_refused"),
                NotSent::CredentialDeleted => text!("popup_status_deleted"),
                NotSent::PermissionMissing => text!("popup_status_permission_missing"),
                NotSent::NotAllowed => text!("popup_status_not_allowed"),
            },
        ),
    }
}

fn save(url: Rc<str>) -> Result<(), DomError> {
    show_error(None);
    let draft = RuleDraft {
        pattern: dom::by_id::<HtmlInputElement>("add-pattern")?.value(),
        enabled: true,
        headers: vec![HeaderDraft {
            name: dom::by_id::<HtmlInputElement>("add-header-name")?.value(),
            scheme: dom::by_id::<HtmlSelectElement>("add-scheme")?.value(),
            secret: dom::by_id::<HtmlInputElement>("add-secret")?.value(),
            credential: None,
        }],
        ..RuleDraft::default()
    };
    let tab_only = dom::by_id::<HtmlInputElement>("add-tab-only")?.checked();
    let started = match (tab_only, tab_id()) {
        (true, Some(tab)) => start_tab_save(tab, draft),
        (true, None) => {
            show_error(Some(&text!("popup_tab_unknown")));
            return Ok(());
        }
        (false, _) => start_save(draft),
    };
    let mut pending = match started {
        Ok(pending) => pending,
        Err(e) => {
            show_error(Some(&e.text()));
            return Ok(());
        }
    };
    spawn_local(async move {
        let answer = pending.answer().await;
        match answer {
            // A tab's rule answers with the list, a site's with its change.
            Ok(Response::Rules(_) | Response::RuleChanged(_)) => {
                if let Ok(secret) = dom::by_id::<HtmlInputElement>("add-secret") {
                    secret.set_value("");
                }
                if let Ok(tab_only) = dom::by_id::<HtmlInputElement>("add-tab-only") {
                    tab_only.set_checked(false);
                }
                // Shows the permission state once the prompt is answered.
                let _ = pending.granted().await;
                refresh(url).await;
            }
            other => show_error(Some(&dom::unexpected(other))),
        }
    });
    Ok(())
}

fn toggle(url: Rc<str>) -> Result<(), DomError> {
    let section: Element = dom::by_id("site-rule")?;
    let Some(id) = section
        .get_attribute("data-rule-id")
        .and_then(|id| id.parse::<SiteRuleId>().ok())
    else {
        return Ok(());
    };
    let enabled = dom::by_id::<HtmlInputElement>("site-toggle")?.checked();
    if enabled {
        if let Some(origins) = dom::host_permissions(&section) {
            let _ = permissions::request_origins(&origins);
        }
    }
    let pending = runtime::send_now(&Request::SetEnabled { id, enabled });
    spawn_local(async move {
        let answer = pending.await;
        match answer {
            Ok(Response::RuleChanged(_)) => refresh(url).await,
            other => show_error(Some(&dom::unexpected(other))),
        }
    });

    Ok(())
}

/// Shows what went wrong under the site card, or clears it (`None`).
fn show_error(message: Option<&Text>) {
    dom::feedback("popup-error", message);
}
