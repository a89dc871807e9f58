//! Compiles the rule book into declarativeNetRequest rules, and diffs them
//! against what the browser holds.
//!
//! Each enabled site rule becomes up to three browser rules, with ids
//! derived from the site rule's id (`4·id + slot`, [`Slot`]):
//!
//! - [`Slot::Page`]: `scheme://…`, every resource type the browser knows;
//!   for a same-site rule only when the initiator is the rule's own site or
//!   one it lists (`initiatorDomains`);
//! - [`Slot::Socket`]: `ws(s)://…`, `websocket` only, with the same
//!   initiator condition;
//! - [`Slot::Navigation`], same-site rules only: `scheme://…`, `main_frame`
//!   with GET or HEAD, from any initiator or none: the top-level
//!   navigations `SameSite=Lax` allows. `initiatorDomains` never matches a
//!   request without an initiator (a typed address), so this is also what
//!   gives the user's own navigation its header.
//!
//! Two WebSocket rules are needed because browsers disagree on the URL a
//! handshake is matched with: Chromium uses the `ws(s)` URL, while Firefox's
//! request layer reports the `http(s)` URL (AdguardTeam/CoreLibs#1236). The
//! two conditions can never match the same URL.
//!
//! Exact hosts compile to an anchored `urlFilter` (`|https://host/…`): the
//! `/` or `:port/` right after the host is what keeps `api.example.com` from
//! matching `api.example.com.evil.test` or `api.example.com@evil.test`.
//! Wildcards need a `regexFilter`, since `*` in a `urlFilter` crosses `/` and
//! would match `https://evil.test/?.example.com/`.
//!
//! Every condition key used here (`urlFilter`, `regexFilter`,
//! `isUrlFilterCaseSensitive`, `initiatorDomains`, `requestMethods`,
//! `resourceTypes`, `tabIds`) is in both Chromium's and Firefox's schema: one
//! key a browser does not know makes the whole update fail.

use std::collections::BTreeMap;

use crate::dnr::{
    Browser, HeaderOperation, ModifyHeaderInfo, RequestMethod, ResourceType, Rule, RuleAction,
    RuleActionType, RuleCondition, RuleId, UpdateRuleOptions,
};
use crate::header::HeaderError;
use crate::initiator::Initiators;
use crate::pattern::{HostPattern, SitePattern};
use crate::rules::HeaderAction;
use crate::rules::{RuleBook, SiteRule, SiteRuleId};
use crate::text;
use crate::text::{Localize, Text};

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

/// What rules are compiled for: the browser (which resource types it
/// knows) and how many rules it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub browser: Browser,
    pub limits: Limits,
}

impl Target {
    pub const CHROMIUM: Target = Target {
        browser: Browser::Chromium,
        limits: Limits::CHROMIUM,
    };
    /// Firefox 128+ takes 5,000 dynamic and 5,000 session rules, and 1,000
    /// regex rules, as Chromium does.
    pub const FIREFOX: Target = Target {
        browser: Browser::Firefox,
        limits: Limits::CHROMIUM,
    };
}

/// The place of a browser rule among its site rule's: browser rule id
/// `4·id + slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Page = 0,
    Socket = 1,
    Navigation = 2,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::Page, Slot::Socket, Slot::Navigation];

    pub fn of(browser_id: RuleId) -> Option<Slot> {
        Slot::ALL
            .into_iter()
            .find(|s| *s as u32 == browser_id % SLOTS)
    }
}

/// Ids reserved per site rule: three used, one spare.
pub const SLOTS: u32 = 4;

/// Site rule ids from here on are tab rules ([`TabRule`]), kept apart from
/// the book's so the two never share a browser rule id; the book's ids stay
/// below it.
pub const TAB_RULE_BASE: SiteRuleId = 1 << 28;

/// The largest site rule id: its browser rule ids stay within `i32`, which
/// both browsers take.
pub const MAX_SITE_RULE_ID: SiteRuleId = (1 << 29) - 1;

