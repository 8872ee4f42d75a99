//! Monitoring over the request records: `GET /requests` (filtered, newest first, paged),
//! `/requests/aggregate` (by account, model, client key, provider or time bucket),
//! `/requests/failures` (failure sources) and `/requests/export` (CSV or JSON). Every query runs
//! off the reactor on the store's read connection. Without a store (`usage-store.enabled: false`,
//! or it could not be opened) they answer 503 saying so.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_usage::store::{AggregateBy, Filter, RecordStore, StoreError};

use crate::{ApiError, AppState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

type Params = Query<HashMap<String, String>>;

fn store(state: &AppState) -> Result<Arc<RecordStore>, ApiError> {
    state.usage.store.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request records are off on this server (usage-store.enabled is false or the database could not be opened)",
        )
    })
}

fn filter(params: &HashMap<String, String>) -> Result<Filter, ApiError> {
    Filter::from_query(params).map_err(|error| ApiError::bad_request(error.to_string()))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ApiError::internal(error.to_string())),
        Err(_) => Err(ApiError::internal("the records query did not finish")),
    }
}

fn number<T: std::str::FromStr>(params: &HashMap<String, String>, name: &str) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim().parse::<T>().map_err(|_| ApiError::bad_request(format!("invalid {name}: {v:?} is not a number")))
        })
        .transpose()
}

/// `GET /requests?limit=&before=&<filters>` → `{records: [...], next_before}`.
pub async fn list(State(state): State<Arc<AppState>>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let filter = filter(&params)?;
    let limit = number::<usize>(&params, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("invalid limit: must be between 1 and {MAX_LIMIT}")));
    }
    let before = number::<i64>(&params, "before")?;
    let page = blocking(move || store.list(&filter, limit, before)).await?;
    Ok(Json(json!(page)))
}

/// `GET /requests/aggregate?by=account|model|client_key|provider|time&bucket=1h&<filters>`.
pub async fn aggregate(State(state): State<Arc<AppState>>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let filter = filter(&params)?;
    let by = AggregateBy::parse(params.get("by").map(String::as_str), params.get("bucket").map(String::as_str))
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let groups = blocking(move || store.aggregate(&filter, by)).await?;
    Ok(Json(json!({ "groups": groups })))
}

/// `GET /requests/failures?<filters>` → `{sources: [...]}`, most failures first.
pub async fn failures(State(state): State<Arc<AppState>>, Query(params): Params) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let filter = filter(&params)?;
    let sources = blocking(move || store.failures(&filter)).await?;
    Ok(Json(json!({ "sources": sources })))
}

/// `GET /requests/export?format=csv|json&<filters>`: a download of every matching record.
pub async fn export(State(state): State<Arc<AppState>>, Query(params): Params) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let filter = filter(&params)?;
    let format = params.get("format").map(String::as_str).unwrap_or("csv");
    let (content_type, extension, body) = match format {
        "csv" => (
            "text/csv; charset=utf-8",
            "csv",
            blocking(move || {
                let mut out = Vec::new();
                store.export_csv(&filter, &mut out)?;
                Ok(out)
            })
            .await?,
        ),
        "json" => ("application/json", "json", blocking(move || store.export_json(&filter)).await?),
        other => return Err(ApiError::bad_request(format!("invalid format: {other:?}; use csv or json"))),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"switchyard-requests.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
