//! Header actions: which header a rule sets or removes, and how its value is
//! built from a scheme and a secret.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::text;
use crate::text::{Localize, Text};

/// The most headers one rule may carry; more is a mistake, not a use case.
pub const MAX_HEADERS_PER_RULE: usize = 16;
/// Longest accepted secret. JWTs with many claims reach a few KB.
pub const MAX_SECRET_LEN: usize = 8192;

/// Why a header was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("enter a header name, such as Authorization")]
    EmptyName,
    #[error("`{0}` is not a valid header name: use letters, digits and - only")]
    BadName(String),
    #[error("the browser does not let extensions set the `{0}` header")]
    ForbiddenName(String),
    #[error("enter the token or secret to send")]
    EmptySecret,
    #[error("the secret contains a line break or NUL character, which would let it inject other headers; paste it again without one")]
    ControlCharacter,
    #[error(
        "the secret contains a character headers cannot carry; only printable ASCII is allowed"
    )]
    NonAscii,
    #[error("the secret is longer than {MAX_SECRET_LEN} characters")]
    TooLong,
    #[error("for Basic, enter user:password, or the ready base64 value")]
    BadBasic,
    #[error("a rule can carry at most {MAX_HEADERS_PER_RULE} headers")]
    TooManyHeaders,
    #[error("the header `{0}` appears twice in this rule")]
    DuplicateName(String),
    #[error("add at least one header to the rule")]
    NoHeaders,
}

impl Localize for HeaderError {
    fn text(&self) -> Text {
        match self {
            HeaderError::EmptyName => text!("error_header_empty_name"),
            HeaderError::BadName(name) => text!("error_header_bad_name", name),
            HeaderError::ForbiddenName(name) => text!("error_header_forbidden_name", name),
            HeaderError::EmptySecret => text!("error_header_empty_secret"),
            HeaderError::ControlCharacter => text!("error_header_control_character"),
            HeaderError::NonAscii => text!("error_header_non_ascii"),
            HeaderError::TooLong => text!("error_header_too_long", MAX_SECRET_LEN),
            HeaderError::BadBasic => text!("error_header_bad_basic"),
            HeaderError::TooManyHeaders => {
                text!("error_header_too_many_headers", MAX_HEADERS_PER_RULE)
            }
            HeaderError::DuplicateName(name) => text!("error_header_duplicate_name", name),
            HeaderError::NoHeaders => text!("error_header_no_headers"),
        }
    }
}

/// An HTTP field name (RFC 9110 `token`). Keeps the user's spelling for
/// display; comparisons ignore case, as HTTP does.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderName(String);

impl HeaderName {
    pub fn new(name: &str) -> Result<HeaderName, HeaderError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(HeaderError::EmptyName);
        }
        if !name.bytes().all(is_tchar) {
            return Err(HeaderError::BadName(name.chars().take(64).collect()));
        }
        // Setting these breaks the request framing or is ignored by the
        // network stack; refuse rather than pretend.
        const FORBIDDEN: [&str; 6] = [
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "upgrade",
            "te",
        ];
        if FORBIDDEN.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            return Err(HeaderError::ForbiddenName(name.to_owned()));
        }
        Ok(HeaderName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn same_as(&self, other: &HeaderName) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl TryFrom<String> for HeaderName {
    type Error = HeaderError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        HeaderName::new(&value)
    }
}

impl From<HeaderName> for String {
    fn from(value: HeaderName) -> Self {
        value.0
    }
}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A secret: a token, key or password. Never printed by `Debug` or
/// `Display`, never part of an error.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Takes a pasted secret. Surrounding white space is dropped (a copied
    /// token often ends in a newline); anything that could break out of a
    /// header value is refused.
    pub fn from_input(input: &str) -> Result<Secret, HeaderError> {
        let trimmed = input.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        if trimmed.is_empty() {
            return Err(HeaderError::EmptySecret);
        }
        check_value(trimmed)?;
        Ok(Secret(trimmed.to_owned()))
    }

    /// The secret itself, for building the header value. Callers must not
    /// log or display it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A hint that lets the user tell secrets apart without revealing them:
    /// the last four characters of a long secret, nothing of a short one.
    pub fn hint(&self) -> String {
        const DOTS: &str = "••••••••";
        let n = self.0.chars().count();
        if n >= 16 {
            let tail: String = self.0.chars().skip(n - 4).collect();
            format!("{DOTS}{tail}")
        } else {
            DOTS.to_owned()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A header value must not carry CR, LF or NUL (header injection), nor other
/// control or non-ASCII characters (the browser refuses them, or mangles
/// them differently per browser).
fn check_value(value: &str) -> Result<(), HeaderError> {
    if value.len() > MAX_SECRET_LEN {
        return Err(HeaderError::TooLong);
    }
    for c in value.chars() {
        match c {
            '\r' | '\n' | '\0' => return Err(HeaderError::ControlCharacter),
            '\t' | ' '..='~' => {}
            c if c.is_control() => return Err(HeaderError::ControlCharacter),
            _ => return Err(HeaderError::NonAscii),
        }
    }
    Ok(())
}

/// How the value is built from the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValueScheme {
    /// `Bearer <secret>`: OAuth 2.0, Hugging Face, most APIs.
    Bearer,
    /// `Basic <base64(user:password)>`, or a ready base64 value.
    Basic,
    /// `token <secret>`: Jina AI's form, and Django REST framework's.
    Token,
    /// The secret as is, for provider headers such as `X-YATAI-API-TOKEN`.
    Raw,
}

impl ValueScheme {
    pub const ALL: [ValueScheme; 4] = [
        ValueScheme::Bearer,
        ValueScheme::Basic,
        ValueScheme::Token,
        ValueScheme::Raw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ValueScheme::Bearer => "bearer",
            ValueScheme::Basic => "basic",
            ValueScheme::Token => "token",
            ValueScheme::Raw => "raw",
        }
    }

    pub fn parse(s: &str) -> Option<ValueScheme> {
        ValueScheme::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn prefix(self) -> &'static str {
        match self {
            ValueScheme::Bearer => "Bearer ",
            ValueScheme::Basic => "Basic ",
            // Lower case, as Jina's official client sends it
            // (`shared/provider-contracts.md` §2). Auth schemes are
            // case-insensitive (RFC 9110 §11.1), and Django REST framework's
            // `TokenAuthentication` compares them lower-cased too.
            ValueScheme::Token => "token ",
            ValueScheme::Raw => "",
        }
    }
}

