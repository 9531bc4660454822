//! `--subscription URL`: the device's links come from the control plane's subscription URL
//! (`GET /sub/TOKEN`, docs/operations.md) instead of one `--link`. Every link becomes a gateway
//! the SDK tries in order (so a dead first gateway fails over to the next), and the list is
//! fetched again every `--subscription-refresh` minutes, and at once when the gateway refuses
//! the device (a rotated token): when it changed (a rotated token, a gateway added or moved) the
//! proxy moves new connections to a client on the new list. A
//! failed fetch keeps the last good list (in memory, and in `--subscription-cache` when given,
//! which also serves a start while the control plane is unreachable).
//!
//! The body may be the plain list, its base64 form, or the JSON form; lines that are not
//! `httvps://` links (other protocols in a shared subscription) are skipped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use httvps_sdk::{Client, ClientConfig, ConnectionState};
use tokio::sync::watch;

/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// Why a subscription could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("fetching the subscription: {0}")]
    Fetch(String),
    #[error("the subscription answered {0}")]
    Status(u16),
    #[error("the subscription holds no httvps:// link")]
    Empty,
    #[error("subscription link {index}: {reason}")]
    BadLink { index: usize, reason: String },
    #[error("subscription cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

/// Where the links come from and how often to look again.
#[derive(Clone, Debug)]
pub struct SubscriptionSettings {
    pub url: String,
    pub refresh: Duration,
    pub cache: Option<PathBuf>,
}

/// The links in a subscription body: JSON (`{"links": [{"url": ...}]}`), a plain list, or a
/// base64-encoded list.
pub fn parse_links(body: &str) -> Result<Vec<String>, SubscriptionError> {
    let body = body.trim();
    let text = if body.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| SubscriptionError::Fetch(format!("unreadable JSON: {e}")))?;
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
            .map_err(|_| SubscriptionError::Empty)?;
        String::from_utf8(bytes).map_err(|_| SubscriptionError::Empty)?
    };
    let links: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 9 && l[..9].eq_ignore_ascii_case("httvps://"))
        .map(str::to_owned)
        .collect();
    if links.is_empty() {
        return Err(SubscriptionError::Empty);
    }
    Ok(links)
}

/// A client configuration with every link as a gateway, in order. Links of another device
/// than the first are skipped (one client speaks for one device).
pub fn config_from_links(links: &[String]) -> Result<ClientConfig, SubscriptionError> {
    let bad = |index: usize| {
        move |e: httvps_sdk::Error| SubscriptionError::BadLink {
            index,
            reason: e.to_string(),
        }
    };
    let first = links.first().ok_or(SubscriptionError::Empty)?;
    let mut config = ClientConfig::from_link(first).map_err(bad(0))?;
    for (index, link) in links.iter().enumerate().skip(1) {
        let more = ClientConfig::from_link(link).map_err(bad(index))?;
        if more.device_id != config.device_id || more.device_token != config.device_token {
            tracing::warn!(index, "a subscription link of another device; skipped");
            continue;
        }
        config.gateways.extend(more.gateways);
    }
    Ok(config)
}

