//! The core workload, one source for both runs: the native bench
//! (`benches/bench/core.rs`) and the wasm build (`src/bench.rs`, cargo
//! feature `bench`) both call it, so native and wasm time the same code on
//! the same inputs.
//!
//! Sizes are counted in browser (DNR) rules, the unit the browser limits:
//! each site rule compiles to two, so "1,000 rules" is 500 site rules and
//! 5,000, Chromium's cap on `modifyHeaders` rules, is 2,500.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::compile::{self, Limits};
use crate::matcher;
use crate::rules::{HeaderDraft, RuleBook, RuleDraft};
use crate::store::State;

/// Every tenth site rule is a wildcard: a regex rule to the browser, which
/// caps those at 1,000, so 5,000 rules hold 500 of them.
const WILDCARD_EVERY: usize = 10;

/// Site rules for `browser_rules` browser rules (rounded down; at least
/// one). The fillers are same-site rules, three browser rules each.
pub fn site_rules_for(browser_rules: usize) -> usize {
    (browser_rules / compile::MAX_RULES_PER_SITE_RULE).max(1)
}

/// The pattern of filler site rule `i`: exact hosts with and without paths
/// and ports, and wildcards, none of them loopback.
pub fn pattern(i: usize) -> String {
    if i % WILDCARD_EVERY == WILDCARD_EVERY - 1 {
        format!("https://*.w{i}.bench.example")
    } else if i.is_multiple_of(7) {
        format!("https://s{i}.bench.example:8443")
    } else if i.is_multiple_of(3) {
        format!("https://s{i}.bench.example/v{}", i % 5)
    } else {
        format!("https://s{i}.bench.example")
    }
}

/// A draft for `pattern` sending `Authorization: Bearer <secret>`.
pub fn bearer_draft(pattern: &str, secret: &str, allow_http: bool) -> RuleDraft {
    RuleDraft {
        label: "bench".to_owned(),
        pattern: pattern.to_owned(),
        allow_http,
        enabled: true,
        headers: vec![HeaderDraft {
            name: "Authorization".to_owned(),
            scheme: "bearer".to_owned(),
            secret: secret.to_owned(),
            ..HeaderDraft::default()
        }],
        ..RuleDraft::default()
    }
}

/// A book of `site_rules` filler rules; every fourth also sets a raw
/// `X-Api-Key`, so header lists vary as they do in real use.
pub fn filler_book(site_rules: usize) -> Result<RuleBook, String> {
    let mut book = RuleBook::default();
    for i in 0..site_rules {
        let mut draft = bearer_draft(&pattern(i), &format!("tok-{i:05}-bench-0123456789"), false);
        if i % 4 == 0 {
            draft.headers.push(HeaderDraft {
                name: "X-Api-Key".to_owned(),
                scheme: "raw".to_owned(),
                secret: format!("key-{i:05}"),
                ..HeaderDraft::default()
            });
        }
        book.save(&draft)
            .map_err(|e| format!("filler rule {i}: {e}"))?;
    }
    Ok(book)
}

/// `count` URLs, about half covered by a rule of a `site_rules` filler book
/// (on its path, on another path, on a subdomain of a wildcard) and half
/// not (other hosts, ports, schemes and lookalikes).
pub fn urls(site_rules: usize, count: usize) -> Vec<String> {
    let n = site_rules.max(1);
    (0..count)
        .map(|j| {
            let i = (j.wrapping_mul(7919)) % n;
            let mut url = String::with_capacity(64);
            let _ = match j % 8 {
                0 | 1 => write!(url, "https://s{i}.bench.example/v{}/items?page={j}", i % 5),
                2 => write!(url, "https://api.w{i}.bench.example/x/{j}"),
                3 => write!(url, "https://s{i}.bench.example:8443/v1/{j}"),
                4 => write!(url, "https://s{i}.bench.example.evil.test/v1/{j}"),
                5 => write!(url, "http://s{i}.bench.example/{j}"),
                6 => write!(url, "https://other{j}.example.net/v1"),
                _ => write!(url, "wss://s{i}.bench.example/socket?{j}"),
            };
            url
        })
        .collect()
}

/// One timed case, as the runner asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `compile` of a book of this many browser rules.
    Compile(usize),
    /// `diff` of that compiled set against itself with one rule edited:
    /// what one rule edit costs.
    Diff(usize),
    /// `matcher::applying` over `urls` URLs, against a book of `rules`
    /// browser rules.
    Match { urls: usize, rules: usize },
    /// Stored state of this many browser rules, from the JSON text the
    /// background reads back to a `State`: what every request to the
    /// background starts with.
    Load(usize),
    /// That `State` back to JSON text: what every change saves.
    Save(usize),
}