/// A header value: a scheme and a secret. Rendered only when compiling the
/// browser rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderValue {
    pub scheme: ValueScheme,
    pub secret: Secret,
}

impl HeaderValue {
    pub fn new(scheme: ValueScheme, secret: Secret) -> Result<HeaderValue, HeaderError> {
        let value = HeaderValue { scheme, secret };
        value.render()?;
        Ok(value)
    }

    /// The exact bytes the browser sends.
    pub fn render(&self) -> Result<String, HeaderError> {
        let s = self.secret.expose();
        let body = match self.scheme {
            ValueScheme::Basic => {
                if s.contains(':') {
                    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
                } else if is_base64(s) {
                    s.to_owned()
                } else {
                    return Err(HeaderError::BadBasic);
                }
            }
            _ => s.to_owned(),
        };
        let value = format!("{}{}", self.scheme.prefix(), body);
        check_value(&value)?;
        Ok(value)
    }

    /// What the UI shows instead of the value.
    pub fn masked(&self) -> String {
        format!("{}{}", self.scheme.prefix(), self.secret.hint())
    }
}

fn is_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .is_ok_and(|bytes| bytes.contains(&b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{check_actions, HeaderAction};

    fn secret(s: &str) -> Secret {
        Secret::from_input(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_are_http_tokens() {
        assert!(HeaderName::new("Authorization").is_ok());
        assert!(HeaderName::new("X-YATAI-API-TOKEN").is_ok());
        assert_eq!(HeaderName::new(" "), Err(HeaderError::EmptyName));
        for bad in ["X Foo", "X:Foo", "X\r\nFoo", "Ä", "X(Foo)"] {
            assert!(
                matches!(HeaderName::new(bad), Err(HeaderError::BadName(_))),
                "{bad}"
            );
        }
        assert_eq!(
            HeaderName::new("Host"),
            Err(HeaderError::ForbiddenName("Host".into()))
        );
    }

    #[test]
    fn values_render_per_scheme() {
        let render = |scheme, s: &str| HeaderValue::new(scheme, secret(s)).and_then(|v| v.render());
        assert_eq!(
            render(ValueScheme::Bearer, "abc").as_deref(),
            Ok("Bearer abc")
        );
        assert_eq!(
            render(ValueScheme::Token, "abc").as_deref(),
            Ok("token abc")
        );
        assert_eq!(render(ValueScheme::Raw, "abc").as_deref(), Ok("abc"));
        assert_eq!(
            render(ValueScheme::Basic, "user:pass").as_deref(),
            Ok("Basic dXNlcjpwYXNz")
        );
        assert_eq!(
            render(ValueScheme::Basic, "dXNlcjpwYXNz").as_deref(),
            Ok("Basic dXNlcjpwYXNz")
        );
        assert_eq!(
            render(ValueScheme::Basic, "notbase64!"),
            Err(HeaderError::BadBasic)
        );
        assert_eq!(
            Secret::from_input("ünïcode:pässword"),
            Err(HeaderError::NonAscii),
            "a non-ASCII password is refused before encoding, so every scheme follows one rule"
        );
    }

    #[test]
    fn secrets_cannot_inject_headers() {
        assert_eq!(
            secret("  tok\n").expose(),
            "tok",
            "pasted white space is trimmed"
        );
        for bad in [
            "a\r\nX-Evil: 1",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{1b}b",
            "a\u{85}b",
        ] {
            assert_eq!(
                Secret::from_input(bad),
                Err(HeaderError::ControlCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(Secret::from_input("tök"), Err(HeaderError::NonAscii));
        assert_eq!(Secret::from_input(" \n"), Err(HeaderError::EmptySecret));
        assert_eq!(
            Secret::from_input(&"a".repeat(MAX_SECRET_LEN + 1)),
            Err(HeaderError::TooLong)
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = secret("hf_abcdefghijklmnopqrstuvwxyz");
        let v = HeaderValue::new(ValueScheme::Bearer, s.clone()).unwrap_or_else(|e| panic!("{e}"));
        let action = HeaderAction::Set {
            name: HeaderName::new("Authorization").unwrap_or_else(|e| panic!("{e}")),
            value: v,
            credential: None,
        };
        for shown in [format!("{s:?}"), format!("{action:?}"), action.summary()] {
            assert!(!shown.contains("abcdefghijklmnop"), "{shown}");
        }
        assert_eq!(action.summary(), "Authorization: Bearer ••••••••wxyz");
        assert_eq!(secret("short").hint(), "••••••••");
    }

    #[test]
    fn action_lists_are_checked() {
        let set = |n: &str| HeaderAction::Remove {
            name: HeaderName::new(n).unwrap_or_else(|e| panic!("{e}")),
        };
        assert_eq!(check_actions(&[]), Err(HeaderError::NoHeaders));
        assert_eq!(
            check_actions(&[set("X-A"), set("x-a")]),
            Err(HeaderError::DuplicateName("x-a".into()))
        );
        assert_eq!(check_actions(&[set("X-A"), set("X-B")]), Ok(()));
    }
}
