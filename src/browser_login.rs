//! The popup's browser login: start it, show where it stands, cancel it.
//!
//! The background does the work (the code, the tab, the polls, the login)
//! and keeps the record in `storage.session`; the popup only asks where it
//! stands, every second while it is pending, so closing the popup (which
//! the new tab usually does) loses nothing.

use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, HtmlInputElement};

use super::accounts;
use super::browser::{self, permissions, runtime};
use super::dom::{self, DomError};
use tokenward_core::credential::Endpoint;
use tokenward_core::message::{BrowserLoginView, Request, Response};
use tokenward_core::pattern::with_ascii_host;
use tokenward_core::provider::Provider;
use tokenward_core::text;

pub fn install() -> Result<(), DomError> {
    dom::listen(&dom::by_id::<Element>("login-browser")?, "click", |_| {
        let value = |id: &str| {
            dom::by_id::<HtmlInputElement>(id)
                .map(|i| i.value())
                .unwrap_or_default()
        };
        let endpoint = value("login-endpoint");
        let provider = accounts::selected_provider().unwrap_or(Provider::BentoCloud);
        // The background calls the provider only where its host permission
        // is held: asked inside the click, as the browser requires.
        let ascii = with_ascii_host(&endpoint, &browser::BrowserHostNames);
        let asked = Endpoint::parse(provider, &ascii).ok().map(|e| {
            let mut origins = vec![e.host_permission()];
            if provider == Provider::Nuclia {
                // To see the login tab arrive at the client's loopback
                // redirect (`tabs.onUpdated` shows a tab's address only
                // where Tokenward has host access).
                origins.push("http://127.0.0.1/*".to_owned());
            }
            permissions::request_origins(&origins)
        });
        // Sent inside the click too: the tab or window the background opens
        // takes the focus and may close the popup.
        let pending = runtime::send_now(&Request::StartBrowserLogin {
            provider,
            endpoint,
            client_id: value("login-client-id"),
            // The background puts the browser's own.
            redirect_uri: String::new(),
        });
        spawn_local(async move {
            if let Some(Ok(asked)) = asked {
                let _ = asked.await;
            }
            let answer = pending.await;
            handle(answer).await;
        });
    });
    dom::listen(
        &dom::by_id::<Element>("browser-login-cancel")?,
        "click",
        |_| {
            let pending = runtime::send_now(&Request::CancelBrowserLogin);
            spawn_local(async move {
                let answer = pending.await;
                handle(answer).await;
            });
        },
    );
    Ok(())
}

/// Shows the login's state on opening, and follows it while pending.
pub async fn refresh() {
    handle(runtime::send(&Request::BrowserLoginStatus).await).await;
}

async fn handle(mut answer: Result<Response, browser::BrowserError>) {
    loop {
        let view = match answer {
            Ok(Response::BrowserLogin(view)) => view,
            Ok(Response::Error { message }) => {
                let _ = render(&BrowserLoginView {
                    provider: accounts::selected_provider().ok(),
                    state: "failed".to_owned(),
                    approve_url: None,
                    deadline: None,
                    message: Some(message),
                });
                return;
            }
            Ok(_) | Err(_) => return,
        };
        let _ = render(&view);
        if view.state != "pending" {
            if view.state == "done" {
                accounts::refresh().await;
            }
            return;
        }
        browser::sleep(1000).await;
        answer = runtime::send(&Request::BrowserLoginStatus).await;
    }
}

fn render(view: &BrowserLoginView) -> Result<(), DomError> {
    let panel = dom::by_id::<Element>("browser-login")?;
    let _ = panel.set_attribute("data-state", &view.state);
    dom::show(&panel, view.state != "none");
    let message: Element = dom::by_id("browser-login-message")?;
    match &view.message {
        Some(words) => dom::set_say(&message, words),
        None => dom::set_text(&message, ""),
    }
    dom::set_say(
        &dom::by_id("browser-login-cancel")?,
        &if view.state == "pending" {
            text!("ui_cancel")
        } else {
            text!("browser_login_dismiss")
        },
    );
    Ok(())
}
