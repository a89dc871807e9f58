//! Compiles the rule book into declarativeNetRequest rules, and diffs them
//! against what the browser holds.
//!
//! Each enabled site rule becomes two browser rules with ids derived from the
//! site rule's id:
//!
//! - `2·id`: the page rule, `scheme://…` for every resource type;
//! - `2·id + 1`: the WebSocket rule, `ws(s)://…`, for `websocket` only.
//!
//! Both are needed because browsers disagree on the URL a WebSocket handshake
//! is matched with: Chromium uses the `ws(s)` URL, while Firefox's request
//! layer reports the `http(s)` URL (AdguardTeam/CoreLibs#1236). The two
//! conditions can never match the same URL.
//!
//! Exact hosts compile to an anchored `urlFilter` (`|https://host/…`): the
//! `/` or `:port/` right after the host is what keeps `api.example.com` from
//! matching `api.example.com.evil.test` or `api.example.com@evil.test`.
//! Wildcards need a `regexFilter`, since `*` in a `urlFilter` crosses `/` and
//! would match `https://evil.test/?.example.com/`.

use std::collections::BTreeMap;

use crate::dnr::{
    HeaderOperation, ModifyHeaderInfo, ResourceType, Rule, RuleAction, RuleActionType,
    RuleCondition, RuleId, UpdateRuleOptions,
};
use crate::header::{HeaderAction, HeaderError};
use crate::pattern::{HostPattern, SitePattern};
use crate::rules::{RuleBook, SiteRule, SiteRuleId};

/// How many rules the browser takes. `modifyHeaders` rules count as
/// "unsafe" in Chromium, which caps them separately from the 30,000 safe
/// dynamic rules.
/// <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#property-MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_rules: usize,
    pub max_regex_rules: usize,
}

impl Limits {
    /// `MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES` / `..._SESSION_RULES` and
    /// `MAX_NUMBER_OF_REGEX_RULES`.
    pub const CHROMIUM: Limits = Limits {
        max_rules: 5000,
        max_regex_rules: 1000,
    };

    /// Below this share of a limit the UI stays quiet; above it, it warns.
    pub fn near(used: usize, max: usize) -> bool {
        used * 10 >= max * 9
    }
}

/// Browser rules a site rule compiles to.
pub const RULES_PER_SITE_RULE: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("the enabled rules need {needed} browser rules, but the browser allows {max}; disable or delete some")]
    TooManyRules { needed: usize, max: usize },
    #[error("the enabled wildcard rules need {needed} pattern rules, but the browser allows {max}; disable or delete some")]
    TooManyRegexRules { needed: usize, max: usize },
    #[error("rule {id}: {source}")]
    Header {
        id: SiteRuleId,
        #[source]
        source: HeaderError,
    },
    #[error("rule id {0} is too large to compile")]
    IdOutOfRange(SiteRuleId),
}

/// The browser rule ids of a site rule: page rule, then WebSocket rule.
pub fn browser_rule_ids(id: SiteRuleId) -> Option<[RuleId; 2]> {
    let page = id.checked_mul(2)?;
    Some([page, page.checked_add(1)?])
}

/// The site rule a browser rule id came from.
pub fn site_rule_id(browser_id: RuleId) -> SiteRuleId {
    browser_id / 2
}

/// The priority of a pattern's browser rules: the most specific wins.
pub fn priority(pattern: &SitePattern) -> u32 {
    pattern.specificity() + 1
}

/// How many browser rules the enabled site rules need, in total and as
/// regex rules (wildcards), which the browser caps separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub rules: usize,
    pub regex_rules: usize,
}

pub fn usage(book: &RuleBook) -> Usage {
    let enabled = book.rules().iter().filter(|r| r.enabled);
    let (mut rules, mut regex_rules) = (0, 0);
    for rule in enabled {
        rules += RULES_PER_SITE_RULE;
        if matches!(rule.pattern.host(), HostPattern::Subdomains(_)) {
            regex_rules += RULES_PER_SITE_RULE;
        }
    }
    Usage { rules, regex_rules }
}

