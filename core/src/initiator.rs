//! Who may make the browser spend a rule's header: a rule's answer to
//! cross-site use, as `SameSite` is a cookie's.
//!
//! A header rule matches by the request's URL. Without more, any page on
//! any site can make the browser send the user's token to the covered API:
//! a form that posts there, a hidden frame, a `fetch` from a `data:` frame.
//! That is the cookie world's CSRF, and [`Initiators::SameSite`], the
//! default, answers it as `SameSite=Lax` cookies do
//! (draft-ietf-httpbis-rfc6265bis §5.6.7.1):
//!
//! - a top-level navigation with a safe method (GET, HEAD) gets the header
//!   whoever started it: a typed address, a bookmark, a link on another
//!   site;
//! - every other request gets it only when the page that made it is the
//!   rule's own site, or a site the user listed on the rule ("also from").
//!
//! The browser decides the second point with DNR's `initiatorDomains`,
//! which names domains: a listed domain covers its subdomains, and carries
//! no scheme and no port. So every port of a loopback host is one site, and
//! an `http` page of the rule's host counts as its own; the rule editor and
//! the README say so.

use serde::{Deserialize, Serialize};
use url::Host;

use crate::dnr::{RequestMethod, ResourceType};
use crate::pattern::{HostPattern, SitePattern};
use crate::text;
use crate::text::{Localize, Text};

/// How many "also from" sites one rule may list.
pub const MAX_ALSO: usize = 20;

/// A rule's policy on which pages may make the browser send its headers.
/// Read by its tag through a `Value` (`json::read_tagged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "camelCase")]
pub enum Initiators {
    /// Safe top-level navigations from anywhere; everything else only from
    /// the rule's own site and the sites in `also`.
    SameSite {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<InitiatorSite>,
    },
    /// Every page of every site: the behaviour of header extensions that
    /// match by URL alone.
    AnySite,
}

impl<'de> Deserialize<'de> for Initiators {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct SameSite {
            #[serde(default)]
            also: Vec<InitiatorSite>,
        }
        crate::json::read_tagged(d, "policy", |tag, fields| match tag {
            "sameSite" => {
                let SameSite { also } = crate::json::read(fields)?;
                Ok(Initiators::SameSite { also })
            }
            "anySite" => Ok(Initiators::AnySite),
            _ => Err(serde::de::Error::unknown_variant(
                tag,
                &["sameSite", "anySite"],
            )),
        })
    }
}

impl Default for Initiators {
    /// Rules stored before the policy existed read as [`Initiators::SameSite`]
    /// too: the migration to schema 3 narrows, never widens.
    fn default() -> Self {
        Initiators::SameSite { also: Vec::new() }
    }
}

/// A site a same-site rule's headers may also be used from, as the browser
/// compares initiators: a canonical domain (lower-case punycode, subdomains
/// included) or an IP address literal (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InitiatorSite(String);

/// Why an "also from" site was refused. Never carries a secret: the input
/// is a site the user typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitiatorError {
    #[error("{0}")]
    Pattern(#[from] crate::pattern::PatternError),
    #[error("`{0}` is a path; name the site only, as in https://app.example.com")]
    Path(String),
    #[error("`{0}` would let a whole top-level domain use the header; name one site, as in https://app.example.{0}")]
    TopLevel(String),
    #[error("at most {MAX_ALSO} sites may use one rule's headers")]
    TooMany,
}

impl Localize for InitiatorError {
    fn text(&self) -> Text {
        match self {
            InitiatorError::Pattern(e) => e.text(),
            InitiatorError::Path(input) => text!("error_initiator_path", input),
            InitiatorError::TopLevel(domain) => text!("error_initiator_top_level", domain),
            InitiatorError::TooMany => text!("error_initiator_too_many", MAX_ALSO),
        }
    }
}

