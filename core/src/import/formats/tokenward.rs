//! Tokenward's own export (`protection::export_document`), plain or sealed
//! under a passphrase (`vault::seal_export`).

use serde_json::Value;

use super::super::{scope::Scope, Candidate, Format, ImportError, ImportedHeader, Reading};
use super::{bad_field, entry_name, Fields};
use crate::credential::{credential_label, Credential};
use crate::header::{Secret, ValueScheme};
use crate::initiator::Initiators;
use crate::pattern::{ParseOptions, SitePattern};
use crate::text;
use crate::vault::{open_export, ExportEnvelope};

/// The export versions this build reads.
const EXPORT_VERSION: u64 = 1;

pub(super) fn read(value: Value, passphrase: Option<&str>) -> Result<Reading, ImportError> {
    let document = if value.get("kdf").is_some() {
        let passphrase = passphrase
            .filter(|p| !p.is_empty())
            .ok_or(ImportError::NeedsPassphrase)?;
        let envelope: ExportEnvelope = crate::json::read(&value).map_err(|_| {
            crate::vault::VaultError::Malformed(crate::vault::MalformedPart::NotExport)
        })?;
        let plain = open_export(passphrase, &envelope)?;
        crate::json::parse_bytes(&plain).ok_or_else(|| ImportError::Malformed {
            format: "Tokenward",
            what: "sealed document".into(),
        })?
    } else {
        value
    };
    let malformed = |what: &str| ImportError::Malformed {
        format: "Tokenward",
        what: what.to_owned(),
    };
    let version = document
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("version"))?;
    if version > EXPORT_VERSION {
        return Err(ImportError::Newer(version));
    }
    let state = document
        .get("state")
        .filter(|s| s.is_object())
        .ok_or_else(|| malformed("state"))?;
    if let Some(schema) = state.get("schema").and_then(Value::as_u64) {
        if schema > u64::from(crate::store::SCHEMA_VERSION) {
            return Err(ImportError::Newer(schema));
        }
    }
    let with_secrets = document
        .get("secrets")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut reading = Reading::new(Format::Tokenward);
    let fields = Fields::of(state);
    let credentials = fields.array("credentials").map_err(|f| malformed(&f))?;
    for (i, credential) in credentials.iter().enumerate() {
        let from = entry_name(text!("import_kind_account"), i, "");
        match crate::json::read::<Credential>(credential) {
            Ok(c) if with_secrets => reading.credentials.push(c),
            Ok(c) => reading.not_imported.push((
                entry_name(text!("import_kind_account"), i, &credential_label(&c.info)),
                text!("import_account_without_token"),
            )),
            Err(_) => reading
                .not_imported
                .push((from, text!("import_account_unreadable"))),
        }
    }
    let rules = fields.array("rules").map_err(|f| malformed(&f))?;
    for (i, rule) in rules.iter().enumerate() {
        let candidate = rule_candidate(i, rule);
        super::super::one_per_site(candidate, &mut reading.candidates);
    }
    Ok(reading)
}

fn rule_candidate(i: usize, rule: &Value) -> Candidate {
    let f = Fields::of(rule);
    let label = f.str("label").ok().flatten().unwrap_or_default();
    let from = entry_name(text!("import_kind_rule"), i, label);
    let allow_http = f.bool_or("allowHttp", false).unwrap_or(false);
    let pattern = f.str("pattern").ok().flatten().unwrap_or_default();
    let scope = match SitePattern::parse(pattern, ParseOptions { allow_http }) {
        Ok(p) => Scope::Sites {
            patterns: vec![p.to_string()],
            narrower: Vec::new(),
        },
        Err(e) => Scope::Refused {
            why: crate::text::Localize::text(&e),
            suggestion: None,
        },
    };
    let mut candidate = Candidate::new(from.clone(), label, scope);
    if !f.is_object() {
        candidate.problem = Some(text!("import_problem_not_object"));
        return candidate;
    }
    candidate.enabled = f.bool_or("enabled", true).unwrap_or(true);
    candidate.initiators = f
        .get("initiators")
        .map(crate::json::read::<Initiators>)
        .transpose()
        .unwrap_or_else(|_| {
            candidate.problem = Some(bad_field("initiators".into()));
            None
        })
        .unwrap_or_default();
    let headers = match f.array("headers") {
        Ok(h) => h,
        Err(field) => {
            candidate.problem = Some(bad_field(field));
            return candidate;
        }
    };
    let mut without_token = false;
    for (n, header) in headers.iter().enumerate() {
        let field = text!("import_field_header", n + 1);
        let h = Fields::of(header);
        let name = h.str("name").ok().flatten().unwrap_or_default();
        match h.str("op").ok().flatten() {
            Some("remove") => candidate.take(super::super::header(name, None, &field)),
            Some("set") => {
                let value = Fields::of(h.get("value").unwrap_or(&Value::Null));
                let scheme = value
                    .str("scheme")
                    .ok()
                    .flatten()
                    .and_then(ValueScheme::parse);
                let secret = value.str("secret").ok().flatten();
                let (Some(scheme), Some(secret)) = (scheme, secret) else {
                    without_token |= secret.is_none();
                    if scheme.is_none() {
                        candidate.problem = Some(bad_field(format!("headers[{n}].value.scheme")));
                    }
                    continue;
                };
                match Secret::from_input(secret) {
                    Ok(secret) => candidate.headers.push(ImportedHeader {
                        name: name.to_owned(),
                        value: Some((scheme, secret)),
                        credential: h
                            .get("credential")
                            .and_then(Value::as_u64)
                            .and_then(|c| u32::try_from(c).ok()),
                    }),
                    Err(e) => {
                        candidate.problem = Some(text!(
                            "import_problem_field",
                            field,
                            crate::text::Localize::text(&e)
                        ))
                    }
                }
            }
            _ => candidate.problem = Some(bad_field(format!("headers[{n}].op"))),
        }
    }
    if without_token {
        candidate.left_out.push(text!("import_left_out_no_token"));
        if candidate.headers.is_empty() && candidate.problem.is_none() {
            candidate.problem = Some(text!("import_problem_no_token"));
        }
    } else if candidate.headers.is_empty() && candidate.problem.is_none() {
        candidate.problem = Some(text!("import_problem_no_headers"));
    }
    candidate
}
