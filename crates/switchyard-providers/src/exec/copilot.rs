//! GitHub Copilot's chat API (OpenAI Chat Completions), reached with a short-lived Copilot API
//! token that the account's GitHub token is exchanged for (providers-extra §1.2, §1.5).
//!
//! The exchange's answer is cached in memory, process-wide, keyed by a SHA-256 of the GitHub
//! token (never the token itself): reused while its `expires_at` is more than 5 min away (25 min
//! assumed when the answer has none), renewed transparently before that, one exchange at a time
//! per key (concurrent requests wait for it and share its result). A 401 from the chat API drops
//! the entry, so the pipeline's retry (after the refresher re-validated the GitHub token) gets a
//! new one. The Copilot token never reaches the auth file.
//!
//! Base URL: `upstream-urls.github-copilot.api` when configured, else the exchange's
//! `endpoints.api`, else `https://api.githubcopilot.com`. Headers are those of VS Code's Copilot
//! Chat (cpa-core §1.10).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_config::Config;
use switchyard_dialects::Dialect;

use super::{Headers, pass_through, post, send, uuid_v4};
use crate::executor::{
    ExecContext, ExecError, Executor, Operation, TokenSource, UpstreamAuth, UpstreamRequest, UpstreamResponse,
};
use crate::oauth_http::{self, str_at};

pub(crate) const PROVIDER: &str = "github-copilot";
pub(crate) const COPILOT_TOKEN_URL: &str = "https://api.github.com/copilot_internal/v2/token";
pub(crate) const API_URL: &str = "https://api.githubcopilot.com";
/// What VS Code's Copilot Chat extension identifies as.
pub(crate) const EDITOR_VERSION: &str = "vscode/1.107.0";
pub(crate) const EDITOR_PLUGIN_VERSION: &str = "copilot-chat/0.35.0";
pub(crate) const USER_AGENT: &str = "GitHubCopilotChat/0.35.0";
const INTEGRATION_ID: &str = "vscode-chat";
const OPENAI_INTENT: &str = "conversation-edits";
pub(crate) const GITHUB_API_VERSION: &str = "2025-04-01";
/// A cached token is renewed once it has less than this left.
pub(crate) const RENEW_BEFORE_SECS: i64 = 5 * 60;
/// The lifetime assumed when an exchange answer has no `expires_at`.
pub(crate) const ASSUMED_LIFETIME_SECS: i64 = 25 * 60;
/// When renewal fails for a passing reason, a token with at least this much left is still used.
const LAST_RESORT_SECS: i64 = 30;

/// A Copilot API token from the exchange. Its `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiToken {
    pub(crate) token: String,
    /// Unix seconds.
    pub(crate) expires_at: i64,
    /// `endpoints.api` of the answer.
    pub(crate) api: Option<String>,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken").field("expires_at", &self.expires_at).field("api", &self.api).finish()
    }
}

impl ApiToken {
    /// The token in an exchange answer received at `now`; `None` without a non-blank `token`.
    pub(crate) fn from_answer(body: &Value, now: i64) -> Option<ApiToken> {
        let token = str_at(body, &["token"])?.to_owned();
        let expires_at = body.get("expires_at").and_then(unix_seconds).unwrap_or(now + ASSUMED_LIFETIME_SECS);
        let api = str_at(body, &["endpoints", "api"]).map(str::to_owned);
        Some(ApiToken { token, expires_at, api })
    }

    /// Whether the token can still be handed out at `now` without renewing it first.
    pub(crate) fn usable_at(&self, now: i64) -> bool {
        self.expires_at - now > RENEW_BEFORE_SECS
    }
}

fn unix_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Why a token exchange failed. Texts carry no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ExchangeError {
    /// 401: GitHub no longer accepts the account's token (revoked, app access removed).
    Rejected,
    /// 403 / 404: the account has no Copilot; GitHub's explanation when it gave one.
    NoSubscription(Option<String>),
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// Another status, or an answer without a token.
    Failed(String),
    /// GitHub could not be reached.
    Unreachable(String),
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Rejected => {
                f.write_str("GitHub rejected the account's token at the Copilot token exchange (HTTP 401)")
            }
            ExchangeError::NoSubscription(Some(message)) => write!(f, "no active Copilot subscription: {message}"),
            ExchangeError::NoSubscription(None) => {
                f.write_str("no active Copilot subscription for this GitHub account")
            }
            ExchangeError::RateLimited { .. } => f.write_str("the Copilot token exchange is rate limited"),
            ExchangeError::Failed(why) => write!(f, "Copilot token exchange failed: {why}"),
            ExchangeError::Unreachable(why) => write!(f, "Copilot token exchange failed: {why}"),
        }
    }
}

