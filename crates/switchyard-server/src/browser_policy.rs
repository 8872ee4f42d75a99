//! Which browsers' requests the server answers: the web origins that may call it and the `Host`
//! names requests may be addressed to. Pure functions over the live config; `cors`,
//! `host_guard`, the public API's key check and the management guard apply them.
//!
//! - An origin is allowed when it is a loopback origin (`http(s)://localhost|127.x.x.x|[::1]`,
//!   any port), listed in `allowed-origins`, or the server's own (same origin: its authority is
//!   the request's `Host`, which the host guard already accepted).
//! - A `Host` is allowed when it is a loopback name or IP (any port), the bound IP, a name in
//!   `allowed-hosts`, or the host of an `allowed-origins` entry. Bound to every interface with
//!   `api-keys` set and `allowed-hosts` empty, any `Host` is allowed (the key protects the API);
//!   without keys only the names above are.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Uri, header};
use switchyard_config::Config;
use url::{Host, Url};

/// The address the listener is bound to, added to every request by `connections::serve`.
#[derive(Clone, Copy, Debug)]
pub struct BoundAddr(pub SocketAddr);

/// The `Host` a request was addressed to: the header (HTTP/1.1), else the URI's authority (h2).
pub fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()))
}

/// The request's `Origin` header, if it has one (unreadable bytes read as `""`: not allowed).
pub fn request_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or_default())
}

/// `scheme://host[:port]` as browsers serialize it (lower case, default port dropped), for an
/// http(s) origin with nothing after it; `None` otherwise (`null`, paths, other schemes).
fn normalize_origin(value: &str) -> Option<Url> {
    let url = Url::parse(value.trim()).ok()?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    (bare && matches!(url.scheme(), "http" | "https") && url.has_host()).then_some(url)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// `http(s)://localhost|127.0.0.1|[::1][:port]` (and the rest of 127.0.0.0/8).
pub fn is_loopback_origin(origin: &str) -> bool {
    normalize_origin(origin).is_some_and(|url| url.host().is_some_and(|host| is_loopback_host(&host)))
}

/// Whether a page of `origin` may call this server, for a request addressed to `host`.
pub fn origin_allowed(config: &Config, origin: &str, host: Option<&str>) -> bool {
    if is_loopback_origin(origin) {
        return true;
    }
    let Some(url) = normalize_origin(origin) else { return false };
    if config.allowed_origins.iter().filter_map(|o| normalize_origin(o)).any(|o| same_origin(&o, &url)) {
        return true;
    }
    // The server's own pages (its panel reached by a LAN name): the origin names the Host.
    host.and_then(|host| normalize_origin(&format!("{}://{host}", url.scheme())))
        .is_some_and(|own| same_origin(&own, &url))
}

/// A `Host` value parsed as `host[:port]`; `None` if it is not one.
fn parse_host(value: &str) -> Option<Url> {
    let url = Url::parse(&format!("http://{}", value.trim())).ok()?;
    let bare = url.path() == "/" && url.query().is_none() && url.username().is_empty() && url.password().is_none();
    (bare && url.has_host()).then_some(url)
}

/// `localhost`, `127.0.0.1` or `[::1]` with an optional port, recognised without building a URL:
/// nearly every request is addressed so, and the full parse (IDNA included) was a visible share of
/// a pass-through request's CPU. Anything else, or anything odd, goes to [`parse_host`].
fn is_plain_loopback_host(value: &str) -> bool {
    let (loopback, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let Some((ip, port)) = rest.split_once(']') else { return false };
            (ip.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()), port)
        }
        None => {
            let name = value.rsplit_once(':').map_or(value, |(name, _)| name);
            let loopback = name.eq_ignore_ascii_case("localhost")
                || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
            (loopback, &value[name.len()..])
        }
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    loopback && port_ok
}

/// The host part, lower case, without a trailing dot, for comparing names.
fn host_key(url: &Url) -> Option<String> {
    url.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase())
}

fn is_unspecified(bound: Option<SocketAddr>) -> bool {
    bound.is_some_and(|addr| addr.ip().is_unspecified())
}

/// Whether a request addressed to `host` (a `Host` header value) is served. `bound`: the
/// listener's address (`None`: treated as a loopback bind).
pub fn host_allowed(config: &Config, host: &str, bound: Option<SocketAddr>) -> bool {
    if is_unspecified(bound) && config.allowed_hosts.is_empty() && !config.api_keys.is_empty() {
        return true;
    }
    if is_plain_loopback_host(host) {
        return true;
    }
    let Some(url) = parse_host(host) else { return false };
    let Some(parsed) = url.host() else { return false };
    if is_loopback_host(&parsed) {
        return true;
    }
    let ip = match parsed {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    };
    if let (Some(ip), Some(bound)) = (ip, bound)
        && !bound.ip().is_unspecified()
        && bound.ip() == ip
    {
        return true;
    }
    let key = host_key(&url);
    let listed = config
        .allowed_hosts
        .iter()
        .filter_map(|h| parse_host(h))
        .chain(config.allowed_origins.iter().filter_map(|o| normalize_origin(o)));
    listed.filter_map(|u| host_key(&u)).any(|name| Some(name) == key)
}

