//! Credentials: a secret Tokenward keeps for one account at one provider,
//! and what the provider said about it.
//!
//! **Times are Unix seconds** ([`Timestamp`]), stored as JSON integers. An
//! integer is unambiguous (no time zone, no format variants), compares and
//! subtracts directly, so "expired" and "expires within 7 days" are one
//! comparison ([`Validity::at`]), and is what the browser hands over
//! (`Date.now() / 1000`) without a date crate. Providers' date strings are
//! converted once, where their answers are read, and back only where a
//! request needs their format.
//!
//! **The secret is kept apart from everything else**: a [`Credential`] is a
//! [`CredentialInfo`] plus the [`Secret`], flattened into one JSON object for
//! storage. An export, or a view sent to a page, serializes the
//! `CredentialInfo` alone, so leaving the secret out takes no flag and cannot
//! be forgotten field by field.

use serde::{Deserialize, Serialize};
use url::Host;

use crate::header::Secret;
use crate::text;
use crate::text::{Localize, Text};

/// A credential's id in the vault. Allocated like site rule ids: stable for
/// the credential's life and never reused, so a rule's reference to a
/// deleted credential can never point at a new one.
pub type CredentialId = u32;

pub const DAY: i64 = 86_400;
/// How long before its expiry a credential is shown as expiring.
pub const EXPIRY_WARNING: i64 = 7 * DAY;

/// A point in time, in whole seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_days(self, days: u32) -> Timestamp {
        Timestamp(self.0 + i64::from(days) * DAY)
    }

    /// Reads the ISO 8601 forms providers send: `2026-12-23`,
    /// `2026-12-23T07:19:19Z`, `2026-12-23 07:19:19.108731`,
    /// `2026-12-23T07:19:19+02:00`. A time without a zone is taken as UTC,
    /// the only reading that does not depend on where the browser is.
    pub fn parse(input: &str) -> Option<Timestamp> {
        let s = input.trim();
        let (date, rest) = s.split_at_checked(10)?;
        let mut parts = date.split('-');
        let year = digits(parts.next()?, 4)?;
        let month = digits(parts.next()?, 2)?;
        let day = digits(parts.next()?, 2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let midnight = days_from_civil(year, month, day) * DAY;
        if rest.is_empty() {
            return Some(Timestamp(midnight));
        }
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let mut hms = time.split(':');
        let hour = digits(hms.next()?, 2)?;
        let minute = digits(hms.next()?, 2)?;
        let second = match hms.next() {
            None => 0,
            Some(sec) => {
                let (whole, fraction) = sec.split_once('.').unwrap_or((sec, "0"));
                if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits(whole, 2)?
            }
        };
        if hms.next().is_some() || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let offset = match zone {
            "" | "Z" | "z" => 0,
            _ => {
                let (sign, hhmm) = zone.split_at(1);
                let hhmm = hhmm.replace(':', "");
                let (h, m) = hhmm.split_at_checked(2)?;
                let m = if m.is_empty() { 0 } else { digits(m, 2)? };
                let secs = digits(h, 2)? * 3600 + m * 60;
                if sign == "-" {
                    -secs
                } else {
                    secs
                }
            }
        };
        Some(Timestamp(
            midnight + hour * 3600 + minute * 60 + second - offset,
        ))
    }

    /// `2026-12-23`, in UTC.
    pub fn date(self) -> String {
        self.civil().0
    }

    /// `2026-12-23T07:19:19Z`.
    pub fn to_rfc3339(self) -> String {
        let (date, time) = self.civil();
        format!("{date}T{time}Z")
    }

    /// A naive local time, as Python's `datetime.now()` arithmetic gives it:
    /// `2026-12-23 07:19:19.000000` with `' '`, or `…T…` with `'T'`.
    pub(crate) fn naive_local(self, utc_offset_minutes: i32, separator: char) -> String {
        let local = Timestamp(self.0 + i64::from(utc_offset_minutes) * 60);
        let (date, time) = local.civil();
        format!("{date}{separator}{time}.000000")
    }

    fn civil(self) -> (String, String) {
        let days = self.0.div_euclid(DAY);
        let secs = self.0.rem_euclid(DAY);
        let (y, m, d) = civil_from_days(days);
        (
            format!("{y:04}-{m:02}-{d:02}"),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        )
    }
}

fn digits(s: &str, len: usize) -> Option<i64> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Days since the epoch of a proleptic Gregorian date, and back: Howard
// Hinnant's `days_from_civil` and `civil_from_days`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The time as the browser knows it. BentoCloud and Nuclia take an expiry as
/// a *naive local* time (the official clients send `datetime.now() + days`),
/// so building those requests needs the local offset too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: Timestamp,
    /// Minutes east of UTC: `-new Date().getTimezoneOffset()` in the
    /// browser. 0 sends UTC.
    pub utc_offset_minutes: i32,
}

