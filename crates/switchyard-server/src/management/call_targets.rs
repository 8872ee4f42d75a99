//! Which origins an `api-call` may reach: those of the credential's provider (its endpoints'
//! defaults and their `upstream-urls` overrides), a config key's `base-url`, and — for a call
//! without a credential — the URLs config names. Matching is by scheme, host and port; a
//! provider default's `{region}`-style placeholder stands for one DNS label's worth of
//! letters, digits and dashes.

use std::fmt;

use switchyard_auth::Credential;
use switchyard_config::{Config, CustomOAuthProvider};
use switchyard_router::ConfigKey;

/// A scheme, host (possibly with placeholders) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl Origin {
    pub fn of_url(url: &url::Url) -> Origin {
        Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: url.port_or_known_default().unwrap_or(0),
        }
    }

    /// The origin of a configured or built-in URL, which may hold placeholders (`{region}`),
    /// so it is taken apart by hand rather than by a URL parser.
    pub fn of_template(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next()?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            (format!("[{host}]"), after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (host_port.to_owned(), None),
            }
        };
        let port = match port {
            Some(port) => port.parse().ok()?,
            None => default_port(&scheme)?,
        };
        (!host.is_empty()).then(|| Origin { scheme, host: host.to_ascii_lowercase(), port })
    }

    /// Whether `target` (a real URL's origin) is this one, placeholders matching.
    pub fn admits(&self, target: &Origin) -> bool {
        self.scheme == target.scheme && self.port == target.port && host_matches(&self.host, &target.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match default_port(&self.scheme) {
            Some(port) if port == self.port => write!(f, "{}://{}", self.scheme, self.host),
            _ => write!(f, "{}://{}:{}", self.scheme, self.host, self.port),
        }
    }
}

/// `pattern` with each `{name}` matching one or more of `[a-z0-9-]`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let Some(open) = pattern.find('{') else { return pattern == host };
    let Some(close) = pattern[open..].find('}').map(|i| open + i) else { return pattern == host };
    let (literal, rest) = (&pattern[..open], &pattern[close + 1..]);
    let Some(after_literal) = host.strip_prefix(literal) else { return false };
    let label_chars = after_literal.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'-').count();
    (1..=label_chars).any(|taken| host_matches(rest, &after_literal[taken..]))
}

fn push(origins: &mut Vec<Origin>, url: &str) {
    if let Some(origin) = Origin::of_template(url)
        && !origins.contains(&origin)
    {
        origins.push(origin);
    }
}

/// A built-in provider's endpoints (defaults and overrides), plus any other `upstream-urls`
/// entry config gives under its name (executors read some that are not listed endpoints).
fn push_provider(origins: &mut Vec<Origin>, config: &Config, provider: &str) {
    if let Some(builtin) = switchyard_providers::by_id(provider) {
        for endpoint in builtin.endpoints() {
            push(origins, endpoint.default);
        }
    }
    for url in config.upstream_urls.get(provider).into_iter().flat_map(|endpoints| endpoints.values()) {
        push(origins, url);
    }
}

fn push_custom(origins: &mut Vec<Origin>, provider: &CustomOAuthProvider) {
    for url in [
        &provider.issuer,
        &provider.authorization_endpoint,
        &provider.token_endpoint,
        &provider.userinfo_endpoint,
        &provider.api_base,
    ] {
        push(origins, url);
    }
}

/// An auth file's provider's origins (built in, or declared in `oauth-providers`).
pub(super) fn allowed_for_file(config: &Config, credential: &Credential) -> Vec<Origin> {
    let mut origins = Vec::new();
    let Some(provider) = credential.provider() else { return origins };
    if let Some(builtin) =
        switchyard_providers::for_file_type(&provider).or_else(|| switchyard_providers::by_id(&provider))
    {
        push_provider(&mut origins, config, builtin.id());
        // The provider's API-key upstream is the same family (e.g. xAI's identity check on
        // api.x.ai for an OAuth file).
        for (section, providers) in SECTION_PROVIDERS {
            if providers.contains(&builtin.id())
                && let Some(base) = switchyard_providers::exec::api_key_default_base(section)
            {
                push(&mut origins, base);
            }
        }
    } else if let Some(custom) = config.oauth_providers.iter().find(|p| p.name.eq_ignore_ascii_case(&provider)) {
        push_custom(&mut origins, custom);
    }
    origins
}

/// The `upstream-urls` provider names an API-key section's executor reads its URLs from.
const SECTION_PROVIDERS: &[(&str, &[&str])] = &[
    ("claude-api-key", &["claude"]),
    ("codex-api-key", &["codex", "openai"]),
    ("gemini-api-key", &["gemini"]),
    ("vertex-api-key", &["vertex"]),
    ("xai-api-key", &["xai"]),
];