/// Added to a tab rule's priority: in its tab, it wins over any rule of the
/// book (whose priorities stay below 2^25, see
/// [`SitePattern::specificity`]).
pub const TAB_PRIORITY: u32 = 1 << 26;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("the enabled rules need {needed} browser rules, but the browser allows {max}; disable or delete some")]
    TooManyRules { needed: usize, max: usize },
    #[error("the enabled rules need {needed} browser rules, {managed} of them kept for the administrator's rules, but the browser allows {max}; disable or delete some")]
    TooManyWithManaged {
        needed: usize,
        managed: usize,
        max: usize,
    },
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

impl Localize for CompileError {
    fn text(&self) -> Text {
        match self {
            CompileError::TooManyRules { needed, max } => {
                text!("error_compile_too_many_rules", *needed, *max)
            }
            CompileError::TooManyWithManaged {
                needed,
                managed,
                max,
            } => text!(
                "error_compile_too_many_with_managed",
                *needed,
                *managed,
                *max
            ),
            CompileError::TooManyRegexRules { needed, max } => {
                text!("error_compile_too_many_regex_rules", *needed, *max)
            }
            CompileError::Header { id, source } => {
                text!("error_compile_header", *id, source.text())
            }
            CompileError::IdOutOfRange(id) => text!("error_compile_id_out_of_range", *id),
        }
    }
}

/// The browser rule id of a site rule's `slot`.
pub fn browser_rule_id(id: SiteRuleId, slot: Slot) -> Option<RuleId> {
    (id <= MAX_SITE_RULE_ID).then(|| id * SLOTS + slot as u32)
}

/// Every browser rule id a site rule may have, in slot order.
pub fn browser_rule_ids(id: SiteRuleId) -> Option<[RuleId; 3]> {
    Some([
        browser_rule_id(id, Slot::Page)?,
        browser_rule_id(id, Slot::Socket)?,
        browser_rule_id(id, Slot::Navigation)?,
    ])
}

/// The site rule a browser rule id came from.
pub fn site_rule_id(browser_id: RuleId) -> SiteRuleId {
    browser_id / SLOTS
}

/// The priority of a pattern's browser rules: the most specific wins.
pub fn priority(pattern: &SitePattern) -> u32 {
    pattern.specificity() + 1
}

/// How many browser rules one enabled site rule compiles to.
pub fn rules_per_site_rule(initiators: &Initiators) -> usize {
    match initiators {
        Initiators::SameSite { .. } => 3,
        Initiators::AnySite => 2,
    }
}

/// The most browser rules a site rule compiles to.
pub const MAX_RULES_PER_SITE_RULE: usize = 3;

/// How many browser rules the enabled site rules need, in total and as
/// regex rules (wildcards), which the browser caps separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub rules: usize,
    pub regex_rules: usize,
}

pub fn usage(book: &RuleBook) -> Usage {
    usage_of(book.rules().iter())
}

fn usage_of<'a>(rules: impl Iterator<Item = &'a SiteRule>) -> Usage {
    rules
        .filter(|r| r.enabled)
        .map(|rule| usage_of_one(&rule.pattern, &rule.initiators))
        .fold(Usage::default(), Usage::plus)
}

/// What one enabled site rule of `pattern`, used by `initiators`, needs.
pub fn usage_of_one(pattern: &SitePattern, initiators: &Initiators) -> Usage {
    let rules = rules_per_site_rule(initiators);
    Usage {
        rules,
        regex_rules: if matches!(pattern.host(), HostPattern::Subdomains(_)) {
            rules
        } else {
            0
        },
    }
}

impl Usage {
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            rules: self.rules + other.rules,
            regex_rules: self.regex_rules + other.regex_rules,
        }
    }
}

fn check_limits(needed: Usage, limits: Limits) -> Result<(), CompileError> {
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
    Ok(())
}

