//! A BentoCloud deployment that wants a BentoCloud API token: `Authorization:
//! Bearer <token>`, or the older `Authorization: Basic base64(<any>:<token>)`.
//! The token must be a live token of the BentoCloud stand-in. Any `Host`,
//! any path, any method.
//!
//! Without a valid token: 401, a short text body and `WWW-Authenticate:
//! Bearer` (never `Basic`, which would make a browser prompt for a
//! password). With one: 200 `text/html` holding [`crate::DEPLOYMENT_OK`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::bentocloud;
use crate::http::{html_escape, Request, Response};
use crate::DEPLOYMENT_OK;

/// The token the `Authorization` header carries, if any.
fn presented_token(request: &Request) -> Option<String> {
    let value = request.header("authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        return decoded.split_once(':').map(|(_, t)| t.to_owned());
    }
    None
}

pub(crate) fn route(bento: &mut bentocloud::State, request: &Request) -> Response {
    let authorized = presented_token(request).is_some_and(|t| bento.is_valid(&t));
    if !authorized {
        return Response::text(
            401,
            "Unauthorized: this deployment needs a valid BentoCloud API token\n",
        )
        .with_header("WWW-Authenticate", "Bearer realm=\"bentocloud-deployment\"");
    }
    let host = html_escape(request.header("host").unwrap_or_default());
    let target = html_escape(&request.target);
    Response::html(
        200,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{DEPLOYMENT_OK}</title>\
             <link rel=\"icon\" href=\"data:,\"></head><body>\
             <h1 id=\"deployment\">{DEPLOYMENT_OK}</h1>\
             <p>Host: <span id=\"host\">{host}</span></p>\
             <p>Request: <span id=\"method\">{}</span> <span id=\"target\">{target}</span></p>\
             </body></html>",
            html_escape(&request.method)
        ),
    )
}
