//! The popup's accounts: log in with a token, list, create and delete the
//! account's tokens, use a credential on a site, copy helpers, log out.
//!
//! Every provider request is made by the background (`Request::Login`,
//! `Request::CreateToken`, …), so closing the popup mid-request loses
//! nothing: the background finishes and stores the result, and the next
//! popup shows it. The page renders what comes back and keeps no state but
//! the id of the credential a panel is about, in a `data-` attribute.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Element, HtmlElement, HtmlInputElement, HtmlSelectElement};

use super::browser::{self, permissions, runtime};
use super::dom::{self, DomError};
use tokenward_core::credential::{
    account_label, credential_label, CredentialId, Endpoint, Timestamp, Validity,
};
use tokenward_core::header::ValueScheme;
use tokenward_core::message::{
    AccountsView, CredentialView, LoginDraft, Request, Response, TokensView,
};
use tokenward_core::pattern::{with_ascii_host, ParseOptions, SitePattern};
use tokenward_core::provider::site::SuggestedHeader;
use tokenward_core::provider::{Expiry, Provider, TokenSpec};
use tokenward_core::text;
use tokenward_core::text::{Localize, Text};

/// Wires the accounts panels, in the popup and on the options page. `url`
/// is the popup's described tab's address, for the curl helper.
pub fn install(url: Option<Rc<str>>) -> Result<(), DomError> {
    dom::listen(&dom::by_id::<Element>("show-login")?, "click", |_| {
        let _ = open_login();
    });
    dom::listen(&dom::by_id::<Element>("login-cancel")?, "click", |_| {
        if let Ok(form) = dom::by_id::<Element>("login-form") {
            dom::show(&form, false);
        }
    });
    dom::listen(&dom::by_id::<Element>("login-provider")?, "change", |_| {
        let _ = login_fields();
    });
    dom::listen(
        &dom::by_id::<Element>("login-suggested")?,
        "click",
        |event| {
            if let Some(button) = dom::origin_of(&event, "[data-suggested]") {
                let _ = open_suggested(&button);
            }
        },
    );
    dom::listen(&dom::by_id::<Element>("login-kind")?, "change", |_| {
        let _ = login_fields();
    });
    dom::listen(&dom::by_id::<Element>("login-form")?, "submit", |event| {
        event.prevent_default();
        if let Err(e) = login() {
            show_error(Some(&dom::page_error(&e)));
        }
    });
    dom::guard_secret_paste(&dom::by_id("login-secret")?, |text| show_error(Some(text)));
    // Reminders are a setting of every account: the options page has it.
    if let Ok(toggle) = dom::by_id::<Element>("reminders-toggle") {
        dom::listen(&toggle, "change", |_| {
            let enabled = dom::by_id::<HtmlInputElement>("reminders-toggle")
                .map(|t| t.checked())
                .unwrap_or(true);
            let pending = runtime::send_now(&Request::SetReminders { enabled });
            spawn_local(async move {
                let answer = pending.await;
                if let Ok(Response::Accounts(view)) = &answer {
                    if let Some(notice) = &view.notice {
                        show_notice(Some(notice));
                    }
                }
                render_answer(answer);
            });
        });
    }

    // One delegated listener for the whole credential list.
    dom::listen(&dom::by_id::<Element>("credentials")?, "click", |event| {
        let (Some(button), Some(item)) = (
            dom::origin_of(&event, "button[data-action]"),
            dom::origin_of(&event, "li[data-credential-id]"),
        ) else {
            return;
        };
        let Some(id) = id_of(&item, "data-credential-id") else {
            return;
        };
        match button.get_attribute("data-action").as_deref() {
            Some("tokens") => spawn_local(open_tokens(id)),
            Some("use") => spawn_local(open_use(id, None)),
            Some("copy-env") => {
                copy_from_background(Request::CopyHelpers {
                    credential: Some(id),
                    url: None,
                });
            }
            Some("logout") => {
                if let Ok(confirm) = dom::find::<Element>(&item, "[data-action=confirm-logout]") {
                    dom::show(&confirm, true);
                }
            }
            Some("confirm-logout") => {
                spawn_local(async move {
                    let answer = runtime::send(&Request::Logout { credential: id }).await;
                    render_answer(answer);
                });
            }
            _ => {}
        }
    });

    dom::listen(&dom::by_id::<Element>("remote-tokens")?, "click", |event| {
        let (Some(button), Some(item)) = (
            dom::origin_of(&event, "button[data-action]"),
            dom::origin_of(&event, "li[data-remote-id]"),
        ) else {
            return;
        };
        let Some(remote_id) = item.get_attribute("data-remote-id") else {
            return;
        };
        match button.get_attribute("data-action").as_deref() {
            Some("delete") => {
                if let Ok(confirm) = dom::find::<Element>(&item, "[data-action=confirm-delete]") {
                    dom::show(&confirm, true);
                }
            }
            Some("confirm-delete") => {
                let Some(id) = panel_credential("tokens") else {
                    return;
                };
                spawn_local(async move {
                    let answer = runtime::send(&Request::DeleteToken {
                        credential: id,
                        remote_id,
                    })
                    .await;
                    let still_there = matches!(
                        &answer,
                        Ok(Response::Accounts(view)) if view.concerned == Some(id)
                    );
                    render_answer(answer);
                    if still_there {
                        refresh_open_tokens(id).await;
                    } else {
                        close("tokens");
                    }
                });
            }
            _ => {}
        }
    });
    dom::listen(&dom::by_id::<Element>("create-form")?, "submit", |event| {
        event.prevent_default();
        if let Err(e) = create() {
            show_error(Some(&dom::page_error(&e)));
        }
    });
    dom::listen(&dom::by_id::<Element>("tokens-close")?, "click", |_| {
        close("tokens");
    });
    dom::listen(&dom::by_id::<Element>("copy-new-secret")?, "click", |_| {
        if let Ok(value) = dom::by_id::<Element>("new-secret-value") {
            copy_text(
                value.text_content().unwrap_or_default(),
                text!("accounts_copied_new_token"),
            );
        }
    });
    dom::listen(
        &dom::by_id::<Element>("dismiss-new-secret")?,
        "click",
        |_| {
            hide_new_secret();
        },
    );

    dom::listen(&dom::by_id::<Element>("use-deployment")?, "change", |_| {
        let deployment = dom::by_id::<HtmlInputElement>("use-deployment")
            .map(|i| i.value())
            .unwrap_or_default();
        if let Some(id) = panel_credential("use") {
            spawn_local(open_use(id, Some(deployment)));
        }
    });
    dom::listen(&dom::by_id::<Element>("use-form")?, "submit", |event| {
        event.prevent_default();
        if let Err(e) = use_here() {
            show_error(Some(&dom::page_error(&e)));
        }
    });
    dom::listen(&dom::by_id::<Element>("use-cancel")?, "click", |_| {
        close("use");
    });

    if let Some(url) = url {
        dom::listen(&dom::by_id::<Element>("copy-curl")?, "click", move |_| {
            copy_from_background(Request::CopyHelpers {
                credential: None,
                url: Some(url.to_string()),
            });
        });
    }
    Ok(())
}

