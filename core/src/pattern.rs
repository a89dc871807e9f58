//! Site patterns: which URLs a rule names.
//!
//! A pattern is what the user types (`https://api.example.com`,
//! `https://*.acme.cloud-apps.bentoml.com/`, `http://127.0.0.1:3000/v1/`),
//! parsed into a canonical form: scheme, exact host or `*.` suffix, port and
//! optional path prefix. The semantics are deliberately narrow, because a
//! pattern decides where a secret is sent:
//!
//! - **Scheme** is `http` or `https`; `http` also covers `ws` and `https`
//!   covers `wss`, as origins do. Plain `http` is refused except for loopback
//!   and `localhost` unless the rule explicitly allows it.
//! - **Host** is exact, or `*.suffix`, which covers every subdomain of
//!   `suffix` at any depth but *not* `suffix` itself (as in CSP). Hosts are
//!   lower-cased and IDNs converted to punycode, as the browser does before
//!   matching.
//! - **Port**: none means the scheme's default port only; the header never
//!   reaches another port.
//! - **Path prefix** ends at a separator: `/v1` covers `/v1`, `/v1/…`,
//!   `/v1?…`, never `/v10` or `/v1.json`. "Separator" is exactly the class of
//!   declarativeNetRequest's `^` (anything but a letter, digit, `_`, `-`, `.`
//!   or `%`, or the end of the URL), so that the browser and [`SitePattern::matches`]
//!   agree to the character.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::text;
use crate::text::{Localize, Text};

/// The longest pattern accepted. Long enough for any real endpoint, short
/// enough that the compiled regex stays far below RE2's memory limit.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a pattern was refused. Every message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("enter a site, for example https://api.example.com")]
    Empty,
    #[error("a pattern is at most {MAX_PATTERN_LEN} characters long, once encoded")]
    TooLong,
    #[error("the pattern contains a line break or another control character; type it on one line")]
    ControlCharacter,
    #[error("a rule must name a site: `{0}` would send the header to every site")]
    AllSites(String),
    #[error("only http and https sites can get headers, not `{0}:`")]
    UnsupportedScheme(String),
    #[error("the pattern has no host: write it as https://host")]
    NoHost,
    #[error("user names and passwords do not belong in a pattern; remove the part before `@`")]
    Userinfo,
    #[error("a pattern names a site and a path, without `?query` or `#fragment`")]
    QueryOrFragment,
    #[error("`{0}` is not a valid port (1 to 65535)")]
    BadPort(String),
    #[error("`{host}` is not a valid host name: {reason}")]
    BadHost { host: String, reason: HostProblem },
    #[error("a wildcard is only allowed as the first label, as in https://*.example.com")]
    MisplacedWildcard,
    #[error(
        "`*.{0}` would cover a whole top-level domain; name your own domain, as in *.example.{0}"
    )]
    WildcardOverTld(String),
    #[error("a wildcard cannot stand for part of an IP address")]
    WildcardOverIp,
    #[error("remove the trailing dot from the host")]
    TrailingDot,
    #[error("a path prefix cannot contain `*`, `^`, `|` or `\\`; wildcards are only allowed in the host")]
    BadPathCharacter,
    #[error("plain http sends the token unencrypted; use https, or tick \"allow plain http\" for this rule")]
    InsecureHttp,
}

/// Why a host name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostProblem {
    #[error("the IPv6 address has no closing `]`")]
    UnclosedIpv6,
    #[error("it has an empty label")]
    EmptyLabel,
    #[error("it contains characters a host name cannot have")]
    BadCharacter,
    /// A host in Unicode where only its ASCII form is read: stored state,
    /// an administrator's policy, an import's canonical sites.
    #[error("here it must be written in its ASCII form (xn--…), not in Unicode")]
    Unicode,
    /// What the URL parser found wrong.
    #[error("{0}")]
    Url(url::ParseError),
}

impl Localize for PatternError {
    fn text(&self) -> Text {
        match self {
            PatternError::Empty => text!("error_pattern_empty"),
            PatternError::TooLong => text!("error_pattern_too_long", MAX_PATTERN_LEN),
            PatternError::ControlCharacter => text!("error_pattern_control_character"),
            PatternError::AllSites(input) => text!("error_pattern_all_sites", input),
            PatternError::UnsupportedScheme(scheme) => {
                text!("error_pattern_unsupported_scheme", scheme)
            }
            PatternError::NoHost => text!("error_pattern_no_host"),
            PatternError::Userinfo => text!("error_pattern_userinfo"),
            PatternError::QueryOrFragment => text!("error_pattern_query_or_fragment"),
            PatternError::BadPort(port) => text!("error_pattern_bad_port", port),
            PatternError::BadHost { host, reason } => {
                text!("error_pattern_bad_host", host, reason.text())
            }
            PatternError::MisplacedWildcard => text!("error_pattern_misplaced_wildcard"),
            PatternError::WildcardOverTld(tld) => text!("error_pattern_wildcard_over_tld", tld),
            PatternError::WildcardOverIp => text!("error_pattern_wildcard_over_ip"),
            PatternError::TrailingDot => text!("error_pattern_trailing_dot"),
            PatternError::BadPathCharacter => text!("error_pattern_bad_path_character"),
            PatternError::InsecureHttp => text!("error_pattern_insecure_http"),
        }
    }
}