impl InitiatorSite {
    /// Parses what the user typed: `https://app.example.com`,
    /// `app.example.com`, `http://127.0.0.1:5173` (the port is dropped: the
    /// browser compares domains only) or `*.example.com` (the same as
    /// `example.com`, which covers its subdomains).
    pub fn parse(input: &str) -> Result<InitiatorSite, InitiatorError> {
        // Any scheme the pattern parser accepts; plain http is fine here,
        // since nothing is sent *to* this site.
        let pattern = SitePattern::parse(input, crate::pattern::ParseOptions { allow_http: true })?;
        if pattern.path().is_some() {
            return Err(InitiatorError::Path(input.trim().to_owned()));
        }
        let domain = own_domain(&pattern);
        // One label covers every site under it (`com`, `internal`); only
        // `localhost`, which is this computer, is a site of its own.
        let single_label = !domain.contains('.') && !domain.starts_with('[');
        if single_label && domain != "localhost" {
            return Err(InitiatorError::TopLevel(domain));
        }
        Ok(InitiatorSite(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InitiatorSite {
    type Error = InitiatorError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        InitiatorSite::parse(&value)
    }
}

impl From<InitiatorSite> for String {
    fn from(site: InitiatorSite) -> String {
        site.0
    }
}

/// Parses a rule's "also from" list: blank entries skipped, duplicates
/// and the rule's own domain dropped, in the order typed.
pub fn parse_also(
    entries: &[String],
    pattern: &SitePattern,
) -> Result<Vec<InitiatorSite>, (usize, InitiatorError)> {
    let own = own_domain(pattern);
    let mut out: Vec<InitiatorSite> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let site = InitiatorSite::parse(entry).map_err(|e| (i + 1, e))?;
        if site.0 != own && !out.contains(&site) {
            out.push(site);
        }
    }
    if out.len() > MAX_ALSO {
        return Err((MAX_ALSO + 1, InitiatorError::TooMany));
    }
    Ok(out)
}

/// The domain a pattern's own pages have, as `initiatorDomains` names it:
/// the exact host, or a wildcard's suffix (which covers its subdomains).
pub fn own_domain(pattern: &SitePattern) -> String {
    match pattern.host() {
        HostPattern::Exact(host) | HostPattern::Subdomains(host) => host.clone(),
    }
}

impl Initiators {
    /// The `initiatorDomains` of a rule for `pattern`, or `None` for
    /// [`Initiators::AnySite`].
    pub fn domains(&self, pattern: &SitePattern) -> Option<Vec<String>> {
        match self {
            Initiators::AnySite => None,
            Initiators::SameSite { also } => {
                let mut domains = vec![own_domain(pattern)];
                domains.extend(also.iter().map(|s| s.0.clone()));
                Some(domains)
            }
        }
    }

    /// Whether a request with these facts may carry the header of a rule
    /// for `pattern` whose URL condition it already meets: the browser's
    /// answer, by the conditions [`crate::compile`] emits.
    pub fn allow(&self, pattern: &SitePattern, request: &RequestFacts<'_>) -> bool {
        let Some(domains) = self.domains(pattern) else {
            return true;
        };
        if request.kind == ResourceType::MainFrame && request.method.is_safe() {
            return true;
        }
        let Some(host) = request.initiator.and_then(initiator_host) else {
            return false;
        };
        domains.iter().any(|d| domain_matches(&host, d))
    }

    pub fn is_any_site(&self) -> bool {
        matches!(self, Initiators::AnySite)
    }

    pub fn also(&self) -> &[InitiatorSite] {
        match self {
            Initiators::SameSite { also } => also,
            Initiators::AnySite => &[],
        }
    }
}

/// A request as the browser's rule engine sees it, for the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub url: &'a str,
    /// The origin (or URL) of the page that made the request; `None` for a
    /// request no page made (a typed address, a bookmark). `"null"` is an
    /// opaque origin.
    pub initiator: Option<&'a str>,
    pub method: RequestMethod,
    pub kind: ResourceType,
}

impl<'a> RequestFacts<'a> {
    /// A top-level GET with no initiator: what the user's own navigation is.
    pub fn navigation(url: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            url,
            initiator: None,
            method: RequestMethod::Get,
            kind: ResourceType::MainFrame,
        }
    }

    /// A request the page at `page` makes to `url`.
    pub fn from_page(url: &'a str, page: &'a str, kind: ResourceType) -> RequestFacts<'a> {
        RequestFacts {
            url,
            initiator: Some(page),
            method: RequestMethod::Get,
            kind,
        }
    }
}

/// The host DNR compares with `initiatorDomains`: `None` for an opaque
/// origin (`null`, `data:`, a sandboxed frame) or anything without a host.
pub fn initiator_host(initiator: &str) -> Option<String> {
    let url = crate::pattern::parse_url(initiator).ok()?;
    match url.host()? {
        Host::Domain(d) => Some(d.to_owned()),
        Host::Ipv4(ip) => Some(ip.to_string()),
        Host::Ipv6(ip) => Some(format!("[{ip}]")),
    }
}

