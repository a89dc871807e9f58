//! Requestly's export: a flat array of rule and group records. A
//! `ruleType: "Headers"` rule has `pairs[]`, each a `source` (`key` Url,
//! host or path; `operator` Equals, Contains, Matches (`/regex/flags`,
//! matched anywhere) or Wildcard_Matches (the whole value, `*` any string))
//! and `modifications.Request[]` (`Add`, `Modify`: set; `Remove`). Rules of
//! `version` 1 or none carry one modification on the pair itself, with its
//! `target`. A rule is on when it and its group are `Active`.

use serde_json::Value;

use super::super::{scope, scope::Scope, Candidate, Format, ImportError, Reading};
use super::{bad_field, entry_name, Fields};
use crate::text;

pub(super) fn read(value: &Value) -> Result<Reading, ImportError> {
    let records: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if records.len() > super::super::MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    let group_on = |id: &str| -> bool {
        id.is_empty()
            || records.iter().any(|r| {
                r.get("objectType").and_then(Value::as_str) == Some("group")
                    && r.get("id").and_then(Value::as_str) == Some(id)
                    && r.get("status").and_then(Value::as_str) == Some("Active")
            })
            // A group missing from the file: Requestly's import moves the
            // rule out of it.
            || !records.iter().any(|r| r.get("id").and_then(Value::as_str) == Some(id))
    };
    let mut reading = Reading::new(Format::Requestly);
    for (i, record) in records.iter().enumerate() {
        let f = Fields::of(record);
        let name = f.str("name").ok().flatten().unwrap_or_default();
        let from = entry_name(text!("import_kind_rule"), i, name);
        if f.str("objectType").ok().flatten() == Some("group") {
            continue;
        }
        match f.str("ruleType").ok().flatten() {
            Some("Headers") => {}
            _ => {
                reading
                    .not_imported
                    .push((from, text!("import_not_header_rule")));
                continue;
            }
        }
        let enabled = f.str("status").ok().flatten() == Some("Active")
            && group_on(f.str("groupId").ok().flatten().unwrap_or_default());
        let v1 = f.get("version").and_then(Value::as_u64).unwrap_or(1) <= 1;
        let pairs = match f.array("pairs") {
            Ok(p) => p,
            Err(field) => {
                reading.not_imported.push((from, bad_field(field)));
                continue;
            }
        };
        for (k, pair) in pairs.iter().enumerate() {
            let from = if pairs.len() > 1 {
                text!("import_from_filter", from.clone(), k + 1)
            } else {
                from.clone()
            };
            let mut candidate = pair_candidate(pair, v1, from, name);
            candidate.enabled = enabled;
            super::super::one_per_site(candidate, &mut reading.candidates);
        }
    }
    Ok(reading)
}

