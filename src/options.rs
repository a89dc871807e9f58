//! The options page: the full rule editor.
//!
//! The page holds no copy of the rules beyond what it shows: every change is
//! a request to the background, and the list is re-rendered from the answer.
//! The rule being edited is remembered in the form's `data-editing-id`.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{
    Element, Event, HtmlFormElement, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement,
};

use super::browser::{permissions, runtime, BrowserError};
use super::dom::{self, DomError};
use super::save::start_save;
use super::{accounts, browser_login, export};
use tokenward_core::credential::{Timestamp, DAY, EXPIRY_WARNING};
use tokenward_core::message::{NotSent, Request, Response, RuleView, RulesView, UrlTestView};
use tokenward_core::rules::{HeaderDraft, RuleDraft, SiteRuleId};
use tokenward_core::text;
use tokenward_core::text::{Localize, Text};

#[wasm_bindgen]
pub async fn options_main() -> Result<(), JsValue> {
    dom::localize_page()?;
    let form: HtmlFormElement = dom::by_id("rule-form")?;
    dom::listen(&form, "submit", |event| {
        event.prevent_default();
        if let Err(e) = submit() {
            show_error(Some(&dom::page_error(&e)));
        }
    });
    dom::listen(&dom::by_id::<Element>("rule-cancel")?, "click", |_| {
        let _ = reset_form();
    });
    dom::listen(&dom::by_id::<Element>("add-header")?, "click", |_| {
        let _ = add_header_row(None);
    });
    let header_rows: Element = dom::by_id("rule-headers")?;
    dom::listen(&header_rows, "click", |event| {
        if let Some(row) = dom::origin_of(&event, "[data-action=remove-header]")
            .and_then(|button| button.closest(".header-row").ok().flatten())
        {
            row.remove();
        }
    });
    dom::listen(&header_rows, "change", |event| {
        if let Some(select) = dom::origin_of(&event, "[data-field=scheme]") {
            if let Some(row) = select.closest(".header-row").ok().flatten() {
                let _ = sync_secret_field(&row);
            }
        }
    });
    let rules: Element = dom::by_id("rules")?;
    dom::listen(&rules, "click", on_rules_click);
    dom::listen(&dom::by_id::<Element>("managed-rules")?, "click", |event| {
        let Some(item) = dom::origin_of(&event, "[data-action=grant]")
            .and_then(|b| b.closest("li.managed").ok().flatten())
        else {
            return;
        };
        // Asked inside the click, before any await, or the browser refuses.
        let origins = dom::host_permissions(&item).unwrap_or_default();
        let asked = permissions::request_origins(&origins);
        spawn_local(async move {
            if let Ok(answer) = asked {
                let _ = answer.await;
            }
            refresh_rules();
        });
    });
    dom::listen(&dom::by_id::<Element>("rule-search")?, "input", |_| {
        apply_search();
    });
    dom::listen(&dom::by_id::<Element>("test-form")?, "submit", |event| {
        event.prevent_default();
        let _ = test_url();
    });
    dom::listen(&dom::by_id::<Element>("rule-initiators")?, "change", |_| {
        let _ = sync_initiators();
    });
    export::install()?;
    super::import::install()?;
    dom::listen(&rules, "change", on_rules_change);

    // Escape leaves an edit, as Cancel does.
    dom::on_escape(|| {
        let editing =
            dom::by_id::<Element>("rule-form").is_ok_and(|f| f.has_attribute("data-editing-id"));
        if editing {
            let _ = reset_form();
            dom::focus("rule-pattern");
        }
    });
    reset_form()?;
    run(Request::ListRules, None);
    // Accounts and their tokens, as in the popup.
    accounts::install(None)?;
    browser_login::install()?;
    accounts::refresh().await;
    browser_login::refresh().await;
    Ok(())
}

/// Draws the rule list again, after a change made elsewhere on the page
/// (a token used on a site).
pub(super) fn refresh_rules() {
    run(Request::ListRules, None);
}

/// Sends a request and renders the answer. `done` is the status line to
/// show on success.
fn run(request: Request, done: Option<Text>) {
    let is_save = matches!(request, Request::SaveRule { .. });
    let pending = runtime::send_now(&request);
    spawn_local(async move {
        let answer = pending.await;
        let _ = show_answer(is_save, answer, done.as_ref());
    });
}