/// Asks the background for the stored accounts and shows them.
pub async fn refresh() {
    render_answer(runtime::send(&Request::Accounts).await);
}

pub(super) fn render_answer(answer: Result<Response, super::browser::BrowserError>) {
    match answer {
        Ok(Response::Accounts(view)) => {
            show_error(None);
            if let Err(e) = render_accounts(&view) {
                show_error(Some(&dom::page_error(&e)));
            }
        }
        other => show_error(Some(&dom::unexpected(other))),
    }
}

/// The administrator's logins, each a button that opens the login form
/// filled in for it.
fn render_suggested(view: &AccountsView) -> Result<(), DomError> {
    let list: Element = dom::by_id("login-suggested")?;
    list.set_text_content(None);
    for (i, suggested) in view.suggested.iter().enumerate() {
        let document = dom::document()?;
        let item = document
            .create_element("li")
            .map_err(|_| DomError("could not add a login".into()))?;
        let button = document
            .create_element("button")
            .map_err(|_| DomError("could not add a login".into()))?;
        let _ = button.set_attribute("type", "button");
        let _ = button.set_attribute("data-suggested", &i.to_string());
        let _ = button.set_attribute(
            "data-provider",
            &serde_json::to_value(suggested.provider)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        let _ = button.set_attribute("data-endpoint", suggested.endpoint.as_str());
        let _ = button.set_attribute(
            "data-client-id",
            suggested.client_id.as_deref().unwrap_or_default(),
        );
        dom::set_say(
            &button,
            &text!(
                "accounts_suggested_login",
                suggested.provider.name(),
                suggested.endpoint.as_str()
            ),
        );
        let _ = item.append_child(&button);
        let _ = list.append_child(&item);
    }
    dom::show(&list, !view.suggested.is_empty());
    Ok(())
}

/// Opens the login form for one of the administrator's logins.
fn open_suggested(button: &Element) -> Result<(), DomError> {
    let value = |name: &str| button.get_attribute(name).unwrap_or_default();
    dom::by_id::<HtmlSelectElement>("login-provider")?.set_value(&value("data-provider"));
    open_login()?;
    dom::by_id::<HtmlInputElement>("login-endpoint")?.set_value(&value("data-endpoint"));
    dom::by_id::<HtmlInputElement>("login-client-id")?.set_value(&value("data-client-id"));
    Ok(())
}

fn render_accounts(view: &AccountsView) -> Result<(), DomError> {
    render_suggested(view)?;
    if let Ok(toggle) = dom::by_id::<HtmlInputElement>("reminders-toggle") {
        toggle.set_checked(view.reminders);
    }
    let list: Element = dom::by_id("credentials")?;
    list.set_text_content(None);
    // Grouped by provider account (provider, endpoint and who): one login's
    // tokens sit under that login, each named for itself, rather than as
    // look-alike accounts.
    let mut groups: Vec<(String, Vec<&CredentialView>)> = Vec::new();
    for credential in &view.credentials {
        let key = account_key(credential);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(credential),
            None => groups.push((key, vec![credential])),
        }
    }
    for (_, members) in groups {
        if let [only] = members.as_slice() {
            list.append_child(&credential_item(only)?.into())
                .map_err(|_| DomError("cannot add a credential".into()))?;
            continue;
        }
        let group = dom::instantiate("account-template")?;
        dom::set_text(
            &dom::find(&group, "[data-role=account]")?,
            &account_label(&members[0].info),
        );
        dom::set_say(
            &dom::find(&group, "[data-role=count]")?,
            &text!("accounts_token_count", members.len()),
        );
        let tokens: Element = dom::find(&group, "ul")?;
        for credential in members {
            let item = credential_item(credential)?;
            // Inside its account, a token is named for itself.
            let own = if credential.info.name.is_empty() {
                credential.hint.clone()
            } else {
                credential.info.name.clone()
            };
            dom::set_text(&dom::find(&item, "[data-role=label]")?, &own);
            tokens
                .append_child(&item.into())
                .map_err(|_| DomError("cannot add a credential".into()))?;
        }
        list.append_child(&group.into())
            .map_err(|_| DomError("cannot add an account".into()))?;
    }
    dom::show(
        &dom::by_id::<Element>("accounts-empty")?,
        view.credentials.is_empty(),
    );
    show_notice(view.notice.as_ref());
    let _ = list.set_attribute("data-count", &view.credentials.len().to_string());
    Ok(())
}

