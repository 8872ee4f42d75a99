//! `/v0/management/auth-files...`: download, upload, delete, enable/disable, edit fields, and
//! the models an account exposes (the listing is `auth_listing`). Bad input is answered with a
//! JSON error and changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchyard_auth::login::RefreshError;
use switchyard_auth::{AuthContent, Credential, StoreError, StoredAuth, validate_file_name};
use switchyard_health::Actor;
use switchyard_router::{AccountKind, AccountModelRules, ModelAlias, account_models};

use crate::error::ok_with;
use crate::{ApiError, AppState};

pub use switchyard_auth::MAX_AUTH_FILE_BYTES;
/// Whole multipart upload (many files at once).
const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Small JSON bodies of PATCH/DELETE.
const MAX_JSON_BODY_BYTES: usize = 256 * 1024;

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::InvalidName(message) => ApiError::bad_request(format!("invalid name: {message}")),
        StoreError::NotFound(_) => ApiError::not_found("auth file not found"),
        StoreError::Corrupt(message) => {
            ApiError::conflict(format!("auth file cannot be parsed and is left untouched: {message}"))
        }
        StoreError::Refused(message) => {
            ApiError::conflict(format!("auth file refused, never read or followed: {message}"))
        }
        StoreError::Invalid(message) => ApiError::bad_request(format!("invalid auth file: {message}")),
        StoreError::Io(error) => {
            tracing::error!(error = %switchyard_redact::text(&error.to_string()), "auth file I/O failed");
            ApiError::internal("failed to access the auth directory")
        }
    }
}

pub(super) fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    query.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub(super) fn query_value(query: &Option<String>, key: &str) -> Option<String> {
    query_pairs(query).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

pub(super) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::too_large(limit))
}

pub(super) async fn read_json_object(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_limited(body, MAX_JSON_BODY_BYTES).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("invalid body: expected a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!("invalid body: {error}"))),
    }
}

fn required_name(query: &Option<String>) -> Result<String, ApiError> {
    let name = query_value(query, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    validate_file_name(&name).map_err(store_error)?;
    Ok(name)
}

/// `GET /auth-files/download?name=x.json` → the file's bytes as an attachment (corrupt ones too:
/// downloading is how a user inspects and repairs them). Refused entries (symlink, FIFO, device,
/// directory, over 1 MiB) answer 409 at once: the link is never followed, the FIFO never waited on.
pub async fn download(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let name = required_name(&query)?;
    let bytes = state.store.read_raw(&name).await.map_err(|error| match error {
        StoreError::NotFound(_) => ApiError::not_found("file not found"),
        other => store_error(other),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// One file's outcome in a batch.
struct Failure {
    name: String,
    error: ApiError,
}

fn failures_json(failed: &[Failure]) -> Value {
    Value::Array(failed.iter().map(|f| json!({"name": f.name, "error": f.error.message()})).collect())
}

/// `POST /auth-files`: multipart with any number of `.json` files, or a raw body with `?name=`.
/// Each file is validated before it is written; a rejected file leaves any existing one as it was.
pub async fn upload(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        let query = request.uri().query().map(str::to_owned);
        let name = required_name(&query).map_err(|e| {
            if e.status() == StatusCode::BAD_REQUEST && query_value(&query, "name").is_none() {
                ApiError::bad_request("name is required (or upload as multipart/form-data)")
            } else {
                e
            }
        })?;
        let bytes = read_limited(request.into_body(), MAX_AUTH_FILE_BYTES).await?;
        if let Some(imported) = import_upload(&state, &bytes).await {
            return Ok(ok_with(json!({"file": imported?, "imported": true})).into_response());
        }
        let bytes = checked_upload(&state, &name, &bytes)?;
        state.store.put_raw(&name, &bytes).await.map_err(store_error)?;
        tracing::info!(file = %name, "auth file uploaded");
        return Ok(ok_with(json!({})).into_response());
    }

    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util_limited(body));
    let mut multipart = Multipart::from_request(Request::from_parts(parts, limited), &())
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {}", e.body_text())))?;

    let mut uploaded = Vec::new();
    let mut failed = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::too_large(MAX_UPLOAD_BYTES));
            }
            Err(error) => return Err(ApiError::bad_request(format!("invalid multipart body: {}", error.body_text()))),
        };
        // Form fields without a file name are not files.
        let Some(name) = field.file_name().map(str::to_owned) else { continue };
        let bytes = match read_field(field).await {
            Ok(bytes) => bytes,
            Err(error) => {
                failed.push(Failure { name, error });
                continue;
            }
        };
        match import_upload(&state, &bytes).await {
            Some(Ok(saved)) => uploaded.push(saved),
            Some(Err(error)) => failed.push(Failure { name, error }),
            None => match validate_file_name(&name)
                .map_err(store_error)
                .and_then(|()| checked_upload(&state, &name, &bytes))
            {
                Ok(bytes) => match state.store.put_raw(&name, &bytes).await {
                    Ok(_) => {
                        tracing::info!(file = %name, "auth file uploaded");
                        uploaded.push(name);
                    }
                    Err(error) => failed.push(Failure { name, error: store_error(error) }),
                },
                Err(error) => failed.push(Failure { name, error }),
            },
        }
    }

    match (uploaded.len(), failed.len()) {
        (0, 0) => Err(ApiError::bad_request("no files uploaded")),
        (1, 0) => Ok(ok_with(json!({})).into_response()),
        (0, 1) => Err(failed.pop().expect("one failure").error),
        (_, 0) => Ok(ok_with(json!({"uploaded": uploaded.len(), "files": uploaded})).into_response()),
        (0, _) => Err(ApiError::bad_request("no files uploaded")
            .with("uploaded", 0)
            .with("files", json!([]))
            .with("failed", failures_json(&failed))),
        _ => Ok((
            StatusCode::MULTI_STATUS,
            Json(json!({
                "status": "partial",
                "uploaded": uploaded.len(),
                "files": uploaded,
                "failed": failures_json(&failed),
            })),
        )
            .into_response()),
    }
}

