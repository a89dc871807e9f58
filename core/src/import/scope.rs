//! Where a foreign rule applies, read as site patterns that name the same
//! URLs or fewer, never more.
//!
//! Other extensions say where a header goes with regular expressions
//! (ModHeader, Requestly, Headerly's `regexFilter`), wildcards (Requestly),
//! match patterns (SimpleModifyHeaders' `target_page`), substrings and
//! domain lists. A site pattern is a scheme, a host (or its subdomains), a
//! port and a path prefix. A filter becomes patterns here only when every
//! URL the patterns name is one the filter names: the import may send a
//! header to fewer places than before, never to more. Anything else is
//! [`Scope::Refused`], with a narrower site to suggest when one can be read
//! from the filter, which the user confirms in the preview.
//!
//! Each reader turns its syntax into a few tokens ([`Tok`]) and one
//! recognizer ([`read_shape`]) reads `scheme://host[:port][/path]` and what
//! follows. Every token stands for a set of strings that contains the literal
//! the recognizer takes from it (an unescaped `.` is read as a dot; an
//! optional group as absent), which is what makes the patterns a subset.

use crate::pattern::{ParseOptions, SitePattern};
use crate::text;
use crate::text::Text;

/// Where a foreign filter lets the header go, as Tokenward can say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Site patterns, canonical, each naming only URLs the filter names;
    /// `narrower` says what the filter named that they leave out.
    Sites {
        patterns: Vec<String>,
        narrower: Vec<Text>,
    },
    /// Not imported as it is: `why`, and a site the user may confirm instead.
    Refused {
        why: Text,
        suggestion: Option<String>,
    },
}

impl Scope {
    fn refused(why: Text, suggestion: Option<String>) -> Scope {
        Scope::Refused { why, suggestion }
    }
}

/// One piece of a filter, as a set of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// This character (an unescaped regex `.` is read as a dot: the dot is
    /// one of the characters it matches).
    Lit(char),
    /// Any string, empty included (`.*`, a wildcard's `*`).
    Any,
    /// One character or more, any (`.+`).
    AnyPlus,
    /// One character or more, none of them `/` (`[^/]+`, `\w+`).
    Label,
    /// `http` or `https` (`https?`, `(http|https)`).
    WebScheme,
    /// Nothing, or subdomain labels and a dot (`(.*\.)?`).
    SubdomainsOptional,
    /// Something that may match nothing: an optional group, read as absent.
    Skip,
    /// The end of the URL (`$`).
    End,
    /// Anything else: a class, an alternation, a quantifier.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemeIs {
    Https,
    Http,
    /// `http` or `https`.
    Web,
    /// Any scheme at all, or a filter that does not start at the scheme.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subdomains {
    No,
    /// The host and its subdomains.
    Optional,
    /// Only its subdomains.
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Whatever follows the path: the filter names every URL that starts so.
    Prefix,
    /// The URL ends there: one URL, which a path prefix cannot say alone.
    Exact,
    /// Something the recognizer does not read.
    Unread,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    scheme: SchemeIs,
    subdomains: Subdomains,
    host: String,
    port: Option<String>,
    path: String,
    tail: Tail,
}

/// Which way a foreign syntax names URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchoring {
    /// The filter must match the whole URL from its start (a wildcard, an
    /// anchored regex).
    Start,
    /// The filter matches anywhere in the URL (`RegExp.test`, DNR's
    /// `regexFilter`).
    Anywhere,
}

/// A regular expression, as JavaScript's `RegExp` or RE2 read it, matched
/// anywhere in the URL unless it starts with `^`. `case_insensitive`: the `i`
/// flag.
pub fn regex(source: &str, case_insensitive: bool) -> Scope {
    let source = source.trim();
    if source.is_empty() || matches!(source, ".*" | "^.*" | ".*$" | "^.*$" | ".+" | ".") {
        return Scope::refused(text!("import_scope_every_url", source), None);
    }
    let (anchored, body) = match source.strip_prefix('^') {
        Some(rest) => (Anchoring::Start, rest),
        None => (Anchoring::Anywhere, source),
    };
    let toks = regex_tokens(body);
    judge(source, &toks, anchored, case_insensitive)
}