impl Localize for HostProblem {
    fn text(&self) -> Text {
        match self {
            HostProblem::UnclosedIpv6 => text!("error_host_unclosed_ipv6"),
            HostProblem::EmptyLabel => text!("error_host_empty_label"),
            HostProblem::BadCharacter => text!("error_host_bad_character"),
            HostProblem::Unicode => text!("error_host_unicode"),
            HostProblem::Url(url::ParseError::EmptyHost) => text!("error_host_url_empty_host"),
            HostProblem::Url(url::ParseError::IdnaError) => text!("error_host_url_idna"),
            HostProblem::Url(url::ParseError::InvalidPort) => text!("error_host_url_port"),
            HostProblem::Url(url::ParseError::InvalidIpv4Address) => text!("error_host_url_ipv4"),
            HostProblem::Url(url::ParseError::InvalidIpv6Address) => text!("error_host_url_ipv6"),
            HostProblem::Url(url::ParseError::InvalidDomainCharacter) => {
                text!("error_host_bad_character")
            }
            // The parser's own words, for what a typed site rarely meets.
            HostProblem::Url(other) => text!("error_host_url_other", other.to_string()),
        }
    }
}

/// `http` or `https`. WebSocket schemes map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The WebSocket scheme with the same security as this one.
    pub fn websocket(self) -> &'static str {
        match self {
            Scheme::Http => "ws",
            Scheme::Https => "wss",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The pattern scheme a URL scheme falls under, if any.
    pub fn of_url(scheme: &str) -> Option<Scheme> {
        match scheme {
            "http" | "ws" => Some(Scheme::Http),
            "https" | "wss" => Some(Scheme::Https),
            _ => None,
        }
    }
}

/// An exact host, or every proper subdomain of a suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Canonical host as the browser serializes it: lower-case punycode,
    /// dotted IPv4, or bracketed IPv6.
    Exact(String),
    /// `*.suffix`: any host ending in `.suffix`, never `suffix` itself.
    Subdomains(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => is_subdomain(host, suffix),
        }
    }
}

/// Whether `host` ends in `.suffix` after at least one label.
fn is_subdomain(host: &str, suffix: &str) -> bool {
    host.strip_suffix(suffix)
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty())
}

/// The host of `scheme://host[:port]…` as written, in a pattern's
/// canonical text (`Display`'s) or a canonical URL, read as
/// [`SitePattern::matches_spec`] reads it; `None` without an authority.
pub fn written_host(text: &str) -> Option<&str> {
    let (_, authority, _) = split_spec(text)?;
    split_host_port(authority).ok().map(|(host, _)| host)
}

/// `scheme://authority…` as its scheme, its authority and what follows.
fn split_spec(text: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let (authority, after) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    Some((scheme, authority, after))
}

/// Whether the host written in a pattern's canonical text (`host` or
/// `*.suffix`, [`written_host`]) takes `host`, as [`HostPattern::matches`]
/// decides it: the host half of [`SitePattern::matches_spec`], without
/// parsing the pattern.
pub fn written_host_matches(written: &str, host: &str) -> bool {
    match written.strip_prefix("*.") {
        Some(suffix) => is_subdomain(host, suffix),
        None => host == written,
    }
}

/// A parsed, canonical site pattern. `Display` prints the canonical form,
/// which parses back to the same pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SitePattern {
    scheme: Scheme,
    host: HostPattern,
    /// `None` is the scheme's default port.
    port: Option<u16>,
    /// Canonical, percent-encoded, starts with `/`, never ends with `/`.
    path: Option<String>,
}

/// The browser's host parser, for a host a person typed in Unicode: the
/// URL standard's domain to ASCII (UTS #46 ToASCII), as `URL.hostname`
/// gives it. The browser matches rules against the host its own parser
/// produced, so the browser computes it; the core carries no Unicode
/// tables of its own.
pub trait HostNames {
    /// The ASCII form of `host`: lower case, labels in Unicode as punycode
    /// (`xn--…`). `None` when the browser refuses it as a host.
    fn to_ascii(&self, host: &str) -> Option<String>;
}

/// `text` (a site pattern, a site, an address) with a host written in
/// Unicode replaced by its ASCII form ([`HostNames`]), the rest as written.
/// What a person types passes here once, where it enters: a request to the
/// background ([`crate::message::Request::with_ascii_hosts`]), or a page
/// checking its own form. The parsers after it read ASCII hosts only.
///
/// Text whose host is ASCII comes back as it is (trimmed). So does a host
/// the browser refuses, or one with an ASCII character no host name has
/// (`%`, `\`, a space…): the browser's parser would read those as
/// delimiters and name another host, so it never sees them, and the
/// parser then refuses the host as it was typed.
pub fn with_ascii_host<'a>(text: &'a str, names: &dyn HostNames) -> Cow<'a, str> {
    let text = text.trim();
    // The host, found as `SitePattern::parse` finds it: after the first
    // `://` if any, up to the path, query or fragment, before the port;
    // after any user info too, which the parsers refuse by name.
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let Ok((host, _)) = split_host_port(authority) else {
        return Cow::Borrowed(text);
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    let host_name_chars = host
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if host.is_ascii() || !host_name_chars {
        return Cow::Borrowed(text);
    }
    match names.to_ascii(host) {
        Some(ascii) if !ascii.is_empty() && ascii.is_ascii() => {
            // `host` is a slice of `text`: where it starts, by address.
            let start = host.as_ptr() as usize - text.as_ptr() as usize;
            let end = start + host.len();
            Cow::Owned(format!("{}{ascii}{}", &text[..start], &text[end..]))
        }
        _ => Cow::Borrowed(text),
    }
}

