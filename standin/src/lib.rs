//! Local stand-ins of the four services Tokenward logs in to (BentoCloud,
//! Jina Hubble, Nuclia, Hugging Face) and of a token-protected BentoCloud
//! deployment, for tests and demos.
//!
//! Each stand-in answers as the real service does according to
//! `shared/provider-contracts.md`: the same paths, header names, status
//! codes and JSON shapes, so that the providers' official Python clients
//! accept it too (`official-clients.sh` checks that). Tokens are created,
//! listed and deleted in memory; a token created through a stand-in works
//! for later calls, as a token of the same user.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tokenward_standin::{Fault, Service, StandIns};
//!
//! let standins = StandIns::start().await?;
//! let bento = &standins.seeds().bentocloud;
//! // e.g. GET {bento.url}/api/v1/auth/current with X-YATAI-API-TOKEN: {bento.token}
//! standins.fail_next(Service::BentoCloud, 1, Fault::Status(500));
//! for r in standins.requests(Service::BentoCloud) {
//!     println!("{} {} {:?}", r.method, r.target, r.header("x-yatai-api-token"));
//! }
//! # Ok(()) }
//! ```
//!
//! # Addresses
//!
//! Every service listens on its own OS-assigned port of `127.0.0.1`, and
//! its base URL is `http://127.0.0.1:PORT` ([`StandIns::url`]), with no
//! trailing slash: the clients append `/api/v1/...` to it. Nuclia's zone
//! `origin`, Knowledge Box URL and NUA key issuer all point back at the
//! Nuclia stand-in. The deployment answers any `Host`, so tests can reach
//! it as `http://mydep.acme.localhost:PORT/` (browsers resolve `*.localhost`
//! to loopback).
//!
//! # Requests, faults, logins
//!
//! Every request is recorded ([`StandIns::requests`]). A service can be
//! made to fail ([`StandIns::fail_next`], [`StandIns::fail_until_reset`]):
//! CORS preflights and the stand-ins' own approval pages are never failed.
//! Browser logins (BentoCloud's code flow, Jina's streamed login) wait
//! until someone approves them: on the HTML page the client opens, or with
//! [`StandIns::approve_login`]. Nuclia's `/oauth2/auth` approves at once.
//!
//! # Times
//!
//! Dates are UTC. Naive times in requests (BentoCloud's `expired_at`,
//! Nuclia's `expiration_date`, both the client's local time) are read as
//! UTC, so run the clients with `TZ=UTC` when exact expiry matters.

mod bentocloud;
mod deployment;
mod http;
mod huggingface;
mod jina;
mod nuclia;
mod secret;
mod server;
mod time;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::server::{FaultPlan, Shared, World};

/// One of the stand-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// BentoCloud's REST API (`bentoml cloud login`, `bentoml api-token`).
    BentoCloud,
    /// Jina Hubble's RPC API (`jina-auth`).
    Jina,
    /// Nuclia: accounts API, regional API, Knowledge Box, OAuth server.
    Nuclia,
    /// The Hugging Face Hub API (`hf auth`).
    HuggingFace,
    /// A BentoCloud deployment that wants a valid BentoCloud API token.
    Deployment,
}

impl Service {
    /// Every stand-in, in a fixed order.
    pub const ALL: [Service; 5] = [
        Service::BentoCloud,
        Service::Jina,
        Service::Nuclia,
        Service::HuggingFace,
        Service::Deployment,
    ];

    /// A lowercase name: `bentocloud`, `jina`, `nuclia`, `huggingface`,
    /// `deployment` (the keys of the bin's JSON line).
    pub fn name(self) -> &'static str {
        match self {
            Service::BentoCloud => "bentocloud",
            Service::Jina => "jina",
            Service::Nuclia => "nuclia",
            Service::HuggingFace => "huggingface",
            Service::Deployment => "deployment",
        }
    }

    fn index(self) -> usize {
        match self {
            Service::BentoCloud => 0,
            Service::Jina => 1,
            Service::Nuclia => 2,
            Service::HuggingFace => 3,
            Service::Deployment => 4,
        }
    }
}

