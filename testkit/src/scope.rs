//! Rules and URLs for scope tests: a varied rule set, and URLs in every
//! family that has leaked tokens in header extensions (lookalike hosts, user
//! info, ports, schemes, IDN homographs, case, trailing dots, percent
//! encoding, path boundaries, deep subdomains, IP forms, localhost), plus
//! random mixtures. Deterministic for a seed, so a failure can be replayed.

/// A rule of the scope suite: the pattern as a user types it, and whether
/// it opts in to plain http.
#[derive(Debug)]
pub struct ScopeRule {
    pub pattern: &'static str,
    pub allow_http: bool,
    /// Who may use the header: `None` is any site; `Some(also)` is the
    /// same-site policy with those other sites.
    pub same_site: Option<&'static [&'static str]>,
}

impl ScopeRule {
    /// The rule as the editor would submit it, with a bearer token.
    pub fn draft(&self) -> tokenward_core::rules::RuleDraft {
        let mut draft = bearer_draft(self.pattern, self.allow_http, "scope-token");
        match self.same_site {
            None => draft.any_site = true,
            Some(also) => draft.also_from = also.iter().map(|s| (*s).to_owned()).collect(),
        }
        draft
    }
}

/// One request to a URL, as a browser's rule engine is asked about it:
/// the page that made it (none for a typed address), its method and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    pub initiator: Option<String>,
    pub method: &'static str,
    pub kind: &'static str,
}

/// Pages requests come from: none, an opaque origin, the rules' own
/// sites, listed companions, their subdomains, and strangers, on other
/// ports and schemes too.
const INITIATORS: &[Option<&str>] = &[
    None,
    Some("data:text/html,x"),
    Some("https://api.example.localhost"),
    Some("http://api.example.localhost:8080"),
    Some("https://app.example.localhost"),
    Some("https://deep.app.example.localhost"),
    Some("https://x.apps.example.localhost"),
    Some("https://example.localhost"),
    Some("https://evil.localhost"),
    Some("http://127.0.0.1:9999"),
    Some("http://localhost:3000"),
    Some("http://[::1]:1234"),
    Some("https://svc.localhost"),
];

/// The requests asked about for the `i`-th URL: the user's own navigation,
/// and two more drawn from every initiator, method and kind, so that each
/// combination occurs often over a run. A `ws(s)` URL is a handshake, made
/// by a page.
pub fn requests(url: &str, i: usize) -> Vec<ScopeRequest> {
    if url.starts_with("ws") {
        return (0..2)
            .map(|k| ScopeRequest {
                initiator: INITIATORS[1 + (i * 2 + k) % (INITIATORS.len() - 1)].map(str::to_owned),
                method: "get",
                kind: "websocket",
            })
            .collect();
    }
    const KINDS: &[&str] = &["main_frame", "sub_frame", "xmlhttprequest", "image"];
    const METHODS: &[&str] = &["get", "post", "head", "put"];
    let mut out = vec![ScopeRequest {
        initiator: None,
        method: "get",
        kind: "main_frame",
    }];
    for k in 0..2 {
        let n = i * 2 + k;
        out.push(ScopeRequest {
            initiator: INITIATORS[n % INITIATORS.len()].map(str::to_owned),
            method: METHODS[(n / INITIATORS.len()) % METHODS.len()],
            kind: KINDS[(n / 7) % KINDS.len()],
        });
    }
    out
}

/// A draft for `pattern` sending `Authorization: Bearer <secret>`.
pub fn bearer_draft(
    pattern: &str,
    allow_http: bool,
    secret: &str,
) -> tokenward_core::rules::RuleDraft {
    tokenward_core::rules::RuleDraft {
        pattern: pattern.to_owned(),
        allow_http,
        enabled: true,
        headers: vec![tokenward_core::rules::HeaderDraft {
            name: "Authorization".into(),
            scheme: "bearer".into(),
            secret: secret.into(),
            credential: None,
        }],
        ..tokenward_core::rules::RuleDraft::default()
    }
}

/// Overlapping on purpose: exact inside wildcard, path inside origin, the
/// same host on several ports and schemes, IDN and IP hosts. Every host is
/// under `localhost` or a loopback IP, which the test build holds host
/// permissions for: Firefox's `testMatchOutcome` leaves out rules for sites
/// without permission (Chromium's does not), and the differential test must
/// see the rules themselves.
pub const RULES: &[ScopeRule] = &[
    ScopeRule {
        pattern: "https://api.example.localhost",
        allow_http: false,
        same_site: Some(&["https://app.example.localhost"]),
    },
    ScopeRule {
        pattern: "https://api.example.localhost/v1",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://*.apps.example.localhost",
        allow_http: false,
        same_site: None,
    },
    ScopeRule {
        pattern: "https://*.apps.example.localhost:8443/v2",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://*.example.localhost",
        allow_http: false,
        same_site: Some(&["svc.localhost"]),
    },
    ScopeRule {
        pattern: "http://api.example.localhost",
        allow_http: true,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "http://127.0.0.1:3000",
        allow_http: false,
        same_site: Some(&["http://localhost:3000"]),
    },
    ScopeRule {
        pattern: "http://[::1]:8080/api",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "http://localhost:5000",
        allow_http: false,
        same_site: None,
    },
    ScopeRule {
        pattern: "http://*.svc.localhost",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://bücher.localhost",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://xn--80ak6aa92e.localhost",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://deep.a.b.c.example.localhost/x/y",
        allow_http: false,
        same_site: Some(&[]),
    },
    ScopeRule {
        pattern: "https://Example.localhost:444/Path",
        allow_http: false,
        same_site: Some(&[]),
    },
];

