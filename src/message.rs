//! The one message type pages send to the background, and what comes back.
//! Views carry no secret: pages show masked values only.

use serde::{Deserialize, Serialize};

use crate::compile::{self, Limits};
use crate::header::HeaderAction;
use crate::matcher;
use crate::pattern::Scheme;
use crate::rules::{RuleBook, RuleDraft, SiteRule, SiteRuleId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Request {
    ListRules,
    SaveRule { draft: RuleDraft },
    SetEnabled { id: SiteRuleId, enabled: bool },
    DeleteRule { id: SiteRuleId },
    SiteStatus { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Response {
    Rules(RulesView),
    Site(SiteView),
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesView {
    pub rules: Vec<RuleView>,
    /// The rule the request saved, if it saved one.
    pub saved: Option<SiteRuleId>,
    /// Stored rules that could not be read and were kept aside.
    pub unreadable: usize,
    /// Set when the enabled rules come close to the browser's limit.
    pub limit_warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub id: SiteRuleId,
    pub label: String,
    pub pattern: String,
    pub allow_http: bool,
    pub enabled: bool,
    /// The match patterns to request as host permissions.
    pub host_permissions: Vec<String>,
    pub headers: Vec<HeaderView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderView {
    pub name: String,
    /// A `ValueScheme` name, or `remove`.
    pub scheme: String,
    /// `Authorization: Bearer ••••••••wxyz`.
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SiteState {
    /// A rule's pattern contains this URL (the rule may be off).
    Covered,
    /// An http(s) page no rule names.
    Uncovered,
    /// Not a web page: browser pages, extension pages, files.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    pub origin: String,
    pub state: SiteState,
    pub rule: Option<RuleView>,
    /// The pattern to prefill when adding a rule for this site.
    pub suggested_pattern: String,
}

impl RuleView {
    pub fn of(rule: &SiteRule) -> RuleView {
        RuleView {
            id: rule.id,
            label: rule.label.clone(),
            pattern: rule.pattern.to_string(),
            allow_http: rule.allow_http,
            enabled: rule.enabled,
            host_permissions: rule.pattern.host_permissions().to_vec(),
            headers: rule
                .headers
                .iter()
                .map(|a| HeaderView {
                    name: a.name().to_string(),
                    scheme: match a {
                        HeaderAction::Set { value, .. } => value.scheme.as_str().to_owned(),
                        HeaderAction::Remove { .. } => "remove".to_owned(),
                    },
                    summary: a.summary(),
                })
                .collect(),
        }
    }
}

impl RulesView {
    pub fn of(
        book: &RuleBook,
        saved: Option<SiteRuleId>,
        unreadable: usize,
        limits: Limits,
    ) -> RulesView {
        let used = compile::usage(book);
        let limit_warning = if Limits::near(used.rules, limits.max_rules) {
            Some(format!(
                "The enabled rules use {} of the browser's {} header rules; new rules will be refused past the limit.",
                used.rules, limits.max_rules
            ))
        } else if Limits::near(used.regex_rules, limits.max_regex_rules) {
            Some(format!(
                "The enabled wildcard rules use {} of the browser's {} pattern rules; new wildcard rules will be refused past the limit.",
                used.regex_rules, limits.max_regex_rules
            ))
        } else {
            None
        };
        RulesView {
            rules: book.rules().iter().map(RuleView::of).collect(),
            saved,
            unreadable,
            limit_warning,
        }
    }
}

impl SiteView {
    pub fn of(book: &RuleBook, url: &str) -> SiteView {
        let web = matcher::canonical(url).and_then(|spec| {
            let (scheme, rest) = spec.split_once("://")?;
            Scheme::of_url(scheme)?;
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            (!authority.is_empty()).then(|| (format!("{scheme}://{authority}"), spec.clone()))
        });
        let Some((origin, spec)) = web else {
            return SiteView {
                origin: String::new(),
                state: SiteState::Unsupported,
                rule: None,
                suggested_pattern: String::new(),
            };
        };
        let rule = matcher::covering(book, &spec).map(RuleView::of);
        SiteView {
            state: if rule.is_some() {
                SiteState::Covered
            } else {
                SiteState::Uncovered
            },
            rule,
            suggested_pattern: origin.clone(),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::draft;
    use serde_json::json;

    #[test]
    fn requests_are_tagged_camel_case() {
        let json = json!({"type": "setEnabled", "id": 3, "enabled": false});
        assert_eq!(
            serde_json::from_value::<Request>(json).ok(),
            Some(Request::SetEnabled {
                id: 3,
                enabled: false
            })
        );
        let save = json!({"type": "saveRule", "draft": {
            "pattern": "https://a.example", "headers": [{"name": "Authorization", "scheme": "bearer", "secret": "t"}]
        }});
        assert!(
            matches!(serde_json::from_value::<Request>(save), Ok(Request::SaveRule { draft }) if draft.enabled)
        );
    }

    #[test]
    fn site_view_reports_coverage_without_secrets() {
        let mut book = RuleBook::default();
        assert!(book
            .save(&draft("https://api.example.com", "sk-secret-value-1234"))
            .is_ok());
        let covered = SiteView::of(&book, "https://api.example.com/docs");
        assert_eq!(covered.state, SiteState::Covered);
        assert_eq!(covered.origin, "https://api.example.com");
        let json = serde_json::to_string(&covered).unwrap_or_default();
        assert!(
            json.contains("Bearer ••••••••1234") && !json.contains("sk-secret"),
            "{json}"
        );

        let other = SiteView::of(&book, "https://other.example.com:8443/x");
        assert_eq!(
            (other.state, other.suggested_pattern.as_str()),
            (SiteState::Uncovered, "https://other.example.com:8443")
        );
        for page in [
            "chrome://extensions/",
            "about:blank",
            "moz-extension://x/popup.html",
            "file:///tmp/x",
            "",
        ] {
            assert_eq!(
                SiteView::of(&book, page).state,
                SiteState::Unsupported,
                "{page}"
            );
        }
    }

    #[test]
    fn wildcard_rules_warn_near_the_regex_limit() {
        let mut book = RuleBook::default();
        for i in 0..5 {
            assert!(book
                .save(&draft(&format!("https://*.h{i}.example"), "t"))
                .is_ok());
        }
        let limits = Limits {
            max_rules: 100,
            max_regex_rules: 10,
        };
        let warning = RulesView::of(&book, None, 0, limits)
            .limit_warning
            .unwrap_or_default();
        assert!(
            warning.contains("10 of the browser's 10 pattern rules"),
            "{warning}"
        );
    }

    #[test]
    fn limit_warning_appears_near_the_limit() {
        let mut book = RuleBook::default();
        for i in 0..5 {
            assert!(book
                .save(&draft(&format!("https://h{i}.example"), "t"))
                .is_ok());
        }
        let tight = Limits {
            max_rules: 12,
            max_regex_rules: 10,
        };
        assert!(RulesView::of(&book, None, 0, tight).limit_warning.is_none());
        let tighter = Limits {
            max_rules: 10,
            max_regex_rules: 10,
        };
        assert!(RulesView::of(&book, None, 0, tighter)
            .limit_warning
            .is_some());
    }
}