fn credential_item(c: &CredentialView) -> Result<Element, DomError> {
    let item = dom::instantiate("credential-template")?;
    let _ = item.set_attribute("data-credential-id", &c.info.id.to_string());
    let _ = item.set_attribute("data-provider", provider_key(c.info.provider));
    dom::set_text(
        &dom::find(&item, "[data-role=label]")?,
        &credential_label(&c.info),
    );
    let validity: Element = dom::find(&item, "[data-role=validity]")?;
    let _ = validity.set_attribute("data-validity", validity_key(c.validity));
    dom::set_say(&validity, &validity_text(c.validity));
    // The kind only where a provider has several (Nuclia's keys): the line
    // stays short enough for the popup.
    // (style.css adds the separator after a kind shown.)
    let kind: Element = dom::find(&item, "[data-role=kind]")?;
    if c.info.provider == Provider::Nuclia {
        dom::set_say(&kind, &c.kind_name);
    }
    dom::set_text(&dom::find(&item, "[data-role=hint]")?, &c.hint);
    let renews = c.info.renewal.is_some();
    dom::set_say(
        &dom::find(&item, "[data-role=expires]")?,
        &match (c.info.refresh_failure(), c.info.expires) {
            // A refused token or renewal is why its headers stopped: said
            // here too, not only on the site's panel.
            _ if c.validity == Validity::Refused => text!(
                "accounts_refused",
                c.info.refused.as_deref().unwrap_or("401")
            ),
            (Some(why), _) => text!("accounts_not_renewed", why),
            (None, Some(e)) if c.validity == Validity::Expired => {
                text!("accounts_expired_on", e.date())
            }
            (None, Some(_)) if renews => text!("accounts_renews"),
            (None, Some(e)) => text!("accounts_expires_on", e.date()),
            (None, None) => text!("accounts_no_expiry"),
        },
    );
    let rules = match c.rules {
        0 => String::new(),
        1 => dom::say(&text!("accounts_one_rule")),
        n => dom::say(&text!("accounts_rules", n)),
    };
    dom::set_text(&dom::find(&item, "[data-role=rules]")?, &rules);
    dom::show(
        &dom::find::<Element>(&item, "[data-action=tokens]")?,
        c.manages_tokens,
    );
    // Jina's tokens end at the provider (a log out); the others are only
    // forgotten here.
    let jina = c.info.provider == Provider::Jina;
    let logout = if jina {
        text!("accounts_log_out")
    } else {
        text!("accounts_forget")
    };
    dom::set_say(&dom::find(&item, "[data-action=logout]")?, &logout);
    // Every account has the same buttons: each is named for the account it
    // acts on, so a screen reader's list of buttons tells them apart.
    let who = credential_label(&c.info);
    for (action, name) in [
        ("tokens", text!("accounts_name_tokens", &who)),
        ("use", text!("accounts_name_use", &who)),
        ("copy-env", text!("accounts_name_copy_env", &who)),
        (
            "logout",
            if jina {
                text!("accounts_name_log_out", &who)
            } else {
                text!("accounts_name_forget", &who)
            },
        ),
        (
            "confirm-logout",
            text!("accounts_name_confirm_log_out", &who),
        ),
    ] {
        let button: Element = dom::find(&item, &format!("[data-action={action}]"))?;
        let _ = button.set_attribute("aria-label", &dom::say(&name));
    }
    Ok(item)
}

