//! The catalogues (`extension/_locales/<language>/messages.json`) against
//! the code and the pages: every message the code or a page names exists,
//! in every language, with the same placeholders; none is left unused;
//! each reads as a sentence for users; and the pages hold no words of
//! their own. The browser half (what a page shows, in English and German)
//! is `e2e::pages_say_everything_through_the_catalogue`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tokenward_core::text::Catalogue;

const LANGUAGES: [&str; 2] = ["en", "de"];

/// Names: the brand, protocols, the providers' own terms.
const SAME_IN_EVERY_LANGUAGE: [&str; 7] = [
    "extName",
    "error_resource_knowledge_box",
    "ui_basic",
    "ui_fetch_xhr",
    "ui_url",
    "ui_token_jina",
    "error_resource_token",
];

/// Words German borrowed from English as they are.
const SAME_IN_GERMAN: [&str; 8] = [
    "import_field_header",
    "import_header_line",
    "ui_token",
    "ui_header",
    "ui_name",
    "ui_optional",
    "ui_passphrase",
    "ui_tokens",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn catalogue(language: &str) -> Catalogue {
    let path = root().join(format!("extension/_locales/{language}/messages.json"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    Catalogue::parse(&json).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("test setup") {
        let path = entry.expect("test setup").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every name the code passes to `text!`, with where.
fn names_in_code() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    rust_files(&root().join("core/src"), &mut files);
    rust_files(&root().join("src"), &mut files);
    let mut names = BTreeMap::new();
    for file in files {
        // The mechanism's own unit tests name messages of their own.
        if file.ends_with("src/text.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("test setup");
        let mut rest = source.as_str();
        while let Some(at) = rest.find("text!(") {
            rest = &rest[at + "text!(".len()..];
            let trimmed = rest.trim_start();
            let name = trimmed
                .strip_prefix('"')
                .and_then(|s| s.split_once('"'))
                .map(|(name, _)| name.to_owned())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: text! must name its message with a literal",
                        file.display()
                    )
                });
            names.insert(name, file.display().to_string());
        }
    }
    names
}

/// The values of `attribute="…"` in a page.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let value = &html[at + needle.len()..];
            value.split_once('"').map(|(v, _)| v)
        })
        .collect()
}

const PAGES: [&str; 3] = [
    "extension/popup.html",
    "extension/options.html",
    "extension/partials/accounts.html",
];
const LOCALIZED_ATTRIBUTES: [&str; 3] = ["placeholder", "aria-label", "title"];

fn names_in_pages() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for page in PAGES {
        let html = std::fs::read_to_string(root().join(page)).expect("test setup");
        names.extend(
            attribute_values(&html, "data-i18n")
                .into_iter()
                .map(str::to_owned),
        );
        for attribute in LOCALIZED_ATTRIBUTES {
            names.extend(
                attribute_values(&html, &format!("data-i18n-{attribute}"))
                    .into_iter()
                    .map(str::to_owned),
            );
        }
    }
    let manifest = std::fs::read_to_string(root().join("manifest.json")).expect("test setup");
    for part in manifest.split("__MSG_").skip(1) {
        names.insert(part.split("__").next().expect("test setup").to_owned());
    }
    names
}

#[test]
fn every_language_has_every_message_with_the_same_placeholders() {
    let english = catalogue("en");
    for language in LANGUAGES.iter().skip(1) {
        let other = catalogue(language);
        let missing: Vec<_> = english
            .0
            .keys()
            .filter(|k| !other.0.contains_key(*k))
            .collect();
        let extra: Vec<_> = other
            .0
            .keys()
            .filter(|k| !english.0.contains_key(*k))
            .collect();
        assert!(missing.is_empty(), "{language} lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{language} has messages English lacks: {extra:?}"
        );
        for (name, message) in &english.0 {
            let theirs = &other.0[name];
            assert_eq!(
                Catalogue::positions(message),
                Catalogue::positions(theirs),
                "{language} {name}: other placeholders than English"
            );
            let upper = |m: &tokenward_core::text::Message| -> BTreeSet<String> {
                m.placeholders
                    .keys()
                    .map(|k| k.to_ascii_uppercase())
                    .collect()
            };
            assert_eq!(
                upper(message),
                upper(theirs),
                "{language} {name}: placeholder names"
            );
            let words_of_its_own = message
                .message
                .split('$')
                .step_by(2)
                .any(|literal| literal.chars().any(char::is_alphabetic));
            if words_of_its_own
                && !name.starts_with("example_")
                && !SAME_IN_EVERY_LANGUAGE.contains(&name.as_str())
                && (*language != "de" || !SAME_IN_GERMAN.contains(&name.as_str()))
            {
                assert_ne!(
                    message.message, theirs.message,
                    "{language} {name}: not translated"
                );
            }
        }
    }
}