/// A config key's origins: its `base-url`, and for the provider sections (not
/// openai-compatibility, whose only host is its base URL) that provider's.
pub(super) fn allowed_for_key(config: &Config, key: &ConfigKey<'_>, compat: bool) -> Vec<Origin> {
    let mut origins = Vec::new();
    push(&mut origins, key.base_url);
    if !compat {
        if let Some(base) = switchyard_providers::exec::api_key_default_base(key.section) {
            push(&mut origins, base);
        }
        let providers = SECTION_PROVIDERS.iter().find(|(section, _)| *section == key.section).map(|(_, p)| *p);
        for provider in providers.unwrap_or_default() {
            push_provider(&mut origins, config, provider);
        }
    }
    origins
}

/// Without a credential: only URLs config itself names.
pub(super) fn allowed_for_config(config: &Config) -> Vec<Origin> {
    let mut origins = Vec::new();
    for url in config.upstream_urls.values().flat_map(|endpoints| endpoints.values()) {
        push(&mut origins, url);
    }
    for (_, entries) in config.api_key_sections() {
        for entry in entries {
            push(&mut origins, &entry.base_url);
        }
    }
    for compat in &config.openai_compatibility {
        push(&mut origins, &compat.base_url);
    }
    for provider in &config.oauth_providers {
        push_custom(&mut origins, provider);
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sections_without_a_base_url_admit_their_executors_default_host_only() {
        let config = Config::default();
        let headers = std::collections::BTreeMap::new();
        let key = |section| ConfigKey { section, key: "k", base_url: "", headers: &headers, proxy_url: "" };
        let admits = |origins: &[Origin], url: &str| origins.iter().any(|o| o.admits(&origin(url)));
        let gemini = allowed_for_key(&config, &key("gemini-api-key"), false);
        assert!(admits(&gemini, "https://generativelanguage.googleapis.com/v1beta/models"));
        assert!(!admits(&gemini, "https://api.openai.com/v1/models"));
        let codex = allowed_for_key(&config, &key("codex-api-key"), false);
        assert!(admits(&codex, "https://api.openai.com/v1/models"));
        let xai = allowed_for_key(&config, &key("xai-api-key"), false);
        assert!(admits(&xai, "https://api.x.ai/v1/api-key"));
        assert!(!admits(&xai, "https://generativelanguage.googleapis.com/"));
    }

    #[test]
    fn an_xai_oauth_file_admits_the_xai_api_host() {
        let credential = Credential::from_json(br#"{"type":"xai","access_token":"t"}"#).unwrap();
        let origins = allowed_for_file(&Config::default(), &credential);
        assert!(origins.iter().any(|o| o.admits(&origin("https://api.x.ai/v1/api-key"))));
        assert!(!origins.iter().any(|o| o.admits(&origin("https://api.anthropic.com/v1/messages"))));
    }

    fn origin(url: &str) -> Origin {
        Origin::of_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn templates_parse_with_default_ports_credentials_and_placeholders() {
        let t = Origin::of_template("https://{location}-aiplatform.googleapis.com/v1").unwrap();
        assert!(t.admits(&origin("https://us-central1-aiplatform.googleapis.com/v1/x")));
        assert!(!t.admits(&origin("https://evil.example/us-aiplatform.googleapis.com")));
        assert!(!t.admits(&origin("https://a.b-aiplatform.googleapis.com/")), "one label only");
        assert!(!t.admits(&origin("http://us-aiplatform.googleapis.com/")), "scheme counts");
        let local = Origin::of_template("http://user:pw@127.0.0.1:9999/oauth#frag").unwrap();
        assert!(local.admits(&origin("http://127.0.0.1:9999/other")));
        assert!(!local.admits(&origin("http://127.0.0.1:9998/other")), "port counts");
        let v6 = Origin::of_template("http://[::1]:8080").unwrap();
        assert!(v6.admits(&origin("http://[::1]:8080/x")));
        assert!(Origin::of_template("").is_none());
        assert!(Origin::of_template("not a url").is_none());
        assert_eq!(Origin::of_template("https://API.anthropic.com").unwrap().to_string(), "https://api.anthropic.com");
    }

    #[test]
    fn placeholders_match_suffixes_and_middles() {
        assert!(host_matches("oidc.{region}.amazonaws.com", "oidc.us-east-1.amazonaws.com"));
        assert!(!host_matches("oidc.{region}.amazonaws.com", "oidc..amazonaws.com"));
        assert!(!host_matches("oidc.{region}.amazonaws.com", "oidc.x.amazonaws.com.evil.example"));
        assert!(host_matches("api.example.com", "api.example.com"));
        assert!(!host_matches("api.example.com", "api.example.com.evil"));
    }
}
