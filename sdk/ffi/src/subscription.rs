//! A subscription URL's links as one client configuration (the same body forms the Linux
//! client's `--subscription` reads: JSON, a plain list, or base64 of a list). Fetched once when
//! the tunnel starts; the app starts a new tunnel to pick up a changed list.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use httvps_sdk::ClientConfig;

use crate::error::TunnelError;

/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) async fn fetch(url: &str) -> Result<ClientConfig, TunnelError> {
    let fail = |e: reqwest::Error| TunnelError::Subscription(e.to_string());
    let response = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(fail)?
        .get(url)
        .send()
        .await
        .map_err(fail)?;
    if !response.status().is_success() {
        return Err(TunnelError::Subscription(format!(
            "the subscription answered {}",
            response.status()
        )));
    }
    let body = response.text().await.map_err(fail)?;
    config_from_links(&links(&body)?)
}

/// The `httvps://` links in a subscription body.
fn links(body: &str) -> Result<Vec<String>, TunnelError> {
    let empty = || TunnelError::Subscription("no httvps:// link".into());
    let body = body.trim();
    let text = if body.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| TunnelError::Subscription(format!("unreadable JSON: {e}")))?;
        json["links"]
            .as_array()
            .map(|links| {
                links
                    .iter()
                    .filter_map(|l| l["url"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    } else if body.contains("://") {
        body.to_owned()
    } else {
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = STANDARD
            .decode(&compact)
            .or_else(|_| URL_SAFE_NO_PAD.decode(compact.trim_end_matches('=')))
            .map_err(|_| empty())?;
        String::from_utf8(bytes).map_err(|_| empty())?
    };
    let links: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 9 && l[..9].eq_ignore_ascii_case("httvps://"))
        .map(str::to_owned)
        .collect();
    if links.is_empty() {
        return Err(empty());
    }
    Ok(links)
}

/// Every link of the first link's device as a gateway, in order.
fn config_from_links(links: &[String]) -> Result<ClientConfig, TunnelError> {
    let bad = |index: usize| {
        move |e: httvps_sdk::Error| TunnelError::Subscription(format!("link {index}: {e}"))
    };
    let first = links
        .first()
        .ok_or_else(|| TunnelError::Subscription("no httvps:// link".into()))?;
    let mut config = ClientConfig::from_link(first).map_err(bad(0))?;
    for (index, link) in links.iter().enumerate().skip(1) {
        let more = ClientConfig::from_link(link).map_err(bad(index))?;
        if more.device_id == config.device_id && more.device_token == config.device_token {
            config.gateways.extend(more.gateways);
        }
    }
    Ok(config)
}