/// An upload that is really another tool's token file (an import's `recognises_upload`, found
/// through the registry) is imported instead of stored as is: saved under the import's own file
/// name, with its validation. `None`: store the bytes as uploaded.
async fn import_upload(state: &AppState, bytes: &[u8]) -> Option<Result<String, ApiError>> {
    let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(bytes) else { return None };
    let import = switchyard_providers::Registry::new(&state.config.get()).import_for_upload(&document)?;
    let options = switchyard_auth::login::LoginOptions::new();
    let imported = state.engine.import(&*import, Some(bytes), &options).await;
    Some(imported.map(|imported| imported.file_name).map_err(super::imports::import_error))
}

/// An upload checked against the provider registry (see `Registry::check_upload`): a known or
/// derivable `type` and the fields that provider needs. The bytes to store: as uploaded, or with
/// the derived `type` added. Not JSON / not an object: left to the store's own check (its error).
fn checked_upload<'a>(state: &AppState, name: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, ApiError> {
    let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(bytes.into());
    };
    let registry = switchyard_providers::Registry::new(&state.config.get());
    match registry.check_upload(name, &document) {
        Ok(None) => Ok(bytes.into()),
        Ok(Some(derived)) => {
            document.insert("type".into(), Value::String(derived));
            let mut out = serde_json::to_vec_pretty(&document).map_err(|e| ApiError::internal(e.to_string()))?;
            out.push(b'\n');
            Ok(out.into())
        }
        Err(problem) => Err(ApiError::bad_request(format!("invalid auth file: {}", problem.message))
            .with("field", problem.field)
            .with("valid_types", problem.valid_types)),
    }
}

/// Caps the whole multipart stream; multer reports the overrun as a 413 field error.
fn http_body_util_limited(body: Body) -> http_body_util::Limited<Body> {
    http_body_util::Limited::new(body, MAX_UPLOAD_BYTES)
}

