//! The plain HTTP exchange every provider call is made of, and the shared
//! reading of answers: JSON fields with exact error paths, and the mapping
//! of failure statuses to [`ProviderError`].
//!
//! Requests carry the token in a header, and answers to a create carry a
//! new one, so neither type prints headers' values or bodies in `Debug`.

use std::fmt;

use serde_json::{Map, Value};

use super::{AnswerProblem, Expected, ProviderError, Resource};
use crate::credential::Timestamp;
use crate::header::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request, to be sent as is. Headers the browser sets itself (`Host`,
/// `User-Agent`, `Accept-Encoding`, `Content-Length`) are left to it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl HttpRequest {
    pub(crate) fn new(method: Method, url: String) -> HttpRequest {
        HttpRequest {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn body(self, content_type: &str, body: String) -> HttpRequest {
        let mut request = self.header("Content-Type", content_type);
        request.body = Some(body);
        request
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &Names(&self.headers))
            .field("body", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// An answer as the browser received it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn new(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &Names(&self.headers))
            .field("body", &self.body.len())
            .finish()
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Header names only: values may be tokens.
struct Names<'a>(&'a [(String, String)]);

impl fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The body as JSON. Never quotes the body: it may hold a token.
pub(crate) fn json(response: &HttpResponse) -> Result<Value, ProviderError> {
    if response.body.trim().is_empty() {
        return Err(malformed(AnswerProblem::Empty));
    }
    serde_json::from_str(&response.body).map_err(|_| malformed(AnswerProblem::NotJson))
}

pub(crate) fn malformed(problem: AnswerProblem) -> ProviderError {
    ProviderError::Malformed(problem)
}

/// A JSON object being read, with its path for error messages
/// (`items[2].user.name`). Errors name the field and the expected type,
/// never the value.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn of(value: &'a Value, at: &str) -> Result<Obj<'a>, ProviderError> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                at: at.to_owned(),
            }),
            _ if at.is_empty() => Err(malformed(AnswerProblem::NotObject)),
            _ => Err(malformed(AnswerProblem::Wrong {
                field: at.to_owned(),
                expected: Expected::Object,
            })),
        }
    }

    /// Each element of a JSON array, as an object.
    pub(crate) fn each(value: &'a Value, at: &str) -> Result<Vec<Obj<'a>>, ProviderError> {
        let Value::Array(items) = value else {
            return Err(if at.is_empty() {
                malformed(AnswerProblem::NotList)
            } else {
                malformed(AnswerProblem::Wrong {
                    field: at.to_owned(),
                    expected: Expected::List,
                })
            });
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| Obj::of(v, &format!("{at}[{i}]")))
            .collect()
    }

    fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn wrong(&self, key: &str, expected: Expected) -> ProviderError {
        malformed(AnswerProblem::Wrong {
            field: self.path(key),
            expected,
        })
    }

    pub(crate) fn get(&self, key: &str) -> Result<&'a Value, ProviderError> {
        self.map
            .get(key)
            .ok_or_else(|| malformed(AnswerProblem::Missing(self.path(key))))
    }

    /// The official client requires these keys, whatever their values.
    pub(crate) fn require(&self, keys: &[&str]) -> Result<(), ProviderError> {
        keys.iter().try_for_each(|k| self.get(k).map(drop))
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, ProviderError> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.wrong(key, Expected::Text))
    }

    /// Absent, `null` and `""` are all "not given".
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ProviderError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, Expected::Text)),
        }
    }

    pub(crate) fn obj(&self, key: &str) -> Result<Obj<'a>, ProviderError> {
        Obj::of(self.get(key)?, &self.path(key))
    }

    pub(crate) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, ProviderError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Obj::of(v, &self.path(key)).map(Some),
        }
    }

    pub(crate) fn list(&self, key: &str) -> Result<&'a [Value], ProviderError> {
        match self.get(key)? {
            Value::Array(items) => Ok(items),
            _ => Err(self.wrong(key, Expected::List)),
        }
    }

    pub(crate) fn items(&self, key: &str) -> Result<Vec<Obj<'a>>, ProviderError> {
        Obj::each(self.get(key)?, &self.path(key))
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, ProviderError> {
        self.list(key)?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| self.wrong(key, Expected::ListOfText))
    }

    /// A date: an ISO 8601 string, or a number of seconds (milliseconds when
    /// it is too large to be seconds). `null` and `""` are "none".
    pub(crate) fn opt_time(&self, key: &str) -> Result<Option<Timestamp>, ProviderError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Timestamp::parse(s)
                .map(Some)
                .ok_or_else(|| self.wrong(key, Expected::Date)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(ms) if ms.abs() >= 100_000_000_000 => Ok(Some(Timestamp(ms / 1000))),
                Some(secs) => Ok(Some(Timestamp(secs))),
                None => Err(self.wrong(key, Expected::Date)),
            },
            Some(_) => Err(self.wrong(key, Expected::Date)),
        }
    }

    pub(crate) fn time(&self, key: &str) -> Result<Timestamp, ProviderError> {
        self.get(key)?;
        self.opt_time(key)?
            .ok_or_else(|| self.wrong(key, Expected::Date))
    }
}