/// What makes credentials one provider account: the provider, where it is
/// reached, and who it says the user is.
fn account_key(c: &CredentialView) -> String {
    format!("{}|{}", account_label(&c.info), c.info.endpoint.as_str())
}

fn provider_key(p: Provider) -> &'static str {
    match p {
        Provider::BentoCloud => "bentoCloud",
        Provider::Jina => "jina",
        Provider::Nuclia => "nuclia",
        Provider::HuggingFace => "huggingFace",
        Provider::Custom => "custom",
        Provider::OpenId => "openId",
    }
}

fn validity_key(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::ExpiringSoon => "expiringSoon",
        Validity::Expired => "expired",
        Validity::Refused => "refused",
    }
}

fn validity_text(v: Validity) -> Text {
    match v {
        Validity::Valid => text!("validity_valid"),
        Validity::ExpiringSoon => text!(
            "validity_expiring_soon",
            tokenward_core::credential::EXPIRY_WARNING / tokenward_core::credential::DAY
        ),
        Validity::Expired => text!("validity_expired"),
        Validity::Refused => text!("validity_refused"),
    }
}

pub(super) fn selected_provider() -> Result<Provider, DomError> {
    let value = dom::by_id::<HtmlSelectElement>("login-provider")?.value();
    tokenward_core::json::read(&serde_json::Value::String(value))
        .map_err(|_| DomError("unknown provider".into()))
}

fn open_login() -> Result<(), DomError> {
    dom::show(&dom::by_id::<Element>("login-form")?, true);
    login_fields()?;
    let _ = dom::by_id::<HtmlElement>("login-secret")?.focus();
    Ok(())
}