/// What the popup shows beside a credential or a provider's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Validity {
    Valid,
    /// Expires within [`EXPIRY_WARNING`] (7 days).
    ExpiringSoon,
    Expired,
    /// The provider refused it the last time it was used (HTTP 401), so it
    /// is not sent; [`CredentialInfo::refused`] says why.
    Refused,
}

impl Validity {
    /// A token is expired from its expiry second on. No expiry: valid.
    pub fn at(expires: Option<Timestamp>, now: Timestamp) -> Validity {
        match expires {
            Some(e) if e <= now => Validity::Expired,
            Some(e) if e.0 - now.0 <= EXPIRY_WARNING => Validity::ExpiringSoon,
            _ => Validity::Valid,
        }
    }
}

/// Where a provider is reached: a base URL (BentoCloud's `--endpoint`,
/// Jina's registry, Hugging Face's `HF_ENDPOINT`, Nuclia's accounts
/// service), or the full URL of what a key opens (a Nuclia Knowledge Box,
/// a NUA key's issuer). Kept without a trailing `/`; paths are appended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(String);

/// Why an endpoint was refused. Every message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("enter the address of the service, such as https://api.example.com")]
    Empty,
    #[error("`{0}` is not a web address; write it as https://host")]
    NotUrl(String),
    #[error("the address must start with https://")]
    Scheme,
    #[error("user names and passwords do not belong in the address; remove the part before `@`")]
    Userinfo,
    #[error("the address names a site and a path, without `?query` or `#fragment`")]
    QueryOrFragment,
    #[error("plain http would send the token unencrypted; use https (http is only accepted for this computer: localhost, 127.0.0.1)")]
    InsecureHttp,
}

impl Localize for EndpointError {
    fn text(&self) -> Text {
        match self {
            EndpointError::Empty => text!("error_endpoint_empty"),
            EndpointError::NotUrl(input) => text!("error_endpoint_not_url", input),
            EndpointError::Scheme => text!("error_endpoint_scheme"),
            EndpointError::Userinfo => text!("error_endpoint_userinfo"),
            EndpointError::QueryOrFragment => text!("error_endpoint_query_or_fragment"),
            EndpointError::InsecureHttp => text!("error_endpoint_insecure_http"),
        }
    }
}

impl Endpoint {
    /// The provider's public service.
    pub fn default_for(provider: Provider) -> Option<Endpoint> {
        provider.default_endpoint().map(|e| Endpoint(e.to_owned()))
    }

    /// What the user typed, or the provider's default when blank. A bare
    /// host gets `https://`; for Nuclia a bare domain (`progress.cloud`,
    /// `rag.progress.cloud`) means its accounts service, as
    /// `BASE_NUCLIA_DOMAIN` does for the official client.
    pub fn parse(provider: Provider, input: &str) -> Result<Endpoint, EndpointError> {
        let input = input.trim();
        if input.is_empty() {
            return Endpoint::default_for(provider).ok_or(EndpointError::Empty);
        }
        if input.contains("://") {
            return Endpoint::new(input);
        }
        if provider == Provider::Nuclia && !input.contains('/') {
            let domain = input.strip_prefix("rag.").unwrap_or(input);
            if !domain.starts_with("accounts.") {
                return Endpoint::new(&format!("https://accounts.{domain}"));
            }
        }
        Endpoint::new(&format!("https://{input}"))
    }