/// The error for a failed answer, from its status: 401, 403, 404, 429, 5xx,
/// anything else. `what` names what a 404 did not find.
pub(crate) fn failure(response: &HttpResponse, what: Resource) -> ProviderError {
    let reason = reason(&response.body);
    match response.status {
        401 => ProviderError::Unauthorized { reason },
        403 => ProviderError::Forbidden { reason },
        404 => ProviderError::NotFound { what, reason },
        429 => ProviderError::RateLimited {
            retry_after: response
                .header_value("Retry-After")
                .and_then(|s| s.trim().parse().ok()),
        },
        status @ 500..=599 => ProviderError::Server {
            status,
            trace_id: response
                .header_value("x-trace-id")
                .map(|t| t.chars().take(64).collect()),
        },
        status @ 400..=499 => ProviderError::Rejected {
            code: u32::from(status),
            reason,
        },
        status => ProviderError::Unexpected { status },
    }
}

/// The provider's own words about a failure: a JSON `message`, `detail`,
/// `error` or `error_description`, or a short plain-text body. HTML pages
/// and long dumps are not words for the user. Redacted later, by
/// [`ProviderError::redacted`].
pub(crate) fn reason(body: &str) -> Option<String> {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => ["message", "detail", "error", "error_description"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))?
            .to_owned(),
        Ok(Value::String(s)) => s,
        Ok(_) => return None,
        Err(_) if body.trim_start().starts_with('<') => return None,
        Err(_) => body.lines().next().unwrap_or_default().to_owned(),
    };
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    const MAX: usize = 200;
    Some(if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text.to_owned()
    })
}

