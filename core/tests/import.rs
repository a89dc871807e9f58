//! The import readers on our own fixture files (written from each project's
//! public source, `tests/fixtures/import/`), and the preview and the import
//! through the service with the in-memory browser.

use serde_json::{json, Value};
use tokenward_core::import::{self, scope::Scope, ImportChoice, Outcome, Reading};
use tokenward_core::store::State;

const PORT: &str = "8080";

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/import")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("PORT", PORT)
}

fn read(name: &str) -> Reading {
    import::read(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sites(reading: &Reading) -> Vec<(String, Option<String>)> {
    reading
        .candidates
        .iter()
        .map(|c| match &c.scope {
            Scope::Sites { patterns, .. } => (patterns.join(" "), None),
            Scope::Refused { why, suggestion } => {
                (format!("refused: {}", why.key), suggestion.clone())
            }
        })
        .collect()
}

fn header_names(reading: &Reading, i: usize) -> Vec<String> {
    reading.candidates[i]
        .headers
        .iter()
        .map(|h| {
            format!(
                "{}{}",
                h.name,
                if h.value.is_none() { " (remove)" } else { "" }
            )
        })
        .collect()
}

fn keys(texts: &[tokenward_core::text::Text]) -> Vec<&str> {
    texts.iter().map(|t| t.key.as_str()).collect()
}

#[test]
fn modheader_profiles() {
    let r = read("modheader.json");
    assert_eq!(r.format, import::Format::ModHeader);
    assert_eq!(
        sites(&r),
        [
            ("http://mh.localhost:8080/api/".to_owned(), None),
            (
                "refused: import_scope_anywhere".to_owned(),
                Some("http://mh-old.localhost:8080/".to_owned())
            ),
            ("refused: import_scope_no_filter".to_owned(), None),
        ]
    );
    assert_eq!(header_names(&r, 0), ["Authorization"]);
    assert_eq!(
        keys(&r.candidates[0].left_out),
        [
            "import_left_out_append",
            "import_left_out_switched_off",
            "import_left_out_response_headers"
        ]
    );
    assert_eq!(header_names(&r, 1), ["X-Api-Key"]);
}

#[test]
fn simplemodifyheaders_conf() {
    let r = read("SimpleModifyHeader.conf");
    assert_eq!(r.format, import::Format::SimpleModifyHeaders);
    assert_eq!(
        sites(&r),
        [
            ("http://smh.localhost:8080/".to_owned(), None),
            (
                "refused: import_scope_also_contains".to_owned(),
                Some("http://smh.localhost:8080/".to_owned())
            ),
        ]
    );
    assert_eq!(
        header_names(&r, 0),
        ["X-Api-Key", "X-Client-Trace (remove)"]
    );
    assert_eq!(header_names(&r, 1), ["X-Admin"]);
    let not: Vec<&str> = r
        .not_imported
        .iter()
        .map(|(_, why)| why.key.as_str())
        .collect();
    assert_eq!(
        not,
        [
            "import_left_out_response_headers",
            "import_left_out_switched_off"
        ]
    );
}

#[test]
fn requestly_rules() {
    let r = read("requestly.json");
    assert_eq!(r.format, import::Format::Requestly);
    assert_eq!(
        sites(&r),
        [
            ("http://rq.localhost:8080/".to_owned(), None),
            ("refused: import_scope_substring".to_owned(), None),
            ("http://rq-legacy.localhost:8080/".to_owned(), None),
        ]
    );
    assert!(r.candidates[0].enabled, "its group is active");
    assert_eq!(header_names(&r, 0), ["Authorization"]);
    assert_eq!(
        keys(&r.candidates[0].left_out),
        ["import_left_out_response_headers"]
    );
    assert_eq!(header_names(&r, 2), ["X-Legacy"]);
    let not: Vec<&str> = r
        .not_imported
        .iter()
        .map(|(_, why)| why.key.as_str())
        .collect();
    assert_eq!(not, ["import_not_header_rule"]);
}

#[test]
fn headerly_profiles() {
    let r = read("headerly.json");
    assert_eq!(r.format, import::Format::Headerly);
    assert_eq!(
        sites(&r),
        [
            ("http://hl.localhost:8080/".to_owned(), None),
            (
                "refused: import_scope_request_kinds".to_owned(),
                Some("http://hl-kinds.localhost/".to_owned())
            ),
        ]
    );
    assert_eq!(header_names(&r, 0), ["Authorization"]);
    assert_eq!(
        keys(&r.candidates[0].left_out),
        ["import_left_out_append", "import_left_out_response_headers"]
    );
}

/// The preview shows sites and header names, never a value; the import
/// writes exactly the entries chosen; a second import of the same file
/// changes nothing.
#[test]
fn preview_then_import_then_again() {
    let reading = read("modheader.json");
    let mut state = State::default();
    let preview = import::plan(&mut state.clone(), &reading, None);
    let shown = serde_json::to_string(&preview).expect("serializes");
    for secret in ["mh-model-token-1", "mh-old-key-2", "mh-everywhere-3"] {
        assert!(!shown.contains(secret), "{secret} in the preview: {shown}");
    }
    let outcomes: Vec<&str> = preview
        .iter()
        .map(|e| match e.outcome {
            Outcome::New => "new",
            Outcome::Refused { .. } => "refused",
            _ => "other",
        })
        .collect();
    assert_eq!(outcomes, ["new", "refused", "refused"]);
    let choices = [
        ImportChoice {
            entry: 0,
            site: None,
        },
        ImportChoice {
            entry: 1,
            site: Some("http://mh-old.localhost:8080".into()),
        },
    ];
    let done = import::plan(&mut state, &reading, Some(&choices));
    assert!(matches!(done[0].outcome, Outcome::New), "{done:?}");
    assert!(matches!(done[1].outcome, Outcome::New), "{done:?}");
    assert!(
        matches!(done[2].outcome, Outcome::Refused { .. }),
        "{done:?}"
    );
    let patterns: Vec<String> = state
        .book
        .rules()
        .iter()
        .map(|r| r.pattern.to_string())
        .collect();
    assert_eq!(
        patterns,
        [
            "http://mh.localhost:8080/api/",
            "http://mh-old.localhost:8080/"
        ]
    );
    let again = import::plan(&mut state, &reading, Some(&choices));
    assert!(
        matches!(again[0].outcome, Outcome::Unchanged { .. }),
        "{again:?}"
    );
    assert_eq!(state.book.rules().len(), 2);
}

/// A file's header replaces the rule's header of the same name and keeps
/// the others, with their secrets.
#[test]
fn an_entry_for_a_site_the_user_has_changes_that_rule() {
    let mut state = State::default();
    let draft = tokenward_core::rules::RuleDraft {
        label: "mine".into(),
        pattern: "http://rq.localhost:8080".into(),
        headers: vec![
            tokenward_core::rules::HeaderDraft {
                name: "Authorization".into(),
                scheme: "bearer".into(),
                secret: "old-token".into(),
                credential: None,
            },
            tokenward_core::rules::HeaderDraft {
                name: "X-Mine".into(),
                scheme: "raw".into(),
                secret: "keep-me".into(),
                credential: None,
            },
        ],
        enabled: true,
        ..Default::default()
    };
    state.book.save(&draft).expect("a rule");
    let reading = read("requestly.json");
    let entries = import::plan(
        &mut state,
        &reading,
        Some(&[ImportChoice {
            entry: 0,
            site: None,
        }]),
    );
    assert!(
        matches!(&entries[0].outcome, Outcome::Changed { label, .. } if label == "mine"),
        "{entries:?}"
    );
    let rule = &state.book.rules()[0];
    let encoded = tokenward_core::store::encode_rule(rule).to_string();
    assert!(
        encoded.contains("rq-token-1") && encoded.contains("keep-me"),
        "{encoded}"
    );
    assert!(!encoded.contains("old-token"), "{encoded}");
}

#[test]
fn tokenward_exports_plain_and_sealed() {
    let mut state = State::default();
    for (site, token) in [
        ("https://a.example", "tok-a-1234"),
        ("https://b.example", "tok-b-5678"),
    ] {
        state
            .book
            .save(&tokenward_core::rules::RuleDraft {
                pattern: site.into(),
                headers: vec![tokenward_core::rules::HeaderDraft {
                    name: "Authorization".into(),
                    scheme: "bearer".into(),
                    secret: token.into(),
                    credential: None,
                }],
                enabled: true,
                ..Default::default()
            })
            .expect("a rule");
    }
    // Without tokens: nothing to send, said per entry.
    let plain = tokenward_core::protection::export_document(state.encode(), false).to_string();
    let r = import::read(&plain, None).expect("reads");
    assert_eq!(r.format, import::Format::Tokenward);
    assert!(r.candidates.iter().all(|c| c
        .problem
        .as_ref()
        .is_some_and(|p| p.key == "import_problem_no_token")));
    // Sealed, with them: the passphrase opens it, a wrong one does not.
    let full = tokenward_core::protection::export_document(state.encode(), true).to_string();
    struct Counting(u8);
    impl tokenward_core::vault::RngSource for Counting {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), tokenward_core::vault::RngUnavailable> {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }
    let mut rng = Counting(7);
    let envelope =
        tokenward_core::vault::seal_export("file pass", full.as_bytes(), &mut rng).expect("seals");
    let text = serde_json::to_string(&envelope).expect("json");
    assert!(matches!(
        import::read(&text, None),
        Err(import::ImportError::NeedsPassphrase)
    ));
    assert!(import::read(&text, Some("wrong")).is_err());
    let r = import::read(&text, Some("file pass")).expect("opens");
    let mut fresh = State::default();
    let entries = import::plan(
        &mut fresh,
        &r,
        Some(&[
            ImportChoice {
                entry: 0,
                site: None,
            },
            ImportChoice {
                entry: 1,
                site: None,
            },
        ]),
    );
    assert!(
        entries.iter().all(|e| matches!(e.outcome, Outcome::New)),
        "{entries:?}"
    );
    assert_eq!(fresh.book.rules(), state.book.rules());
}

#[test]
fn hostile_files_are_refused_whole_with_a_clear_reason() {
    use import::ImportError;
    let big = format!("[{}]", "0,".repeat(import::MAX_FILE_BYTES / 2));
    assert_eq!(import::read(&big, None), Err(ImportError::TooLarge));
    assert!(matches!(
        import::read("{\"a\": ", None),
        Err(ImportError::NotJson { line: 1, .. })
    ));
    assert_eq!(
        import::read("{\"hello\": 1}", None),
        Err(ImportError::UnknownFormat)
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(
        import::read(&deep, None).is_err(),
        "deep nesting is refused, not a stack overflow"
    );
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"version": 2, "title": format!("p{i}"), "headers": [{"enabled": true, "name": "X-A", "value": "v"}],
                        "urlFilters": [{"enabled": true, "urlRegex": format!("^https://h{i}\\.example\\.com/")}]}))
        .collect();
    assert_eq!(
        import::read(&Value::Array(many).to_string(), None),
        Err(ImportError::TooManyEntries)
    );
    // A header value with a line break is refused for that entry, naming the
    // field, and the value is not in the message.
    let crlf = json!([{"version": 2, "title": "t", "headers": [{"enabled": true, "name": "X-A", "value": "sec\r\nX-Evil: ret"}],
                       "urlFilters": [{"enabled": true, "urlRegex": "^https://h\\.example\\.com/"}]}]);
    let r = import::read(&crlf.to_string(), None).expect("reads");
    let problem = r.candidates[0].problem.as_ref().expect("a problem");
    let said = serde_json::to_string(problem).expect("json");
    assert!(
        said.contains("import_field_header") && !said.contains("sec"),
        "{said}"
    );
    // Wrong types are named, not quoted.
    let typed = json!({"version": 1, "profiles": [{"name": "n", "enabled": true, "ruleActionType": "modifyHeaders",
        "requestHeaderModGroups": [{"type": "checkbox", "items": [{"enabled": true, "name": "X-A", "operation": 7, "value": "secret-xyz"}]}],
        "filters": {"urlFilter": [{"enabled": true, "value": "|https://h.example.com/"}]}}]});
    let r = import::read(&typed.to_string(), None).expect("reads");
    let said = serde_json::to_string(&r.candidates[0].problem).expect("json");
    assert!(
        said.contains("operation") && !said.contains("secret-xyz"),
        "{said}"
    );
}