/// Shows the fields the chosen provider takes, with its public endpoint as
/// the default.
fn login_fields() -> Result<(), DomError> {
    let provider = selected_provider()?;
    let kind = dom::by_id::<HtmlSelectElement>("login-kind")?.value();
    dom::show(
        &dom::by_id::<Element>("login-kind-row")?,
        provider == Provider::Nuclia,
    );
    dom::show(
        &dom::by_id::<Element>("login-name-row")?,
        provider == Provider::Custom,
    );
    // BentoCloud's and Jina's CLIs also log in through the browser; the
    // others take a pasted token, but for OpenID Connect, which only logs
    // in through the browser.
    let openid = provider == Provider::OpenId;
    // Nuclia's client logs a user in through the browser; its keys are
    // pasted.
    let nuclia_user = provider == Provider::Nuclia && kind == "personalAccessToken";
    dom::show(
        &dom::by_id::<Element>("login-browser")?,
        matches!(provider, Provider::BentoCloud | Provider::Jina) || openid || nuclia_user,
    );
    dom::set_say(
        &dom::by_id("login-browser")?,
        &if openid {
            text!("accounts_log_in_with_browser")
        } else {
            text!("ui_log_in_with_the_browser_instead")
        },
    );
    dom::show(&dom::by_id::<Element>("login-secret-row")?, !openid);
    dom::show(&dom::by_id::<Element>("login-submit")?, !openid);
    dom::show(&dom::by_id::<Element>("login-client-row")?, openid);
    dom::show(&dom::by_id::<Element>("login-redirect")?, openid);
    if openid {
        // What the identity provider must list for this client: the
        // browser's own redirect URL for Tokenward.
        let redirect = super::browser::identity::redirect_url().unwrap_or_default();
        dom::set_text(&dom::by_id("login-redirect-url")?, &redirect);
    }
    let nua = provider == Provider::Nuclia && kind == "nuaKey";
    // A NUA key names its own endpoint.
    dom::show(&dom::by_id::<Element>("login-endpoint-row")?, !nua);
    let endpoint: HtmlInputElement = dom::by_id("login-endpoint")?;
    let placeholder = match (provider, kind.as_str()) {
        (Provider::Nuclia, "knowledgeBoxKey") => dom::say(&text!("example_nuclia_kb_endpoint")),
        (Provider::Custom, _) => dom::say(&text!("example_custom_endpoint")),
        (Provider::OpenId, _) => dom::say(&text!("example_openid_issuer")),
        (p, _) => p.default_endpoint().unwrap_or("").to_owned(),
    };
    // A provider's own address is data, not words to translate.
    let own_address = placeholder == provider.default_endpoint().unwrap_or_default();
    let _ = if own_address {
        endpoint.set_attribute("translate", "no")
    } else {
        endpoint.remove_attribute("translate")
    };
    endpoint.set_placeholder(&placeholder);
    Ok(())
}

fn login() -> Result<(), DomError> {
    show_error(None);
    let provider = selected_provider()?;
    let draft = LoginDraft {
        provider,
        kind: if provider == Provider::Nuclia {
            dom::by_id::<HtmlSelectElement>("login-kind")?.value()
        } else {
            String::new()
        },
        endpoint: dom::by_id::<HtmlInputElement>("login-endpoint")?.value(),
        secret: dom::by_id::<HtmlInputElement>("login-secret")?.value(),
        name: dom::by_id::<HtmlInputElement>("login-name")?.value(),
    };
    if let Err(e) = tokenward_core::header::Secret::from_input(&draft.secret) {
        show_error(Some(&text!("accounts_bad_token", e.text())));
        return Ok(());
    }
    // The background calls the provider; the browser lets it only where the
    // provider's host permission is held. Asked inside the click.
    let endpoint = with_ascii_host(&draft.endpoint, &browser::BrowserHostNames);
    let asked = match Endpoint::parse(provider, &endpoint) {
        Ok(endpoint) if provider != Provider::Custom => {
            Some(permissions::request_origins(&[endpoint.host_permission()]))
        }
        Ok(_) => None,
        Err(e) if draft.kind != "nuaKey" => {
            show_error(Some(&e.text()));
            return Ok(());
        }
        Err(_) => None,
    };
    let pending = runtime::send_now(&Request::Login { login: draft });
    set_busy("login-submit", true);
    spawn_local(async move {
        if let Some(Ok(asked)) = asked {
            let _ = asked.await;
        }
        let answer = pending.await;
        set_busy("login-submit", false);
        let ok = matches!(answer, Ok(Response::Accounts(_)));
        render_answer(answer);
        if ok {
            if let Ok(secret) = dom::by_id::<HtmlInputElement>("login-secret") {
                secret.set_value("");
            }
            if let Ok(form) = dom::by_id::<Element>("login-form") {
                dom::show(&form, false);
            }
        }
    });
    Ok(())
}

fn set_busy(id: &str, busy: bool) {
    if let Ok(button) = dom::by_id::<Element>(id) {
        let _ = button.toggle_attribute_with_force("disabled", busy);
        let _ = button.toggle_attribute_with_force("aria-busy", busy);
    }
}

fn panel_credential(panel: &str) -> Option<CredentialId> {
    id_of(&dom::by_id::<Element>(panel).ok()?, "data-credential-id")
}

fn id_of(element: &Element, attribute: &str) -> Option<CredentialId> {
    element.get_attribute(attribute)?.parse().ok()
}

