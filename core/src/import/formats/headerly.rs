//! Headerly's export: `{"version": 1, "profiles": [...]}` (before May 2026
//! a bare array). A `modifyHeaders` profile has `requestHeaderModGroups[]`
//! of `items[]` (`enabled`, `name`, `operation` set/append/remove, `value`)
//! and `filters` named as DNR's conditions: `regexFilter` and `urlFilter`
//! (arrays of items, the first enabled one used, a regex winning),
//! `requestDomains`, and narrowing ones (`excludedRequestDomains`,
//! `initiatorDomains`, `resourceTypes`, `requestMethods`, …). No URL or
//! domain condition means every URL.

use serde_json::Value;

use super::super::{scope, scope::Scope, Candidate, Format, ImportError, Reading};
use super::{bad_field, entry_name, Fields};
use crate::text;

/// Conditions that narrow a profile in ways a site rule cannot say.
const NARROWING: &[&str] = &[
    "excludedRequestDomains",
    "initiatorDomains",
    "excludedInitiatorDomains",
    "topDomains",
    "excludedTopDomains",
    "resourceTypes",
    "excludedResourceTypes",
    "requestMethods",
    "excludedRequestMethods",
    "domainType",
    "tabIds",
    "excludedTabIds",
];

pub(super) fn read(value: &Value) -> Result<Reading, ImportError> {
    let profiles: &[Value] = match value {
        Value::Array(items) => items,
        object => {
            let f = Fields::of(object);
            match f.get("version").and_then(Value::as_u64) {
                Some(1) => {}
                Some(v) if v > 1 => return Err(ImportError::Newer(v)),
                _ => {
                    return Err(ImportError::Malformed {
                        format: "Headerly",
                        what: "version".into(),
                    })
                }
            }
            f.array("profiles").map_err(|what| ImportError::Malformed {
                format: "Headerly",
                what,
            })?
        }
    };
    if profiles.len() > super::super::MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    let mut reading = Reading::new(Format::Headerly);
    for (i, profile) in profiles.iter().enumerate() {
        let f = Fields::of(profile);
        let name = f.str("name").ok().flatten().unwrap_or_default();
        let from = entry_name(text!("import_kind_profile"), i, name);
        if f.str("ruleActionType").ok().flatten() != Some("modifyHeaders") {
            reading
                .not_imported
                .push((from, text!("import_not_header_rule")));
            continue;
        }
        let filters = Fields::of(f.get("filters").unwrap_or(&Value::Null));
        let mut candidate = Candidate::new(from, name, profile_scope(&filters));
        candidate.enabled = f.bool_or("enabled", false).unwrap_or(false);
        for (g, group) in f
            .array("requestHeaderModGroups")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            for (n, item) in Fields::of(group)
                .array("items")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let it = Fields::of(item);
                let field = text!("import_field_header", n + 1);
                let header = it.str("name").ok().flatten().unwrap_or_default().trim();
                if header.is_empty() {
                    continue;
                }
                if !it.bool_or("enabled", false).unwrap_or(false) {
                    continue;
                }
                let value = it.str("value").ok().flatten().unwrap_or_default().trim();
                let imported = match it.str("operation").ok().flatten() {
                    Some("remove") => super::super::header(header, None, &field),
                    Some("append") => {
                        candidate
                            .left_out
                            .push(text!("import_left_out_append", header));
                        continue;
                    }
                    // Headerly sends no header for an empty value.
                    Some("set") if value.is_empty() => continue,
                    Some("set") => super::super::header(header, Some(value), &field),
                    _ => Err(bad_field(format!(
                        "requestHeaderModGroups[{g}].items[{n}].operation"
                    ))),
                };
                candidate.take(imported)
            }
        }
        if f.array("responseHeaderModGroups")
            .is_ok_and(|g| !g.is_empty())
        {
            candidate
                .left_out
                .push(text!("import_left_out_response_headers"));
        }
        if f.array("syncCookieGroups").is_ok_and(|g| !g.is_empty()) {
            candidate.left_out.push(text!("import_left_out_cookies"));
        }
        if candidate.headers.is_empty() && candidate.problem.is_none() {
            candidate.problem = Some(text!("import_problem_no_request_headers"));
        }
        super::super::one_per_site(candidate, &mut reading.candidates);
    }
    Ok(reading)
}

