//! Channel maps: `oauth-excluded-models` (channel → patterns), `oauth-model-alias` (channel →
//! aliases) and `oauth-request-scoped-errors` (channel → rules, kept verbatim). `PUT` replaces
//! the map, `PATCH` one channel (an empty list removes it), `DELETE ?provider=`/`?channel=`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Map, Value, json};
use switchyard_config::edit::{self, Edit, Seg};

use super::{config_json, invalid, json_body, write};
use crate::{ApiError, AppState};

#[derive(Clone, Copy)]
struct ChannelMap {
    key: &'static str,
    /// Body field naming the channel (`PATCH`) and query parameter (`DELETE`).
    channel: &'static str,
    /// Body field holding the channel's list (`PATCH`).
    list: &'static str,
    check: fn(&str, &Value) -> Result<(), ApiError>,
}

const MAPS: &[ChannelMap] = &[
    ChannelMap { key: "oauth-excluded-models", channel: "provider", list: "models", check: check_patterns },
    ChannelMap { key: "oauth-model-alias", channel: "channel", list: "aliases", check: check_aliases },
    ChannelMap { key: "oauth-request-scoped-errors", channel: "channel", list: "rules", check: check_rules },
];

pub(super) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for &map in MAPS {
        router = router.route(
            &format!("/{}", map.key),
            get(move |State(state): State<Arc<AppState>>| async move { read(&state, map) })
                .put(move |State(state): State<Arc<AppState>>, body: Body| put(state, map, body))
                .patch(move |State(state): State<Arc<AppState>>, body: Body| patch(state, map, body))
                .delete(move |State(state): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>| {
                    delete(state, map, query)
                }),
        );
    }
    router
}

fn check_patterns(at: &str, value: &Value) -> Result<(), ApiError> {
    match value.as_array() {
        Some(items) if items.iter().all(Value::is_string) => Ok(()),
        _ => Err(invalid(at, "expected an array of model patterns (strings)")),
    }
}

fn check_aliases(at: &str, value: &Value) -> Result<(), ApiError> {
    let items = value.as_array().ok_or_else(|| invalid(at, "expected an array of aliases"))?;
    for (i, item) in items.iter().enumerate() {
        let ok =
            ["name", "alias"].iter().all(|k| item.get(k).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty()));
        if !ok {
            return Err(invalid(format!("{at}[{i}]"), "expected an object with non-empty `name` and `alias`"));
        }
    }
    Ok(())
}

fn check_rules(at: &str, value: &Value) -> Result<(), ApiError> {
    if value.is_array() || value.is_object() { Ok(()) } else { Err(invalid(at, "expected a list of rules")) }
}

fn is_empty(value: &Value) -> bool {
    value.as_array().is_some_and(Vec::is_empty) || value.as_object().is_some_and(Map::is_empty) || value.is_null()
}

fn read(state: &AppState, map: ChannelMap) -> Result<axum::Json<Value>, ApiError> {
    let config = config_json(state)?;
    let value = config.get(map.key).cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    Ok(axum::Json(json!({ map.key: value })))
}

fn channel_name(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

async fn put(state: Arc<AppState>, map: ChannelMap, body: Body) -> Result<axum::Json<Value>, ApiError> {
    let body = match json_body(body).await? {
        Value::Object(mut body) if body.len() == 1 && body.get("items").is_some_and(Value::is_object) => {
            body.shift_remove("items").unwrap_or_default()
        }
        body => body,
    };
    let Value::Object(entries) = body else {
        return Err(invalid(map.key, "expected an object mapping channels to lists"));
    };
    let mut new = Map::new();
    for (channel, value) in entries {
        let channel = channel_name(&channel);
        (map.check)(&format!("{}.{channel}", map.key), &value)?;
        if !is_empty(&value) {
            new.insert(channel, value);
        }
    }
    write(&state, move |text| {
        let old = match edit::value_at(text, &[Seg::key(map.key)])? {
            Some(Value::Object(old)) if !old.is_empty() && !new.is_empty() => old,
            _ => return Ok(vec![Edit::Set(vec![Seg::key(map.key)], Value::Object(new))]),
        };
        let at = |channel: &str| vec![Seg::key(map.key), Seg::key(channel)];
        let mut edits: Vec<Edit> = old.keys().filter(|c| !new.contains_key(*c)).map(|c| Edit::Delete(at(c))).collect();
        for (channel, value) in &new {
            if old.get(channel) != Some(value) {
                edits.push(Edit::Set(at(channel), value.clone()));
            }
        }
        Ok(edits)
    })
    .await
}

async fn patch(state: Arc<AppState>, map: ChannelMap, body: Body) -> Result<axum::Json<Value>, ApiError> {
    let body = json_body(body).await?;
    let channel = body
        .get(map.channel)
        .or_else(|| body.get("channel"))
        .and_then(Value::as_str)
        .map(channel_name)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("field `{}` is required", map.channel)).with("field", map.channel)
        })?;
    let value =
        body.get(map.list).or_else(|| body.get("value")).cloned().ok_or_else(|| {
            ApiError::bad_request(format!("field `{}` is required", map.list)).with("field", map.list)
        })?;
    (map.check)(map.list, &value)?;
    write(&state, move |text| {
        let path = vec![Seg::key(map.key), Seg::key(&channel)];
        if !is_empty(&value) {
            return Ok(vec![Edit::Set(path, value)]);
        }
        // An empty list removes the channel (nothing to do when it is already absent).
        Ok(match edit::value_at(text, &path)? {
            Some(_) => vec![Edit::Delete(path)],
            None => Vec::new(),
        })
    })
    .await
}

async fn delete(
    state: Arc<AppState>,
    map: ChannelMap,
    query: HashMap<String, String>,
) -> Result<axum::Json<Value>, ApiError> {
    let channel = query
        .get(map.channel)
        .or_else(|| query.get("channel"))
        .or_else(|| query.get("provider"))
        .map(|c| channel_name(c))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("query `{}` is required", map.channel)).with("field", map.channel)
        })?;
    write(&state, move |_| Ok(vec![Edit::Delete(vec![Seg::key(map.key), Seg::key(channel)])])).await
}
