//! Using a credential without asking its provider: the site and header it
//! goes with, following each provider's convention, and the copy helpers
//! (a `curl` line, the official clients' environment variables).

use serde::{Deserialize, Serialize};

use super::{bentocloud, huggingface, nuclia, Provider};
use crate::credential::{Credential, CredentialInfo, CredentialKind};
use crate::header::{HeaderValue, Secret, ValueScheme};

/// A header to set, and how its value is built from the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedHeader {
    pub name: String,
    pub scheme: ValueScheme,
}

impl SuggestedHeader {
    fn new(name: &str, scheme: ValueScheme) -> SuggestedHeader {
        SuggestedHeader {
            name: name.to_owned(),
            scheme,
        }
    }
}

/// Where and how to use a credential, following its provider's convention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteSuggestion {
    /// A site pattern, as the rule editor takes it.
    pub pattern: String,
    pub header: SuggestedHeader,
    /// Other forms the provider accepts, for the user to switch to.
    pub alternatives: Vec<SuggestedHeader>,
}

/// The site pattern and header a credential is used with, for one
/// `deployment` (a URL, or a deployment's name where the provider's
/// deployment hosts follow from it) or for all of them:
///
/// - BentoCloud: `https://*.<org>.cloud-apps.bentoml.com/`,
///   `Authorization: Bearer`, or `Basic` for older deployments;
/// - Nuclia: the Knowledge Box URL with `X-NUCLIA-SERVICEACCOUNT: Bearer`
///   (or nucliadb's `X-STF-SERVICEACCOUNT`), a NUA key's issuer with
///   `X-STF-NUAKEY: Bearer` (or `X-NUCLIA-NUAKEY`), and `Authorization:
///   Bearer` for a user token;
/// - Hugging Face: `https://*.endpoints.huggingface.cloud/`, `Bearer`;
/// - Jina: `Authorization: Token` (the official client's `token` form), or
///   `Bearer` where a deployment asks for it.
///
/// `None` when there is no site to suggest, such as BentoCloud without a
/// known organization or deployment.
pub fn suggest_site(info: &CredentialInfo, deployment: Option<&str>) -> Option<SiteSuggestion> {
    let deployment = deployment.map(str::trim).filter(|d| !d.is_empty());
    let url_origin = |d: &str| {
        crate::pattern::parse_url(d)
            .ok()
            .filter(|u| u.host().is_some())
            .map(|u| format!("{}/", u.origin().ascii_serialization()))
    };
    let under = |suffix: &str| match deployment {
        Some(d) if d.contains("://") => url_origin(d),
        Some(d) => Some(format!("https://{}.{suffix}/", d.to_ascii_lowercase())),
        None => Some(format!("https://*.{suffix}/")),
    };
    let own_site = || match deployment {
        Some(d) => url_origin(d),
        None => Some(format!("{}/", info.endpoint.origin())),
    };
    let bearer = |name: &str| SuggestedHeader::new(name, ValueScheme::Bearer);
    let (pattern, header, alternatives) = match (info.provider, &info.kind) {
        (Provider::BentoCloud, _) => {
            let org = info
                .account
                .organizations
                .first()
                .map(|o| o.to_ascii_lowercase());
            let pattern = match (deployment, org) {
                (Some(d), _) if d.contains("://") => url_origin(d),
                (_, Some(org)) => under(&format!("{org}.{}", bentocloud::DEPLOYMENT_DOMAIN)),
                (_, None) => None,
            }?;
            let basic = SuggestedHeader::new("Authorization", ValueScheme::Basic);
            (pattern, bearer("Authorization"), vec![basic])
        }
        (Provider::Nuclia, CredentialKind::KnowledgeBoxKey) => (
            deployment
                .map(str::to_owned)
                .unwrap_or_else(|| info.endpoint.as_str().to_owned()),
            bearer(nuclia::KB_HEADER),
            vec![bearer(nuclia::KB_STF_HEADER)],
        ),
        (Provider::Nuclia, CredentialKind::NuaKey) => (
            own_site()?,
            bearer(nuclia::NUA_STF_HEADER),
            vec![bearer(nuclia::NUA_HEADER)],
        ),
        (Provider::HuggingFace, _) => (
            under(huggingface::ENDPOINTS_DOMAIN)?,
            bearer("Authorization"),
            vec![],
        ),
        (Provider::Jina, _) => (
            own_site()?,
            SuggestedHeader::new("Authorization", ValueScheme::Token),
            vec![bearer("Authorization")],
        ),
        (Provider::Nuclia | Provider::Custom, _) => (own_site()?, bearer("Authorization"), vec![]),
        // The identity provider is not where the token is used: only the
        // deployment the user names is suggested.
        (Provider::OpenId, _) => (
            deployment.and_then(url_origin)?,
            bearer("Authorization"),
            vec![],
        ),
    };
    Some(SiteSuggestion {
        pattern,
        header,
        alternatives,
    })
}

