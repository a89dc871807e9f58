//! Hugging Face Hub, as `huggingface_hub` 2.4.0 speaks to it.
//!
//! Only who-am-I has an API: `GET /api/whoami-v2` with `authorization:
//! Bearer <token>`. Access tokens are created, listed and deleted only in
//! the web UI.

use super::http::{self, HttpRequest, Method, Obj};
use super::{Call, Identity, ProviderError, Resource};
use crate::credential::{Account, Endpoint};
use crate::header::Secret;
use crate::text;

/// Inference Endpoints are served under this domain.
pub const ENDPOINTS_DOMAIN: &str = "endpoints.huggingface.cloud";

/// `GET /api/whoami-v2`: `name` and `orgs` required; the token's role and
/// name are optional. Organization tokens (`api_org…`) are refused before
/// any request, as the official client refuses them.
pub fn who_am_i(endpoint: &Endpoint, secret: &Secret) -> Result<Call<Identity>, ProviderError> {
    if secret.expose().starts_with("api_org") {
        return Err(ProviderError::Invalid(text!(
            "error_huggingface_organization_token"
        )));
    }
    let request = HttpRequest::new(Method::Get, endpoint.join(&["api", "whoami-v2"]))
        .header("authorization", format!("Bearer {}", secret.expose()));
    Ok(Call::single(request, secret, |response| {
        if !response.is_success() {
            return Err(http::failure(response, Resource::Account));
        }
        let body = http::json(response)?;
        let who = Obj::of(&body, "")?;
        let name = who.str("name")?;
        let organizations = who
            .items("orgs")?
            .iter()
            .map(|o| o.str("name").map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let token = match who.opt_obj("auth")? {
            Some(auth) => auth.opt_obj("accessToken")?,
            None => None,
        };
        let (role, token_name) = match &token {
            Some(t) => (t.opt_str("role")?, t.opt_str("displayName")?),
            None => (None, None),
        };
        let confirmation = match (organizations.is_empty(), role) {
            (true, None) => text!("notice_huggingface_logged_in", name),
            (false, None) => text!(
                "notice_huggingface_logged_in_orgs",
                name,
                organizations.join(", ")
            ),
            (true, Some(role)) => text!("notice_huggingface_logged_in_role", name, role),
            (false, Some(role)) => text!(
                "notice_huggingface_logged_in_orgs_role",
                name,
                organizations.join(", "),
                role
            ),
        };
        Ok(Identity {
            confirmation,
            account: Account {
                user: Some(name.to_owned()),
                email: who.opt_str("email")?.map(str::to_owned),
                organizations,
            },
            token_name: token_name.map(str::to_owned),
        })
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::provider::tests::{endpoint, secret, shape};
    use crate::provider::{AnswerProblem, Expected, HttpResponse, Provider};

    const TOKEN: &str = "hf_0123456789abcdefghij";

    fn whoami(response: HttpResponse) -> Result<Identity, ProviderError> {
        who_am_i(&endpoint(Provider::HuggingFace), &secret(TOKEN))
            .and_then(|c| c.finish(&[response]))
    }

    fn ok(v: Value) -> HttpResponse {
        HttpResponse::new(200, v.to_string())
    }

    #[test]
    fn whoami_request_matches_the_contract() {
        let call = who_am_i(&endpoint(Provider::HuggingFace), &secret(TOKEN))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            shape(&call.requests[0]),
            (
                "GET",
                "https://huggingface.co/api/whoami-v2",
                vec![("authorization", "Bearer hf_0123456789abcdefghij")]
            )
        );
        assert_eq!(call.requests[0].body, None);
        assert!(matches!(
            who_am_i(&endpoint(Provider::HuggingFace), &secret("api_org_abc")),
            Err(ProviderError::Invalid(_))
        ));
    }

    #[test]
    fn whoami_answers() {
        let full = json!({"type": "user", "name": "alice", "email": "alice@example.com",
            "orgs": [{"name": "acme", "roleInOrg": "admin"}],
            "auth": {"type": "access_token", "accessToken": {"displayName": "my-laptop", "role": "write"}}});
        let identity = whoami(ok(full)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text::english(&identity.confirmation),
            "Logged in as alice (orgs: acme). Token is valid (permission: write)."
        );
        assert_eq!(identity.token_name.as_deref(), Some("my-laptop"));
        assert_eq!(identity.account.email.as_deref(), Some("alice@example.com"));
        let minimal = whoami(ok(json!({"name": "bob", "orgs": []})));
        assert_eq!(
            minimal.map(|i| (text::english(&i.confirmation), i.token_name)),
            Ok(("Logged in as bob.".into(), None))
        );
    }

    #[test]
    fn whoami_failures() {
        assert_eq!(
            whoami(HttpResponse::new(
                401,
                r#"{"error":"Invalid credentials in Authorization header"}"#
            )),
            Err(ProviderError::Unauthorized {
                reason: Some("Invalid credentials in Authorization header".into())
            })
        );
        assert_eq!(
            whoami(HttpResponse::new(429, "").with_header("Retry-After", "12"))
                .map_err(|e| e.to_string()),
            Err("the provider is limiting requests; try again in 12 seconds".into())
        );
        assert_eq!(
            whoami(HttpResponse::new(403, "")),
            Err(ProviderError::Forbidden { reason: None })
        );
        assert!(matches!(
            whoami(HttpResponse::new(404, "")),
            Err(ProviderError::NotFound { .. })
        ));
        assert!(matches!(
            whoami(HttpResponse::new(500, "")),
            Err(ProviderError::Server { status: 500, .. })
        ));
        assert_eq!(
            whoami(ok(json!({"name": "alice"}))),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "orgs".into()
            )))
        );
        assert_eq!(
            whoami(ok(json!({"name": "alice", "orgs": [{"id": 1}]}))),
            Err(ProviderError::Malformed(AnswerProblem::Missing(
                "orgs[0].name".into()
            )))
        );
        assert_eq!(
            whoami(ok(
                json!({"name": "alice", "orgs": [], "auth": {"accessToken": {"role": 1}}})
            )),
            Err(ProviderError::Malformed(AnswerProblem::Wrong {
                field: "auth.accessToken.role".into(),
                expected: Expected::Text
            }))
        );
        assert_eq!(
            whoami(HttpResponse::new(200, "<html>")),
            Err(ProviderError::Malformed(AnswerProblem::NotJson))
        );
    }
}