/// An injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the service's own error body (BentoCloud
    /// `{"error"}` plus an `X-Trace-Id` on 5xx; Jina `{"status": <hubble
    /// code>, "message", "data": {}}`; Nuclia `{"detail"}`; Hugging Face
    /// `{"error"}`; the deployment plain text). A 429 carries
    /// `Retry-After: 1`.
    Status(u16),
    /// Answer 200 with an HTML page instead of JSON.
    Garbage,
}

/// One request as a stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub service: Service,
    pub method: String,
    /// Path and query, exactly as sent.
    pub target: String,
    /// The `Host` header, as sent.
    pub host: String,
    /// Every header in order, name and value exactly as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        http::path_of(&self.target)
    }

    /// The decoded query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        http::query_of(&self.target, name)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header_in(&self.headers, name)
    }

    /// The header's name as it was sent, to check its exact case.
    pub fn header_name(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, _)| n.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A field of a form-encoded body, decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        http::form_pairs(&self.body_text())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A token held by a stand-in, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// What deleting it takes: BentoCloud's `uid`, Jina's name, Nuclia's
    /// id; Hugging Face's display name.
    pub id: String,
    /// Its name (Nuclia: its description).
    pub name: String,
    pub expires: Option<SystemTime>,
    /// Deleted through the API (deleted tokens stop working).
    pub deleted: bool,
}

/// A token added with [`StandIns::add_token`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// As in [`TokenInfo::id`].
    pub id: String,
    pub secret: String,
}

/// A browser login waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// What [`StandIns::approve_login`] takes: BentoCloud's `code`, Jina's
    /// `state`.
    pub key: String,
    /// The page the official client opens in the browser, with its Approve
    /// button.
    pub page_url: String,
}

/// The seeded BentoCloud account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BentoCloudSeed {
    pub url: String,
    /// A valid API token of alice, no expiry.
    pub token: String,
    pub token_uid: String,
    pub token_name: String,
    /// `alice`
    pub user: String,
    /// `alice@example.com`
    pub email: String,
    /// `acme`
    pub org: String,
}

/// The seeded Jina account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JinaSeed {
    pub url: String,
    /// A valid personal access token, a year to live.
    pub token: String,
    pub token_name: String,
    /// `alice-liddell` (`data.name`)
    pub name: String,
    /// `alice` (`data.nickname`, what the CLI shows)
    pub nickname: String,
}

/// The seeded Nuclia account, Knowledge Box and NUA key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NucliaSeed {
    /// The accounts API, the regional API and the OAuth server, all at once.
    pub url: String,
    /// A valid personal access token (user token), a year to live.
    pub token: String,
    pub token_id: String,
    /// `Alice`
    pub user: String,
    pub email: String,
    pub account_id: String,
    /// `acme`
    pub account_slug: String,
    /// The zone slug, `europe-1`; its `origin` is `url`.
    pub zone: String,
    pub kb_id: String,
    /// `{url}/api/v1/kb/{kb_id}`
    pub kb_url: String,
    /// A service-account key of that Knowledge Box (role `SOWNER`).
    pub kb_key: String,
    /// A NUA key (a JWT whose `iss` is `url`).
    pub nua_key: String,
    pub nua_client_id: String,
    /// The OAuth client id Nuclia's CLI uses.
    pub oauth_client_id: String,
}

/// The seeded Hugging Face account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuggingFaceSeed {
    pub url: String,
    /// A valid `write` token named `token_name`.
    pub token: String,
    pub token_name: String,
    /// `alice`
    pub user: String,
    /// `acme`
    pub org: String,
}

