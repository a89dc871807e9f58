//! SimpleModifyHeaders' `SimpleModifyHeader.conf`: `format_version` 1.0 to
//! 1.2, `target_page` (match patterns separated by `;`, empty or `*` for
//! every URL) and `headers[]` rows (`action` add/modify/delete or a cookie
//! action, `apply_on` req/res, `status` on/off, and from 1.2 `url_contains`,
//! a substring that narrows the row when `use_url_contains` is set).
//!
//! Firefox's build reads `target_page` as match patterns, Chrome's as DNR
//! `urlFilter`s matched anywhere in the URL; a site read here is inside
//! both readings. `add` and `modify` both become a set, as in Chrome's build.

use serde_json::Value;

use super::super::{scope, scope::Scope, Candidate, Format, ImportError, Reading};
use super::{bad_field, entry_name, Fields};
use crate::text;

pub(super) fn read(value: &Value) -> Result<Reading, ImportError> {
    let malformed = |what: String| ImportError::Malformed {
        format: "SimpleModifyHeaders",
        what,
    };
    let f = Fields::of(value);
    let version = match f.get("format_version") {
        None => "1.0",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed("format_version".into())),
    };
    if !matches!(version, "1.0" | "1.1" | "1.2") {
        return Err(malformed(format!(
            "format_version {}",
            version.chars().take(10).collect::<String>()
        )));
    }
    let target = f.str("target_page").map_err(malformed)?.unwrap_or_default();
    let use_contains = version == "1.2" && f.bool_or("use_url_contains", false).unwrap_or(false);
    let rows = f.array("headers").map_err(malformed)?;
    if rows.len() > super::super::MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    let pages: Vec<String> = target
        .replace(' ', "")
        .split(';')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes: Vec<Scope> = if pages.is_empty() || pages.iter().any(|p| p == "*") {
        vec![Scope::Refused {
            why: text!("import_scope_no_filter"),
            suggestion: None,
        }]
    } else {
        pages.iter().map(|p| scope::match_pattern(p)).collect()
    };
    let mut reading = Reading::new(Format::SimpleModifyHeaders);
    // Rows without `url_contains` share one rule per page; a row with one
    // applies to fewer URLs, and is its own entry.
    let mut shared = Candidate::new(
        entry_name(text!("import_kind_target_pages"), 0, ""),
        "SimpleModifyHeaders",
        scopes[0].clone(),
    );
    let mut own: Vec<(usize, Candidate, String)> = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        let r = Fields::of(row);
        let from = entry_name(
            text!("import_kind_row"),
            n,
            r.str("comment").ok().flatten().unwrap_or_default(),
        );
        let name = r.str("header_name").ok().flatten().unwrap_or_default();
        let action = r.str("action").ok().flatten().unwrap_or_default();
        let apply_on = r.str("apply_on").ok().flatten().unwrap_or("req");
        if !r.is_object() {
            reading
                .not_imported
                .push((from, text!("import_problem_not_object")));
            continue;
        }
        if name.trim().is_empty() {
            continue;
        }
        if action.starts_with("cookie") {
            reading
                .not_imported
                .push((from, text!("import_left_out_cookies")));
            continue;
        }
        if apply_on != "req" {
            reading
                .not_imported
                .push((from, text!("import_left_out_response_headers")));
            continue;
        }
        if r.str("status").ok().flatten() != Some("on") {
            reading
                .not_imported
                .push((from, text!("import_left_out_switched_off")));
            continue;
        }
        let field = text!("import_field_row", n + 1);
        let value = match action {
            "delete" => None,
            "add" | "modify" => Some(r.str("header_value").ok().flatten().unwrap_or_default()),
            _ => {
                reading
                    .not_imported
                    .push((from, bad_field("action".into())));
                continue;
            }
        };
        let header = match value {
            Some("") => {
                reading
                    .not_imported
                    .push((from, text!("import_left_out_empty_value", name)));
                continue;
            }
            v => super::super::header(name, v, &field),
        };
        let contains = if use_contains {
            r.str("url_contains")
                .ok()
                .flatten()
                .unwrap_or_default()
                .trim()
                .to_owned()
        } else {
            String::new()
        };
        let target = if contains.is_empty() {
            &mut shared
        } else {
            own.push((n, Candidate::new(from, name, scopes[0].clone()), contains));
            let last = own.len() - 1;
            &mut own[last].1
        };
        target.take(header)
    }
    for scope in &scopes {
        if !shared.headers.is_empty() || shared.problem.is_some() {
            let c = Candidate {
                scope: scope.clone(),
                ..shared.clone()
            };
            super::super::one_per_site(c, &mut reading.candidates);
        }
        for (_, candidate, contains) in &own {
            // Only URLs that also contain the text: narrower than the page.
            let suggestion = match scope {
                Scope::Sites { patterns, .. } => patterns.first().cloned(),
                Scope::Refused { suggestion, .. } => suggestion.clone(),
            };
            reading.candidates.push(Candidate {
                scope: Scope::Refused {
                    why: text!("import_scope_also_contains", contains.as_str()),
                    suggestion,
                },
                ..candidate.clone()
            });
        }
    }
    Ok(reading)
}
