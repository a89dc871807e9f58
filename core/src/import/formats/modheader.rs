//! ModHeader's export: a JSON array of profiles (one profile object is
//! read too). `version: 2` profiles list `headers`, `urlFilters`,
//! `excludeUrlFilters`, `resourceFilters`, …; older ones one `filters` list
//! tagged by `type`. A `urlRegex` is matched anywhere in the URL
//! (`new RegExp(urlRegex).test(url)` since ModHeader 3; a 2019 `urlPattern`
//! glob from its start). A profile without an enabled URL filter applies to
//! every URL.

use serde_json::Value;

use super::super::{scope, scope::Scope, Candidate, Format, ImportError, Reading};
use super::{bad_field, entry_name, Fields};
use crate::text;
use crate::text::Text;

/// Filters that narrow a profile in ways a site rule cannot say.
const NARROWING: &[&str] = &[
    "excludeUrlFilters",
    "resourceFilters",
    "tabFilters",
    "tabGroupFilters",
    "windowFilters",
    "timeFilters",
    "requestMethodFilters",
    "initiatorDomainFilters",
    "excludeRequestDomainFilters",
];

/// What a profile may also do that is not imported.
const LEFT_OUT: &[&str] = &[
    "respHeaders",
    "cookieHeaders",
    "setCookieHeaders",
    "reqCookieAppend",
    "urlReplacements",
    "cspDirectives",
    "cspHeaders",
];

fn left_out_note(field: &str) -> Text {
    match field {
        "cookieHeaders" | "setCookieHeaders" | "reqCookieAppend" => {
            text!("import_left_out_cookies")
        }
        "urlReplacements" => text!("import_left_out_redirects"),
        _ => text!("import_left_out_response_headers"),
    }
}

pub(super) fn read(value: &Value) -> Result<Reading, ImportError> {
    let profiles: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if profiles.len() > super::super::MAX_ENTRIES {
        return Err(ImportError::TooManyEntries);
    }
    let mut reading = Reading::new(Format::ModHeader);
    for (i, profile) in profiles.into_iter().enumerate() {
        for candidate in profile_candidates(i, profile) {
            super::super::one_per_site(candidate, &mut reading.candidates);
        }
    }
    Ok(reading)
}