fn pair_candidate(pair: &Value, v1: bool, from: crate::text::Text, name: &str) -> Candidate {
    let p = Fields::of(pair);
    let source = Fields::of(p.get("source").unwrap_or(&Value::Null));
    let scope = source_scope(&source);
    let mut candidate = Candidate::new(from, name, scope);
    // Filters on the page, method, kind or body: fewer requests than a site.
    let filters: Vec<&Value> = match source.get("filters") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(object @ Value::Object(_)) => vec![object],
        _ => Vec::new(),
    };
    let narrowing = filters.iter().any(|f| {
        [
            "pageUrl",
            "requestMethod",
            "resourceType",
            "pageDomains",
            "requestPayload",
        ]
        .iter()
        .any(|k| match f.get(k) {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => o
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty()),
            Some(_) => true,
        })
    });
    if narrowing {
        if let Scope::Sites { patterns, .. } = &candidate.scope {
            candidate.scope = Scope::Refused {
                why: text!("import_scope_request_kinds"),
                suggestion: patterns.first().cloned(),
            };
        }
    }
    let (requests, responses): (Vec<&Value>, bool) = if v1 {
        match p.str("target").ok().flatten() {
            Some("Request") => (vec![pair], false),
            Some("Response") => (Vec::new(), true),
            _ => (Vec::new(), false),
        }
    } else {
        let m = Fields::of(p.get("modifications").unwrap_or(&Value::Null));
        (
            m.array("Request").unwrap_or_default().iter().collect(),
            !m.array("Response").unwrap_or_default().is_empty(),
        )
    };
    if responses {
        candidate
            .left_out
            .push(text!("import_left_out_response_headers"));
    }
    for (n, modification) in requests.into_iter().enumerate() {
        let m = Fields::of(modification);
        let field = text!("import_field_header", n + 1);
        let header = m.str("header").ok().flatten().unwrap_or_default();
        if header.trim().is_empty() {
            continue;
        }
        let value = m.str("value").ok().flatten().unwrap_or_default();
        let imported = match m.str("type").ok().flatten() {
            Some("Remove") => super::super::header(header, None, &field),
            Some("Add" | "Modify") if value.trim_start().starts_with("rq_") => {
                candidate
                    .left_out
                    .push(text!("import_left_out_computed", header));
                continue;
            }
            Some("Add" | "Modify") if value.is_empty() => {
                candidate
                    .left_out
                    .push(text!("import_left_out_empty_value", header));
                continue;
            }
            Some("Add" | "Modify") => super::super::header(header, Some(value), &field),
            _ => Err(bad_field(format!("modifications.Request[{n}].type"))),
        };
        candidate.take(imported)
    }
    if candidate.headers.is_empty() && candidate.problem.is_none() {
        candidate.problem = Some(text!("import_problem_no_request_headers"));
    }
    candidate
}

fn source_scope(source: &Fields<'_>) -> Scope {
    let value = source.str("value").ok().flatten().unwrap_or_default();
    if value.trim().is_empty() {
        return Scope::Refused {
            why: text!("import_scope_no_filter"),
            suggestion: None,
        };
    }
    let key = source.str("key").ok().flatten().unwrap_or_default();
    let operator = source.str("operator").ok().flatten().unwrap_or_default();
    match (key, operator) {
        ("Url", "Equals") => scope::exact_url(value),
        ("Url", "Contains") => scope::substring(value),
        ("Url", "Matches") => match split_regex(value) {
            Some((pattern, insensitive)) => scope::regex(pattern, insensitive),
            None => Scope::Refused {
                why: text!("import_scope_unreadable", value),
                suggestion: None,
            },
        },
        ("Url", "Wildcard_Matches") => scope::wildcard(value),
        ("host", "Equals") => host_with_port(value),
        ("host", "Wildcard_Matches") if value.starts_with("*.") && !value[2..].contains('*') => {
            match scope::domain(&value[2..]) {
                Scope::Sites { patterns, narrower } => Scope::Sites {
                    // `*.example.org` needs a dot before the domain: its
                    // subdomains only.
                    patterns: patterns.into_iter().filter(|p| p.contains("*.")).collect(),
                    narrower,
                },
                refused => refused,
            }
        }
        ("host", _) => scope::substring(value),
        _ => Scope::Refused {
            why: text!("import_scope_substring", value),
            suggestion: None,
        },
    }
}

/// `api.example.com:8443`: Requestly's host includes the port.
fn host_with_port(value: &str) -> Scope {
    match value.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            scope::match_pattern(&format!("*://{host}:{port}/*"))
        }
        _ => scope::host(value),
    }
}

/// `/pattern/flags` → the pattern, and whether `i` is set. Requestly's
/// matcher refuses any other form.
fn split_regex(value: &str) -> Option<(&str, bool)> {
    let rest = value.strip_prefix('/')?;
    let end = rest.rfind('/')?;
    let (pattern, flags) = (&rest[..end], &rest[end + 1..]);
    if pattern.is_empty() || !flags.chars().all(|c| "dgimsuy".contains(c)) {
        return None;
    }
    Some((pattern, flags.contains('i')))
}