impl Case {
    pub fn key(self) -> String {
        match self {
            Case::Compile(n) => format!("compile/{n}"),
            Case::Diff(n) => format!("diff/{n}"),
            Case::Match { urls, rules } => format!("match/{urls}/{rules}"),
            Case::Load(n) => format!("load/{n}"),
            Case::Save(n) => format!("save/{n}"),
        }
    }

    pub fn parse(key: &str) -> Option<Case> {
        let mut parts = key.split('/');
        let kind = parts.next()?;
        let n = parts.next()?.parse().ok()?;
        match (kind, parts.next().map(str::parse)) {
            ("compile", None) => Some(Case::Compile(n)),
            ("diff", None) => Some(Case::Diff(n)),
            ("load", None) => Some(Case::Load(n)),
            ("save", None) => Some(Case::Save(n)),
            ("match", Some(Ok(rules))) => Some(Case::Match { urls: n, rules }),
            _ => None,
        }
    }
}

/// Runs `case` `reps` times and returns, as JSON, the time of one operation
/// in each repetition (milliseconds, from `now`), and a checksum of the
/// results so that no work can be optimised away. An operation too short
/// for the clock (browsers coarsen `performance.now()`) is repeated within a
/// repetition until at least `min_sample_ms` have passed, and its time is
/// the mean over that batch.
pub fn run(
    case: Case,
    reps: usize,
    min_sample_ms: f64,
    now: &dyn Fn() -> f64,
) -> Result<Value, String> {
    let limits = compile::Target {
        limits: Limits {
            max_rules: usize::MAX,
            max_regex_rules: usize::MAX,
        },
        ..compile::Target::CHROMIUM
    };
    let mut op: Box<dyn FnMut() -> usize> = match case {
        Case::Compile(n) => {
            let book = filler_book(site_rules_for(n))?;
            Box::new(move || compile::compile(&book, limits).map_or(0, |rules| rules.len()))
        }
        Case::Diff(n) => {
            let book = filler_book(site_rules_for(n))?;
            let installed = compile::compile(&book, limits).map_err(|e| e.to_string())?;
            let mut edited = book.clone();
            let middle = site_rules_for(n) / 2;
            let mut draft = bearer_draft(&pattern(middle), "edited-secret-0123456789", false);
            draft.id = book.rules().get(middle).map(|r| r.id);
            edited.save(&draft).map_err(|e| e.to_string())?;
            let desired = compile::compile(&edited, limits).map_err(|e| e.to_string())?;
            Box::new(move || {
                let update = compile::diff(&desired, &installed);
                update.add_rules.len() + update.remove_rule_ids.len()
            })
        }
        Case::Load(n) => {
            let state = State {
                book: filler_book(site_rules_for(n))?,
                ..State::default()
            };
            let text = state.encode().to_string();
            Box::new(move || {
                let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                State::decode(Some(value)).map_or(0, |s| s.book.rules().len())
            })
        }
        Case::Save(n) => {
            let state = State {
                book: filler_book(site_rules_for(n))?,
                ..State::default()
            };
            Box::new(move || state.encode().to_string().len())
        }
        Case::Match { urls: count, rules } => {
            let site_rules = site_rules_for(rules);
            let book = filler_book(site_rules)?;
            let urls = urls(site_rules, count);
            Box::new(move || {
                urls.iter()
                    .map(|url| matcher::applying(&book, url).len())
                    .sum()
            })
        }
    };

    // Warm up once, and size the batch from it.
    let started = now();
    let mut checksum = op();
    let once = (now() - started).max(0.0);
    let batch = if once >= min_sample_ms {
        1
    } else {
        // At least 1 and at most 100,000 operations per sample.
        let wanted = min_sample_ms / once.max(0.000_1);
        wanted.ceil().clamp(1.0, 100_000.0) as usize
    };
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = now();
        for _ in 0..batch {
            checksum = checksum.wrapping_add(op());
        }
        samples.push((now() - started) / batch as f64);
    }
    Ok(json!({
        "case": case.key(),
        "samples_ms": samples,
        "batch": batch,
        "checksum": checksum,
    }))
}

/// [`run`] driven by a JSON request `{"case": "compile/5000", "reps": 7,
/// "min_sample_ms": 20}`, answering JSON text: the wasm entry point's form.
pub fn run_json(request: &str, now: &dyn Fn() -> f64) -> Result<String, String> {
    let request: Value = serde_json::from_str(request).map_err(|e| e.to_string())?;
    let key = request["case"].as_str().ok_or("no case")?;
    let case = Case::parse(key).ok_or_else(|| format!("unknown case {key}"))?;
    let reps = request["reps"].as_u64().unwrap_or(5) as usize;
    let min_sample_ms = request["min_sample_ms"].as_f64().unwrap_or(20.0);
    run(case, reps, min_sample_ms, now).map(|v| v.to_string())
}