/// A wildcard over the whole URL, `*` matching any string (Requestly's
/// `Wildcard_Matches`).
pub fn wildcard(source: &str) -> Scope {
    let source = source.trim();
    if source.chars().all(|c| c == '*') {
        return Scope::refused(text!("import_scope_every_url", source), None);
    }
    let toks: Vec<Tok> = source
        .chars()
        .map(|c| if c == '*' { Tok::Any } else { Tok::Lit(c) })
        .collect();
    judge(source, &toks, Anchoring::Start, true)
}

/// A match pattern (`https://*.example.com/api/*`, `<all_urls>`), as
/// WebExtensions define them: the whole URL, `*` in the scheme meaning
/// `http` or `https`, `*.` in the host the host and its subdomains.
pub fn match_pattern(source: &str) -> Scope {
    let source = source.trim();
    let every = || Scope::refused(text!("import_scope_every_url", source), None);
    if source == "<all_urls>" || source.is_empty() {
        return every();
    }
    let Some((scheme, rest)) = source.split_once("://") else {
        return Scope::refused(text!("import_scope_unreadable", source), None);
    };
    let scheme = match scheme {
        "*" => SchemeIs::Web,
        "https" => SchemeIs::Https,
        "http" => SchemeIs::Http,
        _ => return Scope::refused(text!("import_scope_scheme", source), None),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    if host == "*" || host.is_empty() {
        return every();
    }
    let (subdomains, host) = match host.strip_prefix("*.") {
        Some(h) => (Subdomains::Optional, h),
        None => (Subdomains::No, host),
    };
    if host.contains('*') {
        return Scope::refused(text!("import_scope_unreadable", source), None);
    }
    let port = match port {
        // Any port: the default one is among them.
        Some("*") | None => None,
        Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => Some(p.to_owned()),
        Some(_) => return Scope::refused(text!("import_scope_unreadable", source), None),
    };
    let (path, tail) = match path.find('*') {
        Some(at) if at + 1 == path.len() => (&path[..at], Tail::Prefix),
        Some(at) => (&path[..at], Tail::Unread),
        None if path.is_empty() => ("", Tail::Prefix),
        None => (path, Tail::Exact),
    };
    let shape = Shape {
        scheme,
        subdomains,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        tail,
    };
    decide(source, &shape, Anchoring::Start, true)
}

/// A host name, matched exactly, with any scheme and port (Requestly's
/// `host` `Equals`).
pub fn host(source: &str) -> Scope {
    site_of_host(source, Subdomains::No)
}

/// A domain and its subdomains, as DNR's `requestDomains` name them.
pub fn domain(source: &str) -> Scope {
    site_of_host(source, Subdomains::Optional)
}

fn site_of_host(source: &str, subdomains: Subdomains) -> Scope {
    let source = source.trim();
    if source.is_empty() || source.contains(['/', '*', ':', '?', '#', '@']) || source == "." {
        return Scope::refused(text!("import_scope_unreadable", source), None);
    }
    let shape = Shape {
        scheme: SchemeIs::Web,
        subdomains,
        host: source.to_owned(),
        port: None,
        path: String::new(),
        tail: Tail::Prefix,
    };
    decide(source, &shape, Anchoring::Start, true)
}

/// A URL prefix: the filter names every URL that starts with it.
pub fn url_prefix(source: &str) -> Scope {
    let toks: Vec<Tok> = source.trim().chars().map(Tok::Lit).collect();
    judge(source.trim(), &toks, Anchoring::Start, false)
}

/// One exact URL (Requestly's `Url` `Equals`).
pub fn exact_url(source: &str) -> Scope {
    let mut toks: Vec<Tok> = source.trim().chars().map(Tok::Lit).collect();
    toks.push(Tok::End);
    judge(source.trim(), &toks, Anchoring::Start, false)
}

/// A substring of the URL (`url_contains`, Requestly's `Contains`): any URL
/// anywhere that contains it. Refused; when it reads as a site, that site is
/// suggested.
pub fn substring(source: &str) -> Scope {
    let source = source.trim();
    if source.is_empty() {
        return Scope::refused(text!("import_scope_every_url", source), None);
    }
    let toks: Vec<Tok> = source.chars().map(Tok::Lit).collect();
    let suggestion = source
        .contains("://")
        .then(|| read_shape(&toks, false).ok().and_then(|s| suggest(&s)))
        .flatten();
    let suggestion = suggestion.or_else(|| {
        // A bare host (`api.example.com`) reads as that site.
        let host_like = source.contains('.')
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        host_like
            .then(|| canonical(&format!("https://{source}"), false))
            .flatten()
    });
    Scope::refused(text!("import_scope_substring", source), suggestion)
}

/// DNR's `urlFilter` syntax (Headerly): `||host^`, `|https://host/path`,
/// and otherwise a substring.
pub fn dnr_url_filter(source: &str) -> Scope {
    let source = source.trim();
    if let Some(rest) = source.strip_prefix("||") {
        // `||` anchors at the start of a domain: the host or a subdomain,
        // any scheme. The domain ends at `^`, `/` or the end.
        let end = rest.find(['^', '/', '*', '|', ':']).unwrap_or(rest.len());
        let (host, after) = rest.split_at(end);
        if after.is_empty() || after == "^" || after == "/" || after == "^*" || after == "/*" {
            return domain(host);
        }
        return Scope::refused(text!("import_scope_unreadable", source), None);
    }
    if let Some(rest) = source.strip_prefix('|') {
        if let Some(prefix) = rest.strip_suffix('|') {
            return exact_url(prefix);
        }
        let prefix = rest.strip_suffix('*').unwrap_or(rest);
        if prefix.contains(['*', '^', '|']) {
            return Scope::refused(text!("import_scope_unreadable", source), None);
        }
        return url_prefix(prefix);
    }
    substring(source.trim_matches('*'))
}

fn judge(source: &str, toks: &[Tok], anchoring: Anchoring, case_insensitive: bool) -> Scope {
    match read_shape(toks, case_insensitive) {
        Ok(shape) => decide(source, &shape, anchoring, false),
        Err(()) => Scope::refused(text!("import_scope_unreadable", source), None),
    }
}

/// What a recognized shape means as site patterns.
/// `every_port`: the filter named every port when it named none (a host, a
/// domain, a match pattern).
fn decide(source: &str, shape: &Shape, anchoring: Anchoring, every_port: bool) -> Scope {
    let suggestion = suggest(shape);
    // The reasons whose words say how the suggestion is wider come first:
    // there is no narrower site to suggest for one address or a folder.
    match shape.tail {
        Tail::Prefix => {}
        Tail::Exact => return Scope::refused(text!("import_scope_exact", source), suggestion),
        // What follows is not read: a site would name more than it does.
        Tail::Unread => return Scope::refused(text!("import_scope_unreadable", source), None),
    }
    if shape.path.len() > 1 && shape.path.ends_with('/') {
        // A site's path prefix ends before the slash: `/v1` also names
        // `/v1` itself and `/v1?…`, which `/v1/…` does not.
        return Scope::refused(text!("import_scope_directory", source), suggestion);
    }
    if anchoring == Anchoring::Anywhere || shape.scheme == SchemeIs::Any {
        // `.*://api.example.com/` also matches
        // `https://elsewhere.test/?u=https://api.example.com/`.
        return Scope::refused(text!("import_scope_anywhere", source), suggestion);
    }
    let mut narrower = Vec::new();
    let (scheme, allow_http) = match shape.scheme {
        SchemeIs::Http => ("http", true),
        SchemeIs::Web => {
            // One of the two: https, but http on this machine, where
            // development servers listen without TLS.
            let scheme = if is_loopback(&shape.host) {
                "http"
            } else {
                "https"
            };
            narrower.push(text!("import_narrower_one_scheme", scheme));
            (scheme, false)
        }
        // `Any` returned above.
        SchemeIs::Https | SchemeIs::Any => ("https", false),
    };
    let port = shape
        .port
        .as_deref()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let hosts: Vec<String> = match shape.subdomains {
        Subdomains::No => vec![shape.host.clone()],
        Subdomains::Required => vec![format!("*.{}", shape.host)],
        Subdomains::Optional => vec![shape.host.clone(), format!("*.{}", shape.host)],
    };
    let mut patterns = Vec::new();
    for host in hosts {
        let written = format!("{scheme}://{host}{port}{}", shape.path);
        match SitePattern::parse(&written, ParseOptions { allow_http }) {
            // The canonical form must say what was read: a path the parser
            // would re-encode, or a host it would rewrite, may name other URLs.
            Ok(p) if same_site(&p, &written) => patterns.push(p.to_string()),
            Ok(_) | Err(_) => {
                return Scope::refused(text!("import_scope_unreadable", source), None)
            }
        }
    }
    if shape.port.is_none() && every_port {
        narrower.push(text!("import_narrower_default_port"));
    }
    Scope::Sites { patterns, narrower }
}

/// Whether a parsed pattern prints as what was written (bar a trailing `/`,
/// and the case of the host, which URLs never keep).
fn same_site(pattern: &SitePattern, written: &str) -> bool {
    let printed = pattern.to_string();
    let printed = printed.trim_end_matches('/');
    printed.eq_ignore_ascii_case(written.trim_end_matches('/'))
}

/// A narrower site the user may confirm: the shape's host, one scheme, its
/// port, and its path up to the last `/`.
fn suggest(shape: &Shape) -> Option<String> {
    if shape.host.is_empty() {
        return None;
    }
    let scheme = match shape.scheme {
        SchemeIs::Http => "http",
        SchemeIs::Web | SchemeIs::Any if is_loopback(&shape.host) => "http",
        _ => "https",
    };
    let host = match shape.subdomains {
        Subdomains::Required => format!("*.{}", shape.host),
        _ => shape.host.clone(),
    };
    let port = shape
        .port
        .as_deref()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = shape.path.trim_end_matches('/');
    canonical(&format!("{scheme}://{host}{port}{path}"), scheme == "http")
}

/// `localhost`, a `.localhost` name, or a loopback address.
fn is_loopback(host: &str) -> bool {
    SitePattern::parse(&format!("http://{host}"), ParseOptions { allow_http: true })
        .is_ok_and(|p| p.is_loopback())
}

fn canonical(written: &str, allow_http: bool) -> Option<String> {
    SitePattern::parse(written, ParseOptions { allow_http })
        .ok()
        .map(|p| p.to_string())
}

/// Reads `scheme://host[:port][/path]` and what follows.
fn read_shape(toks: &[Tok], case_insensitive: bool) -> Result<Shape, ()> {
    let mut at = 0;
    let lit = |i: usize| match toks.get(i) {
        Some(Tok::Lit(c)) => Some(*c),
        _ => None,
    };
    // The scheme, up to `://`.
    let mut scheme = String::new();
    let mut scheme_is = None;
    while let Some(c) = lit(at).filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '-') {
        scheme.push(c);
        at += 1;
    }
    if scheme.is_empty() {
        match toks.get(at) {
            Some(Tok::WebScheme) => {
                scheme_is = Some(SchemeIs::Web);
                at += 1;
            }
            Some(Tok::Any | Tok::AnyPlus | Tok::Label) => {
                scheme_is = Some(SchemeIs::Any);
                at += 1;
            }
            _ => {}
        }
    } else if toks.get(at) == Some(&Tok::WebScheme) {
        return Err(());
    }
    let has_separator =
        lit(at) == Some(':') && lit(at + 1) == Some('/') && lit(at + 2) == Some('/');
    let scheme_is = if has_separator {
        at += 3;
        match scheme_is {
            Some(s) => s,
            None => {
                let s = if case_insensitive {
                    scheme.to_ascii_lowercase()
                } else {
                    scheme.clone()
                };
                match s.as_str() {
                    "https" => SchemeIs::Https,
                    "http" => SchemeIs::Http,
                    _ => return Err(()),
                }
            }
        }
    } else {
        // No scheme: the filter starts inside the URL (a host).
        at = 0;
        SchemeIs::Any
    };
    // Subdomains.
    let mut subdomains = Subdomains::No;
    match (toks.get(at), lit(at + 1)) {
        (Some(Tok::SubdomainsOptional), _) => {
            subdomains = Subdomains::Optional;
            at += 1;
        }
        (Some(Tok::Any | Tok::AnyPlus | Tok::Label), Some('.')) => {
            subdomains = Subdomains::Required;
            at += 2;
        }
        _ => {}
    }
    while toks.get(at) == Some(&Tok::Skip) {
        at += 1;
    }
    // The host.
    let mut host = String::new();
    let ipv6 = lit(at) == Some('[');
    while let Some(c) = lit(at) {
        let allowed = c.is_ascii_alphanumeric()
            || c == '.'
            || c == '-'
            || (ipv6 && (c == ':' || c == '[' || c == ']'));
        if !allowed {
            break;
        }
        if c.is_ascii_uppercase() && !case_insensitive {
            // Browsers lower-case hosts: this filter never matched one.
            return Err(());
        }
        host.push(c.to_ascii_lowercase());
        at += 1;
        if ipv6 && c == ']' {
            break;
        }
    }
    if host.is_empty() || host.starts_with('.') || host.ends_with('.') {
        return Err(());
    }
    // The port: digits only.
    let mut port = None;
    if lit(at) == Some(':') {
        let mut digits = String::new();
        at += 1;
        while let Some(c) = lit(at).filter(char::is_ascii_digit) {
            digits.push(c);
            at += 1;
        }
        if digits.is_empty() {
            return Err(());
        }
        port = Some(digits);
    }
    // The path: literal characters a site pattern keeps as they are.
    let mut path = String::new();
    if lit(at) == Some('/') {
        while let Some(c) =
            lit(at).filter(|c| c.is_ascii_alphanumeric() || "/-._~!$&'()+,;=:@%".contains(*c))
        {
            path.push(c);
            at += 1;
        }
    }
    let rest: Vec<Tok> = toks[at..]
        .iter()
        .copied()
        .filter(|t| *t != Tok::Skip)
        .collect();
    let tail = match rest.as_slice() {
        [] | [Tok::Any] | [Tok::Any, Tok::End] => {
            // After a bare host, more host characters may follow
            // (`api.example.com.evil.test`): still a prefix of every URL of
            // the site, which is all a subset needs.
            Tail::Prefix
        }
        [Tok::End] => Tail::Exact,
        _ => Tail::Unread,
    };
    // A host followed by a literal that is not a port or path (`?`, `#`).
    Ok(Shape {
        scheme: scheme_is,
        subdomains,
        host,
        port,
        path,
        tail,
    })
}

