//! The few DOM helpers the pages need. Text goes in with `textContent`
//! only, never as HTML; lists are rendered from `<template>`s and listened to
//! with one delegated listener each. Pages only: the background has no DOM.

use wasm_bindgen::prelude::*;

use super::browser;
use tokenward_core::message::Response;
use tokenward_core::text::{Localize, Text};
use wasm_bindgen::JsCast;
use web_sys::{
    Document, Element, Event, EventTarget, HtmlInputElement, HtmlSelectElement, HtmlTemplateElement,
};

/// A page element was missing or of the wrong kind: the HTML and the Rust
/// disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("page structure: {0}")]
pub struct DomError(pub String);

impl From<DomError> for JsValue {
    fn from(error: DomError) -> Self {
        js_sys::Error::new(&error.0).into()
    }
}

pub use super::browser::say;

/// Puts a [`Text`] into `element`, as text.
pub fn set_say(element: &Element, text: &Text) {
    set_text(element, &say(text));
}

/// Fills the page's static words from the catalogue: `data-i18n` names an
/// element's text, `data-i18n-<attribute>` an attribute's (`placeholder`,
/// `aria-label`, `title`). The HTML holds no words of its own, so a page
/// cannot show one that bypassed the catalogue. Runs once, before the page
/// is marked ready; templates are filled as they are instantiated.
pub fn localize(root: &Element) {
    const ATTRIBUTES: [&str; 3] = ["placeholder", "aria-label", "title"];
    let mut elements = vec![root.clone()];
    elements.extend(find_all(
        root,
        "[data-i18n], [data-i18n-placeholder], [data-i18n-aria-label], [data-i18n-title]",
    ));
    for element in elements {
        if let Some(key) = element.get_attribute("data-i18n") {
            set_say(&element, &Text::new(&key, Vec::new()));
        }
        for attribute in ATTRIBUTES {
            if let Some(key) = element.get_attribute(&format!("data-i18n-{attribute}")) {
                let _ = element.set_attribute(attribute, &say(&Text::new(&key, Vec::new())));
            }
        }
    }
}

/// Localizes the whole page and tells assistive technology its language.
pub fn localize_page() -> Result<(), DomError> {
    let document = document()?;
    if let Some(html) = document.document_element() {
        // The language of the catalogue the browser picked, which is not
        // always its interface's (`i18n.getUILanguage` said `en-US` in a
        // Chromium started with `--lang=de` that spoke German).
        let _ = html.set_attribute("lang", &say(&tokenward_core::text!("meta_language")));
        localize(&html);
    }
    Ok(())
}

/// Shows a message in the feedback area `#id` (next to the action that
/// caused it; the area is a live region in the HTML), or empties and hides
/// it (`None`).
pub fn feedback(id: &str, message: Option<&Text>) {
    if let Ok(area) = by_id::<Element>(id) {
        match message {
            Some(message) => set_say(&area, message),
            None => set_text(&area, ""),
        }
        show(&area, message.is_some());
    }
}

/// What to tell the user about an answer the page did not expect: the
/// background's own error, another answer than the one asked for, or none.
pub fn unexpected(answer: Result<Response, browser::BrowserError>) -> Text {
    match answer {
        Ok(Response::Error { message }) => message,
        Ok(_) => tokenward_core::text!("error_unexpected_answer"),
        Err(e) => tokenward_core::text!("error_no_answer", e.0),
    }
}

/// The page's own structure failed it (a bug): said with the details.
pub fn page_error(error: &DomError) -> Text {
    tokenward_core::text!("error_page", error.0.clone())
}

pub fn document() -> Result<Document, DomError> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| DomError("no document".to_owned()))
}

pub fn by_id<T: JsCast>(id: &str) -> Result<T, DomError> {
    document()?
        .get_element_by_id(id)
        .ok_or_else(|| DomError(format!("#{id} is missing")))?
        .dyn_into::<T>()
        .map_err(|_| DomError(format!("#{id} is not the expected element")))
}

/// Moves the focus to `#id`: where an action's result appeared, so a
/// keyboard or screen-reader user lands on it rather than on `<body>`.
pub fn focus(id: &str) {
    if let Ok(element) = by_id::<web_sys::HtmlElement>(id) {
        let _ = element.focus();
    }
}

/// Marks the field `#id` as the one an error (in `#error_id`) is about,
/// or clears the mark (`None`): `aria-invalid` and `aria-describedby`, so
/// assistive technology reads the error with the field.
pub fn mark_invalid(id: &str, error_id: Option<&str>) {
    if let Ok(field) = by_id::<Element>(id) {
        match error_id {
            Some(error) => {
                let _ = field.set_attribute("aria-invalid", "true");
                let _ = field.set_attribute("aria-describedby", error);
            }
            None => {
                let _ = field.remove_attribute("aria-invalid");
                let _ = field.remove_attribute("aria-describedby");
            }
        }
    }
}

