//! One attempt: one account, its credential, one upstream call (plus one forced refresh after a
//! 401), bounded by the upstream timeouts. What comes back is already classified for the plan:
//! an answer to relay, the client's own error, or a failure that sends the plan on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use futures::stream::BoxStream;
use switchyard_auth::StoredAuth;
use switchyard_auth::login::RefreshError;
use switchyard_config::Config;
use switchyard_dialects::Dialect;
use switchyard_dialects::ir::ErrorInfo;
use switchyard_health::FailureSignal;
use switchyard_providers::executor::{
    ExecContext, ExecError, Executor, TokenSource, UpstreamAuth, UpstreamRequest, UpstreamResponse,
};
use switchyard_router::{AccountKind, Attempt, Outcome};

use super::pipeline::ClientCall;
use super::scrub::Scrubber;
use crate::AppState;

/// A whole (non-streamed) upstream answer larger than this is treated as a failure.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How much of an error body the health classifier reads.
const MAX_CLASSIFIED_BYTES: usize = 4096;
/// How much of an upstream error body is kept for the usage record's failure summary (which
/// keeps 4 KiB of it once redacted).
const ERROR_BODY_KEPT: usize = 16 * 1024;
/// An access token must stay valid at least this long to be used for a request.
const TOKEN_SKEW: Duration = Duration::from_secs(60);

/// How one attempt reaches its upstream.
pub(super) struct Target {
    pub executor: Arc<dyn Executor>,
    auth: AuthMaterial,
}

enum AuthMaterial {
    /// An auth file; `base_url` is set for configured OAuth providers, whose token is used like
    /// an API key against their `api-base`.
    OAuth {
        file: String,
        base_url: Option<String>,
    },
    Key {
        key: String,
        base_url: Option<String>,
        headers: Vec<(String, String)>,
    },
}

pub(super) fn resolve(config: &Config, attempt: &Attempt) -> Option<Target> {
    use switchyard_providers::exec::api_key_executor;
    match &*attempt.kind {
        AccountKind::OAuth { file } => {
            if let Some(executor) = switchyard_providers::by_id(&attempt.provider).and_then(|p| p.executor()) {
                return Some(Target { executor, auth: AuthMaterial::OAuth { file: file.clone(), base_url: None } });
            }
            // A configured OAuth provider: its token is a bearer key for `api-base`.
            let spec = config.oauth_providers.iter().find(|p| *p.name == *attempt.provider)?;
            let section = match spec.dialect.as_str() {
                "openai" => "openai-compatibility",
                "claude" => "claude-api-key",
                "openai-responses" => "codex-api-key",
                _ => return None,
            };
            let base_url = Some(spec.api_base.clone()).filter(|b| !b.is_empty());
            Some(Target {
                executor: api_key_executor(section)?,
                auth: AuthMaterial::OAuth { file: file.clone(), base_url },
            })
        }
        kind => {
            let key = kind.config_key(config)?;
            Some(Target {
                executor: api_key_executor(key.section)?,
                auth: AuthMaterial::Key {
                    key: key.key.to_owned(),
                    base_url: Some(key.base_url.to_owned()).filter(|b| !b.is_empty()),
                    headers: key.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                },
            })
        }
    }
}

/// The upstream stages that can time out (`timeouts.upstream-*`), as named to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    FirstByte,
    StreamFirstByte,
    StreamIdle,
    Total,
}

impl Stage {
    pub fn timed_out(self, limit: Duration) -> ErrorInfo {
        let seconds = limit.as_secs_f64();
        let message = match self {
            Stage::FirstByte => format!("upstream timed out waiting for the first byte after {seconds}s"),
            Stage::StreamFirstByte => {
                format!("upstream timed out waiting for the first byte (stream) after {seconds}s")
            }
            Stage::StreamIdle => format!("upstream timed out: no stream data (stream idle) for {seconds}s"),
            Stage::Total => format!("upstream timed out: the answer took longer than {seconds}s (total)"),
        };
        ErrorInfo { status: 504, kind: "timeout".into(), message }
    }
}

/// The `timeouts.upstream-*` limits in force for a request (`None` = no limit).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub first_byte: Option<Duration>,
    pub stream_first_byte: Option<Duration>,
    pub stream_idle: Option<Duration>,
    pub total: Option<Duration>,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        use switchyard_config::Timeouts;
        let t = &config.timeouts;
        Self {
            first_byte: Timeouts::limit(t.upstream_first_byte),
            stream_first_byte: Timeouts::limit(t.upstream_stream_first_byte),
            stream_idle: Timeouts::limit(t.upstream_stream_idle),
            total: Timeouts::limit(t.upstream_total),
        }
    }
}