/// Compiles every enabled rule, in id order.
pub fn compile(book: &RuleBook, target: Target) -> Result<Vec<Rule>, CompileError> {
    check_limits(usage(book), target.limits)?;
    let mut out = Vec::with_capacity(usage(book).rules);
    for rule in book.rules().iter().filter(|r| r.enabled) {
        if rule.id >= TAB_RULE_BASE {
            return Err(CompileError::IdOutOfRange(rule.id));
        }
        out.extend(compile_rule(rule, target.browser)?);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Whether the enabled rules of `book` fit the browser's limits, with
/// `reserved` kept for rules that are not in the book (the
/// administrator's, which come into force with the user's logins).
pub fn fits(book: &RuleBook, reserved: Usage, limits: Limits) -> Result<(), CompileError> {
    fits_usage(usage(book), reserved, limits)
}

/// [`fits`] for rules that need `used`.
pub fn fits_usage(used: Usage, reserved: Usage, limits: Limits) -> Result<(), CompileError> {
    let needed = used.plus(reserved);
    match check_limits(needed, limits) {
        Err(CompileError::TooManyRules { needed, max }) if reserved.rules > 0 => {
            Err(CompileError::TooManyWithManaged {
                needed,
                managed: reserved.rules,
                max,
            })
        }
        checked => checked,
    }
}

/// The browser update one site rule's change needs, on rules installed as
/// [`compile`] gave them for the book before the change: every browser rule
/// the site rule may have is removed (its ids are deterministic, so nothing
/// is read back), and those of `after`, the rule as it is now in force, are
/// added. The browser removes before it adds, in the same call, and ignores
/// the ids it does not hold. `after` is `None` for a rule deleted or with
/// nothing in force. [`compile`]'s result, edit after edit, is what the
/// incremental updates leave (`service::tests::edits_applied_alone_equal_a_full_reconcile`).
pub fn rule_update(
    id: SiteRuleId,
    after: Option<&SiteRule>,
    target: Target,
) -> Result<UpdateRuleOptions, CompileError> {
    if id >= TAB_RULE_BASE {
        return Err(CompileError::IdOutOfRange(id));
    }
    let remove_rule_ids = browser_rule_ids(id)
        .ok_or(CompileError::IdOutOfRange(id))?
        .to_vec();
    let add_rules = match after.filter(|r| r.enabled) {
        Some(rule) => compile_rule(rule, target.browser)?,
        None => Vec::new(),
    };
    Ok(UpdateRuleOptions {
        remove_rule_ids,
        add_rules,
    })
}

/// A rule for one tab only, from the popup's "Use in this tab only": a
/// session rule limited by `tabIds`, gone when the tab closes or the
/// browser restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabRule {
    pub tab: i32,
    pub rule: SiteRule,
}

/// Compiles tab rules, each with its `tabIds` and above any rule of the
/// book in priority.
pub fn compile_tab_rules(rules: &[TabRule], target: Target) -> Result<Vec<Rule>, CompileError> {
    check_limits(usage_of(rules.iter().map(|t| &t.rule)), target.limits)?;
    let mut out = Vec::new();
    for tab_rule in rules.iter().filter(|t| t.rule.enabled) {
        if tab_rule.rule.id < TAB_RULE_BASE {
            return Err(CompileError::IdOutOfRange(tab_rule.rule.id));
        }
        for mut rule in compile_rule(&tab_rule.rule, target.browser)? {
            rule.priority += TAB_PRIORITY;
            rule.condition.tab_ids = Some(vec![tab_rule.tab]);
            out.push(rule);
        }
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Compiles one site rule, enabled or not, for `browser`.
pub fn compile_rule(rule: &SiteRule, browser: Browser) -> Result<Vec<Rule>, CompileError> {
    let id_of = |slot| browser_rule_id(rule.id, slot).ok_or(CompileError::IdOutOfRange(rule.id));
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
    let initiators = rule.initiators.domains(&rule.pattern);
    let mut out = Vec::with_capacity(MAX_RULES_PER_SITE_RULE);
    out.push(Rule {
        id: id_of(Slot::Page)?,
        priority,
        action: action.clone(),
        condition: RuleCondition {
            initiator_domains: initiators.clone(),
            ..condition(
                &rule.pattern,
                scheme.as_str(),
                browser.resource_types().to_vec(),
            )
        },
    });
    out.push(Rule {
        id: id_of(Slot::Socket)?,
        priority,
        action: action.clone(),
        condition: RuleCondition {
            initiator_domains: initiators.clone(),
            ..condition(
                &rule.pattern,
                scheme.websocket(),
                vec![ResourceType::Websocket],
            )
        },
    });
    if initiators.is_some() {
        out.push(Rule {
            id: id_of(Slot::Navigation)?,
            priority,
            action,
            condition: RuleCondition {
                request_methods: Some(RequestMethod::SAFE.to_vec()),
                ..condition(
                    &rule.pattern,
                    scheme.as_str(),
                    vec![ResourceType::MainFrame],
                )
            },
        });
    }
    Ok(out)
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
        resource_types: Some(resource_types),
        ..RuleCondition::default()
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
    use serde_json::{json, Value as Json};

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
        let typed = crate::pattern::with_ascii_host(pattern, &crate::service::fakes::PunycodeNames);
        let rules = compile(&book(&[&typed]), Target::CHROMIUM).unwrap_or_else(|e| panic!("{e}"));
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

    fn chromium_types() -> Json {
        json!([
            "main_frame",
            "sub_frame",
            "stylesheet",
            "script",
            "image",
            "font",
            "object",
            "xmlhttprequest",
            "ping",
            "csp_report",
            "media",
            "websocket",
            "webtransport",
            "webbundle",
            "other"
        ])
    }

    #[test]
    fn a_same_site_rule_compiles_to_page_socket_and_navigation_rules() {
        let mut b = RuleBook::default();
        let mut d = draft("https://api.example.com", "tok");
        d.also_from = vec!["https://app.example.com".into()];
        assert!(b.save(&d).is_ok());
        let rules = compile(&b, Target::CHROMIUM).unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_value(&rules).unwrap_or_default();
        let action = json!({"type": "modifyHeaders", "requestHeaders": [
            {"header": "Authorization", "operation": "set", "value": "Bearer tok"}
        ]});
        assert_eq!(
            json,
            json!([
                {
                    "id": 4,
                    "priority": 16838657,
                    "action": action,
                    "condition": {
                        "urlFilter": "|https://api.example.com/",
                        "isUrlFilterCaseSensitive": true,
                        "initiatorDomains": ["api.example.com", "app.example.com"],
                        "resourceTypes": chromium_types()
                    }
                },
                {
                    "id": 5,
                    "priority": 16838657,
                    "action": action,
                    "condition": {
                        "urlFilter": "|wss://api.example.com/",
                        "isUrlFilterCaseSensitive": true,
                        "initiatorDomains": ["api.example.com", "app.example.com"],
                        "resourceTypes": ["websocket"]
                    }
                },
                {
                    "id": 6,
                    "priority": 16838657,
                    "action": action,
                    "condition": {
                        "urlFilter": "|https://api.example.com/",
                        "isUrlFilterCaseSensitive": true,
                        "requestMethods": ["get", "head"],
                        "resourceTypes": ["main_frame"]
                    }
                }
            ])
        );
    }

    #[test]
    fn an_any_site_rule_has_no_initiator_condition() {
        let mut b = RuleBook::default();
        let mut d = draft("https://*.apps.example.com", "tok");
        d.any_site = true;
        assert!(b.save(&d).is_ok());
        let rules = compile(&b, Target::CHROMIUM).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.iter().map(|r| r.id).collect::<Vec<_>>(), [4, 5]);
        for rule in &rules {
            assert_eq!(rule.condition.initiator_domains, None);
            assert_eq!(rule.condition.request_methods, None);
        }
        assert_eq!(
            serde_json::to_value(&rules[0].condition.resource_types).unwrap_or_default(),
            chromium_types()
        );
        assert_eq!(
            usage(&b),
            Usage {
                rules: 2,
                regex_rules: 2
            }
        );
    }

    #[test]
    fn each_browser_gets_the_resource_types_it_knows() {
        let b = book(&["https://api.example.com"]);
        let types = |target| {
            compile(&b, target).unwrap_or_default()[0]
                .condition
                .resource_types
                .clone()
                .unwrap_or_default()
        };
        let firefox = types(Target::FIREFOX);
        assert!(
            firefox.contains(&ResourceType::Beacon),
            "sendBeacon in Firefox"
        );
        assert!(!firefox.contains(&ResourceType::Webtransport));
        let chromium = types(Target::CHROMIUM);
        assert!(chromium.contains(&ResourceType::Webtransport));
        assert!(!chromium.contains(&ResourceType::Beacon));
        for browser in [Browser::Chromium, Browser::Firefox] {
            let mut listed = browser.resource_types().to_vec();
            listed.sort();
            listed.dedup();
            assert_eq!(listed.len(), browser.resource_types().len(), "{browser:?}");
        }
    }

    #[test]
    fn tab_rules_carry_their_tab_and_win_in_it() {
        let b = book(&["https://api.example.com"]);
        let mut rule = b.rules()[0].clone();
        rule.id = TAB_RULE_BASE + 1;
        let compiled = compile_tab_rules(&[TabRule { tab: 42, rule }], Target::FIREFOX)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.len(), 3);
        let book_rules = compile(&b, Target::FIREFOX).unwrap_or_default();
        for (tab, of_book) in compiled.iter().zip(&book_rules) {
            assert_eq!(tab.condition.tab_ids, Some(vec![42]));
            assert!(tab.priority > of_book.priority);
            assert_eq!(site_rule_id(tab.id), TAB_RULE_BASE + 1);
            assert!(i32::try_from(tab.id).is_ok());
        }
        assert_eq!(
            compile_tab_rules(
                &[TabRule {
                    tab: 1,
                    rule: b.rules()[0].clone()
                }],
                Target::FIREFOX
            ),
            Err(CompileError::IdOutOfRange(1)),
            "a book id never becomes a tab rule's"
        );
    }

    #[test]
    fn disabled_rules_compile_to_nothing() {
        let mut b = book(&["https://a.example", "https://b.example"]);
        assert!(b.set_enabled(1, false).is_ok());
        let ids: Vec<RuleId> = compile(&b, Target::CHROMIUM)
            .unwrap_or_default()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [8, 9, 10]);
    }

    #[test]
    fn limits_are_reported_before_the_browser_fails() {
        let b = book(&[
            "https://a.example",
            "https://b.example",
            "https://*.c.example",
        ]);
        let tight = Target {
            limits: Limits {
                max_rules: 8,
                max_regex_rules: 10,
            },
            ..Target::CHROMIUM
        };
        assert_eq!(
            compile(&b, tight),
            Err(CompileError::TooManyRules { needed: 9, max: 8 })
        );
        let few_regex = Target {
            limits: Limits {
                max_rules: 100,
                max_regex_rules: 1,
            },
            ..Target::CHROMIUM
        };
        assert_eq!(
            compile(&b, few_regex),
            Err(CompileError::TooManyRegexRules { needed: 3, max: 1 })
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
        let installed = compile(&b, Target::CHROMIUM).unwrap_or_default();
        assert!(
            diff(&installed, &installed).is_empty(),
            "reconciling twice is a no-op"
        );

        let mut edit = draft("https://b.example", "new-token");
        edit.id = Some(2);
        assert!(b.save(&edit).is_ok());
        assert!(b.delete(3).is_ok());
        let desired = compile(&b, Target::CHROMIUM).unwrap_or_default();
        let update = diff(&desired, &installed);
        assert_eq!(update.remove_rule_ids, [8, 9, 10, 12, 13, 14]);
        assert_eq!(
            update.add_rules.iter().map(|r| r.id).collect::<Vec<_>>(),
            [8, 9, 10]
        );

        assert_eq!(
            diff(&[], &installed).remove_rule_ids.len(),
            9,
            "an empty book clears the browser"
        );
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(browser_rule_ids(7), Some([28, 29, 30]));
        for id in [28, 29, 30] {
            assert_eq!(site_rule_id(id), 7);
        }
        assert_eq!(Slot::of(30), Some(Slot::Navigation));
        assert_eq!(Slot::of(31), None);
        assert_eq!(browser_rule_ids(u32::MAX), None);
        assert_eq!(browser_rule_ids(MAX_SITE_RULE_ID + 1), None);
        let last = browser_rule_id(MAX_SITE_RULE_ID, Slot::Navigation).unwrap_or_default();
        assert!(i32::try_from(last).is_ok());
    }
}