/// The startup warning for a bind to every interface that serves only loopback names.
pub fn host_notice(config: &Config, bound: SocketAddr) -> Option<String> {
    (bound.ip().is_unspecified() && config.allowed_hosts.is_empty() && config.api_keys.is_empty()).then(|| {
        format!(
            "listening on all interfaces ({bound}) without api-keys or allowed-hosts: only requests addressed to \
             localhost or a loopback IP are served (others get 403); list the names LAN clients use in allowed-hosts"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_loopback_hosts_are_known_without_a_parse_and_agree_with_it() {
        let config = config("");
        for host in ["localhost", "LOCALHOST:8317", "127.0.0.1", "127.0.0.1:8317", "127.9.9.9:1", "[::1]", "[::1]:8317"]
        {
            assert!(is_plain_loopback_host(host), "{host}");
            assert!(parse_host(host).is_some_and(|u| u.host().is_some_and(|h| is_loopback_host(&h))), "{host}");
        }
        // Not recognised here: left to the full parse, which decides.
        for host in [
            "localhost:",
            "127.0.0.1:99999",
            "127.0.0.1:80:80",
            "[::1",
            "[::1]x",
            "::1",
            "127.1",
            "example.com",
            "localhost.evil.com",
            "10.0.0.1:8317",
            "[::2]:80",
            "localhost@evil.com",
        ] {
            assert!(!is_plain_loopback_host(host), "{host}");
        }
        assert!(!host_allowed(&config, "localhost.evil.com", None));
        assert!(host_allowed(&config, "127.0.0.1:8317", None));
    }

    fn config(yaml: &str) -> Config {
        switchyard_config::parse(yaml).unwrap().config
    }

    #[test]
    fn loopback_origins() {
        for origin in [
            "http://localhost",
            "https://localhost:5173",
            "http://127.0.0.1:8317",
            "http://[::1]:1",
            "http://127.8.0.1",
        ] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
        for origin in [
            "null",
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io",
            "file://",
            "http://10.0.0.1",
            "ftp://localhost",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn configured_and_own_origins() {
        let config = config("allowed-origins: [\"https://Panel.Example.com/\", \"http://lan.test:9000\"]\n");
        assert!(origin_allowed(&config, "https://panel.example.com", None));
        assert!(origin_allowed(&config, "https://panel.example.com:443", None));
        assert!(origin_allowed(&config, "http://lan.test:9000", None));
        assert!(!origin_allowed(&config, "http://lan.test:9001", None));
        assert!(!origin_allowed(&config, "http://panel.example.com", None), "the scheme counts");
        assert!(!origin_allowed(&config, "https://evil.example", None));
        assert!(origin_allowed(&config, "http://gateway.lan:8317", Some("gateway.lan:8317")), "same origin");
        assert!(!origin_allowed(&config, "http://gateway.lan:8318", Some("gateway.lan:8317")));
    }

    #[test]
    fn hosts() {
        let loopback: SocketAddr = "127.0.0.1:8317".parse().unwrap();
        let plain = Config::default();
        for host in ["localhost", "localhost:8317", "127.0.0.1:9", "[::1]:8317", "LOCALHOST."] {
            assert!(host_allowed(&plain, host, Some(loopback)), "{host}");
        }
        for host in ["evil.example", "evil.example:8317", "192.168.1.5:8317", "", "a b", "localhost.evil.example"] {
            assert!(!host_allowed(&plain, host, Some(loopback)), "{host}");
        }
        let lan: SocketAddr = "192.168.1.5:8317".parse().unwrap();
        assert!(host_allowed(&plain, "192.168.1.5:8317", Some(lan)), "the bound IP");
        let listed = config("allowed-hosts: [gateway.lan]\nallowed-origins: [\"https://panel.example.com\"]\n");
        assert!(host_allowed(&listed, "Gateway.LAN:8317", Some(loopback)));
        assert!(host_allowed(&listed, "panel.example.com", Some(loopback)));
        assert!(!host_allowed(&listed, "evil.example", Some(loopback)));
    }

    #[test]
    fn every_interface_bind() {
        let any: SocketAddr = "0.0.0.0:8317".parse().unwrap();
        let keyless = Config::default();
        assert!(!host_allowed(&keyless, "gateway.lan", Some(any)));
        assert!(host_allowed(&keyless, "localhost:8317", Some(any)));
        assert!(host_notice(&keyless, any).is_some());
        let keyed = config("api-keys: [k]\n");
        assert!(host_allowed(&keyed, "anything.example", Some(any)));
        assert!(host_notice(&keyed, any).is_none());
        let listed = config("api-keys: [k]\nallowed-hosts: [gateway.lan]\n");
        assert!(host_allowed(&listed, "gateway.lan", Some(any)));
        assert!(!host_allowed(&listed, "anything.example", Some(any)), "a list narrows it again");
        assert!(host_notice(&Config::default(), "127.0.0.1:8317".parse().unwrap()).is_none());
    }
}