/// A deadline and the stage to blame when it passes.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    stage: Stage,
    limit: Duration,
}

impl Deadline {
    fn after(start: Instant, stage: Stage, limit: Option<Duration>) -> Option<Self> {
        limit.map(|limit| Self { at: start + limit, stage, limit })
    }

    /// The earlier of two deadlines.
    fn first(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// Runs `future` until `deadline`; `Err` names the stage that ran out.
async fn within<T>(deadline: Option<Deadline>, future: impl Future<Output = T>) -> Result<T, ErrorInfo> {
    match deadline {
        None => Ok(future.await),
        Some(d) => tokio::time::timeout_at(d.at.into(), future).await.map_err(|_| d.stage.timed_out(d.limit)),
    }
}

/// A relayed stream's items: bytes, or why it broke off (then it ends).
pub(super) type AnswerStream = BoxStream<'static, Result<Bytes, ErrorInfo>>;

pub(super) enum AnswerBody {
    Whole(Bytes),
    /// The first chunk already arrived (or the stream was empty).
    Stream(AnswerStream),
}

/// A 2xx answer, with the scrubber of the credential that produced it.
pub(super) struct Answer {
    pub body: AnswerBody,
    pub scrubber: Scrubber,
}

pub(super) enum AttemptResult {
    Answered(Answer),
    /// The upstream rejected the request itself (400, 413, 422, ...): another account would
    /// too. Already scrubbed, like `body`, the upstream's error body.
    ClientError {
        error: ErrorInfo,
        body: String,
    },
    /// This account failed; the next one may succeed. `failure` (scrubbed) is what the client
    /// gets if no account answers; `body` the upstream's error body, if it answered (scrubbed).
    Failed {
        outcome: Outcome,
        failure: Option<ErrorInfo>,
        /// The upstream's error as the health classifier reads it (codes intact: only this
        /// credential's secrets are masked, and only reason codes come out of it).
        read: Option<Box<FailureSignal>>,
        body: Option<Box<str>>,
    },
    /// The upstream has no such operation (token counting on some backends).
    Unsupported,
}

fn failed(status: u16, retry_after: Option<Duration>, message: String, failure: Option<ErrorInfo>) -> AttemptResult {
    AttemptResult::Failed {
        outcome: Outcome::Failure { status, retry_after, credential_wide: false, message },
        failure,
        read: None,
        body: None,
    }
}

/// The pooled HTTP client of the attempt's effective proxy (auth file `proxy_url` > key entry
/// `proxy-url` > global `proxy-url`); an unusable proxy fails the attempt like an unreachable upstream.
pub(super) async fn http_for(
    state: &AppState,
    config: &Config,
    attempt: &Attempt,
) -> Result<reqwest::Client, AttemptResult> {
    let stored;
    let own_proxy = match &*attempt.kind {
        AccountKind::OAuth { file } => {
            stored = state.store.get(file);
            stored.as_ref().and_then(|s| s.credential()).and_then(|c| c.proxy_url())
        }
        kind => kind.config_key(config).map(|key| key.proxy_url),
    };
    state.http_clients.for_account(config, own_proxy).await.map_err(|error| {
        let failure = ErrorInfo { status: 502, kind: "server_error".into(), message: error.to_string() };
        failed(0, None, error.to_string(), Some(failure))
    })
}

/// A failure without an upstream answer to relay (timeout, broken connection).
fn failed_without_answer(info: ErrorInfo) -> AttemptResult {
    let message = info.message.clone();
    failed(info.status, None, message, Some(info))
}

/// Statuses after which another account is tried (CPA §4.5).
fn worth_another_account(status: u16) -> bool {
    matches!(status, 401 | 402 | 403 | 404 | 408 | 429) || status >= 500
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

fn exec_failure(error: &ExecError, scrubber: &Scrubber) -> ErrorInfo {
    let (status, kind) = if *error == ExecError::Timeout { (504, "timeout") } else { (502, "server_error") };
    ErrorInfo { status, kind: kind.into(), message: scrubber.error_text(&error.to_string()) }
}

pub(super) fn upstream_broke(message: &str) -> ErrorInfo {
    // `ExecError::Interrupted` already says it; do not say it twice.
    let message = message.strip_prefix("upstream stream broke off: ").unwrap_or(message);
    ErrorInfo { status: 502, kind: "server_error".into(), message: format!("upstream stream broke off: {message}") }
}

/// The account's auth file, as long as it is still there and readable. (The error is the
/// attempt's result itself, returned once per attempt: its size does not matter here.)
#[allow(clippy::result_large_err)]
fn stored_auth(state: &AppState, file: &str) -> Result<Arc<StoredAuth>, AttemptResult> {
    let Some(stored) = state.store.get(file) else {
        return Err(failed(0, None, "auth file disappeared".into(), None));
    };
    if stored.credential().is_none() {
        return Err(failed(0, None, "auth file is corrupt".into(), None));
    }
    Ok(stored)
}

/// What one attempt sends, ready to go.
pub(super) struct Prepared<'a> {
    pub attempt: &'a Attempt,
    pub target: &'a Target,
    /// The dialect sent upstream; `body` is in it.
    pub native: Dialect,
    pub body: Bytes,
}

/// One account's attempt.
pub(super) async fn run(
    state: &AppState,
    ctx: &ExecContext,
    call: &ClientCall,
    prepared: Prepared<'_>,
    limits: Limits,
) -> AttemptResult {
    let Prepared { attempt, target, native, body } = prepared;
    let stream = call.stream.unwrap_or(false);
    let mut refreshed = false;
    let mut secrets: Vec<String> = Vec::new();
    let dialect = (native != target.executor.dialect()).then_some(native);
    loop {
        let request = UpstreamRequest {
            operation: call.operation,
            dialect,
            model: attempt.upstream_model.to_string(),
            stream,
            body: body.clone(),
            client_headers: call.headers.clone(),
        };
        // Whatever authenticates this call, and every secret it could echo.
        let stored;
        let token: String;
        let auth = match &target.auth {
            AuthMaterial::OAuth { file, base_url: None }
                if target.executor.token_source() == TokenSource::Credential =>
            {
                stored = match stored_auth(state, file) {
                    Ok(found) => found,
                    Err(failure) => return failure,
                };
                let credential = stored.credential().expect("checked by stored_auth");
                Scrubber::credential_secrets(credential, &mut secrets);
                UpstreamAuth::Stored { credential }
            }
            AuthMaterial::OAuth { file, base_url } => {
                token = match state.refresher.fresh_access_token(file, TOKEN_SKEW).await {
                    Ok(token) => token,
                    Err(RefreshError::Revoked(reason)) => return failed(401, None, reason, None),
                    Err(error) => return failed(0, None, error.to_string(), None),
                };
                secrets.push(token.clone());
                match base_url {
                    Some(base_url) => UpstreamAuth::ApiKey { key: &token, base_url: Some(base_url), headers: &[] },
                    None => {
                        stored = match stored_auth(state, file) {
                            Ok(found) => found,
                            Err(failure) => return failure,
                        };
                        let credential = stored.credential().expect("checked by stored_auth");
                        Scrubber::credential_secrets(credential, &mut secrets);
                        UpstreamAuth::OAuth { access_token: &token, credential }
                    }
                }
            }
            AuthMaterial::Key { key, base_url, headers } => {
                secrets.push(key.clone());
                secrets.extend(headers.iter().filter(|(name, _)| switchyard_redact::is_sensitive_name(name)).flat_map(
                    // `Bearer <key>`: the key alone, too.
                    |(_, value)| [value.clone(), value.rsplit(' ').next().unwrap_or_default().to_owned()],
                ));
                UpstreamAuth::ApiKey { key, base_url: base_url.as_deref(), headers }
            }
        };
        let scrubber = Scrubber::new(&secrets);

        let started = Instant::now();
        let total = if stream { None } else { Deadline::after(started, Stage::Total, limits.total) };
        let head = if stream {
            Deadline::after(started, Stage::StreamFirstByte, limits.stream_first_byte)
        } else {
            Deadline::first(Deadline::after(started, Stage::FirstByte, limits.first_byte), total)
        };
        let result = match within(head, target.executor.execute(ctx, &auth, request)).await {
            Ok(result) => result,
            Err(timed_out) => return failed_without_answer(timed_out),
        };
        let response = match result {
            Ok(response) => response,
            Err(error @ (ExecError::Connect(_) | ExecError::Timeout | ExecError::Interrupted(_))) => {
                // No upstream answer to relay: say what broke (502, or 504 for a timeout).
                return failed_without_answer(exec_failure(&error, &scrubber));
            }
            Err(error @ ExecError::Credential(_)) => {
                return failed(403, None, scrubber.error_text(&error.to_string()), None);
            }
            Err(ExecError::Unsupported(_)) => return AttemptResult::Unsupported,
        };
        let status = response.status;
        let oauth_file = match &target.auth {
            AuthMaterial::OAuth { file, base_url: None } => Some(file.as_str()),
            _ => None,
        };
        if (200..300).contains(&status) {
            if let Some(file) = oauth_file {
                let _ = crate::quota::observe(state, file, &attempt.provider, status, &response.headers, None);
            }
            return if stream {
                first_chunk(response, head, limits.stream_idle, scrubber).await
            } else {
                match within(total, collect(response.body, MAX_RESPONSE_BYTES)).await {
                    Ok(Ok(body)) => AttemptResult::Answered(Answer { body: AnswerBody::Whole(body), scrubber }),
                    Ok(Err(error)) => failed_without_answer(upstream_broke(&scrubber.error_text(&error.to_string()))),
                    Err(timed_out) => failed_without_answer(timed_out),
                }
            };
        }
        // One in-request refresh for a rejected OAuth token before giving up on the account.
        if status == 401
            && !refreshed
            && let AuthMaterial::OAuth { file, .. } = &target.auth
            && state.refresher.force_refresh(file).await.is_ok()
        {
            refreshed = true;
            continue;
        }
        // An error body is small; a stalled one is cut at the stage's limit and the status stands.
        let error_deadline =
            if stream { Deadline::after(Instant::now(), Stage::StreamIdle, limits.stream_idle) } else { total };
        let raw = match within(error_deadline, collect(response.body, MAX_RESPONSE_BYTES)).await {
            Ok(Ok(raw)) => raw,
            _ => Bytes::new(),
        };
        // A limit the answer names a reset for (Codex's 429 body) cools the account until then.
        let quota_wait = oauth_file.and_then(|file| {
            crate::quota::observe(state, file, &attempt.provider, status, &response.headers, Some(&raw))
        });
        let wait = retry_after(&response.headers).or(quota_wait);
        let body = scrubber.credentials(&raw);
        let failure = scrubber.error_info(&native.error_to_ir(status, &body));
        let kept = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_KEPT)]).into_owned();
        if !worth_another_account(status) {
            return AttemptResult::ClientError { error: failure, body: kept };
        }
        let message = scrubber.error_text(&String::from_utf8_lossy(&body[..body.len().min(512)]));
        let read = FailureSignal::from_body(
            &attempt.provider,
            status,
            &String::from_utf8_lossy(&body[..body.len().min(MAX_CLASSIFIED_BYTES)]),
        );
        let outcome = Outcome::Failure { status, retry_after: wait, credential_wide: false, message };
        return AttemptResult::Failed {
            outcome,
            failure: Some(failure),
            read: Some(Box::new(read)),
            body: Some(kept.into()),
        };
    }
}