fn close(panel: &str) {
    if let Ok(section) = dom::by_id::<Element>(panel) {
        dom::show(&section, false);
    }
    if let Ok(accounts) = dom::by_id::<Element>("accounts") {
        dom::show(&accounts, true);
    }
}

async fn open_tokens(id: CredentialId) {
    match runtime::send(&Request::ListTokens { credential: id }).await {
        Ok(Response::Tokens(view)) => {
            show_error(None);
            if let Err(e) = render_tokens(&view).and_then(|()| open_tokens_panel(&view)) {
                show_error(Some(&dom::page_error(&e)));
            }
            // The list opened: the focus goes to its heading.
            dom::focus("tokens-title");
        }
        other => show_error(Some(&dom::unexpected(other))),
    }
}

/// The list again after a create or a delete, only if the panel is still
/// open on that credential: a late answer must not reopen a panel the user
/// closed, nor reset what they typed in the create form.
async fn refresh_open_tokens(id: CredentialId) {
    let answer = runtime::send(&Request::ListTokens { credential: id }).await;
    let open = dom::by_id::<Element>("tokens").is_ok_and(|panel| !panel.has_attribute("hidden"))
        && panel_credential("tokens") == Some(id);
    if !open {
        return;
    }
    match answer {
        Ok(Response::Tokens(view)) => {
            if let Err(e) = render_tokens(&view) {
                show_error(Some(&dom::page_error(&e)));
            }
        }
        other => show_error(Some(&dom::unexpected(other))),
    }
}

fn render_tokens(view: &TokensView) -> Result<(), DomError> {
    let section: Element = dom::by_id("tokens")?;
    let _ = section.set_attribute("data-credential-id", &view.credential.info.id.to_string());
    let _ = section.set_attribute("data-provider", provider_key(view.credential.info.provider));
    dom::set_say(
        &dom::by_id::<Element>("tokens-title")?,
        &text!(
            "accounts_tokens_of",
            credential_label(&view.credential.info)
        ),
    );
    dom::feedback("tokens-note", view.note.as_ref());
    let list: Element = dom::by_id("remote-tokens")?;
    list.set_text_content(None);
    for token in view.remote.iter().flatten() {
        let item = dom::instantiate("token-template")?;
        let _ = item.set_attribute("data-remote-id", &token.token.id);
        dom::set_text(&dom::find(&item, "[data-role=name]")?, &token.token.name);
        let state: Element = dom::find(&item, "[data-role=state]")?;
        let _ = state.set_attribute("data-validity", validity_key(token.validity));
        dom::set_say(&state, &validity_text(token.validity));
        let stored = match (token.current, token.stored) {
            (true, _) => dom::say(&text!("accounts_this_login")),
            (false, Some(_)) => dom::say(&text!("accounts_kept_here")),
            (false, None) => String::new(),
        };
        dom::set_text(&dom::find(&item, "[data-role=stored]")?, &stored);
        let scopes = if token.token.scopes.is_empty() {
            token.token.token_type.clone().unwrap_or_default()
        } else {
            token.token.scopes.join(", ")
        };
        let t = &token.token;
        let parts = [
            (!scopes.is_empty()).then_some(scopes),
            t.created
                .map(|d| dom::say(&text!("accounts_token_created", d.date()))),
            Some(dom::say(&match t.expires {
                Some(d) => text!("accounts_token_expires", d.date()),
                None => text!("accounts_token_never_expires"),
            })),
            Some(dom::say(&match t.last_used {
                Some(d) => text!("accounts_token_last_used", d.date()),
                None => text!("accounts_token_never_used"),
            })),
        ];
        // Each part is a message of its own, joined by a separator that
        // needs no translation.
        let detail: Vec<String> = parts.into_iter().flatten().collect();
        dom::set_text(
            &dom::find(&item, "[data-role=detail]")?,
            &detail.join(" · "),
        );
        list.append_child(&item.into())
            .map_err(|_| DomError("cannot add a token".into()))?;
    }
    let _ = list.set_attribute(
        "data-count",
        &view.remote.as_ref().map_or(0, Vec::len).to_string(),
    );
    let creates = view.remote.is_some();
    dom::show(&dom::by_id::<Element>("create-form")?, creates);
    Ok(())
}