async fn read_field(mut field: axum::extract::multipart::Field<'_>) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_AUTH_FILE_BYTES {
                    return Err(ApiError::too_large(MAX_AUTH_FILE_BYTES));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(error) => return Err(ApiError::bad_request(format!("invalid multipart body: {}", error.body_text()))),
        }
    }
}

/// Names to delete: repeated `?name=`, else a body `["a.json"]` or `{"name": ..., "names": [...]}`.
async fn names_to_delete(query: &Option<String>, body: Body) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> = query_pairs(query).into_iter().filter(|(k, _)| k == "name").map(|(_, v)| v).collect();
    if names.is_empty() {
        let bytes = read_limited(body, MAX_JSON_BODY_BYTES).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
            let as_names = |v: &Value| -> Result<Vec<String>, ApiError> {
                v.as_array()
                    .ok_or_else(|| ApiError::bad_request("invalid body: `names` must be an array of strings"))?
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| ApiError::bad_request("invalid body: names must be strings"))
                    })
                    .collect()
            };
            match &value {
                Value::Array(_) => names = as_names(&value)?,
                Value::Object(map) => {
                    if let Some(name) = map.get("name") {
                        names.push(
                            name.as_str()
                                .ok_or_else(|| ApiError::bad_request("invalid body: `name` must be a string"))?
                                .to_owned(),
                        );
                    }
                    if let Some(list) = map.get("names") {
                        names.extend(as_names(list)?);
                    }
                }
                _ => return Err(ApiError::bad_request("invalid body: expected an array of names or an object")),
            }
        }
    }
    let mut seen = BTreeSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    if names.is_empty() {
        return Err(ApiError::bad_request("name is required"));
    }
    Ok(names)
}

/// `DELETE /auth-files?all=true` | `?name=a.json&name=b.json` | body with names.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(all) = query_value(&query, "all")
        && matches!(all.to_ascii_lowercase().as_str(), "true" | "1" | "*")
    {
        let deleted = state.store.delete_all().await.map_err(store_error)?;
        tracing::info!(deleted, "all auth files deleted");
        return Ok(ok_with(json!({"deleted": deleted})).into_response());
    }
    let names = names_to_delete(&query, body).await?;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let outcome = match validate_file_name(&name) {
            Ok(()) => state.store.delete(&name).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                tracing::info!(file = %name, "auth file deleted");
                deleted.push(name);
            }
            Err(error) => failed.push(Failure { name, error: store_error(error) }),
        }
    }
    match (deleted.len(), failed.len()) {
        (1, 0) => Ok(ok_with(json!({})).into_response()),
        (0, 1) => Err(failed.pop().expect("one failure").error),
        (_, 0) => Ok(ok_with(json!({"deleted": deleted.len(), "files": deleted})).into_response()),
        (0, _) => Err(ApiError::bad_request("no auth file deleted").with("deleted", 0).with("failed", failures_json(&failed))),
        _ => Ok((
            StatusCode::MULTI_STATUS,
            Json(json!({"status": "partial", "deleted": deleted.len(), "files": deleted, "failed": failures_json(&failed)})),
        )
            .into_response()),
    }
}

/// Finds a listed auth by file name (the id is the file name) and checks an optional `auth_index`.
fn find(state: &AppState, name: &str, auth_index: Option<&str>) -> Result<Arc<StoredAuth>, ApiError> {
    validate_file_name(name).map_err(store_error)?;
    let stored = state.store.get(name).ok_or_else(|| ApiError::not_found("auth file not found"))?;
    if auth_index.is_some_and(|index| !index.is_empty() && index != stored.auth_index) {
        return Err(ApiError::not_found("auth file not found"));
    }
    Ok(stored)
}

