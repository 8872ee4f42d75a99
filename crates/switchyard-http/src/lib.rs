//! Outbound HTTP for every upstream call — API requests, logins, refreshes and the executors'
//! side calls: one pooled `reqwest::Client` per distinct proxy, built on first use and reused,
//! so connections stay alive across requests and no request pays for a client of its own.
//!
//! Proxies come from config only (`proxy-url` globally, per key entry, per auth file
//! `proxy_url`). The `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` environment is ignored: an empty
//! `proxy-url` means direct, so what config says is what happens, and loopback upstream URLs
//! (tests, local relays) are never sent to a proxy the shell happened to export.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use switchyard_config::{Config, Timeouts};

/// Schemes a proxy URL may use.
const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];

/// The proxy a call goes through (`None` = direct), by CPA's precedence: the account's own
/// setting (an auth file's `proxy_url`, or its key entry's `proxy-url`) over the global
/// `proxy-url`. `direct` / `none` mean no proxy even when a global one is set; blank means
/// "not set here".
pub fn effective_proxy<'a>(own: Option<&'a str>, global: &'a str) -> Option<&'a str> {
    let own = own.map(str::trim).filter(|value| !value.is_empty());
    let chosen = own.or_else(|| Some(global.trim()).filter(|value| !value.is_empty()))?;
    (!is_direct(chosen)).then_some(chosen)
}

fn is_direct(value: &str) -> bool {
    value.eq_ignore_ascii_case("direct") || value.eq_ignore_ascii_case("none")
}

