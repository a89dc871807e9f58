//! The OpenID provider of the provider e2e tests: `oidc-provider` (a
//! certified OpenID Connect implementation, from npm) under Node, with a
//! protected resource that checks every Bearer token by introspection at
//! that provider (`standin/oidc/server.mjs`). `cargo xtask test` installs
//! its packages and names the script and Node in `TOKENWARD_OIDC_STANDIN`
//! and `TOKENWARD_NODE`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A running provider and resource; stopped on drop, so a failed test
/// leaves no Node process behind.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    events: Arc<Mutex<Vec<Json>>>,
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The protected deployment, `http://127.0.0.1:<port>`: `/` is a page
    /// that calls `/api/whoami` every 500 ms; `/api/*` answers 200 only to
    /// a Bearer token the provider says is active.
    pub resource: String,
}

impl OidcProvider {
    /// Starts it with one client, `tokenward`, whose redirect URI is
    /// `redirect_uri`, and access tokens that live `access_ttl` seconds.
    pub fn start(redirect_uri: &str, access_ttl: u64) -> OidcProvider {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the provider e2e tests with cargo xtask test")
            })
        };
        let mut child = Command::new(var("TOKENWARD_NODE"))
            .arg(var("TOKENWARD_OIDC_STANDIN"))
            .args(["--redirect-uri", redirect_uri])
            .args(["--access-ttl", &access_ttl.to_string()])
            // Held open: the script exits when its stdin closes.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the OpenID provider: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Json>(&line) {
                    sink.lock().expect("events").push(event);
                }
            }
        });
        let mut provider = OidcProvider {
            child,
            events,
            issuer: String::new(),
            resource: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = loop {
            if let Some(ready) = provider.events("ready").first().cloned() {
                break ready;
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                panic!("the OpenID provider exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "the OpenID provider was not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let field = |k: &str| ready[k].as_str().expect("ready line field").to_owned();
        provider.issuer = field("issuer");
        provider.resource = field("resource");
        provider
    }

    /// The events of one kind so far (`request`, `token`, `refused`), in
    /// order.
    pub fn events(&self, kind: &str) -> Vec<Json> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }

    /// From now on the token endpoint answers `400 invalid_grant`, as a
    /// provider does once the user's grant was revoked.
    pub async fn refuse_tokens(&self) {
        let host = self.resource.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let request = format!(
            "POST /control/refuse-tokens HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