mod never_wider {
    //! Every site the import reads from a filter names only URLs the filter
    //! names: URLs drawn from inside each site are matched against the
    //! filter with a real regex engine, the filter read as its extension
    //! reads it (a `urlRegex` unanchored, a wildcard whole, a match
    //! pattern's host with its subdomains).
    use super::*;
    use proptest::prelude::*;
    use tokenward_core::pattern::{ParseOptions, SitePattern};

    fn escape(s: &str) -> String {
        regex::escape(s)
    }

    /// A filter in one of the spellings header extensions' files use, and
    /// the regex its extension matches URLs with.
    fn filter() -> impl Strategy<Value = (String, String, u8)> {
        let label = "[a-z]{1,6}";
        (
            label,
            label,
            prop::option::of(1000u16..65000),
            prop::option::of("/[a-z0-9]{1,5}(/[a-z0-9]{1,4})?/?"),
            0u8..12,
        )
            .prop_map(|(sub, domain, port, path, form)| {
                let host = format!("{sub}.{domain}.test");
                let port_part = port.map(|p| format!(":{p}")).unwrap_or_default();
                let path = path.unwrap_or_default();
                let literal = format!("{host}{port_part}{path}");
                let e = escape(&literal);
                let (filter, regex) = match form {
                    0 => (format!("^https://{e}.*"), format!("^https://{e}.*")),
                    1 => (format!("^https?://{e}"), format!("^https?://{e}")),
                    2 => (format!(".*://{e}/.*"), format!(".*://{e}/.*")),
                    3 => (
                        format!("^https://(.*\\.)?{e}"),
                        format!("^https://(.*\\.)?{e}"),
                    ),
                    4 => (format!("^https://.*\\.{e}"), format!("^https://.*\\.{e}")),
                    5 => (format!("^http://{e}$"), format!("^http://{e}$")),
                    6 => (e.clone(), e.clone()),
                    7 => (
                        format!("^https://{literal}"),
                        format!("^https://{}", literal.replace('.', "\\.")),
                    ),
                    // A Requestly wildcard, whole URL, `*` any string.
                    8 => (format!("*://{literal}*"), format!("^.*://{e}.*$")),
                    9 => (
                        format!("https://*.{literal}*"),
                        format!("^https://.*\\.{e}.*$"),
                    ),
                    // A match pattern: `*.` is the host and its subdomains,
                    // no port any port, the path a wildcard.
                    10 => (
                        format!("https://*.{host}{port_part}/*"),
                        format!(
                            "^https://([^/]*\\.)?{}{}/.*$",
                            escape(&host),
                            if port.is_some() {
                                escape(&port_part)
                            } else {
                                "(:[0-9]+)?".into()
                            }
                        ),
                    ),
                    _ => (
                        format!("*://{host}{port_part}{path}*"),
                        format!(
                            "^https?://{}{}{}.*$",
                            escape(&host),
                            if port.is_some() {
                                escape(&port_part)
                            } else {
                                "(:[0-9]+)?".into()
                            },
                            escape(&path)
                        ),
                    ),
                };
                // Forms 8 and 9 are wildcards, 10 and 11 match patterns.
                (filter, regex, form)
            })
    }