/// What a request's answer did to the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// The list was drawn; the request saved this rule, if it saved one.
    Rules { saved: Option<SiteRuleId> },
    /// An error was shown.
    Failed,
}

/// Renders the background's answer: the list is drawn once, from it (a
/// rule's change, applied to the list shown).
fn show_answer(
    is_save: bool,
    answer: Result<Response, BrowserError>,
    done: Option<&Text>,
) -> Shown {
    let saved = match answer {
        Ok(Response::Rules(view)) => {
            draw(&view);
            view.saved
        }
        Ok(Response::RuleChanged(change)) => {
            let (id, saved) = (change.id, change.saved);
            match SHOWN.with(|shown| shown.borrow_mut().take()) {
                Some(mut view) => {
                    view.apply(change);
                    if let Err(e) = patch(&view, id) {
                        show_error(Some(&dom::page_error(&e)));
                    }
                    SHOWN.with(|shown| *shown.borrow_mut() = Some(view));
                }
                // Nothing shown yet to change: the whole list, asked for.
                None => refresh_rules(),
            }
            saved
        }
        other => {
            let message = dom::unexpected(other);
            if is_save {
                show_error(Some(&message));
            } else {
                set_status(&message);
            }
            return Shown::Failed;
        }
    };
    if saved.is_some() {
        let _ = reset_form();
    }
    if let Some(text) = done {
        set_status(text);
    }
    Shown::Rules { saved }
}

/// The form fields an error can be tied to.
const FIELDS: [&str; 3] = ["rule-pattern", "rule-also-from", "rule-label"];

fn submit() -> Result<(), DomError> {
    let draft = read_form()?;
    show_error(None);
    for field in FIELDS {
        dom::mark_invalid(field, None);
    }
    let mut pending = match start_save(draft) {
        Ok(pending) => pending,
        Err(e) => {
            show_error(Some(&e.text()));
            // The error is tied to its field, which gets the focus.
            let field = match &e {
                tokenward_core::rules::RuleError::Pattern(_)
                | tokenward_core::rules::RuleError::Duplicate(_) => Some("rule-pattern"),
                tokenward_core::rules::RuleError::Also { .. } => Some("rule-also-from"),
                tokenward_core::rules::RuleError::LabelTooLong => Some("rule-label"),
                _ => None,
            };
            if let Some(field) = field {
                dom::mark_invalid(field, Some("rule-error"));
                dom::focus(field);
            }
            return Ok(());
        }
    };
    let origin = pending.pattern.origin();
    spawn_local(async move {
        let answer = pending.answer().await;
        let waiting = text!("options_saved_waiting_permission", &origin);
        let Shown::Rules { saved } = show_answer(true, answer, Some(&waiting)) else {
            return;
        };
        let granted = pending.granted().await;
        set_status(&if granted {
            text!("options_saved")
        } else {
            text!("options_saved_no_permission", &origin)
        });
        // The prompt's answer changes only the saved rule's permission
        // mark: the list drawn from the save stays.
        if let Some(id) = saved {
            recheck_permission(id);
        }
    });
    Ok(())
}

fn read_form() -> Result<RuleDraft, DomError> {
    let form: Element = dom::by_id("rule-form")?;
    let editing = form
        .get_attribute("data-editing-id")
        .and_then(|id| id.parse::<SiteRuleId>().ok());
    let enabled = form
        .get_attribute("data-editing-enabled")
        .is_none_or(|v| v == "true");
    let headers = dom::find_all(&dom::by_id("rule-headers")?, ".header-row")
        .iter()
        .map(|row| {
            Ok(HeaderDraft {
                name: dom::input_value(row, "[data-field=name]")?,
                scheme: dom::input_value(row, "[data-field=scheme]")?,
                secret: dom::input_value(row, "[data-field=secret]")?,
                credential: None,
            })
        })
        .collect::<Result<Vec<_>, DomError>>()?;
    Ok(RuleDraft {
        id: editing,
        label: dom::by_id::<HtmlInputElement>("rule-label")?.value(),
        pattern: dom::by_id::<HtmlInputElement>("rule-pattern")?.value(),
        allow_http: dom::by_id::<HtmlInputElement>("rule-allow-http")?.checked(),
        enabled,
        headers,
        any_site: dom::by_id::<HtmlInputElement>("rule-any-site")?.checked(),
        also_from: dom::by_id::<HtmlTextAreaElement>("rule-also-from")?
            .value()
            .lines()
            .map(str::to_owned)
            .collect(),
    })
}

