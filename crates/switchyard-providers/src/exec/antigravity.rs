//! Gemini (and Claude-on-Vertex) through Antigravity's Code Assist endpoints (providers-extra
//! §6.4, spec §4.6). Base URLs are tried in order — the daily sandbox, then production — moving
//! on when one cannot be reached or answers 429 before any body byte; the last base's answer
//! stands. `upstream-urls.antigravity.daily` / `.prod` override one entry each; the credential's
//! `base_url`, else `upstream-urls.antigravity.api`, replaces the list with that one base. The
//! body goes in Antigravity's envelope; answers are unwrapped like Gemini CLI's.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchyard_auth::Credential;
use switchyard_dialects::Dialect;

use super::gemini_cli::{action_path, code_assist_answer, count_tokens_body, json_object};
use super::{Headers, post, random_i63, send, uuid_v4};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

/// Default bases in the order tried, with the `upstream-urls.antigravity` key overriding each.
const DEFAULT_BASES: [(&str, &str); 2] =
    [("daily", "https://daily-cloudcode-pa.sandbox.googleapis.com"), ("prod", "https://cloudcode-pa.googleapis.com")];
/// The Antigravity hub's user agent (spec §1.3); a credential's `user_agent` replaces it.
pub(crate) const USER_AGENT: &str = "antigravity/hub/2.9.1 darwin/arm64";
const RATE_LIMITED: u16 = 429;

pub struct AntigravityExecutor;

#[async_trait::async_trait]
impl Executor for AntigravityExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let UpstreamAuth::OAuth { access_token, credential } = auth else {
            return Err(ExecError::Credential("Antigravity needs an OAuth account, not an API key".into()));
        };
        let gemini = json_object(&request.body)?;
        let body = match request.operation {
            Operation::Generate => envelope(&request.model, credential, gemini),
            Operation::CountTokens => count_tokens_body(&request.model, gemini),
        }
        .to_string();
        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {access_token}"))?;
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        headers.set("user-agent", credential.str_field("user_agent").unwrap_or(USER_AGENT))?;

        let bases = bases(ctx, credential);
        let mut last_error = None;
        for (index, base) in bases.iter().enumerate() {
            let more = index + 1 < bases.len();
            let call = post(ctx, base, action_path(&request)).headers(headers.0.clone()).body(body.clone());
            match send(call).await {
                Ok(response) if more && response.status().as_u16() == RATE_LIMITED => {
                    tracing::debug!(base = %switchyard_redact::text(base), "antigravity base rate-limited; trying the next one");
                }
                Ok(response) => return Ok(code_assist_answer(response, &request)),
                Err(error @ (ExecError::Connect(_) | ExecError::Timeout)) if more => {
                    tracing::debug!(base = %switchyard_redact::text(base), %error, "antigravity base unreachable; trying the next");
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ExecError::Connect("no antigravity base URL configured".into())))
    }
}

/// Base URLs in the order to try them.
pub(crate) fn bases(ctx: &ExecContext, credential: &Credential) -> Vec<String> {
    let single = credential.str_field("base_url").or_else(|| ctx.config.upstream_url("antigravity", "api"));
    match single {
        Some(base) => vec![base.to_owned()],
        None => DEFAULT_BASES.iter().map(|(key, default)| ctx.endpoint("antigravity", key, default)).collect(),
    }
}

/// Antigravity's envelope (providers-extra §6.4): the Gemini body under `request` with a session
/// id and without `safetySettings`, beside the model, project and a fresh request id.
fn envelope(model: &str, credential: &Credential, mut request: Map<String, Value>) -> Value {
    request.remove("safetySettings");
    // A session id the client already chose is kept.
    if request.get("sessionId").and_then(Value::as_str).is_none_or(str::is_empty) {
        let id = session_id(&request);
        request.insert("sessionId".into(), Value::String(id));
    }
    if model.contains("claude") {
        // Claude behind Antigravity validates tool calls against their schemas.
        if request.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty()) {
            let config = request.entry("toolConfig").or_insert_with(|| json!({}));
            if let Some(config) = config.as_object_mut() {
                let calling = config.entry("functionCallingConfig").or_insert_with(|| json!({}));
                if let Some(calling) = calling.as_object_mut() {
                    calling.insert("mode".into(), json!("VALIDATED"));
                }
            }
        }
    } else if let Some(generation) = request.get_mut("generationConfig").and_then(Value::as_object_mut) {
        // Antigravity's Gemini models reject an explicit output cap.
        generation.remove("maxOutputTokens");
    }
    let project = credential.project_id().map_or_else(random_project, str::to_owned);
    json!({
        "model": model,
        "userAgent": "antigravity",
        "requestType": "agent",
        "project": project,
        "requestId": format!("agent-{}", uuid_v4()),
        "request": request,
    })
}

