//! The options page's import: the user picks a file (never a URL); the
//! background reads it and answers with a preview, entry by entry; nothing
//! is written until the user confirms, and then only the entries ticked.
//!
//! The page keeps no copy of the file: the preview's basis and choices are
//! in the DOM, and the file is read again from the input on confirm, after
//! the host permissions are asked for inside the click.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Element, HtmlInputElement};

use super::browser::{self, permissions, runtime};
use super::dom::{self, DomError};
use tokenward_core::import::{ImportChoice, ImportEntry, ImportPreview, Outcome, MAX_FILE_BYTES};
use tokenward_core::message::{ImportFile, Passphrase, Request, Response};
use tokenward_core::pattern::{with_ascii_host, ParseOptions, SitePattern};
use tokenward_core::text;
use tokenward_core::text::Text;

pub fn install() -> Result<(), DomError> {
    dom::listen(&dom::by_id::<Element>("import-form")?, "submit", |event| {
        event.prevent_default();
        spawn_local(async {
            if let Err(e) = preview().await {
                status(&dom::page_error(&e));
            }
        });
    });
    dom::listen(&dom::by_id::<Element>("import-file")?, "change", |_| {
        close();
    });
    dom::listen(&dom::by_id::<Element>("import-cancel")?, "click", |_| {
        close();
        status(&text!("import_cancelled"));
    });
    dom::listen(&dom::by_id::<Element>("import-confirm")?, "click", |_| {
        if let Err(e) = confirm() {
            status(&dom::page_error(&e));
        }
    });
    // One listener for the list: ticking "use this site" on a refused
    // entry, or typing a site, keeps the two together.
    dom::listen(
        &dom::by_id::<Element>("import-entries")?,
        "input",
        |event| {
            if let Some(field) = dom::origin_of(&event, "[data-field=site]") {
                if let Some(entry) = field.closest(".import-entry").ok().flatten() {
                    if let Ok(tick) = dom::find::<HtmlInputElement>(&entry, "[data-field=chosen]") {
                        tick.set_checked(true);
                    }
                }
            }
            let _ = count_chosen();
        },
    );
    dom::listen(&dom::by_id::<Element>("import-entries")?, "change", |_| {
        let _ = count_chosen();
    });
    Ok(())
}

fn status(message: &Text) {
    dom::feedback("import-status", Some(message));
}

fn close() {
    if let Ok(result) = dom::by_id::<Element>("import-result") {
        dom::show(&result, false);
    }
    if let Ok(list) = dom::by_id::<Element>("import-entries") {
        list.set_text_content(None);
    }
}

/// The picked file's text and the passphrase typed, if any.
async fn read_file() -> Result<ImportFile, Text> {
    let input: HtmlInputElement = dom::by_id("import-file").map_err(|e| dom::page_error(&e))?;
    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        return Err(text!("import_pick_a_file"));
    };
    // Refused before reading: a huge file is never loaded into the page.
    if file.size() > MAX_FILE_BYTES as f64 {
        return Err(text!("import_error_too_large"));
    }
    let read = JsFuture::from(file.text())
        .await
        .map_err(|_| text!("import_could_not_read"))?;
    let text = read
        .as_string()
        .ok_or_else(|| text!("import_could_not_read"))?;
    let passphrase = dom::by_id::<HtmlInputElement>("import-passphrase")
        .map(|i| i.value())
        .unwrap_or_default();
    Ok(ImportFile {
        text,
        passphrase: (!passphrase.is_empty()).then_some(Passphrase(passphrase)),
    })
}

async fn preview() -> Result<(), DomError> {
    close();
    let file = match read_file().await {
        Ok(file) => file,
        Err(message) => {
            status(&message);
            return Ok(());
        }
    };
    status(&text!("import_reading"));
    match runtime::send_now(&Request::PreviewImport { file }).await {
        Ok(Response::ImportPreview(preview)) => render(&preview),
        other => {
            status(&dom::unexpected(other));
            Ok(())
        }
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::New => "new",
        Outcome::Changed { .. } => "changed",
        Outcome::Unchanged { .. } => "unchanged",
        Outcome::Refused { .. } => "refused",
        Outcome::NotImported { .. } => "not-imported",
        Outcome::Skipped => "skipped",
    }
}

fn render(preview: &ImportPreview) -> Result<(), DomError> {
    let list: Element = dom::by_id("import-entries")?;
    list.set_text_content(None);
    let _ = list.set_attribute("data-basis", &preview.basis);
    for entry in &preview.entries {
        let item = entry_item(entry)?;
        list.append_child(&item)
            .map_err(|_| DomError("could not add an entry".to_owned()))?;
    }
    let result: Element = dom::by_id("import-result")?;
    dom::show(&result, true);
    let ready = preview
        .entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::New | Outcome::Changed { .. }))
        .count();
    let refused = preview
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.outcome,
                Outcome::Refused { .. } | Outcome::NotImported { .. }
            )
        })
        .count();
    dom::set_say(
        &dom::by_id::<Element>("import-summary")?,
        &text!(
            "import_summary",
            preview.format_name(),
            preview.entries.len(),
            ready,
            refused
        ),
    );
    status(&text!("import_nothing_written_yet"));
    count_chosen()
}