/// "Any site" shows its warning, and the "also from" list, which only a
/// same-site rule uses, is disabled.
fn sync_initiators() -> Result<(), DomError> {
    let any_site = dom::by_id::<HtmlInputElement>("rule-any-site")?.checked();
    dom::show(&dom::by_id::<Element>("rule-any-site-warning")?, any_site);
    dom::by_id::<HtmlTextAreaElement>("rule-also-from")?.set_disabled(any_site);
    Ok(())
}

fn reset_form() -> Result<(), DomError> {
    let form: HtmlFormElement = dom::by_id("rule-form")?;
    form.reset();
    let _ = form.remove_attribute("data-editing-id");
    let _ = form.remove_attribute("data-editing-enabled");
    dom::set_say(
        &dom::by_id::<Element>("rule-form-title")?,
        &text!("ui_add_a_rule"),
    );
    dom::set_say(&dom::by_id::<Element>("rule-save")?, &text!("ui_add_rule"));
    dom::by_id::<Element>("rule-headers")?.set_text_content(None);
    add_header_row(None)?;
    sync_initiators()?;
    show_error(None);
    for field in FIELDS {
        dom::mark_invalid(field, None);
    }
    Ok(())
}

/// Adds a header row, filled from a stored header when editing. The secret
/// of a stored header is never sent to the page; its field stays blank and
/// says that blank keeps it.
fn add_header_row(from: Option<&tokenward_core::message::HeaderView>) -> Result<(), DomError> {
    let row = dom::instantiate("header-row-template")?;
    if let Some(header) = from {
        dom::find::<HtmlInputElement>(&row, "[data-field=name]")?.set_value(&header.name);
        dom::find::<HtmlSelectElement>(&row, "[data-field=scheme]")?.set_value(&header.scheme);
        dom::find::<HtmlInputElement>(&row, "[data-field=secret]")?
            .set_placeholder(&dom::say(&text!("options_secret_unchanged")));
    }
    let secret: HtmlInputElement = dom::find(&row, "[data-field=secret]")?;
    dom::guard_secret_paste(&secret, |text| show_error(Some(text)));
    sync_secret_field(&row)?;
    dom::by_id::<Element>("rule-headers")?
        .append_child(&row)
        .map_err(|_| DomError("could not add a header row".to_owned()))?;
    Ok(())
}

/// A `remove` row has no value, so its secret field is disabled.
fn sync_secret_field(row: &Element) -> Result<(), DomError> {
    let removing = dom::input_value(row, "[data-field=scheme]")? == "remove";
    dom::find::<HtmlInputElement>(row, "[data-field=secret]")?.set_disabled(removing);
    Ok(())
}

/// Draws the rule list from an answer another part of the page received
/// (an import).
pub(super) fn show_rules(view: &RulesView) {
    draw(view);
}

/// [`render`], its error shown.
fn draw(view: &RulesView) {
    if let Err(e) = render(view) {
        show_error(Some(&dom::page_error(&e)));
    }
}

thread_local! {
    /// The list the page shows, which a rule's change ([`Response::RuleChanged`])
    /// applies to. The page's own, gone with it; the background keeps none.
    static SHOWN: std::cell::RefCell<Option<RulesView>> = const { std::cell::RefCell::new(None) };
}

fn render(view: &RulesView) -> Result<(), DomError> {
    SHOWN.with(|shown| *shown.borrow_mut() = Some(view.clone()));
    let list: Element = dom::by_id("rules")?;
    list.set_text_content(None);
    // Grouped by site (a wildcard's suffix, an exact host), sites in
    // alphabetical order, rules in the order they were made.
    let mut groups: std::collections::BTreeMap<String, Vec<&RuleView>> = Default::default();
    for rule in &view.rules {
        groups.entry(site_of(&rule.pattern)).or_default().push(rule);
    }
    for (site, rules) in groups {
        let group = site_group(&list, &site, None)?;
        let items: Element = dom::find(&group, "ul")?;
        for rule in rules {
            add_rule(&items, rule, None)?;
        }
    }
    render_policy(view.policy.as_ref())?;
    show_list_state(view)
}