/// A ready `curl -H 'Name: value' 'URL'` line, quoted for POSIX shells.
///
/// **Contains the secret.** Build it only for the user's explicit copy
/// action, put it on the clipboard, and never log, store or display it.
pub fn curl_line(url: &str, header: &SuggestedHeader, secret: &Secret) -> Option<String> {
    let value = HeaderValue::new(header.scheme, secret.clone())
        .and_then(|v| v.render())
        .ok()?;
    Some(format!(
        "curl -H {} {}",
        shell_quote(&format!("{}: {value}", header.name)),
        shell_quote(url)
    ))
}

/// `curl -H 'A: v' -H 'B: w' 'URL'`: the headers a site gets, as one
/// command, quoted for POSIX shells.
///
/// **Contains secrets.** Only for the user's explicit copy action.
pub fn curl_command(url: &str, headers: &[(String, String)]) -> String {
    let mut line = String::from("curl");
    for (name, value) in headers {
        line.push_str(" -H ");
        line.push_str(&shell_quote(&format!("{name}: {value}")));
    }
    line.push(' ');
    line.push_str(&shell_quote(url));
    line
}

/// The environment variables the provider's official client reads:
/// `BENTO_CLOUD_API_KEY` with `BENTO_CLOUD_API_ENDPOINT`, `JINA_AUTH_TOKEN`,
/// `HF_TOKEN`, plus the endpoint variable (`JINA_HUBBLE_REGISTRY`,
/// `HF_ENDPOINT`) when the endpoint is not the public one. Empty for
/// providers whose client reads no token from the environment.
///
/// **Contains the secret.** Only for the user's explicit copy action.
pub fn env_vars(credential: &Credential) -> Vec<(&'static str, String)> {
    let info = &credential.info;
    let secret = credential.secret.expose().to_owned();
    let endpoint = info.endpoint.as_str().to_owned();
    let custom = !info.endpoint.is_default_for(info.provider);
    let mut vars = match info.provider {
        Provider::BentoCloud => vec![
            ("BENTO_CLOUD_API_KEY", secret),
            ("BENTO_CLOUD_API_ENDPOINT", endpoint.clone()),
        ],
        Provider::Jina => vec![("JINA_AUTH_TOKEN", secret)],
        Provider::HuggingFace => vec![("HF_TOKEN", secret)],
        Provider::Nuclia | Provider::Custom | Provider::OpenId => return Vec::new(),
    };
    if custom {
        match info.provider {
            Provider::Jina => vars.push(("JINA_HUBBLE_REGISTRY", endpoint)),
            Provider::HuggingFace => vars.push(("HF_ENDPOINT", endpoint)),
            _ => {}
        }
    }
    vars
}

/// [`env_vars`] as `export NAME='value'` lines for a POSIX shell.
///
/// **Contains the secret.** Only for the user's explicit copy action.
pub fn env_exports(credential: &Credential) -> String {
    env_vars(credential)
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", shell_quote(value)))
        .collect()
}