/// The enabled items' values of a `{type, items}` list (or, before July
/// 2026, a bare array of items).
fn enabled_values<'a>(filters: &Fields<'a>, key: &str) -> Vec<&'a Value> {
    let items: &[Value] = match filters.get(key) {
        Some(Value::Array(items)) => items,
        Some(object @ Value::Object(_)) => Fields::of(object).array("items").unwrap_or_default(),
        _ => &[],
    };
    items
        .iter()
        .filter(|i| i.get("enabled").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|i| i.get("value"))
        .filter(|v| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Bool(_) => true,
            _ => false,
        })
        .collect()
}

fn profile_scope(filters: &Fields<'_>) -> Scope {
    let case_sensitive = filters
        .get("isUrlFilterCaseSensitive")
        .filter(|c| c.get("enabled").and_then(Value::as_bool) == Some(true))
        .and_then(|c| c.get("value").and_then(Value::as_bool))
        .unwrap_or(false);
    let first = |key: &str| -> Option<String> {
        filters
            .array(key)
            .unwrap_or_default()
            .iter()
            .find(|i| i.get("enabled").and_then(Value::as_bool).unwrap_or(false))
            .and_then(|i| i.get("value").and_then(Value::as_str))
            .map(|v| v.trim().to_owned())
    };
    let url = match first("regexFilter") {
        Some(r) if !r.is_empty() => Some(scope::regex(&r, !case_sensitive)),
        // Headerly's quirk: a blank first regex item drops both filters.
        Some(_) => None,
        None => first("urlFilter")
            .filter(|u| !u.is_empty())
            .map(|u| scope::dnr_url_filter(&u)),
    };
    let domains: Vec<String> = enabled_values(filters, "requestDomains")
        .into_iter()
        .filter_map(|v| v.as_str().map(|s| s.trim().to_owned()))
        .collect();
    let scope = match (url, domains.is_empty()) {
        (None, true) => Scope::Refused {
            why: text!("import_scope_no_filter"),
            suggestion: None,
        },
        (Some(url), true) => url,
        (None, false) => {
            let mut patterns = Vec::new();
            let mut narrower = Vec::new();
            for d in &domains {
                match scope::domain(d) {
                    Scope::Sites {
                        patterns: p,
                        narrower: n,
                    } => {
                        patterns.extend(p);
                        narrower.extend(
                            n.into_iter()
                                .filter(|t| !narrower.contains(t))
                                .collect::<Vec<_>>(),
                        );
                    }
                    refused => return refused,
                }
            }
            Scope::Sites { patterns, narrower }
        }
        // Both: the URL's sites, when each lies inside one of the domains.
        (Some(url), false) => match url {
            Scope::Sites { patterns, narrower } => {
                let inside = patterns.iter().all(|p| {
                    let host = p.split("://").nth(1).unwrap_or_default();
                    let host = host
                        .split(['/', ':'])
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("*.");
                    domains
                        .iter()
                        .any(|d| host == d || host.ends_with(&format!(".{d}")))
                });
                if inside {
                    Scope::Sites { patterns, narrower }
                } else {
                    Scope::Refused {
                        why: text!("import_scope_request_kinds"),
                        suggestion: patterns.first().cloned(),
                    }
                }
            }
            refused => refused,
        },
    };
    let narrowing = NARROWING
        .iter()
        .any(|k| !enabled_values(filters, k).is_empty())
        || filters
            .get("domainType")
            .and_then(|d| d.get("enabled"))
            .and_then(Value::as_bool)
            == Some(true);
    match (scope, narrowing) {
        (Scope::Sites { patterns, .. }, true) => Scope::Refused {
            why: text!("import_scope_request_kinds"),
            suggestion: patterns.first().cloned(),
        },
        (scope, _) => scope,
    }
}