/// A proxy URL without its credentials (and path), safe for logs and error messages.
pub fn display_proxy(proxy: &str) -> String {
    match url::Url::parse(proxy.trim()) {
        Ok(url) if url.has_host() => {
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        _ => "(unparsable proxy URL)".to_owned(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The proxy URL cannot be used (config validation rejects these at load, but an auth
    /// file's `proxy_url` is only seen when it is used). `proxy` carries no credentials.
    #[error("proxy {proxy} is unusable: {reason}")]
    BadProxy { proxy: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    /// The proxy URL as configured (credentials included: they select the proxy account).
    proxy: Option<String>,
    connect_timeout: Option<Duration>,
    /// Off for management `api-call`s: a redirect must not lead the call to a host nobody checked.
    follow_redirects: bool,
}

/// The client pool. Share as `Arc<HttpClients>`; `reqwest::Client` clones share one pool.
#[derive(Default)]
pub struct HttpClients {
    clients: Mutex<HashMap<PoolKey, reqwest::Client>>,
    built: AtomicUsize,
}

impl HttpClients {
    pub fn new() -> Self {
        Self::default()
    }

    /// The client for an account whose own proxy setting is `own_proxy` (auth file
    /// `proxy_url` or key entry `proxy-url`; `None`/blank = inherit the global `proxy-url`).
    pub async fn for_account(&self, config: &Config, own_proxy: Option<&str>) -> Result<reqwest::Client, ClientError> {
        let proxy = effective_proxy(own_proxy, &config.proxy_url);
        self.client(proxy, Timeouts::limit(config.timeouts.upstream_connect)).await
    }

    /// Like [`HttpClients::for_account`], but the client never follows redirects (a 3xx comes
    /// back as the answer): for calls whose target host was checked against an allow-list.
    pub async fn for_account_without_redirects(
        &self,
        config: &Config,
        own_proxy: Option<&str>,
    ) -> Result<reqwest::Client, ClientError> {
        let proxy = effective_proxy(own_proxy, &config.proxy_url);
        self.pooled(proxy, Timeouts::limit(config.timeouts.upstream_connect), false).await
    }

    /// The client for calls that belong to no account yet (logins, discovery): the global
    /// `proxy-url`.
    pub async fn global(&self, config: &Config) -> Result<reqwest::Client, ClientError> {
        self.for_account(config, None).await
    }

    /// The client through `proxy` (`None` = direct) whose connects give up after
    /// `connect_timeout` (`None` = never). Built once per distinct pair.
    pub async fn client(
        &self,
        proxy: Option<&str>,
        connect_timeout: Option<Duration>,
    ) -> Result<reqwest::Client, ClientError> {
        self.pooled(proxy, connect_timeout, true).await
    }

    async fn pooled(
        &self,
        proxy: Option<&str>,
        connect_timeout: Option<Duration>,
        follow_redirects: bool,
    ) -> Result<reqwest::Client, ClientError> {
        let key = PoolKey { proxy: proxy.map(|p| p.trim().to_owned()), connect_timeout, follow_redirects };
        if let Some(client) = self.lock().get(&key) {
            return Ok(client.clone());
        }
        let proxy = key.proxy.as_deref().map(parse_proxy).transpose()?;
        // Building loads the system's TLS roots from disk: keep it off the reactor.
        let client = tokio::task::spawn_blocking(move || build(proxy, connect_timeout, follow_redirects))
            .await
            .map_err(|error| ClientError::Build(error.to_string()))??;
        let mut clients = self.lock();
        // Another connect timeout means the config changed: the old clients are retired (their
        // open connections close once the requests using them end).
        clients.retain(|existing, _| existing.connect_timeout == connect_timeout);
        let label = key.proxy.as_deref().map_or_else(|| "direct".to_owned(), display_proxy);
        let client = clients
            .entry(key)
            .or_insert_with(|| {
                self.built.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(proxy = %label, ?connect_timeout, "built an upstream HTTP client");
                client
            })
            .clone();
        Ok(client)
    }

    /// Clients in the pool now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clients built since the pool was made (a reused client is not counted again).
    pub fn built(&self) -> usize {
        self.built.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PoolKey, reqwest::Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `proxy` as a reqwest proxy for all traffic. Credentials in the URL (`user:pass@`,
/// percent-decoded) become `Proxy-Authorization: Basic` for HTTP proxies and the RFC 1929
/// username/password for SOCKS5.
fn parse_proxy(proxy: &str) -> Result<reqwest::Proxy, ClientError> {
    let bad = |reason: &str| ClientError::BadProxy { proxy: display_proxy(proxy), reason: reason.to_owned() };
    let url = url::Url::parse(proxy).map_err(|_| bad("not a URL"))?;
    if !PROXY_SCHEMES.contains(&url.scheme()) || !url.has_host() {
        return Err(bad("must be an http://, https://, socks5:// or socks5h:// URL with a host"));
    }
    // reqwest's own error would repeat the URL, credentials and all.
    reqwest::Proxy::all(url.as_str()).map_err(|_| bad("refused by the HTTP client"))
}

fn build(
    proxy: Option<reqwest::Proxy>,
    connect_timeout: Option<Duration>,
    follow_redirects: bool,
) -> Result<reqwest::Client, ClientError> {
    // Small SSE writes upstream (and requests) must not wait for Nagle.
    let mut builder = reqwest::Client::builder().no_proxy().tcp_nodelay(true);
    if !follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(timeout) = connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(proxy) = proxy {
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|error| ClientError::Build(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_own_then_global_and_direct_bypasses() {
        let global = "http://global:8080";
        assert_eq!(effective_proxy(None, global), Some(global));
        assert_eq!(effective_proxy(Some(""), global), Some(global));
        assert_eq!(effective_proxy(Some("  "), global), Some(global));
        assert_eq!(effective_proxy(Some("socks5://own:1080"), global), Some("socks5://own:1080"));
        assert_eq!(effective_proxy(Some("direct"), global), None);
        assert_eq!(effective_proxy(Some("NONE"), global), None);
        assert_eq!(effective_proxy(None, ""), None);
        assert_eq!(effective_proxy(Some(" http://own:1 "), ""), Some("http://own:1"));
    }

    #[test]
    fn display_drops_credentials() {
        assert_eq!(display_proxy("socks5h://user:secret@10.0.0.1:1080/x"), "socks5h://10.0.0.1:1080");
        assert_eq!(display_proxy("http://u:p@[::1]:3128"), "http://[::1]:3128");
        assert_eq!(display_proxy("https://proxy.example"), "https://proxy.example");
        assert_eq!(display_proxy("user:secret@nohost"), "(unparsable proxy URL)");
    }

    #[tokio::test]
    async fn one_client_per_proxy_reused() {
        let pool = HttpClients::new();
        let timeout = Some(Duration::from_secs(10));
        pool.client(None, timeout).await.unwrap();
        pool.client(None, timeout).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (1, 1), "direct twice is one client");
        pool.client(Some("http://u:p@127.0.0.1:3128"), timeout).await.unwrap();
        pool.client(Some("http://u:p@127.0.0.1:3128"), timeout).await.unwrap();
        pool.client(Some(" http://u:p@127.0.0.1:3128 "), timeout).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (2, 2), "the same proxy reuses its client");
        // Other credentials on the same proxy are another proxy account: another client.
        pool.client(Some("http://v:p@127.0.0.1:3128"), timeout).await.unwrap();
        pool.client(Some("socks5h://127.0.0.1:1080"), timeout).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (4, 4));
    }

    #[tokio::test]
    async fn config_drives_the_choice_and_a_new_timeout_retires_old_clients() {
        let pool = HttpClients::new();
        let mut config = Config { proxy_url: "socks5://127.0.0.1:1080".into(), ..Config::default() };
        pool.global(&config).await.unwrap();
        pool.for_account(&config, Some("")).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (1, 1), "blank own proxy inherits the global one");
        pool.for_account(&config, Some("direct")).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (2, 2));
        config.timeouts.upstream_connect = 3;
        pool.global(&config).await.unwrap();
        assert_eq!((pool.len(), pool.built()), (1, 3), "clients of the old timeout are dropped");
    }

    #[tokio::test]
    async fn a_bad_proxy_is_an_error_without_its_credentials() {
        let pool = HttpClients::new();
        for bad in ["ftp://user:hunter2@proxy:21", "hunter2", "socks5://user:hunter2@"] {
            let error = pool.client(Some(bad), None).await.unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, ClientError::BadProxy { .. }), "{bad}: {error:?}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(pool.is_empty());
    }
}