/// `'text'`, with each `'` written as `'\''`: nothing inside is expanded.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Deployments, Endpoint};
    use crate::pattern::{ParseOptions, SitePattern};
    use crate::provider::tests::{credential, secret};

    fn pat() -> CredentialKind {
        CredentialKind::PersonalAccessToken
    }

    fn suggestion(
        info: &CredentialInfo,
        deployment: Option<&str>,
    ) -> (String, String, ValueScheme, Vec<String>) {
        let s = suggest_site(info, deployment).unwrap_or_else(|| panic!("{info:?}"));
        assert!(
            SitePattern::parse(&s.pattern, ParseOptions::default()).is_ok(),
            "{}",
            s.pattern
        );
        let alts = s
            .alternatives
            .iter()
            .map(|h| format!("{}: {}", h.name, h.scheme.as_str()))
            .collect();
        (s.pattern, s.header.name, s.header.scheme, alts)
    }

    #[test]
    fn sites_follow_each_provider_convention() {
        let mut bento = credential(
            Provider::BentoCloud,
            CredentialKind::ApiToken {
                scopes: vec![],
                deployments: Some(Deployments::All),
            },
            "t",
        )
        .info;
        assert_eq!(
            suggest_site(&bento, None),
            None,
            "no organization known yet"
        );
        bento.account.organizations = vec!["Acme".into()];
        assert_eq!(
            suggestion(&bento, None),
            (
                "https://*.acme.cloud-apps.bentoml.com/".into(),
                "Authorization".into(),
                ValueScheme::Bearer,
                vec!["Authorization: basic".into()]
            )
        );
        assert_eq!(
            suggestion(&bento, Some("summarize-x1")).0,
            "https://summarize-x1.acme.cloud-apps.bentoml.com/"
        );
        assert_eq!(
            suggestion(
                &bento,
                Some("https://summarize-x1.acme.cloud-apps.bentoml.com/predict")
            )
            .0,
            "https://summarize-x1.acme.cloud-apps.bentoml.com/"
        );

        let mut kb = credential(Provider::Nuclia, CredentialKind::KnowledgeBoxKey, "k").info;
        kb.endpoint = Endpoint::new("https://europe-1.dp.progress.cloud/api/v1/kb/kb1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            suggestion(&kb, None),
            (
                "https://europe-1.dp.progress.cloud/api/v1/kb/kb1".into(),
                "X-NUCLIA-SERVICEACCOUNT".into(),
                ValueScheme::Bearer,
                vec!["X-STF-SERVICEACCOUNT: bearer".into()]
            )
        );
        let mut nua = credential(Provider::Nuclia, CredentialKind::NuaKey, "k").info;
        nua.endpoint =
            Endpoint::new("https://europe-1.dp.progress.cloud").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            suggestion(&nua, None),
            (
                "https://europe-1.dp.progress.cloud/".into(),
                "X-STF-NUAKEY".into(),
                ValueScheme::Bearer,
                vec!["X-NUCLIA-NUAKEY: bearer".into()]
            )
        );
        let nuclia_user = credential(Provider::Nuclia, pat(), "k").info;
        assert_eq!(
            suggestion(&nuclia_user, None).0,
            "https://accounts.progress.cloud/"
        );

        let hf = credential(Provider::HuggingFace, pat(), "hf").info;
        assert_eq!(
            suggestion(&hf, None),
            (
                "https://*.endpoints.huggingface.cloud/".into(),
                "Authorization".into(),
                ValueScheme::Bearer,
                vec![]
            )
        );
        assert_eq!(
            suggestion(
                &hf,
                Some("https://x1y2.us-east-1.aws.endpoints.huggingface.cloud")
            )
            .0,
            "https://x1y2.us-east-1.aws.endpoints.huggingface.cloud/"
        );

        let jina = credential(Provider::Jina, pat(), "j").info;
        assert_eq!(
            suggestion(&jina, None),
            (
                "https://api.hubble.jina.ai/".into(),
                "Authorization".into(),
                ValueScheme::Token,
                vec!["Authorization: bearer".into()]
            )
        );
        assert_eq!(
            suggestion(&jina, Some("https://my-flow.wolf.jina.ai/v1")).0,
            "https://my-flow.wolf.jina.ai/"
        );

        let custom = credential(Provider::Custom, pat(), "c").info;
        assert_eq!(suggestion(&custom, None).0, "https://api.example.com/");
        assert_eq!(suggest_site(&custom, Some("not a url")), None);
    }

    #[test]
    fn copy_helpers_render_exactly() {
        let header = SuggestedHeader::new("Authorization", ValueScheme::Bearer);
        assert_eq!(
            curl_line("https://a.example/x?q=1", &header, &secret("it's-secret")).as_deref(),
            Some(r"curl -H 'Authorization: Bearer it'\''s-secret' 'https://a.example/x?q=1'")
        );
        let basic = SuggestedHeader::new("Authorization", ValueScheme::Basic);
        assert_eq!(
            curl_line("https://a.example", &basic, &secret("nocolon!")),
            None
        );

        let bento = credential(
            Provider::BentoCloud,
            CredentialKind::ApiToken {
                scopes: vec![],
                deployments: None,
            },
            "bento-tok",
        );
        assert_eq!(
            env_vars(&bento),
            [
                ("BENTO_CLOUD_API_KEY", "bento-tok".to_owned()),
                (
                    "BENTO_CLOUD_API_ENDPOINT",
                    "https://cloud.bentoml.com".to_owned()
                )
            ]
        );
        assert_eq!(
            env_exports(&bento),
            "export BENTO_CLOUD_API_KEY='bento-tok'\nexport BENTO_CLOUD_API_ENDPOINT='https://cloud.bentoml.com'\n"
        );
        let mut jina = credential(Provider::Jina, pat(), "jina-tok");
        assert_eq!(
            env_vars(&jina),
            [("JINA_AUTH_TOKEN", "jina-tok".to_owned())]
        );
        jina.info.endpoint =
            Endpoint::new("http://127.0.0.1:9000").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            env_vars(&jina),
            [
                ("JINA_AUTH_TOKEN", "jina-tok".to_owned()),
                ("JINA_HUBBLE_REGISTRY", "http://127.0.0.1:9000".to_owned())
            ]
        );
        let hf = credential(Provider::HuggingFace, pat(), "hf_tok");
        assert_eq!(env_vars(&hf), [("HF_TOKEN", "hf_tok".to_owned())]);
        let nuclia = credential(Provider::Nuclia, pat(), "n");
        assert!(env_vars(&nuclia).is_empty());
    }
}