/// Calls `on_escape` when Escape is pressed anywhere in the page: the way
/// out of an open form.
pub fn on_escape(on_escape: impl Fn() + 'static) {
    if let Ok(document) = document() {
        listen(&document, "keydown", move |event| {
            let escape = event
                .dyn_ref::<web_sys::KeyboardEvent>()
                .is_some_and(|k| k.key() == "Escape");
            if escape {
                on_escape();
            }
        });
    }
}

/// The first element under `root` matching `selector`.
pub fn find<T: JsCast>(root: &Element, selector: &str) -> Result<T, DomError> {
    root.query_selector(selector)
        .ok()
        .flatten()
        .ok_or_else(|| DomError(format!("{selector} is missing")))?
        .dyn_into::<T>()
        .map_err(|_| DomError(format!("{selector} is not the expected element")))
}

pub fn find_all(root: &Element, selector: &str) -> Vec<Element> {
    let Ok(list) = root.query_selector_all(selector) else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i)?.dyn_into::<Element>().ok())
        .collect()
}

pub fn set_text(element: &Element, text: &str) {
    element.set_text_content(Some(text));
}

pub fn show(element: &Element, visible: bool) {
    let _ = element.toggle_attribute_with_force("hidden", !visible);
}

/// A fresh copy of a `<template>`'s first element.
pub fn instantiate(template_id: &str) -> Result<Element, DomError> {
    let template: HtmlTemplateElement = by_id(template_id)?;
    template
        .content()
        .first_element_child()
        .and_then(|e| e.clone_node_with_deep(true).ok())
        .and_then(|n| n.dyn_into::<Element>().ok())
        .inspect(localize)
        .ok_or_else(|| DomError(format!("template #{template_id} is empty")))
}

pub fn input_value(root: &Element, selector: &str) -> Result<String, DomError> {
    if let Ok(select) = find::<HtmlSelectElement>(root, selector) {
        return Ok(select.value());
    }
    Ok(find::<HtmlInputElement>(root, selector)?.value())
}

/// Listens for the page's lifetime. Pages are short-lived and their
/// listeners live as long as the page, so leaking the closure is correct.
pub fn listen(target: &impl AsRef<EventTarget>, event: &str, handler: impl FnMut(Event) + 'static) {
    let closure = Closure::<dyn FnMut(Event)>::new(handler);
    let _ = target
        .as_ref()
        .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    closure.forget();
}

/// For a delegated listener: the element matching `selector` that the event
/// came from, if any.
pub fn origin_of(event: &Event, selector: &str) -> Option<Element> {
    event
        .target()?
        .dyn_into::<Element>()
        .ok()?
        .closest(selector)
        .ok()
        .flatten()
}

/// Refuses a paste that carries a line break or NUL inside the secret.
/// A password `<input>` silently strips line breaks from its value, which
/// would turn `tok\nX-Evil: 1` into a wrong secret the user never typed;
/// the HTML standard's value sanitization for `type=password` does this.
/// <https://html.spec.whatwg.org/multipage/input.html#password-state-(type=password)>
pub fn guard_secret_paste(input: &HtmlInputElement, on_refused: impl Fn(&Text) + 'static) {
    listen(input, "paste", move |event| {
        let Some(clipboard) = event
            .dyn_ref::<web_sys::ClipboardEvent>()
            .and_then(|e| e.clipboard_data())
        else {
            return;
        };
        let text = clipboard.get_data("text/plain").unwrap_or_default();
        if let Err(e) = tokenward_core::header::Secret::from_input(&text) {
            if !text.trim().is_empty() {
                event.prevent_default();
                on_refused(&e.text());
            }
        }
    });
}

/// `text` in lower case, by the browser's `String.prototype.toLowerCase`
/// (the same Unicode mapping as Rust's `to_lowercase`): Rust's would bring
/// its case tables into the pages' module, about 18 kB, for the rule search
/// alone.
pub fn lowercase(text: &str) -> String {
    js_sys::JsString::from(text).to_lower_case().into()
}

/// A User Timing mark (`performance.mark`) at a step of a page's first
/// render, so `cargo xtask bench` can split the time to `data-ready` into
/// its steps (the wasm's start, the background's answer, the drawing).
pub fn timing(step: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(step);
    }
}

/// Marks the page as rendered from the background's answer (`<body
/// data-ready>`): something a person sees as "loaded", and what automation
/// waits for before typing, since the first render resets the forms.
pub fn mark_ready() {
    if let Some(body) = document().ok().and_then(|d| d.body()) {
        let _ = body.set_attribute("data-ready", "true");
    }
}

/// Stores on a rule's element the host permissions to ask for, so a click
/// can ask for them synchronously, with no round trip to the background.
pub fn set_host_permissions(element: &Element, origins: &[String]) {
    let _ = element.set_attribute("data-host-permissions", &origins.join(" "));
}

/// The host permissions stored by [`set_host_permissions`], if any.
pub fn host_permissions(element: &Element) -> Option<Vec<String>> {
    let origins = element.get_attribute("data-host-permissions")?;
    Some(origins.split_whitespace().map(str::to_owned).collect())
}
