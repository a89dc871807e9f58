//! The options page's export: the background builds the file (sealed when
//! it carries tokens), the page hands it to the browser as a download.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlAnchorElement, HtmlInputElement};

use super::browser::runtime;
use super::dom::{self, DomError};
use tokenward_core::message::{Passphrase, Request, Response};
use tokenward_core::text;
use tokenward_core::text::Text;

pub fn install() -> Result<(), DomError> {
    dom::listen(&dom::by_id::<Element>("export-plain")?, "click", |_| {
        export(None);
    });
    dom::listen(
        &dom::by_id::<Element>("export-secret-form")?,
        "submit",
        |event| {
            event.prevent_default();
            let value = |id: &str| {
                dom::by_id::<HtmlInputElement>(id)
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            let (passphrase, again) = (value("export-passphrase"), value("export-confirm"));
            for id in ["export-passphrase", "export-confirm"] {
                if let Ok(input) = dom::by_id::<HtmlInputElement>(id) {
                    input.set_value("");
                }
            }
            if passphrase != again {
                status(&text!("export_passphrases_differ"));
                return;
            }
            export(Some(Passphrase(passphrase)));
        },
    );
    Ok(())
}

fn export(passphrase: Option<Passphrase>) {
    let sealed = passphrase.is_some();
    status(&if sealed {
        text!("export_encrypting")
    } else {
        text!("export_exporting")
    });
    let pending = runtime::send_now(&Request::Export { passphrase });
    spawn_local(async move {
        let answer = pending.await;
        match answer {
            Ok(Response::Export {
                file_name,
                document,
            }) => match download(&file_name, &document) {
                Ok(()) => status(&if sealed {
                    text!("export_saved_sealed", file_name)
                } else {
                    text!("export_saved_plain", file_name)
                }),
                Err(e) => status(&text!("export_not_saved", e.0)),
            },
            other => status(&dom::unexpected(other)),
        }
    });
}

/// A download of `text` as `name`, through a `blob:` URL.
fn download(name: &str, text: &str) -> Result<(), DomError> {
    let fail = |what: &str| DomError(format!("could not {what}"));
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| fail("make the file"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("make its URL"))?;
    let link = dom::document()?
        .create_element("a")
        .map_err(|_| fail("make a link"))?
        .dyn_into::<HtmlAnchorElement>()
        .map_err(|_| fail("make a link"))?;
    link.set_href(&url);
    link.set_download(name);
    // In the document while clicked, which older Firefox needed to start
    // the download. The URL is not revoked here: a revoke right after the
    // click can cancel a download the browser has not read yet; the
    // page's blob URLs go when the page closes.
    // <https://developer.mozilla.org/en-US/docs/Web/API/URL/revokeObjectURL_static>
    let body = dom::document()?
        .body()
        .ok_or_else(|| fail("find the page body"))?;
    let _ = body.append_child(&link);
    link.click();
    link.remove();
    Ok(())
}

fn status(message: &Text) {
    dom::feedback("export-status", Some(message));
}
