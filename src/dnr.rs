//! `declarativeNetRequest` types, spelled exactly as the browser's JSON.
//!
//! Only the parts Tokenward emits are modelled; unknown fields in rules read
//! back from the browser are ignored, so a browser that fills in defaults
//! does not break deserialization.
//! <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#type-Rule>

use serde::{Deserialize, Serialize};

pub type RuleId = u32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: RuleId,
    #[serde(default = "default_priority")]
    pub priority: u32,
    pub action: RuleAction,
    pub condition: RuleCondition,
}

fn default_priority() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleAction {
    #[serde(rename = "type")]
    pub kind: RuleActionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<Vec<ModifyHeaderInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<Vec<ModifyHeaderInfo>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleActionType {
    Block,
    Redirect,
    Allow,
    UpgradeScheme,
    ModifyHeaders,
    AllowAllRequests,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyHeaderInfo {
    pub header: String,
    pub operation: HeaderOperation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HeaderOperation {
    Append,
    Set,
    Remove,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_url_filter_case_sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_types: Option<Vec<ResourceType>>,
}

/// Resource types. Only those that both Chromium and Firefox accept are
/// listed: an unknown value makes the browser refuse the whole update.
/// <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/declarativeNetRequest/ResourceType>
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    MainFrame,
    SubFrame,
    Stylesheet,
    Script,
    Image,
    Font,
    Object,
    Xmlhttprequest,
    Ping,
    CspReport,
    Media,
    Websocket,
    Other,
}

impl ResourceType {
    pub const ALL: [ResourceType; 13] = [
        ResourceType::MainFrame,
        ResourceType::SubFrame,
        ResourceType::Stylesheet,
        ResourceType::Script,
        ResourceType::Image,
        ResourceType::Font,
        ResourceType::Object,
        ResourceType::Xmlhttprequest,
        ResourceType::Ping,
        ResourceType::CspReport,
        ResourceType::Media,
        ResourceType::Websocket,
        ResourceType::Other,
    ];
}

/// The argument of `updateDynamicRules` and `updateSessionRules`. Removals
/// are applied before additions, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRuleOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_rule_ids: Vec<RuleId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_rules: Vec<Rule>,
}

impl UpdateRuleOptions {
    pub fn is_empty(&self) -> bool {
        self.remove_rule_ids.is_empty() && self.add_rules.is_empty()
    }
}

/// Which of the extension's rule sets holds a rule. Dynamic rules are
/// written to the profile on disk, header values included, and survive a
/// restart; session rules stay in memory and end with the browser.
/// <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#dynamic-and-session-scoped-rules>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSet {
    Dynamic,
    Session,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_json_matches_chrome() {
        let rule = Rule {
            id: 2,
            priority: 16_789_505,
            action: RuleAction {
                kind: RuleActionType::ModifyHeaders,
                request_headers: Some(vec![
                    ModifyHeaderInfo {
                        header: "Authorization".into(),
                        operation: HeaderOperation::Set,
                        value: Some("Bearer t".into()),
                    },
                    ModifyHeaderInfo {
                        header: "X-Drop".into(),
                        operation: HeaderOperation::Remove,
                        value: None,
                    },
                ]),
                response_headers: None,
            },
            condition: RuleCondition {
                url_filter: Some("|https://api.example.com/".into()),
                is_url_filter_case_sensitive: Some(true),
                resource_types: Some(vec![
                    ResourceType::MainFrame,
                    ResourceType::Xmlhttprequest,
                    ResourceType::CspReport,
                ]),
                ..RuleCondition::default()
            },
        };
        let expected = json!({
            "id": 2,
            "priority": 16789505,
            "action": {
                "type": "modifyHeaders",
                "requestHeaders": [
                    {"header": "Authorization", "operation": "set", "value": "Bearer t"},
                    {"header": "X-Drop", "operation": "remove"}
                ]
            },
            "condition": {
                "urlFilter": "|https://api.example.com/",
                "isUrlFilterCaseSensitive": true,
                "resourceTypes": ["main_frame", "xmlhttprequest", "csp_report"]
            }
        });
        assert_eq!(serde_json::to_value(&rule).ok(), Some(expected.clone()));
        assert_eq!(serde_json::from_value::<Rule>(expected).ok(), Some(rule));
    }

    #[test]
    fn rules_read_back_with_browser_defaults_parse() {
        // What getDynamicRules returns may carry fields we never set.
        let from_browser = json!({
            "id": 7,
            "action": {"type": "block"},
            "condition": {"urlFilter": "x", "domainType": "thirdParty", "isUrlFilterCaseSensitive": false}
        });
        let rule: Result<Rule, _> = serde_json::from_value(from_browser);
        assert_eq!(rule.map(|r| (r.id, r.priority)).ok(), Some((7, 1)));
    }

    #[test]
    fn update_options_json() {
        let update = UpdateRuleOptions {
            remove_rule_ids: vec![1, 2],
            add_rules: vec![],
        };
        assert_eq!(
            serde_json::to_value(&update).ok(),
            Some(json!({"removeRuleIds": [1, 2]}))
        );
    }
}