/// The protected deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSeed {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The same server under a deployment-like name,
    /// `http://mydep.acme.localhost:PORT/`.
    pub example_url: String,
    /// Text the 200 page always contains.
    pub ok_marker: String,
}

/// Every stand-in's URL and seeded credentials: what the `standin` bin
/// prints as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    pub bentocloud: BentoCloudSeed,
    pub jina: JinaSeed,
    pub nuclia: NucliaSeed,
    pub huggingface: HuggingFaceSeed,
    pub deployment: DeploymentSeed,
}

/// Text in the deployment's 200 page.
pub const DEPLOYMENT_OK: &str = "Stand-in deployment OK";

/// The running stand-ins. Dropping it stops them.
#[derive(Debug)]
pub struct StandIns {
    urls: [String; 5],
    seeds: Seeds,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl StandIns {
    /// Binds one OS-assigned port of 127.0.0.1 per service, seeds the
    /// accounts and starts serving on the current tokio runtime (which must
    /// keep running: use a multi-threaded runtime if the caller blocks).
    pub async fn start() -> std::io::Result<StandIns> {
        let mut listeners = Vec::with_capacity(5);
        let mut urls: [String; 5] = Default::default();
        for service in Service::ALL {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            urls[service.index()] = format!("http://127.0.0.1:{port}");
            listeners.push((service, listener));
        }
        let url = |s: Service| urls[s.index()].clone();
        let (bento, bento_seed) = bentocloud::State::new(url(Service::BentoCloud));
        let (jina, jina_seed) = jina::State::new(url(Service::Jina));
        let (nuclia, nuclia_seed) = nuclia::State::new(url(Service::Nuclia));
        let (hf, hf_seed) = huggingface::State::new(url(Service::HuggingFace));
        let port = listeners[Service::Deployment.index()]
            .1
            .local_addr()?
            .port();
        let seeds = Seeds {
            bentocloud: bento_seed,
            jina: jina_seed,
            nuclia: nuclia_seed,
            huggingface: hf_seed,
            deployment: DeploymentSeed {
                url: url(Service::Deployment),
                example_url: format!("http://mydep.acme.localhost:{port}/"),
                ok_marker: DEPLOYMENT_OK.to_owned(),
            },
        };
        let shared = Arc::new(Shared {
            world: Mutex::new(World {
                bento,
                jina,
                nuclia,
                hf,
                faults: Default::default(),
                log: Vec::new(),
                stopped: false,
            }),
        });
        let tasks = listeners
            .into_iter()
            .map(|(service, listener)| {
                tokio::spawn(server::serve(listener, service, Arc::clone(&shared)))
            })
            .collect();
        Ok(StandIns {
            urls,
            seeds,
            shared,
            tasks,
        })
    }

    /// The service's base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self, service: Service) -> &str {
        &self.urls[service.index()]
    }