#[test]
fn every_placeholder_is_used_and_every_use_is_declared() {
    for language in LANGUAGES {
        for (name, message) in catalogue(language).0 {
            for placeholder in message.placeholders.keys() {
                let marker = format!("${}$", placeholder.to_ascii_uppercase());
                assert!(
                    message.message.to_ascii_uppercase().contains(&marker),
                    "{language} {name}: {marker} declared but not in the message"
                );
            }
            let declared: BTreeSet<String> = message
                .placeholders
                .keys()
                .map(|k| k.to_ascii_lowercase())
                .collect();
            let text = message.message.replace("$$", "");
            let parts: Vec<&str> = text.split('$').collect();
            for used in parts.iter().skip(1).step_by(2) {
                assert!(
                    declared.contains(&used.to_ascii_lowercase()),
                    "{language} {name}: ${used}$ is not declared"
                );
            }
        }
    }
}

#[test]
fn every_message_named_exists_and_every_message_is_named() {
    let english = catalogue("en");
    let code = names_in_code();
    let pages = names_in_pages();
    for (name, file) in &code {
        assert!(
            english.0.contains_key(name),
            "{file} names {name}, which en lacks"
        );
    }
    for name in &pages {
        assert!(
            english.0.contains_key(name),
            "a page names {name}, which en lacks"
        );
    }
    let unused: Vec<_> = english
        .0
        .keys()
        .filter(|k| !code.contains_key(*k) && !pages.contains(*k))
        .collect();
    assert!(unused.is_empty(), "messages nothing uses: {unused:?}");
}

#[test]
fn messages_read_as_sentences_for_users() {
    for language in LANGUAGES {
        for (name, message) in catalogue(language).0 {
            let words = &message.message;
            assert!(
                !words.contains('`'),
                "{language} {name}: markdown backticks: {words}"
            );
            assert!(!words.trim().is_empty(), "{language} {name} is empty");
            assert_eq!(words.trim(), words, "{language} {name}: spaces around it");
            // Examples are addresses; everything else starts as a
            // sentence does (or with a placeholder, a symbol, a quote).
            if name.starts_with("example_") || name.starts_with("meta_") {
                continue;
            }
            let first = words.chars().next().expect("test setup");
            assert!(
                !first.is_lowercase(),
                "{language} {name} starts with a small letter: {words}"
            );
            assert!(
                message
                    .description
                    .as_deref()
                    .is_some_and(|d| !d.is_empty()),
                "{language} {name}: no description for translators"
            );
        }
    }
}

#[test]
fn pages_hold_no_words_of_their_own() {
    for page in PAGES {
        let html = std::fs::read_to_string(root().join(page)).expect("test setup");
        let body = html.find("<body").map_or(&html[..], |at| &html[at..]);
        // Text between tags, outside comments.
        let mut in_comment = false;
        let mut offending = Vec::new();
        for (i, chunk) in body.split('<').enumerate() {
            if i == 0 {
                continue;
            }
            if in_comment || chunk.starts_with("!--") {
                in_comment = !chunk.contains("-->");
                continue;
            }
            let Some((tag, text)) = chunk.split_once('>') else {
                continue;
            };
            let text = text.trim();
            if text.chars().any(char::is_alphabetic) && !tag.contains("translate=\"no\"") {
                offending.push(format!("<{tag}> {text}"));
            }
        }
        assert!(
            offending.is_empty(),
            "{page} has words of its own: {offending:#?}"
        );
        for attribute in LOCALIZED_ATTRIBUTES {
            let literal = attribute_values(&html, attribute);
            assert!(
                literal.is_empty(),
                "{page}: {attribute}=\"…\" is written in the page: {literal:?}; use data-i18n-{attribute}"
            );
        }
    }
}

#[test]
fn english_says_what_the_code_means() {
    use tokenward_core::text;
    // A nested message, as the pages say it.
    let said = text::english(&text!(
        "popup_status_sent_expires",
        text!("popup_status_sent"),
        "2026-12-31"
    ));
    assert_eq!(
        said,
        "Tokenward sends headers to this site. The token expires on 2026-12-31."
    );
    assert_eq!(
        text::english(&text!("no_such_message")),
        "[no_such_message]"
    );
}
