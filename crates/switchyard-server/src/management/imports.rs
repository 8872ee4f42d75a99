//! `POST /v0/management/<name>/import` (CPA's `POST /vertex/import` is this route too): add
//! an account from a file the user already has. The import is found through the registry's login
//! methods of kind Import, never by provider name; its Asks say which form fields to read.
//!
//! Body: multipart with the `file` part (≤ [`MAX_AUTH_FILE_BYTES`]) and the other Asks as form
//! fields; Asks may also come as query parameters (CPA: `location`), a form field winning.
//! `?method=` picks among several import methods of one login.
//!
//! Answers (CPA §2.8): `200 {"status":"ok","auth-file":<absolute path>,"file":<name>, …summary}`
//! where the summary is the saved credential's non-secret identity fields present in it
//! (`project_id`, `email`, `location`, ...). Errors: `400 {"error":"file required"}`; bad input
//! `400 {"error":<reason>,"message":<precise text>}` — the reason is the text before the first
//! `": "` of the import's [`LoginError::InvalidInput`] (Vertex: `invalid json`,
//! `invalid service account`, `project_id missing`, CPA's words), else `invalid input`;
//! `409 {"error":"duplicate",…}`; `500 {"error":"save_failed","message"}`; other provider
//! failures `502 {"error":"import_failed","message"}`; unknown login or one without an import `404`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};
use switchyard_auth::login::{ImportLogin, Login, LoginError, LoginOptions};
use switchyard_providers::{AskKind, LoginKind, LoginMethod, Registry};

use super::auth_files::{MAX_AUTH_FILE_BYTES, query_pairs};
use crate::error::ok_with;
use crate::{ApiError, AppState};

/// A whole import request: the file plus a few short fields.
const MAX_IMPORT_BODY_BYTES: usize = MAX_AUTH_FILE_BYTES + 64 * 1024;
/// Credential fields shown in the answer when present: identity only, never a secret.
pub const SUMMARY_FIELDS: &[&str] =
    &["type", "project_id", "email", "location", "region", "label", "prefix", "auth_method", "provider"];
/// Longest reason word taken from an `InvalidInput` text.
const MAX_REASON_LEN: usize = 40;

/// `POST /v0/management/<name>/import`.
pub async fn import(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let registry = Registry::new(&state.config.get());
    let query = query_pairs(&query);
    let wanted = query.iter().find(|(k, _)| k == "method").map(|(_, v)| v.as_str());
    let (method, login) = import_method(&registry, &name, wanted)?;
    let (file, fields) = read_form(request).await?;

    let mut options = LoginOptions::new();
    for ask in method.asks.iter().filter(|ask| ask.kind != AskKind::File) {
        let given = fields
            .iter()
            .chain(query.iter())
            .find(|(key, value)| key == ask.name && !value.trim().is_empty())
            .map(|(_, value)| value.trim().to_owned());
        match given.or_else(|| ask.default.map(str::to_owned)) {
            Some(value) => {
                options.insert(ask.name.to_owned(), value);
            }
            None if ask.required => return Err(ApiError::bad_request(format!("{} required", ask.name))),
            None => {}
        }
    }
    let needs_file = method.asks.iter().any(|ask| ask.kind == AskKind::File && ask.required);
    if needs_file && file.is_none() {
        return Err(ApiError::bad_request("file required"));
    }

    let imported = state.engine.import(&*login, file.as_deref(), &options).await.map_err(import_error)?;
    tracing::info!(provider = login.spec().name, file = %imported.file_name, "management import saved");
    let path = state.store.dir().join(&imported.file_name);
    let mut answer = json!({"auth-file": path.display().to_string(), "file": imported.file_name});
    answer.as_object_mut().expect("an object").extend(summary(imported.credential.fields()));
    Ok(ok_with(answer))
}

/// The import method of `name` (`wanted`, or the first of kind Import).
fn import_method(
    registry: &Registry,
    name: &str,
    wanted: Option<&str>,
) -> Result<(LoginMethod, Arc<dyn ImportLogin>), ApiError> {
    let imports: Vec<LoginMethod> = registry
        .methods(name)
        .into_iter()
        .filter(|m| m.kind == LoginKind::Import && m.login.answers_to(name))
        .collect();
    if imports.is_empty() {
        let message = if registry.has_login(name) {
            format!("`{name}` has no import; add its accounts with GET /v0/management/{name}-auth-url")
        } else {
            format!("unknown provider `{name}`")
        };
        return Err(ApiError::not_found(message));
    }
    let method = match wanted.map(str::trim).filter(|m| !m.is_empty()) {
        Some(wanted) => imports.iter().find(|m| m.answers_to(wanted)).cloned().ok_or_else(|| {
            let valid: Vec<&str> = imports.iter().map(|m| m.id).collect();
            ApiError::bad_request(format!("unknown import method `{wanted}` for {name}; use: {}", valid.join(", ")))
        })?,
        None => imports[0].clone(),
    };
    match &method.login {
        Login::Import(login) => {
            let login = login.clone();
            Ok((method, login))
        }
        _ => unreachable!("filtered to import methods"),
    }
}

