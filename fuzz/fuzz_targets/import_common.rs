//! What every import target checks, whatever the format: reading never
//! panics; a site it reads parses as a pattern; no header value from the
//! file appears in any message about the file (unless the file also has it
//! as a title or a name); planning the reading into
//! a state that already holds a rule never panics, and what it leaves
//! compiles or is refused with an error.

use tokenward_core::compile::{compile, Target};
use tokenward_core::import::{self, scope::Scope, Format, ImportChoice};
use tokenward_core::pattern::{ParseOptions, SitePattern};
use tokenward_core::rules::{HeaderDraft, RuleDraft};
use tokenward_core::store::State;

pub fn check(format: Format, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(reading) = import::read_as(Some(format), text, None) else {
        return;
    };
    let said = serde_json::to_string(
        &(
            reading.candidates.iter().map(|c| (&c.from, &c.problem, &c.left_out)).collect::<Vec<_>>(),
            &reading.not_imported,
        ),
    )
    .expect("texts serialize");
    for candidate in &reading.candidates {
        if let Scope::Sites { patterns, .. } = &candidate.scope {
            for p in patterns {
                assert!(
                    SitePattern::parse(p, ParseOptions { allow_http: true }).is_ok(),
                    "{p} was read as a site but does not parse"
                );
            }
        }
        for header in &candidate.headers {
            if let Some((_, secret)) = &header.value {
                let secret = secret.expose();
                // A value that is nowhere else in the file (not also a
                // title or a name) must be nowhere in what is said about
                // it. Short values can occur in any text by chance.
                if secret.len() >= 12 && text.matches(secret).count() == 1 {
                    assert!(!said.contains(secret), "a header value is in a message: {said}");
                }
            }
        }
    }
    let mut state = State::default();
    let _ = state.book.save(&RuleDraft {
        pattern: "https://api.example.com".into(),
        headers: vec![HeaderDraft {
            name: "Authorization".into(),
            scheme: "bearer".into(),
            secret: "existing-token".into(),
            credential: None,
        }],
        enabled: true,
        ..RuleDraft::default()
    });
    let mut preview = state.clone();
    let entries = import::plan(&mut preview, &reading, None);
    let choices: Vec<ImportChoice> = entries
        .iter()
        .map(|e| ImportChoice {
            entry: e.entry,
            site: e.suggestion.clone(),
        })
        .collect();
    import::plan(&mut state, &reading, Some(&choices));
    let _ = compile(&state.book, Target::CHROMIUM);
}