/// One exchange: `GET {copilot-token}` with `Authorization: token <github token>`.
async fn exchange(http: &reqwest::Client, config: &Config, github_token: &str) -> Result<ApiToken, ExchangeError> {
    let url = config.upstream_url(PROVIDER, "copilot-token").unwrap_or(COPILOT_TOKEN_URL);
    let mut authorization = HeaderValue::from_str(&format!("token {github_token}"))
        .map_err(|_| ExchangeError::Failed("the account's GitHub token is not valid header text".into()))?;
    authorization.set_sensitive(true);
    let request = http
        .get(url)
        .header(header::AUTHORIZATION, authorization)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .header("editor-version", EDITOR_VERSION)
        .header("editor-plugin-version", EDITOR_PLUGIN_VERSION)
        .header("x-github-api-version", GITHUB_API_VERSION);
    let reply = oauth_http::send(request).await.map_err(ExchangeError::Unreachable)?;
    let body = reply.json();
    match reply.status {
        status if status.is_success() => {
            let now = chrono::Utc::now().timestamp();
            body.as_ref()
                .and_then(|b| ApiToken::from_answer(b, now))
                .ok_or_else(|| ExchangeError::Failed(format!("HTTP {} without a token in the answer", status.as_u16())))
        }
        StatusCode::UNAUTHORIZED => Err(ExchangeError::Rejected),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
            let message = body.as_ref().and_then(|b| str_at(b, &["error_details", "message"])).map(server_text);
            Err(ExchangeError::NoSubscription(message))
        }
        StatusCode::TOO_MANY_REQUESTS => Err(ExchangeError::RateLimited { retry_after: reply.retry_after }),
        status => {
            let message = body.as_ref().and_then(|b| str_at(b, &["message"])).map(server_text);
            let suffix = message.map(|m| format!(" ({m})")).unwrap_or_default();
            Err(ExchangeError::Failed(format!("HTTP {}{suffix}", status.as_u16())))
        }
    }
}

/// Server-supplied text, fit for an error message: credentials masked, length capped.
fn server_text(text: &str) -> String {
    oauth_http::truncate(&switchyard_redact::text(text), 200)
}

/// What a caller of [`api_token`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A token good for more than [`RENEW_BEFORE_SECS`]: the cached one when it is.
    Usable,
    /// A new exchange whatever is cached (login, refresher): proves the GitHub token works.
    Exchanged,
}

/// One cache entry: the token, and the outcome of the latest exchange for waiters to share.
#[derive(Default)]
struct Slot {
    /// Finished exchanges; a waiter that sees it change shares that exchange's outcome.
    exchanges: AtomicU64,
    inner: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    token: Option<ApiToken>,
    last_failure: Option<ExchangeError>,
}

type Key = [u8; 32];

static CACHE: LazyLock<Mutex<HashMap<Key, Arc<Slot>>>> = LazyLock::new(Mutex::default);

fn key(github_token: &str) -> Key {
    Sha256::digest(github_token.as_bytes()).into()
}

/// The slot of `github_token`, created when `create`. Entries nobody uses whose token has run
/// out are dropped on the way, so accounts that went away do not pile up.
fn slot(github_token: &str, create: bool) -> Option<Arc<Slot>> {
    let now = chrono::Utc::now().timestamp();
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache.retain(|_, slot| {
        Arc::strong_count(slot) > 1
            || slot.inner.try_lock().map_or(true, |state| state.token.as_ref().is_some_and(|t| t.expires_at > now))
    });
    let key = key(github_token);
    if create {
        return Some(cache.entry(key).or_default().clone());
    }
    cache.get(&key).cloned()
}

/// A Copilot API token for `github_token`: the cached one when `want` allows it and it is
/// usable, else a new exchange (one at a time per GitHub token; callers queued behind it get
/// its outcome). When renewal fails for a passing reason, a cached token that has not really
/// run out yet is still returned.
pub(crate) async fn api_token(
    http: &reqwest::Client,
    config: &Config,
    github_token: &str,
    want: Want,
) -> Result<ApiToken, ExchangeError> {
    let slot = slot(github_token, true).expect("created on demand");
    let ticket = slot.exchanges.load(Ordering::Acquire);
    let mut state = slot.inner.lock().await;
    if want == Want::Usable {
        let now = chrono::Utc::now().timestamp();
        if let Some(token) = state.token.as_ref().filter(|t| t.usable_at(now)) {
            return Ok(token.clone());
        }
        if slot.exchanges.load(Ordering::Acquire) != ticket
            && let Some(failure) = &state.last_failure
        {
            return Err(failure.clone());
        }
    }
    let result = exchange(http, config, github_token).await;
    slot.exchanges.fetch_add(1, Ordering::AcqRel);
    match result {
        Ok(token) => {
            state.token = Some(token.clone());
            state.last_failure = None;
            Ok(token)
        }
        Err(failure) => {
            state.last_failure = Some(failure.clone());
            let passing = matches!(
                failure,
                ExchangeError::Unreachable(_) | ExchangeError::Failed(_) | ExchangeError::RateLimited { .. }
            );
            if !passing {
                state.token = None;
                return Err(failure);
            }
            let now = chrono::Utc::now().timestamp();
            match state.token.as_ref().filter(|t| want == Want::Usable && t.expires_at - now > LAST_RESORT_SECS) {
                Some(token) => {
                    tracing::warn!(error = %failure, "Copilot token renewal failed; using the current token a little longer");
                    Ok(token.clone())
                }
                None => Err(failure),
            }
        }
    }
}

