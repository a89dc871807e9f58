//! Driving the popup's accounts panels, for the provider e2e tests and
//! `cargo xtask demo`: a browser with the test extension beside the
//! provider stand-ins.

use std::time::Duration;

use serde_json::Value as Json;
use tokenward_standin::StandIns;

use crate::browser::{Engine, WAIT};
use crate::harness::Harness;

/// Provider calls go from the background to loopback: seconds at most.
pub const CALL_WAIT: Duration = Duration::from_secs(20);

#[allow(missing_debug_implementations)] // the stand-ins hold child processes without Debug
pub struct World {
    pub h: Harness,
    pub s: StandIns,
}

impl World {
    pub async fn start(engine: Engine) -> World {
        let s = StandIns::start()
            .await
            .expect("the stand-in providers start");
        let h = Harness::start(engine).await;
        World { h, s }
    }

    pub async fn open_popup(&self) {
        let b = &self.h.browser;
        b.goto(&b.extension_url("popup.html")).await;
        b.wait_for_css("body[data-ready]", WAIT).await;
    }

    /// Fills and submits the login form; returns once the popup shows a
    /// notice or an error, and says which: `Ok(notice)` or `Err(error)`.
    pub async fn log_in(
        &self,
        provider: &str,
        kind: Option<&str>,
        endpoint: &str,
        secret: &str,
    ) -> Result<String, String> {
        let b = &self.h.browser;
        b.exec(
            "for (const id of ['account-notice', 'account-error', 'tokens-error', 'popup-error']) { \
               const e = document.getElementById(id); e.textContent = ''; e.hidden = true; } \
             return null;",
        )
        .await;
        b.click("#show-login").await;
        b.wait_visible("#login-form", WAIT).await;
        b.select("#login-provider", provider).await;
        if let Some(kind) = kind {
            b.select("#login-kind", kind).await;
        }
        if !endpoint.is_empty() {
            b.fill("#login-endpoint", endpoint).await;
        }
        b.fill("#login-secret", secret).await;
        b.click("#login-submit").await;
        let v = b
            .wait_js(
                "the login to be answered (#account-notice or #account-error)",
                CALL_WAIT,
                "const n = document.getElementById('account-notice'); \
                 const e = document.getElementById('account-error'); \
                 if (!e.hidden && e.textContent) return {error: e.textContent}; \
                 if (!n.hidden && n.textContent) return {notice: n.textContent}; \
                 return null;",
            )
            .await;
        match (v["notice"].as_str(), v["error"].as_str()) {
            (Some(n), _) => Ok(n.to_owned()),
            (_, Some(e)) => Err(e.to_owned()),
            _ => unreachable!("{v}"),
        }
    }

    pub async fn credential_count(&self) -> usize {
        self.h
            .browser
            .exec("return document.querySelectorAll('#credentials li.credential').length;")
            .await
            .as_u64()
            .unwrap_or(0) as usize
    }

    /// The id of the first credential of `provider` in the list, once it
    /// is listed: the list is drawn again after a login ends, a moment
    /// after the page says so.
    pub async fn credential_id(&self, provider: &str) -> String {
        let v = self
            .h
            .browser
            .wait_js(
                &format!("a {provider} credential listed"),
                WAIT,
                &format!(
                    "const li = document.querySelector('#credentials li.credential[data-provider={provider}]'); \
                     return li && li.getAttribute('data-credential-id');"
                ),
            )
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no {provider} credential listed"))
            .to_owned()
    }

    pub async fn click_credential(&self, id: &str, action: &str) {
        self.h
            .browser
            .click(&format!(
                "#credentials li[data-credential-id='{id}'] [data-action={action}]"
            ))
            .await;
    }

    /// Opens the token list of credential `id` and returns the names shown.
    pub async fn open_tokens(&self, id: &str) -> Vec<String> {
        let b = &self.h.browser;
        b.exec("document.getElementById('tokens').removeAttribute('data-loaded'); return null;")
            .await;
        self.click_credential(id, "tokens").await;
        b.wait_for_css("#tokens[data-loaded]", CALL_WAIT).await;
        self.token_names().await
    }

    pub async fn token_names(&self) -> Vec<String> {
        let v = self
            .h
            .browser
            .exec(
                "return Array.from(document.querySelectorAll('#remote-tokens li [data-role=name]')) \
                 .map((e) => e.textContent);",
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The extension's stored state, read from an extension page, as one
    /// document: the head with the rules and credentials it lists put back
    /// in, as the background reads it (`store::assemble`).
    pub async fn stored_state(&self) -> Json {
        let items = self
            .h
            .browser
            .exec_async("return await chrome.storage.local.get(null);")
            .await;
        tokenward_core::store::assemble(&items).unwrap_or(Json::Null)
    }

    /// The popup's site status once it says nothing is sent, and why.
    pub async fn why_nothing_is_sent(&self) -> String {
        self.h
            .browser
            .wait_js(
                "the site status to say why nothing is sent",
                WAIT,
                "const p = document.getElementById('site-status'); \
                 return p.dataset.sending === 'not-sent' && p.textContent;",
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// What the accounts' part of the popup says went wrong: under its
    /// heading, or in the token list while that is open.
    pub async fn popup_error(&self) -> String {
        let b = &self.h.browser;
        b.exec(
            "return ['account-error', 'tokens-error'].map((id) => document.getElementById(id)) \
               .filter((e) => !e.hidden).map((e) => e.textContent).join(' ');",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}