/// The refresh interval: minutes, or a number with a unit (`30s`, `10m`, `2h`).
pub fn parse_refresh(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "m"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not minutes or a duration like 30s, 10m, 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("the refresh interval must be above zero".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Fetches the subscription's links.
pub async fn fetch(url: &str) -> Result<Vec<String>, SubscriptionError> {
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("httvps-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SubscriptionError::Fetch(e.to_string()))?;
    // The URL carries the token: errors are reported without it.
    let fetch_error = |e: reqwest::Error| SubscriptionError::Fetch(e.without_url().to_string());
    let mut response = http
        .get(url)
        .header("accept", "text/plain")
        .send()
        .await
        .map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(SubscriptionError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SubscriptionError::Fetch("the body is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    parse_links(&String::from_utf8_lossy(&body))
}

fn read_cache(path: &PathBuf) -> Result<Vec<String>, SubscriptionError> {
    let text = std::fs::read_to_string(path).map_err(|e| SubscriptionError::Cache {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse_links(&text)
}

fn write_cache(path: &PathBuf, links: &[String]) {
    let text = links.join("\n") + "\n";
    let written = {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // The links hold the device token.
            options.mode(0o600);
        }
        options
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
    };
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the subscription cache");
    }
}

/// The links to start with: fetched, else (the control plane unreachable) the cache.
pub async fn initial_links(
    settings: &SubscriptionSettings,
) -> Result<Vec<String>, SubscriptionError> {
    match fetch(&settings.url).await {
        Ok(links) => {
            if let Some(path) = &settings.cache {
                write_cache(path, &links);
            }
            Ok(links)
        }
        Err(e) => match &settings.cache {
            Some(path) => {
                let links = read_cache(path).map_err(|_| e)?;
                eprintln!("subscription fetch failed; using the last good list");
                Ok(links)
            }
            None => Err(e),
        },
    }
}

/// The client the proxies use for new connections; a subscription refresh may replace it.
#[derive(Clone, Debug)]
pub struct CurrentClient(Arc<watch::Sender<Client>>);

impl CurrentClient {
    pub fn new(client: Client) -> Self {
        CurrentClient(Arc::new(watch::Sender::new(client)))
    }

    /// The client now (a cheap clone).
    pub fn get(&self) -> Client {
        self.0.borrow().clone()
    }

    /// A receiver told of every replacement (for the status lines).
    pub fn watch(&self) -> watch::Receiver<Client> {
        self.0.subscribe()
    }

    /// Moves new connections to `client`; returns the old one (its streams keep running).
    fn replace(&self, client: Client) -> Client {
        self.0.send_replace(client)
    }
}

/// `template` with the device and gateways of `links` (region, name and timing kept).
pub fn apply_links(
    template: &ClientConfig,
    links: &[String],
) -> Result<ClientConfig, SubscriptionError> {
    let fresh = config_from_links(links)?;
    let mut config = template.clone();
    config.gateways = fresh.gateways;
    config.device_id = fresh.device_id;
    config.device_token = fresh.device_token;
    Ok(config)
}

/// Fetches the subscription every `settings.refresh`, and at once when the current client
/// was refused (its token rotated or revoked: the new links may be there); when the links
/// changed, connects a client on the new list and moves new connections to it. A failed fetch
/// or connection keeps the current list and client.
pub async fn refresh(
    settings: SubscriptionSettings,
    mut links: Vec<String>,
    template: ClientConfig,
    current: CurrentClient,
) {
    let mut tick = tokio::time::interval(settings.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // A client's failure triggers one early fetch; after that only the interval does.
    let mut failure_handled = false;
    loop {
        let mut status = current.get().watch_status();
        let failed = async move {
            let _ = status
                .wait_for(|s| matches!(&s.state, ConnectionState::Down(o) if o.is_refusal()))
                .await;
        };
        tokio::select! {
            _ = tick.tick() => {}
            () = failed, if !failure_handled => {
                failure_handled = true;
                tracing::info!("the connection was refused; fetching the subscription now");
            }
        }
        let fresh = match fetch(&settings.url).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "subscription refresh failed; keeping the last good list");
                continue;
            }
        };
        if let Some(path) = &settings.cache {
            write_cache(path, &fresh);
        }
        if fresh == links {
            continue;
        }
        let config = match apply_links(&template, &fresh) {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "the refreshed subscription is unusable; keeping the last good list");
                continue;
            }
        };
        let drain = config.drain_timeout;
        match Client::connect(config).await {
            Ok(client) => {
                let old = current.replace(client);
                failure_handled = false;
                links = fresh;
                println!("subscription refreshed: {} gateway link(s)", links.len());
                // Streams already open on the old client finish there, for at most the drain
                // time new sessions get after a GOAWAY.
                tokio::spawn(async move {
                    tokio::time::sleep(drain).await;
                    old.close().await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect with the refreshed subscription; keeping the current client");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "httvps://d1:tok@a.example.com:443/p?name=A";
    const B: &str = "httvps://d1:tok@b.example.com:8443/q";

    #[test]
    fn the_three_formats_parse_to_the_same_links() {
        let plain = format!("{A}\n{B}\n");
        let b64 = STANDARD.encode(&plain);
        let json = serde_json::json!({"device": {"id": "d1", "name": "x"}, "links": [{"name": "A", "region": "eu", "url": A}, {"name": "B", "region": null, "url": B}]}).to_string();
        let want = vec![A.to_owned(), B.to_owned()];
        assert_eq!(parse_links(&plain).unwrap(), want);
        assert_eq!(parse_links(&b64).unwrap(), want);
        assert_eq!(parse_links(&json).unwrap(), want);
        // Other protocols in the list are skipped; nothing usable is an error.
        assert_eq!(
            parse_links(&format!("ss://abc\n{A}\n")).unwrap(),
            vec![A.to_owned()]
        );
        assert!(parse_links("ss://abc").is_err());
        assert!(parse_links("").is_err());
    }

    #[test]
    fn refresh_intervals() {
        assert_eq!(parse_refresh("60"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_refresh("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_refresh("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_refresh("0").is_err());
        assert!(parse_refresh("1d").is_err());
        assert!(parse_refresh("x").is_err());
    }

    #[test]
    fn every_link_of_the_device_is_a_gateway_in_order() {
        let other = "httvps://d2:tok@c.example.com/p";
        let config = config_from_links(&[A.to_owned(), other.to_owned(), B.to_owned()]).unwrap();
        let hosts: Vec<&str> = config.gateways.iter().map(|g| g.host.as_str()).collect();
        assert_eq!(hosts, ["a.example.com", "b.example.com"]);
        assert_eq!(config.device_id, "d1");
        let mut template = ClientConfig::from_link(other).unwrap();
        template.region = Some("eu".into());
        let applied = apply_links(&template, &[B.to_owned()]).unwrap();
        assert_eq!(applied.region.as_deref(), Some("eu"));
        assert_eq!(applied.device_id, "d1");
        assert_eq!(applied.gateways.len(), 1);
    }
}