/// Opens the tokens panel on a fresh list: the create form starts from the
/// provider's default expiry.
fn open_tokens_panel(view: &TokensView) -> Result<(), DomError> {
    let section: Element = dom::by_id("tokens")?;
    dom::show(
        &dom::by_id::<Element>("create-scopes")?,
        view.credential.info.provider == Provider::BentoCloud,
    );
    // The provider's default, or a suggestion where it has none.
    let days: HtmlInputElement = dom::by_id("create-days")?;
    let never: HtmlInputElement = dom::by_id("create-never")?;
    match view.suggested_expiry {
        Expiry::Days(d) => {
            days.set_value(&d.to_string());
            never.set_checked(false);
        }
        Expiry::Never | Expiry::At(_) => days.set_value(""),
    }
    dom::show(&dom::by_id::<Element>("accounts")?, false);
    dom::show(&section, true);
    let _ = section.set_attribute("data-loaded", "true");
    Ok(())
}

fn create() -> Result<(), DomError> {
    show_error(None);
    let Some(id) = panel_credential("tokens") else {
        return Ok(());
    };
    let date = dom::by_id::<HtmlInputElement>("create-date")?.value();
    let days = dom::by_id::<HtmlInputElement>("create-days")?.value();
    let expiry = if dom::by_id::<HtmlInputElement>("create-never")?.checked() {
        Expiry::Never
    } else if let Some(at) = Timestamp::parse(&date) {
        Expiry::At(at)
    } else if let Ok(d) = days.trim().parse::<u32>() {
        Expiry::Days(d)
    } else {
        show_error(Some(&text!("accounts_choose_expiry")));
        return Ok(());
    };
    let scopes = dom::find_all(
        &dom::by_id::<Element>("create-scopes")?,
        "input[type=checkbox]",
    )
    .into_iter()
    .filter_map(|e| e.dyn_into::<HtmlInputElement>().ok())
    .filter(|i| i.checked())
    .map(|i| i.value())
    .collect();
    let spec = TokenSpec {
        name: dom::by_id::<HtmlInputElement>("create-name")?.value(),
        description: dom::by_id::<HtmlInputElement>("create-description")?.value(),
        expiry,
        scopes,
    };
    set_busy("create-submit", true);
    spawn_local(async move {
        let answer = runtime::send(&Request::CreateToken {
            credential: id,
            spec,
        })
        .await;
        set_busy("create-submit", false);
        match answer {
            Ok(Response::Created { secret, .. }) => {
                if let Ok(value) = dom::by_id::<Element>("new-secret-value") {
                    dom::set_text(&value, &secret);
                }
                if let Ok(area) = dom::by_id::<Element>("new-secret") {
                    dom::show(&area, true);
                }
                if let Ok(name) = dom::by_id::<HtmlInputElement>("create-name") {
                    name.set_value("");
                }
                // The token shown once: the focus goes to its Copy button.
                dom::focus("copy-new-secret");
                refresh_open_tokens(id).await;
                refresh().await;
            }
            other => show_error(Some(&dom::unexpected(other))),
        }
    });
    Ok(())
}

fn hide_new_secret() {
    if let Ok(value) = dom::by_id::<Element>("new-secret-value") {
        value.set_text_content(None);
    }
    if let Ok(area) = dom::by_id::<Element>("new-secret") {
        dom::show(&area, false);
    }
}

async fn open_use(id: CredentialId, deployment: Option<String>) {
    let answer = runtime::send(&Request::SuggestSite {
        credential: id,
        deployment: deployment.clone(),
    })
    .await;
    let suggestion = match answer {
        Ok(Response::Suggestion { suggestion }) => suggestion,
        other => return show_error(Some(&dom::unexpected(other))),
    };
    let filled = (|| -> Result<(), DomError> {
        let section: Element = dom::by_id("use")?;
        let _ = section.set_attribute("data-credential-id", &id.to_string());
        if deployment.is_none() {
            dom::by_id::<HtmlInputElement>("use-deployment")?.set_value("");
        }
        let (pattern, header) = match &suggestion {
            Some(s) => (s.pattern.clone(), s.header.clone()),
            None => (
                String::new(),
                SuggestedHeader {
                    name: "Authorization".into(),
                    scheme: ValueScheme::Bearer,
                },
            ),
        };
        dom::by_id::<HtmlInputElement>("use-pattern")?.set_value(&pattern);
        dom::by_id::<HtmlInputElement>("use-header-name")?.set_value(&header.name);
        dom::by_id::<HtmlSelectElement>("use-scheme")?.set_value(header.scheme.as_str());
        dom::show(&dom::by_id::<Element>("accounts")?, false);
        dom::show(&section, true);
        let _ = section.set_attribute("data-loaded", "true");
        Ok(())
    })();
    if let Err(e) = filled {
        show_error(Some(&dom::page_error(&e)));
    }
}