/// Draws rule `id` as `view` (the list shown, with the rule's change
/// applied) has it, leaving every other item as drawn: its item replaced,
/// moved to its site's group or taken out, a group made or removed as it
/// fills or empties. [`render`] draws the same list whole; with 1,666 rules
/// that took half a second after each save, most of it one permission
/// check per rule.
fn patch(view: &RulesView, id: SiteRuleId) -> Result<(), DomError> {
    let list: Element = dom::by_id("rules")?;
    let selector = format!("li[data-rule-id=\"{id}\"]");
    if let Some(old) = list.query_selector(&selector).ok().flatten() {
        let group = old.closest(".rule-group").ok().flatten();
        old.remove();
        if let Some(group) = group.filter(|g| g.query_selector("li").ok().flatten().is_none()) {
            group.remove();
        }
    }
    if let Some(rule) = view.rules.iter().find(|r| r.id == id) {
        let site = site_of(&rule.pattern);
        // Sites in alphabetical order, as `render` sorts them.
        let site_name = |group: &Element| {
            dom::find::<Element>(group, "[data-role=site]")
                .ok()
                .and_then(|name| name.text_content())
                .unwrap_or_default()
        };
        let groups = dom::find_all(&list, ".rule-group");
        let found = groups.iter().find(|g| site_name(g) == site).cloned();
        let group = match found {
            Some(group) => group,
            None => {
                let before = groups.iter().find(|g| site_name(g) > site);
                site_group(&list, &site, before)?
            }
        };
        let items: Element = dom::find(&group, "ul")?;
        // Rules in the order they were made: by id.
        let next = dom::find_all(&items, "li[data-rule-id]")
            .into_iter()
            .find(|sibling| {
                sibling
                    .get_attribute("data-rule-id")
                    .and_then(|other| other.parse::<SiteRuleId>().ok())
                    .is_some_and(|other| other > id)
            });
        add_rule(&items, rule, next.as_ref())?;
    }
    show_list_state(view)
}

/// A new group for `site` in `list`, before `before` (at the end if none).
fn site_group(list: &Element, site: &str, before: Option<&Element>) -> Result<Element, DomError> {
    let group = dom::instantiate("group-template")?;
    dom::set_text(&dom::find(&group, "[data-role=site]")?, site);
    list.insert_before(&group, before.map(|g| g.as_ref()))
        .map_err(|_| DomError("could not add a group".to_owned()))?;
    Ok(group)
}

/// `rule`'s item in a group's `items`, before `before` (at the end if
/// none), then its site permission checked.
fn add_rule(items: &Element, rule: &RuleView, before: Option<&Element>) -> Result<(), DomError> {
    let item = rule_item(rule)?;
    items
        .insert_before(&item, before.map(|n| n.as_ref()))
        .map_err(|_| DomError("could not add a rule".to_owned()))?;
    mark_permission(
        item,
        rule.host_permissions.clone(),
        rule.enabled && rule.held_back.is_none(),
    );
    Ok(())
}

/// What `render` and `patch` end with: the search applied, and the notes
/// about the whole list.
fn show_list_state(view: &RulesView) -> Result<(), DomError> {
    apply_search();
    dom::show(
        &dom::by_id::<Element>("rules-empty")?,
        view.rules.is_empty(),
    );
    dom::feedback("limit-warning", view.limit_warning.as_ref());
    dom::feedback(
        "unreadable-note",
        (view.unreadable > 0)
            .then(|| text!("options_unreadable_rules", view.unreadable))
            .as_ref(),
    );
    dom::mark_ready();
    Ok(())
}