/// A stream answer is only relayed once its first bytes arrived (within the stream's first-byte
/// limit): until then nothing reached the client and another account can still be tried.
async fn first_chunk(
    response: UpstreamResponse,
    head: Option<Deadline>,
    idle: Option<Duration>,
    scrubber: Scrubber,
) -> AttemptResult {
    let mut body = response.body;
    let first = loop {
        match within(head, body.next()).await {
            Err(timed_out) => return failed_without_answer(timed_out),
            Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
            Ok(Some(Ok(chunk))) => break Some(chunk),
            Ok(Some(Err(error))) => {
                return failed_without_answer(upstream_broke(&scrubber.error_text(&error.to_string())));
            }
            Ok(None) => break None,
        }
    };
    let rest = idle_limited(body, idle);
    let stream = match first {
        Some(chunk) => futures::stream::once(async move { Ok(chunk) }).chain(rest).boxed(),
        None => rest,
    };
    AttemptResult::Answered(Answer { body: AnswerBody::Stream(stream), scrubber })
}

/// The upstream body with the idle limit applied between chunks; a gap past it, or a broken
/// body, is the stream's last item.
fn idle_limited(body: BoxStream<'static, Result<Bytes, ExecError>>, idle: Option<Duration>) -> AnswerStream {
    futures::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        let item = match idle {
            None => body.next().await,
            Some(limit) => match tokio::time::timeout(limit, body.next()).await {
                Ok(item) => item,
                Err(_) => return Some((Err(Stage::StreamIdle.timed_out(limit)), None)),
            },
        };
        match item? {
            Ok(chunk) => Some((Ok(chunk), Some(body))),
            Err(error) => Some((Err(upstream_broke(&error.to_string())), None)),
        }
    })
    .boxed()
}

pub(super) async fn collect(
    mut body: BoxStream<'static, Result<Bytes, ExecError>>,
    limit: usize,
) -> Result<Bytes, ExecError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
            return Err(ExecError::Interrupted(format!("answer exceeds {limit} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// CPA's `auth_index` of the account: the auth file's, or the config key's.
pub(super) fn auth_index(state: &AppState, config: &Config, attempt: &Attempt) -> String {
    crate::management::account_auth_index(state, config, &attempt.kind).unwrap_or_default()
}
