//! List endpoints: client `api-keys`, the API-key sections and `openai-compatibility`.
//! `GET` answers `{"<key>": [...]}` (key entries carry `auth-index`); `PUT` takes an array or
//! `{items: [...]}`; `PATCH` changes one item (by `index`, `old`, `api-key`[+`base-url`] or
//! `name`), a mapping `value` being merged into it; `DELETE` removes items by the same keys.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Map, Value, json};
use switchyard_config::edit::{self, Edit, Seg};

use super::{config_json, invalid, json_body, write};
use crate::management::api_key_auth_index;
use crate::{ApiError, AppState};

#[derive(Clone, Copy, PartialEq)]
enum List {
    /// `api-keys`: strings.
    ClientKeys,
    /// An API-key section: mappings matched by `api-key` (+ `base-url`).
    Keys(&'static str),
    /// `openai-compatibility`: mappings matched by `name`.
    Compat,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::ClientKeys => "api-keys",
            List::Keys(section) => section,
            List::Compat => "openai-compatibility",
        }
    }
}

const KEY_SECTIONS: &[&str] =
    &["gemini-api-key", "claude-api-key", "codex-api-key", "xai-api-key", "vertex-api-key", "interactions-api-key"];

pub(super) fn routes() -> Router<Arc<AppState>> {
    let lists = std::iter::once(List::ClientKeys)
        .chain(KEY_SECTIONS.iter().map(|s| List::Keys(s)))
        .chain(std::iter::once(List::Compat));
    let mut router = Router::new();
    for list in lists {
        router = router.route(
            &format!("/{}", list.key()),
            get(move |State(state): State<Arc<AppState>>| async move { read(&state, list) })
                .put(move |State(state): State<Arc<AppState>>, body: Body| put(state, list, body))
                .patch(move |State(state): State<Arc<AppState>>, body: Body| patch(state, list, body))
                .delete(move |State(state): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>| {
                    delete(state, list, query)
                }),
        );
    }
    router
}

fn read(state: &AppState, list: List) -> Result<axum::Json<Value>, ApiError> {
    let config = config_json(state)?;
    let mut items = config.get(list.key()).and_then(Value::as_array).cloned().unwrap_or_default();
    for item in &mut items {
        add_auth_index(list, item);
    }
    Ok(axum::Json(json!({ list.key(): items })))
}

/// `GET /config` carries `auth-index` on every key entry too (the panel reads it there).
pub(in crate::management) fn add_auth_indexes(config: &mut Value) {
    let lists = KEY_SECTIONS.iter().map(|s| List::Keys(s)).chain(std::iter::once(List::Compat));
    for list in lists {
        if let Some(items) = config.get_mut(list.key()).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(|item| add_auth_index(list, item));
        }
    }
}

/// The same 16-hex id `/auth-files` shows for the account a config key becomes.
fn add_auth_index(list: List, item: &mut Value) {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match list {
        List::ClientKeys => {}
        List::Keys(section) => {
            let index = api_key_auth_index(section, &text(item, "base-url"), &text(item, "api-key"));
            item["auth-index"] = json!(index);
        }
        List::Compat => {
            let base_url = text(item, "base-url");
            let mut first = None;
            if let Some(keys) = item.get_mut("api-key-entries").and_then(Value::as_array_mut) {
                for key in keys {
                    let index = api_key_auth_index("openai-compatibility", &base_url, &text(key, "api-key"));
                    first.get_or_insert_with(|| index.clone());
                    key["auth-index"] = json!(index);
                }
            }
            let keyless = || api_key_auth_index("openai-compatibility", &base_url, "");
            item["auth-index"] = json!(first.unwrap_or_else(keyless));
        }
    }
}

/// A new item as written to the file: type-checked, without the listing-only `auth-index`.
fn clean_item(list: List, at: &str, item: Value) -> Result<Value, ApiError> {
    match (list, item) {
        (List::ClientKeys, Value::String(key)) if !key.trim().is_empty() => Ok(Value::String(key)),
        (List::ClientKeys, Value::String(_)) => Err(invalid(at, "must not be empty")),
        (List::ClientKeys, _) => Err(invalid(at, "expected a string")),
        (_, Value::Object(mut fields)) => {
            fields.shift_remove("auth-index");
            fields.shift_remove("auth_index");
            if let Some(Value::Array(keys)) = fields.get_mut("api-key-entries") {
                for key in keys.iter_mut().filter_map(Value::as_object_mut) {
                    key.shift_remove("auth-index");
                    key.shift_remove("auth_index");
                }
            }
            Ok(Value::Object(fields))
        }
        _ => Err(invalid(at, "expected an object")),
    }
}

/// What makes an item unique within its list.
fn identity(list: List, item: &Value) -> Option<(String, String)> {
    let text = |k: &str| item.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    match list {
        List::ClientKeys => item.as_str().map(|s| (s.trim().to_owned(), String::new())),
        List::Keys(_) => {
            Some((text("api-key")?.trim().to_owned(), text("base-url").unwrap_or_default().trim().to_owned()))
        }
        // Duplicate names are refused by config validation with the field named.
        List::Compat => None,
    }
}

fn check_duplicates(list: List, items: &[Value]) -> Result<(), ApiError> {
    let mut seen = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(id) = identity(list, item) else { continue };
        if let Some(first) = seen.insert(id, index) {
            let field = match list {
                List::ClientKeys => format!("{}[{index}]", list.key()),
                _ => format!("{}[{index}].api-key", list.key()),
            };
            return Err(invalid(field, format!("duplicate of entry {first}")));
        }
    }
    Ok(())
}