fn entry_item(entry: &ImportEntry) -> Result<Element, DomError> {
    let item = dom::instantiate("import-entry-template")?;
    let _ = item.set_attribute("data-entry", &entry.entry.to_string());
    let _ = item.set_attribute("data-outcome", outcome_name(&entry.outcome));
    let tick: HtmlInputElement = dom::find(&item, "[data-field=chosen]")?;
    let (outcome, why) = match &entry.outcome {
        Outcome::New => (text!("import_outcome_new"), None),
        Outcome::Changed { label, .. } => (text!("import_outcome_changed"), {
            (!label.is_empty()).then(|| text!("import_changes_rule", label.as_str()))
        }),
        Outcome::Unchanged { .. } => (text!("import_outcome_unchanged"), None),
        Outcome::Refused { why } => (text!("import_outcome_refused"), Some(why.clone())),
        Outcome::NotImported { why } => (text!("import_outcome_not_imported"), Some(why.clone())),
        Outcome::Skipped => (text!("import_outcome_skipped"), None),
    };
    dom::set_say(&dom::find(&item, "[data-role=outcome]")?, &outcome);
    let chosen = matches!(entry.outcome, Outcome::New | Outcome::Changed { .. });
    tick.set_checked(chosen);
    // Refused for its breadth: the user may name a narrower site instead.
    let narrowable = matches!(entry.outcome, Outcome::Refused { .. })
        && entry.site.is_none()
        && !entry.headers.is_empty();
    tick.set_disabled(!(chosen || narrowable));
    dom::set_say(&dom::find(&item, "[data-role=from]")?, &entry.from);
    let site: Element = dom::find(&item, "[data-role=site]")?;
    dom::set_text(&site, entry.site.as_deref().unwrap_or_default());
    dom::show(&site, entry.site.is_some());
    let site_field: Element = dom::find(&item, "[data-role=site-field]")?;
    dom::show(&site_field, narrowable);
    if narrowable {
        dom::find::<HtmlInputElement>(&item, "[data-field=site]")?
            .set_value(entry.suggestion.as_deref().unwrap_or_default());
    }
    let why_line: Element = dom::find(&item, "[data-role=why]")?;
    match &why {
        Some(text) => dom::set_say(&why_line, text),
        None => dom::show(&why_line, false),
    }
    let headers: Element = dom::find(&item, "[data-role=headers]")?;
    let lines: Vec<String> = entry.headers.iter().map(crate::browser::say).collect();
    dom::set_text(&headers, &lines.join("\n"));
    dom::show(&headers, !entry.headers.is_empty());
    let notes: Element = dom::find(&item, "[data-role=notes]")?;
    for note in &entry.notes {
        let li = dom::document()?
            .create_element("li")
            .map_err(|_| DomError("could not add a note".to_owned()))?;
        dom::set_say(&li, note);
        let _ = notes.append_child(&li);
    }
    if !entry.enabled && matches!(entry.outcome, Outcome::New) {
        let li = dom::document()?
            .create_element("li")
            .map_err(|_| DomError("could not add a note".to_owned()))?;
        dom::set_say(&li, &text!("import_note_off"));
        let _ = notes.append_child(&li);
    }
    Ok(item)
}

/// The entries ticked, with the site typed for a refused one.
fn choices() -> Result<Vec<ImportChoice>, DomError> {
    let list: Element = dom::by_id("import-entries")?;
    let items = list
        .query_selector_all(".import-entry")
        .map_err(|_| DomError("could not read the entries".to_owned()))?;
    let mut out = Vec::new();
    for i in 0..items.length() {
        let Some(item) = items.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
            continue;
        };
        let ticked = dom::find::<HtmlInputElement>(&item, "[data-field=chosen]")
            .is_ok_and(|t| t.checked() && !t.disabled());
        let Some(entry) = item
            .get_attribute("data-entry")
            .and_then(|e| e.parse().ok())
        else {
            continue;
        };
        if !ticked {
            continue;
        }
        let site = (item.get_attribute("data-outcome").as_deref() == Some("refused"))
            .then(|| dom::input_value(&item, "[data-field=site]").unwrap_or_default())
            .map(|s| s.trim().to_owned());
        if site.as_deref() == Some("") {
            continue;
        }
        out.push(ImportChoice { entry, site });
    }
    Ok(out)
}

fn count_chosen() -> Result<(), DomError> {
    let n = choices()?.len();
    let button: web_sys::HtmlButtonElement = dom::by_id("import-confirm")?;
    button.set_disabled(n == 0);
    dom::set_say(&button, &text!("import_confirm_count", n));
    Ok(())
}

/// Asks for the chosen sites' host permissions inside the click, then
/// reads the file again and sends the import.
fn confirm() -> Result<(), DomError> {
    let choices = choices()?;
    let list: Element = dom::by_id("import-entries")?;
    let basis = list.get_attribute("data-basis").unwrap_or_default();
    let mut origins: Vec<String> = Vec::new();
    for choice in &choices {
        let site = match &choice.site {
            Some(site) => Some(site.clone()),
            None => list
                .query_selector(&format!(
                    ".import-entry[data-entry=\"{}\"] [data-role=site]",
                    choice.entry
                ))
                .ok()
                .flatten()
                .and_then(|e| e.text_content()),
        };
        let Some(pattern) = site.and_then(|s| {
            let s = with_ascii_host(&s, &browser::BrowserHostNames);
            SitePattern::parse(&s, ParseOptions { allow_http: true }).ok()
        }) else {
            continue;
        };
        for origin in pattern.host_permissions() {
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    let asked = permissions::request_origins(&origins);
    status(&text!("import_importing"));
    spawn_local(async move {
        let file = match read_file().await {
            Ok(file) => file,
            Err(message) => return status(&message),
        };
        let answer = runtime::send_now(&Request::Import {
            file,
            basis,
            choices,
        })
        .await;
        match answer {
            Ok(Response::Imported {
                rules,
                added,
                changed,
            }) => {
                close();
                super::options::show_rules(&rules);
                let granted = permissions::held_after(asked, &origins).await;
                status(&if granted || origins.is_empty() {
                    text!("import_done", added, changed)
                } else {
                    text!("import_done_no_permission", added, changed)
                });
            }
            other => status(&dom::unexpected(other)),
        }
    });
    Ok(())
}