    /// A full URL. Plain http only reaches loopback: the endpoint receives
    /// the token.
    pub fn new(input: &str) -> Result<Endpoint, EndpointError> {
        let url = crate::pattern::parse_url(input.trim())
            .map_err(|_| EndpointError::NotUrl(shorten(input)))?;
        let loopback = match url.host() {
            Some(Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(EndpointError::NotUrl(shorten(input))),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(EndpointError::InsecureHttp),
            _ => return Err(EndpointError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Userinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(EndpointError::QueryOrFragment);
        }
        Ok(Endpoint(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://host[:port]`, without the path.
    pub fn origin(&self) -> String {
        crate::pattern::parse_url(&self.0)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| self.0.clone())
    }

    /// The match pattern of the host permission the background needs to
    /// call this endpoint: `https://host/*` (match patterns have no port).
    pub fn host_permission(&self) -> String {
        crate::pattern::parse_url(&self.0)
            .ok()
            .and_then(|u| Some(format!("{}://{}/*", u.scheme(), u.host_str()?)))
            .unwrap_or_default()
    }

    pub fn is_default_for(&self, provider: Provider) -> bool {
        provider.default_endpoint() == Some(self.0.as_str())
    }

    /// This endpoint with `path` appended: `path` is a series of segments
    /// joined by `/`, each percent-encoded except the separators.
    pub(crate) fn join(&self, segments: &[&str]) -> String {
        let mut url = self.0.clone();
        for segment in segments {
            url.push('/');
            url.push_str(&encode_segment(segment));
        }
        url
    }
}

/// RFC 3986 path segment encoding: unreserved characters stay, every other
/// byte becomes `%XX`, so an id can never add a path, query or fragment.
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn shorten(input: &str) -> String {
    input.chars().take(64).collect()
}

impl TryFrom<String> for Endpoint {
    type Error = EndpointError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Endpoint::new(&value)
    }
}

impl From<Endpoint> for String {
    fn from(value: Endpoint) -> Self {
        value.0
    }
}

/// Who the credential belongs to, as the provider reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The user's name (Jina: the nickname; Nuclia Knowledge Box key: the
    /// Knowledge Box; NUA key: the client id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// BentoCloud's organization, Nuclia's accounts, Hugging Face's orgs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<String>,
}

/// Which deployments a BentoCloud token opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Deployments {
    All,
    Chosen(Vec<String>),
}

/// What kind of secret this is. It decides which calls verify it and which
/// header carries it. Read by its tag through a `Value`
/// (`json::read_tagged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum CredentialKind {
    /// A long-lived token of a user: Jina PAT, Nuclia personal token, Hugging
    /// Face access token.
    PersonalAccessToken,
    /// A BentoCloud API token.
    #[serde(rename_all = "camelCase")]
    ApiToken {
        /// Developer-operations scopes, spelled as BentoCloud does (`api`,
        /// `read_organization`, `write_organization`, `read_cluster`,
        /// `write_cluster`). Empty: none.
        #[serde(default)]
        scopes: Vec<String>,
        /// Protected-endpoint access: every deployment, chosen ones, or none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deployments: Option<Deployments>,
    },
    /// A Nuclia Knowledge Box API key (service account); the endpoint is the
    /// Knowledge Box URL.
    KnowledgeBoxKey,
    /// A Nuclia Understanding API key (a JWT); the endpoint is its issuer.
    NuaKey,
    /// A short-lived user token, such as an OAuth access token.
    UserToken,
    /// An OpenID Connect login ([`crate::provider::openid`]): the secret is
    /// the access token, renewed ([`Renewal`]) before it expires. The
    /// endpoint is the issuer.
    OpenId {
        /// The ID token's `sub`: a new login as the same subject replaces
        /// this credential, and the rules using it follow.
        subject: String,
    },
}

impl<'de> Deserialize<'de> for CredentialKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct ApiToken {
            #[serde(default)]
            scopes: Vec<String>,
            #[serde(default)]
            deployments: Option<Deployments>,
        }
        #[derive(Deserialize)]
        struct OpenId {
            subject: String,
        }
        crate::json::read_tagged(d, "type", |tag, fields| match tag {
            "personalAccessToken" => Ok(CredentialKind::PersonalAccessToken),
            "apiToken" => {
                let ApiToken {
                    scopes,
                    deployments,
                } = crate::json::read(fields)?;
                Ok(CredentialKind::ApiToken {
                    scopes,
                    deployments,
                })
            }
            "knowledgeBoxKey" => Ok(CredentialKind::KnowledgeBoxKey),
            "nuaKey" => Ok(CredentialKind::NuaKey),
            "userToken" => Ok(CredentialKind::UserToken),
            "openId" => {
                let OpenId { subject } = crate::json::read(fields)?;
                Ok(CredentialKind::OpenId { subject })
            }
            _ => Err(serde::de::Error::unknown_variant(
                tag,
                &[
                    "personalAccessToken",
                    "apiToken",
                    "knowledgeBoxKey",
                    "nuaKey",
                    "userToken",
                    "openId",
                ],
            )),
        })
    }
}

/// How a short-lived OAuth access token, the credential's secret, is
/// renewed with its refresh token ([`Credential::refresh_token`]) before it
/// expires: an OpenID Connect login, or a Nuclia user token from the
/// browser login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Renewal {
    pub client_id: String,
    /// Where refreshes go (OpenID Connect: from discovery at login).
    pub token_endpoint: String,
    /// Why the provider refused to refresh: the rules using this
    /// credential stop until a new login.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_words"
    )]
    pub failed: Option<Text>,
    /// After a refresh that got no answer, when to try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
}