/// What the administrator set: the managed rules (shown, not editable),
/// the sites rules may name, and the policy entries refused.
fn render_policy(policy: Option<&tokenward_core::message::PolicyView>) -> Result<(), DomError> {
    let section: Element = dom::by_id("policy")?;
    let list: Element = dom::by_id("managed-rules")?;
    list.set_text_content(None);
    let Some(policy) = policy else {
        dom::show(&section, false);
        return Ok(());
    };
    dom::show(&section, true);
    dom::show(
        &dom::by_id::<Element>("policy-protection")?,
        policy.require_protection,
    );
    let allowed: Element = dom::by_id("policy-allowed")?;
    match &policy.allowed_sites {
        Some(sites) if sites.is_empty() => {
            dom::set_say(&allowed, &text!("options_policy_allows_none"))
        }
        Some(sites) => dom::set_say(&allowed, &text!("options_policy_allows", sites.join(", "))),
        None => {}
    }
    dom::show(&allowed, policy.allowed_sites.is_some());
    for rule in &policy.rules {
        let item = dom::instantiate("managed-rule-template")?;
        let _ = item.set_attribute("data-managed-id", &rule.id.to_string());
        dom::set_host_permissions(&item, &rule.host_permissions);
        dom::set_text(&dom::find(&item, "[data-role=pattern]")?, &rule.pattern);
        dom::set_text(&dom::find(&item, "[data-role=label]")?, &rule.label);
        let state: Element = dom::find(&item, "[data-role=state]")?;
        let waiting = rule.headers.iter().find(|h| !h.logged_in);
        let (mark, line) = match (rule.sending, waiting) {
            (true, _) => ("sending", text!("options_rule_sending")),
            (false, Some(h)) => (
                "held-back",
                text!(
                    "options_managed_needs_login",
                    text!(
                        "options_managed_login",
                        h.provider.as_str(),
                        h.endpoint.as_str()
                    )
                ),
            ),
            (false, None) => ("held-back", text!("options_managed_not_sending")),
        };
        let _ = state.set_attribute("data-state", mark);
        dom::set_say(&state, &line);
        let headers: Vec<String> = rule
            .headers
            .iter()
            .map(|h| {
                let login = text!(
                    "options_managed_login",
                    h.provider.as_str(),
                    h.endpoint.as_str()
                );
                dom::say(&text!("options_managed_header", h.name.as_str(), login))
            })
            .collect();
        dom::set_text(
            &dom::find(&item, "[data-role=headers]")?,
            &headers.join("\n"),
        );
        let grant: Element = dom::find(&item, "[data-action=grant]")?;
        let _ = grant.set_attribute(
            "aria-label",
            &dom::say(&text!("options_name_grant", &rule.pattern)),
        );
        list.append_child(&item)
            .map_err(|_| DomError("could not add a managed rule".to_owned()))?;
        mark_permission(item, rule.host_permissions.clone(), rule.sending);
    }
    let problems: Element = dom::by_id("policy-problem-list")?;
    problems.set_text_content(None);
    for problem in &policy.problems {
        let li = dom::document()?
            .create_element("li")
            .map_err(|_| DomError("could not add a problem".to_owned()))?;
        dom::set_say(
            &li,
            &text!(
                "options_policy_problem",
                problem.at.as_str(),
                problem.why.clone()
            ),
        );
        let _ = problems.append_child(&li);
    }
    dom::show(
        &dom::by_id::<Element>("policy-problems")?,
        !policy.problems.is_empty(),
    );
    Ok(())
}

