//! The listener loop shared by every stand-in: read a request, record it,
//! answer CORS preflights, apply an injected fault, else route it to the
//! service.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::http::{self, ReadError, Request, Response};
use crate::{bentocloud, deployment, huggingface, jina, nuclia, Fault, Recorded, Service};

/// An injected failure and how many more requests it applies to.
#[derive(Debug, Clone)]
pub(crate) struct FaultPlan {
    pub(crate) fault: Fault,
    /// `None`: until reset.
    pub(crate) remaining: Option<usize>,
}

/// Everything the stand-ins hold, behind one lock.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) bento: bentocloud::State,
    pub(crate) jina: jina::State,
    pub(crate) nuclia: nuclia::State,
    pub(crate) hf: huggingface::State,
    pub(crate) faults: [Option<FaultPlan>; 5],
    pub(crate) log: Vec<Recorded>,
    /// Set when the [`crate::StandIns`] is dropped: open streams end.
    pub(crate) stopped: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock (a bug) must not take every later
        // test down with a poisoned-lock panic.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a route answers.
#[derive(Debug)]
pub(crate) enum Outcome {
    Respond(Response),
    /// Jina's `proxiedAuthorize` NDJSON stream for the login with this state.
    JinaAuthorize {
        state: String,
    },
}

impl From<Response> for Outcome {
    fn from(r: Response) -> Outcome {
        Outcome::Respond(r)
    }
}

pub(crate) async fn serve(listener: TcpListener, service: Service, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(connection(stream, service, shared));
    }
}

async fn connection(stream: TcpStream, service: Service, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    let read = tokio::time::timeout(http::READ_TIMEOUT, async {
        let (mut request, expect_continue) = http::read_request(&mut reader).await?;
        if expect_continue {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        http::read_body(&mut reader, &mut request).await?;
        Ok::<Request, ReadError>(request)
    })
    .await;
    let mut stream = reader.into_inner();
    let request = match read {
        Ok(Ok(request)) => request,
        Ok(Err(ReadError::Bad(status, why))) => {
            http::write_response(&mut stream, &Response::text(status, why), false).await;
            return;
        }
        Ok(Err(ReadError::Closed)) | Err(_) => return,
    };
    let head_only = request.method == "HEAD";
    let outcome = {
        let mut world = shared.lock();
        world.log.push(Recorded {
            service,
            method: request.method.clone(),
            target: request.target.clone(),
            host: request.header("host").unwrap_or_default().to_owned(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
        answer(&mut world, service, &request)
    };
    match outcome {
        Outcome::Respond(response) => {
            let response = with_cors(response, &request);
            http::write_response(&mut stream, &response, head_only).await;
        }
        Outcome::JinaAuthorize { state } => {
            let headers = with_cors(Response::empty(200), &request).headers;
            jina::authorize_stream(&mut stream, &shared, &state, headers).await;
        }
    }
}

fn answer(world: &mut World, service: Service, request: &Request) -> Outcome {
    if request.method == "OPTIONS" {
        return preflight(request).into();
    }
    let page = match service {
        Service::BentoCloud => bentocloud::is_page(request),
        Service::Jina => jina::is_page(request),
        _ => false,
    };
    if !page {
        if let Some(fault) = world.take_fault(service) {
            return fault_response(service, &fault).into();
        }
    }
    match service {
        Service::BentoCloud => world.bento.route(request).into(),
        Service::Jina => world.jina.route(request),
        Service::Nuclia => world.nuclia.route(request).into(),
        Service::HuggingFace => world.hf.route(request).into(),
        Service::Deployment => deployment::route(&mut world.bento, request).into(),
    }
}

impl World {
    fn take_fault(&mut self, service: Service) -> Option<Fault> {
        let slot = &mut self.faults[service.index()];
        let plan = slot.as_mut()?;
        let fault = plan.fault.clone();
        if let Some(n) = plan.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                *slot = None;
            }
        }
        Some(fault)
    }
}

/// A failure as the service would give it: its own error body for a
/// status, or a 200 HTML page (a captive portal, a gateway's maintenance
/// page) for garbage.
fn fault_response(service: Service, fault: &Fault) -> Response {
    match *fault {
        Fault::Garbage => Response::html(
            200,
            "<!doctype html><html><body><h1>Down for maintenance</h1></body></html>".to_owned(),
        ),
        Fault::Status(status) => {
            let message = format!("injected failure (HTTP {status})");
            let response = match service {
                Service::BentoCloud => {
                    let r = Response::json(status, &json!({"error": message}));
                    if status >= 500 {
                        r.with_header("X-Trace-Id", "standin-trace-0001")
                    } else {
                        r
                    }
                }
                Service::Jina => jina::error(status, jina::hubble_code(status), &message),
                Service::Nuclia => Response::json(status, &json!({"detail": message})),
                Service::HuggingFace => Response::json(status, &json!({"error": message})),
                Service::Deployment => Response::text(status, &message),
            };
            if status == 429 {
                response.with_header("Retry-After", "1")
            } else {
                response
            }
        }
    }
}

/// A CORS preflight answer that allows what was asked, from any origin.
fn preflight(request: &Request) -> Response {
    let mut r = Response::empty(204).with_header(
        "Access-Control-Allow-Methods",
        "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    );
    if let Some(h) = request.header("access-control-request-headers") {
        r = r.with_header("Access-Control-Allow-Headers", h);
    }
    r.with_header("Access-Control-Allow-Private-Network", "true")
        .with_header("Access-Control-Max-Age", "0")
}

/// CORS on every answer: the requesting origin is allowed, with
/// credentials; without an `Origin`, any origin.
fn with_cors(mut response: Response, request: &Request) -> Response {
    match request.header("origin") {
        Some(origin) => {
            response = response
                .with_header("Access-Control-Allow-Origin", origin)
                .with_header("Access-Control-Allow-Credentials", "true");
        }
        None => response = response.with_header("Access-Control-Allow-Origin", "*"),
    }
    response.with_header("Vary", "Origin").with_header(
        "Access-Control-Expose-Headers",
        "X-Trace-Id, Retry-After, WWW-Authenticate, Location",
    )
}