/// A stored reason: a [`Text`], or the English words an earlier version
/// kept, said as they are.
///
/// Read as an [`Arg`](crate::text::Arg), which tells the two apart by
/// their first token (a string or a map) without buffering.
fn text_or_words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Text>, D::Error> {
    use crate::text::Arg;
    Ok(Option::<Arg>::deserialize(d)?.map(|stored| match stored {
        Arg::Text(text) => text,
        Arg::Data(words) => text!("error_refresh_stored_words", words),
    }))
}

/// Everything about a credential but the secret: what storage keeps beside
/// it, what pages see and what an export writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfo {
    pub id: CredentialId,
    pub provider: Provider,
    pub endpoint: Endpoint,
    #[serde(default)]
    pub account: Account,
    pub kind: CredentialKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How the provider addresses this token when deleting it: BentoCloud's
    /// `uid`, Nuclia's `id`, Jina's token name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<Renewal>,
    /// The provider refused the token (HTTP 401) the last time Tokenward
    /// used it: the provider's reason, as it gave it, or `401` when it gave
    /// none (never words of ours: pages say them). Cleared by the next call
    /// it accepts, or a login with the same token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// When a JSON Web Token says it expires: its payload's `exp` (RFC 7519
/// §4.1.4). A pasted token that is a JWT learns its expiry from itself when
/// the provider does not say; anything else reads as no expiry. The
/// signature is not checked: the date only decides when Tokenward stops
/// sending the token, never whether to trust it.
pub fn jwt_expiry(token: &str) -> Option<Timestamp> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims = crate::json::parse_bytes(&bytes)?;
    let exp = claims.get("exp")?.as_f64()?;
    (exp.is_finite() && exp > 0.0 && exp < 1e11).then_some(Timestamp(exp as i64))
}

impl CredentialInfo {
    pub fn validity(&self, now: Timestamp) -> Validity {
        Validity::at(self.expires, now)
    }

    /// Why its provider refused to renew the token.
    pub fn refresh_failure(&self) -> Option<Text> {
        self.renewal.as_ref()?.failed.clone()
    }
}

/// A credential with its secret, as the vault stores it. `Debug` shows the
/// secret as `<redacted>`. Read through a `Value`, its info and its secrets
/// from the same map: the derive reads a flattened field by buffering the
/// value in serde's `Content` tree (`json::read_tagged` says what
/// that costs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    #[serde(flatten)]
    pub info: CredentialInfo,
    pub secret: Secret,
    /// An OpenID Connect login's refresh token: a secret like the other,
    /// sealed with it, left out of views and of exports without secrets.
    // Named as `protection::for_each_secret` looks for it, to seal it.
    #[serde(
        default,
        rename = "refreshToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Secret>,
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Secrets {
            secret: Secret,
            #[serde(default, rename = "refreshToken")]
            refresh_token: Option<Secret>,
        }
        let value = serde_json::Value::deserialize(d)?;
        let info: CredentialInfo = crate::json::read(&value).map_err(D::Error::custom)?;
        let Secrets {
            secret,
            refresh_token,
        } = crate::json::read(&value).map_err(D::Error::custom)?;
        Ok(Credential {
            info,
            secret,
            refresh_token,
        })
    }
}

impl Credential {
    /// A credential as the user enters it, before the provider confirmed
    /// anything: no account, name or times yet.
    pub fn new(
        id: CredentialId,
        provider: Provider,
        endpoint: Endpoint,
        kind: CredentialKind,
        secret: Secret,
    ) -> Credential {
        Credential {
            info: CredentialInfo {
                id,
                provider,
                endpoint,
                account: Account::default(),
                kind,
                name: String::new(),
                description: String::new(),
                remote_id: None,
                created: None,
                expires: None,
                last_verified: None,
                renewal: None,
                refused: None,
            },
            secret,
            refresh_token: None,
        }
    }

    /// As [`CredentialInfo::validity`], except that a login which renews
    /// itself is not "expiring": its short-lived token is replaced before
    /// it expires, and only a failed refresh ends it.
    pub fn validity(&self, now: Timestamp) -> Validity {
        if self.info.refused.is_some() {
            return Validity::Refused;
        }
        match self.info.validity(now) {
            Validity::ExpiringSoon if self.renews_itself() => Validity::Valid,
            v => v,
        }
    }

    /// A short-lived token with a refresh token its provider has not
    /// refused.
    pub fn renews_itself(&self) -> bool {
        self.refresh_token.is_some()
            && self
                .info
                .renewal
                .as_ref()
                .is_some_and(|r| r.failed.is_none())
    }
}

/// Every credential the user keeps. Ids are allocated like site rule ids:
/// never reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) next_id: CredentialId,
    pub(crate) items: Vec<Credential>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            next_id: 1,
            items: Vec::new(),
        }
    }
}