/// Drops the cached token of `github_token` if it is still `used` (the chat API refused it).
pub(crate) async fn forget(github_token: &str, used: &str) {
    let Some(slot) = slot(github_token, false) else { return };
    let mut state = slot.inner.lock().await;
    if state.token.as_ref().is_some_and(|t| t.token == used) {
        state.token = None;
    }
}

pub struct CopilotExecutor;

#[async_trait::async_trait]
impl Executor for CopilotExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    /// The auth file holds the GitHub token; the executor derives the Copilot token from it.
    fn token_source(&self) -> TokenSource {
        TokenSource::Credential
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("GitHub Copilot cannot count tokens".into()));
        }
        let credential = match auth {
            UpstreamAuth::Stored { credential } | UpstreamAuth::OAuth { credential, .. } => *credential,
            UpstreamAuth::ApiKey { .. } => {
                return Err(ExecError::Credential("GitHub Copilot is served from a github-copilot auth file".into()));
            }
        };
        let github_token = credential
            .access_token()
            .ok_or_else(|| ExecError::Credential("the GitHub Copilot auth file has no access_token".into()))?;
        let api = match api_token(&ctx.http, &ctx.config, github_token, Want::Usable).await {
            Ok(api) => api,
            Err(ExchangeError::Unreachable(why)) => {
                return Err(ExecError::Connect(format!("Copilot token exchange: {why}")));
            }
            Err(failure) => return Ok(exchange_failure(&failure)),
        };
        let base = match ctx.config.upstream_url(PROVIDER, "api") {
            Some(configured) => configured.to_owned(),
            None => api.api.clone().unwrap_or_else(|| API_URL.to_owned()),
        };
        let shaped = shape(request.body, request.stream);

        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {}", api.token))?;
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        headers.set("user-agent", USER_AGENT)?;
        headers.set("editor-version", EDITOR_VERSION)?;
        headers.set("editor-plugin-version", EDITOR_PLUGIN_VERSION)?;
        headers.set("copilot-integration-id", INTEGRATION_ID)?;
        headers.set("openai-intent", OPENAI_INTENT)?;
        headers.set("x-github-api-version", GITHUB_API_VERSION)?;
        headers.set("x-initiator", if shaped.agent { "agent" } else { "user" })?;
        headers.set("x-request-id", &uuid_v4())?;
        if shaped.vision {
            headers.set("copilot-vision-request", "true")?;
        }
        let response = send(post(ctx, &base, "/chat/completions").headers(headers.0).body(shaped.body)).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            forget(github_token, &api.token).await;
        }
        Ok(pass_through(response))
    }
}

/// The request body as sent, and what it says about the request.
struct Shaped {
    body: Bytes,
    /// The last message is the model's or a tool's: the agent continues on its own
    /// (`X-Initiator: agent`), rather than a user asking.
    agent: bool,
    /// A message carries an image (`Copilot-Vision-Request: true`, without which images are refused).
    vision: bool,
}

/// Non-stream forces `stream: false` (and drops `stream_options`, which only streams take);
/// stream forces `stream: true` with `stream_options.include_usage: true`. A body that is not a
/// JSON object goes out as it is (the upstream says why).
fn shape(body: Bytes, stream: bool) -> Shaped {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return Shaped { body, agent: false, vision: false };
    };
    map.insert("stream".into(), stream.into());
    if stream {
        let options = map.entry("stream_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["include_usage"] = true.into();
    } else {
        map.remove("stream_options");
    }
    let messages = map.get("messages").and_then(Value::as_array);
    let agent = messages
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        .is_some_and(|role| matches!(role, "assistant" | "tool"));
    let vision = messages.into_iter().flatten().any(|message| {
        message
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.iter().any(|p| p.get("type").and_then(Value::as_str) == Some("image_url")))
    });
    let body = serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body);
    Shaped { body, agent, vision }
}

