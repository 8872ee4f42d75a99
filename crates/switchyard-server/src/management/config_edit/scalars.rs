//! Scalar toggles: `GET` answers `{"<key>": value}`, `PUT`/`PATCH` take `{"value": ...}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use switchyard_config::RoutingStrategy;
use switchyard_config::edit::{Edit, Seg};

use super::{config_json, invalid, json_body, write};
use crate::{ApiError, AppState};

#[derive(Clone, Copy)]
enum Type {
    Bool,
    Int,
    Text,
    Strategy,
}

/// Route, key path, value type, and whether `DELETE` clears it.
const SCALARS: &[(&str, &[&str], Type, bool)] = &[
    ("/debug", &["debug"], Type::Bool, false),
    ("/logging-to-file", &["logging-to-file"], Type::Bool, false),
    ("/usage-statistics-enabled", &["usage-statistics-enabled"], Type::Bool, false),
    ("/proxy-url", &["proxy-url"], Type::Text, true),
    ("/request-retry", &["request-retry"], Type::Int, false),
    ("/max-retry-interval", &["max-retry-interval"], Type::Int, false),
    ("/max-retry-credentials", &["max-retry-credentials"], Type::Int, false),
    ("/force-model-prefix", &["force-model-prefix"], Type::Bool, false),
    ("/routing/strategy", &["routing", "strategy"], Type::Strategy, false),
    ("/ws-auth", &["ws-auth"], Type::Bool, false),
    ("/request-log", &["request-log"], Type::Bool, false),
    ("/quota-exceeded/switch-project", &["quota-exceeded", "switch-project"], Type::Bool, false),
    ("/quota-exceeded/switch-preview-model", &["quota-exceeded", "switch-preview-model"], Type::Bool, false),
    ("/quota-exceeded/antigravity-credits", &["quota-exceeded", "antigravity-credits"], Type::Bool, false),
    ("/logs-max-total-size-mb", &["logs-max-total-size-mb"], Type::Int, false),
];

pub(super) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for &(route, path, kind, deletable) in SCALARS {
        let mut method = get(move |State(state): State<Arc<AppState>>| async move { read(&state, path) })
            .put(move |State(state): State<Arc<AppState>>, body: Body| set(state, path, kind, body))
            .patch(move |State(state): State<Arc<AppState>>, body: Body| set(state, path, kind, body));
        if deletable {
            method = method.delete(move |State(state): State<Arc<AppState>>| async move {
                write(&state, move |_| Ok(vec![Edit::Set(segs(path), json!(""))])).await
            });
        }
        router = router.route(route, method);
    }
    router
}

fn segs(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|key| Seg::key(*key)).collect()
}

fn read(state: &AppState, path: &[&str]) -> Result<axum::Json<Value>, ApiError> {
    let config = config_json(state)?;
    let value = path.iter().try_fold(&config, |node, key| node.get(key)).cloned().unwrap_or(Value::Null);
    let key = path.last().copied().unwrap_or_default();
    Ok(axum::Json(json!({ key: value })))
}

async fn set(
    state: Arc<AppState>,
    path: &'static [&'static str],
    kind: Type,
    body: Body,
) -> Result<axum::Json<Value>, ApiError> {
    let body = json_body(body).await?;
    let field = path.join(".");
    let Some(value) = body.get("value") else {
        return Err(ApiError::bad_request("field `value` is required").with("field", "value"));
    };
    let value = match (kind, value) {
        (Type::Bool, Value::Bool(_)) | (Type::Text, Value::String(_)) => value.clone(),
        (Type::Int, Value::Number(n)) if n.is_i64() => value.clone(),
        (Type::Strategy, Value::String(name)) => match RoutingStrategy::parse(name) {
            Some(strategy) => json!(strategy.as_str()),
            None => return Err(invalid(field, format!("unknown routing strategy; accepted: {}", STRATEGIES))),
        },
        (Type::Bool, _) => return Err(invalid(field, "expected a boolean")),
        (Type::Int, _) => return Err(invalid(field, "expected an integer")),
        (Type::Text | Type::Strategy, _) => return Err(invalid(field, "expected a string")),
    };
    write(&state, move |_| Ok(vec![Edit::Set(segs(path), value)])).await
}

const STRATEGIES: &str = "round-robin, fill-first, weighted-round-robin";