impl Credentials {
    pub fn all(&self) -> &[Credential] {
        &self.items
    }

    pub fn get(&self, id: CredentialId) -> Option<&Credential> {
        self.items.iter().find(|c| c.info.id == id)
    }

    pub fn get_mut(&mut self, id: CredentialId) -> Option<&mut Credential> {
        self.items.iter_mut().find(|c| c.info.id == id)
    }

    /// Adds a credential under a fresh id, which it returns.
    pub fn add(&mut self, mut credential: Credential) -> Option<CredentialId> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1)?;
        credential.info.id = id;
        self.items.push(credential);
        Some(id)
    }

    pub fn remove(&mut self, id: CredentialId) -> Option<Credential> {
        let index = self.items.iter().position(|c| c.info.id == id)?;
        Some(self.items.remove(index))
    }

    /// Whether rules may use credential `id` now: it exists, has not
    /// expired, and, for an OpenID Connect login, its provider did not
    /// refuse to refresh it (its token would die soon, and the user must
    /// log in again anyway).
    pub fn usable(&self, id: CredentialId, now: Timestamp) -> bool {
        self.get(id).is_some_and(|c| {
            !matches!(c.validity(now), Validity::Expired | Validity::Refused)
                && c.info.refresh_failure().is_none()
        })
    }

    /// When each short-lived token that can be refreshed is due: a
    /// retry's time after a refresh that got no answer, else
    /// [`refresh_at`].
    fn refreshes(&self) -> impl Iterator<Item = (CredentialId, Timestamp)> + '_ {
        self.items
            .iter()
            .filter(|c| c.renews_itself())
            .filter_map(|c| {
                let expires = c.info.expires?;
                let due = refresh_at(c.info.created.unwrap_or(expires), expires);
                let retry_at = c.info.renewal.as_ref()?.retry_at;
                Some((c.info.id, retry_at.map_or(due, |r| r.max(due))))
            })
    }

    /// The logins to refresh now.
    pub fn due_refreshes(&self, now: Timestamp) -> Vec<CredentialId> {
        self.refreshes()
            .filter(|(_, due)| *due <= now)
            .map(|(id, _)| id)
            .collect()
    }

    /// When the next refresh is due, perhaps already: when the background
    /// must wake to make it.
    pub fn next_refresh(&self) -> Option<Timestamp> {
        self.refreshes().map(|(_, due)| due).min()
    }

    /// The local credential that is the token `remote_id` of the same
    /// account as `of`.
    pub fn matching_remote(&self, of: &CredentialInfo, remote_id: &str) -> Option<&Credential> {
        self.items.iter().find(|c| {
            c.info.provider == of.provider
                && c.info.endpoint == of.endpoint
                && c.info.remote_id.as_deref() == Some(remote_id)
        })
    }

    /// The credential that can create a successor for `id` (a token the
    /// user made here): another one of the same account, at the same
    /// provider and endpoint, not expired, not itself made here. The login
    /// is what creates tokens; an expired token cannot.
    pub fn creator_for(&self, id: CredentialId, now: Timestamp) -> Option<&Credential> {
        let expired = self.get(id)?;
        if expired.info.remote_id.is_none()
            || !matches!(
                expired.info.provider,
                Provider::BentoCloud | Provider::Jina | Provider::Nuclia
            )
        {
            return None;
        }
        self.items.iter().find(|c| {
            c.info.id != id
                && c.info.provider == expired.info.provider
                && c.info.endpoint == expired.info.endpoint
                && c.info.account.user == expired.info.account.user
                && c.info.remote_id.is_none()
                && matches!(
                    c.info.kind,
                    CredentialKind::PersonalAccessToken | CredentialKind::ApiToken { .. }
                )
                && c.validity(now) != Validity::Expired
        })
    }

    /// The next moment a credential in use expires, after `now`: when the
    /// browser's rules must next be recomputed.
    pub fn next_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        self.items
            .iter()
            .filter_map(|c| c.info.expires)
            .filter(|e| *e > now)
            .min()
    }
}

/// `Jina AI: alice (laptop)`.
pub fn credential_label(info: &CredentialInfo) -> String {
    if info.name.is_empty() {
        account_label(info)
    } else {
        format!("{} ({})", account_label(info), info.name)
    }
}

/// `Jina AI: alice`: the provider account a credential belongs to, which
/// the popup groups a login's tokens under.
pub fn account_label(info: &CredentialInfo) -> String {
    let who = info
        .account
        .user
        .as_deref()
        .or(info.account.email.as_deref())
        .unwrap_or(info.endpoint.as_str());
    format!("{}: {who}", info.provider.name())
}