/// [`with_ascii_host`], in place: `text` changes only when its host did.
pub fn make_ascii(text: &mut String, names: &dyn HostNames) {
    if let Cow::Owned(ascii) = with_ascii_host(text, names) {
        *text = ascii;
    }
}

/// `Url::parse`, with a host that is not ASCII refused first. Without
/// Unicode tables (`idna_adapter` 1.0.0, core/Cargo.toml) the `url` crate
/// could only refuse such a host, and on the way, in a build with debug
/// assertions (the tests, the fuzz targets, the test extension), its
/// adapter asserts the host has no ASCII capital (`map_normalize`): the
/// `pattern` fuzz target found `00X%aa&%0%`. Every URL the core parses
/// goes through here.
pub fn parse_url(text: &str) -> Result<Url, url::ParseError> {
    if special_host_is_ascii(text) {
        Url::parse(text)
    } else {
        Err(url::ParseError::IdnaError)
    }
}

/// Whether the host `Url::parse` would read from `text` is ASCII once
/// percent-decoded, found as the URL standard finds it: spaces and controls
/// trimmed, tabs and newlines dropped, and for the special schemes, the
/// only ones whose hosts go through IDNA, any run of `/` or `\` after the
/// scheme skipped and the authority ended by `/`, `\`, `?` or `#`.
fn special_host_is_ascii(text: &str) -> bool {
    let cleaned: String = text
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let Some((scheme, rest)) = cleaned.split_once(':') else {
        return true;
    };
    if !["http", "https", "ws", "wss", "ftp", "file"]
        .iter()
        .any(|special| scheme.eq_ignore_ascii_case(special))
    {
        return true;
    }
    let rest = rest.trim_start_matches(['/', '\\']);
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let bytes = host.as_bytes();
    host.is_ascii()
        && !bytes.iter().enumerate().any(|(i, &b)| {
            b == b'%'
                && bytes
                    .get(i + 1)
                    .is_some_and(|d| matches!(d, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        })
}

/// Options that change what [`SitePattern::parse`] accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// The user ticked "allow plain http" for this rule.
    pub allow_http: bool,
}

impl SitePattern {
    /// Parses what a user typed. A missing scheme means `https://`.
    pub fn parse(input: &str, options: ParseOptions) -> Result<SitePattern, PatternError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PatternError::Empty);
        }
        if input.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        // The URL parser silently deletes tabs and newlines anywhere in its
        // input, so `exa\nmple.com` would become `example.com`; say so
        // instead.
        if input.chars().any(char::is_control) {
            return Err(PatternError::ControlCharacter);
        }
        if matches!(
            input,
            "*" | "<all_urls>" | "*://*" | "*://*/*" | "*.*" | "*/*"
        ) || input.starts_with("*://")
        {
            return Err(PatternError::AllSites(input.to_owned()));
        }
        if input.contains('\\') {
            // WHATWG treats `\` as `/` in special URLs; a pattern with one
            // means something other than what it shows.
            return Err(PatternError::BadPathCharacter);
        }

        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => {
                let lower = scheme.to_ascii_lowercase();
                let scheme = match lower.as_str() {
                    "https" => Scheme::Https,
                    "http" => Scheme::Http,
                    _ => return Err(PatternError::UnsupportedScheme(scheme.to_owned())),
                };
                (scheme, rest)
            }
            None => {
                // `mailto:x`, `data:…`: a scheme without `//`.
                if let Some((scheme, _)) = input.split_once(':') {
                    if !scheme.is_empty()
                        && scheme.chars().all(|c| c.is_ascii_alphabetic())
                        && !scheme.eq_ignore_ascii_case("localhost")
                        && !input[scheme.len() + 1..].starts_with(|c: char| c.is_ascii_digit())
                    {
                        return Err(PatternError::UnsupportedScheme(scheme.to_owned()));
                    }
                }
                (Scheme::Https, input)
            }
        };

        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(PatternError::Userinfo);
        }
        if tail.contains(['?', '#']) {
            return Err(PatternError::QueryOrFragment);
        }
        if authority.is_empty() {
            return Err(PatternError::NoHost);
        }

        let (host_text, port_text) = split_host_port(authority)?;
        if host_text.is_empty() {
            return Err(PatternError::NoHost);
        }
        if host_text == "*" {
            return Err(PatternError::AllSites(input.to_owned()));
        }
        let port = match port_text {
            None => None,
            Some(p) => Some(parse_port(p)?),
        }
        .filter(|&p| p != scheme.default_port());

        let host = if let Some(suffix) = host_text.strip_prefix("*.") {
            if suffix.contains('*') {
                return Err(PatternError::MisplacedWildcard);
            }
            let canonical = canonical_host(scheme, suffix)?;
            match canonical.1 {
                HostKind::Domain => {}
                HostKind::Ip => return Err(PatternError::WildcardOverIp),
            }
            let canonical = canonical.0;
            // `localhost` is not a public TLD: RFC 6761 reserves it for
            // loopback, so `*.localhost` names only this machine.
            if !canonical.contains('.') && canonical != "localhost" {
                return Err(PatternError::WildcardOverTld(canonical));
            }
            HostPattern::Subdomains(canonical)
        } else {
            if host_text.contains('*') {
                return Err(PatternError::MisplacedWildcard);
            }
            HostPattern::Exact(canonical_host(scheme, host_text)?.0)
        };

        let path = canonical_path(scheme, tail)?;

        let pattern = SitePattern {
            scheme,
            host,
            port,
            path,
        };
        // Percent-encoding can triple a path: the limit holds for the
        // canonical form, which is what is stored and compiled.
        if pattern.to_string().len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        if pattern.scheme == Scheme::Http && !options.allow_http && !pattern.is_loopback() {
            return Err(PatternError::InsecureHttp);
        }
        Ok(pattern)
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Loopback IPs, `localhost` and `*.localhost` never leave the machine,
    /// so plain http is acceptable there without an opt-in.
    pub fn is_loopback(&self) -> bool {
        let host = match &self.host {
            HostPattern::Exact(h) | HostPattern::Subdomains(h) => h.as_str(),
        };
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return ip.is_loopback();
        }
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    }

    /// Whether the pattern needs the "allow plain http" opt-in.
    pub fn needs_http_opt_in(&self) -> bool {
        self.scheme == Scheme::Http && !self.is_loopback()
    }

    /// `scheme://host[:port]` as the browser prints an origin, with `*.` for
    /// a wildcard.
    pub fn origin(&self) -> String {
        let mut out = format!("{}://", self.scheme.as_str());
        match &self.host {
            HostPattern::Exact(h) => out.push_str(h),
            HostPattern::Subdomains(h) => {
                out.push_str("*.");
                out.push_str(h);
            }
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out
    }

    /// The match patterns to request as host permissions: the site's scheme
    /// and its WebSocket scheme. Chromium checks a WebSocket handshake's
    /// host permission against its `ws(s)://` URL, which an `http(s)://`
    /// permission does not cover (seen in Chromium 156; also
    /// requestly/requestly#54). Match patterns cannot name a port or a path
    /// prefix, so these are wider than the rule; the rule's own condition is
    /// what limits where the header goes.
    pub fn host_permissions(&self) -> [String; 2] {
        let host = match &self.host {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Subdomains(h) => format!("*.{h}"),
        };
        [
            format!("{}://{}/*", self.scheme.as_str(), host),
            format!("{}://{}/*", self.scheme.websocket(), host),
        ]
    }

    /// Whether every URL `other` names is one this pattern names: the same
    /// scheme and port, a host this one covers, and a path at or under
    /// this one's prefix.
    pub fn covers(&self, other: &SitePattern) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        let hosts = match (&self.host, &other.host) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Subdomains(d), HostPattern::Exact(b)) => b
                .strip_suffix(d.as_str())
                .is_some_and(|rest| rest.ends_with('.')),
            (HostPattern::Subdomains(d), HostPattern::Subdomains(e)) => {
                e == d
                    || e.strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            (HostPattern::Exact(_), HostPattern::Subdomains(_)) => false,
        };
        let paths = match (&self.path, &other.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => {
                b == a
                    || b.strip_prefix(a.as_str())
                        .is_some_and(|rest| rest.starts_with(is_separator))
            }
        };
        hosts && paths
    }

    /// Whether the URL is inside this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        self.matches_spec(url.as_str())
    }

    /// Whether a canonical URL string, as the browser serializes it, is
    /// inside this pattern. This reads the string the way the compiled
    /// condition does (`|scheme://host[:port]/…`), rather than through a URL
    /// parser: the browser matches its own serialization, and a parser may
    /// refuse hosts the browser accepts, such as invalid punycode
    /// (`xn--pi-7ld.example.com`, which the `url` crate refused while it had
    /// Unicode tables, is matched by Chromium; found by the differential
    /// scope test).
    pub fn matches_spec(&self, spec: &str) -> bool {
        let Some((scheme, authority, after)) = split_spec(spec) else {
            return false;
        };
        if Scheme::of_url(scheme) != Some(self.scheme) {
            return false;
        }
        // The condition anchors the host right after `scheme://`, so user
        // info never matches.
        if authority.contains('@') {
            return false;
        }
        let (host, port) = match split_host_port(authority) {
            Ok((host, None)) => (host, None),
            Ok((host, Some(port))) => match port.parse::<u16>() {
                Ok(port) => (host, Some(port)),
                Err(_) => return false,
            },
            Err(_) => return false,
        };
        // Canonical URLs omit the default port, and ws/wss share the
        // http/https defaults.
        if !self.host.matches(host) || port != self.port {
            return false;
        }
        match &self.path {
            None => after.starts_with('/'),
            Some(prefix) => after
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.chars().next().is_none_or(is_separator)),
        }
    }

    /// Orders patterns so that the most specific wins: an exact host beats a
    /// wildcard, a longer wildcard suffix beats a shorter one, and a longer
    /// path prefix beats a shorter one on the same host. Two distinct
    /// patterns with equal specificity can never match the same URL.
    pub fn specificity(&self) -> u32 {
        let (exact, host_len) = match &self.host {
            HostPattern::Exact(h) => (1, h.len()),
            HostPattern::Subdomains(h) => (0, h.len()),
        };
        let path_len = self.path.as_ref().map_or(0, String::len);
        // host ≤ 253 (+2 for brackets), path < MAX_PATTERN_LEN ≤ 4095: the
        // fields never overlap and the sum stays far below i32::MAX, which
        // is what the browser accepts as a priority.
        (exact << 24) | ((host_len.min(4095) as u32) << 12) | (path_len.min(4095) as u32)
    }
}

