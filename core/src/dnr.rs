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
    /// Pages (by their domain, subdomains included) whose requests the
    /// rule matches. A request with no initiator (a typed address) or an
    /// opaque one (`data:`, sandboxed frames) never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_methods: Option<Vec<RequestMethod>>,
    /// Session rules only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab_ids: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_types: Option<Vec<ResourceType>>,
}

/// Resource types: the union of Chromium's and Firefox's enums, spelled as
/// the browsers spell them. A rule may only list the types its browser knows
/// ([`Browser::resource_types`]): one unknown value makes the browser refuse
/// the whole update.
/// <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#type-ResourceType>
/// <https://developer.mozilla.org/docs/Mozilla/Add-ons/WebExtensions/API/declarativeNetRequest/ResourceType>
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Chromium only.
    Webtransport,
    /// Chromium only.
    Webbundle,
    /// Firefox only: `navigator.sendBeacon`, which Chromium reports as `ping`.
    Beacon,
    /// Firefox only.
    ObjectSubrequest,
    /// Firefox only.
    Xslt,
    /// Firefox only.
    XmlDtd,
    /// Firefox only: `<img srcset>` and `<picture>` candidates.
    Imageset,
    /// Firefox only.
    WebManifest,
    /// Firefox only: speculative connections.
    Speculative,
    /// Firefox only: JSON modules.
    Json,
}

/// The browser a rule is compiled for. The two agree on the conditions
/// Tokenward uses, but not on the resource types they know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    /// Every resource type this browser knows, as its own schema lists them
    /// (Chromium 156's `declarativeNetRequest.ResourceType`, Firefox ESR
    /// 153's `declarative_net_request.json`). A header rule applies to all
    /// of them: a type left out is a kind of request that silently goes
    /// without its header, as Firefox's `beacon` did. `tests/e2e.rs`
    /// (`resource_types_cover_the_browser_schema`) reads the running
    /// browser's schema and fails on any type that is neither here nor in
    /// [`Browser::EXCLUDED_RESOURCE_TYPES`].
    pub fn resource_types(self) -> &'static [ResourceType] {
        use ResourceType::*;
        match self {
            Browser::Chromium => &[
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
                Webtransport,
                Webbundle,
                Other,
            ],
            Browser::Firefox => &[
                MainFrame,
                SubFrame,
                Stylesheet,
                Script,
                Image,
                Object,
                ObjectSubrequest,
                Xmlhttprequest,
                Xslt,
                Ping,
                Beacon,
                XmlDtd,
                Font,
                Media,
                Websocket,
                CspReport,
                Imageset,
                WebManifest,
                Speculative,
                Json,
                Other,
            ],
        }
    }

    /// Types a browser knows that header rules leave out on purpose, with
    /// the reason. None today: every request a page can make carries what
    /// the user asked for.
    pub const EXCLUDED_RESOURCE_TYPES: &'static [(ResourceType, &'static str)] = &[];

    /// The browser an extension URL belongs to.
    pub fn of_extension_url(url: &str) -> Browser {
        if url.starts_with("moz-extension:") {
            Browser::Firefox
        } else {
            Browser::Chromium
        }
    }
}

/// Request methods, as DNR's `requestMethods` spells them.
/// <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#type-RequestMethod>
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestMethod {
    Connect,
    Delete,
    Get,
    Head,
    Options,
    Patch,
    Post,
    Put,
    Other,
}

impl RequestMethod {
    /// The method of an HTTP request line, as DNR classifies it.
    pub fn parse(method: &str) -> RequestMethod {
        match method.to_ascii_uppercase().as_str() {
            "CONNECT" => RequestMethod::Connect,
            "DELETE" => RequestMethod::Delete,
            "GET" => RequestMethod::Get,
            "HEAD" => RequestMethod::Head,
            "OPTIONS" => RequestMethod::Options,
            "PATCH" => RequestMethod::Patch,
            "POST" => RequestMethod::Post,
            "PUT" => RequestMethod::Put,
            _ => RequestMethod::Other,
        }
    }

    /// GET and HEAD: what a `SameSite=Lax` cookie accepts on a cross-site
    /// top-level navigation (RFC 6265bis §5.2, "safe" methods).
    pub fn is_safe(self) -> bool {
        matches!(self, RequestMethod::Get | RequestMethod::Head)
    }

    pub const SAFE: [RequestMethod; 2] = [RequestMethod::Get, RequestMethod::Head];
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