fn rule_item(rule: &RuleView) -> Result<Element, DomError> {
    let item = dom::instantiate("rule-template")?;
    let _ = item.set_attribute("data-rule-id", &rule.id.to_string());
    let _ = item.set_attribute("data-enabled", if rule.enabled { "true" } else { "false" });
    dom::set_host_permissions(&item, &rule.host_permissions);
    dom::set_text(&dom::find(&item, "[data-role=pattern]")?, &rule.pattern);
    dom::set_text(&dom::find(&item, "[data-role=label]")?, &rule.label);
    // Sending or not, and why not, as the popup says it for a site.
    let (state, line) = match (rule.enabled, rule.held_back) {
        (false, _) => ("off", text!("options_rule_off")),
        (true, Some(why)) => (
            "held-back",
            match why {
                NotSent::Expired => text!("options_rule_not_sending_expired"),
                NotSent::Refused => text!("options_rule_not_sending_refused"),
                NotSent::CredentialDeleted => text!("options_rule_not_sending_deleted"),
                NotSent::Locked => text!("options_rule_not_sending_locked"),
                NotSent::Disabled => text!("options_rule_off"),
                NotSent::PermissionMissing => text!("options_rule_not_sending_permission"),
                NotSent::NotAllowed => text!("options_rule_not_allowed"),
            },
        ),
        (true, None) => {
            let expiring = rule.expiring_soon();
            if let Some(expires) = expiring {
                let _ = item.set_attribute("data-expiring", &expires.0.to_string());
            }
            sending_line(expiring)
        }
    };
    let state_line: Element = dom::find(&item, "[data-role=state]")?;
    let _ = state_line.set_attribute("data-state", state);
    dom::set_say(&state_line, &line);
    let headers: Element = dom::find(&item, "[data-role=headers]")?;
    let summaries: Vec<String> = rule.headers.iter().map(|h| dom::say(&h.summary)).collect();
    dom::set_text(&headers, &summaries.join("\n"));
    let policy: Element = dom::find(&item, "[data-role=policy]")?;
    let _ = policy.set_attribute(
        "data-policy",
        if rule.any_site {
            "any-site"
        } else {
            "same-site"
        },
    );
    dom::set_say(&policy, &rule.policy_text());
    dom::find::<HtmlInputElement>(&item, "input[data-action=toggle]")?.set_checked(rule.enabled);
    // The same controls on every rule, each named for its rule.
    for (action, name) in [
        ("toggle", text!("options_name_toggle", &rule.pattern)),
        ("grant", text!("options_name_grant", &rule.pattern)),
        ("edit", text!("options_name_edit", &rule.pattern)),
        ("delete", text!("options_name_delete", &rule.pattern)),
        (
            "confirm-delete",
            text!("options_name_confirm_delete", &rule.pattern),
        ),
    ] {
        let control: Element = dom::find(&item, &format!("[data-action={action}]"))?;
        let _ = control.set_attribute("aria-label", &dom::say(&name));
    }
    Ok(item)
}

/// The line of a rule that sends its headers: with the date its token
/// expires when that is soon, as the popup says it for the site.
fn sending_line(expiring: Option<Timestamp>) -> (&'static str, Text) {
    match expiring {
        Some(expires) => (
            "expiring",
            text!(
                "options_rule_sending_expiring",
                expires.date(),
                EXPIRY_WARNING / DAY
            ),
        ),
        None => ("sending", text!("options_rule_sending")),
    }
}

/// When the token of a drawn rule expires, if soon (`rule_item` keeps it).
fn drawn_expiry(item: &Element) -> Option<Timestamp> {
    item.get_attribute("data-expiring")
        .and_then(|seconds| seconds.parse().ok())
        .map(Timestamp)
}

/// Marks a rule whose site permission is missing, and offers the grant.
/// Firefox grants MV3 host permissions only on request, and every browser
/// lets the user withdraw them; without them the rule sends nothing, and a
/// rule otherwise `sending` says so.
fn mark_permission(item: Element, origins: Vec<String>, sending: bool) {
    spawn_local(async move {
        let held = permissions::contains_origins(&origins)
            .await
            .unwrap_or(false);
        let _ = item.set_attribute("data-permission", if held { "granted" } else { "missing" });
        if let Ok(grant) = dom::find::<Element>(&item, "[data-action=grant]") {
            dom::show(&grant, !held);
        }
        if sending {
            if let Ok(line) = dom::find::<Element>(&item, "[data-role=state]") {
                let (state, says) = if held {
                    sending_line(drawn_expiry(&item))
                } else {
                    ("permission", text!("options_rule_not_sending_permission"))
                };
                // Drawn as sending already: only a change is written.
                if line.get_attribute("data-state").as_deref() != Some(state) {
                    let _ = line.set_attribute("data-state", state);
                    dom::set_say(&line, &says);
                }
            }
        }
    });
}

/// Marks one drawn rule's permission again, after a prompt: the only part
/// of the list a permission changes, so the list is not drawn again.
fn recheck_permission(id: SiteRuleId) {
    let Ok(list) = dom::by_id::<Element>("rules") else {
        return;
    };
    let Ok(item) = dom::find::<Element>(&list, &format!("[data-rule-id=\"{id}\"]")) else {
        return;
    };
    let origins = dom::host_permissions(&item).unwrap_or_default();
    // Sending, as the background sees it, unless only the permission was
    // missing: the two states this mark moves between.
    let sending = dom::find::<Element>(&item, "[data-role=state]")
        .ok()
        .and_then(|line| line.get_attribute("data-state"))
        .is_some_and(|state| matches!(state.as_str(), "sending" | "expiring" | "permission"));
    mark_permission(item, origins, sending);
}