impl fmt::Display for SitePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())?;
        f.write_str(self.path.as_deref().unwrap_or(""))?;
        f.write_str("/")
    }
}

/// The class of declarativeNetRequest's `^`: anything but a letter, a digit,
/// `_`, `-`, `.` or `%`. The end of the URL also counts, handled by callers.
/// <https://developer.chrome.com/docs/extensions/reference/api/declarativeNetRequest#property-RuleCondition-urlFilter>
pub fn is_separator(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%'))
}

enum HostKind {
    Domain,
    Ip,
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), PatternError> {
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or_else(|| PatternError::BadHost {
            host: authority.to_owned(),
            reason: HostProblem::UnclosedIpv6,
        })?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(PatternError::BadPort(rest.to_owned())),
            },
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn parse_port(text: &str) -> Result<u16, PatternError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 5 {
        return Err(PatternError::BadPort(text.to_owned()));
    }
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PatternError::BadPort(text.to_owned())),
    }
}

/// Canonicalizes a host the way the browser's URL parser does (lower case,
/// IDNA to punycode, IPv4 in dotted decimal), so the compiled condition
/// compares against exactly what the browser matches.
fn canonical_host(scheme: Scheme, host: &str) -> Result<(String, HostKind), PatternError> {
    if host.ends_with('.') {
        return Err(PatternError::TrailingDot);
    }
    let bad = |reason: HostProblem| PatternError::BadHost {
        host: host.to_owned(),
        reason,
    };
    // The `url` crate is built without Unicode tables (`idna_adapter`
    // 1.0.0, pinned in Cargo.toml): they were 47 kB of each gzipped wasm
    // module. Text a person typed reaches here through `with_ascii_host`.
    if !host.is_ascii() {
        return Err(bad(HostProblem::Unicode));
    }
    let url = parse_url(&format!("{}://{}/", scheme.as_str(), host))
        .map_err(|e| bad(HostProblem::Url(e)))?;
    match url.host() {
        Some(Host::Domain(d)) => {
            if d.is_empty() || d.split('.').any(str::is_empty) {
                return Err(bad(HostProblem::EmptyLabel));
            }
            // The URL standard allows `*`, `$`, `+`, `~` and more in hosts,
            // and decodes `%2A` into `*` after our wildcard check. DNS names
            // never contain them, and in a urlFilter `*` is a wildcard that
            // would cross `/`: accept only what host names are made of.
            // Found by the `pattern` fuzz target.
            if !d.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
            }) {
                return Err(bad(HostProblem::BadCharacter));
            }
            Ok((d.to_owned(), HostKind::Domain))
        }
        Some(Host::Ipv4(ip)) => Ok((ip.to_string(), HostKind::Ip)),
        Some(Host::Ipv6(ip)) => Ok((format!("[{ip}]"), HostKind::Ip)),
        None => Err(PatternError::NoHost),
    }
}