/// A regex's body (after `^`) as tokens.
fn regex_tokens(body: &str) -> Vec<Tok> {
    // Spellings of "http or https" and "optional subdomains" seen in
    // header extensions' files, longest first where one starts another.
    const WEB_SCHEME: &[&str] = &[
        "(?:https?)",
        "(?:https|http)",
        "(?:http|https)",
        "(https?)",
        "(https|http)",
        "(http|https)",
        "http(?:s)?",
        "http(s)?",
        "http(s?)",
        "https?",
        "http[s]?",
    ];
    const SUBDOMAINS: &[&str] = &[
        "(?:.*\\.)?",
        "(?:.+\\.)?",
        "(?:[^/]+\\.)?",
        "(?:[^/]*\\.)?",
        "(.*\\.)?",
        "(.+\\.)?",
        "([^/]+\\.)?",
        "([^/]*\\.)?",
        "([^/]+\\.)*",
        "([^.]+\\.)*",
        "([^./]+\\.)*",
        "([a-z0-9-]+\\.)*",
        "([a-zA-Z0-9-]+\\.)*",
        "([\\w-]+\\.)*",
        "(\\w+\\.)*",
        "(www\\.)?",
    ];
    const ANY: &[&str] = &[
        ".*?", ".*", "(.*)?", "(.*)", "(/.*)?", "(?:/.*)?", "(\\/.*)?",
    ];
    const LABEL: &[&str] = &[
        "[^/]+",
        "[^/]*",
        "[a-z0-9-]+",
        "[a-zA-Z0-9-]+",
        "[\\w-]+",
        "\\w+",
        "[a-z]+",
        "[^:]+",
    ];
    let mut toks = Vec::new();
    let mut rest = body;
    'outer: while !rest.is_empty() {
        for (spellings, tok) in [
            (WEB_SCHEME, Tok::WebScheme),
            (SUBDOMAINS, Tok::SubdomainsOptional),
            (ANY, Tok::Any),
            (LABEL, Tok::Label),
        ] {
            for s in spellings {
                if let Some(after) = rest.strip_prefix(s) {
                    // `(www\.)?` is optional like subdomains, but names one:
                    // read as absent.
                    toks.push(if *s == "(www\\.)?" { Tok::Skip } else { tok });
                    rest = after;
                    continue 'outer;
                }
            }
        }
        if let Some(after) = rest.strip_prefix(".+") {
            toks.push(Tok::AnyPlus);
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        let after = chars.as_str();
        match c {
            '\\' => {
                let mut esc = after.chars();
                match esc.next() {
                    Some(e) if e.is_ascii_punctuation() => {
                        toks.push(Tok::Lit(e));
                        rest = esc.as_str();
                    }
                    _ => {
                        toks.push(Tok::Other);
                        rest = esc.as_str();
                    }
                }
                continue;
            }
            '$' if after.is_empty() => toks.push(Tok::End),
            '(' => {
                // An optional group (`(…)?`, no nesting, no alternation) may
                // match nothing: read as absent.
                if let Some(close) = after.find(')') {
                    let inner = &after[..close];
                    let tail = &after[close + 1..];
                    if !inner.contains(['(', '|']) {
                        if let Some(t) = tail.strip_prefix('?').or_else(|| tail.strip_prefix('*')) {
                            toks.push(Tok::Skip);
                            rest = t;
                            continue;
                        }
                    }
                }
                toks.push(Tok::Other);
            }
            '[' | ']' | ')' | '|' | '?' | '+' | '*' | '{' | '}' | '^' | '$' => {
                toks.push(Tok::Other)
            }
            _ => toks.push(Tok::Lit(c)),
        }
        rest = after;
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(scope: &Scope) -> Vec<&str> {
        match scope {
            Scope::Sites { patterns, .. } => patterns.iter().map(String::as_str).collect(),
            Scope::Refused { .. } => Vec::new(),
        }
    }

    fn suggestion(scope: &Scope) -> Option<&str> {
        match scope {
            Scope::Refused { suggestion, .. } => suggestion.as_deref(),
            Scope::Sites { .. } => None,
        }
    }

    fn why(scope: &Scope) -> &str {
        match scope {
            Scope::Refused { why, .. } => &why.key,
            Scope::Sites { .. } => "",
        }
    }

    #[test]
    fn anchored_regexes_become_the_same_site_or_fewer() {
        for (source, expected) in [
            (
                r"^https://api\.example\.com/.*",
                vec!["https://api.example.com/"],
            ),
            (
                r"^https://api\.example\.com",
                vec!["https://api.example.com/"],
            ),
            (
                r"^https:\/\/api\.example\.com\/v1",
                vec!["https://api.example.com/v1/"],
            ),
            (
                r"^https://api.example.com:8443/.*$",
                vec!["https://api.example.com:8443/"],
            ),
            (
                r"^https?://api\.example\.com/.*",
                vec!["https://api.example.com/"],
            ),
            (r"^http://localhost:3000/.*", vec!["http://localhost:3000/"]),
            (
                r"^https://(.*\.)?example\.com/.*",
                vec!["https://example.com/", "https://*.example.com/"],
            ),
            (
                r"^https://.*\.example\.com/.*",
                vec!["https://*.example.com/"],
            ),
            (
                r"^https://[^/]+\.example\.com/",
                vec!["https://*.example.com/"],
            ),
            (
                r"^https://(www\.)?example\.com/",
                vec!["https://example.com/"],
            ),
        ] {
            assert_eq!(sites(&regex(source, false)), expected, "{source}");
        }
        let Scope::Sites { narrower, .. } = regex(r"^https?://api\.example\.com/", false) else {
            panic!("a site");
        };
        assert_eq!(narrower, [text!("import_narrower_one_scheme", "https")]);
        assert_eq!(
            sites(&regex(r"^https?://api\.localhost:8080/", false)),
            ["http://api.localhost:8080/"]
        );
    }

    #[test]
    fn what_names_more_than_a_site_is_refused_with_a_narrower_suggestion() {
        for (source, why_key, suggested) in [
            (
                r".*://api\.example\.com/.*",
                "import_scope_anywhere",
                Some("https://api.example.com/"),
            ),
            (
                r"api\.example\.com",
                "import_scope_anywhere",
                Some("https://api.example.com/"),
            ),
            (
                r"https://api\.example\.com/",
                "import_scope_anywhere",
                Some("https://api.example.com/"),
            ),
            (
                r"^.*://api\.example\.com/",
                "import_scope_anywhere",
                Some("https://api.example.com/"),
            ),
            (
                r"^https://api\.example\.com/v1/$",
                "import_scope_exact",
                Some("https://api.example.com/v1/"),
            ),
            (
                r"^https://api\.example\.com/v1/.*",
                "import_scope_directory",
                Some("https://api.example.com/v1/"),
            ),
            (
                r"^https://api\.example\.com/(v1|v2)/",
                "import_scope_unreadable",
                None,
            ),
            (
                r"^https://api\.example\.com/.+",
                "import_scope_unreadable",
                None,
            ),
            (
                r"^https://api\.example\.com/\d+",
                "import_scope_unreadable",
                None,
            ),
            (
                r"^wss://api\.example\.com/",
                "import_scope_unreadable",
                None,
            ),
            (
                r"^https://API\.example\.com/",
                "import_scope_unreadable",
                None,
            ),
            (
                r"^https://api\.example\.com:/",
                "import_scope_unreadable",
                None,
            ),
            (".*", "import_scope_every_url", None),
            ("", "import_scope_every_url", None),
            (r"^https://[a-z]+\.com/", "import_scope_unreadable", None),
        ] {
            let scope = regex(source, false);
            assert_eq!(why(&scope), why_key, "{source}: {scope:?}");
            assert_eq!(suggestion(&scope), suggested, "{source}");
        }
        // With `i`, an upper-case host matches the browser's lower-case one.
        assert_eq!(
            sites(&regex(r"^https://API\.example\.com/", true)),
            ["https://api.example.com/"]
        );
    }

    #[test]
    fn match_patterns() {
        for (pattern, expected) in [
            (
                "https://api.example.com/*",
                vec!["https://api.example.com/"],
            ),
            ("*://api.example.com/*", vec!["https://api.example.com/"]),
            (
                "https://*.example.com/*",
                vec!["https://example.com/", "https://*.example.com/"],
            ),
            (
                "https://api.example.com/v1*",
                vec!["https://api.example.com/v1/"],
            ),
            (
                "https://api.example.com:8443/*",
                vec!["https://api.example.com:8443/"],
            ),
            ("http://127.0.0.1:8080/*", vec!["http://127.0.0.1:8080/"]),
        ] {
            assert_eq!(sites(&match_pattern(pattern)), expected, "{pattern}");
        }
        for (pattern, why_key) in [
            ("<all_urls>", "import_scope_every_url"),
            ("*://*/*", "import_scope_every_url"),
            ("https://*/*", "import_scope_every_url"),
            ("https://api.example.com/v1/*", "import_scope_directory"),
            ("https://api.example.com/v1", "import_scope_exact"),
            ("https://api.example.com/a/*/b", "import_scope_unreadable"),
            ("ftp://api.example.com/*", "import_scope_scheme"),
            ("api.example.com", "import_scope_unreadable"),
        ] {
            assert_eq!(why(&match_pattern(pattern)), why_key, "{pattern}");
        }
    }

    #[test]
    fn wildcards_hosts_prefixes_and_substrings() {
        assert_eq!(
            sites(&wildcard("*://api.example.com/*")),
            Vec::<&str>::new()
        );
        assert_eq!(
            suggestion(&wildcard("*://api.example.com/*")),
            Some("https://api.example.com/")
        );
        assert_eq!(
            sites(&wildcard("https://api.example.com/*")),
            ["https://api.example.com/"]
        );
        assert_eq!(
            sites(&wildcard("https://*.example.com/*")),
            ["https://*.example.com/"]
        );
        assert_eq!(why(&wildcard("*")), "import_scope_every_url");
        assert_eq!(
            sites(&host("api.example.com")),
            ["https://api.example.com/"]
        );
        assert_eq!(
            sites(&domain("example.com")),
            ["https://example.com/", "https://*.example.com/"]
        );
        assert_eq!(why(&host("a/b")), "import_scope_unreadable");
        assert_eq!(why(&domain("com")), "import_scope_unreadable");
        assert_eq!(
            sites(&url_prefix("https://api.example.com/v1")),
            ["https://api.example.com/v1/"]
        );
        assert_eq!(
            why(&exact_url("https://api.example.com/v1")),
            "import_scope_exact"
        );
        assert_eq!(why(&substring("api")), "import_scope_substring");
        assert_eq!(suggestion(&substring("api")), None);
        assert_eq!(
            suggestion(&substring("api.example.com")),
            Some("https://api.example.com/")
        );
        assert_eq!(
            suggestion(&substring("https://api.example.com/v1")),
            Some("https://api.example.com/v1/")
        );
        assert_eq!(
            sites(&dnr_url_filter("||example.com^")),
            ["https://example.com/", "https://*.example.com/"]
        );
        assert_eq!(
            sites(&dnr_url_filter("|https://api.example.com/v1")),
            ["https://api.example.com/v1/"]
        );
        assert_eq!(why(&dnr_url_filter("example")), "import_scope_substring");
        assert_eq!(why(&dnr_url_filter("*")), "import_scope_every_url");
    }

    /// Every site read from a filter names only URLs the filter names: checked
    /// by matching sample URLs of each site against the filter read as a
    /// real regex would read it (here, by hand for the anchored forms).
    #[test]
    fn a_domain_is_never_widened_to_its_parent_or_a_lookalike() {
        for filter in [
            r"^https://api\.example\.com\.evil\.test/",
            r"^https://example\.com\.evil/",
        ] {
            for site in sites(&regex(filter, false)) {
                assert!(site.contains("evil"), "{filter} became {site}");
            }
        }
    }
}