/// The site a rule is grouped under: its host, or a wildcard's suffix.
fn site_of(pattern: &str) -> String {
    let rest = pattern.split_once("://").map_or(pattern, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rfind(':') {
        // An IPv6 host keeps its colons.
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    host.trim_start_matches("*.").to_owned()
}

/// Shows only the rules whose text contains the search, and the groups
/// that still hold one.
fn apply_search() {
    let query = dom::by_id::<HtmlInputElement>("rule-search")
        .map(|i| dom::lowercase(i.value().trim()))
        .unwrap_or_default();
    let Ok(list) = dom::by_id::<Element>("rules") else {
        return;
    };
    let mut any = false;
    for group in dom::find_all(&list, ".rule-group") {
        let mut shown = 0;
        for item in dom::find_all(&group, "li.rule") {
            let text = dom::lowercase(&item.text_content().unwrap_or_default());
            let visible = query.is_empty() || text.contains(&query);
            dom::show(&item, visible);
            shown += usize::from(visible);
        }
        dom::show(&group, shown > 0);
        any |= shown > 0;
    }
    if let Ok(none) = dom::by_id::<Element>("rules-none-found") {
        dom::show(&none, !query.is_empty() && !any);
    }
}

/// Runs the "test a URL" form.
fn test_url() -> Result<(), DomError> {
    let kind = dom::by_id::<HtmlSelectElement>("test-kind")?.value();
    let request = Request::TestUrl {
        url: dom::by_id::<HtmlInputElement>("test-url")?.value(),
        from: Some(dom::by_id::<HtmlInputElement>("test-from")?.value()),
        method: dom::by_id::<HtmlSelectElement>("test-method")?.value(),
        kind: tokenward_core::json::read(&serde_json::Value::String(kind))
            .unwrap_or(tokenward_core::dnr::ResourceType::MainFrame),
    };
    let pending = runtime::send_now(&request);
    spawn_local(async move {
        let summary = match pending.await {
            Ok(Response::UrlTest(view)) => {
                let _ = render_test(&view);
                return;
            }
            other => dom::unexpected(other),
        };
        dom::feedback("test-summary", Some(&summary));
    });
    Ok(())
}

fn render_test(view: &UrlTestView) -> Result<(), DomError> {
    let summary = match (&view.problem, view.headers.len()) {
        (Some(problem), _) => problem.clone(),
        (None, 0) => text!("options_test_no_header"),
        (None, 1) => text!("options_test_one_header"),
        (None, n) => text!("options_test_headers", n),
    };
    let line: Element = dom::by_id("test-summary")?;
    let _ = line.set_attribute("data-headers", &view.headers.len().to_string());
    dom::set_say(&line, &summary);
    let fill = |id: &str, lines: Vec<Text>| -> Result<(), DomError> {
        let list: Element = dom::by_id(id)?;
        list.set_text_content(None);
        for text in lines {
            let item = dom::document()?
                .create_element("li")
                .map_err(|_| DomError("could not create a list item".to_owned()))?;
            dom::set_say(&item, &text);
            let _ = list.append_child(&item);
        }
        Ok(())
    };
    fill(
        "test-headers",
        view.headers
            .iter()
            .map(|h| text!("options_test_header", h.summary.clone(), &h.pattern))
            .collect(),
    )?;
    fill(
        "test-not-applied",
        view.not_applied
            .iter()
            .map(|n| text!("options_test_not_applied", &n.pattern, n.why.clone()))
            .collect(),
    )
}

fn rule_of(event: &Event) -> Option<(Element, SiteRuleId)> {
    let item = dom::origin_of(event, "li.rule")?;
    let id = item.get_attribute("data-rule-id")?.parse().ok()?;
    Some((item, id))
}

fn on_rules_click(event: Event) {
    let Some((item, id)) = rule_of(&event) else {
        return;
    };
    if dom::origin_of(&event, "[data-action=grant]").is_some() {
        // Asked inside the click, before any await, or the browser refuses.
        let origins = dom::host_permissions(&item).unwrap_or_default();
        let asked = permissions::request_origins(&origins);
        spawn_local(async move {
            if let Ok(answer) = asked {
                let _ = answer.await;
            }
            recheck_permission(id);
        });
    } else if dom::origin_of(&event, "[data-action=edit]").is_some() {
        if let Err(e) = start_edit(id) {
            set_status(&dom::page_error(&e));
        }
    } else if dom::origin_of(&event, "[data-action=confirm-delete]").is_some() {
        run(Request::DeleteRule { id }, Some(text!("options_deleted")));
    } else if dom::origin_of(&event, "[data-action=delete]").is_some() {
        // Two steps, in the page: a modal confirm() would block the page and
        // any automation driving it.
        let _ = item.set_attribute("data-confirming", "true");
        if let Ok(confirm) = dom::find::<Element>(&item, "[data-action=confirm-delete]") {
            dom::show(&confirm, true);
        }
    }
}

fn on_rules_change(event: Event) {
    let Some(toggle) = dom::origin_of(&event, "input[data-action=toggle]") else {
        return;
    };
    let Some((item, id)) = rule_of(&event) else {
        return;
    };
    let Ok(toggle) = toggle.dyn_into::<HtmlInputElement>() else {
        return;
    };
    let enabled = toggle.checked();
    if enabled {
        // Turning a rule on is a click: the moment to ask for a permission
        // that was refused or withdrawn since the rule was saved. The answer
        // does not gate the change; the page reports the result of the save.
        if let Some(origins) = dom::host_permissions(&item) {
            let _ = permissions::request_origins(&origins);
        }
    }
    run(
        Request::SetEnabled { id, enabled },
        Some(if enabled {
            text!("options_turned_on")
        } else {
            text!("options_turned_off")
        }),
    );
}

/// Loads a rule into the form. The rule comes fresh from the background, so
/// an edit never starts from a stale copy.
fn start_edit(id: SiteRuleId) -> Result<(), DomError> {
    spawn_local(async move {
        let view = match runtime::send(&Request::ListRules).await {
            Ok(Response::Rules(view)) => view,
            other => return set_status(&dom::unexpected(other)),
        };
        let Some(rule) = view.rules.into_iter().find(|r| r.id == id) else {
            return set_status(&text!("options_rule_gone"));
        };
        if let Err(e) = fill_form(&rule) {
            set_status(&dom::page_error(&e));
        }
    });
    Ok(())
}

fn fill_form(rule: &RuleView) -> Result<(), DomError> {
    reset_form()?;
    let form: Element = dom::by_id("rule-form")?;
    let _ = form.set_attribute("data-editing-id", &rule.id.to_string());
    let _ = form.set_attribute(
        "data-editing-enabled",
        if rule.enabled { "true" } else { "false" },
    );
    dom::set_say(
        &dom::by_id::<Element>("rule-form-title")?,
        &text!("options_edit_rule"),
    );
    dom::set_say(
        &dom::by_id::<Element>("rule-save")?,
        &text!("options_save_changes"),
    );
    dom::by_id::<HtmlInputElement>("rule-pattern")?.set_value(&rule.pattern);
    dom::by_id::<HtmlInputElement>("rule-label")?.set_value(&rule.label);
    dom::by_id::<HtmlInputElement>("rule-allow-http")?.set_checked(rule.allow_http);
    dom::by_id::<HtmlInputElement>("rule-any-site")?.set_checked(rule.any_site);
    dom::by_id::<HtmlInputElement>("rule-same-site")?.set_checked(!rule.any_site);
    dom::by_id::<HtmlTextAreaElement>("rule-also-from")?.set_value(&rule.also_from.join("\n"));
    sync_initiators()?;
    dom::by_id::<Element>("rule-headers")?.set_text_content(None);
    for header in &rule.headers {
        add_header_row(Some(header))?;
    }
    if rule.headers.is_empty() {
        add_header_row(None)?;
    }
    if let Ok(input) = dom::by_id::<web_sys::HtmlElement>("rule-pattern") {
        let _ = input.focus();
    }
    Ok(())
}

/// The rule form's error, under the form, or none.
fn show_error(message: Option<&Text>) {
    dom::feedback("rule-error", message);
}

/// The rule list's status line.
fn set_status(message: &Text) {
    if let Ok(status) = dom::by_id::<Element>("status") {
        dom::set_say(&status, message);
    }
}