fn canonical_path(scheme: Scheme, tail: &str) -> Result<Option<String>, PatternError> {
    if tail.contains(['*', '^', '|']) {
        return Err(PatternError::BadPathCharacter);
    }
    if tail.is_empty() || tail == "/" {
        return Ok(None);
    }
    let url = parse_url(&format!("{}://host.invalid{}", scheme.as_str(), tail)).map_err(|e| {
        PatternError::BadHost {
            host: tail.to_owned(),
            reason: HostProblem::Url(e),
        }
    })?;
    let path = url.path().trim_end_matches('/');
    // The URL parser may encode characters; check again after it did.
    if path.contains(['*', '^', '|']) {
        return Err(PatternError::BadPathCharacter);
    }
    Ok((!path.is_empty()).then(|| path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_names_only_what_is_inside() {
        let p =
            |s: &str| SitePattern::parse(s, ParseOptions { allow_http: true }).expect("a pattern");
        for (outer, inner) in [
            ("https://*.acme.example", "https://api.acme.example/v1"),
            ("https://*.acme.example", "https://*.eu.acme.example"),
            ("https://api.acme.example", "https://api.acme.example/v1"),
            (
                "https://api.acme.example/v1",
                "https://api.acme.example/v1/models",
            ),
            ("https://api.acme.example/v1", "https://api.acme.example/v1"),
        ] {
            assert!(p(outer).covers(&p(inner)), "{outer} covers {inner}");
        }
        for (outer, inner) in [
            ("https://*.acme.example", "https://acme.example"),
            ("https://*.acme.example", "https://evilacme.example"),
            ("https://api.acme.example", "https://*.api.acme.example"),
            ("https://api.acme.example", "http://api.acme.example"),
            ("https://api.acme.example", "https://api.acme.example:8443"),
            (
                "https://api.acme.example/v1",
                "https://api.acme.example/v10",
            ),
            ("https://api.acme.example/v1", "https://api.acme.example"),
        ] {
            assert!(
                !p(outer).covers(&p(inner)),
                "{outer} does not cover {inner}"
            );
        }
    }

    /// A pattern's host told from its text (what `store::ReadPlan::for_pages`
    /// filters by) keeps every page the pattern contains: hosts exact and wildcard, ports, IPv4 and IPv6,
    /// paths, upper case and international names as typed.
    #[test]
    fn a_pattern_told_from_its_text_keeps_every_page_it_contains() {
        let patterns = [
            "api.example.com",
            "*.example.com",
            "*.b.example.com/v1",
            "http://localhost:8080",
            "http://127.0.0.1:3000/x",
            "http://[::1]:8080",
            "https://[2001:db8::1]",
            "API.Example.COM/Path",
            "bücher.example",
            "*.bücher.example",
        ];
        let pages = [
            "https://api.example.com/",
            "https://api.example.com:443/a",
            "https://x.example.com/",
            "https://a.b.example.com/v1/z",
            "https://example.com/",
            "http://localhost:8080/",
            "http://localhost:9090/",
            "http://127.0.0.1:3000/x/y",
            "http://[::1]:8080/",
            "https://[2001:db8::1]/",
            "https://API.EXAMPLE.COM/Path/q",
            "https://bücher.example/",
            "https://www.bücher.example/",
            "https://user@api.example.com/",
        ];
        let options = ParseOptions { allow_http: true };
        let mut contained = 0;
        for typed in patterns {
            let pattern = SitePattern::parse(&self::typed(typed), options).expect(typed);
            let text = pattern.to_string();
            for page in pages {
                // The browser's own form of the page's URL.
                let spec = crate::matcher::canonical(&self::typed(page)).expect(page);
                if pattern.matches_spec(&spec) {
                    contained += 1;
                    let (Some(written), Some(host)) = (written_host(&text), written_host(&spec))
                    else {
                        continue;
                    };
                    assert!(written_host_matches(written, host), "{text} and {spec}");
                }
            }
        }
        // The cases hold pages that are contained, and some that are not.
        assert!(contained >= 10, "{contained}");
        assert!(!written_host_matches("*.example.com", "example.com"));
        assert!(!written_host_matches("api.example.com", "api.example.org"));
    }

    /// Parses as text a person typed reaches the parser: its host made
    /// ASCII first.
    fn parse(s: &str) -> Result<SitePattern, PatternError> {
        SitePattern::parse(&typed(s), ParseOptions::default())
    }

    fn typed(s: &str) -> String {
        with_ascii_host(s, &crate::service::fakes::PunycodeNames).into_owned()
    }

    /// Counts the hosts it was asked for, and refuses them all.
    #[derive(Default)]
    struct Refusing(std::cell::RefCell<Vec<String>>);

    impl HostNames for Refusing {
        fn to_ascii(&self, host: &str) -> Option<String> {
            self.0.borrow_mut().push(host.to_owned());
            None
        }
    }

    #[test]
    fn a_url_whose_host_is_not_ascii_is_refused_before_the_url_crate_reads_it() {
        // The `pattern` fuzz target's find: a capital beside a
        // percent-encoded byte that is not ASCII reached the assertion of
        // `url`'s ASCII-only IDNA back end.
        assert!(SitePattern::parse("00X%aa&%0%", ParseOptions::default()).is_err());
        for text in [
            "https://X%aa.example/",
            "https://Bü cher.example/",
            "HTTPS:\\\\Xü.example",
            "wss://u@Ab%C3%BC.example:1/x",
            "https:Xü",
            " http://\tXü/",
        ] {
            assert_eq!(parse_url(text), Err(url::ParseError::IdnaError), "{text}");
        }
        // ASCII hosts, hosts percent-encoding ASCII, paths and queries in
        // Unicode, schemes whose hosts are not domains: as before.
        for text in [
            "https://API.example.com/ä?q=ü#ö",
            "https://ex%61mple.com/",
            "mailto:ü@x",
            "chrome-extension://abcdef/ü",
            "http://[::1]:8080/",
        ] {
            assert_eq!(parse_url(text), Url::parse(text), "{text}");
        }
        // Through the other doors: an address to test, an initiator.
        assert_eq!(crate::matcher::canonical("https://Xü%aa.example/"), None);
        assert_eq!(
            crate::initiator::initiator_host("https://Bü%FF.example"),
            None
        );
    }

    #[test]
    fn a_host_in_unicode_is_read_once_made_ascii_by_the_browser() {
        // The parser alone reads ASCII hosts only, and says so.
        assert_eq!(
            SitePattern::parse("https://bücher.example", ParseOptions::default()),
            Err(PatternError::BadHost {
                host: "bücher.example".into(),
                reason: HostProblem::Unicode
            })
        );
        let names = crate::service::fakes::PunycodeNames;
        for (written, ascii) in [
            ("bücher.example", "xn--bcher-kva.example"),
            (
                "  https://Bücher.example/v1 ",
                "https://xn--bcher-kva.example/v1",
            ),
            ("*.bücher.example", "*.xn--bcher-kva.example"),
            (
                "https://*.münchen.example:8443/ä",
                "https://*.xn--mnchen-3ya.example:8443/ä",
            ),
            (
                "http://user@пример.рф/?q",
                "http://user@xn--e1afmkfd.xn--p1ai/?q",
            ),
            ("https://中国.example#f", "https://xn--fiqs8s.example#f"),
            // ASCII hosts are left as they are, whatever else is Unicode.
            ("https://api.example.com/ä", "https://api.example.com/ä"),
            ("https://[::1]:8080", "https://[::1]:8080"),
        ] {
            assert_eq!(with_ascii_host(written, &names), ascii, "{written}");
        }
        let refusing = Refusing::default();
        assert_eq!(
            with_ascii_host("https://bücher.example/", &refusing),
            "https://bücher.example/"
        );
        assert_eq!(*refusing.0.borrow(), ["bücher.example"]);
        // A host with an ASCII character no host name has never reaches the
        // browser's parser, which would read it as a delimiter.
        for junk in [
            "https://bü cher.example",
            "bü%63her.example",
            "https://bü\\x.example",
            "https://bü[x].example",
        ] {
            assert_eq!(with_ascii_host(junk, &refusing), junk.trim());
        }
        assert_eq!(refusing.0.borrow().len(), 1);
        // What the parser then says of a host left in Unicode.
        assert!(matches!(
            parse("https://bü cher.example"),
            Err(PatternError::BadHost {
                reason: HostProblem::Unicode,
                ..
            })
        ));
    }

    fn ok(s: &str) -> SitePattern {
        match parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn canonical_forms() {
        for (input, canonical) in [
            ("https://api.example.com", "https://api.example.com/"),
            ("API.Example.COM", "https://api.example.com/"),
            ("https://api.example.com:443/", "https://api.example.com/"),
            (
                "HTTPS://api.example.com:8443",
                "https://api.example.com:8443/",
            ),
            (
                "https://*.acme.cloud-apps.bentoml.com/",
                "https://*.acme.cloud-apps.bentoml.com/",
            ),
            ("http://127.0.0.1:3000/v1/", "http://127.0.0.1:3000/v1/"),
            ("http://127.0.0.1:3000/v1", "http://127.0.0.1:3000/v1/"),
            ("http://localhost:80/", "http://localhost/"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x/"),
            ("https://bücher.example/", "https://xn--bcher-kva.example/"),
            (
                "https://*.bücher.example",
                "https://*.xn--bcher-kva.example/",
            ),
            ("https://h.example/a b", "https://h.example/a%20b/"),
            ("https://h.example/café", "https://h.example/caf%C3%A9/"),
            ("http://2130706433/", "http://127.0.0.1/"),
            ("localhost:3000", "https://localhost:3000/"),
        ] {
            assert_eq!(ok(input).to_string(), canonical, "{input}");
            assert_eq!(ok(canonical), ok(input), "{input} reparses");
        }
    }

    #[test]
    fn refusals_say_why() {
        for (input, expected) in [
            ("", PatternError::Empty),
            ("   ", PatternError::Empty),
            ("*", PatternError::AllSites("*".into())),
            ("<all_urls>", PatternError::AllSites("<all_urls>".into())),
            ("*://*/*", PatternError::AllSites("*://*/*".into())),
            ("https://*", PatternError::AllSites("https://*".into())),
            ("https://", PatternError::NoHost),
            ("https:///path", PatternError::NoHost),
            ("https://:443", PatternError::NoHost),
            (
                "ftp://example.com",
                PatternError::UnsupportedScheme("ftp".into()),
            ),
            (
                "file:///etc",
                PatternError::UnsupportedScheme("file".into()),
            ),
            (
                "javascript:alert(1)",
                PatternError::UnsupportedScheme("javascript".into()),
            ),
            ("https://user:pw@example.com", PatternError::Userinfo),
            ("https://example.com@evil.test", PatternError::Userinfo),
            ("https://example.com/?q=1", PatternError::QueryOrFragment),
            ("https://example.com/#x", PatternError::QueryOrFragment),
            ("https://example.com:0", PatternError::BadPort("0".into())),
            (
                "https://example.com:65536",
                PatternError::BadPort("65536".into()),
            ),
            ("https://example.com:", PatternError::BadPort("".into())),
            ("https://example.com:8a", PatternError::BadPort("8a".into())),
            ("https://*.com", PatternError::WildcardOverTld("com".into())),
            (
                "https://*.xn--p1ai",
                PatternError::WildcardOverTld("xn--p1ai".into()),
            ),
            ("https://a.*.example.com", PatternError::MisplacedWildcard),
            ("https://*example.com", PatternError::MisplacedWildcard),
            ("https://*.*.example.com", PatternError::MisplacedWildcard),
            ("https://*.127.0.0.1", PatternError::WildcardOverIp),
            ("https://example.com.", PatternError::TrailingDot),
            ("https://example.com/a*b", PatternError::BadPathCharacter),
            ("https://example.com/a^b", PatternError::BadPathCharacter),
            (
                "https://example.com\\@evil.test",
                PatternError::BadPathCharacter,
            ),
            ("http://api.example.com", PatternError::InsecureHttp),
            ("http://10.0.0.5:3000", PatternError::InsecureHttp),
        ] {
            assert_eq!(parse(input), Err(expected), "{input}");
        }
        assert_eq!(parse(&"a".repeat(2000)), Err(PatternError::TooLong));
        let encoded_too_long = format!("https://h.example/{}", "é".repeat(300));
        assert!(encoded_too_long.len() < MAX_PATTERN_LEN);
        assert_eq!(parse(&encoded_too_long), Err(PatternError::TooLong));
        for control in [
            "https://exa\nmple.com",
            "https://example.com/a\tb",
            "https://example.com/\u{1}",
        ] {
            assert_eq!(
                parse(control),
                Err(PatternError::ControlCharacter),
                "{control:?}"
            );
        }
        // Percent-encoded wildcards and other characters the URL standard
        // allows in hosts but DNS does not; `*` would become a urlFilter
        // wildcard.
        for sneaky in [
            "https://%2A6",
            "https://%2a.example.com",
            "https://*.%2A.example.com",
            "https://a$b.example",
            "https://a~b.example",
            "https://a+b.example",
        ] {
            assert!(
                matches!(parse(sneaky), Err(PatternError::BadHost { .. })),
                "{sneaky}: {:?}",
                parse(sneaky)
            );
        }
        assert!(matches!(
            parse("https://exa mple.com"),
            Err(PatternError::BadHost { .. })
        ));
    }

    #[test]
    fn refusals_are_said_to_the_user() {
        let said = |input: &str| parse(input).err().map(|e| text::english(&e.text()));
        assert_eq!(
            said("https://example.com:65536").as_deref(),
            Some("The port “65536” is not valid (1 to 65535).")
        );
        assert_eq!(
            said("https://*.com").as_deref(),
            Some("“*.com” would cover a whole top-level domain; name your own domain, as in *.example.com.")
        );
        assert_eq!(
            said("https://a$b.example").as_deref(),
            Some("The host name “a$b.example” is not valid. It contains characters a host name cannot have.")
        );
        assert_eq!(
            said("https://[::1").as_deref(),
            Some("The host name “[::1” is not valid. The IPv6 address has no closing “]”.")
        );
        assert_eq!(
            said("https://example.com/a*b").as_deref(),
            Some("A path prefix cannot contain “*”, “^”, “|” or “\\”; wildcards are only allowed in the host.")
        );
        assert_eq!(
            said(&"a".repeat(2000)).as_deref(),
            Some("A pattern is at most 1024 characters long, once encoded.")
        );
        // Every refusal is a message of the catalogue, said as a sentence.
        for input in [
            "",
            "*",
            "ftp://x.example",
            "https://",
            "https://u@x.example",
            "https://x.example/?q",
            "https://*.*.x.example",
            "https://*.127.0.0.1",
            "https://x.example.",
            "http://x.example",
            "https://exa\nmple.com",
            "https://exa mple.com",
            "https://[1::2::3]",
        ] {
            let said = said(input).unwrap_or_default();
            assert!(
                said.starts_with(|c: char| c.is_uppercase() || c == '“'),
                "{input:?}: {said}"
            );
        }
    }

    #[test]
    fn http_needs_opt_in_except_on_loopback() {
        for loopback in [
            "http://localhost:3000",
            "http://api.localhost",
            "http://*.apps.localhost:8080",
            "http://*.localhost",
            "http://127.0.0.1:3000",
            "http://127.1.2.3",
            "http://[::1]:9000",
        ] {
            assert!(!ok(loopback).needs_http_opt_in(), "{loopback}");
        }
        let opted = SitePattern::parse("http://10.0.0.5:3000", ParseOptions { allow_http: true });
        assert_eq!(opted.map(|p| p.needs_http_opt_in()), Ok(true));
    }

    #[test]
    fn exact_host_is_anchored() {
        let p = ok("https://api.example.com");
        for inside in [
            "https://api.example.com/",
            "https://api.example.com/any/path?q=1",
            "https://API.EXAMPLE.COM/x",
            "https://api.example.com:443/",
            "wss://api.example.com/socket",
        ] {
            assert!(p.matches(&url(inside)), "{inside}");
        }
        for outside in [
            "https://api.example.com.evil.test/",
            "https://evilapi.example.com/",
            "https://x.api.example.com/",
            "https://example.com/",
            "https://api.example.com@evil.test/",
            "https://user@api.example.com/",
            "https://api.example.com:8443/",
            "http://api.example.com/",
            "ws://api.example.com/",
            "https://api.example.com./",
            "https://api.example.co/",
            "https://evil.test/?https://api.example.com/",
        ] {
            assert!(!p.matches(&url(outside)), "{outside}");
        }
    }

    #[test]
    fn wildcard_covers_subdomains_only() {
        let p = ok("https://*.acme.example.com");
        for inside in [
            "https://a.acme.example.com/",
            "https://x.y.z.acme.example.com/p",
        ] {
            assert!(p.matches(&url(inside)), "{inside}");
        }
        for outside in [
            "https://acme.example.com/",
            "https://evilacme.example.com/",
            "https://a.acme.example.com.evil.test/",
            "https://a.acme.example.com:444/",
            "http://a.acme.example.com/",
        ] {
            assert!(!p.matches(&url(outside)), "{outside}");
        }
    }

    #[test]
    fn path_prefix_ends_at_a_separator() {
        let p = ok("http://127.0.0.1:3000/v1");
        for inside in [
            "http://127.0.0.1:3000/v1",
            "http://127.0.0.1:3000/v1/",
            "http://127.0.0.1:3000/v1/models",
            "http://127.0.0.1:3000/v1?x=1",
            "http://127.0.0.1:3000/v1:predict",
        ] {
            assert!(p.matches(&url(inside)), "{inside}");
        }
        for outside in [
            "http://127.0.0.1:3000/v10",
            "http://127.0.0.1:3000/v1.json",
            "http://127.0.0.1:3000/v1-beta",
            "http://127.0.0.1:3000/v1%2F",
            "http://127.0.0.1:3000/v2/v1",
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3000/V1",
        ] {
            assert!(!p.matches(&url(outside)), "{outside}");
        }
    }

    #[test]
    fn specificity_orders_exact_then_suffix_then_path() {
        let exact = ok("https://a.b.example.com").specificity();
        let exact_path = ok("https://a.b.example.com/v1").specificity();
        let long_wild = ok("https://*.b.example.com/v1/v2/v3").specificity();
        let short_wild = ok("https://*.example.com/v1/v2/v3/v4").specificity();
        assert!(exact_path > exact);
        assert!(exact > long_wild);
        assert!(long_wild > short_wild);
    }

    #[test]
    fn host_permissions_are_match_patterns_for_both_schemes() {
        assert_eq!(
            ok("https://api.example.com:8443/v1").host_permissions(),
            ["https://api.example.com/*", "wss://api.example.com/*"]
        );
        assert_eq!(
            ok("https://*.acme.example.com").host_permissions(),
            ["https://*.acme.example.com/*", "wss://*.acme.example.com/*"]
        );
        assert_eq!(
            ok("http://[::1]:3000").host_permissions(),
            ["http://[::1]/*", "ws://[::1]/*"]
        );
    }
}
