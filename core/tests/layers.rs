//! The core's modules form no cycle: each module's code (its tests aside)
//! names only modules below it, so a module can be read, tested and changed
//! knowing only what it stands on. Read from the source, as `use` and path
//! mentions of `crate::<module>`; doc comments do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to (`provider/jina.rs` → `provider`).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read core/src") {
        let path = entry.expect("read core/src").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` modules and comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping_from: Option<usize> = None;
    let mut depth = 0usize;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if skipping_from.is_none()
            && trimmed.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.contains("mod "))
        {
            skipping_from = Some(depth);
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        depth = (depth + opens).saturating_sub(closes);
        if let Some(level) = skipping_from {
            if depth <= level && closes > 0 {
                skipping_from = None;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `crate::<name>` mentions in `code`, including `use crate::{a, b}`.
fn mentions(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|part| part.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        for name in names {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                found.insert(name.to_owned());
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in all {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read a core file");
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(mentions(&code(&text)).into_iter().filter(|m| *m != module));
    }
    // `testing` is test support, above everything by design.
    graph.remove("testing");
    graph
}

/// A cycle through `start`, if any, as the path that closes it.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are never empty");
        for next in graph.get(last).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_modules_form_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "the scan found the modules: {graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_through(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_leaves_stand_on_nothing_but_text_and_json() {
    let graph = graph();
    for leaf in ["json", "text", "dnr", "vault", "pattern", "header"] {
        let above: Vec<&String> = graph[leaf]
            .iter()
            .filter(|m| *m != "text" && *m != "json")
            .collect();
        assert!(above.is_empty(), "{leaf} names {above:?}");
    }
}

#[test]
fn the_scan_sees_a_cycle_when_there_is_one() {
    let code = code("use crate::b::X;\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\n");
    assert_eq!(mentions(&code), BTreeSet::from(["b".to_owned()]));
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    assert_eq!(
        mentions("use crate::{credential::X, text};"),
        BTreeSet::from(["credential".to_owned(), "text".to_owned()])
    );
}