    /// The service's port on 127.0.0.1.
    pub fn port(&self, service: Service) -> u16 {
        self.urls[service.index()]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// The seeded users, organizations and valid tokens.
    pub fn seeds(&self) -> &Seeds {
        &self.seeds
    }

    /// Adds a valid token of the seeded user: a BentoCloud API token
    /// (scope `api`), a Jina personal access token, a Nuclia personal
    /// access token (`name` is its description) or a Hugging Face token
    /// (`name` is its display name). `expires` may be in the past, for
    /// expired-token tests; a Jina token without expiry gets ten years,
    /// because Jina tokens always expire.
    ///
    /// # Panics
    ///
    /// For [`Service::Deployment`], which has no tokens of its own (it
    /// accepts BentoCloud's).
    pub fn add_token(
        &self,
        service: Service,
        name: &str,
        expires: Option<SystemTime>,
    ) -> IssuedToken {
        let expires = expires.map(time::from_system);
        let mut world = self.shared.lock();
        match service {
            Service::BentoCloud => world.bento.add_token(name, expires),
            Service::Jina => world.jina.add_token(name, expires),
            Service::Nuclia => world.nuclia.add_token(name, expires),
            Service::HuggingFace => world.hf.add_token(name, expires),
            Service::Deployment => {
                panic!("the deployment has no tokens: add a BentoCloud token")
            }
        }
    }

    /// How long Nuclia's OAuth access tokens issued from now on live.
    pub fn set_nuclia_access_seconds(&self, seconds: i64) {
        self.shared.lock().nuclia.set_access_seconds(seconds);
    }

    /// Adds a service-account key of the seeded Knowledge Box.
    pub fn add_nuclia_kb_key(&self, expires: Option<SystemTime>) -> String {
        self.shared
            .lock()
            .nuclia
            .add_kb_key(expires.map(time::from_system))
    }

    /// Makes the token with this secret expire now, whichever service holds
    /// it (Nuclia: also KB keys and OAuth access tokens). `false` if no
    /// stand-in knows it.
    pub fn expire_token(&self, secret: &str) -> bool {
        let now = time::now() - 1;
        let mut world = self.shared.lock();
        world.bento.expire(secret, now)
            | world.jina.expire(secret, now)
            | world.nuclia.expire(secret, now)
            | world.hf.expire(secret, now)
    }

    /// The tokens a service holds, deleted ones included (Nuclia: personal
    /// access tokens only).
    pub fn tokens(&self, service: Service) -> Vec<TokenInfo> {
        let world = self.shared.lock();
        match service {
            Service::BentoCloud => world.bento.tokens(),
            Service::Jina => world.jina.tokens(),
            Service::Nuclia => world.nuclia.tokens(),
            Service::HuggingFace => world.hf.tokens(),
            Service::Deployment => Vec::new(),
        }
    }

    /// Makes the service answer its next `n` requests with `fault`.
    pub fn fail_next(&self, service: Service, n: usize, fault: Fault) {
        self.shared.lock().faults[service.index()] = (n > 0).then_some(FaultPlan {
            fault,
            remaining: Some(n),
        });
    }

    /// Makes the service answer every request with `fault` until
    /// [`StandIns::reset_faults`].
    pub fn fail_until_reset(&self, service: Service, fault: Fault) {
        self.shared.lock().faults[service.index()] = Some(FaultPlan {
            fault,
            remaining: None,
        });
    }

    /// Ends any injected failure of the service.
    pub fn reset_faults(&self, service: Service) {
        self.shared.lock().faults[service.index()] = None;
    }

    /// Every request the service received, in order.
    pub fn requests(&self, service: Service) -> Vec<Recorded> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.service == service)
            .cloned()
            .collect()
    }

    /// Forgets every recorded request, of every service.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Waits until the service has received a request satisfying `pred`;
    /// `None` after `timeout`.
    pub async fn wait_for_request(
        &self,
        service: Service,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .shared
                .lock()
                .log
                .iter()
                .find(|r| r.service == service && pred(r))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Browser logins started and not yet approved (BentoCloud and Jina).
    pub fn pending_logins(&self, service: Service) -> Vec<PendingLogin> {
        let world = self.shared.lock();
        match service {
            Service::BentoCloud => world.bento.pending_logins(),
            Service::Jina => world.jina.pending_logins(),
            _ => Vec::new(),
        }
    }

    /// Approves a pending browser login, as clicking Approve on its page
    /// does. `false` if there is no such pending login.
    pub fn approve_login(&self, service: Service, key: &str) -> bool {
        let mut world = self.shared.lock();
        match service {
            Service::BentoCloud => world.bento.approve(key),
            Service::Jina => world.jina.approve(key),
            _ => false,
        }
    }

    /// Approves every pending login of the service; how many there were.
    pub fn approve_all_logins(&self, service: Service) -> usize {
        self.pending_logins(service)
            .iter()
            .filter(|l| self.approve_login(service, &l.key))
            .count()
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        for t in &self.tasks {
            t.abort();
        }
    }
}