/// `-<63-bit integer>`, derived from the conversation's first user text so later turns of the
/// same conversation keep it (upstream caches per session); random when there is no text.
fn session_id(request: &Map<String, Value>) -> String {
    let first_text = request.get("contents").and_then(Value::as_array).and_then(|contents| {
        contents
            .iter()
            .filter(|c| c.get("role").and_then(Value::as_str) == Some("user"))
            .find_map(|c| c.pointer("/parts/0/text").and_then(Value::as_str).filter(|t| !t.is_empty()))
    });
    let number = match first_text {
        Some(text) => {
            let digest = Sha256::digest(text.as_bytes());
            (u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1) as i64
        }
        None => random_i63(),
    };
    format!("-{number}")
}

/// What Antigravity itself uses when an account has no project yet.
fn random_project() -> String {
    const ADJECTIVES: [&str; 5] = ["useful", "bright", "swift", "calm", "bold"];
    const NOUNS: [&str; 5] = ["fuze", "wave", "spark", "flow", "core"];
    let hex = switchyard_auth::login::new_state();
    let pick = |at: usize| usize::from_str_radix(&hex[at..at + 2], 16).expect("hex") % 5;
    format!("{}-{}-{}", ADJECTIVES[pick(0)], NOUNS[pick(2)], &hex[4..9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(project: Option<&str>) -> Credential {
        let mut c = Credential::new("antigravity");
        if let Some(p) = project {
            c.fields_mut().insert("project_id".into(), json!(p));
        }
        c
    }

    #[test]
    fn envelope_has_antigravity_fields_and_cleans_the_request() {
        let request = json!({
            "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
            "safetySettings": [{"category": "X", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"maxOutputTokens": 10, "temperature": 0.5},
        });
        let v = envelope("gemini-3-pro-high", &credential(Some("proj-1")), request.as_object().unwrap().clone());
        let keys: Vec<_> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["model", "userAgent", "requestType", "project", "requestId", "request"]);
        assert_eq!(v["project"], "proj-1");
        assert!(v["requestId"].as_str().unwrap().starts_with("agent-"));
        assert_eq!(v["requestId"].as_str().unwrap().len(), "agent-".len() + 36);
        assert!(v["request"].get("safetySettings").is_none());
        assert_eq!(v["request"]["generationConfig"], json!({"temperature": 0.5}));
        let session = v["request"]["sessionId"].as_str().unwrap();
        assert!(session.starts_with('-') && session[1..].parse::<i64>().is_ok());
        // Same first user text, same session.
        let again = envelope("m", &credential(None), request.as_object().unwrap().clone());
        assert_eq!(again["request"]["sessionId"], session);
    }

    #[test]
    fn claude_tools_are_validated_and_missing_projects_are_invented() {
        let request = json!({"tools": [{"functionDeclarations": []}], "generationConfig": {"maxOutputTokens": 5}});
        let v = envelope("claude-sonnet-4-5", &credential(None), request.as_object().unwrap().clone());
        assert_eq!(v["request"]["toolConfig"]["functionCallingConfig"]["mode"], "VALIDATED");
        assert_eq!(v["request"]["generationConfig"]["maxOutputTokens"], 5);
        let project = v["project"].as_str().unwrap();
        let parts: Vec<_> = project.split('-').collect();
        assert_eq!(parts.len(), 3, "{project}");
        assert_eq!(parts[2].len(), 5);
    }
}