/// `text` with every occurrence of the secret replaced. A secret too short
/// to replace safely (it could match ordinary words) drops the text.
pub(crate) fn redact(text: &str, secret: &Secret) -> Option<String> {
    let s = secret.expose();
    if !text.contains(s) {
        Some(text.to_owned())
    } else if s.len() >= 4 {
        Some(text.replace(s, "•••"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn debug_shows_no_header_value_or_body() {
        let req = HttpRequest::new(Method::Post, "https://x.example/".into())
            .header("Authorization", "token s3cret-value")
            .body("application/json", r#"{"token":"s3cret-value"}"#.into());
        let resp = HttpResponse::new(200, r#"{"token":"s3cret-value"}"#)
            .with_header("Set-Cookie", "s3cret-value");
        for shown in [format!("{req:?}"), format!("{resp:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert!(format!("{req:?}").contains("Authorization"));
        assert_eq!(
            req.header_value("authorization"),
            Some("token s3cret-value")
        );
    }

    #[test]
    fn reading_names_the_field_never_the_value() {
        let v = json!({"data": {"token": 5, "list": [{"a": "x"}, {"b": "y"}]}});
        let root = Obj::of(&v, "").unwrap_or_else(|e| panic!("{e}"));
        let data = root.obj("data").unwrap_or_else(|e| panic!("{e}"));
        let msg = |r: Result<_, ProviderError>| r.err().map(|e| e.to_string());
        assert_eq!(
            msg(data.str("token").map(drop)).as_deref(),
            Some("the provider's answer could not be read: `data.token` should be text")
        );
        assert_eq!(
            msg(data.str("name").map(drop)).as_deref(),
            Some("the provider's answer could not be read: `data.name` is missing")
        );
        let items = data.items("list").unwrap_or_default();
        assert_eq!(
            msg(items[1].str("a").map(drop)).as_deref(),
            Some("the provider's answer could not be read: `data.list[1].a` is missing")
        );
        assert!(msg(root.obj("missing").map(drop)).is_some());
        assert!(msg(Obj::of(&json!([]), "").map(drop)).is_some());
        assert!(msg(Obj::each(&json!({}), "").map(drop)).is_some());
    }

    #[test]
    fn times_are_read_leniently_but_typed() {
        let v = json!({"iso": "2026-01-01T00:00:00Z", "secs": 1_767_225_600, "ms": 1_767_225_600_000_i64,
                       "null": null, "empty": "", "bad": "soon", "bool": true});
        let o = Obj::of(&v, "").unwrap_or_else(|e| panic!("{e}"));
        let t = Some(Timestamp(1_767_225_600));
        assert_eq!(o.opt_time("iso").ok(), Some(t));
        assert_eq!(o.opt_time("secs").ok(), Some(t));
        assert_eq!(o.opt_time("ms").ok(), Some(t));
        assert_eq!(o.opt_time("null").ok(), Some(None));
        assert_eq!(o.opt_time("empty").ok(), Some(None));
        assert_eq!(o.opt_time("absent").ok(), Some(None));
        assert!(o.opt_time("bad").is_err());
        assert!(o.opt_time("bool").is_err());
        assert!(o.time("null").is_err());
        assert!(o.time("absent").is_err());
    }

    #[test]
    fn failures_map_by_status() {
        let f = |status, body: &str| failure(&HttpResponse::new(status, body), Resource::Token);
        assert_eq!(
            f(401, r#"{"message":"Bad credentials"}"#),
            ProviderError::Unauthorized {
                reason: Some("Bad credentials".into())
            }
        );
        assert_eq!(f(403, ""), ProviderError::Forbidden { reason: None });
        assert_eq!(
            f(404, r#"{"detail":"no such token"}"#),
            ProviderError::NotFound {
                what: Resource::Token,
                reason: Some("no such token".into())
            }
        );
        assert_eq!(
            failure(
                &HttpResponse::new(429, "").with_header("retry-after", "30"),
                Resource::Token
            ),
            ProviderError::RateLimited {
                retry_after: Some(30)
            }
        );
        assert_eq!(
            failure(
                &HttpResponse::new(502, "<html>bad gateway</html>")
                    .with_header("X-Trace-Id", "abc"),
                Resource::Token
            ),
            ProviderError::Server {
                status: 502,
                trace_id: Some("abc".into())
            }
        );
        assert_eq!(
            f(409, "name taken\nstack trace…"),
            ProviderError::Rejected {
                code: 409,
                reason: Some("name taken".into())
            }
        );
        assert_eq!(f(302, ""), ProviderError::Unexpected { status: 302 });
    }

    #[test]
    fn reasons_are_short_plain_words() {
        assert_eq!(reason("<!doctype html><p>401</p>"), None);
        assert_eq!(reason("[1,2]"), None);
        assert_eq!(reason(r#"{"detail":[{"loc":1}]}"#), None);
        assert_eq!(reason("  "), None);
        assert_eq!(reason(r#""quoted""#).as_deref(), Some("quoted"));
        assert_eq!(reason(r#"{"error":"a\u0000b"}"#).as_deref(), Some("a b"));
        assert_eq!(
            reason(&"x".repeat(500)).map(|r| r.chars().count()),
            Some(201)
        );
    }

    #[test]
    fn redaction() {
        let secret = Secret::from_input("tok-123456").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            redact("bad token tok-123456!", &secret).as_deref(),
            Some("bad token •••!")
        );
        let short = Secret::from_input("ab").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(redact("table", &short), None);
        assert_eq!(redact("none", &short).as_deref(), Some("none"));
    }
}