/// The multipart body: the `file` part's bytes and every other part as a text field. A body
/// that is not multipart carries no file (the fields may still come in the query).
async fn read_form(request: Request) -> Result<(Option<Vec<u8>>, Vec<(String, String)>), ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Ok((None, Vec::new()));
    }
    let (parts, body) = request.into_parts();
    let limited = axum::body::Body::new(http_body_util::Limited::new(body, MAX_IMPORT_BODY_BYTES));
    let mut multipart = Multipart::from_request(Request::from_parts(parts, limited), &())
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {}", e.body_text())))?;
    let mut file = None;
    let mut fields = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(multipart_error(&error)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_AUTH_FILE_BYTES {
                        return Err(ApiError::too_large(MAX_AUTH_FILE_BYTES));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return Err(multipart_error(&error)),
            }
        }
        if name == "file" {
            file = Some(bytes);
        } else {
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request(format!("form field `{name}` is not UTF-8 text")))?;
            fields.push((name, text));
        }
    }
    Ok((file, fields))
}

fn multipart_error(error: &axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(MAX_AUTH_FILE_BYTES)
    } else {
        ApiError::bad_request(format!("invalid multipart body: {}", error.body_text()))
    }
}

/// The summary fields present (as non-blank strings) in a saved credential.
pub fn summary(fields: &Map<String, Value>) -> Map<String, Value> {
    SUMMARY_FIELDS
        .iter()
        .filter_map(|key| {
            let value = fields.get(*key)?.as_str()?.trim();
            (!value.is_empty()).then(|| ((*key).to_owned(), Value::String(value.to_owned())))
        })
        .collect()
}

/// How a failed import is answered (see the module docs).
pub fn import_error(error: LoginError) -> ApiError {
    match error {
        LoginError::InvalidInput(message) => {
            let reason = invalid_input_reason(&message);
            ApiError::bad_request(reason).with("message", message)
        }
        LoginError::Duplicate { ref existing_file } => ApiError::conflict("duplicate")
            .with("message", error.to_string())
            .with("existing_file", existing_file.clone()),
        LoginError::Save(message) => ApiError::internal("save_failed").with("message", message),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "import_failed").with("message", other.to_string()),
    }
}

/// `invalid json` of `invalid json: …`: a short lower-case reason before the first `": "`.
fn invalid_input_reason(message: &str) -> &str {
    match message.split_once(": ") {
        Some((reason, _))
            if !reason.is_empty()
                && reason.len() <= MAX_REASON_LEN
                && reason.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || " _-".contains(c)) =>
        {
            reason
        }
        _ => "invalid input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_leading_words_of_an_invalid_input() {
        assert_eq!(invalid_input_reason("invalid json: expected value at line 1 column 1"), "invalid json");
        assert_eq!(invalid_input_reason("project_id missing: no project_id"), "project_id missing");
        assert_eq!(invalid_input_reason("The cookie is expired"), "invalid input");
        assert_eq!(invalid_input_reason("Cookie: BXAuth missing"), "invalid input");
        assert_eq!(invalid_input_reason(&format!("{}: x", "a".repeat(41))), "invalid input");
    }

    #[test]
    fn summaries_keep_identity_strings_only() {
        let fields = json!({"type": "vertex", "email": "a@b.c", "location": " ", "access_token": "ya29.x",
                            "service_account": {"private_key": "k"}, "project_id": "p"});
        let summary = summary(fields.as_object().unwrap());
        assert_eq!(Value::Object(summary), json!({"type": "vertex", "project_id": "p", "email": "a@b.c"}));
    }

    async fn answer(error: LoginError) -> (u16, Value) {
        use axum::response::IntoResponse;
        let response = import_error(error).into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn login_errors_map_to_cpas_statuses_and_words() {
        let invalid = LoginError::InvalidInput("invalid service account: private_key is missing".into());
        assert_eq!(
            answer(invalid).await,
            (
                400,
                json!({"error": "invalid service account", "message": "invalid service account: private_key is missing"})
            )
        );
        let duplicate = LoginError::Duplicate { existing_file: "iflow-a@b.c-1.json".into() };
        assert_eq!(
            answer(duplicate).await,
            (
                409,
                json!({"error": "duplicate", "message": "duplicate: this account is already stored as iflow-a@b.c-1.json",
                         "existing_file": "iflow-a@b.c-1.json"})
            )
        );
        let save = LoginError::Save("disk full".into());
        assert_eq!(answer(save).await, (500, json!({"error": "save_failed", "message": "disk full"})));
        let provider = LoginError::Provider("token endpoint down".into());
        assert_eq!(answer(provider).await, (502, json!({"error": "import_failed", "message": "token endpoint down"})));
    }
}
