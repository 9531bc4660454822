//! The public subscription URL, `GET /sub/{token}`: a device's current connection links, one per
//! public gateway endpoint, for clients to import and refresh. The token is its own secret (not
//! the device token), rotated and revoked by operators; an unknown or revoked one gets the same
//! 404 as any missing route. Fetches are limited per token and per client address (429 with
//! Retry-After), and answers are never cached (`Cache-Control: no-store`).
//!
//! Formats (`?format=`, else the `Accept` header, else base64):
//! - `plain`: one link per line;
//! - `base64`: that text in standard base64, the convention of existing VPN clients'
//!   subscriptions;
//! - `json`: `{"device": {"id", "name"}, "links": [{"name", "region", "url"}]}`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::client::{lock, ClientAddr, FailureCounter};
use super::extract::{ApiPath, LenientQuery};
use crate::app::AppState;
use crate::auth::token;
use crate::config::ServeConfig;
use crate::domain;
use crate::error::{ApiError, ApiResult};

/// The window the fetch limits count in.
const WINDOW: Duration = Duration::from_secs(60);
/// Most tokens and addresses each limit remembers.
const MAX_TRACKED: usize = 10_000;

/// Fetches per token (by its hash) and per client address within [`WINDOW`].
#[derive(Debug)]
pub struct FetchLimits {
    per_token: std::sync::Mutex<FailureCounter<String>>,
    per_address: std::sync::Mutex<FailureCounter<IpAddr>>,
    token_limit: u32,
    address_limit: u32,
}

impl FetchLimits {
    pub fn new(config: &ServeConfig) -> Self {
        FetchLimits {
            per_token: std::sync::Mutex::new(FailureCounter::new(WINDOW, MAX_TRACKED)),
            per_address: std::sync::Mutex::new(FailureCounter::new(WINDOW, MAX_TRACKED)),
            token_limit: config.subscription_rate_per_token.max(1),
            address_limit: config.subscription_rate_per_address.max(1),
        }
    }

    /// Counts a fetch; `Err(seconds)` when the address or the token is over its limit.
    fn admit(&self, token_hash: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        let over = |count: u32, limit: u32, since: Option<(u32, Instant)>| {
            (count > limit).then(|| {
                let since = since.map_or(now, |(_, s)| s);
                (WINDOW.saturating_sub(now.duration_since(since)).as_secs() + 1).min(60)
            })
        };
        {
            let mut by_address = lock(&self.per_address);
            let count = by_address.fail(address, now);
            if let Some(wait) = over(count, self.address_limit, by_address.get(&address, now)) {
                return Err(wait);
            }
        }
        let mut by_token = lock(&self.per_token);
        let key = token_hash.to_owned();
        let count = by_token.fail(key.clone(), now);
        match over(count, self.token_limit, by_token.get(&key, now)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }
}

/// The format a subscription is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    Plain,
    Base64,
    Json,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `plain`, `base64` or `json`; default from `Accept` (`application/json` → json,
    /// `text/plain` alone → plain), else base64.
    pub format: Option<FeedFormat>,
}

/// One link of a subscription in the JSON format.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedLink {
    /// Display name (the device, and the region or host when there are several gateways).
    pub name: String,
    /// The gateway endpoint's region code, when configured.
    pub region: Option<String>,
    /// The connection link (`httvps://...`).
    pub url: String,
}

/// The device a subscription belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedDevice {
    pub id: Uuid,
    pub name: String,
}

/// A subscription in the JSON format.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Feed {
    pub device: FeedDevice,
    /// In order of preference.
    pub links: Vec<FeedLink>,
}

fn negotiated(query: Option<FeedFormat>, headers: &HeaderMap) -> FeedFormat {
    if let Some(format) = query {
        return format;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if accept.contains("application/json") {
        FeedFormat::Json
    } else if accept.trim().starts_with("text/plain") && !accept.contains(',') {
        FeedFormat::Plain
    } else {
        FeedFormat::Base64
    }
}

/// Whether `text` can be a token at all (43 base64url characters).
fn well_formed(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A device's connection links, by its secret subscription token.
#[utoipa::path(get, path = "/sub/{token}", tag = "public",
    params(("token" = String, Path, description = "the device's subscription token"), FeedQuery),
    responses(
        (status = 200, description = "the links: plain text, base64 text, or JSON", body = Feed),
        (status = 404, body = crate::error::Problem, description = "unknown or revoked token"),
        (status = 429, body = crate::error::Problem, description = "too many fetches; see Retry-After"),
    ))]
pub async fn subscription(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiPath(sub_token): ApiPath<String>,
    LenientQuery(query): LenientQuery<FeedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound("route".into());
    let token_hash = token::hash(&sub_token);
    if let Err(wait) = state.sub_limits.admit(&token_hash, address, Instant::now()) {
        metrics::counter!("httvps_cp_subscription_fetches_total", "result" => "rate_limited")
            .increment(1);
        return Err(ApiError::RateLimited(wait));
    }
    let feed = if well_formed(&sub_token) {
        domain::devices::subscription_feed(&state, &sub_token).await?
    } else {
        None
    };
    let Some(feed) = feed else {
        metrics::counter!("httvps_cp_subscription_fetches_total", "result" => "not_found")
            .increment(1);
        return Err(not_found());
    };
    metrics::counter!("httvps_cp_subscription_fetches_total", "result" => "served").increment(1);
    let format = negotiated(query.format, &headers);
    let mut response = match format {
        FeedFormat::Json => Json(Feed {
            device: FeedDevice {
                id: feed.device.id,
                name: feed.device.name.clone(),
            },
            links: feed
                .links
                .iter()
                .map(|l| FeedLink {
                    name: l.link.name.clone().unwrap_or_default(),
                    region: l.region.clone(),
                    url: l.link.to_string(),
                })
                .collect(),
        })
        .into_response(),
        FeedFormat::Plain | FeedFormat::Base64 => {
            let mut text = String::new();
            for l in &feed.links {
                text.push_str(&l.link.to_string());
                text.push('\n');
            }
            if format == FeedFormat::Base64 {
                text = STANDARD.encode(text);
            }
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // How often clients should refresh, in hours (the convention of existing clients).
    headers.insert("profile-update-interval", HeaderValue::from_static("1"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_query_then_accept() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiated(None, &h), FeedFormat::Base64);
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert_eq!(negotiated(None, &h), FeedFormat::Json);
        assert_eq!(negotiated(Some(FeedFormat::Plain), &h), FeedFormat::Plain);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/plain"));
        assert_eq!(negotiated(None, &h), FeedFormat::Plain);
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(negotiated(None, &h), FeedFormat::Base64);
    }

    #[test]
    fn limits_count_per_address_and_per_token() {
        let mut config = ServeConfig::for_database("sqlite::memory:");
        config.subscription_rate_per_token = 2;
        config.subscription_rate_per_address = 2;
        let limits = FetchLimits::new(&config);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.admit("t1", a, t0).is_ok());
        assert!(limits.admit("t1", a, t0).is_ok());
        let wait = limits.admit("t1", b, t0).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(
            limits.admit("t2", a, t0).is_err(),
            "address a is at its limit"
        );
        assert!(limits.admit("t1", a, t0 + WINDOW).is_ok(), "a new window");
        assert!(well_formed(&token::generate()));
        assert!(!well_formed("short"));
    }
}