/// A failed exchange as the chat API's answer would look (OpenAI error shape), so the pipeline
/// treats it like any upstream refusal: a 401 makes it re-validate the account (and mark it as
/// needing a re-login when GitHub keeps refusing).
fn exchange_failure(failure: &ExchangeError) -> UpstreamResponse {
    let (status, kind, code) = match failure {
        ExchangeError::Rejected => (401, "authentication_error", "github_token_rejected"),
        ExchangeError::NoSubscription(_) => (403, "permission_error", "no_copilot_subscription"),
        ExchangeError::RateLimited { .. } => (429, "rate_limit_error", "rate_limited"),
        ExchangeError::Failed(_) | ExchangeError::Unreachable(_) => (502, "server_error", "token_exchange_failed"),
    };
    let body = json!({"error": {"message": failure.to_string(), "type": kind, "code": code}});
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let ExchangeError::RateLimited { retry_after: Some(wait) } = failure
        && let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string())
    {
        headers.insert(header::RETRY_AFTER, value);
    }
    let bytes = Bytes::from(body.to_string());
    UpstreamResponse { status, headers, body: futures::stream::once(async { Ok(bytes) }).boxed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_with_the_assumed_lifetime_when_expiry_is_missing() {
        let now = 1_700_000_000;
        let full = json!({"token": "t", "expires_at": now + 1800, "endpoints": {"api": "https://api.x"}});
        let token = ApiToken::from_answer(&full, now).unwrap();
        assert_eq!((token.expires_at, token.api.as_deref()), (now + 1800, Some("https://api.x")));
        let bare = ApiToken::from_answer(&json!({"token": "t"}), now).unwrap();
        assert_eq!((bare.expires_at, bare.api), (now + ASSUMED_LIFETIME_SECS, None));
        assert_eq!(ApiToken::from_answer(&json!({"token": " "}), now), None);
        assert_eq!(ApiToken::from_answer(&json!({"expires_at": now}), now), None);
        let text = ApiToken::from_answer(&json!({"token": "t", "expires_at": "1700000100"}), now).unwrap();
        assert_eq!(text.expires_at, 1_700_000_100);
    }

    #[test]
    fn tokens_are_renewed_five_minutes_before_expiry() {
        let token = ApiToken { token: "t".into(), expires_at: 10_000, api: None };
        assert!(token.usable_at(10_000 - RENEW_BEFORE_SECS - 1));
        assert!(!token.usable_at(10_000 - RENEW_BEFORE_SECS));
        assert!(!token.usable_at(10_001));
        let assumed = ApiToken::from_answer(&json!({"token": "t"}), 0).unwrap();
        assert!(assumed.usable_at(ASSUMED_LIFETIME_SECS - RENEW_BEFORE_SECS - 1), "20 min of use without expires_at");
        assert!(!assumed.usable_at(ASSUMED_LIFETIME_SECS - RENEW_BEFORE_SECS));
    }

    #[test]
    fn debug_shows_no_token() {
        let token = ApiToken { token: "tid=secret;exp=1".into(), expires_at: 1, api: None };
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn shaping_forces_the_stream_flags_and_reads_initiator_and_vision() {
        let body = |v: Value| Bytes::from(v.to_string());
        let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                           "stream": true, "stream_options": {"include_usage": false}});
        let shaped = shape(body(plain.clone()), false);
        let sent: Value = serde_json::from_slice(&shaped.body).unwrap();
        assert_eq!(sent["stream"], false);
        assert!(sent.get("stream_options").is_none());
        assert!(!shaped.agent && !shaped.vision);

        let shaped = shape(body(json!({"model": "m", "messages": [], "stream_options": 3})), true);
        let sent: Value = serde_json::from_slice(&shaped.body).unwrap();
        assert_eq!(
            (sent["stream"].clone(), sent["stream_options"].clone()),
            (json!(true), json!({"include_usage": true}))
        );

        let tool_turn = json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "data:x"}}]},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c", "content": "42"}]});
        let shaped = shape(body(tool_turn), true);
        assert!(shaped.agent && shaped.vision);

        let raw = Bytes::from_static(b"not json");
        assert_eq!(shape(raw.clone(), true).body, raw);
    }

    #[test]
    fn exchange_failures_become_upstream_answers_with_fitting_statuses() {
        assert_eq!(exchange_failure(&ExchangeError::Rejected).status, 401);
        assert_eq!(exchange_failure(&ExchangeError::NoSubscription(None)).status, 403);
        let limited = exchange_failure(&ExchangeError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
        assert_eq!((limited.status, limited.headers.get("retry-after").unwrap().to_str().unwrap()), (429, "7"));
        assert_eq!(exchange_failure(&ExchangeError::Failed("HTTP 500".into())).status, 502);
        assert_eq!(
            ExchangeError::NoSubscription(Some("No access".into())).to_string(),
            "no active Copilot subscription: No access"
        );
    }
}
