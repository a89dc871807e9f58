//! Which rule applies to a URL, answered in Rust the way the browser answers
//! it. The popup and the badge use it; the end-to-end suite checks that the
//! browser agrees.
//!
//! The browser applies every matching `modifyHeaders` rule in priority
//! order, and for each header the highest-priority rule that touches it wins
//! (<https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/declarativeNetRequest/ModifyHeaderInfo>).
//! So "the rule that applies" is per header: [`effective_headers`].
//!
//! Whether a rule applies also depends on who asks: a same-site rule
//! ([`crate::initiator::Initiators`]) sends its headers on another site's
//! request only for a safe top-level navigation. [`applying_to`] answers
//! for a request with its initiator, method and kind; [`applying`] answers
//! for the page at a URL and the requests it makes itself, which is what
//! the popup and the badge describe.

use crate::initiator::RequestFacts;
use crate::rules::HeaderAction;
use crate::rules::{RuleBook, SiteRule};

/// The URL string the browser would match: the `url` crate's serialization
/// where it parses the input (the same WHATWG rules, so `API.Example.COM:443`
/// becomes `api.example.com`), else the string itself when it is ASCII. The
/// browser hands Tokenward URLs it already canonicalized, some of which the
/// `url` crate may refuse, and matches them all the same.
pub fn canonical(url: &str) -> Option<String> {
    match crate::pattern::parse_url(url) {
        Ok(url) => Some(url.into()),
        Err(_) => url.is_ascii().then(|| url.to_owned()),
    }
}

/// Rules whose pattern contains the URL, on or off, most specific first.
fn containing<'a>(book: &'a RuleBook, url: &str) -> Vec<&'a SiteRule> {
    let Some(spec) = canonical(url) else {
        return Vec::new();
    };
    let mut hits: Vec<&SiteRule> = book
        .rules()
        .iter()
        .filter(|r| r.pattern.matches_spec(&spec))
        .collect();
    hits.sort_by_key(|r| std::cmp::Reverse(r.pattern.specificity()));
    hits
}

/// Enabled rules whose pattern contains the URL, most specific first.
pub fn applying<'a>(book: &'a RuleBook, url: &str) -> Vec<&'a SiteRule> {
    let mut hits = containing(book, url);
    hits.retain(|r| r.enabled);
    hits
}

/// Enabled rules that apply to this request, most specific first: the
/// pattern contains its URL and the rule's policy lets its initiator use it.
pub fn applying_to<'a>(book: &'a RuleBook, request: &RequestFacts<'_>) -> Vec<&'a SiteRule> {
    let mut hits = applying(book, request.url);
    hits.retain(|r| r.initiators.allow(&r.pattern, request));
    hits
}

/// For each header some enabled rule sets or removes on this request, the
/// action that wins and the rule it comes from.
pub fn effective_headers_for<'a>(
    book: &'a RuleBook,
    request: &RequestFacts<'_>,
) -> Vec<(&'a SiteRule, &'a HeaderAction)> {
    winners(applying_to(book, request))
}

/// The most specific rule whose pattern contains the URL, on or off. This is
/// what the popup shows for the current site.
pub fn covering<'a>(book: &'a RuleBook, url: &str) -> Option<&'a SiteRule> {
    containing(book, url).first().copied()
}

/// For each header some enabled rule touches on this URL, the action that
/// wins and the rule it comes from.
pub fn effective_headers<'a>(
    book: &'a RuleBook,
    url: &str,
) -> Vec<(&'a SiteRule, &'a HeaderAction)> {
    winners(applying(book, url))
}

fn winners(rules: Vec<&SiteRule>) -> Vec<(&SiteRule, &HeaderAction)> {
    let mut out: Vec<(&SiteRule, &HeaderAction)> = Vec::new();
    for rule in rules {
        for action in &rule.headers {
            if !out.iter().any(|(_, a)| a.name().same_as(action.name())) {
                out.push((rule, action));
            }
        }
    }
    out
}

