//! Saving a rule from a click, shared by the options page and the popup.

use std::future::Future;
use std::pin::Pin;

use wasm_bindgen_futures::JsFuture;

use super::browser::{permissions, runtime, BrowserError};
use crate::message::{Request, Response};
use crate::pattern::SitePattern;
use crate::rules::{RuleDraft, RuleError};

/// A save started inside a click, with its permission request.
pub struct PendingSave {
    pub pattern: SitePattern,
    host_permissions: [String; 2],
    permission: Result<JsFuture, BrowserError>,
    answer: Pin<Box<dyn Future<Output = Result<Response, BrowserError>>>>,
}

/// Checks the draft, then, both before any await, asks for the site's host
/// permission and sends the save to the background: the browser accepts a
/// permission request only from a user gesture, and the save must be on its
/// way whatever happens to the prompt (it takes the focus, which closes a
/// popup). A draft the page can already refuse sends nothing.
pub fn start_save(draft: RuleDraft) -> Result<PendingSave, RuleError> {
    let pattern = draft.precheck()?;
    let host_permissions = pattern.host_permissions();
    let permission = permissions::request_origins(&host_permissions);
    let answer: Pin<Box<dyn Future<Output = _>>> =
        Box::pin(runtime::send_now(&Request::SaveRule { draft }));
    Ok(PendingSave {
        pattern,
        host_permissions,
        permission,
        answer,
    })
}

impl std::fmt::Debug for PendingSave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSave")
            .field("pattern", &self.pattern.to_string())
            .finish_non_exhaustive()
    }
}

impl PendingSave {
    /// The background's answer to the save.
    pub async fn answer(&mut self) -> Result<Response, BrowserError> {
        (&mut self.answer).await
    }

    /// Whether Tokenward holds the site's permissions once the prompt is
    /// answered.
    pub async fn granted(self) -> bool {
        permissions::held_after(self.permission, &self.host_permissions).await
    }
}