/// When to refresh a token obtained at `obtained` that expires at
/// `expires`: with a quarter of its life left, at least a minute before it
/// expires, but never before half of it has passed. A 60-second token is
/// refreshed after 30 s, a 30-minute one (Nuclia's) after 22½ minutes, an
/// hour-long one 15 minutes before its end: early enough that a missed
/// alarm (Chrome fires them at most every 30 s) or a slow provider still
/// leaves the old token valid, so no request meets a 401.
pub fn refresh_at(obtained: Timestamp, expires: Timestamp) -> Timestamp {
    let lifetime = (expires.0 - obtained.0).max(0);
    let margin = (lifetime / 4).max(60).min(lifetime / 2);
    Timestamp(expires.0 - margin)
}

/// Which service a credential belongs to: the provider's identity and its
/// public endpoint. How to talk to it is [`crate::provider`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Provider {
    BentoCloud,
    Jina,
    Nuclia,
    HuggingFace,
    /// Any other site, with any header: nothing to call.
    Custom,
    /// A self-hosted deployment behind an OpenID Connect identity provider:
    /// logged in with the browser, its access token kept fresh
    /// ([`crate::provider::openid`]).
    OpenId,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::BentoCloud,
        Provider::Jina,
        Provider::Nuclia,
        Provider::HuggingFace,
        Provider::Custom,
        Provider::OpenId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::BentoCloud => "BentoCloud",
            Provider::Jina => "Jina AI",
            Provider::Nuclia => "Nuclia",
            Provider::HuggingFace => "Hugging Face",
            Provider::Custom => "Custom site",
            Provider::OpenId => "OpenID Connect",
        }
    }

    /// The public service, as each official client defaults to it (for
    /// Nuclia, the accounts service of the default domain, `progress.cloud`).
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Provider::BentoCloud => Some("https://cloud.bentoml.com"),
            Provider::Jina => Some("https://api.hubble.jina.ai"),
            Provider::Nuclia => Some("https://accounts.progress.cloud"),
            Provider::HuggingFace => Some("https://huggingface.co"),
            Provider::Custom | Provider::OpenId => None,
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_jwt_says_when_it_expires() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = |payload: &str| format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(payload));
        assert_eq!(
            jwt_expiry(&jwt(r#"{"sub":"a","exp":1767225600}"#)),
            Some(Timestamp(1_767_225_600))
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1767225600.5}"#)),
            Some(Timestamp(1_767_225_600))
        );
        for not_one in [
            jwt(r#"{"sub":"a"}"#),
            jwt(r#"{"exp":"tomorrow"}"#),
            jwt(r#"{"exp":-1}"#),
            jwt(r#"{"exp":1e300}"#),
            jwt("not json"),
            "hf_plain_token".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("x.{}.y", "A".repeat(9000)),
        ] {
            assert_eq!(jwt_expiry(&not_one), None, "{not_one:.40}");
        }
    }

    #[test]
    fn a_refused_token_is_not_usable_and_says_so() {
        let mut credentials = Credentials::default();
        let mut c = Credential::new(
            0,
            Provider::HuggingFace,
            Endpoint::default_for(Provider::HuggingFace).unwrap_or_else(|| panic!()),
            CredentialKind::PersonalAccessToken,
            Secret::from_input("hf_token_value").unwrap_or_else(|e| panic!("{e}")),
        );
        c.info.refused = Some("Invalid credentials in Authorization header".into());
        let id = credentials.add(c).unwrap_or_default();
        let now = Timestamp(1_766_000_000);
        assert_eq!(
            credentials.get(id).map(|c| c.validity(now)),
            Some(Validity::Refused)
        );
        assert!(!credentials.usable(id, now));
    }

    use serde_json::json;

    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::from_input(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bento_credential() -> Credential {
        let mut c = Credential::new(
            7,
            Provider::BentoCloud,
            Endpoint::default_for(Provider::BentoCloud).unwrap_or_else(|| panic!()),
            CredentialKind::ApiToken {
                scopes: vec!["api".into()],
                deployments: Some(Deployments::Chosen(vec!["summarize".into()])),
            },
            secret("yatai-secret-0123456789"),
        );
        c.info.account = Account {
            user: Some("Alice".into()),
            email: Some("alice@example.com".into()),
            organizations: vec!["acme".into()],
        };
        c.info.name = "laptop".into();
        c.info.remote_id = Some("tok_1".into());
        c.info.created = Some(Timestamp(1_766_000_000));
        c.info.expires = Some(Timestamp(1_768_592_000));
        c
    }

    #[test]
    fn host_permissions_have_no_port() {
        let e = |s: &str| Endpoint::new(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            e("http://127.0.0.1:8123/x").host_permission(),
            "http://127.0.0.1/*"
        );
        assert_eq!(
            e("https://cloud.bentoml.com").host_permission(),
            "https://cloud.bentoml.com/*"
        );
        assert_eq!(e("http://[::1]:9/").host_permission(), "http://[::1]/*");
    }

    #[test]
    fn stores_as_camel_case_json() {
        let c = bento_credential();
        let expected = json!({
            "id": 7,
            "provider": "bentoCloud",
            "endpoint": "https://cloud.bentoml.com",
            "account": {"user": "Alice", "email": "alice@example.com", "organizations": ["acme"]},
            "kind": {"type": "apiToken", "scopes": ["api"], "deployments": {"chosen": ["summarize"]}},
            "name": "laptop",
            "description": "",
            "remoteId": "tok_1",
            "created": 1_766_000_000,
            "expires": 1_768_592_000,
            "secret": "yatai-secret-0123456789"
        });
        assert_eq!(serde_json::to_value(&c).ok(), Some(expected.clone()));
        let back: Credential = serde_json::from_value(expected).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c);
    }

    #[test]
    fn exports_and_debug_never_carry_the_secret() {
        let c = bento_credential();
        let export = serde_json::to_string(&c.info).unwrap_or_default();
        assert!(export.contains("\"remoteId\":\"tok_1\""), "{export}");
        for shown in [export, format!("{c:?}")] {
            assert!(!shown.contains("yatai-secret"), "{shown}");
        }
    }

    #[test]
    fn minimal_stored_credentials_read_back() {
        let c: Credential = serde_json::from_value(json!({
            "id": 1, "provider": "huggingFace", "endpoint": "https://huggingface.co",
            "kind": {"type": "personalAccessToken"}, "secret": "hf_x", "unknown": true
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.info.account, Account::default());
        assert_eq!(c.info.expires, None);
        for kind in [
            CredentialKind::KnowledgeBoxKey,
            CredentialKind::NuaKey,
            CredentialKind::UserToken,
        ] {
            let v = serde_json::to_value(&kind).unwrap_or_default();
            assert_eq!(serde_json::from_value::<CredentialKind>(v).ok(), Some(kind));
        }
        assert_eq!(
            serde_json::to_value(Deployments::All).ok(),
            Some(json!("all"))
        );
        let stored_endpoint = json!({"id": 1, "provider": "custom", "endpoint": "http://evil.example",
            "kind": {"type": "userToken"}, "secret": "s"});
        assert!(serde_json::from_value::<Credential>(stored_endpoint).is_err());
    }

    #[test]
    fn validity_is_a_function_of_expiry_and_now() {
        let now = Timestamp(1_000_000);
        let mut c = bento_credential();
        c.info.expires = None;
        assert_eq!(c.validity(now), Validity::Valid);
        for (expires, state) in [
            (now.0 - 1, Validity::Expired),
            (now.0, Validity::Expired),
            (now.0 + 1, Validity::ExpiringSoon),
            (now.0 + EXPIRY_WARNING, Validity::ExpiringSoon),
            (now.0 + EXPIRY_WARNING + 1, Validity::Valid),
        ] {
            c.info.expires = Some(Timestamp(expires));
            assert_eq!(c.validity(now), state, "{expires}");
        }
    }

    #[test]
    fn parses_provider_dates() {
        let t = |s: &str| Timestamp::parse(s).map(|t| t.0);
        assert_eq!(t("1970-01-01"), Some(0));
        assert_eq!(t("2026-12-23T07:19:19Z"), Some(1_798_010_359));
        assert_eq!(t("2026-12-23 07:19:19.108731"), Some(1_798_010_359));
        assert_eq!(t("2026-12-23T09:19:19+02:00"), Some(1_798_010_359));
        assert_eq!(t("2026-12-23T02:19:19-0500"), Some(1_798_010_359));
        assert_eq!(t("2026-12-23T07:19"), Some(1_798_010_340));
        assert_eq!(t("2024-02-29"), Some(1_709_164_800));
        assert_eq!(t("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2023-02-29",
            "2026-12-23T25:00:00Z",
            "2026-12-23X07:19:19",
            "2026-12-23T07:19:19.",
            "2026-12-23T07:19:19+2",
            "yesterday-ish",
            "２０２６-12-23",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_dates() {
        let t = Timestamp(1_798_010_359);
        assert_eq!(t.to_rfc3339(), "2026-12-23T07:19:19Z");
        assert_eq!(t.naive_local(0, ' '), "2026-12-23 07:19:19.000000");
        assert_eq!(t.naive_local(120, 'T'), "2026-12-23T09:19:19.000000");
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59Z");
        // Round trip over years 0001 to 9909, leap years included.
        for day in (-719_000..2_900_000).step_by(997) {
            let t = Timestamp(day * DAY + 3_723);
            assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        }
    }

    #[test]
    fn endpoints_default_and_validate() {
        let parse = |p, s: &str| Endpoint::parse(p, s).map(|e| e.as_str().to_owned());
        for provider in Provider::ALL {
            if let Some(default) = provider.default_endpoint() {
                assert_eq!(parse(provider, " ").as_deref(), Ok(default));
                assert_eq!(
                    Endpoint::new(default).map(String::from).as_deref(),
                    Ok(default)
                );
            }
        }
        assert_eq!(parse(Provider::Custom, ""), Err(EndpointError::Empty));
        assert_eq!(
            parse(Provider::BentoCloud, "https://Cloud.Example.com:443/").as_deref(),
            Ok("https://cloud.example.com")
        );
        assert_eq!(
            parse(Provider::BentoCloud, "yatai.example.com").as_deref(),
            Ok("https://yatai.example.com")
        );
        assert_eq!(
            parse(Provider::Nuclia, "rag.progress.cloud").as_deref(),
            Ok("https://accounts.progress.cloud")
        );
        assert_eq!(
            parse(Provider::Nuclia, "accounts.nuclia.cloud").as_deref(),
            Ok("https://accounts.nuclia.cloud")
        );
        assert_eq!(
            parse(
                Provider::Nuclia,
                "https://europe-1.dp.progress.cloud/api/v1/kb/abc"
            )
            .as_deref(),
            Ok("https://europe-1.dp.progress.cloud/api/v1/kb/abc")
        );
        assert_eq!(
            parse(Provider::Jina, "http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(
            parse(Provider::Jina, "http://api.example.com"),
            Err(EndpointError::InsecureHttp)
        );
        assert_eq!(
            parse(Provider::Jina, "ftp://api.example.com"),
            Err(EndpointError::Scheme)
        );
        assert_eq!(
            parse(Provider::Jina, "https://u:p@api.example.com"),
            Err(EndpointError::Userinfo)
        );
        assert_eq!(
            parse(Provider::Jina, "https://api.example.com/?x=1"),
            Err(EndpointError::QueryOrFragment)
        );
        assert!(matches!(
            parse(Provider::Jina, "https://"),
            Err(EndpointError::NotUrl(_))
        ));
        let said = |e: EndpointError| crate::text::english(&e.text());
        assert_eq!(
            parse(Provider::Jina, "http://api.example.com").map_err(said),
            Err(
                "Plain http would send the token unencrypted; use https (http is only accepted \
                 for this computer: localhost, 127.0.0.1)."
                    .to_owned()
            )
        );
        assert_eq!(
            parse(Provider::Jina, "https://").map_err(said),
            Err("“https://” is not a web address; write it as https://host.".to_owned())
        );
    }

    #[test]
    fn a_refresh_failure_reads_as_stored_by_any_version() {
        let renewal = |failed: serde_json::Value| {
            serde_json::from_value::<Renewal>(serde_json::json!({
                "clientId": "c",
                "tokenEndpoint": "https://idp.example/token",
                "failed": failed,
            }))
            .map(|r| r.failed)
            .map_err(|e| e.to_string())
        };
        let text = crate::text!("error_refresh_refused_by_idp", "invalid_grant");
        let stored = serde_json::to_value(&text).unwrap_or_default();
        assert_eq!(renewal(stored), Ok(Some(text)));
        // An earlier version kept English words: they are said as they are.
        let words = renewal(serde_json::json!(
            "the identity provider refused: invalid_grant"
        ));
        assert_eq!(
            words.as_ref().map(|w| w.as_ref().map(crate::text::english)),
            Ok(Some(
                "the identity provider refused: invalid_grant".to_owned()
            ))
        );
        assert_eq!(renewal(serde_json::Value::Null), Ok(None));
        let absent = serde_json::from_value::<Renewal>(serde_json::json!({
            "clientId": "c",
            "tokenEndpoint": "https://idp.example/token",
        }));
        assert_eq!(absent.map(|r| r.failed).ok(), Some(None));
    }

    #[test]
    fn joined_paths_cannot_escape() {
        let e = Endpoint::parse(Provider::Nuclia, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            e.join(&["api", "v1", "user", "pa_token", "a/b?c#d e"]),
            "https://accounts.progress.cloud/api/v1/user/pa_token/a%2Fb%3Fc%23d%20e"
        );
        assert_eq!(e.origin(), "https://accounts.progress.cloud");
    }
}