/// What the toolbar badge says for a tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// An enabled rule sends headers here.
    On,
    /// As [`Badge::On`], with a token that expires within 7 days: the same
    /// text on an amber badge.
    OnExpiringSoon,
    /// An enabled rule covers this page, but the browser does not let
    /// Tokenward act on it: the site's permission is missing.
    NeedsPermission,
    /// Nothing is sent here.
    Off,
}

impl Badge {
    /// `permitted` says whether Tokenward holds the host permissions of the
    /// applying rule.
    pub fn of(applying: Option<&SiteRule>, permitted: bool) -> Badge {
        match (applying, permitted) {
            (None, _) => Badge::Off,
            (Some(_), true) => Badge::On,
            (Some(_), false) => Badge::NeedsPermission,
        }
    }

    /// [`Badge::of`], amber when a credential the rule sends expires within
    /// 7 days (`validity` says, by credential id).
    pub fn with_expiry(
        applying: Option<&SiteRule>,
        permitted: bool,
        validity: impl Fn(crate::credential::CredentialId) -> crate::credential::Validity,
    ) -> Badge {
        let badge = Badge::of(applying, permitted);
        let soon = applying.is_some_and(|rule| {
            rule.headers.iter().any(|h| match h {
                crate::rules::HeaderAction::Set {
                    credential: Some(id),
                    ..
                } => validity(*id) == crate::credential::Validity::ExpiringSoon,
                _ => false,
            })
        });
        if badge == Badge::On && soon {
            Badge::OnExpiringSoon
        } else {
            badge
        }
    }