fn profile_candidates(i: usize, profile: &Value) -> Vec<Candidate> {
    let f = Fields::of(profile);
    let title = f.str("title").ok().flatten().unwrap_or_default();
    let from = entry_name(text!("import_kind_profile"), i, title);
    let refused = |why: Text| {
        let mut c = Candidate::new(
            from.clone(),
            title,
            Scope::Refused {
                why: why.clone(),
                suggestion: None,
            },
        );
        c.problem = Some(why);
        vec![c]
    };
    if !f.is_object() {
        return refused(text!("import_problem_not_object"));
    }
    let old = f.get("version").is_none();
    // Profiles before version 2 said "append" once for every header.
    let profile_append = if old {
        match f.get("appendMode") {
            Some(Value::Bool(true)) => true,
            Some(Value::String(s)) => s == "true" || s == "comma",
            _ => false,
        }
    } else {
        false
    };
    let send_empty_default = old && f.bool_or("sendEmptyHeader", false).unwrap_or(false);

    // Which URLs: the enabled include filters, each its own site.
    let (url_filters, narrowing) = match filters(&f, old) {
        Ok(found) => found,
        Err(field) => return refused(bad_field(field)),
    };

    let mut template = Candidate::new(
        from.clone(),
        title,
        Scope::Refused {
            why: text!("import_scope_every_url", ""),
            suggestion: None,
        },
    );
    let headers = match f.array("headers") {
        Ok(h) => h,
        Err(field) => return refused(bad_field(field)),
    };
    let mut switched_off = false;
    for (n, header) in headers.iter().enumerate() {
        let field = text!("import_field_header", n + 1);
        let h = Fields::of(header);
        let name = h.str("name").ok().flatten().unwrap_or_default();
        if !h.bool_or("enabled", true).unwrap_or(false) {
            switched_off |= !name.trim().is_empty();
            continue;
        }
        if name.trim().is_empty() {
            // ModHeader skips a row without a name.
            continue;
        }
        let value = match h.str("value") {
            Ok(v) => v.unwrap_or_default(),
            Err(f) => {
                template.problem = Some(bad_field(format!("headers[{n}].{f}")));
                continue;
            }
        };
        let append = profile_append
            || matches!(h.get("appendMode"), Some(Value::String(s)) if s == "append" || s == "comma");
        if append {
            template
                .left_out
                .push(text!("import_left_out_append", name));
            continue;
        }
        let send_empty = h
            .bool_or("sendEmptyHeader", send_empty_default)
            .unwrap_or(false);
        let imported = if value.is_empty() {
            if send_empty {
                template
                    .left_out
                    .push(text!("import_left_out_empty_value", name));
                continue;
            }
            // An empty value removes the header.
            super::super::header(name, None, &field)
        } else {
            super::super::header(name, Some(value), &field)
        };
        template.take(imported);
    }
    if switched_off {
        template
            .left_out
            .push(text!("import_left_out_switched_off"));
    }
    for field in LEFT_OUT {
        if f.array(field).is_ok_and(|items| items.iter().any(enabled)) {
            let note = left_out_note(field);
            if !template.left_out.contains(&note) {
                template.left_out.push(note);
            }
        }
    }
    if template.headers.is_empty() && template.problem.is_none() {
        template.problem = Some(text!("import_problem_no_request_headers"));
    }

    if url_filters.is_empty() {
        return vec![template];
    }
    url_filters
        .into_iter()
        .enumerate()
        .map(|(k, scope)| {
            let scope = match (scope, narrowing.clone()) {
                (Scope::Sites { patterns, .. }, Some(why)) => Scope::Refused {
                    why,
                    suggestion: patterns.first().cloned(),
                },
                (scope, _) => scope,
            };
            let from = if k == 0 {
                from.clone()
            } else {
                text!("import_from_filter", from.clone(), k + 1)
            };
            Candidate {
                from,
                scope,
                ..template.clone()
            }
        })
        .collect()
}

fn enabled(item: &Value) -> bool {
    item.get("enabled").and_then(Value::as_bool).unwrap_or(true)
}

/// The enabled include filters, read as scopes, and why the profile is
/// narrower than any site rule, if it is.
fn filters(f: &Fields<'_>, old: bool) -> Result<(Vec<Scope>, Option<Text>), String> {
    let mut includes = Vec::new();
    let mut narrowing = None;
    let mut read_include = |item: &Value| -> Result<(), String> {
        let i = Fields::of(item);
        if let Some(regex) = i.str("urlRegex")? {
            includes.push(scope::regex(regex, false));
        } else if let Some(glob) = i.str("urlPattern")? {
            // 2019: a glob matched from the start of the URL.
            includes.push(scope::wildcard(&format!("{}*", glob.trim_end_matches('*'))));
        }
        Ok(())
    };
    if old {
        for item in f.array("filters")?.iter().filter(|i| enabled(i)) {
            match item.get("type").and_then(Value::as_str) {
                Some("urls") => read_include(item)?,
                Some("excludeUrls") => narrowing = Some(text!("import_scope_excludes")),
                Some("types") => narrowing = Some(text!("import_scope_request_kinds")),
                _ => {}
            }
        }
    } else {
        for item in f.array("urlFilters")?.iter().filter(|i| enabled(i)) {
            read_include(item)?;
        }
        for field in NARROWING {
            if f.array(field)?.iter().any(enabled) {
                narrowing = Some(if *field == "excludeUrlFilters" {
                    text!("import_scope_excludes")
                } else {
                    text!("import_scope_request_kinds")
                });
            }
        }
    }
    if includes.is_empty() {
        // Every URL: refused; the user may type a site.
        includes.push(Scope::Refused {
            why: text!("import_scope_no_filter"),
            suggestion: None,
        });
    }
    Ok((includes, narrowing))
}