/// Compiles every enabled rule, in id order.
pub fn compile(book: &RuleBook, limits: Limits) -> Result<Vec<Rule>, CompileError> {
    let needed = usage(book);
    if needed.rules > limits.max_rules {
        return Err(CompileError::TooManyRules {
            needed: needed.rules,
            max: limits.max_rules,
        });
    }
    if needed.regex_rules > limits.max_regex_rules {
        return Err(CompileError::TooManyRegexRules {
            needed: needed.regex_rules,
            max: limits.max_regex_rules,
        });
    }
    let mut out = Vec::with_capacity(needed.rules);
    for rule in book.rules().iter().filter(|r| r.enabled) {
        out.extend(compile_rule(rule)?);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Compiles one site rule, enabled or not.
pub fn compile_rule(rule: &SiteRule) -> Result<[Rule; 2], CompileError> {
    let [page_id, socket_id] =
        browser_rule_ids(rule.id).ok_or(CompileError::IdOutOfRange(rule.id))?;
    let headers = rule
        .headers
        .iter()
        .map(|a| {
            modify_header(a).map_err(|source| CompileError::Header {
                id: rule.id,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let action = RuleAction {
        kind: RuleActionType::ModifyHeaders,
        request_headers: Some(headers),
        response_headers: None,
    };
    let priority = priority(&rule.pattern);
    let scheme = rule.pattern.scheme();
    let page = Rule {
        id: page_id,
        priority,
        action: action.clone(),
        condition: condition(&rule.pattern, scheme.as_str(), ResourceType::ALL.to_vec()),
    };
    let socket = Rule {
        id: socket_id,
        priority,
        action,
        condition: condition(
            &rule.pattern,
            scheme.websocket(),
            vec![ResourceType::Websocket],
        ),
    };
    Ok([page, socket])
}

fn modify_header(action: &HeaderAction) -> Result<ModifyHeaderInfo, HeaderError> {
    Ok(match action {
        HeaderAction::Set { name, value, .. } => ModifyHeaderInfo {
            header: name.as_str().to_owned(),
            operation: HeaderOperation::Set,
            value: Some(value.render()?),
        },
        HeaderAction::Remove { name } => ModifyHeaderInfo {
            header: name.as_str().to_owned(),
            operation: HeaderOperation::Remove,
            value: None,
        },
    })
}

fn condition(
    pattern: &SitePattern,
    scheme: &str,
    resource_types: Vec<ResourceType>,
) -> RuleCondition {
    let port = pattern.port().map(|p| format!(":{p}")).unwrap_or_default();
    let (url_filter, regex_filter) = match pattern.host() {
        HostPattern::Exact(host) => {
            // Paths never contain `*`, `^` or `|` (the parser refuses them),
            // so the path is literal here. A trailing `^` is the separator.
            let tail = match pattern.path() {
                Some(path) => format!("{path}^"),
                None => "/".to_owned(),
            };
            (Some(format!("|{scheme}://{host}{port}{tail}")), None)
        }
        HostPattern::Subdomains(suffix) => {
            // `[^/:@?#]+\.` is one or more labels: it cannot cross into the
            // port, the path or user info. The path boundary is `^`'s class.
            let tail = match pattern.path() {
                Some(path) => format!("{}(?:[^A-Za-z0-9_.%-]|$)", regex_escape(path)),
                None => "/".to_owned(),
            };
            let regex = format!(
                "^{scheme}://[^/:@?#]+\\.{}{port}{tail}",
                regex_escape(suffix)
            );
            (None, Some(regex))
        }
    };
    RuleCondition {
        url_filter,
        regex_filter,
        // Paths are case-sensitive; scheme and host are already lower case
        // in the URLs the browser matches.
        is_url_filter_case_sensitive: Some(true),
        request_domains: None,
        resource_types: Some(resource_types),
    }
}

/// Escapes everything but ASCII letters and digits, so RE2 reads it
/// literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c != '/' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The one update that turns `installed` into `desired`: rules whose id is
/// gone or whose content changed are removed, new and changed ones added.
/// Unchanged rules are left alone, so an edit costs one rule, not the set.
pub fn diff(desired: &[Rule], installed: &[Rule]) -> UpdateRuleOptions {
    let want: BTreeMap<RuleId, &Rule> = desired.iter().map(|r| (r.id, r)).collect();
    let have: BTreeMap<RuleId, &Rule> = installed.iter().map(|r| (r.id, r)).collect();
    let remove_rule_ids = have
        .iter()
        .filter(|(id, rule)| want.get(id).is_none_or(|w| w != *rule))
        .map(|(id, _)| *id)
        .collect();
    let add_rules = want
        .iter()
        .filter(|(id, rule)| have.get(id).is_none_or(|h| h != *rule))
        .map(|(_, rule)| (*rule).clone())
        .collect();
    UpdateRuleOptions {
        remove_rule_ids,
        add_rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use serde_json::json;

    fn book(patterns: &[&str]) -> RuleBook {
        let mut book = RuleBook::default();
        for p in patterns {
            if let Err(e) = book.save(&draft(p, "tok")) {
                panic!("{p}: {e}");
            }
        }
        book
    }

    fn filters(pattern: &str) -> (Option<String>, Option<String>) {
        let rules = compile(&book(&[pattern]), Limits::CHROMIUM).unwrap_or_else(|e| panic!("{e}"));
        let c = &rules[0].condition;
        (c.url_filter.clone(), c.regex_filter.clone())
    }

    #[test]
    fn exact_hosts_compile_to_anchored_url_filters() {
        for (pattern, filter) in [
            ("https://api.example.com", "|https://api.example.com/"),
            (
                "https://api.example.com:8443",
                "|https://api.example.com:8443/",
            ),
            ("http://127.0.0.1:3000/v1/", "|http://127.0.0.1:3000/v1^"),
            ("http://[::1]:3000", "|http://[::1]:3000/"),
            (
                "https://bücher.example/ä",
                "|https://xn--bcher-kva.example/%C3%A4^",
            ),
        ] {
            assert_eq!(
                filters(pattern),
                (Some(filter.to_owned()), None),
                "{pattern}"
            );
        }
    }

    #[test]
    fn wildcards_compile_to_regexes() {
        assert_eq!(
            filters("https://*.acme.cloud-apps.bentoml.com/"),
            (
                None,
                Some(r"^https://[^/:@?#]+\.acme\.cloud\-apps\.bentoml\.com/".to_owned())
            )
        );
        assert_eq!(
            filters("http://*.apps.localhost:8080/v1.0"),
            (
                None,
                Some(
                    r"^http://[^/:@?#]+\.apps\.localhost:8080/v1\.0(?:[^A-Za-z0-9_.%-]|$)"
                        .to_owned()
                )
            )
        );
    }

    #[test]
    fn a_rule_compiles_to_page_and_socket_rules() {
        let rules = compile(&book(&["https://api.example.com"]), Limits::CHROMIUM)
            .unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_value(&rules).unwrap_or_default();
        assert_eq!(
            json,
            json!([
                {
                    "id": 2,
                    "priority": 16838657,
                    "action": {"type": "modifyHeaders", "requestHeaders": [
                        {"header": "Authorization", "operation": "set", "value": "Bearer tok"}
                    ]},
                    "condition": {
                        "urlFilter": "|https://api.example.com/",
                        "isUrlFilterCaseSensitive": true,
                        "resourceTypes": ["main_frame", "sub_frame", "stylesheet", "script", "image", "font",
                            "object", "xmlhttprequest", "ping", "csp_report", "media", "websocket", "other"]
                    }
                },
                {
                    "id": 3,
                    "priority": 16838657,
                    "action": {"type": "modifyHeaders", "requestHeaders": [
                        {"header": "Authorization", "operation": "set", "value": "Bearer tok"}
                    ]},
                    "condition": {
                        "urlFilter": "|wss://api.example.com/",
                        "isUrlFilterCaseSensitive": true,
                        "resourceTypes": ["websocket"]
                    }
                }
            ])
        );
    }

    #[test]
    fn disabled_rules_compile_to_nothing() {
        let mut b = book(&["https://a.example", "https://b.example"]);
        assert!(b.set_enabled(1, false).is_ok());
        let ids: Vec<RuleId> = compile(&b, Limits::CHROMIUM)
            .unwrap_or_default()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [4, 5]);
    }

    #[test]
    fn limits_are_reported_before_the_browser_fails() {
        let b = book(&[
            "https://a.example",
            "https://b.example",
            "https://*.c.example",
        ]);
        let tight = Limits {
            max_rules: 5,
            max_regex_rules: 10,
        };
        assert_eq!(
            compile(&b, tight),
            Err(CompileError::TooManyRules { needed: 6, max: 5 })
        );
        let few_regex = Limits {
            max_rules: 100,
            max_regex_rules: 1,
        };
        assert_eq!(
            compile(&b, few_regex),
            Err(CompileError::TooManyRegexRules { needed: 2, max: 1 })
        );
        assert!(Limits::near(4500, 5000) && !Limits::near(4499, 5000));
    }

    #[test]
    fn diff_touches_only_what_changed() {
        let mut b = book(&[
            "https://a.example",
            "https://b.example",
            "https://c.example",
        ]);
        let installed = compile(&b, Limits::CHROMIUM).unwrap_or_default();
        assert!(
            diff(&installed, &installed).is_empty(),
            "reconciling twice is a no-op"
        );

        let mut edit = draft("https://b.example", "new-token");
        edit.id = Some(2);
        assert!(b.save(&edit).is_ok());
        assert!(b.delete(3).is_ok());
        let desired = compile(&b, Limits::CHROMIUM).unwrap_or_default();
        let update = diff(&desired, &installed);
        assert_eq!(update.remove_rule_ids, [4, 5, 6, 7]);
        assert_eq!(
            update.add_rules.iter().map(|r| r.id).collect::<Vec<_>>(),
            [4, 5]
        );

        assert_eq!(
            diff(&[], &installed).remove_rule_ids.len(),
            6,
            "an empty book clears the browser"
        );
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(browser_rule_ids(7), Some([14, 15]));
        assert_eq!(site_rule_id(14), 7);
        assert_eq!(site_rule_id(15), 7);
        assert_eq!(browser_rule_ids(u32::MAX), None);
    }
}