    /// URLs inside a site pattern: its host (or a subdomain), its port,
    /// its path and something after a separator.
    fn urls_inside(site: &str, sub: &str, tail: &str) -> Vec<String> {
        let pattern = SitePattern::parse(site, ParseOptions { allow_http: true }).expect("a site");
        let origin = pattern.origin().replace("*.", &format!("{sub}."));
        let path = pattern.path().unwrap_or("");
        vec![
            format!("{origin}{path}/"),
            format!("{origin}{path}/{tail}"),
            format!("{origin}{path}?q={tail}"),
            format!("{origin}{path}"),
        ]
        .into_iter()
        .map(|u| url::Url::parse(&u).expect("a URL").to_string())
        .collect()
    }

    proptest! {
        #[test]
        fn a_site_read_from_a_filter_names_only_what_the_filter_names(
            (filter, regex, form) in filter(),
            sub in "[a-z]{1,5}",
            tail in "[a-z0-9]{0,6}",
        ) {
            let scope = match form {
                8 | 9 => import::scope::wildcard(&filter),
                10 | 11 => import::scope::match_pattern(&filter),
                _ => import::scope::regex(&filter, false),
            };
            let re = regex::Regex::new(&regex).expect("the filter as a regex");
            let sites: Vec<String> = match &scope {
                Scope::Sites { patterns, .. } => patterns.clone(),
                // A refused filter's suggestion is narrower too, though the
                // user confirms it; except for a folder or one exact
                // address, where the suggestion also names the folder
                // itself or the pages under the address, as the refusal
                // says.
                Scope::Refused { why, .. }
                    if why.key == "import_scope_directory" || why.key == "import_scope_exact" =>
                {
                    Vec::new()
                }
                Scope::Refused { suggestion, .. } => suggestion.iter().cloned().collect(),
            };
            for site in sites {
                for url in urls_inside(&site, &sub, &tail) {
                    prop_assert!(re.is_match(&url), "{filter} became {site}, which names {url}, which {regex} does not match");
                }
            }
        }
    }
}