/// `PATCH /auth-files/status` `{"name", "auth_index"?, "disabled": bool}`.
pub async fn set_status(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let disabled = match body.get("disabled") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("disabled must be a boolean")),
        None => return Err(ApiError::bad_request("disabled is required")),
    };
    let auth_index = body.get("auth_index").and_then(Value::as_str);
    if state.store.get(name).is_none()
        && let Some(found) = config_key_account(&state, name, auth_index)
    {
        let (section, index) = found?;
        return set_config_key_status(&state, section, index, disabled).await;
    }
    let stored = find(&state, name, auth_index)?;
    // A person may always switch: the owner becomes `manual` (or is cleared on enable).
    let book = &state.health.book;
    crate::account_health::actions::set_disabled(&state.store, book, &stored.name, disabled, Actor::Manual, "")
        .await
        .map_err(store_error)?;
    tracing::info!(file = %stored.name, disabled, "auth file status changed");
    Ok(ok_with(json!({"disabled": disabled})))
}

/// The config API key a `/auth-files` entry names (its `name` is the account id, e.g.
/// `claude-api-key[0]`): `None` when no config key has that name, a 404 when `auth_index` is
/// given and names another credential.
fn config_key_account(
    state: &AppState,
    name: &str,
    auth_index: Option<&str>,
) -> Option<Result<(String, usize), ApiError>> {
    let config = state.config.get();
    let account = state.router.accounts().into_iter().find(|account| account.id == name)?;
    let AccountKind::ApiKey { section, index } = &account.kind else { return None };
    let key = account.kind.config_key(&config)?;
    let index_matches = auth_index
        .is_none_or(|given| given.is_empty() || given == super::api_key_auth_index(key.section, key.base_url, key.key));
    Some(if index_matches { Ok((section.clone(), *index)) } else { Err(ApiError::not_found("auth file not found")) })
}

/// CPA toggles a config key by adding or removing `"*"` in its `excluded-models`, written to
/// config.yaml as a comment-preserving edit.
async fn set_config_key_status(
    state: &AppState,
    section: String,
    index: usize,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    use switchyard_config::edit::{Edit, Seg, value_at};
    let path = vec![Seg::key(section.clone()), Seg::Index(index), Seg::key("excluded-models")];
    let account = format!("{section}[{index}]");
    let logged = account.clone();
    let _ok = super::config_edit::write(state, move |text| {
        if value_at(text, &[Seg::key(section.clone()), Seg::Index(index)]).ok().flatten().is_none() {
            return Err(ApiError::not_found("auth file not found"));
        }
        let current = value_at(text, &path).map_err(|error| ApiError::bad_request(error.to_string()))?;
        let mut patterns: Vec<Value> = match current {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ApiError::bad_request(format!("{account}.excluded-models is not a list"))),
        };
        let has_star = patterns.iter().any(|p| p == "*");
        match (disabled, has_star) {
            (true, false) => patterns.push(Value::String("*".into())),
            (false, true) => patterns.retain(|p| p != "*"),
            _ => return Ok(Vec::new()),
        }
        Ok(vec![if patterns.is_empty() { Edit::Delete(path) } else { Edit::Set(path, Value::Array(patterns)) }])
    })
    .await?;
    tracing::info!(account = %logged, disabled, "config key status changed");
    Ok(ok_with(json!({"disabled": disabled, "via": "config:excluded-models", "excluded_pattern": "*"})))
}

/// Sets `value` at a dotted path, creating objects on the way; `null` removes the key.
fn set_path(target: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), ApiError> {
    let mut segments = path.split('.').peekable();
    let mut current = target;
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err(ApiError::bad_request(format!("invalid field path `{path}`")));
        }
        if segments.peek().is_none() {
            if value.is_null() {
                current.remove(segment);
            } else {
                current.insert(segment.to_owned(), value);
            }
            return Ok(());
        }
        let next = current.entry(segment.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            return Err(ApiError::bad_request(format!("field `{segment}` in `{path}` is not an object")));
        }
        current = next.as_object_mut().expect("checked object");
    }
    Ok(())
}

/// One validated edit of `PATCH /auth-files/fields`.
enum FieldEdit {
    Set(String, Value),
    MergeHeaders(Map<String, Value>),
}