/// DNR's domain match: the domain itself or any subdomain of it.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.') && !domain.starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::ParseOptions;

    fn pattern(p: &str) -> SitePattern {
        SitePattern::parse(p, ParseOptions::default()).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// As a site typed in the editor reaches the parser: its host ASCII.
    fn site(s: &str) -> Result<String, InitiatorError> {
        let typed = crate::pattern::with_ascii_host(s, &crate::service::fakes::PunycodeNames);
        InitiatorSite::parse(&typed).map(|s| s.0)
    }

    #[test]
    fn also_from_sites_are_canonical_domains() {
        assert_eq!(
            site("https://App.Example.com"),
            Ok("app.example.com".into())
        );
        assert_eq!(site("app.example.com"), Ok("app.example.com".into()));
        assert_eq!(site("http://127.0.0.1:5173"), Ok("127.0.0.1".into()));
        assert_eq!(site("https://*.example.com"), Ok("example.com".into()));
        assert_eq!(
            site("https://bücher.example"),
            Ok("xn--bcher-kva.example".into())
        );
        assert_eq!(site("http://[::1]:8080"), Ok("[::1]".into()));
        assert_eq!(site("http://localhost:3000"), Ok("localhost".into()));
    }

    #[test]
    fn sites_that_reach_too_far_are_refused() {
        assert!(matches!(site("*"), Err(InitiatorError::Pattern(_))));
        assert!(matches!(
            site("<all_urls>"),
            Err(InitiatorError::Pattern(_))
        ));
        assert!(matches!(site("*.com"), Err(InitiatorError::Pattern(_))));
        assert_eq!(
            site("https://com"),
            Err(InitiatorError::TopLevel("com".into()))
        );
        assert_eq!(
            site("https://app.example.com/v1"),
            Err(InitiatorError::Path("https://app.example.com/v1".into()))
        );
        let many: Vec<String> = (0..=MAX_ALSO).map(|i| format!("s{i}.example")).collect();
        assert_eq!(
            parse_also(&many, &pattern("https://api.example.com")).map_err(|e| e.1),
            Err(InitiatorError::TooMany)
        );
    }

    #[test]
    fn also_lists_drop_blanks_duplicates_and_the_own_site() {
        let also = parse_also(
            &[
                "".into(),
                "app.example.com".into(),
                "https://app.example.com:8443".into(),
                "api.example.com".into(),
            ],
            &pattern("https://api.example.com"),
        );
        assert_eq!(also, Ok(vec![InitiatorSite("app.example.com".into())]));
        assert_eq!(
            parse_also(
                &["ok.example".into(), "*".into()],
                &pattern("https://a.example")
            )
            .map_err(|e| e.0),
            Err(2),
            "the error names the entry"
        );
    }

    #[test]
    fn same_site_is_lax() {
        let p = pattern("https://api.example.com");
        let policy = Initiators::SameSite {
            also: vec![InitiatorSite("app.example.com".into())],
        };
        let url = "https://api.example.com/v1";
        let from = |initiator: Option<&'static str>, method, kind| RequestFacts {
            url,
            initiator,
            method,
            kind,
        };
        use RequestMethod::*;
        use ResourceType::*;
        for (initiator, method, kind, allowed) in [
            // Safe top-level navigations from anywhere, or from nowhere.
            (None, Get, MainFrame, true),
            (Some("https://evil.example"), Get, MainFrame, true),
            (Some("https://evil.example"), Head, MainFrame, true),
            // Anything else only from the own site or a listed one.
            (Some("https://evil.example"), Post, MainFrame, false),
            (None, Post, MainFrame, false),
            (Some("https://api.example.com"), Post, MainFrame, true),
            (Some("https://evil.example"), Get, SubFrame, false),
            (Some("https://evil.example"), Post, Xmlhttprequest, false),
            (Some("null"), Post, Xmlhttprequest, false),
            (Some("https://api.example.com"), Post, Xmlhttprequest, true),
            (
                Some("http://api.example.com:8080"),
                Get,
                Xmlhttprequest,
                true,
            ),
            (Some("https://x.api.example.com"), Get, Websocket, true),
            (Some("https://app.example.com"), Put, Xmlhttprequest, true),
            (Some("https://deep.app.example.com"), Get, Image, true),
            (Some("https://example.com"), Get, Image, false),
            (
                Some("https://api.example.com.evil.example"),
                Get,
                Image,
                false,
            ),
            (Some("https://evilapi.example.com"), Get, Image, false),
        ] {
            assert_eq!(
                policy.allow(&p, &from(initiator, method, kind)),
                allowed,
                "{initiator:?} {method:?} {kind:?}"
            );
            assert!(Initiators::AnySite.allow(&p, &from(initiator, method, kind)));
        }
    }

    #[test]
    fn wildcards_are_their_suffix_and_ips_match_exactly() {
        let wild = pattern("https://*.apps.example.com");
        let policy = Initiators::default();
        assert_eq!(policy.domains(&wild), Some(vec!["apps.example.com".into()]));
        let facts = |page| {
            RequestFacts::from_page(
                "https://a.apps.example.com/",
                page,
                ResourceType::Xmlhttprequest,
            )
        };
        assert!(policy.allow(&wild, &facts("https://b.apps.example.com")));
        assert!(!policy.allow(&wild, &facts("https://example.com")));
        assert!(domain_matches("127.0.0.1", "127.0.0.1"));
        assert!(!domain_matches("a.[::1]", "[::1]"));
        assert_eq!(initiator_host("http://[::1]:80/"), Some("[::1]".into()));
        assert_eq!(initiator_host("null"), None);
        assert_eq!(initiator_host("data:text/html,x"), None);
    }

    #[test]
    fn stored_form_is_tagged_and_revalidated() {
        let policy = Initiators::SameSite {
            also: vec![InitiatorSite("app.example.com".into())],
        };
        let json = serde_json::to_value(&policy).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"policy": "sameSite", "also": ["app.example.com"]})
        );
        assert_eq!(
            serde_json::from_value::<Initiators>(json).ok(),
            Some(policy)
        );
        assert_eq!(
            serde_json::to_value(Initiators::AnySite).unwrap_or_default(),
            serde_json::json!({"policy": "anySite"})
        );
        assert!(
            serde_json::from_value::<Initiators>(
                serde_json::json!({"policy": "sameSite", "also": ["*"]})
            )
            .is_err(),
            "a hand-edited store cannot widen a rule"
        );
    }
}