fn use_here() -> Result<(), DomError> {
    show_error(None);
    let Some(id) = panel_credential("use") else {
        return Ok(());
    };
    let pattern = dom::by_id::<HtmlInputElement>("use-pattern")?.value();
    let allow_http = dom::by_id::<HtmlInputElement>("use-allow-http")?.checked();
    let pattern = with_ascii_host(&pattern, &browser::BrowserHostNames).into_owned();
    let parsed = match SitePattern::parse(&pattern, ParseOptions { allow_http }) {
        Ok(p) => p,
        Err(e) => {
            show_error(Some(&e.text()));
            return Ok(());
        }
    };
    let Some(scheme) = ValueScheme::parse(&dom::by_id::<HtmlSelectElement>("use-scheme")?.value())
    else {
        return Ok(());
    };
    // Asked inside the click, before any await, or the browser refuses.
    let asked = permissions::request_origins(&parsed.host_permissions());
    let pending = runtime::send_now(&Request::UseCredential {
        credential: id,
        pattern,
        allow_http,
        header: SuggestedHeader {
            name: dom::by_id::<HtmlInputElement>("use-header-name")?.value(),
            scheme,
        },
    });
    spawn_local(async move {
        if let Ok(asked) = asked {
            let _ = asked.await;
        }
        let answer = pending.await;
        match answer {
            Ok(Response::Rules(_)) => {
                close("use");
                refresh().await;
                // The page's other half shows the new rule: the popup's
                // site card, or the options page's list.
                if dom::by_id::<Element>("site").is_ok() {
                    super::popup::refresh_site().await;
                } else {
                    super::options::refresh_rules();
                }
            }
            other => show_error(Some(&dom::unexpected(other))),
        }
    });
    Ok(())
}

/// Asks the background for copy text and puts it on the clipboard. The
/// text holds secrets, so it is never shown or kept.
fn copy_from_background(request: Request) {
    let pending = runtime::send_now(&request);
    spawn_local(async move {
        let answer = pending.await;
        match answer {
            Ok(Response::Copy(view)) => match view.curl.or(view.env) {
                Some(text) => copy_text(text, text!("accounts_copied")),
                None => show_notice(Some(&text!("accounts_nothing_to_copy"))),
            },
            other => show_error(Some(&dom::unexpected(other))),
        }
    });
}

fn copy_text(text: String, done: Text) {
    let written = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("navigator")).ok())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("clipboard")).ok())
        .and_then(|clipboard| {
            let write: js_sys::Function =
                js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText"))
                    .ok()?
                    .dyn_into()
                    .ok()?;
            write.call1(&clipboard, &JsValue::from_str(&text)).ok()
        });
    spawn_local(async move {
        let result = match written {
            Some(promise) => JsFuture::from(js_sys::Promise::resolve(&promise))
                .await
                .is_ok(),
            None => false,
        };
        if result {
            show_notice(Some(&done));
        } else {
            show_error(Some(&text!("accounts_clipboard_refused")));
        }
    });
}

/// Feedback lands next to what caused it: in the token list while it is
/// open, else under the accounts' heading. A new message replaces the last
/// one, so no notice outlives its moment.
fn show_notice(message: Option<&Text>) {
    let tokens_open = dom::by_id::<Element>("tokens").is_ok_and(|t| !t.has_attribute("hidden"));
    if message.is_some() {
        dom::feedback("account-error", None);
        dom::feedback("tokens-error", None);
    }
    let (here, elsewhere) = if tokens_open {
        ("tokens-notice", "account-notice")
    } else {
        ("account-notice", "tokens-notice")
    };
    dom::feedback(elsewhere, None);
    dom::feedback(here, message);
}

pub(super) fn show_error(message: Option<&Text>) {
    let tokens_open = dom::by_id::<Element>("tokens").is_ok_and(|t| !t.has_attribute("hidden"));
    if message.is_some() {
        dom::feedback("account-notice", None);
    }
    let (here, elsewhere) = if tokens_open {
        ("tokens-error", "account-error")
    } else {
        ("account-error", "tokens-error")
    };
    dom::feedback(elsewhere, None);
    dom::feedback(here, message);
}