fn plan_field_edits(body: Map<String, Value>) -> Result<Vec<FieldEdit>, ApiError> {
    let mut edits = Vec::new();
    let mut roots_seen = BTreeSet::new();
    for (key, value) in body {
        if key == "name" || key == "auth_index" {
            continue;
        }
        let (root, rest) = match key.split_once('.') {
            Some((root, rest)) => (root.to_owned(), Some(rest.to_owned())),
            None => (key.clone(), None),
        };
        let canonical = switchyard_auth::canonical_key(&root).to_owned();
        let path = match &rest {
            Some(rest) => format!("{canonical}.{rest}"),
            None => canonical.clone(),
        };
        if !roots_seen.insert(path.clone()) {
            return Err(ApiError::bad_request(format!("fields `{key}` and another key both set `{path}`")));
        }
        let edit = match (path.as_str(), value) {
            ("weight", Value::Null) => FieldEdit::Set(path, Value::Null),
            ("weight", value) if value.as_i64().is_some_and(|w| w <= switchyard_auth::MAX_WEIGHT) => {
                FieldEdit::Set(path, value)
            }
            ("weight", _) => {
                return Err(ApiError::bad_request(format!(
                    "weight must be an integer up to {}",
                    switchyard_auth::MAX_WEIGHT
                )));
            }
            ("request_retry", Value::Null) => FieldEdit::Set(path, Value::Null),
            ("request_retry", value) if value.is_i64() => {
                // A negative retry count means "inherit the global setting": drop the override.
                let keep = value.as_i64().is_some_and(|n| n >= 0);
                FieldEdit::Set(path, if keep { value } else { Value::Null })
            }
            ("request_retry", _) => return Err(ApiError::bad_request("request_retry must be an integer")),
            ("headers", Value::Object(map)) => FieldEdit::MergeHeaders(map),
            ("headers", Value::Null) => FieldEdit::Set(path, Value::Null),
            ("headers", _) => return Err(ApiError::bad_request("headers must be an object")),
            ("type", _) => return Err(ApiError::bad_request("type cannot be changed")),
            (_, value) => FieldEdit::Set(path, value),
        };
        edits.push(edit);
    }
    if edits.is_empty() {
        return Err(ApiError::bad_request("no fields to update"));
    }
    Ok(edits)
}

/// `PATCH /auth-files/fields` `{"name": "x.json", "<field or dotted.path>": <value>, ...}`.
pub async fn patch_fields(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?
        .to_owned();
    let stored = find(&state, &name, body.get("auth_index").and_then(Value::as_str))?;
    let edits = plan_field_edits(body)?;
    state
        .store
        .update(&stored.name, move |credential| {
            for edit in edits {
                match edit {
                    FieldEdit::Set(path, value) => set_path(credential.fields_mut(), &path, value)
                        .map_err(|e| StoreError::Invalid(e.message().to_owned()))?,
                    FieldEdit::MergeHeaders(changes) => {
                        let headers =
                            credential.fields_mut().entry("headers").or_insert_with(|| Value::Object(Map::new()));
                        let Some(headers) = headers.as_object_mut() else {
                            return Err(StoreError::Invalid("existing `headers` is not an object".into()));
                        };
                        for (header_name, value) in changes {
                            match value {
                                Value::String(s) if s.is_empty() => {
                                    headers.remove(&header_name);
                                }
                                Value::String(_) => {
                                    headers.insert(header_name, value);
                                }
                                _ => {
                                    return Err(StoreError::Invalid(format!(
                                        "header `{header_name}` must be a string"
                                    )));
                                }
                            }
                        }
                    }
                }
            }
            // The edited file must still be a valid auth file (weight range, types, ...).
            Credential::from_json(&credential.to_json_pretty())
                .map(|_| ())
                .map_err(|e| StoreError::Invalid(e.to_string()))
        })
        .await
        .map_err(store_error)?;
    tracing::info!(file = %stored.name, "auth file fields updated");
    Ok(ok_with(json!({})))
}