    /// The badge's background colour.
    pub fn color(self) -> &'static str {
        match self {
            Badge::OnExpiringSoon => "#9a6700",
            Badge::NeedsPermission => "#cf222e",
            Badge::On | Badge::Off => "#1a7f37",
        }
    }

    /// The badge's few letters; `None` for no badge.
    pub fn text(self) -> Option<crate::text::Text> {
        match self {
            Badge::On | Badge::OnExpiringSoon => Some(crate::text!("badge_on")),
            Badge::NeedsPermission => Some(crate::text!("badge_needs_permission")),
            Badge::Off => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use crate::rules::HeaderDraft;

    fn book() -> RuleBook {
        let mut book = RuleBook::default();
        let mut wild = draft("https://*.example.com", "wild");
        wild.headers.push(HeaderDraft {
            name: "X-Team".into(),
            scheme: "raw".into(),
            secret: "ml".into(),
            credential: None,
        });
        for d in [
            wild,
            draft("https://api.example.com", "exact"),
            draft("https://api.example.com/v1", "v1"),
        ] {
            if let Err(e) = book.save(&d) {
                panic!("{e}");
            }
        }
        book
    }

    fn winners(book: &RuleBook, u: &str) -> Vec<(u32, String)> {
        effective_headers(book, u)
            .into_iter()
            .map(|(r, a)| (r.id, a.name().to_string()))
            .collect()
    }

    #[test]
    fn most_specific_rule_wins_each_header() {
        let b = book();
        assert_eq!(
            winners(&b, "https://api.example.com/v1/models"),
            [(3, "Authorization".to_owned()), (1, "X-Team".to_owned())],
            "the path rule wins Authorization; the wildcard still adds X-Team"
        );
        assert_eq!(
            winners(&b, "https://api.example.com/v2")[0],
            (2, "Authorization".to_owned())
        );
        assert_eq!(
            winners(&b, "https://other.example.com/")[0],
            (1, "Authorization".to_owned())
        );
        assert!(winners(&b, "https://example.com/").is_empty());
    }

    #[test]
    fn other_sites_get_headers_only_on_safe_navigations() {
        use crate::dnr::{RequestMethod, ResourceType};
        let b = book();
        let url = "https://api.example.com/v1/models";
        let ids = |initiator, method, kind| {
            applying_to(
                &b,
                &RequestFacts {
                    url,
                    initiator,
                    method,
                    kind,
                },
            )
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(None, RequestMethod::Get, ResourceType::MainFrame),
            [3, 2, 1]
        );
        assert_eq!(
            ids(
                Some("https://evil.test"),
                RequestMethod::Get,
                ResourceType::MainFrame
            ),
            [3, 2, 1]
        );
        assert!(ids(
            Some("https://evil.test"),
            RequestMethod::Post,
            ResourceType::MainFrame
        )
        .is_empty());
        assert!(ids(
            Some("https://evil.test"),
            RequestMethod::Get,
            ResourceType::SubFrame
        )
        .is_empty());
        // The wildcard's own site is example.com and its subdomains, so a
        // page on api.example.com is every rule's own.
        assert_eq!(
            ids(
                Some("https://api.example.com"),
                RequestMethod::Post,
                ResourceType::Xmlhttprequest
            ),
            [3, 2, 1]
        );
        assert_eq!(
            ids(
                Some("https://other.example.com"),
                RequestMethod::Post,
                ResourceType::Xmlhttprequest
            ),
            [1]
        );
        let headers = effective_headers_for(
            &b,
            &RequestFacts::from_page(
                url,
                "https://other.example.com",
                ResourceType::Xmlhttprequest,
            ),
        );
        assert_eq!(
            headers
                .iter()
                .map(|(r, a)| (r.id, a.name().to_string()))
                .collect::<Vec<_>>(),
            [(1, "Authorization".to_owned()), (1, "X-Team".to_owned())]
        );
    }

    #[test]
    fn covering_includes_disabled_rules_but_applying_does_not() {
        let mut b = book();
        assert!(b.set_enabled(2, false).is_ok());
        let u = "https://api.example.com/v2";
        assert_eq!(covering(&b, u).map(|r| r.id), Some(2));
        assert_eq!(
            applying(&b, u).iter().map(|r| r.id).collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn badge_follows_enabled_rules_and_permission() {
        let mut b = book();
        let rule = applying(&b, "https://api.example.com/").first().copied();
        assert_eq!(rule.map(|r| r.id), Some(2));
        assert_eq!(Badge::of(rule, true), Badge::On);
        assert_eq!(
            Badge::of(rule, false).text(),
            Some(crate::text!("badge_needs_permission"))
        );
        let soon = |_| crate::credential::Validity::ExpiringSoon;
        // Rule 2 sends no credential's token: no amber.
        assert_eq!(Badge::with_expiry(rule, true, soon), Badge::On);
        assert!(applying(&b, "chrome://extensions").is_empty());
        assert!(applying(&b, "not a url").is_empty());
        for id in [1, 2, 3] {
            assert!(b.set_enabled(id, false).is_ok());
        }
        assert_eq!(
            Badge::of(
                applying(&b, "https://api.example.com/").first().copied(),
                true
            ),
            Badge::Off
        );
    }

    #[test]
    fn a_token_expiring_soon_turns_the_badge_amber() {
        let mut b = RuleBook::default();
        let mut d = draft("https://api.example.com", "tok");
        d.headers[0].credential = Some(7);
        assert!(b.save(&d).is_ok());
        let rule = applying(&b, "https://api.example.com/").first().copied();
        use crate::credential::Validity;
        let badge = Badge::with_expiry(rule, true, |id| {
            assert_eq!(id, 7);
            Validity::ExpiringSoon
        });
        assert_eq!(
            (badge.text(), badge.color()),
            (Some(crate::text!("badge_on")), "#9a6700")
        );
        assert_eq!(
            Badge::with_expiry(rule, true, |_| Validity::Valid),
            Badge::On
        );
        assert_eq!(
            Badge::with_expiry(rule, false, |_| Validity::ExpiringSoon),
            Badge::NeedsPermission
        );
    }
}
