//! Saving a rule from a click, shared by the options page and the popup.

use std::future::Future;
use std::pin::Pin;

use wasm_bindgen_futures::JsFuture;

use super::browser::{self, permissions, runtime, BrowserError};
use tokenward_core::message::{Request, Response};
use tokenward_core::pattern::SitePattern;
use tokenward_core::rules::{RuleDraft, RuleError};

/// A save started inside a click, with its permission request.
pub struct PendingSave {
    pub pattern: SitePattern,
    host_permissions: Vec<String>,
    permission: Result<JsFuture, BrowserError>,
    answer: Pin<Box<dyn Future<Output = Result<Response, BrowserError>>>>,
}

/// Checks the draft, then, both before any await, asks for the site's host
/// permission and sends the save to the background: the browser accepts a
/// permission request only from a user gesture, and the save must be on its
/// way whatever happens to the prompt (it takes the focus, which closes a
/// popup). A draft the page can already refuse sends nothing.
pub fn start_save(draft: RuleDraft) -> Result<PendingSave, RuleError> {
    start_save_as(draft, |draft| Request::SaveRule { draft })
}

/// [`start_save`] of a rule for one tab ("Use in this tab only").
pub fn start_tab_save(tab: i32, draft: RuleDraft) -> Result<PendingSave, RuleError> {
    start_save_as(draft, |draft| Request::SaveTabRule { tab, draft })
}

fn start_save_as(
    draft: RuleDraft,
    request: impl FnOnce(RuleDraft) -> Request,
) -> Result<PendingSave, RuleError> {
    // Hosts typed in Unicode become the ASCII the browser matches, before
    // the permissions are computed from them.
    let draft = draft.with_ascii_hosts(&browser::BrowserHostNames);
    // The site's permissions, and those of the pages listed as allowed to
    // use the header: the browser needs both for a request a page makes.
    let (pattern, host_permissions) = draft.precheck()?;
    let permission = permissions::request_origins(&host_permissions);
    let answer: Pin<Box<dyn Future<Output = _>>> = Box::pin(runtime::send_now(&request(draft)));
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