/// `POST /auth-files/refresh` `{"name": "x.json"}`: renew the access token now, whatever its expiry.
pub async fn refresh(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let stored = find(&state, name, body.get("auth_index").and_then(Value::as_str))?;
    let Some(credential) = stored.credential() else {
        return Err(ApiError::conflict("auth file cannot be parsed and is left untouched"));
    };
    if switchyard_providers::Registry::new(&state.config.get()).refresher_for(credential).is_none() {
        return Err(ApiError::bad_request("this provider's credentials cannot be refreshed"));
    }
    match state.refresher.force_refresh(&stored.name).await {
        Ok(()) => {
            let expired = state.store.get(&stored.name).and_then(|s| s.credential().and_then(Credential::expiry));
            let expired = expired.map(super::auth_listing::rfc3339);
            Ok(ok_with(json!({ "expired": expired })))
        }
        Err(error @ RefreshError::Revoked(_)) => Err(ApiError::conflict(error.to_string()).with("needs_relogin", true)),
        Err(error @ RefreshError::NoRefreshToken) => Err(ApiError::bad_request(error.to_string())),
        Err(error @ RefreshError::RateLimited { .. }) => {
            Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, error.to_string()))
        }
        Err(error @ RefreshError::Transient(_)) => Err(ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())),
        // The file vanished or turned corrupt while we looked.
        Err(error @ RefreshError::Unavailable(_)) => Err(ApiError::conflict(error.to_string())),
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn file_aliases(value: Option<&Value>) -> Vec<ModelAlias> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(ModelAlias {
                        name: item.get("name")?.as_str()?.to_owned(),
                        alias: item.get("alias")?.as_str()?.to_owned(),
                        fork: item.get("fork").and_then(Value::as_bool).unwrap_or(false),
                        force_mapping: item
                            .get("force-mapping")
                            .or_else(|| item.get("force_mapping"))
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /auth-files/models?name=` → `{"models": [{id, display_name, type, owned_by}]}`: the provider's
/// catalogue after the account's and the channel's exclusions, aliases and prefix.
pub async fn models(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let name = query_value(&query, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let stored = find(&state, &name, None)?;
    let AuthContent::Valid(credential) = &stored.content else {
        return Ok(Json(json!({"models": []})));
    };
    let Some(provider) = credential.file_type().and_then(switchyard_providers::for_file_type) else {
        return Ok(Json(json!({"models": []})));
    };
    let config = state.config.get();
    let channel = provider.channel();
    let global_excluded = config.oauth_excluded_models.get(channel).cloned().unwrap_or_default();
    let global_aliases: Vec<ModelAlias> = config
        .oauth_model_alias
        .get(channel)
        .map(|aliases| {
            aliases
                .iter()
                .map(|a| ModelAlias {
                    name: a.name.clone(),
                    alias: a.alias.clone(),
                    fork: a.fork,
                    force_mapping: a.force_mapping,
                })
                .collect()
        })
        .unwrap_or_default();
    let account_excluded = string_list(credential.fields().get("excluded_models"));
    let account_aliases = file_aliases(credential.fields().get("model_aliases"));
    let rules = AccountModelRules {
        global_excluded: &global_excluded,
        account_excluded: &account_excluded,
        global_aliases: &global_aliases,
        account_aliases: &account_aliases,
        prefix: credential.prefix(),
        force_model_prefix: config.force_model_prefix,
    };
    let models: Vec<Value> = account_models(provider.models(), &rules)
        .into_iter()
        .map(|m| json!({"id": m.id, "display_name": m.display_name, "type": m.kind, "owned_by": m.owned_by}))
        .collect();
    Ok(Json(json!({ "models": models })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_create_objects_and_null_removes() {
        let mut map = Map::new();
        set_path(&mut map, "a.b.c", json!(1)).unwrap();
        assert_eq!(Value::Object(map.clone()), json!({"a": {"b": {"c": 1}}}));
        set_path(&mut map, "a.b.c", Value::Null).unwrap();
        assert_eq!(Value::Object(map.clone()), json!({"a": {"b": {}}}));
        map.insert("x".into(), json!(3));
        assert!(set_path(&mut map, "x.y", json!(1)).is_err());
        assert!(set_path(&mut map, "a..b", json!(1)).is_err());
    }
}