async fn put(state: Arc<AppState>, list: List, body: Body) -> Result<axum::Json<Value>, ApiError> {
    let items = match json_body(body).await? {
        Value::Array(items) => items,
        Value::Object(mut body) => match body.shift_remove("items") {
            Some(Value::Array(items)) => items,
            _ => return Err(invalid("items", "expected an array, or an object with an `items` array")),
        },
        _ => return Err(invalid("items", "expected an array, or an object with an `items` array")),
    };
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| clean_item(list, &format!("{}[{i}]", list.key()), item))
        .collect::<Result<Vec<_>, _>>()?;
    check_duplicates(list, &items)?;
    write(&state, move |text| Ok(edit::list_edits(text, list.key(), &items)?)).await
}

/// The list as written in the file.
fn current(text: &str, list: List) -> Result<Vec<Value>, ApiError> {
    match edit::value_at(text, &[Seg::key(list.key())])? {
        Some(Value::Array(items)) => Ok(items),
        _ => Ok(Vec::new()),
    }
}

fn field_text(item: &Value, key: &str) -> String {
    item.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default()
}

/// Which item a request names: `index`, or `old`/`value` (client keys), `api-key` (+`base-url`)
/// or `match` (key sections), `name` (openai-compatibility).
fn find(list: List, items: &[Value], by: &Map<String, Value>) -> Result<Vec<usize>, ApiError> {
    let text = |k: &str| by.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    if let Some(index) = by.get("index") {
        let index = index
            .as_u64()
            .or_else(|| index.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| invalid("index", "expected a non-negative integer"))? as usize;
        return if index < items.len() {
            Ok(vec![index])
        } else {
            Err(ApiError::not_found(format!("`{}[{index}]` not found", list.key())).with("field", "index"))
        };
    }
    let (field, wanted, base_url) = match list {
        List::ClientKeys => ("old", text("old").or_else(|| text("value")), None),
        List::Keys(_) => ("api-key", text("api-key").or_else(|| text("match")), text("base-url")),
        List::Compat => ("name", text("name"), None),
    };
    let Some(wanted) = wanted else {
        return Err(ApiError::bad_request(format!("`index` or `{field}` is required")).with("field", field));
    };
    let matches: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| match list {
            List::ClientKeys => item.as_str() == Some(wanted.as_str()),
            List::Keys(_) => {
                field_text(item, "api-key") == wanted
                    && base_url.as_deref().is_none_or(|url| field_text(item, "base-url").trim() == url.trim())
            }
            List::Compat => field_text(item, "name").trim() == wanted.trim(),
        })
        .map(|(i, _)| i)
        .collect();
    if matches.is_empty() {
        return Err(ApiError::not_found(format!("no `{}` entry with that {field}", list.key())).with("field", field));
    }
    Ok(matches)
}

async fn patch(state: Arc<AppState>, list: List, body: Body) -> Result<axum::Json<Value>, ApiError> {
    let Value::Object(body) = json_body(body).await? else {
        return Err(invalid("value", "the body must be a JSON object"));
    };
    let new = match (list, body.get("new").or_else(|| body.get("value"))) {
        (_, None) => return Err(ApiError::bad_request("field `value` is required").with("field", "value")),
        (_, Some(value)) => clean_item(list, "value", value.clone())?,
    };
    write(&state, move |text| {
        let items = current(text, list)?;
        let index = find(list, &items, &body)?[0];
        let at = |field: Option<&str>| {
            let mut path = vec![Seg::key(list.key()), Seg::Index(index)];
            path.extend(field.map(Seg::key));
            path
        };
        let Value::Object(fields) = &new else {
            check_duplicates(list, &replaced(&items, index, new.clone()))?;
            return Ok(vec![Edit::Set(at(None), new)]);
        };
        // A partial mapping: merged field by field; `null` removes a field.
        let old = items[index].as_object().cloned().unwrap_or_default();
        let mut merged = old.clone();
        let mut edits = Vec::new();
        for (field, value) in fields {
            if value.is_null() {
                if merged.shift_remove(field).is_some() {
                    edits.push(Edit::Delete(at(Some(field))));
                }
            } else if old.get(field) != Some(value) {
                merged.insert(field.clone(), value.clone());
                edits.push(Edit::Set(at(Some(field)), value.clone()));
            }
        }
        check_duplicates(list, &replaced(&items, index, Value::Object(merged)))?;
        Ok(edits)
    })
    .await
}

fn replaced(items: &[Value], index: usize, item: Value) -> Vec<Value> {
    let mut items = items.to_vec();
    items[index] = item;
    items
}

async fn delete(
    state: Arc<AppState>,
    list: List,
    query: HashMap<String, String>,
) -> Result<axum::Json<Value>, ApiError> {
    let by: Map<String, Value> = query.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    write(&state, move |text| {
        let items = current(text, list)?;
        let indices = find(list, &items, &by)?;
        Ok(indices.into_iter().rev().map(|i| Edit::Delete(vec![Seg::key(list.key()), Seg::Index(i)])).collect())
    })
    .await
}

impl From<switchyard_config::edit::EditError> for ApiError {
    fn from(error: switchyard_config::edit::EditError) -> Self {
        switchyard_config::EditYamlError::Edit(error).into()
    }
}