/// The hosts the families are built around.
const HOSTS: &[&str] = &[
    "api.example.localhost",
    "x.apps.example.localhost",
    "apps.example.localhost",
    "example.localhost",
    "127.0.0.1",
    "[::1]",
    "localhost",
    "a.svc.localhost",
    "bücher.localhost",
    "xn--bcher-kva.localhost",
    "xn--80ak6aa92e.localhost",
    "deep.a.b.c.example.localhost",
    "other.localhost",
];

const SCHEMES: &[&str] = &["https", "http", "wss", "ws"];
const PORTS: &[&str] = &[
    "", ":443", ":80", ":8443", ":3000", ":8080", ":5000", ":444", ":1",
];
const PATHS: &[&str] = &[
    "/",
    "/v1",
    "/v1/",
    "/v1/models",
    "/v10",
    "/v1.json",
    "/v1-beta",
    "/v1~x",
    "/v1;p",
    "/v1:run",
    "/V1",
    "/v%31",
    "/%76%31/x",
    "/v1%2F",
    "/v2",
    "/v2/x",
    "/api",
    "/api/",
    "/apix",
    "/x/y",
    "/x/y/z",
    "/x/yz",
    "/Path",
    "/path",
    "/Path/sub",
];
const QUERIES: &[&str] = &["", "?q=1", "?https://api.example.localhost/", "#frag"];

/// One URL and the family it belongs to, for the per-family counts.
#[derive(Debug)]
pub struct ScopeUrl {
    pub family: &'static str,
    pub url: String,
}

/// A small xorshift generator: reproducible across machines, no dependency.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// Every family, exhaustively over the hosts, then `random` mixtures.
pub fn urls(seed: u64, random: usize) -> Vec<ScopeUrl> {
    let mut out = Vec::new();
    let mut add = |family: &'static str, url: String| out.push(ScopeUrl { family, url });
    for host in HOSTS {
        for scheme in SCHEMES {
            // Lookalike hosts.
            for fake in [
                format!("{host}.evil.localhost"),
                format!("{host}.evil.test"),
                format!("evil{host}"),
                format!("evil-{host}"),
                host.replace(".localhost", ".localhos"),
                host.replace('.', "-"),
            ] {
                add("lookalike host", format!("{scheme}://{fake}/"));
            }
            // User info, including the backslash trick.
            for url in [
                format!("{scheme}://{host}@evil.localhost/"),
                format!("{scheme}://user:pw@{host}/"),
                format!("{scheme}://user@{host}/v1"),
                format!("{scheme}://evil.localhost\\@{host}/"),
                format!("{scheme}://{host}:443@evil.localhost/"),
            ] {
                add("userinfo", url);
            }
            for port in PORTS {
                add("port", format!("{scheme}://{host}{port}/"));
                add("port", format!("{scheme}://{host}{port}/v1"));
            }
            add("case", format!("{scheme}://{}/", host.to_uppercase()));
            add("case", format!("{scheme}://{}/V1", host.to_uppercase()));
            add("trailing dot", format!("{scheme}://{host}./"));
            add("trailing dot", format!("{scheme}://{host}.:443/v1"));
            for path in PATHS {
                add("path boundary", format!("{scheme}://{host}{path}"));
            }
            for deep in ["a.", "a.b.", "a.b.c.d.e.", "x-y."] {
                add("deep subdomain", format!("{scheme}://{deep}{host}/"));
            }
        }
    }
    // Homographs: Cyrillic letters that look Latin, raw and as punycode.
    for (scheme, url) in SCHEMES.iter().flat_map(|s| {
        [
            "аpi.example.localhost", // Cyrillic а
            "api.exаmple.localhost", // Cyrillic а in the parent name
            "аррӏе.localhost",       // the xn--80ak6aa92e homograph
            "xn--pi-7ld.example.localhost",
            "bucher.localhost",
            "BÜCHER.localhost",
        ]
        .map(|h| (*s, h))
    }) {
        add("IDN and punycode", format!("{scheme}://{url}/"));
    }
    // IP forms the URL standard normalises, or not.
    for scheme in SCHEMES {
        for ip in [
            "127.0.0.1:3000",
            "127.1:3000",
            "0x7f.0.0.1:3000",
            "2130706433:3000",
            "0177.0.0.1:3000",
            "127.0.0.2:3000",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:8080",
            "[::ffff:127.0.0.1]:8080",
            "[::1]:8081",
            "localhost:5000",
            "LOCALHOST:5000",
            "localhost.:5000",
            "a.localhost:5000",
        ] {
            add("IP and localhost", format!("{scheme}://{ip}/api"));
            add("IP and localhost", format!("{scheme}://{ip}/"));
        }
    }
    let mut rng = Rng::new(seed);
    for _ in 0..random {
        let prefix = *rng.pick(&["", "", "", "x.", "a.b.", "evil"]);
        let suffix = *rng.pick(&["", "", "", ".evil.localhost", ".evil.test", "."]);
        let userinfo = *rng.pick(&["", "", "", "", "u@", "u:p@"]);
        let url = format!(
            "{}://{userinfo}{prefix}{}{suffix}{}{}{}",
            rng.pick(SCHEMES),
            rng.pick(HOSTS),
            rng.pick(PORTS),
            rng.pick(PATHS),
            rng.pick(QUERIES),
        );
        add("random", url);
    }
    out
}
